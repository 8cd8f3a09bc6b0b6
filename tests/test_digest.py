"""The coordinator's digest: verify items read for their fact, grouped and de-duplicated; the
facts to record; status honesty; sites and list names in words."""

from __future__ import annotations

import pytest

from matcher.digest import (
    Sites,
    citations,
    default_list_name,
    facts_sentence,
    facts_to_record,
    group_verify,
    in_country,
    patient_digest,
    phase_text,
    plain,
    purpose_text,
    read_verify,
    site_text,
    sites_of,
    status_text,
)
from matcher.trial import Location, Trial


@pytest.mark.parametrize(
    ("item", "fact", "missing", "details", "count"),
    [
        (
            "ALT not recorded: verify (ALT <= 3 x ULN)",
            "ALT",
            True,
            ("trial asks ALT ≤ 3 × ULN",),
            1,
        ),
        (
            "ANC not recorded: verify (ANC >= 1.5 x109/l)",
            "ANC",
            True,
            ("trial asks ANC ≥ 1.5 × 10⁹/L",),
            1,
        ),
        ("brain metastases status not recorded: verify", "brain metastases", True, (), 1),
        (
            "prior therapies not recorded: verify (trial requires prior prior therapy)",
            "prior therapies",
            True,
            ("trial requires prior therapy",),
            1,
        ),
        (
            "ECOG not recorded: verify (required ECOG 0–1)",
            "performance status (ECOG)",
            True,
            ("trial requires ECOG 0–1",),
            1,
        ),
        (
            "washout periods to check against last-dose dates (2): washout 28 days after "
            "surgery: last-dose dates not recorded, verify; washout 28 days after surgery: "
            "last-dose dates not recorded, verify",
            "last-dose dates",
            True,
            ("washout 28 days after surgery",),
            2,
        ),
        (
            "contraception requirements to confirm at consent (3): contraception requirement: "
            "confirm with the patient at consent",
            "contraception (confirm at consent)",
            False,
            ("contraception requirement: confirm with the patient at consent",),
            3,
        ),
        (
            "had doxorubicin (Anthracycline); progression on it is not recorded: verify",
            "progression on prior therapy",
            True,
            ("had doxorubicin (Anthracycline)",),
            1,
        ),
        (
            "trial is for Leiomyosarcoma; patient's subtype not recorded: verify histology",
            "histologic subtype",
            True,
            ("trial is for Leiomyosarcoma",),
            1,
        ),
        (
            "disease not metastatic; trial requires advanced: verify resectability/extent",
            "disease extent and resectability",
            False,
            ("disease not metastatic; trial requires advanced",),
            1,
        ),
        (
            "adult-metastasectomy: primary_controlled: unknown -- verify the primary",
            "standard option check",
            False,
            ("adult-metastasectomy: primary tumour controlled: unknown: verify the primary",),
            1,
        ),
        ("something new: verify", "other checks", False, ("something new: verify",), 1),
    ],
)
def test_read_verify(item, fact, missing, details, count):
    v = read_verify(item)
    assert (v.fact, v.missing, v.details, v.count) == (fact, missing, details, count)


def test_group_verify_says_each_fact_once():
    groups = group_verify(
        [
            "ALT not recorded: verify (ALT <= 3 x ULN)",
            "AST not recorded: verify (AST <= 3 x ULN)",
            "ALT not recorded: verify (ALT <= 3 x ULN)",
            "ALT not recorded: verify (ALT <= 5 x ULN)",
            "pregnancy status not recorded: verify",
        ]
    )
    assert [g.line() for g in groups] == [
        "ALT: not recorded (trial asks ALT ≤ 3 × ULN; trial asks ALT ≤ 5 × ULN)",
        "AST: not recorded (trial asks AST ≤ 3 × ULN)",
        "pregnancy status: not recorded",
    ]
    assert [g.count for g in groups] == [3, 1, 1]


def _t(nct, verify, verdict="needs_review", status="RECRUITING", **kw):
    return {"nct_id": nct, "verdict": verdict, "status": status, "verify": verify, **kw}


ALT = "ALT not recorded: verify (ALT <= 3 x ULN)"
ANC = "ANC not recorded: verify (ANC >= 1500 /mcl)"
WASH = (
    "washout periods to check against last-dose dates (3): washout 28 days after a: last-dose "
    "dates not recorded, verify; washout 14 days after b: last-dose dates not recorded, verify; "
    "washout 7 days after c: last-dose dates not recorded, verify"
)
CONTRA = "contraception requirements to confirm at consent (1): contraception requirement: x"


def test_facts_to_record_rank_by_checks_then_trials():
    trials = [_t("N1", [ALT, ANC, CONTRA]), _t("N2", [ALT, WASH]), _t("N3", [ANC])]
    facts = facts_to_record(trials)
    assert [(f.fact, f.checks, f.trials) for f in facts] == [
        ("last-dose dates", 3, 1),
        ("ALT", 2, 2),
        ("ANC", 2, 2),
    ]
    assert facts_sentence(facts, trials) == (
        "record last-dose dates, ALT and ANC: resolves 7 checks on 3 trials"
    )
    assert facts_sentence(facts[1:2], trials) == "record ALT: resolves 2 checks on 2 trials"
    assert facts_sentence([], trials) == ""


def test_patient_digest_status_honesty_top_n_and_country():
    us = Sites(2, ("United States",), ("United States",))
    it = Sites(1, ("Italy",), ("Italy",))
    trials = [
        _t("C1", [ALT], status="COMPLETED"),
        _t("C2", [], verdict="eligible", status="ACTIVE_NOT_RECRUITING"),
        _t("O1", [ALT]),
        _t("O2", [ANC], status="NOT_YET_RECRUITING"),
        _t("O3", [], verdict="eligible", status="ENROLLING_BY_INVITATION"),
        _t("X1", [], verdict="excluded"),
    ]
    sites = {"C1": us, "C2": us, "O1": us, "O2": it, "O3": us, "X1": us}
    d = patient_digest(trials, sites, {"O1": "SUPPORTIVE_CARE"}, top=2)
    assert [t["nct_id"] for t in d["top"]] == ["O1", "O2"]
    assert [t["place"] for t in d["top"]] == [1, 2]
    assert [t["nct_id"] for t in d["more"]] == ["O3"]
    assert [t["nct_id"] for t in d["closed"]] == ["C1", "C2"]
    assert [t["place"] for t in d["more"] + d["closed"]] == [3, 1, 2]
    assert [t["nct_id"] for t in d["excluded"]] == ["X1"]
    assert d["closed"][1]["status_words"] == "Active, not recruiting"
    assert d["top"][0]["purpose"] == "supportive care"
    assert d["top"][1]["where"] == "sites outside the US only (Italy)"
    # closed trials' verify items do not count toward the facts to record
    assert [(f.fact, f.checks) for f in d["facts"]] == [("ALT", 1), ("ANC", 1)]
    assert d["counts"] == {
        "eligible": 1,
        "needs_review": 2,
        "closed": 2,
        "excluded": 1,
        "other_country": 0,
    }
    d = patient_digest(trials, sites, top=5, country="US")
    assert [t["nct_id"] for t in d["top"]] == ["O1", "O3"]
    assert [t["nct_id"] for t in d["other_country"]] == ["O2"]
    assert patient_digest(trials, sites, top=0)["top"] == []


@pytest.mark.parametrize(
    ("status", "words"),
    [
        ("RECRUITING", "Recruiting"),
        ("ACTIVE_NOT_RECRUITING", "Active, not recruiting"),
        ("ENROLLING_BY_INVITATION", "Enrolling by invitation"),
        ("COMPLETED", "Completed"),
        ("SOME_NEW_VALUE", "Some new value"),
        (None, "not stated"),
    ],
)
def test_status_text(status, words):
    assert status_text(status) == words


@pytest.mark.parametrize(
    ("phase", "words"),
    [
        ("NA", "phase: not applicable"),
        ("", "phase: not applicable"),
        ("PHASE2", "phase 2"),
        ("PHASE1/PHASE2", "phase 1/2"),
        ("EARLY_PHASE1", "phase early phase 1"),
    ],
)
def test_phase_text(phase, words):
    assert phase_text(phase) == words


def test_purpose_and_plain_words():
    assert purpose_text("SUPPORTIVE_CARE") == "supportive care"
    assert purpose_text(None) == "not stated"
    assert plain("primary_controlled: unknown; lung_metastases_count 3") == (
        "primary tumour controlled: unknown; number of lung metastases 3"
    )
    assert plain("trial closed: status now ACTIVE_NOT_RECRUITING") == (
        "trial closed: status now active, not recruiting"
    )
    assert plain("status COMPLETED -> TERMINATED") == "status completed -> terminated"
    assert plain("some_other_field") == "some other field"


def _loc(country, status=None, city="X"):
    return Location("F", city, None, country, None, None, None, status)


@pytest.mark.parametrize(
    ("locations", "text"),
    [
        ([], "no sites listed"),
        (
            [_loc("Italy"), _loc("Italy"), _loc("France")],
            "sites outside the US only (Italy, France)",
        ),
        ([_loc("United States", "COMPLETED")], "no open site listed"),
        (
            [_loc("United States"), _loc("Italy")],
            "open US sites; distance not computed (no ZIP or location recorded)",
        ),
    ],
)
def test_site_text_without_a_nearest_site(locations, text):
    trial = Trial("NCT1", locations=locations)
    assert site_text(None, None, sites_of(trial)) == text


def test_site_text_with_the_nearest_site():
    site = {"facility": "MSK", "city": "New York", "state": "NY", "country": "United States"}
    assert site_text(site, 4.2, None) == "MSK, New York, NY, United States (4.2 mi)"


def test_in_country():
    s = Sites(1, ("United States", "Italy"), ("Italy",))
    assert in_country(s, None) and in_country(s, "italy") and not in_country(s, "US")
    assert not in_country(None, "Italy")


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("lists/patients.csv", "patients"),
        ("lists/patients-2026-12-01.csv", "patients"),
        ("lists/patients_20261201.json", "patients"),
        ("lists/clinic list 2026-12-01T0530.csv", "clinic list"),
        ("lists/fhir-bundles/", "fhir-bundles"),
        ("2026-12-01.csv", "2026-12-01"),
    ],
)
def test_default_list_name(path, name):
    assert default_list_name(path) == name


def test_citations_name_the_pdq_summary_never_the_seed_file():
    seeds = {"000_x.txt": {"summary": "adult_sts", "title": "Stage IV Adult STS"}}
    cits = [
        {"seed": "000_x.txt", "section": "Standard treatment options", "ref": 4, "text": None},
        {"seed": "000_x.txt", "section": "Standard treatment options", "ref": 5, "text": None},
        {"seed": "000_x.txt", "section": "Stage IV", "ref": None, "text": None},
    ]
    got = citations(cits, seeds)
    assert [c.line() for c in got] == [
        "Adult Soft Tissue Sarcoma Treatment (PDQ®), Health Professional Version, section "
        "“Standard treatment options”, references 4, 5",
        "Adult Soft Tissue Sarcoma Treatment (PDQ®), Health Professional Version, section "
        "“Stage IV”",
    ]
    assert got[0].url.startswith("https://www.cancer.gov/types/soft-tissue-sarcoma/hp/")
    assert all("000_x" not in c.line() for c in got)


def test_verify_group_count_is_the_number_of_groups():
    from matcher.digest import verify_group_count

    for lines in (
        [],
        ["ECOG: not recorded"],
        ["ALT: not recorded (trial asks ALT ≤ 3 × ULN)", "ALT: not recorded (x)", "age"],
    ):
        assert verify_group_count(lines) == len(group_verify(lines))
        assert verify_group_count(tuple(lines)) == len(group_verify(lines))


def test_place_text_once_per_site_dict_equals_the_join():
    """A site's place text, made once per site dict, is the fields it has joined, for the
    digest's ``where`` and the CSV's nearest-site cell alike (and "site" when it has none)."""
    from matcher.digest import place_text, site_text
    from matcher.render import site_text as csv_site_text

    keys = ("facility", "city", "state", "country")
    sites = [
        {"facility": "Mayo Clinic", "city": "Rochester", "state": "Minnesota",
         "country": "United States", "zip": "55905", "status": "RECRUITING"},
        {"facility": None, "city": "Zürich", "state": "", "country": "Switzerland"},
        {"facility": "A, B", "city": 12, "state": None, "country": None},
        {"facility": None, "city": None, "state": None, "country": None},
    ]  # fmt: skip
    for _ in range(2):  # made, then from the cache
        for site in sites:
            want = ", ".join(str(site[k]) for k in keys if site.get(k))
            assert place_text(site) == csv_site_text(site) == want
            assert site_text(site, 12.5, None) == (want or "site") + " (12.5 mi)"
            assert site_text(site, None, None) == (want or "site")
    assert csv_site_text(None) == "" and csv_site_text({}) == ""
