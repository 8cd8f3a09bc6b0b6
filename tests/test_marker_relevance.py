"""Trials for tumours defined by a marker ("Microsatellite Instability-High Solid Malignant
Tumor", "MSI/dMMR"): listed for every patient the broad word admits, with the marker status to
verify; settled or ruled out by the patient's recorded status, the same way by the arrays and
by the one-patient path."""

from __future__ import annotations

from pathlib import Path

import pytest

from matcher import rank
from matcher.engine import parse_records
from matcher.knowledge import load_pack
from matcher.rank import RankConfig, rank_trials
from matcher.records import iter_records
from matcher.vocab import load_vocab

# real registry records (labelled in blind set 4): an MSI-H solid-tumour basket among listed
# cancers, and a trial whose conditions name only the marker
RECORDS = Path(__file__).resolve().parent / "blind" / "set4" / "a" / "trials"
BASKET, MARKER_ONLY = "NCT04114136", "NCT04795661"


@pytest.mark.parametrize(
    ("text", "mention", "tumour_words", "gene"),
    [
        (
            "Microsatellite Instability-High Solid Malignant Tumor",
            "Solid Malignant Tumor",
            False,
            "MSI",
        ),
        ("BRAF-mutant Melanoma", "Melanoma", False, "BRAF"),
        ("NTRK fusion-positive solid tumors", "solid tumors", False, "NTRK"),
        ("KRAS G12C mutant solid tumors", "solid tumors", False, "KRAS"),
        ("dMMR Colorectal Cancer", "Colorectal Cancer", False, "MSI"),
        ("MSI/dMMR", "", True, "MSI"),
        ("Tumors with high TMB", "", True, "TMB"),
        # not a marker: an unlisted kind, or no marker at all
        ("Aggressive NK Cell Leukemia", "Leukemia", False, None),
        ("Localized Resectable Tumor", "", True, None),
        ("Refractory BRAF-mutant Melanoma of the Eye", "Melanoma", False, None),
    ],
)
def test_marker_scope(text, mention, tumour_words, gene):
    assert rank._marker_scope(text, mention, tumour_words) == gene


@pytest.mark.parametrize(
    ("text", "wanted"),
    [
        ("Microsatellite Instability-High Solid Malignant Tumor", "positive"),
        ("MSI/dMMR", "positive"),
        ("NTRK fusion-positive solid tumors", "positive"),
        ("KRAS wild-type colorectal cancer", "negative"),
        ("MSS colorectal cancer", "negative"),
        ("EGFR", None),  # does not say
        ("MSI-high or MSS tumours", None),  # says both
    ],
)
def test_marker_wanted(text, wanted):
    assert rank._marker_wanted(text) == wanted


PATIENTS = [
    {"id": "MSI-POS", "age": 60, "sex": "F", "diagnosis": "endometrial carcinoma",
     "stage": "IV", "biomarkers": ["MSI-H", "dMMR"]},
    {"id": "MSI-NEG", "age": 55, "sex": "M", "diagnosis": "colorectal cancer",
     "stage": "IV", "biomarkers": ["MSS", "pMMR"]},
    {"id": "MSI-UNK", "age": 45, "sex": "F", "diagnosis": "leiomyosarcoma", "stage": "IV"},
    {"id": "OTHER-MARKERS", "age": 50, "sex": "M", "diagnosis": "pancreatic adenocarcinoma", "stage": "IV",
     "biomarkers": ["KRAS G12D"]},
]  # fmt: skip


@pytest.fixture(scope="module")
def setup(read_patient_rows):
    patients = read_patient_rows(PATIENTS)
    records = [i.record for n in (BASKET, MARKER_ONLY) for i in iter_records(RECORDS / f"{n}.json")]
    assert len(records) == 2
    return patients, parse_records(records), load_pack(), load_vocab()


def _row(m, nct):
    return next(s for s in m.trials if s.nct_id == nct)


@pytest.mark.parametrize(
    ("pid", "verdict", "marker_verify", "excluded_words"),
    [
        ("MSI-POS", "needs_review", False, None),  # settled by the recorded MSI-H
        ("MSI-NEG", "excluded", False, "recorded negative (MSS)"),
        ("MSI-UNK", "needs_review", True, None),  # not recorded: to verify, never hidden
        ("OTHER-MARKERS", "needs_review", True, None),
    ],
)
@pytest.mark.parametrize("nct", [BASKET, MARKER_ONLY])
def test_marker_defined_trials(setup, pid, verdict, marker_verify, excluded_words, nct):
    patients, parsed, pack, vocab = setup
    p = next(x for x in patients if x.id == pid)
    m = rank_trials(p, parsed, pack, vocab, RankConfig(statuses=None))
    s = _row(m, nct)
    assert "defined by MSI status" in s.reasons[0]
    asks = [v for v in s.verify if "MSI status" in v]
    assert bool(asks) == marker_verify
    if excluded_words:
        assert s.verdict == "excluded"
        assert any(excluded_words in e for e in s.excluded_by)
    else:
        assert s.verdict != "excluded"
        if s.verdict == "needs_review" and not marker_verify:
            assert s.verify  # something else to check, not the marker


def test_marker_defined_trials_columnar_equals_one_patient_path(setup, columnar_check):
    patients, parsed, pack, vocab = setup
    columnar_check(patients, parsed, pack, vocab, RankConfig(statuses=None))
    # both records are relevant to every patient (listed, to verify or excluded: never hidden)
    for p in patients:
        assert len(rank_trials(p, parsed, pack, vocab, RankConfig(statuses=None)).trials) == 2
