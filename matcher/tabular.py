"""Spreadsheets as coordinators have them: format and delimiter sniffing, header mapping.

The CSV reader in ``patient.py`` asks this module three things: what format a file holds
(from its content, then its name), which delimiter a delimited file uses (``,`` ``;`` or
tab), and which patient field each header fills. The header spellings are data, in
``criteria/vocab/columns.yaml``; a header that maps to nothing is dropped with a file-level
warning that offers the closest field ("did you mean"). Nothing here reads a cell's value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from matcher.errors import InputError, KnowledgeError

DELIMITERS = (",", ";", "\t")
_DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab"}
ALLOWED_TOP_KEYS = {"version", "columns", "id_fallback", "private"}


def fold_header(text: str) -> str:
    """A header in comparable form: lower case, unit in brackets dropped, punctuation folded.

    ``"Age (years)"`` -> ``"age"``; ``"ANC [x10^9/L]"`` -> ``"anc"``; ``"Birth-Date"`` ->
    ``"birth date"``; ``"Patient #"`` -> ``"patient"``.
    """
    t = text.strip().lstrip("\ufeff").lower()
    t = re.sub(r"\([^)]*\)|\[[^\]]*\]|\{[^}]*\}", " ", t)
    t = re.sub(r"(?:#|\bno\.)\s*$", " ", t)
    t = re.sub(r"[^\w]+|_", " ", t)
    return re.sub(r"\s+", " ", t).strip()


@dataclass(frozen=True)
class ColumnVocab:
    """Folded header spelling -> field, plus the id fallbacks and the private headers."""

    spellings: dict[str, str]
    id_fallback: frozenset[str]
    private: frozenset[str]
    fields: tuple[str, ...]


@lru_cache(maxsize=1)
def column_vocab() -> ColumnVocab:
    """Load and validate ``criteria/vocab/columns.yaml`` (each spelling maps to one field)."""
    import yaml

    from matcher.patient import FLAT_LOCATION_KEYS, LAB_KEYS, RECORD_KEYS
    from matcher.resources import vocab_dir

    path = vocab_dir() / "columns.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeError(f"cannot read column vocabulary: {exc}", path=str(path)) from exc
    if not isinstance(data, dict) or set(data) - ALLOWED_TOP_KEYS or "columns" not in data:
        raise KnowledgeError(
            f"expected top-level keys: {', '.join(sorted(ALLOWED_TOP_KEYS))}", path=str(path)
        )
    allowed = (*RECORD_KEYS, *FLAT_LOCATION_KEYS, *LAB_KEYS)
    spellings: dict[str, str] = {}
    for fld, names in (data.get("columns") or {}).items():
        if fld not in allowed:
            raise KnowledgeError(
                f"unknown field (allowed: {', '.join(allowed)})", path=str(path), key=fld
            )
        for name in [fld, *(names or [])]:
            key = fold_header(str(name))
            if spellings.get(key, fld) != fld:
                raise KnowledgeError(
                    f"header {name!r} maps to both {spellings[key]!r} and {fld!r}",
                    path=str(path),
                    key=fld,
                )
            spellings[key] = fld
    for fld in allowed:  # a field's own name is always accepted
        spellings.setdefault(fold_header(fld), fld)
    extra = {
        k: frozenset(fold_header(str(n)) for n in (data.get(k) or []))
        for k in ("id_fallback", "private")
    }
    for k, names in extra.items():
        clash = sorted(names & set(spellings))
        if clash:
            raise KnowledgeError(
                f"{', '.join(clash)} also listed as a field spelling", path=str(path), key=k
            )
    return ColumnVocab(spellings, extra["id_fallback"], extra["private"], tuple(allowed))


@dataclass
class HeaderMap:
    """What each column of a header row fills.

    ``fields``: one entry per column, the patient field or None (column not read).
    ``warnings``: file-level lines for the summary (unmapped, private, id fallback).
    ``dropped``: the headers not read, as written.
    """

    fields: list[str | None]
    warnings: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)


def suggest_field(header: str, vocab: ColumnVocab | None = None) -> str | None:
    """The field a mistyped header most likely means, or None when nothing is close."""
    from rapidfuzz import fuzz, process

    vocab = vocab or column_vocab()
    key = fold_header(header)
    if not key:
        return None
    best = process.extractOne(key, list(vocab.spellings), scorer=fuzz.WRatio)
    if best and best[1] >= 80:
        return vocab.spellings[best[0]]
    return None


def map_header(header: list[str], path: str | None = None) -> HeaderMap:
    """Map a CSV header row to patient fields.

    Raises ``InputError`` when no column gives the patient id, or when two columns fill the
    same field (which one holds the truth is for the user to say).
    """
    vocab = column_vocab()
    keys = [fold_header(h) for h in header]
    fields: list[str | None] = [vocab.spellings.get(k) for k in keys]
    hm = HeaderMap(fields)
    if "id" not in fields:
        fallback = [i for i, k in enumerate(keys) if k in vocab.id_fallback]
        if fallback:
            i = fallback[0]
            fields[i] = "id"
            hm.warnings.append(
                f"column {header[i].strip()!r} used as the patient id (no id column); "
                "reports show it"
            )
    if "id" not in fields:
        cols = ", ".join(h.strip() for h in header)
        raise InputError(
            f"CSV header has no 'id' column (columns: {cols}); name the patient id column "
            "'id' (or 'Patient ID', 'MRN')",
            path=path,
            location="line 1",
        )
    seen: dict[str, int] = {}
    dupes: list[str] = []
    for i, f in enumerate(fields):
        if f is None:
            continue
        if f in seen:
            dupes.append(f"{header[seen[f]].strip()!r} and {header[i].strip()!r} both fill {f}")
        else:
            seen[f] = i
    if dupes:
        raise InputError(
            f"duplicate column(s): {'; '.join(dupes)}; delete or rename one",
            path=path,
            location="line 1",
        )
    for i, (h, k, f) in enumerate(zip(header, keys, fields, strict=True)):
        if f is not None or not h.strip():
            continue
        name = h.strip()
        hm.dropped.append(name)
        if k in vocab.private or k in vocab.id_fallback:
            hm.warnings.append(f"column {name!r} not read: identifying data is never read")
            continue
        guess = suggest_field(name, vocab)
        hint = f"; did you mean {guess!r}?" if guess else ""
        hm.warnings.append(f"column {name!r} (column {i + 1}) not read: unknown header{hint}")
    return hm


def sniff_delimiter(text: str, path: Path | str | None = None) -> str:
    """The delimiter of a delimited text: the one of ``,`` ``;`` tab that splits the header
    row into the most cells (outside quotes). A ``.tsv`` name prefers tab when present."""
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    unquoted = re.sub(r'"[^"]*"', "", first)
    counts = {d: unquoted.count(d) for d in DELIMITERS}
    if str(path or "").lower().endswith(".tsv") and counts["\t"]:
        return "\t"
    best = max(DELIMITERS, key=lambda d: counts[d])
    return best if counts[best] else ","


def delimiter_name(delimiter: str) -> str:
    """``";"`` -> ``"semicolon"`` (for messages)."""
    return _DELIMITER_NAMES.get(delimiter, repr(delimiter))


def sniff_format(path: Path, text: str) -> str:
    """``"json"``, ``"fhir"`` or ``"csv"``: from the content first, the name second.

    JSON content is JSON whatever the extension (a ``.txt`` export); a ``.json`` name with
    delimited content is read as CSV. Raises ``InputError`` when neither tells.
    """
    name = path.name.lower()
    head = text.lstrip()[:1]
    if head in ("{", "["):
        return "fhir" if name.endswith(".fhir.json") else "json"
    first = next((ln for ln in text.splitlines() if ln.strip()), "")
    if any(d in first for d in DELIMITERS) or name.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    if name.endswith(".json"):
        return "json"  # not JSON-looking either: the JSON reader says where it breaks
    raise InputError(
        "cannot tell the format from the name or content; pass --format json|csv|fhir",
        path=str(path),
    )


# List cells: "lung; liver", "lung, liver", "lung/liver", "lung and liver", "lung & liver".
_LIST_SPLIT = re.compile(r"\s*(?:;|,|/|&|\+|\band\b)\s*", re.IGNORECASE)


def split_list(text: str) -> list[str]:
    """Split a list cell on ``;`` ``,`` ``/`` ``&`` ``+`` and the word ``and``; blanks dropped."""
    return [part.strip() for part in _LIST_SPLIT.split(str(text)) if part.strip()]
