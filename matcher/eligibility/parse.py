"""Parsing: one line into typed criteria, one trial into a ``ParsedTrial`` (cached)."""

from __future__ import annotations

import hashlib
import json
import re
from collections import OrderedDict
from typing import Any

from matcher.criteria_text import CriteriaLine, normalize, split_criteria
from matcher.eligibility.age import _age
from matcher.eligibility.biomarker import _any_status_asides, _biomarker
from matcher.eligibility.brain import _brain
from matcher.eligibility.clause import LAB_ANCHORS, account_line, defines_own_term, definition_spans
from matcher.eligibility.clause import rules as clause_rules
from matcher.eligibility.cohort import _SCOPED_TYPES, _cohort, _disease_scope, _histology_sublists
from matcher.eligibility.common import _safe_is_a
from matcher.eligibility.extent import _extent, _measurable
from matcher.eligibility.histology import _histology
from matcher.eligibility.hla import _hla
from matcher.eligibility.labs import _labs
from matcher.eligibility.model import ABOUT_OTHER, BRANCH_SEP, PART_SCOPE, Criterion, ParsedTrial
from matcher.eligibility.performance import _ps
from matcher.eligibility.pregnancy import _pregnancy
from matcher.eligibility.sex import _sex_text
from matcher.eligibility.site import _site
from matcher.eligibility.stage import _stage
from matcher.eligibility.status import _cml_phase, _status
from matcher.eligibility.text import (
    _CTX_ANYOF_RE,
    _DIAG_CACHE,
    _I,
    _ONCO_RE,
    _Ctx,
    _find_diagnoses,
)
from matcher.eligibility.therapy import _prior_therapy, _washout
from matcher.trial import Trial

# a PDQ-style sub-heading naming the age, and a bare bound under it ("18 and over", "Under 70")
_AGE_HEADING_RE = re.compile(r"\s*age\s*:?\s*", re.IGNORECASE)  # PDQ writes it bare: "Age"
# the PDQ sub-heading over a bare performance scale ("Performance status", then "WHO 0-2")
_PS_HEADING_RE = re.compile(r"\s*performance status\s*:?\s*", re.IGNORECASE)
_PS_WORDS_RE = re.compile(r"\bperformance\b", re.IGNORECASE)
# a bare PDQ sub-heading: the lines under it, to the next one, are about what it names
_PDQ_SUBHEADING_RE = re.compile(
    r"\s*(?:age|sex|menopausal status|performance status|life expectancy|hematopoietic|"
    r"hepatic|renal|cardiovascular|pulmonary|neurologic|immunologic|immunology|"
    r"gastrointestinal|other|biologic therapy|chemotherapy|endocrine therapy|radiotherapy|"
    r"surgery)\s*:?\s*",
    re.IGNORECASE,
)
_BARE_BOUND = (
    r"(?:\d{1,3}\s*(?:to|-|and|or)\b|(?:over|under|above|below|at least|up to|>=|<=|>|<)\s*\d)"
)
_BARE_AGE_RE = re.compile(r"\s*" + _BARE_BOUND, re.IGNORECASE)
# a bare bound after the label "Age:" on the same line ("Age: 18 and over")
_AGE_LABEL_RE = re.compile(r"\s*age\s*:\s*(?=" + _BARE_BOUND + ")", re.IGNORECASE)
# "≥ 12 weeks", "≥ 28 days": ages the age parser does not read (left as written)
_OTHER_AGE_UNIT_RE = re.compile(r"\d\s*(?:weeks?|wks?|days?|hours?)\b", re.IGNORECASE)
_WORD_BOUND = [
    (re.compile(r"\b(?:over|above|older than|greater than)\s+(?=\d)", re.IGNORECASE), ">"),
    (re.compile(r"\b(?:under|below|younger than|less than)\s+(?=\d)", re.IGNORECASE), "<"),
    (re.compile(r"\bat least\s+(?=\d)", re.IGNORECASE), ">="),
    (re.compile(r"\bup to\s+(?=\d)", re.IGNORECASE), "<="),
]


def _as_age_bound(plain: str) -> str:
    """ "18 and over" -> "18 years and over", "Over 65" -> "> 65 years", "3 to 21" -> "3 to
    21 years": the bare bound under an "Age" heading in the words the age parser reads."""
    for rx, sign in _WORD_BOUND:
        plain = rx.sub(sign + " ", plain)
    return re.sub(
        r"\b(\d{1,3})\b(?!\s*(?:years?|yrs?|months?|weeks?|wks?|days?|hours?|[.\d]|(?:to|-)\s*\d))",
        r"\1 years",
        plain,
    )


MAX_LINE_CHARS = 5000  # a criteria line longer than this is not parsed (listed to read)


_LAB_WORD_RE = re.compile(
    "|".join(
        [
            *LAB_ANCHORS.values(),
            r"(?:liver|hepatic|renal|kidney|bone marrow|marrow)\s+function",
            r"h(?:a)?ematolog\w*",
            r"\bwbc\b|white blood",
            r"\bulu?n\b",
        ]
    ),
    re.I,
)


_EXTENT_WORD_RE = re.compile(r"metasta\w*|unresectable|locally advanced|advanced|inoperable", _I)


_OR_WHO_RE = re.compile(r"\bor (?:those |patients |subjects |participants )?who\b", _I)
_SUBJECT_RULE_RE = re.compile(
    r"\W*(?:patients|subjects|participants|those|individuals|persons)\s+(?:with|who have|who had)\s+"
    r"(?P<subject>[^.;:]{3,160}?)\s*,?\s+(?:must|should|shall|require|requires|will require"
    r"|need|needs|are required|have to)\b",
    _I,
)


def _after_lab(plain: str, at: list[int]) -> bool:
    """Every one of the positions ``at`` comes after the line's first lab word."""
    lab = _LAB_WORD_RE.search(plain)
    at = [i for i in at if i >= 0]
    return lab is not None and bool(at) and min(at) > lab.start()


def _disease_after_lab(plain: str, vocab: Any) -> bool:
    """Every diagnosis the line names comes after its first lab word."""
    low = plain.lower()
    return _after_lab(plain, [low.find(m.lower()) for _d, m in _find_diagnoses(vocab, plain)])


def parse_line(
    text: str,
    section: str = "inclusion",
    *,
    vocab: Any = None,
    context: str | None = None,
    oncology: bool = True,
) -> list[Criterion]:
    """Parse one criteria line into typed criteria (or one ``unparsed`` entry).

    ``text`` is the line as written; ``section`` "inclusion" or "exclusion"; ``context``
    the parent line or sub-heading (plain text); ``oncology`` enables the bare word
    "advanced" as a disease-extent cue (set per trial from its conditions).
    """
    if vocab is None:
        vocab = _default_vocab()
    if len(text) > MAX_LINE_CHARS:
        # no registry line comes near this (the longest seen is about 3,000 characters): a
        # pasted document or a corrupt record; read it, never hang on it
        base = "require" if section == "inclusion" else "exclude"
        return [
            Criterion(section, text, "unparsed", base, {"too_long": len(text)}, context=context)
        ]
    plain = normalize(text)
    if (
        context
        and _AGE_HEADING_RE.fullmatch(context)
        and _BARE_AGE_RE.match(plain)
        and not _OTHER_AGE_UNIT_RE.search(plain)
    ):
        # a PDQ sub-heading "Age" over "18 and over" / "Over 65": the heading is the line's
        # subject
        plain = "Age " + _as_age_bound(plain)
    elif (m := _AGE_LABEL_RE.match(plain)) and not _OTHER_AGE_UNIT_RE.search(plain):
        plain = "Age " + _as_age_bound(plain[m.end() :])  # "Age: 18 and over"
    elif context and _PS_HEADING_RE.fullmatch(context) and not _PS_WORDS_RE.search(plain):
        plain = "Performance status " + plain  # PDQ: "Performance status", then "WHO 0-2"
    c = _Ctx(plain, section, context, vocab, oncology)
    found: list[tuple] = []
    found += _ps(c)
    found += _age(c)
    found += _histology(c)
    found += _extent(c)
    found += _measurable(c)
    found += _brain(c)
    found += _pregnancy(c)
    found += _labs(c)
    wash = _washout(c)
    found += _prior_therapy(c, bool(wash))
    found += wash
    found += _biomarker(c)
    found += _status(c)
    found += _stage(c)
    found += _cml_phase(c)
    found += _site(c)
    found += _hla(c)
    found += _sex_text(c)
    if not found:
        return [Criterion(section, text, "unparsed", c.base, {}, context=context)]
    crits = []
    for item in found:
        crit = Criterion(section, text, item[0], item[1], item[2], context=context)
        for k, v in (item[3] if len(item) > 3 else {}).items():
            setattr(crit, k, v)
        crits.append(crit)
    if section == "exclusion" and any(x.type == "biomarker" for x in crits):
        # "HER2-positive gastric carcinoma" / "NSCLC without known ALK rearrangement" in the
        # exclusion section: the histology only qualifies the molecular finding
        crits = [x for x in crits if not (x.type == "histology" and x.polarity == "exclude")]
    if any(x.type == "organ_function" for x in crits):
        # "ALT < 2x ULN unless related to metastatic breast cancer to the liver", "bilirubin
        # <= 1.5 x ULN unless due to Gilbert's syndrome or CML", "AST <= 5 x ULN in patients
        # with liver or metastatic disease": a disease or extent named after the lab
        # qualifies the lab's limit; it is no rule of the line
        if _disease_after_lab(c.plain, vocab):
            crits = [x for x in crits if x.type != "histology"]
        if _after_lab(c.plain, [m.start() for m in _EXTENT_WORD_RE.finditer(c.plain)]):
            crits = [x for x in crits if x.type != "disease_extent"]
    if section == "inclusion" and _BOTH_WAYS_RE.search(c.plain):
        # "metastatic squamous or non-squamous NSCLC": both kinds are admitted, so the
        # "non-squamous" is no exclusion of squamous carcinoma
        crits = [x for x in crits if not (x.type == "histology" and x.polarity == "exclude")]
        if not crits:
            return [Criterion(section, text, "unparsed", c.base, {}, context=context)]
    rule = _SUBJECT_RULE_RE.match(c.plain)
    if rule and not _find_diagnoses(vocab, rule.group("subject")):
        # "Subjects with persistent or relapsed MRD ... require verification of MRD on two
        # occasions", "Patients with resected disease must have ...": the subject names the
        # patients the rule is for, and the rule holds for them only
        for crit in crits:
            crit.conditional = True
    found_cohort = _cohort(c)
    if found_cohort:
        cohort, qualifier = found_cohort
        for crit in crits:
            if (
                crit.type == "histology"
                and crit.polarity == "require"
                and set(crit.values.get("diagnoses") or []) <= set(cohort)
            ):
                crit.values["cohort"] = True
            crit.applies_to = list(cohort)
            crit.applies_qualifier = qualifier
    if any(x.type in _SCOPED_TYPES for x in crits):
        scope = _disease_scope(vocab, text, context, section)
        for crit in crits:
            if crit.type in _SCOPED_TYPES and scope:
                crit.disease_scope = scope
    defs = definition_spans(c.plain)
    if defs:
        # what a definition says is what a term of the line means: a criterion found only
        # inside it is no rule of its own
        outside = parse_line(
            _blank(c.plain, defs), section, vocab=vocab, context=context, oncology=oncology
        )
        kept = {_definition_key(x) for x in outside}
        named_outside = {
            d for x in outside if x.type == "histology" for d in x.values.get("diagnoses") or []
        }
        for crit in crits:
            dx = crit.values.get("diagnoses") if crit.type == "histology" else None
            if dx and named_outside & set(dx) and not set(dx) <= named_outside:
                # "Smoldering MM, defined as asymptomatic MM with ...": the myeloma named in
                # the definition says what smouldering myeloma is; it is not excluded itself
                crit.values = {**crit.values, "diagnoses": [d for d in dx if d in named_outside]}
            if _definition_key(crit) in kept or any(
                # "Adequate organ function defined as: ANC >= 1500/uL": the term is this
                # criterion's own, so its definition is the rule
                defines_own_term(crit.type, c.plain, a)
                for a, _b in defs
            ):
                continue
            crit.in_definition = True
    if context and (_EXAMPLES_CONTEXT_RE.match(context) or _ELIGIBLE_INCLUDING_RE.search(context)):
        # the lines under "Examples include but are not limited to:" illustrate the line
        # above them; an example is no rule of its own
        for crit in crits:
            crit.in_definition = True
    _group_alternatives(crits, c.s)
    # an aside that frees other markers ("(any PR and HER2 status is allowed)") is read:
    # its "allowed" widens no other criterion of the line
    acc_text = _blank(c.plain, _any_status_asides(c.plain))
    for crit, acc in zip(
        crits, account_line(acc_text, section, crits, vocab, context), strict=True
    ):
        crit.unexplained = list(acc.unexplained)
        crit.later_step = acc.later_step
    if section == "inclusion" and (other_subject := _OR_WHO_RE.search(c.plain)):
        # "Patients with cardiac disease (EF < 50%), or who have received > 450 mg/m2 of
        # doxorubicin": a second subject is another way in
        for crit in crits:
            if other_subject.group(0) not in crit.unexplained:
                crit.unexplained = [*crit.unexplained, other_subject.group(0)]
    if (below := _DEFINED_BELOW_RE.search(c.plain)) is not None:
        for crit in crits:
            note = below.group(0).strip()
            if note not in crit.unexplained:
                crit.unexplained = [*crit.unexplained, note]
    ps = [x for x in crits if x.type == "performance_status" and x.polarity == "require"]
    if len(
        {(x.values.get("scale"), x.values.get("min"), x.values.get("max")) for x in ps}
    ) > 1 and (len({x.values.get("scale") for x in ps}) == 1):
        # "ECOG 0~1 (amputation patient's PS score is 0~2)": a second range of the same scale
        # on one line is a sub-group's; which one is the patient's is not read
        for x in ps:
            x.group = x.group or f"ps-range:{id(ps[0])}"
    exempt = _exempting_header(context) if context else None
    if exempt and section == "inclusion" and _PERMISSION_ONLY_RE.match(exempt.group(0)):
        exempt = None  # "The following are eligible:" over inclusion lines lists ways in
    if exempt:
        # the line is one of the exemptions its parent lists: what it names is let in, so a
        # patient it describes is no exclusion by it
        note = f"listed under an exemption (“{exempt.group(0).strip()}”)"
        for crit in crits:
            if note not in crit.unexplained:
                crit.unexplained = [*crit.unexplained, note]
    _conjunction(crits, c.plain, vocab)
    trailing = _TRAILING_COMPARATOR_RE.search(c.plain)
    if trailing:
        # "ECOG performance status 2≤": a comparator after its number; which way it goes
        # is not written the usual way
        for x in crits:
            if x.type in _COMPARED_TYPES:
                x.unexplained = [*x.unexplained, trailing.group(0).strip()]
    bare = _BARE_EQUALS_RE.search(c.plain)
    if bare:
        # "subjects =18 years of age", "Serum creatinine = 1.5 x UNL": a comparator the copy
        # lost (">=" / "<=" printed as "="); which way the limit goes is not written
        for x in crits:
            if x.type in _COMPARED_TYPES and _equality(x):
                x.unexplained = [*x.unexplained, bare.group(0).strip()]
    if section == "exclusion" and any(x.polarity == "exclude" for x in crits):
        # "Documented KRAS G12C mutation and previously untreated with sotorasib": an exclusion
        # of a sub-group (G12C) that read alone would require sotorasib of every patient; a
        # requirement read from an exclusion line beside what the line excludes holds only
        # for that sub-group
        for x in crits:
            if x.polarity == "require" and x.type.startswith("prior_therapy"):
                x.conditional = True
    return crits


_EXAMPLES_CONTEXT_RE = re.compile(
    r"^\W*(?:(?:some\s+)?examples?\b|for (?:example|instance)\b|e\.\s?g\.?(?:\s|,|:|$)|such as\b)"
    r"[^.;]{0,60}:?\s*$",
    _I,
)
# An exclusion's sub-list of what it exempts: "History of other malignancy, except for the
# following:", "... Exceptions include the following:", "The following are allowed:"
_EXEMPTING_HEADER_RE = re.compile(
    r"\b(?:except(?:ions?)?|excepting|excluding|other than|unless(?! otherwise)|apart from|not including"
    r"|with the exception of|allowed|permitted|acceptable|eligible|may (?:be )?(?:enrolled|included))\b"
    r"[^.;:]{0,80}:\s*$",
    _I,
)


def _exempting_header(context: str) -> re.Match | None:
    """The exception or permission that a parent line opens its sub-list with (not "... are
    not eligible:", which lists what excludes)."""
    for m in _EXEMPTING_HEADER_RE.finditer(context):
        if not re.search(r"\b(?:not|never|no longer)\s+(?:be\s+)?$", context[: m.start()], _I):
            return m
    return None


_PERMISSION_ONLY_RE = re.compile(
    r"(?:allowed|permitted|acceptable|eligible|may (?:be )?(?:enrolled|included))\b", _I
)
# "All osteosarcoma patients seen at COG institutions are eligible, including the following:"
# heads examples of who is eligible, not rules each patient must meet
_ELIGIBLE_INCLUDING_RE = re.compile(
    r"\b(?:eligible|allowed|permitted|may (?:be )?(?:enrolled|included))\b[^.;:]{0,40}"
    r"\binclud(?:ing|es?)\b[^.;:]{0,40}:\s*$",
    _I,
)
# "No evidence of metastatic disease, defined as any of the following:": the term the line
# names is defined by the sub-list under it
_DEFINED_BELOW_RE = re.compile(
    r"\b(?:defined|as defined|characteri[sz]ed)\s+(?:as|by)\b[^.;]{0,40}:\s*$", _I
)
_TRAILING_COMPARATOR_RE = re.compile(r"\d\s*(?:[≤≥]|[<>]=?)(?=\s*(?:[.;,)]|$))")
_BARE_EQUALS_RE = re.compile(r"(?<![<>=!≤≥])=(?!=)\s*\d[\d.,]*")
_COMPARED_TYPES = frozenset({"age", "organ_function", "performance_status"})


def _equality(c: Criterion) -> bool:
    """The criterion reads an exact value (the "=" taken as equality)."""
    v = c.values
    if c.type == "organ_function":
        return v.get("op") == "="
    if c.type == "age":
        return v.get("min_years") is not None and v.get("min_years") == v.get("max_years")
    return v.get("min") is not None and v.get("min") == v.get("max")


# types whose values a definition adds to (drugs, labs, markers): compared value by value
_DEFINITION_VALUE_TYPES = frozenset(
    {"prior_therapy_required", "prior_therapy_excluded", "washout", "organ_function", "biomarker"}
)


def _definition_key(crit: Criterion) -> tuple:
    if crit.type in _DEFINITION_VALUE_TYPES:
        return (crit.type, crit.polarity, json.dumps(crit.values, sort_keys=True, default=str))
    return (crit.type, crit.polarity)


def _blank(plain: str, spans: list[tuple[int, int]]) -> str:
    out = list(plain)
    for a, b in spans:
        out[a:b] = " " * (b - a)
    return "".join(out)


# "squamous or non-squamous", "non-small cell or small cell": a kind and its negation, both
_BOTH_WAYS_RE = re.compile(
    r"\b([a-z][a-z-]{3,})\s+(?:or|and|and/or|/)\s+non-?\s?\1\b"
    r"|\bnon-?\s?([a-z][a-z-]{3,})\s+(?:or|and|and/or|/)\s+\2\b",
    _I,
)


# Types an exclusion line can state together ("metastatic breast cancer", "relapsed AML",
# "HER2-positive gastric cancer"): the line excludes when every part holds.
_CONJUNCT_TYPES = frozenset(
    {
        "histology",
        "disease_extent",
        "biomarker",
        "disease_status",
        "brain_metastases",
        "stage",
        "cml_phase",
        "primary_site",
    }
)
_CONJ_BREAK_RE = re.compile(r"\bor\b|\band/or\b|;|,|\bnor\b|\beither\b|\band\b", _I)


def _type_word(r: Any, ctype: str, tok: str) -> bool:
    """``tok`` is a word criterion type ``ctype`` models (its clause words; for a primary
    site, a site of ``primary_sites.yaml`` too)."""
    w = r.words.get(ctype)
    if w is not None and w.fullmatch(tok):
        return True
    if ctype == "primary_site":
        from matcher.eligibility.site import primary_sites

        return bool(primary_sites().pattern.fullmatch(tok))
    return False


def _conjunction(crits: list[Criterion], plain: str, vocab: Any) -> None:
    """An exclusion stated as one phrase of several criteria ("Patients with metastatic breast
    cancer"): each part alone leaves the other's words unexplained (so none could exclude).
    When every part's left-over words are another part's, the parts form one conjunction
    group: the line excludes only when every part is NOT_MET (``verdict._combine``)."""
    parts = [
        x for x in crits if x.type in _CONJUNCT_TYPES and x.polarity == "exclude" and not x.group
    ]
    if len(parts) < 2 or len({x.type for x in parts}) < 2:
        return
    r = clause_rules()
    low = plain.lower()
    for m in _CONJ_BREAK_RE.finditer(low):
        before = re.findall(r"[a-z0-9/+-]+", low[: m.start()])[-1:]
        after = re.findall(r"[a-z0-9/+-]+", low[m.end() :])[:1]
        inner = (
            before
            and after
            and any(
                _type_word(r, x.type, before[0]) and _type_word(r, x.type, after[0]) for x in parts
            )
        )  # "relapsed or refractory", "hand, foot or head-neck": one part's own alternative
        if not inner:
            return  # alternatives of the line, not one phrase
    for x in parts:
        others = [o for o in parts if o is not x]
        for run in x.unexplained:
            for tok in re.findall(r"[a-z0-9][a-z0-9/+-]*", run.lower()):
                if r.filler.fullmatch(tok):
                    continue
                if any(_type_word(r, o.type, tok) for o in others):
                    continue
                if vocab is not None and (
                    vocab.find_diagnoses(tok) or re.fullmatch(r"[a-z]*\d[a-z0-9]*", tok)
                ):
                    continue
                return  # a word no part models: the line stays to read
    gid = f"and:{id(parts[0])}"
    for x in parts:
        x.unexplained = []
        x.group = gid


def _group_alternatives(crits: list[Criterion], s: str) -> None:
    """Mark "X or Y" alternatives of one kind on one line (see module docstring)."""
    if not re.search(r"\bor\b", s):
        return
    ps = [c for c in crits if c.type == "performance_status"]
    # "Karnofsky (> 16 years) or Lansky (<= 16 years)": scales split by age are not
    # alternatives; each applies to its own age group
    if len(ps) > 1 and not all(c.values.get("age_op") for c in ps):
        for c in ps:
            c.group = "line:ps"
    renal = [
        c
        for c in crits
        if c.type == "organ_function"
        and c.values.get("lab") in ("creatinine", "creatinine_clearance")
    ]
    if len(renal) > 1:
        for c in renal:
            c.group = "line:renal"
    # "ALK negative, or ALK positive after progression on a TKI": one marker required absent
    # and present on the same line are alternatives (the line fails only when both do)
    markers = [c for c in crits if c.type == "biomarker" and not c.group]
    for gene in {g for c in markers for g in c.values.get("genes") or []}:
        both = [c for c in markers if gene in (c.values.get("genes") or [])]
        if len({c.polarity for c in both}) > 1:
            for c in both:
                c.group = f"line:marker:{gene}"


# =========================================================================================
# Trials
# =========================================================================================
_CACHE: OrderedDict[tuple[str, str | None, str], ParsedTrial] = OrderedDict()
_CACHE_MAX = 20000


_VOCAB_MEMO: dict[str | None, Any] = {}


def _default_vocab() -> Any:
    """The bundled vocabulary, looked up once per ``TRIALMATCH_CRITERIA`` setting
    (``load_vocab`` itself checks the folder on disk on every call)."""
    import os

    key = os.environ.get("TRIALMATCH_CRITERIA")
    got = _VOCAB_MEMO.get(key)
    if got is None:
        from matcher.vocab import load_vocab

        got = _VOCAB_MEMO[key] = load_vocab()
    return got


def parse_trial(record: dict, vocab: Any = None) -> ParsedTrial:
    """Parse one record (v2 study dict) into a ``ParsedTrial``.

    Cached by (NCT id, last update, ``record_digest``) when the default vocabulary is used,
    so the batch job parses each record version once, and a record whose content changed
    without a new last-update date is parsed again. Raises ``RecordError`` only for a record without NCT
    id; any criteria text is accepted (untyped lines become ``unparsed``).
    """
    use_cache = vocab is None
    trial_vocab = vocab if vocab is not None else _default_vocab()
    key = None
    if use_cache:
        ps = record.get("protocolSection") if isinstance(record, dict) else None
        ident = ps.get("identificationModule", {}) if isinstance(ps, dict) else {}
        status = ps.get("statusModule", {}) if isinstance(ps, dict) else {}
        nct = ident.get("nctId") if isinstance(ident, dict) else None
        lu = (
            (status.get("lastUpdatePostDateStruct") or {}).get("date")
            if isinstance(status, dict)
            else None
        )
        if nct:
            key = (str(nct).upper(), lu, record_digest(record))
            hit = _CACHE.get(key)
            if hit is not None:
                _CACHE.move_to_end(key)
                return hit
    trial = Trial.from_record(record, vocab=trial_vocab)
    parsed = parse_trial_model(trial, trial_vocab)
    if key is not None:
        _CACHE[key] = parsed
        if len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)
    return parsed


def record_digest(record: dict) -> str:
    """Content hash of the parts of a record a ``ParsedTrial`` is built from (the protocol
    section and the derived MeSH browse modules; not results). Part of the parse cache key,
    so a record edited without a new last-update date is parsed again."""
    ps = record.get("protocolSection") if isinstance(record, dict) else None
    derived = record.get("derivedSection") if isinstance(record, dict) else None
    browse = (
        {k: v for k, v in derived.items() if k.endswith("BrowseModule")}
        if isinstance(derived, dict)
        else None
    )
    blob = json.dumps([ps, browse], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(blob.encode("utf-8"), digest_size=12).hexdigest()


def clear_cache() -> None:
    """Forget cached parses (tests; a long-running process after a vocabulary change)."""
    _CACHE.clear()
    _DIAG_CACHE.clear()
    _VOCAB_MEMO.clear()


def _is_oncology(trial: Trial, vocab: Any) -> bool:
    text = " ".join(
        [*trial.conditions, *trial.keywords, trial.title or "", trial.official_title or ""]
    )
    if _ONCO_RE.search(text):
        return True
    return bool(vocab is not None and vocab.find_diagnoses(text))


def _criteria_name_a_cancer(lines: list[CriteriaLine], vocab: Any) -> bool:
    """A record without conditions or title whose first inclusion lines name a cancer it
    requires ("Histologically confirmed diagnosis of stage IV NSCLC"), often after consent, age and
    performance lines: an oncology trial."""
    first = [x.plain for x in lines if x.section == "inclusion" and not x.is_heading][:6]
    text = " ".join(first)
    if not re.search(
        r"\b(?:histolog|cytolog|patholog|diagnos|confirmed|proven|documented)", text, _I
    ):
        return False
    return bool(_ONCO_RE.search(text) or (vocab is not None and vocab.find_diagnoses(text)))


_CONDITIONAL_LINE_RE = re.compile(
    # "Adult arm:", "Dose escalation part:" (not "All arms:", "Both parts:", nor the
    # "Eastern Cooperative Oncology Group (ECOG)" of a performance line)
    r"\s*(?:(?!(?:all|both|every|each|any)\b)[\w-]+\s+){1,3}?(?:sub-?study|cohort|part|arm|phase)s?"
    r"\s*(?:only)?\s*[:\uff1a]"
    r"|\s*(?:for|in|if|when)\b|\s*(?:sub-?study|cohort|part|arm|group|phase)s?\s*[\w.-]{0,6}(?:\s*(?:,|and|&|/)\s*[\w.-]{1,6})*"
    r"\s*(?:only)?\s*[:(\uff1a]"
    r"|\s*(?:patients|participants|subjects) (?:in|enrolled in|assigned to) (?:cohort|part|arm|group)"
    # "Subjects in CR must have a history of chemotherapy refractory disease ...": a rule for
    # the patients in one response state
    r"|\s*(?:patients|participants|subjects|those)\s+(?:who are\s+)?in\s+(?:a\s+|an\s+)?"
    r"(?:first\s+|second\s+|1st\s+|2nd\s+|morphologic\s+|haematologic\s+|hematologic\s+)?"
    r"(?:cr\d?|cri|complete (?:remission|response)|remission|partial (?:remission|response)|vgpr)\b"
    r"[^.;]{0,40}?\b(?:must|should|need|needs|are required|is required|will)\b",
    _I,
)


# a parent line that names a sub-group ("Patients with relapsed disease", "Women who ...")
_SUBGROUP_LEAD_RE = re.compile(
    r"\s*(?:(?:patients|participants|subjects|those|women|men|children|adults|individuals|"
    r"females?|males?)\s+(?:with|who|whose|in|aged|over|under|older|younger|receiving|treated|"
    r"that|having|previously|not|on)\b|(?:for|in|if|when|where|unless|after|before)\b)",
    _I,
)


# a parent naming a kind of patient ("Favorable-risk patients meeting the following
# criteria:", "Unfavorable-risk patients ineligible for study window therapy ..."): the lines
# under it are that group's, even when it lists them as "the following criteria"
_QUALIFIED_GROUP_RE = re.compile(
    r"\s*(?!(?:all|the|eligible|study|each|every|any|such|these|those|other)\b)"
    r"(?:[\w-]+\s+){1,3}?(?:patients|participants|subjects)\b"
    r"(?!\s+(?:must|should|shall|will|need|needs|are required|have to|has to)\b)",
    _I,
)


def _under_qualified_group(line: CriteriaLine) -> bool:
    parent = line.parent
    while parent is not None:
        if not parent.is_heading and _QUALIFIED_GROUP_RE.match(parent.plain):
            return True
        parent = parent.parent
    return False


_OWN_ALTERNATION = frozenset({"or", "and/or", "either", "nor", "neither"})


def _elaborated_only(line: CriteriaLine, cues: re.Pattern) -> bool:
    """A complete criterion whose sub-bullets only say more of it ("Diagnosis of relapsed
    neuroblastoma", then "* Histologically confirmed ..."): a rule for everyone, not the
    header of a sub-group. Not when the parent ends with ":" or names a sub-group, or when
    any line under it could widen it (a cue: "allowed", "except", "or", "if" ...)."""
    if line.plain.rstrip().endswith((":", "-")) or _SUBGROUP_LEAD_RE.match(line.plain):
        return False
    stack = list(line.children)
    while stack:
        child = stack.pop()
        low = child.plain.lower()
        # a child's own "or" ("histologically confirmed and/or tumour cells in marrow") is
        # how the parent is shown, not an alternative to it; "or ..." at its start is one
        if (
            any(m.group(0) not in _OWN_ALTERNATION for m in cues.finditer(low))
            or low.startswith(("or ", "and/or "))
            or _SUBGROUP_LEAD_RE.match(child.plain)
        ):
            return False
        stack += child.children
    return True


def is_oncology_trial(trial: Trial, vocab: Any = None) -> bool:
    """True when the trial's conditions, keywords or titles name a cancer."""
    return _is_oncology(trial, vocab if vocab is not None else _default_vocab())


# A line that opens a cohort's (part's, arm's, indication's) own criteria: "Cohort A: STS",
# "b. Indication B - LMS:", "Part 2 (expansion):". The lines after it, up to the end of the
# section, are scoped to that sub-group: their NOT_MET becomes UNKNOWN.
_COHORT_WORD = r"(?:cohorts?|parts?|arms?|groups?|indications?|strat(?:um|a)|sub-?stud(?:y|ies))"
_COHORT_ID = r"(?:[a-z]|\d{1,2}|i{1,3}|i?v|[1-4][ab])"
_COHORT_MARKER_RE = re.compile(
    rf"\s*(?:[a-z0-9]{{1,2}}[.)]\s*)?(?:{_COHORT_WORD}|modules?|phase)\s*{_COHORT_ID}\b\s*"
    r"(?:[-:(\u2013]|$)",
    _I,
)
# a heading for every cohort at once: "for therapy group A and group B", "Groups A and B",
# "All cohorts:", "For both arms"
_ALL_COHORTS_RE = re.compile(
    rf"\b{_COHORT_WORD}\s*{_COHORT_ID}\s*(?:,|and|&|\+|/)\s*(?:{_COHORT_WORD}\s*)?{_COHORT_ID}\b"
    rf"|^\W*(?:for\s+|in\s+)?(?:all|both|every|each)\s+(?:of\s+the\s+)?"
    rf"(?:{_COHORT_WORD}|phases?|stages?|steps?|patients|participants|subjects)\b",
    _I,
)
# the one cohort a section heading is for: "Inclusion Criteria for Cohort 2", "(Part B)"
_HEADING_COHORT_RE = re.compile(rf"\b{_COHORT_WORD}\s*{_COHORT_ID}\b(?!\s*(?:,|and|&|\+|/))", _I)
_CHILDBEARING_IF_RE = re.compile(
    r"\s*(?:for|in|if|when)\s+(?:a\s+)?(?:the\s+)?(?:female|women|woman|females|patients?|"
    r"subjects?|participants?)?\s*(?:subjects?|patients?|participants?)?\s*(?:who\s+)?(?:are|is)?"
    r"\s*(?:of\s+)?(?:childbearing|child-bearing|reproductive)\s+(?:potential|age)\b",
    _I,
)
# a parent whose sub-list defines its own words ("adequate organ function, meeting the
# following requirements:", "measurable disease defined as at least one of the following:"):
# its own typed content is not a sub-group rule
_DEFINING_PARENT_RE = re.compile(
    r"\b(?:defined as|as follows|(?:meet|meets|meeting|fulfil\w*|satisfy\w*|satisfies|with) "
    r"(?:all )?(?:of )?the following|the following (?:requirements|criteria|laboratory|values|"
    r"conditions|parameters)|"
    # "HER2 negativity must be confirmed by one of the following:": how it is shown
    r"(?:confirmed|determined|documented|assessed|established|shown|demonstrated|tested) "
    r"(?:by|with|using) (?:one|any|either) (?:of )?the following)\b",
    _I,
)
# a parent that defines a term by the lines under it ("No equivocal myelomatosis, defined by
# the following criteria:", "Diagnosis of multiple myeloma, defined by at least 2 of the
# following conditions:"): the lines say what the term means, they are no rules of their own
_DEFINED_BY_LINES_RE = re.compile(
    r"\b(?:defined|characteri[sz]ed)\s+(?:by|as)\b(?:\s+(?:at least|any|one|two|\d|of|all|the))*"
    r"\s+following\b|\b(?:as\s+)?defined\s+(?:below|by the following)\b",
    _I,
)


def _under_definition(line: CriteriaLine) -> bool:
    """A line under a parent that defines a term other than the line's own type's
    ("Adequate organ function, defined as the following:" heads the rules themselves)."""
    parent = line.parent
    while parent is not None:
        m = _DEFINED_BY_LINES_RE.search(parent.plain)
        if m and not parent.is_heading:
            return not any(
                defines_own_term(t, parent.plain, m.start())
                for t in ("organ_function", "measurable_disease", "performance_status")
            )
        parent = parent.parent
    return False


# "Participants will be excluded from the physical activity and weight loss interventions (but
# not the smoking cessation component) for:": the lines after it hold for one part of the
# study only, like a cohort's
_PART_SCOPE_RE = re.compile(
    r"^[^:]{0,80}\b(?:excluded|ineligible|not eligible) (?:from|for) (?:the |any )?"
    r"(?!(?:study|trial|protocol|participation|enrol\w*|this (?:study|trial))\b)"
    r"[^:]{0,120}?\b(?:interventions?|components?|arms?|parts?|cohorts?|phases?|portions?|"
    r"sub-?stud(?:y|ies)|procedures?|modules?)\b[^:]{0,120}:\s*$",
    _I,
)


# A heading that opens a block of criteria: "Inclusion criteria for participation in R3.",
# "Eligibility for the dose-finding study:"
# a criteria heading for everyone's enrolment ("Inclusion criteria for trial entry")
_ENTRY_HEADING_RE = re.compile(
    r"\s*(?:inclusion|exclusion|eligibility)(?:\s+criteria)?\s+(?:for|to)\s+(?:the\s+)?"
    r"(?:trial|study|protocol|main study|core study|all (?:patients|participants|subjects)|"
    r"(?:trial|study) (?:entry|enrol?ment|registration|participation|inclusion)|"
    r"entry|enrol?ment|registration|screening|inclusion|participation in (?:the|this) (?:trial|study)|"
    r"(?:all )?(?:patients|participants|subjects)\b(?! (?:who|with|not|in|receiving|treated|aged|"
    r"over|under|older|younger)\b))",
    _I,
)
_CRITERIA_HEADING_RE = re.compile(
    r"\s*(?:inclusion|exclusion|eligibility)(?:\s+criteria)?\s+(?:for|to)\b", _I
)


def parse_trial_model(trial: Trial, vocab: Any = None) -> ParsedTrial:
    """Criteria of an already built ``Trial`` (structured gates first, then the text)."""
    if vocab is None:
        vocab = _default_vocab()
    crits: list[Criterion] = []
    if trial.min_age_years is not None or trial.max_age_years is not None:
        text = (
            f"Age (registered): minimum {trial.min_age_text or 'none'}, "
            f"maximum {trial.max_age_text or 'none'}"
        )
        crits.append(
            Criterion(
                "inclusion",
                text,
                "age",
                "require",
                {
                    "min_years": trial.min_age_years,
                    "max_years": trial.max_age_years,
                    "source": "structured",
                },
                source="structured",
            )  # fmt: skip
        )
    if trial.sex in ("FEMALE", "MALE"):
        crits.append(
            Criterion(
                "inclusion",
                f"Sex (registered): {trial.sex}",
                "sex",
                "require",
                {"sex": trial.sex},
                source="structured",
            )  # fmt: skip
        )
    lines = split_criteria(trial.criteria_text)
    onco = _is_oncology(trial, vocab) or _criteria_name_a_cancer(lines, vocab)
    n_lines = n_typed = 0
    group_of: dict[int, str] = {}
    by_line: dict[int, list[Criterion]] = {}
    marker: tuple[str, str] | None = None  # (section, words) of the cohort marker in force
    inherited_marker: dict[int, tuple[str, str]] = {}  # a cohort line's marker, for its sub-bullets
    # When the inclusion/exclusion sections repeat ("Cohort A: inclusion, exclusion; Cohort B:
    # inclusion, exclusion"), each cohort's marker holds across its own exclusion section too.
    repeated = any(
        a.section == "exclusion" and b.section == "inclusion"
        for a, b in zip(lines, lines[1:], strict=False)
    )
    later_rx = clause_rules().later_step
    cues = clause_rules().cues
    later: tuple[str, str] | None = None  # (section, words) of a later-step heading in force
    is_marker = [bool(_COHORT_MARKER_RE.match(x.plain)) for x in lines]
    heading: str | None = None
    pdq_sub: CriteriaLine | None = None  # the bare PDQ sub-heading in force ("Age")
    subgroup: str | None = None  # section of a sub-group's criteria heading in force
    for i, line in enumerate(lines):
        if _PDQ_SUBHEADING_RE.fullmatch(line.plain) and not line.children:
            pdq_sub = line
        elif pdq_sub is not None and (line.section != pdq_sub.section or line.is_heading):
            pdq_sub = None  # "PATIENT CHARACTERISTICS:", "Exclusion Criteria:" end it
        if line.heading != heading:
            heading = line.heading
            if heading and _ALL_COHORTS_RE.search(heading):
                marker = None  # "Other inclusion criteria for therapy group A and group B:"
            elif heading and (hm := _HEADING_COHORT_RE.search(heading)):
                marker = (line.section, hm.group(0).strip(" :-()"))  # "... for Cohort 2:"
        m = _COHORT_MARKER_RE.match(line.plain)
        own_marker: tuple[str, str] | None = None
        if (
            m
            and len(line.plain[m.end() :].strip()) > 20
            and ((i > 0 and is_marker[i - 1]) or (i + 1 < len(lines) and is_marker[i + 1]))
        ):
            # "Indication A - ASPS: Histologically proven ...", then "Indication B - LMS: ...":
            # one criterion written out per cohort; each scopes itself (and its sub-bullets),
            # not the lines after them ("ECOG 0 or 1" below is everyone's)
            own_marker = (line.section, m.group(0).strip(" :-"))
            marker = None
        elif m:
            marker = (line.section, m.group(0).strip(" :-"))
        elif _PART_SCOPE_RE.match(line.plain):
            marker = (line.section, PART_SCOPE + line.plain.strip(" :-"))
        elif marker is not None and _ALL_COHORTS_RE.search(line.plain):
            # "Other inclusion criteria for therapy group A and group B", "All cohorts:": the
            # lines from here hold for every cohort again
            marker = None
        elif marker is not None and marker[0] != line.section and not repeated:
            marker = None
        if own_marker is None:
            own_marker = inherited_marker.get(id(line.parent))
        if own_marker is not None:
            inherited_marker[id(line)] = own_marker
        # "Inclusion criteria for participation in R3." heads every line after it, up to the
        # next criteria heading: those lines are for a later step (sub-headings such as
        # "Patient age:" in between do not end it)
        if _CRITERIA_HEADING_RE.match(line.plain):
            ls = later_rx.search(line.plain.lower())
            later = (line.section, ls.group(0)) if ls else None
            # "Inclusion criteria for treatment with X for patients not participating in the
            # dose-finding study": the lines after it are that sub-group's, not everyone's
            subgroup = (
                line.section
                if ls is None
                and not _ENTRY_HEADING_RE.match(line.plain)
                and not _HEADING_COHORT_RE.search(line.plain)
                else None
            )
        elif later is not None and later[0] != line.section:
            later = None
        if subgroup is not None and subgroup != line.section:
            subgroup = None
        if line.is_heading and line.children:
            continue
        context = line.context
        if (
            pdq_sub is not None
            and pdq_sub is not line
            and (line.parent is None or line.parent.is_heading)
            and not line.children
        ):
            context = pdq_sub.plain  # PDQ: a line "Age", then "18 and over"
        parsed = parse_line(line.text, line.section, vocab=vocab, context=context, oncology=onco)
        if line.children and parsed[0].type == "unparsed" and line.text.rstrip().endswith(":"):
            continue  # a parent such as "Adequate organ function:" -- its children carry it
        n_lines += 1
        if parsed[0].type != "unparsed":
            n_typed += 1
        conditional = (
            (
                bool(line.children)
                and not _DEFINING_PARENT_RE.search(line.plain)
                and not _elaborated_only(line, cues)
            )
            or bool(_CONDITIONAL_LINE_RE.match(line.text))
            or bool(
                line.parent is not None
                and _CONDITIONAL_LINE_RE.match(line.parent.text)
                # "For both phases (All sites):" heads everyone's lines
                and not _ALL_COHORTS_RE.search(line.parent.plain)
            )
            or _under_qualified_group(line)
        )
        for c in parsed:
            c.conditional = c.conditional or (
                conditional
                and not c.applies_to
                # "If female subjects are of childbearing potential, ... a negative pregnancy
                # test": a pregnant patient meets that condition by being pregnant
                and not (c.type == "pregnancy" and _CHILDBEARING_IF_RE.match(line.plain))
            )
            scope = own_marker or marker
            if scope is not None and not c.applies_to:
                c.cohort = scope[1]
                if c.unexplained:
                    # "Indication B" left over by the cue rules is the cohort, which is read
                    # word by word: "or" left over is not explained by "cohort"
                    marker_words = set(re.findall(r"[a-z0-9]+", scope[1].lower()))
                    c.unexplained = tuple(
                        w
                        for w in c.unexplained
                        if not set(re.findall(r"[a-z0-9]+", w.lower())) <= marker_words
                    )
            if c.type != "unparsed" and _under_definition(line):
                c.in_definition = True
            if subgroup is not None and not c.applies_to:
                c.conditional = True
            if later is not None and not c.later_step:
                c.later_step = later[1]
            if line.about:
                c.later_step = f"{ABOUT_OTHER}the {line.about}'s"
            if (
                c.type == "histology"
                and c.polarity == "require"
                and c.section == "inclusion"
                and not c.values.get("cohort")
            ):
                # several required histologies are alternatives (within one cohort)
                c.group = "histology:require" + (f":{scope[1]}" if scope is not None else "")
                if (
                    c.unexplained
                    and _TRAILING_OR_RE.search(line.plain)
                    and (c.unexplained[-1].strip().lower() in ("or", "and/or"))
                ):
                    # "1. acute lymphoblastic leukemia (ALL) or": the "or" that ends the line
                    # joins it to the next alternative, which the group reads
                    c.unexplained = list(c.unexplained[:-1])
        roots = _any_of_ancestors(line) if line.section == "inclusion" else []
        if len(roots) == 1:
            # "Patients must meet one of the following risk criteria: / Standard-risk group
            # meeting all of the following: / Aged 1 to < 6 years": the alternatives are the
            # header's sub-items, each with the criteria under it; an alternative fails when
            # one of its criteria does, and the line when every alternative fails
            root, branch = roots[0]
            gid = group_of.setdefault(id(root), f"any:{len(group_of) + 1}")
            member = f"{gid}{BRANCH_SEP}{root.children.index(branch)}"
            for c in parsed:
                # an unparsed alternative ("Is ineligible for a protocol of higher priority") is
                # UNKNOWN, so the typed alternatives failing does not make the line NOT_MET
                if branch is not line or c.group is None:
                    c.group = member
        elif len(roots) > 1:
            # alternatives within alternatives ("Age >= 60 years" or "Age 18-59 years and one
            # of: ECOG >= 2, heart failure, ..."): which branch holds is not modelled
            for c in parsed:
                c.conditional = True
        if m and line.section == "exclusion" and vocab is not None:
            # "a. Indication A - ASPS: Prior treatment with cediranib": the disease before the
            # colon names the cohort; it is not excluded
            head, _sep, rest = line.plain.partition(":")
            if _sep and len(head) <= 60:
                named = {d for d, _t in vocab.find_diagnoses(rest)}
                parsed = [
                    x
                    for x in parsed
                    if x.type != "histology" or set(x.values.get("diagnoses") or []) & named
                ] or [Criterion(line.section, line.text, "unparsed", "exclude", {})]
        by_line[id(line)] = parsed
        crits.extend(parsed)
    _histology_sublists(lines, by_line)
    _age_widened_by_sibling(lines, by_line)
    _blocks_joined_by_or(lines, by_line)
    _cohort_blocks(lines, by_line)
    _localized_way_in(lines, by_line)
    _or_joined_lines(lines, by_line)
    _therapy_not_needed_by_some(lines, by_line)
    _histology_back_references(crits, vocab)
    _one_per_patient(crits, "disease_status", "status")
    _one_per_patient(crits, "stage", "stages")
    _one_per_patient(crits, "performance_status", "")
    _one_per_patient(crits, "age", "")
    _item_qualifiers(crits)
    _excluded_while_required(crits, vocab)
    return ParsedTrial(trial=trial, criteria=crits, n_lines=n_lines, n_typed_lines=n_typed)


# a line for the patients outside an age band ("If under 65, higher priority is given to
# protocol X unless entry into this study would be more appropriate")
_OTHER_AGE_BAND_RE = re.compile(
    r"^\W*(?:if|for|when|in)\s+(?:(?:patients?|participants?|subjects?)\s+)?(?:aged?\s+)?"
    r"(?:under|over|below|above|younger than|older than|less than|more than|greater than|<|>|<=|>=)"
    r"\s*\d{1,3}\b",
    _I,
)


def _age_widened_by_sibling(lines: list, by_line: dict[int, list[Criterion]]) -> None:
    """An age band ("65 to 74" under "Age:") beside a line on the patients outside it ("If
    under 65, ..."): the band is no bar on that side, so a NOT_MET there quotes the sibling
    line (``widened_below`` / ``widened_above``; the other bound still holds)."""
    for line in lines:
        crits = [c for c in by_line.get(id(line)) or [] if c.type == "age"]
        if not crits:
            continue
        siblings = (
            line.parent.children
            if line.parent is not None
            else [x for x in lines if x.parent is None and x.context == line.context and x.context]
        )
        other = next(
            (
                x
                for x in siblings
                if x is not line and _OTHER_AGE_BAND_RE.match(x.plain) and x.section == line.section
            ),
            None,
        )
        if other is None:
            continue
        below = re.search(
            r"\b(?:under|below|younger|less)\b|<",
            other.plain[: _OTHER_AGE_BAND_RE.match(other.plain).end()],
        )
        for c in crits:
            c.values = {
                **c.values,
                ("widened_below" if below else "widened_above"): other.plain.strip(),
            }


_BARE_OR_RE = re.compile(r"^\W*(?:or|-+\s*or\s*-+)\W*$", _I)


def _run_of_lines(lines: list, indexes, section: str) -> list:
    """Top-level lines of ``section`` at ``indexes`` up to a heading or another bare OR."""
    out = []
    for j in indexes:
        x = lines[j]
        if (
            x.section != section
            or x.is_heading
            or x.parent is not None
            or _BARE_OR_RE.match(x.plain)
        ):
            break
        out.append(x)
    return out


def _blocks_joined_by_or(lines: list, by_line: dict[int, list[Criterion]]) -> None:
    """Two runs of lines with a bare "OR" line between them ("* Previously untreated ALL /
    * Age >= 60 years / OR / * Relapsed or refractory ALL / * Age >= 18 years / * ECOG <= 2"):
    the run before it and as many lines after it are alternatives; a NOT_MET stands only when
    both fail. Where the second run ends is not written, so it is taken as long as the first
    (the lines after it are everyone's)."""
    k = 0
    for i, line in enumerate(lines):
        if not _BARE_OR_RE.match(line.plain) or line.children or line.parent is not None:
            continue

        first = _run_of_lines(lines, range(i - 1, -1, -1), line.section)
        second = _run_of_lines(lines, range(i + 1, len(lines)), line.section)[: len(first)]
        if not first or not second:
            continue
        k += 1
        for b, block in enumerate((first, second)):
            for x in block:
                for c in by_line.get(id(x)) or []:
                    if c.type != "unparsed":
                        c.group = f"or-block:{k}{BRANCH_SEP}{b}"


# a line that only names a cohort, arm or group ("HR-HSPC cohort", "Cohort B:", "Arm 2 -
# relapsed disease"): the lines after it, up to the next such line, are that cohort's
_COHORT_LABEL_RE = re.compile(
    r"^\W*(?:(?:[\w/+-]+\s+){0,4}(?:cohorts?|arms?|groups?|stratum|strata)|"
    r"(?:cohort|arm|group|stratum)\s+[\w/+.-]{1,12}(?:\s*[-–:(]\s*[^.;:]{0,60}?\)?)?)\s*:?\s*$",
    _I,
)


def _cohort_blocks(lines: list, by_line: dict[int, list[Criterion]]) -> None:
    """Two or more lines of a section that each only name a cohort ("HR-HSPC cohort",
    "LV-mHSPC cohort", "mCRPC cohort") with criteria under them: a patient joins one cohort,
    so each cohort's lines are one alternative and a NOT_MET stands only when every cohort
    fails. Lines before the first label are everyone's; a block ends at the next label, a
    heading or the end of the section."""
    labels = [
        i
        for i, x in enumerate(lines)
        if x.parent is None
        and len(x.plain) <= 80
        and _COHORT_LABEL_RE.match(x.plain)
        and not _BARE_OR_RE.match(x.plain)
    ]
    k = 0
    for section in ("inclusion", "exclusion"):
        mine = [i for i in labels if lines[i].section == section]
        if len(mine) < 2:
            continue
        blocks = []
        for n, i in enumerate(mine):
            stop = mine[n + 1] if n + 1 < len(mine) else len(lines)
            block = [lines[i]]
            for j in range(i + 1, stop):
                x = lines[j]
                if x.section != section or (x.is_heading and x.parent is None):
                    break
                block.append(x)
            blocks.append(block)
        k += 1
        for b, block in enumerate(blocks):
            for x in block:
                for c in by_line.get(id(x)) or []:
                    if c.type != "unparsed" and not c.group:
                        c.group = f"cohort-block:{k}{BRANCH_SEP}{b}"


# an inclusion line that admits early disease of the trial's cancer as it stands ("Localized
# SCCHN.", "Resectable disease", "Non-metastatic breast cancer")
_LOCALIZED_LINE_RE = re.compile(
    r"^\W*(?:(?:newly diagnosed|primary|previously untreated),?\s+)?(?:locali[sz]ed|early[- ]stage|"
    r"resectable|operable|non-?metastatic|localized or locally advanced)\b[^.;]{0,80}[.;]?\s*$",
    _I,
)


_WITHOUT_THERAPY_RE = re.compile(
    r"\b(?:without|no need (?:for|of)|not (?:need|require)\w*|exempt\w* from)\s+(?:any\s+)?"
    r"(?:prior\s+|previous\s+)?(?:chemotherapy|chemo|systemic (?:therapy|treatment)|treatment|therapy)\b"
    r"|\b(?:directly|straight)\s+(?:into|enter|enrol\w*|join)",
    _I,
)
_PERMIT_RE = re.compile(r"\b(?:can|may|could|eligible|allowed|permitted|directly)\b", _I)


def _therapy_not_needed_by_some(lines: list, by_line: dict[int, list[Criterion]]) -> None:
    """A line that lets some patients in without the treatment another line requires
    ("Clear cell sarcoma, alveolar soft tissue sarcoma can be directly into the group without
    chemotherapy"): the requirement is not everyone's, so it does not exclude alone."""
    ways = [
        x
        for x in lines
        if x.section == "inclusion"
        and not x.children  # a header over listed histologies scopes its own rule
        and _WITHOUT_THERAPY_RE.search(x.plain)
        and _PERMIT_RE.search(x.plain)
    ]
    if not ways:
        return
    note = f"another line admits some patients without it (“{ways[0].plain[:70]}”)"
    for x in lines:
        if x.section != "inclusion" or x in ways:
            continue
        for c in by_line.get(id(x)) or []:
            if c.type == "prior_therapy_required" and note not in c.unexplained:
                c.unexplained = [*c.unexplained, note]


def _or_joined_lines(lines: list, by_line: dict[int, list[Criterion]]) -> None:
    """Two lines of one list joined by a trailing "OR" / "AND/OR" ("Unresectable AND/OR", then
    "Radiologically documented metastatic disease"): either line may be the way in; a NOT_MET
    stands only when both fail (required histologies are grouped as alternatives already)."""
    for k, (a, b) in enumerate(zip(lines, lines[1:], strict=False)):
        if (
            a.section != b.section
            or a.depth != b.depth
            or a.children
            or not _TRAILING_OR_RE.search(a.plain)
        ):
            continue
        for branch, line in enumerate((a, b)):
            for c in by_line.get(id(line)) or []:
                if c.type not in ("unparsed", "histology") and c.group is None:
                    c.group = f"or-line:{k}{BRANCH_SEP}{branch}"


def _localized_way_in(lines: list, by_line: dict[int, list[Criterion]]) -> None:
    """ "Unresectable or metastatic SCCHN." and, two lines on, "Localized SCCHN.": the record
    admits both, so neither line's extent is everyone's rule. A required advanced extent
    elsewhere in the inclusion criteria says UNKNOWN for early disease, quoting the line."""
    ways = [
        x
        for x in lines
        if x.section == "inclusion"
        and _LOCALIZED_LINE_RE.match(x.plain)
        and not any(
            c.type == "disease_extent" and c.polarity == "require" for c in by_line.get(id(x)) or []
        )
    ]
    if not ways:
        return
    note = f"another line admits early disease (“{ways[0].plain[:60]}”)"
    for x in lines:
        if x.section != "inclusion" or x in ways:
            continue
        for c in by_line.get(id(x)) or []:
            extent = set((c.values or {}).get("extent") or [])
            if (
                c.type == "disease_extent"
                and c.polarity == "require"
                and extent
                and extent <= {"metastatic", "unresectable", "advanced", "locally_advanced"}
                and note not in c.unexplained
            ):
                c.unexplained = [*c.unexplained, note]


def _any_of_ancestors(line) -> list[tuple[Any, Any]]:
    """(header, the header's sub-item on the way down to ``line``) for every ancestor line that
    says its sub-items are alternatives ("one of the following", "any of the following"),
    nearest first."""
    out = []
    child, node = line, line.parent
    while node is not None:
        if (
            _CTX_ANYOF_RE.search(normalize(node.text)) or _joined_by_or(node.children)
        ) and child in (node.children or []):
            out.append((node, child))
        child, node = node, node.parent
    return out


_ENDS_OR_RE = re.compile(r"[\s;,]*\b(?:or|and/or)\s*[;,.]?\s*$", _I)


def _joined_by_or(children) -> bool:
    """Sub-items joined by a trailing "OR" ("Treatment naive ...; OR", "Recurrent ...; OR",
    "Refractory ..."): alternatives, like "one of the following"."""
    return len(children or []) >= 2 and all(_ENDS_OR_RE.search(c.text) for c in children[:-1])


# "pain at diagnosis related to leukemia", "CD33+ leukaemia associated immunophenotype": the
# disease named again, as the cause or owner of something else
_BACK_REFERENCE_BEFORE_RE = re.compile(
    r"(?:(?:related|relating|attributed|attributable|due|secondary|owing) to|associated with|"
    r"caused by|induced by)\s+(?:the\s+|their\s+|this\s+|his\s+|her\s+)?$",
    _I,
)
_BACK_REFERENCE_AFTER_RE = re.compile(r"^[\s-]*(?:associated|related)\b", _I)


def _histology_back_references(crits: list[Criterion], vocab: Any) -> None:
    """Take out of the required-histology alternatives a line whose only diagnosis is a broad
    one (a family, category or basket) named as the cause or owner of something else ("pain at
    diagnosis related to leukemia"), when another alternative names a kind of it ("acute
    lymphoblastic leukemia"): it speaks of that disease again and does not admit every
    leukaemia. Its own verdict stands; it is just no longer an alternative."""
    if vocab is None:
        return
    groups: dict[str, list[Criterion]] = {}
    for c in crits:
        if c.group and c.group.startswith("histology:require"):
            groups.setdefault(c.group, []).append(c)
    for members in groups.values():
        for c in members:
            ids = c.values.get("diagnoses") or []
            if len(ids) != 1:
                continue
            try:
                broad = vocab.diagnosis(ids[0]).level in ("family", "category", "basket")
            except Exception:  # noqa: BLE001 - an id the vocabulary lacks: leave it alone
                continue
            if not broad:
                continue
            kinds = [
                o
                for o in members
                if o is not c
                and any(
                    d != ids[0] and _safe_is_a(vocab, d, ids[0])
                    for d in o.values.get("diagnoses") or []
                )
            ]
            if not kinds or not (
                _referred_back(c.text, ids[0], vocab) or _SAMPLE_LINE_RE.search(c.text)
            ):
                continue
            c.group = None


# a line about stored tissue ("Stored diagnostic pre-treatment samples corresponding to the
# patient's original diagnosis of leukemia must be available"): the disease is the samples'
_SAMPLE_LINE_RE = re.compile(
    r"^(?=.*\b(?:available|provided?|submit\w*|stored|archival|sent|send)\b)"
    r".*\b(?:samples?|specimens?|blocks?|slides?)\b[^.;]{0,80}\b(?:of|from|corresponding to)\b",
    _I,
)


def _referred_back(text: str, did: str, vocab: Any) -> bool:
    """Every mention of diagnosis ``did`` in ``text`` names it as the cause or owner of
    something else."""
    mentions = [m for d, m in _find_diagnoses(vocab, text) if d == did]
    if not mentions:
        return False
    low = text.lower()
    for mention in mentions:
        i = low.find(mention.lower())
        while i >= 0:
            before, after = text[max(0, i - 40) : i], text[i + len(mention) :]
            if not (
                _BACK_REFERENCE_BEFORE_RE.search(before) or _BACK_REFERENCE_AFTER_RE.match(after)
            ):
                return False
            i = low.find(mention.lower(), i + 1)
    return True


_TRAILING_OR_RE = re.compile(r"[\s,;]\b(?:or|and/or)\s*[,;:]?\s*$", _I)


# what a line says of the diagnosis it names beside it
_ITEM_QUALIFIER_TYPES = frozenset({"stage", "disease_extent", "disease_status"})


def _item_qualifiers(crits: list[Criterion]) -> None:
    """A stage, extent or status on a line that names one of several required diagnoses
    ("Stage III follicular lymphoma" among "Diffuse large cell B-cell lymphoma", "Burkitt's
    lymphoma", ...): it qualifies that diagnosis, so it applies to its patients only."""
    groups: dict[str, list[Criterion]] = {}
    for c in crits:
        if (
            c.type == "histology"
            and c.polarity == "require"
            and c.section == "inclusion"
            and c.group
            and c.group.startswith("histology:require")
        ):
            groups.setdefault(c.group, []).append(c)
    for members in groups.values():
        kinds = {tuple(sorted(m.values.get("diagnoses") or [])) for m in members}
        if len(kinds) < 2:
            continue
        named = {m.text: list(m.values.get("diagnoses") or []) for m in members}
        for c in crits:
            if (
                c.type in _ITEM_QUALIFIER_TYPES
                and c.section == "inclusion"
                and c.polarity == "require"
                and not c.applies_to
                and c.text in named
                and named[c.text]
            ):
                c.applies_to = named[c.text]


def _covers(excl: Criterion, item: tuple[str, str], vocab: Any) -> bool:
    """The exclusion ``excl`` excludes every patient who had ``item`` (("drug", id),
    ("class", id) or ("procedure", id))."""
    v = excl.values or {}
    kind, ident = item
    if kind == "procedure":
        procs = v.get("procedures") or []
        is_a = getattr(vocab, "procedure_is_a", None)
        return any(p == ident or (is_a is not None and is_a(ident, p)) for p in procs)
    if v.get("any_systemic"):
        return True
    classes = set(v.get("classes") or [])
    if kind == "drug":
        drug = getattr(vocab, "drugs", {}).get(ident) if vocab is not None else None
        return ident in (v.get("drugs") or []) or bool(
            drug is not None and classes & set(drug.classes)
        )
    ancestors = (
        set(vocab.class_ancestors(ident))
        if vocab is not None and hasattr(vocab, "class_ancestors")
        else {ident}
    )
    return bool(classes & (ancestors | {ident}))


_PERMISSION_WORD_RE = re.compile(
    r"\b(?:may|allowed|allow|permitted|permissible|eligible|can|could|optional\w*|as long)\b", _I
)
_CURRENTLY_ON_RE = re.compile(
    r"\bcurrently (?:receiving|being treated with|treated with|on|taking|undergoing)\b"
    # "At least two cycles of treatment with serplulimab in combination with chemotherapy"
    r"|\bat least (?:one|two|three|four|\d+) (?:cycles?|courses?|doses?) of\b",
    _I,
)


def _excluded_while_required(crits: list[Criterion], vocab: Any) -> None:
    """An exclusion of a prior therapy that the record's inclusion criteria require ("Prior
    surgery, radiotherapy or systemic therapy for NSCLC" beside "received neoadjuvant
    chemotherapy, targeted therapy or immunotherapy before surgery"): read literally the record
    excludes every patient it asks for, so the exclusion means some other time, which it does
    not say. It cannot decide alone: UNKNOWN, naming the requirement."""
    needs: list[tuple[Criterion, list[tuple[str, str]]]] = []
    for r in crits:
        if r.section != "inclusion" or r.in_definition:
            continue
        v = r.values or {}
        if any(_PERMISSION_WORD_RE.search(w) for w in r.unexplained) or r.conditional:
            continue  # "Patient may have had one previous chemotherapy line": a permission
        if r.type == "prior_therapy_required" and r.polarity == "require":
            items = (
                [("drug", d) for d in v.get("drugs") or []]
                + [("class", x) for x in v.get("classes") or []]
                + [("procedure", x) for x in v.get("procedures") or []]
            )
        elif (
            vocab is not None
            and (on := _CURRENTLY_ON_RE.search(r.text))
            and not re.search(r"\b(?:not|no|never|without)\b", r.text[: on.start()], _I)
        ):
            # "Currently receiving anti-PD-1 therapy with pembrolizumab" (no prior-therapy
            # criterion: a current treatment) beside "Prior PD-1/PD-L1 targeted therapy"
            items = [("drug", d) for d, _t in vocab.find_drugs(r.text)] + [
                ("class", x) for x, _t in vocab.find_drug_classes(r.text)
            ]
        else:
            continue
        if items and not any(r.text == n.text for n, _i in needs):
            needs.append((r, items))
    for r, items in needs:
        for c in crits:
            if c.type != "prior_therapy_excluded" or c.polarity != "exclude" or c is r:
                continue  # (an inclusion "No prior systemic therapy for ES-SCLC" too)
            if all(_covers(c, it, vocab) for it in items):
                note = (
                    f"the inclusion criteria require prior therapy it excludes (“{r.text[:80]}”): "
                    "which earlier treatment it means is not said"
                )
                if note not in c.unexplained:
                    c.unexplained = [*c.unexplained, note]


def _one_per_patient(crits: list[Criterion], kind: str, key: str) -> None:
    """A patient has one disease status, stage, performance score and age: required values
    of ``kind`` that
    exclude each other, on several lines of one cohort ("ALL in first complete remission
    (CR1)", "Relapsed AML with <25% blasts"; "Stage II or III disease", "Stage IV disease with
    symptomatic back pain ... allowed"), are alternatives. The same values restated on several
    lines are not."""
    by_cohort: dict[tuple, list[Criterion]] = {}
    for c in crits:
        if (
            c.type == kind
            and c.polarity == "require"
            and c.section == "inclusion"
            and c.group is None
            and c.source == "text"
            and "age_op" not in c.values
        ):
            scale = c.values.get("scale") if kind == "performance_status" else None
            by_cohort.setdefault((c.cohort, scale), []).append(c)
    for (cohort, _scale), members in by_cohort.items():
        if len({c.text for c in members}) < 2:
            continue
        sets = [_values_of(c, kind, key) for c in members]
        if any(not (a & b) for i, a in enumerate(sets) for b in sets[i + 1 :]):
            for c in members:
                c.group = f"{kind}:require" + (f":{cohort}" if cohort else "")


def _values_of(c: Criterion, kind: str, key: str) -> set:
    """The values a patient may have to meet ``c``: listed values, or a range's steps
    ("PS 0 to 1" and "PS 2" under one parent; "Age 18-64" and "Age >= 65" for two cohorts)."""
    v = c.values
    if kind == "performance_status":
        return set(range(int(v.get("min") or 0), int(v.get("max") or 0) + 1))
    if kind == "age":
        lo = v.get("min_years") or 0
        hi = v.get("max_years") if v.get("max_years") is not None else 130
        return set(range(int(lo * 12), int(hi * 12) + 1))
    return set(v.get(key) or [])
