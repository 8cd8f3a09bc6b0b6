"""The embedded trial store: one SQLite file holding trial records and sync history.

Trials are keyed by NCT id; each row keeps the raw v2 record JSON, its last-update date,
overall status, fetch time, source and a content hash (so re-importing the same record
changes nothing). Sync runs are recorded with their query, counts, ``dataTimestamp`` and a
resume state. Schema changes are ordered migrations recorded in ``schema_migrations``;
other modules add theirs with :func:`register_migration` (use versions >= 100).
"""

from __future__ import annotations

import hashlib
import json
import os
import sqlite3
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from matcher.errors import RecordError, StoreError
from matcher.records import check_record, record_last_update, record_nct_id, record_status

DB_ENV = "TRIALMATCH_DB"
DB_FILENAME = "trials.sqlite"

# Statuses a patient can still enrol in (the matcher's default candidate set).
OPEN_STATUSES = frozenset({"RECRUITING", "NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION"})

RUN_STATUSES = ("running", "ok", "failed", "interrupted")

# (version, name, sql): applied in version order, each in one transaction, recorded in
# schema_migrations. Versions 1-99 belong to the store; other modules register >= 100.
MIGRATIONS: list[tuple[int, str, str]] = [
    (
        1,
        "trials",
        """
        CREATE TABLE trials (
            nct_id         TEXT PRIMARY KEY,
            record         TEXT NOT NULL,     -- raw v2 study JSON
            content_hash   TEXT NOT NULL,     -- sha256 of the canonical JSON
            last_update    TEXT,              -- lastUpdatePostDateStruct.date
            version_holder TEXT,              -- derivedSection.miscInfoModule.versionHolder
            overall_status TEXT,
            fetched_at     TEXT NOT NULL,     -- when this version was written (UTC)
            first_seen     TEXT NOT NULL,
            source         TEXT NOT NULL,     -- "api: <url>" or "import: <file, entry N>"
            seen_run       INTEGER            -- last sync run that returned it (closure checks)
        );
        CREATE INDEX trials_status ON trials (overall_status);
        """,
    ),
    (
        2,
        "sync_runs",
        """
        CREATE TABLE sync_runs (
            id             INTEGER PRIMARY KEY AUTOINCREMENT,
            query          TEXT NOT NULL,     -- JSON: conditions, statuses (the run's signature)
            mode           TEXT NOT NULL,     -- 'full' or 'incremental'
            since          TEXT,              -- incremental lower bound (yyyy-MM-dd)
            started_at     TEXT NOT NULL,
            finished_at    TEXT,
            pages          INTEGER NOT NULL DEFAULT 0,
            studies        INTEGER NOT NULL DEFAULT 0,
            added          INTEGER NOT NULL DEFAULT 0,
            updated        INTEGER NOT NULL DEFAULT 0,
            unchanged      INTEGER NOT NULL DEFAULT 0,
            skipped        INTEGER NOT NULL DEFAULT 0,
            data_timestamp TEXT,
            status         TEXT NOT NULL CHECK (status IN ('running','ok','failed','interrupted')),
            error          TEXT,
            state          TEXT               -- JSON resume state (request list, index, page token)
        );
        CREATE INDEX sync_runs_query ON sync_runs (query, status);
        """,
    ),
    (
        3,
        "meta",
        "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);",
    ),
    (
        4,
        "trials_missing",
        """
        -- A trial the registry stopped returning (withdrawn from the API, or a re-check by id
        -- that came back without it): never offered as a candidate until a sync sees it again.
        ALTER TABLE trials ADD COLUMN missing_since TEXT;
        ALTER TABLE trials ADD COLUMN missing_reason TEXT;
        """,
    ),
]

# meta key: when stored open trials were last re-checked by id (full runs, --recheck, weekly).
RECHECK_META = "last_recheck"


def register_migration(version: int, name: str, sql: str) -> None:
    """Add a migration (e.g. report history) applied by every later ``Store.migrate()``.

    ``version`` must be unique; versions below 100 are reserved for the store itself.
    Registering the exact same migration twice is a no-op (module reloads).
    """
    for v, n, s in MIGRATIONS:
        if v == version:
            if (n, s) == (name, sql):
                return
            raise StoreError(f"migration version {version} already registered as {n!r}")
    MIGRATIONS.append((version, name, sql))
    MIGRATIONS.sort(key=lambda m: m[0])


def default_db_path() -> Path:
    """The store path: env ``TRIALMATCH_DB`` if set, else ``trials.sqlite`` in the user data dir."""
    override = os.environ.get(DB_ENV)
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("trialmatch", appauthor=False)) / DB_FILENAME


def now_iso() -> str:
    """UTC now, ``yyyy-MM-ddTHH:MM:SSZ``."""
    return datetime.now(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def content_hash(record: dict) -> str:
    """sha256 of the record's canonical JSON (sorted keys, compact): equal records, equal hash."""
    blob = json.dumps(record, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(blob.encode("utf-8")).hexdigest()


@dataclass
class UpsertCounts:
    """What one upsert did: ``added`` new trials, ``updated`` changed ones, ``unchanged`` same
    content, ``stale`` older than the stored version (kept the stored one), ``errors`` rejected."""

    added: int = 0
    updated: int = 0
    unchanged: int = 0
    stale: int = 0
    errors: list[RecordError] = field(default_factory=list)

    def add(self, other: UpsertCounts) -> None:
        self.added += other.added
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.stale += other.stale
        self.errors.extend(other.errors)

    @property
    def written(self) -> int:
        return self.added + self.updated

    def to_dict(self) -> dict:
        return {
            "added": self.added,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "stale": self.stale,
            "errors": len(self.errors),
        }


@dataclass
class SyncRun:
    """One row of ``sync_runs``."""

    id: int
    query: dict
    mode: str
    since: str | None
    started_at: str
    finished_at: str | None
    pages: int
    studies: int
    added: int
    updated: int
    unchanged: int
    skipped: int
    data_timestamp: str | None
    status: str
    error: str | None
    state: dict | None


class Store:
    """SQLite trial store at ``path`` (created and migrated on open). Use as a context manager.

    ``path`` None means :func:`default_db_path`; ``":memory:"`` works for tests.
    """

    def __init__(self, path: str | Path | None = None, *, migrate: bool = True):
        if path is None:
            path = default_db_path()
        target = str(path)
        self.path: Path | str = target if target == ":memory:" else Path(path)
        if target != ":memory:":
            try:
                Path(target).parent.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(
                    f"{target}: cannot create the store's folder ({exc.strerror}); "
                    "pass --db PATH or set TRIALMATCH_DB to a writable location"
                ) from None
        self._db: sqlite3.Connection | None = None
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves (one transaction per page).
            self._db = sqlite3.connect(target, isolation_level=None, timeout=30)
            self._db.row_factory = sqlite3.Row
            if target != ":memory:":
                self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.execute("PRAGMA foreign_keys=ON")
        except sqlite3.Error as exc:
            self.close()
            raise StoreError(
                f"{target}: cannot open the trial store ({exc}); check the path, or pass "
                "--db PATH / set TRIALMATCH_DB"
            ) from None
        if migrate:
            try:
                self.migrate()
            except StoreError:
                self.close()
                raise

    # -- lifecycle -------------------------------------------------------------------------

    def close(self) -> None:
        """Close the connection (idempotent)."""
        if self._db is not None:
            self._db.close()
            self._db = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    @property
    def connection(self) -> sqlite3.Connection:
        """The underlying connection (for modules that own their own tables)."""
        if self._db is None:
            raise StoreError(f"{self.path}: the store is closed")
        return self._db

    def transaction(self):
        """Context manager: ``with store.transaction(): ...`` runs in one BEGIN IMMEDIATE/COMMIT."""
        return _Transaction(self.connection)

    # -- migrations ------------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply pending migrations from :data:`MIGRATIONS` in order; return the versions applied."""
        db = self.connection
        try:
            db.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at TEXT NOT NULL)"
            )
            done = {r[0] for r in db.execute("SELECT version FROM schema_migrations")}
        except sqlite3.DatabaseError as exc:
            raise StoreError(
                f"{self.path}: not a trial store or damaged ({exc}); move it aside or pass "
                "another --db"
            ) from None
        applied = []
        for version, name, sql in sorted(MIGRATIONS, key=lambda m: m[0]):
            if version in done:
                continue
            try:
                db.execute("BEGIN IMMEDIATE")
                for statement in _split_sql(sql):
                    db.execute(statement)
                db.execute(
                    "INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)",
                    (version, name, now_iso()),
                )
                db.execute("COMMIT")
            except sqlite3.Error as exc:
                db.execute("ROLLBACK")
                raise StoreError(
                    f"{self.path}: migration {version} ({name}) failed: {exc}"
                ) from None
            applied.append(version)
        return applied

    def schema_versions(self) -> list[int]:
        """Versions recorded in ``schema_migrations``, ascending."""
        return [
            r[0]
            for r in self.connection.execute("SELECT version FROM schema_migrations ORDER BY 1")
        ]

    # -- trials ----------------------------------------------------------------------------

    def upsert_records(
        self, records: Iterable[dict], source: str, *, fetched_at: str | None = None
    ) -> UpsertCounts:
        """Write ``records`` (v2 study dicts) in ONE transaction; return the counts.

        A record whose content hash equals the stored one is ``unchanged`` (nothing written);
        one older than the stored version (by last-update date) is ``stale`` and skipped.
        Invalid records are collected in ``counts.errors``; the rest are still written.
        """
        counts = UpsertCounts()
        when = fetched_at or now_iso()
        with self.transaction():
            self._upsert_into(records, source, when, counts)
        return counts

    def _upsert_into(
        self,
        records: Iterable[dict],
        source: str,
        when: str,
        counts: UpsertCounts,
        run_id: int | None = None,
        ties_replace: bool = False,
    ) -> None:
        """Upsert without a transaction of its own. ``ties_replace``: a record with the same
        (last update, version) as the stored one but other content replaces it (the live API
        is the authority); imports keep the stored one, so re-imports never flip-flop."""
        db = self.connection
        for record in records:
            try:
                check_record(record, source)
            except RecordError as exc:
                counts.errors.append(exc)
                continue
            nct = record_nct_id(record)
            digest = content_hash(record)
            last = record_last_update(record)
            holder = _version_holder(record)
            row = db.execute(
                "SELECT content_hash, last_update, version_holder FROM trials WHERE nct_id = ?",
                (nct,),
            ).fetchone()
            if row is None:
                db.execute(
                    "INSERT INTO trials (nct_id, record, content_hash, last_update, version_holder, "
                    "overall_status, fetched_at, first_seen, source) VALUES (?,?,?,?,?,?,?,?,?)",
                    (
                        nct,
                        _dumps(record),
                        digest,
                        last,
                        holder,
                        record_status(record),
                        when,
                        when,
                        source,
                    ),
                )
                counts.added += 1
            elif row["content_hash"] == digest:
                counts.unchanged += 1
            elif _not_newer(
                (last or "", holder or ""),
                (row["last_update"] or "", row["version_holder"] or ""),
                ties_replace,
            ):
                # Not newer than what is stored (an older download, or the same version in
                # another shape): keep the stored one, so re-imports never flip-flop.
                counts.stale += 1
            else:
                db.execute(
                    "UPDATE trials SET record = ?, content_hash = ?, last_update = ?, "
                    "version_holder = ?, overall_status = ?, fetched_at = ?, source = ? "
                    "WHERE nct_id = ?",
                    (
                        _dumps(record),
                        digest,
                        last,
                        holder,
                        record_status(record),
                        when,
                        source,
                        nct,
                    ),
                )
                counts.updated += 1
            if run_id is not None:
                # The registry returned it: it exists, whatever an earlier re-check concluded.
                db.execute(
                    "UPDATE trials SET seen_run = ?, missing_since = NULL, missing_reason = NULL "
                    "WHERE nct_id = ?",
                    (run_id, nct),
                )

    def get(self, nct_id: str) -> dict | None:
        """The stored record for ``nct_id`` (any case), or None."""
        row = self.connection.execute(
            "SELECT record FROM trials WHERE nct_id = ?", (nct_id.strip().upper(),)
        ).fetchone()
        return json.loads(row[0]) if row else None

    def has(self, nct_id: str) -> bool:
        """True when ``nct_id`` is stored."""
        return (
            self.connection.execute(
                "SELECT 1 FROM trials WHERE nct_id = ?", (nct_id.strip().upper(),)
            ).fetchone()
            is not None
        )

    def get_meta(self, nct_id: str) -> dict | None:
        """Row metadata for ``nct_id`` (no record): last_update, overall_status, fetched_at, ..."""
        row = self.connection.execute(
            "SELECT nct_id, content_hash, last_update, overall_status, fetched_at, first_seen, "
            "source, missing_since, missing_reason FROM trials WHERE nct_id = ?",
            (nct_id.strip().upper(),),
        ).fetchone()
        return dict(row) if row else None

    def iter_records(self, statuses: Iterable[str] | None = None) -> Iterator[dict]:
        """Yield stored records (v2 dicts) ordered by NCT id; only ``statuses`` when given.

        With ``statuses``, trials the registry no longer returns (see :meth:`mark_missing`)
        are left out: their stored status is the last one known, not a current one.

        One indexed query streamed with a cursor: cheap for tens of thousands of trials.
        """
        for _nct, _hash, record in self.iter_rows(statuses):
            yield record

    def iter_rows(self, statuses: Iterable[str] | None = None) -> Iterator[tuple[str, str, dict]]:
        """Like :meth:`iter_records`, yielding ``(nct_id, content_hash, record)``."""
        sql = "SELECT nct_id, content_hash, record FROM trials"
        params: tuple = ()
        if statuses is not None:
            wanted = sorted({s.upper() for s in statuses})
            if not wanted:
                return
            sql += f" WHERE overall_status IN ({','.join('?' * len(wanted))}) {_PRESENT}"
            params = tuple(wanted)
        sql += " ORDER BY nct_id"
        cur = self.connection.execute(sql, params)
        loads = json.loads
        while True:
            rows = cur.fetchmany(500)
            if not rows:
                break
            for nct, digest, record in rows:
                yield nct, digest, loads(record)

    def unseen_ids(self, run_id: int, statuses: Iterable[str]) -> list[str]:
        """Stored NCT ids with one of ``statuses`` that sync run ``run_id`` did not return."""
        wanted = sorted({s.upper() for s in statuses})
        if not wanted:
            return []
        rows = self.connection.execute(
            f"SELECT nct_id FROM trials WHERE overall_status IN ({','.join('?' * len(wanted))}) "
            "AND (seen_run IS NULL OR seen_run != ?) ORDER BY nct_id",
            (*wanted, run_id),
        )
        return [r[0] for r in rows]

    def unseen_ids_among(self, run_id: int, nct_ids: Iterable[str]) -> list[str]:
        """Those of ``nct_ids`` (stored ones only) that sync run ``run_id`` did not return."""
        ids = sorted({i.strip().upper() for i in nct_ids if i.strip()})
        out: list[str] = []
        for start in range(0, len(ids), 500):  # stay below SQLite's bound-parameter limit
            chunk = ids[start : start + 500]
            rows = self.connection.execute(
                f"SELECT nct_id FROM trials WHERE nct_id IN ({','.join('?' * len(chunk))}) "
                "AND (seen_run IS NULL OR seen_run != ?) ORDER BY nct_id",
                (*chunk, run_id),
            )
            out += [r[0] for r in rows]
        return out

    def nct_ids(self, statuses: Iterable[str] | None = None) -> list[str]:
        """Stored NCT ids (sorted), optionally only those with ``statuses``."""
        sql = "SELECT nct_id FROM trials"
        params: tuple = ()
        if statuses is not None:
            wanted = sorted({s.upper() for s in statuses})
            sql += f" WHERE overall_status IN ({','.join('?' * len(wanted)) or 'NULL'}) {_PRESENT}"
            params = tuple(wanted)
        return [r[0] for r in self.connection.execute(sql + " ORDER BY nct_id", params)]

    def count(self, statuses: Iterable[str] | None = None) -> int:
        """Number of stored trials (optionally only those with ``statuses``)."""
        if statuses is None:
            return self.connection.execute("SELECT COUNT(*) FROM trials").fetchone()[0]
        wanted = sorted({s.upper() for s in statuses})
        if not wanted:
            return 0
        return self.connection.execute(
            f"SELECT COUNT(*) FROM trials WHERE overall_status IN ({','.join('?' * len(wanted))}) "
            + _PRESENT,
            tuple(wanted),
        ).fetchone()[0]

    def count_by_status(self) -> dict[str, int]:
        """``{overall_status: n}`` over stored trials (``"(none)"`` for records without one;
        ``MISSING_STATUS`` for trials the registry no longer returns)."""
        rows = self.connection.execute(
            "SELECT CASE WHEN missing_since IS NOT NULL THEN ? "
            "ELSE COALESCE(overall_status, '(none)') END, COUNT(*) FROM trials "
            "GROUP BY 1 ORDER BY 2 DESC",
            (MISSING_STATUS,),
        )
        return {r[0]: r[1] for r in rows}

    def mark_missing(self, nct_ids: Iterable[str], reason: str) -> int:
        """Record that the registry no longer returns ``nct_ids`` (kept, with ``reason`` and the
        date first noticed, but no longer offered); return how many were newly marked. A later
        sync that returns the trial clears the mark."""
        ids = sorted({i.strip().upper() for i in nct_ids})
        newly = 0
        when = now_iso()
        with self.transaction():
            for nct in ids:
                cur = self.connection.execute(
                    "UPDATE trials SET missing_since = ?, missing_reason = ? "
                    "WHERE nct_id = ? AND missing_since IS NULL",
                    (when, reason, nct),
                )
                newly += cur.rowcount
        return newly

    def missing(self) -> list[dict]:
        """Trials marked as no longer returned by the registry: nct_id, last known status,
        missing_since, missing_reason (oldest mark first)."""
        rows = self.connection.execute(
            "SELECT nct_id, overall_status, missing_since, missing_reason FROM trials "
            "WHERE missing_since IS NOT NULL ORDER BY missing_since, nct_id"
        )
        return [dict(r) for r in rows]

    # -- meta and sync runs ------------------------------------------------------------------

    def set_meta(self, key: str, value: str) -> None:
        self.connection.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    def meta(self, key: str) -> str | None:
        row = self.connection.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return row[0] if row else None

    def data_timestamp(self) -> str | None:
        """The API ``dataTimestamp`` of the last successful sync (None if never synced)."""
        row = self.connection.execute(
            "SELECT data_timestamp FROM sync_runs WHERE status = 'ok' AND data_timestamp IS NOT NULL "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
        return row[0] if row else None

    def start_sync_run(
        self,
        query: dict,
        mode: str,
        since: str | None,
        data_timestamp: str | None,
        state: dict,
    ) -> int:
        """Insert a ``running`` sync run; return its id."""
        with self.transaction():
            cur = self.connection.execute(
                "INSERT INTO sync_runs (query, mode, since, started_at, data_timestamp, status, "
                "state) VALUES (?, ?, ?, ?, ?, 'running', ?)",
                (_query_key(query), mode, since, now_iso(), data_timestamp, _dumps(state)),
            )
            return cur.lastrowid

    def write_sync_page(
        self,
        run_id: int,
        records: Iterable[dict],
        source: str,
        state: dict,
        *,
        skipped: int = 0,
        fetched_at: str | None = None,
    ) -> UpsertCounts:
        """Write one page of records AND the run's new resume state in one transaction.

        Either both land or neither does, so a crash between pages never loses or repeats
        progress: the saved ``state`` always points at the first page not yet written.
        """
        counts = UpsertCounts()
        records = list(records)
        with self.transaction():
            self._upsert_into(
                records, source, fetched_at or now_iso(), counts, run_id, ties_replace=True
            )
            self.connection.execute(
                "UPDATE sync_runs SET pages = pages + 1, studies = studies + ?, added = added + ?, "
                "updated = updated + ?, unchanged = unchanged + ?, skipped = skipped + ?, "
                "state = ? WHERE id = ?",
                (
                    len(records) + skipped,
                    counts.added,
                    counts.updated,
                    counts.unchanged + counts.stale,
                    skipped,
                    _dumps(state),
                    run_id,
                ),
            )
        return counts

    def update_sync_state(self, run_id: int, state: dict, **fields) -> None:
        """Replace the run's resume ``state`` and set other columns (data_timestamp, ...)."""
        allowed = {"data_timestamp", "since", "mode", "status"}
        if "status" in fields and fields["status"] not in RUN_STATUSES:
            raise StoreError(f"sync run status {fields['status']!r} not one of {RUN_STATUSES}")
        bad = set(fields) - allowed
        if bad:
            raise StoreError(f"cannot set sync_runs columns {sorted(bad)}")
        sets = ["state = ?"] + [f"{k} = ?" for k in fields]
        with self.transaction():
            self.connection.execute(
                f"UPDATE sync_runs SET {', '.join(sets)} WHERE id = ?",
                (_dumps(state), *fields.values(), run_id),
            )

    def finish_sync_run(self, run_id: int, status: str, error: str | None = None) -> None:
        """Close a run with ``status`` (ok / failed / interrupted) and an optional error text."""
        if status not in RUN_STATUSES:
            raise StoreError(f"sync run status {status!r} not one of {RUN_STATUSES}")
        with self.transaction():
            self.connection.execute(
                "UPDATE sync_runs SET status = ?, finished_at = ?, error = ? WHERE id = ?",
                (status, now_iso(), error, run_id),
            )

    def sync_run(self, run_id: int) -> SyncRun | None:
        row = self.connection.execute("SELECT * FROM sync_runs WHERE id = ?", (run_id,)).fetchone()
        return _run(row) if row else None

    def sync_runs(self) -> list[SyncRun]:
        """All sync runs, oldest first."""
        return [_run(r) for r in self.connection.execute("SELECT * FROM sync_runs ORDER BY id")]

    def last_sync_run(self, query: dict | None = None, status: str | None = None) -> SyncRun | None:
        """Most recent run (with this ``query`` signature and/or ``status`` when given)."""
        sql, params = "SELECT * FROM sync_runs", []
        where = []
        if query is not None:
            where.append("query = ?")
            params.append(_query_key(query))
        if status is not None:
            where.append("status = ?")
            params.append(status)
        if where:
            sql += " WHERE " + " AND ".join(where)
        row = self.connection.execute(sql + " ORDER BY id DESC LIMIT 1", params).fetchone()
        return _run(row) if row else None

    def resumable_sync_run(self, query: dict) -> SyncRun | None:
        """The latest run for ``query`` if it did not finish ok (running/interrupted/failed)."""
        last = self.last_sync_run(query)
        if last is not None and last.status != "ok" and last.state:
            return last
        return None

    def info(self) -> dict:
        """Summary for ``trialmatch store info``: path, counts by status, last sync."""
        last = self.last_sync_run(status="ok")
        return {
            "path": str(self.path),
            "trials": self.count(),
            "by_status": self.count_by_status(),
            "schema_versions": self.schema_versions(),
            "last_sync": (
                {
                    "finished_at": last.finished_at,
                    "mode": last.mode,
                    "query": last.query,
                    "added": last.added,
                    "updated": last.updated,
                    "unchanged": last.unchanged,
                }
                if last
                else None
            ),
            "data_timestamp": self.data_timestamp(),
            "last_recheck": self.meta(RECHECK_META),
            "no_longer_in_registry": len(self.missing()),
        }


MISSING_STATUS = "NO_LONGER_IN_REGISTRY"
_PRESENT = "AND missing_since IS NULL"


class _Transaction:
    def __init__(self, db: sqlite3.Connection):
        self.db = db
        self.nested = False

    def __enter__(self):
        self.nested = self.db.in_transaction
        if not self.nested:
            self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, exc_type, exc, tb):
        if self.nested:
            return False
        if exc_type is None:
            self.db.execute("COMMIT")
        else:
            self.db.execute("ROLLBACK")
        return False


def _not_newer(incoming: tuple, stored: tuple, ties_replace: bool) -> bool:
    return incoming < stored or (incoming == stored and not ties_replace)


def _version_holder(record: dict) -> str | None:
    value = (
        (record.get("derivedSection") or {}).get("miscInfoModule", {}).get("versionHolder")
        if isinstance(record.get("derivedSection"), dict)
        else None
    )
    return value if isinstance(value, str) else None


def _dumps(obj) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":"))


def _query_key(query: dict) -> str:
    return json.dumps(query, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _run(row: sqlite3.Row) -> SyncRun:
    d = dict(row)
    d["query"] = json.loads(d["query"])
    d["state"] = json.loads(d["state"]) if d["state"] else None
    return SyncRun(**d)


def _split_sql(sql: str) -> list[str]:
    """Split a migration script into complete statements (triggers with inner ';' kept whole)."""
    out, buf = [], ""
    for chunk in sql.split(";"):
        buf += chunk + ";"
        if sqlite3.complete_statement(buf):
            if not _only_comments(buf.rstrip(";")):
                out.append(buf.strip())
            buf = ""
    if buf.strip(" \n\t;") and not _only_comments(buf.rstrip(";")):
        out.append(buf.strip())
    return out


def _only_comments(s: str) -> bool:
    return all(not line.strip() or line.strip().startswith("--") for line in s.splitlines())


@dataclass
class ImportResult(UpsertCounts):
    """What ``import_paths`` did: the upsert counts, records read, every per-file error."""

    records: int = 0

    @property
    def ok(self) -> int:
        """Records read and stored (or already up to date)."""
        return self.added + self.updated + self.unchanged + self.stale

    def to_dict(self) -> dict:
        return {**super().to_dict(), "errors": [str(e) for e in self.errors]}


def import_paths(
    store: Store, paths: Iterable[str | Path], *, batch_size: int = 500
) -> ImportResult:
    """Import every record file under ``paths`` (files or folders) into ``store``.

    Accepts what :func:`matcher.records.iter_records` reads. Records are written in
    transactions of ``batch_size``; a bad file or entry is reported in ``result.errors`` and
    the rest go on. Re-importing the same files changes nothing (all ``unchanged``).
    """
    from matcher.records import iter_records

    result = ImportResult()
    batch: list[tuple[dict, str]] = []

    def flush() -> None:
        if not batch:
            return
        counts = UpsertCounts()
        when = now_iso()
        with store.transaction():
            for record, source in batch:
                store._upsert_into([record], f"import: {source}", when, counts)
        result.add(counts)
        batch.clear()

    for path in paths:
        for item in iter_records(path):
            if item.error is not None:
                result.errors.append(item.error)
                continue
            result.records += 1
            batch.append((item.record, item.source))
            if len(batch) >= batch_size:
                flush()
    flush()
    return result
