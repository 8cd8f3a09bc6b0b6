"""No closed trial lingers: an open trial the registry stops returning is marked and no longer
offered, incremental runs re-check stored open trials by id (weekly, or with ``--recheck``), and
``--full`` starts a fresh run instead of resuming an unfinished one."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest
from click.testing import CliRunner

from matcher.cli import cli
from matcher.ctgov import DEFAULT_BASE_URL, CtgovClient
from matcher.parsecache import parse_store
from matcher.store import MISSING_STATUS, RECHECK_META, Store
from matcher.sync import sync

STUDIES = f"{DEFAULT_BASE_URL}/studies"
VERSION = f"{DEFAULT_BASE_URL}/version"
TS = {"apiVersion": "2.0.5", "dataTimestamp": "2026-11-20T09:00:05"}
COND = ["Leiomyosarcoma"]
GONE = "NCT00184067"


def qs(url):
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def load(fixtures_dir, name):
    return json.loads((fixtures_dir / "ctgov" / name).read_text(encoding="utf-8"))


def client() -> CtgovClient:
    return CtgovClient(min_interval=0, max_retries=0, sleep=lambda s: None)


@pytest.fixture
def st(tmp_path, fixtures_dir):
    """A store holding one RECRUITING trial (GONE) and nothing else."""
    with Store(tmp_path / "t.sqlite") as s:
        rec = load(fixtures_dir, f"{GONE}.json")
        rec["protocolSection"]["statusModule"]["overallStatus"] = "RECRUITING"
        s.upsert_records([rec], "import: old.json")
        yield s


@pytest.fixture
def other(fixtures_dir):
    """A RECRUITING study the condition query returns (not GONE)."""
    page = load(fixtures_dir, "response_4.json")
    study = next(s for s in page["studies"] if s["protocolSection"]["identificationModule"][
        "nctId"] != GONE)  # fmt: skip
    study["protocolSection"]["statusModule"]["overallStatus"] = "RECRUITING"
    return study


def _full_run_without(rsps, st, other, **kw):
    rsps.get(VERSION, json=TS)
    rsps.get(STUDIES, json={"studies": [other]})  # the condition query: GONE not returned
    rsps.get(STUDIES, json={"studies": []})  # the re-check by id: not returned either
    return sync(client(), st, conditions=COND, full=True, **kw)


def test_an_open_trial_the_registry_no_longer_returns_is_marked_and_not_offered(rsps, st, other):
    assert st.nct_ids({"RECRUITING"}) == [GONE]
    res = _full_run_without(rsps, st, other)
    assert qs(rsps.calls[-1].request.url)["filter.ids"] == GONE
    assert (res.rechecked, res.missing) == (1, 1)
    other_id = other["protocolSection"]["identificationModule"]["nctId"]
    # no longer a candidate, in any of the store's views of open trials
    assert st.nct_ids({"RECRUITING"}) == [other_id]
    assert st.count({"RECRUITING"}) == 1
    assert [n for n, _, _ in st.iter_rows({"RECRUITING"})] == [other_id]
    parsed, _ = parse_store(st, {"RECRUITING"})
    assert [p.trial.nct_id for p in parsed] == [other_id]
    # kept, with why and since when
    (row,) = st.missing()
    assert (row["nct_id"], row["overall_status"]) == (GONE, "RECRUITING")
    assert row["missing_reason"].startswith(
        f"not returned by ClinicalTrials.gov when re-checked by NCT id (sync run {res.run_id}, "
    )
    assert st.get_meta(GONE)["missing_since"] == row["missing_since"]
    assert st.count_by_status() == {"RECRUITING": 1, MISSING_STATUS: 1}
    assert st.meta(RECHECK_META) is not None


def test_a_marked_trial_that_comes_back_is_offered_again(rsps, st, other, fixtures_dir):
    _full_run_without(rsps, st, other)
    back = load(fixtures_dir, f"{GONE}.json")
    back["protocolSection"]["statusModule"]["overallStatus"] = "RECRUITING"
    rsps.get(VERSION, json=TS)
    rsps.get(STUDIES, json={"studies": [other, back]})
    res = sync(client(), st, conditions=COND, full=True)
    assert (res.rechecked, res.missing) == (0, 0)
    assert st.missing() == []
    assert GONE in st.nct_ids({"RECRUITING"})


def test_an_incremental_run_rechecks_when_asked(rsps, st, other):
    _full_run_without(rsps, st, other)
    other_id = other["protocolSection"]["identificationModule"]["nctId"]
    rsps.get(VERSION, json=TS)
    rsps.get(STUDIES, json={"studies": []})  # nothing updated since the last run
    rsps.get(STUDIES, json={"studies": []})  # the re-check: neither open trial returned
    res = sync(client(), st, conditions=COND, recheck=True)
    assert res.mode == "incremental"
    assert qs(rsps.calls[-1].request.url)["filter.ids"] == f"{GONE},{other_id}"
    assert (res.rechecked, res.missing) == (2, 1)  # GONE was already marked
    assert st.nct_ids({"RECRUITING"}) == []


def test_an_incremental_run_rechecks_weekly_and_not_in_between(rsps, st, other):
    _full_run_without(rsps, st, other)
    rsps.get(VERSION, json=TS)
    rsps.get(STUDIES, json={"studies": []})
    res = sync(client(), st, conditions=COND)  # re-checked minutes ago: not due
    assert (res.mode, res.rechecked) == ("incremental", 0)
    st.set_meta(RECHECK_META, "2026-01-01T00:00:00Z")
    rsps.get(VERSION, json=TS)
    rsps.get(STUDIES, json={"studies": []})
    rsps.get(STUDIES, json={"studies": [other]})  # the weekly re-check
    res = sync(client(), st, conditions=COND)
    assert (res.mode, res.rechecked, res.missing) == ("incremental", 2, 0)
    assert st.meta(RECHECK_META) > "2026-01-01T00:00:00Z"


def test_a_failed_recheck_marks_nothing(rsps, st, other):
    rsps.get(VERSION, json=TS)
    rsps.get(STUDIES, json={"studies": [other]})
    rsps.get(STUDIES, status=404, body="not found")
    with pytest.raises(Exception, match="HTTP 404"):
        sync(client(), st, conditions=COND, full=True)
    assert st.missing() == []
    assert st.nct_ids({"RECRUITING"})[0] == GONE


def test_full_starts_fresh_instead_of_resuming(rsps, st, other, fixtures_dir):
    page = load(fixtures_dir, "response_10.json")  # has a nextPageToken

    def stop(progress):
        raise KeyboardInterrupt

    rsps.get(VERSION, json=TS)
    rsps.get(STUDIES, json=page)
    with pytest.raises(KeyboardInterrupt):
        sync(client(), st, conditions=COND, statuses={"ALL"}, progress=stop)
    unfinished = st.last_sync_run()
    assert (unfinished.status, unfinished.state["token"]) == ("interrupted", page["nextPageToken"])

    rsps.get(VERSION, json=TS)
    rsps.get(STUDIES, json={"studies": [other]})
    rsps.get(STUDIES, json={"studies": []})  # the re-check of open trials it did not see
    res = sync(client(), st, conditions=COND, statuses={"ALL"}, full=True)
    first = qs(rsps.calls[3].request.url)
    assert "pageToken" not in first and first["countTotal"] == "true"
    assert (res.resumed, res.mode) == (False, "full")
    assert res.run_id != unfinished.id
    assert [r.status for r in st.sync_runs()] == ["interrupted", "ok"]


def test_full_closes_a_run_left_running_by_a_crash(rsps, st, other):
    run_id = st.start_sync_run(
        {
            "conditions": ['"Leiomyosarcoma"'],
            "statuses": ["ENROLLING_BY_INVITATION", "NOT_YET_RECRUITING", "RECRUITING"],
        },  # fmt: skip
        "full",
        None,
        None,
        {"requests": [{"query.cond": "x"}], "index": 0, "token": "T"},
    )
    _full_run_without(rsps, st, other)
    old = st.sync_run(run_id)
    assert (old.status, old.error) == ("interrupted", "superseded by a --full run")


def test_cli_sync_recheck_says_what_it_found(rsps, tmp_path, st, other):
    rsps.get(VERSION, json=TS)
    rsps.get(STUDIES, json={"studies": [other]})
    rsps.get(STUDIES, json={"studies": []})
    args = ["--db", str(st.path), "sync", "--condition", COND[0], "--recheck"]
    res = CliRunner().invoke(cli, [*args, "--min-interval", "0"])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines()[1] == (
        "Re-checked 1 stored open trials by NCT id; 1 no longer returned by the registry "
        "(marked, no longer offered; see 'trialmatch store info')."
    )
    info = CliRunner().invoke(cli, ["--db", str(st.path), "store", "info"])
    assert f"  {GONE} (last known RECRUITING): not returned by ClinicalTrials.gov" in info.stdout


def test_the_report_says_why_a_marked_trial_is_gone(tmp_path, fixtures_dir):
    from datetime import date

    from matcher.rank import RankConfig
    from matcher.report import ReportConfig, run_report

    sbrt = "NCT02561559"  # classic XML, RECRUITING: D01 is a candidate
    db = tmp_path / "r.sqlite"
    patients = tmp_path / "list.csv"
    rows = (fixtures_dir / "demo" / "patients.csv").read_text(encoding="utf-8").splitlines()
    patients.write_text("\n".join(rows[:2]) + "\n", encoding="utf-8")  # the header and D01
    cfg = ReportConfig(rank=RankConfig(), as_of=date(2025, 6, 1))
    trials = fixtures_dir / "trials" / "classic-xml-sarcoma" / f"{sbrt}.xml"
    first = run_report(patients, tmp_path / "out1", db, [trials], cfg)
    assert first.n_trials == 1
    with Store(db) as st:
        st.mark_missing([sbrt], "not returned by ClinicalTrials.gov when re-checked by NCT id")
    second = run_report(patients, tmp_path / "out2", db, [], cfg)
    assert second.n_trials == 0
    (gone,) = second.changes["gone"]
    assert (gone["patient_id"], gone["nct_id"]) == ("D01", sbrt)
    assert gone["why"].startswith("trial no longer returned by ClinicalTrials.gov (since 20")
