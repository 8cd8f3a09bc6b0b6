"""The batch engines give exactly the straightforward path's answers."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from matcher.engine import gate_mask, match_cohort, parse_records
from matcher.knowledge import load_pack
from matcher.patient import read_patients
from matcher.rank import RankConfig, rank_trials
from matcher.records import iter_records
from matcher.vocab import load_vocab

AS_OF = date(2026, 6, 1)


FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


@pytest.fixture(scope="module")
def cohort():
    patients = []
    for name in ("patients.json", "coordinator_list.csv"):
        patients += read_patients(FIXTURES / "patients" / name, as_of=AS_OF).patients
    for fhir in sorted((FIXTURES / "patients").glob("*.fhir.json")):
        patients += read_patients(fhir, as_of=AS_OF).patients
    patients += read_patients(FIXTURES / "demo" / "patients.csv", as_of=AS_OF).patients
    records = [i.record for i in iter_records(FIXTURES / "demo" / "trials") if i.error is None]
    return patients, parse_records(records)


def _dump(results):
    return json.dumps([r.to_dict() for r in results], sort_keys=True)


@pytest.mark.parametrize(
    "config",
    [
        RankConfig(),
        RankConfig(statuses=None),
        RankConfig(statuses=None, max_miles=300),
    ],
    ids=["default-statuses", "any-status", "any-status-300mi"],
)
def test_local_engine_equals_straightforward_path(cohort, config):
    patients, parsed = cohort
    pack, vocab = load_pack(), load_vocab()
    simple = [rank_trials(p, parsed, pack, vocab, config) for p in patients]
    fast = match_cohort(patients, parsed, pack, vocab, config)
    assert len(patients) >= 30
    assert sum(len(r.trials) for r in simple) > 100  # the comparison covers real work
    assert _dump(fast) == _dump(simple)


def test_gate_mask_unknown_passes():
    pf = pd.DataFrame({"age": [np.nan, 10.0, 40.0, 90.0], "sex": ["", "MALE", "FEMALE", "MALE"]})
    tf = pd.DataFrame(
        {
            "status_ok": [True, True, False],
            "min_age": [18.0, np.nan, np.nan],
            "max_age": [75.0, np.nan, np.nan],
            "sex": ["ALL", "FEMALE", "ALL"],
        }
    )
    expected = np.array(
        [
            [True, True, False],  # age and sex unknown: only the closed trial is gated
            [False, False, False],  # 10 < 18; male vs female-only; closed
            [True, True, False],
            [False, False, False],  # 90 > 75; male; closed
        ]
    )
    assert (gate_mask(pf, tf) == expected).all()


def test_unknown_engine_is_refused(cohort):
    patients, parsed = cohort
    with pytest.raises(ValueError, match="unknown engine 'spark'"):
        match_cohort(patients[:1], parsed, load_pack(), load_vocab(), engine="spark")


@pytest.mark.dask
def test_dask_engine_equals_local_engine(cohort):
    pytest.importorskip("dask.distributed")
    patients, parsed = cohort
    config = RankConfig(statuses=None)
    local = match_cohort(patients, parsed, load_pack(), load_vocab(), config)
    from matcher.engine import match_dask

    distributed = match_dask(patients, parsed, config, partition_size=7, n_workers=2)
    assert [r.patient_id for r in distributed] == [p.id for p in patients]
    assert _dump(distributed) == _dump(local)


@pytest.mark.dask
def test_report_on_an_existing_scheduler_equals_the_local_report(tmp_path):
    """`report --engine dask --scheduler ADDRESS` (an already running cluster) writes the same
    matches as `--engine local`."""
    distributed = pytest.importorskip("dask.distributed")
    from click.testing import CliRunner

    from matcher.cli import cli

    patients = FIXTURES / "patients" / "coordinator_list.csv"
    trials = FIXTURES / "trials"
    common = ["--trials", str(trials), "--status", "any", "--as-of", "2026-06-01"]
    local = CliRunner().invoke(
        cli,
        [
            "--db",
            str(tmp_path / "a.sqlite"),
            "report",
            str(patients),
            "--out",
            str(tmp_path / "a"),
            *common,
        ],
    )
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        remote = CliRunner().invoke(
            cli,
            [
                "--db", str(tmp_path / "b.sqlite"), "report", str(patients), "--out", str(tmp_path / "b"),
                "--engine", "dask", "--scheduler", cluster.scheduler_address, *common,
            ],
        )  # fmt: skip
    assert (local.exit_code, remote.exit_code) == (0, 0), (local.output, remote.output)
    a = json.loads((tmp_path / "a" / "matches.json").read_text())
    b = json.loads((tmp_path / "b" / "matches.json").read_text())
    assert len(a) == 12
    assert a == b
