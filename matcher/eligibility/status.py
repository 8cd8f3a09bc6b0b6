"""Disease status (relapsed / refractory / newly diagnosed): parsing and evaluation.

"Relapsed or refractory AML", "R/R B-ALL", "newly diagnosed multiple myeloma": the state of
the disease a trial admits or excludes, read against the patient's ``disease_status`` (from
the record, or from the diagnosis as written: "relapsed AML"). A patient whose record lists no
prior therapy at all (``prior_therapies: []``) is untreated, so not relapsed or refractory.
Only a clean contradiction (newly diagnosed against relapsed / refractory) gives NOT_MET; a
patient in remission, or with treatment but no status recorded, is UNKNOWN.
"""

from __future__ import annotations

import re
from typing import Any

from matcher.eligibility.model import MET, NOT_MET, UNKNOWN, Criterion
from matcher.eligibility.text import _I, _Ctx

_RR_RE = re.compile(
    r"\b(?:relapsed|refractory|r/r|relapse)\b(?:\s*(?:/|or|and/or|and|,)\s*"
    r"(?:relapsed|refractory|recurrent|relapse)\b)*",
    _I,
)
_ND_RE = re.compile(r"\bnewly[- ]diagnosed\b|\bnew(?:ly)?[- ]diagnosis\b", _I)
# the disease a status is said of, within a few words after it
_DISEASE_AFTER_RE = re.compile(
    r"^[\s,/()-]*(?:[\w+-]+\s+){0,5}?(?:disease|malignanc\w*|leuka?emi\w*|lymphom\w*|myelom\w*|"
    r"\baml\b|\ball\b|\bcll\b|\bsll\b|\bmds\b|\bcml\b|\bmpal\b|b-all|t-all|neoplasm\w*|cancer|"
    r"tumou?rs?|sarcom\w*|carcinom\w*|nhl|dlbcl|\bmm\b|hodgkin)",
    _I,
)
# therapy-history phrasing belongs to the prior-therapy criteria
_THERAPY_AFTER_RE = re.compile(
    r"^\s*(?:to|after|following|on|within|from)\b|^\s*(?:disease\s+)?(?:after|following)\b", _I
)


_THERAPY_BEFORE_RE = re.compile(
    r"(?:therap\w*|treatments?|chemotherapy|regimens?|cycles?|courses?|lines?|agents?|"
    r"transplant\w*)\s+(?:for|of|in)\s+(?:the\s+|their\s+)?$",
    _I,
)


def _status(c: _Ctx) -> list[tuple[str, str, dict]]:
    out: list[tuple[str, str, dict]] = []
    s = c.s
    for rx, status in ((_RR_RE, ["relapsed", "refractory"]), (_ND_RE, ["newly_diagnosed"])):
        for m in rx.finditer(s):
            after = s[m.end() : m.end() + 80]
            if _THERAPY_AFTER_RE.match(after) or not _DISEASE_AFTER_RE.match(after):
                continue
            if _THERAPY_BEFORE_RE.search(s[max(0, m.start() - 80) : m.start()]):
                continue  # "chemotherapy for relapsed leukemia": a therapy setting
            if re.match(r"^[\s,]*(?:[\w-]+\s+){0,2}?metasta", after, _I):
                continue  # "untreated brain metastases": the brain criterion's
            vals = {"status": status}
            item = ("disease_status", c.polarity(m.start()), vals)
            if item not in out:
                out.append(item)
            break
    return out


_LABEL = {
    "newly_diagnosed": "newly diagnosed",
    "relapsed": "relapsed",
    "refractory": "refractory",
    "remission": "in remission",
}
_CONTRADICTS = {
    "newly_diagnosed": {"relapsed", "refractory"},
    "relapsed": {"newly_diagnosed"},
    "refractory": {"newly_diagnosed"},
}


def _ev_disease_status(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    wanted = set(c.values.get("status") or [])
    desc = " or ".join(_LABEL[x] for x in c.values.get("status") or [])
    own = getattr(p, "disease_status", None)
    how = "recorded"
    if own is None and p.prior_therapies == []:
        own, how = "newly_diagnosed", "untreated: no prior therapy recorded"
    verb = "requires" if c.polarity == "require" else "excludes"
    if own is None:
        return UNKNOWN, f"disease status not recorded: verify (trial {verb} {desc} disease)"
    said = f"disease {_LABEL[own]} ({how})"
    inside = own in wanted
    contradicts = any(own in _CONTRADICTS.get(w, set()) for w in wanted)
    if c.polarity == "require":
        if inside:
            return MET, f"{said}; trial requires {desc} disease"
        if contradicts:
            return NOT_MET, f"{said}; trial requires {desc} disease"
        return UNKNOWN, f"{said}; trial requires {desc} disease: verify"
    if inside:
        return NOT_MET, f"{said}; trial excludes {desc} disease"
    if contradicts:
        return MET, f"{said}; trial excludes {desc} disease"
    return UNKNOWN, f"{said}; trial excludes {desc} disease: verify"
