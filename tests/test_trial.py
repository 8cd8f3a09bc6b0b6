"""The trial model: structured fields from real v2 and classic-XML records."""

from __future__ import annotations

import json

import pytest

from matcher.errors import InputError, RecordError, TrialNotFound
from matcher.records import iter_records
from matcher.trial import Trial, load_trial_records, normalize_mesh_id, parse_age


@pytest.mark.parametrize(
    ("text", "years"),
    [
        ("18 Years", 18.0),
        ("1 Year", 1.0),
        ("6 Months", 0.5),
        ("18 Months", 1.5),
        ("30 Days", round(30 / 365.25, 4)),
        ("2 Weeks", round(14 / 365.25, 4)),
        ("N/A", None),
        ("", None),
        (None, None),
        ("eighteen", None),
    ],
)
def test_parse_age(text, years):
    assert parse_age(text) == years


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("D002289", "D002289"),
        ("D000008175", "D008175"),
        ("C000623891", "C623891"),
        ("C536000", "C536000"),
        ("M2562", "M002562"),
        ("weird", "weird"),
    ],
)
def test_normalize_mesh_id(raw, norm):
    assert normalize_mesh_id(raw) == norm


def _one(path) -> dict:
    items = list(iter_records(path))
    assert len(items) == 1 and items[0].error is None
    return items[0].record


def test_v2_record_fields(fixtures_dir):
    t = Trial.from_record(_one(fixtures_dir / "trials/eligibility/NCT04267848__v2.json"))
    assert t.nct_id == "NCT04267848"
    assert t.status == "RECRUITING"
    assert t.phases == ["PHASE3"]
    assert t.study_type == "INTERVENTIONAL"
    assert t.min_age_years == 18.0 and t.max_age_years is None
    assert t.sex == "ALL"
    assert t.last_update == "2023-09-10"
    assert t.url == "https://clinicaltrials.gov/study/NCT04267848"
    assert {"D002289", "D008175"} <= {m.id for m in t.mesh_terms if m.source == "condition"}
    names = {i.name: i for i in t.interventions}
    assert names["Carboplatin"].drug_ids == ["carboplatin"]
    assert "Paraplatin" in names["Carboplatin"].other_names
    assert names["Gemcitabine Hydrochloride"].drug_ids == ["gemcitabine"]
    assert names["Biospecimen Collection"].drug_ids == []  # a procedure names no drug
    loc = t.locations[0]
    assert (loc.facility, loc.city, loc.state, loc.zip, loc.country) == (
        "Katmai Oncology Group",
        "Anchorage",
        "Alaska",
        "99508",
        "United States",
    )
    assert (loc.lat, loc.lon, loc.status) == (61.21806, -149.90028, "RECRUITING")


def test_wide_mesh_ids_are_normalized(fixtures_dir):
    t = Trial.from_record(_one(fixtures_dir / "trials/v2/NCT06388018.json"))
    assert {"D012509", "D016889", "D018203"} <= t.mesh_ids  # registered as D000012509 ...
    assert t.sex == "FEMALE"


def test_record_without_browse_modules(fixtures_dir):
    t = Trial.from_record(_one(fixtures_dir / "trials/eligibility/NCT06576635.json"))
    assert [m.source for m in t.mesh_terms] == ["intervention"] * len(t.mesh_terms)
    assert t.drug_ids >= {"docetaxel", "paclitaxel", "gemcitabine", "pemetrexed", "vinorelbine"}


def test_classic_xml_record(fixtures_dir):
    t = Trial.from_record(_one(fixtures_dir / "trials/classic-xml-sarcoma/NCT01391962.xml"))
    assert t.nct_id == "NCT01391962"
    assert t.min_age_years == 16.0 and t.max_age_years is None  # <maximum_age>N/A
    assert t.drug_ids == {"cediranib", "sunitinib"}
    assert t.locations[0].city == "Santa Monica" and t.locations[0].lat is None
    assert t.criteria_text.startswith("-  INCLUSION CRITERIA:")  # a bulleted heading


@pytest.mark.parametrize(
    "record",
    [
        {"protocolSection": {"identificationModule": {"nctId": "NCT00000001"}}},
        {
            "protocolSection": {
                "identificationModule": {"nctId": "nct00000002"},
                "statusModule": {"overallStatus": "SOMETHING_NEW"},
                "designModule": {"phases": ["PHASE9"], "studyType": "Novel type"},
                "eligibilityModule": {"sex": "UNKNOWN_SEX", "minimumAge": "N/A"},
                "contactsLocationsModule": {"locations": [{"city": "Lyon", "geoPoint": {}}]},
                "armsInterventionsModule": {"interventions": [{"name": "Placebo"}]},
            },
            "derivedSection": {"conditionBrowseModule": {"meshes": [{"id": "D000008175"}]}},
        },
    ],
)
def test_tolerant_of_missing_modules_and_unknown_enums(record):
    t = Trial.from_record(record)
    assert t.nct_id.startswith("NCT")
    if t.nct_id == "NCT00000002":
        assert t.status == "SOMETHING_NEW" and t.phases == ["PHASE9"]
        assert t.study_type == "NOVEL_TYPE" and t.sex == "UNKNOWN_SEX"
        assert t.min_age_years is None
        assert t.locations[0].city == "Lyon" and t.locations[0].lat is None
        assert [m.id for m in t.mesh_terms] == ["D008175"]


def test_record_without_nct_id_is_a_record_error():
    with pytest.raises(RecordError, match="nctId"):
        Trial.from_record({"protocolSection": {}})


def test_load_trial_records_from_file(fixtures_dir):
    recs = load_trial_records(str(fixtures_dir / "trials/classic-xml-sarcoma/NCT00122473.xml"))
    assert [r["protocolSection"]["identificationModule"]["nctId"] for r, _ in recs] == [
        "NCT00122473"
    ]


def test_load_trial_records_not_in_store(tmp_path):
    with pytest.raises(TrialNotFound, match="trialmatch sync"):
        load_trial_records("NCT01391962", str(tmp_path / "none.sqlite"))
    assert not (tmp_path / "none.sqlite").exists()  # no empty store created by a look-up


def test_load_trial_records_from_store(tmp_path, fixtures_dir):
    from matcher.store import Store

    record = json.loads((fixtures_dir / "trials/v2/NCT06388018.json").read_text(encoding="utf-8"))
    db = tmp_path / "t.sqlite"
    with Store(db) as st:
        st.upsert_records([record], "test")
    [(rec, source)] = load_trial_records("nct06388018", str(db))
    assert rec["protocolSection"]["identificationModule"]["nctId"] == "NCT06388018"
    assert source == "store:NCT06388018"


def test_load_trial_records_bad_reference():
    with pytest.raises(InputError, match="neither an existing file nor an NCT id"):
        load_trial_records("not-a-trial")
