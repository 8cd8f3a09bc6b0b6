"""``trialmatch match`` on the command line: sources, formats, and errors that say what to do."""

from __future__ import annotations

import csv
import io
import json

import pytest
from click.testing import CliRunner

from matcher.cli import cli


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def test_empty_store_says_how_to_fill_it(fixtures_dir, tmp_path):
    db = tmp_path / "empty.sqlite"
    result = run("--db", db, "match", fixtures_dir / "patients" / "lms-001.json")
    assert result.exit_code == 1
    assert result.output == (
        f"Error: the trial store {db} is empty: run 'trialmatch sync' or "
        "'trialmatch import PATH', or pass --trials PATH\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--json", "--csv"], "Error: choose one of --json and --csv"),
        (["--live", "--trials", "fixtures"], "Error: choose one source: --live or --trials"),
        (
            ["--status", "CLOSED"],
            "Error: Invalid value for --status: unknown status CLOSED; accepted: open (default), "
            "any, or a comma list of",
        ),
    ],
)
def test_usage_errors(fixtures_dir, args, message):
    args = [str(fixtures_dir) if a == "fixtures" else a for a in args]
    result = run("match", fixtures_dir / "patients" / "lms-001.json", *args)
    assert result.exit_code == 2
    assert message in result.output


def test_store_and_files_give_the_same_answer(fixtures_dir, tmp_path):
    db = tmp_path / "t.sqlite"
    trials = fixtures_dir / "trials"
    patient = fixtures_dir / "patients" / "asps-005.json"
    assert run("--db", db, "import", trials).exit_code == 0
    from_store = run("--db", db, "match", patient, "--status", "any", "--json")
    from_files = run("match", patient, "--trials", trials, "--status", "any", "--json")
    assert from_store.exit_code == from_files.exit_code == 0
    a, b = json.loads(from_store.stdout), json.loads(from_files.stdout)
    assert a == b
    assert [p["patient_id"] for p in a] == ["ASPS-005"]
    assert "NCT01391962" in {t["nct_id"] for t in a[0]["trials"]}


def test_terminal_output_carries_the_disclaimer_and_reasons(fixtures_dir):
    result = run(
        "match",
        fixtures_dir / "patients" / "lms-001.json",
        "--trials",
        fixtures_dir / "trials",
        "--status",
        "any",
    )
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0] == "Supports coordinator review; not medical advice."
    assert "Patient LMS-001" in lines
    assert not any(line.strip().startswith("+ ") for line in lines)  # reasons: --explain
    explained = run(
        "match",
        fixtures_dir / "patients" / "lms-001.json",
        "--trials",
        fixtures_dir / "trials",
        "--status",
        "any",
        "--explain",
    ).stdout.splitlines()
    assert any(line.strip().startswith("+ soft tissue sarcoma trial") for line in explained)
    assert any(line.strip().startswith("excluded (") for line in explained)


def test_csv_rows_and_header(fixtures_dir):
    result = run(
        "match",
        fixtures_dir / "patients" / "lms-001.json",
        "--trials",
        fixtures_dir / "trials",
        "--status",
        "any",
        "--csv",
    )
    assert result.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert rows and {r["patient_id"] for r in rows} == {"LMS-001"}
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    assert {r["verdict"] for r in rows} <= {"eligible", "needs_review", "excluded"}


def test_one_bad_patient_is_reported_and_the_rest_matched(fixtures_dir):
    result = run(
        "match",
        fixtures_dir / "patients" / "list_with_bad_row.csv",
        "--trials",
        fixtures_dir / "trials",
        "--json",
    )
    assert result.exit_code == 3
    assert [p["patient_id"] for p in json.loads(result.stdout)] == ["D01", "D02", "D03"]
    assert "patient 'D17', field 'ecog'" in result.stderr
