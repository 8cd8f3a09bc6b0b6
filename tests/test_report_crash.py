"""A report run that dies leaves no trace that looks current: the previous report.html carries a
banner from the moment the next run starts, half-written ``.tmp`` files and ``running`` history
rows of a killed run are cleaned up by the next one."""

from __future__ import annotations

from datetime import date

import pytest

from matcher.rank import RankConfig
from matcher.report import STALE_MARK, ReportConfig, run_report
from matcher.store import Store

SBRT = "NCT02561559"


@pytest.fixture
def setup(tmp_path, fixtures_dir):
    rows = (fixtures_dir / "demo" / "patients.csv").read_text(encoding="utf-8").splitlines()
    patients = tmp_path / "list.csv"
    patients.write_text("\n".join(rows[:3]) + "\n", encoding="utf-8")
    trials = fixtures_dir / "trials" / "classic-xml-sarcoma" / f"{SBRT}.xml"
    cfg = ReportConfig(rank=RankConfig(), as_of=date(2025, 6, 1))
    out, db = tmp_path / "out", tmp_path / "r.sqlite"
    first = run_report(patients, out, db, [trials], cfg)
    assert first.exit_code == 0
    return patients, out, db, cfg


def test_a_run_that_dies_leaves_the_old_report_marked_stale(setup, monkeypatch):
    patients, out, db, cfg = setup
    before = (out / "report.html").read_text(encoding="utf-8")
    assert STALE_MARK not in before
    csv_before = (out / "matches.csv").read_bytes()

    import matcher.engine

    def die(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(matcher.engine, "iter_match_cohort", die)
    monkeypatch.setattr(matcher.engine, "iter_match_briefs", die)  # the local engine's stream
    with pytest.raises(KeyboardInterrupt):
        run_report(patients, out, db, [], cfg)
    page = (out / "report.html").read_text(encoding="utf-8")
    assert STALE_MARK in page
    assert "This report is from an earlier run. A new run started at " in page
    assert page.replace(page[page.index("<div " + STALE_MARK) : page.index("</div>") + 6], "") == (
        before
    )
    assert (out / "matches.csv").read_bytes() == csv_before
    assert sorted(p.name for p in out.glob("*.tmp")) == []

    monkeypatch.undo()
    again = run_report(patients, out, db, [], cfg)
    assert again.exit_code == 0
    assert STALE_MARK not in (out / "report.html").read_text(encoding="utf-8")


def test_the_next_run_closes_a_killed_runs_row_and_removes_its_tmp_files(setup):
    patients, out, db, cfg = setup
    with Store(db) as st:
        st.connection.execute(
            "INSERT INTO report_runs (started_at, patients_source, tool_version, settings, "
            "status) VALUES ('2025-06-01T01:00:00Z', 'x', '0', '{}', 'running')"
        )
        killed = st.connection.execute("SELECT MAX(id) FROM report_runs").fetchone()[0]
    (out / "report.html.tmp").write_text("<html>half", encoding="utf-8")
    (out / "matches.csv.tmp").write_text("id,", encoding="utf-8")
    result = run_report(patients, out, db, [], cfg)
    assert result.exit_code == 0
    with Store(db) as st:
        rows = st.connection.execute("SELECT id, status FROM report_runs ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [(1, "ok"), (killed, "failed"), (result.run_id, "ok")]
    assert list(out.glob("*.tmp")) == []
    # the killed run is not the baseline: changes are counted against run 1
    assert result.changes["previous_run_id"] == 1


def test_a_failing_worker_fails_the_run_and_leaves_nothing_behind(setup, monkeypatch):
    """With --workers 2, one worker failing fails the run: the previous files stay, and no
    part file, page or history part of the other worker is left."""
    patients, out, db, cfg = setup
    csv_before = (out / "matches.csv").read_bytes()
    import matcher.engine

    real = matcher.engine.iter_match_briefs  # the stream a worker writes

    def second_part_fails(patients, *args, **kwargs):
        if patients[0].id != "D01":
            raise ValueError("worker failed")
        return real(patients, *args, **kwargs)

    monkeypatch.setattr(matcher.engine, "iter_match_briefs", second_part_fails)
    from dataclasses import replace

    with pytest.raises(ValueError, match="worker failed"):
        run_report(patients, out, db, [], replace(cfg, workers=2))
    assert (out / "matches.csv").read_bytes() == csv_before
    assert sorted(p.name for p in out.rglob("*.tmp")) == []
    with Store(db) as st:
        statuses = [r[0] for r in st.connection.execute("SELECT status FROM report_runs")]
    assert statuses == ["ok", "failed"]
