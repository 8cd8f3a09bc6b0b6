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


@pytest.fixture(scope="module")
def dask_cluster():
    distributed = pytest.importorskip("dask.distributed")
    with distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    ) as cluster:
        yield cluster


@pytest.mark.dask
def test_dask_briefs_equal_local_briefs(cohort, dask_cluster):
    """Workers ship compact rows; the briefs made from them here, and the rows explained
    here, equal the local engine's."""
    from matcher.engine import iter_match_briefs, iter_match_dask_briefs

    patients, parsed = cohort
    config = RankConfig(statuses=None)
    local = list(iter_match_briefs(patients, parsed, load_pack(), load_vocab(), config))
    local_top = [b.explain([k for k in range(min(3, len(b.trials)))]).to_dict() for b in local]
    remote, remote_top = [], []
    for b in iter_match_dask_briefs(
        patients, parsed, config, scheduler=dask_cluster.scheduler_address, partition_size=7
    ):
        remote.append(b)
        remote_top.append(b.explain([k for k in range(min(3, len(b.trials)))]).to_dict())
    assert [b.patient_id for b in remote] == [p.id for p in patients]
    assert sum(len(b.trials) for b in local) > 100
    for a, b in zip(local, remote, strict=True):
        assert (a.notes, a.unrelated) == (b.notes, b.unrelated)
        assert a.trials == b.trials
        assert [type(t.score) for t in a.trials] == [type(t.score) for t in b.trials]
    assert json.dumps(remote_top, sort_keys=True) == json.dumps(local_top, sort_keys=True)


DATA_FILES = ("matches.json", "matches.csv", "trials.json", "options.json")


@pytest.mark.dask
@pytest.mark.parametrize(
    ("patients", "trials", "explain"),
    [
        ("patients/coordinator_list.csv", "trials", "top"),
        ("demo/patients.csv", "demo/trials", "top"),
        ("demo/patients.csv", "demo/trials", "all"),
    ],
)
def test_report_on_an_existing_scheduler_equals_the_local_report(
    tmp_path, dask_cluster, patients, trials, explain
):
    """`report --engine dask --scheduler ADDRESS` (an already running cluster) writes the same
    data files as `--engine local`, byte for byte."""
    from click.testing import CliRunner

    from matcher.cli import cli

    common = ["--trials", str(FIXTURES / trials), "--status", "any", "--as-of", "2026-06-01",
              "--explain", explain, "--workers", "1"]  # fmt: skip

    def run(name, *extra):
        res = CliRunner().invoke(
            cli,
            ["--db", str(tmp_path / f"{name}.sqlite"), "report", str(FIXTURES / patients),
             "--out", str(tmp_path / name), *common, *extra],
        )  # fmt: skip
        assert res.exit_code == 0, res.output
        return {f: (tmp_path / name / f).read_bytes() for f in DATA_FILES}

    local = run("a")
    remote = run("b", "--engine", "dask", "--scheduler", dask_cluster.scheduler_address)
    assert len(json.loads(local["matches.json"])) >= 12
    for f in DATA_FILES:
        assert remote[f] == local[f], f
