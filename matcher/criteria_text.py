"""Split an ``eligibilityCriteria`` text into criteria lines.

Input: the registered text, in any of the layouts seen in real records:

- API v2 Markdown: ``Inclusion Criteria:`` / ``Exclusion Criteria:`` headings (and variants
  such as ``Key Inclusion Criteria:``, ``Inclusion criteria``, ``Inclusion:``,
  ``Patient Inclusion Criteria:``, ``• Inclusion Criteria:``), ``*``/``-``/``•``/numbered
  bullets, nested sub-bullets indented by spaces, Markdown escapes (``\\>=``, ``\\<``, ``\\[``);
- classic XML text blocks: ``-  `` bullets, lines hard-wrapped at about 80 characters and
  indented, CRLF line ends, PDQ-style sub-headings (``DISEASE CHARACTERISTICS:``);
- no heading at all (everything is inclusion), free-form sub-headings
  (``Other exclusion criteria:``, ``For adolescent participants:``).

Output: a list of ``CriteriaLine``. ``text`` is the line **as written**: the bullet marker
is stripped and hard-wrapped continuation lines are re-joined with one space, but
Markdown escapes are kept (so ``text`` can be found in the record). ``plain`` is the same
line unescaped and with ``≥ ≤`` etc. normalized, for matching. ``context`` holds the
parent line (for a sub-bullet) or the free-form sub-heading it sits under.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_BULLET_RE = re.compile(
    r"^(?:\\?[*\-•·●▪◦‣+–]|o(?=\s)|\d{1,2}(?:\.\d{1,2})*[.)](?!\d)"
    r"|\(\d{1,2}\)|\(?[a-hA-H][.)]|\([ivx]{1,4}\)|[ivx]{1,4}[.)])(?:\s+|$)"
)
_HEADING_RE = re.compile(
    r"^(?P<pre>(?:[a-z/\-'’]+\s+){0,4}?)"
    r"(?P<kind>inclusion|exclusion|eligibility|inclusions|exclusions)"
    r"(?:\s+(?:criteria|criterion|criterias))?(?P<post>(?:\s+\(.{0,40}\)|\s+for\s+[^:.]{0,60})?)"
    r"\s*(?P<colon>[:：\-–]?)\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
# a heading that names more than its section ("... for group A and group B", "(Cohort 2)")
_HEADING_SAYS_MORE_RE = re.compile(r"\bfor\b|\(", re.IGNORECASE)
_HEADING_PRE_OK = re.compile(
    r"^(?:(?:key|main|major|minor|other|additional|general|specific|patient|patients|"
    r"participant|participants|subject|subjects|study|principal|primary|secondary|"
    r"disease[- ]specific|cohort|part|the|following|are|of|donors?|caregivers?|parents?|"
    r"recipients?|siblings?|partners?)(?:['’]s?)?\s+)*$",
    re.IGNORECASE,
)
_MD_ESCAPE_RE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!<>~^=|&%$'\"/:;,?@])")
_EMPHASIS_RE = re.compile(r"(\*\*|__)(.+?)\1")
# a heading about another person than the patient: "Donors' inclusion criteria:", "Donor
# exclusion criteria", "Caregiver eligibility"
_OTHER_PERSON_RE = re.compile(
    r"^(?:[a-z]+\s+){0,2}?(donors?|caregivers?|parents?|siblings?|partners?)['’]?s?\s+"
    r"(?:inclusion|exclusion|eligibility)"
)
_INLINE_NUM_RE = re.compile(r"\s(?=(\d{1,2})\.\s+[A-Z(])")
# "Received any of the following treatments: 1. X; 2. Y; c. Z": a list written on one line.
# Split only under a lead-in that names the list and carries no condition of its own
# ("Patients with prior X are excluded if: a) ..." stays one line: its items hold only for
# those patients).
_LEAD_LIST_RE = re.compile(
    r"^(?P<lead>[^:;]{0,120}?\b(?:the following|as follows|below)\b[^:;]{0,50}:)\s*"
    r"(?=\(?(?:1|a|A|i)[.)]\s)"
)
_LEAD_CONDITION_RE = re.compile(
    r"\b(?:with|who|whose|if|when|unless|for|in case|provided|cohort|part|arm|phase|group)\b",
    re.IGNORECASE,
)
_LIST_ITEM_RE = re.compile(
    r"(?:^|(?<=[;.:,]\s)|(?<=[;.:]))\s*\(?(?:\d{1,2}|[a-hA-H]|i{1,3}|iv|vi{0,3})[.)]\s+"
)

# Normalizations applied to ``plain`` (matching only; ``text`` keeps the original).
_NORMALIZE = [
    (re.compile(r"&gt;"), ">"),
    (re.compile(r"&lt;"), "<"),
    (re.compile(r"&amp;"), "&"),
    (re.compile(r"[≥⩾≧]|>\s*/\s*=|=\s*>|>\s*or\s*=|\u2265"), ">="),
    (re.compile(r"[≤⩽≦]|<\s*/\s*=|=\s*<|<\s*or\s*=|\u2264"), "<="),
    (re.compile(r"[×✕✖]"), "x"),
    (re.compile(r"[‐‑‒–—−]"), "-"),
    (re.compile(r"[’‘`´]"), "'"),
    (re.compile(r"[“”]"), '"'),
    (re.compile(r"µ|μ"), "u"),
    (re.compile(r"\u00a0|\u2009|\u202f"), " "),
]


@dataclass
class CriteriaLine:
    """One criterion line of the text."""

    section: str  # "inclusion" | "exclusion"
    text: str  # as written, bullet stripped, wrapped lines re-joined
    plain: str  # unescaped + normalized, for matching
    depth: int = 0  # 0 = top-level bullet; 1 = sub-bullet ...
    context: str | None = None  # parent line / sub-heading text (plain)
    is_heading: bool = False  # a free-form sub-heading ending with ":" (not a criterion)
    # the person a heading says these criteria are about when it is not the patient
    # ("Donors' inclusion criteria:" -> "donor")
    about: str | None = None
    # the section heading in force, as written ("Other inclusion criteria for group A and
    # group B:"), when it says more than the section's name
    heading: str | None = None
    children: list[CriteriaLine] = field(default_factory=list, repr=False)
    parent: CriteriaLine | None = field(default=None, repr=False)


def unescape_markdown(text: str) -> str:
    """``\\>=`` -> ``>=``, ``\\[`` -> ``[``; ``**bold**`` -> ``bold``."""
    text = _MD_ESCAPE_RE.sub(r"\1", text)
    return _EMPHASIS_RE.sub(r"\2", text)


# characters one of which each ``_NORMALIZE`` rule needs (rules without one are skipped)
_NORMALIZE_NEEDLES = [
    "&", "&", "&", "≥⩾≧>=\u2265", "≤⩽≦<=\u2264", "×✕✖", "‐‑‒–—−", "’‘`´", "“”", "µμ",
    "\u00a0\u2009\u202f",
]  # fmt: skip
_WS_RE = re.compile(r"\s+")


def normalize(text: str) -> str:
    """Text for matching: Markdown unescaped, comparison signs and dashes normalized."""
    if "\\" in text or "*" in text or "_" in text:
        text = unescape_markdown(text)
    for (rx, rep), needles in zip(_NORMALIZE, _NORMALIZE_NEEDLES, strict=True):
        if any(ch in text for ch in needles):
            text = rx.sub(rep, text)
    return _WS_RE.sub(" ", text).strip()


def _heading(s: str) -> tuple[str | None, str | None, bool]:
    """Return (section or None for neutral, remainder text, is_heading)."""
    core = unescape_markdown(s).strip().strip("*#_ ").strip()
    if len(core) > 90:
        return None, None, False
    m = _HEADING_RE.match(core)
    if not m or not _HEADING_PRE_OK.match(m.group("pre") or ""):
        return None, None, False
    rest = m.group("rest").strip()
    has_criteria = re.search(r"criteri", core[: m.end("kind") + 12], re.IGNORECASE)
    if rest and not m.group("colon"):
        return None, None, False  # a sentence that merely starts with "Inclusion ..."
    if (
        not rest
        and not m.group("colon")
        and not has_criteria
        and core.lower()
        not in (
            "inclusion",
            "exclusion",
        )
    ):
        return None, None, False
    if rest and re.match(r"(?:and|or|/)\b", rest, re.IGNORECASE):
        return None, None, False
    kind = m.group("kind").lower()
    section = (
        "inclusion"
        if kind.startswith("inclusion")
        else "exclusion"
        if kind.startswith("ex")
        else None
    )
    return section, rest or None, True


def _is_subheading(s: str) -> bool:
    core = unescape_markdown(s).strip().strip("*#_ ")
    return core.endswith(":") and len(core) <= 100


def split_criteria(text: str | None) -> list[CriteriaLine]:
    """Split a criteria text into ``CriteriaLine`` items (see module docstring).

    Every non-blank, non-heading line ends up in exactly one item. Sub-headings and
    parent lines are items too (``is_heading`` / ``children`` tell them apart).
    """
    if not text:
        return []
    raw_lines = text.replace("\r\n", "\n").replace("\r", "\n").expandtabs(4).split("\n")
    if "CHARACTERISTICS" in text or "THERAPY" in text:
        raw_lines = _with_pdq_laid_out(raw_lines)
    section = "inclusion"
    about: str | None = None
    heading_text: str | None = None
    items: list[CriteriaLine] = []
    stack: list[tuple[int, CriteriaLine]] = []  # (indent, item)
    heading_item: CriteriaLine | None = None  # free-form sub-heading currently in force
    last: CriteriaLine | None = None
    last_raw_len = 0
    last_indent = 0
    last_kind: str | None = None  # bullet style of ``last``: "num", "sym" or None
    # a "one of the following:" line whose items use another bullet style at the same indent
    # ("10. ... one of the following:" then "* Creatinine ..."): (raw indent, style, indent
    # given to those items, parent's indent, parent's style)
    sublist: tuple[int, str, int, int, str | None] | None = None
    blank = True

    def new_item(body: str, indent: int, bulleted: bool) -> CriteriaLine:
        nonlocal last, last_raw_len, last_indent
        while stack and stack[-1][0] >= indent:
            stack.pop()
        parent = stack[-1][1] if stack else heading_item
        if parent is not None and parent.section != section:
            parent = None
        item = CriteriaLine(
            section=section,
            text=body,
            plain="",
            depth=(parent.depth + 1) if parent is not None else 0,
            parent=parent,
            about=about,
            heading=heading_text,
        )
        if parent is not None:
            parent.children.append(item)
        items.append(item)
        stack.append((indent, item))
        last = item
        last_raw_len = len(body)
        last_indent = indent
        return item

    for raw in raw_lines:
        line = raw.rstrip()
        if not line.strip():
            blank = True
            continue
        indent = len(line) - len(line.lstrip())
        s = line.strip()
        bm = _BULLET_RE.match(s)
        body = s[bm.end() :].strip() if bm else s
        sec, rest, is_head = _heading(body)
        if is_head:
            if sec is not None:
                section = sec
            op = _OTHER_PERSON_RE.match(unescape_markdown(body).strip().strip("*#_ ").lower())
            about = op.group(1).rstrip("s'’") if op else None
            head = normalize(body).strip(" :-")
            heading_text = head if rest is None and _HEADING_SAYS_MORE_RE.search(head) else None
            stack.clear()
            heading_item = None
            last = None
            last_kind = None
            sublist = None
            blank = True
            if rest:
                new_item(rest, indent, False)
                blank = False
            continue
        if bm and not body:
            blank = True  # an empty bullet ("-" alone): the text follows on the next line
            continue
        dangling = last is not None and last.text.rstrip()[-1:] not in ".:;!?"
        continuation = (
            last is not None
            and not bm
            and (
                not blank
                or (
                    dangling
                    and indent > last_indent
                    and (body[:1].islower() or not body[:1].isalpha())
                )
            )
            and not last.text.rstrip().endswith(":")
            and (
                indent > last_indent
                or last_raw_len >= 60
                or body[:1].islower()
                or last.text.rstrip()[-1:] not in ".;"
                and indent >= last_indent > 0
            )
        )
        if continuation and last is not None:
            last.text = f"{last.text} {body}"
            last_raw_len = len(body)
            blank = False
            continue
        if not bm and _is_subheading(body) and (blank or last is None):
            stack.clear()
            heading_item = None
            item = new_item(body, -1, False)
            item.is_heading = True
            stack.clear()
            stack.append((-1, item))
            heading_item = item
            last_kind = None
            sublist = None
            blank = False
            continue
        kind = None if not bm else ("sym" if bm.group(0).strip()[-1:] not in ".)" else "num")
        eff = indent
        if bm and sublist is not None:
            if indent == sublist[0] and kind == sublist[1]:
                eff = sublist[2]
            else:
                if kind == sublist[4] and indent > sublist[3]:
                    eff = sublist[3]  # the parent's next sibling, indented a little
                sublist = None
        elif (
            bm
            and last is not None
            and last.text.rstrip().endswith(":")
            and last_kind is not None
            and kind != last_kind
            and indent <= last_indent
        ):
            eff = last_indent + 1
            sublist = (indent, kind, eff, last_indent, last_kind)
        new_item(body, eff, bool(bm))
        last_kind = kind
        blank = False

    out: list[CriteriaLine] = []
    for item in items:
        for piece in _split_inline_numbering(item.text):
            if piece is item.text:
                it = item
            else:
                it = CriteriaLine(
                    section=item.section,
                    text=piece,
                    plain="",
                    depth=item.depth,
                    parent=item.parent,
                    about=item.about,
                    heading=item.heading,
                )
            it.plain = normalize(it.text)
            it.context = normalize(it.parent.text) if it.parent is not None else None
            out.append(it)
            listed = None if it.is_heading or it.children else _split_lead_list(it.text)
            if listed is not None:
                it.text = listed[0]
                it.plain = normalize(it.text)
                for piece in listed[1]:
                    child = CriteriaLine(
                        section=it.section,
                        text=piece,
                        plain=normalize(piece),
                        depth=it.depth + 1,
                        context=it.plain,
                        parent=it,
                        about=it.about,
                        heading=it.heading,
                    )
                    it.children.append(child)
                    out.append(child)
    return out


def _split_lead_list(text: str) -> tuple[str, list[str]] | None:
    """``"Received any of the following: 1. X; 2. Y"`` -> ``("Received any of the
    following:", ["X", "Y"])``; None when the line is not such a list (at least two items)."""
    m = _LEAD_LIST_RE.match(text)
    if m is None or _LEAD_CONDITION_RE.search(m.group("lead")):
        return None
    rest = text[m.end() :]
    cuts = [x for x in _LIST_ITEM_RE.finditer(rest)]
    if len(cuts) < 2 or cuts[0].start() != 0:
        return None
    items = []
    for k, x in enumerate(cuts):
        end = cuts[k + 1].start() if k + 1 < len(cuts) else len(rest)
        piece = rest[x.end() : end].strip().rstrip(";,").strip()
        if piece:
            items.append(piece)
    if len(items) < 2:
        return None
    return m.group("lead").strip(), items


def _split_inline_numbering(text: str) -> list[str]:
    """``"1. A 2. B 3. C"`` on one line (seen in real records) -> three lines."""
    cuts = [m for m in _INLINE_NUM_RE.finditer(text)]
    if len(cuts) < 2:
        return [text]
    expected = 2
    pieces: list[str] = []
    start = 0
    for m in cuts:
        if int(m.group(1)) == expected:
            pieces.append(text[start : m.start()].strip())
            start = m.start() + 1
            expected += 1
    if len(pieces) < 2:
        return [text]
    pieces.append(text[start:].strip())
    pieces = [_BULLET_RE.sub("", p, count=1).strip() if p[:1].isdigit() else p for p in pieces]
    return [p for p in pieces if p]


# ---------------------------------------------------------------- flattened PDQ paragraphs
#
# Mirror pages and some exports print a PDQ-style text ("DISEASE CHARACTERISTICS: ...
# PATIENT CHARACTERISTICS: Age 18 to 70 Performance status WHO 0-2 Hematopoietic Absolute
# neutrophil count > 1,500/mm^3 Platelet count > 100,000/mm^3 ...") as one paragraph. Read
# whole, it is one line: a word anywhere in it ("e.g.", "other", "allowed provided") caps
# every criterion found in it. ``unflatten_pdq`` lays such a paragraph out as the registry
# lays out PDQ text (section headings, bare sub-headings, one "* " item per criterion), so
# the rest of the splitter reads it like any other record. Item boundaries are only where a
# criterion plainly starts (a word from ``_PDQ_STARTERS`` after the end of a phrase, outside
# brackets); a boundary it misses leaves two criteria in one item, as before.


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_PDQ_SECTION_RE = re.compile(
    r"\b(DISEASE CHARACTERISTICS|PATIENT CHARACTERISTICS|PRIOR(?: |/)CONCURRENT THERAPY"
    r"|PRIOR THERAPY|CONCURRENT THERAPY)\s*:"
)
# the sub-headings PDQ uses, per section; case as written (a capital letter, then the
# heading's own words), followed by the start of its content
_PDQ_SUBHEADINGS = {
    "PATIENT CHARACTERISTICS": (
        "Age",
        "Sex",
        "Menopausal status",
        "Performance status",
        "Life expectancy",
        "Hematopoietic",
        "Hepatic",
        "Renal",
        "Cardiovascular",
        "Pulmonary",
        "Neurologic",
        "Immunologic",
        "Immunology",
        "Gastrointestinal",
        "Other",
    ),
    "PRIOR CONCURRENT THERAPY": (
        "Biologic therapy",
        "Chemotherapy",
        "Endocrine therapy",
        "Radiotherapy",
        "Surgery",
        "Other",
    ),
}
_PDQ_SUB_RE = {
    section: re.compile(
        r"(?:^|(?<=\s))(" + "|".join(re.escape(h) for h in heads) + r")\b:?\s+(?=[A-Z0-9<>≥≤*])"
    )
    for section, heads in _PDQ_SUBHEADINGS.items()
}
# words that start a PDQ criterion (capitalised as written); a capitalised word that is not
# here (a name: "Ewing", "Kaposi's", "Cremophor") never starts an item
_PDQ_STARTERS = _words(
    """No Not Must Patients Patient Prior Previous Previously At Absolute Platelet Platelets
    Hemoglobin Haemoglobin Hematocrit Granulocyte Granulocytes Neutrophil Neutrophils
    Leukocytes Bilirubin Creatinine Transaminases Alkaline Albumin Serum Fertile Negative
    Measurable Evaluable Bidimensionally Unidimensionally Locally Unresectable Resectable
    Potentially Histologically Cytologically Pathologically Morphologically Biopsy-proven
    Metastatic Recurrent Refractory Relapsed Progressive Persistent Stage Disease Tumor Tumors
    Tumour Tumours Life Able Ability Willing Adequate Normal Male Female Men Women
    Premenopausal Postmenopausal Concurrent Recovered Received Completed More Less Greater
    Any Documented Confirmed Newly Primary Estrogen Hormone Brain Signed Written Informed
    Ejection Known History Chronic Active Uncontrolled Significant Severe Only One Two
    Hepatitis Candidate Eligible Failed Failure Presence Absence Asymptomatic Symptomatic
    Clinically Radiologically Objective Documentation Minimum Maximum Extensive Limited
    Untreated Pretreated Treated Myocardial Congestive Cardiac Interstitial Currently
    Concomitant Ongoing Baseline Up Adjuvant Neoadjuvant See Radiotherapy Chemotherapy
    Surgery Immunotherapy Biologic Endocrine Hormonal"""
)
# all-capital lab names start an item only after a value or a bracket ("4,000 ANC at least
# 2,000", "(ULN) SGOT and SGPT ..."); elsewhere ("No known HIV") they are inside a phrase
_PDQ_LAB_STARTERS = _words("WBC ANC AGC SGOT SGPT AST ALT LVEF INR PT PTT ECOG")
# words after which nothing starts: the phrase goes on
_PDQ_GOES_ON = _words(
    """a an and or nor no not of with without to the for than in on at by as from per
    into onto via vs versus including include includes e.g. i.e. eg ie such like plus
    either neither both if unless except when whose who which that is are be been
    least most more less greater over under above below within after before during
    between among any all each every other another prior previous"""
)
_PDQ_WORD_RE = re.compile(r"\S+")


def _pdq_items(text: str) -> list[str]:
    """One PDQ sub-section's content -> its criteria, as written."""
    cuts = [0]
    depth = 0
    prev: str | None = None
    for m in _PDQ_WORD_RE.finditer(text):
        word = m.group(0)
        if prev is not None and depth == 0 and _pdq_starts_item(prev, word):
            cuts.append(m.start())
        depth += word.count("(") + word.count("[") - word.count(")") - word.count("]")
        depth = max(depth, 0)
        prev = word
    cuts.append(len(text))
    return [text[a:b].strip() for a, b in zip(cuts, cuts[1:], strict=False) if text[a:b].strip()]


def _pdq_starts_item(prev: str, word: str) -> bool:
    if word.startswith("NOTE"):
        return True
    bare = word.strip("*,;:")
    last = prev.rstrip("*")
    ends_value = last[-1:].isdigit() or last[-1:] in ")]%" or last.endswith("^3")
    if bare in _PDQ_LAB_STARTERS:
        return ends_value
    if bare not in _PDQ_STARTERS:
        return False
    if last.endswith(".") and last.lower() not in ("e.g.", "i.e.", "vs.", "approx."):
        return True
    core = last.strip("()[],;:\"'")
    if not core:
        return ends_value
    if core.lower() in _PDQ_GOES_ON or core.endswith("-"):
        return False
    # after a word: only a lower-case one or an abbreviation ("disease No", "ULN No"), not
    # after a capitalised name or heading word ("See Disease Characteristics")
    return ends_value or core[0].islower() or (core.isupper() and len(core) > 1)


def _with_pdq_laid_out(raw_lines: list[str]) -> list[str]:
    out: list[str] = []
    for raw in raw_lines:
        s = raw.strip()
        bm = _BULLET_RE.match(s)
        laid = unflatten_pdq(s[bm.end() :] if bm else s) if len(s) >= 120 else None
        out += laid if laid is not None else [raw]
    return out


def unflatten_pdq(line: str) -> list[str] | None:
    """A flattened PDQ paragraph -> its lines in the registry's PDQ layout; None when the
    line is not one (fewer than two PDQ headings and sub-headings on it)."""
    heads = list(_PDQ_SECTION_RE.finditer(line))
    if not heads:
        return None
    subs = sum(
        len(_PDQ_SUB_RE[_pdq_section(h.group(1))].findall(line[h.end() :]))
        for h in heads
        if _pdq_section(h.group(1)) in _PDQ_SUB_RE
    )
    if len(heads) + subs < 3 or len(line) < 120:
        return None
    out: list[str] = []
    lead = line[: heads[0].start()].strip()
    if lead:
        out.append(lead)
    for k, h in enumerate(heads):
        end = heads[k + 1].start() if k + 1 < len(heads) else len(line)
        body = line[h.end() : end].strip()
        out += ["", line[h.start() : h.end()].strip(), ""]
        section = _pdq_section(h.group(1))
        sub_re = _PDQ_SUB_RE.get(section)
        parts: list[tuple[str | None, str]] = []
        if sub_re is None:
            parts.append((None, body))
        else:
            pos, name = 0, None
            for m in sub_re.finditer(body):
                parts.append((name, body[pos : m.start()]))
                name, pos = m.group(1), m.end()
            parts.append((name, body[pos:]))
        for name, content in parts:
            if name is not None:
                out += ["", name, ""]
            nested = False
            for item in _pdq_items(content.strip()):
                # the items after "... one of the following:" are its list, to the end of
                # the sub-section (where it ends is not written): alternatives, never rules
                out.append(f"  * {item}" if nested else f"* {item}")
                nested = nested or item.endswith(":")
    return out


def _pdq_section(head: str) -> str:
    return (
        "PATIENT CHARACTERISTICS"
        if head.startswith("PATIENT")
        else ("PRIOR CONCURRENT THERAPY" if head.startswith(("PRIOR", "CONCURRENT")) else head)
    )
