"""Shared test helpers: paths to fixtures, a temp store, no network."""

from __future__ import annotations

import json
import socket
from datetime import date
from pathlib import Path

import pytest
import responses
from responses.registries import OrderedRegistry

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(autouse=True)
def _no_user_db(tmp_path, monkeypatch):
    """Never touch the user's real store: point the default at a temp file."""
    monkeypatch.setenv("TRIALMATCH_DB", str(tmp_path / "trials.sqlite"))
    monkeypatch.setenv("TRIALMATCH_API_URL", "https://clinicaltrials.gov/api/v2")


@pytest.fixture
def rsps():
    """Mocked HTTP (``responses``), every registered call expected, in registration order."""
    with responses.RequestsMock(
        assert_all_requests_are_fired=True, registry=OrderedRegistry
    ) as mock:
        yield mock


@pytest.fixture
def no_network(monkeypatch):
    """Any socket connection fails the test (the code under test must not call the API)."""

    def refuse(*args, **kwargs):
        raise AssertionError(f"network access attempted: {args[1:] or kwargs}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.fixture(scope="module")
def read_patient_rows(tmp_path_factory):
    """``read(rows)``: the normalized patients of a list of JSON patient dicts (as of
    2026-06-01), read from a file as a user's list is."""

    def read(rows):
        from matcher.patient import read_patients

        path = tmp_path_factory.mktemp("patients") / "patients.json"
        path.write_text(json.dumps(rows), encoding="utf-8")
        return read_patients(path, as_of=date(2026, 6, 1)).patients

    return read


def columnar_equals_one_patient_path(patients, parsed, pack, vocab, config, chunk_size=3):
    """Assert the arrays (trial, rank, verdict, score) and the explained matches of every
    patient equal ``rank.rank_trials``, the one-patient path."""
    from matcher.columnar import VERDICTS
    from matcher.engine import iter_match_rows
    from matcher.rank import rank_trials

    seen = 0
    for cm, rows in iter_match_rows(patients, parsed, pack, vocab, config, chunk_size=chunk_size):
        ids = [pt.trial.nct_id for pt in cm.st.parsed_trials]
        for i, p in enumerate(rows.patients):
            one = rank_trials(p, parsed, pack, vocab, config)
            sl = rows.of(i)
            got = [
                (ids[j], int(r), VERDICTS[v], float(sc))
                for j, r, v, sc in zip(
                    rows.trial[sl], rows.rank[sl], rows.verdict[sl], rows.score[sl], strict=True
                )
            ]
            assert got == [(t.nct_id, t.rank, t.verdict, float(t.score)) for t in one.trials]
            assert json.dumps(cm.explain(rows, i).to_dict()) == json.dumps(one.to_dict())
            seen += 1
    assert seen == len(patients)


@pytest.fixture
def columnar_check():
    """:func:`columnar_equals_one_patient_path`, for tests that build their own cohort."""
    return columnar_equals_one_patient_path
