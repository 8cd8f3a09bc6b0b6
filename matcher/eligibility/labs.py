"""Organ function (laboratory thresholds, in units or x ULN): parsing and evaluation."""

from __future__ import annotations

import math
import re
from typing import Any

from matcher.eligibility.common import _apply, _fmt
from matcher.eligibility.model import LAB_NAMES, MET, NOT_MET, STD_UNITS, UNKNOWN, Criterion
from matcher.eligibility.text import _I, _Ctx

# --- organ function -----------------------------------------------------------------------
_LAB_RES = [
    (
        "anc",
        r"absolute neutrophil(?:s| count)?|neutrophil count|neutrophils|\banc\b|\bagc\b|"
        r"absolute granulocyte count|granulocytes",
    ),
    ("platelets", r"platelets?(?: count)?|\bplt\b|thrombocytes?"),
    ("hemoglobin", r"ha?emoglobin|\bhgb\b|\bhb\b"),
    (
        "creatinine_clearance",
        r"(?:calculated |measured |estimated )?creatinine clearance|\bcrcl\b|\bcr\.? ?cl\b|"
        r"(?:estimated )?glomerular filtration rate|\be?gfr\b|clearance of creatinine",
    ),
    (
        "creatinine",
        r"(?:serum )?creatinine(?!\s+(?:clearance|kinase|phosphokinase))"
        # "Cr <= 133 umol/L", "Scr > 1.5N": the abbreviation only with a creatinine value
        r"|\bs?cr\b(?=\s*\)?\s*(?:<=|>=|<|>)\s*[\d.]+\s*(?:u?mol|µmol|mg|x\s*uln|uln|n\b))",
    ),
    ("direct_bilirubin", r"(?:direct|conjugated) bilirubin"),
    ("bilirubin", r"(?<!direct )(?<!conjugated )(?:total |serum )?bilirubin|\bt\.? ?bili\b"),
    ("ast", r"\bast\b|\bsgot\b|aspart(?:ate|ic) (?:amino)?trans(?:ferase|aminase)"),
    ("alt", r"\balt\b|\bsgpt\b|alanine (?:amino)?trans(?:ferase|aminase)"),
    (
        "ast+alt",
        r"\btransaminases\b|\baminotransferases\b|\bliver enzymes\b|\bast ?/ ?alt\b|\balt ?/ ?ast\b",
    ),
]
_LAB_RE = re.compile("|".join(f"(?P<{k.replace('+', '_')}>{rx})" for k, rx in _LAB_RES), _I)
_NUM = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?|\.\d+"
_LAB_VALUE_RE = re.compile(
    r"(?P<op>>=|<=|<|>|=)\s*(?P<num>" + _NUM + r")\s*"
    r"(?P<mult>(?:x|times|-fold|fold)\s*(?:the\s+)?(?:institutional\s+|upper\s+)?"
    r"(?:upper limit of (?:the )?normal(?: range)?|uln|unl|upper normal limit|normal)"
    r"|uln\b|unl\b|upper limit of normal"
    r"|(?:x\s*)?n\b(?!\s*[a-z]))?\s*"  # "bilirubin > 2N", "Scr > 1.5 x N": N is the ULN
    r"(?P<unit>x\s*10\s*(?:\^|e|\*\*)?\s*(?:9|3)\s*/\s*(?:l|ul|mcl)\b|10\s*\^?\s*(?:9|3)\s*/\s*(?:l|ul)\b"
    r"|(?:cells|cell|k)?\s*/\s*(?:mm\s*\^?\s*3|mm³|cu\.? ?mm|ul|mcl|l)\b|/\s*nl\b|g\s*/\s*dl\b"
    r"|gm?\s*/\s*dl\b|g\s*/\s*l\b|mg\s*/\s*dl\b|mmol\s*/\s*l\b|u?mol\s*/\s*l\b|umol\s*/\s*l\b"
    r"|ml\s*/\s*min(?:\s*/\s*1\.73\s*m\s*\^?\s*2)?|(?:iu|u)\s*/\s*l\b|%)?",
    _I,
)
_LAB_NORMAL_RE = re.compile(
    r"^\s*(?:level\s+)?(?:is\s+|must be\s+|should be\s+|:\s*)?(?:within\s+)?(?:the\s+)?"
    r"(?:institutional\s+)?(?:normal|wnl|within normal limits|<= ?uln)\b",
    _I,
)


_LAB_HINTS = (
    "neutro", "anc", "agc", "granulocyte", "platelet", "plt", "thrombocyt", "moglobin", "hgb",
    "hb", "creatin", "crcl", "cr cl", "gfr", "glomerular", "bili", "ast", "alt", "sgot", "sgpt",
    "transaminase", "aminotransferase", "liver enzyme", "cr",
)  # fmt: skip


_TIMES_WORD_RE = re.compile(
    r"\b(one and a half|one|two|three|four|five|ten)(?=\s*(?:times|x|-fold|fold)\b)", _I
)
_TIMES_WORDS = {"one and a half": "1.5", "one": "1", "two": "2", "three": "3", "four": "4",
                "five": "5", "ten": "10"}  # fmt: skip


_OR_MORE_RE = re.compile(
    r"(?P<num>\d[\d,.]*)(?P<unit>\s*(?:x\s*10\s*\^?\s*[39]\s*/\s*(?:l|ul)|g\s*/\s*dl|mg\s*/\s*dl|"
    r"g\s*/\s*l|/\s*(?:mm3|ul|mcl)|u\s*/\s*l|ml\s*/\s*min)?)\s+or\s+"
    r"(?P<dir>more|greater|higher|above|over|less|lower|below|fewer)\b",
    _I,
)


def _as_comparator(m: re.Match) -> str:
    op = ">=" if m.group("dir").lower() in ("more", "greater", "higher", "above", "over") else "<="
    text = f"{op} {m.group('num')}{m.group('unit')}"
    return text.ljust(len(m.group(0)))


def _labs(c: _Ctx) -> list[tuple[str, str, dict]]:
    # "bilirubin > three times the upper limit of normal": the multiple as a number
    s = _TIMES_WORD_RE.sub(lambda m: _TIMES_WORDS[m.group(1).lower()], c.s)
    if not any(h in s for h in _LAB_HINTS):
        return []
    if " or " in s:
        # "Hemoglobin of 9 g/dL or more": the limit written after its value (same length
        # kept, so positions still match the line)
        s = _OR_MORE_RE.sub(_as_comparator, s)
    mentions = list(_LAB_RE.finditer(s))
    if not mentions:
        return []
    values = list(_LAB_VALUE_RE.finditer(s))
    out: list[tuple[str, str, dict]] = []
    seen: set[str] = set()
    for m in mentions:
        key = m.lastgroup.replace("_", "+") if m.lastgroup == "ast_alt" else m.lastgroup
        labs = ["ast", "alt"] if key == "ast+alt" else [key]
        val = next((v for v in values if v.start() >= m.end() and v.start() - m.end() <= 60), None)
        # the value must belong to this lab: no other lab name with its own value in between
        if val is not None:
            between = s[m.end() : val.start()]
            if re.search(r"\d", between.replace("10^9", "")) and not re.match(
                r"^[\s(a-z/,]*$", between
            ):
                val = None
            elif any(
                m.end() <= o.start() < val.start()
                and o.lastgroup != m.lastgroup
                and re.search(
                    r"[<>≤≥=]|\b(?:less|greater|more|below|above|within|normal)\b",
                    s[m.end() : o.start()],
                )
                for o in mentions
            ):
                # "total bilirubin <= ULN, eGFR >= 30": bilirubin's comparison is stated before
                # the next lab, so the 30 is the eGFR's
                val = None
        if val is None:
            n = _LAB_NORMAL_RE.match(s[m.end() :])
            if n and labs[0] in ("bilirubin", "ast", "alt", "creatinine", "direct_bilirubin"):
                for lab in labs:
                    if lab not in seen:
                        seen.add(lab)
                        vals = {"lab": lab, "op": "<=", "value": 1.0, "unit": "x ULN", "uln_multiple": 1.0,
                                "std_value": None, "std_unit": STD_UNITS[lab]}  # fmt: skip
                        out.append(("organ_function", c.base, vals))
            continue
        for lab in labs:
            if lab in seen:
                continue
            vals = _lab_values(lab, val)
            if vals is None:
                continue
            seen.add(lab)
            out.append(("organ_function", c.base, vals))
    return out


def _lab_values(lab: str, v: re.Match) -> dict | None:
    raw = v.group("num").replace(",", "")
    try:
        num = float(raw)
    except ValueError:
        return None
    if not math.isfinite(num) or num > 1e9:
        return None  # "platelets >= 1000...0" (hundreds of digits): no lab limit, not infinity
    unit_raw = re.sub(r"\s+", "", (v.group("unit") or "").lower())
    mult = v.group("mult")
    if (
        lab in ("anc", "platelets")
        and not mult
        and re.fullmatch(r"\d{1,3}\.\d{3}", raw)
        and re.search(r"/(?:mm\^?3|mm³|[uµ]l|mcl|cu\.?mm)$", unit_raw)
    ):
        num *= 1000.0  # "80.000/µl": a thousands point, as European records write counts
    vals: dict[str, Any] = {
        "lab": lab,
        "op": v.group("op"),
        "value": num,
        "unit": None,
        "uln_multiple": None,
        "std_value": None,
        "std_unit": STD_UNITS[lab],
    }
    if mult:
        vals["unit"] = "x ULN"
        vals["uln_multiple"] = num
        return vals
    if unit_raw == "%":
        return None
    vals["unit"] = unit_raw or None
    vals["std_value"] = _to_std(lab, num, unit_raw)
    return vals


def _to_std(lab: str, num: float, unit: str) -> float | None:
    """Convert a threshold to the patient unit; ``None`` when the unit is ambiguous."""
    u = (
        unit.replace("mcl", "ul")
        .replace("mm^3", "mm3")
        .replace("mm³", "mm3")
        .replace("cu.mm", "mm3")
    )
    u = u.replace("cumm", "mm3").replace("**", "^").replace("e9", "^9").replace("e3", "^3")
    if lab in ("anc", "platelets"):
        # "x10^9/L", "x10^3/uL", "k/uL", "k/mm3", "K/cumm", "/nL": thousands per microlitre
        if re.search(r"10\^?9/l|10\^?3/(?:ul|mm3)|^(?:k|x?10\^?3|thou)/(?:ul|mm3)$|/nl", u):
            return num * 1000.0
        if re.search(r"/(?:mm3|ul)$", u):
            return num
        if u == "/l":
            return None
        if not u:  # magnitude: counts per uL are hundreds+, giga-per-litre values are small
            if lab == "anc":
                return num if num >= 100 else (num * 1000.0 if num <= 20 else None)
            return num if num >= 1000 else (num * 1000.0 if num <= 900 else None)
        return None
    if lab == "hemoglobin":
        if u in ("g/dl", "gm/dl"):
            return num
        if u == "g/l":
            return num / 10.0
        if u == "mmol/l":
            return round(num * 1.611, 2)
        if not u:
            return num if num <= 25 else (num / 10.0 if num >= 40 else None)
        return None
    if lab in ("creatinine", "bilirubin", "direct_bilirubin"):
        factor = 88.42 if lab == "creatinine" else 17.1
        if u == "mg/dl":
            return num
        if u in ("umol/l", "mol/l"):
            return round(num / factor, 3)
        if not u:
            if num <= 10:
                return num
            return round(num / factor, 3) if num >= 15 else None
        return None
    if lab in ("ast", "alt"):
        return num if u in ("u/l", "iu/l") else None
    if lab == "creatinine_clearance":
        return num if u.startswith("ml/min") or not u else None
    return None


# a second limit for a sub-group on the same line ("<= 5 x ULN if liver metastases",
# "unless Gilbert's syndrome")
_CONDITIONAL_LIMIT_RE = re.compile(
    r"\b(?:if|unless|in patients with|for patients with|in (?:the )?(?:presence|case) of|gilbert)",
    re.I,
)


def _conditional_limit(c: Criterion) -> bool:
    """A second limit for a sub-group in this lab's own clause of the line."""
    from matcher.eligibility.clause import lab_clause

    low = c.text.lower()
    a, b = lab_clause(low, c.values["lab"])
    return bool(_CONDITIONAL_LIMIT_RE.search(low[a:b]))


def _ev_labs(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    v = c.values
    lab = v["lab"]
    name = LAB_NAMES.get(lab, lab)
    op = v["op"]
    if v.get("uln_multiple") is not None:
        crit = f"{name} {op} {_fmt(v['uln_multiple'])} x ULN"
    else:
        crit = f"{name} {op} {_fmt(v['value'])}{(' ' + v['unit']) if v.get('unit') else ''}"
    labs = getattr(p, "labs", None) or {}
    val = labs.get(lab)
    if val is None:
        return UNKNOWN, f"{name} not recorded: verify ({crit})"
    unit = STD_UNITS.get(lab, "")
    if v.get("uln_multiple") is not None:
        adult = getattr(p, "age", None) is not None and p.age >= 18
        verdict, reason = _ev_uln(c, name, val, unit, crit, adult=adult)
        if verdict == NOT_MET and _conditional_limit(c):
            # "AST <= 2.5 x ULN (<= 5 x ULN if liver metastases)": another limit may apply
            return UNKNOWN, f"{reason}, but the line has a conditional limit: verify"
        return verdict, reason
    thr = v.get("std_value")
    if thr is None:
        return UNKNOWN, f"{name} {_fmt(val)} {unit}; unit of '{crit}' is ambiguous: verify"
    ok = {
        ">=": val >= thr,
        ">": val > thr,
        "<=": val <= thr,
        "<": val < thr,
        "=": val == thr,
    }[op]
    verdict = _apply(c.polarity, ok)
    conv = (
        ""
        if v.get("unit") and STD_UNITS[lab].lower().replace("cells/", "/") in (v["unit"] or "")
        else f" (= {_fmt(thr)} {unit})"
    )
    if verdict == NOT_MET and _conditional_limit(c):
        return (
            UNKNOWN,
            f"{name} {_fmt(val)} {unit} fails {crit}{conv}, but the line has a conditional limit: verify",
        )
    if c.polarity == "require":
        rel = "meets" if ok else "fails"
        return verdict, f"{name} {_fmt(val)} {unit} {rel} {crit}{conv}"
    # exclusion "platelets < 50,000": the patient is excluded when the value is in that range
    if ok:
        return verdict, f"{name} {_fmt(val)} {unit}: {crit}{conv}, which the trial excludes"
    return verdict, f"{name} {_fmt(val)} {unit}: not {crit}{conv} (the excluded range)"


# Lowest upper limit of normal (ULN) an adult reference range plausibly uses, per lab, in the
# patient unit. A value at or below ``multiple x`` this ULN is within ``multiple x ULN`` for
# ANY laboratory, so "bilirubin <= 1.5 x ULN" can be MET without knowing the patient's lab.
# Chosen at or below the lowest ULN in common published adult ranges (never NOT_MET from it):
# - bilirubin 1.0 mg/dL: Mayo Clinic, "Liver function tests" results (0.1-1.0 mg/dL; other
#   labs use 1.2);
# - direct bilirubin 0.2 mg/dL: below the usual 0.3 mg/dL (MedlinePlus "Bilirubin blood test");
# - AST 25 U/L: below Cleveland Clinic 10-34 U/L, MedlinePlus 8-33 U/L, Mayo Clinic 8-48 U/L;
# - ALT 19 U/L: Cleveland Clinic women 4-19 U/L, the lowest adult range seen; also the
#   "healthy" ULN for women in the ACG guideline (Kwo et al., Am J Gastroenterol 2017;112:18-35);
# - creatinine 0.8 mg/dL: below typical female ULNs of 0.9-1.1 mg/dL (e.g. MedlinePlus
#   "Creatinine blood test", women 0.6-1.1 mg/dL).
CONSERVATIVE_ULN: dict[str, float] = {
    "bilirubin": 1.0,
    "direct_bilirubin": 0.2,
    "ast": 25.0,
    "alt": 19.0,
    "creatinine": 0.8,
}


# Highest ULN an adult reference range plausibly uses, with a margin above the highest
# published adult ULN seen, in the patient unit. A value above ``multiple x`` this ceiling is
# above ``multiple x ULN`` for ANY adult laboratory, so "AST <= 2.5 x ULN" is NOT_MET for an
# AST of 250 U/L whatever the lab. Adults only (children's ranges differ):
# - AST 60 U/L: Mayo Clinic Laboratories adult males 8-48 U/L, MedlinePlus 8-33 U/L;
# - ALT 60 U/L: Mayo Clinic Laboratories adult males 7-55 U/L, MedlinePlus 4-36 U/L;
# - bilirubin 1.5 mg/dL: MedlinePlus 0.1-1.2 mg/dL, other labs up to 1.3 mg/dL;
# - direct bilirubin 0.4 mg/dL: MedlinePlus less than 0.3 mg/dL;
# - creatinine 1.5 mg/dL: MedlinePlus men 0.7-1.3 mg/dL, Mayo Clinic Laboratories men up to
#   1.35 mg/dL.
CEILING_ULN: dict[str, float] = {
    "bilirubin": 1.5,
    "direct_bilirubin": 0.4,
    "ast": 60.0,
    "alt": 60.0,
    "creatinine": 1.5,
}


def _ev_uln(
    c: Criterion, name: str, val: float, unit: str, crit: str, adult: bool = False
) -> tuple[str, str]:
    """A limit given as a multiple of ULN: MET only when it holds for the lowest plausible
    ULN (``CONSERVATIVE_ULN``); NOT_MET only when it fails even for the highest plausible
    adult ULN (``CEILING_ULN``, adults only); otherwise UNKNOWN."""
    v = c.values
    low_uln = CONSERVATIVE_ULN.get(v["lab"])
    mult = float(v["uln_multiple"])
    op = v["op"]
    high_uln = CEILING_ULN.get(v["lab"]) if adult else None
    if high_uln is not None:
        ceiling = mult * high_uln
        beyond = val > ceiling
        if beyond and (
            (c.polarity == "require" and op in ("<=", "<"))
            or (c.polarity == "exclude" and op in (">", ">="))
        ):
            verdict = NOT_MET
            return (
                verdict,
                f"{name} {_fmt(val)} {unit} is above {_fmt(mult)} × ULN for any adult ULN up to "
                f"{_fmt(high_uln)} {unit}; trial states {crit}",
            )
    if low_uln is not None:
        limit = mult * low_uln
        bound = _fmt(round(val / mult, 3))
        # "bilirubin <= 1.5 x ULN" holds for every lab whose ULN is at least val / 1.5
        if (
            c.polarity == "require"
            and op in ("<=", "<")
            and (val <= limit if op == "<=" else val < limit)
        ):
            rel = "≥" if op == "<=" else ">"
            return (
                MET,
                f"{name} {_fmt(val)} {unit} {op} {_fmt(mult)} × ULN for any ULN {rel} {bound} "
                f"{unit} (adult ULNs are ≥ {_fmt(low_uln)} {unit})",
            )
        # exclusion "AST > 3 x ULN": not excluded when below 3 x even the lowest ULN
        if (
            c.polarity == "exclude"
            and op in (">", ">=")
            and (val <= limit if op == ">" else val < limit)
        ):
            return (
                MET,
                f"{name} {_fmt(val)} {unit}: not {op} {_fmt(mult)} × ULN for any ULN ≥ {bound} "
                f"{unit} (adult ULNs are ≥ {_fmt(low_uln)} {unit})",
            )
    return (
        UNKNOWN,
        f"{name} {_fmt(val)} {unit}; trial states {crit}: the lab's ULN is not recorded, verify",
    )
