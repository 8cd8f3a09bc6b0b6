"""sync(): full, incremental, interrupted and resumed runs against recorded pages (responses)."""

from __future__ import annotations

import copy
import json
from types import SimpleNamespace
from urllib.parse import parse_qs, urlparse

import pytest

from matcher.ctgov import DEFAULT_BASE_URL, CtgovClient
from matcher.errors import ApiError
from matcher.records import record_nct_id
from matcher.store import Store
from matcher.sync import BASE_CONDITIONS, build_cond_expressions, default_conditions, sync

STUDIES = f"{DEFAULT_BASE_URL}/studies"
VERSION = f"{DEFAULT_BASE_URL}/version"
TS1 = "2026-11-20T09:00:05"
TS2 = "2026-11-21T09:00:07"


def load(fixtures_dir, name):
    return json.loads((fixtures_dir / "ctgov" / name).read_text(encoding="utf-8"))


def qs(url):
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def ids_of(page):
    return [record_nct_id(s) for s in page["studies"]]


@pytest.fixture
def pages(fixtures_dir):
    p1 = load(fixtures_dir, "response_10.json")
    p2 = load(fixtures_dir, "response_11.json")
    p3 = load(fixtures_dir, "response_4.json")
    del p3["nextPageToken"]
    return p1, p2, p3


@pytest.fixture
def st(tmp_path):
    with Store(tmp_path / "t.sqlite") as s:
        yield s


def client() -> CtgovClient:
    return CtgovClient(min_interval=0, max_retries=2, sleep=lambda s: None)


def all_ids(pages):
    return sorted(n for p in pages for n in ids_of(p))


def test_full_sync_three_pages(rsps, st, pages):
    rsps.get(VERSION, json={"apiVersion": "2.0.5", "dataTimestamp": TS1})
    for p in pages:
        rsps.get(STUDIES, json=p)
    seen = []
    res = sync(client(), st, conditions=["Leiomyosarcoma"], statuses={"ALL"}, progress=seen.append)
    assert (res.mode, res.resumed, res.since) == ("full", False, None)
    assert (res.pages, res.studies, res.added, res.updated, res.unchanged) == (3, 12, 12, 0, 0)
    assert res.data_timestamp == TS1
    assert res.requests == 4
    assert st.nct_ids() == all_ids(pages)
    assert [p.pages_done for p in seen] == [1, 2, 3]
    assert seen[0].total == 21
    first = qs(rsps.calls[1].request.url)
    assert first == {
        "format": "json",
        "query.cond": '"Leiomyosarcoma"',
        "fields": "ProtocolSection,DerivedSection,HasResults",
        "pageSize": "1000",
        "countTotal": "true",
    }
    run = st.last_sync_run()
    assert (run.status, run.pages, run.added, run.data_timestamp) == ("ok", 3, 12, TS1)
    assert st.data_timestamp() == TS1


def _interrupt_after_first_page(rsps, st, pages, how):
    rsps.get(VERSION, json={"apiVersion": "2.0.5", "dataTimestamp": TS1})
    rsps.get(STUDIES, json=pages[0])
    if how == "network":
        for _ in range(3):  # max_retries=2 -> 3 attempts
            rsps.get(STUDIES, status=503)
        with pytest.raises(ApiError, match="gave up after 3 attempts"):
            sync(client(), st, conditions=["Leiomyosarcoma"], statuses={"ALL"})
        return "failed"

    def stop(progress):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        sync(client(), st, conditions=["Leiomyosarcoma"], statuses={"ALL"}, progress=stop)
    return "interrupted"


@pytest.mark.parametrize("how", ["network", "ctrl-c"])
def test_interrupted_sync_resumes_from_saved_token(rsps, st, pages, how):
    status = _interrupt_after_first_page(rsps, st, pages, how)
    run = st.last_sync_run()
    assert run.status == status
    assert run.state["token"] == pages[0]["nextPageToken"]
    assert st.nct_ids() == sorted(ids_of(pages[0]))  # the first page is safely stored

    rsps.get(VERSION, json={"apiVersion": "2.0.5", "dataTimestamp": TS1})
    rsps.get(STUDIES, json=pages[1])
    rsps.get(STUDIES, json=pages[2])
    n_before = len(rsps.calls)
    res = sync(client(), st, conditions=["Leiomyosarcoma"], statuses={"ALL"})
    resumed_first = qs(rsps.calls[n_before + 1].request.url)
    assert resumed_first["pageToken"] == pages[0]["nextPageToken"]
    assert "countTotal" not in resumed_first
    assert res.resumed is True
    assert res.run_id == run.id
    # Nothing lost, nothing doubled.
    assert st.nct_ids() == all_ids(pages)
    assert (res.pages, res.added, res.updated, res.unchanged) == (3, 12, 0, 0)
    assert [r.status for r in st.sync_runs()] == ["ok"]


@pytest.mark.parametrize("why", ["data-refreshed", "token-refused"])
def test_resume_restarts_the_query_when_the_token_is_stale(rsps, st, pages, why):
    _interrupt_after_first_page(rsps, st, pages, "network")
    if why == "data-refreshed":
        # A new dataTimestamp: the saved token belongs to the old data; start the query again.
        rsps.get(VERSION, json={"apiVersion": "2.0.5", "dataTimestamp": TS2})
    else:
        rsps.get(VERSION, json={"apiVersion": "2.0.5", "dataTimestamp": TS1})
        rsps.get(STUDIES, status=400, body="Invalid pageToken", content_type="text/plain")
    for p in pages:
        rsps.get(STUDIES, json=p)
    res = sync(client(), st, conditions=["Leiomyosarcoma"], statuses={"ALL"})
    restart_calls = [qs(c.request.url) for c in rsps.calls if "/studies" in c.request.url]
    assert "pageToken" not in restart_calls[-3]
    assert st.nct_ids() == all_ids(pages)
    # Page 1 came twice: its studies count as unchanged the second time, never as new.
    assert (res.added, res.unchanged) == (12, 5)
    assert st.last_sync_run().status == "ok"


def test_incremental_sync_asks_only_for_updates_and_tracks_closures(rsps, st, pages):
    rsps.get(VERSION, json={"apiVersion": "2.0.5", "dataTimestamp": TS1})
    rsps.get(STUDIES, json=pages[2])
    first = sync(client(), st, conditions=["Leiomyosarcoma"], statuses={"RECRUITING", "TERMINATED"})
    # The full run filtered on statuses; NCT03934567 (ACTIVE_NOT_RECRUITING) was not wanted.
    assert (first.added, first.skipped) == (1, 1)
    assert st.nct_ids() == ["NCT00184067"]
    assert qs(rsps.calls[1].request.url)["filter.overallStatus"] == "RECRUITING,TERMINATED"

    closed = copy.deepcopy(pages[2]["studies"][0])
    closed["protocolSection"]["statusModule"]["overallStatus"] = "COMPLETED"
    closed["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2026-11-21"}
    new_open = copy.deepcopy(pages[2]["studies"][1])
    new_open["protocolSection"]["statusModule"]["overallStatus"] = "RECRUITING"
    new_closed = copy.deepcopy(pages[0]["studies"][0])  # COMPLETED and never stored
    rsps.get(VERSION, json={"apiVersion": "2.0.5", "dataTimestamp": TS2})
    rsps.get(STUDIES, json={"studies": [closed, new_open, new_closed]})
    res = sync(client(), st, conditions=["Leiomyosarcoma"], statuses={"RECRUITING", "TERMINATED"})
    sent = qs(rsps.calls[3].request.url)
    assert res.mode == "incremental"
    since = min(TS1[:10], st.sync_runs()[0].started_at[:10])
    assert res.since == since
    assert sent["filter.advanced"] == f"AREA[LastUpdatePostDate]RANGE[{since},MAX]"
    assert "filter.overallStatus" not in sent  # every status, so closures are seen
    assert (res.added, res.updated, res.skipped) == (1, 1, 1)
    assert st.get_meta("NCT00184067")["overall_status"] == "COMPLETED"
    assert st.nct_ids() == ["NCT00184067", "NCT03934567"]


def test_full_sync_rechecks_stored_open_trials_it_did_not_see(rsps, st, pages, fixtures_dir):
    gone = load(fixtures_dir, "NCT00184067.json")
    gone["protocolSection"]["statusModule"]["overallStatus"] = "RECRUITING"
    st.upsert_records([gone], "import: old.json")
    rsps.get(VERSION, json={"apiVersion": "2.0.5", "dataTimestamp": TS1})
    p = {"studies": [s for s in pages[0]["studies"]]}
    for s in p["studies"]:
        s["protocolSection"]["statusModule"]["overallStatus"] = "RECRUITING"
    rsps.get(STUDIES, json=p)
    now_closed = load(fixtures_dir, "NCT00184067.json")  # TERMINATED in the registry now
    rsps.get(STUDIES, json={"studies": [now_closed]})
    res = sync(client(), st, conditions=["Leiomyosarcoma"])
    recheck = qs(rsps.calls[-1].request.url)
    assert recheck["filter.ids"] == "NCT00184067"
    assert "query.cond" not in recheck
    assert res.rechecked == 1
    assert st.get_meta("NCT00184067")["overall_status"] == "TERMINATED"
    assert st.count({"RECRUITING"}) == 5


@pytest.mark.parametrize(
    ("terms", "max_chars", "expected"),
    [
        (
            ["sarcoma", "Soft tissue sarcoma", "Leiomyosarcoma"],
            900,
            ['"Leiomyosarcoma" OR "sarcoma"'],
        ),
        (["Sarcoma", "sarcoma", "SARCOMA"], 900, ['"Sarcoma"']),
        (
            [
                "Perivascular epithelioid cell tumor (PEComa)",
                "Malignant rhabdoid tumor (extrarenal)",
            ],
            900,
            ['"Malignant rhabdoid tumor" OR "PEComa" OR "Perivascular epithelioid cell tumor"'],
        ),
        (["Myxoid/round cell liposarcoma", "liposarcoma"], 900, ['"liposarcoma"']),
        (['Weird [x] "name"'], 900, ['"Weird x name"']),
        (["alpha", "beta", "gamma"], 18, ['"alpha" OR "beta"', '"gamma"']),
        (["()", "[]"], 900, []),
    ],
)
def test_build_cond_expressions(terms, max_chars, expected):
    assert build_cond_expressions(terms, max_chars) == expected


def _diag(name, category, family):
    return SimpleNamespace(name=name, category=category, family=family)


def test_default_conditions_are_soft_tissue_sarcoma_vocabulary_terms():
    vocab = SimpleNamespace(
        diagnoses={
            "lms": _diag("Leiomyosarcoma", "soft_tissue", "sarcoma"),
            "os": _diag("Osteosarcoma", "bone", "sarcoma"),
            "brca": _diag("Breast carcinoma", "other", "carcinoma"),
            "gist": _diag("Gastrointestinal stromal tumor", "soft_tissue", "sarcoma"),
        }
    )
    assert default_conditions(vocab) == [
        *BASE_CONDITIONS,
        "Leiomyosarcoma",
        "Gastrointestinal stromal tumor",
    ]


def test_default_conditions_from_the_real_vocabulary_fit_one_request():
    from matcher.vocab import load_vocab

    v = load_vocab()
    names = default_conditions()
    allowed = set(BASE_CONDITIONS) | {
        d.name
        for d in v.diagnoses.values()
        if d.category == "soft_tissue" and d.family == "sarcoma"
    }
    assert set(names) <= allowed
    assert len(names) > len(BASE_CONDITIONS)
    assert len(build_cond_expressions(names)) <= 2


# ---- CLI: trialmatch sync ----------------------------------------------------------------------


def run_cli(args):
    from click.testing import CliRunner

    from matcher.cli import cli

    return CliRunner().invoke(cli, args)


def test_cli_sync_summary(rsps, tmp_path, pages):
    db = tmp_path / "cli.sqlite"
    rsps.get(VERSION, json={"apiVersion": "2.0.5", "dataTimestamp": TS1})
    for p in pages:
        rsps.get(STUDIES, json=p)
    args = ["--db", str(db), "sync", "--condition", "Leiomyosarcoma", "--status", "all"]
    res = run_cli([*args, "--min-interval", "0"])
    assert res.exit_code == 0, res.output
    assert res.stdout.splitlines() == [
        "Sync ok (full): 3 pages, 12 studies: 12 added, 0 updated, 0 unchanged, "
        "0 skipped (status not wanted); 4 requests.",
        f"Data timestamp {TS1}; store {db}: 12 trials.",
    ]
    assert res.stderr == ""  # not a terminal: no progress bar
    info = run_cli(["--db", str(db), "store", "info", "--json"])
    data = json.loads(info.stdout)
    assert (data["trials"], data["data_timestamp"], data["last_sync"]["mode"]) == (12, TS1, "full")


def test_cli_sync_surfaces_the_400_text(rsps, tmp_path):
    rsps.get(VERSION, json={"apiVersion": "2.0.5", "dataTimestamp": TS1})
    rsps.get(
        STUDIES,
        status=400,
        body="Parameter 'fields' contains invalid field name: 'StudyDesign'",
        content_type="text/plain",
    )
    res = run_cli(["--db", str(tmp_path / "x.sqlite"), "sync", "--condition", "sarcoma"])
    assert res.exit_code == 1
    assert res.stderr == (
        "Error: ClinicalTrials.gov rejected the request (HTTP 400): Parameter 'fields' contains "
        "invalid field name: 'StudyDesign'. Nothing was fetched; the store is unchanged.\n"
    )


def test_cli_sync_rejects_unknown_status(tmp_path):
    res = run_cli(["--db", str(tmp_path / "x.sqlite"), "sync", "--status", "CLOSED"])
    assert res.exit_code == 2
    assert (
        "unknown status CLOSED; accepted: open (default), any, or a comma list of "
        "ACTIVE_NOT_RECRUITING" in res.stderr
    )


def test_sync_works_against_a_mirror_without_version(rsps, st, pages):
    rsps.get(VERSION, status=404, body="Not Found", content_type="text/plain")
    rsps.get(STUDIES, json=pages[2])
    res = sync(client(), st, conditions=["Leiomyosarcoma"], statuses={"ALL"})
    assert (res.added, res.data_timestamp) == (2, None)
    assert st.last_sync_run().status == "ok"


def test_sync_refuses_to_run_while_another_run_holds_the_lock(tmp_path):
    """A sync and a report (or two syncs) never write one store at the same time: exit 5."""
    from click.testing import CliRunner

    from matcher.cli import cli
    from matcher.lock import RunLock, lock_path

    db = tmp_path / "t.sqlite"
    with RunLock(lock_path(db), "report"):
        result = CliRunner().invoke(cli, ["--db", str(db), "sync"])
    assert result.exit_code == 5
    assert result.stderr.startswith(f"Error: {db}.lock: another run holds the lock (report, pid ")
