"""Cohort lines, disease scope and histology sub-lists: to whom a line's criteria apply."""

from __future__ import annotations

import re
from typing import Any

from matcher.eligibility.common import _safe_is_a
from matcher.eligibility.model import Criterion
from matcher.eligibility.text import _I, _TOO_GENERIC_DIAGNOSES, _Ctx, _find_diagnoses, _positions

# --- cohort lines ---------------------------------------------------------------------------
# "Patients with GBM or anaplastic astrocytoma must be ...", "Primary tumors of bone including
# Ewing's sarcoma ... may only be enrolled if ...", "For patients with GIST: ...": the line's
# requirements apply to the named histologies only.
_COHORT_SUBJECT_RES = [
    re.compile(
        r"^\s*(?:note:\s*)?(?:(?:for|in)\s+)?(?:all\s+)?(?:patients?|participants?|subjects?|those|"
        r"individuals|children|adults)\s+(?:with|who have|diagnosed with|whose (?:tumou?rs?|disease) "
        r"(?:is|are))\s+(?P<subj>[^:;.]{3,160}?)\s*(?:[,:]|\b(?:must|should|shall|will need|needs? to|"
        r"are required|is required|may only|can only|may be enrolled|may enroll|are eligible only|"
        r"are only eligible|will be eligible only|only if)\b)",
        _I,
    ),
    re.compile(
        r"^\s*(?P<subj>[^:;.]{3,160}?)\s+(?:may|can|will)\s+(?:only\s+be|be\s+(?:enrolled|included|"
        r"eligible)\s+only)\b",
        _I,
    ),
    re.compile(
        r"^\s*(?:for|in)\s+(?P<subj>[^:;,.]{3,80}?)\s*(?:cohorts?|patients|arms?)?\s*[:]", _I
    ),
]
_CONFIRM_CUE_RE = re.compile(
    r"\bhistolog\w*|\bcytolog\w*|\bpatholog\w*|\bconfirm\w*|\bdiagnosis of\b|\bproven\b|\bdocumented\b",
    _I,
)


def _cohort(c: _Ctx) -> tuple[list[str], str | None] | None:
    """Diagnosis ids of a cohort subject that opens the line, with the subject's words the
    diagnoses do not account for ("low grade serous" in "Patients with low grade serous
    ovarian cancer must have received a prior MEK inhibitor"), or None (see above)."""
    if c.vocab is None or c.section != "inclusion":
        return None
    for rx in _COHORT_SUBJECT_RES:
        m = rx.match(c.plain)
        if not m:
            continue
        subj = m.group("subj")
        if _CONFIRM_CUE_RE.search(subj) or _CONFIRM_CUE_RE.search(c.plain[m.end() : m.end() + 40]):
            return None  # "patients with histologically confirmed X must ...": a requirement
        found = [
            (d, t) for d, t in _find_diagnoses(c.vocab, subj) if d not in _TOO_GENERIC_DIAGNOSES
        ]
        if found:
            return list(dict.fromkeys(d for d, _ in found)), _subject_qualifier(subj, found)
    return None


# words before a cohort subject's diagnosis that name no further kind of patient, or that
# another criterion of the line reads (a marker, a disease state, a stage)
_SUBJECT_FILLER_RE = re.compile(
    r"\b(?:or|and|and/or|either|the|a|an|any|all|of|their|a diagnosis of|diagnosed|known|"
    r"who|have|has|had|been|are|is|with|in|at|"
    r"histologically|cytologically|pathologically|confirmed|documented|proven|"
    r"relapsed|refractory|recurrent|metastatic|advanced|locally|unresectable|inoperable|"
    r"newly|untreated|previously|treated|treatment-naive|progressive|progressing|persistent|"
    r"stage\s+[0-4ivx]+[a-d]?|high-risk|low-risk)\b"
    r"|\S*(?:positive|negative|\+|mutant|mutated|mutation|wild-?type|amplified|rearranged|"
    r"altered|expressing|deficient|proficient)\b\S*|[,/()\-]",
    _I,
)


_MARKER_RESULT_RE = re.compile(
    r"(?:positive|negative|\+|mutant|mutated|wild-?type|amplified|rearranged|altered|"
    r"expressing|deficient|proficient)\b",
    _I,
)


def _subject_qualifier(subj: str, found: list[tuple[str, str]]) -> str | None:
    """The words right before the subject's first diagnosis name that the vocabulary did not
    read and no other criterion of the line does ("low grade serous" ovarian cancer): a
    modifier, so whether the patient is of that kind is unknown. Words after the name ("CML
    in the chronic phase before treatment") are the line's other criteria."""
    low = re.sub(r"\([^)]*\)", " ", subj.lower())
    # "Primary tumors of bone including Ewing's sarcoma, osteosarcoma ...": the class before
    # the list is said of the listed kinds
    low = re.split(r"\b(?:including|such as|e\.g\.|i\.e\.|namely)\b", low, maxsplit=1)[-1]
    first = min(
        (p for _d, mention in found for p in _positions(low, mention.lower())), default=None
    )
    if first is None:
        return None
    pre = low[:first]
    # "Philadelphia chromosome positive CML": a marker phrase ends at its result word
    marker_end = max((m.end() for m in _MARKER_RESULT_RE.finditer(pre)), default=0)
    left = " ".join(_SUBJECT_FILLER_RE.sub(" ", pre[marker_end:]).split())
    return left or None


# Types whose criterion is about the disease the line names: exclusion "Any prior chemotherapy
# for lung cancer", "Metastatic breast cancer", "NSCLC without known ALK rearrangement";
# inclusion "No prior radiation or chemotherapy for endometrial cancer", a line under the
# heading "Renal Cell Carcinoma", "Colorectal cancer (CRC) - participants must have received
# ...". Said of another cancer, the patient's therapy, extent or marker does not fail the line:
# NOT_MET becomes UNKNOWN. An inclusion line that itself requires the cancer ("Previously
# untreated NSCLC") is not scoped: the patient does not meet that line anyway.
_SCOPED_TYPES = frozenset(
    {
        "disease_status",
        "prior_therapy_excluded",
        "prior_therapy_required",
        "disease_extent",
        "stage",
        "measurable_disease",
        "biomarker",
        # "CNS involvement by lymphoma", "known CNS leukaemia": said of another cancer, a
        # solid tumour's brain metastases do not fail the line
        "brain_metastases",
    }
)
# "for (the treatment of) (their) <disease>", or "<disease> (CRC) -" / "<disease>:" opening a line
_SCOPE_BEFORE_RE = re.compile(
    r"\bfor\s+(?:the\s+)?(?:treatment\s+of\s+)?(?:this\s+|their\s+|his\s+|her\s+|the\s+)?"
    r"(?:[\w-]+\s+){0,5}$",
    _I,
)
_SCOPE_OPENING_RE = re.compile(r"\s*(?:\([^)]{1,20}\)\s*)?(?:[:\u2013-]|cohort\b)", _I)


def _disease_scope(vocab: Any, text: str, context: str | None, section: str) -> list[str] | None:
    """Vocabulary ids of the cancers a line's criteria are said of (see ``_SCOPED_TYPES``):
    every cancer the exclusion line or its parent line names; in the inclusion section the
    parent line's, and the line's own only in a therapy setting ("for X") or as an opening
    subject ("X:", "X (CRC) - ..."). Generic "cancer" is left out; None when none."""
    ids: list[str] = []
    found = list(_find_diagnoses(vocab, context)) if context else []
    low = text.lower()
    for did, mention in _find_diagnoses(vocab, text):
        if section == "exclusion":
            found.append((did, mention))
            continue
        for pos in _positions(low, mention.lower()):
            if _SCOPE_BEFORE_RE.search(low[max(0, pos - 60) : pos]) or (
                not low[:pos].strip(" -*\u2022")
                and _SCOPE_OPENING_RE.match(low[pos + len(mention) :])
            ):
                found.append((did, mention))
                break
    for did, _ in found:
        if did not in _TOO_GENERIC_DIAGNOSES and did not in ids:
            ids.append(did)
    return ids or None


_SUBLIST_HEADER_RE = re.compile(
    r"\b(?:following|these|below)\b[^:]{0,40}\b(?:histolog\w*|histotypes?|subtypes?|tumou?r types?|"
    r"diagnos\w+|sarcomas|tumou?rs|cancers|diseases)\b",
    _I,
)


def _histology_sublists(lines: list, by_line: dict[int, list[Criterion]]) -> None:
    """A header such as "The following histologies may be enrolled ONLY if refractory to
    anthracycline-based chemotherapy:" over a sub-list of histologies: the header's criteria
    apply to the listed histologies only (``applies_to``); they are then evaluated for those
    patients, reported as not applying to others, and UNKNOWN when the subtype is unknown."""
    for line in lines:
        crits = by_line.get(id(line))
        if not crits or not line.children or not _SUBLIST_HEADER_RE.search(line.plain):
            continue
        own = [c for c in crits if c.type not in ("unparsed", "histology")]
        if not own:
            continue
        ids: list[str] = []
        other: list[str] = []
        ok = True
        for child in line.children:
            cc = by_line.get(id(child)) or []
            types = {c.type for c in cc}
            if types <= {"histology"} and cc:
                for c in cc:
                    if c.polarity == "require":
                        ids.extend(d for d in c.values.get("diagnoses") or [] if d not in ids)
            elif types == {"unparsed"}:
                other.append(child.text.strip(" ,.;"))
            else:
                ok = False
        if not ok or not ids:
            continue
        for c in own:
            c.applies_to = ids
            c.applies_note = ", ".join(other) or None
            c.conditional = False


def _cohort_status(p: Any, ids: list[str], vocab: Any) -> str:
    """Return "in" (the patient's diagnosis is one of ``ids`` or under one), "out", "broader" (the
    patient's diagnosis is an ancestor of one: subtype unknown) or "none" (not recorded)."""
    if not p.diagnosis:
        return "none"
    lineage = set(p.diagnosis_lineage or [p.diagnosis])
    if any(i in lineage or _safe_is_a(vocab, p.diagnosis, i) for i in ids):
        return "in"
    if any(_safe_is_a(vocab, i, p.diagnosis) for i in ids):
        return "broader"
    return "out"
