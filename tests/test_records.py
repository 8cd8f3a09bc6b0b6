"""Reading trial records: v2 single, /studies page, export array, classic XML (fixtures)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from matcher.errors import RecordError
from matcher.records import (
    classic_age,
    classic_date,
    classic_enum,
    classic_phases,
    classic_xml_to_v2,
    iter_records,
    mesh_id_key,
    record_last_update,
    record_nct_id,
    record_status,
)

SARCOMA_XML = [
    "NCT00122473",
    "NCT00150072",
    "NCT01189253",
    "NCT01299506",
    "NCT01391962",
    "NCT02494570",
    "NCT02561559",
    "NCT02636725",
]
XML_2023 = ["NCT05688280", "NCT05698524", "NCT05703854"]


def one(path):
    items = list(iter_records(path))
    assert len(items) == 1
    assert items[0].error is None, items[0].error
    return items[0]


def walk_strings(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from walk_strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from walk_strings(v)
    elif isinstance(node, str):
        yield node


@pytest.mark.parametrize(
    ("name", "count", "first_id", "first_source_suffix"),
    [
        ("NCT00184067.json", 1, "NCT00184067", "NCT00184067.json"),
        ("response_10.json", 5, "NCT02710084", "response_10.json, entry 1"),
        ("response_11.json", 5, "NCT05187377", "response_11.json, entry 1"),
        ("ctg-studies.json", 10, "NCT00410098", "ctg-studies.json, entry 1"),
        ("NCT05694416.xml", 1, "NCT05694416", "NCT05694416.xml"),
        ("NCT03453554.json", 1, "NCT03453554", "NCT03453554.json"),
    ],
)
def test_each_file_shape(fixtures_dir, name, count, first_id, first_source_suffix):
    items = list(iter_records(fixtures_dir / "ctgov" / name))
    assert len(items) == count
    assert all(i.ok for i in items)
    assert record_nct_id(items[0].record) == first_id
    assert items[0].source.endswith(first_source_suffix)
    if count > 1:
        assert items[-1].source.endswith(f", entry {count}")


def test_v2_single_is_returned_unchanged(fixtures_dir):
    path = fixtures_dir / "ctgov" / "NCT00184067.json"
    item = one(path)
    assert item.record == json.loads(path.read_text(encoding="utf-8"))
    assert record_status(item.record) == "TERMINATED"
    assert (
        record_last_update(item.record)
        == item.record["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"]
    )


def test_identification_only_record_has_no_status_or_date(fixtures_dir):
    rec = one(fixtures_dir / "ctgov" / "NCT03453554.json").record
    assert (record_nct_id(rec), record_status(rec), record_last_update(rec)) == (
        "NCT03453554",
        None,
        None,
    )


def test_folder_reads_every_record_file_sorted(fixtures_dir):
    items = [
        item
        for sub in ("classic-xml-sarcoma", "classic-xml-2023", "v2")
        for item in iter_records(fixtures_dir / "trials" / sub)
    ]
    got = sorted(record_nct_id(i.record) for i in items if i.ok)
    assert got == sorted(SARCOMA_XML + XML_2023 + ["NCT02576665", "NCT06388018"])
    assert all(i.ok for i in items)


@pytest.mark.parametrize(
    "path",
    [f"classic-xml-sarcoma/{n}.xml" for n in SARCOMA_XML]
    + [f"classic-xml-2023/{n}.xml" for n in XML_2023],
)
def test_classic_xml_maps_to_v2(fixtures_dir, path):
    rec = one(fixtures_dir / "trials" / path).record
    ps = rec["protocolSection"]
    assert record_nct_id(rec) == path.split("/")[-1][:-4]
    assert record_status(rec) in {
        "RECRUITING",
        "NOT_YET_RECRUITING",
        "ACTIVE_NOT_RECRUITING",
        "COMPLETED",
        "TERMINATED",
        "UNKNOWN",
        "WITHDRAWN",
    }
    assert len(record_last_update(rec)) == 10
    assert ps["eligibilityModule"]["sex"] in {"ALL", "FEMALE", "MALE"}
    # The criteria text is kept word for word (only indentation and line endings change).
    raw = ET.parse(fixtures_dir / "trials" / path).getroot().find("eligibility/criteria/textblock")
    assert ps["eligibilityModule"]["eligibilityCriteria"].split() == raw.text.split()
    assert ps["conditionsModule"]["conditions"]
    # CRLF line endings and &#xD; never leak into the record.
    assert not any("\r" in s for s in walk_strings(rec))
    # Classic "N/A" ages never survive as strings.
    assert "N/A" not in (
        ps["eligibilityModule"].get("minimumAge"),
        ps["eligibilityModule"].get("maximumAge"),
    )


def test_classic_xml_field_mapping_in_detail(fixtures_dir):
    rec = one(fixtures_dir / "trials" / "classic-xml-2023" / "NCT05688280.xml").record
    ps = rec["protocolSection"]
    assert ps["identificationModule"]["briefTitle"] == (
        "Intratumoral Injection of IP-001 Following Thermal Ablation in Patients With CRC, "
        "NSCLC, and STS"
    )
    assert ps["identificationModule"]["acronym"] == "INJECTABL-1"
    assert ps["statusModule"]["overallStatus"] == "RECRUITING"
    assert ps["statusModule"]["startDateStruct"] == {"date": "2022-11-29", "type": "ACTUAL"}
    assert ps["statusModule"]["completionDateStruct"] == {"date": "2024-05", "type": "ESTIMATED"}
    assert ps["statusModule"]["lastUpdatePostDateStruct"] == {
        "date": "2023-01-27",
        "type": "ACTUAL",
    }
    assert ps["designModule"]["phases"] == ["PHASE1", "PHASE2"]
    assert ps["designModule"]["studyType"] == "INTERVENTIONAL"
    assert ps["designModule"]["designInfo"]["interventionModel"] == "PARALLEL"
    assert ps["designModule"]["designInfo"]["maskingInfo"] == {"masking": "NONE"}
    elig = ps["eligibilityModule"]
    assert elig["minimumAge"] == "18 Years"
    assert "maximumAge" not in elig  # N/A -> no bound
    assert elig["sex"] == "ALL"
    assert elig["eligibilityCriteria"].startswith(
        "Inclusion Criteria:\n\n  1. Stage 3 or Stage 4 CRC"
    )
    assert ps["conditionsModule"]["conditions"] == [
        "Metastatic Solid Tumor",
        "Colon Cancer",
        "Nonsmall Cell Lung Cancer",
        "Soft Tissue Sarcoma",
    ]
    assert "Soft tissue sarcoma" in ps["conditionsModule"]["keywords"]
    iv = ps["armsInterventionsModule"]["interventions"][0]
    assert (iv["type"], iv["name"], iv["otherNames"]) == (
        "DRUG",
        "1.0% IP-001 for Injection",
        ["IP-001"],
    )
    assert ps["contactsLocationsModule"]["locations"][0] == {
        "facility": "Institut Bergonie",
        "status": "NOT_YET_RECRUITING",
        "city": "Bordeaux",
        "country": "France",
    }
    assert rec["derivedSection"]["conditionBrowseModule"]["meshes"] == [
        {"term": "Lung Neoplasms"},
        {"term": "Sarcoma"},
        {"term": "Carcinoma, Non-Small-Cell Lung"},
    ]
    assert rec["hasResults"] is False


def test_classic_xml_location_zip_state_and_intervention_mesh(fixtures_dir):
    rec = one(fixtures_dir / "trials" / "classic-xml-sarcoma" / "NCT01391962.xml").record
    loc = rec["protocolSection"]["contactsLocationsModule"]["locations"][0]
    assert loc == {
        "facility": "Santa Monica Oncology Center",
        "city": "Santa Monica",
        "state": "California",
        "zip": "90403",
        "country": "United States",
    }
    assert rec["derivedSection"]["interventionBrowseModule"]["meshes"] == [
        {"term": "Sunitinib"},
        {"term": "Cediranib"},
    ]


@pytest.mark.parametrize(
    ("label", "enum"),
    [
        ("Recruiting", "RECRUITING"),
        ("Not yet recruiting", "NOT_YET_RECRUITING"),
        ("Active, not recruiting", "ACTIVE_NOT_RECRUITING"),
        ("Enrolling by invitation", "ENROLLING_BY_INVITATION"),
        ("Unknown status", "UNKNOWN"),
        ("Interventional", "INTERVENTIONAL"),
        ("Dietary Supplement", "DIETARY_SUPPLEMENT"),
        ("Non-Randomized", "NON_RANDOMIZED"),
        ("N/A", "NA"),
        ("Single Group Assignment", "SINGLE_GROUP"),
        ("U.S. Fed", "FED"),
        ("Anticipated", "ESTIMATED"),
        ("Non-Probability Sample", "NON_PROBABILITY_SAMPLE"),
        ("  ", None),
        (None, None),
    ],
)
def test_classic_enum(label, enum):
    assert classic_enum(label) == enum


@pytest.mark.parametrize(
    ("label", "phases"),
    [
        ("Phase 1/Phase 2", ["PHASE1", "PHASE2"]),
        ("Phase 2/Phase 3", ["PHASE2", "PHASE3"]),
        ("Early Phase 1", ["EARLY_PHASE1"]),
        ("Phase 4", ["PHASE4"]),
        ("N/A", ["NA"]),
        ("", None),
    ],
)
def test_classic_phases(label, phases):
    assert classic_phases(label) == phases


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("June 10, 2015", "2015-06-10"),
        ("December 2022", "2022-12"),
        ("January 5, 2023", "2023-01-05"),
        ("2024-03-01", "2024-03-01"),
        ("sometime", None),
    ],
)
def test_classic_date(text, iso):
    assert classic_date(text) == iso


@pytest.mark.parametrize(
    ("text", "age"),
    [
        ("18 Years", "18 Years"),
        ("1 Year", "1 Year"),
        ("6 months", "6 Months"),
        ("N/A", None),
        ("", None),
    ],
)
def test_classic_age(text, age):
    assert classic_age(text) == age


@pytest.mark.parametrize(
    ("mesh", "key"),
    [("D002289", "D002289"), ("D000008175", "D008175"), ("C000656750", "C656750"), (None, None)],
)
def test_mesh_id_key_makes_two_widths_equal(mesh, key):
    assert mesh_id_key(mesh) == key


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"studies": [', "malformed JSON at line 1, column 14"),
        ('{"hello": 1}', "not a ClinicalTrials.gov record (found hello)"),
        ("just text", "not a trial record"),
        (
            '<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><clinical_study/>',
            "DOCTYPE or ENTITY declaration is refused",
        ),
        ("<study><nct_id>NCT01234567</nct_id></study>", "root element is <study>"),
        ("<clinical_study><id_info></id_info></clinical_study>", "missing or invalid <id_info>"),
        ("<clinical_study><id_info>", "malformed XML at line 1"),
    ],
)
def test_bad_files_give_record_errors(tmp_path, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content, encoding="utf-8")
    items = list(iter_records(path))
    assert len(items) == 1
    assert items[0].record is None
    assert isinstance(items[0].error, RecordError)
    assert str(items[0].error).startswith(f"{path}: ")
    assert message in str(items[0].error)


def test_bad_entry_does_not_stop_the_rest(tmp_path, fixtures_dir):
    good = json.loads((fixtures_dir / "ctgov" / "NCT00184067.json").read_text(encoding="utf-8"))
    (tmp_path / "a.json").write_text(
        json.dumps(
            [
                good,
                {"protocolSection": {}},
                {"protocolSection": {"identificationModule": {"nctId": "NCT123"}}},
            ]
        ),
        encoding="utf-8",
    )
    (tmp_path / "b.xml").write_text("<clinical_study>", encoding="utf-8")
    (tmp_path / "notes.txt").write_text("ignored: not a record file", encoding="utf-8")
    items = list(iter_records(tmp_path))
    assert [(i.source.split("/")[-1], i.ok) for i in items] == [
        ("a.json, entry 1", True),
        ("a.json, entry 2", False),
        ("a.json, entry 3", False),
        ("b.xml", False),
    ]
    assert "no protocolSection.identificationModule.nctId" in str(items[1].error)
    assert "'NCT123' is not a valid NCT id" in str(items[2].error)


def test_missing_path_is_an_error_item(tmp_path):
    items = list(iter_records(tmp_path / "nope.json"))
    assert [str(i.error) for i in items] == [f"{tmp_path / 'nope.json'}: file or folder not found"]


def test_classic_xml_to_v2_accepts_text_and_names_source():
    xml = (
        "<clinical_study><id_info><nct_id>NCT01234567</nct_id></id_info>"
        "<overall_status>Completed</overall_status>"
        "<eligibility><gender>Both</gender><minimum_age>N/A</minimum_age></eligibility>"
        "<lastchanged_date>March 3, 2010</lastchanged_date></clinical_study>"
    )
    rec = classic_xml_to_v2(xml, "old.xml")
    assert rec == {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT01234567"},
            "statusModule": {
                "overallStatus": "COMPLETED",
                "lastUpdatePostDateStruct": {"date": "2010-03-03"},
            },
            "eligibilityModule": {"sex": "ALL"},
        },
        "hasResults": False,
    }
    with pytest.raises(RecordError, match=r"^old\.xml: root element"):
        classic_xml_to_v2("<x/>", "old.xml")
