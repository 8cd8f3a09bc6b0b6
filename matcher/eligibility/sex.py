"""Sex: the registered field, and a line that opens with the one sex it enrols."""

from __future__ import annotations

import re
from typing import Any

from matcher.eligibility.model import MET, NOT_MET, UNKNOWN, Criterion


def _ev_sex(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    want = c.values["sex"].lower()
    if not p.sex:
        return UNKNOWN, f"sex not recorded: verify (trial enrols {want} only)"
    ok = p.sex.lower() == want
    return (MET if ok else NOT_MET), f"sex {p.sex}; trial enrols {want} only"


# --- sex stated in the text ------------------------------------------------------------------
# Mirror pages and older records often carry no structured sex, and a registry's sex field is
# sometimes ALL where the text enrols one sex ("Women aged 18 to 70 years with breast cancer").
# A line opens with the population it enrols: a sex word followed by an age or by the
# disease ("with ... carcinoma"). Sub-group rules ("Women of childbearing potential must ...",
# "Male patients must agree to use contraception") and lines naming both sexes are not read.
_SEX_LEAD_RE = re.compile(
    r"\s*(?:(?:post|pre|peri)-?\s?menopausal\s+|adult\s+)?"
    r"(?P<w>wom[ae]n|females?|men|males?)"
    r"(?:\s+(?:patients?|participants?|subjects?|individuals?|volunteers?))?\s*,?\s*(?P<rest>.*)",
    re.I,
)
_SEX_POPULATION_RE = re.compile(
    r"(?:aged?\b|ages\b|(?:of\s+)?(?:≥|>=|>|at least|over|older than)\s*\d|\d+\s*(?:years|yrs|y)\b"
    r"|with\s+(?:\S+\s+){0,8}?(?:cancers?|carcinomas?|adenocarcinomas?|tumou?rs?|malignanc\w*"
    r"|neoplasms?|sarcomas?|lymphomas?|leuka?emias?|melanomas?|myelomas?)\b)",
    re.I,
)
_SEX_SUBGROUP_RE = re.compile(
    r"child[- ]?bearing|reproductive|potential|pregnan|lactat|breast[- ]?fe|nursing|contracep"
    r"|partner|fertil|steril|menstru|postpartum|sexually|birth control|sperm|ovum|\beggs?\b",
    re.I,
)
_FEMALE_RE = re.compile(r"\b(?:wom[ae]n|females?|girls?)\b", re.I)
_MALE_RE = re.compile(r"\b(?:m[ae]n|males?|boys?)\b", re.I)


def _sex_text(c) -> list[tuple[str, str, dict]]:
    """An inclusion line that opens with the one sex it enrols."""
    if c.section != "inclusion" or c.context_negates:
        return []
    m = _SEX_LEAD_RE.match(c.plain)
    if not m or not _SEX_POPULATION_RE.match(m.group("rest")):
        return []
    if _SEX_SUBGROUP_RE.search(c.plain):
        return []
    female = m.group("w").lower().startswith(("wom", "fem"))
    other = _MALE_RE if female else _FEMALE_RE
    if other.search(c.plain):
        return []  # "Men or women aged 18 or older", "female, or male with ..."
    return [("sex", "require", {"sex": "FEMALE" if female else "MALE", "source": "text"})]
