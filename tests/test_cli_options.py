"""The command line as coordinators use it: forgiving spreadsheets, options where people type
them, one status vocabulary, fast and honest network failures, one exit-code rule, a compact
match table. Each test names the issue bullet it checks."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from matcher.cli import cli

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
PATIENT = FIX / "patients" / "lms-001.json"
TRIALS = FIX / "trials"
DEMO_PATIENTS = FIX / "demo" / "patients.csv"
DEMO_TRIALS = FIX / "demo" / "trials"
API = "https://clinicaltrials.gov/api/v2"


def run(*args, env=None):
    return CliRunner().invoke(cli, [str(a) for a in args], env=env)


@pytest.fixture
def no_wait(monkeypatch):
    """Retries and pacing sleep for real; record the waits instead."""
    waits: list[float] = []
    monkeypatch.setattr("matcher.ctgov.time.sleep", waits.append)
    return waits


# ---- header mapping -----------------------------------------------------------------------
def test_unmapped_header_is_a_counted_warning_with_a_guess(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("Patient ID,Diagnosys,Age (years),Name\nA1,leiomyosarcoma,50,Jane Doe\n")
    res = run("normalize", path)
    assert res.exit_code == 0
    assert [(p["id"], p["age"], p["diagnosis"]) for p in json.loads(res.stdout)] == [
        ("A1", 50.0, None)
    ]
    assert res.stderr.splitlines() == [
        "warning: column 'Diagnosys' (column 2) not read: unknown header; did you mean "
        "'diagnosis'?",
        "warning: column 'Name' not read: identifying data is never read",
        "1 patient read, 0 failed, 2 warnings (columns not read: Diagnosys, Name)",
    ]


def test_dropped_column_is_in_the_match_and_report_summaries(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("Patient ID,Diagnosys\nA1,leiomyosarcoma\n")
    res = run("match", path, "--trials", DEMO_TRIALS, "-q")
    assert res.exit_code == 0
    assert "columns not read" not in res.stdout  # -q: results only
    res = run("match", path, "--trials", DEMO_TRIALS)
    assert res.stdout.splitlines()[-1] == (
        "1 patient read, 0 failed, 1 warning (columns not read: Diagnosys); 125 candidate trials."
    )
    rep = run(
        "--db", tmp_path / "t.db", "report", path, "--trials", DEMO_TRIALS, "--out", tmp_path / "o"
    )
    assert rep.exit_code == 0
    assert " Columns not read: Diagnosys. Report: " in rep.stdout


def test_the_issue_spreadsheet_normalizes_on_the_command_line():
    res = run("normalize", FIX / "patients" / "spreadsheet_export.csv", "--as-of", "2026-01-01")
    assert res.exit_code == 0
    assert res.stderr == ""
    got = [
        (p["id"], p["age"], p["ecog"], p["zip"], p["metastatic_sites"])
        for p in json.loads(res.stdout)
    ]
    assert got == [
        ("S01", 61.0, 1, "10065", ["lung", "liver"]),
        ("S02", 44.0, 0, "02115", ["lung", "liver"]),
        ("S03", 72.0, 2, "07030", ["lung", "liver"]),
    ]


def test_template_has_every_field_and_reads_cleanly():
    from matcher.patient import FLAT_LOCATION_KEYS, LAB_KEYS, RECORD_KEYS

    template = FIX / "patients" / "template.csv"
    header = template.read_text(encoding="utf-8").splitlines()[0].split(",")
    expected = [k for k in RECORD_KEYS if k not in ("location", "labs")]
    assert header == [*expected, *FLAT_LOCATION_KEYS, *LAB_KEYS]
    res = run("normalize", template, "--as-of", "2026-01-01")
    assert res.exit_code == 0
    assert res.stderr == ""
    assert len(json.loads(res.stdout)) == 2


# ---- list cells, ZIPs, delimiter, format ---------------------------------------------------
def test_semicolon_delimited_export(tmp_path):
    path = tmp_path / "eu.csv"
    path.write_text("Patient ID;Metastatic Sites;ZIP Code\nE1;lung, liver;2115\n")
    res = run("normalize", path)
    assert res.exit_code == 0
    [p] = json.loads(res.stdout)
    assert (p["metastatic_sites"], p["zip"]) == (["lung", "liver"], "02115")
    assert p["warnings"] == ["zip '2115' read as '02115' (a spreadsheet dropped its leading zero)"]


def test_tab_delimited_txt(tmp_path):
    path = tmp_path / "export.txt"
    path.write_text("MRN\tGender\tDOB\nM7\tF\t1970-05-02\n")
    res = run("normalize", path, "--as-of", "2026-05-02")
    assert res.exit_code == 0
    [p] = json.loads(res.stdout)
    assert (p["id"], p["sex"], p["age"]) == ("M7", "female", 56.0)
    assert res.stderr.splitlines()[0] == (
        "warning: column 'MRN' used as the patient id (no id column); reports show it"
    )


def test_json_saved_as_txt(tmp_path):
    path = tmp_path / "patients.txt"
    path.write_text('[{"id": "J1", "diagnosis": "synovial sarcoma"}]')
    res = run("normalize", path)
    assert res.exit_code == 0
    assert [p["diagnosis"] for p in json.loads(res.stdout)] == ["synovial_sarcoma"]


# ---- options where users type them ---------------------------------------------------------
@pytest.mark.parametrize("where", ["before", "after"])
def test_db_before_or_after_the_subcommand(tmp_path, where):
    db = tmp_path / "x.db"
    args = ["--db", db, "import", TRIALS] if where == "before" else ["import", TRIALS, "--db", db]
    res = run(*args)
    assert res.exit_code == 0
    assert res.stdout.splitlines()[-1] == f"Store {db}: 16 trials."


@pytest.mark.parametrize("where", ["before", "after"])
def test_as_of_before_or_after_the_subcommand(where):
    path = FIX / "patients" / "ss-004.json"
    args = ["--as-of", "2025-05-01", "normalize", path]
    if where == "after":
        args = ["normalize", path, "--as-of", "2025-05-01"]
    res = run(*args)
    assert json.loads(res.stdout)[0]["age"] == 17.99


def test_api_url_after_the_subcommand(rsps, tmp_path, no_wait):
    mirror = "http://mirror.test/api/v2"
    rsps.get(f"{mirror}/version", json={"apiVersion": "2.0.5", "dataTimestamp": "2026-01-01"})
    rsps.get(f"{mirror}/studies", json={"studies": []})
    res = run("sync", "--condition", "sarcoma", "--api-url", mirror, "--db", tmp_path / "m.db")
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith("Sync ok (full): 1 pages, 0 studies")


# ---- one status vocabulary ------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "statuses"),
    [
        ("", {"RECRUITING", "NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION"}),
        ("open", {"RECRUITING", "NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION"}),
        ("any", None),
        ("all", None),
        ("Recruiting, completed", {"RECRUITING", "COMPLETED"}),
        ("open,active_not_recruiting", {"RECRUITING", "NOT_YET_RECRUITING",
                                         "ENROLLING_BY_INVITATION", "ACTIVE_NOT_RECRUITING"}),
    ],
)  # fmt: skip
def test_status_vocabulary(value, statuses):
    from matcher.statuses import parse_statuses

    got = parse_statuses(value)
    assert (None if got is None else set(got)) == statuses


@pytest.mark.parametrize(
    "argv",
    [
        ["match", PATIENT, "--trials", TRIALS],
        ["report", PATIENT, "--out", "OUT"],
        ["sync"],
    ],
)
def test_bad_status_is_the_same_usage_error_everywhere(argv, tmp_path):
    argv = [tmp_path / "o" if a == "OUT" else a for a in argv]
    res = run(*argv, "--status", "closed")
    assert res.exit_code == 2
    assert res.stderr.splitlines()[-1] == (
        "Error: Invalid value for --status: unknown status closed; accepted: open (default), "
        "any, or a comma list of ACTIVE_NOT_RECRUITING, COMPLETED, ENROLLING_BY_INVITATION, "
        "NOT_YET_RECRUITING, RECRUITING, SUSPENDED, TERMINATED, WITHDRAWN, AVAILABLE, "
        "NO_LONGER_AVAILABLE, TEMPORARILY_NOT_AVAILABLE, APPROVED_FOR_MARKETING, WITHHELD, UNKNOWN"
    )


def test_match_accepts_status_all():
    res = run("match", PATIENT, "--trials", TRIALS, "--status", "all", "--json")
    assert res.exit_code == 0
    assert len(json.loads(res.stdout)[0]["trials"]) == 6


# ---- network failures -----------------------------------------------------------------------
REFUSED = requests.ConnectionError(
    "HTTPSConnectionPool(host='clinicaltrials.gov', port=443): Max retries exceeded "
    "(Caused by NewConnectionError('Failed to establish a new connection: "
    "[Errno 111] Connection refused'))"
)
NO_NAME = requests.ConnectionError(
    "HTTPSConnectionPool(host='clinicaltrials.gov', port=443): Max retries exceeded "
    "(Caused by NameResolutionError(\"Failed to resolve 'clinicaltrials.gov' "
    '([Errno -2] Name or service not known)"))'
)


@pytest.mark.parametrize(
    ("exc", "reason"), [(REFUSED, "connection refused"), (NO_NAME, "name did not resolve")]
)
def test_sync_unreachable_fails_fast_and_says_nothing_was_stored(
    rsps, tmp_path, no_wait, exc, reason
):
    rsps.get(f"{API}/version", body=exc)
    rsps.get(f"{API}/version", body=exc)
    res = run("sync", "--db", tmp_path / "s.db")
    assert res.exit_code == 1
    assert res.stderr.splitlines() == [
        f"retry: {reason}; retrying in 2 s (attempt 2 of 2)",
        f"Error: cannot reach {API}: {reason} (tried 2 times); check the network connection "
        "or --api-url. Nothing was fetched; the store is unchanged.",
    ]
    assert no_wait.count(2.0) == 1


def test_retries_zero_means_one_attempt(rsps, tmp_path, no_wait):
    rsps.get(f"{API}/version", body=REFUSED)
    res = run("sync", "--db", tmp_path / "s.db", "--retries", "0")
    assert res.exit_code == 1
    assert res.stderr == (
        f"Error: cannot reach {API}: connection refused (tried 1 time); check the network "
        "connection or --api-url. Nothing was fetched; the store is unchanged.\n"
    )


def test_timeout_option_and_one_line_per_retry(rsps, tmp_path, no_wait):
    for _ in range(3):
        rsps.get(f"{API}/version", body=requests.Timeout("read timed out"))
    res = run("sync", "--db", tmp_path / "s.db", "--timeout", "5", "--retries", "2")
    assert res.exit_code == 1
    lines = res.stderr.splitlines()
    assert [re.sub(r"in \d+ s", "in N s", ln) for ln in lines[:2]] == [
        "retry: timed out after 5 s; retrying in N s (attempt 2 of 3)",
        "retry: timed out after 5 s; retrying in N s (attempt 3 of 3)",
    ]
    assert lines[2].startswith("Error: gave up after 3 attempts: timed out after 5 s;")
    assert lines[2].endswith("Nothing was fetched; the store is unchanged.")


def test_live_match_unreachable_is_exit_1(rsps, no_wait):
    rsps.get(re.compile(rf"{re.escape(API)}/studies.*"), body=REFUSED)
    rsps.get(re.compile(rf"{re.escape(API)}/studies.*"), body=REFUSED)
    res = run("match", PATIENT, "--live")
    assert res.exit_code == 1
    assert res.stderr.splitlines()[-1].startswith(
        f"Error: cannot reach {API}: connection refused (tried 2 times)"
    )


def test_a_real_closed_port_is_recognised_as_refused(tmp_path, no_wait):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed once the block ends
    url = f"http://127.0.0.1:{port}/api/v2"
    res = run("--api-url", url, "sync", "--db", tmp_path / "s.db")
    assert res.exit_code == 1
    assert (
        res.stderr.splitlines()[0] == "retry: connection refused; retrying in 2 s (attempt 2 of 2)"
    )


# ---- exit codes, per command -----------------------------------------------------------------
@pytest.fixture
def files(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": "a",')
    allbad = tmp_path / "allbad.json"
    allbad.write_text(json.dumps([{"id": "a", "age": 130}]))
    empty = tmp_path / "empty"
    empty.mkdir()
    notrial = tmp_path / "notrial.json"
    notrial.write_text('{"hello": 1}')
    return {"BAD": bad, "ALLBAD": allbad, "EMPTY": empty, "NOTRIAL": notrial, "OUT": tmp_path / "o"}


EXIT_CASES = [
    ("normalize ok", ["normalize", PATIENT], 0),
    ("normalize some failed", ["normalize", FIX / "patients" / "list_with_bad_row.csv"], 3),
    ("normalize all failed", ["normalize", "ALLBAD"], 4),
    ("normalize unreadable", ["normalize", "BAD"], 4),
    ("normalize missing file", ["normalize", "nope.json"], 2),
    ("normalize bad option value", ["normalize", PATIENT, "--format", "xls"], 2),
    ("options ok", ["options", PATIENT], 0),
    ("options unreadable", ["options", "BAD"], 4),
    ("import ok", ["import", TRIALS], 0),
    ("import empty folder", ["import", "EMPTY"], 4),
    ("import nothing readable", ["import", "NOTRIAL"], 4),
    ("trial from file", ["trial", FIX / "ctgov" / "NCT03453554.json"], 0),
    ("trial not in store", ["trial", "NCT00000000"], 1),
    (
        "trial unreadable patient",
        ["trial", FIX / "ctgov" / "NCT03453554.json", "--patient", "BAD"],
        4,
    ),
    ("match ok", ["match", PATIENT, "--trials", TRIALS], 0),
    ("match empty store", ["match", PATIENT], 1),
    ("match no readable trial", ["match", PATIENT, "--trials", "NOTRIAL"], 4),
    ("match unreadable patients", ["match", "BAD", "--trials", TRIALS], 4),
    ("match bad --top", ["match", PATIENT, "--top", "0"], 2),
    ("report ok", ["report", DEMO_PATIENTS, "--trials", DEMO_TRIALS, "--out", "OUT"], 0),
    ("report unreadable list", ["report", "BAD", "--trials", DEMO_TRIALS, "--out", "OUT"], 4),
    ("report unknown option", ["report", PATIENT, "--bogus"], 2),
    ("store info", ["store", "info"], 0),
    ("criteria check", ["criteria", "check"], 0),
]


@pytest.mark.parametrize(("name", "argv", "code"), EXIT_CASES, ids=[c[0] for c in EXIT_CASES])
def test_exit_codes(files, name, argv, code):
    res = run(*[files.get(a, a) if isinstance(a, str) else a for a in argv])
    assert res.exit_code == code, res.output


def test_import_empty_folder_says_no_files_were_found(files):
    res = run("import", files["EMPTY"])
    assert res.stderr == (
        f"Error: no record files (*.json, *.xml) found in {files['EMPTY']}; nothing imported\n"
    )


def test_match_without_a_readable_trial_says_so(files):
    res = run("match", PATIENT, "--trials", files["NOTRIAL"])
    assert res.stderr.splitlines()[-1] == (
        f"Error: no trial record could be read from {files['NOTRIAL']} (1 unreadable); "
        "pass API v2 JSON or classic XML records"
    )


def test_readme_exit_code_table_matches_the_code():
    from matcher import exitcodes

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    table = dict(re.findall(r"^\| `(\d)` \| (.+?) \|$", readme, flags=re.M))
    names = {v: k for k, v in vars(exitcodes).items() if k.startswith("EXIT_")}
    assert sorted(int(c) for c in table) == sorted(names)


# ---- terminal output --------------------------------------------------------------------------
def test_match_table_is_compact_and_fits_the_terminal():
    res = run(
        "match",
        PATIENT,
        "--trials",
        TRIALS,
        "--status",
        "any",
        "--top",
        "3",
        env={"COLUMNS": "100"},
    )
    assert res.exit_code == 0
    lines = res.stdout.splitlines()
    assert lines == [
        "Supports coordinator review; not medical advice.",
        "",
        "Patient LMS-001",
        "    #  NCT id       verdict       score  title                             nearest site",
        "    1  NCT02636725  needs_review   76.0  Axitinib and Pembrolizumab in S…  Miami, Florida (1,095 mi)",
        "    2  NCT05688280  needs_review   61.0  Intratumoral Injection of IP-00…  -",
        "    3  NCT02576665  needs_review   35.0  A Study of Toca 511, a Retrovir…  Miami, Florida (1,096 mi)",
        "  verify first: contraception requirements to confirm at consent (3); creatinine clearance "
        "not reco…",
        "  5 could join: 0 eligible, 5 to review (2 not shown: --top); 1 excluded, 10 unrelated "
        "(--explain)",
        "",
        "1 patient read, 0 failed, 0 warnings; 16 candidate trials.",
    ]
    assert max(len(line) for line in lines) <= 100


def test_explain_lists_reasons_and_links():
    res = run("match", PATIENT, "--trials", TRIALS, "--status", "any", "--top", "1", "--explain")
    lines = res.stdout.splitlines()
    assert "       https://clinicaltrials.gov/study/NCT02636725" in lines
    assert "  ... 4 more trials this patient could join (--top)" in lines


def test_colour_only_on_a_terminal_and_never_with_no_color(monkeypatch):
    import matcher.cli as mcli

    class Tty:
        def isatty(self):
            return True

    monkeypatch.setattr(mcli.sys, "stdout", Tty())
    monkeypatch.delenv("NO_COLOR", raising=False)
    assert mcli._use_color() is True
    monkeypatch.setenv("NO_COLOR", "1")
    assert mcli._use_color() is False
    monkeypatch.undo()
    assert mcli._use_color() is False  # CliRunner / a pipe: not a terminal


def test_colour_codes_when_on(monkeypatch):
    monkeypatch.setattr("matcher.cli._use_color", lambda: True)
    res = run("match", PATIENT, "--trials", TRIALS, "--top", "1")
    assert "\x1b[33mneeds_review" in res.stdout
    monkeypatch.setattr("matcher.cli._use_color", lambda: False)
    assert "\x1b[" not in run("match", PATIENT, "--trials", TRIALS, "--top", "1").stdout


QUIET_CASES = [
    (["normalize", PATIENT], "stdout-json"),
    (["options", PATIENT], "knowledge pack"),
    (["import", TRIALS], "Imported"),
    (["match", PATIENT, "--trials", TRIALS], "candidate trials."),
    (["report", DEMO_PATIENTS, "--trials", DEMO_TRIALS, "--out", "OUT"], "patients matched"),
    (["criteria", "check"], "ok  "),
    (["store", "info"], None),
    (["trial", FIX / "ctgov" / "NCT03453554.json"], None),
]


@pytest.mark.parametrize(("argv", "chatter"), QUIET_CASES, ids=[str(c[0][0]) for c in QUIET_CASES])
def test_quiet_and_verbose_on_every_command(files, argv, chatter):
    argv = [files.get(a, a) if isinstance(a, str) else a for a in argv]
    # a report's first run of a list says so: give each run a list of its own
    own = (lambda name: ["--list", name]) if argv[0] == "report" else (lambda name: [])
    loud = run(*argv, *own("loud"))
    quiet = run(*argv, "-q", *own("quiet"))
    verbose = run(*argv, "-v", *own("verbose"))
    assert loud.exit_code == quiet.exit_code == verbose.exit_code == 0
    if chatter and chatter != "stdout-json":
        assert chatter in loud.stdout
        assert chatter not in quiet.stdout
    assert len(verbose.output) >= len(loud.output) >= len(quiet.output)


@pytest.mark.parametrize(
    "argv",
    [
        ["normalize", "FILE"],
        ["options", "FILE"],
        ["match", "FILE", "--trials", TRIALS],
        ["trial", FIX / "ctgov" / "NCT03453554.json", "--patient", "FILE"],
        ["report", "FILE", "--trials", DEMO_TRIALS, "--out", "OUT"],
    ],
    ids=lambda a: str(a[0]),
)
def test_the_format_hint_works_on_every_command_that_reads_patients(tmp_path, argv):
    path = tmp_path / "list.dat"
    path.write_text("id|age\nP1|50\n")  # no known delimiter, no telling extension
    subst = {"FILE": path, "OUT": tmp_path / "o"}
    argv = [subst.get(a, a) if isinstance(a, str) else a for a in argv]
    res = run(*argv)
    assert res.exit_code == 4
    assert "pass --format json|csv|fhir" in res.stderr
    fixed = run(*argv, "--format", "csv")
    assert "no such option" not in fixed.output.lower()
    assert "pass --format" not in fixed.stderr


def test_verbose_prints_each_patients_input_warnings():
    path = FIX / "patients" / "spreadsheet_export.csv"
    quiet = run("match", path, "--trials", DEMO_TRIALS, "--top", "1")
    assert quiet.stderr == ""
    loud = run("match", path, "--trials", DEMO_TRIALS, "--top", "1", "-v")
    assert loud.stderr.splitlines() == [
        "warning: patient S02: zip '2115' read as '02115' (a spreadsheet dropped its leading zero)",
        "warning: patient S03: zip '7030' read as '07030' (a spreadsheet dropped its leading zero)",
    ]
    assert (
        loud.stdout.splitlines()[-1]
        == "3 patients read, 0 failed, 2 warnings; 125 candidate trials."
    )


def test_a_sync_cut_off_after_one_page_says_exactly_what_it_kept(rsps, tmp_path, no_wait):
    page = json.loads((FIX / "ctgov" / "response_10.json").read_text(encoding="utf-8"))
    rsps.get(f"{API}/version", json={"apiVersion": "2.0.5", "dataTimestamp": "2026-01-01"})
    rsps.get(f"{API}/studies", json=page)
    rsps.get(f"{API}/studies", body=REFUSED)
    rsps.get(f"{API}/studies", body=REFUSED)
    res = run("sync", "--condition", "sarcoma", "--db", tmp_path / "s.db")
    assert res.exit_code == 1
    assert res.stderr.splitlines()[-1] == (
        f"Error: cannot reach {API}: connection refused (tried 2 times); check the network "
        "connection or --api-url. 1 page (5 studies) fetched before the failure are stored; "
        "run the same command again to resume."
    )
