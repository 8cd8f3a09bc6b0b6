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
