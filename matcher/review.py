"""Coordinator review: one decision per (patient list, patient id, NCT id), kept across runs.

A decision has a status (:data:`STATUSES`), a reason (required for "not eligible": one of the
verdict's verify items or free text), a note, who made it and when. Every change is appended
to ``review_history`` (triggers refuse UPDATE and DELETE there) in the same transaction as the
decision itself: one transaction per status change.

A decision remembers what it was made on: the patient's profile hash, the trial's criteria hash
and its overall status (the hashes the report keeps for its change history). The nightly run
(:func:`for_run`) gives every decided pair its status in every output; a "not eligible" pair is
folded with its reason unless one of those three changed since, when it comes back as "changed
since your decision". ``review_pages`` holds the latest run's pages per list for
``trialmatch serve``.
"""

from __future__ import annotations

import csv
import getpass
import json
import re
import zlib
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

from matcher import jsontext
from matcher.errors import ReviewError
from matcher.store import Store, now_iso, register_migration

NEW = "new"
NOT_ELIGIBLE = "not eligible"
STATUSES = (NEW, "reviewing", "contacted", "enrolled", NOT_ELIGIBLE, "deferred")

# What a pair with no decision shows in the outputs. ``review_new``: not on screen when the
# coordinator last opened the patient's review page (never opened: every pair is new).
UNDECIDED = {
    "review_status": NEW,
    "review_new": True,
    "review_reason": "",
    "review_note": "",
    "review_who": "",
    "review_at": "",
    "review_changed": "",
    "review_folded": False,
}
SEEN_UNDECIDED = {**UNDECIDED, "review_new": False}

_STATUS_SQL = ", ".join(f"'{s}'" for s in STATUSES)

DECISIONS_MIGRATION = (
    120,
    "review_decisions",
    f"""
    CREATE TABLE review_decisions (
        list_name     TEXT NOT NULL,
        patient_id    TEXT NOT NULL,
        nct_id        TEXT NOT NULL,
        status        TEXT NOT NULL CHECK (status IN ({_STATUS_SQL})),
        reason        TEXT,
        note          TEXT,
        who           TEXT NOT NULL,
        decided_at    TEXT NOT NULL,
        -- what the decision was made on (the report's hashes), to tell "changed since"
        patient_hash  TEXT,
        criteria_hash TEXT,
        trial_status  TEXT,
        PRIMARY KEY (list_name, patient_id, nct_id),
        CHECK (status <> 'not eligible' OR COALESCE(reason, '') <> '')
    );
    CREATE INDEX review_decisions_status ON review_decisions (list_name, status);
    CREATE TABLE review_history (
        id              INTEGER PRIMARY KEY AUTOINCREMENT,
        list_name       TEXT NOT NULL,
        patient_id      TEXT NOT NULL,
        nct_id          TEXT NOT NULL,
        status          TEXT NOT NULL,
        previous_status TEXT,
        reason          TEXT,
        note            TEXT,
        who             TEXT NOT NULL,
        at              TEXT NOT NULL,
        source          TEXT NOT NULL          -- cli / import / serve
    );
    CREATE INDEX review_history_pair ON review_history (list_name, patient_id, nct_id);
    CREATE TRIGGER review_history_no_update BEFORE UPDATE ON review_history
    BEGIN SELECT RAISE(ABORT, 'review history is append-only'); END;
    CREATE TRIGGER review_history_no_delete BEFORE DELETE ON review_history
    BEGIN SELECT RAISE(ABORT, 'review history is append-only'); END;
    """,
)

# The latest run's pages per list, for the review server (replaced by each run).
PAGES_MIGRATION = (
    121,
    "review_pages",
    """
    CREATE TABLE review_pages (
        list_name   TEXT NOT NULL,
        patient_id  TEXT NOT NULL,
        run_id      INTEGER NOT NULL,
        position    INTEGER NOT NULL,
        data        TEXT NOT NULL,             -- JSON: diagnosis, patient hash, trials
        summary     TEXT NOT NULL,             -- JSON: the same, trials cut to what the index needs
        PRIMARY KEY (list_name, patient_id)
    );
    """,
)


# When the coordinator last opened a patient's review page, and which run's trials it showed:
# "new" means new since then.
SEEN_MIGRATION = (
    122,
    "review_seen",
    """
    CREATE TABLE review_seen (
        list_name   TEXT NOT NULL,
        patient_id  TEXT NOT NULL,
        run_id      INTEGER NOT NULL,          -- the report run whose trials were shown
        seen_at     TEXT NOT NULL,
        who         TEXT NOT NULL,
        PRIMARY KEY (list_name, patient_id)
    );
    """,
)


def register() -> None:
    """Register the review migrations (and the report's, whose tables a decision reads)."""
    from matcher import report

    for m in (report.HISTORY_MIGRATION, report.CRITERIA_HASH_MIGRATION):
        register_migration(*m)
    register_migration(*report.LIST_NAME_MIGRATION)
    register_migration(*DECISIONS_MIGRATION)
    register_migration(*PAGES_MIGRATION)
    register_migration(*SEEN_MIGRATION)


register_migration(*DECISIONS_MIGRATION)
register_migration(*PAGES_MIGRATION)
register_migration(*SEEN_MIGRATION)


@dataclass
class Decision:
    """One pair's current decision and what it was made on."""

    list_name: str
    patient_id: str
    nct_id: str
    status: str
    reason: str | None
    note: str | None
    who: str
    decided_at: str
    patient_hash: str | None = None
    criteria_hash: str | None = None
    trial_status: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


_NCT = re.compile(r"^NCT\d{8}$")


def parse_status(text: str) -> str:
    """``"Not_Eligible"``, ``"not-eligible"``, ``" contacted "`` -> a value of :data:`STATUSES`.

    Raises ReviewError naming the accepted values."""
    s = " ".join(str(text or "").strip().lower().replace("_", " ").replace("-", " ").split())
    if s in STATUSES:
        return s
    raise ReviewError(
        f"unknown review status {text!r} (accepted: {', '.join(STATUSES)})", field="status"
    )


def parse_status_or_none(text: str) -> str | None:
    try:
        return parse_status(text)
    except ReviewError:
        return None


def current_user(user: str | None = None) -> str:
    """``user`` if given, else the OS user name ("unknown" when none can be found)."""
    if user and user.strip():
        return user.strip()
    try:
        return getpass.getuser()
    except Exception:  # no login name (containers without a passwd entry)
        return "unknown"


def list_names(store: Store) -> list[str]:
    """Patient lists with a finished report run or a decision, newest run first."""
    db = store.connection
    names = [
        r[0]
        for r in db.execute(
            "SELECT list_name FROM report_runs WHERE status IN ('ok','partial')"
            " AND list_name IS NOT NULL GROUP BY list_name ORDER BY MAX(id) DESC"
        )
    ]
    for (n,) in db.execute("SELECT DISTINCT list_name FROM review_decisions ORDER BY 1"):
        if n not in names:
            names.append(n)
    return names


def resolve_list(store: Store, list_name: str | None) -> str:
    """``list_name`` if given; else the store's only list. Raises ReviewError otherwise."""
    if list_name:
        return list_name
    names = list_names(store)
    if len(names) == 1:
        return names[0]
    if not names:
        raise ReviewError(
            "no report has been run on this store yet: run 'trialmatch report' first"
            " (or give --list NAME)"
        )
    raise ReviewError(f"this store has several patient lists ({', '.join(names)}): give --list")


def _basis(db, list_name: str, patient_id: str, nct_id: str):
    """The pair as the latest finished run of the list reported it (None if never)."""
    return db.execute(
        "SELECT m.criteria_hash, m.trial_status, p.patient_hash FROM report_matches m"
        " JOIN report_runs r ON r.id = m.run_id"
        " LEFT JOIN report_patients p ON p.run_id = m.run_id AND p.patient_id = m.patient_id"
        " WHERE r.list_name = ? AND r.status IN ('ok','partial') AND m.patient_id = ?"
        " AND m.nct_id = ? ORDER BY r.id DESC LIMIT 1",
        (list_name, patient_id, nct_id),
    ).fetchone()


def _row(r) -> Decision:
    return Decision(**{k: r[k] for k in r.keys()})  # noqa: SIM118 - a sqlite3.Row


def get_decision(store: Store, list_name: str, patient_id: str, nct_id: str) -> Decision | None:
    r = store.connection.execute(
        "SELECT * FROM review_decisions WHERE list_name=? AND patient_id=? AND nct_id=?",
        (list_name, patient_id, nct_id),
    ).fetchone()
    return _row(r) if r else None


def _check(patient_id: str, nct_id: str, status: str, reason: str | None) -> tuple[str, str]:
    nct = str(nct_id or "").strip().upper()
    if not _NCT.match(nct):
        raise ReviewError(
            f"{nct_id!r} is not an NCT id (NCT and 8 digits)",
            patient_id=patient_id,
            field="nct_id",
        )
    if not str(patient_id or "").strip():
        raise ReviewError("a patient id is required", field="patient_id")
    status = parse_status(status)
    if status == NOT_ELIGIBLE and not (reason or "").strip():
        raise ReviewError(
            f"patient {patient_id}, {nct}: 'not eligible' needs a reason (--reason: a verify "
            "item from the report, or your own words)",
            patient_id=patient_id,
            nct_id=nct,
            field="reason",
        )
    return nct, status


def _write(db, d: Decision, previous: str | None, source: str) -> None:
    db.execute(
        "INSERT OR REPLACE INTO review_decisions (list_name, patient_id, nct_id, status, reason,"
        " note, who, decided_at, patient_hash, criteria_hash, trial_status)"
        " VALUES (?,?,?,?,?,?,?,?,?,?,?)",
        (
            d.list_name,
            d.patient_id,
            d.nct_id,
            d.status,
            d.reason,
            d.note,
            d.who,
            d.decided_at,
            d.patient_hash,
            d.criteria_hash,
            d.trial_status,
        ),
    )
    db.execute(
        "INSERT INTO review_history (list_name, patient_id, nct_id, status, previous_status,"
        " reason, note, who, at, source) VALUES (?,?,?,?,?,?,?,?,?,?)",
        (
            d.list_name,
            d.patient_id,
            d.nct_id,
            d.status,
            previous,
            d.reason,
            d.note,
            d.who,
            d.decided_at,
            source,
        ),
    )


def _decision(
    db, list_name, patient_id, nct, status, reason, note, who, at, require_known
) -> Decision:
    basis = _basis(db, list_name, patient_id, nct)
    if basis is None and require_known:
        raise ReviewError(
            f"patient {patient_id} has no match with {nct} in any report of the list "
            f"'{list_name}' (check the ids in matches.csv, or give --list)",
            patient_id=patient_id,
            nct_id=nct,
        )
    return Decision(
        list_name,
        patient_id,
        nct,
        status,
        (reason or "").strip() or None,
        (note or "").strip() or None,
        who,
        at,
        basis["patient_hash"] if basis else None,
        basis["criteria_hash"] if basis else None,
        basis["trial_status"] if basis else None,
    )


def set_status(
    store: Store,
    patient_id: str,
    nct_id: str,
    status: str,
    *,
    list_name: str | None = None,
    reason: str | None = None,
    note: str | None = None,
    who: str | None = None,
    source: str = "cli",
    require_known: bool = True,
) -> Decision:
    """Record a decision for one pair and append it to the history, in one transaction.

    ``list_name`` None: the store's only list. ``require_known``: the pair must appear in a
    finished report of the list (a typo in an id is an error, not a silent new row).
    Raises ReviewError (bad status, missing reason, unknown pair or list).
    """
    store_list = resolve_list(store, list_name)
    nct, status = _check(patient_id, nct_id, status, reason)
    db = store.connection
    with store.transaction():
        prev = get_decision(store, store_list, patient_id, nct)
        d = _decision(
            db,
            store_list,
            patient_id,
            nct,
            status,
            reason,
            note,
            current_user(who),
            now_iso(),
            require_known,
        )
        _write(db, d, prev.status if prev else None, source)
    return d


def list_decisions(
    store: Store,
    list_name: str | None = None,
    patient_id: str | None = None,
    status: str | None = None,
) -> list[Decision]:
    """Decisions, filtered by list, patient and status (any of them None = all)."""
    sql, args = "SELECT * FROM review_decisions WHERE 1=1", []
    for col, val in (("list_name", list_name), ("patient_id", patient_id)):
        if val is not None:
            sql += f" AND {col} = ?"
            args.append(val)
    if status is not None:
        sql += " AND status = ?"
        args.append(parse_status(status))
    sql += " ORDER BY list_name, patient_id, nct_id"
    return [_row(r) for r in store.connection.execute(sql, args)]


def history(store: Store, list_name: str, patient_id: str, nct_id: str | None = None) -> list[dict]:
    """The pair's (or the patient's) history, oldest first."""
    sql = "SELECT * FROM review_history WHERE list_name = ? AND patient_id = ?"
    args = [list_name, patient_id]
    if nct_id is not None:
        sql += " AND nct_id = ?"
        args.append(nct_id)
    return [dict(r) for r in store.connection.execute(sql + " ORDER BY id", args)]


# ----------------------------------------------------------------------------- CSV import


@dataclass
class ImportResult:
    """What ``import_csv`` did: decisions written and rows that already said the same."""

    list_name: str
    changed: list[Decision]
    unchanged: int
    rows: int


def _uncell(value: str | None) -> str:
    """Undo the report's CSV neutralisation (a leading apostrophe before = + - @)."""
    v = (value or "").strip()
    if len(v) > 1 and v[0] == "'" and v[1] in "=+-@\t\r":
        return v[1:]
    return v


def import_csv(
    store: Store, path: str | Path, list_name: str | None = None, who: str | None = None
) -> ImportResult:
    """Load coordinator-edited review columns of a report's ``matches.csv`` back.

    Reads ``review_status`` (or, in a sheet without it, a ``status`` column holding review
    statuses), ``review_reason`` and ``review_note``. Rows saying what is already recorded, and
    rows saying "new" (a sheet older than a decision must not undo it), are skipped. Every row is checked first; any bad row raises ReviewError naming its line and
    nothing is written. The changes are then written in one transaction, each to the history.
    """
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
            header = rows[0].keys() if rows else []
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ReviewError(f"{path}: cannot read the CSV ({exc})") from exc
    col = "review_status" if "review_status" in header else "status"
    if rows and not {"patient_id", "nct_id", col} <= set(header):
        raise ReviewError(
            f"{path}: needs the columns patient_id, nct_id and review_status (the report's "
            "matches.csv)"
        )
    name = resolve_list(store, list_name)
    who = current_user(who)
    at = now_iso()
    db = store.connection
    current = {(d.patient_id, d.nct_id): d for d in list_decisions(store, name)}
    changes, problems, unchanged = [], [], 0
    for line, r in enumerate(rows, start=2):
        raw = (r.get(col) or "").strip()
        if not raw:
            unchanged += 1
            continue
        if col == "status" and parse_status_or_none(raw) is None:
            unchanged += 1  # a ClinicalTrials.gov status (RECRUITING ...), not a review one
            continue
        pid, nct_raw = _uncell(r.get("patient_id")), _uncell(r.get("nct_id"))
        reason, note = _uncell(r.get("review_reason")), _uncell(r.get("review_note"))
        try:
            nct, status = _check(pid, nct_raw, raw, reason)
        except ReviewError as exc:
            problems.append(f"line {line}: {exc}")
            continue
        prev = current.get((pid, nct))
        if status == NEW:
            # a sheet written before a later decision says "new": never a reset (use
            # `review set P NCT new` for that)
            unchanged += 1
            continue
        if prev is not None and (prev.status, prev.reason or "", prev.note or "") == (
            status,
            reason,
            note,
        ):
            unchanged += 1
            continue
        changes.append((line, pid, nct, status, reason, note, prev))
    decisions = []
    for line, pid, nct, status, reason, note, prev in changes:
        try:
            decisions.append(
                (_decision(db, name, pid, nct, status, reason, note, who, at, True), prev)
            )
        except ReviewError as exc:
            problems.append(f"line {line}: {exc}")
    if problems:
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise ReviewError(f"{path}: nothing imported; " + "; ".join(problems[:5]) + more)
    with store.transaction():
        for d, prev in decisions:
            _write(db, d, prev.status if prev else None, "import")
    return ImportResult(name, [d for d, _ in decisions], unchanged, len(rows))


# ----------------------------------------------------------------------------- nightly run


def changed_since(
    d: Decision, patient_hash: str | None, criteria_hash: str | None, trial_status: str | None
) -> list[str]:
    """What changed since the decision was made: criteria, trial status, patient record."""
    out = []
    if d.criteria_hash and criteria_hash and d.criteria_hash != criteria_hash:
        out.append("trial eligibility criteria changed")
    if d.trial_status and trial_status and d.trial_status != trial_status:
        out.append(f"trial status changed: {d.trial_status} -> {trial_status}")
    if d.patient_hash and patient_hash and d.patient_hash != patient_hash:
        out.append("patient record changed")
    return out


def fields(
    d: Decision | None,
    patient_hash: str | None = None,
    criteria_hash: str | None = None,
    trial_status: str | None = None,
    new: bool = True,
) -> dict:
    """The ``review_*`` fields of one output row (see :data:`UNDECIDED`); ``new``: the pair
    was not shown when the coordinator last looked at the patient."""
    if d is None:
        return UNDECIDED if new else SEEN_UNDECIDED
    changed = changed_since(d, patient_hash, criteria_hash, trial_status)
    return {
        "review_status": d.status,
        "review_new": d.status == NEW and new,
        "review_reason": d.reason or "",
        "review_note": d.note or "",
        "review_who": d.who,
        "review_at": d.decided_at,
        "review_changed": "; ".join(changed),
        "review_folded": d.status == NOT_ELIGIBLE and not changed,
    }


class RunReviews:
    """The list's decisions and shown pairs, read once at the start of a run; ``get`` gives
    one pair's review fields as the run streams its patients (picklable, for workers)."""

    def __init__(
        self,
        store: Store,
        list_name: str,
        patient_hashes: Mapping[str, str],
        criteria_hashes: Mapping[str, str],
    ):
        self.decided = {
            (d.patient_id, d.nct_id): d
            for d in list_decisions(store, list_name)
            if d.patient_id in patient_hashes
        }
        _seen, self.shown = seen_pairs(store, list_name)
        self.patient_hashes = dict(patient_hashes)
        self.criteria_hashes = dict(criteria_hashes)

    def untouched(self, pid: str) -> bool:
        """True when no pair of the patient was decided or shown: :meth:`get` gives
        ``UNDECIDED`` for each of them."""
        touched = self.__dict__.get("_touched")
        if touched is None:
            touched = self._touched = {p for p, _ in self.decided} | {p for p, _ in self.shown}
        return pid not in touched

    def get(self, pid: str, nct: str, status: str | None) -> dict:
        """The pair's review fields (UNDECIDED when nothing was decided or shown)."""
        d = self.decided.get((pid, nct))
        if d is not None:
            return fields(
                d,
                self.patient_hashes.get(pid),
                self.criteria_hashes.get(nct),
                status,
                (pid, nct) not in self.shown,
            )
        return SEEN_UNDECIDED if (pid, nct) in self.shown else UNDECIDED


def for_run(
    store: Store,
    list_name: str,
    patient_hashes: Mapping[str, str],
    criteria_hashes: Mapping[str, str],
    pairs: Iterable[tuple[str, str, str | None]],
) -> dict[tuple[str, str], dict]:
    """``{(patient_id, nct_id): review fields}`` for the decided pairs among ``pairs``
    (``(patient_id, nct_id, trial_status)``) and the undecided ones already shown to the
    coordinator; the other pairs are absent (use UNDECIDED)."""
    rr = RunReviews(store, list_name, patient_hashes, criteria_hashes)
    if not rr.decided and not rr.shown:
        return {}
    out = {}
    for pid, nct, status in pairs:
        f = rr.get(pid, nct, status)
        if f is not UNDECIDED:
            out[(pid, nct)] = f
    return out


def seen_pairs(store: Store, list_name: str) -> tuple[set[str], set[tuple[str, str]]]:
    """(patients whose review page was opened, the pairs it showed them then)."""
    db = store.connection
    seen = {
        r[0]
        for r in db.execute("SELECT patient_id FROM review_seen WHERE list_name = ?", (list_name,))
    }
    if not seen:
        return seen, set()
    shown = {
        (r[0], r[1])
        for r in db.execute(
            "SELECT m.patient_id, m.nct_id FROM review_seen s JOIN report_matches m"
            " ON m.run_id = s.run_id AND m.patient_id = s.patient_id"
            " WHERE s.list_name = ? AND m.verdict IN ('eligible', 'needs_review')",
            (list_name,),
        )
    }
    return seen, shown


def mark_seen(store: Store, list_name: str, patient_id: str, who: str | None = None) -> None:
    """The coordinator opened the patient's review page (the list's latest pages)."""
    with store.transaction():
        store.connection.execute(
            "INSERT OR REPLACE INTO review_seen (list_name, patient_id, run_id, seen_at, who)"
            " SELECT list_name, patient_id, run_id, ?, ? FROM review_pages"
            " WHERE list_name = ? AND patient_id = ?",
            (now_iso(), current_user(who), list_name, patient_id),
        )


def awaiting(trials: Iterable[dict]) -> int:
    """Trials still to look at: new since the coordinator last looked (undecided), or
    changed since the decision."""
    return sum(1 for t in trials if t.get("review_new", True) or t.get("review_changed"))


PAGE_KEYS = ("nct_id", "title", "verdict", "score", "status", "url", "verify", "rank")


def page_entry(
    patient_id: str,
    diagnosis: str,
    patient_hash: str | None,
    groups: dict,
    criteria_hashes: Mapping[str, str] | None = None,
) -> dict:
    """One patient's compact page for the server: ``groups`` maps a group name ("top",
    "more", "closed", "other_country", "folded") to its trial dicts."""
    criteria_hashes = criteria_hashes or {}
    trials = []
    for group, ts in groups.items():
        for t in ts:
            e = {k: t.get(k) for k in PAGE_KEYS}
            e["group"] = group
            e["reasons"] = (t.get("reasons") or [])[:2]
            e["where"] = t.get("where")
            e["criteria_hash"] = criteria_hashes.get(t.get("nct_id"))
            trials.append(e)
    return {
        "patient_id": patient_id,
        "diagnosis": diagnosis,
        "patient_hash": patient_hash,
        "trials": trials,
    }


SUMMARY_KEYS = ("nct_id", "group", "status", "criteria_hash")


def _summary(page: dict) -> str:
    slim = {**page, "trials": [{k: t.get(k) for k in SUMMARY_KEYS} for t in page["trials"]]}
    return json.dumps(slim, ensure_ascii=False)


@dataclass(frozen=True)
class PackedPage:
    """A page as the run keeps it until the end: its JSON and summary compressed, so a list
    of thousands of patients holds kilobytes per patient, not the trial dicts."""

    patient_id: str
    data: bytes
    summary: bytes


def pack_page(page: dict) -> PackedPage:
    return PackedPage(
        page["patient_id"],
        zlib.compress(json.dumps(page, ensure_ascii=False).encode("utf-8"), 6),
        zlib.compress(_summary(page).encode("utf-8"), 6),
    )


def _json(value) -> str:
    """``json.dumps(value, ensure_ascii=False)`` of one value, texts and numbers from
    :mod:`matcher.jsontext` (made once per value)."""
    if value is None or type(value) is str:
        return jsontext.TEXTS[value]
    if type(value) is int or type(value) is float:
        return jsontext.number(value)
    return jsontext.dumps(value)


def _list(value) -> str:
    """``json.dumps(value, ensure_ascii=False)`` of a list of texts (or of anything)."""
    if type(value) is list or type(value) is tuple:
        return jsontext.texts(value, ", ")
    return _json(value)


@lru_cache(maxsize=65536, typed=True)
def _entry_head(nct_id, title) -> str:
    return '{"nct_id": ' + _json(nct_id) + ', "title": ' + _json(title) + ', "verdict": '


@lru_cache(maxsize=65536, typed=True)
def _entry_middle(status, url) -> str:
    return ', "status": ' + _json(status) + ', "url": ' + _json(url) + ', "verify": '


@lru_cache(maxsize=65536, typed=True)
def _summary_item(nct_id, group, status, criteria_hash) -> str:
    return jsontext.dumps(
        {"nct_id": nct_id, "group": group, "status": status, "criteria_hash": criteria_hash}
    )


def pack_rows(
    patient_id: str,
    diagnosis: str,
    patient_hash: str | None,
    groups: dict,
    criteria_hashes: Mapping[str, str] | None = None,
) -> PackedPage:
    """``pack_page(page_entry(...))`` of the same arguments, the page's JSON and summary
    made without an entry dict per trial: each entry from pieces encoded once per trial and
    per value (the tests compare the two)."""
    criteria_hashes = criteria_hashes or {}
    entries, items = [], []
    for group, ts in groups.items():
        g = _json(group)
        for t in ts:
            get = t.get
            nct, status = get("nct_id"), get("status")
            crit = criteria_hashes.get(nct)
            verify = get("verify")
            try:
                head = _entry_head(nct, get("title"))
                middle = _entry_middle(status, get("url"))
                item = _summary_item(nct, group, status, crit)
            except TypeError:  # a value that is not hashable: the entry through the encoder
                e = {k: get(k) for k in PAGE_KEYS}
                e["group"] = group
                e["reasons"] = (get("reasons") or [])[:2]
                e["where"] = get("where")
                e["criteria_hash"] = crit
                entries.append(jsontext.dumps(e))
                items.append(jsontext.dumps({k: e.get(k) for k in SUMMARY_KEYS}))
                continue
            entries.append(
                "".join(
                    (
                        head,
                        _json(get("verdict")),
                        ', "score": ',
                        _json(get("score")),
                        middle,
                        _list(verify),
                        ', "rank": ',
                        _json(get("rank")),
                        ', "group": ',
                        g,
                        ', "reasons": ',
                        _list((get("reasons") or [])[:2]),
                        ', "where": ',
                        _json(get("where")),
                        ', "criteria_hash": ',
                        _json(crit),
                        "}",
                    )
                )
            )
            items.append(item)
    head = (
        '{"patient_id": '
        + _json(patient_id)
        + ', "diagnosis": '
        + _json(diagnosis)
        + ', "patient_hash": '
        + _json(patient_hash)
        + ', "trials": ['
    )
    return PackedPage(
        patient_id,
        zlib.compress((head + ", ".join(entries) + "]}").encode("utf-8"), 6),
        zlib.compress((head + ", ".join(items) + "]}").encode("utf-8"), 6),
    )


def save_pages(
    store: Store, list_name: str, run_id: int, pages: Iterable[dict | PackedPage]
) -> None:
    """Replace the list's pages with this run's (one transaction)."""
    db = store.connection

    def rows():
        for i, p in enumerate(pages):
            if isinstance(p, PackedPage):
                data = zlib.decompress(p.data).decode("utf-8")
                summary = zlib.decompress(p.summary).decode("utf-8")
                yield (list_name, p.patient_id, run_id, i, data, summary)
            else:
                yield (
                    list_name,
                    p["patient_id"],
                    run_id,
                    i,
                    json.dumps(p, ensure_ascii=False),
                    _summary(p),
                )

    with store.transaction():
        db.execute("DELETE FROM review_pages WHERE list_name = ?", (list_name,))
        db.executemany("INSERT INTO review_pages VALUES (?,?,?,?,?,?)", rows())


def load_pages(store: Store, list_name: str, summary: bool = False) -> list[dict]:
    """The list's latest pages, in report order (``summary``: trials cut to
    :data:`SUMMARY_KEYS`, what the index needs)."""
    col = "summary" if summary else "data"
    return [
        json.loads(r[0])
        for r in store.connection.execute(
            f"SELECT {col} FROM review_pages WHERE list_name = ? ORDER BY position", (list_name,)
        )
    ]


def load_page(store: Store, list_name: str, patient_id: str) -> dict | None:
    r = store.connection.execute(
        "SELECT data FROM review_pages WHERE list_name = ? AND patient_id = ?",
        (list_name, patient_id),
    ).fetchone()
    return json.loads(r[0]) if r else None


__all__ = [
    "NEW",
    "NOT_ELIGIBLE",
    "STATUSES",
    "UNDECIDED",
    "Decision",
    "ImportResult",
    "SEEN_UNDECIDED",
    "awaiting",
    "changed_since",
    "current_user",
    "fields",
    "for_run",
    "history",
    "import_csv",
    "list_decisions",
    "list_names",
    "load_page",
    "load_pages",
    "mark_seen",
    "seen_pairs",
    "parse_status",
    "register",
    "resolve_list",
    "save_pages",
    "set_status",
]
