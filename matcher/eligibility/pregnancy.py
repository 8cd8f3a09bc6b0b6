"""Pregnancy, breastfeeding and contraception: parsing and evaluation."""

from __future__ import annotations

import re
from typing import Any

from matcher.eligibility.common import _apply
from matcher.eligibility.model import MET, NOT_MET, UNKNOWN, Criterion
from matcher.eligibility.text import _I, _NEG_RE, _clause_prefix, _Ctx

# --- pregnancy / contraception -------------------------------------------------------------
_PREG_RE = re.compile(
    r"\bpregnan\w*|\blactat\w*|\bbreast[- ]?fe(?:e)?d\w*|\bnursing\b(?!\s+(?:home|facility|care|staff))",
    _I,
)
_PREG_STRONG_RE = re.compile(
    r"\bpregnancy test|\btest for pregnancy|\b(?:is|are|be|being|currently|women who are|females who are|not|who are) "
    r"pregnant|\bpregnant (?:or|and|women|female|patients?|participants?|subjects?)|\blactat|"
    r"\bbreast[- ]?fe|\bnursing\b|^\s*pregnan|\bpregnancy (?:or|and|/) |\bpregnant\b",
    _I,
)
_CONTRA_RE = re.compile(
    r"\bcontracepti\w*|\bbirth control\b|\bbarrier method|\babstinen\w*|\bavoid(?:ing)? "
    r"(?:becoming )?pregnan|\bprevent(?:ing)? pregnan",
    _I,
)
_PREG_REQUIRED_RE = re.compile(
    r"\b(?:pregnant (?:women|woman|females?|patients?|participants?|subjects?)|singleton|gestation"
    r"|weeks of pregnancy|pregnant at)\b",
    _I,
)


_HYPOTHETICAL_RE = re.compile(
    r"\b(?:should|if|in case|in the event that)\b[^.;]{0,40}?\bbecom\w*\s+pregnant\b"
    r"(?:\s+or\s+suspects?\s+(?:that\s+)?(?:she|they)\s+(?:is|are|may be)\s+pregnant)?"
    r"|\bsuspects?\s+(?:that\s+)?(?:she|they)\s+(?:is|are|may be)\s+pregnant\b",
    _I,
)


def _pregnancy(c: _Ctx) -> list[tuple[str, str, dict]]:
    s = c.s
    out: list[tuple[str, str, dict]] = []
    preg = _PREG_RE.search(s)
    contra = _CONTRA_RE.search(s)
    male_only = bool(re.match(r"\s*(?:male|men)\b", s)) and not re.search(
        r"\bfemales?\b(?! partner)|\bwomen\b", s[:40]
    )
    if contra and preg and not _PREG_STRONG_RE.search(_HYPOTHETICAL_RE.sub(" ", s)):
        # "... must agree to use adequate contraception ... Should a woman become pregnant or
        # suspect she is pregnant while participating, she should inform ...": what to do if
        # a pregnancy happens later, no exclusion of a pregnancy now
        preg = None
    if preg and _PREG_STRONG_RE.search(s) and not (male_only and contra):
        vals = {
            # "Women who are breastfeeding." excludes nursing, not pregnancy
            "pregnant": bool(re.search(r"pregnan|gestation", s, _I)),
            "breastfeeding": bool(re.search(r"lactat|breast[- ]?fe|nursing", s)),
            "test_required": bool(re.search(r"pregnancy test|hcg", s)),
        }
        if (
            c.section == "inclusion"
            and not contra
            and _PREG_REQUIRED_RE.search(s)
            and not _NEG_RE.search(_clause_prefix(s, preg.start()))
        ):
            out.append(("pregnancy", "require", vals))
        else:
            out.append(("pregnancy", "exclude", vals))
    if contra:
        out.append(("contraception", "require", {}))
    return out


def _ev_pregnancy(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    if c.polarity == "exclude":
        if p.sex and p.sex.lower() == "male":
            return MET, "male patient; pregnancy exclusion does not apply"
        if not c.values.get("pregnant", True):
            return UNKNOWN, "breastfeeding not recorded: verify (trial excludes breastfeeding)"
        if p.pregnant is None:
            what = "pregnant or breastfeeding" if c.values.get("breastfeeding") else "pregnant"
            return UNKNOWN, f"pregnancy status not recorded: verify (trial excludes {what})"
        if p.pregnant:
            return NOT_MET, "pregnant; trial excludes pregnancy"
        extra = " (breastfeeding not recorded: verify)" if c.values.get("breastfeeding") else ""
        return MET, f"not pregnant; trial excludes pregnancy{extra}"
    if p.pregnant is None:
        return UNKNOWN, "pregnancy status not recorded: verify (trial enrols pregnant women)"
    return _apply(
        "require", bool(p.pregnant)
    ), f"pregnant: {'yes' if p.pregnant else 'no'}; trial enrols pregnant women"


def _ev_contraception(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    return UNKNOWN, "contraception requirement: confirm with the patient at consent"
