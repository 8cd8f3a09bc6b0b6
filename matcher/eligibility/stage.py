"""Stage groups: "Stage I-III NSCLC", "StageIIIB/C or IV", "pathology confirmed Ib stage".

Every stage mention on a line (Roman or Arabic numerals, sub-stages A-D with an optional
digit, ranges "I-III" / "IIIB~IV", slash alternation "IIIB/C", lists "IIB, III, and IV",
"stage III or higher") is read into one set of stage items; "metastatic" / "M1" on the line
adds stage IV. The ``stage`` criterion compares that set with ``Patient.stage``:

- NOT_MET (require) / MET (exclude) only when the patient's stage is recorded and comparable:
  a patient recorded "III" against a required "IIIB" is UNKNOWN (the sub-stage is not known),
  "IIIA" against "IIIB/C or IV" is NOT_MET, "IV" against "I-III" is NOT_MET;
- a line that also admits recurrent / relapsed / progressive disease, or another extent as an
  alternative ("stage IV or locally advanced"), never fails a patient on stage;
- a missing stage, a "localized" record, or a stage written in another staging system (Rai,
  Binet, ISS, Enneking, ...) or of another condition (CKD, NYHA, pressure ulcer) is not read.
"""

from __future__ import annotations

import re
from typing import Any

from matcher.eligibility.model import MET, NOT_MET, UNKNOWN, Criterion
from matcher.eligibility.text import _I, _OTHER_MALIGNANCY_RE, _Ctx

# one stage item: (group 1-4, sub-letter "" or A-D, digit "" or 1-3)
Item = tuple[int, str, str]

_ROMAN = {"i": 1, "ii": 2, "iii": 3, "iv": 4, "1": 1, "2": 2, "3": 3, "4": 4}
_NAMES = {1: "I", 2: "II", 3: "III", 4: "IV"}
_LETTERS = "ABCD"
# the sub-stages a range runs through (IIID exists for melanoma only)
_SUBS = {1: "ABC", 2: "ABC", 3: "ABCD", 4: "ABC"}
_UNICODE = {"ⅰ": "i", "ⅱ": "ii", "ⅲ": "iii", "ⅳ": "iv", "Ⅰ": "i", "Ⅱ": "ii", "Ⅲ": "iii", "Ⅳ": "iv"}

_TOK = r"(?:iv|iii|ii|i|[1-4])(?:[a-d][1-3]?)?"
_SEP = r"\s*(?:,\s*(?:and/or|and|or)?|and/or|or|and|to|through|-|/)\s*(?:stages?\s*)?"
_LIST = _TOK + r"(?:" + _SEP + r"(?:" + _TOK + r"|[a-d](?![a-z0-9])))*"
_MENTION_RE = re.compile(
    # "stage IIIC or IV", "Clinical staging of IIIc or IV disease"
    r"(?<![a-z])(?:stages?|staging of)\s*(?P<pre>[≥>]=?|≤|<=?|at least\s+)?\s*(?P<list>"
    + _LIST
    + r")(?![a-z0-9])"
    r"|(?<![a-z0-9])(?P<list2>"
    + _TOK
    + r"(?:"
    + _SEP
    + _TOK
    + r")*)\s*stages?\b(?!\s*(?:of|[1-4]\b))",
    _I,
)
# more of a list after an aside or a missing comma: "Stage IIIB (non amenable ...) or IV",
# "stage IIA, IIB IIIA or IIIB"
_CONTINUE_RE = re.compile(
    r"(?:\s*\([^()]{0,120}\))?(?:\s*(?:,\s*(?:and/or|and|or)?|and/or|or|and)\s*|\s+)(?:stages?\s*)?"
    r"(?P<list>(?:iv|iii|ii|[1-4][a-d]|i[a-d])(?:[a-d][1-3]?)?(?:"
    + _SEP
    + r"(?:"
    + _TOK
    + r"|[a-d](?![a-z0-9])))*)"
    r"(?![a-z0-9])",
    _I,
)
# a therapy setting, not the patient's stage: "prior chemotherapy for stage IIIB/IV"
_SETTING_RE = re.compile(
    r"(?:therap\w*|treatments?|chemo\w*|regimens?|lines?|agents?|radiation|radiotherapy|surgery)"
    r"\s+(?:given\s+)?(?:for|in)\s+(?:the\s+|their\s+)?(?:[\w-]+[\s/]+){0,3}$",
    _I,
)
# an Arabic stage is a disease stage when a disease word follows it or staging words precede
_DISEASE_NEXT_RE = re.compile(
    r"\s+(?:[\w-]+\s+)?(?:disease|cancers?|carcinomas?|tumou?rs?|malignan\w*|sarcomas?|melanomas?|"
    r"lymphomas?|nsclc|sclc|crc|rcc|hcc|breast|colon|colorectal|rectal|lung|gastric|ovarian|"
    r"cervical|endometrial|prostate|bladder|urothelial|pancreatic|esophageal|oesophageal|head)\b",
    _I,
)
_STAGING_BEFORE_RE = re.compile(
    r"\b(?:ajcc|uicc|tnm|figo|clinical|clinically|pathologic\w*|cancer|disease|cancer stage)\s*$",
    _I,
)
# a Roman stage-like token left over once the mentions are read ...
_STRAY_RE = re.compile(r"(?<![\w-])(?:iv|iii|ii|i[a-d])(?:[a-d][1-3]?)?(?![\w-])", _I)
# ... unless it numbers something else: "phase II", "grade III", "NYHA class III"
_NOT_STAGE_BEFORE_RE = re.compile(
    r"\b(?:phase|phases|grade|grades|class|type|types|part|cohort|arm|level|step|ctcae|who|"
    r"trial|study|studies|generation|generations|line|lines|toxicit\w*|i)\s*(?:/|-|,|\s)?\s*$"
    r"|^\s*$|^[\s\d.)(-]*$",
    _I,
)
_TOKEN_RE = re.compile(r"(iv|iii|ii|i|[1-4])([a-d]?)([1-3]?)$", _I)
_UP_RE = re.compile(r"^\s*(?:or|and)\s+(?:higher|above|greater|more|later|beyond)\b", _I)
_DOWN_RE = re.compile(r"^\s*(?:or|and)\s+(?:lower|below|less|earlier)\b", _I)

# a study step, not a disease stage: "Stage 1 (dose escalation)", "stage 2 of the study"
_STUDY_STEP_RE = re.compile(
    r"^\s*(?::|\(?\s*(?:dose|escalation|expansion|part|portion|cohort|of (?:the )?(?:study|trial|protocol))"
    r"|(?:of (?:the )?)?(?:study|trial|enrol\w*|treatment phase|randomi[sz]ation))",
    _I,
)
# staging of another condition, or a staging system whose numbers are not the patient's
_OTHER_SYSTEM_RE = re.compile(
    r"\b(?:ckd|(?:chronic )?kidney disease|renal (?:disease|failure|insufficiency|impairment)|nyha|"
    r"heart failure|cardiac (?:failure|disease)|hypertension|ulcers?|pressure (?:ulcer|injur\w*)|"
    r"lymph[o]?edema|"
    r"fibrosis|cirrhosis|child[- ]pugh|copd|gold|hoehn|parkinson|dementia|sleep|hiv|aids|tanner|"
    r"pubert\w*|gvhd|graft|sickle|decubitus|rai|binet|iss|r-iss|durie|salmon|inss|inrg|enneking|"
    r"msts|masaoka|clark|breslow|dukes|bclc|barcelona|okuda|ishak|metavir|glottic|retinopathy|"
    r"keratoconus|sleep)\b|\bstage\s*0\b",
    _I,
)
# another way into the trial on the same line: recurrent / relapsed disease, another extent
_RECUR_RE = re.compile(
    r"\b(?:recurren\w*|recurred|relaps\w*|refractor\w*|progressi\w*|progressed|persistent|residual)\b"
    r"|\b(?:extensive|limited)[- ]stage\b|\b(?:extensive|limited)[- ]disease\b",
    _I,
)
_EXTENT_WORDS = r"(?:locally|unresectable|inoperable|non-?resectable|advanced|incurable|unoperable)"
_OR_EXTENT_RE = re.compile(
    r"\bor\s+(?:[\w-]+\s+){0,2}?"
    + _EXTENT_WORDS
    + r"|"
    + _EXTENT_WORDS
    + r"\s+(?:[\w-]+\s+){0,2}?or\b",
    _I,
)
_METASTATIC_RE = re.compile(
    r"(?<!non-)(?<!non )\bmetasta(?:tic|sis|ses|sized)\b|\bm1[abc]?\b|\bdistant (?:metasta\w+|disease)\b",
    _I,
)


# "without distant metastases", "no brain metastases", "liver metastases": not stage IV itself
_SITES = (
    r"brain|cns|central nervous system|leptomeningeal|meningeal|spinal|liver|hepatic|bone|osseous|"
    r"lung|pulmonary|pleural|peritoneal|lymph node|nodal|skin|adrenal|intracranial|cerebral"
)
_NO_METASTASIS_BEFORE_RE = re.compile(
    r"\b(?:no|without|absence of|free of|not|non|nor)\b[^,;.]*$|\b(?:" + _SITES + r")\s*$", _I
)
_SITE_AFTER_RE = re.compile(
    r"\s+(?:\w+\s+)?(?:to|in|involving|of)\s+(?:the\s+)?(?:" + _SITES + r")", _I
)


def _plain_numerals(s: str) -> str:
    for k, v in _UNICODE.items():
        s = s.replace(k, v)
    s = re.sub(r"\s*[~～〜–—]\s*", "-", s)
    # FIGO "I-B3", "II-A2", "IV-A": a sub-stage written with a hyphen
    return re.sub(r"(?<![a-z0-9])(iv|iii|ii|i)-([a-d][1-3]?)(?![a-z0-9])", r"\1\2", s, flags=_I)


def _tok(t: str) -> Item | None:
    m = _TOKEN_RE.match(t.strip())
    if not m:
        return None
    return (_ROMAN[m.group(1).lower()], m.group(2).upper(), m.group(3))


def _range(a: Item, b: Item) -> list[Item] | None:
    """Items from ``a`` to ``b`` inclusive ("IIIB-IV": IIIB, IIIC, IIID, IV)."""
    ga, la, da = a
    gb, lb, db = b
    if gb < ga or (ga == gb and (not la or not lb or (da or db))):
        return None  # "III-I", "III-IIIB", "IA1-IA3": not read
    if ga == gb:
        i, j = _LETTERS.index(la), _LETTERS.index(lb)
        return [(ga, x, "") for x in _LETTERS[i : j + 1]] if i <= j else None
    subs_a, subs_b = _SUBS[ga], _SUBS[gb]
    out: list[Item] = []
    if la:
        if da:
            out += [(ga, la, str(d)) for d in range(int(da), 4)]
        else:
            out.append((ga, la, ""))
        out += [(ga, x, "") for x in subs_a[subs_a.index(la) + 1 :]] if la in subs_a else []
    else:
        out.append((ga, "", ""))
    out += [(g, "", "") for g in range(ga + 1, gb)]
    if lb:
        out += [(gb, x, "") for x in subs_b[: subs_b.index(lb)]] if lb in subs_b else []
        out += [(gb, lb, db)]
    else:
        out.append((gb, "", ""))
    return out


# a range whose end stands after other words ("Stage IIA to select [ie, N2] Stage IIIB"):
# neither a list of its two ends nor a range read whole
_OPEN_RANGE_RE = re.compile(
    r"\s*(?:to|through|-)\s+(?:[^\s]+\s+){0,4}?(?:stages?\b|(?:iv|iii|ii)(?![a-z]))", _I
)


def _read_list(text: str, pre: str | None, after: str) -> list[Item] | None:
    """The items one mention names; None when a part is not read."""
    body = re.sub(r"stages?", " ", text, flags=_I)
    items: list[Item] = []
    sep_prev = ""
    last: Item | None = None
    pending: Item | None = None  # the start of a range
    for part, sep in re.findall(
        r"([a-z0-9]+)\s*(,\s*(?:and/or|and|or)?|and/or|or|and|to|through|-|/)?\s*", body, _I
    ):
        if re.fullmatch(r"[a-d]", part, _I):
            if last is None or not last[1] or sep_prev != "/":
                return None
            cur: Item = (last[0], part.upper(), "")
        else:
            t = _tok(part)
            if t is None:
                return None
            cur = t
        if pending is not None:
            r = _range(pending, cur)
            if r is None:
                return None
            items += r
            pending = None
        elif sep and sep.strip() in ("-", "to", "through"):
            pending = cur
        else:
            items.append(cur)
        if sep and sep.strip() in ("-", "to", "through") and pending is None:
            return None  # "I-II-III"
        last, sep_prev = cur, (sep or "").strip()
    if pending is not None or not items:
        return None
    pre = (pre or "").strip()
    up = pre in ("≥", ">=", "at least") or _UP_RE.match(after)
    down = pre in ("≤", "<=") or _DOWN_RE.match(after)
    if pre in (">", "<"):
        return None
    if up or down:
        if len(items) != 1:
            return None
        g, letter, digit = items[0]
        if up:
            items = _range(items[0], (4, "", "")) if g < 4 else items
        else:
            items = _range((1, "", ""), items[0]) if g > 1 else items
        if items is None:
            return None
    return items


def _stage(c: _Ctx) -> list[tuple[str, str, dict]]:
    if not c.onco:
        return []
    s = _plain_numerals(c.s)
    if (
        ("stage" not in s and "staging of" not in s)
        or _OTHER_SYSTEM_RE.search(s)
        or _OTHER_MALIGNANCY_RE.search(s)
    ):
        return []
    found: list[Item] = []
    spans: list[tuple[int, int]] = []
    skipped: list[tuple[int, int]] = []
    for m in _MENTION_RE.finditer(s):
        text = m.group("list") or m.group("list2")
        if (m.group("list") and _STUDY_STEP_RE.match(s[m.end() :])) or _SETTING_RE.search(
            s[max(0, m.start() - 60) : m.start()]
        ):
            skipped.append(m.span())  # a study step, a therapy setting: read, not a gate
            continue
        if m.group("list2") and not re.search(r"[a-d]|i", text, _I):
            continue  # "2 stages": a count
        if not re.search(r"[iv]", text, _I) and not (
            _DISEASE_NEXT_RE.match(s, m.end())
            or _STAGING_BEFORE_RE.search(s[max(0, m.start() - 40) : m.start()])
        ):
            return []  # "Stage 2, patients ...": Arabic numerals name a study step as often
        items = _read_list(text, m.group("pre"), s[m.end() : m.end() + 20])
        if (
            items is None
            or re.match(r"[-/][a-z0-9]", s[m.end() :], _I)
            or _OPEN_RANGE_RE.match(s, m.end())
        ):
            return []  # a mention not read whole: read none of the line
        end = m.end()
        while (more := _CONTINUE_RE.match(s, end)) is not None:
            extra = _read_list(more.group("list"), None, s[more.end() : more.end() + 20])
            if extra is None or re.match(r"[-/][a-z0-9]", s[more.end() :], _I):
                return []
            items = items + extra
            end = more.end()
        spans.append((m.start(), end))
        for it in items:
            if it not in found:
                found.append(it)
    if not found:
        return []
    blank = s
    for a, b in spans:
        blank = blank[:a] + " " * (b - a) + blank[b:]
    stray_text = blank
    for a, b in skipped:
        # the continuation of a skipped list ("for first-line Stage IIIB, IIIC or IV") too
        more = _CONTINUE_RE.match(stray_text, b)
        b = more.end() if more else b
        stray_text = stray_text[:a] + " " * (b - a) + stray_text[b:]
    for m in _STRAY_RE.finditer(stray_text):
        if not _NOT_STAGE_BEFORE_RE.search(stray_text[max(0, m.start() - 25) : m.start()]):
            return []  # "Ann Arbor stage II bulky, III or IV": a list not read whole
    if (4, "", "") not in found and any(
        not _NO_METASTASIS_BEFORE_RE.search(blank[max(0, m.start() - 30) : m.start()])
        and not _SITE_AFTER_RE.match(blank, m.end())
        for m in _METASTATIC_RE.finditer(blank)
    ):
        found.append((4, "", ""))  # "... or metastatic disease": stage IV too
    alternative = bool(_RECUR_RE.search(s) or _OR_EXTENT_RE.search(blank))
    start, end = spans[0]
    # "(Clinical stage IIIA, IIIB)" defines what the words before it name: their polarity
    paren = s.rfind("(", 0, start)
    if paren >= 0 and ")" not in s[paren:start]:
        start = paren
    pol = c.polarity(start, end)
    found.sort()
    return [("stage", pol, {"stages": [_name(x) for x in found], "alternative": alternative})]


def _name(it: Item) -> str:
    return _NAMES[it[0]] + it[1] + it[2]


def stage_items(names: list[str]) -> list[Item]:
    """Parse a criterion's ``stages`` values back into items."""
    out = []
    for n in names:
        t = _tok(n.lower())
        if t is not None:
            out.append(t)
    return out


def _relation(item: Item, p: Item) -> str:
    """ "in", "out" or "unsure": is a patient at stage ``p`` inside ``item``?"""
    if item[0] != p[0]:
        return "out"
    if not item[1]:
        return "in"
    if not p[1]:
        return "unsure"
    if item[1] != p[1]:
        return "out"
    if not item[2]:
        return "in"
    if not p[2]:
        return "unsure"
    return "in" if item[2] == p[2] else "out"


def _patient_views(p: Any) -> list[Item] | None:
    """The patient's stage as items (a recorded stage and, if it contradicts a recorded
    metastatic status, stage IV too); None when not recorded or not comparable."""
    st = str(p.stage or "").strip()
    if not st or st.lower() == "localized":
        return None
    if st.lower() == "metastatic":
        return [(4, "", "")]
    own = _tok(st.lower())
    if own is None:
        return None
    views = [own]
    if getattr(p, "metastatic", None) and own[0] != 4:
        views.append((4, "", ""))  # metastatic now, stage recorded at diagnosis
    return views


def _inside(items: list[Item], p: Item) -> str:
    rel = [_relation(it, p) for it in items]
    if "in" in rel:
        return "in"
    return "unsure" if "unsure" in rel else "out"


def _ev_stage(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    names = c.values.get("stages") or []
    items = stage_items(names)
    desc = ", ".join(names)
    verb = "requires" if c.polarity == "require" else "excludes"
    views = _patient_views(p)
    if not items:
        return UNKNOWN, f"trial {verb} stage {desc}: verify"
    if views is None:
        why = "stage not recorded" if not p.stage else f"stage {p.stage} not comparable"
        return UNKNOWN, f"{why}: verify (trial {verb} stage {desc})"
    rel = {_inside(items, v) for v in views}
    own = f"stage {p.stage}" + (" (metastatic)" if len(views) > 1 else "")
    if len(rel) > 1 or rel == {"unsure"}:
        return UNKNOWN, f"{own}; trial {verb} stage {desc}: sub-stage not comparable, verify"
    inside = rel == {"in"}
    if c.polarity == "require":
        if inside:
            return MET, f"{own}; trial requires stage {desc}"
        if c.values.get("alternative"):
            return (
                UNKNOWN,
                f"{own}; trial requires stage {desc}, or recurrent / other disease: verify",
            )
        return NOT_MET, f"{own}; trial requires stage {desc}"
    if inside:
        if c.values.get("alternative"):
            return UNKNOWN, f"{own}; trial excludes stage {desc} with other conditions: verify"
        return NOT_MET, f"{own}; trial excludes stage {desc}"
    return MET, f"{own}; trial excludes stage {desc}"
