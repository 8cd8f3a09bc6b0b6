"""The clause layer: which words of a criteria line its typed criteria account for.

A rule that recognises a fragment of a line must not decide the whole line. So after a line
is typed, every criterion it produced is checked against the words of its clause:

- **exclude-type** criteria (the patient must *not* have something: "Known brain
  metastases", "Prior trabectedin") need every word explained -- filler, a word the type
  models, a recognised entity (diagnosis, drug, drug class, procedure), a number where the
  type reads numbers. An unmodelled modifier ("uncontrolled", "CNS", "extrathoracic"), a
  time scope ("at the time of collection") or a condition leaves words over;
- **require-type** criteria (the patient must *have* something: "ECOG 0-1", "ANC >= 1500",
  "metastatic disease") are checked for cues only: a word that narrows a requirement cannot
  turn a failed requirement into a pass, but an alternative ("or >= 18 if unfit"), a
  condition ("if", "unless", "patients whose ... must"), an example list ("i.e.", "e.g.") or
  an exemption ("transfusion allowed") can.

The words left over are kept on the criterion (``Criterion.unexplained``); the verdict
module turns a NOT_MET with words left over into UNKNOWN and quotes them, so a coordinator
reads exactly that part. Criteria under a later-step scope (crossover, re-registration,
step 2, an expansion part) are marked ``Criterion.later_step`` and never gate enrolment.

The words, cues and scopes are data: ``criteria/clauses.yaml``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

from matcher.eligibility.text import _find_diagnoses

_KEYS = {"filler", "cues", "later_step", "types"}
_TYPE_KEYS = {"anchor", "numbers", "words", "widening"}

# Lab criteria are anchored on their own lab's name, so a line of several labs is judged
# clause by clause.
LAB_ANCHORS = {
    "anc": r"neutrophil|\banc\b|\bagc\b|granulocyte",
    "platelets": r"platelet|\bplt\b",
    "hemoglobin": r"h(?:a)?emoglobin|\bhgb\b|\bhb\b",
    "creatinine": r"creatinine(?!\s+clearance)",
    "creatinine_clearance": r"clearance|crcl|\bgfr\b",
    "bilirubin": r"bilirubin",
    "direct_bilirubin": r"bilirubin",
    "ast": r"\bast\b|sgot|aspartate|transaminase|aminotransferase",
    "alt": r"\balt\b|sgpt|alanine|transaminase|aminotransferase",
}

# Negation words: read by the polarity rules when they precede the criterion.
_NEGATION_RE = re.compile(
    r"\b(?:no|not|never|without|none|absence|absent|free|lack|lacks|lacking|non|cannot|na[iï]ve)\b|n't\b"
)
_TOKEN_RE = re.compile(r"[a-z0-9µ]+(?:[.'/-][a-z0-9]+)*|[<>=≥≤%×]+")
_NUMBERISH_RE = re.compile(
    r"^(?:\d[\d,.]*|[<>=≥≤%×]+|x|\d+(?:st|nd|rd|th)|[ivx]+)$"
    # a value with its unit, as trials glue them: "9g/dl", "mg/dl", "1.5x10", "x109/l",
    # "ml/min/1.73m2", "umol/l", "100k/mm3"
    r"|^(?:(?:\d[\d,.]*)?(?:x\s*10(?:\^?-?\d{1,2})?)?(?:mg|g|ug|µg|ng|pg|mmol|umol|µmol|mol|"
    r"miu|iu|u|cells|ml|dl|l|mm3|mm|mcl|ul|µl|min|m2|kg|k)?)"
    r"(?:/(?:\d[\d,.]*)?(?:x\s*10(?:\^?-?\d{1,2})?)?(?:mg|g|ug|µg|ng|mmol|umol|µmol|miu|iu|u|"
    r"cells|ml|dl|l|mm3|mm|mcl|ul|µl|min|m2|kg|hpf)?){0,3}$(?<=[a-z0-9])"
)
# an age-indexed table ("Age 1 to < 2 years: creatinine 0.6 ...") or an age inside a lab or
# performance-scale line: a lookup, never an age limit
_AGE_TABLE_RE = re.compile(
    r"(?:\bage\b[^;]{0,40}){3}|creatinine|bilirubin|clearance|lansky|karnofsky|\bkps\b|"
    r"performance|\bbsa\b|body surface|weight|\bkg\b"
)
_INLINE_EXCLUSION_RE = re.compile(
    r"\bexclu(?:sion|ding|ded) of\b|\bwere excluded\b|\bare excluded\b"
)
# an inline list of alternatives: "... any one of the following criteria: A; B; C"
_INLINE_ANYOF_RE = re.compile(
    r"\b(?:any|at least|only)?\s*(?:one|1)\s+(?:or more\s+)?of the following(?:\s+\w+){0,2}\s*:"
    r"(?=\s*\S)|\bany of the following(?:\s+\w+){0,2}\s*:(?=\s*\S)|\beither of the following\s*:"
)
# a footnote mark after a word ("ULN*", "metastases\\*,"): a note elsewhere qualifies the line
# (never the "*" of an HLA allele such as "A*02:01")
_FOOTNOTE_RE = re.compile(r"(?<=[\w)\]%])\*+(?=\s|$|[,.;:)])|[†‡]")
# a sentence ends at "; " or ". " (not the point of "i.e." or "e.g.": the list goes on)
_SEGMENT_RE = re.compile(r";\s*|(?<=[a-z0-9)\]%])(?<!i\.e)(?<!e\.g)(?<!\bvs)\.\s+(?=[A-Za-z(])")


@dataclass(frozen=True)
class ClauseRules:
    """``criteria/clauses.yaml``, compiled."""

    filler: re.Pattern
    cues: re.Pattern
    later_step: re.Pattern
    words: dict[str, re.Pattern]
    anchors: dict[str, re.Pattern | None]
    numbers: dict[str, bool]
    widening: dict[str, re.Pattern]


def _alternation(text: str) -> str:
    return re.sub(r"\s*\|\s*", "|", text.strip())


def _top_level(pattern: str) -> list[str]:
    """The alternatives of ``pattern`` split at its top-level "|" (not inside a group or a
    character class)."""
    out, depth, in_class, start, i = [], 0, False, 0, 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            i += 2
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
        elif ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        elif ch == "|" and depth == 0:
            out.append(pattern[start:i])
            start = i + 1
        i += 1
    out.append(pattern[start:])
    return [x for x in out if x]


def _word_re(text: str) -> re.Pattern:
    # longest first: a regex alternation takes the first alternative that matches, so "of"
    # listed before "of either sex" would hide the phrase
    alts = sorted(_top_level(_alternation(text)), key=len, reverse=True)
    return re.compile(rf"(?<![\w-])(?:{'|'.join(alts)})(?![\w-])")


def load_rules(path: str | Path | None = None) -> ClauseRules:
    """Load and validate the clause rules (unknown keys are refused with the allowed list)."""
    from matcher.errors import KnowledgeError

    p = Path(path) if path is not None else _default_path()
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeError(f"{p}: cannot read clause rules: {exc}") from exc
    if not isinstance(data, dict) or set(data) - _KEYS or not set(data) >= _KEYS:
        raise KnowledgeError(
            f"{p}: clause rules need exactly the keys {sorted(_KEYS)}; got {sorted(data or {})}"
        )
    words, anchors, numbers, widening = {}, {}, {}, {}
    for t, spec in (data["types"] or {}).items():
        if not isinstance(spec, dict) or set(spec) - _TYPE_KEYS:
            raise KnowledgeError(
                f"{p}: type {t!r}: allowed keys are {sorted(_TYPE_KEYS)}; got {sorted(spec or {})}"
            )
        try:
            words[t] = _word_re(spec.get("words") or "(?!)")
            a = spec.get("anchor") or ""
            anchors[t] = re.compile(a) if a else None
        except re.error as exc:
            raise KnowledgeError(f"{p}: type {t!r}: bad pattern: {exc}") from exc
        numbers[t] = bool(spec.get("numbers"))
        if spec.get("widening"):
            try:
                widening[t] = _word_re(spec["widening"])
            except re.error as exc:
                raise KnowledgeError(f"{p}: type {t!r}: bad widening pattern: {exc}") from exc
    try:
        return ClauseRules(
            filler=_word_re(data["filler"]),
            cues=_word_re(data["cues"]),
            later_step=re.compile(_alternation(data["later_step"])),
            words=words,
            anchors=anchors,
            numbers=numbers,
            widening=widening,
        )
    except re.error as exc:
        raise KnowledgeError(f"{p}: bad pattern: {exc}") from exc


def _default_path() -> Path:
    from matcher.resources import criteria_dir

    return Path(criteria_dir()) / "clauses.yaml"


@lru_cache(maxsize=4)
def _rules_for(path: str) -> ClauseRules:
    return load_rules(path)


def rules() -> ClauseRules:
    """The bundled rules (loaded once per file)."""
    return _rules_for(str(_default_path()))


# --------------------------------------------------------------------------- accounting
def _mark(mask: list[bool], spans) -> None:
    for a, b in spans:
        for i in range(max(a, 0), min(b, len(mask))):
            mask[i] = True


def _spans(rx: re.Pattern, low: str) -> list[tuple[int, int]]:
    return [m.span() for m in rx.finditer(low)]


def _entity_spans(plain: str, vocab: Any) -> list[tuple[int, int]]:
    """Where the vocabulary recognises a diagnosis, drug, drug class or procedure (looked up
    in the text as written: short abbreviations such as GIST match in capitals only)."""
    out: list[tuple[int, int]] = []
    if vocab is None:
        return out
    low = plain.lower()
    for finder in ("find_diagnoses", "find_drugs", "find_drug_classes", "find_procedures"):
        fn = getattr(vocab, finder, None)
        if fn is None:
            continue
        if finder == "find_diagnoses":
            # with the diagnoses a shared head noun names ("breast" in "breast or ovarian
            # cancer"), as the histology type reads them
            fn = lambda text: _find_diagnoses(vocab, text)  # noqa: E731
        for _id, mention in dict.fromkeys(fn(plain)):
            m = mention.lower()
            i = low.find(m)
            while i >= 0:
                out.append((i, i + len(m)))
                i = low.find(m, i + 1)
    return out


def _segments(low: str) -> list[tuple[int, int]]:
    out, start = [], 0
    for m in _SEGMENT_RE.finditer(low):
        out.append((start, m.start()))
        start = m.end()
    out.append((start, len(low)))
    return [(a, b) for a, b in out if low[a:b].strip()]


# where one lab's clause ends and the next lab's begins: a comma, semicolon or "and" (never
# an "or": "creatinine <= 1.5 mg/dL, or creatinine clearance >= 60 mL/min" is one choice)
_LAB_JOINT_RE = re.compile(r"[,;]\s*(?:and\s+)?|\s+and\s+")
_LAB_OR_RE = re.compile(r"\bor\b|\band/or\b")
_BRACKETED_RE = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")
_LAB_CONDITION_RE = re.compile(
    r"\b(?:if|unless|except|excepting|provided|allowed|permitted|acceptable|due to|caused by|"
    r"secondary to|attributable to|in patients with|in case of|in the presence of|gilbert)"
)


def lab_clause(low: str, lab: str) -> tuple[int, int]:
    """The span of ``low`` (a lower-case line) that states ``lab``'s limit: from its name to
    the next other lab's name, cut at the joint before it ("Total bilirubin <= 1.5 x ULN,
    AST/ALT <= 3 x ULN (<= 5 x ULN if liver metastases)": the condition is the AST/ALT
    clause's). The whole line when the lab is not named, or when an "or" joins it to the
    next lab."""
    rx = LAB_ANCHORS.get(lab)
    own = [m.start() for m in re.finditer(rx, low)] if rx else []
    if not own:
        return 0, len(low)
    own_set = set(own)
    others = sorted(
        {
            m.start()
            for name, other in LAB_ANCHORS.items()
            if name != lab and other != rx
            for m in re.finditer(other, low)
            if m.start() not in own_set
        }
    )
    first, last = min(own), max(own)
    start, end = 0, len(low)
    before = [p for p in others if p < first]
    if before:
        gap = low[before[-1] : first]
        joints = list(_LAB_JOINT_RE.finditer(gap))
        if (
            joints
            and re.search(r"\d", gap[: joints[-1].start()])
            and not _LAB_OR_RE.search(gap[joints[-1].start() :])
        ):
            start = before[-1] + joints[-1].end()
    after = [p for p in others if p > last]
    if after:
        gap = low[last : after[0]]
        joints = list(_LAB_JOINT_RE.finditer(gap))
        # a condition that ends the line outside brackets ("ANC >= 1500, platelets >=
        # 100,000 unless due to marrow involvement") may be every lab's: the line is read whole
        tail = _BRACKETED_RE.sub(" ", low[after[-1] :])
        if (
            joints
            and re.search(r"\d", gap[: joints[-1].start()])  # its own limit ("AST and ALT <=")
            and not _LAB_OR_RE.search(gap[joints[-1].start() :])
            and not _LAB_CONDITION_RE.search(tail)
        ):
            end = last + joints[-1].start()
    return start, end


_ROMAN_RE = re.compile(r"[IVX]{1,4}[ABC]?")


# the spelled-out names of the genes the marker types read (the symbol follows in brackets)
_GENE_NAME_RE = re.compile(
    r"\b(?:epidermal growth factor receptor|human epidermal growth factor receptor[- ]2|"
    r"anaplastic lymphoma kinase|programmed (?:cell )?death[- ](?:ligand[- ])?1|c-ros oncogene 1|"
    r"rearranged during transfection|mesenchymal[- ]epithelial transition(?: factor)?|"
    r"neurotrophic (?:tyrosine )?receptor (?:tyrosine )?kinase|fibroblast growth factor receptor|"
    r"isocitrate dehydrogenase|fms[- ]like tyrosine kinase[- ]3|kirsten rat sarcoma(?: viral oncogene)?|"
    r"o?estrogen[- ]receptors?|progesterone[- ]receptors?|hormone[- ]receptors?)\b",
    re.IGNORECASE,
)


def _gene_spans(plain: str) -> list[tuple[int, int]]:
    """Gene / marker symbols as written (upper-case letters with digits: ALK, HER2, V600E),
    and the spelled-out names of the genes read ("epidermal growth factor receptor")."""
    return [
        m.span()
        for m in re.finditer(r"\b[A-Z][A-Z0-9]{1,9}(?:-[A-Z0-9]{1,6})?\b", plain)
        if (any(ch.isdigit() for ch in m.group(0)) or m.group(0).isupper())
        and not _ROMAN_RE.fullmatch(m.group(0))  # "stage III or IV": numerals, not genes
    ] + [m.span() for m in _GENE_NAME_RE.finditer(plain)]


@dataclass(frozen=True)
class Account:
    """What the clause layer found for one criterion."""

    unexplained: tuple[str, ...] = ()  # runs of words the parse did not account for
    later_step: str | None = None  # the scope words, when the criterion is for a later step


# a definition of a term of the line: "refractory is defined as ...", "(defined by ...)"
_DEFINITION_RE = re.compile(
    r"\b(?:(?:is|are|was|were|being)\s+)?defined\s+(?:as|by)\b|\bdefinition\s*(?:of\b[^:;]{0,40})?:"
    r"|(?<=:)\s*refers? to\b|\)\s*refers? to\b",
    re.IGNORECASE,
)
# (a ";" before a numbered item, "...; (2) ...", goes on with the same definition)
# ("; or ii) ..." too: an enumerated alternative of the same definition)
_SENTENCE_END_RE = re.compile(
    r";(?!\s*(?:(?:or|and|and/or)\s+)?\(?(?:\d|[ivx]{1,3}|[a-h])\))|\.(?=\s+[A-Z(]|\s*$)"
)


def definition_spans(plain: str) -> list[tuple[int, int]]:
    """Spans of ``plain`` that define a term ("Relapse is defined as the blast cells > 5% in
    bone marrow or ..."): from the cue to the end of its sentence, or to the closing
    parenthesis when the definition stands in one."""
    out = []
    for m in _DEFINITION_RE.finditer(plain):
        end = len(plain)
        e = _SENTENCE_END_RE.search(plain, m.end())
        if e:
            end = e.start()
        opened = plain.rfind("(", 0, m.start())
        if opened >= 0 and plain.rfind(")", opened, m.start()) < 0:
            close = plain.find(")", m.end())
            if close >= 0:
                end = min(end, close)
        out.append((m.start(), end))
    return out


def without_definitions(plain: str) -> str:
    """``plain`` with its definitions ("defined as ...") blanked, positions kept."""
    out = list(plain)
    for a, b in definition_spans(plain):
        out[a:b] = " " * (b - a)
    return "".join(out)


# types whose term a definition spells out as the rule itself ("adequate organ function,
# defined as ...", "measurable disease defined as ...")
DEFINED_BY_OWN_TERM = frozenset({"organ_function", "measurable_disease", "performance_status"})


def defines_own_term(
    ctype: str, plain: str, cue_at: int, rules_: ClauseRules | None = None
) -> bool:
    """The definition whose cue starts at ``cue_at`` defines a term of this criterion type
    ("Adequate organ function defined as: ANC ..."): the definition is the rule itself."""
    if ctype not in DEFINED_BY_OWN_TERM:
        return False
    r = rules_ or rules()
    term = re.split(r"[;:.]", plain[max(0, cue_at - 40) : cue_at].lower())[-1]
    # the term must name the type (its anchor or a word for its subject), not merely share
    # one of its filler words: "a situation of severe infection defined as profound
    # neutropenia (PMN < 500/mm3)" defines a hazard, and the count in it is no requirement
    anchor = r.anchors.get(ctype)
    return bool(_OWN_TERM_RE[ctype].search(term) or (anchor is not None and anchor.search(term)))


_OWN_TERM_RE = {
    "organ_function": re.compile(
        r"\b(?:organ|marrow|hepatic|renal|liver|kidney|h(?:a)?ematologic\w*|laborator\w*|labs?|"
        r"blood counts?|chemistr\w*)\b"
    ),
    "measurable_disease": re.compile(r"\bmeasurable|\bevaluable|\btarget lesion"),
    "performance_status": re.compile(r"\bperformance|\becog\b|\bkarnofsky|\blansky|\bzubrod"),
}


_ENUMERATOR_RE = re.compile(
    r"\s*(?:\(\s*(?:\d{1,2}|[a-h]|[ivx]{1,4})\s*\)|(?:\d{1,2}|[a-h]|[ivx]{1,4})[.)])(?=\s)"
)


def account_line(
    plain: str,
    section: str,
    criteria: list,
    vocab: Any,
    context: str | None = None,
    rules_: ClauseRules | None = None,
) -> list[Account]:
    """One ``Account`` per criterion of one line (same order).

    ``plain`` is the normalized line; ``criteria`` the typed criteria parsed from it (each
    with ``type``, ``polarity``, ``values``); ``context`` the parent line or sub-heading.
    """
    r = rules_ or rules()
    low = plain.lower()
    n = len(low)
    later = None
    for text in (context or "", low):
        m = r.later_step.search(text.lower())
        if m:
            later = m.group(0)
            break
    base = [False] * n
    _mark(base, _spans(r.filler, low))
    if lead := _ENUMERATOR_RE.match(low):
        _mark(base, [(0, lead.end())])  # "(3) Have not received ...": a list number
    _mark(base, _entity_spans(plain, vocab))
    # procedures named in the line: an "or" to one of them is no list of the therapies a
    # prior-therapy criterion names ("upfront surgery or treated with neoadjuvant chemotherapy")
    procs = [False] * n
    find_procs = getattr(vocab, "find_procedures", None) if vocab is not None else None
    if find_procs is not None and len(plain) == n:
        for _pid, mention in find_procs(plain):
            _mark(procs, [(i, i + len(mention)) for i in _all_positions(low, mention.lower())])
    tokens = [(m.start(), m.end(), m.group(0)) for m in _TOKEN_RE.finditer(low)]
    # a definition refines a term the line names; what fails the term fails it however the
    # term is defined (criteria read only from a definition never exclude). Its conditions
    # and exceptions ("unless", "allowed") still count, and a definition of the criterion's
    # own term ("measurable disease defined as ...") is its rule, read like the rest.
    defs = definition_spans(plain) if len(plain) == n else []
    defined = [False] * n
    for a, b in defs:
        for ta, tb, w in tokens:
            if a <= ta < b and w not in _HARD_IN_SIBLING:
                defined[ta:tb] = [True] * (tb - ta)
    segs = _segments(low)
    cue_spans = _spans(r.cues, low)
    # what any criterion of the line accounts for
    others = list(base)
    for o in criteria:
        w = r.words.get(o.type)
        if w is not None:
            _mark(others, _spans(w, low))
        if o.type == "primary_site":
            from matcher.eligibility.site import site_spans

            _mark(others, site_spans(low))
    # what any criterion type models: an "or" between two such words of another type
    # ("locally advanced unresectable or metastatic sarcoma" in a histology line) is that
    # type's alternative, not this criterion's
    anytype = [False] * n
    for w in r.words.values():
        _mark(anytype, _spans(w, low))
    out: list[Account] = []
    for c in criteria:
        if c.type == "unparsed":
            out.append(Account(later_step=later))
            continue
        own = _own_mentions(c, plain, vocab) if len(plain) == n else None
        anchor = own or _anchor(r, c, low)
        mine = [s for s in segs if anchor is None or any(s[0] <= a < s[1] for a in anchor)]
        if not mine:
            mine = segs
        if c.type == "organ_function" and len(plain) == n:
            # a line of several labs: each lab is judged on its own clause
            ca, cb = lab_clause(low, (c.values or {}).get("lab", ""))
            mine = [(max(a, ca), min(b, cb)) for a, b in mine if max(a, ca) < min(b, cb)] or mine
        # a segment that names none of the line's criteria but carries a cue ("Transfusion is
        # allowed.", "Exception: ...") qualifies all of them
        for s in segs:
            if s in mine:
                continue
            unnamed = not any(
                _anchor_in(r, o, low, s) for o in criteria if o.type != "unparsed"
            ) or (own and not any(s[0] <= a < s[1] for a in own))
            # only a permission, exception or condition there reaches the other sentences;
            # an "or" or "including" of another sentence is that sentence's own list
            cue = any(
                s[0] <= a < s[1] and _REACHING_CUE_RE.fullmatch(low[a:b]) for a, b in cue_spans
            )
            if unnamed and cue and not _foreign_exemption(c, plain, s, vocab):
                mine.append(s)
        if c.type == "histology":
            defining = _defining_marker_spans(c, low, vocab)
            if defining:
                # "Acute promyelocytic leukemia accompanied by the PML-RARA fusion gene": the
                # marker that defines the diagnosis restates it
                base_c = list(base)
                _mark(base_c, defining)
            else:
                base_c = base
        else:
            base_c = base
        if defs and not any(defines_own_term(c.type, plain, a, r) for a, _b in defs):
            base_c = [x or y for x, y in zip(base_c, defined, strict=True)]
        left = _left_over(
            r, c, plain, low, tokens, base_c, others, mine, cue_spans, section, own, anytype, procs
        )
        if section == "inclusion" and not c.group and anchor and c.type not in _LIST_TYPES:
            other_anchors = [
                a
                for o in criteria
                if o is not c and o.type != "unparsed"
                for a in (_anchor(r, o, low) or [])
            ]
            # the type's own words count too ("prior" ... ", or prior ..."): the mentions
            # of a drug class are found once each
            named = sorted({*anchor, *(_anchor(r, c, low) or [])})
            branch = _branch_or(low, named, other_anchors, mine)
            if branch and branch not in left:
                left = [*left, branch]
        if section == "inclusion" and c.polarity == "require":
            # "Have undergone hysterectomy or bilateral oophorectomy; or have medically
            # confirmed ovarian failure; or ...": a sentence opening with "or" that names none
            # of this criterion's words is another way in
            for sa, sb in segs:
                if (sa, sb) not in mine and re.match(r"\s*(?:or|and/or)\b", low[sa:sb]):
                    branch = (plain if len(plain) == n else low)[sa:sb].strip()
                    if branch not in left:
                        left = [*left, branch]
        if (
            c.type == "age"
            and c.source == "text"
            and any(_AGE_TABLE_RE.search(low[a:b]) for a, b in mine)
        ):
            left = ["a table indexed by age (not an age limit)", *left]
        if (
            (anyof := _INLINE_ANYOF_RE.search(low))
            and not c.group
            and not (section == "exclusion" and c.polarity == "exclude")
            and not (
                # "sarcoma of the extremities, with one of the following characteristics:":
                # the list narrows what the line requires before it, it adds no way in
                c.polarity == "require"
                and anchor
                and max(anchor) < anyof.start()
                and re.search(r"\bwith\s*$", low[: anyof.start()])
            )
        ):
            # (in an exclusion, "any of the following therapies: X or Y" lists what excludes)
            # "Ineligible for cisplatin as defined by any one of the following criteria: GFR
            # 30-60 mL/min; hearing loss; ECOG 2": each listed item is one way in, not a rule
            left = [*left, plain[anyof.start() : anyof.end()]]
        if _FOOTNOTE_RE.search(plain):
            # "ALT <= 2.5 x ULN*" with "NOTE: *Unless elevation is caused by AML" elsewhere:
            # a note the line points to qualifies it
            left = [*left, "* (a note elsewhere in the record qualifies this line)"]
        if section == "inclusion" and (inline := _INLINE_EXCLUSION_RE.search(low)):
            # "..., exclusion of patients with brain metastases with EGFR mutations": an
            # inclusion line that excludes a sub-group itself; which words it binds is unread
            left = [*left, plain[inline.start() : inline.end()]]
        out.append(Account(unexplained=tuple(left), later_step=later))
    return out


# types whose criterion reads a whole list of its own items ("HLA-A*02:01, HLA-A*02:05, or
# HLA-A*02:06"): a ", or" between them is the list, not a second branch
_LIST_TYPES = frozenset({"hla"})
_BRANCH_OR_RE = re.compile(r",\s*(?:or|and/or)\b")
_WORD_AT_RE = re.compile(r"[a-z0-9]+")


def _branch_or(low: str, anchors, other_anchors, segs) -> str | None:
    """The words of a second branch (", or ...") of an inclusion line that this criterion
    does not decide alone, quoted; None when there is none.

    - the criterion is named on both sides by the same word ("No prior chemotherapy, or prior
      chemotherapy with documented progression"): two statements about it, one an
      alternative to the other;
    - the criterion is named only after the ", or" while another criterion of the line is
      named before it ("EGFR wild-type, or EGFR mutant after progression on osimertinib"):
      it holds in the second branch only.
    A list of different items ("doxorubicin, ifosfamide, or trabectedin") is neither."""

    def word(pos: int) -> str:
        m = _WORD_AT_RE.match(low, pos)
        return m.group(0) if m else ""

    for m in _BRANCH_OR_RE.finditer(low):
        k = m.start()
        if not any(a <= k < b for a, b in segs):
            continue
        before = [a for a in anchors if a < k]
        after = [a for a in anchors if a > k]
        repeated = before and after and {word(a) for a in before} & {word(a) for a in after}
        later_only = not before and after and any(a < k for a in other_anchors)
        if repeated or later_only:
            end = low.find(",", m.end())
            return low[m.end() - len(m.group(0).lstrip(", ")) : end if end > 0 else None].strip()
    return None


def _in_later_part(low: str, a: int, anchors, tokens, others, mask) -> bool:
    """An "or" at ``a`` after every anchor of a requirement, in a later comma part that opens
    with words another criterion of the line accounts for ("EGFR negative, ROS1 negative, and
    ALK negative, stage III or IV non-small cell lung cancer ..."): that part is the other
    criterion's, and its alternatives do not widen this one."""
    if not anchors or a <= max(anchors):
        return False
    comma = low.rfind(",", max(anchors), a)
    if comma < 0:
        return False
    first = next((t for t in tokens if t[0] > comma), None)
    if first is None or first[0] >= a:
        return False
    fa, fb, _w = first
    return all(others[fa:fb]) and not all(mask[fa:fb])


def _own_mentions(c, plain: str, vocab: Any) -> list[int] | None:
    """Where a prior-therapy criterion's own drugs and classes are named (None: not known)."""
    if vocab is None:
        return None
    if c.type == "histology":
        want = set((c.values or {}).get("diagnoses") or [])
        low = plain.lower()
        pos = [
            i
            for ident, m in dict.fromkeys(_find_diagnoses(vocab, plain))
            if ident in want
            for i in _all_positions(low, m.lower())
        ]
        return pos or None
    if c.type not in ("prior_therapy_excluded", "prior_therapy_required"):
        return None
    want_d = set((c.values or {}).get("drugs") or [])
    want_c = set((c.values or {}).get("classes") or [])
    want_p = set((c.values or {}).get("procedures") or [])
    if not (want_d or want_c or want_p):
        return None
    low = plain.lower()
    pos: list[int] = []
    finders = [(vocab.find_drugs, want_d), (vocab.find_drug_classes, want_c)]
    if want_p and hasattr(vocab, "find_procedures"):
        # "prior solid organ transplantation or allo-HSCT 6 months before screening": the
        # procedures are the criterion's own items, so their qualifiers are read
        finders.append((vocab.find_procedures, want_p))
    for fn, want in finders:
        for ident, mention in fn(plain):
            if ident in want:
                i = low.find(mention.lower())
                if i >= 0:
                    pos.append(i)
    return pos or None


def _defining_marker_spans(c, low: str, vocab: Any) -> list[tuple[int, int]]:
    """Where the marker that defines one of a histology criterion's diagnoses is named, with
    its connecting words ("accompanied by the PML-RARA fusion gene", "with PML::RARA")."""
    if vocab is None:
        return []
    names: list[str] = []
    for did in (c.values or {}).get("diagnoses") or []:
        entry = getattr(vocab, "diagnoses", {}).get(did)
        names += list(getattr(entry, "defining_markers", ()) or ())
    if not names:
        return []
    alts = "|".join(
        re.escape(n.lower()).replace("::", "(?:::|-|/|:)").replace(r"\-", "(?:::|-|/)")
        for n in dict.fromkeys(names)
    )
    rx = re.compile(
        r"(?:(?:accompanied by|with|harbou?ring|carrying|defined by|characteri[sz]ed by)\s+)?"
        r"(?:(?:the|a|an)\s+)?(?:" + alts + r")"
        r"(?:\s+(?:fusion(?:\s+gene)?|rearrangement|translocation|positive|positivity|transcript))?"
    )
    return [m.span() for m in rx.finditer(low)]


def _own_gene_mentions(c, plain: str) -> list[int]:
    """Where a marker criterion's own genes are named in the line."""
    from matcher.eligibility.biomarker import gene_mentions

    genes = {m.get("gene") for m in (c.values or {}).get("markers") or []}
    return [a for a, _b, g in gene_mentions(plain) if g in genes]


def _all_positions(low: str, needle: str) -> list[int]:
    out, i = [], low.find(needle)
    while i >= 0 and needle:
        out.append(i)
        i = low.find(needle, i + 1)
    return out


def _foreign_exemption(c, plain: str, seg: tuple[int, int], vocab: Any) -> bool:
    """An exemption segment about other drugs only ("however, prior bevacizumab is allowed"
    under a VEGFR-TKI ban): it does not qualify this criterion."""
    if vocab is None or c.type != "prior_therapy_excluded":
        return False
    text = plain[seg[0] : seg[1]]
    drugs = {i for i, _ in vocab.find_drugs(text)}
    classes = {i for i, _ in vocab.find_drug_classes(text)}
    if not (drugs or classes):
        return False
    mine_d = set(c.values.get("drugs") or [])
    mine_c = set(c.values.get("classes") or [])
    members: set[str] = set()
    for cl in mine_c | classes:
        try:
            members |= vocab.drugs_in_class(cl)
        except Exception:  # noqa: BLE001 - an unknown class cannot be compared: not foreign
            return False
    if drugs & (mine_d | members) or classes & mine_c:
        return False
    return all(
        not (set(vocab.drugs_in_class(cl)) & (mine_d | members)) for cl in classes
    ) and not any(d in mine_d for d in drugs)


def _anchor(r: ClauseRules, c, low: str) -> list[int] | None:
    """Positions that name this criterion in the line (None: anywhere)."""
    rx = None
    if c.type == "organ_function":
        lab = (c.values or {}).get("lab")
        if lab in LAB_ANCHORS:
            rx = re.compile(LAB_ANCHORS[lab])
    else:
        rx = r.anchors.get(c.type)
    if rx is None:
        return None
    pos = [m.start() for m in rx.finditer(low)]
    return pos or None


def _anchor_in(r: ClauseRules, c, low: str, seg: tuple[int, int]) -> bool:
    pos = _anchor(r, c, low)
    return bool(pos) and any(seg[0] <= p < seg[1] for p in pos)


_SYMBOL_TYPES = frozenset({"biomarker", "prior_therapy_excluded", "prior_therapy_required", "hla"})


def _left_over(
    r,
    c,
    plain,
    low,
    tokens,
    base,
    others,
    segs,
    cue_spans,
    section,
    own=None,
    anytype=None,
    procs=None,
) -> list[str]:
    anchors = own or _anchor(r, c, low) or []
    first_anchor = min(anchors) if anchors else 0
    # Strict (every word explained) where the words narrow what excludes: an exclusion line,
    # or an inclusion line that negates before the criterion ("No uncontrolled brain
    # metastases"). Elsewhere the line is a requirement: only cues can widen it.
    # An inclusion criterion that excludes by a negation is read strictly wherever the
    # negation stands in its clause ("No evidence of progression for 6 months on an AI for
    # advanced breast cancer": the words between are read too).
    seg_start = max((a for a, _ in _segments(low) if a <= first_anchor), default=0)
    negation = _NEGATION_RE.search(low[seg_start:first_anchor])
    strict = c.type not in ("washout", "contraception") and (
        (section == "exclusion" and c.polarity == "exclude")
        or (c.polarity == "exclude" and bool(negation))
    )
    # an inclusion line read strictly from its negation ("Stage IV NSCLC without EGFR
    # mutation"): the words before the negation are the other criteria's the line states
    neg_at = (
        seg_start + negation.start()
        if strict and section == "inclusion" and negation is not None
        else None
    )
    filler = [False] * len(low)
    _mark(filler, _spans(r.filler, low))
    mask = list(base)
    words = r.words.get(c.type)
    phrases: list[tuple[int, int]] = []
    if words is not None:
        # "(EGFR)-sensitizing": a word glued to a closing bracket is a word of its own
        found = _spans(words, low.replace(")-", ") "))
        _mark(mask, found)
        # a phrase the type models ("acceptable hematologic status", "for metastatic disease")
        # is read as a whole: a cue word inside it is part of the phrase
        phrases = [(a, b) for a, b in found if " " in low[a:b]]
    if c.type in _SYMBOL_TYPES:
        # gene / target symbols as written (ALK, HER2, PD-L1, CTLA-4) are entities here
        _mark(mask, _gene_spans(plain))
    if c.type == "primary_site":
        from matcher.eligibility.site import site_spans

        _mark(mask, site_spans(low))  # the sites of primary_sites.yaml are its entities
    modelled: list[tuple[int, int]] = []
    if c.type == "performance_status" and (c.values or {}).get("age_op"):
        # "for patients >= 16 years": the age group the scale applies to is read (values)
        from matcher.eligibility.performance import PS_AGE_RE

        modelled = _spans(PS_AGE_RE, low)
        _mark(mask, modelled)
    numeric = r.numbers.get(c.type, False)
    # a requirement's cues after "and <something else>" belong to that something else
    # ("must have brain metastasis and either ...")
    cue_cut = None
    cue_cut_end = len(low)
    if not strict and anchors:
        # (for a primary site, also a relative clause or "with ...": the tumour's other
        # characteristics, "sarcoma of the extremities that present as either: ...")
        joint = r"\b(?:and|that|which|with|who|whose)\b" if c.type == "primary_site" else r"\band\b"
        m = re.search(joint, low[max(anchors) :])
        if m:
            cut = max(anchors) + m.start()
            if not any(a > cut for a in anchors):
                cue_cut = cut
                # up to the end of that sentence: a cue in a sentence of its own ("Lower
                # values are permitted if ...") reaches every criterion of the line
                cue_cut_end = next((b for a, b in _segments(low) if a <= cut < b), len(low))
    bad: list[tuple[int, int]] = []
    in_seg = [t for t in tokens if any(a <= t[0] < b for a, b in segs)]
    sib_anchors = anchors
    if strict and c.type == "biomarker" and len(plain) == len(low):
        # a marker criterion is named by its genes, not by the word "mutation": "PDGFRA D842V
        # mutation or other mutation known to cause imatinib resistance" -- the second item
        # names no gene of this criterion, so it only adds to what excludes
        sib_anchors = _own_gene_mentions(c, plain) or anchors
    elif strict and own and c.type == "prior_therapy_excluded":
        # "Prior exposure to vaccines; prior exposure to any T cell co-stimulatory therapy or
        # immune checkpoint inhibitors": the item naming none of the criterion's own drugs
        # and classes only adds to what excludes
        sib_anchors = own
    siblings = _sibling_items(low, segs, sib_anchors) if strict and sib_anchors else []
    # "(no transfusion and no G-CSF or other growth factors within 14 days)": a negated
    # aside narrows a requirement; "(including adenosquamous carcinoma)" only adds to an
    # exclusion. Neither can turn a failed criterion into a pass.
    asides = [
        (m.start(), m.end())
        for m in _ASIDE_RE.finditer(low)
        if (m.group("neg") and not strict)
        or (m.group("incl") and strict and not any(m.start() <= x < m.end() for x in anchors))
    ]
    disease_for = (
        [m.start() for m in _FOR_ENTITY_RE.finditer(low) if all(base[m.end(1) : m.end()])]
        if getattr(c, "disease_scope", None)
        else []
    )
    for i, (a, b, w) in enumerate(in_seg):
        if neg_at is not None and b <= neg_at and all(others[a:b]) and w not in _HARD_IN_SIBLING:
            continue
        if siblings and any(x <= a < y for x, y in siblings) and w not in _HARD_IN_SIBLING:
            continue  # another excluded alternative ("pregnant, or expecting to conceive")
        if asides and any(x < a < y for x, y in asides):
            continue
        if a in disease_for:
            continue  # "no prior chemotherapy for lung cancer": the disease scope is read
        covered = all(mask[a:b]) if b > a else True
        is_cue = any(x <= a < y for x, y in cue_spans) and not all(base[a:b])
        if is_cue and any(x <= a < y for x, y in modelled + phrases):
            is_cue = False
        if (
            is_cue
            and strict
            and w in ("other", "another")
            and re.search(r"(?:\bor|\band/or|,|\bany)\s*$", low[max(0, a - 12) : a])
        ):
            continue  # "gemcitabine or other taxanes": more of what excludes
        if is_cue and (c.applies_to or (cue_cut is not None and cue_cut < a < cue_cut_end)):
            is_cue = False  # the sub-group condition is modelled (``applies_to``)
        if w in ("or", "and/or", "nor") and any(x <= a < y for x, y in phrases):
            continue  # "9 g/dL or more": a phrase the type reads
        if w in ("or", "and/or", "nor"):
            if c.group or (strict and (section == "exclusion" or c.polarity == "exclude")):
                # ("No prior chemotherapy or radiotherapy for KS": neither, read as a list)
                continue  # a list the type reads, grouped alternatives, or "exclude A or B"
            prev = in_seg[i - 1] if i > 0 else None
            nxt = in_seg[i + 1] if i + 1 < len(in_seg) else None
            listed = (
                (
                    prev is not None
                    and nxt is not None
                    and _plain_item(prev, mask, numeric)
                    and _plain_item(nxt, mask, numeric)
                )
                or (
                    # an "or" between two words another criterion of the line accounts for
                    # ("Age 18 years or older; WHO performance status <= 1") is that one's
                    prev is not None
                    and nxt is not None
                    and not (all(mask[prev[0] : prev[1]]) or all(mask[nxt[0] : nxt[1]]))
                    and all(others[prev[0] : prev[1]])
                    and all(others[nxt[0] : nxt[1]])
                )
                or (
                    not strict
                    and anytype is not None
                    and prev is not None
                    and nxt is not None
                    and prev[2] not in ("and", "or")
                    and nxt[2] not in ("and", "or")
                    and not (
                        words is not None and (words.fullmatch(prev[2]) or words.fullmatch(nxt[2]))
                    )
                    and all(anytype[prev[0] : prev[1]])
                    and all(anytype[nxt[0] : nxt[1]])
                )
            )
            if (
                listed
                and procs is not None
                and c.type.startswith("prior_therapy")
                and not (c.values or {}).get("procedures")
                and prev is not None
                and nxt is not None
                and (any(procs[prev[0] : prev[1]]) or any(procs[nxt[0] : nxt[1]]))
            ):
                listed = False  # "surgery or ... chemotherapy": the procedure is another way
            if not strict and re.search(
                r"\b(?:without|no|not|free of|absence of)\b(?:\s+[\w()-]+){0,3}\s*$",
                low[max(0, a - 50) : a],
            ):
                continue  # "without transfusion or EPO dependency": neither, a narrower need
            if (
                prev is not None
                and nxt is not None
                and _SPECIMEN_RE.fullmatch(prev[2])
                and _SPECIMEN_RE.fullmatch(nxt[2])
            ):
                continue  # "tested on tissue or plasma", "by histology or cytology": how, not what
            if (
                not strict
                and prev is not None
                and nxt is not None
                and _AGE_GROUP_RE.fullmatch(prev[2])
                and _AGE_GROUP_RE.fullmatch(nxt[2])
            ):
                continue  # "pediatric, adolescent, or young adult patients with B-ALL": who, by age
            if listed or (cue_cut is not None and a > cue_cut) or c.applies_to:
                continue
            if not strict and _in_later_part(low, a, anchors, tokens, others, mask):
                continue  # "ALK negative, stage III or IV NSCLC": the stage part's own "or"
            bad.append((a, b))
            continue
        if (
            is_cue
            and c.type == "histology"
            and c.polarity == "exclude"
            and section == "inclusion"
            and _own_exception(low, a, cue_spans, anchors, mask)
        ):
            continue  # "acute leukemia (except APL)": the exception is this criterion itself
        if (
            is_cue
            # in an exclusion, "(including adenosquamous carcinoma)" of items the type reads
            # only adds to what excludes
            and w in (_EXAMPLE_CUES if c.type in _SYMBOL_TYPES or strict else _EG_CUES)
            and _examples_explained(low, b, mask, numeric, strict)
        ):
            continue  # "(e.g., cediranib, sunitinib)", "(eg CT scan)": examples the type reads
        if is_cue and not strict and w in ("i.e", "ie") and anchors and max(anchors) < a:
            # "NSCLC with resectable (Stage IIA to select [ie, N2] Stage IIIB) disease": what
            # follows "i.e." restates the requirement named before it, never widens it
            continue
        if is_cue and not (words is not None and words.fullmatch(w)):
            bad.append((a, b))
            continue
        if not strict or covered:
            continue
        if numeric and _NUMBERISH_RE.match(w):
            continue
        if _NEGATION_RE.fullmatch(w) and a <= first_anchor:
            continue  # a negation before the criterion was read by the polarity rules
        bad.append((a, b))
    wide = r.widening.get(c.type)
    # a type whose exclusion only a permission or exception can lift ("Pregnant or lactating,
    # or planning pregnancy within 90 days": a pregnant patient is excluded whatever the rest
    # says): words left over count only when one of them widens
    if (
        wide is not None
        and c.polarity == "exclude"
        and bad
        and not any(wide.search(low[a:b]) for a, b in bad)
    ):
        bad = []
    return _runs(plain if len(plain) == len(low) else low, bad, in_seg)


# Cues that keep their force inside another alternative of an exclusion list: a condition or
# exception there may scope the whole list.
_HARD_IN_SIBLING = frozenset(
    {
        "if", "unless", "except", "excepting", "excluding", "provided", "providing", "as long as",
        "when", "whenever", "where", "until", "allowed", "allow", "allows", "permitted", "permit",
        "permits", "acceptable", "accepted", "eligible", "may", "can", "but", "however",
        "although", "though", "exception", "exceptions", "only", "otherwise", "regardless",
    }
)  # fmt: skip
_ASIDE_RE = re.compile(
    r"\((?:(?P<neg>\s*(?:no|not|without|never)\b)|(?P<incl>\s*(?:including|includes|incl\.?)\s))"
    r"[^()]*(?:\([^()]*\)[^()]*)*\)"  # one level of nested parentheses: "(G-CSF)"
)
# "for lung cancer", "for NSCLC": the disease a therapy was given for (``disease_scope``)
_FOR_ENTITY_RE = re.compile(r"\bfor\s+(?:the\s+|their\s+|this\s+)?()[a-z][\w/-]*")
_ITEM_SEP_RE = re.compile(r",\s*(?:and/or|or)\b|\band/or\b|\bor\b|,")


def _sibling_items(low: str, segs, anchors: list[int]) -> list[tuple[int, int]]:
    """Spans of the other alternatives in an exclusion list: top-level items (split on ",",
    "or", "and/or", outside parentheses) that name nothing this criterion reads. "Pregnant or
    breastfeeding, or expecting to conceive": "expecting to conceive" only adds to what
    excludes, so its words do not weaken a pregnancy NOT_MET. The last item counts only when
    "or" introduces it ("A or B, given for metastatic disease" may scope the whole list)."""
    out: list[tuple[int, int]] = []
    from matcher.eligibility.listitem import top_level_cuts

    for sa, sb in segs:
        cuts = [
            (m.start(), m.end(), "or" in m.group(0))
            for m in top_level_cuts(low, sa, sb, _ITEM_SEP_RE, word_start=True)
        ]
        if not cuts:
            continue
        items = []
        start, by_or = sa, None
        for ca, cb, is_or in cuts:
            items.append((start, ca, by_or))
            start, by_or = cb, is_or
        items.append((start, sb, by_or))
        for k, (a, b, by_or) in enumerate(items):
            if any(a <= p < b for p in anchors):
                continue
            if by_or is None and not _lead_alternative(low, a, b, items):
                continue
            if k == len(items) - 1 and not by_or:
                continue
            if k + 1 < len(items) and _EXAMPLES_OPEN_RE.match(low, items[k + 1][0]):
                continue  # "or other targeted treatment ..., such as erlotinib": its examples follow
            out.append((a, b))
    return out


def _lead_alternative(low: str, a: int, b: int, items) -> bool:
    """The first item of an exclusion list is an alternative of its own only when it is a
    clause ("Residual invasive disease following neoadjuvant therapy, or metastatic disease"):
    the list has just two items, joined by ", or", and the first has three words or more. A
    short first item is a modifier of what follows ("Uncontrolled or symptomatic brain
    metastases": "uncontrolled" narrows the metastases, it is no alternative)."""
    if len(items) < 2 or not items[1][2]:
        return False
    long = len(_TOKEN_RE.findall(low[a:b])) >= 3
    if len(items) == 2 and re.match(r",\s*(?:or|and/or)\b", low[b:]):
        return long
    # "prior exposure to any T cell co-stimulatory therapy or immune checkpoint inhibitors":
    # a first item that ends in a therapy noun of its own is an alternative, not a modifier
    return long and bool(_THERAPY_HEAD_RE.search(low[a:b]))


_THERAPY_HEAD_RE = re.compile(
    r"\b(?:therap(?:y|ies)|treatments?|agents?|inhibitors?|vaccines?|drugs?|antibod(?:y|ies)"
    r"|transplant\w*|chemotherapy|radiotherapy|surgery)\s*$"
)


# an item that opens an example list ("such as erlotinib, sunitinib"): the examples belong to
# the item before it
_EXAMPLES_OPEN_RE = re.compile(
    r"\s*(?:such as|e\.\s?g\.?|eg\b|including|for example|for instance|like|namely)"
)
# cues of one sentence that reach the other sentences of a line
_REACHING_CUE_RE = re.compile(
    r"if|unless|except|excepting|excluding|other than|apart from|besides|provided|providing|"
    r"as long as|when|whenever|where|until|allowed|allow|allows|permitted|permit|permits|"
    r"permissible|acceptable|accepted|eligible|may|can|could|might|optional|optionally|"
    r"regardless|irrespective|independent of|but|however|although|though|exception|exceptions|"
    r"otherwise|alternatively|whose|.*(?:cohort|arm|part|phase|indication).*|(?:for|in) .*"
)
# how a fact was found, not what: an "or" between two of these is no alternative of the criterion
_SPECIMEN_RE = re.compile(
    r"tissue|tumou?r|plasma|blood|serum|ctdna|cfdna|liquid|histolog\w*|cytolog\w*|patholog\w*|"
    r"biops\w*|imaging|ihc|immunohistochemistry|fish|ngs|pcr|rt-pcr|sequencing|effusion|fluid|"
    r"marrow|sample|samples|specimen|specimens|archival|fresh|local|central|locally|centrally|"
    r"hematology|haematology|ct|mri|pet|csf|cerebrospinal|peripheral"
)
# age groups of a population: an "or" between two is no alternative of a requirement (the age
# criterion reads the ages)
_AGE_GROUP_RE = re.compile(
    r"p(?:a)?ediatric|adolescents?|young|adults?|children|child|infants?|elderly|older|aya"
)
_EG_CUES = frozenset({"e.g", "eg", "i.e", "ie"})  # "(eg CT scan)": never "including X" (adds X)
_EXAMPLE_CUES = frozenset({"e.g", "eg", "i.e", "ie", "such", "including", "include", "includes"})


_OWN_EXCEPT_RE = re.compile(r"except(?: for)?|excepting|excluding|other than|apart from|besides")


def _own_exception(low: str, at: int, cue_spans, anchors: list[int], mask: list[bool]) -> bool:
    """True when the cue at ``at`` opens a parenthesised exception that names exactly the
    diagnoses of an inclusion line's excluded histology ("acute leukemia (except APL)", "soft
    tissue sarcoma (except GIST and Kaposi's)"): every word up to ")" is explained and every
    mention of the criterion stands there. The cue is then what the criterion reads, not a
    widening. An unparenthesised exception may run on past its list; it stays a cue."""
    span = next(((x, y) for x, y in cue_spans if x <= at < y), None)
    if span is None or not _OWN_EXCEPT_RE.fullmatch(low[span[0] : span[1]]):
        return False
    opened = low.rfind("(", 0, at)
    if opened < 0 or low.rfind(")", 0, at) > opened or low[opened + 1 : at].strip():
        return False  # the cue must open the parenthesis: "(except ...)"
    close = low.find(")", span[1])
    if close < 0 or not anchors or not all(span[1] <= x < close for x in anchors):
        return False
    for m in _TOKEN_RE.finditer(low, span[1], close):
        if m.group(0) in ("and", "or", "nor") or all(mask[m.start() : m.end()]):
            continue
        return False
    return True


def _examples_explained(
    low: str, end: int, mask: list[bool], numeric: bool, strict: bool = True
) -> bool:
    """True when the words after an example cue, up to ")" or ";", are all explained. For a
    requirement (``strict`` False) the list may end before a phrase of its own ("including
    anti-PD-1 or anti-PD-L1 for at least two courses"): what follows narrows the requirement,
    it cannot widen it."""
    stop = len(low)
    for ch in (")", ";"):
        i = low.find(ch, end)
        if i >= 0:
            stop = min(stop, i)
    toks = [m for m in _TOKEN_RE.finditer(low, end, stop)]
    if not toks:
        return False
    seen = False
    for m in toks:
        w = m.group(0)
        if w in ("or", "and", "as", "but", "not", "limited", "to", "etc") or (
            strict and w in ("other", "another")
        ):
            continue  # ("..., anti-PD-L1 or other antibodies": more of what excludes)
        if not (all(mask[m.start() : m.end()]) or (numeric and _NUMBERISH_RE.match(w))):
            return bool(not strict and seen and w in _LIST_END_WORDS)
        seen = True
    return True


# words that end an example list and open a phrase of the requirement's own
_LIST_END_WORDS = frozenset({"for", "within", "during", "at", "in", "on", "before", "after"})


def _own(tok, mask, filler, numeric: bool) -> bool:
    """The token is something this criterion reads (its words, an entity, its numbers), not
    filler and not another type's word."""
    if tok is None:
        return False
    a, b, w = tok
    if numeric and _NUMBERISH_RE.match(w):
        return True
    return all(mask[a:b]) and not all(filler[a:b])


def _plain_item(tok, mask, numeric: bool) -> bool:
    a, b, w = tok
    return all(mask[a:b]) or (numeric and bool(_NUMBERISH_RE.match(w)))


def _runs(low: str, bad: list[tuple[int, int]], tokens) -> list[str]:
    """Join adjacent left-over words into quoted runs ("if not suitable for ...")."""
    if not bad:
        return []
    idx = {a: i for i, (a, _b, _w) in enumerate(tokens)}
    runs: list[list[int]] = []
    for a, _b in bad:
        i = idx.get(a)
        if i is None:
            continue
        if runs and i - runs[-1][-1] <= 2:
            runs[-1].append(i)
        else:
            runs.append([i])
    out = []
    for run in runs:
        a = tokens[run[0]][0]
        b = tokens[run[-1]][1]
        out.append(low[a:b])
    return out
