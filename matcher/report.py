"""The nightly report: match a patient list, compare with the last run, write HTML/CSV/JSON.

``run_report`` is the library entry point behind ``trialmatch report``. It takes a lock (two
runs never collide on one store), reads the patients (one bad patient is reported, the rest
proceed), optionally imports trial record files into the store, matches everyone with the
chosen engine, records the run's matches in the store's run history, and writes:

- ``report.html`` (the index) and ``patients/<id>.html`` (one page per patient; both
  self-contained), ``matches.csv``, ``matches.json`` (``match --json`` shape plus each
  patient's facts to record, compact, one patient per line; each trial's criteria lines to
  read are in ``trials.json`` once, see :func:`read_matches`), ``options.json`` (``options
  --json`` shape), ``changes.json`` and ``errors.csv``.

Every output is written patient by patient as the matches stream in (memory holds one
patient's results, not the run's).

A run is compared with the last finished run of the same list name (``ReportConfig.list_name``,
default the patient file's stem without a trailing date). What each patient's page shows
first is decided in :mod:`matcher.digest`.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any

from matcher import __version__, jsontext
from matcher.digest import (
    _trial_words,
    compact_row,
    default_list_name,
    in_country,
    is_open,
    patient_digest,
    sites_of,
    verify_group_count,
)
from matcher.digest import site_text as digest_site_text
from matcher.errors import InputError
from matcher.exitcodes import batch_exit_code
from matcher.lock import RunLock, lock_path
from matcher.rank import PatientMatches, RankConfig
from matcher.store import Store, register_migration

HISTORY_MIGRATION = (
    100,
    "report_history",
    """
    CREATE TABLE report_runs (
        id             INTEGER PRIMARY KEY AUTOINCREMENT,
        started_at     TEXT NOT NULL,
        finished_at    TEXT,
        patients_source TEXT NOT NULL,
        n_patients     INTEGER NOT NULL DEFAULT 0,
        n_failed       INTEGER NOT NULL DEFAULT 0,
        pack_version   TEXT,
        data_timestamp TEXT,
        tool_version   TEXT NOT NULL,
        settings       TEXT NOT NULL,          -- JSON: statuses, max_miles, engine
        status         TEXT NOT NULL           -- running / ok / partial / failed
    );
    CREATE TABLE report_patients (
        run_id       INTEGER NOT NULL REFERENCES report_runs(id) ON DELETE CASCADE,
        patient_id   TEXT NOT NULL,
        patient_hash TEXT NOT NULL,
        PRIMARY KEY (run_id, patient_id)
    );
    CREATE TABLE report_matches (
        run_id       INTEGER NOT NULL REFERENCES report_runs(id) ON DELETE CASCADE,
        patient_id   TEXT NOT NULL,
        nct_id       TEXT NOT NULL,
        verdict      TEXT NOT NULL,
        score        REAL NOT NULL,
        trial_status TEXT,
        trial_last_update TEXT,
        title        TEXT,
        PRIMARY KEY (run_id, patient_id, nct_id)
    );
    """,
)
register_migration(*HISTORY_MIGRATION)

# The eligibility part of each trial version, so a disappeared match can say whether the
# criteria changed or only other parts of the record.
# The newest last-update date among stored records is a stamp too: a store filled from files
# has no API dataTimestamp.
CRITERIA_HASH_MIGRATION = (
    101,
    "report_criteria_hash",
    """
    ALTER TABLE report_matches ADD COLUMN criteria_hash TEXT;
    ALTER TABLE report_runs ADD COLUMN newest_record TEXT;
    """,
)
register_migration(*CRITERIA_HASH_MIGRATION)

# Change history is keyed by the list's name (default: the file stem without a trailing date),
# so a dated daily export compares with yesterday's. Older rows have no name: they match on
# the patient file's path, as before.
LIST_NAME_MIGRATION = (
    110,
    "report_list_name",
    """
    ALTER TABLE report_runs ADD COLUMN list_name TEXT;
    """,
)
register_migration(*LIST_NAME_MIGRATION)

SHOWN = ("eligible", "needs_review")

MATCH_CSV_HEADER = [
    "patient_id",
    "nct_id",
    "rank",
    "verdict",
    "score",
    "title",
    "phase",
    "status",
    "last_update",
    "nearest_site",
    "distance_miles",
    "reasons",
    "verify",
    "excluded_by",
    "new_since_last_run",
    "why_new",
    "url",
    "group",
    "sites",
    "facts_to_record",
    # the coordinator's decision (matcher.review); `review import` reads these back
    "review_status",
    "review_new",
    "review_reason",
    "review_note",
    "review_changed",
    # explain="top": "no" on a row listed without its detail (reasons cut to two, verify
    # empty); "checks" counts its verify groups either way
    "explained",
    "checks",
]


@dataclass
class ReportConfig:
    """How a report run matches (the rank settings plus engine and reference date)."""

    rank: RankConfig = field(default_factory=RankConfig)
    engine: str = "local"
    scheduler: str | None = None
    as_of: date | None = None
    fmt: str | None = None  # patient file format, sniffed when None
    top: int = 5  # open trials shown first on each patient's page
    list_name: str | None = None  # change-history key; default: file stem without a date
    country: str | None = None  # only trials with an open site in this country are considered
    # local engine: processes matching and writing patient partitions; "auto": one per
    # usable core when the list is long enough to pay for them (see resolve_workers)
    workers: int | str = "auto"
    # Dask engine without a scheduler: the LocalCluster's single-threaded worker processes
    dask_workers: int = 2
    # "top": only the first ``top`` open trials per patient are written with their detail
    # (every other row is compact: verdict, score, rank, site, why excluded, counts);
    # "all": every row with its detail (reasons, verify, criteria met, lines to read)
    explain: str = "top"


AUTO_MIN_PATIENTS_PER_WORKER = 250  # below this a forked worker costs more than it saves
AUTO_MAX_WORKERS = 8


def usable_cores() -> int:
    """Cores this process may run on (its CPU affinity where the platform says)."""
    try:
        return len(os.sched_getaffinity(0)) or 1
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def resolve_workers(workers: int | str, n_patients: int, engine: str = "local") -> int:
    """How many processes match and write a list of ``n_patients``: ``workers`` as asked
    (at most one per patient), or for ``"auto"`` one per usable core while each has at least
    ``AUTO_MIN_PATIENTS_PER_WORKER`` patients (1 for short lists and for the Dask engine)."""
    if engine != "local" or n_patients < 2:
        return 1
    if workers == "auto":
        by_list = n_patients // AUTO_MIN_PATIENTS_PER_WORKER
        return max(1, min(usable_cores(), AUTO_MAX_WORKERS, by_list))
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers: {workers!r} is not accepted; use a whole number >= 1 or 'auto'")
    return min(workers, n_patients)


@dataclass
class ReportResult:
    """What a run did; ``exit_code`` follows the CLI's documented codes."""

    out_dir: Path
    run_id: int
    n_patients_ok: int
    n_failed: int
    n_trials: int
    changes: dict
    files: list[Path]
    errors: list[str] = field(default_factory=list)  # one line per patient/file that failed
    input_warnings: list[str] = field(default_factory=list)  # file-level: columns not read ...
    columns_not_read: list[str] = field(default_factory=list)  # spreadsheet headers dropped
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage of the run
    n_pairs: int = 0  # (patient, relevant trial) rows written
    workers: int = 1  # processes that matched and wrote (resolve_workers)

    @property
    def exit_code(self) -> int:
        return batch_exit_code(self.n_patients_ok, self.n_failed)


# ----------------------------------------------------------------------------- lock


def _now() -> str:
    return datetime.now(timezone.utc).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def patient_hash(patient) -> str:
    """Hash of the patient's clinical facts (not the file they came from, nor the warnings).

    When a birth date is given, the age computed from it grows every night; the birth date is
    the fact, so the age is left out (otherwise every run would say "patient record changed").
    """
    d = patient.to_dict()
    d.pop("source", None)
    d.pop("warnings", None)
    if d.get("birth_date"):
        d.pop("age", None)
    blob = json.dumps(d, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def criteria_hash(record: dict) -> str:
    """Hash of a trial record's eligibility module (criteria text, ages, sex, volunteers)."""
    elig = (record.get("protocolSection") or {}).get("eligibilityModule") or {}
    blob = json.dumps(elig, sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


# ----------------------------------------------------------------------------- history


def _previous_run(db, run_id: int, this):
    """The last finished run (ok or partial) before ``run_id`` of the same patient list (its
    list name; rows written before names existed match on the resolved path): two lists
    sharing a store each have their own history, and a list seen for the first time has
    nothing to compare with."""
    if this is None:
        return None
    name = this["list_name"]
    return db.execute(
        "SELECT * FROM report_runs WHERE id < ? AND status IN ('ok','partial')"
        " AND (list_name = ? OR (list_name IS NULL AND patients_source = ?))"
        " ORDER BY id DESC LIMIT 1",
        (run_id, name, this["patients_source"]),
    ).fetchone()


def compute_changes(
    store: Store,
    run_id: int,
    statuses,
    current: dict | None = None,
    added: set[str] | frozenset[str] = frozenset(),
) -> dict:
    """New matches, matches that disappeared (and why), and trial status changes vs the last run.

    ``statuses``: the run's admitted statuses (None = any). ``current``: optional
    ``{(patient_id, nct_id): {"excluded_by": [...]}}`` of this run, to quote why a match is
    now excluded. ``added``: NCT ids this run imported for the first time.
    Returns ``{"list_name", "previous_run", "previous_run_id", "new", "gone",
    "status_changes"}``; each new/gone entry has ``patient_id``, ``nct_id``, ``title``,
    ``why`` (and ``verdict`` / ``was``).
    """
    db = store.connection
    this = db.execute("SELECT * FROM report_runs WHERE id = ?", (run_id,)).fetchone()
    prev = _previous_run(db, run_id, this)
    list_name = this["list_name"] if this is not None else None
    if prev is None:
        return {
            "list_name": list_name,
            "previous_run": None,
            "previous_run_id": None,
            "new": [],
            "gone": [],
            "status_changes": [],
        }
    pid = prev["id"]
    current = current or {}

    def load(rid):
        return {
            (r["patient_id"], r["nct_id"]): r
            for r in db.execute("SELECT * FROM report_matches WHERE run_id = ?", (rid,))
        }

    def load_patients(rid):
        return {
            r["patient_id"]: r["patient_hash"]
            for r in db.execute("SELECT * FROM report_patients WHERE run_id=?", (rid,))
        }

    now, before = load(run_id), load(pid)
    p_now, p_before = load_patients(run_id), load_patients(pid)
    trial_before = {k[1]: r for k, r in sorted(before.items())}
    trial_now = {k[1]: r for k, r in sorted(now.items())}
    ctx = _Context(
        store, prev, this, statuses, trial_before, trial_now, p_now, p_before, set(added)
    )

    new = []
    for key, r in sorted(now.items()):
        if r["verdict"] in SHOWN and (key not in before or before[key]["verdict"] not in SHOWN):
            new.append(
                {
                    "patient_id": key[0],
                    "nct_id": key[1],
                    "verdict": r["verdict"],
                    "title": r["title"],
                    "was": before[key]["verdict"] if key in before else None,
                    "why": ctx.why_new(key),
                }
            )

    gone = []
    for key, r in sorted(before.items()):
        if r["verdict"] not in SHOWN:
            continue
        cur = now.get(key)
        if cur is not None and cur["verdict"] in SHOWN:
            continue
        gone.append(
            {
                "patient_id": key[0],
                "nct_id": key[1],
                "was": r["verdict"],
                "now": cur["verdict"] if cur is not None else "not listed",
                "title": r["title"],
                "why": ctx.why_gone(key, r, cur, current.get(key)),
            }
        )

    status_changes = []
    for nct, r in trial_before.items():
        meta = store.get_meta(nct)
        after = meta["overall_status"] if meta else "removed from the store"
        if after != r["trial_status"]:
            status_changes.append(
                {"nct_id": nct, "title": r["title"], "before": r["trial_status"], "after": after}
            )
    return {
        "list_name": list_name,
        "previous_run": prev["started_at"],
        "previous_run_id": pid,
        "new": new,
        "gone": gone,
        "status_changes": status_changes,
    }


@dataclass
class _Context:
    """What the "why" of a change is judged from: both runs' rows and the store's metadata."""

    store: Store
    prev: object
    this: object
    statuses: object
    trial_before: dict
    trial_now: dict
    p_now: dict
    p_before: dict
    added: set

    def _trial_changes(self, nct: str, before_row) -> list[str]:
        """What changed in the trial's record between the two runs (criteria vs the rest)."""
        now_row = self.trial_now.get(nct)
        meta = self.store.get_meta(nct)
        if before_row is None or meta is None:
            return []
        if meta["last_update"] == before_row["trial_last_update"]:
            return []
        old_hash = before_row["criteria_hash"]
        new_hash = now_row["criteria_hash"] if now_row is not None else None
        if new_hash is None:
            record = self.store.get(nct)
            new_hash = criteria_hash(record) if record else None
        if old_hash and new_hash and old_hash == new_hash:
            return [f"trial record updated {meta['last_update']} (eligibility criteria unchanged)"]
        if old_hash and new_hash:
            return [f"trial eligibility criteria changed (record updated {meta['last_update']})"]
        return [f"trial criteria or record changed (updated {meta['last_update']})"]

    def _setup_changes(self) -> list[str]:
        out = []
        if self.this is None:
            return out
        for col, label in (
            ("tool_version", "tool version"),
            ("pack_version", "knowledge pack version"),
        ):
            if self.prev[col] != self.this[col]:
                out.append(f"{label} changed ({self.prev[col]} -> {self.this[col]})")
        if self.prev["settings"] != self.this["settings"]:
            a, b = json.loads(self.prev["settings"]), json.loads(self.this["settings"])
            diff = [k for k in sorted(set(a) | set(b)) if k != "as_of" and a.get(k) != b.get(k)]
            if diff:
                out.append("run settings changed: " + ", ".join(diff))
        return out

    def why_new(self, key) -> str:
        patient_id, nct = key
        if patient_id not in self.p_before:
            return "patient new to the list"
        reasons = []
        tb = self.trial_before.get(nct)
        meta = self.store.get_meta(nct)
        if tb is None:
            if nct in self.added or (
                meta is not None and meta["first_seen"] > (self.prev["finished_at"] or "")
            ):
                reasons.append("trial new in the store")
            else:
                status = meta["overall_status"] if meta else None
                reasons.append(
                    "trial not among the last run's candidates"
                    + (f" (status now {status})" if status else "")
                )
        else:
            if meta is not None and meta["overall_status"] != tb["trial_status"]:
                reasons.append(
                    f"trial status changed: {tb['trial_status']} -> {meta['overall_status']}"
                )
            reasons += self._trial_changes(nct, tb)
        if self.p_now.get(patient_id) != self.p_before.get(patient_id):
            reasons.append("patient record changed")
        reasons += self._setup_changes()
        return "; ".join(reasons) or "new match"

    def why_gone(self, key, before_row, cur_row, current) -> str:
        patient_id, nct = key
        if patient_id not in self.p_now:
            return "patient not matched in this run (not in the list, or failed: see errors.csv)"
        reasons = []
        meta = self.store.get_meta(nct)
        if meta is None:
            reasons.append("trial no longer in the store")
        else:
            if meta.get("missing_since"):
                reasons.append(
                    "trial no longer returned by ClinicalTrials.gov "
                    f"(since {meta['missing_since'][:10]}; not offered)"
                )
            elif self.statuses is not None and meta["overall_status"] not in self.statuses:
                reasons.append(f"trial closed: status now {meta['overall_status']}")
            elif meta["overall_status"] != before_row["trial_status"]:
                reasons.append(
                    f"trial status changed: {before_row['trial_status']} -> "
                    f"{meta['overall_status']}"
                )
            reasons += self._trial_changes(nct, before_row)
        if self.p_now.get(patient_id) != self.p_before.get(patient_id):
            reasons.append("patient record changed")
        reasons += self._setup_changes()
        if cur_row is not None and cur_row["verdict"] == "excluded":
            detail = (current or {}).get("excluded_by") or []
            reasons.append(
                "now excluded: " + "; ".join(detail)
                if detail
                else "now excluded: see the trial's excluded_by reasons"
            )
        elif cur_row is None and meta is not None and not reasons:
            reasons.append("trial no longer judged relevant to this diagnosis")
        return "; ".join(reasons) or "verdict changed"


class ChangeTracker:
    """:func:`compute_changes`, one patient at a time while the run is written.

    Made before matching starts (this run's history row and patient hashes are stored);
    :meth:`patient` takes one patient's matches and returns what the pages and rows need
    (``{nct_id: why}`` of its new matches, its gone matches), reading only that patient's rows
    of the last run; :meth:`finish` returns the whole ``compute_changes`` dict (the same keys,
    entries and order). ``crit``: this run's criteria hash per NCT id.
    """

    def __init__(self, store: Store, run_id: int, statuses, crit: dict, added, p_now: dict):
        db = store.connection
        self.db = db
        this = db.execute("SELECT * FROM report_runs WHERE id = ?", (run_id,)).fetchone()
        self.list_name = this["list_name"] if this is not None else None
        self.prev = _previous_run(db, run_id, this)
        self.new: list[dict] = []
        self.gone: list[dict] = []
        self.seen: set[str] = set()
        if self.prev is None:
            return
        pid = self.prev["id"]
        # the trial columns of the last run, one row per trial (the one with the largest
        # patient id, as compute_changes keeps): SQLite takes bare columns from the MAX row
        rows = {
            r["nct_id"]: r
            for r in db.execute(
                "SELECT nct_id, MAX(patient_id) AS patient_id, trial_status, trial_last_update,"
                " title, criteria_hash FROM report_matches WHERE run_id = ? GROUP BY nct_id",
                (pid,),
            )
        }
        # ... in the order compute_changes meets them: by (first patient id, NCT id)
        first = db.execute(
            "SELECT nct_id, MIN(patient_id) FROM report_matches WHERE run_id = ? GROUP BY nct_id",
            (pid,),
        ).fetchall()
        trial_before = {nct: rows[nct] for nct, _ in sorted(first, key=lambda r: (r[1], r[0]))}
        p_before = {
            r["patient_id"]: r["patient_hash"]
            for r in db.execute("SELECT * FROM report_patients WHERE run_id=?", (pid,))
        }
        trial_now = {nct: {"criteria_hash": h} for nct, h in crit.items()}
        self.ctx = _Context(
            store, self.prev, this, statuses, trial_before, trial_now, p_now, p_before, set(added)
        )

    def _before(self, patient_id: str) -> dict[str, str]:
        """``{nct_id: verdict}`` of the patient's rows of the last run (plain tuples, not
        rows: one per pair)."""
        cur = self.db.cursor()
        cur.row_factory = None
        return dict(
            cur.execute(
                "SELECT nct_id, verdict FROM report_matches WHERE run_id = ? AND patient_id = ?",
                (self.prev["id"], patient_id),
            )
        )

    def _before_row(self, patient_id: str, nct: str):
        return self.db.execute(
            "SELECT * FROM report_matches WHERE run_id = ? AND patient_id = ? AND nct_id = ?",
            (self.prev["id"], patient_id, nct),
        ).fetchone()

    def patient(self, m) -> tuple[dict[str, str], list[dict]]:
        """``({nct_id: why_new}, [gone entries])`` for one patient's matches ``m``."""
        self.seen.add(m.patient_id)
        if self.prev is None:
            return {}, []
        before = self._before(m.patient_id)
        now = {s.nct_id: s for s in m.trials}
        new_why: dict[str, str] = {}
        # new: shown now, not shown before (or not listed); in NCT id order
        for nct in sorted(
            n for n, s in now.items() if s.verdict in SHOWN and before.get(n) not in SHOWN
        ):
            s = now[nct]
            why = self.ctx.why_new((m.patient_id, nct))
            new_why[nct] = why
            self.new.append(
                {
                    "patient_id": m.patient_id,
                    "nct_id": nct,
                    "verdict": s.verdict,
                    "title": s.title,
                    "was": before.get(nct),
                    "why": why,
                }
            )
        # gone: shown before, not shown now (the whole row of the last run read for those)
        gone = []
        for nct, verdict in sorted(before.items()):
            if verdict in SHOWN:
                s = now.get(nct)
                if s is None or s.verdict not in SHOWN:
                    r = self._before_row(m.patient_id, nct)
                    gone.append(self._gone(m.patient_id, nct, r, s))
        self.gone.extend(gone)
        return new_why, gone

    def _gone(self, patient_id, nct, r, s) -> dict | None:
        if r["verdict"] not in SHOWN or (s is not None and s.verdict in SHOWN):
            return None
        cur = {"verdict": s.verdict} if s is not None else None
        current = {"excluded_by": s.excluded_by} if s is not None else None
        return {
            "patient_id": patient_id,
            "nct_id": nct,
            "was": r["verdict"],
            "now": s.verdict if s is not None else "not listed",
            "title": r["title"],
            "why": self.ctx.why_gone((patient_id, nct), r, cur, current),
        }

    def finish(self) -> dict:
        """The run's changes (see :func:`compute_changes`), once every patient was seen."""
        if self.prev is None:
            return {
                "list_name": self.list_name,
                "previous_run": None,
                "previous_run_id": None,
                "new": [],
                "gone": [],
                "status_changes": [],
            }
        pid = self.prev["id"]
        # the last run's patients (every matched patient has a report_patients row)
        for patient_id in sorted(self.ctx.p_before):
            if patient_id not in self.seen:
                for nct, verdict in sorted(self._before(patient_id).items()):
                    if verdict in SHOWN:
                        r = self._before_row(patient_id, nct)
                        self.gone.append(self._gone(patient_id, nct, r, None))
        status_changes = []
        for nct, r in self.ctx.trial_before.items():
            meta = self.ctx.store.get_meta(nct)
            after = meta["overall_status"] if meta else "removed from the store"
            if after != r["trial_status"]:
                status_changes.append(
                    {
                        "nct_id": nct,
                        "title": r["title"],
                        "before": r["trial_status"],
                        "after": after,
                    }
                )

        def key(e):
            return (e["patient_id"], e["nct_id"])

        return {
            "list_name": self.list_name,
            "previous_run": self.prev["started_at"],
            "previous_run_id": pid,
            "new": sorted(self.new, key=key),
            "gone": sorted(self.gone, key=key),
            "status_changes": status_changes,
        }


# ----------------------------------------------------------------------------- matching


@dataclass
class _Job:
    """What a run's matching and writing needs, in the parent or in a forked worker."""

    db_path: Path
    run_id: int
    patients: Sequence
    parsed: Sequence
    pack: object
    vocab: object
    config: ReportConfig
    crit: dict
    added: set
    p_now: dict
    out: Path
    run: dict
    view: object
    workers: int = 1  # processes that match and write (resolve_workers)


HISTORY_INSERT = (
    "INSERT OR REPLACE INTO {table} (run_id, patient_id, nct_id, verdict, score, trial_status,"
    " trial_last_update, title, criteria_hash) VALUES (?,?,?,?,?,?,?,?,?)"
)
# the same rows, each as (run_id, patient_id, verdict, score) + its trial's cells (made once
# per trial: _history_rows)
HISTORY_INSERT_BY_TRIAL = (
    "INSERT OR REPLACE INTO {table} (run_id, patient_id, verdict, score, nct_id, trial_status,"
    " trial_last_update, title, criteria_hash) VALUES (?,?,?,?,?,?,?,?,?)"
)
HISTORY_BATCH = 20_000  # history rows written with one executemany (several patients)


def _history_rows(run_id: int, m, crit: dict, trial_cells: dict) -> list[tuple]:
    """The history rows of matches ``m`` for :data:`HISTORY_INSERT_BY_TRIAL`: per row its
    patient, verdict and score, then its trial's cells (NCT id, status, last update, title,
    criteria hash), one tuple per trial kept in ``trial_cells`` (a trial's fields are the
    same on every row of a run; a row whose fields differ from the kept ones gets its own)."""
    pid = m.patient_id
    rows = []
    add = rows.append
    for s in m.trials:
        nct = s.nct_id
        cells = trial_cells.get(nct)
        if (
            cells is None
            or cells[1] != s.status
            or cells[2] != s.last_update
            or cells[3] != s.title
        ):
            cells = trial_cells[nct] = (nct, s.status, s.last_update, s.title, crit.get(nct))
        add((run_id, pid, s.verdict, s.score) + cells)
    return rows


def _match_and_write(job: _Job, stream, patients, db, tracker, writer, progress, table=None):
    """Write each patient of ``stream`` (their matches, in the order of ``patients``): history
    rows into ``db`` (table ``report_matches`` unless told; one ``executemany`` per
    :data:`HISTORY_BATCH` rows or so, in order, the last before returning), changes,
    outputs. Returns the number of rows."""
    from matcher.knowledge import evaluate_options

    insert = HISTORY_INSERT_BY_TRIAL.format(table=table or "report_matches")
    n_pairs = 0
    pending: list[tuple] = []
    trial_cells: dict[str, tuple] = {}
    for patient, m in zip(patients, stream, strict=True):
        pending += _history_rows(job.run_id, m, job.crit, trial_cells)
        if len(pending) >= HISTORY_BATCH:
            db.executemany(insert, pending)
            pending = []
        new_why, gone = tracker.patient(m)
        writer.add(patient, m, evaluate_options(patient, job.pack), new_why, gone)
        n_pairs += len(m.trials)
        if progress:
            progress("patients", 1)
    if pending:
        db.executemany(insert, pending)
    return n_pairs


_JOB: dict = {}  # the job a forked worker inherits (set just before the workers start)


def _history_columns() -> str:
    return (
        "run_id INTEGER, patient_id TEXT, nct_id TEXT, verdict TEXT, score REAL,"
        " trial_status TEXT, trial_last_update TEXT, title TEXT, criteria_hash TEXT"
    )


def _while_parent_lives(stream, parent: int):
    """A worker whose run was killed stops at its next patient instead of writing on."""
    for m in stream:
        if os.getppid() != parent:
            raise SystemExit("the report run that started this worker is gone")
        yield m


def _write_part(k: int, start: int, stop: int) -> dict:
    """Worker side (a forked process): match and write ``patients[start:stop]`` into part
    files (the parent joins them in order) and the history rows into a part database."""
    import sqlite3

    from matcher.engine import iter_match_briefs

    job, state = _JOB["job"], _JOB["state"]
    patients = job.patients[start:stop]
    writer = _ReportWriter(
        job.out, job.run, [p.id for p in job.patients], job.view, part=k, offset=start
    )
    part_db = job.out / f".history-part{k}.sqlite.tmp"
    part_db.unlink(missing_ok=True)
    hist = sqlite3.connect(part_db, isolation_level=None)
    hist.execute(f"CREATE TABLE m ({_history_columns()})")
    try:
        with Store(job.db_path) as store:
            tracker = ChangeTracker(
                store, job.run_id, job.config.rank.statuses, job.crit, job.added, job.p_now
            )
            stream = _while_parent_lives(
                iter_match_briefs(
                    patients, job.parsed, job.pack, job.vocab, job.config.rank, state=state
                ),
                _JOB["parent"],
            )
            hist.execute("BEGIN")
            n = _match_and_write(job, stream, patients, hist, tracker, writer, None, "m")
            hist.execute("COMMIT")
        hist.close()
        return {
            "k": k,
            "n_pairs": n,
            "parts": writer.close_part(),
            "history": str(part_db),
            "new": tracker.new,
            "gone": tracker.gone,
            "seen": tracker.seen,
        }
    except BaseException:
        writer.abort()
        hist.close()
        part_db.unlink(missing_ok=True)
        raise


def _match_and_write_in_processes(job: _Job, store, tracker, writer, progress, state=None) -> int:
    """The local engine over ``job.config.workers`` contiguous patient partitions, each in a
    forked process that writes its own part of every output (parts are joined in input
    order, so the files are the same as one process writes). The parsed trials, relevance per
    diagnosis and site coordinates are prepared here once (in ``state``, a prepared
    ``MatchState``, if given) and shared with the workers (copy-on-write: the collector is
    frozen, so their pages stay shared)."""
    import multiprocessing

    from matcher.engine import MatchState

    state = state or MatchState(job.parsed, job.pack, job.vocab, job.config.rank)
    columnar = state.columnar()
    named: set[int] = set()
    for d in dict.fromkeys(p.diagnosis for p in job.patients):
        # relevance and per-diagnosis columns, shared by the workers
        named.update(columnar.diagnosis(d)["cols"].tolist())
    for j in sorted(named):  # only a trial relevant to some diagnosis is ever in a row
        columnar.info(j)
    n = len(job.patients)
    k = job.workers
    bounds = [(i, n * i // k, n * (i + 1) // k) for i in range(k)]
    _JOB.update(job=job, state=state, parent=os.getpid())
    try:
        ctx = multiprocessing.get_context("fork")
        with ctx.Pool(k) as pool:
            results = pool.starmap(_write_part, bounds)
    finally:
        _JOB.clear()
    results.sort(key=lambda r: r["k"])
    db = store.connection
    n_pairs = 0
    for r in results:
        db.execute("ATTACH DATABASE ? AS part", (r["history"],))
        try:
            with store.transaction():
                db.execute(
                    "INSERT OR REPLACE INTO report_matches (run_id, patient_id, nct_id, verdict,"
                    " score, trial_status, trial_last_update, title, criteria_hash)"
                    " SELECT * FROM part.m"
                )
        finally:
            db.execute("DETACH DATABASE part")
            Path(r["history"]).unlink(missing_ok=True)
        writer.absorb(r["parts"])
        tracker.new += r["new"]
        tracker.gone += r["gone"]
        tracker.seen |= r["seen"]
        n_pairs += r["n_pairs"]
        if progress:
            progress("patients", len(r["seen"]))
    return n_pairs


# ----------------------------------------------------------------------------- run


def run_report(
    patients_path: str | Path,
    out_dir: str | Path,
    db_path: str | Path | None = None,
    trials_paths: Sequence[str | Path] = (),
    config: ReportConfig | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> ReportResult:
    """Run the whole nightly job (see module docstring); return what it did.

    Raises LockError if a run is active, StoreError if the store cannot be opened. A patient
    file that cannot be read at all is a failed run (every patient failed, exit code 4) whose
    report and errors.csv say why.
    """
    from matcher.engine import (
        MatchState,
        collector_out_of_the_way,
        iter_match_briefs,
        iter_match_cohort,
        iter_match_dask_briefs,
    )
    from matcher.knowledge import load_pack
    from matcher.parsecache import parse_store
    from matcher.patient import PatientBatch, read_patients
    from matcher.records import record_nct_id
    from matcher.relcache import load_relevance
    from matcher.store import default_db_path, import_paths
    from matcher.vocab import load_vocab

    # idempotent: the history tables exist even if something reset the migration list
    register_migration(*HISTORY_MIGRATION)
    register_migration(*CRITERIA_HASH_MIGRATION)
    register_migration(*LIST_NAME_MIGRATION)
    from matcher import review

    review.register()
    config = config or ReportConfig()
    resolve_workers(config.workers, 2)  # a bad value fails before anything is touched
    list_name = config.list_name or default_list_name(patients_path)
    db_path = Path(db_path) if db_path else default_db_path()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = _now()
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def _lap() -> float:
        now = time.perf_counter()
        took, clock[0] = round(now - clock[0], 2), now
        return took

    with RunLock(lock_path(db_path), "report"), Store(db_path) as store:
        _recover_from_a_crashed_run(store, out, started)
        record_errors: list = []
        added: set[str] = set()
        if trials_paths:
            before = set(store.nct_ids())
            record_errors = import_paths(store, trials_paths).errors
            added = set(store.nct_ids()) - before
        try:
            batch = read_patients(patients_path, fmt=config.fmt, as_of=config.as_of)
        except InputError as exc:
            # still write a report (and record a failed run): a morning reader must not
            # mistake yesterday's report.html for today's
            batch = PatientBatch(patients=[], errors=[exc])
        pack, vocab = load_pack(), load_vocab()
        workers = resolve_workers(config.workers, len(batch.patients), config.engine)
        timings["load"] = _lap()
        statuses = config.rank.statuses
        crit: dict = {}
        purposes: dict = {}

        def on_record(r: dict) -> None:
            nct = record_nct_id(r)
            crit[nct] = criteria_hash(r)
            design = (r.get("protocolSection") or {}).get("designModule") or {}
            purposes[nct] = (design.get("designInfo") or {}).get("primaryPurpose")

        digests: dict = {}
        parsed, _counts = parse_store(store, statuses, on_record=on_record, digests=digests)
        sites = {pt.trial.nct_id: sites_of(pt.trial) for pt in parsed}
        if progress:
            progress("trials", len(parsed))
            progress("patients_total", len(batch.patients))

        db = store.connection
        settings = {
            "statuses": sorted(statuses) if statuses is not None else "any",
            "max_miles": config.rank.max_miles,
            "engine": config.engine,
            "as_of": (config.as_of or date.today()).isoformat(),
        }
        source = str(Path(patients_path).resolve())
        newest = db.execute("SELECT MAX(last_update) FROM trials").fetchone()[0]
        p_now = {p.id: patient_hash(p) for p in batch.patients}
        with store.transaction():
            cur = db.execute(
                "INSERT INTO report_runs (started_at, patients_source, n_patients, n_failed,"
                " pack_version, data_timestamp, tool_version, settings, status, newest_record,"
                " list_name) VALUES (?,?,?,?,?,?,?,?, 'running', ?, ?)",
                (
                    started,
                    source,
                    len(batch.patients),
                    len(batch.errors),
                    pack.version,
                    store.data_timestamp(),
                    __version__,
                    json.dumps(settings),
                    newest,
                    list_name,
                ),
            )
            run_id = cur.lastrowid
            db.executemany(
                "INSERT OR REPLACE INTO report_patients VALUES (?,?,?)",
                [(run_id, pid, h) for pid, h in p_now.items()],
            )
        timings["parse"] = _lap()
        # relevance of every trial to each distinct diagnosis, from the store's cache where
        # it holds it (computed and cached where not); the matching reuses this state
        # (the Dask engine's client keeps one too: it fills in the briefs the workers ship
        # and explains the rows shown first, and it sends the relevance to the workers)
        state = MatchState(parsed, pack, vocab, config.rank)
        load_relevance(store, state, digests, (p.diagnosis for p in batch.patients))
        timings["relevance"] = _lap()
        run = {
            "run_id": run_id,
            "started": started,
            "finished": None,
            "tool_version": __version__,
            "pack_version": pack.version,
            "data_timestamp": store.data_timestamp()
            or "not recorded (no sync yet: trials came from files)",
            "newest_record": newest,
            "trials_in_store": store.count(),
            "n_trials_considered": len(parsed),
            "statuses": ", ".join(settings["statuses"]) if statuses is not None else "any",
            "max_miles": config.rank.max_miles,
            "engine": config.engine,
            "n_patients_ok": len(batch.patients),
            "n_failed": len(batch.errors),
            "patients_source": str(patients_path),
            "as_of": settings["as_of"],
            "list_name": list_name,
            "top": config.top,
            "country": config.country,
            "failure": "; ".join(str(e) for e in batch.errors) if not batch.patients else None,
        }
        texts = {pt.trial.nct_id: trial_text(pt) for pt in parsed}
        view = _View(sites, purposes, pack.seeds, config.top, config.country, texts)
        view.explain = config.explain
        view.reviews = review.RunReviews(store, list_name, p_now, crit)
        view.crit = crit
        writer = _ReportWriter(out, run, [p.id for p in batch.patients], view)
        n_pairs = 0
        try:
            with collector_out_of_the_way():
                tracker = ChangeTracker(store, run_id, statuses, crit, added, p_now)
                job = _Job(db_path, run_id, batch.patients, parsed, pack, vocab, config, crit,
                           added, p_now, out, run, view, workers)  # fmt: skip
                if job.workers > 1:
                    n_pairs = _match_and_write_in_processes(
                        job, store, tracker, writer, progress, state
                    )
                else:
                    if config.engine == "local":  # rows listed compact are never built in full
                        stream = iter_match_briefs(
                            batch.patients, parsed, pack, vocab, config.rank, state=state
                        )
                    elif config.explain == "top":  # Dask: workers ship compact rows
                        stream = iter_match_dask_briefs(
                            batch.patients,
                            parsed,
                            config.rank,
                            scheduler=config.scheduler,
                            n_workers=config.dask_workers,
                            state=state,
                        )
                    else:
                        stream = iter_match_cohort(
                            batch.patients,
                            parsed,
                            pack,
                            vocab,
                            config.rank,
                            engine=config.engine,
                            scheduler=config.scheduler,
                            state=state,
                        )
                    # the run's history in one transaction, written patient by patient as the
                    # outputs are: no output is held whole in memory
                    with store.transaction():
                        n_pairs = _match_and_write(
                            job, stream, batch.patients, db, tracker, writer, progress
                        )
                timings["match_and_write"] = _lap()
                changes = tracker.finish()
                timings["changes"] = _lap()
                finished = _now()
                status = "failed" if not batch.patients else "partial" if batch.errors else "ok"
                run["finished"] = finished
                files = writer.finish(changes, error_rows(batch.errors, record_errors))
                review.save_pages(store, list_name, run_id, writer.review_pages)
                timings["index_and_summaries"] = _lap()
        except BaseException:
            writer.abort()
            # a run whose report was not written must not become the next run's baseline
            with store.transaction():
                db.execute(
                    "UPDATE report_runs SET finished_at=?, status='failed' WHERE id=?",
                    (_now(), run_id),
                )
            raise
        # marked finished only once every file is written (the next run compares with it)
        with store.transaction():
            db.execute(
                "UPDATE report_runs SET finished_at=?, status=? WHERE id=?",
                (finished, status, run_id),
            )
    return ReportResult(
        out,
        run_id,
        len(batch.patients),
        len(batch.errors),
        len(parsed),
        changes,
        files,
        [str(e) for e in batch.errors],
        list(batch.warnings),
        list(batch.columns_not_read),
        timings,
        n_pairs,
        workers,
    )


ERRORS_CSV_HEADER = ["kind", "file", "location", "patient_id", "field", "value", "error"]

_LOCATION = re.compile(r"^(?P<file>.*?),\s*(?P<loc>(?:line|entry|row|Bundle|resource)\b.*)$")


def _split_source(source: str) -> tuple[str, str]:
    """``"list.csv, line 3"`` -> ``("list.csv", "line 3")``; a bare path keeps an empty location."""
    m = _LOCATION.match(source or "")
    return (m["file"], m["loc"]) if m else (source or "", "")


def _message(err) -> str:
    """The error text without the location prefix (file, line, patient, field have columns)."""
    detail = getattr(err, "detail", None)
    if not detail:
        return str(err)
    accepted = getattr(err, "accepted", None)
    return f"{detail} (accepted: {accepted})" if accepted else detail


def error_rows(batch_errors, record_errors=()) -> list[dict]:
    """One dict per failure (keys :data:`ERRORS_CSV_HEADER`): patients first, then trial records."""
    rows = []
    for err in batch_errors:
        kind = "patient list" if isinstance(err, InputError) else "patient"
        source = getattr(err, "source", None) or ""
        file, loc = _split_source(source)
        if not file:
            file = getattr(err, "path", None) or ""
            loc = getattr(err, "location", None) or loc
        value = getattr(err, "value", None)
        rows.append(
            {
                "kind": kind,
                "file": file,
                "location": loc,
                "patient_id": getattr(err, "patient_id", None) or "",
                "field": getattr(err, "field", None) or "",
                "value": "" if value is None else str(value),
                "error": _message(err),
            }
        )
    for err in record_errors:
        file, loc = _split_source(getattr(err, "path", None) or "")
        rows.append(
            {
                "kind": "trial record",
                "file": file,
                "location": loc,
                "patient_id": "",
                "field": getattr(err, "nct_id", None) or "",
                "value": "",
                "error": str(err),
            }
        )
    return rows


STALE_MARK = 'data-stale-banner="1"'


def _recover_from_a_crashed_run(store: Store, out: Path, started: str) -> None:
    """Before this run does anything: close history rows a killed run left ``running`` (the
    lock is held, so no live run owns them), remove its half-written ``.tmp`` files, and put a
    banner on the previous report.html, so that if this run dies too, nobody takes the old
    report for today's. A finished run replaces the page, banner and all."""
    with store.transaction():
        store.connection.execute(
            "UPDATE report_runs SET status = 'failed', finished_at = COALESCE(finished_at, ?) "
            "WHERE status = 'running'",
            (started,),
        )
    for tmp in [*out.glob("*.tmp"), *out.glob("patients/*.tmp")]:
        tmp.unlink(missing_ok=True)
    page = out / "report.html"
    try:
        text = page.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return
    if STALE_MARK in text:
        return
    banner = (
        f'<div {STALE_MARK} role="alert" style="background:#fde2e1;border:2px solid #b42318;'
        'padding:.8em;margin:.5em 0;font-weight:bold">This report is from an earlier run. '
        f"A new run started at {started} and has not finished: if this banner is still here "
        "after the nightly job, that run failed; see its log.</div>"
    )
    marked, n = re.subn(r"(<body[^>]*>)", lambda m: m.group(1) + banner, text, count=1)
    if n:
        _replace(page, lambda t: t.write_text(marked, encoding="utf-8"))


def _replace(path: Path, write: Callable[[Path], object]) -> Path:
    """Write through a temporary file and rename it over ``path``: a reader (or a crash) never
    sees a half-written file."""
    tmp = path.with_name(path.name + ".tmp")
    write(tmp)
    os.replace(tmp, path)
    return path


def _json_file(path: Path, data, indent: int | None = 2) -> Path:
    return _replace(
        path,
        lambda t: t.write_text(
            json.dumps(data, indent=indent, ensure_ascii=False), encoding="utf-8"
        ),
    )


def trial_text(parsed) -> dict:
    """The ``trials.json`` entry of a parsed trial: its text as every row shows it (title,
    url, phase, status, last update) and the criteria lines no check reads (``to_review``:
    every patient whose criteria are evaluated gets these, as ``rank.judge`` picks them)."""
    t = parsed.trial
    lines = [
        c.text
        for c in parsed.criteria
        if c.type == "unparsed" and c.values.get("source") != "structured"
    ]
    return {
        "title": t.title,
        "url": t.url,
        "phase": "/".join(t.phases) if t.phases else "NA",
        "status": t.status,
        "last_update": t.last_update,
        "to_review": lines,
    }


def _patient_facts(patient) -> list[tuple[str, str]]:
    """The facts a coordinator checks first, as (label, text) pairs; unknown ones say so."""

    def yn(v):
        return "unknown" if v is None else ("yes" if v else "no")

    facts = [
        ("age", "unknown" if patient.age is None else f"{patient.age:g}"),
        ("sex", patient.sex or "unknown"),
        ("stage", patient.stage or "unknown"),
        (
            "metastatic sites",
            "unknown"
            if patient.metastatic_sites is None
            else (", ".join(patient.metastatic_sites) or "none"),
        ),
        (
            "ECOG",
            "unknown"
            if patient.ecog is None
            else str(patient.ecog)
            + (f" (from {patient.ecog_converted_from})" if patient.ecog_converted_from else ""),
        ),
        (
            "prior therapies",
            "unknown"
            if patient.prior_therapies is None
            else (", ".join(t.name for t in patient.prior_therapies) or "none"),
        ),
        ("biomarkers", ", ".join(patient.biomarkers or []) or "none recorded"),
        ("brain metastases", yn(patient.brain_metastases)),
    ]
    return facts


@dataclass
class _View:
    """What the pages need beyond the matches: per-trial sites and purpose, the PDQ seeds,
    and the run's display settings."""

    sites: dict
    purposes: dict
    seeds: dict
    top: int = 5
    country: str | None = None
    trial_text: dict = field(default_factory=dict)  # trials.json: nct_id -> trial_text()
    # coordinator review (matcher.review): the list's decisions, criteria hashes
    reviews: Any = None
    crit: dict = field(default_factory=dict)
    explain: str = "top"  # ReportConfig.explain


def _facts_cell(facts) -> str:
    return "; ".join(f"{f.fact} ({f.checks} checks on {f.trials} trials)" for f in facts)


class _Cells(dict):
    """``render.safe_cell`` of recurring cell values, each value's text made once: missing
    keys are filled on lookup. One instance per kind of value: texts (and None), or numbers
    (``int`` and ``float``: equal values have the same text; a bool is never a key, since
    ``True == 1`` would share one)."""

    def __missing__(self, value) -> str:
        from matcher.render import FORMULA_PREFIXES, safe_cell

        if len(self) > 200_000:
            self.clear()
        if type(value) is str and not value.startswith(FORMULA_PREFIXES):
            got = value  # plain text that cannot start a formula: safe_cell returns it as is
        else:
            got = safe_cell(value)
        self[value] = got
        return got


_TEXTS = _Cells()  # str or None
_NUMBERS = _Cells()  # int or float


def _list_cell(value, prefixes: tuple) -> str:
    """``render.safe_cell(value)`` of a list of texts (joined by "; ") or of a text."""
    if type(value) is not list:
        return _TEXTS[value]
    text = "; ".join(map(str, value))
    return "'" + text if text.startswith(prefixes) else text


@lru_cache(maxsize=65536)
def _trial_cells(nct_id, title, phase, status, last_update, url) -> tuple[str, ...]:
    """The cells of a trial's ``matches.csv`` columns that are the same on every row of it."""
    from matcher.render import safe_cell

    return tuple(safe_cell(c) for c in (nct_id, title, phase, status, last_update, url))


_CSV_GROUPS = (
    ("top", "to consider (shown first)"),
    ("more", "to consider"),
    ("other_country", "open, no site in the country"),
    ("closed", "closed or not recruiting"),
    ("excluded", "excluded"),
    ("folded", "judged not eligible by the coordinator"),
)


def _csv_group(dig: dict) -> dict:
    """``{nct_id: (group label, where)}`` of a patient's digest."""
    group = {}
    for name, label in _CSV_GROUPS:
        for t in dig[name]:
            group[t["nct_id"]] = (label, t.get("where", ""))
    return group


def _csv_quote(cell: str) -> str:
    """A cell as ``csv.writer`` (the default dialect, minimal quoting) writes it in a row of
    more than one cell: in double quotes, quotes doubled, when it holds a comma, a double
    quote, a carriage return or a line feed; as it is otherwise."""
    if "," in cell or '"' in cell or "\n" in cell or "\r" in cell:
        return '"' + cell.replace('"', '""') + '"'
    return cell


class _Quoted(dict):
    """``_csv_quote`` of the cells of another cache (``_TEXTS`` or ``_NUMBERS``), keyed by
    the same values, each made once."""

    def __init__(self, cells: _Cells):
        super().__init__()
        self.cells = cells

    def __missing__(self, value) -> str:
        if len(self) > 200_000:
            self.clear()
        got = self[value] = _csv_quote(self.cells[value])
        return got


_QTEXTS = _Quoted(_TEXTS)
_QNUMBERS = _Quoted(_NUMBERS)


@lru_cache(maxsize=65536)
def _trial_csv(nct_id, title, phase, status, last_update, url) -> tuple[str, str, str]:
    """A trial's ``matches.csv`` pieces that are the same on every row of it, quoted as the
    CSV writer quotes them: its NCT id cell, the title, phase, status and last-update cells
    joined, and its URL cell."""
    nct, title, phase, status, last_update, url = (
        _csv_quote(c) for c in _trial_cells(nct_id, title, phase, status, last_update, url)
    )
    return nct, ",".join((title, phase, status, last_update)), url


def _csv_text(d: dict, dig: dict, new_why: dict) -> str:
    """One patient's ``matches.csv`` lines (columns :data:`MATCH_CSV_HEADER`, every cell as
    ``render.safe_cell`` makes it): the text ``csv.writer`` would write, made without it,
    from cells quoted once per value (and once per trial for the trial's own columns). The
    tests compare it with ``csv.writer`` on rows built cell by cell."""
    from matcher import render

    facts = _csv_quote(render.safe_cell(_facts_cell(dig["facts"])))
    patient_id = _csv_quote(render.safe_cell(d["patient_id"]))
    group = _csv_group(dig)
    numbers, text, listed, site_text, quote = (
        _QNUMBERS,
        _QTEXTS,
        _list_cell,
        render.site_text,
        _csv_quote,
    )
    prefixes = render.FORMULA_PREFIXES
    no_group = ("", "")
    lines = []
    for t in d["trials"]:
        nct_id = t["nct_id"]
        label, where = group.get(nct_id, no_group)
        nct, middle, url = _trial_csv(
            nct_id, t["title"], t["phase"], t["status"], t["last_update"], t["url"]
        )
        miles = t["distance_miles"]
        checks = t["checks"] if "checks" in t else verify_group_count(t.get("verify") or ())
        lines.append(
            ",".join(
                (
                    patient_id,
                    nct,
                    numbers[t["rank"]],
                    text[t["verdict"]],
                    numbers[t["score"]],
                    middle,
                    text[site_text(t["nearest_site"])],
                    "" if miles is None else numbers[miles],
                    quote(listed(t["reasons"], prefixes)),
                    quote(listed(t.get("verify", ""), prefixes)),
                    quote(listed(t["excluded_by"], prefixes)),
                    "yes" if t["is_new"] else "",
                    text[new_why.get(nct_id, "")],
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
                )
            )
        )
    lines.append("")
    return "\r\n".join(lines) if len(lines) > 1 else ""


# ``matches.json`` elements from pieces encoded once (:mod:`matcher.jsontext`): the same
# text as ``json.dumps`` of the element; tests compare the two
_dumps = jsontext.dumps_compact
_JSITES = jsontext.ById(_dumps)
# the review fields of a row (``review.UNDECIDED`` and the like): ``,"review_status":...``
_JREVIEWS = jsontext.ById(lambda rv: "," + _dumps(rv)[1:-1] if rv else "")


@lru_cache(maxsize=65536)
def _trial_json(nct_id, title, phase, status, last_update, url, relevance, purpose):
    """A trial's pieces of a compact ``matches.json`` row (see :func:`_compact_row_json`):
    ``{"nct_id":...,"rank":`` and ``,"title":...,"purpose":...,"is_new":``."""
    head = _dumps({"nct_id": nct_id})[:-1] + ',"rank":'
    middle = {
        "title": title,
        "phase": phase,
        "status": status,
        "last_update": last_update,
        "url": url,
        "relevance": relevance,
        "purpose": purpose,
    }
    return head, "," + _dumps(middle)[1:-1] + ',"is_new":'


def _compact_row_dict(b, is_new: bool, rv: dict, checks: int) -> dict:
    """The compact row (``digest.compact_row`` of its full row) of brief ``b`` (a
    :class:`matcher.columnar.Brief`) with review fields ``rv``."""
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


def _placed_compact_row(b, is_new: bool, rv: dict, checks: int, purposes, sites) -> dict:
    """What ``patient_digest`` makes of :func:`_compact_row_dict` (a trial it does not
    explain), key for key and in the same order, before its ``place``: ``open``,
    ``status_words``, ``phase_words`` and ``purpose`` in words, ``where`` (``sites``: the
    view's; None for a template whose ``where`` is set afterwards), ``groups`` empty."""
    row = _compact_row_dict(b, is_new, rv, checks)
    is_open_, status_words, phase_words, purpose = _trial_words(
        b.status, b.phase, purposes.get(b.nct_id)
    )
    row["open"] = is_open_
    row["status_words"] = status_words
    row["phase_words"] = phase_words
    row["purpose"] = purpose
    row["where"] = (
        digest_site_text(b.nearest_site, b.distance_miles, sites.get(b.nct_id))
        if sites is not None
        else ""
    )
    row["groups"] = []
    return row


def _compact_row_json(b, is_new: bool, rv: dict, checks: int) -> str:
    """``json.dumps`` (compact) of the compact row :func:`_compact_row_dict` makes of
    brief ``b`` (a :class:`matcher.columnar.Brief`) with review fields ``rv``: the per-trial
    run of keys once per trial, texts once per value, the review fields once per object
    where they recur (``review.UNDECIDED``)."""
    from matcher import review

    number = jsontext.number
    head, middle = _trial_json(
        b.nct_id, b.title, b.phase, b.status, b.last_update, b.url, b.relevance, b.purpose
    )
    site, miles = b.nearest_site, b.distance_miles
    if rv is review.UNDECIDED or rv is review.SEEN_UNDECIDED:
        reviewed = _JREVIEWS.text(rv)
    else:
        reviewed = "," + _dumps(rv)[1:-1] if rv else ""
    return "".join(
        (
            head,
            number(b.rank),
            ',"score":',
            number(b.score),
            ',"verdict":',
            jsontext.text(b.verdict),
            ',"reasons":',
            jsontext.texts(b.reasons),
            ',"excluded_by":',
            jsontext.texts(b.excluded_by),
            ',"nearest_site":',
            "null" if site is None else _JSITES.text(site),
            ',"distance_miles":',
            "null" if miles is None else number(miles),
            middle,
            "true" if is_new else "false",
            reviewed,
            ',"checks":',
            number(checks),
            ',"met_count":',
            number(b.met_count),
            ',"to_review_count":',
            number(b.to_review_count),
            ',"explained":false}',
        )
    )


def _element_json(d: dict, texts: dict) -> str:
    """``json.dumps`` (compact) of a ``matches.json`` element ``d``; a row ``t`` of its
    trials for which ``texts[t["nct_id"]]`` is ``(t, text)`` (that very row) is written
    as that text, every other row through the encoder."""
    parts = []
    for k, v in d.items():
        if k == "trials":
            rows = []
            for t in v:
                got = texts.get(t["nct_id"])
                rows.append(got[1] if got is not None and got[0] is t else _dumps(t))
            parts.append('"trials":[' + ",".join(rows) + "]")
        else:
            parts.append(_dumps(k) + ":" + _dumps(v))
    return "{" + ",".join(parts) + "}"


# what the index shows of a patient's best trial (render.render_index)
INDEX_BEST_KEYS = ("nct_id", "url", "title", "verdict", "where", "rank", "score", "status")


def _verify_of_row(t: dict):
    return t.get("verify") or []


class _JsonArrayFile:
    """A JSON array written one element at a time (compact, one element per line) through a
    temporary file: the file is the same JSON as ``json.dumps(list)``, never held whole.

    With ``part`` set, only the elements are written (to ``NAME.partK.tmp``), for a parent's
    :meth:`absorb` to join in order.
    """

    def __init__(self, path: Path, part: int | None = None):
        self.path = path
        self.part = part
        tail = ".tmp" if part is None else f".part{part}.tmp"
        self.tmp = path.with_name(path.name + tail)
        self.fh = open(self.tmp, "w", encoding="utf-8")  # noqa: SIM115 - closed in finish/abort
        if part is None:
            self.fh.write("[")
        self.n = 0

    def add(self, item) -> None:
        self.add_text(json.dumps(item, ensure_ascii=False, separators=(",", ":")))

    def add_text(self, text: str) -> None:
        """Add an element already encoded (compact JSON)."""
        self.fh.write(",\n" if self.n else "\n")
        self.fh.write(text)
        self.n += 1

    def close_part(self) -> tuple[str, int]:
        self.fh.close()
        return str(self.tmp), self.n

    def absorb(self, part: tuple[str, int]) -> None:
        path, n = part
        if n:
            if self.n:
                self.fh.write(",")
            with open(path, encoding="utf-8") as fh:
                shutil.copyfileobj(fh, self.fh, 1 << 20)
            self.n += n
        os.unlink(path)

    def finish(self) -> Path:
        self.fh.write("\n]\n")
        self.fh.close()
        os.replace(self.tmp, self.path)
        return self.path

    def abort(self) -> None:
        self.fh.close()
        self.tmp.unlink(missing_ok=True)


class _ReportWriter:
    """The run's outputs, written patient by patient as the matches stream in.

    :meth:`add` writes one patient's element of ``matches.json`` and ``options.json``, its
    ``matches.csv`` rows and its page (as a ``.tmp`` file beside the others), and keeps only
    the line the index needs. :meth:`finish` closes the files and renames them into place,
    then writes ``errors.csv``, ``changes.json`` and the index ``report.html``. :meth:`abort`
    removes everything this run started, so a failed run leaves the previous report intact.
    """

    def __init__(
        self,
        out: Path,
        run: dict,
        patient_ids: Sequence[str],
        view: _View,
        part: int | None = None,
        offset: int = 0,
    ):
        """``part``/``offset``: a worker's writer for the patients from ``offset`` on, whose
        pieces a parent writer joins (:meth:`close_part`, :meth:`absorb`)."""
        from matcher import render

        self.out, self.run, self.view = out, run, view
        self.offset = offset
        self.pages = {pid: render.patient_page_name(pid) for pid in patient_ids}
        self.order = [self.pages[pid] for pid in patient_ids]
        self.pdir = out / render.PATIENT_DIR
        self.pdir.mkdir(exist_ok=True)
        self.index_rows: list[dict] = []
        self.review_pages: list[dict] = []  # for `trialmatch serve` (matcher.review)
        self.page_tmps: list[Path] = []
        self.matches = _JsonArrayFile(out / "matches.json", part)
        self.options = _JsonArrayFile(out / "options.json", part)
        self.csv_path = out / "matches.csv"
        tail = ".tmp" if part is None else f".part{part}.tmp"
        self.csv_tmp = self.csv_path.with_name(self.csv_path.name + tail)
        self.csv_fh = open(self.csv_tmp, "w", newline="", encoding="utf-8")  # noqa: SIM115
        self.csv = csv.writer(self.csv_fh)
        self._templates: dict[tuple, dict] = {}  # _placed_template's, per trial
        if part is None:
            self.csv.writerow(MATCH_CSV_HEADER)

    def close_part(self) -> dict:
        """A worker's pieces, for the parent's :meth:`absorb` (paths, counts, index rows)."""
        self.csv_fh.close()
        return {
            "matches": self.matches.close_part(),
            "options": self.options.close_part(),
            "csv": str(self.csv_tmp),
            "pages": [str(p) for p in self.page_tmps],
            "index_rows": self.index_rows,
            "review_pages": self.review_pages,
        }

    def absorb(self, part: dict) -> None:
        """Join a worker's pieces after what was written so far."""
        self.matches.absorb(part["matches"])
        self.options.absorb(part["options"])
        self.csv_fh.flush()
        with open(part["csv"], newline="", encoding="utf-8") as fh:
            shutil.copyfileobj(fh, self.csv_fh, 1 << 20)
        os.unlink(part["csv"])
        self.page_tmps += [Path(p) for p in part["pages"]]
        self.index_rows += part["index_rows"]
        self.review_pages += part["review_pages"]

    def add(self, patient, m, options, new_why: dict[str, str], gone: list[dict]) -> None:
        """Write one patient: ``m`` its matches, ``options`` its ``evaluate_options`` result,
        ``new_why`` ``{nct_id: why}`` of its new matches, ``gone`` its gone matches."""
        from matcher import render, review

        view = self.view
        lines, texts, placed = _verify_of_row, {}, False
        if not isinstance(m, PatientMatches) and view.explain == "top":
            d, lines, texts = self._brief_dict(m, new_why)
            placed = True  # its compact rows are placed already
        else:
            if not isinstance(m, PatientMatches):
                m = m.explain()  # every row in full
            d = m.to_dict()
            for t in d["trials"]:
                t["is_new"] = t["nct_id"] in new_why
                t.update(
                    view.reviews.get(m.patient_id, t["nct_id"], t.get("status"))
                    if view.reviews is not None
                    else review.UNDECIDED
                )
        # pairs the coordinator judged not eligible (nothing changed since) are folded
        dig = patient_digest(
            [t for t in d["trials"] if not t["review_folded"]],
            view.sites,
            view.purposes,
            view.top,
            view.country,
            view.explain,
            lines,
            placed,
        )
        dig["folded"] = [t for t in d["trials"] if t["review_folded"]]
        if view.explain == "top":
            # what the outputs write: the page's first trials with their detail, the rest
            # compact (the facts to record above were counted on every trial to consider)
            full, compact = {t["nct_id"] for t in dig["top"]}, dig["compact"]
            d["trials"] = [
                {**t, "explained": True}
                if t["nct_id"] in full
                else compact.get(t["nct_id"]) or compact_row(t)
                for t in d["trials"]
            ]
            dig["folded"] = [compact_row(t) for t in dig["folded"]]
        d["facts_to_record"] = [f.to_dict() for f in dig["facts"]]
        d["facts_sentence"] = dig["facts_sentence"]
        self.matches.add_text(_element_json(self._compact(d), texts))
        o = options.to_dict()
        self.options.add(o)
        self.csv_fh.write(_csv_text(d, dig, new_why))

        i = self.offset + len(self.index_rows)
        diagnosis = patient.diagnosis_name or patient.diagnosis_text or "not recorded"
        notes = d.get("notes", []) + list(patient.warnings)
        page = render.render_patient(
            self.run,
            {
                "patient_id": patient.id,
                "diagnosis": diagnosis,
                "facts": _patient_facts(patient),
                "notes": notes,
                "digest": dig,
                "options": o.get("options", []),
                "not_covered_reason": o.get("not_covered_reason"),
                "gone": gone,
                "folded": dig["folded"],
                "unrelated_count": d.get("unrelated_count", 0),
                "seeds": view.seeds,
                "top": view.top,
                "previous": self.order[i - 1] if i > 0 else None,
                "next": self.order[i + 1] if i + 1 < len(self.order) else None,
            },
        )
        name = self.pages[patient.id]
        tmp = self.pdir / (name + ".tmp")
        tmp.write_text(page, encoding="utf-8")
        self.page_tmps.append(tmp)
        self.review_pages.append(
            review.pack_rows(
                patient.id,
                diagnosis,
                view.reviews.patient_hashes.get(patient.id) if view.reviews is not None else None,
                {g: dig[g] for g in ("top", "more", "other_country", "closed", "folded")},
                view.crit,
            )
        )
        first = (dig["top"] or [None])[0]
        if first is not None:  # the index keeps one short line per patient, not the trial row
            first = {k: first[k] for k in INDEX_BEST_KEYS if k in first}
        self.index_rows.append(
            {
                "patient_id": patient.id,
                "diagnosis": diagnosis,
                "href": f"{render.PATIENT_DIR}/{name}",
                "counts": dig["counts"],
                "best": first,
                "facts_sentence": dig["facts_sentence"],
                "new_count": len(new_why),
                "gone_count": len(gone),
                "awaiting": review.awaiting(dig["top"] + dig["more"]),
                "flags": notes,
            }
        )

    def _brief_dict(self, m, new_why: dict[str, str]) -> tuple[dict, Callable, dict]:
        """The ``to_dict`` of matches ``m`` (:class:`matcher.columnar.Briefs`) as ``--explain
        top`` writes it: the rows the page shows first built in full (``rank.judge``), every
        other row straight as its :func:`digest.compact_row`, placed as ``patient_digest``
        places it (:func:`_placed_compact_row`: one dict per row, which the digest then uses
        as it is; a folded row unplaced, as the page lists it); each row's verify lines (for
        the facts to record); and ``{nct_id: (row, its matches.json text)}`` of the compact
        rows (see :func:`_element_json`: the text is the compact row's, without the keys the
        digest adds)."""
        from matcher import review

        view = self.view
        reviews, pid = view.reviews, m.patient_id
        sites, country, n = view.sites, view.country, max(0, view.top)
        placed, site_text = self._placed_template, digest_site_text
        fields, top = [], []
        if reviews is not None and reviews.untouched(pid):
            reviews = None  # every pair UNDECIDED
        # the first open trials to consider, as patient_digest picks them
        for pos, b in enumerate(m.trials):
            rv = reviews.get(pid, b.nct_id, b.status) if reviews is not None else review.UNDECIDED
            fields.append(rv)
            if (
                len(top) < n
                and not rv["review_folded"]
                and b.verdict != "excluded"
                and is_open(b.status)
                and in_country(sites.get(b.nct_id), country)
            ):
                top.append(pos)
        full = dict(zip(top, m.explain(top).trials, strict=True)) if top else {}
        rows = []
        lines, texts = {}, {}
        for pos, (b, rv) in enumerate(zip(m.trials, fields, strict=True)):
            nct = b.nct_id
            lines[nct] = b.verify
            s = full.get(pos)
            if s is not None:
                t = s.to_dict()
                t["is_new"] = nct in new_why
                t.update(rv)
            else:
                is_new, checks = nct in new_why, verify_group_count(b.verify)
                if rv["review_folded"]:  # the page lists a folded row as it is, not placed
                    t = _compact_row_dict(b, is_new, rv, checks)
                else:  # the digest's placed copy of the compact row, made at once
                    t = placed(b, rv)
                    t["rank"] = b.rank
                    t["score"] = b.score
                    t["verdict"] = b.verdict
                    t["reasons"] = b.reasons
                    t["excluded_by"] = b.excluded_by
                    t["nearest_site"] = site = b.nearest_site
                    t["distance_miles"] = miles = b.distance_miles
                    t["is_new"] = is_new
                    t["checks"] = checks
                    t["met_count"] = b.met_count
                    t["to_review_count"] = b.to_review_count
                    t["where"] = site_text(site, miles, sites.get(nct))
                    t["groups"] = []
                texts[nct] = (t, _compact_row_json(b, is_new, rv, checks))
            rows.append(t)
        d = {"patient_id": pid, "trials": rows, "notes": m.notes, "unrelated_count": m.unrelated}
        return d, lambda t: lines[t["nct_id"]], texts

    def _placed_template(self, b, rv: dict) -> dict:
        """A copy of the placed compact row of brief ``b`` with review fields ``rv``, as
        ``patient_digest`` places it (:func:`_placed_compact_row`), its per-pair values to be
        set: made once per trial, relevance and undecided review fields (``review.UNDECIDED``
        or ``SEEN_UNDECIDED``), per pair for other review fields."""
        from matcher import review

        if rv is not review.UNDECIDED and rv is not review.SEEN_UNDECIDED:
            return _placed_compact_row(b, False, rv, 0, self.view.purposes or {}, None)
        key = (
            b.nct_id, b.title, b.phase, b.status, b.last_update, b.url, b.relevance, b.purpose,
            rv is review.SEEN_UNDECIDED,
        )  # fmt: skip
        got = self._templates.get(key)
        if got is None:
            if len(self._templates) > 50_000:
                self._templates.clear()
            got = _placed_compact_row(b, False, rv, 0, self.view.purposes or {}, None)
            self._templates[key] = got
        return got.copy()

    def _compact(self, d: dict) -> dict:
        """The ``matches.json`` element: a trial's criteria lines to read are the same for every
        patient whose criteria were evaluated, so they are written once, in ``trials.json``;
        a row keeps ``to_review_count``, and its own ``to_review`` only where its lines differ
        from the trial's."""
        rows = []
        for t in d["trials"]:
            if t.get("explained") is False:
                rows.append(t)  # compact already: counts, no lines
                continue
            lines = t["to_review"]
            row = {k: v for k, v in t.items() if k != "to_review"}
            row["to_review_count"] = len(lines)
            if lines and lines != self.view.trial_text.get(t["nct_id"], {}).get("to_review"):
                row["to_review"] = lines
            rows.append(row)
        return {**d, "trials": rows}

    def abort(self) -> None:
        self.matches.abort()
        self.options.abort()
        self.csv_fh.close()
        self.csv_tmp.unlink(missing_ok=True)
        for tmp in self.page_tmps:
            tmp.unlink(missing_ok=True)
        if self.offset == 0 and self.matches.part is None:
            # the parent (the run lock is held): also what workers left when one failed
            for tmp in [*self.out.glob("*.part*.tmp"), *self.out.glob(".history-part*.tmp")]:
                tmp.unlink(missing_ok=True)
            for tmp in self.pdir.glob("*.tmp"):
                tmp.unlink(missing_ok=True)

    def finish(self, changes: dict, errors: list[dict]) -> list[Path]:
        """Put every file in place; return them (data files first, the index last)."""
        from matcher import render

        files = [self.matches.finish(), self.options.finish()]
        files.append(_json_file(self.out / "trials.json", self.view.trial_text, indent=None))
        self.csv_fh.close()
        os.replace(self.csv_tmp, self.csv_path)
        files.append(self.csv_path)
        files.append(
            _replace(
                self.out / "errors.csv",
                lambda t: render.write_csv(
                    t, ERRORS_CSV_HEADER, ([e[k] for k in ERRORS_CSV_HEADER] for e in errors)
                ),
            )
        )
        files.append(_json_file(self.out / "changes.json", changes))
        written = set()
        for tmp in self.page_tmps:
            page = tmp.with_name(tmp.name.removesuffix(".tmp"))
            os.replace(tmp, page)
            files.append(page)
            written.add(page.name)
        # pages of patients no longer in the list would otherwise look current
        for old in self.pdir.glob("*.html"):
            if old.name not in written:
                old.unlink()

        pages = self.pages

        def linked(entries):
            return [
                {**c, "href": f"{render.PATIENT_DIR}/{pages[c['patient_id']]}"}
                if c["patient_id"] in pages
                else c
                for c in entries
            ]

        shown_changes = {
            **changes,
            "new": linked(changes.get("new", [])),
            "gone": linked(changes.get("gone", [])),
        }
        html_text = render.render_index(self.run, self.index_rows, errors, shown_changes)
        files.append(
            _replace(self.out / "report.html", lambda t: t.write_text(html_text, encoding="utf-8"))
        )
        return files


def read_matches(out_dir: str | Path) -> list[dict]:
    """A report's ``matches.json`` in the ``match --json`` shape: each trial row gets its
    ``to_review`` lines back from ``trials.json`` (a row that carries its own keeps them)."""
    out = Path(out_dir)
    data = json.loads((out / "matches.json").read_text(encoding="utf-8"))
    trials = json.loads((out / "trials.json").read_text(encoding="utf-8"))
    for p in data:
        for t in p["trials"]:
            if "to_review" not in t:
                lines = trials.get(t["nct_id"], {}).get("to_review", [])
                t["to_review"] = list(lines) if t.get("to_review_count") else []
    return data


__all__ = [
    "ChangeTracker",
    "ERRORS_CSV_HEADER",
    "MATCH_CSV_HEADER",
    "ReportConfig",
    "ReportResult",
    "RunLock",
    "compute_changes",
    "criteria_hash",
    "error_rows",
    "patient_hash",
    "read_matches",
    "run_report",
]
