"""Brain metastases: parsing and evaluation."""

from __future__ import annotations

import re
from typing import Any

from matcher.eligibility.model import MET, NOT_MET, UNKNOWN, Criterion
from matcher.eligibility.text import _I, _PERMISSIVE_RE, _Ctx

# --- brain metastases ---------------------------------------------------------------------
_BRAIN_RE = re.compile(
    r"\b(?:brain|cns|central nervous system|cerebral|intracranial|intra-cranial|spinal cord|"
    r"brainstem|brain stem)\s+(?:(?:or|and|and/or|/)\s+\w+(?:\s+\w+)?\s+)?(?:metasta\w*|mets\b|"
    r"involvement|lesions?\b(?=[^.;]{0,40}metasta)|disease\b(?=[^.;]{0,40}metasta))"
    r"|\bmetasta\w*\s+(?:\w+\s+){0,2}?(?:to|in|of|involving|within)\s+(?:the\s+)?(?:brain|cns|"
    r"central nervous system)\b|\bleptomeningeal\b|\bmeningeal (?:disease|metasta\w*|"
    r"carcinomatosis|involvement)|\bcns (?:tumou?r )?involvement\b|\bbrain mets\b"
    # the central nervous system reached by a leukaemia or lymphoma: "CNS leukemia", "central
    # nervous system (CNS) involvement", "meningeal leukaemia", "CNS relapse"
    r"|\b(?:cns|central nervous system|meningeal|leptomeningeal)\s+(?:\(cns\)\s+)?"
    r"(?:leuka?emi\w*|lymphoma|infiltration|relapse|involvement)\b",
    _I,
)
_BRAIN_ALLOWED_RE = re.compile(
    r"\b(?:untreated|active|symptomatic|unstable|progressive|progressing|uncontrolled|"
    r"not (?:been )?(?:adequately )?treated|requiring (?:\w+ ){0,2}(?:steroids|treatment|therapy)"
    r"|treated|stable|stabl\w+|asymptomatic|previously treated)\b",
    _I,
)


# the unqualified kind as an alternative of the qualified one ("known or symptomatic")
_ANY_OR_QUALIFIED_RE = re.compile(
    r"\b(?:known|any|history of|documented)\s+(?:or|and/or)\s+(?:symptomatic|untreated|active|"
    r"progressive|uncontrolled|unstable)\b",
    _I,
)


def _brain(c: _Ctx) -> list[tuple[str, str, dict]]:
    m = _BRAIN_RE.search(c.s)
    if not m:
        return []
    if (
        "involvement" in m.group(0)
        and not re.search(
            r"tumou?r|cancer|lymphoma|leuka?emi|metasta|malignan|myeloma|carcinoma|sarcoma", c.s
        )
        and (
            not c.onco
            or re.search(
                r"autoimmun|infect|lupus|vasculitis|sarcoid|inflammat|sclerosis|beh[cç]et|"
                r"\w+ disease with\b",
                c.s,
            )
        )
    ):
        return []  # "autoimmune disease with CNS involvement"; in a cancer trial, the cancer's
    window = c.s[max(0, m.start() - 40) : m.end() + 160]
    permitted = any(
        not re.search(r"\b(?:not|never)\s+(?:be\s+)?$", window[: p.start()])
        for p in _PERMISSIVE_RE.finditer(window)
    )  # "are not allowed" permits nothing
    allowed = bool(_BRAIN_ALLOWED_RE.search(window)) or permitted
    if allowed and not permitted and _ANY_OR_QUALIFIED_RE.search(window):
        # "No known or symptomatic CNS metastases": any known one, or a symptomatic one
        allowed = False
    pol = c.polarity(m.start(), m.end())
    # "Patients with resectable brain metastases must be undergoing planned resection": the
    # brain metastases are the subject of a condition, not a requirement to have them
    subject = bool(
        re.search(
            r"\b(?:patients?|participants?|subjects?|those|individuals)\s+(?:with|who have)\s+"
            r"(?:[\w-]+\s+){0,3}$",
            c.s[max(0, m.start() - 60) : m.start()],
        )
        and re.match(
            r"\s*(?:\([^)]*\)\s*)?,?\s*(?:\w+\s+){0,3}?(?:must|should|shall|need|needs|are required|"
            r"is required|will|may|can|are eligible|are allowed)\b",
            c.s[m.end() :],
        )
    )
    if (
        pol == "require"
        and c.section == "inclusion"
        and (
            allowed
            or subject
            or re.search(r"\b(?:if|provided|in the case of|for patients with|may)\b", c.s)
        )
    ):
        # "patients with treated brain metastases are eligible": untreated ones are excluded
        pol, allowed = "exclude", True
    return [("brain_metastases", pol, {"allowed_if_treated_stable": allowed})]


def _ev_brain(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    allowed = c.values.get("allowed_if_treated_stable")
    if p.brain_metastases is None:
        return UNKNOWN, "brain metastases status not recorded: verify"
    if c.polarity == "exclude":
        if not p.brain_metastases:
            return MET, "no brain metastases recorded; trial excludes them"
        if allowed:
            return (
                UNKNOWN,
                "brain metastases recorded; trial allows treated and stable ones: verify",
            )
        named = [
            m
            for m in _BRAIN_METS_RE.finditer(c.text)
            if not re.search(
                r"\b(?:no|without|absence of)\s+(?:evidence of\s+|known\s+)?$",
                c.text[max(0, m.start() - 25) : m.start()],
                _I,
            )
            # "No known brain metastases" (inclusion): the line's own negation
            or re.fullmatch(
                r"\W*(?:no|without|absence of)\s+(?:evidence of\s+|known\s+|active\s+|untreated\s+)?",
                c.text[: m.start()],
                _I,
            )
        ]
        if named and all(_qualified(c.text, m) for m in named) and not _any_known(c.text):
            return (
                UNKNOWN,
                "brain metastases recorded; the trial excludes active / untreated / symptomatic "
                "ones only: verify",
            )
        if not named:
            return (
                UNKNOWN,
                "brain metastases recorded; the line excludes leptomeningeal disease or cord "
                "compression, not brain metastases as such: verify",
            )
        return NOT_MET, "brain metastases recorded; trial excludes them"
    if p.brain_metastases:
        return MET, "brain metastases recorded; trial requires them"
    if not _BRAIN_REQUIRED_RE.search(c.text) or _BRAIN_PERMISSIVE_RE.search(
        f"{c.text} {c.context or ''}"
    ):
        # "Patients with treated brain metastases may enrol", "CNS lesions cannot be target
        # lesions", a sub-list under "... eligible provided ...": permits, does not require
        return UNKNOWN, "no brain metastases recorded; the line may only permit them: verify"
    return NOT_MET, "no brain metastases recorded; trial requires them"


# a qualifier after the mention: "Brain metastases in the brainstem", "CNS metastasis ...
# and obvious symptoms", "brain metastases requiring steroids"
_BRAIN_QUALIFIED_AFTER_RE = re.compile(
    r"^[^.;]{0,60}?\b(?:symptom\w*|brain ?stem|posterior fossa|requir\w+|uncontrolled|untreated"
    r"|progressi\w*|unstable|not (?:controlled|stable)|growing|increas\w+|edema|oedema"
    r"|mass effect)\b",
    _I,
)


def _qualified(text: str, m: re.Match) -> bool:
    """The brain metastases this mention names are only some kinds (active, symptomatic, in a
    place): a patient with brain metastases of unrecorded kind may have another kind."""
    return bool(
        _BRAIN_ACTIVE_RE.search(text[max(0, m.start() - 60) : m.start() + 8])
        or _BRAIN_QUALIFIED_AFTER_RE.search(text[m.end() : m.end() + 80])
    )


def _any_known(text: str) -> bool:
    """ "No known or symptomatic CNS metastases": any known one excludes; not so in "Known or
    symptomatic active CNS metastases", where "active" qualifies both."""
    for q in _ANY_OR_QUALIFIED_RE.finditer(text):
        nxt = _BRAIN_METS_RE.search(text, q.end())
        gap = text[q.end() : nxt.start()] if nxt else ""
        if not _BRAIN_ACTIVE_RE.search(gap):
            return True
    return False


# Brain metastases named as such (not only leptomeningeal disease / cord compression).
_BRAIN_METS_RE = re.compile(
    r"\b(?:brain|cns|central nervous system|intracranial|cerebral|intra-cranial)\b[^.;]{0,30}"
    r"metasta|metasta\w*\s+(?:\w+\s+){0,3}(?:to|in|of)\s+(?:the\s+)?(?:brain|cns|central nervous)"
    r"|\b(?:cns|central nervous system)\s+(?:\(cns\)\s+)?(?:leuka?emi\w*|lymphoma|infiltration|"
    r"relapse|involvement)\b",
    _I,
)
_BRAIN_ACTIVE_RE = re.compile(
    r"\b(?:active|untreated|symptomatic|unstable|progressive|progressing|uncontrolled|new|"
    r"growing|severe|recurrent|not (?:controlled|stable))\b",
    _I,
)
# An explicit requirement ("must have at least one measurable brain metastasis").
_BRAIN_REQUIRED_RE = re.compile(
    r"\b(?:must|should|required?|need to)\b[^.;]{0,60}\b(?:brain|cns|intracranial)\b[^.;]{0,30}"
    r"metasta|\b(?:presence of|at least one|documented|confirmed|diagnosis of)\b[^.;]{0,40}"
    r"\b(?:brain|cns|intracranial)\b[^.;]{0,30}metasta",
    _I,
)
_BRAIN_PERMISSIVE_RE = re.compile(
    r"\b(?:eligible|permitted|allowed|may|can|cannot|provided|excluded|exclude)\b", _I
)
