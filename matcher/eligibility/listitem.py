"""A named item of an exclusion list: when a NOT_MET holds whatever the line's unread words say.

"No prior radiotherapy to chest, immunotherapy or biologic therapy": a patient who had
pembrolizumab is excluded by "immunotherapy", named on its own; "to chest" qualifies the
radiotherapy item and "biologic therapy" is another item. "Squamous cell carcinoma (including
adenosquamous carcinoma); Small cell lung carcinoma (including ... mixed ...)": an
adenosquamous patient is excluded by the first item whatever the second's words say.

The rule: the line is a list of items (split on commas, semicolons and "or" outside
parentheses); what the patient has is named in an item with no unread word in it; every unread
word stands in another item -- after that item's entity when it is the first item (a qualifier
of it: "radiotherapy to chest"), before it when it is the last ("or other genetically modified
cell therapy"), anywhere in a middle one; and none is a condition, a permission or a time or
setting word that could reach the whole list. Words a list shares (a head before the first
item, a tail after the last) keep the verdict UNKNOWN. Used by the prior-therapy and histology
exclusions (``therapy.settled_listed_item``, ``histology.settled_listed_diagnosis``).
"""

from __future__ import annotations

import re

from matcher.eligibility.model import Criterion
from matcher.eligibility.text import _I

_LIST_SEP_RE = re.compile(r",\s*(?:and/or|or|and)\s+|,\s*|;\s*|\s+(?:and/or|or|nor)\s+")
_HARD_WORD_RE = re.compile(
    r"\b(?:if|unless|except\w*|provided|providing|as long as|when|whenever|where|until|allow\w*|"
    r"permit\w*|acceptable|accepted|eligible|may|can|could|but|however|although|though|only|"
    r"otherwise|regardless|irrespective|within|since|after|before|during|for|in)\b",
    _I,
)


# an example list opened before the patient's item: its items are examples of a head
_EXAMPLES_BEFORE_RE = re.compile(
    r"\b(?:such as|e\.\s?g\.?|eg|i\.\s?e\.?|ie|including|includes|include|for example|for instance|"
    r"like|namely|as follows|the following)\b|:",
    _I,
)


def top_level_cuts(
    low: str, start: int, end: int, sep: re.Pattern, word_start: bool = False
) -> list[re.Match]:
    """The matches of separator ``sep`` in ``low[start:end]`` outside parentheses and
    brackets, in order (with ``word_start``, a separator other than a comma must start a
    word: not follow a letter or digit)."""
    cuts: list[re.Match] = []
    depth, i = 0, start
    while i < end:
        ch = low[i]
        if ch in "([":
            depth += 1
        elif ch in ")]":
            depth = max(0, depth - 1)
        elif depth == 0:
            m = sep.match(low, i)
            if (
                m
                and m.end() > i
                and (not word_start or ch == "," or i == 0 or not low[i - 1].isalnum())
            ):
                cuts.append(m)
                i = m.end()
                continue
        i += 1
    return cuts


def top_level_items(low: str) -> list[tuple[int, int]]:
    """Spans of the list items of a line: split on commas, semicolons and "or" outside
    parentheses."""
    items, start = [], 0
    for m in top_level_cuts(low, 0, len(low), _LIST_SEP_RE):
        items.append((start, m.start()))
        start = m.end()
    items.append((start, len(low)))
    return [(a, b) for a, b in items if low[a:b].strip()]


def entity_spans(pairs: list[tuple[str, str]], text: str) -> list[tuple[int, int, str]]:
    """(start, end, id) of each (id, mention) a finder returned, at every place the mention
    stands in ``text`` -- except inside a longer mention ("carcinoma" in "squamous cell
    carcinoma" is that one's word, not a mention of its own)."""
    low = text.lower()
    spans: list[tuple[int, int, str]] = []
    for ident, mention in dict.fromkeys(pairs):
        m = mention.lower()
        i = low.find(m)
        while i >= 0 and m:
            spans.append((i, i + len(m), ident))
            i = low.find(m, i + 1)
    return [
        (a, b, ident)
        for a, b, ident in spans
        if not any(x <= a and b <= y and (y - x) > (b - a) for x, y, _o in spans)
    ]


def settled_by_item(
    c: Criterion, hit_ids: set[str], entities: list[tuple[int, int, str]]
) -> str | None:
    """Why the NOT_MET of exclusion ``c`` holds despite its unread words, or None.

    ``hit_ids`` are the entities of the line the patient has (drugs, classes, diagnoses);
    ``entities`` every entity the line names, as (start, end, id) in ``c.text``."""
    if not c.unexplained or not hit_ids:
        return None
    if any(_HARD_WORD_RE.search(w) for w in c.unexplained):
        return None
    low = c.text.lower()
    items = top_level_items(low)
    if len(items) < 2:
        return None

    def item_of(pos: int) -> int | None:
        return next((k for k, (a, b) in enumerate(items) if a <= pos < b), None)

    hit_items = {item_of(a) for a, _b, ident in entities if ident in hit_ids} - {None}
    if not hit_items:
        return None
    first_hit = min(items[k][0] for k in hit_items)
    if _EXAMPLES_BEFORE_RE.search(low[:first_hit]):
        # "antiangiogenic therapy or other targeted treatment for no more than 3 months, such
        # as erlotinib, sunitinib, ...": the items are examples of a head, and share its words
        return None
    last = len(items) - 1
    dirty: set[int] = set()
    covered = [False] * len(low)
    for x, y, _i in entities:
        covered[x:y] = [True] * (y - x)
    for run in c.unexplained:
        start = low.find(run.lower())
        if start < 0:
            return None
        # a quoted run may span items ("chest, immunotherapy or"): judge each unread word
        words = [
            (start + m.start(), start + m.end())
            for m in re.finditer(r"[\w'-]+", low[start : start + len(run)])
            if m.group(0) not in ("or", "and", "nor")
        ]
        unread = [(at, end) for at, end in words if not all(covered[at:end])]
        if not unread:
            return None  # the run is an entity's own name: what was not read is unclear
        for at, end in unread:
            k = item_of(at)
            if k is None:
                return None
            dirty.add(k)
            a, b = items[k]
            own = [(x, y) for x, y, _i in entities if a <= x < b]
            if not own:
                return None  # an item naming nothing: its words may be a shared head or tail
            if k == 0 and at < min(y for _x, y in own):
                return None  # before the first item's entity: the shared head of the list
            if k == last and end > max(y for _x, y in own):
                return None  # after the last item's entity: may reach the whole list
    clean = hit_items - dirty
    if not clean:
        return None  # every item naming what the patient has has words not read
    named = ", ".join(
        sorted({ident for a, _b, ident in entities if ident in hit_ids and item_of(a) in clean})
    ).replace("_", " ")
    return f"{named} is named as its own item of the list; the words not read qualify other items"
