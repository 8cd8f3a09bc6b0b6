"""Shared line machinery: comparators, negation and clause cues, line context, diagnosis look-up."""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

# =========================================================================================
# Regexes (compiled once at import)
# =========================================================================================
_I = re.IGNORECASE
_WORDNUM = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "twelve": 12,
    "single": 1,
}
_NUMW = r"(?:(?<!\d)\d{1,7}(?!\d)|one|two|three|four|five|six|seven|eight|nine|ten|twelve)"

# comparators written with words, rewritten to symbols before any other matching
_COMPARATORS = [
    (re.compile(r"\b(?:greater|more|higher|larger|better) than or equal to\b", _I), ">="),
    (re.compile(r"\b(?:less|lower|fewer|smaller|worse) than or equal to\b", _I), "<="),
    (re.compile(r"\bequal to or (?:greater|more|higher) than\b", _I), ">="),
    (re.compile(r"\bequal to or (?:less|lower) than\b", _I), "<="),
    (re.compile(r"\b(?:no|not) (?:more|greater|higher) than\b", _I), "<="),
    (re.compile(r"\b(?:no|not) (?:less|fewer|lower) than\b", _I), ">="),
    (re.compile(r"\bnot (?:to )?exceed(?:ing)?\b", _I), "<="),
    (
        re.compile(
            r"\b(?:at least|a minimum of|minimum of|minimum(?= \d)|min\.?(?= \d)|at or above)\b", _I
        ),
        ">=",
    ),
    (re.compile(r"\bat or below\b", _I), "<="),
    # "18 years of age or above": a trailing bound, read as "or more" / "or less" are
    (re.compile(r"\bor (?:above|over)\b(?!\s*\d)", _I), "or more"),
    (re.compile(r"\bor below\b(?!\s*\d)", _I), "or less"),
    (re.compile(r"\b(?:at most|a maximum of|maximum of|up to and including|up to)\b", _I), "<="),
    (re.compile(r"\b(?:greater|more|higher|older) than\b|\babove\b|\bexceeding\b", _I), ">"),
    (re.compile(r"\b(?:less|fewer|lower|younger) than\b|\bbelow\b|\bunder\b", _I), "<"),
]

_NEG_RE = re.compile(
    r"\b(?:no|not|never|without|absence of|absent|free of|lack of|lacking|lacks?|none of|neither|nor"
    r"|cannot|can't|unable to have)\b|\bn't\b",
    _I,
)
# a modal prohibition: the rule is stated, not the excluded patient described
_PROHIBITION_RE = re.compile(
    r"\b(?:must|may|should|shall|will|can)\s+not\b|\bcannot\b|\bmustn't\b|\bshouldn't\b", _I
)
_POST_EXCLUDE_RE = re.compile(
    # (not "... that have no available (or are ineligible) therapy": an alternative of a
    # relative clause)
    r"^[^.;]{0,60}?(?<!\bor )\b(?:are|is|will be|be)\s+(?:excluded|ineligible|not eligible|not allowed|"
    r"not permitted|prohibited)\b(?=\s*(?:[.;)]|$|from|for|to (?:participate|enrol|enter)|in this))",
    _I,
)
_PERMISSIVE_RE = re.compile(
    r"\b(?:eligible|allowed|permitted|acceptable|may (?:be )?(?:enrolled|included|participate)"
    r"|can (?:be )?(?:enrolled|included|participate)|are ok)\b",
    _I,
)
_CTX_EXCLUDE_RE = re.compile(
    r"\b(?:following|below)\b[^:]{0,60}\b(?:not allowed|not eligible|ineligible|excluded|not permitted"
    r"|not (?:be )?enrolled)\b|\b(?:not allowed|not eligible|ineligible|excluded|not permitted)\b"
    r"[^:]{0,30}\b(?:following|below)\b|\bnone of the following\b|\bno (?:\w+ ){0,3}of the following\b",
    _I,
)
_CTX_ANYOF_RE = re.compile(
    r"\b(?:one of the following|any of the following|at least one of|either of|one or more "
    r"of the following|one of|(?:any|at least)?\s*1 (?:or more )?of (?:the following|these))\b",
    _I,
)
_CLAUSE_BREAK_RE = re.compile(
    r"[.;:]\s|\(|\)|\bbut\b|\bunless\b|\bexcept\b|\bhowever\b|,\s*(?=provided|if\b|as long as|who\b|"
    r"which\b|that\b|and\b)|\bprovided\b"
    # a conjunct negated on its own ("No palpable nodes and no evidence of metastatic
    # disease"): each "no" negates its own item, the two are no double negative
    r"|(?:\band\b|\bor\b|,)\s*(?=(?:no|without|never)\b)",
    _I,
)
_EXCEPT_RE = re.compile(
    r"\b(?:except(?: for)?|excluding|other than|with the exception of|apart from|unless|"
    r"not including|besides)\b",
    _I,
)


_ONCO_RE = re.compile(
    r"cancer|carcinoma|sarcoma|tumou?r|malignan|neoplas|lymphoma|leukemi|melanoma|myeloma|"
    r"nsclc|\bgist\b|mesothelioma|glioma|blastoma|metasta|oncolog",
    _I,
)


_TOO_GENERIC_DIAGNOSES = frozenset({"cancer"})


_OTHER_MALIGNANCY_RE = re.compile(
    r"(?:cancer|carcinoma|scc|melanoma|malignan\w*|tumou?rs?)\b[^.;]{0,30}\bwithin the (?:past|last|"
    r"previous) (?:\d+|one|two|three|five) years|\b(?:other|another|prior|previous|second|secondary|concurrent|additional|synchronous|"
    r"history of|active)\s+(?:\w+\s+){0,3}?(?:malignan\w*|cancers?|tumou?rs?|neoplas\w*|"
    r"primary)|\bin situ\b|\bdisease[- ]free\b|\bcuratively treated\b|\bbasal cell\b|"
    r"\bfree of (?:\w+ ){0,2}(?:malignan|cancer)|\bmalignancy (?:within|in the)\b|"
    r"\bhistory of (?:[\w/-]+ ){0,3}(?:[\w-]+/)?(?:cancer|malignan|carcinoma|sarcoma|lymphoma|leukemia|"
    r"melanoma|tumou?r)",
    _I,
)


# =========================================================================================
# Line parsing
# =========================================================================================
def _prep(plain: str) -> str:
    """Lower-case matching text with word comparators turned into symbols."""
    s = plain.lower()
    # each rewrite runs only when a substring it needs is present (same result, less work)
    if "negative" in s:
        s = _TN_RE.sub("tn", s)
    if "non" in s:
        s = _NSCLC_RE.sub("nsclc-type", s)
        s = _NHL_RE.sub("nhl-type", s)
    if "not" in s:
        s = _NOT_FILLER_RE.sub(" ", s)
    if "(" in s:
        s = _SHORT_PAREN_RE.sub("", s)
    if "response evaluation" in s:
        s = _RECIST_RE.sub("recist", s)
    if any(k in s for k in _COMPARATOR_NEEDLES):
        for rx, rep in _COMPARATORS:
            s = rx.sub(rep, s)
    return s


_TN_RE = re.compile(r"triple[- ]negative|hormone[- ]receptor[- ]negative|her2[- ]negative")
_NSCLC_RE = re.compile(r"non-small[- ]cell|non small[- ]cell")
_NHL_RE = re.compile(r"non-hodgkin")
_NOT_FILLER_RE = re.compile(
    r"\b(?:but )?not limited to\b|\bnot otherwise specified\b|\bif not\b"
    # "Gender is not limited, patients between 14 to 70 years old": no negation of the age
    r"|\b(?:gender|sex) (?:is )?not (?:limited|restricted)\b"
)
_SHORT_PAREN_RE = re.compile(r"\s*\((?:[a-z0-9]{1,6})\)")
_RECIST_RE = re.compile(r"response evaluation criteria in solid tumou?rs?")
# every ``_COMPARATORS`` pattern contains one of these
_COMPARATOR_NEEDLES = (
    "than", "exceed", "least", "min", "above", "below", "most", "maxim", "up to", "under",
)  # fmt: skip


def _clause_prefix(s: str, start: int) -> str:
    """Text from the last clause break before ``start`` up to ``start``."""
    prefix = s[:start]
    cut = 0
    for m in _CLAUSE_BREAK_RE.finditer(prefix):
        cut = m.end()
    return prefix[cut:]


def _neg_count(s: str, start: int, end: int | None = None) -> int:
    """Negation cues before ``start`` in the same clause (+1 if a "non-" prefix is matched,
    +1 if the clause goes on to say "are excluded")."""
    n = len(_NEG_RE.findall(_clause_prefix(s, start)))
    if end is not None and _POST_EXCLUDE_RE.match(s[end:]):
        n += 1
    return n


def _flip(polarity: str, negations: int) -> str:
    if negations % 2 == 0:
        return polarity
    return "exclude" if polarity == "require" else "require"


def _num(word: str | None) -> int | None:
    if word is None:
        return None
    w = word.lower()
    if w.isdigit():
        return int(w)
    return _WORDNUM.get(w)


class _Ctx:
    """Everything one line's extractors need."""

    def __init__(self, line_plain: str, section: str, context: str | None, vocab: Any, onco: bool):
        self.plain = line_plain
        self.s = _prep(line_plain)
        self.section = section
        self.base = "require" if section == "inclusion" else "exclude"
        self.context = context
        self.context_negates = bool(context and _CTX_EXCLUDE_RE.search(context))
        if self.context_negates and section == "exclusion":
            self.context_negates = False  # "exclusion: any of the following" already excludes
        self.vocab = vocab
        self.onco = onco

    def polarity(self, start: int, end: int | None = None, extra: int = 0) -> str:
        n = _neg_count(self.s, start) + extra
        if end is not None and _POST_EXCLUDE_RE.match(self.s[end:]):
            # "brain metastases are not allowed" excludes them whichever section it stands in
            return _flip("exclude", n)
        return _flip(self._base_for(_clause_prefix(self.s, start)), n + self._ctx_neg())

    def polarity_plain(self, text: str, start: int) -> str:
        """``polarity`` for a position in the *plain* text (before ``_prep`` rewrote it)."""
        pre = _prep(text[:start])
        prefix = _clause_prefix(pre, len(pre))
        n = len(_NEG_RE.findall(prefix))
        return _flip(self._base_for(prefix), n + self._ctx_neg())

    def _base_for(self, prefix: str) -> str:
        """The polarity the clause's negations flip. A prohibition ("Participants must not
        have active CNS lymphoma") states its rule itself, in whichever section it stands:
        under "Exclusion criteria" it is no double negative that would require the disease."""
        if self.section == "exclusion" and _PROHIBITION_RE.search(prefix):
            return "require"
        return self.base

    def _ctx_neg(self) -> int:
        return 1 if self.context_negates else 0


_ENUM_RE = re.compile(r"\(\s*(?:\d{1,2}|[a-h]|i{1,3}|iv|v)\s*\)|;\s*or\b")


def _except_spans(low: str) -> list[tuple[int, int]]:
    """Spans of ``low`` governed by an exception cue ("other than glioma", "excluding GIST").

    An exception inside parentheses ends at the closing parenthesis; otherwise at the next
    ``;`` / sentence end / enumerated alternative ("(3)", "; or"), so "(2) solid tumor (other
    than glioma); or (3) glioblastoma" excepts glioma only.
    """
    spans: list[tuple[int, int]] = []
    for m in _EXCEPT_RE.finditer(low):
        start = m.start()
        if low.rfind("(", 0, start) > low.rfind(")", 0, start):
            close = low.find(")", m.end())
            end = close if close >= 0 else len(low)
        else:
            stops = [i for i in (low.find(";", m.end()), low.find(". ", m.end())) if i >= 0]
            en = _ENUM_RE.search(low, m.end())
            if en:
                stops.append(en.start())
            end = min(stops) if stops else len(low)
        spans.append((start, end))
    return spans


def _positions(low: str, mention: str) -> list[int]:
    """Every word-bounded start of ``mention`` in ``low`` (both lower-case)."""
    out: list[int] = []
    i = low.find(mention)
    while i >= 0:
        before = low[i - 1 : i]
        after = low[i + len(mention) : i + len(mention) + 1]
        if not (before.isalnum() or after.isalnum()):
            out.append(i)
        i = low.find(mention, i + 1)
    return out or [max(low.find(mention), 0)]


_DIAG_CACHE: OrderedDict[str, list] = OrderedDict()
_DIAG_CACHE_MAX = 50000
_DIAG_VOCAB: list[Any] = [None]


def _as_written(vocab: Any, text: str) -> list[tuple[str, str]]:
    """The diagnoses a line names, lists expanded ("soft tissue or bone sarcoma" names soft
    tissue sarcoma too: ``Vocab.find_diagnoses_listed``), each with words as they stand in the
    line (a list member is its own words, "soft tissue", not "soft tissue … sarcoma")."""
    listed = getattr(vocab, "find_diagnoses_listed", None)
    if listed is None:
        return vocab.find_diagnoses(text)
    return [(d, m.split(" … ", 1)[0]) for d, m in listed(text)]


def _find_diagnoses(vocab: Any, text: str) -> list[tuple[str, str]]:
    """``vocab.find_diagnoses`` memoized per text (lines repeat across trials: "Pregnant or
    breastfeeding" ...). The cache is dropped when another vocabulary object is used."""
    if _DIAG_VOCAB[0] is not vocab:
        _DIAG_CACHE.clear()
        _DIAG_VOCAB[0] = vocab
    hit = _DIAG_CACHE.get(text)
    if hit is None:
        hit = _as_written(vocab, text)
        _DIAG_CACHE[text] = hit
        if len(_DIAG_CACHE) > _DIAG_CACHE_MAX:
            _DIAG_CACHE.popitem(last=False)
    return hit


# "may have been treated with an EGFR-TKI", "Limited prior therapy, including ...", "the use of X
# in the adjuvant setting is acceptable": the line allows, it does not require
_MAY_ONLY_PERMIT_RE = re.compile(
    r"\b(?:may|can|could) (?:have )?(?:been |be )?(?:treated|received|had|used|given)\b|\blimited prior\b"
    r"|\b(?:is|are|will be) (?:acceptable|allowed|permitted)\b",
    _I,
)
# Words by which a line that needs treated disease ("relapsed or refractory AML", "progression
# after prior therapy") may still admit an untreated patient: another way in (newly
# diagnosed, unfit, refused, ineligible), a permission or a condition. With none of them on
# the line, its other unread words cannot admit a patient who has had no therapy at all.
UNTREATED_WAY_IN_RE = re.compile(
    r"\bnew(?:ly)?[- ]?diagnos\w*|\bfirst[- ]diagnos\w*|\bnew diagnosis\b|\buntreated\b|"
    r"\bna[iï]ve\b|\bde[- ]novo\b|\bfirst[- ]line\b|\bfront[- ]?line\b|\bupfront\b|\bunfit\b|"
    r"\bineligible\b|\bnot (?:be )?eligible\b|\beligible\b|\bnot (?:a )?candidates?\b|"
    r"\bnot (?:be )?(?:suitable|fit|appropriate)\b|\bunsuitable\b|\brefus\w*|\bdeclin\w*|"
    r"\bintoleran\w*|\bcontraindicat\w*|\bunable\b|\bunwilling\b|\bnot (?:want|wish)\b|"
    r"\bif\b|\bunless\b|\bexcept\w*|\bwithout\b|\bno prior\b|\bnot (?:have )?(?:received|had)\b|"
    r"\ballow\w*|\bpermit\w*|\bpermissible\b|\bacceptable\b|\baccepted\b|\boptional\w*|"
    r"\bmay\b|\bcan\b|\bcould\b|\bwhether\b|\bregardless\b|\birrespective\b|\bsmou?lder\w*|"
    r"\bhigh[- ]risk\b|\bpre-?malignan\w*|\bscreen\w* (?:for|of)\b|\bsuspected\b|\bfor whom\b|"
    r"\bno (?:standard|effective|available|approved|curative|established|satisfactory|other)\b|"
    r"\bnot (?:exist|available)\w*|\bdoes not exist\b|\bnone exists?\b|"
    # "For those who had previous prostatectomy, ...": a condition on who the rule is for
    r"\b(?:for|in) (?:those|patients|participants|subjects|men|women) (?:who|with|that|whose)\b"
    # "Patients might have received ...": a permission; "All participants in Phase 2 must ...":
    # one part's rule; "Patients with cardiac disease (EF < 50%), or who have received ...":
    # another subject is another way in
    r"|\bmight\b|\bor who\b|\b(?:in|for)\s+(?:the\s+)?(?:phase|part|step|cohort|arm)\s*[\w.-]{1,4}\b"
    # "Recurrent or progressive disease OR refractory to standard therapy": progression seen on
    # observation needs no treatment before it
    r"|\bprogressi(?:ve|ng|on)\b(?:\s+(?:disease|tumou?rs?))?(?!\s+(?:on|after|following|despite|during|while|with|to)\b)",
    _I,
)


# "progression during or after first-line therapy": the first line the patient has had, not a
# first-line setting the trial offers
_HAD_LINE_BEFORE_RE = re.compile(
    r"\b(?:after|following|during|on|despite|to|of|with|from)\s+(?:the\s+|a\s+|their\s+)?(?:prior\s+)?$",
    _I,
)


def untreated_way_in(text: str | None) -> bool:
    """True when ``text`` offers an untreated patient a way in (``UNTREATED_WAY_IN_RE``); a
    "first-line" the patient must have progressed on or after is none."""
    for m in UNTREATED_WAY_IN_RE.finditer(text or ""):
        word = m.group(0).lower()
        if (
            word.startswith("first")
            and "line" in word
            and _HAD_LINE_BEFORE_RE.search(text[max(0, m.start() - 40) : m.start()])
        ):
            continue
        return True
    return False


# A line that states whom the trial is for ("patients with", "histologically confirmed", "any
# type of"): a broad diagnosis there widens the population; elsewhere ("pain at diagnosis
# related to leukemia") it refers back to the disease another line names.
POPULATION_STATED_RE = re.compile(
    r"\b(?:histolog\w*|cytolog\w*|patholog\w*|confirmed|documented|proven|established)\b"
    r"|\bdiagnos(?:is|es|ed) (?:of|with|as)\b|\bdiagnosed\b"
    r"|\b(?:patients?|subjects?|participants?|children|adults?|people|individuals?|those|"
    r"cases?) (?:with|having|who (?:have|has|had)|suffering from|affected by)\b"
    r"|\b(?:must|should) (?:have|be)\b|\b(?:any|all|other) (?:type|kind|form)s? of\b",
    re.IGNORECASE,
)
