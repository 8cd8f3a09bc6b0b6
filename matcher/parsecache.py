"""Parsed criteria kept in the store, so a nightly run parses only the trials that changed.

A cached entry is valid for one record version (the store's content hash) parsed by one
parser (a hash of the parser's source and the vocabulary files). Anything else is parsed
again and the cache row replaced. The cache holds only what the parser derived from public
registry text: no patient data.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from functools import lru_cache
from pathlib import Path

from matcher.resources import vocab_dir
from matcher.store import Store, register_migration

CACHE_MIGRATION = (
    102,
    "parsed_criteria_cache",
    """
    CREATE TABLE parsed_criteria (
        nct_id       TEXT PRIMARY KEY,
        content_hash TEXT NOT NULL,      -- the trials.content_hash it was parsed from
        parser_key   TEXT NOT NULL,      -- parser source + vocabulary hash
        n_lines      INTEGER NOT NULL,
        n_typed      INTEGER NOT NULL,
        criteria     TEXT NOT NULL       -- JSON list of Criterion fields
    );
    """,
)
register_migration(*CACHE_MIGRATION)


@lru_cache(maxsize=1)
def parser_key() -> str:
    """Hash of everything that decides a parse: the parser modules, the vocabulary's text
    finders and the vocabularies."""
    import matcher.criteria_text as ct
    import matcher.eligibility as el
    import matcher.trial as tr
    import matcher.vocab as vc  # its text finders decide which entities a line names

    h = hashlib.sha256()
    # the eligibility package: every module of it, in a fixed order
    for path in sorted(Path(el.__file__).parent.glob("*.py")):
        h.update(path.read_bytes())
    for mod in (ct, tr, vc):
        h.update(Path(mod.__file__).read_bytes())
    clauses = vocab_dir().parent / "clauses.yaml"  # the clause layer's words and cues
    if clauses.exists():
        h.update(clauses.read_bytes())
    for path in sorted(vocab_dir().glob("*.yaml")):
        h.update(path.name.encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _to_json(parsed) -> str:
    return json.dumps([dataclasses.asdict(c) for c in parsed.criteria], ensure_ascii=False)


def _from_json(text: str):
    from matcher.eligibility import Criterion

    return [Criterion(**d) for d in json.loads(text)]


def parse_store(
    store: Store, statuses=None, on_record=None, digests: dict | None = None
) -> tuple[list, dict]:
    """Parsed trials for every stored record with one of ``statuses`` (None: all).

    Returns ``(parsed_trials, counts)`` with counts ``{"cached": n, "parsed": n}``. New
    parses are written back in one transaction. ``on_record(record)``, if given, sees each
    record as it streams by (so callers need not load the store twice). ``digests``, if
    given, is filled with each NCT id's content hash: the record version its parse is of
    (what the relevance cache, :mod:`matcher.relcache`, is keyed by).
    """
    from matcher.eligibility import ParsedTrial, parse_trial
    from matcher.trial import Trial

    # idempotent: the table exists even if this store was opened before this module loaded
    register_migration(*CACHE_MIGRATION)
    store.migrate()
    key = parser_key()
    db = store.connection
    cached = {
        row[0]: row
        for row in db.execute(
            "SELECT nct_id, content_hash, n_lines, n_typed, criteria FROM parsed_criteria WHERE parser_key = ?",
            (key,),
        )
    }
    out, fresh = [], []
    n_cached = 0
    for nct, digest, record in store.iter_rows(statuses):
        if on_record is not None:
            on_record(record)
        if digests is not None:
            digests[nct] = digest
        hit = cached.get(nct)
        if hit is not None and hit[1] == digest:
            out.append(
                ParsedTrial(
                    Trial.from_record(record),
                    _from_json(hit[4]),
                    n_lines=hit[2],
                    n_typed_lines=hit[3],
                )
            )
            n_cached += 1
            continue
        parsed = parse_trial(record)
        out.append(parsed)
        fresh.append((nct, digest, key, parsed.n_lines, parsed.n_typed_lines, _to_json(parsed)))
    if fresh:
        with store.transaction():
            db.executemany("INSERT OR REPLACE INTO parsed_criteria VALUES (?,?,?,?,?,?)", fresh)
    return out, {"cached": n_cached, "parsed": len(fresh)}
