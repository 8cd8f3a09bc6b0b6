"""Relevance of trials to diagnoses kept in the store, so a nightly run computes it only for
the trials (or the code, vocabulary or knowledge pack) that changed.

``rank.relevance(diagnosis, parsed_trial, ctx)`` depends only on the trial's record (through
its parse), the diagnosis id, the vocabulary and the code that derives it. One cached entry
is therefore valid for one ``(diagnosis, nct_id)`` pair, one record version (the store's
content hash the parse came from) and one :func:`relevance_key` (the parser key, the source
of ``matcher.rank`` and of every ``matcher`` module it imports, every file of the knowledge
pack folder ``criteria/`` and of the vocabulary folder in use, and the Python and Unicode
versions). Anything else is a miss: relevance is computed as without a cache and the row is
replaced. A row that does not decode back to a :class:`rank.Relevance` is a miss as well.

What is stored: the relevance a trial's public registry record gives (tier, reason, verify
items, and the condition, keyword or criteria line it came from) and the diagnosis id, a
canonical vocabulary term. No patient id, field or count is ever stored, nor which patient
or run asked for a diagnosis.

:func:`load_relevance` fills a :class:`engine.MatchState` for a run's distinct diagnoses: one
query reads the cached rows, the misses are computed, and the new rows are written in one
transaction. A ``MatchState`` without it (tests, one patient) computes relevance lazily, as
before; both give equal results (tests compare them).
"""

from __future__ import annotations

import hashlib
import json
import re
import sys
import unicodedata
from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path

from matcher import rank
from matcher.rank import Evidence, Relevance
from matcher.resources import criteria_dir
from matcher.store import Store, register_migration

RELEVANCE_MIGRATION = (
    103,
    "relevance_cache",
    """
    CREATE TABLE relevance_cache (
        diagnosis     TEXT NOT NULL,    -- vocabulary diagnosis id (a canonical term)
        nct_id        TEXT NOT NULL,
        content_hash  TEXT NOT NULL,    -- the trials.content_hash the parse came from
        relevance_key TEXT NOT NULL,    -- relcache.relevance_key(): code, pack, vocabulary
        relevance     TEXT,             -- JSON of rank.Relevance; NULL: unrelated
        PRIMARY KEY (diagnosis, nct_id)
    ) WITHOUT ROWID;
    """,
)
register_migration(*RELEVANCE_MIGRATION)

_PKG = Path(__file__).resolve().parent
_FORMAT = "relevance-cache 2"  # bump when the row format changes


def _module_file(name: str) -> Path | None:
    """The source file of module ``name`` of this package (None: not one of its modules)."""
    parts = name.split(".")
    if parts[0] != _PKG.name:
        return None
    p = _PKG.joinpath(*parts[1:])
    if (p / "__init__.py").is_file():
        return p / "__init__.py"
    if p.with_suffix(".py").is_file():
        return p.with_suffix(".py")
    return None  # a name imported from a module ("from matcher.geo import zip_to_point")


# import statements as ruff formats them: "import a.b as c, d", "from a.b import c as d, e",
# "from a import (\n    b,\n    c,\n)"; at any depth (function-level imports included).
# A string that looks like one only adds a file to the key (never leaves one out).
_IMPORT_RE = re.compile(
    r"^[ \t]*(?:from[ \t]+(?P<base>\.*[\w.]*)[ \t]+import[ \t]+(?P<names>\([^)]*\)|[^\n]*)"
    r"|import[ \t]+(?P<mods>[^\n]*))",
    re.M,
)


def _names(text: str) -> list[str]:
    """ "a as b, c  # note" -> ["a", "c"] (also over lines, inside parentheses)."""
    out = []
    for line in text.strip("()").splitlines():
        for item in line.split("#", 1)[0].split(","):
            word = item.split()
            if word:
                out.append(word[0])
    return out


def _imported_names(path: Path, module: str) -> list[str]:
    """Every absolute module name an ``import`` in ``path`` may refer to. A text scan, not a
    parse: it runs every report, and parsing every module would cost more than the cache
    saves (the tests check it against a parse of the same files)."""
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    names: list[str] = []
    for m in _IMPORT_RE.finditer(path.read_text(encoding="utf-8")):
        if m["mods"] is not None:
            names.extend(_names(m["mods"]))
            continue
        base = m["base"]
        level = len(base) - len(base.lstrip("."))
        base = base[level:]
        if level:
            anchor = package
            for _ in range(level - 1):
                anchor = anchor.rpartition(".")[0]
            base = f"{anchor}.{base}" if base else anchor
        names.append(base)
        names.extend(f"{base}.{n}" for n in _names(m["names"]))
    return names


def relevance_modules() -> list[Path]:
    """Source files of ``matcher.rank`` and of every package module it imports, directly or
    not, in a fixed order: whatever code ``rank.relevance`` can reach."""
    seen: dict[Path, None] = {}
    todo = ["matcher.rank"]
    while todo:
        name = todo.pop()
        path = _module_file(name)
        if path is None or path in seen:
            continue
        seen[path] = None
        todo.extend(_imported_names(path, name))
    return sorted(seen, key=lambda p: p.relative_to(_PKG).as_posix())


def _hash_file(h, name: str, path: Path) -> None:
    data = path.read_bytes()
    h.update(f"{name}\0{len(data)}\0".encode())  # name and length: no two layouts alike
    h.update(data)


def _hash_folder(h, folder: Path) -> None:
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        _hash_file(h, path.relative_to(folder).as_posix(), path)


@lru_cache(maxsize=8)
def _key(criteria: str, vocab_folder: str) -> str:
    from matcher.parsecache import parser_key

    h = hashlib.sha256()
    h.update(_FORMAT.encode())
    h.update(parser_key().encode())
    h.update(f"{sys.version_info[0]}.{sys.version_info[1]} {unicodedata.unidata_version}".encode())
    for path in [*relevance_modules(), Path(__file__).resolve()]:
        _hash_file(h, path.relative_to(_PKG).as_posix(), path)
    h.update(b"criteria\0")
    _hash_folder(h, Path(criteria))
    vocab = Path(vocab_folder)
    if not vocab.resolve().is_relative_to(Path(criteria).resolve()):  # else hashed above
        h.update(b"vocab\0")
        _hash_folder(h, vocab)
    return h.hexdigest()[:16]


def relevance_key(vocab=None) -> str:
    """Hash of everything besides the trial and the diagnosis that decides ``rank.relevance``:
    the parser key (the parse it reads), the relevance code (``rank`` and what it imports,
    this module), every file under ``criteria/`` (vocabularies, clause words, knowledge pack),
    the folder ``vocab`` was loaded from (default: the bundled one), the Python version and
    its Unicode database (case folding and ``\\w`` in the patterns). Computed once per
    process and folder (a run does not see files change under it)."""
    folder = getattr(vocab, "directory", None)
    if folder is None:
        from matcher.resources import vocab_dir

        folder = vocab_dir()
    return _key(str(criteria_dir()), str(folder))


# ----------------------------------------------------------------------------- rows


def relevance_to_json(rel: Relevance) -> str:
    """The row text of a :class:`rank.Relevance` (exact: :func:`relevance_from_json` gives an
    equal object; strings are escaped to ASCII, so any ``str`` survives)."""
    ev = rel.evidence
    return json.dumps(
        [
            rel.tier,
            rel.reason,
            list(rel.verify),
            None if ev is None else [ev.source, ev.text, ev.diagnosis, ev.narrowed, ev.marker],
        ],
        separators=(",", ":"),
    )


def _str(value) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {type(value).__name__}")
    return value


def relevance_from_json(text: str) -> Relevance:
    """The :class:`rank.Relevance` of a row (see :func:`relevance_to_json`). Raises
    ValueError or TypeError for a row that is not one."""
    row = json.loads(text)
    if not isinstance(row, list) or len(row) != 4:
        raise ValueError("not a relevance row")
    tier, reason, verify, ev = row
    if not isinstance(verify, list) or not (ev is None or isinstance(ev, list)):
        raise TypeError("not a relevance row")
    if tier is not None and tier not in rank.TIERS:
        raise ValueError(f"unknown tier {tier!r}")
    evidence = None
    if ev is not None:
        source, ev_text, diagnosis, narrowed, marker = ev
        if not isinstance(narrowed, bool):
            raise TypeError("narrowed is not a boolean")
        evidence = Evidence(
            _str(source), _str(ev_text), _str(diagnosis), narrowed,
            None if marker is None else _str(marker),
        )  # fmt: skip
    return Relevance(tier, _str(reason), tuple(_str(v) for v in verify), evidence)


def _exact(rel: Relevance, text: str) -> bool:
    """True when ``text`` gives back ``rel`` (a field this format does not carry, added to
    ``Relevance`` later, would not: such a result is then not cached)."""
    try:
        return relevance_from_json(text) == rel
    except (ValueError, TypeError):
        return False


# ----------------------------------------------------------------------------- a run


def load_relevance(
    store: Store, state, content_hashes: Mapping[str, str], diagnoses: Iterable
) -> dict:
    """Fill ``state.relevant_by_diag`` (an :class:`engine.MatchState`) for ``diagnoses``.

    ``content_hashes`` maps each NCT id to the store content hash its parse came from (see
    ``parsecache.parse_store``); a trial without one is computed and not cached. Cached rows
    of every diagnosis are read in one query, misses computed with ``rank.relevance`` (the
    state's context, so scopes derived here are reused when matching), and new rows written
    in one transaction. A diagnosis the state already holds, a missing one (None) and one
    the vocabulary does not know are left to ``MatchState.relevant``. Returns
    ``{"cached": n, "computed": n}`` (trial-diagnosis pairs).
    """
    register_migration(*RELEVANCE_MIGRATION)  # idempotent, as parsecache does
    store.migrate()
    vocab = state.ctx.vocab
    diags = [
        d
        for d in dict.fromkeys(diagnoses)
        if d and d in vocab.diagnoses and d not in state.relevant_by_diag
    ]
    counts = {"cached": 0, "computed": 0}
    if not diags:
        return counts
    key = relevance_key(vocab)
    db = store.connection
    cached: dict[str, dict[str, tuple[str, str | None]]] = {d: {} for d in diags}
    marks = ",".join("?" * len(diags))
    for diag, nct, digest, text in db.execute(
        "SELECT diagnosis, nct_id, content_hash, relevance FROM relevance_cache"
        f" WHERE relevance_key = ? AND diagnosis IN ({marks})",
        (key, *diags),
    ):
        cached[diag][nct] = (digest, text)
    trials = [
        (j, pt, pt.trial.nct_id, content_hashes.get(pt.trial.nct_id))
        for j, pt in enumerate(state.parsed_trials)
    ]
    fresh = []
    for diag in diags:
        rows = cached[diag]
        relevant = []
        n_hits = 0
        for j, pt, nct, digest in trials:
            hit = rows.get(nct)
            rel = None
            if hit is not None and digest and hit[0] == digest:
                if hit[1] is None:
                    n_hits += 1
                    continue  # unrelated
                try:
                    rel = relevance_from_json(hit[1])
                    n_hits += 1
                except (ValueError, TypeError):
                    rel = None  # not a row this code wrote: computed again, replaced
            if rel is None:
                rel = rank.relevance(diag, pt, state.ctx)
                if digest:
                    text = None if rel.tier is None else relevance_to_json(rel)
                    if text is None or _exact(rel, text):
                        fresh.append((diag, nct, digest, key, text))
            if rel.tier is not None:
                relevant.append((j, rel))
        state.relevant_by_diag[diag] = relevant
        counts["cached"] += n_hits
        counts["computed"] += len(trials) - n_hits
    if fresh:
        with store.transaction():
            db.executemany("INSERT OR REPLACE INTO relevance_cache VALUES (?,?,?,?,?)", fresh)
    return counts
