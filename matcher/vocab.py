"""Vocabularies: diagnoses, drugs (with classes) and procedures, loaded from ``criteria/vocab``.

What goes in: free text as coordinators and registries write it ("LMS", "leiomyosarcma",
"Adriamycin", "imatinib mesylate", "prior VEGFR tyrosine kinase inhibitor").
What comes out: canonical entries (``Diagnosis``, ``Drug``, procedure ids) and, for running text,
``(id, matched text)`` mentions.

Resolution order (``resolve_diagnosis`` / ``resolve_drug`` / ``resolve_procedure``):

1. **exact**: the text, normalized (case, accents, "®"/"™", punctuation, hyphens and whitespace
   ignored; a trailing plural "s" tolerated), equals a canonical name, synonym, brand or code.
2. **oncotree** (diagnoses only): the text is an OncoTree code in the vocabulary ("CHDM").
3. **mention**: the text contains exactly one most specific vocabulary term, e.g.
   "metastatic leiomyosarcoma of the uterus" -> ``uterine_leiomyosarcoma`` (a mention that is an
   ancestor of another mention is dropped; two unrelated mentions are ambiguous).
4. **fuzzy**: rapidfuzz ``token_sort_ratio`` (normalized Indel similarity on sorted words,
   0-100) against every name/synonym of at least ``MIN_FUZZY_LENGTH`` characters, after dropping
   disease qualifiers ("metastatic", "advanced", "recurrent" ...). The best candidate must score
   at least the threshold (``DIAGNOSIS_FUZZY_THRESHOLD`` = 88, ``DRUG_FUZZY_THRESHOLD`` = 85,
   ``PROCEDURE_FUZZY_THRESHOLD`` = 88) and beat the best candidate of any *other* entry by more than
   ``FUZZY_AMBIGUITY_MARGIN`` points, otherwise the text is rejected as ambiguous.
   Abbreviations and short words (``MIN_FUZZY_LENGTH`` - 1 = 5 characters or fewer) only ever
   match exactly: "LMS" never fuzzes to "MFS".

The thresholds were chosen on the table in ``tests/test_vocab.py``: one or two typing errors in a
name of 10+ letters pass ("leiomyosarcma" 96, "synovail sarcoma" 94, "ifosphamide" 86), while
close but different entities stay below ("liposarcoma" vs "leiomyosarcoma" 80, "fibrosarcoma" vs
"myxofibrosarcoma" 86 < 88, "sorafenib" vs "regorafenib" 80, "epirubicin" vs "idarubicin" 80).

Free-text finders (``find_diagnoses``, ``find_drugs``, ``find_drug_classes``,
``find_procedures``) are precompiled at load: the text is cut into word tokens and a prefix set
of every squashed spelling drives a longest-match scan (word boundaries, case-insensitive,
hyphen/space/apostrophe/slash/parenthesis tolerant, optional plural). This replaced one big
regex alternation per kind, which was about 4x slower to run and 10x slower to build. Rules:
abbreviations written in capitals in the data with 5 letters or fewer ("GIST", "LMS",
"MPNST") only match when written in capitals in the text; spellings flagged
``text_match: false`` ("OS", "ES", "ALT", "HPC", "MFS" ...) are never searched for in running
text because there they usually mean something else (overall survival, alanine
aminotransferase ...); a term glued to "non" ("non-anthracycline") is not a mention. No fuzzy
matching happens in free text.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from rapidfuzz import fuzz, process

from matcher.errors import KnowledgeError, VocabError
from matcher.resources import vocab_dir

_YamlLoader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

DIAGNOSIS_FUZZY_THRESHOLD = 88.0
"""Minimum rapidfuzz ``token_sort_ratio`` (0-100) for a fuzzy diagnosis match."""

DRUG_FUZZY_THRESHOLD = 85.0
"""Minimum rapidfuzz ``token_sort_ratio`` (0-100) for a fuzzy drug match."""

PROCEDURE_FUZZY_THRESHOLD = 88.0
"""Minimum rapidfuzz ``token_sort_ratio`` (0-100) for a fuzzy procedure match."""

FUZZY_AMBIGUITY_MARGIN = 3.0
"""A fuzzy winner must beat the best *other* entry by more than this many points."""

MIN_FUZZY_LENGTH = 6
"""Terms (query or synonym) shorter than this, letters and digits counted, match only exactly."""

CASE_SENSITIVE_MAX = 5
"""All-capital abbreviations up to this length match only in capitals in running text."""

DIAGNOSIS_FAMILIES = ("sarcoma", "carcinoma", "lymphoma", "leukemia", "melanoma", "cns", "other")
CATEGORIES = ("soft_tissue", "bone", "other")
SUMMARIES = ("adult_sts", "child_nrsts")
LEVELS = ("basket", "family", "category")

WHO_SOURCE = "WHO Classification of Tumours, Soft Tissue and Bone Tumours, 5th ed., 2020"
"""The reference each ``who_family`` value cites."""

WHO_FAMILIES = (
    # soft tissue chapters
    "soft tissue: adipocytic tumours",
    "soft tissue: fibroblastic and myofibroblastic tumours",
    "soft tissue: so-called fibrohistiocytic tumours",
    "soft tissue: vascular tumours",
    "soft tissue: pericytic (perivascular) tumours",
    "soft tissue: smooth muscle tumours",
    "soft tissue: skeletal muscle tumours",
    "soft tissue: gastrointestinal stromal tumour",
    "soft tissue: chondro-osseous tumours",
    "soft tissue: peripheral nerve sheath tumours",
    "soft tissue: tumours of uncertain differentiation",
    # shared chapter
    "soft tissue and bone: undifferentiated small round cell sarcomas",
    # bone chapters
    "bone: chondrogenic tumours",
    "bone: osteogenic tumours",
    "bone: notochordal tumours",
    "bone: osteoclastic giant cell-rich tumours",
    "bone: other mesenchymal tumours of bone",
    # described in another volume of the WHO series, not in the soft tissue and bone volume
    "other volume",
)
"""Allowed ``who_family`` values: the chapters of ``WHO_SOURCE`` an entry is placed in."""

# Words that qualify a disease without changing what it is; dropped before fuzzy matching.
_QUALIFIERS = frozenset(
    [
        "metastatic",
        "advanced",
        "recurrent",
        "relapsed",
        "refractory",
        "unresectable",
        "inoperable",
        "locally",
        "localized",
        "localised",
        "progressive",
        "progressing",
        "primary",
        "stage",
        "iv",
        "iii",
        "ii",
        "i",
        "high",
        "low",
        "grade",
        "intermediate",
        "histologically",
        "confirmed",
        "diagnosis",
        "of",
        "with",
        "the",
        "a",
        "an",
        "and",
        "nos",
        "unspecified",
        "newly",
        "diagnosed",
        "disease",
        "previously",
        "treated",
        "untreated",
    ]
)

QUALIFIERS = _QUALIFIERS
"""Words that qualify a disease without changing what it is (also read by relevance)."""

_TM_RE = re.compile(r"[®™©]")
_NON_ALNUM_RE = re.compile(r"[^0-9a-z]+")


def normalize(text: str) -> str:
    """Lower-case, strip accents and trademark signs, turn punctuation into single spaces."""
    text = _TM_RE.sub("", text)
    text = unicodedata.normalize("NFKD", text)
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    return _NON_ALNUM_RE.sub(" ", text.lower()).strip()


def squash(text: str) -> str:
    """The exact-match key: ``normalize`` without spaces ("ET-743" == "ET 743" == "et743")."""
    return normalize(text).replace(" ", "")


def _strip_qualifiers(norm: str) -> str:
    return " ".join(w for w in norm.split() if w not in _QUALIFIERS)


# ---------------------------------------------------------------------------------------------
# Entries


@dataclass(frozen=True)
class Diagnosis:
    """One diagnosis of ``criteria/vocab/diagnoses.yaml`` (inherited fields already filled in)."""

    id: str
    name: str
    synonyms: list[str]
    parent: str | None
    lineage: tuple[str, ...]  # self, parent, ..., root ("solid_tumor" for solid tumours)
    oncotree: str | None
    family: str
    category: str
    in_sarcoma_pack: bool
    summaries: list[str]
    separate_summary: str | None
    note: str | None = None
    oncotree_note: str | None = None
    source: str | None = None
    # how broad the entry is, for relevance: "basket" (solid tumour, any cancer, any
    # haematological malignancy), "family" (sarcoma, carcinoma, leukaemia ...), "category" (soft
    # tissue sarcoma, bone sarcoma ...); None = a subtype or a subtype group
    level: str | None = None
    who_family: str | None = None  # WHO 2020 soft tissue and bone family (the parent's citation)
    who_note: str | None = None  # what is uncertain or off-volume about that placement
    # histologic types the tumour is partly made of, neither alone ("adenosquamous":
    # adenocarcinoma and squamous cell carcinoma): a rule on either type is UNKNOWN for it
    mixed_types: tuple[str, ...] = ()
    # the marker(s) that define the subtype (PML::RARA for APL): a patient recorded with the
    # parent diagnosis and a positive / negative result is / is not this subtype
    defining_markers: tuple[str, ...] = ()
    # stage groups whose extent the group itself settles for this cancer, inherited by its
    # subtypes: "m0" (no distant metastasis by definition: stage IVA of a head and neck
    # cancer) or "unsure" (the editions in use disagree); any other stage IV is metastatic
    stage_extent: tuple[tuple[str, str], ...] = ()


STAGE_EXTENTS = ("m0", "unsure")


@dataclass(frozen=True)
class DrugClass:
    """A drug class; ``parents`` are broader classes (a PD-1 inhibitor is a checkpoint inhibitor)."""

    id: str
    name: str
    synonyms: list[str]
    parents: list[str] = field(default_factory=list)
    note: str | None = None
    # given only after a prior line, for relapsed or refractory disease (CAR T-cell therapy): a
    # patient who had it is not newly diagnosed. Stated per class, with the fact in its note
    later_line: bool = False


@dataclass(frozen=True)
class Drug:
    """One drug. ``classes`` holds its declared classes followed by all their ancestors."""

    id: str
    name: str
    brands: list[str]
    synonyms: list[str]
    codes: list[str]
    classes: list[str]
    declared_classes: list[str] = field(default_factory=list)
    note: str | None = None
    source: str | None = None


@dataclass(frozen=True)
class Procedure:
    """One procedure of ``criteria/vocab/procedures.yaml``."""

    id: str
    name: str
    synonyms: list[str]
    parent: str | None
    lineage: tuple[str, ...]
    note: str | None = None
    source: str | None = None
    prior_rule: bool = False  # a criterion naming it states a prior-treatment rule


@dataclass(frozen=True)
class DiagnosisMatch:
    """Result of ``Vocab.resolve_diagnosis``. ``method``: exact | oncotree | mention | fuzzy."""

    entry: Diagnosis
    score: float
    method: str


@dataclass(frozen=True)
class DrugMatch:
    """Result of ``Vocab.resolve_drug``. ``method``: exact | mention | fuzzy."""

    entry: Drug
    score: float
    method: str


# ---------------------------------------------------------------------------------------------
# Loading and validation

_DIAG_KEYS = {
    "id",
    "name",
    "synonyms",
    "parent",
    "oncotree",
    "oncotree_note",
    "family",
    "category",
    "in_sarcoma_pack",
    "summaries",
    "separate_summary",
    "note",
    "source",
    "level",
    "who_family",
    "who_note",
    "histotype",
    "mixed_types",
    "defining_markers",
    "stage_extent",
    "stage_source",
}
_DIAG_INHERITED = ("family", "category", "in_sarcoma_pack", "summaries", "separate_summary")
_CLASS_KEYS = {"id", "name", "synonyms", "parents", "note", "later_line"}
_DRUG_KEYS = {"id", "name", "brands", "synonyms", "codes", "classes", "note", "source"}
_PROC_KEYS = {"id", "name", "synonyms", "parent", "note", "source", "prior_rule"}
_REGIMEN_KEYS = {"id", "name", "synonyms", "drugs", "note", "source"}
_SYN_KEYS = {"text", "text_match", "note"}
_ID_RE = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class _Term:
    """One searchable spelling of an entry."""

    text: str
    target: str  # entry id
    text_match: bool  # searched for in running text


class _Loader:
    """Reads one YAML file and reports problems with the file and entry named."""

    def __init__(self, path: Path):
        self.path = path
        self.name = path.name
        try:
            with path.open(encoding="utf-8") as fh:
                self.data = yaml.load(fh, Loader=_YamlLoader)  # noqa: S506 (safe loader)
        except FileNotFoundError as exc:
            raise KnowledgeError("vocabulary file is missing", path=self.name) from exc
        except yaml.YAMLError as exc:
            raise KnowledgeError(f"not valid YAML: {exc}", path=self.name) from exc
        if not isinstance(self.data, dict):
            raise KnowledgeError("expected a mapping at the top level", path=self.name)

    def fail(self, message: str, entry: object = None, key: str | None = None) -> KnowledgeError:
        where = f"entry {entry!r}: " if entry is not None else ""
        return KnowledgeError(where + message, path=self.name, key=key)

    def entries(self, section: str, allowed: set[str], required: Iterable[str]) -> list[dict]:
        items = self.data.get(section)
        if items is None:
            return []
        if not isinstance(items, list):
            raise self.fail(f"'{section}' must be a list", key=section)
        seen: set[str] = set()
        out = []
        for i, item in enumerate(items):
            label = item.get("id", f"#{i + 1}") if isinstance(item, dict) else f"#{i + 1}"
            if not isinstance(item, dict):
                raise self.fail(f"each item of '{section}' must be a mapping", label)
            unknown = sorted(set(item) - allowed)
            if unknown:
                raise self.fail(
                    f"unknown key(s) {', '.join(unknown)}; allowed keys: {', '.join(sorted(allowed))}",
                    label,
                    unknown[0],
                )
            for key in required:
                if item.get(key) in (None, ""):
                    raise self.fail(f"missing required key '{key}'", label, key)
            ident = item["id"]
            if not isinstance(ident, str) or not _ID_RE.match(ident):
                raise self.fail("id must be snake_case (a-z, 0-9, _)", label, "id")
            if ident in seen:
                raise self.fail("duplicate id", label, "id")
            seen.add(ident)
            out.append(item)
        return out

    def terms(self, item: dict, key: str) -> list[tuple[str, bool]]:
        """A list of spellings: plain strings or ``{text:, text_match:, note:}`` mappings."""
        raw = item.get(key) or []
        if not isinstance(raw, list):
            raise self.fail(f"'{key}' must be a list", item["id"], key)
        out = []
        for value in raw:
            if isinstance(value, str):
                out.append((value, True))
            elif isinstance(value, dict):
                unknown = sorted(set(value) - _SYN_KEYS)
                if unknown or not isinstance(value.get("text"), str):
                    raise self.fail(
                        f"a spelling in '{key}' must be a string or a mapping with keys "
                        f"{', '.join(sorted(_SYN_KEYS))} ('text' required)",
                        item["id"],
                        key,
                    )
                out.append((value["text"], bool(value.get("text_match", True))))
            else:
                raise self.fail(f"'{key}' holds a {type(value).__name__}", item["id"], key)
            if not squash(out[-1][0]):
                raise self.fail(f"empty spelling in '{key}'", item["id"], key)
        return out

    def str_list(self, item: dict, key: str, allowed: Iterable[str] | None = None) -> list[str]:
        raw = item.get(key) or []
        if not isinstance(raw, list) or not all(isinstance(v, str) for v in raw):
            raise self.fail(f"'{key}' must be a list of strings", item["id"], key)
        if allowed is not None:
            allowed = tuple(allowed)
            bad = [v for v in raw if v not in allowed]
            if bad:
                raise self.fail(
                    f"'{key}' value {bad[0]!r} not allowed; allowed: {', '.join(allowed)}",
                    item["id"],
                    key,
                )
        return list(raw)


def _lineage(ident: str, parents: dict[str, str | None], loader: _Loader) -> tuple[str, ...]:
    chain = [ident]
    while parents.get(chain[-1]):
        nxt = parents[chain[-1]]
        if nxt not in parents:
            raise loader.fail(f"parent {nxt!r} is not defined", chain[-1], "parent")
        if nxt in chain:
            raise loader.fail(f"parent cycle: {' -> '.join([*chain, nxt])}", ident, "parent")
        chain.append(nxt)
    return tuple(chain)


def _index_terms(terms: list[_Term], loader: _Loader, kind: str) -> dict[str, str]:
    """Exact-match index; every spelling must lead to exactly one entry."""
    index: dict[str, str] = {}
    for term in terms:
        key = squash(term.text)
        other = index.get(key)
        if other is not None and other != term.target:
            raise loader.fail(
                f"{kind} spelling {term.text!r} belongs to both {other!r} and {term.target!r}; "
                "a spelling must name exactly one entry",
                term.target,
            )
        index[key] = term.target
    return index


class _Finder:
    """Finds vocabulary spellings in running text (no fuzzy matching).

    Text is cut into word tokens (runs of letters and digits, any script); from each token the
    finder extends the match token by token while the squashed text is still a prefix of some
    spelling, and keeps the longest complete spelling (optionally plural). Tokens may be joined
    by spaces, hyphens/dashes, apostrophes, slashes or parentheses, never by , ; : or a full
    stop. One set lookup per step keeps this linear in the text length (measured about 40x
    faster than one regex alternation over the ~2,000 spellings).
    """

    def __init__(self, terms: list[_Term]):
        self.index: dict[str, str] = {}
        self.case_sensitive: set[str] = set()
        blocked: set[str] = set()
        for term in terms:
            key = squash(term.text)
            if not key:
                continue
            if not term.text_match:
                blocked.add(key)
                continue
            self.index[key] = term.target
            letters = re.sub(r"[^0-9A-Za-z]", "", term.text)
            if letters.isalpha() and letters.isupper() and len(letters) <= CASE_SENSITIVE_MAX:
                self.case_sensitive.add(key)
        for key in blocked:  # a key blocked by one spelling is blocked for all
            self.index.pop(key, None)
        self.prefixes = {k[:i] for k in self.index for i in range(1, len(k) + 1)}

    def _hit(self, key: str, span: str) -> str | None:
        """The entry for a complete key (or its plural), honouring case-sensitive abbreviations."""
        for cut in ("", "s", "es"):
            if cut and not key.endswith(cut):
                continue
            base = key[: len(key) - len(cut)] if cut else key
            if len(base) < 2 or base not in self.index:
                continue
            if base in self.case_sensitive:
                letters = re.sub(r"[^0-9A-Za-z]", "", span)
                letters = letters[: len(letters) - len(cut)] if cut else letters
                if not letters.isupper() or (cut and not span.endswith(cut)):
                    continue
            return self.index[base]
        return None

    @staticmethod
    def _negated(text: str, toks: list[tuple[int, int, str]], i: int) -> bool:
        """A term glued to a preceding "non" ("non-anthracycline", "non-melanoma") is not named."""
        if i == 0 or toks[i - 1][2] != "non":
            return False
        gap = text[toks[i - 1][1] : toks[i][0]]
        return gap in ("-", " ", "\u2010", "\u2011", "\u2013")

    def _target_name(self, text: str, toks: list[tuple[int, int, str]], i: int, j: int) -> bool:
        """An abbreviation that is part of a molecule's name ("anti-CLL-1", "CLL-1 positive":
        the CLEC12A antigen, not the leukaemia): glued by a hyphen to a number after it, or
        to an "anti" before it."""
        if i != j or toks[i][2] not in self.case_sensitive:
            return False
        glued = ("-", "\u2010", "\u2011")
        if (
            j + 1 < len(toks)
            and toks[j + 1][2].isdigit()
            and text[toks[j][1] : toks[j + 1][0]] in glued
        ):
            return True
        if i > 0 and toks[i][2] in _UNIT_WORDS and toks[i - 1][2].replace(".", "").isdigit():
            return True  # "5 MM": a unit after a number, not a disease
        return i > 0 and toks[i - 1][2] == "anti" and text[toks[i - 1][1] : toks[i][0]] in glued

    @staticmethod
    def _aside(text: str, toks: list[tuple[int, int, str]], j: int) -> bool:
        """Token ``j`` is a capitalised abbreviation alone in parentheses, between two words."""
        a, b = toks[j][0], toks[j][1]
        word = text[a:b]
        return (
            text[toks[j - 1][1] : a].endswith("(")
            and text[b : toks[j + 1][0]].startswith(")")
            and 2 <= len(word) <= 6
            and word.isupper()
        )

    def find(self, text: str) -> list[tuple[str, str]]:
        """(entry id, matched text) for each mention, in text order, longest spelling first."""
        if not text or not self.index:
            return []
        toks = [
            (m.start(), m.end(), w.lower() if w.isascii() else squash(w))
            for m in _TOKEN_RE.finditer(text)
            for w in (m.group(0),)
        ]
        prefixes = self.prefixes
        out: list[tuple[str, str]] = []
        i, n = 0, len(toks)
        while i < n:
            if toks[i][2][:1] not in prefixes:  # fast path: no spelling starts like this
                i += 1
                continue
            key = ""
            best: tuple[int, str] | None = None
            j = i
            while j < n:
                if j > i and not _GAP_RE.fullmatch(text, toks[j - 1][1], toks[j][0]):
                    break
                if j > i and j + 1 < n and self._aside(text, toks, j):
                    # "squamous cell carcinoma (SCC) of the cervix": an abbreviation in
                    # parentheses inside a spelling is no part of it
                    j += 1
                    continue
                key += toks[j][2]
                is_prefix = key in prefixes
                if is_prefix or key.endswith("s"):
                    hit = self._hit(key, text[toks[i][0] : toks[j][1]])
                    if hit is not None:
                        best = (j, hit)
                if not is_prefix:
                    break
                j += 1
            if best is None:
                i += 1
                continue
            j, hit = best
            if self._negated(text, toks, i):
                # "non-squamous NSCLC": "squamous NSCLC" is negated, the NSCLC after it is not
                i += 1
                continue
            if not self._target_name(text, toks, i, j):
                out.append((hit, text[toks[i][0] : toks[j][1]]))
            i = j + 1
        return out


_UNIT_WORDS = frozenset({"mm", "cm", "ml", "mg", "kg", "dl", "um", "nm"})


def _lookup(index: dict[str, str], text: str) -> str | None:
    """Exact lookup of a whole text (or its plural) in a spelling index."""
    key = squash(text)
    if not key:
        return None
    if key in index:
        return index[key]
    for cut in ("s", "es"):  # plural of a listed spelling
        if key.endswith(cut) and len(key) - len(cut) >= 2:
            hit = index.get(key[: -len(cut)])
            if hit:
                return hit
    return None


_TOKEN_RE = re.compile(r"[^\W_]+")
# coordinated lists (Vocab.find_diagnoses_listed)
_LIST_HEADS = frozenset(
    [
        "sarcoma",
        "sarcomas",
        "tumor",
        "tumors",
        "tumour",
        "tumours",
        "carcinoma",
        "carcinomas",
        "cancer",
        "cancers",
        "leukemia",
        "leukemias",
        "leukaemia",
        "leukaemias",
        "lymphoma",
        "lymphomas",
        "melanoma",
        "melanomas",
        "neoplasm",
        "neoplasms",
    ]
)
# a head word that is a kind of one of them: "liposarcoma", "rhabdomyosarcoma", "adenocarcinoma"
_LIST_HEAD_ENDINGS = ("sarcoma", "sarcomas", "carcinoma", "carcinomas", "lymphoma", "lymphomas")
_LIST_END_RE = re.compile(r"(?:,|/|\bor|\band|\band/or)\s*$", re.IGNORECASE)
_LIST_SPLIT_RE = re.compile(
    r"\s*(?:,\s*(?:and/or|and|or)\b|,|/|\band/or\b|\bor\b|\band\b)\s*", re.I
)
_ABBREV_RE = re.compile(r"(?<![\w-])[A-Z]{2,5}(?![\w-])")
_LIST_GAP_RE = re.compile(
    r"[\s,/]*(?:,|/|\bor\b|\band\b)[\s,/]*(?:(?:or|and)\s+)?(?:[\w+-]+\s+){0,2}", re.I
)
_GAP_RE = re.compile(r"[\s\-\u2010-\u2015'\u2019\u00b4/()\[\]+]{0,4}")


_SUGGEST_SCORER = fuzz.WRatio


# what a diagnosis arose from: the history of today's disease, not a second diagnosis
_ORIGIN_RE = re.compile(
    r"\b(?:arising (?:from|in|out of)|secondary to|transformed from|transformation from|"
    r"evolv(?:ed|ing) from|progressed from|progressing from)\b",
    re.IGNORECASE,
)


class _FuzzyIndex:
    """Names/synonyms long enough for fuzzy matching, normalized once."""

    def __init__(self, terms: list[_Term]):
        seen: dict[str, str] = {}
        for term in terms:
            norm = normalize(term.text)
            if len(norm.replace(" ", "")) >= MIN_FUZZY_LENGTH:
                seen.setdefault(norm, term.target)
        self.choices = list(seen)
        self.targets = [seen[c] for c in self.choices]

    def best(self, query: str, limit: int = 40) -> list[tuple[str, float]]:
        """Best score per target id, best first."""
        if not self.choices:
            return []
        hits = process.extract(query, self.choices, scorer=fuzz.token_sort_ratio, limit=limit)
        per_target: dict[str, float] = {}
        for _choice, score, idx in hits:
            tgt = self.targets[idx]
            if score > per_target.get(tgt, -1.0):
                per_target[tgt] = float(score)
        return sorted(per_target.items(), key=lambda kv: (-kv[1], kv[0]))


def _fuzzy_pick(
    fz: _FuzzyIndex, text: str, threshold: float
) -> tuple[str | None, float, list[tuple[str, float]]]:
    """(winner or None, its score, ranked candidates). Winner None when low or ambiguous."""
    norm = normalize(text)
    if len(norm.replace(" ", "")) < MIN_FUZZY_LENGTH:
        return None, 0.0, fz.best(norm) if norm else []
    ranked = fz.best(norm)
    stripped = _strip_qualifiers(norm)
    if stripped and stripped != norm and len(stripped.replace(" ", "")) >= MIN_FUZZY_LENGTH:
        merged = dict(ranked)
        for tgt, score in fz.best(stripped):
            merged[tgt] = max(score, merged.get(tgt, -1.0))
        ranked = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))
    if not ranked or ranked[0][1] < threshold:
        return None, ranked[0][1] if ranked else 0.0, ranked
    if len(ranked) > 1 and ranked[0][1] - ranked[1][1] <= FUZZY_AMBIGUITY_MARGIN:
        return None, ranked[0][1], ranked
    if not any(
        _covers(q, choice)
        for q in {norm, stripped}
        if q
        for choice, tgt in zip(fz.choices, fz.targets, strict=True)
        if tgt == ranked[0][0]
    ):
        # "urethral carcinoma" scored 88 against "rectal carcinoma": a misspelling changes
        # letters of a word, not the word; a word of the text no word of the spelling is
        # close to is another name (a clear "not recognised", never a wrong organ)
        return None, ranked[0][1], ranked
    return ranked[0][0], ranked[0][1], ranked


FUZZY_WORD_RATIO = 85
# words that name no organ or kind on their own ("B-cell" in "Philadelphia-like B-cell ALL")
_GENERIC_WORDS = frozenset(
    {"cell", "cells", "type", "disease", "primary", "malignant", "tumor", "tumour", "cancer"}
)


def _covers(query: str, choice: str) -> bool:
    """Every word of ``query`` of four letters or more is a misspelling of a word of
    ``choice`` (or of two of its words run together), or a generic word."""
    words = choice.split()
    joined = words + ["".join(words[i : i + 2]) for i in range(len(words) - 1)]
    return all(
        any(fuzz.ratio(w, c) >= FUZZY_WORD_RATIO for c in joined)
        for w in query.split()
        if len(w) >= 4 and w not in _GENERIC_WORDS
    )


class Vocab:
    """The loaded vocabularies. Build with ``load_vocab()`` (cached)."""

    DIAGNOSIS_FUZZY_THRESHOLD = DIAGNOSIS_FUZZY_THRESHOLD
    DRUG_FUZZY_THRESHOLD = DRUG_FUZZY_THRESHOLD
    PROCEDURE_FUZZY_THRESHOLD = PROCEDURE_FUZZY_THRESHOLD

    def __init__(self, directory: Path):
        self.directory = Path(directory)
        self._load_diagnoses(_Loader(self.directory / "diagnoses.yaml"))
        self._load_drugs(_Loader(self.directory / "drugs.yaml"))
        proc_path = self.directory / "procedures.yaml"
        self._load_procedures(_Loader(proc_path) if proc_path.exists() else None)
        self._load_regimens(_Loader(self.directory / "drugs.yaml"))

    # -- loading -------------------------------------------------------------------------------
    def _load_diagnoses(self, ld: _Loader) -> None:
        items = ld.entries("diagnoses", _DIAG_KEYS, ("id", "name"))
        raw = {it["id"]: it for it in items}
        parents = {i: raw[i].get("parent") for i in raw}
        lineages = {i: _lineage(i, parents, ld) for i in raw}
        # a histologic type across organs ("lung squamous cell carcinoma" is also a squamous
        # cell carcinoma), or a lineage across a tree ("B-ALL" is also a B-cell leukaemia): its
        # chain is added after the entry's own, and a subtype inherits it (Ph+ ALL, a B-ALL, is
        # a B-cell leukaemia too)
        for ident, it in raw.items():
            ht = it.get("histotype")
            if ht is not None and ht not in raw:
                raise ld.fail(f"histotype {ht!r} is not defined", ident, "histotype")
        own = dict(lineages)
        for ident in raw:
            chain = list(own[ident])
            for anc in own[ident]:
                ht = raw[anc].get("histotype")
                if ht is not None:
                    chain += [x for x in own[ht] if x not in chain]
            lineages[ident] = tuple(chain)

        def inherited(ident: str, key: str) -> Any:
            for anc in lineages[ident]:
                if key in raw[anc]:
                    return raw[anc][key]
            return None

        self.diagnoses: dict[str, Diagnosis] = {}
        terms: list[_Term] = []
        codes: dict[str, str] = {}
        for ident, it in raw.items():
            family = inherited(ident, "family")
            category = inherited(ident, "category")
            in_pack = inherited(ident, "in_sarcoma_pack")
            if family not in DIAGNOSIS_FAMILIES:
                raise ld.fail(
                    f"family {family!r} not allowed; allowed: {', '.join(DIAGNOSIS_FAMILIES)}",
                    ident,
                    "family",
                )
            if category not in CATEGORIES:
                raise ld.fail(
                    f"category {category!r} not allowed; allowed: {', '.join(CATEGORIES)}",
                    ident,
                    "category",
                )
            if not isinstance(in_pack, bool):
                raise ld.fail("in_sarcoma_pack must be true or false", ident, "in_sarcoma_pack")
            summaries = inherited(ident, "summaries") or []
            bad = [s for s in summaries if s not in SUMMARIES]
            if not isinstance(summaries, list) or bad:
                raise ld.fail(
                    f"summaries must be a list drawn from {', '.join(SUMMARIES)}",
                    ident,
                    "summaries",
                )
            oncotree = it.get("oncotree")
            if oncotree is not None:
                if not isinstance(oncotree, str) or not re.fullmatch(r"[A-Z0-9_]+", oncotree):
                    raise ld.fail("oncotree must be an upper-case code", ident, "oncotree")
                if oncotree in codes:
                    raise ld.fail(
                        f"oncotree code {oncotree} also used by {codes[oncotree]!r}", ident
                    )
                codes[oncotree] = ident
            level = it.get("level")
            if level is not None and level not in LEVELS:
                raise ld.fail(
                    f"level {level!r} not allowed; allowed: {', '.join(LEVELS)}", ident, "level"
                )
            who = it.get("who_family")
            if who is not None and who not in WHO_FAMILIES:
                raise ld.fail(
                    f"who_family {who!r} not allowed; allowed: {'; '.join(WHO_FAMILIES)}",
                    ident,
                    "who_family",
                )
            mixed = it.get("mixed_types") or []
            if not isinstance(mixed, list) or any(m not in raw for m in mixed):
                raise ld.fail(
                    "mixed_types must be a list of defined diagnosis ids", ident, "mixed_types"
                )
            markers = it.get("defining_markers") or []
            if not isinstance(markers, list) or not all(isinstance(x, str) for x in markers):
                raise ld.fail(
                    "defining_markers must be a list of marker names", ident, "defining_markers"
                )
            extents = inherited(ident, "stage_extent") or {}
            if it.get("stage_extent") is not None and not it.get("stage_source"):
                raise ld.fail("stage_extent needs a stage_source citing the staging system", ident)
            if not isinstance(extents, dict) or any(
                not isinstance(k, str) or v not in STAGE_EXTENTS for k, v in extents.items()
            ):
                raise ld.fail(
                    f"stage_extent must map stage groups to one of {', '.join(STAGE_EXTENTS)}",
                    ident,
                    "stage_extent",
                )
            spellings = ld.terms(it, "synonyms")
            terms.append(_Term(it["name"], ident, True))
            terms.extend(_Term(t, ident, tm) for t, tm in spellings)
            self.diagnoses[ident] = Diagnosis(
                id=ident,
                name=it["name"],
                synonyms=[t for t, _ in spellings],
                parent=it.get("parent"),
                lineage=lineages[ident],
                oncotree=oncotree,
                family=family,
                category=category,
                in_sarcoma_pack=in_pack,
                summaries=list(summaries),
                separate_summary=inherited(ident, "separate_summary"),
                note=it.get("note"),
                oncotree_note=it.get("oncotree_note"),
                source=it.get("source"),
                level=level,
                who_family=who,
                who_note=it.get("who_note"),
                mixed_types=tuple(mixed),
                defining_markers=tuple(markers),
                stage_extent=tuple((k.upper(), v) for k, v in extents.items()),
            )
        self._diag_index = _index_terms(terms, ld, "diagnosis")
        # capitalised abbreviations kept out of running-text search ("ALL", "OS"): read only
        # as a member of a list of diagnoses ("AML, ALL, or MPAL"), see find_diagnoses_listed
        self._diag_list_abbrevs = {
            t.text: t.target
            for t in terms
            if not t.text_match
            and t.text.isalpha()
            and t.text.isupper()
            and len(t.text) <= CASE_SENSITIVE_MAX
        }
        self._diag_codes = codes
        self._diag_finder = _Finder(terms)
        self._diag_fuzzy = _FuzzyIndex(terms)
        self._diag_terms = terms

    def _load_drugs(self, ld: _Loader) -> None:
        cls_items = ld.entries("classes", _CLASS_KEYS, ("id", "name"))
        self.drug_classes: dict[str, DrugClass] = {}
        class_terms: list[_Term] = []
        for it in cls_items:
            spellings = ld.terms(it, "synonyms")
            later = it.get("later_line", False)
            if not isinstance(later, bool):
                raise ld.fail("later_line must be true or false", it["id"], "later_line")
            if later and not it.get("note"):
                raise ld.fail("later_line needs a note stating the fact", it["id"], "note")
            self.drug_classes[it["id"]] = DrugClass(
                id=it["id"],
                name=it["name"],
                synonyms=[t for t, _ in spellings],
                parents=ld.str_list(it, "parents"),
                note=it.get("note"),
                later_line=later,
            )
            class_terms.append(_Term(it["name"], it["id"], True))
            class_terms.extend(_Term(t, it["id"], tm) for t, tm in spellings)
        # class ancestry (several parents allowed; no cycles)
        self._class_ancestors: dict[str, tuple[str, ...]] = {}
        for cid in self.drug_classes:
            self._class_ancestors[cid] = self._walk_classes(cid, ld)

        items = ld.entries("drugs", _DRUG_KEYS, ("id", "name"))
        self.drugs: dict[str, Drug] = {}
        terms: list[_Term] = []
        for it in items:
            ident = it["id"]
            declared = ld.str_list(it, "classes", self.drug_classes)
            expanded: list[str] = []
            for c in declared:
                for a in self._class_ancestors[c]:
                    if a not in expanded:
                        expanded.append(a)
            brands = ld.terms(it, "brands")
            syns = ld.terms(it, "synonyms")
            codes = ld.terms(it, "codes")
            terms.append(_Term(it["name"], ident, True))
            terms.append(_Term(ident.replace("_", " "), ident, True))
            terms.extend(_Term(t, ident, tm) for t, tm in brands + syns + codes)
            self.drugs[ident] = Drug(
                id=ident,
                name=it["name"],
                brands=[t for t, _ in brands],
                synonyms=[t for t, _ in syns],
                codes=[t for t, _ in codes],
                classes=expanded,
                declared_classes=declared,
                note=it.get("note"),
                source=it.get("source"),
            )
        self._drug_index = _index_terms(terms, ld, "drug")
        self._class_index = _index_terms(class_terms, ld, "drug class")
        clash = sorted(set(self._drug_index) & set(self._class_index))
        if clash:
            raise ld.fail(f"spelling {clash[0]!r} names both a drug and a drug class")
        self._drug_finder = _Finder(terms)
        self._class_finder = _Finder(class_terms)
        self._drug_fuzzy = _FuzzyIndex(terms)
        self._drug_terms = terms
        self._class_terms = class_terms
        members: dict[str, set[str]] = {c: set() for c in self.drug_classes}
        for d in self.drugs.values():
            for c in d.classes:
                members[c].add(d.id)
        self._class_members = members

    def _walk_classes(self, cid: str, ld: _Loader) -> tuple[str, ...]:
        order: list[str] = []

        def visit(c: str, path: tuple[str, ...]) -> None:
            if c in path:
                raise ld.fail(f"class parent cycle: {' -> '.join([*path, c])}", cid, "parents")
            if c not in self.drug_classes:
                raise ld.fail(f"parent class {c!r} is not defined", path[-1], "parents")
            if c not in order:
                order.append(c)
            for p in self.drug_classes[c].parents:
                visit(p, (*path, c))

        visit(cid, ())
        return tuple(order)

    def _load_procedures(self, ld: _Loader | None) -> None:
        self.procedures: dict[str, Procedure] = {}
        terms: list[_Term] = []
        if ld is not None:
            items = ld.entries("procedures", _PROC_KEYS, ("id", "name"))
            parents = {it["id"]: it.get("parent") for it in items}
            for it in items:
                spellings = ld.terms(it, "synonyms")
                prior_rule = it.get("prior_rule", False)
                if not isinstance(prior_rule, bool):
                    raise ld.fail("prior_rule must be true or false", it["id"], "prior_rule")
                self.procedures[it["id"]] = Procedure(
                    id=it["id"],
                    name=it["name"],
                    synonyms=[t for t, _ in spellings],
                    parent=it.get("parent"),
                    lineage=_lineage(it["id"], parents, ld),
                    note=it.get("note"),
                    source=it.get("source"),
                    prior_rule=prior_rule,
                )
                terms.append(_Term(it["name"], it["id"], True))
                terms.append(_Term(it["id"].replace("_", " "), it["id"], True))
                terms.extend(_Term(t, it["id"], tm) for t, tm in spellings)
            self._proc_index = _index_terms(terms, ld, "procedure")
            clash = sorted(set(self._proc_index) & set(self._drug_index))
            if clash:
                raise ld.fail(f"spelling {clash[0]!r} names both a procedure and a drug")
        else:
            self._proc_index = {}
        self._proc_finder = _Finder(terms)
        self._proc_fuzzy = _FuzzyIndex(terms)
        self._proc_terms = terms

    def _load_regimens(self, ld: _Loader) -> None:
        """Named regimens (``regimens:`` in drugs.yaml): a spelling -> the drugs it is made of."""
        self.regimens: dict[str, tuple[str, ...]] = {}
        terms: list[_Term] = []
        for it in ld.entries("regimens", _REGIMEN_KEYS, ("id", "name", "drugs")):
            drugs = ld.str_list(it, "drugs", self.drugs)
            if len(drugs) < 2 or len(set(drugs)) != len(drugs):
                raise ld.fail("a regimen lists two or more different drugs", it["id"], "drugs")
            self.regimens[it["id"]] = tuple(drugs)
            terms.append(_Term(it["name"], it["id"], False))
            terms.extend(_Term(t, it["id"], False) for t, _tm in ld.terms(it, "synonyms"))
        self._regimen_index = _index_terms(terms, ld, "regimen")
        for other, kind in (
            (self._drug_index, "drug"),
            (self._class_index, "drug class"),
            (self._proc_index, "procedure"),
        ):
            clash = sorted(set(self._regimen_index) & set(other))
            if clash:
                raise ld.fail(f"spelling {clash[0]!r} names both a regimen and a {kind}")

    def resolve_regimen(self, text: str) -> tuple[str, ...] | None:
        """The drug ids of a named regimen written exactly ("R-CHOP", "mFOLFIRINOX"), or None.
        Never fuzzy: regimen names are short and differ by one letter ("ABVD", "AVD")."""
        hit = _lookup(self._regimen_index, text or "")
        return self.regimens[hit] if hit else None

    # -- diagnoses ----------------------------------------------------------------------------
    def diagnosis(self, ident: str) -> Diagnosis:
        """The diagnosis with this id; VocabError if there is none."""
        try:
            return self.diagnoses[ident]
        except KeyError:
            raise VocabError(
                f"diagnosis id {ident!r} is not in the vocabulary (criteria/vocab/diagnoses.yaml)",
                term=ident,
                kind="diagnosis",
                suggestions=self._closest_names(ident, self.diagnoses),
            ) from None

    def may_be(self, ident: str, other_id: str) -> bool:
        """True when some entry is both ``ident`` and ``other_id`` (a non-small cell lung cancer
        may be an adenocarcinoma: lung adenocarcinoma is both), and neither is the other."""
        key = (ident, other_id)
        memo = self.__dict__.setdefault("_may_be_memo", {})
        if key not in memo:
            d = self.diagnoses.get(ident)
            memo[key] = not self.is_a(ident, other_id) and (
                any(ident in e.lineage and other_id in e.lineage for e in self.diagnoses.values())
                or (d is not None and other_id in d.mixed_types)
            )
        return memo[key]

    def is_a(self, ident: str, ancestor_id: str) -> bool:
        """True when ``ancestor_id`` is ``ident`` itself or one of its ancestors."""
        d = self.diagnoses.get(ident)
        return d is not None and ancestor_id in d.lineage

    def resolve_diagnosis(self, text: str) -> DiagnosisMatch:
        """Free text or OncoTree code -> DiagnosisMatch; VocabError (3 suggestions) otherwise."""
        text = (text or "").strip()
        hit = _lookup(self._diag_index, text)
        if hit:
            return DiagnosisMatch(self.diagnoses[hit], 100.0, "exact")
        code = text.upper()
        if code in self._diag_codes:
            return DiagnosisMatch(self.diagnoses[self._diag_codes[code]], 100.0, "oncotree")
        mentions = self._most_specific({i for i, _ in self.find_diagnoses(text)})
        origin = _ORIGIN_RE.search(text)
        if origin and len(mentions) > 1:
            # "AML arising from primary myelofibrosis", "DLBCL transformed from follicular
            # lymphoma": the disease named before the cue is today's, the rest its history
            head = self._most_specific({i for i, _ in self.find_diagnoses(text[: origin.start()])})
            if head:
                mentions = head
        cancers = [m for m in mentions if "precancerous_condition" not in self.diagnoses[m].lineage]
        if cancers and len(cancers) < len(mentions):
            # "actinic keratoses; prior excised cutaneous squamous cell carcinoma": the cancer
            # is the diagnosis trials are matched on, the precancerous condition is history
            mentions = cancers
        winner, score, ranked = _fuzzy_pick(self._diag_fuzzy, text, DIAGNOSIS_FUZZY_THRESHOLD)
        if winner and (
            not mentions
            or (
                winner not in mentions
                and all(m in self.diagnoses[winner].lineage for m in mentions)
            )
        ):
            # "synovail sarcoma": the misspelt subtype beats the generic word it contains
            return DiagnosisMatch(self.diagnoses[winner], round(score, 1), "fuzzy")
        if len(mentions) == 1:
            return DiagnosisMatch(self.diagnoses[mentions[0]], 100.0, "mention")
        if len(mentions) > 1:
            # "non-small cell lung cancer, adenocarcinoma": an organ entry and a histologic
            # type meet in one entry (lung adenocarcinoma) when exactly one holds both
            meet = [d for d in self.diagnoses.values() if all(m in d.lineage for m in mentions)]
            meet = [d for d in meet if not any(o.id in d.lineage and o is not d for o in meet)]
            if len(meet) == 1:
                return DiagnosisMatch(meet[0], 100.0, "mention")
            names = [self.diagnoses[i].name for i in mentions]
            raise VocabError(
                f"diagnosis {text!r} is ambiguous: it names {', '.join(names)}; give one diagnosis",
                term=text,
                kind="diagnosis",
                suggestions=names[:3],
            )
        self._raise_unresolved(text, "diagnosis", score, ranked, self.diagnoses)
        raise AssertionError("unreachable")  # pragma: no cover

    def _most_specific(self, ids: set[str]) -> list[str]:
        """Drop mentions that are ancestors of another mention; roots ("cancer", "solid
        tumor") give way to any other mention."""
        keep = [
            i
            for i in ids
            if not any(
                o != i and (i in self.diagnoses[o].lineage or self.diagnoses[i].parent is None)
                for o in ids
            )
        ]
        return sorted(keep)

    def find_diagnoses(self, text: str) -> list[tuple[str, str]]:
        """(diagnosis id, matched text) for every mention in running text, in text order."""
        return self._diag_finder.find(text)

    def find_diagnoses_listed(self, text: str) -> list[tuple[str, str]]:
        """``find_diagnoses`` with coordinated lists expanded to every member.

        - a head noun shared by a list: "soft tissue or bone sarcoma" also names soft tissue
          sarcoma, "Ewing, osteo- or synovial sarcoma" names all three (each member plus the
          head must be an exact vocabulary spelling);
        - a capitalised abbreviation kept out of running-text search ("ALL", "OS") counts
          when it is a member of a list of diagnoses: "AML, ALL, or MPAL", "CML or Phi+ ALL".

        Returns (id, text) pairs; an expanded member's text is the member and the head as
        written ("soft tissue … sarcoma"), so a reader sees where it came from.
        """
        found = self.find_diagnoses(text)
        if not found or not text:
            return found
        out = list(found)
        have = {d for d, _ in found}
        spans: list[tuple[int, int]] = []
        start = 0
        for _d, mention in found:
            pos = text.find(mention, start)
            if pos < 0:
                pos = text.find(mention)
            spans.append((pos, pos + len(mention)))
            start = max(start, pos + len(mention)) if pos >= 0 else start
        for (_did, mention), (pos, _end) in zip(found, spans, strict=True):
            words = mention.split()
            head = words[-1].lower() if words else ""
            if pos < 0 or not (head in _LIST_HEADS or head.endswith(_LIST_HEAD_ENDINGS)):
                continue
            # the head is the last word ("soft tissue or bone sarcoma", "pleomorphic or myxoid
            # liposarcoma") or the last two ("small cell or non-small cell lung cancer")
            for k in (1, 2):
                if k > len(words) - 1:
                    break
                shared = " ".join(words[-k:])
                members = self._shared_head_members(text[:pos], shared)
                for member_id, member in members:
                    if member_id not in have:
                        have.add(member_id)
                        out.append((member_id, f"{member} … {shared}"))
                if members:
                    break
        for m in _ABBREV_RE.finditer(text):
            target = self._diag_list_abbrevs.get(m.group(0))
            if target is None or target in have:
                continue
            for a, b in spans:
                if a < 0:
                    continue
                gap = text[b : m.start()] if b <= m.start() else text[m.end() : a]
                if (b <= m.start() or m.end() <= a) and _LIST_GAP_RE.fullmatch(gap):
                    have.add(target)
                    out.append((target, m.group(0)))
                    break
        return out

    def _shared_head_members(self, before: str, head: str) -> list[tuple[str, str]]:
        """Members of a list that ends just before ``head``'s mention ("soft tissue or ")."""
        if not _LIST_END_RE.search(before):
            return []
        pieces = _LIST_SPLIT_RE.split(before[-160:])
        members: list[tuple[str, str]] = []
        for piece in reversed(pieces[:-1] if not pieces[-1].strip() else pieces):
            words = piece.split()
            if not words:
                continue
            hit = None
            for k in range(min(len(words), 4), 0, -1):
                member = " ".join(words[-k:])
                ident = _lookup(self._diag_index, f"{member} {head}")
                if ident:
                    hit = (ident, member, k)
                    break
            if hit is None:
                if len(words) == 1 and words[0].isalpha():
                    continue  # a member the vocabulary lacks ("acral"): the others still count
                break
            members.append((hit[0], hit[1]))
            if hit[2] < len(words):
                break  # the list starts inside this piece ("patients with soft tissue")
        return members

    # -- drugs --------------------------------------------------------------------------------
    def drug(self, ident: str) -> Drug:
        """The drug with this id; VocabError if there is none."""
        try:
            return self.drugs[ident]
        except KeyError:
            raise VocabError(
                f"drug id {ident!r} is not in the vocabulary (criteria/vocab/drugs.yaml)",
                term=ident,
                kind="drug",
                suggestions=self._closest_names(ident, self.drugs),
            ) from None

    def resolve_drug(self, text: str, *, strict: bool = False) -> DrugMatch | None:
        """Drug name, brand, salt, formulation, code or misspelling -> DrugMatch.

        Returns None when nothing matches well enough or the text is ambiguous; with
        ``strict=True`` raises VocabError with the three closest drug names instead.
        """
        text = (text or "").strip()
        hit = _lookup(self._drug_index, text)
        if hit:
            return DrugMatch(self.drugs[hit], 100.0, "exact")
        found = sorted({i for i, _ in self.find_drugs(text)})
        if len(found) == 1:
            return DrugMatch(self.drugs[found[0]], 100.0, "mention")
        if len(found) > 1:
            if strict:
                names = [self.drugs[i].name for i in found]
                raise VocabError(
                    f"drug {text!r} names several drugs ({', '.join(names)}); give one per entry",
                    term=text,
                    kind="drug",
                    suggestions=names[:3],
                )
            return None
        winner, score, ranked = _fuzzy_pick(self._drug_fuzzy, text, DRUG_FUZZY_THRESHOLD)
        if winner:
            return DrugMatch(self.drugs[winner], round(score, 1), "fuzzy")
        if strict:
            self._raise_unresolved(text, "drug", score, ranked, self.drugs)
        return None

    def drug_suggestions(self, text: str, n: int = 3) -> list[str]:
        """The ``n`` closest drug names (for warnings about unrecognised therapies)."""
        return self._suggest(text, self._drug_fuzzy, self.drugs, n)

    def drugs_in_class(self, class_id: str) -> set[str]:
        """Ids of every drug in the class or any of its sub-classes; VocabError if unknown."""
        if class_id not in self._class_members:
            raise VocabError(
                f"drug class {class_id!r} is not in the vocabulary; known: "
                + ", ".join(sorted(self.drug_classes)),
                term=class_id,
                kind="drug_class",
                suggestions=self._closest_names(class_id, self.drug_classes),
            )
        return set(self._class_members[class_id])

    def class_ancestors(self, class_id: str) -> tuple[str, ...]:
        """The class itself followed by every broader class."""
        return self._class_ancestors[class_id]

    def resolve_drug_class(self, text: str) -> str | None:
        """Class name or synonym ("anthracyclines", "anti-PD-1") -> class id, exact or mention."""
        hit = _lookup(self._class_index, text or "")
        if hit:
            return hit
        found = {i for i, _ in self.find_drug_classes(text or "")}
        narrow = [
            c for c in found if not any(o != c and c in self._class_ancestors[o] for o in found)
        ]
        return narrow[0] if len(narrow) == 1 else None

    def find_drugs(self, text: str) -> list[tuple[str, str]]:
        """(drug id, matched text) for every drug mention in running text, in text order."""
        return self._drug_finder.find(text)

    def find_drug_classes(self, text: str) -> list[tuple[str, str]]:
        """(class id, matched text) for every drug-class mention in running text."""
        return self._class_finder.find(text)

    # -- procedures ---------------------------------------------------------------------------
    def resolve_procedure(self, text: str) -> str | None:
        """Procedure text -> canonical procedure id ("pulmonary_metastasectomy"), or None."""
        text = (text or "").strip()
        hit = _lookup(self._proc_index, text)
        if hit:
            return hit
        found = {i for i, _ in self.find_procedures(text)}
        narrow = [
            p for p in found if not any(o != p and p in self.procedures[o].lineage for o in found)
        ]
        winner, _score, _ranked = _fuzzy_pick(self._proc_fuzzy, text, PROCEDURE_FUZZY_THRESHOLD)
        if (
            winner
            and winner not in narrow
            and all(p in self.procedures[winner].lineage for p in narrow)
        ):
            return winner  # "pulmonry metastasectomy": the misspelt specific term wins
        return narrow[0] if len(narrow) == 1 else None

    def find_procedures(self, text: str) -> list[tuple[str, str]]:
        """(procedure id, matched text) for every procedure mention in running text."""
        return self._proc_finder.find(text)

    def procedure_is_a(self, ident: str, ancestor_id: str) -> bool:
        """True when ``ancestor_id`` is the procedure itself or a broader one."""
        p = self.procedures.get(ident)
        return p is not None and ancestor_id in p.lineage

    # -- helpers ------------------------------------------------------------------------------
    def _suggest(self, text: str, fz: _FuzzyIndex, entries: dict, n: int = 3) -> list[str]:
        norm = normalize(text or "")
        names: list[str] = []
        if norm and fz.choices:
            # WRatio rewards partial words ("leiomyo" -> Leiomyosarcoma) for suggestions only
            hits = process.extract(norm, fz.choices, scorer=_SUGGEST_SCORER, limit=60)
            for _choice, _score, idx in hits:
                tgt = fz.targets[idx]
                name = entries[tgt].name
                if name not in names:
                    names.append(name)
                if len(names) == n:
                    break
        return names

    @staticmethod
    def _closest_names(text: str, entries: dict) -> list[str]:
        names = [e.name for e in entries.values()]
        hits = process.extract(
            normalize(text), names, scorer=fuzz.WRatio, processor=normalize, limit=3
        )
        return [h[0] for h in hits]

    def _raise_unresolved(
        self, text: str, kind: str, score: float, ranked: list[tuple[str, float]], entries: dict
    ) -> None:
        threshold = DIAGNOSIS_FUZZY_THRESHOLD if kind == "diagnosis" else DRUG_FUZZY_THRESHOLD
        if len(normalize(text).replace(" ", "")) >= MIN_FUZZY_LENGTH and (
            len(ranked) > 1
            and ranked[0][1] >= threshold
            and ranked[0][1] - ranked[1][1] <= FUZZY_AMBIGUITY_MARGIN
        ):
            close = [
                entries[t].name for t, s in ranked if ranked[0][1] - s <= FUZZY_AMBIGUITY_MARGIN
            ]
            raise VocabError(
                f"{kind} {text!r} is ambiguous: it is as close to {', '.join(close)}; spell it out",
                term=text,
                kind=kind,
                suggestions=close[:3],
            )
        fz = self._diag_fuzzy if kind == "diagnosis" else self._drug_fuzzy
        suggestions = self._suggest(text, fz, entries) if text else []
        if len(suggestions) < 3:
            for name in self._closest_names(text or "?", entries):
                if name not in suggestions and len(suggestions) < 3:
                    suggestions.append(name)
        raise VocabError(
            f"{kind} {text!r} not recognised; closest: {', '.join(suggestions)}",
            term=text,
            kind=kind,
            suggestions=suggestions,
        )


@functools.lru_cache(maxsize=8)
def _load_cached(directory: str) -> Vocab:
    return Vocab(Path(directory))


def load_vocab(directory: str | Path | None = None) -> Vocab:
    """Load and validate ``criteria/vocab`` (or ``directory``); cached per folder.

    Raises KnowledgeError (naming the file and entry) when a file is invalid.
    """
    return _load_cached(str(Path(directory) if directory is not None else vocab_dir()))
