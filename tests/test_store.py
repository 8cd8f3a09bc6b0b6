"""The SQLite trial store: migrations, upserts, idempotent import, round trips."""

from __future__ import annotations

import copy
import json
import sqlite3

import pytest

import matcher.store as store_mod
from matcher.errors import StoreError
from matcher.records import iter_records, record_nct_id
from matcher.store import (
    MIGRATIONS,
    OPEN_STATUSES,
    Store,
    content_hash,
    default_db_path,
    import_paths,
    register_migration,
)


def TRIAL_DIRS(fixtures_dir):  # noqa: N802 - reads as a constant
    """The trial fixture folders this file's expectations were counted on."""
    return [fixtures_dir / "trials" / s for s in ("classic-xml-sarcoma", "classic-xml-2023", "v2")]


@pytest.fixture
def st(tmp_path):
    with Store(tmp_path / "trials.sqlite") as s:
        yield s


def fixture_records(fixtures_dir, name):
    return [i.record for i in iter_records(fixtures_dir / "ctgov" / name)]


def store_migrations():
    """The store's own migrations (other modules, e.g. the report history, register >= 100)."""
    return [m for m in MIGRATIONS if m[0] < 100]


def test_fresh_store_is_migrated_in_wal_mode(st):
    assert [v for v in st.schema_versions() if v < 100] == [1, 2, 3, 4]
    names = [
        r[0]
        for r in st.connection.execute(
            "SELECT name FROM schema_migrations WHERE version < 100 ORDER BY 1"
        )
    ]
    assert names == ["meta", "sync_runs", "trials", "trials_missing"]
    assert st.connection.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert st.migrate() == []  # nothing left to apply


def test_registered_migration_runs_once_in_order(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "MIGRATIONS", store_migrations())
    path = tmp_path / "t.sqlite"
    Store(path).close()
    register_migration(
        110,
        "report_runs",
        "CREATE TABLE report_runs (id INTEGER PRIMARY KEY, started TEXT);"
        "CREATE TRIGGER report_runs_t AFTER INSERT ON report_runs BEGIN "
        "UPDATE report_runs SET started = 'x' WHERE id = new.id; END;",
    )
    register_migration(105, "report_matches", "CREATE TABLE report_matches (run_id INTEGER)")
    register_migration(105, "report_matches", "CREATE TABLE report_matches (run_id INTEGER)")
    with Store(path) as s:
        assert s.schema_versions() == [1, 2, 3, 4, 105, 110]
        s.connection.execute("INSERT INTO report_runs (id) VALUES (1)")
        assert s.connection.execute("SELECT started FROM report_runs").fetchone()[0] == "x"
        assert s.migrate() == []
    with pytest.raises(
        StoreError, match="migration version 105 already registered as 'report_matches'"
    ):
        register_migration(105, "other", "SELECT 1")


def test_failed_migration_is_rolled_back(tmp_path, monkeypatch):
    monkeypatch.setattr(store_mod, "MIGRATIONS", store_migrations())
    register_migration(120, "broken", "CREATE TABLE ok_part (x); CREATE TABLE oops (")
    with pytest.raises(StoreError, match=r"migration 120 \(broken\) failed"):
        Store(tmp_path / "t.sqlite")
    db = sqlite3.connect(tmp_path / "t.sqlite")
    tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    db.close()
    assert "ok_part" not in tables
    assert "trials" in tables


def test_not_a_database_is_a_clear_store_error(tmp_path):
    bad = tmp_path / "notes.sqlite"
    bad.write_text("this is not sqlite " * 200, encoding="utf-8")
    with pytest.raises(
        StoreError, match=r"notes.sqlite: cannot open the trial store \(file is not a database\)"
    ):
        Store(bad)


@pytest.mark.parametrize(
    ("env", "expected_tail"),
    [("custom/place.sqlite", ("custom", "place.sqlite")), (None, ("trialmatch", "trials.sqlite"))],
)
def test_default_db_path(monkeypatch, tmp_path, env, expected_tail):
    if env:
        monkeypatch.setenv("TRIALMATCH_DB", str(tmp_path / env))
    else:
        monkeypatch.delenv("TRIALMATCH_DB", raising=False)
    assert default_db_path().parts[-2:] == expected_tail


@pytest.mark.parametrize("name", ["NCT00184067.json", "response_10.json", "ctg-studies.json"])
def test_round_trip_api_json_to_store_and_back(st, fixtures_dir, name):
    records = fixture_records(fixtures_dir, name)
    counts = st.upsert_records(records, source=f"import: {name}")
    assert (counts.added, counts.updated, counts.unchanged) == (len(records), 0, 0)
    for rec in records:
        assert st.get(record_nct_id(rec)) == rec
        assert st.get(record_nct_id(rec).lower()) == rec


def test_upsert_counts_unchanged_updated_and_stale(st, fixtures_dir):
    rec = fixture_records(fixtures_dir, "NCT00184067.json")[0]
    assert st.upsert_records([rec], "a").added == 1
    again = st.upsert_records([copy.deepcopy(rec)], "a")
    assert (again.added, again.updated, again.unchanged) == (0, 0, 1)

    newer = copy.deepcopy(rec)
    newer["protocolSection"]["statusModule"]["overallStatus"] = "COMPLETED"
    newer["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = "2099-01-01"
    assert st.upsert_records([newer], "b").updated == 1
    assert st.get("NCT00184067") == newer
    meta = st.get_meta("NCT00184067")
    assert (meta["overall_status"], meta["last_update"], meta["source"]) == (
        "COMPLETED",
        "2099-01-01",
        "b",
    )
    # The original (older) version never overwrites the newer one.
    older = st.upsert_records([rec], "c")
    assert (older.updated, older.stale) == (0, 1)
    assert st.get("NCT00184067") == newer


def test_invalid_records_are_counted_as_errors_rest_written(st, fixtures_dir):
    good = fixture_records(fixtures_dir, "NCT00184067.json")[0]
    counts = st.upsert_records([{"protocolSection": {}}, good], "x.json")
    assert counts.added == 1
    assert [str(e) for e in counts.errors] == [
        "x.json: study has no protocolSection.identificationModule.nctId"
    ]


def test_a_failing_batch_writes_nothing(st, fixtures_dir):
    records = fixture_records(fixtures_dir, "response_10.json")

    def gen():
        yield records[0]
        yield records[1]
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        st.upsert_records(gen(), "x")
    assert st.count() == 0


def test_iter_records_by_status_and_counts(st, fixtures_dir):
    records = fixture_records(fixtures_dir, "ctg-studies.json")
    st.upsert_records(records, "export")
    by_status: dict[str, list[str]] = {}
    for r in records:
        by_status.setdefault(r["protocolSection"]["statusModule"]["overallStatus"], []).append(
            record_nct_id(r)
        )
    assert st.count_by_status() == {k: len(v) for k, v in by_status.items()}
    assert st.count() == len(records)
    open_ids = sorted(n for s, ids in by_status.items() if s in OPEN_STATUSES for n in ids)
    assert [record_nct_id(r) for r in st.iter_records(OPEN_STATUSES)] == open_ids
    assert st.count({"recruiting"}) == len(by_status.get("RECRUITING", []))
    assert list(st.iter_records(set())) == []
    assert [record_nct_id(r) for r in st.iter_records()] == sorted(
        record_nct_id(r) for r in records
    )


def test_iter_records_streams_thousands(st):
    many = [
        {
            "protocolSection": {
                "identificationModule": {"nctId": f"NCT9{i:07d}"},
                "statusModule": {"overallStatus": "RECRUITING" if i % 2 else "COMPLETED"},
            }
        }
        for i in range(6000)
    ]
    assert st.upsert_records(many, "synthetic").added == 6000
    got = list(st.iter_records({"RECRUITING"}))
    assert len(got) == 3000
    assert got[0]["protocolSection"]["identificationModule"]["nctId"] == "NCT90000001"


def test_import_paths_is_idempotent(st, fixtures_dir):
    paths = [fixtures_dir / "ctgov", *TRIAL_DIRS(fixtures_dir)]
    first = import_paths(st, paths)
    n = st.count()
    assert first.errors == []
    assert first.added == n
    assert first.records == first.added + first.updated + first.unchanged + first.stale
    hashes = {r[0]: r[1] for r in st.connection.execute("SELECT nct_id, content_hash FROM trials")}
    second = import_paths(st, paths)
    assert (second.added, second.updated) == (0, 0)
    assert second.unchanged + second.stale == first.records
    assert st.count() == n
    assert {
        r[0]: r[1] for r in st.connection.execute("SELECT nct_id, content_hash FROM trials")
    } == hashes


def test_import_paths_reports_bad_files_and_goes_on(st, fixtures_dir, tmp_path):
    (tmp_path / "broken.json").write_text("[{", encoding="utf-8")
    (tmp_path / "good.json").write_bytes((fixtures_dir / "ctgov" / "NCT00184067.json").read_bytes())
    result = import_paths(st, [tmp_path])
    assert result.added == 1
    assert [str(e) for e in result.errors] == [
        f"{tmp_path / 'broken.json'}: malformed JSON at line 1, column 3: "
        "Expecting property name enclosed in double quotes"
    ]
    assert st.get_meta("NCT00184067")["source"] == f"import: {tmp_path / 'good.json'}"


def test_content_hash_ignores_key_order():
    assert content_hash({"a": 1, "b": [1, 2]}) == content_hash(json.loads('{"b": [1, 2], "a": 1}'))
    assert content_hash({"a": 1}) != content_hash({"a": 2})


def test_info_summarises_store(st, fixtures_dir):
    st.upsert_records(fixture_records(fixtures_dir, "response_10.json"), "x")
    info = st.info()
    assert info["trials"] == 5
    assert sum(info["by_status"].values()) == 5
    assert info["last_sync"] is None
    assert info["data_timestamp"] is None


# ---- CLI: trialmatch import / store info ------------------------------------------------------


def run_cli(args):
    from click.testing import CliRunner

    from matcher.cli import cli

    return CliRunner().invoke(cli, args)


def test_cli_import_twice_changes_nothing(tmp_path, fixtures_dir):
    db = tmp_path / "cli.sqlite"
    paths = [str(p) for p in [fixtures_dir / "ctgov", *TRIAL_DIRS(fixtures_dir)]]
    first = run_cli(["--db", str(db), "import", *paths])
    assert first.exit_code == 0, first.output
    # 38 records, 37 trials: NCT00184067 is both a single file and an entry of response_4.json.
    assert first.stdout.splitlines() == [
        "Imported 38 records: 37 added, 0 updated, 1 unchanged, 0 older than stored "
        "(kept the stored one); 0 errors.",
        f"Store {db}: 37 trials.",
    ]
    second = run_cli(["--db", str(db), "import", *paths])
    assert second.exit_code == 0
    assert second.stdout.splitlines() == [
        "Imported 38 records: 0 added, 0 updated, 38 unchanged, 0 older than stored "
        "(kept the stored one); 0 errors.",
        f"Store {db}: 37 trials.",
    ]


@pytest.mark.parametrize(
    ("files", "code"),
    [({"bad.json": "[{", "good.json": None}, 3), ({"bad.json": "[{"}, 4)],
)
def test_cli_import_exit_codes_and_per_file_errors(tmp_path, fixtures_dir, files, code):
    folder = tmp_path / "in"
    folder.mkdir()
    for name, text in files.items():
        if text is None:
            (folder / name).write_bytes((fixtures_dir / "ctgov" / "NCT00184067.json").read_bytes())
        else:
            (folder / name).write_text(text, encoding="utf-8")
    res = run_cli(["--db", str(tmp_path / "x.sqlite"), "import", str(folder)])
    assert res.exit_code == code
    assert res.stderr.splitlines() == [
        f"error: {folder / 'bad.json'}: malformed JSON at line 1, column 3: "
        "Expecting property name enclosed in double quotes"
    ]


def test_cli_import_json_and_store_info(tmp_path, fixtures_dir):
    db = tmp_path / "cli.sqlite"
    res = run_cli(
        ["--db", str(db), "import", "--json", str(fixtures_dir / "ctgov" / "response_10.json")]
    )
    assert json.loads(res.stdout) == {
        "added": 5,
        "updated": 0,
        "unchanged": 0,
        "stale": 0,
        "errors": [],
        "store": str(db),
        "trials_in_store": 5,
    }
    info = run_cli(["--db", str(db), "store", "info"])
    assert info.exit_code == 0
    lines = info.stdout.splitlines()
    assert lines[:2] == [f"Store: {db}", "Trials: 5"]
    assert lines[-3:] == [
        "Last sync: never (run 'trialmatch sync', or 'trialmatch import PATH')",
        "Data timestamp: unknown",
        "Open trials last re-checked by id: never",
    ]


def test_cli_uses_env_db_by_default(tmp_path, fixtures_dir, monkeypatch):
    db = tmp_path / "env.sqlite"
    monkeypatch.setenv("TRIALMATCH_DB", str(db))
    res = run_cli(["import", str(fixtures_dir / "ctgov" / "NCT00184067.json")])
    assert res.exit_code == 0
    assert res.stdout.splitlines()[-1] == f"Store {db}: 1 trials."
