"""The nightly report: match a patient list, compare with the last run, write HTML/CSV/JSON.

``run_report`` is the library entry point behind ``trialmatch report``. It takes a lock (two
runs never collide on one store), reads the patients (one bad patient is reported, the rest
proceed), optionally imports trial record files into the store, matches everyone with the
chosen engine, records the run's matches in the store's run history, and writes:

- ``report.html`` (self-contained), ``matches.csv``, ``matches.json`` (``match --json`` shape),
  ``options.json`` (``options --json`` shape) and ``errors.csv``.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path

from matcher import __version__
from matcher.errors import LockError, MatcherError, StoreError
from matcher.exitcodes import batch_exit_code
from matcher.rank import RankConfig
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
CRITERIA_HASH_MIGRATION = (
    101,
    "report_criteria_hash",
    "ALTER TABLE report_matches ADD COLUMN criteria_hash TEXT;",
)
register_migration(*CRITERIA_HASH_MIGRATION)

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
    "url",
]


@dataclass
class ReportConfig:
    """How a report run matches (the rank settings plus engine and reference date)."""

    rank: RankConfig = field(default_factory=RankConfig)
    engine: str = "local"
    scheduler: str | None = None
    as_of: date | None = None
    fmt: str | None = None  # patient file format, sniffed when None


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

    @property
    def exit_code(self) -> int:
        return batch_exit_code(self.n_patients_ok, self.n_failed)


# ----------------------------------------------------------------------------- lock


class RunLock:
    """An exclusive, non-blocking lock file beside the store (released when the process dies)."""

    def __init__(self, path: Path):
        self.path = path
        self._fh = None

    def __enter__(self) -> RunLock:
        import fcntl

        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held for the run
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            fh.seek(0)
            holder = fh.read().strip() or "another process"
            fh.close()
            raise LockError(
                f"{self.path}: another report run holds the lock ({holder}); wait for it to "
                "finish (the lock is released as soon as that process ends) or use another --db"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} since {_now()}")
        fh.flush()
        self._fh = fh
        return self

    def __exit__(self, *exc) -> None:
        import fcntl

        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


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


def _previous_run(db, run_id: int):
    return db.execute(
        "SELECT * FROM report_runs WHERE id < ? AND status IN ('ok','partial') ORDER BY id DESC LIMIT 1",
        (run_id,),
    ).fetchone()


def compute_changes(store: Store, run_id: int, statuses) -> dict:
    """New matches, matches that disappeared (and why), and trial status changes vs the last run."""
    db = store.connection
    prev = _previous_run(db, run_id)
    if prev is None:
        return {"previous_run": None, "new": [], "gone": [], "status_changes": []}
    pid = prev["id"]

    def load(rid):
        return {
            (r["patient_id"], r["nct_id"]): r
            for r in db.execute("SELECT * FROM report_matches WHERE run_id = ?", (rid,))
        }

    now, before = load(run_id), load(pid)
    p_now = {
        r["patient_id"]: r["patient_hash"]
        for r in db.execute("SELECT * FROM report_patients WHERE run_id=?", (run_id,))
    }
    p_before = {
        r["patient_id"]: r["patient_hash"]
        for r in db.execute("SELECT * FROM report_patients WHERE run_id=?", (pid,))
    }

    new = []
    for key, r in sorted(now.items()):
        if r["verdict"] in SHOWN and (key not in before or before[key]["verdict"] not in SHOWN):
            why = "patient new to the list" if key[0] not in p_before else "new match"
            new.append(
                {
                    "patient_id": key[0],
                    "nct_id": key[1],
                    "verdict": r["verdict"],
                    "title": r["title"],
                    "why": why,
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
                "why": _why_gone(store, key, r, cur, p_now, p_before, statuses),
            }
        )

    status_changes = []
    seen_trials = {k[1]: r for k, r in before.items()}
    for nct, r in sorted(seen_trials.items()):
        meta = store.get_meta(nct)
        after = meta["overall_status"] if meta else "removed from the store"
        if after != r["trial_status"]:
            status_changes.append({"nct_id": nct, "before": r["trial_status"], "after": after})
    return {
        "previous_run": prev["started_at"],
        "new": new,
        "gone": gone,
        "status_changes": status_changes,
    }


def _why_gone(store, key, before_row, cur_row, p_now, p_before, statuses) -> str:
    patient_id, nct = key
    if patient_id not in p_now:
        return "patient not matched in this run (not in the list, or failed: see errors.csv)"
    reasons = []
    meta = store.get_meta(nct)
    if meta is None:
        reasons.append("trial no longer in the store")
    else:
        if statuses is not None and meta["overall_status"] not in statuses:
            reasons.append(f"trial closed: status now {meta['overall_status']}")
        if meta["last_update"] != before_row["trial_last_update"]:
            reasons.append(f"trial criteria or record changed (updated {meta['last_update']})")
    if p_now.get(patient_id) != p_before.get(patient_id):
        reasons.append("patient record changed")
    if cur_row is not None and cur_row["verdict"] == "excluded":
        reasons.append("now excluded: see the trial's excluded_by reasons")
    if not reasons:
        reasons.append("trial no longer judged relevant to this diagnosis")
    return "; ".join(reasons)


# ----------------------------------------------------------------------------- run


def run_report(
    patients_path: str | Path,
    out_dir: str | Path,
    db_path: str | Path | None = None,
    trials_paths: Sequence[str | Path] = (),
    config: ReportConfig | None = None,
    progress: Callable[[str, int], None] | None = None,
) -> ReportResult:
    """Run the whole nightly job (see module docstring). Raises LockError if a run is active,
    InputError if the patient file cannot be read at all."""
    from matcher.engine import match_cohort, parse_records
    from matcher.knowledge import evaluate_options, load_pack
    from matcher.patient import read_patients
    from matcher.records import iter_records
    from matcher.store import default_db_path
    from matcher.vocab import load_vocab

    config = config or ReportConfig()
    db_path = Path(db_path) if db_path else default_db_path()
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    started = _now()
    with RunLock(Path(str(db_path) + ".lock")), Store(db_path) as store:
        record_errors = []
        for tp in trials_paths:
            items = list(iter_records(tp))
            record_errors += [i.error for i in items if i.error is not None]
            store.upsert_records(
                [i.record for i in items if i.error is None], source=f"import: {tp}"
            )
        batch = read_patients(patients_path, fmt=config.fmt, as_of=config.as_of)
        pack, vocab = load_pack(), load_vocab()
        statuses = config.rank.statuses
        parsed = parse_records(store.iter_records(statuses=statuses))
        if progress:
            progress("trials", len(parsed))

        matches = match_cohort(
            batch.patients,
            parsed,
            pack,
            vocab,
            config.rank,
            engine=config.engine,
            scheduler=config.scheduler,
            progress=(lambda n: progress("patients", n)) if progress else None,
        )
        options = [evaluate_options(p, pack) for p in batch.patients]

        db = store.connection
        settings = {
            "statuses": sorted(statuses) if statuses is not None else "any",
            "max_miles": config.rank.max_miles,
            "engine": config.engine,
            "as_of": (config.as_of or date.today()).isoformat(),
        }
        with store.transaction():
            cur = db.execute(
                "INSERT INTO report_runs (started_at, patients_source, n_patients, n_failed, pack_version,"
                " data_timestamp, tool_version, settings, status) VALUES (?,?,?,?,?,?,?,?, 'running')",
                (
                    started,
                    str(patients_path),
                    len(batch.patients),
                    len(batch.errors),
                    pack.version,
                    store.data_timestamp(),
                    __version__,
                    json.dumps(settings),
                ),
            )
            run_id = cur.lastrowid
            db.executemany(
                "INSERT OR REPLACE INTO report_patients VALUES (?,?,?)",
                [(run_id, p.id, patient_hash(p)) for p in batch.patients],
            )
            db.executemany(
                "INSERT OR REPLACE INTO report_matches VALUES (?,?,?,?,?,?,?,?)",
                [
                    (
                        run_id,
                        m.patient_id,
                        s.nct_id,
                        s.verdict,
                        s.score,
                        s.status,
                        s.last_update,
                        s.title,
                    )
                    for m in matches
                    for s in m.trials
                ],
            )
        changes = compute_changes(store, run_id, statuses)
        finished = _now()
        status = "ok" if not batch.errors else ("partial" if batch.patients else "failed")
        with store.transaction():
            db.execute(
                "UPDATE report_runs SET finished_at=?, status=? WHERE id=?",
                (finished, status, run_id),
            )

        run = {
            "run_id": run_id,
            "started": started,
            "finished": finished,
            "tool_version": __version__,
            "pack_version": pack.version,
            "data_timestamp": store.data_timestamp()
            or "not recorded (no sync yet: trials came from files)",
            "trials_in_store": store.count(),
            "n_trials_considered": len(parsed),
            "statuses": ", ".join(settings["statuses"]) if statuses is not None else "any",
            "engine": config.engine,
            "n_patients_ok": len(batch.patients),
            "n_failed": len(batch.errors),
            "patients_source": str(patients_path),
            "as_of": settings["as_of"],
        }
        files = _write_outputs(out, run, batch, matches, options, changes, record_errors)
    return ReportResult(
        out, run_id, len(batch.patients), len(batch.errors), len(parsed), changes, files
    )


def _error_rows(batch) -> list[dict]:
    rows = []
    for err in batch.errors:
        rows.append(
            {
                "source": getattr(err, "source", None) or getattr(err, "path", None) or "",
                "patient_id": getattr(err, "patient_id", None) or "",
                "error": str(err),
            }
        )
    return rows


def _write_outputs(out: Path, run, batch, matches, options, changes, record_errors) -> list[Path]:
    from matcher import render

    new_keys = {(c["patient_id"], c["nct_id"]) for c in changes.get("new", [])}
    match_dicts = []
    for m in matches:
        d = m.to_dict()
        for t in d["trials"]:
            t["is_new"] = (m.patient_id, t["nct_id"]) in new_keys
        match_dicts.append(d)
    option_dicts = [o.to_dict() for o in options]
    errors = _error_rows(batch)
    errors += [
        {"source": getattr(e, "path", "") or "", "patient_id": "", "error": f"trial record: {e}"}
        for e in record_errors
    ]

    files = []
    p = out / "matches.json"
    p.write_text(
        json.dumps(
            [{k: v for k, v in d.items()} for d in match_dicts], indent=2, ensure_ascii=False
        )
    )
    files.append(p)
    p = out / "options.json"
    p.write_text(json.dumps(option_dicts, indent=2, ensure_ascii=False))
    files.append(p)
    p = out / "matches.csv"
    render.write_csv(
        p,
        MATCH_CSV_HEADER,
        (
            [
                d["patient_id"],
                t["nct_id"],
                t["rank"],
                t["verdict"],
                t["score"],
                t["title"],
                t["phase"],
                t["status"],
                t["last_update"],
                render._site_text(t["nearest_site"]),
                t["distance_miles"],
                t["reasons"],
                t["verify"],
                t["excluded_by"],
                "yes" if t["is_new"] else "",
                t["url"],
            ]
            for d in match_dicts
            for t in d["trials"]
        ),
    )
    files.append(p)
    p = out / "errors.csv"
    render.write_csv(
        p,
        ["source", "patient_id", "error"],
        ([e["source"], e["patient_id"], e["error"]] for e in errors),
    )
    files.append(p)
    p = out / "changes.json"
    p.write_text(json.dumps(changes, indent=2, ensure_ascii=False))
    files.append(p)

    by_id = {o["patient_id"]: o for o in option_dicts}
    pats = []
    for patient, d in zip(batch.patients, match_dicts, strict=False):
        o = by_id.get(patient.id, {})
        pats.append(
            {
                "patient_id": patient.id,
                "diagnosis": patient.diagnosis_name or patient.diagnosis_text or "not recorded",
                "options": o.get("options", []),
                "not_covered_reason": o.get("not_covered_reason"),
                "trials": d["trials"],
                "notes": d.get("notes", []) + list(patient.warnings),
                "new_count": sum(1 for t in d["trials"] if t["is_new"]),
            }
        )
    p = out / "report.html"
    p.write_text(render.render_html(run, pats, errors, changes), encoding="utf-8")
    files.append(p)
    return files


__all__ = [
    "ReportConfig",
    "ReportResult",
    "RunLock",
    "run_report",
    "compute_changes",
    "MatcherError",
    "StoreError",
]
