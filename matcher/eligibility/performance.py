"""Performance status (ECOG, Karnofsky, Lansky): parsing and evaluation."""

from __future__ import annotations

import re
from typing import Any

from matcher.eligibility.common import _apply, _range_text
from matcher.eligibility.model import MET, NOT_MET, UNKNOWN, Criterion
from matcher.eligibility.text import _I, _Ctx

# --- performance status -----------------------------------------------------------------
_PS_RE = re.compile(
    r"\b(?P<ecog>ecog|eastern cooperative oncology group|eastern cancer cooperati(?:ve|on) group|"
    r"zubrod|who\b(?=[^.;]{0,30}perform)"
    # "WHO grade 0-1": a grade that starts at 0 is a performance grade (tumour grades start at 1)
    r"|who\b(?=\s+grade\s*0\s*(?:-|to|or|,|/)\s*[0-4]\b)"
    r"|who[- ]ps)\b|\b(?P<kps>karnofsky|karnovsky|kps)\b|\b(?P<lansky>lansky|lanksy|lps)\b"
    r"|\b(?P<generic>performance status|performance score|ps)\b",
    _I,
)
_PS_VALUE_RE = re.compile(
    # every number ends where its digits end ("within 14 days" is no score of 1)
    r"(?P<range>(?P<r1>\d{1,3})(?!\d)\s*%?\s*(?:-|~|to|through)\s*(?P<r2>\d{1,3})(?!\d)"
    r"(?!\s*(?:days|weeks|months|years)))"
    r"|(?P<list>(?P<l1>\d{1,3})(?:\s*,\s*\d{1,3})*\s*,?\s*(?:or|and|/)\s*(?P<l2>\d{1,3})(?!\d)"
    r"|\d(?:\s*,\s*\d)+\b(?!\s*(?:%|days|weeks|months|years|[.,]\d)))"
    r"|(?P<op>>=|<=|<|>|=)\s*(?P<n>\d{1,3})(?!\d)(?!\s*(?:days|weeks|months|years))"
    # "70 or above" reaches here as "70 or >" (the text is prepared)
    r"|(?P<wn>\d{1,3})\s*%?\s*or\s*(?P<dir>less|lower|better|below|fewer|greater|higher|more|above"
    r"|>=|<=|>|<)"
    r"|(?<!\d)(?P<single>\d{1,3})(?!\d)\s*%?(?!\s*(?:-|~|to|days|weeks|months|years|mg|x))",
    _I,
)
_PS_FILLER_RE = re.compile(
    r"^(?:\s|[:(),=]|performance|status|score|scale|ps\b|of\b|must|be\b|is\b|should|have|has"
    r"|a\b|an\b|grade|level|rating|equal to|between|\(ps\)|\(ecog\)|\(kps\)|%|within|range"
    r"|eastern|cooperative|oncology|group|who\b|zubrod|karnofsky|karnovsky|lansky|play|points?\b"
    r"|physical\b|functional\b)*",
    _I,
)


# "ECOG <= 2 for patients >= 16 years old, Lansky > 50 for patients < 16": a scale that
# applies to an age group only. Matched on prepared text (">=") and on plain text ("less than").
_AGE_OP = (
    r"(?P<op>>=|<=|<|>|≥|≤|greater than or equal to|less than or equal to|greater than|"
    r"less than|older than|younger than|over|under|above|below|at least)\s*(?:\[[<>=≥≤]+\]\s*)?"
)
_AGE_SUBJECT = r"(?:(?:all\s+)?(?:patients?|participants?|subjects?|children|adults|those|pts)\s+)"
PS_AGE_RE = re.compile(
    r"(?:\b(?:for|in|if|when)\b\s*|\(\s*(?:for\s+|in\s+)?)"
    r"(?:" + _AGE_SUBJECT + r"(?:(?:aged?|ages)\s+)?|(?:aged?|ages)\s+(?:of\s+)?)?"
    r"(?:" + _AGE_OP + r"(?P<n>\d{1,2})\s*(?P<unit>years?|yrs?|y\b)?(?:\s*(?:of age|old))?"
    r"|(?P<n2>\d{1,2})\s*(?:years?|yrs?)\s*(?:of age\s*)?(?:and|or)\s*"
    r"(?P<dir>older|over|above|younger|under|less|below))",
    _I,
)
_AGE_WORD_OPS = {
    "≥": ">=", "≤": "<=", "greater than or equal to": ">=", "less than or equal to": "<=",
    "greater than": ">", "older than": ">", "over": ">", "above": ">", "at least": ">=",
    "less than": "<", "younger than": "<", "under": "<", "below": "<",
}  # fmt: skip


def ps_age_condition(seg: str) -> tuple[re.Match, str, int] | None:
    """The age group a performance-scale mention applies to, as (match, op, years)."""
    for m in PS_AGE_RE.finditer(seg):
        subject = re.search(
            r"patient|participant|subject|children|adult|those|pts|\bage", m.group(0)
        )
        if m.group("n2"):
            op = ">=" if m.group("dir").lower() in ("older", "over", "above") else "<="
            return m, op, int(m.group("n2"))
        if not (subject or m.group("unit")):
            continue  # "(>= 50%)" is a score, not an age
        op = m.group("op").lower()
        return m, _AGE_WORD_OPS.get(op, op), int(m.group("n"))
    return None


_LEAD_AGE_RE = re.compile(
    _AGE_SUBJECT + r"(?:(?:aged?|ages)\s+)?" + _AGE_OP
    + r"(?P<n>\d{1,2})\s*(?:years?|yrs?|y\b)?(?:\s*(?:of age|old))?",
    _I,
)  # fmt: skip


def _leading_age_group(before: str) -> tuple[re.Match, str, int] | None:
    """An age group stated as the subject before a scale ("patients >= 70 years must have
    ECOG 0-1"), as (match, op, years); the subject word is required ("Age >= 18, ECOG 0-1"
    states an age criterion, not a group)."""
    m = _LEAD_AGE_RE.search(before)
    if m is None or re.search(r"[.,]\s", before[m.end() :]):
        return None
    op = m.group("op").lower()
    return m, _AGE_WORD_OPS.get(op, op), int(m.group("n"))


# a score written before the scale's name (">=50 percent karnofsky"), and a generic mention's
# score that belongs to the scale named right after it ("performance status >= 50 by lansky")
_PS_VALUE_BEFORE_RE = re.compile(
    r"(?P<op>>=|<=|<|>|=)\s*(?P<n>\d{1,3})\s*(?:%|percent)?\s*(?:on\s+(?:the\s+)?)?$", _I
)
_NAMED_SCALE_AFTER_RE = re.compile(r"\s*(?:%|percent)?\s*(?:by|on|in|per|using)\s+(?:the\s+)?", _I)


def _ps(c: _Ctx) -> list[tuple[str, str, dict]]:
    s = c.s
    if not re.search(
        r"perform|ecog|eastern cooperative|eastern cancer cooperati|karnofsky|karnovsky|kps|lansky|lanksy|zubrod"
        # "PS 0 to 1", "PS 2" as lines of their own
        r"|who\s+grade\s*0|\bps\s*(?:[<>=≤≥]|\d)",
        s,
    ):
        return []
    # merge "ECOG performance status", "Lansky (age < 16) performance status" into one mention
    raw = list(_PS_RE.finditer(s))
    mentions: list[list] = []  # [start, end, scale or None]
    for m in raw:
        scale = (
            "karnofsky"
            if m.group("kps")
            else "lansky"
            if m.group("lansky")
            else ("ecog" if m.group("ecog") else None)
        )
        if mentions:
            prev = mentions[-1]
            gap = s[prev[1] : m.start()]
            if (
                len(gap) <= 40
                and re.fullmatch(r"[\s:,]*(?:\([^)]*\))?[\s:,]*(?:[a-z]+\s+){0,2}?", gap)
                and (prev[2] is None or scale is None or prev[2] == scale)
            ):
                prev[1] = m.end()
                prev[2] = prev[2] or scale
                continue
        mentions.append([m.start(), m.end(), scale])
    found: list[tuple[int, str, re.Match | None]] = []
    carried: re.Match | None = None
    for i, (start, end, scale) in enumerate(mentions):
        nxt = mentions[i + 1][0] if i + 1 < len(mentions) else len(s)
        window = re.sub(r"\s*\([^)]*\)", "", s[end : min(nxt, end + 120)])
        fill = _PS_FILLER_RE.match(window)
        window = window[fill.end() if fill else 0 :]
        v = (
            (_PS_VALUE_RE.match(window) or _PS_VALUE_RE.search(window[:30]))
            if window.strip()
            else None
        )
        from_window = v is not None
        if v is None and carried is not None:
            v, carried = carried, None  # "performance status of 0 to 1 on the ECOG"
        if v is None:
            # ">=50 percent (%) karnofsky scale": the value stands before the scale's name
            prev_end = mentions[i - 1][1] if i else 0
            before = re.sub(r"\s*\([^)]*\)", "", s[max(prev_end, start - 40) : start])
            b = _PS_VALUE_BEFORE_RE.search(before)
            v = _PS_VALUE_RE.match(f"{b.group('op')}{b.group('n')}") if b else None
        if (
            scale is None
            and from_window
            and i + 1 < len(mentions)
            and mentions[i + 1][2] is not None
            and _NAMED_SCALE_AFTER_RE.fullmatch(window[v.end() :])
        ):
            # "Performance status >= 50 by lansky scale": the value of the scale named next
            carried = v
            continue
        seg_end = nxt if i + 1 < len(mentions) else len(s)
        cond = ps_age_condition(s[start:seg_end])
        if cond is None and len(mentions) > 1:
            # "Patients >= 70 years must have ECOG 0-1; patients < 70 ECOG 0-2": the age
            # group leads its clause (one scale per age group; a single mention after
            # "patients >= 18 years with" is an age criterion beside the scale)
            lead = max(s.rfind(";", 0, start), mentions[i - 1][1] if i else -1) + 1
            cond = _leading_age_group(s[lead:start])
        found.append((start, scale or "generic", v, cond))
    # "Karnofsky (adults) or Lansky (children) >= 50": a mention without value shares the next one's
    for i in range(len(found) - 2, -1, -1):
        if found[i][2] is None and found[i + 1][2] is not None:
            gap = s[mentions[i][1] : mentions[i + 1][0]]
            if len(gap) <= 80 and re.search(r"\bor\b|\band\b|/", gap):
                found[i] = (found[i][0], found[i][1], found[i + 1][2], found[i][3])
    out: list[tuple[str, str, dict]] = []
    for start, scale, v, cond in found:
        if v is None:
            continue
        lo, hi = _ps_bounds(v)
        if lo is None and hi is None:
            continue
        if scale == "generic":
            scale = "karnofsky" if max(x for x in (lo, hi) if x is not None) > 5 else "ecog"
        elif scale == "ecog" and max(x for x in (lo, hi) if x is not None) > 5:
            continue
        step = 1 if scale == "ecog" else 10
        top = 5 if scale == "ecog" else 100
        op = v.group("op")
        if op == ">":
            lo = (lo or 0) + step
        if op == "<":
            hi = (hi if hi is not None else top) - step
        lo = 0 if lo is None else lo
        hi = top if hi is None else hi
        if lo > hi or hi > top or (scale != "ecog" and hi < 10):
            continue
        if (
            scale == "ecog"
            and lo >= 3
            and c.polarity(start) == "require"
            and re.search(r"\b(?:satisfactory|adequate|good|acceptable|sufficient)\b", s)
        ):
            # "Satisfactory performance status: > 2 by ECOG System": a good status that the
            # numbers contradict (ECOG 3-5 is poor); read by the coordinator, not decided
            continue
        vals = {"scale": scale, "min": lo, "max": hi}
        if cond is not None:
            vals["age_op"], vals["age_years"] = cond[1], cond[2]
        if any(o[2] == vals for o in out):
            continue
        out.append(("performance_status", c.polarity(start), vals))
    return out


def _ps_bounds(v: re.Match) -> tuple[int | None, int | None]:
    if v.group("range"):
        a, b = int(v.group("r1")), int(v.group("r2"))
        return min(a, b), max(a, b)
    if v.group("list"):
        nums = [int(x) for x in re.findall(r"\d{1,3}", v.group("list"))]
        return min(nums), max(nums)
    if v.group("op"):
        n = int(v.group("n"))
        op = v.group("op")
        if op in (">=", ">"):
            return n, None
        if op in ("<=", "<"):
            return None, n
        return n, n
    if v.group("wn"):
        n = int(v.group("wn"))
        d = v.group("dir").lower()
        # "ECOG 2 or better/less" = 0..2 ; "Karnofsky 70 or higher/better" = 70..100
        if d in ("greater", "higher", "more", "above", ">", ">="):
            return n, None
        if d == "better" and n >= 10:
            return n, None
        return None, n
    if v.group("single"):
        n = int(v.group("single"))
        return n, n
    return None, None


def _ps_rel(polarity: str, inside: bool) -> str:
    """How a score relates to a stated range, worded for the verdict it gives."""
    if polarity == "require":
        return "within" if inside else "outside"
    return "in the excluded range" if inside else "not in the excluded range"


# ECOG grade -> Karnofsky band (Oken et al. 1982 correspondence used in protocols)
_ECOG_TO_KPS = {0: (90, 100), 1: (70, 80), 2: (50, 60), 3: (30, 40), 4: (10, 20), 5: (0, 0)}
# how far correspondence tables in use differ from that band (ECOG 2 is given as 50-60 or 60-70)
_CONVERSION_MARGIN = 10


# in the reason of a scale for another age group: MET only because it does not apply, so it
# is no alternative that rescues the scale that does ("Lansky (< 16) or Karnofsky (>= 16)")
OTHER_AGE_GROUP = "only; patient is"


def not_for_this_age_group(v: Any) -> bool:
    """The verdict of a performance scale that does not apply at the patient's age."""
    c = v.criterion
    return (
        c.type == "performance_status"
        and bool((c.values or {}).get("age_op"))
        and v.verdict == MET
        and OTHER_AGE_GROUP in v.reason
    )


def _ev_ps(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    v = c.values
    op, years = v.get("age_op"), v.get("age_years")
    if op is None:
        return _ev_ps_scale(p, c)
    group = f"patients {op.replace('>=', '≥').replace('<=', '≤')} {years} years"
    if p.age is None:
        verdict, reason = _ev_ps_scale(p, c)
        if verdict == NOT_MET:
            return UNKNOWN, f"{reason}; applies to {group}, age not recorded: verify"
        return verdict, f"{reason} (applies to {group})"
    applies = {
        ">=": p.age >= years, ">": p.age > years, "<=": p.age <= years, "<": p.age < years
    }[op]  # fmt: skip
    if not applies:
        return MET, f"applies to {group} {OTHER_AGE_GROUP} {p.age:g}"
    verdict, reason = _ev_ps_scale(p, c)
    return verdict, f"{reason} (applies to {group}; patient is {p.age:g})"


def _ev_ps_scale(p: Any, c: Criterion) -> tuple[str, str]:
    v = c.values
    scale = v["scale"]
    top = 5 if scale == "ecog" else 100
    lo = v["min"] if v["min"] not in (None, 0) or v["max"] == top else None
    hi = v["max"] if v["max"] not in (None, top) else None
    if lo is None and hi is None:
        lo, hi = v["min"], v["max"]
    if scale == "ecog" and lo is None:
        lo = 0  # "ECOG 0–1" reads better than "≤1"
    label = {"ecog": "ECOG", "karnofsky": "Karnofsky", "lansky": "Lansky"}[scale]
    crit = f"{label} {_range_text(lo, hi)}"
    if scale == "ecog":
        if p.ecog is None:
            return (
                UNKNOWN,
                f"ECOG not recorded: verify ({'required' if c.polarity == 'require' else 'excluded'} {crit})",
            )
        inside = v["min"] <= p.ecog <= v["max"]
        conv = (
            f" (converted from {p.ecog_converted_from})"
            if getattr(p, "ecog_converted_from", None)
            else ""
        )
        verdict = _apply(c.polarity, inside)
        if conv and verdict == NOT_MET:
            return UNKNOWN, f"ECOG {p.ecog}{conv} vs {crit}: conversion is approximate, verify"
        return verdict, f"ECOG {p.ecog}{conv} {_ps_rel(c.polarity, inside)} {_range_text(lo, hi)}"
    own = getattr(p, scale, None)
    if own is not None:
        inside = v["min"] <= own <= v["max"]
        return (
            _apply(c.polarity, inside),
            f"{label} {own} {_ps_rel(c.polarity, inside)} {_range_text(lo, hi)}",
        )
    other = p.karnofsky if scale == "lansky" else p.lansky
    if other is not None:
        inside = v["min"] <= other <= v["max"]
        name = "Karnofsky" if scale == "lansky" else "Lansky"
        # Lansky and Karnofsky are one 0-100 scale (Lansky the play-based form for children):
        # the recorded score decides either way
        return (
            MET if (c.polarity == "require") == inside else NOT_MET,
            f"{name} {other} (same 0–100 scale) {_ps_rel(c.polarity, inside)} {crit}",
        )
    if p.ecog is not None:
        band = _ECOG_TO_KPS.get(p.ecog)
        if band and v["min"] <= band[0] and band[1] <= v["max"] and c.polarity == "require":
            return MET, f"ECOG {p.ecog} ≈ {label} {band[0]}–{band[1]}, within {_range_text(lo, hi)}"
        if band and (band[1] < v["min"] or band[0] > v["max"]) and c.polarity == "exclude":
            return (
                MET,
                f"ECOG {p.ecog} ≈ {label} {band[0]}–{band[1]}, not in the excluded range "
                f"{_range_text(lo, hi)}",
            )
        if band and not getattr(p, "ecog_converted_from", None):
            # NOT_MET only when the band, widened by one step each way (published tables
            # differ by about 10 points), is wholly outside the required range or inside the
            # excluded one: ECOG 3 (Karnofsky 30-40) fails "KPS > 60" under any table
            wide = (max(0, band[0] - _CONVERSION_MARGIN), min(100, band[1] + _CONVERSION_MARGIN))
            outside = wide[1] < v["min"] or wide[0] > v["max"]
            within = v["min"] <= wide[0] and wide[1] <= v["max"]
            if (c.polarity == "require" and outside) or (c.polarity == "exclude" and within):
                return (
                    NOT_MET,
                    f"ECOG {p.ecog} ≈ {label} {band[0]}–{band[1]} (any published table: "
                    f"{wide[0]}–{wide[1]}), {_ps_rel(c.polarity, c.polarity == 'exclude')} "
                    f"{_range_text(lo, hi)}",
                )
        return UNKNOWN, f"ECOG {p.ecog} recorded, trial states {crit}: verify {label}"
    return UNKNOWN, f"{label} not recorded: verify ({crit})"


# "ECOG PS 2 are eligible if ...", "patients with ECOG 2 due to tumour-related pain may be
# enrolled", "PS of 2 is acceptable when ...": an exception that admits named scores only
_PS_EXCEPTION_RE = re.compile(
    r"\b(?:ecog|ps|performance status|who|zubrod)(?:\s+(?:ps|performance status|score))?"
    r"\s*(?:of\s*|=\s*)?(?P<a>[0-4])(?:\s*(?:-|–|to|or)\s*(?P<b>[0-4]))?\b"
    r"(?=[^.;]{0,60}\b(?:eligible|allowed|permitted|acceptable|accepted|may|can|will be)\b)",
    re.IGNORECASE,
)
# every score or range named after a performance-scale word ("ECOG 3", "PS of 2", "ECOG
# 0/1", "0 to 2")
_PS_SCORE_RE = re.compile(
    r"(?:\b(?:ecog|ps|performance status|who|zubrod)\b[^.;\d]{0,25}?"
    # "amputees can be 0-2": the score an exception allows, after its verb
    r"|\b(?:can|may|could|will|to)\s+(?:be|have|score)\s+)(?P<a>[0-4])\b"
    r"(?:\s*(?:/|-|–|~|to|or|,|and)\s*(?P<b>[0-4])\b)?",
    re.IGNORECASE,
)
_OTHER_SCALE_RE = re.compile(r"\b(?:karnofsky|karnovsky|kps|lansky|lps)\b", re.IGNORECASE)
# the unread words an exception of named scores leaves
_EXCEPTION_WORDS_RE = re.compile(
    r"(?:(?:are|is|also|will be|may be|be|to be)\s+)?(?:eligible|allowed|permitted|acceptable|"
    r"accepted|included|enrolled)?(?:\s+(?:if|when|provided))?|may|can|if|when|due",
    re.IGNORECASE,
)


def settled_named_exception(p: Any, c: Criterion, vocab: Any) -> str | None:
    """Why a failed ECOG requirement holds whatever the line's exception says, or None: the
    exception admits named scores ("ECOG PS 2 are eligible if it depends solely on orthopedic
    problems") and the patient's recorded ECOG is none of the scores the line names at all.
    Only for a recorded (not converted) ECOG, a line of the ECOG scale alone, and unread
    words that are the exception's own ("eligible if", "may", "allowed if")."""
    v = c.values
    if c.polarity != "require" or v.get("scale") != "ecog" or p.ecog is None:
        return None
    if getattr(p, "ecog_converted_from", None) or _OTHER_SCALE_RE.search(c.text):
        return None
    if not all(_EXCEPTION_WORDS_RE.fullmatch(w.strip()) for w in c.unexplained):
        return None
    if not _PS_EXCEPTION_RE.search(c.text):
        return None
    named = set(range(int(v["min"]), int(v["max"]) + 1))
    for m in _PS_SCORE_RE.finditer(c.text):
        lo = int(m.group("a"))
        hi = int(m.group("b")) if m.group("b") else lo
        named |= set(range(min(lo, hi), max(lo, hi) + 1))
    if p.ecog in named:
        return None
    allowed = ", ".join(map(str, sorted(named)))
    return f"the line names ECOG {allowed} only, its exception included; ECOG {p.ecog} is not one"
