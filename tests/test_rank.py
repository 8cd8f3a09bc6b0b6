"""Ranked suggestions: scenario patients x real fixture trials, each expectation reasoned by hand.

Trials come from ``fixtures/trials`` (real records, plus one constructed crizotinib/IMT trial
that says so in its file) and ``fixtures/demo/trials``. Statuses in these records are
historical, so most scenarios use ``statuses=None`` (``--status any``).
"""

from __future__ import annotations

import random
from datetime import date
from pathlib import Path

import pytest

from matcher.engine import parse_records
from matcher.knowledge import load_pack
from matcher.patient import normalize_record
from matcher.rank import RankConfig, rank_trials
from matcher.records import iter_records
from matcher.vocab import load_vocab

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"
AS_OF = date(2026, 6, 1)
ANY = RankConfig(statuses=None)


@pytest.fixture(scope="module")
def trials():
    paths = [
        FIXTURES / "trials" / "classic-xml-sarcoma",
        FIXTURES / "trials" / "classic-xml-2023",
        FIXTURES / "trials" / "v2",
        FIXTURES / "trials" / "constructed",
        FIXTURES / "demo" / "trials" / "classic-xml-2023" / "NCT05701306.xml",
    ]
    records = [i.record for p in paths for i in iter_records(p) if i.error is None]
    return parse_records(records)


def patient(**facts):
    facts.setdefault("id", "scenario")
    return normalize_record(facts, source="test", as_of=AS_OF)


def ranked(p, trials, config=ANY):
    return rank_trials(p, trials, load_pack(), load_vocab(), config)


def by_id(pm):
    return {s.nct_id: s for s in pm.trials}


ASPS_AFTER_PAZOPANIB = dict(
    age=30, sex="female", diagnosis="alveolar soft part sarcoma", stage="IV",
    metastatic_sites=["lung"], prior_therapies=["pazopanib"], ecog=1,
)  # fmt: skip
ADULT_LMS = dict(
    age=58, sex="female", diagnosis="leiomyosarcoma", stage="IV", metastatic_sites=["lung"],
    prior_therapies=["doxorubicin"], ecog=1, measurable_disease=True, primary_controlled=True,
    lung_metastases_count=2,
)  # fmt: skip


def test_prior_vegfr_tki_excludes_the_asps_tki_trial(trials):
    # NCT01391962 (sunitinib or cediranib in ASPS) excludes prior VEGFR TKIs; pazopanib is one.
    s = by_id(ranked(patient(**ASPS_AFTER_PAZOPANIB), trials))["NCT01391962"]
    assert s.verdict == "excluded"
    assert any("pazopanib" in r and "VEGFR" in r for r in s.excluded_by)
    # ...and it still says why it was a candidate: it tests a Table 9 agent for ASPS.
    assert any(r.startswith("tests sunitinib, a Table 9 agent") for r in s.reasons)
    assert s.relevance == "subtype"


def test_paediatric_only_trial_is_closed_to_an_adult(trials):
    # NCT05701306 enrols 12-18 years: a 58-year-old is gated on the structured age alone.
    s = by_id(ranked(patient(**ADULT_LMS), trials))["NCT05701306"]
    assert s.verdict == "excluded"
    assert s.excluded_by == ["age 58 years is above the trial maximum 18 years"]
    # a 14-year-old is inside the range: not gated on age
    child = by_id(ranked(patient(age=14, diagnosis="synovial sarcoma", stage="IV"), trials))
    assert not any("age" in r for r in child["NCT05701306"].excluded_by)


def test_no_maximum_age_is_no_bound(trials):
    # NCT05688280 has minimum 18 and no maximum: an 84-year-old is not gated on age;
    # NCT02576665 has maximum 75: the same patient is.
    old = by_id(ranked(patient(**{**ADULT_LMS, "age": 84}), trials))
    assert not any("age" in r for r in old["NCT05688280"].excluded_by)
    assert old["NCT02576665"].excluded_by == ["age 84 years is above the trial maximum 75 years"]


def test_alk_unknown_imt_patient_is_asked_to_verify_alk(trials):
    # The constructed crizotinib trial tests a Table 9 agent for IMT and requires ALK
    # rearrangement; the patient's ALK status is not recorded: a candidate to verify, ranked first.
    pm = ranked(
        patient(age=25, diagnosis="inflammatory myofibroblastic tumor", stage="IV", ecog=1), trials
    )
    top = pm.trials[0]
    assert top.nct_id == "NCT99999901"
    assert top.verdict == "needs_review"
    assert any(r.startswith("tests crizotinib, a Table 9 agent") for r in top.reasons)
    assert any("ALK" in v for v in top.verify)


def test_alk_negative_imt_patient_gets_no_table9_boost(trials):
    # ALK negative: the crizotinib option does not apply (the cited study is in ALK-rearranged
    # IMT), so the trial gets no Table 9 boost, and the trial's ALK requirement is not met.
    p = patient(age=25, diagnosis="IMT", stage="IV", ecog=1, biomarkers=["ALK negative"])
    s = by_id(ranked(p, trials))["NCT99999901"]
    assert not any(r.startswith("tests crizotinib") for r in s.reasons)
    assert s.verdict == "excluded"
    assert any("ALK" in r for r in s.excluded_by)


@pytest.mark.parametrize(
    "diagnosis", ["endometrial stromal sarcoma", "uterine leiomyosarcoma", "leiomyosarcoma"]
)
def test_endometrial_stromal_sarcoma_hard_negative(trials, diagnosis):
    # NCT06388018 lists endometrial stromal sarcoma among its conditions but its criteria
    # require endometrial carcinoma: not relevant to a sarcoma patient, so not shown.
    pm = ranked(patient(age=55, sex="female", diagnosis=diagnosis, stage="II"), trials)
    assert "NCT06388018" not in by_id(pm)
    assert pm.unrelated >= 1


def test_missing_ecog_is_unknown_not_ineligible(trials):
    # NCT02561559 requires ECOG 0-2; no ECOG recorded -> verify, never excluded for it.
    p = patient(
        age=50, sex="male", diagnosis="synovial sarcoma", stage="IV", metastatic_sites=["lung"]
    )
    s = by_id(ranked(p, trials))["NCT02561559"]
    assert s.verdict == "needs_review"
    assert any("ECOG" in v for v in s.verify)
    assert not any("ECOG" in r for r in s.excluded_by)


@pytest.mark.parametrize(
    ("nct", "why"),
    [
        ("NCT05703854", "bone sarcoma (osteosarcoma), renal and mesothelioma cohorts only"),
        ("NCT05698524", "gliosarcoma is a brain tumour, not a soft tissue sarcoma"),
    ],
)
def test_unrelated_trials_are_not_shown_to_a_soft_tissue_patient(trials, nct, why):
    assert nct not in by_id(ranked(patient(**ADULT_LMS), trials)), why


def test_bone_sarcoma_trial_is_shown_to_a_bone_sarcoma_patient(trials):
    pm = ranked(
        patient(age=40, diagnosis="osteosarcoma", stage="IV", metastatic_sites=["lung"]), trials
    )
    assert by_id(pm)["NCT05703854"].relevance == "subtype"


def test_resection_candidate_ranks_the_sbrt_trial_above_a_plain_sts_trial(trials):
    # Both are soft tissue sarcoma trials; NCT02561559 treats lung metastases with SBRT and the
    # patient has lung metastases with the primary controlled: a named +10 alignment boost.
    pm = ranked(patient(**ADULT_LMS), trials)
    ids = [s.nct_id for s in pm.trials]
    sbrt = by_id(pm)["NCT02561559"]
    assert any(r.startswith("local treatment of lung metastases") for r in sbrt.reasons)
    assert sbrt.score_parts["alignment"] >= 10
    # NCT02561559 is an observational study: listed in the group after treatment trials, so
    # the boost shows in the score, not in the position against a treatment trial
    assert sbrt.purpose == "observational"
    assert sbrt.score > by_id(pm)["NCT05688280"].score
    assert ids.index("NCT02561559") > ids.index("NCT05688280")


def test_prior_anthracycline_requirement_fits_a_patient_after_doxorubicin(trials):
    # NCT01299506 is for STS after anthracycline failure; the patient had doxorubicin.
    s = by_id(ranked(patient(**ADULT_LMS), trials))["NCT01299506"]
    assert any(
        r.startswith("fits the patient's line of therapy: trial requires prior anthracycline")
        for r in s.reasons
    )


def test_status_gate(trials):
    # Default statuses admit only RECRUITING / NOT_YET_RECRUITING: the TRUSTS trial (TERMINATED
    # in this 2020 record) is excluded with its status named, not silently dropped.
    s = by_id(ranked(patient(**ADULT_LMS), trials, RankConfig()))["NCT01189253"]
    assert s.verdict == "excluded"
    assert s.excluded_by == ["status TERMINATED is not one of NOT_YET_RECRUITING, RECRUITING"]


def test_order_is_deterministic_and_ties_break_by_nct_id(trials):
    p = patient(**ADULT_LMS)
    first = [(s.nct_id, s.rank) for s in ranked(p, trials).trials]
    shuffled = list(trials)
    random.Random(3).shuffle(shuffled)
    assert [(s.nct_id, s.rank) for s in ranked(p, shuffled).trials] == first
    pm = ranked(p, trials)
    order = {"eligible": 0, "needs_review": 0, "excluded": 1}
    first_group = {"treatment", "not_stated"}
    keys = [(s.purpose not in first_group, order[s.verdict], -s.score, s.nct_id) for s in pm.trials]
    assert keys == sorted(keys)
    assert [s.rank for s in pm.trials] == list(range(1, len(pm.trials) + 1))


def test_score_is_the_sum_of_its_parts(trials):
    for s in ranked(patient(**ADULT_LMS), trials).trials:
        assert s.score == round(sum(s.score_parts.values()), 1)


def test_distance_and_max_miles(trials):
    # The constructed IMT trial has one site in Boston (42.3376, -71.1068). A patient in
    # ZIP 10065 (New York) is about 190 miles away.
    p = patient(age=25, diagnosis="IMT", stage="IV", location={"zip": "10065"})
    s = by_id(ranked(p, trials))["NCT99999901"]
    assert s.nearest_site["city"] == "Boston"
    assert 180 < s.distance_miles < 200
    far = by_id(ranked(p, trials, RankConfig(statuses=None, max_miles=100)))["NCT99999901"]
    assert far.verdict == "excluded"
    assert far.excluded_by == [f"nearest open site is {s.distance_miles:g} miles away (limit 100)"]


def test_json_shape(trials):
    d = ranked(patient(**ADULT_LMS), trials).to_dict()
    assert d["patient_id"] == "scenario"
    for t in d["trials"]:
        assert {"nct_id", "rank", "score", "verdict", "reasons", "verify", "excluded_by",
                "nearest_site", "distance_miles"} <= set(t)  # fmt: skip
        assert t["verdict"] in ("eligible", "needs_review", "excluded")
        assert (t["verdict"] == "excluded") == bool(t["excluded_by"])


def test_sites_abroad_only_cost_a_us_patient_the_full_distance_penalty():
    """A trial whose every open site is outside the US (often without coordinates) is as far
    as the distance penalty goes for a patient with a US ZIP, and the reason says where."""
    from matcher.rank import sites_abroad_only
    from matcher.trial import Location, Trial

    def Site(country=None, status=None):  # noqa: N802 - reads as the record's site
        return Location(None, None, None, country, None, None, None, status)

    abroad = Trial(nct_id="NCT0", locations=[Site(country="France"), Site(country="Italy")])
    mixed = Trial(nct_id="NCT1", locations=[Site(country="France"), Site(country="United States")])
    unknown = Trial(nct_id="NCT2", locations=[Site(country="France"), Site()])
    closed = Trial(
        nct_id="NCT3",
        locations=[Site(country="France"), Site(country="United States", status="COMPLETED")],
    )
    assert sites_abroad_only(abroad, "United States") == ["France", "Italy"]
    assert sites_abroad_only(mixed, "United States") == []
    assert sites_abroad_only(unknown, "United States") == []
    assert sites_abroad_only(closed, "United States") == ["France"]
