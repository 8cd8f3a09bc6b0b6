"""How many processes a report run uses: ``--workers auto`` and explicit numbers."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from matcher import report
from matcher.cli import cli
from matcher.report import AUTO_MIN_PATIENTS_PER_WORKER as PER
from matcher.report import resolve_workers


@pytest.mark.parametrize(
    ("workers", "n_patients", "engine", "cores", "expected"),
    [
        ("auto", 1, "local", 2, 1),
        ("auto", PER - 1, "local", 2, 1),  # a short list: one process
        ("auto", 2 * PER - 1, "local", 2, 1),  # not enough for two
        ("auto", 2 * PER, "local", 2, 2),
        ("auto", 100 * PER, "local", 2, 2),  # never more than the cores
        ("auto", 100 * PER, "local", 1, 1),
        ("auto", 100 * PER, "local", 64, report.AUTO_MAX_WORKERS),
        ("auto", 100 * PER, "dask", 2, 1),  # Dask has its own workers
        (1, 100 * PER, "local", 2, 1),
        (3, 100 * PER, "local", 2, 3),  # as asked, even beyond the cores
        (4, 3, "local", 2, 3),  # at most one per patient
        (2, 1, "local", 2, 1),
    ],
)
def test_resolve_workers(monkeypatch, workers, n_patients, engine, cores, expected):
    monkeypatch.setattr(report, "usable_cores", lambda: cores)
    assert resolve_workers(workers, n_patients, engine) == expected


@pytest.mark.parametrize("bad", [0, -1, "two", 1.5, True, None])
def test_resolve_workers_rejects(bad):
    with pytest.raises(ValueError, match="workers: .* is not accepted; use a whole number"):
        resolve_workers(bad, 1000)


@pytest.mark.parametrize("bad", ["0", "-2", "many", "1.5"])
def test_cli_workers_rejects(bad, tmp_path):
    res = CliRunner().invoke(
        cli, ["report", str(tmp_path / "p.csv"), "--out", str(tmp_path), "--workers", bad]
    )
    assert res.exit_code == 2
    assert "is not accepted: use 'auto' or a whole number >= 1" in res.output


def test_usable_cores_is_positive():
    assert report.usable_cores() >= 1
