"""`trialmatch normalize`: output, per-patient errors, exit codes, clean messages."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from matcher.cli import cli


def run(*args):
    result = CliRunner().invoke(cli, ["normalize", *map(str, args)])
    # never a traceback on user input: only clean exits
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result


@pytest.mark.parametrize(
    ("rel", "ids"),
    [
        ("patients/lms-001.json", ["LMS-001"]),
        ("patients/patients.json", None),
        ("patients/coordinator_list.csv", None),
        ("patients/synovial-child-lung-mets.fhir.json", ["fhir-ss-child"]),
        ("patients/lms-liver-mets-doxorubicin.fhir.json", ["5b0c7a4e-3f7d-4a53-9a57-2c1d0e3a0f11"]),
        ("patients/imt-alk-unknown.fhir.json", ["fhir-imt-01"]),
        ("fhir", None),
    ],
)
def test_examples_normalize_cleanly(fixtures_dir, rel, ids):
    result = run(fixtures_dir / rel, "--as-of", "2026-06-01")
    assert result.exit_code == 0, result.stderr
    assert result.stderr == ""
    out = json.loads(result.stdout)
    assert isinstance(out, list) and out
    assert all(isinstance(p["warnings"], list) for p in out)
    if ids is not None:
        assert [p["id"] for p in out] == ids


def test_output_shape(fixtures_dir):
    result = run(fixtures_dir / "patients" / "coordinator_list.csv", "--as-of", "2026-06-01")
    c01 = json.loads(result.stdout)[0]
    assert c01["id"] == "C01"
    assert c01["diagnosis"] == "leiomyosarcoma"
    assert c01["ecog"] == 1 and c01["ecog_converted_from"] == "karnofsky"
    assert c01["prior_therapies"][0] == {
        "text": "Adriamycin",
        "name": "doxorubicin",
        "kind": "drug",
        "classes": c01["prior_therapies"][0]["classes"],
    }
    assert "anthracycline" in c01["prior_therapies"][0]["classes"]
    assert "diagnosis 'leiomyosarcma' resolved to 'leiomyosarcoma' (score 96)" in c01["warnings"]


def test_as_of_changes_ages(fixtures_dir):
    path = fixtures_dir / "patients" / "ss-004.json"
    before = json.loads(run(path, "--as-of", "2025-05-01").stdout)[0]
    after = json.loads(run(path, "--as-of", "2025-05-02").stdout)[0]
    assert (before["age"], after["age"]) == (17.99, 18.0)


def test_one_bad_patient_exit_3(fixtures_dir):
    path = fixtures_dir / "patients" / "list_with_bad_row.csv"
    result = run(path, "--as-of", "2026-06-01")
    assert result.exit_code == 3
    assert len(json.loads(result.stdout)) == 3
    assert result.stderr == (
        f"error: {path}, line 2, patient 'D17', field 'ecog': ECOG '7' is out of range (accepted: 0-4)\n"
    )


def test_all_bad_exit_4(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps([{"id": "a", "age": 130}, {"id": "b", "sex": "?x"}]))
    result = run(path)
    assert result.exit_code == 4
    assert json.loads(result.stdout) == []
    assert result.stderr.splitlines() == [
        f"error: {path}, entry 1, patient 'a', field 'age': age 130 is out of range (accepted: 0-120 years)",
        f"error: {path}, entry 2, patient 'b', field 'sex': unknown sex '?x' (accepted: female, male, F, M (any case))",
    ]


def test_malformed_json_exit_4(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('[\n{"id": "a"\n')
    result = run(path)
    assert result.exit_code == 4
    assert result.stdout == ""
    assert result.stderr == (
        f"Error: {path}, line 3, column 1: invalid JSON: Expecting ',' delimiter\n"
    )


def test_malformed_csv_exit_4(tmp_path):
    path = tmp_path / "broken.csv"
    path.write_text("who,age\nx,4\n")
    result = run(path)
    assert result.exit_code == 4
    assert result.stderr == (
        f"Error: {path}, line 1: CSV header has no 'id' column (columns: who, age); "
        "name the patient id column 'id' (or 'Patient ID', 'MRN')\n"
    )


def test_malformed_fhir_exit_4(tmp_path):
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"resourceType": "Bundle", "entry": [{"resource": {"id": 1}}]}))
    result = run(path, "--format", "fhir")
    assert result.exit_code == 4
    assert result.stderr == f"Error: {path}, Bundle.entry[0]: entry resource has no resourceType\n"


def test_json_read_as_csv_is_explained(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('[{"id": "a"}]')
    result = run(path, "--format", "csv")
    assert result.exit_code == 4
    assert result.stderr.startswith(f"Error: {path}, line 1: CSV header has no 'id' column")


def test_missing_file_is_a_usage_error(tmp_path):
    result = run(tmp_path / "nope.json")
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_bad_as_of_is_a_usage_error(fixtures_dir):
    result = run(fixtures_dir / "patients" / "lms-001.json", "--as-of", "01/06/2026")
    assert result.exit_code == 2
    assert "'01/06/2026' does not match the format '%Y-%m-%d'" in result.stderr
