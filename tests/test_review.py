"""Coordinator review decisions: the store's tables, the CLI, and the nightly run using them.

One demo report (16 patients, the demo trials) is run once per module; each test works on
its own copy of that store and report.
"""

from __future__ import annotations

import csv
import json
import re
import shutil
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

from matcher import review
from matcher.cli import cli
from matcher.errors import ReviewError
from matcher.report import ReportConfig, run_report
from matcher.store import Store

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "fixtures" / "demo"


def _report(db: Path, out: Path, patients: Path = DEMO / "patients.csv", trials=()) -> None:
    res = run_report(patients, out, db, trials, ReportConfig(rank=_any_status()))
    assert res.exit_code == 0, res.errors


def _any_status():
    from matcher.rank import RankConfig

    return RankConfig(statuses=None)


@pytest.fixture(scope="module")
def baseline(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("review")
    _report(tmp / "trials.sqlite", tmp / "out", trials=[DEMO / "trials"])
    return tmp


@pytest.fixture
def env(baseline, tmp_path):
    """A copy of the demo store and report: (db path, out dir)."""
    shutil.copy(baseline / "trials.sqlite", tmp_path / "trials.sqlite")
    shutil.copytree(baseline / "out", tmp_path / "out")
    return tmp_path / "trials.sqlite", tmp_path / "out"


def _rows(out: Path) -> list[dict]:
    with open(out / "matches.csv", newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def _first_pairs(out: Path, patient: str, n: int) -> list[str]:
    """The patient's first ``n`` trials to consider, as matches.csv lists them."""
    return [
        r["nct_id"]
        for r in _rows(out)
        if r["patient_id"] == patient and r["group"].startswith("to consider")
    ][:n]


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("contacted", "contacted"),
        (" Contacted ", "contacted"),
        ("NOT_ELIGIBLE", "not eligible"),
        ("not-eligible", "not eligible"),
        ("not   eligible", "not eligible"),
        ("Deferred", "deferred"),
        ("new", "new"),
    ],
)
def test_status_words(text, status):
    assert review.parse_status(text) == status


@pytest.mark.parametrize("text", ["pending", "", "eligible", "contact"])
def test_unknown_status_names_the_accepted_ones(text):
    with pytest.raises(ReviewError, match="accepted: new, reviewing, contacted, enrolled"):
        review.parse_status(text)


def test_set_records_decision_and_history_in_one_transaction(env):
    db, out = env
    nct = _first_pairs(out, "D01", 1)[0]
    with Store(db) as st:
        statements: list[str] = []
        st.connection.set_trace_callback(statements.append)
        d = review.set_status(st, "D01", nct.lower(), "Contacted", note="rang", who="ana")
        st.connection.set_trace_callback(None)
        writes = [s for s in statements if s.split()[0].upper() in ("INSERT", "UPDATE", "DELETE")]
        assert [s.split()[0] for s in statements if s.startswith(("BEGIN", "COMMIT"))] == [
            "BEGIN",
            "COMMIT",
        ]
        assert len(writes) == 2  # the decision, and its history row
        assert (d.status, d.nct_id, d.note, d.who) == ("contacted", nct, "rang", "ana")
        assert d.patient_hash and d.criteria_hash and d.trial_status  # what it was made on
        review.set_status(st, "D01", nct, "not eligible", reason="ECOG 3 today", who="bo")
        hist = review.history(st, "patients", "D01", nct)
        assert [(h["previous_status"], h["status"], h["who"]) for h in hist] == [
            (None, "contacted", "ana"),
            ("contacted", "not eligible", "bo"),
        ]
        [only] = review.list_decisions(st, patient_id="D01")
        assert (only.status, only.reason, only.who) == ("not eligible", "ECOG 3 today", "bo")
        assert review.list_decisions(st, status="contacted") == []


def test_history_is_append_only(env):
    db, out = env
    nct = _first_pairs(out, "D01", 1)[0]
    with Store(db) as st:
        review.set_status(st, "D01", nct, "reviewing", who="ana")
        for sql in ("UPDATE review_history SET who = 'x'", "DELETE FROM review_history"):
            with pytest.raises(sqlite3.DatabaseError, match="append-only"):
                st.connection.execute(sql)
        assert len(review.history(st, "patients", "D01", nct)) == 1


@pytest.mark.parametrize(
    ("patient", "nct", "status", "reason", "message"),
    [
        ("D01", None, "not eligible", None, "'not eligible' needs a reason"),
        ("D01", None, "not eligible", "   ", "'not eligible' needs a reason"),
        ("D01", "NCT99999999", "contacted", None, "has no match with NCT99999999"),
        ("nobody", None, "contacted", None, "patient nobody has no match"),
        ("D01", "12345", "contacted", None, "not an NCT id"),
        ("D01", None, "maybe", None, "unknown review status 'maybe'"),
    ],
)
def test_set_refuses_and_writes_nothing(env, patient, nct, status, reason, message):
    db, out = env
    nct = nct or _first_pairs(out, "D01", 1)[0]
    with Store(db) as st:
        with pytest.raises(ReviewError, match=message):
            review.set_status(st, patient, nct, status, reason=reason)
        n = st.connection.execute("SELECT COUNT(*) FROM review_history").fetchone()[0]
        assert n == 0


def test_several_lists_need_a_name(env, tmp_path):
    db, out = env
    other = tmp_path / "ward-b.csv"
    shutil.copy(DEMO / "patients.csv", other)
    _report(db, tmp_path / "out-b", other)
    nct = _first_pairs(out, "D01", 1)[0]
    with Store(db) as st:
        with pytest.raises(ReviewError, match=r"several patient lists \(ward-b, patients\)"):
            review.set_status(st, "D01", nct, "contacted")
        d = review.set_status(st, "D01", nct, "contacted", list_name="ward-b")
        assert d.list_name == "ward-b"


def test_next_run_keeps_decisions_and_folds_not_eligible(env):
    db, out = env
    first, second = _first_pairs(out, "D01", 2)
    with Store(db) as st:
        review.set_status(st, "D01", first, "contacted", who="ana")
        review.set_status(st, "D01", second, "not eligible", reason="<b>ECOG 3</b>", who="ana")
    _report(db, out)
    rows = {(r["patient_id"], r["nct_id"]): r for r in _rows(out)}
    assert rows[("D01", first)]["review_status"] == "contacted"
    assert rows[("D01", second)]["review_status"] == "not eligible"
    assert rows[("D01", second)]["review_reason"] == "<b>ECOG 3</b>"
    assert rows[("D01", second)]["group"] == "judged not eligible by the coordinator"
    assert rows[("D01", second)]["review_changed"] == ""
    assert {r["review_status"] for k, r in rows.items() if k[0] != "D01"} == {"new"}
    matches = {p["patient_id"]: p for p in json.loads((out / "matches.json").read_text("utf-8"))}
    by_nct = {t["nct_id"]: t for t in matches["D01"]["trials"]}
    assert by_nct[first]["review_status"] == "contacted" and by_nct[first]["review_who"] == "ana"
    page = (out / "patients" / "D01.html").read_text("utf-8")
    start = page.index("id=consider>")
    folded = page.index("Judged not eligible by you (1)")
    assert f">{second}</a>" not in page[start:folded]  # not among the trials to consider
    assert "&lt;b&gt;ECOG 3&lt;/b&gt;" in page[folded:]
    assert 'data-review="contacted"' in page
    index = (out / "report.html").read_text("utf-8")
    assert "Awaiting review" in index


def test_changed_patient_record_unfolds_a_not_eligible_pair(env, tmp_path):
    db, out = env
    nct = _first_pairs(out, "D01", 1)[0]
    with Store(db) as st:
        review.set_status(st, "D01", nct, "not eligible", reason="ECOG 3")
    changed = tmp_path / "patients.csv"
    text = (DEMO / "patients.csv").read_text("utf-8")
    d01 = next(line for line in text.splitlines() if line.startswith("D01,"))
    changed.write_text(text.replace(d01, d01.replace(",10065,", ",10016,")), "utf-8")
    _report(db, out, changed)
    row = next(r for r in _rows(out) if (r["patient_id"], r["nct_id"]) == ("D01", nct))
    assert row["review_status"] == "not eligible"
    assert row["review_changed"] == "patient record changed"
    assert row["group"].startswith("to consider")
    page = (out / "patients" / "D01.html").read_text("utf-8")
    assert "changed since your decision: patient record changed" in page
    assert "Judged not eligible by you" not in page


def test_changed_criteria_and_status_are_named(env):
    db, out = env
    nct = _first_pairs(out, "D01", 1)[0]
    with Store(db) as st:
        d = review.set_status(st, "D01", nct, "not eligible", reason="ECOG 3")
    f = review.fields(d, d.patient_hash, "another-hash", "COMPLETED")
    assert f["review_changed"] == (
        f"trial eligibility criteria changed; trial status changed: {d.trial_status} -> COMPLETED"
    )
    assert f["review_folded"] is False
    assert review.fields(d, d.patient_hash, d.criteria_hash, d.trial_status)["review_folded"]


def _edit_csv(out: Path, edits: dict[tuple[str, str], dict], target: Path) -> Path:
    rows = _rows(out)
    for r in rows:
        r.update(edits.get((r["patient_id"], r["nct_id"]), {}))
    with open(target, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return target


def test_import_edited_csv_then_the_report_shows_it(env, tmp_path):
    db, out = env
    a, b = _first_pairs(out, "D02", 2)
    sheet = _edit_csv(
        out,
        {
            ("D02", a): {"review_status": "Contacted", "review_note": "left a message"},
            ("D02", b): {"review_status": "not eligible", "review_reason": "declined"},
        },
        tmp_path / "edited.csv",
    )
    with Store(db) as st:
        res = review.import_csv(st, sheet, who="ana")
        assert [(d.nct_id, d.status) for d in res.changed] == [
            (a, "contacted"),
            (b, "not eligible"),
        ]
        assert res.unchanged == res.rows - 2
        again = review.import_csv(st, sheet, who="ana")  # the same sheet changes nothing
        assert again.changed == [] and len(review.history(st, "patients", "D02")) == 2
    _report(db, out)
    got = {r["nct_id"]: r["review_status"] for r in _rows(out) if r["patient_id"] == "D02"}
    assert (got[a], got[b]) == ("contacted", "not eligible")


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        ({"review_status": "maybe"}, "line .*unknown review status 'maybe'"),
        ({"review_status": "not eligible"}, "line .*needs a reason"),
        (
            {"review_status": "contacted", "nct_id": "NCT00000000"},
            "line .*no match with NCT00000000",
        ),
    ],
)
def test_import_with_a_bad_row_writes_nothing(env, tmp_path, edit, message):
    db, out = env
    a, b = _first_pairs(out, "D02", 2)
    sheet = _edit_csv(
        out,
        {("D02", a): {"review_status": "contacted"}, ("D02", b): edit},
        tmp_path / "edited.csv",
    )
    with Store(db) as st:
        with pytest.raises(ReviewError, match="nothing imported; " + message):
            review.import_csv(st, sheet)
        assert review.list_decisions(st) == []


def test_cli_set_list_import(env, tmp_path):
    db, out = env
    a, b = _first_pairs(out, "D03", 2)
    run = CliRunner().invoke
    res = run(
        cli,
        [
            "--db",
            str(db),
            "review",
            "set",
            "D03",
            a,
            "not",
            "eligible",
            "--reason",
            "x",
            "--user",
            "ana",
        ],
    )
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith(f"D03 {a}: not eligible (x) by ana at ")
    res = run(cli, ["--db", str(db), "review", "set", "D03", b, "not eligible"])
    assert res.exit_code == 2
    assert res.stderr == (
        f"Error: patient D03, {b}: 'not eligible' needs a reason (--reason: a verify item "
        "from the report, or your own words)\n"
    )
    res = run(cli, ["--db", str(db), "review", "list", "--status", "not_eligible"])
    assert res.exit_code == 0
    assert res.stdout.split("\t")[:5] == ["patients", "D03", a, "not eligible", "x"]
    sheet = _edit_csv(out, {("D03", b): {"review_status": "deferred"}}, tmp_path / "e.csv")
    res = run(cli, ["--db", str(db), "review", "import", str(sheet), "--user", "bo"])
    assert res.exit_code == 0, res.output
    n_rows = len(_rows(out))
    assert res.stdout == f"1 decisions recorded, {n_rows - 1} rows unchanged (list 'patients').\n"
    res = run(cli, ["--db", str(db), "review", "list", "--patient", "D03", "--json"])
    got = json.loads(res.stdout)
    assert [(d["nct_id"], d["status"], d["who"]) for d in got] == sorted(
        [(a, "not eligible", "ana"), (b, "deferred", "bo")]
    )


def _awaiting_cell(index_html: str, patient: str) -> str:
    """The index's "Awaiting review" cell of the patient's row (in the patients table)."""
    rows = re.findall(
        rf'<td data-label="Patient" data-v="{patient}">(?:(?!</tr>).)*</tr>', index_html, re.S
    )
    cells = [re.search(r'<td data-label="Awaiting review" data-v="(\d+)"', r) for r in rows]
    [cell] = [c.group(1) for c in cells if c]
    return cell


def test_new_means_new_since_the_coordinator_last_looked(env):
    """D01's review page was opened on the last run, when its first trial was not shown:
    the next run marks only that trial new, and D01 awaits one review."""
    db, out = env
    first = _first_pairs(out, "D01", 1)[0]
    n_consider = len(_first_pairs(out, "D01", 1000))
    with Store(db) as st:
        review.mark_seen(st, "patients", "D01", who="ana")
        st.connection.execute(
            "UPDATE report_matches SET verdict = 'excluded' WHERE patient_id = 'D01'"
            " AND nct_id = ? AND run_id = (SELECT MAX(id) FROM report_runs)",
            (first,),
        )
        assert review.awaiting([{**review.SEEN_UNDECIDED}, {**review.UNDECIDED}]) == 1
    _report(db, out)
    rows = [r for r in _rows(out) if r["patient_id"] == "D01" and r["verdict"] != "excluded"]
    assert {r["nct_id"] for r in rows if r["review_new"] == "yes"} == {first}
    assert {r["review_status"] for r in rows} == {"new"}
    index = (out / "report.html").read_text("utf-8")
    assert _awaiting_cell(index, "D01") == "1"
    d02_consider = len(_first_pairs(out, "D02", 1000))
    assert _awaiting_cell(index, "D02") == str(d02_consider) and n_consider > 1


def test_cli_review_on_a_store_without_a_report(tmp_path):
    res = CliRunner().invoke(
        cli, ["--db", str(tmp_path / "empty.sqlite"), "review", "set", "P1", "NCT01234567", "new"]
    )
    assert res.exit_code == 2
    assert res.stderr == (
        "Error: no report has been run on this store yet: run 'trialmatch report' first"
        " (or give --list NAME)\n"
    )
    res = CliRunner().invoke(cli, ["--db", str(tmp_path / "empty.sqlite"), "review", "list"])
    assert (res.exit_code, res.stdout, res.stderr) == (0, "", "0 decisions\n")
