"""Primary tumour site: parsing and evaluation.

"Soft tissue sarcoma of the extremities (including limb girdle) or superficial trunk",
"retroperitoneal sarcoma", "melanoma on hand, foot, head-neck or ano-genital regions": where
the tumour arose, as a trial requires or excludes it (``{sites: [...]}``, ids of
``criteria/vocab/primary_sites.yaml``). The patient's site is read from the diagnosis as
written ("leiomyosarcoma of the thigh", "retroperitoneal dedifferentiated liposarcoma"); a
site after "metastases to" is a metastasis, not the primary. A diagnosis that names no site
is UNKNOWN; one that names a broader site than the trial (a "limb" against "lower
extremity") is UNKNOWN too.

In criteria text a site counts only attached to a tumour word: after it ("sarcoma of the
thigh", "tumours located in the retroperitoneum") or, for the spellings that are adjectives
only ("retroperitoneal", "extremity", "truncal", "intra-abdominal"), before it. "Back pain",
"Arm A", "hand-foot syndrome" and "radiotherapy to the extremity" name no primary site.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from matcher.eligibility.model import MET, NOT_MET, UNKNOWN, Criterion
from matcher.eligibility.text import _I, _Ctx
from matcher.errors import KnowledgeError

_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")
_KEYS = {"id", "name", "synonyms", "parent"}


@dataclass(frozen=True)
class _Sites:
    names: dict[str, str]  # id -> display name
    parents: dict[str, str | None]
    spelling: dict[str, str]  # lower-case spelling -> id
    pattern: re.Pattern  # any spelling, longest first, at word boundaries


@lru_cache(maxsize=1)
def primary_sites() -> _Sites:
    """The primary-site vocabulary, validated (``criteria/vocab/primary_sites.yaml``)."""
    import yaml

    from matcher.resources import vocab_dir

    path = vocab_dir() / "primary_sites.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeError(f"cannot read primary sites: {exc}", path=path.name) from exc
    if not isinstance(data, dict) or set(data) - {"version", "sites"}:
        raise KnowledgeError("expected top-level keys: version, sites", path=path.name)
    return _build(data.get("sites") or [], path.name)


def _build(items: list, where: str) -> _Sites:
    names: dict[str, str] = {}
    parents: dict[str, str | None] = {}
    spelling: dict[str, str] = {}
    for i, it in enumerate(items):
        label = it.get("id", f"#{i + 1}") if isinstance(it, dict) else f"#{i + 1}"
        if not isinstance(it, dict) or set(it) - _KEYS or not it.get("id") or not it.get("name"):
            raise KnowledgeError(
                f"entry {label!r}: a site has keys {', '.join(sorted(_KEYS))} (id, name required)",
                path=where,
            )
        ident = it["id"]
        if not _ID_RE.match(ident) or ident in names:
            raise KnowledgeError(f"entry {ident!r}: id must be snake_case and unique", path=where)
        names[ident] = it["name"]
        parents[ident] = it.get("parent")
        for s in [it["name"], *(it.get("synonyms") or [])]:
            key = str(s).lower()
            if spelling.get(key, ident) != ident:
                raise KnowledgeError(
                    f"spelling {s!r} names both {spelling[key]!r} and {ident!r}", path=where
                )
            spelling[key] = ident
    for ident, parent in parents.items():
        if parent is not None and parent not in names:
            raise KnowledgeError(f"entry {ident!r}: parent {parent!r} is not defined", path=where)
    alts = "|".join(re.escape(s) for s in sorted(spelling, key=len, reverse=True))
    pattern = re.compile(rf"(?<![\w-])(?:{alts})(?![\w-])", _I)
    return _Sites(names, parents, spelling, pattern)


def _lineage(sites: _Sites, ident: str) -> list[str]:
    out = [ident]
    while sites.parents.get(out[-1]):
        out.append(sites.parents[out[-1]])  # type: ignore[arg-type]
    return out


_TUMOUR = (
    r"(?:soft[- ]tissue\s+)?(?:sarcomas?|stss?|tumou?rs?|cancers?|carcinomas?|melanomas?|"
    r"neoplasms?|malignanc\w*|gists?|[a-z]+omas?|primary|primaries)"
)
_LINK = (
    r"(?:of|in|on|at|involving|arising\s+(?:in|from|on)|located\s+(?:in|on|at)|"
    r"originating\s+(?:in|from)|localized\s+(?:to|in))"
)
# spellings that are adjectives of a site, read before a tumour word ("retroperitoneal
# sarcoma", "extremity STS"); the others ("hand", "back", "arm") only after one
_ADJECTIVES = frozenset(
    {
        "extremity", "extremities", "limb", "truncal", "trunk", "retroperitoneal",
        "intra-abdominal", "intraabdominal", "mesenteric", "head and neck", "head-neck",
        "upper extremity", "lower extremity", "upper limb", "lower limb", "anogenital",
        "ano-genital", "chest wall", "abdominal wall", "paraspinal", "scalp",
    }
)  # fmt: skip
# a site of a metastasis or a treatment, not the primary
_NOT_PRIMARY_BEFORE_RE = re.compile(
    r"(?:metasta\w*|spread|radiotherapy|radiation|irradiat\w*|surgery|amputation|resection|"
    r"pain|edema|oedema|swelling|injection|infusion|access|catheter)\s+(?:\w+\s+){0,2}$",
    _I,
)


def _list_after(s: str, start: int, sites: _Sites) -> tuple[list[str], int]:
    """Site ids of a list of sites starting at ``start`` ("the extremities (including limb
    girdle) or superficial trunk"), and where the list ends."""
    found: list[str] = []
    pos = start
    while True:
        m = re.compile(r"\s*(?:the\s+|a\s+|his\s+|her\s+)?").match(s, pos)
        pos = m.end() if m else pos
        hit = sites.pattern.match(s, pos)
        if hit is None:
            # "of the distal femur", "of the left thigh": a side or a part before the site
            side = _SIDE_RE.match(s, pos)
            hit = sites.pattern.match(s, side.end()) if side else None
        if hit is None:
            break
        found.append(sites.spelling[hit.group(0).lower()])
        pos = hit.end()
        aside = re.compile(r"\s*\(([^()]{0,60})\)").match(s, pos)
        if aside:
            found += [
                sites.spelling[x.group(0).lower()] for x in sites.pattern.finditer(aside.group(1))
            ]
            pos = aside.end()
        sep = re.compile(
            r"\s*(?:,\s*(?:or\s+|and\s+|and/or\s+)?|or\s+|and/or\s+|and\s+|/\s*)"
        ).match(s, pos)
        if sep is None:
            break
        nxt = re.compile(r"\s*(?:the\s+)?").match(s, sep.end())
        if not sites.pattern.match(s, nxt.end() if nxt else sep.end()):
            break
        pos = sep.end()
    return list(dict.fromkeys(found)), pos


_SIDE_RE = re.compile(
    r"(?:(?:left|right|bilateral|distal|proximal|mid|middle|anterior|posterior|medial|lateral|"
    r"inner|outer|deep|dorsal|plantar|volar)\s+){1,2}",
    _I,
)
_AFTER_RE = re.compile(rf"\b{_TUMOUR}(?:\s*\([^()]{{0,40}}\))?\s+{_LINK}\s+", _I)


# everyday words that name a site only after a tumour word ("sarcoma of the back")
_AMBIGUOUS = frozenset(
    {"back", "hand", "hands", "face", "arm", "arms", "leg", "legs", "neck", "hip", "sole", "palm",
     "heel", "shoulder", "thumb", "finger", "fingers", "feet", "foot", "toe", "toes", "knee", "knees",
     "trunk", "flank", "torso", "groin"}
)  # fmt: skip


def site_mentions(text: str, loose: bool = False) -> list[tuple[int, int, list[str]]]:
    """(start, end, site ids) of every primary-site phrase of a criteria line; ``loose`` (a
    diagnosis as written) also reads a site word before a tumour word ("thigh undifferentiated
    pleomorphic sarcoma") unless it is an everyday word ("back", "hand")."""
    sites = primary_sites()
    out: list[tuple[int, int, list[str]]] = []
    for m in _AFTER_RE.finditer(text):
        found, end = _list_after(text, m.end(), sites)
        if found:
            out.append((m.end(), end, found))
    for m in sites.pattern.finditer(text):
        word = m.group(0).lower()
        adjective = word not in _AMBIGUOUS if loose else word in _ADJECTIVES
        if not adjective or any(a <= m.start() < b for a, b, _ in out):
            continue
        if not re.match(rf"\s+(?:[\w/-]+\s+){{0,3}}?{_TUMOUR}\b", text[m.end() :], _I):
            continue
        if _NOT_PRIMARY_BEFORE_RE.search(text[max(0, m.start() - 40) : m.start()]):
            continue
        out.append((m.start(), m.end(), [sites.spelling[word]]))
    return sorted(out)


def patient_sites(diagnosis_text: str | None) -> list[str]:
    """The primary sites a diagnosis as written names ("leiomyosarcoma of the thigh" ->
    lower_extremity); a site after "metastases to" is left out."""
    if not diagnosis_text:
        return []
    out: list[str] = []
    for a, _b, found in site_mentions(diagnosis_text, loose=True):
        if _NOT_PRIMARY_BEFORE_RE.search(diagnosis_text[max(0, a - 40) : a]):
            continue
        out += [x for x in found if x not in out]
    return out


def _names_its_own_diagnosis(c: _Ctx, a: int, b: int) -> bool:
    """The site word and the tumour word after it name a diagnosis of their own ("head and
    neck cancer", "anogenital melanoma" in a list of cancers): the diagnosis, not a site rule."""
    if c.vocab is None:
        return False
    word = c.plain[a:b].lower().split()[0].split("-")[0]
    tail = re.match(rf"\s+(?:[\w/-]+\s+){{0,3}}?{_TUMOUR}\b", c.plain[b:], _I)
    if not tail:
        return False
    phrase = c.plain[a : b + tail.end()]
    for did, _text in c.vocab.find_diagnoses(phrase):
        d = c.vocab.diagnosis(did)
        if word in did or word in d.name.lower():
            return True
    return False


def _site(c: _Ctx) -> list[tuple[str, str, dict]]:
    if not c.onco:
        return []
    mentions = [
        (a, b, found)
        for a, b, found in site_mentions(c.plain)
        if not (c.plain[a:b].lower() in _ADJECTIVES and _names_its_own_diagnosis(c, a, b))
    ]
    if not mentions:
        return []
    ids = list(dict.fromkeys(x for _a, _b, found in mentions for x in found))
    return [("primary_site", c.polarity_plain(c.plain, mentions[0][0]), {"sites": ids})]


def site_spans(low: str) -> list[tuple[int, int]]:
    """Spans of every site spelling in ``low`` (for the clause layer)."""
    return [(m.start(), m.end()) for m in primary_sites().pattern.finditer(low)]


def _ev_site(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    sites = primary_sites()
    wanted = c.values.get("sites") or []
    desc = " or ".join(sites.names.get(x, x).lower() for x in wanted)
    verb = "requires" if c.polarity == "require" else "excludes"
    own = patient_sites(getattr(p, "diagnosis_text", None))
    if not own:
        return UNKNOWN, f"primary site not stated in the diagnosis: verify (trial {verb} {desc})"
    said = ", ".join(sites.names[x].lower() for x in own)
    inside = any(w in _lineage(sites, o) for o in own for w in wanted)
    broader = any(o in _lineage(sites, w) for o in own for w in wanted)
    if not inside and broader:
        return UNKNOWN, f"primary site {said} (diagnosis as written); trial {verb} {desc}: verify"
    if c.polarity == "require":
        return (MET if inside else NOT_MET), f"primary site {said}; trial requires {desc}"
    return (NOT_MET if inside else MET), f"primary site {said}; trial excludes {desc}"
