"""Columnar rows (verdict, score, rank as arrays) equal the one-patient path on every fixture
patient and fixture trial; explained rows equal it key for key."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pytest

from matcher.columnar import VERDICTS
from matcher.engine import MatchState, iter_match_rows, parse_records
from matcher.knowledge import load_pack
from matcher.patient import read_patients
from matcher.rank import RankConfig, rank_trials
from matcher.records import iter_records
from matcher.vocab import load_vocab

AS_OF = date(2026, 6, 1)
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def _patients():
    out = []
    for path in sorted((FIXTURES / "patients").iterdir()):
        if path.suffix not in (".json", ".csv") or path.name == "template.csv":
            continue
        out += read_patients(path, as_of=AS_OF).patients  # a bad row is skipped, not fatal
    out += read_patients(FIXTURES / "demo" / "patients.csv", as_of=AS_OF).patients
    return out


@pytest.fixture(scope="module")
def cohort():
    records = [
        i.record
        for folder in (FIXTURES / "trials", FIXTURES / "demo" / "trials")
        for i in iter_records(folder)
        if i.error is None
    ]
    return _patients(), parse_records(records)


def _rows_view(cm, rows, patients):
    """{patient_id: [(nct_id, rank, verdict, score, excluded)]} from the arrays."""
    out = {}
    ids = [pt.trial.nct_id for pt in cm.st.parsed_trials]
    for i, p in enumerate(patients):
        sl = rows.of(i)
        out[p.id] = [
            (ids[j], int(r), VERDICTS[v], float(s), v == 2)
            for j, r, v, s in zip(
                rows.trial[sl], rows.rank[sl], rows.verdict[sl], rows.score[sl], strict=True
            )
        ]
    return out


CONFIGS = [
    RankConfig(),
    RankConfig(statuses=None),
    RankConfig(statuses=None, max_miles=300),
    RankConfig(statuses=None, purposes=frozenset({"treatment", "supportive_care"})),
]


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "any", "any-300mi", "purposes"])
def test_columnar_rows_equal_rank_trials(cohort, config):
    patients, parsed = cohort
    pack, vocab = load_pack(), load_vocab()
    simple = [rank_trials(p, parsed, pack, vocab, config) for p in patients]
    expected = {
        m.patient_id: [
            (s.nct_id, s.rank, s.verdict, float(s.score), s.verdict == "excluded") for s in m.trials
        ]
        for m in simple
    }
    got, explained = {}, []
    for cm, rows in iter_match_rows(patients, parsed, pack, vocab, config, chunk_size=7):
        chunk = list(rows.patients)
        got.update(_rows_view(cm, rows, chunk))
        explained += [cm.explain(rows, i) for i in range(len(chunk))]
        assert [int(u) for u in rows.unrelated] == [
            m.unrelated for m in simple[len(explained) - len(chunk) : len(explained)]
        ]
    assert len(patients) >= 40
    assert sum(len(v) for v in expected.values()) > 1000  # real work: every verdict occurs
    assert {v for rows in expected.values() for _, _, v, _, _ in rows} == set(VERDICTS)
    assert got == expected
    dump = lambda ms: json.dumps([m.to_dict() for m in ms], sort_keys=True)  # noqa: E731
    assert dump(explained) == dump(simple)


def test_columnar_rows_survive_memo_fresh_starts(cohort):
    """A tiny evaluator memo and summary limit (fresh starts mid-chunk and between chunks)
    give the same rows."""
    patients, parsed = cohort
    pack, vocab = load_pack(), load_vocab()
    config = RankConfig(statuses=None)

    def run(state):
        out = {}
        for cm, rows in iter_match_rows(patients, parsed, pack, vocab, config, 5, state):
            out.update(_rows_view(cm, rows, list(rows.patients)))
        return out

    plain = run(MatchState(parsed, pack, vocab, config))
    small = MatchState(parsed, pack, vocab, config)
    small.evaluator.max_entries = 50
    small.columnar().max_entries = 20
    assert run(small) == plain
    assert small.evaluator.generation > 3


def test_rows_are_compact_arrays(cohort):
    patients, parsed = cohort
    (cm, rows), *_ = iter_match_rows(
        patients[:3], parsed, load_pack(), load_vocab(), RankConfig(statuses=None)
    )
    for name in ("patient", "trial", "verdict", "score", "rank", "gated", "site", "miles"):
        assert isinstance(getattr(rows, name), np.ndarray)
    assert len(rows) == int(rows.starts[-1])


def test_a_study_of_caregivers_is_closed_the_same_way(cohort):
    """The purpose gates (here: participants who are not patients) agree between the arrays
    and the one-patient path."""
    patients, parsed = cohort
    caregivers = {
        "protocolSection": {
            "identificationModule": {
                "nctId": "NCT09999991",
                "briefTitle": "Coping Skills for Caregivers of People With Sarcoma",
            },
            "statusModule": {"overallStatus": "RECRUITING"},
            "conditionsModule": {"conditions": ["Sarcoma", "Leiomyosarcoma"]},
            "eligibilityModule": {
                "eligibilityCriteria": "Inclusion Criteria:\n* Primary caregiver of a patient "
                "with sarcoma\n* Age >= 18 years"
            },
        }
    }
    trials = list(parsed) + parse_records([caregivers])
    pack, vocab, config = load_pack(), load_vocab(), RankConfig(statuses=None)
    lms = [p for p in patients if p.diagnosis and "sarcoma" in p.diagnosis]
    assert lms
    got = {}
    for cm, rows in iter_match_rows(lms, trials, pack, vocab, config, chunk_size=5):
        got.update(_rows_view(cm, rows, list(rows.patients)))
    for p in lms:
        m = rank_trials(p, trials, pack, vocab, config)
        want = [
            (s.nct_id, s.rank, s.verdict, float(s.score), s.verdict == "excluded") for s in m.trials
        ]
        assert got[p.id] == want
        row = next(s for s in m.trials if s.nct_id == "NCT09999991")
        assert row.verdict == "excluded" and "caregivers" in " ".join(row.excluded_by)


def test_one_verdict_contribution_equals_the_list_form(cohort):
    """What one verdict adds to a pair, made without a list, equals ``_contribution`` of the
    one-verdict list, for every criterion verdict of every fixture patient and trial."""
    from matcher.columnar import _contribution, _one_contribution

    patients, parsed = cohort
    state = MatchState(parsed, load_pack(), load_vocab(), RankConfig(statuses=None))
    seen = set()
    for p in patients:
        for pt in parsed:
            raw, _ = state.evaluator.criterion_verdicts(p, pt)
            for v in raw:
                got = _one_contribution(p, v)
                assert got == _contribution(p, [v]), (p.id, pt.trial.nct_id, v.criterion.type)
                seen.add(got)
    assert len(seen) >= 4  # excluded, unknown, grouped and the boost all occur


@pytest.mark.parametrize("config", CONFIGS, ids=["default", "any", "any-300mi", "purposes"])
def test_briefs_equal_the_explained_rows(cohort, config):
    """Every row as the report lists it without its detail (``briefs``: no ``rank.judge``)
    equals what the full suggestion gives: the fields a compact row keeps (the score of the
    same type), its first two reasons, its verify lines and the counts of criteria met and
    lines to read; notes and unrelated counts too."""
    patients, parsed = cohort
    pack, vocab = load_pack(), load_vocab()
    n_rows = n_t9 = n_second = 0
    for cm, rows in iter_match_rows(patients, parsed, pack, vocab, config):
        for i in range(len(rows.patients)):
            briefs, full = cm.briefs(rows, i), cm.explain(rows, i)
            assert (briefs.patient_id, briefs.notes, briefs.unrelated) == (
                full.patient_id,
                full.notes,
                full.unrelated,
            )
            assert len(briefs.trials) == len(full.trials)
            for b, s in zip(briefs.trials, full.trials, strict=True):
                n_rows += 1
                for name in ("nct_id", "rank", "score", "verdict", "excluded_by", "nearest_site",
                             "distance_miles", "title", "phase", "status", "last_update", "url",
                             "relevance", "purpose"):  # fmt: skip
                    assert getattr(b, name) == getattr(s, name), (s.nct_id, name)
                assert type(b.score) is type(s.score), s.nct_id  # 100 and 100.0 print apart
                assert b.reasons == s.reasons[:2]
                assert b.verify == tuple(s.verify)
                assert (b.met_count, b.to_review_count) == (len(s.met), len(s.to_review))
                n_t9 += "Table 9" in " ".join(s.reasons[1:2])
                n_second += len(s.reasons) > 1
            # any rows explained on their own are those of the whole patient
            only = list(range(0, len(full.trials), 2))
            assert [s.to_dict() for s in briefs.explain(only).trials] == [
                full.trials[k].to_dict() for k in only
            ]
    assert n_rows > 500 and n_second > 100
