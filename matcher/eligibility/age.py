"""Age: parsing and evaluation."""

from __future__ import annotations

import re
from typing import Any

from matcher.eligibility.common import _apply, _fmt, _range_text
from matcher.eligibility.model import NOT_MET, UNKNOWN, Criterion
from matcher.eligibility.text import _I, _Ctx

# --- age ----------------------------------------------------------------------------------
_AGE_ANCHOR_RE = re.compile(
    r"\bage[ds]?\b|\b\d{1,3} years? (?:or|and) (?:older|over|above)\b|\byears? (?:of age|old)\b|\byrs? old\b|\byears?-old\b|\bmonths? (?:of age|old)\b"
    # a line that is an age bound ("More than 75 years at the time of study enrollment"), not
    # a time since something ("> 5 years since the last treatment")
    # "Patients must be 18 years to 70 years"
    r"|\b(?:must be|be|are|is)\s+\d{1,3}\s*years?\s*(?:-|to)\s*\d{1,3}\s*years?\b"
    r"|^[\s*-]*(?:>=|<=|>|<)\s*(?:1[2-9]|[2-9]\d|1[01]\d)\s*years?\b(?![^.;]{0,40}\b(?:since|after|ago|"
    r"prior|before|from|of (?:follow|treatment|therapy)|duration|elapsed|free|remission))",
    _I,
)
_AGE_UNIT = r"(?P<unit>years?|yrs?|months?)"
_REPEATED_SIGN_RE = re.compile(r"(?<=[<>=])\s*\(\s*(?:>=|<=|<|>|=)\s*\)")
_AGE_PATTERNS = [
    re.compile(
        r"(?:between|from)\s*(?P<a>\d{1,3}(?:\.\d)?)\s*(?:years?|yrs?|months?)?\s*(?:of age\s*)?"
        r"(?:and|to|-)\s*(?P<b>\d{1,3}(?:\.\d)?)\s*" + _AGE_UNIT,
        _I,
    ),
    re.compile(r"(?P<a>\d{1,3})\s*(?:-|~|to)\s*(?P<b>\d{1,3})\s*" + _AGE_UNIT, _I),
    re.compile(
        r"(?P<op>>=|<=|<|>|=)\s*(?P<n>\d{1,3}(?:\.\d)?)(?![\d.])\s*(?:" + _AGE_UNIT + r")?"
        r"(?!\s*(?:kg|cm|mg|%|weeks|days))",
        _I,
    ),
    re.compile(
        r"(?P<n2>\d{1,3})\s*" + _AGE_UNIT + r"\s*(?:of age|old|of|\))?\s*(?:or|and)\s*"
        r"(?P<dir>older|over|above|greater|more|younger|less|under|below|>=|<=|>|<(?!\s*\d))",
        _I,
    ),
    re.compile(r"\bage[ds]?\s*:?\s*(?P<n3>\d{1,3})\s*(?:years?|yrs?)?\s*\+", _I),
    # "Age 18 or older", "Age 21 and under" (a PDQ "Age" heading over "21 and under"): a bare
    # number right after the word age is years
    re.compile(
        r"\bage[ds]?\s*:?\s*(?P<n2>\d{1,3})\s*(?:or|and)\s*"
        r"(?P<dir>older|over|above|greater|more|younger|less|under|below|>=|<=|>|<(?!\s*\d))",
        _I,
    ),
    # "18 years to 70 years"
    re.compile(
        r"(?P<a>\d{1,3})\s*(?:years?|yrs?)\s*(?:-|to|and)\s*(?P<b>\d{1,3})\s*" + _AGE_UNIT, _I
    ),
    # "aged over 18 years", "aged under 75 years"
    re.compile(
        r"\bage[ds]?\s+(?P<wdir>over|above|older than|greater than|under|below|younger than|less than)"
        r"\s+(?P<n4>\d{1,3})\s*(?P<unit>years?|yrs?|months?)?\b(?!\s*(?:kg|cm|%))",
        _I,
    ),
    # "Aged between 18 and 70", "Age: 18~70": a bare range right after the word age is years
    re.compile(
        r"\bage[ds]?\s*(?::|is|of)?\s*(?:(?:between|from)\s*(?P<a>\d{1,3})\s*(?:and|to|-|~)"
        r"|(?P<a2>\d{1,3})\s*(?:to|-|~))\s*"
        r"(?P<b>\d{1,3})\b(?![.,]\d)(?!\s*(?:%|kg|cm|mg|weeks?|wks?|days?|hours?|months?|years?|yrs?)\b)",
        _I,
    ),
]


_UPPER_AFTER_RE = re.compile(
    r"\s*(?:y\b)?\s*(?:old\b|of age\b)?\s*(?:,|and|but|to)\s*(?P<op><=|<)\s*(?P<n>\d{1,3}(?:\.\d)?)\s*"
    r"(?P<unit>years?|yrs?|y|months?)?\b",
    _I,
)
# a minor's consent signed by someone else ("Patients under 18 years old ... should have their
# legal guardians sign the informed consent"): who signs, not an age limit
_CONSENT_RE = re.compile(
    r"(?:under|younger than|less than|<|below)\s*\d{1,2}\s*(?:years?|yrs?)?[^.;]{0,80}?\b"
    r"(?:guardians?|parents?|parental|legally (?:authori[sz]ed|acceptable) representatives?)\b",
    re.IGNORECASE,
)


def _age(c: _Ctx) -> list[tuple[str, str, dict]]:
    # "greater than or equal to (≥) 18 years": the symbol in parentheses repeats the words
    s = _REPEATED_SIGN_RE.sub("", c.s)
    anchor = _AGE_ANCHOR_RE.search(s)
    if not anchor:
        return []
    # (within the age's own sentence: "18-70 years old; ECOG performance status 0-1" states
    # both an age and a performance status)
    seg_a = max(s.rfind(";", 0, anchor.start()), s.rfind(",", 0, anchor.start())) + 1
    ends = [i for i in (s.find(";", anchor.end()), s.find(",", anchor.end())) if i >= 0]
    seg = s[seg_a : min(ends) if ends else len(s)]
    other = re.search(
        r"gestation|life expectancy|bone age|menopaus|amenorr|perform|ecog|karnofsky|lansky", seg
    )
    if other and not (
        # "Aged >= 18 and <= 70 years old with ECOG PS score of 0-1": an age, then a score
        # joined to it, not a score for an age group
        seg_a + other.start() > anchor.end()
        and re.search(r"\bwith\b", s[anchor.end() : seg_a + other.start()])
        and ":" not in s[anchor.end() : seg_a + other.start()]
    ):
        return []
    # a conditional age ("for patients < 16 years, Lansky ...") is not an age gate
    pre = s[max(0, anchor.start() - 30) : anchor.start()]
    if re.search(r"\b(?:for|if|in|when)\s+(?:\w+\s+){0,2}$", pre) and not re.match(
        r"age[ds]?\b", s
    ):
        return []
    if re.match(r"\s*(?:for|if|when|in)\s", s):
        return []
    if _CONSENT_RE.search(s):
        # "Patients under 18 years old ... should have their legal guardians sign the informed
        # consent": who signs for a minor, not an age limit
        return []
    matches = sorted(
        (m for rx in _AGE_PATTERNS for m in rx.finditer(s)), key=lambda m: (m.start(), -m.end())
    )
    for m in matches:
        if True:
            before = s[max(0, m.start() - 25) : m.start()]
            if re.search(
                r"\b(?:for|if|when|in (?:patients|subjects|participants))\b[^;:]*$", before
            ) or (s[: m.start()].count("(") > s[: m.start()].count(")")):
                continue  # "(for patients > 12 years of age)": a condition, not an age gate
            if abs(m.start() - anchor.start()) > 45 and abs(m.end() - anchor.end()) > 45:
                continue
            vals = _bound(s, m)
            if vals is None:
                continue
            if (vals["min_years"] is None) != (vals["max_years"] is None):
                _second_bound(s, m, vals, matches)
            for k in ("min_years", "max_years"):
                if vals[k] is not None and not 0 <= vals[k] <= 120:
                    break
            else:
                if _another_age_band(s, m):
                    # "Patients aged 60-80 who ...; Patients aged 14-60 who ...": age bands of
                    # alternative groups; which one the patient is in is not read
                    return [("age", c.polarity(m.start()), vals, {"conditional": True})]
                return [("age", c.polarity(m.start()), vals)]
    return []


def _bound(s: str, m: re.Match) -> dict[str, Any] | None:
    """The age bound(s) one pattern match states, or None when it states none."""
    g = m.groupdict()
    unit = (g.get("unit") or "year").lower()
    f = 1 / 12 if unit.startswith("month") else 1.0
    vals: dict[str, Any] = {"min_years": None, "max_years": None, "source": "text"}
    if g.get("a") is not None or g.get("a2") is not None:
        lo_n, hi_n = float(g.get("a") or g["a2"]), float(g["b"])
        if hi_n < lo_n:
            return None
        vals["min_years"] = round(lo_n * f, 3)
        vals["max_years"] = round(hi_n * f, 3)
    elif g.get("op"):
        if not g.get("unit") and not re.search(
            r"\bage[ds]?\s*(?:of|:|is|must be|should be|=)?\s*$",
            s[max(0, m.start() - 20) : m.start()],
        ):
            return None
        n = float(g["n"]) * f
        op = g["op"]
        if op in (">=", ">"):
            vals["min_years"] = round(n, 3)
            vals["min_exclusive"] = op == ">"
            # "Age >= 60 years and <= 75 years": the upper bound that follows
            hi = _UPPER_AFTER_RE.match(s, m.end())
            if hi:
                # "> 6 months and < 21 years": the upper bound's own unit
                hu = (hi.group("unit") or "").lower()
                hf = f if not hu else (1 / 12 if hu.startswith("month") else 1.0)
                vals["max_years"] = round(float(hi.group("n")) * hf, 3)
                vals["max_exclusive"] = hi.group("op") == "<"
        elif op in ("<=", "<"):
            vals["max_years"] = round(n, 3)
            vals["max_exclusive"] = op == "<"
        else:
            vals["min_years"] = vals["max_years"] = round(n, 3)
    elif g.get("n2"):
        n = float(g["n2"]) * f
        if g["dir"].lower() in ("older", "over", "above", "greater", "more", ">", ">="):
            vals["min_years"] = round(n, 3)
        else:
            vals["max_years"] = round(n, 3)
    elif g.get("n3"):
        vals["min_years"] = float(g["n3"])
    elif g.get("n4"):
        n = round(float(g["n4"]) * f, 3)
        if g["wdir"].lower() in ("over", "above", "older than", "greater than"):
            vals["min_years"], vals["min_exclusive"] = n, True
        else:
            vals["max_years"], vals["max_exclusive"] = n, True
    else:
        return None
    return vals


_BOUND_GAP_RE = re.compile(r"\s*(?:,\s*)?(?:and|but|to|,)\s*(?:aged?\s*)?$", _I)


def _second_bound(s: str, m: re.Match, vals: dict, matches: list) -> None:
    """ "18 years or above and 75 years or below", "18 years or older and less than 75
    years": the opposite bound written right after the first one joins it."""
    for m2 in matches:
        if m2.start() < m.end() or not _BOUND_GAP_RE.fullmatch(s[m.end() : m2.start()]):
            continue
        other = _bound(s, m2)
        if other is None:
            continue
        for have, add in (("min", "max"), ("max", "min")):
            if (
                vals[f"{have}_years"] is not None
                and other[f"{add}_years"] is not None
                and other[f"{have}_years"] is None
            ):
                vals[f"{add}_years"] = other[f"{add}_years"]
                if f"{add}_exclusive" in other:
                    vals[f"{add}_exclusive"] = other[f"{add}_exclusive"]
                break
        return


_AGE_BAND_RE = re.compile(
    r"\bage[ds]?\s*(?::|is|of|between|from)?\s*\d{1,3}\s*(?:-|to|~|and)\s*\d{1,3}", _I
)


def _another_age_band(s: str, m: re.Match) -> bool:
    """A second "aged N-M" in the line, apart from the bound ``m`` read."""
    return any(b.end() <= m.start() or b.start() >= m.end() for b in _AGE_BAND_RE.finditer(s))


# an age stated at diagnosis, not today (also read by rank.text_age_ranges)
AT_DIAGNOSIS_RE = re.compile(
    r"\bat (?:the )?(?:time of )?(?:initial |first |original |primary )?diagnos\w*"
    r"|\bwhen (?:first |initially )?diagnosed|\bat (?:the )?(?:age of )?onset\b",
    re.IGNORECASE,
)


def _ev_age(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    v = c.values
    lo, hi = v.get("min_years"), v.get("max_years")
    src = "registered" if v.get("source") == "structured" else "stated in criteria"
    crit = f"age {_range_text(lo, hi, ' y')} ({src})"
    if p.age is None:
        return UNKNOWN, f"age not recorded: verify ({crit})"
    a = float(p.age)
    inside = True
    if lo is not None:
        inside &= a > lo if v.get("min_exclusive") else a >= lo
    if hi is not None:
        # a registered maximum "65 Years" admits anyone who has not yet turned 66
        inside &= (
            a < hi
            if v.get("max_exclusive")
            else (a < hi + 1 if v.get("source") == "structured" else a <= hi)
        )
    verdict = _apply(c.polarity, inside)
    age = _fmt(round(a, 1))
    side = (
        v.get("widened_below")
        if lo is not None and a < lo
        else v.get("widened_above")
        if hi is not None and a > hi
        else None
    )
    if verdict == NOT_MET and c.polarity == "require" and side:
        # "65 to 74" beside "If under 65, higher priority is given to protocol X unless ...":
        # the band does not bar the patients that line speaks of
        return UNKNOWN, f"age {age} outside {crit}; the criteria also say {side!r}: verify"
    if (
        verdict == NOT_MET
        and c.polarity == "require"
        and hi is not None
        and a > hi
        and v.get("source") != "structured"
        and AT_DIAGNOSIS_RE.search(c.text)
    ):
        # "Age < 21 years at the time of diagnosis": today's age over the bound says nothing
        # of the age at diagnosis (a lower bound still excludes: one is never younger today)
        return (
            UNKNOWN,
            f"age {age} today; trial requires {_range_text(lo, hi, ' y')} at diagnosis: "
            "verify the age at diagnosis",
        )
    if c.polarity == "require":
        return verdict, f"age {age} {'within' if inside else 'outside'} {crit}"
    # an exclusion such as "age > 85": say which side of it the patient is on
    span = _age_span(lo, hi, v.get("min_exclusive"), v.get("max_exclusive"))
    if inside:
        return verdict, f"age {age}: {span} ({src}), which the trial excludes"
    return verdict, f"age {age}: not {span} ({src})"


def _age_span(lo: float | None, hi: float | None, lo_excl: Any, hi_excl: Any) -> str:
    """Wording of an age range: "over 85", "85 or older", "under 18", "aged 18–75 y"."""
    if lo is not None and hi is None:
        return f"over {_fmt(lo)}" if lo_excl else f"{_fmt(lo)} or older"
    if hi is not None and lo is None:
        return f"under {_fmt(hi)}" if hi_excl else f"{_fmt(hi)} or younger"
    return f"aged {_range_text(lo, hi, ' y')}"
