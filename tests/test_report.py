"""The nightly report end to end: run history and changes, outputs, errors, exit codes, lock.

Trial records are real (fixtures/trials, fixtures/demo/trials); where a test needs a change
between two runs, it edits a copy in tmp_path. No test reaches the network: sockets are
disabled for the whole module.
"""

from __future__ import annotations

import copy
import csv
import json
import socket
from pathlib import Path

import pytest
from click.testing import CliRunner

from matcher import DISCLAIMER, __version__
from matcher.cli import cli
from matcher.exitcodes import EXIT_ALL_FAILED, EXIT_ERROR, EXIT_LOCKED, EXIT_OK, EXIT_PARTIAL
from matcher.patient import read_patients
from matcher.rank import RankConfig
from matcher.records import iter_records
from matcher.store import Store

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
DEMO_PATIENTS = FIX / "demo" / "patients.csv"

# The trials of the two-run scenario (all RECRUITING in their real records).
SBRT = "NCT02561559"  # fixtures/trials/classic-xml-sarcoma: SBRT for lung mets of STS, ECOG 0-2
IP001 = "NCT05688280"  # fixtures/trials/classic-xml-2023: IP-001 after ablation, ECOG 0-1
EBC129 = "NCT05701527"  # fixtures/demo/trials/classic-xml-2023: EBC-129, ECOG 0-2
MSLN = "NCT05690581"  # fixtures/demo/trials/classic-xml-2023: ECOG 0-1 (added in run 2)

TRIAL_FILES = {
    SBRT: FIX / "trials" / "classic-xml-sarcoma" / f"{SBRT}.xml",
    IP001: FIX / "trials" / "classic-xml-2023" / f"{IP001}.xml",
    EBC129: FIX / "demo" / "trials" / "classic-xml-2023" / f"{EBC129}.xml",
    MSLN: FIX / "demo" / "trials" / "classic-xml-2023" / f"{MSLN}.xml",
}

AS_OF = "2025-06-01"


@pytest.fixture(autouse=True)
def _no_network(no_network):
    """No test of this module may reach the network (the shared guard)."""


# ----------------------------------------------------------------------------- helpers


def _rep():
    import matcher.report

    return matcher.report


def run_report(*args, **kwargs):
    return _rep().run_report(*args, **kwargs)


def RunLock(path):  # noqa: N802 - stands for the class
    return _rep().RunLock(path)


def v2_record(nct: str) -> dict:
    """The real record of ``nct`` in the internal v2 shape (classic XML mapped by records.py)."""
    items = list(iter_records(TRIAL_FILES[nct]))
    assert [i.error for i in items] == [None]
    return copy.deepcopy(items[0].record)


def updated(
    record: dict, date: str, status: str | None = None, replace: tuple[str, str] | None = None
) -> dict:
    """A newer version of ``record``: last update ``date``, optionally a new status and a
    criteria text edit (``replace`` = (old, new), which must occur in the text)."""
    rec = copy.deepcopy(record)
    ps = rec["protocolSection"]
    ps["statusModule"]["lastUpdatePostDateStruct"] = {"date": date, "type": "ACTUAL"}
    if status:
        ps["statusModule"]["overallStatus"] = status
    if replace:
        text = ps["eligibilityModule"]["eligibilityCriteria"]
        assert replace[0] in text
        ps["eligibilityModule"]["eligibilityCriteria"] = text.replace(*replace)
    return rec


def write_trials(folder: Path, records: list[dict]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for rec in records:
        nct = rec["protocolSection"]["identificationModule"]["nctId"]
        (folder / f"{nct}.json").write_text(json.dumps(rec), encoding="utf-8")
    return folder


def write_patients(path: Path, ids: list[str], edits: dict | None = None) -> Path:
    """A CSV with the demo list's rows for ``ids``; ``edits`` = {id: {column: value}}."""
    with open(DEMO_PATIENTS, newline="", encoding="utf-8") as fh:
        rows = {r["id"]: r for r in csv.DictReader(fh)}
    header = list(next(iter(rows.values())).keys())
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, header)
        w.writeheader()
        for pid in ids:
            w.writerow({**rows[pid], **(edits or {}).get(pid, {})})
    return path


def config():
    """Default statuses (RECRUITING, NOT_YET_RECRUITING), ages at AS_OF."""
    from datetime import date

    return _rep().ReportConfig(rank=RankConfig(), as_of=date.fromisoformat(AS_OF))


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def run_cli(args: list[str]):
    return CliRunner().invoke(cli, args, catch_exceptions=False)


# ----------------------------------------------------------------------------- two runs


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Run 1, then change trials and one patient, then run 2 (default statuses)."""
    tmp = tmp_path_factory.mktemp("two_runs")
    db = tmp / "trials.sqlite"
    base = {n: v2_record(n) for n in (SBRT, IP001, EBC129)}
    ids = ["D01", "D02", "D04"]
    mp = pytest.MonkeyPatch()
    mp.setattr(socket.socket, "connect", lambda *a: pytest.fail("network"))
    try:
        r1 = run_report(
            write_patients(tmp / "list1.csv", ids),
            tmp / "out1",
            db,
            [write_trials(tmp / "trials1", list(base.values()))],
            config(),
        )
        changed = [
            # closed: no longer admitted by the default statuses
            updated(base[SBRT], "2025-05-20", status="COMPLETED"),
            # criteria changed: the ECOG limit goes from 0-1 to 0-2 (D02 has ECOG 2)
            updated(
                base[IP001],
                "2025-05-21",
                replace=("ECOG performance status 0-1", "ECOG performance status 0-2"),
            ),
            base[EBC129],  # unchanged
            v2_record(MSLN),  # new in the store
        ]
        # the patients file is rewritten in place (a nightly list is one path)
        list2 = write_patients(tmp / "list1.csv", ids, {"D04": {"ecog": "3"}})
        r2 = run_report(list2, tmp / "out2", db, [write_trials(tmp / "trials2", changed)], config())
    finally:
        mp.undo()
    return tmp, r1, r2


def test_first_run_has_nothing_to_compare(two_runs):
    _, r1, _ = two_runs
    assert r1.changes == {
        "list_name": "list1",
        "previous_run": None,
        "previous_run_id": None,
        "new": [],
        "gone": [],
        "status_changes": [],
    }
    assert r1.exit_code == EXIT_OK
    assert (r1.n_patients_ok, r1.n_failed, r1.n_trials) == (3, 0, 3)


def test_new_matches_say_why(two_runs):
    _, _, r2 = two_runs
    got = [
        (c["patient_id"], c["nct_id"], c["verdict"], c["was"], c["why"]) for c in r2.changes["new"]
    ]
    assert got == [
        ("D01", MSLN, "needs_review", None, "trial new in the store"),
        (
            "D02",
            IP001,
            "needs_review",
            "excluded",
            "trial eligibility criteria changed (record updated 2025-05-21)",
        ),
    ]


@pytest.mark.parametrize(
    ("patient", "nct", "why"),
    [
        # the trial closed: not admitted by the default statuses any more
        (
            "D01",
            SBRT,
            "trial closed: status now COMPLETED; "
            "trial record updated 2025-05-20 (eligibility criteria unchanged)",
        ),
        (
            "D02",
            SBRT,
            "trial closed: status now COMPLETED; "
            "trial record updated 2025-05-20 (eligibility criteria unchanged)",
        ),
        (
            "D04",
            SBRT,
            "trial closed: status now COMPLETED; "
            "trial record updated 2025-05-20 (eligibility criteria unchanged); "
            "patient record changed",
        ),
        # criteria changed AND the patient changed: both named, and the new exclusion quoted
        (
            "D04",
            IP001,
            "trial eligibility criteria changed (record updated 2025-05-21); "
            "patient record changed; now excluded: inclusion: ECOG 3 outside 0–2",
        ),
        # only the patient changed (ECOG 0 -> 3)
        ("D04", EBC129, "patient record changed; now excluded: inclusion: ECOG 3 outside 0–2"),
    ],
)
def test_gone_matches_say_why(two_runs, patient, nct, why):
    _, _, r2 = two_runs
    gone = {(c["patient_id"], c["nct_id"]): c for c in r2.changes["gone"]}
    assert gone[(patient, nct)]["why"] == why
    assert gone[(patient, nct)]["was"] == "needs_review"


def test_gone_list_is_exactly_the_expected_pairs(two_runs):
    _, _, r2 = two_runs
    assert sorted((c["patient_id"], c["nct_id"], c["now"]) for c in r2.changes["gone"]) == [
        ("D01", SBRT, "not listed"),
        ("D02", SBRT, "not listed"),
        ("D04", SBRT, "not listed"),
        ("D04", IP001, "excluded"),
        ("D04", EBC129, "excluded"),
    ]


def _changes_from_history(db: Path, result, added=frozenset()) -> dict:
    """``compute_changes`` over the stored history: the reference the streamed tracker meets."""
    data = json.loads((result.out_dir / "matches.json").read_text(encoding="utf-8"))
    current = {
        (p["patient_id"], t["nct_id"]): {"excluded_by": t["excluded_by"]}
        for p in data
        for t in p["trials"]
    }
    with Store(db) as st:
        return _rep().compute_changes(st, result.run_id, RankConfig().statuses, current, added)


def test_streamed_changes_equal_compute_changes(two_runs):
    tmp, _, r2 = two_runs
    assert r2.changes["new"] and r2.changes["gone"] and r2.changes["status_changes"]
    assert r2.changes == _changes_from_history(tmp / "trials.sqlite", r2, added={MSLN})


def test_streamed_changes_equal_compute_changes_when_a_patient_leaves(tmp_path):
    db, trials = tmp_path / "db.sqlite", [str(TRIAL_FILES[SBRT]), str(TRIAL_FILES[EBC129])]
    run_report(
        write_patients(tmp_path / "a.csv", ["D01", "D02"]), tmp_path / "o1", db, trials, config()
    )
    r2 = run_report(write_patients(tmp_path / "a.csv", ["D02"]), tmp_path / "o2", db, [], config())
    assert [c["patient_id"] for c in r2.changes["gone"]] == ["D01", "D01"]
    assert r2.changes == _changes_from_history(db, r2)


def test_status_changes(two_runs):
    _, _, r2 = two_runs
    assert r2.changes["status_changes"] == [
        {
            "nct_id": SBRT,
            "title": "SBRT Treatment for Lung Metastasis From Soft Tissue Sarcoma",
            "before": "RECRUITING",
            "after": "COMPLETED",
        }
    ]


def test_changes_json_matches_the_result(two_runs):
    tmp, _, r2 = two_runs
    assert json.loads((tmp / "out2" / "changes.json").read_text(encoding="utf-8")) == r2.changes


def test_matches_csv_marks_new_matches(two_runs):
    tmp, _, _ = two_runs
    rows = read_csv(tmp / "out2" / "matches.csv")
    assert list(rows[0].keys()) == _rep().MATCH_CSV_HEADER
    marked = {(r["patient_id"], r["nct_id"]): (r["new_since_last_run"], r["why_new"]) for r in rows}
    assert {k: v for k, v in marked.items() if v[0]} == {
        ("D01", MSLN): ("yes", "trial new in the store"),
        ("D02", IP001): ("yes", "trial eligibility criteria changed (record updated 2025-05-21)"),
    }
    # every other row says nothing
    assert all(v == ("", "") for k, v in marked.items() if k not in {("D01", MSLN), ("D02", IP001)})
    assert marked[("D01", EBC129)] == ("", "")


def test_matches_json_marks_new_matches(two_runs):
    tmp, _, _ = two_runs
    data = json.loads((tmp / "out2" / "matches.json").read_text(encoding="utf-8"))
    new = sorted((p["patient_id"], t["nct_id"]) for p in data for t in p["trials"] if t["is_new"])
    assert new == [("D01", MSLN), ("D02", IP001)]
    assert [p["patient_id"] for p in data] == ["D01", "D02", "D04"]


def test_html_shows_changes_and_marks_new_rows(two_runs):
    tmp, _, _ = two_runs
    page = (tmp / "out2" / "report.html").read_text(encoding="utf-8")
    assert "<h3>New matches (2)</h3>" in page
    assert "<h3>Matches that disappeared (5)</h3>" in page
    assert "<h3>Trial status changes (1)</h3>" in page
    assert (
        'aria-label="What changed since the last run: new matches: 2; matches gone: 5; '
        'status changes: 1; patients with news: 3"'
    ) in page
    assert "trial closed: status now completed" in page
    assert '<td data-label="Now">Completed</td>' in page
    assert "patient record changed; now excluded: inclusion: ECOG 3 outside 0–2" in page
    # the changes link to the patients' pages
    assert '<a href="patients/D01.html">D01</a>' in page
    # the new trial's row in D01's page carries the NEW badge and the highlight
    d01 = (tmp / "out2" / "patients" / "D01.html").read_text(encoding="utf-8")
    at = d01.index(f">{MSLN}</a>")
    row = d01[d01.rindex("<tr", 0, at) : at + 200]
    assert row.startswith('<tr class="new" data-f=1')
    assert "<span class=badge>NEW</span>" in row
    # D01 has exactly one new trial; D04 none
    assert d01.count("<span class=badge>NEW</span>") == 1
    d04 = (tmp / "out2" / "patients" / "D04.html").read_text(encoding="utf-8")
    assert "<span class=badge>NEW</span>" not in d04
    assert "No longer on the list since the last run (3)" in d04


def test_run_history_rows(two_runs):
    tmp, r1, r2 = two_runs
    with Store(tmp / "trials.sqlite") as st:
        runs = [dict(r) for r in st.connection.execute("SELECT * FROM report_runs ORDER BY id")]
        pairs = st.connection.execute(
            "SELECT COUNT(*), COUNT(criteria_hash) FROM report_matches WHERE run_id=?", (r2.run_id,)
        ).fetchone()
    assert [(r["id"], r["status"], r["n_patients"], r["n_failed"]) for r in runs] == [
        (r1.run_id, "ok", 3, 0),
        (r2.run_id, "ok", 3, 0),
    ]
    assert runs[0]["patients_source"] == runs[1]["patients_source"]
    assert json.loads(runs[1]["settings"]) == {
        "statuses": ["NOT_YET_RECRUITING", "RECRUITING"],
        "max_miles": None,
        "engine": "local",
        "as_of": AS_OF,
    }
    assert pairs[0] > 0 and pairs[0] == pairs[1]  # every pair recorded with its criteria hash


# ----------------------------------------------------------------------------- hashes


def test_patient_hash_ignores_source_and_age_drift_from_birth_date(tmp_path):
    from datetime import date

    src = tmp_path / "p.json"
    src.write_text(
        json.dumps([{"id": "A", "birth_date": "1970-03-04", "diagnosis": "leiomyosarcoma"}])
    )
    a = read_patients(src, as_of=date(2025, 1, 1)).patients[0]
    b = read_patients(src, as_of=date(2025, 6, 1)).patients[0]
    assert a.age != b.age
    assert _rep().patient_hash(a) == _rep().patient_hash(b)
    src.write_text(
        json.dumps(
            [{"id": "A", "birth_date": "1970-03-04", "diagnosis": "leiomyosarcoma", "ecog": 1}]
        )
    )
    c = read_patients(src, as_of=date(2025, 6, 1)).patients[0]
    assert _rep().patient_hash(c) != _rep().patient_hash(b)


def test_criteria_hash_sees_only_the_eligibility_module():
    rec = v2_record(IP001)
    assert _rep().criteria_hash(
        updated(rec, "2030-01-01", status="COMPLETED")
    ) == _rep().criteria_hash(rec)
    edited = updated(rec, "2030-01-01", replace=("ECOG performance status 0-1", "ECOG 0"))
    assert _rep().criteria_hash(edited) != _rep().criteria_hash(rec)


# ----------------------------------------------------------------------------- injection, escaping


def test_formula_injection_neutralised_in_matches_csv(tmp_path):
    # a new version (parsed trials are cached per NCT id and last-update date)
    rec = updated(v2_record(SBRT), "2025-04-01")
    rec["protocolSection"]["identificationModule"]["briefTitle"] = '=HYPERLINK("http://x","y")'
    res = run_report(
        write_patients(tmp_path / "p.csv", ["D01"]),
        tmp_path / "out",
        tmp_path / "db.sqlite",
        [write_trials(tmp_path / "trials", [rec])],
        config(),
    )
    rows = read_csv(res.out_dir / "matches.csv")
    assert [(r["nct_id"], r["title"]) for r in rows] == [(SBRT, '\'=HYPERLINK("http://x","y")')]
    # no cell of the file starts with a formula character
    for r in rows:
        for v in r.values():
            assert not v.startswith(("=", "+", "-", "@", "\t", "\r")), v
    # the JSON keeps the value as it is (it is data, not a spreadsheet)
    data = json.loads((res.out_dir / "matches.json").read_text(encoding="utf-8"))
    assert data[0]["trials"][0]["title"] == '=HYPERLINK("http://x","y")'


def test_markup_in_a_trial_title_is_escaped_in_html(tmp_path):
    rec = updated(v2_record(SBRT), "2025-04-02")
    evil = '<script>alert("x")</script><img src=x onerror=alert(1)> SBRT & co'
    rec["protocolSection"]["identificationModule"]["briefTitle"] = evil
    res = run_report(
        write_patients(tmp_path / "p.csv", ["D01"]),
        tmp_path / "out",
        tmp_path / "db.sqlite",
        [write_trials(tmp_path / "trials", [rec])],
        config(),
    )
    page = (res.out_dir / "report.html").read_text(encoding="utf-8")
    assert "<script>alert" not in page
    assert "<img" not in page
    assert (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&lt;img src=x onerror=alert(1)&gt;"
        " SBRT &amp; co" in page
    )
    # the page's own script is the only one, and nothing is loaded from outside
    assert page.count("<script>") == 1
    for external in ("<link", "src=", "@import", "url("):
        assert external not in page.replace("src=x onerror", "")


# ----------------------------------------------------------------------------- patients that fail


def test_one_bad_patient_cli_exit_3_and_errors_csv(tmp_path):
    src = FIX / "patients" / "list_with_bad_row.csv"
    out = tmp_path / "out"
    res = run_cli(
        [
            "--db",
            str(tmp_path / "db.sqlite"),
            "report",
            str(src),
            "--trials",
            str(TRIAL_FILES[SBRT]),
            "--out",
            str(out),
        ]
    )
    assert res.exit_code == EXIT_PARTIAL
    rows = read_csv(out / "errors.csv")
    assert list(rows[0].keys()) == _rep().ERRORS_CSV_HEADER
    assert rows == [
        {
            "kind": "patient",
            "file": str(src),
            "location": "line 2",
            "patient_id": "D17",
            "field": "ecog",
            "value": "7",
            "error": "ECOG '7' is out of range (accepted: 0-4)",
        }
    ]
    assert "1 patient(s) failed: see" in res.stderr
    # the good patients are all in the outputs
    matched = json.loads((out / "matches.json").read_text(encoding="utf-8"))
    assert [p["patient_id"] for p in matched] == ["D01", "D02", "D03"]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<h2 id=errors>Could not be processed</h2>" in page
    assert "line 2" in page and "D17" in page


@pytest.mark.parametrize(
    ("rows", "code", "n_errors"),
    [
        (["D01,58,F,leiomyosarcoma,IV,lung,,1", "D02,70,M,ups,IV,lung,,2"], EXIT_OK, 0),
        (
            ["D01,58,F,leiomyosarcoma,IV,lung,,9", "D02,70,M,leiomyosarcoma,IV,lung,,2"],
            EXIT_PARTIAL,
            1,
        ),
        (
            ["D01,58,F,leiomyosarcoma,IV,lung,,9", "D02,270,M,leiomyosarcoma,IV,lung,,2"],
            EXIT_ALL_FAILED,
            2,
        ),
    ],
    ids=["all-good", "one-bad", "all-bad"],
)
def test_exit_codes(tmp_path, rows, code, n_errors):
    src = tmp_path / "list.csv"
    src.write_text(
        "id,age,sex,diagnosis,stage,metastatic_sites,lung_metastases_count,ecog\n"
        + "\n".join(rows)
        + "\n",
        encoding="utf-8",
    )
    out = tmp_path / "out"
    res = run_cli(
        [
            "--db",
            str(tmp_path / "db.sqlite"),
            "report",
            str(src),
            "--trials",
            str(TRIAL_FILES[SBRT]),
            "--out",
            str(out),
        ]
    )
    assert res.exit_code == code, res.output
    assert len(read_csv(out / "errors.csv")) == n_errors
    for name in ("report.html", "matches.csv", "matches.json", "options.json", "errors.csv"):
        assert (out / name).is_file()
    with Store(tmp_path / "db.sqlite") as st:
        status = st.connection.execute("SELECT status FROM report_runs").fetchone()[0]
    assert status == {EXIT_OK: "ok", EXIT_PARTIAL: "partial", EXIT_ALL_FAILED: "failed"}[code]


def test_unreadable_patient_file_is_a_failed_run_with_a_report(tmp_path):
    """Exit 4, the reason on stderr, and a report that says so (never yesterday's page)."""
    src = tmp_path / "broken.json"
    src.write_text('[{"id": "A",', encoding="utf-8")
    out = tmp_path / "o"
    out.mkdir()
    (out / "report.html").write_text("yesterday", encoding="utf-8")
    res = run_cli(["--db", str(tmp_path / "db.sqlite"), "report", str(src), "--out", str(out)])
    assert res.exit_code == EXIT_ALL_FAILED
    assert res.stderr.startswith(f"error: {src}")
    assert "Traceback" not in res.output
    rows = read_csv(out / "errors.csv")
    assert [(r["kind"], r["file"], r["patient_id"]) for r in rows] == [
        ("patient list", str(src), "")
    ]
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "yesterday" not in page
    assert "Could not be processed" in page and "broken.json" in page
    with Store(tmp_path / "db.sqlite") as st:
        assert st.connection.execute("SELECT status FROM report_runs").fetchall()[0][0] == "failed"


def test_another_list_on_the_same_store_has_its_own_history(tmp_path):
    db, trials = tmp_path / "db.sqlite", [str(TRIAL_FILES[SBRT])]
    r1 = run_report(
        write_patients(tmp_path / "a.csv", ["D01"]), tmp_path / "o1", db, trials, config()
    )
    r2 = run_report(
        write_patients(tmp_path / "b.csv", ["D02"]), tmp_path / "o2", db, trials, config()
    )
    assert r2.changes["previous_run"] is None  # b.csv's first run: not compared with a.csv
    r3 = run_report(
        write_patients(tmp_path / "a.csv", ["D01"]), tmp_path / "o3", db, trials, config()
    )
    assert r3.changes["previous_run_id"] == r1.run_id
    assert (r3.changes["new"], r3.changes["gone"], r3.changes["status_changes"]) == ([], [], [])


def test_a_failed_run_is_not_the_next_baseline(tmp_path):
    """Run 1 ok; run 2 fails for every patient; run 3 compares with run 1, not run 2."""
    db, trials = tmp_path / "db.sqlite", [str(TRIAL_FILES[SBRT])]
    good = write_patients(tmp_path / "list.csv", ["D01"])
    r1 = run_report(good, tmp_path / "o1", db, trials, config())
    bad = tmp_path / "list.csv"
    text = good.read_text(encoding="utf-8")
    bad.write_text(text.replace("D01,58,", "D01,580,"), encoding="utf-8")
    r2 = run_report(bad, tmp_path / "o2", db, trials, config())
    assert (r2.exit_code, r2.changes["previous_run_id"]) == (EXIT_ALL_FAILED, r1.run_id)
    good.write_text(text, encoding="utf-8")
    r3 = run_report(good, tmp_path / "o3", db, trials, config())
    assert r3.changes["previous_run_id"] == r1.run_id
    assert (r3.changes["new"], r3.changes["gone"]) == ([], [])


# ----------------------------------------------------------------------------- lock


def test_lock_contention_exit_5(tmp_path):
    db = tmp_path / "db.sqlite"
    args = ["--db", str(db), "report", str(DEMO_PATIENTS), "--out", str(tmp_path / "o")]
    with RunLock(Path(str(db) + ".lock")):
        res = run_cli(args)
    assert res.exit_code == EXIT_LOCKED
    assert res.stderr.startswith(f"Error: {db}.lock: another run holds the lock (report, pid ")
    assert "wait for it to finish" in res.stderr
    assert not (tmp_path / "o" / "report.html").exists()


def test_lock_is_released_after_a_run(tmp_path):
    db = tmp_path / "db.sqlite"
    res = run_cli(
        [
            "--db",
            str(db),
            "report",
            str(write_patients(tmp_path / "p.csv", ["D01"])),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert res.exit_code == EXIT_OK
    with RunLock(Path(str(db) + ".lock")) as lock:  # would raise LockError if still held
        assert lock.path.read_text().startswith("report, pid ")


# ----------------------------------------------------------------------------- stamps


def test_stamps_in_html_and_run_row(tmp_path):
    db = tmp_path / "db.sqlite"
    with Store(db) as st:  # a sync run recorded its API dataTimestamp
        rid = st.start_sync_run(
            {"conditions": ["sarcoma"]}, "full", None, "2025-05-30T09:00:00", {}
        )
        st.finish_sync_run(rid, "ok")
    res = run_report(
        write_patients(tmp_path / "p.csv", ["D01"]),
        tmp_path / "out",
        db,
        [str(TRIAL_FILES[SBRT])],
        config(),
    )
    from matcher.knowledge import load_pack

    pack_version = load_pack().version
    with Store(db) as st:
        row = dict(st.connection.execute("SELECT * FROM report_runs").fetchone())
    assert (row["tool_version"], row["pack_version"], row["data_timestamp"]) == (
        __version__,
        pack_version,
        "2025-05-30T09:00:00",
    )
    assert row["newest_record"] == "2019-12-19"
    assert row["started_at"] <= row["finished_at"]
    assert row["started_at"].endswith("Z") and len(row["started_at"]) == 20
    page = (res.out_dir / "report.html").read_text(encoding="utf-8")
    for label, value in [
        ("Tool version", __version__),
        ("Knowledge pack version", pack_version),
        ("Registry data timestamp", "2025-05-30T09:00:00"),
        ("Newest trial record update", "2019-12-19"),
        ("Started (UTC)", row["started_at"]),
        ("Finished (UTC)", row["finished_at"]),
        ("Ages computed as of", AS_OF),
        ("Statuses admitted", "NOT_YET_RECRUITING, RECRUITING"),
    ]:
        assert f"<dt>{label}</dt><dd><code>{value}</code></dd>" in page
    assert DISCLAIMER in page


# ----------------------------------------------------------------------------- demo, quiet


def test_readme_demo_command_runs_offline(tmp_path, monkeypatch):
    """The README's main command (with --db/--out moved to tmp_path) exits 0, writes every file."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    block = readme.split("```sh\n", 1)[1].split("\n```", 1)[0]
    cmd = block.split("&& trialmatch ", 1)[1].split()
    assert cmd[:2] == ["--db", "demo-report/trials.sqlite"]
    assert cmd[-2:] == ["--out", "demo-report"]
    args = ["--db", str(tmp_path / "trials.sqlite"), *cmd[2:-2], "--out", str(tmp_path / "demo")]
    monkeypatch.chdir(ROOT)  # the command's relative paths are from the repository root
    res = run_cli(args)
    assert res.exit_code == EXIT_OK, res.output
    assert res.stderr == ""  # not a terminal: nothing on stderr when all is well
    assert res.stdout.startswith("16 patients matched, 0 failed, ")
    names = sorted(p.name for p in (tmp_path / "demo").iterdir())
    assert names == [
        "changes.json",
        "errors.csv",
        "matches.csv",
        "matches.json",
        "options.json",
        "patients",
        "report.html",
        "trials.json",
    ]
    pages = sorted(p.name for p in (tmp_path / "demo" / "patients").iterdir())
    assert pages == [f"D{i:02d}.html" for i in range(1, 17)]
    assert read_csv(tmp_path / "demo" / "errors.csv") == []
    data = json.loads((tmp_path / "demo" / "matches.json").read_text(encoding="utf-8"))
    assert len(data) == 16
    opts = json.loads((tmp_path / "demo" / "options.json").read_text(encoding="utf-8"))
    assert [o["patient_id"] for o in opts] == [f"D{i:02d}" for i in range(1, 17)]


@pytest.mark.parametrize(
    "statuses, explain",
    [(None, "all"), (RankConfig().statuses, "all"), (None, "top"), (RankConfig().statuses, "top")],
    ids=["any-all", "default-all", "any-top", "default-top"],
)
def test_report_matches_equal_the_one_patient_path(tmp_path, statuses, explain):
    """Every row the streamed report writes (read back with its per-trial lines) is the
    ``match --json`` row of ``rank_trials`` for that patient, key for key; with
    ``explain="top"`` the rows it does not explain are that row made compact."""
    from datetime import date

    from matcher.digest import compact_row
    from matcher.engine import parse_records
    from matcher.knowledge import load_pack
    from matcher.rank import rank_trials
    from matcher.vocab import load_vocab

    as_of = date.fromisoformat(AS_OF)
    rank = RankConfig(statuses=statuses)
    cfg = _rep().ReportConfig(rank=rank, as_of=as_of, explain=explain)
    res = run_report(
        DEMO_PATIENTS, tmp_path / "o", tmp_path / "db.sqlite", [FIX / "demo" / "trials"], cfg
    )
    assert res.exit_code == EXIT_OK
    got = _rep().read_matches(res.out_dir)
    records = [i.record for i in iter_records(FIX / "demo" / "trials") if i.error is None]
    parsed = parse_records(records)
    if statuses is not None:
        parsed = [pt for pt in parsed if pt.trial.status in statuses]
    pack, vocab = load_pack(), load_vocab()
    patients = read_patients(DEMO_PATIENTS, as_of=as_of).patients
    want = [rank_trials(p, parsed, pack, vocab, rank).to_dict() for p in patients]
    assert sum(len(w["trials"]) for w in want) > 50  # the comparison covers real work
    assert any(t["to_review"] for w in want for t in w["trials"])
    from matcher.review import UNDECIDED

    extra = {"is_new", "to_review_count", "explained", *UNDECIDED}  # the report's own keys
    n_compact = 0
    for g, w in zip(got, want, strict=True):
        assert g["patient_id"] == w["patient_id"]
        assert len(g["trials"]) == len(w["trials"])
        for t, wt in zip(g["trials"], w["trials"], strict=True):
            if t.get("explained") is False:
                n_compact += 1
                assert t["to_review"] == wt["to_review"]  # the trial's lines, from trials.json
                wt = {k: v for k, v in compact_row(wt).items() if k != "to_review_count"}
                wt["to_review"] = t["to_review"]
            assert {k: v for k, v in t.items() if k not in extra} == {
                k: v for k, v in wt.items() if k not in extra
            }
    assert (n_compact > 0) == (explain == "top")


def test_rows_listed_compact_are_the_full_rows_made_compact(tmp_path, monkeypatch):
    """The report builds in full only the rows a page shows first (``Briefs``); every other
    row comes straight from the columnar arrays and the verdict objects. The files equal
    those written from every row's full suggestion (``rank.judge``, then ``compact_row``),
    byte for byte: a first run, a run with changes, and one after coordinator decisions
    (a folded pair among the first trials, a page seen) with a shorter ``top``."""
    import re
    from datetime import date

    import matcher.engine as engine
    from matcher import review

    briefs = engine.iter_match_briefs
    explained = [0]

    def counted(*args, **kwargs):  # the report's stream, counting the rows built in full
        for m in briefs(*args, **kwargs):
            explain = m.explain

            def explain_counted(only=None, explain=explain):
                got = explain(only)
                explained[0] += len(got.trials)
                return got

            m.explain = explain_counted
            yield m

    def full(*args, **kwargs):  # what the report streamed before: every row explained
        for m in briefs(*args, **kwargs):
            yield m.explain()

    def run(name, stream, ids, edits, top):
        cfg = _rep().ReportConfig(
            rank=RankConfig(statuses=None),
            as_of=date.fromisoformat(AS_OF),
            workers=1,
            list_name="clinic",
            top=top,
        )
        patients = write_patients(tmp_path / f"{name}-{top}.csv", ids, edits)
        monkeypatch.setattr(engine, "iter_match_briefs", stream)
        try:
            return run_report(
                patients, tmp_path / f"o-{name}", tmp_path / f"{name}.sqlite",
                [FIX / "demo" / "trials"], cfg,
            )  # fmt: skip
        finally:
            monkeypatch.setattr(engine, "iter_match_briefs", briefs)

    def untimed(text: str) -> str:
        return re.sub(r"\d{4}-\d{2}-\d{2}[T ][0-9:.]+(?:Z|[+-]\d{2}:?\d{2})?", "T", text)

    monkeypatch.setattr(review, "now_iso", lambda: "2025-06-02T09:00:00Z")
    ids = [f"D{i:02d}" for i in range(1, 17)]
    steps = [(ids, None, 5), (ids[1:], {"D04": {"ecog": "3"}}, 5), (ids[1:], None, 2)]
    for step, (keep, edits, top) in enumerate(steps):
        explained[0] = 0
        new, old = run("new", counted, keep, edits, top), run("old", full, keep, edits, top)
        assert (new.exit_code, old.exit_code) == (EXIT_OK, EXIT_OK)
        assert new.n_pairs == old.n_pairs > 50
        assert 0 < explained[0] < new.n_pairs / 2  # most rows were never built in full
        for name in ("matches.json", "matches.csv", "options.json", "trials.json"):
            assert (new.out_dir / name).read_bytes() == (old.out_dir / name).read_bytes(), name
        pages = sorted((old.out_dir / "patients").iterdir())
        assert len(pages) == len(keep)
        for page in pages:
            got = (new.out_dir / "patients" / page.name).read_text(encoding="utf-8")
            assert untimed(got) == untimed(page.read_text(encoding="utf-8")), page.name
        if step:
            assert new.changes["gone"] or step == 2
            assert {**new.changes, "previous_run": 0} == {**old.changes, "previous_run": 0}
        if step == 1:  # a coordinator decides pairs before the next run
            for name, res in (("new", new), ("old", old)):
                with Store(tmp_path / f"{name}.sqlite") as st:
                    first = st.connection.execute(
                        "SELECT patient_id, nct_id FROM report_matches WHERE run_id = ?"
                        " AND verdict != 'excluded' ORDER BY patient_id, score DESC, nct_id"
                        " LIMIT 3",
                        (res.run_id,),
                    ).fetchall()
                    for (pid, nct), status in zip(
                        first, (review.NOT_ELIGIBLE, "reviewing", "contacted"), strict=True
                    ):
                        review.set_status(
                            st, pid, nct, status, list_name="clinic", reason="read", who="t"
                        )
                    review.mark_seen(st, "clinic", "D05", who="t")


def _csv_rows_by_cell(d: dict, dig: dict, new_why: dict):
    """The reference for ``report._csv_text``: one patient's ``matches.csv`` rows, cell by
    cell, for ``csv.writer`` to write."""
    from matcher import render
    from matcher.digest import verify_group_count
    from matcher.report import _NUMBERS, _TEXTS, _csv_group, _facts_cell, _list_cell, _trial_cells

    facts = render.safe_cell(_facts_cell(dig["facts"]))
    patient_id = render.safe_cell(d["patient_id"])
    group = _csv_group(dig)
    numbers, text, listed, site_text = _NUMBERS, _TEXTS, _list_cell, render.site_text
    prefixes = render.FORMULA_PREFIXES
    for t in d["trials"]:
        label, where = group.get(t["nct_id"], ("", ""))
        nct, title, phase, status, last_update, url = _trial_cells(
            t["nct_id"], t["title"], t["phase"], t["status"], t["last_update"], t["url"]
        )
        miles = t["distance_miles"]
        checks = t["checks"] if "checks" in t else verify_group_count(t.get("verify") or ())
        yield [
            patient_id,
            nct,
            numbers[t["rank"]],
            text[t["verdict"]],
            numbers[t["score"]],
            title,
            phase,
            status,
            last_update,
            text[site_text(t["nearest_site"])],
            "" if miles is None else numbers[miles],
            listed(t["reasons"], prefixes),
            listed(t.get("verify", ""), prefixes),
            listed(t["excluded_by"], prefixes),
            "yes" if t["is_new"] else "",
            text[new_why.get(t["nct_id"], "")],
            url,
            text[label],
            text[where],
            facts,
            text[t["review_status"]],
            "yes" if t["review_new"] else "",
            text[t["review_reason"]],
            text[t["review_note"]],
            text[t["review_changed"]],
            "no" if t.get("explained") is False else "yes",
            numbers[checks],
        ]


def _report_swapped(monkeypatch, tmp_path, swap, name, ids, edits, explain):
    """One demo report run with ``matcher.report``'s function ``swap[0]`` replaced by
    ``swap[1]`` for the run (``swap[2]`` put back after), files named by ``name`` and
    ``explain``: the same run written by a new path and by its reference."""
    from datetime import date

    rep = _rep()
    attr, use, keep = swap
    cfg = rep.ReportConfig(
        rank=RankConfig(statuses=None),
        as_of=date.fromisoformat(AS_OF),
        workers=1,
        list_name="clinic",
        explain=explain,
    )
    patients = write_patients(tmp_path / f"{name}-{explain}.csv", ids, edits)
    monkeypatch.setattr(rep, attr, use)
    try:
        return run_report(
            patients, tmp_path / f"o-{name}-{explain}", tmp_path / f"{name}-{explain}.sqlite",
            [FIX / "demo" / "trials"], cfg,
        )  # fmt: skip
    finally:
        monkeypatch.setattr(rep, attr, keep)


def test_csv_lines_made_without_the_csv_writer_equal_its_rows(tmp_path, monkeypatch):
    """``matches.csv`` written from cells quoted once per value (``_csv_text``) is, byte for
    byte, what ``csv.writer`` writes from rows built cell by cell: a first run and a run with changes
    (new matches with their why, gone ones), with the default ``--explain top`` and ``all``."""
    import io

    rep = _rep()
    made = rep._csv_text

    def by_writer(d, dig, new_why):
        buf = io.StringIO()
        csv.writer(buf).writerows(_csv_rows_by_cell(d, dig, new_why))
        return buf.getvalue()

    calls = [0]

    def compared(d, dig, new_why):
        calls[0] += 1
        got = made(d, dig, new_why)
        assert got == by_writer(d, dig, new_why)
        return got

    def run(name, csv_text, ids, edits, explain):
        return _report_swapped(
            monkeypatch, tmp_path, ("_csv_text", csv_text, made), name, ids, edits, explain
        )

    ids = [f"D{i:02d}" for i in range(1, 17)]
    for explain in ("top", "all"):
        for keep, edits in ((ids, None), (ids[1:], {"D04": {"ecog": "3"}})):
            new, old = (
                run("new", compared, keep, edits, explain),
                run("old", by_writer, keep, edits, explain),
            )
            assert (new.exit_code, old.exit_code) == (EXIT_OK, EXIT_OK)
            assert new.n_pairs == old.n_pairs > 50
            got = (new.out_dir / "matches.csv").read_bytes()
            assert got == (old.out_dir / "matches.csv").read_bytes()
            assert len(got.splitlines()) > new.n_pairs  # every row, and the header
    assert calls[0] == 2 * (len(ids) + len(ids) - 1)


def _element_by_encoder(d: dict) -> str:
    """The reference for ``report._element_json``: the element through the JSON encoder."""
    return json.dumps(d, ensure_ascii=False, separators=(",", ":"))


def _compact_row_by_dict(b, is_new: bool, rv: dict, checks: int) -> dict:
    """The reference for ``report._compact_row_json``: the compact row as
    ``_ReportWriter._brief_dict`` builds it, key for key."""
    return {
        "nct_id": b.nct_id,
        "rank": b.rank,
        "score": b.score,
        "verdict": b.verdict,
        "reasons": b.reasons,
        "excluded_by": b.excluded_by,
        "nearest_site": b.nearest_site,
        "distance_miles": b.distance_miles,
        "title": b.title,
        "phase": b.phase,
        "status": b.status,
        "last_update": b.last_update,
        "url": b.url,
        "relevance": b.relevance,
        "purpose": b.purpose,
        "is_new": is_new,
        **rv,
        "checks": checks,
        "met_count": b.met_count,
        "to_review_count": b.to_review_count,
        "explained": False,
    }


def test_json_pieces_equal_the_encoder():
    """Numbers, texts and compact rows encoded from pieces are the encoder's text, on the
    values that differ between encoders: floats, NaN and infinities, bools, numpy scalars,
    quotes, backslashes, control characters, non-ASCII text, None, a list that is not texts."""
    import numpy as np

    from matcher import jsontext, review
    from matcher.columnar import Brief

    rep = _rep()
    numbers = [0, -3, 7, 10**20, 1.0, -0.0, 0.1, 1e-7, 1e16, 123.456, 2.5e300,
               float("nan"), float("inf"), -float("inf"), True, False,
               np.float64(2.5), np.float64(1e-9)]  # fmt: skip
    for x in numbers:
        assert jsontext.number(x) == _element_by_encoder(x), repr(x)
    texts = ['plain', 'a "quoted" word', "back\\slash", "tab\tline\nbreak\r\x00\x1f\x7f",
             "café – ≥ 2 × ULN", "emoji \U0001f600", "", "\u2028\u2029", None]  # fmt: skip
    for x in texts:
        assert jsontext.text(x) == _element_by_encoder(x) == json.dumps(x, ensure_ascii=False)
    assert jsontext.text(1.0) == "1.0" and jsontext.text(True) == "true"
    for sep, encode in (
        (",", _element_by_encoder),
        (", ", lambda v: json.dumps(v, ensure_ascii=False)),
    ):
        assert jsontext.texts(texts, sep) == encode(texts)
        assert jsontext.texts(texts, sep) == jsontext.texts(texts, sep)  # from the cache
        assert jsontext.texts([], sep) == "[]"
        assert jsontext.texts(["a", 1, 1.0, True], sep) == encode(["a", 1, 1.0, True])
    site = {"facility": 'Hôpital "Saint"', "city": "Zürich", "state": None, "zip": "8000"}
    decided = {**review.UNDECIDED, "review_status": "reviewing", "review_reason": 'read "it"'}
    n = 0
    for rv in (review.UNDECIDED, review.SEEN_UNDECIDED, decided, {}):
        for score, miles, near in ((44, None, None), (43.5, 12.25, site), (-3, 0.0, site)):
            for is_new in (True, False):
                b = Brief(
                    "NCT00000001", 3, score, "needs_review",
                    ["trial for \"sarcoma\" – ≥ 18", "2 criteria met"], ["ECOG 3 > 2\n(line)"],
                    near, miles, "Title, with ‘quotes’", "PHASE1/PHASE2", "RECRUITING",
                    None if is_new else "2024-01-02", "https://example.org/x?a=1&b=2",
                    "category", None if is_new else "treatment", ("a", "b"), 2, 5,
                )  # fmt: skip
                for _ in range(2):  # made, then from the caches
                    got = rep._compact_row_json(b, is_new, rv, 4)
                    assert got == _element_by_encoder(_compact_row_by_dict(b, is_new, rv, 4))
                    n += 1
    assert n == 48


def test_review_page_from_pieces_equals_the_encoder():
    """``review.pack_rows`` (a page's entries made from pieces) gives the bytes of
    ``pack_page(page_entry(...))`` on rows with odd values: missing keys, None, float and
    int scores, verify lists and tuples, a reason that is not a text, escapes, non-ASCII
    text, an unhashable title (through the encoder), an empty group."""
    from matcher import review

    row = {
        "nct_id": "NCT00000001", "title": "Étude “A”, phase 2\n", "verdict": "eligible",
        "score": 41.5, "status": "RECRUITING", "url": "https://x.org/?a=1&b=\"2\"",
        "rank": 1, "reasons": ["for \"sarcoma\" – ≥ 18", "3 criteria met", "third"],
        "where": "Zürich (12.5 mi)", "verify": ["ECOG: not recorded", "labs\tALT"],
    }  # fmt: skip
    rows = [
        row,
        {**row, "score": 7, "verify": None, "reasons": [], "where": None},
        {**row, "verify": ("a", "b"), "reasons": ["x", 3]},
        {**row, "nct_id": "NCT00000002", "title": None, "status": None},
        {"nct_id": "NCT00000003"},
        {**row, "title": ["not", "hashable"]},
        {**row, "score": True, "rank": 2.0},
    ]
    groups = {"top": rows[:2], "more": rows[2:], "closed": [], "folded": rows[:1]}
    for crit in (None, {"NCT00000001": "abc", "NCT00000003": "d\u00e9f"}):
        for ph in (None, "hash"):
            args = ("P-ü", "synovial sarcoma", ph, groups, crit)
            for _ in range(2):  # made, then from the caches
                assert review.pack_rows(*args) == review.pack_page(review.page_entry(*args))


def test_matches_json_from_pieces_equals_the_encoder(tmp_path, monkeypatch):
    """``matches.json`` elements assembled from pieces encoded once (``_element_json``: the
    compact rows' texts made from their briefs, the rest through the encoder) are, byte for
    byte, each element through the JSON encoder: a first run, a run with changes, and a run
    after coordinator decisions and a page seen (review fields that are not the undecided
    ones), with ``--explain top`` and ``all``; the files written both ways are the same. The
    review pages (``review.pack_rows``) are compared with the entry dicts' the same way."""

    from matcher import review
    from matcher.digest import verify_group_count

    rep = _rep()
    made, packed = rep._element_json, review.pack_rows
    calls, pieces, pages = [0], [0], [0]

    def pages_compared(*args):  # the review pages: the same bytes as from the entry dicts
        pages[0] += 1
        got = packed(*args)
        assert got == review.pack_page(review.page_entry(*args))
        return got

    monkeypatch.setattr(review, "pack_rows", pages_compared)
    # the compact rows as dicts (the reference), by the row the writer made of each brief:
    # its rows are placed for the digest, the element writes the compact row
    by_dict, brief_dict = {}, rep._ReportWriter._brief_dict

    def brief_dict_kept(self, m, new_why):
        d, lines, texts = brief_dict(self, m, new_why)
        for b, t in zip(m.trials, d["trials"], strict=True):
            if texts.get(b.nct_id, (None,))[0] is t:
                rv = {k: t[k] for k in review.UNDECIDED}
                ref = _compact_row_by_dict(b, t["is_new"], rv, verify_group_count(b.verify))
                by_dict[id(t)] = (t, ref)  # the row held, so its id is not reused
        return d, lines, texts

    def as_compact(d):
        rows = []
        for t in d["trials"]:
            got = by_dict.get(id(t))
            rows.append(got[1] if got is not None and got[0] is t else t)
        return {**d, "trials": rows}

    monkeypatch.setattr(rep._ReportWriter, "_brief_dict", brief_dict_kept)

    def compared(d, texts):
        calls[0] += 1
        got = made(d, texts)
        assert got == _element_by_encoder(as_compact(d))
        pieces[0] += sum(1 for t in d["trials"] if texts.get(t["nct_id"], (None,))[0] is t)
        return got

    def run(name, element_json, ids, edits, explain):
        return _report_swapped(
            monkeypatch, tmp_path, ("_element_json", element_json, made), name, ids, edits, explain
        )

    monkeypatch.setattr(review, "now_iso", lambda: "2025-06-02T09:00:00Z")
    ids = [f"D{i:02d}" for i in range(1, 17)]
    steps = [(ids, None), (ids[1:], {"D04": {"ecog": "3"}}), (ids[1:], None)]
    for explain in ("top", "all"):
        pieces[0] = 0
        for step, (keep, edits) in enumerate(steps):
            new = run("new", compared, keep, edits, explain)
            old = run("old", lambda d, t: _element_by_encoder(as_compact(d)), keep, edits, explain)
            by_dict.clear()
            assert (new.exit_code, old.exit_code) == (EXIT_OK, EXIT_OK)
            assert new.n_pairs == old.n_pairs > 50
            got = (new.out_dir / "matches.json").read_bytes()
            assert got == (old.out_dir / "matches.json").read_bytes()
            assert len(json.loads(got)) == len(keep)
            if step == 1:  # a coordinator decides pairs before the next run
                for name, res in (("new", new), ("old", old)):
                    with Store(tmp_path / f"{name}-{explain}.sqlite") as st:
                        first = st.connection.execute(
                            "SELECT patient_id, nct_id FROM report_matches WHERE run_id = ?"
                            " AND verdict != 'excluded' ORDER BY patient_id, score DESC,"
                            " nct_id LIMIT 12",
                            (res.run_id,),
                        ).fetchall()
                        for k, (pid, nct) in enumerate(first):
                            status = (review.NOT_ELIGIBLE, "reviewing", "contacted")[k % 3]
                            review.set_status(
                                st, pid, nct, status, list_name="clinic", reason="r", who="t"
                            )
                        review.mark_seen(st, "clinic", "D05", who="t")
        # rows from pieces: most rows with --explain top, none with all (every row in full)
        assert (pieces[0] > 100) == (explain == "top"), pieces[0]
    assert calls[0] == 2 * (len(ids) + 2 * (len(ids) - 1))
    assert pages[0] == 2 * calls[0]  # every page of the new and the old runs
    text = (tmp_path / "o-new-top" / "matches.json").read_text(encoding="utf-8")
    assert '"review_status":"reviewing"' in text and '"review_new":false' in text


def test_compact_rows_placed_at_once_equal_the_digest_copies(tmp_path, monkeypatch):
    """The compact rows ``_brief_dict`` makes already placed (one dict per row, which the
    digest uses as it is) equal, key for key and in the same order, what ``patient_digest``
    makes of the compact row dicts (the reference, ``_compact_row_by_dict``): every group,
    the compact rows, counts and facts to record; a first run, a run with changes and one
    after coordinator decisions and a page seen, with ``--country`` set and not, and a short
    ``top``."""
    from datetime import date

    from matcher import review
    from matcher.digest import verify_group_count

    rep = _rep()
    brief_dict, digest = rep._ReportWriter._brief_dict, rep.patient_digest
    refs: dict[int, tuple] = {}
    seen = [0, 0]

    def kept(self, m, new_why):
        d, lines, texts = brief_dict(self, m, new_why)
        for b, t in zip(m.trials, d["trials"], strict=True):
            if texts.get(b.nct_id, (None,))[0] is t:
                rv = {k: t[k] for k in review.UNDECIDED}
                ref = _compact_row_by_dict(b, t["is_new"], rv, verify_group_count(b.verify))
                refs[id(t)] = (t, ref)  # the row held, so its id is not reused
        return d, lines, texts

    def compared(trials, sites, purposes, top, country, explain, lines, placed=False):
        got = digest(trials, sites, purposes, top, country, explain, lines, placed)
        if not placed:
            return got
        ref_rows = []
        for t in trials:
            r = refs.get(id(t))
            ref_rows.append(r[1] if r is not None and r[0] is t else t)
        want = digest(ref_rows, sites, purposes, top, country, explain, lines)
        for g in ("top", "more", "closed", "excluded", "other_country"):
            assert got[g] == want[g], g
            assert [list(t) for t in got[g]] == [list(t) for t in want[g]], g
        assert list(got["compact"]) == list(want["compact"])
        for k in ("facts", "facts_sentence", "counts"):
            assert got[k] == want[k], k
        seen[0] += 1
        seen[1] += sum(1 for t in trials if t.get("explained") is False and "groups" in t)
        return got

    monkeypatch.setattr(rep._ReportWriter, "_brief_dict", kept)
    monkeypatch.setattr(rep, "patient_digest", compared)
    monkeypatch.setattr(review, "now_iso", lambda: "2025-06-02T09:00:00Z")
    ids = [f"D{i:02d}" for i in range(1, 17)]
    steps = [(ids, None, 5), (ids[1:], {"D04": {"ecog": "3"}}, 5), (ids[1:], None, 2)]
    for country in (None, "United States"):
        db = tmp_path / f"{country}.sqlite"
        for step, (keep, edits, top) in enumerate(steps):
            cfg = rep.ReportConfig(
                rank=RankConfig(statuses=None),
                as_of=date.fromisoformat(AS_OF),
                workers=1,
                list_name="clinic",
                top=top,
                country=country,
            )
            patients = write_patients(tmp_path / f"p-{step}.csv", keep, edits)
            res = run_report(
                patients, tmp_path / f"o-{country}", db, [FIX / "demo" / "trials"], cfg
            )
            assert res.exit_code == EXIT_OK and res.n_pairs > 50
            if step == 1:  # a coordinator decides pairs before the next run
                with Store(db) as st:
                    first = st.connection.execute(
                        "SELECT patient_id, nct_id FROM report_matches WHERE run_id = ?"
                        " AND verdict != 'excluded' ORDER BY patient_id, score DESC, nct_id"
                        " LIMIT 12",
                        (res.run_id,),
                    ).fetchall()
                    for k, (pid, nct) in enumerate(first):
                        status = (review.NOT_ELIGIBLE, "reviewing", "contacted")[k % 3]
                        review.set_status(
                            st, pid, nct, status, list_name="clinic", reason="r", who="t"
                        )
                    review.mark_seen(st, "clinic", "D05", who="t")
    assert seen[0] == 2 * (len(ids) + 2 * (len(ids) - 1))
    assert seen[1] > 200, seen  # most rows came placed


def _match_and_write_per_patient(job, stream, patients, db, tracker, writer, progress, table=None):
    """The reference for ``report._match_and_write``: each patient's history rows built
    field by field and written with one ``executemany`` per patient."""
    from matcher.knowledge import evaluate_options

    rep = _rep()
    insert = rep.HISTORY_INSERT.format(table=table or "report_matches")
    n_pairs = 0
    for patient, m in zip(patients, stream, strict=True):
        db.executemany(
            insert,
            [
                (job.run_id, m.patient_id, s.nct_id, s.verdict, s.score, s.status,
                 s.last_update, s.title, job.crit.get(s.nct_id))
                for s in m.trials
            ],
        )  # fmt: skip
        new_why, gone = tracker.patient(m)
        writer.add(patient, m, evaluate_options(patient, job.pack), new_why, gone)
        n_pairs += len(m.trials)
        if progress:
            progress("patients", 1)
    return n_pairs


@pytest.mark.parametrize("workers", [1, 2])
def test_history_rows_in_batches_equal_one_insert_per_patient(tmp_path, monkeypatch, workers):
    """The run history written from per-trial cells, several patients per ``executemany``
    (a batch size that splits patients, and the default), is the reference's (one insert per
    patient, every field read per row) row for row, rowids included: a first run and a run
    with changes, in one process and in two; the report files are the same too."""
    from datetime import date

    rep = _rep()
    made = rep._match_and_write
    tables = ("report_matches", "report_patients")

    def run(name, batch, ids, edits):
        cfg = rep.ReportConfig(
            rank=RankConfig(statuses=None),
            as_of=date.fromisoformat(AS_OF),
            workers=workers,
            list_name="clinic",
        )
        patients = write_patients(tmp_path / f"{name}.csv", ids, edits)
        if batch is None:
            monkeypatch.setattr(rep, "_match_and_write", _match_and_write_per_patient)
        else:
            monkeypatch.setattr(rep, "HISTORY_BATCH", batch)
        try:
            return run_report(
                patients, tmp_path / f"o-{name}", tmp_path / f"{name}.sqlite",
                [FIX / "demo" / "trials"], cfg,
            )  # fmt: skip
        finally:
            monkeypatch.setattr(rep, "_match_and_write", made)

    def history(name):
        with Store(tmp_path / f"{name}.sqlite") as st:
            db = st.connection
            got = {
                t: [tuple(r) for r in db.execute(f"SELECT rowid, * FROM {t} ORDER BY rowid")]
                for t in tables
            }
            runs = db.execute("SELECT id, status FROM report_runs ORDER BY id")
            got["runs"] = [tuple(r) for r in runs]
        return got

    ids = [f"D{i:02d}" for i in range(1, 17)]
    for keep, edits in ((ids, None), (ids[1:], {"D04": {"ecog": "3"}})):
        ref = run("ref", None, keep, edits)
        for name, batch in (("small", 7), ("default", rep.HISTORY_BATCH)):
            res = run(name, batch, keep, edits)
            assert res.exit_code == ref.exit_code == EXIT_OK
            assert res.n_pairs == ref.n_pairs > 50
            assert history(name) == history("ref")
            assert {**res.changes, "previous_run": 0} == {**ref.changes, "previous_run": 0}
            for f in ("matches.json", "matches.csv", "options.json", "trials.json"):
                assert (res.out_dir / f).read_bytes() == (ref.out_dir / f).read_bytes(), f
    got = history("ref")
    assert len(got["runs"]) == 2 and len(got["report_matches"]) > 2 * ref.n_pairs


def test_two_worker_processes_write_the_same_report_as_one(tmp_path):
    """``workers=2`` (forked processes over patient partitions, parts joined in order) writes
    the same files as one process, on a first run and on a run with changes to report."""
    from datetime import date

    def run(name, workers, ids, edits=None):
        cfg = _rep().ReportConfig(
            rank=RankConfig(statuses=None),
            as_of=date.fromisoformat(AS_OF),
            workers=workers,
            list_name="clinic",
        )
        patients = write_patients(tmp_path / f"{name}.csv", ids, edits)
        trials = [FIX / "demo" / "trials"]
        return run_report(
            patients, tmp_path / f"o-{name}", tmp_path / f"{name}.sqlite", trials, cfg
        )

    ids = [f"D{i:02d}" for i in range(1, 17)]
    for step, (keep, edits) in enumerate([(ids, None), (ids[1:], {"D04": {"ecog": "3"}})]):
        one, two = run("one", 1, keep, edits), run("two", 2, keep, edits)
        assert (one.exit_code, two.exit_code) == (EXIT_OK, EXIT_OK)
        assert one.n_pairs == two.n_pairs > 50
        if step:  # the runs differ only in when they started
            assert len(two.changes["gone"]) > 1
            assert {**two.changes, "previous_run": 0} == {**one.changes, "previous_run": 0}
        for name in ("matches.json", "matches.csv", "options.json", "trials.json"):
            assert (one.out_dir / name).read_bytes() == (two.out_dir / name).read_bytes(), name
        pages = sorted(p.name for p in (two.out_dir / "patients").iterdir())
        assert pages == sorted(p.name for p in (one.out_dir / "patients").iterdir())
        assert not list(two.out_dir.glob("*.tmp")) and not list(two.out_dir.glob(".*"))
        with Store(tmp_path / "two.sqlite") as st:
            rows = st.connection.execute(
                "SELECT COUNT(*) FROM report_matches WHERE run_id = ?", (two.run_id,)
            ).fetchone()[0]
        assert rows == two.n_pairs
        # the review server's pages (matcher.review) come back from the workers too
        from matcher import review

        with Store(tmp_path / "one.sqlite") as a, Store(tmp_path / "two.sqlite") as b:
            pa = [p["patient_id"] for p in review.load_pages(a, "clinic", summary=True)]
            pb = [p["patient_id"] for p in review.load_pages(b, "clinic", summary=True)]
        assert pa == pb and len(pa) == len(keep)


def test_progress_goes_to_a_terminal_only(tmp_path, monkeypatch):
    """On a terminal the report says what it is doing (stderr); the summary stays on stdout."""
    import types

    import matcher.cli as cli_mod

    tty = types.SimpleNamespace(stderr=types.SimpleNamespace(isatty=lambda: True))
    monkeypatch.setattr(cli_mod, "sys", tty)
    patients = write_patients(tmp_path / "p.csv", ["D01"])
    res = CliRunner().invoke(
        cli,
        [
            "--db",
            str(tmp_path / "db.sqlite"),
            "report",
            str(patients),
            "--trials",
            str(TRIAL_FILES[SBRT]),
            "--out",
            str(tmp_path / "o"),
        ],
    )
    assert res.exit_code == EXIT_OK
    assert "candidate trials" in res.stderr


def test_a_file_that_is_not_a_store_is_a_clean_error(tmp_path):
    db = tmp_path / "db.sqlite"
    db.write_bytes(b"not a database at all, just text" * 10)
    res = run_cli(["--db", str(db), "report", str(DEMO_PATIENTS), "--out", str(tmp_path / "o")])
    assert res.exit_code == EXIT_ERROR  # the store, not the patient list, must be fixed
    assert res.stderr.startswith(f"Error: {db}: cannot open the trial store (file is not a")
    assert "Traceback" not in res.output
