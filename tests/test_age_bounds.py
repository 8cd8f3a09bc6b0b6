"""A registered age range the criteria text contradicts ("Ages 16-65 years inclusive" with a
registered minimum of 18): the structured gate closes on the wider range, and the pair says
what to verify; the arrays and the one-patient path agree."""

from __future__ import annotations

import pytest

from matcher import rank
from matcher.engine import parse_records
from matcher.knowledge import load_pack
from matcher.rank import RankConfig, rank_trials
from matcher.vocab import load_vocab


def _record(nct, lines, minimum="18 Years", maximum=None):
    elig = {
        "eligibilityCriteria": "Inclusion Criteria:\n" + "\n".join(f"* {x}" for x in lines),
        "minimumAge": minimum,
    }
    if maximum:
        elig["maximumAge"] = maximum
    return {
        "protocolSection": {
            "identificationModule": {"nctId": nct, "briefTitle": f"Sarcoma trial {nct}"},
            "statusModule": {"overallStatus": "RECRUITING"},
            "conditionsModule": {"conditions": ["Soft Tissue Sarcoma"]},
            "eligibilityModule": elig,
        }
    }


WIDER = _record("NCT09999981", ["Ages 16-65 years inclusive", "ECOG 0-1"])
NARROWER = _record("NCT09999982", ["Age <= 75 years", "ECOG 0-1"], maximum="75 Years")
AT_DIAGNOSIS = _record("NCT09999983", ["Age < 21 years at the time of diagnosis"], minimum="1 Year")
TABLE = _record(
    "NCT09999984",
    ["Serum creatinine by age: 10 to < 13 years 1.2 mg/dL; 13 to < 16 years 1.5 mg/dL"],
)


@pytest.mark.parametrize(
    ("record", "bounds"),
    [
        # the text widens the minimum it states; no maximum is registered, and the text's 65
        # is no gate of its own (the text criterion itself still judges it)
        (WIDER, (16.0, None)),
        (NARROWER, (18.0, 75.0)),  # a text bound that is not wider changes nothing
        (AT_DIAGNOSIS, (1.0, None)),  # an age at diagnosis is not an age criterion today
        (TABLE, (18.0, None)),  # ages in a table are not an age criterion
    ],
)
def test_age_bounds(record, bounds):
    (pt,) = parse_records([record])
    assert rank.age_bounds(pt) == bounds


PATIENTS = [
    {"id": f"P{age}", "age": age, "sex": "F", "diagnosis": "leiomyosarcoma", "stage": "IV",
     "ecog": 0}
    for age in (15, 16, 17, 30)
]  # fmt: skip


@pytest.fixture(scope="module")
def setup(read_patient_rows):
    return (
        read_patient_rows(PATIENTS),
        parse_records([WIDER, NARROWER, AT_DIAGNOSIS, TABLE]),
        load_pack(),
        load_vocab(),
    )


@pytest.mark.parametrize(
    ("age", "verdict", "note"),
    [
        (15, "excluded", False),  # below the text's range too
        (16, "needs_review", True),  # below the registered minimum, inside the text's
        (17, "needs_review", True),
        (30, "eligible", False),
    ],
)
def test_the_wider_text_range_opens_the_gate_with_a_check(setup, age, verdict, note):
    patients, parsed, pack, vocab = setup
    p = next(x for x in patients if x.age == age)
    s = next(
        t
        for t in rank_trials(p, parsed, pack, vocab, RankConfig()).trials
        if t.nct_id == "NCT09999981"
    )
    assert s.verdict == verdict, (s.excluded_by, s.verify)
    asks = [v for v in s.verify if "registered minimum" in v]
    assert bool(asks) == note
    if note:
        assert '"Ages 16-65 years inclusive"' in asks[0]


def test_columnar_equals_one_patient_path(setup, columnar_check):
    patients, parsed, pack, vocab = setup
    columnar_check(patients, parsed, pack, vocab, RankConfig())
