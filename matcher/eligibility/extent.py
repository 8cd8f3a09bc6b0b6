"""Disease extent (metastatic, unresectable, advanced) and measurable disease: parse, evaluate."""

from __future__ import annotations

import re
from typing import Any

from matcher.eligibility.common import _apply
from matcher.eligibility.model import MET, NOT_MET, UNKNOWN, Criterion
from matcher.eligibility.text import _I, _MAY_ONLY_PERMIT_RE, _ONCO_RE, _OTHER_MALIGNANCY_RE, _Ctx

# --- disease extent -----------------------------------------------------------------------
_SITE_WORDS = (
    r"brain|cns|central nervous|spinal|leptomeningeal|meningeal|liver|hepatic|bone|lung|"
    r"pulmonary|peritoneal|lymph|nodal|skin|cutaneous|intracranial|cerebral|osseous|spine|"
    r"vertebra\w*|(?:tumou?r\s+)?(?:biops\w*|tissue|samples?|specimens?)"
)
_EXTENT_RES = [
    (
        "metastatic",
        re.compile(
            r"\b(?P<neg>non-?)?metastatic\b(?!\s+(?:\w+\s+){0,2}?(?:to|in|involving)\s+(?:the\s+)?(?:"
            + _SITE_WORDS
            + r"))(?!\s+(?:"
            + _SITE_WORDS
            + r"))"
            r"|\bdistant (?:metasta\w+|disease|spread)\b|\bstage (?:iv|4)[abc]?\b|\bmetastasized\b"
            r"|\bstages? (?:(?:i{1,3}|[1-3])[abc]?(?:/[abc])?\s*(?:,|or|-|to|and|/)\s*)+(?:iv|4)\b"
            r"|\b(?:evidence of|presence of|known|with|has|have|any) metastas[ie]s\b",
            _I,
        ),
    ),
    (
        "unresectable",
        re.compile(
            r"\b(?:unresectable|irresectable|non-?resectable|not (?:surgically |completely )?resectable"
            r"|inoperable|non-?operable|not (?:be )?(?:amenable|eligible|suitable|a candidate) (?:to|for) "
            r"(?:\w+ ){0,2}(?:surgery|surgical|resection|local therapy)|contraindication to (?:\w+ )?"
            r"(?:surgery|surgical resection|resection)|(?:inability|unable) to undergo (?:\w+ ){0,2}"
            r"(?:resection|surgery)|not curable by surgery|surgery is not (?:a )?(?:recommended|feasible)"
            r"|not (?:suitable|eligible) for (?:radical|curative) (?:surgery|resection))",
            _I,
        ),
    ),
    ("locally_advanced", re.compile(r"\blocally[- ]advanced\b", _I)),
    (
        "advanced",
        re.compile(
            r"(?<!locally )(?<!locally-)\badvanced\b(?![- ](?:age|heart|liver|kidney|renal|cardiac|"
            r"hepatic|lung disease|copd|chronic|directive|practice|nurse|care|cirrhosis|fibrosis|"
            r"dementia|parkinson|hiv|glaucoma|knee|hip|osteoarthritis|periodontitis|life|"
            r"cardiopulmonary|imaging|training|degree))",
            _I,
        ),
    ),
]


_CONDITIONAL_PREFIX_RE = re.compile(
    r"(?:\b(?:for|in|if|when|unless|except)\s+(?:\w+\s+){0,3}$)|(?:\bpatients?\s+with\s+$)", _I
)

# A test or imaging done to look for the disease ("CT chest to assess distant disease",
# "PET to rule out metastatic disease"): the line asks for the work-up, not for the extent
_WORK_UP_RE = re.compile(
    r"\b(?:to|for)\s+(?:assess|assessment of|evaluate|evaluation of|rule out|exclude|detect|"
    r"look for|screen for|stage|document|search for)\s+(?:for\s+)?(?:the\s+)?(?:presence of\s+)?"
    r"(?:(?:clinical|radiologic\w*|radiographic|imaging)\s+)?(?:evidence of\s+)?(?:any\s+)?$",
    _I,
)

# --- measurable disease -------------------------------------------------------------------
_MEAS_RE = re.compile(
    r"\b(?P<neg>non-?)?measurable\b(?!\s+residual)(?=(?:[\s,/-]+\w+){0,4}?[\s,/-]+"
    r"(?:disease|lesions?|tumou?rs?|target|parameters|sites?)\b)"
    r"|\b(?P<neg2>non-?)?measurable (?:and|or|and/or) (?:non-?measurable|evaluable)"
    r"|\b(?:disease|lesions?) (?:that (?:is|are) )?measurable\b"
    r"|\bevaluable (?:or measurable )?(?:disease|lesions?)\b"
    # "must have a target lesion", "at least one tumor lesion that can be accurately measured"
    r"|\b(?:have|has|with|at least one|one or more|>= ?1)\s+(?:[\w-]+\s+){0,2}?target lesions?\b"
    r"|(?:\bat least one|>= ?(?:1|one))\s+(?:[\w-]+\s+){0,3}?lesions?\s+(?:\([^)]{0,40}\)\s+)?(?:that|which)?\s*"
    r"(?:can|could|must|should) be (?:accurately |reliably |precisely )?measured\b",
    _I,
)
_MEAS_CRIT_RE = re.compile(
    r"\b(m?recist|irecist|rano|lugano|inrc|cheson|irrc|pcwg\d?|gcig|choi|who)\b"
    r"(?:\s*(?:criteria\s*)?(?:v(?:ersion)?\.?\s*)?(\d\.\d))?",
    _I,
)


# a TNM stage with M0 ("cT3-4aN0-1M0", "T2N+M0", "cT4, cN0-2; M0"): no distant metastasis;
# M1 anywhere in the line ("M0 or M1") makes it no requirement
_TNM_M0_RE = re.compile(
    r"(?:\b[cpy]?T[0-4x][a-d]?\S{0,12}?|\b[cpy]?N[0-3x]\S{0,6}?[\s,;]*|[\s,;])[cpy]?M0\b"
)
_TNM_M1_RE = re.compile(r"\b[cpy]?M1[a-d]?\b|\bMx\b")
# a localized tumour: "Localized disease", "localized soft tissue sarcoma" (not "localized
# radiotherapy", "localized infection")
_LOCALIZED_RE = re.compile(
    r"\blocali[sz]ed\b(?=(?:\s*(?:,|and|or|and/or)\s*|\s+)(?:[\w-]+\s+){0,3}?(?:disease|tumou?rs?|"
    r"cancers?|carcinomas?|sarcomas?|\w+omas?|primary|stage|gist|nsclc)\b)",
    _I,
)


def _extent(c: _Ctx) -> list[tuple[str, str, dict]]:
    s = c.s
    if _OTHER_MALIGNANCY_RE.search(s):
        return []  # "non-metastatic prostate cancer" in a second-malignancy clause
    hits: list[tuple[int, str, int]] = []
    conditions: list[int] = []  # ends of the extents read as a condition
    for name, rx in _EXTENT_RES:
        for m in rx.finditer(s):
            before = s[max(0, m.start() - 30) : m.start()]
            if (
                name != "unresectable"
                and _CONDITIONAL_PREFIX_RE.search(before)
                and re.search(r"\b(?:for|in|if|when)\b", before)
            ):
                conditions.append(m.end())
                continue  # "AST <= 5 x ULN in patients with metastatic ...": a condition, not a gate
            if name == "advanced":
                if not (c.onco and _ONCO_RE.search(s)):
                    continue
                if re.match(
                    r"\s*(?:or|and|/)\s*metastatic", s[m.end() :]
                ) is None and not re.search(
                    r"\b(?:cancers?|carcinomas?|sarcomas?|tumou?rs?|malignan\w*|disease|stage|solid|nsclc|"
                    r"lymphomas?|melanomas?|leukemi\w*|neoplas\w*|gist|mesothelioma|\w+sarcomas?|\w+omas?)\b",
                    s[m.end() : m.end() + 45],
                ):
                    continue
            if name == "metastatic" and m.group(0).startswith("stage") and not c.onco:
                continue
            if name == "metastatic" and re.search(
                r"\b(?:brain|cns|central nervous system|intracranial|cerebral|leptomeningeal|meningeal|"
                r"spinal|osseous|bone|liver|hepatic|pulmonary|lung|peritoneal)\s+$",
                s[max(0, m.start() - 30) : m.start()],
            ):
                continue  # "CNS metastatic disease": a site, typed as brain metastases
            if re.search(
                r"\bprimary\s+(?:\w+\s+)?(?:and/or|or|and|/)\s*$",
                s[max(0, m.start() - 30) : m.start()],
            ) and re.match(
                r"\s*(?:\w+\s+)?(?:lesions?|tumou?rs?|sites?|tissues?|samples?|biops)", s[m.end() :]
            ):
                continue  # "tissue samples of primary or metastatic lesions": a sample, not a gate
            if re.search(
                r"\b(?:due|secondary|related) to\s*$", s[max(0, m.start() - 20) : m.start()]
            ):
                continue  # "cord compression due to metastatic disease"
            if name == "metastatic" and re.search(
                r"\b(?:previous|prior|past|earlier|former)\s+$",
                s[max(0, m.start() - 20) : m.start()],
            ):
                # "No history of previous metastatic disease" beside "Stage IV metastatic
                # disease": an earlier episode, which the current extent does not answer
                continue
            if _WORK_UP_RE.search(s[max(0, m.start() - 40) : m.start()]):
                continue  # "CT chest to assess distant disease": a work-up, not a requirement
            if re.search(
                r"(?:therap\w*|treatments?|chemotherapy|regimens?|lines?)\s+(?:given\s+)?(?:for|in)\s+(?:the\s+)?"
                r"(?:[\w-]+[\s/]+){0,3}$",
                s[max(0, m.start() - 50) : m.start()],
            ):
                continue  # "prior therapy for metastatic NSCLC": a therapy setting, not an extent gate
            neg = 1 if (m.groupdict().get("neg") if name == "metastatic" else None) else 0
            hits.append((m.start(), name, neg))
    # "... for locally advanced/metastatic NSCLC": an extent joined to one read as a condition
    # is that condition's alternative
    hits = [
        h
        for h in hits
        if not any(
            re.fullmatch(r"\s*(?:/|or|and/or|,)\s*", s[e : h[0]]) for e in conditions if e <= h[0]
        )
    ]
    m0 = _TNM_M0_RE.search(c.plain)
    if m0 and not hits and not _TNM_M1_RE.search(c.plain):
        # "cT3-4aN0-1M0", "cT4, cN0-2; M0": a TNM stage without distant metastasis
        return [("disease_extent", c.polarity(m0.start(), None, 1), {"extent": ["metastatic"]})]
    loc = _LOCALIZED_RE.search(s)
    # "Localized disease", "localized or locally advanced GIST": not metastatic
    if (
        loc
        and all(name == "locally_advanced" for _, name, _ in hits)
        and not _CONDITIONAL_PREFIX_RE.search(s[max(0, loc.start() - 30) : loc.start()])
    ):
        return [("disease_extent", c.polarity(loc.start(), None, 1), {"extent": ["metastatic"]})]
    if not hits:
        return []
    hits.sort()
    extents: list[str] = []
    for _, name, _neg in hits:
        if name not in extents:
            extents.append(name)
    start, _, neg = hits[0]
    return [("disease_extent", c.polarity(start, None, neg), {"extent": extents})]


def _measurable(c: _Ctx) -> list[tuple[str, str, dict]]:
    m = _MEAS_RE.search(c.s)
    if not m:
        return []
    if re.search(r"\bmeasurable\b[^;]{0,60}\bor\s+non-?measurable\b", c.s):
        return []  # "with either measurable or non-measurable lesions": no constraint
    neg = 1 if (m.group("neg") or m.group("neg2")) else 0
    crit = _MEAS_CRIT_RE.search(c.s)
    criteria = None
    if crit and crit.group(1) != "who":
        criteria = crit.group(1).upper().replace("MRECIST", "mRECIST").replace("IRECIST", "iRECIST")
        if crit.group(2):
            criteria += " " + crit.group(2)
    evaluable = bool(re.search(r"\bevaluable\b|\bnon-?measurable\b", c.s)) and not neg
    pol = c.polarity(m.start(), m.end(), neg)
    return [("measurable_disease", pol, {"criteria": criteria, "evaluable_allowed": evaluable})]


def _ev_extent(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    ext = c.values.get("extent") or []
    desc = " or ".join(e.replace("_", " ") for e in ext)
    met = p.metastatic
    if met is None and p.stage:
        st = str(p.stage).upper()
        if st.startswith("IV") or st == "METASTATIC":
            met = True
    if met is None:
        return (
            UNKNOWN,
            f"metastatic status not recorded: verify ({'requires' if c.polarity == 'require' else 'excludes'} {desc})",
        )
    resectable = getattr(p, "resectable", None)
    if c.polarity == "require":
        if met and any(e in ("metastatic", "advanced") for e in ext):
            return MET, f"metastatic disease; trial requires {desc}"
        if met:
            return UNKNOWN, f"metastatic disease; trial requires {desc}: verify"
        if resectable is False and "unresectable" in ext:
            return MET, f"disease recorded unresectable; trial requires {desc}"
        if resectable and _only_unresectable(c.text, ext):
            return (
                NOT_MET,
                f"disease not metastatic and recorded resectable; trial requires {desc}",
            )
        if _MAY_ONLY_PERMIT_RE.search(c.text):
            return UNKNOWN, f"disease not metastatic; the line may only permit {desc}: verify"
        if ext == ["metastatic"] and not _EXTENT_ALTERNATIVE_RE.search(c.text):
            return NOT_MET, "disease not metastatic; trial requires metastatic disease"
        if ext == ["metastatic"]:
            return (
                UNKNOWN,
                f"disease not metastatic (stage {p.stage or 'not recorded'}); the line also accepts "
                "an earlier stage or recurrent / refractory disease: verify",
            )
        if _early_carcinoma(p, ext) and not _EXTENT_ALTERNATIVE_RE.search(c.text):
            return (
                NOT_MET,
                f"carcinoma recorded at stage {p.stage}, not metastatic, not relapsed: early-stage "
                f"disease; trial requires {desc}",
            )
        return (
            UNKNOWN,
            f"disease not metastatic; trial requires {desc}: verify resectability/extent",
        )
    if "metastatic" in ext:
        if met:
            return NOT_MET, f"metastatic disease; trial excludes {desc}"
        return MET, f"disease not metastatic; trial excludes {desc}"
    return UNKNOWN, f"trial excludes {desc}: verify"


_UNRESECTABLE_RE = dict(_EXTENT_RES)["unresectable"]
_ADVANCED_RE = re.compile(r"\b(?:locally[- ])?advanced\b", _I)
# what may stand between "locally advanced" and the word that makes it unresectable for the two
# to be one phrase ("locally advanced unresectable", "unresectable and locally advanced",
# "locally advanced (inoperable)"); a comma or an "or" makes them alternatives
_BOUND_RE = re.compile(r"[\s(]*(?:and\s+)?(?:disease\s+)?[\s(]*")


def _only_unresectable(text: str, ext: list[str]) -> bool:
    """True when every way the line admits a non-metastatic patient needs the tumour to be
    unresectable: its extents are metastatic / unresectable / (locally) advanced, each
    "advanced" bound to an unresectable word in one phrase, and no stage, recurrence or
    permission offers another way in."""
    if "unresectable" not in ext or not set(ext) <= {
        "metastatic",
        "unresectable",
        "locally_advanced",
        "advanced",
    }:
        return False
    if _EXTENT_ALTERNATIVE_RE.search(text) or _MAY_ONLY_PERMIT_RE.search(text):
        return False
    spans = [m.span() for m in _UNRESECTABLE_RE.finditer(text)]
    for m in _ADVANCED_RE.finditer(text):
        a, b = m.span()
        if not any(
            (x >= b and _BOUND_RE.fullmatch(text[b:x]))
            or (y <= a and _BOUND_RE.fullmatch(text[y:a]))
            for x, y in spans
        ):
            return False
    return True


_STAGE_I_RE = re.compile(r"^(?:STAGE\s*)?(?:I|1)[ABC]?\d?$")
_STAGE_I_IIA_RE = re.compile(r"^(?:STAGE\s*)?(?:(?:I|1)[ABC]?\d?|(?:II|2)A\d?)$")
_STAGE_I_II_RE = re.compile(r"^(?:STAGE\s*)?(?:I|II|1|2)[ABC]?\d?$")


def _early_carcinoma(p: Any, ext: list[str]) -> bool:
    """A carcinoma recorded at TNM stage I-II, recorded not metastatic and not relapsed, is not
    advanced: stage I-II is early disease by the staging itself. Only for carcinomas (a
    localized sarcoma may still be unresectable), only for "advanced" / "metastatic" / "locally
    advanced" (stage I and IIA only: stage IIB may be called locally advanced), never for
    "unresectable" (an early carcinoma may be medically inoperable)."""
    if p.metastatic is not False or not p.stage:
        return False
    if "carcinoma" not in (p.diagnosis_lineage or []):
        return False
    if getattr(p, "disease_status", None) in ("relapsed", "refractory"):
        return False
    st = str(p.stage).strip().upper()
    for e in ext:
        if e == "locally_advanced" and not _STAGE_I_IIA_RE.match(st):
            return False
        if e in ("advanced", "metastatic") and not _STAGE_I_II_RE.match(st):
            return False
        if e not in ("locally_advanced", "advanced", "metastatic"):
            return False
    return bool(ext)


# "Stage IIIB-IV", "stage IIIC or IV", "metastatic or recurrent/refractory": a non-metastatic
# patient may still qualify
_EXTENT_ALTERNATIVE_RE = re.compile(
    r"\bstages?\s+(?:i{1,3}|[1-3])[abc]?\b|\b(?:recurrent|relapsed|refractory|progressive)\b", _I
)


def _ev_measurable(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    crit = c.values.get("criteria") or "measurable disease"
    if p.measurable_disease is None:
        return UNKNOWN, f"measurable disease not recorded: verify ({crit})"
    if c.polarity == "require":
        if p.measurable_disease:
            return MET, f"measurable disease recorded; trial requires {crit}"
        if c.values.get("evaluable_allowed"):
            return (
                UNKNOWN,
                "no measurable disease recorded; trial also accepts evaluable disease: verify",
            )
        return NOT_MET, f"no measurable disease recorded; trial requires {crit}"
    return _apply("exclude", bool(p.measurable_disease)), (
        f"measurable disease {'recorded' if p.measurable_disease else 'not present'}; trial excludes it"
    )
