"""Prior therapy (required, excluded, maximum lines) and washout: parsing and evaluation."""

from __future__ import annotations

import re
from typing import Any

from matcher.eligibility.listitem import entity_spans, settled_by_item
from matcher.eligibility.model import CHEMO_CLASSES, MET, NOT_MET, UNKNOWN, Criterion
from matcher.eligibility.text import (
    _EXCEPT_RE,
    _I,
    _MAY_ONLY_PERMIT_RE,
    _NEG_RE,
    _NUMW,
    _PERMISSIVE_RE,
    _POST_EXCLUDE_RE,
    _Ctx,
    _neg_count,
    _num,
    _prep,
    untreated_way_in,
)

# --- prior therapy ------------------------------------------------------------------------
_THERAPY_CUE_RE = re.compile(
    r"\b(?:prior(?! to\b)|previous(?:ly)?|received|receipt of|treated with|started on|"
    r"exposure to|exposed to|pre-?treated|refractory|progress\w*|failed|failure|"
    r"na[iï]ve|untreated|lines? of|regimens?|relapsed|recurred|had)\b",
    _I,
)
_CATEGORY_RES = [
    (
        "chemotherapy",
        re.compile(
            r"\bchemo(?:therapy|therapies|therapeutic)?\b|\bcytotoxic\b(?![\s-]+t[\s-]*(?:lymphocyte|cell))",
            _I,
        ),
    ),
    (
        "systemic",
        re.compile(
            r"\bsystemic (?:anti-?cancer |anti-?neoplastic |cancer |anti-?tumou?r )?"
            r"(?:therap\w*|treatments?|agents?|regimens?)|\banti-?cancer (?:therap\w*|treatments?|"
            r"agents?|drugs?)|\banti-?neoplastic (?:therap\w*|treatments?|agents?)|"
            r"\banti-?tumou?r (?:therap\w*|treatments?|agents?|drugs?)|"
            r"\bsystemic (?:\w+ )?(?:therapy|treatment)\b",
            _I,
        ),
    ),
    (
        "immunotherapy",
        re.compile(
            r"\bimmunotherap\w*|\b(?:pd-?1|pd-?l1|ctla-?4)\)?\s+(?:inhibit\w*|blockade)\s+therap\w*",
            _I,
        ),
    ),
    ("targeted_therapy", re.compile(r"\btargeted (?:therap\w*|agents?)", _I)),
]
_SKIP_THERAPY_RE = re.compile(
    r"\ballerg\w*|\bhypersensitiv\w*|\bcontraindicat\w*|\bcumulative\b|\bmg/m|"
    r"\b(?:concurrent|concomitant|currently (?:being )?(?:receiving|taking|on|using|treated|undergoing)|ongoing|during the study|"
    r"while on (?:the )?study|on study|planned|will receive|scheduled to|willing to (?:receive|"
    r"undergo)|candidate(?:s)? for|eligible (?:for|to receive)|be able to (?:receive|tolerate)|"
    r"requiring|taking|stable dose|contracept\w*|condoms?|abstinen\w*|pregnan\w*|"
    r"require[sd]? (?:systemic )?treatment|need(?:s|ing)? (?:for )?(?:systemic )?treatment)\b",
    _I,
)
_NAIVE_RE = re.compile(
    r"\bpreviously untreated\b(?! with)|\b(?:treatment|therapy|chemotherapy|chemo|systemic therapy|"
    r"systemic treatment|drug)[- ]na[iï]ve\b|\bna[iï]ve to (?:\w+ ){0,2}(?:treatment|therapy|"
    r"chemotherapy)|\buntreated (?:[\w-]+ ){0,3}(?:cancer|sarcoma|tumou?r|carcinoma|malignancy|nsclc|"
    r"leukemia|lymphoma|myeloma)\b|\bnot (?:have )?(?:been )?(?:previously )?(?:received|treated)",
    _I,
)
# an inclusion line saying the cancer is untreated ("No treatment yet", "No prior therapy",
# "not yet treated"); not one scoped to a setting or a drug ("no prior therapy for metastatic
# disease", "no prior treatment with ...": read by the other rules)
_NO_TREATMENT_RE = re.compile(
    r"^\W*(?:no (?:prior |previous )?(?:anti-?cancer |anti-?tumou?r |systemic |cancer[- ]directed |"
    r"oncologic(?:al)? )?(?:treatments?|therap(?:y|ies))(?: (?:yet|so far|to date))?|"
    r"not (?:yet )?(?:been )?treated(?: yet)?)\W*$",
    _I,
)
# before a procedure whose mention is a prior-treatment rule (procedures.yaml ``prior_rule``)
_PROCEDURE_CUE_RE = re.compile(
    r"\b(?:undergone|underwent|undergo|status post|s/p|history of|completed|post-?operative after)\b",
    _I,
)
# a transplant the patient had ("previously received", "relapse after"), not one planned
# ("ahead of scheduled allo-SCT", "eligible for", "candidate for")
_HAD_PROCEDURE_RE = re.compile(
    r"\b(?:prior|previous(?:ly)?|received|receiving|undergone|underwent|history of|had|"
    r"treated with|after|following|post|status post|s/p|completed)\b",
    _I,
)
_PLANNED_PROCEDURE_RE = re.compile(
    r"\b(?:scheduled|planned|plans?|ahead of|candidates?|eligible|fit for|awaiting|intend\w*|"
    r"prior to|before|upcoming|proceed\w*|bridg\w*|consolidat\w*|willing|able to)\b[^.;]{0,50}$",
    _I,
)
# a parent line about treatment still to come
_PLANNED_THERAPY_RE = re.compile(
    r"\s*(?:\w+\s+){0,2}?(?:planned|scheduled|intended|proposed|study|protocol)\s+(?:[\w-]+\s+){0,3}?"
    r"(?:treatment|therapy|chemotherapy|regimens?|surgery)\b|\s*(?:to|will)\s+receive\b",
    _I,
)
# the cancer itself already treated ("previously treated metastatic melanoma", "heavily
# pretreated sarcoma"), not a lesion ("previously treated brain metastases")
_PRETREATED_RE = re.compile(
    r"\b(?:previously[- ]treated|(?:heavily[- ])?pre-?treated)\s+(?!(?:[\w/-]+\s+){0,5}?"
    r"(?:brain|cns|cerebral|metastas[ie]s|lesions?)\b)(?:[\w/()-]+\s+){0,6}?"
    r"(?:cancers?|carcinomas?|sarcomas?|melanomas?|lymphomas?|leuka?emias?|myelomas?|tumou?rs?|"
    r"malignanc\w*|nsclc|sclc|gist|disease|\w+omas?)\b",
    _I,
)
_PRIOR_WORD_RE = re.compile(r"\b(?:prior|previous\w*|received|had|history|pretreated)\b", _I)
# "naive" with a named drug or class: the patient must not have received it
_NAIVE_WORD_RE = re.compile(r"na[iï]ve\b|\bpreviously untreated\b|\buntreated (?:with|by)\b", _I)
_NOT_NAIVE_RE = re.compile(
    r"\bnot\s+(?:be\s+|been\s+)?(?:[\w-]+\s+){0,2}?(?:[\w-]+-)?na[iï]ve\b", _I
)
_MIN_LINES_RE = re.compile(
    r"(?:>=|>)\s*(?P<n>" + _NUMW + r")\s+(?:[\w-]+\s+){0,4}?(?:lines?|regimens?|therap(?:y|ies)|"
    r"treatments?|courses?|chemotherap\w*)\b"
    r"|(?P<n2>" + _NUMW + r")\s+or\s+more\s+(?:[\w-]+\s+){0,4}?(?:lines?|regimens?|therap(?:y|ies)"
    r"|treatments?)\b"
    r"|(?:(?<![\d.])(?P<r1>\d)\s*(?:-|to)|\bbetween\s+(?P<b1>\d)\s*(?:-|to|and|&|\\&))\s*"
    r"(?P<r2>\d)\s+(?:[\w-]+\s+){0,3}?"
    r"(?:lines?|regimens?|therap(?:y|ies)"
    r"|treatments?)\b"
    r"|(?P<ord>second|third|fourth)[- ]line\b",
    _I,
)
_MAX_LINES_RE = re.compile(
    r"(?:<=)\s*(?P<n>" + _NUMW + r")\s+(?:[\w-]+\s+){0,4}?(?:lines?|regimens?|therap(?:y|ies)|"
    r"treatments?)\b"
    r"|(?P<n2>" + _NUMW + r")\s+or\s+(?:fewer|less)\s+(?:[\w-]+\s+){0,4}?(?:lines?|regimens?|"
    r"therap(?:y|ies)|treatments?)\b"
    r"|(?:lines?|regimens?|therap(?:y|ies)|treatments?)\s+(?:[\w-]+\s+){0,2}?"
    r"(?:(?:does|do|must|should|shall|may|can|will)\s+)?(?:not\s+exceed\s+|<=\s*)(?P<n3>"
    + _NUMW
    + r")\b(?!\s*(?:days?|weeks?|months?|years?|hours?|cycles?|courses?|doses?)\b)",
    _I,
)
# "no more than 2 prior courses of chemotherapy", "up to 6 cycles of": a ceiling on a count
# the lines rule does not read (a course may be a cycle or a regimen): never a requirement
_COUNT_CEILING_RE = re.compile(
    r"(?:<=|<)\s*(?:" + _NUMW + r")\s+(?:[\w-]+\s+){0,3}?(?:courses?|cycles?|doses?)\b", _I
)
_OVER_LINES_RE = re.compile(
    r"(?:>|>=)\s*(?P<n>" + _NUMW + r")\s+(?:[\w-]+\s+){0,4}?(?:lines?|regimens?|chemotherap\w*)\b",
    _I,
)
_PROGRESSION_RE = re.compile(
    r"\bprogress\w*\s+(?:\w+\s+){0,3}?(?:on|after|following|during|despite|while|through|with)\b|"
    r"\brefractory\b|\bfailed\b|\bfailure (?:of|on)\b|\brelapsed\b|\bintoleran\w*|"
    r"\brecurr\w* (?:after|following)\b",
    _I,
)
_SETTING_RE = re.compile(
    r"\b(?:for|in) (?:the )?(?:locally )?(?:advanced|metastatic|recurrent|unresectable)|\bin the (?:advanced|"
    r"metastatic) setting|\bfor (?:this|the current|current) (?:disease|cancer|sarcoma|malignancy)"
    r"|\bfor (?:advanced|metastatic)",
    _I,
)

# --- washout ------------------------------------------------------------------------------
_WASHOUT_RE = re.compile(
    r"\bwithin\s+(?:the\s+)?(?:last\s+|past\s+|previous\s+|preceding\s+)?(?P<n>" + _NUMW + r")"
    r"\s*(?P<unit>days?|weeks?|wks?|months?|years?|half[- ]?lives)\b"
    r"|(?:>=|>|<=|<)\s*(?P<n2>"
    + _NUMW
    + r")\s*(?P<unit2>days?|weeks?|wks?|months?|years?|half[- ]?lives)"
    r"[^.;]{0,70}?\b(?:since|from|after|between|prior|before|elapsed)\b"
    r"|\bfor\s+(?:>=|>)\s*(?P<n5>" + _NUMW + r")\s*(?P<unit5>days?|weeks?|wks?|months?)\b"
    r"|\b(?P<n6>\d+)[- ]?(?P<unit6>days?|weeks?|months?)[- ](?:washout|wash-out)\b"
    r"|\b(?:over|in|during) the (?:(?:past|last|previous|preceding)\s+)?(?P<n4>" + _NUMW + r")\s*"
    r"(?P<unit4>days?|weeks?|wks?|months?|years?)\b"
    r"|(?P<n3>" + _NUMW + r")\s*(?P<unit3>days?|weeks?|wks?|months?|half[- ]?lives)\s+"
    r"(?:or less |or fewer )?(?:prior to|before|of)\s+(?:the\s+)?(?:first|start|initiation|"
    r"study|enrol|registration|randomi|day 1|cycle 1|treatment|dosing)",
    _I,
)
_WASHOUT_WHAT_RE = re.compile(
    r"\bchemo(?:therapy)?\b|\bradio(?:therapy)?\b|\bradiation\b|\bimmunotherap\w*|"
    r"\binvestigational\b|\bsurgery\b|\bsurgical\b|\bmonoclonal antibod\w*|\bantibod\w*|"
    r"\b(?:anti-?cancer|antineoplastic|anti-?tumou?r|systemic|targeted|biologic(?:al)?|hormonal)"
    r"\s+(?:therap\w*|treatments?|agents?)|\bsmall molecule\w*|\bkinase inhibitors?|\btki\b|"
    r"\bvaccines?\b|\bsteroids?\b|\binhibitors?\b|\bimmunosuppress\w*|\bglucocorticoids?\b|"
    r"\b(?:interventional|clinical|investigational) (?:stud\w+|trials?)\b|\btreatment with\b|"
    r"\btherapy with\b|\b(?:stopped|discontinued|tapered)\b|\binducers?\b|\bcorticosteroids?\b|\btransplant\w*|\bstem cell\b|"
    r"\bcar[- ]t\b|\bprior (?:therapy|treatment)\b|\btherap(?:y|ies)\b|\btreatments?\b|"
    r"\bagents?\b|\bdrugs?\b|\bmedications?\b",
    _I,
)
_WASHOUT_ANCHOR_RE = re.compile(
    r"\b(?:first|start of|initiation of|beginning of|the start of)\s+(?:the\s+)?(?:study\s+)?"
    r"(?:treatment|therapy|drug|dose|dosing|medication|intervention)\b(?!\s+with)|\bstudy (?:treatment|"
    r"drug|medication|therapy|intervention|agent)\b|\btreatment (?:start|initiation)\b(?!\s+with)",
    _I,
)
_WASHOUT_NOT_RE = re.compile(
    r"\blaborator\w*|\btest(?:s|ing)?\b|\bscan\w*|\bimaging\b|\bmri\b|\bbiops\w*|\bconsent\b|"
    r"\bassessment|\bmeasured\b|\bobtained\b|\bperformed\b|\bvalues?\b|\becho\w*|\bbaseline\b|"
    r"\bpregnan\w*|\binfection\b|\bmyocardial\b|\bstroke\b|\bvaccinat\w*|\bcovid\b|\babuse\b|"
    r"\bdependence\b|\balcohol\b|\bremission\b|\brelapse\b|\bdiagnos\w*|\bsymptoms?\b|\bdisease\b|"
    r"\bcontracept\w*|\bbirth control\b|\bchanges?\b|\bevents?\b|\binability\b|\bpost-",
    _I,
)


_SENTENCE_RE = re.compile(r"(?<=[.;])\s+(?=[a-z(])|(?<=\.)\s+(?=note\b)", _I)
_MODAL_NEG_RE = re.compile(
    r"\b(?:must|may|should|will|shall|can)\s+not\b|\bcannot\b|\bmustn't\b|\bare not allowed\b", _I
)
_RADIO_RE = re.compile(
    r"\bradiotherap\w*|\bradiation(?: therapy)?\b|\birradiat\w*|\bradiosurgery\b", _I
)
_TOXICITY_RE = re.compile(
    r"\btoxicit\w*|\badverse (?:events?|reactions?|effects?)|\brecovered\b|\bside effects?\b|"
    r"\bimmune-related\b|\b(?:improved|resolved|returned) to (?:grade|baseline|ctcae)",
    _I,
)


# the kinase a tyrosine kinase inhibitor is named for, just before the words
_KINASE_NAMED_RE = re.compile(r"(?:\b[Rr]eceptor|\b[A-Z][A-Z0-9]{1,6}(?:-[A-Z0-9]{1,6})?)[\s-]*$")


# "Stored DNA from initial diagnosis (prior TKI treatment) for breakpoint analysis": a sample
# taken before a treatment, no treatment required
_SAMPLE_LINE_RE = re.compile(
    r"\W*(?:stored|archival|archived|banked|frozen|available)\s+(?:[\w-]+\s+){0,2}?"
    r"(?:dna|rna|tissue|samples?|specimens?|blood|material|tumou?r (?:tissue|samples?|blocks?))\b",
    _I,
)


def _prior_therapy(c: _Ctx, washout_found: bool) -> list[tuple[str, str, dict]]:
    """Prior-therapy criteria, sentence by sentence (a later "X is permitted" sentence must
    not turn its drugs into exclusions)."""
    if washout_found or any(_is_washout_window(c.s, m) for m in _WASHOUT_RE.finditer(c.s)):
        return []  # "prior chemotherapy within 4 weeks" is a washout, not a lifelong exclusion
    if _SAMPLE_LINE_RE.match(c.plain):
        return []
    if (
        not _THERAPY_CUE_RE.search(c.s)
        and not _NAIVE_RE.search(c.s)
        and not (c.section == "inclusion" and _NO_TREATMENT_RE.search(c.s))
        and not _procedure_cue(c, c.s, c.plain)
    ):
        return []
    if any(
        x and _PLANNED_THERAPY_RE.match(x) for x in (c.context, c.plain)
    ) and not _PRIOR_WORD_RE.search(c.s):
        # "Planned neoadjuvant chemotherapy as follows:", then "M-EI regimen for patients
        # <= 25 years": the treatment the study will give, not one the patient has had
        return []
    out: list[tuple[str, str, dict]] = []
    plain_parts = _SENTENCE_RE.split(c.plain)
    for part in plain_parts:
        for item in _prior_therapy_sentence(c, part):
            if item not in out:
                out.append(item)
    return out


_HEAD_LINK_RE = re.compile(r"(?:[- ](?:based|containing|type|class|like))?[\s-]*$", _I)


def _category_is_head_noun(vocab: Any, plain: str, cat: str) -> bool:
    """True when every mention of ``cat`` is the head noun of a named drug or class:
    "anthracycline chemotherapy (eg, doxorubicin)", "platinum-based chemotherapy",
    "PD-1 inhibitor immunotherapy" name that class, not every chemotherapy."""
    rx = dict(_CATEGORY_RES)[cat]
    named = [t for _d, t in vocab.find_drugs(plain)] + [
        t for _c, t in vocab.find_drug_classes(plain)
    ]
    if not named:
        return False
    mentions = list(rx.finditer(plain))
    if not mentions:
        return False
    low = plain.lower()
    spans = [
        (i, i + len(t))
        for t in {t.lower() for t in named}
        for i in (j for j in range(len(low)) if low.startswith(t, j))
    ]
    for m in mentions:
        if any(a <= m.start() < b for a, b in spans):
            continue  # the category word is part of the class name ("anthracycline chemotherapy")
        before = low[: m.start()]
        link = _HEAD_LINK_RE.search(before)
        stem = before[: link.start()] if link else before
        if not any(stem.endswith(t.lower()) for t in named):
            return False
    return True


_DISEASE_CUE_RE = re.compile(r"relapsed|refractory|recurred|progress\w*", _I)


def _prior_rule(vocab: Any, pid: str) -> bool:
    """The procedure is one whose mention states a prior-treatment rule (``prior_rule``)."""
    proc = getattr(vocab, "procedures", {}).get(pid)
    return bool(proc is not None and getattr(proc, "prior_rule", False))


def _procedure_cue(c: _Ctx, s: str, plain: str) -> re.Match | None:
    """A cue ("underwent", "history of", "status post") before a ``prior_rule`` procedure the
    line names ("Must have undergone radical prostatectomy")."""
    if c.vocab is None or not hasattr(c.vocab, "find_procedures"):
        return None
    m = _PROCEDURE_CUE_RE.search(s)
    if m is None:
        return None
    if any(_prior_rule(c.vocab, pid) for pid, _t in c.vocab.find_procedures(plain)):
        return m
    return None


def _prior_therapy_sentence(c: _Ctx, plain: str) -> list[tuple[str, str, dict]]:
    s = _prep(plain)
    cue = _THERAPY_CUE_RE.search(s) or _procedure_cue(c, s, plain)
    naive = _NAIVE_RE.search(s) or (
        _NO_TREATMENT_RE.search(s) if c.section == "inclusion" else None
    )
    if not cue and not naive:
        return []
    if (_SKIP_THERAPY_RE.search(s) or _TOXICITY_RE.search(s)) and not naive:
        return []
    if re.search(
        r"\bqualif\w*|\bcounts? as\b|\bcounted as\b|\bconsidered (?:as )?(?:a )?(?:line|prior)"
        r"|\b(?:to|in) (?:this|the|that|these) lesions?\b|\blesions?,? which\b|\bnot required\b"
        r"|\bneeds? to be treated\b|\bto be treated with\b",
        s,
    ):
        return []  # definitions ("rituximab does not count as a line") and lesion-level history
    if _PERMISSIVE_RE.search(s) and not re.search(r"\bnot\b|\bonly\b", s):
        return []  # "prior pazopanib is allowed": no restriction
    ex = _EXCEPT_RE.search(s)
    cut = ex.start() if ex else len(s)
    drugs: list[str] = []
    classes: list[str] = []
    exceptions: list[str] = []
    if c.vocab is not None:
        low = plain.lower()
        for did, text in c.vocab.find_drugs(plain):
            pos = low.find(text.lower())
            target = exceptions if ex is not None and pos >= cut else drugs
            if did not in drugs and did not in exceptions:
                target.append(did)
        for cid, text in c.vocab.find_drug_classes(plain):
            pos = low.find(text.lower())
            if cid == "tyrosine_kinase_inhibitor" and _KINASE_NAMED_RE.search(
                plain[max(0, pos - 40) : max(0, pos)]
            ):
                # "epidermal growth factor receptor tyrosine kinase inhibitor (EGFR-TKI)": the
                # kinase is named, so this is that kind of inhibitor, not any TKI
                continue
            target = exceptions if ex is not None and pos >= cut else classes
            if cid not in classes and cid not in exceptions:
                target.append(cid)
    procs: list[str] = []
    if c.vocab is not None and hasattr(c.vocab, "find_procedures"):
        # a transplant is a prior treatment like a drug ("previously received allogeneic stem
        # cell transplant are ineligible"); other procedures are read by their own types
        low_plain = plain.lower()
        for pid, text in c.vocab.find_procedures(plain):
            if pid in procs or not (
                c.vocab.procedure_is_a(pid, "stem_cell_transplant") or _prior_rule(c.vocab, pid)
            ):
                continue
            pos = low_plain.find(text.lower())
            before = low_plain[max(0, pos - 70) : max(0, pos)]
            if _HAD_PROCEDURE_RE.search(before) and not _PLANNED_PROCEDURE_RE.search(before):
                procs.append(pid)
    if cue is not None and c.vocab is not None and (drugs or classes):
        # "relapsed APL who have not been previously treated with ATO": the cue that governs
        # the drug is the last one before it, not a disease word at the start of the line
        slow = s.lower()
        names = [t for _d, t in c.vocab.find_drugs(plain)] + [
            t for _c, t in c.vocab.find_drug_classes(plain)
        ]
        first = min((i for t in names if (i := slow.find(t.lower())) >= 0), default=-1)
        if first > cue.end():
            before = [m for m in _THERAPY_CUE_RE.finditer(s) if m.end() <= first]
            if before and _DISEASE_CUE_RE.fullmatch(cue.group(0)):
                cue = before[-1]
    cats = [name for name, rx in _CATEGORY_RES if (m := rx.search(s)) and m.start() < cut]
    if cats and (drugs or classes) and c.vocab is not None:
        cats = [x for x in cats if not _category_is_head_noun(c.vocab, plain, x)]
    radio = bool(
        re.search(
            r"\b(?:prior|previous|received)\s+(?:[\w-]+\s+){0,2}?(?:radiotherap|radiation)", s[:cut]
        )
    ) and not re.search(r"\blesions?\b|\bmeasurable\b|\bfield\b", s)

    min_lines = max_lines = None
    mn = _MIN_LINES_RE.search(s)
    if mn and re.match(
        r"\s*(?:>=|>)?\s*\w+\s+(?:days?|weeks?|months?|years?|hours?|cycles?|courses?|doses?)\b",
        mn.group(0),
    ):
        mn = None  # "at least two courses of anti-PD-1": cycles of one therapy, not lines
    if mn:
        if mn.group("n") or mn.group("n2"):
            min_lines = _num(mn.group("n") or mn.group("n2"))
            if mn.group(0).lstrip().startswith(">") and not mn.group(0).lstrip().startswith(">="):
                min_lines = (min_lines or 0) + 1
        elif mn.group("r1") or mn.group("b1"):
            min_lines, max_lines = int(mn.group("r1") or mn.group("b1")), int(mn.group("r2"))
        elif mn.group("ord"):
            min_lines = {"second": 1, "third": 2, "fourth": 3}[mn.group("ord").lower()]
    pre = _PRETREATED_RE.search(s) if c.section == "inclusion" else None
    if (
        pre
        and min_lines is None
        and not (drugs or classes or naive)
        and not _NEG_RE.search(s[max(0, pre.start() - 25) : pre.start()])
    ):
        # "Previously treated unresectable stage III or IV melanoma", "pretreated NSCLC": the
        # cancer has had at least one treatment
        min_lines = 1
    mx = _MAX_LINES_RE.search(s)
    if mx:
        max_lines = _num(mx.group("n") or mx.group("n2") or mx.group("n3"))
    if c.section == "exclusion" and mn is not None and max_lines is None:
        ov = _OVER_LINES_RE.search(s)
        if ov:  # exclusion "more than 2 prior lines" = at most 2 allowed
            n = _num(ov.group("n")) or 0
            max_lines = n if not ov.group(0).startswith(">=") else n - 1
            min_lines = None

    out: list[tuple[str, str, dict]] = []
    qualified = bool(ex or _SETTING_RE.search(s))
    if naive and not (drugs or classes):
        if c.section == "inclusion" or _MODAL_NEG_RE.search(s) or not re.search(r"\bnot\b", s):
            generic = (
                not cats
                or "systemic" in cats
                or re.search(r"treatment|therapy|untreated", naive.group(0))
            )
            if re.search(r"chemo", naive.group(0)):
                generic = False
            out.append(("prior_therapy_excluded", "exclude",
                        {"drugs": [], "classes": [], "categories": cats or ["systemic"],
                         "any_systemic": bool(generic), "exceptions": exceptions,
                         "qualified": qualified}))  # fmt: skip
        if c.section == "inclusion" and min_lines:
            out.append(("prior_therapy_required", "require",
                        {"drugs": [], "classes": [], "categories": [], "min_lines": min_lines,
                         "progression": bool(_PROGRESSION_RE.search(s))}))  # fmt: skip
        return out
    if not cue:
        return out
    if (
        c.section == "inclusion"
        and re.search(r"\b(?:relapsed|recurrent)\s*(?:or|/|and/or)\s*refractory\b|\br/r\b", s)
        and not (drugs or classes or min_lines or _NEG_RE.search(s[: cue.start()]))
    ):
        return [("prior_therapy_required", "require",
                 {"drugs": [], "classes": [], "categories": [], "min_lines": None, "progression": True})]  # fmt: skip
    if c.section == "exclusion" and _PROGRESSION_RE.search(s) and not _NEG_RE.search(s):
        return out  # "mutations found after progression on prior EGFR-TKI": a context, not an exclusion
    # negation: cues before the therapy cue in its clause; in the exclusion section a modal
    # "must not / may not have received" restates the exclusion and does not flip it
    neg = _neg_count(s, cue.start())
    if re.match(
        r"(?:\s+(?:received|been|had|have|any|treated with))*\s+(?:no|not|never)\b", s[cue.end() :]
    ):
        neg += 1  # "had received no previous systemic therapy"
    if c.section == "exclusion" and (
        _MODAL_NEG_RE.search(s[: cue.end() + 20]) or re.match(r"\s*(?:no|never)\b", s, _I)
    ):
        # "must not have received X" / "No prior X" under exclusions restate the exclusion;
        # read literally ("excluded: no prior X") they would require X of everyone
        neg = 0
    naive_word = _NAIVE_WORD_RE.search(s)
    if naive_word and (drugs or classes):
        # "osimertinib treatment-naive", "naive to ALK inhibitors", "EGFR-TKI naive": naive
        # means not received, whatever other cue stands first ("must not be chemo-naive"
        # turns it back)
        neg = 2 if _NOT_NAIVE_RE.search(s) else 1
        required = (c.section == "inclusion") == (neg % 2 == 0)
    elif _POST_EXCLUDE_RE.match(s[cue.start() :]):
        # "prior chemotherapy is not allowed" excludes it whichever section it stands in
        required = neg % 2 == 1
    else:
        if c.context_negates:
            neg += 1
        required = (c.section == "inclusion") == (neg % 2 == 0)
    if max_lines is not None:
        out.append(("max_prior_lines", "exclude", {"max_lines": max_lines}))
    if required:
        generic = {"chemotherapy", "immunotherapy", "targeted_therapy"}
        ceiling = max_lines is not None or _COUNT_CEILING_RE.search(s)
        if ceiling and min_lines is None and not (drugs or set(classes) - generic):
            # "no more than 2 prior lines", "the number of previous chemotherapy regimens
            # does not exceed 2": a ceiling, no requirement to have had any
            return out
        if not (drugs or classes or cats or min_lines or procs):
            if (
                c.section == "inclusion"
                and not re.search(r"\bif\b", s)
                and re.search(
                    r"\b(?:failed|failure (?:of|on|to)|refractory to|progress\w* (?:on|after|following|despite|"
                    r"during))\s+(?:[\w-]+\s+){0,4}?(?:therap\w*|treatments?|regimens?|chemotherapy|lines?)\b",
                    s,
                )
            ):
                out.append(("prior_therapy_required", "require",
                            {"drugs": [], "classes": [], "categories": [], "min_lines": None,
                             "progression": True}))  # fmt: skip
            return out
        out.append(("prior_therapy_required", "require",
                    {"drugs": drugs, "classes": classes, "categories": cats, "min_lines": min_lines,
                     "progression": bool(_PROGRESSION_RE.search(s)),
                     **({"procedures": procs} if procs else {})}))  # fmt: skip
        return out
    if not (drugs or classes or cats or radio or procs):
        return out
    specific = [
        x for x in classes if x not in ("chemotherapy", "immunotherapy", "targeted_therapy")
    ]
    if (min_lines is not None or max_lines is not None) and not (drugs or specific or procs):
        return out  # "more than one prior chemotherapy": a line count, not "no chemotherapy"
    if radio and "radiotherapy" not in cats:
        # "No prior radiotherapy to chest, immunotherapy or biologic therapy": one item of
        # the list, whatever else it names
        cats = [*cats, "radiotherapy"]
    if (drugs or classes) and "systemic" in cats:
        # "systemic therapy with an anthracycline", "systemic treatment (chemotherapy or
        # trabectedin)": the named drugs say which systemic therapy; "systemic" is no category
        cats = [x for x in cats if x != "systemic"]
    any_sys = "systemic" in cats and not (drugs or classes)
    out.append(("prior_therapy_excluded", "exclude",
                {"drugs": drugs, "classes": classes, "categories": cats, "any_systemic": any_sys,
                 "exceptions": exceptions, "qualified": qualified,
                 **({"procedures": procs} if procs else {})}))  # fmt: skip
    return out


def _is_washout_window(s: str, m: re.Match) -> bool:
    """A time window before the study ("within 4 weeks prior to the first dose"), not one
    measured from another event ("ASCT within one year of diagnosis")."""
    return not re.match(
        r"[^.;]{0,30}?\b(?:of|from|after) (?:the )?(?:initial |first |original )?"
        r"(?:diagnosis|transplant\w*|surgery|resection|induction)\b",
        s[m.end() :],
    )


def _washout(c: _Ctx) -> list[tuple[str, str, dict]]:
    """A time window since a prior therapy / surgery, read within its own sentence."""
    s = c.s
    for m in _WASHOUT_RE.finditer(s):
        start = max(s.rfind(";", 0, m.start()), s.rfind(". ", 0, m.start()), -1) + 1
        ends = [i for i in (s.find(";", m.end()), s.find(". ", m.end())) if i >= 0]
        sent = s[start : min(ends) if ends else len(s)]
        stripped = _WASHOUT_ANCHOR_RE.sub(" ", sent)
        what = [w.group(0) for w in _WASHOUT_WHAT_RE.finditer(stripped)]
        if not what:
            continue
        if _WASHOUT_NOT_RE.search(stripped) and not re.search(
            r"chemo|radio|radiation|immunotherap|investigational|\bsurgery\b|\bsurgical\b|antibod|inhibitor|"
            r"anti-?cancer|vaccine|\breceived\b|treatment with|\buse of\b|steroid|glucocorticoid",
            stripped,
        ):
            continue
        n = _num(
            m.group("n")
            or m.group("n2")
            or m.group("n3")
            or m.group("n4")
            or m.group("n5")
            or m.group("n6")
        )
        if n is None:
            continue
        if not _is_washout_window(s, m):
            continue  # "ASCT within one year of diagnosis": a definition, not a time since therapy
        unit = (
            m.group("unit")
            or m.group("unit2")
            or m.group("unit3")
            or m.group("unit4")
            or m.group("unit5")
            or m.group("unit6")
            or ""
        ).lower()
        vals: dict[str, Any] = {"days": None, "half_lives": None, "what": sorted(set(what))}
        if unit.startswith("half"):
            vals["half_lives"] = n
        elif unit.startswith("w"):
            vals["days"] = n * 7
        elif unit.startswith("month"):
            vals["days"] = n * 30
        elif unit.startswith("year"):
            vals["days"] = n * 365
        else:
            vals["days"] = n
        return [("washout", "exclude", vals)]
    return []


def _class_members(vocab: Any, cls: str) -> set[str]:
    try:
        return set(vocab.drugs_in_class(cls))
    except Exception:  # noqa: BLE001 - an unknown class has no members
        return set()


def _class_name(vocab: Any, cls: str) -> str:
    try:
        return vocab.drug_classes[cls].name
    except Exception:  # noqa: BLE001
        return cls.replace("_", " ")


def _received(p: Any, c: Criterion, vocab: Any) -> list[str]:
    """Reasons like 'pazopanib (VEGFR TKI)' for each prior drug the criterion names."""
    drugs = set(p.prior_drugs)
    pclasses = {t.name: set(t.classes) for t in (p.prior_therapies or []) if t.kind == "drug"}
    hits: list[str] = []
    for d in c.values.get("drugs") or []:
        if d in drugs:
            hits.append(d)
    for cls in c.values.get("classes") or []:
        members = _class_members(vocab, cls)
        for d in sorted(drugs):
            if d in members or cls in pclasses.get(d, set()):
                hits.append(f"{d} ({_class_name(vocab, cls)})")
    for cat in c.values.get("categories") or []:
        for d in sorted(drugs):
            cl = pclasses.get(d, set())
            if cat == "chemotherapy" and cl & CHEMO_CLASSES:
                hits.append(f"{d} (chemotherapy)")
            elif cat == "immunotherapy" and any(
                "checkpoint" in x
                or x.endswith(("pd1_inhibitor", "pdl1_inhibitor", "ctla4_inhibitor"))
                for x in cl
            ):
                hits.append(f"{d} (immunotherapy)")
            elif cat in ("systemic",):
                hits.append(f"{d} (systemic therapy)")
    if c.values.get("any_systemic"):
        hits.extend(f"{d} (systemic therapy)" for d in sorted(drugs))
    done = [t.name for t in (p.prior_therapies or []) if t.kind == "procedure" and t.name]
    if done and vocab is not None and hasattr(vocab, "procedure_is_a"):
        for proc in c.values.get("procedures") or []:
            hits.extend(t.replace("_", " ") for t in done if vocab.procedure_is_a(t, proc))
        if "radiotherapy" in (c.values.get("categories") or []):
            hits.extend(
                f"{t.replace('_', ' ')} (radiotherapy)"
                for t in done
                if vocab.procedure_is_a(t, "radiation_therapy")
            )
    seen: list[str] = []
    drugs_seen: set[str] = set()
    for h in hits:
        d = h.split(" (")[0]
        if d not in drugs_seen:
            drugs_seen.add(d)
            seen.append(h)
    return seen


def _therapy_desc(c: Criterion, vocab: Any) -> str:
    v = c.values
    parts = list(v.get("drugs") or [])
    parts += [_class_name(vocab, x) for x in v.get("classes") or []]
    parts += [x.replace("_", " ") for x in v.get("categories") or []]
    parts += [x.replace("_", " ") for x in v.get("procedures") or []]
    if v.get("any_systemic") and "systemic" not in (v.get("categories") or []):
        parts.append("systemic therapy")
    return " / ".join(parts) or "prior therapy"


def _ev_prior_required(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    verdict, reason = _ev_prior_required_known(p, c, vocab)
    unknown = sorted({t.text for t in p.prior_therapies or [] if t.kind == "unrecognised"})
    if verdict == NOT_MET and unknown:
        # a therapy the vocabulary does not know (bortezomib, "VRd") may be the required one
        return UNKNOWN, f"{reason}; also recorded, not recognised: {', '.join(unknown)}: verify"
    return verdict, reason


def _ev_prior_required_known(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    desc = _therapy_desc(c, vocab)
    if p.prior_therapies is None:
        return UNKNOWN, f"prior therapies not recorded: verify (trial requires prior {desc})"
    verdict, reason = _ev_prior_required_strict(p, c, vocab)
    if verdict == MET and (hits := _received(p, c, vocab)):
        form = _formulation_only(p, c, vocab, hits)
        if form:
            return (
                UNKNOWN,
                f"had {', '.join(hits)}; trial requires the {form}, and the record does not "
                "say which form: verify",
            )
    if verdict == NOT_MET and _MAY_ONLY_PERMIT_RE.search(c.text):
        return UNKNOWN, f"{reason}; the line may only permit it: verify"
    if verdict == NOT_MET and _SUBGROUP_RE.search(c.text):
        return UNKNOWN, f"{reason}; the line applies to a sub-group only: verify"
    return verdict, reason


def settled_untreated_required(p: Any, c: Criterion, vocab: Any) -> str | None:
    """Why a NOT_MET on a required prior therapy holds for a patient with no prior therapy at
    all (``prior_therapies: []``) whatever the line's unread words say, or None: none of them
    offers an untreated patient a way in (``text.untreated_way_in``: unfit, refused, naive, a
    permission or a condition), so every branch of the line needs a therapy the patient has
    not had."""
    if c.polarity != "require" or p.prior_therapies != []:
        return None
    if untreated_way_in(c.text) or untreated_way_in(c.context):
        return None
    return "no therapy of any kind is recorded, and the line offers no way in without one"


# "... EGFR-TKI treatment in dose-extension cases": a requirement for one part of the trial
_SUBGROUP_RE = re.compile(
    r"\b(?:in|for) (?:the )?(?:[\w-]+ ){0,2}(?:cases|cohorts?|arms?|parts?|expansion)\b"
    # "Patients previously treated with docetaxel should have received <= 2 prior lines": the
    # drug names who the rule is for, not what everyone needs
    # "Patients of childbearing age will by definition have undergone hysterectomy ...": a
    # rule for women who could bear children, not for everyone
    r"|^\W*(?:patients|participants|subjects|women|females)\s+of\s+child-?bearing\s+(?:age|potential)\b"
    # "Premenopausal or perimenopausal patients must undergo ... ovarian function suppression"
    r"|^\W*(?:(?:pre|peri|post)-?menopausal\s+(?:or|and|and/or)\s+)?(?:pre|peri|post)-?menopausal\s+"
    r"(?:women|patients|participants|subjects|females)\b"
    r"|^\W*(?:patients|participants|subjects|those)\s+(?:who\s+(?:were|have been|had been)\s+)?"
    r"(?:previously|prior|already)\s+(?:treated|exposed)\s+(?:with|to)\b[^.;]{1,80}?"
    r"\b(?:should|must|need|needs|are required|is required|will need|have to)\b",
    _I,
)


def _ev_prior_required_strict(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    desc = _therapy_desc(c, vocab)
    v = c.values
    named = bool(v.get("drugs") or v.get("classes") or v.get("categories") or v.get("procedures"))
    hits = _received(p, c, vocab) if named else []
    if named and not hits and (broad := _kind_not_recorded(p, c, vocab)):
        return (
            UNKNOWN,
            f"had {', '.join(x.replace('_', ' ') for x in broad)} (kind not recorded); trial "
            f"requires prior {desc}: verify",
        )
    n_drugs = len(p.prior_drugs)
    if named and not hits:
        if v.get("categories") and not (v.get("drugs") or v.get("classes")) and n_drugs:
            return (
                UNKNOWN,
                f"had {', '.join(sorted(p.prior_drugs))}; trial requires prior {desc}: verify",
            )
        return NOT_MET, f"no prior {desc} recorded; trial requires it"
    if v.get("min_lines"):
        if (
            n_drugs == 0
            and not named
            and p.prior_therapies
            and not _SYSTEMIC_WORD_RE.search(c.text)
        ):
            # "Progression on at least one prior standard therapy": surgery or radiotherapy may count
            done = ", ".join(sorted({t.name for t in p.prior_therapies if t.name}))
            return (
                UNKNOWN,
                f"had {done} (no drug recorded); trial requires ≥{v['min_lines']} prior "
                "therapy: verify whether it counts",
            )
        if n_drugs == 0:
            return (
                NOT_MET,
                f"no prior systemic therapy recorded; trial requires ≥{v['min_lines']} prior line(s)",
            )
        if v["min_lines"] > 1 or not named and v.get("min_lines", 0) > n_drugs:
            return (
                UNKNOWN,
                f"{n_drugs} prior drug(s) recorded; trial requires ≥{v['min_lines']} prior lines: verify lines",
            )
    got = ", ".join(hits) if hits else ", ".join(sorted(p.prior_drugs)) or "prior therapy"
    if v.get("progression") and p.prior_therapies == [] and not named:
        if untreated_way_in(c.text):
            # "Recurrent or progressive disease OR refractory to standard therapy"
            return (
                UNKNOWN,
                "no prior therapy recorded; the line may admit untreated progression: verify",
            )
        return NOT_MET, "no prior therapy recorded; trial requires progression on prior therapy"
    if v.get("progression"):
        return UNKNOWN, f"had {got}; progression on it is not recorded: verify"
    if not named and not v.get("min_lines"):
        return UNKNOWN, "prior therapy requirement: verify"
    return MET, f"had {got}; trial requires prior {desc}"


_SYSTEMIC_WORD_RE = re.compile(
    r"\b(?:systemic|chemo\w*|drugs?|(?<!-)lines?|(?<!treatment )regimens?|agents?|cytotoxic|"
    r"immunotherap\w*|targeted)\b",
    _I,
)


# Classes too broad to decide on when the line narrows them ("HER2-targeted antibody or tyrosine
# kinase inhibitor", "platinum chemotherapy", "EpCAM-targeted anti-cancer therapies").
_GENERIC_CLASSES = frozenset(
    {"tyrosine_kinase_inhibitor", "targeted_therapy", "chemotherapy", "cytotoxic", "immunotherapy"}
)
_GENERIC_THERAPY_RE = re.compile(
    r"\b(?:chemo\w*|cytotoxic|tkis?|tyrosine kinase inhibitors?|(?:anti-?cancer|anti-?tumou?r|"
    r"anti-?neoplastic|systemic|cancer|targeted)\s+(?:therap\w*|treatments?|agents?|drugs?))",
    _I,
)
_THERAPY_QUALIFIER_RE = re.compile(
    r"(?:\b[\w-]+[- ](?:targeted|directed|targeting|selective|specific)|\b(?!cyto)\w+toxic|\bhigh[- ]dose|\bneo-?adjuvant|\badjuvant|"
    r"\bplatinum(?:[- ]based)?|\bintravesical|\bintrathecal|\bintra-?arterial|\bintraperitoneal|"
    r"\blymphodepleting|\binduction|\bconsolidation|\bmaintenance|\bconcurrent|\bperioperative|"
    r"\bregional|\btopical)\s+(?:\([^)]{0,20}\)\s+)?(?:[\w-]+\s+(?:or|and|and/or)\s+)?"
    r"(?:[\w-]+\s+){0,1}$",
    _I,
)


def _generic_terms_qualified(text: str) -> bool:
    """True when every generic therapy word of the line ("chemotherapy", "anti-cancer
    therapies", "tyrosine kinase inhibitor") is narrowed by a setting or target just before it
    ("neoadjuvant chemotherapy", "EpCAM-targeted anti-cancer therapies")."""
    found = list(_GENERIC_THERAPY_RE.finditer(text))
    found = [m for m in found if not text[: m.start()].rstrip().endswith("(")]  # "(TKI)"
    return bool(found) and all(
        _THERAPY_QUALIFIER_RE.search(text[max(0, m.start() - 60) : m.start()]) for m in found
    )


def _kind_not_recorded(p: Any, c: Criterion, vocab: Any) -> list[str]:
    """Procedures recorded more broadly than the criterion names them ("stem cell transplant"
    for a rule on allogeneic transplant): the kind decides, and it is not recorded."""
    procs = c.values.get("procedures") or []
    if not procs or vocab is None or not hasattr(vocab, "procedure_is_a"):
        return []
    return [
        t.name
        for t in p.prior_therapies or []
        if t.kind == "procedure"
        and t.name
        and any(x != t.name and vocab.procedure_is_a(x, t.name) for x in procs)
    ]


# A formulation named as such ("liposomal doxorubicin", "nab-paclitaxel", "Doxil"): the
# vocabulary reads it as the active drug (a patient who had Doxil had doxorubicin), but a
# criterion naming only that form says nothing of the plain drug
_FORMULATION_RE = re.compile(
    r"\b(?:liposom\w*|pegylated|peg-?liposom\w*|nanoliposom\w*|nab|nanoparticle|albumin[- ]bound|"
    r"protein[- ]bound|doxil|caelyx|myocet|lipodox|abraxane|onivyde|fyarro|vyxeos|marqibo)\b",
    re.IGNORECASE,
)


def _formulation_only(p: Any, c: Criterion, vocab: Any, hits: list[str]) -> str | None:
    """When every hit is a drug the criterion names only in one formulation ("Prior
    liposomal doxorubicin") and the patient's record does not say that form: the form
    asked about and the drugs, for an UNKNOWN; else None."""
    if vocab is None or not _FORMULATION_RE.search(c.text) or not hasattr(vocab, "find_drugs"):
        return None
    named: dict[str, list[str]] = {}
    for did, mention in vocab.find_drugs(c.text):
        named.setdefault(did, []).append(mention)
    forms = {d for d, ms in named.items() if all(_FORMULATION_RE.search(m) for m in ms)}
    if not forms or any(h.split(" (")[0] not in forms for h in hits):
        return None  # a plain mention of another drug decides
    v = c.values
    broad = Criterion(c.section, c.text, c.type, c.polarity, {**v, "drugs": [], "procedures": []})
    if (v.get("classes") or v.get("categories") or v.get("any_systemic")) and _received(
        p, broad, vocab
    ):
        return None  # a class or category the patient's drug is in decides ("anthracyclines")
    said = [
        t.text
        for t in (p.prior_therapies or [])
        if t.name in forms and _FORMULATION_RE.search(t.text)
    ]
    if said:
        return None  # the record names the formulation
    words = sorted({m.group(0).lower() for m in _FORMULATION_RE.finditer(c.text)})
    return f"{'/'.join(words)} form of {', '.join(sorted(forms))}"


def _ev_prior_excluded(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    desc = _therapy_desc(c, vocab)
    if p.prior_therapies is None:
        return UNKNOWN, f"prior therapies not recorded: verify (trial excludes prior {desc})"
    hits = _received(p, c, vocab)
    if hits and (form := _formulation_only(p, c, vocab, hits)):
        return (
            UNKNOWN,
            f"had {', '.join(hits)}; trial excludes the {form} only, and the record does not "
            "say which form: verify",
        )
    if not hits and (broad := _kind_not_recorded(p, c, vocab)):
        return (
            UNKNOWN,
            f"had {', '.join(x.replace('_', ' ') for x in broad)} (kind not recorded); trial "
            f"excludes prior {desc}: verify",
        )
    if hits and _generic_terms_qualified(c.text):
        v = c.values
        strong = _received(
            p,
            Criterion(
                c.section,
                c.text,
                c.type,
                c.polarity,
                {
                    "drugs": v.get("drugs") or [],
                    "classes": [x for x in v.get("classes") or [] if x not in _GENERIC_CLASSES],
                },
            ),
            vocab,
        )
        if not strong:
            return (
                UNKNOWN,
                f"had {', '.join(hits)}; the line excludes a specific kind or setting of "
                "therapy (targeted / neoadjuvant / high-dose / platinum ...): verify",
            )
    if not hits:
        written = _written_as_class(p, c, vocab)
        if written is not None:
            return written
        cats = set(c.values.get("categories") or [])
        if (
            cats - {"systemic"}
            and p.prior_drugs
            and not c.values.get("drugs")
            and not c.values.get("classes")
        ):
            return (
                UNKNOWN,
                f"had {', '.join(sorted(p.prior_drugs))}; trial excludes prior {desc}: verify",
            )
        return MET, f"no prior {desc} recorded; trial excludes it"
    if c.values.get("qualified") or c.values.get("exceptions"):
        return (
            UNKNOWN,
            f"had {', '.join(hits)}; trial excludes prior {desc} with exceptions/setting: verify",
        )
    return NOT_MET, f"had {', '.join(hits)}; trial excludes prior {desc}"


# criterion categories that are also drug classes of the vocabulary
_CATEGORY_CLASSES = frozenset({"chemotherapy", "immunotherapy", "targeted_therapy"})


def _written_as_class(p: Any, c: Criterion, vocab: Any) -> tuple[str, str] | None:
    """A prior therapy recorded as a kind, not a drug ("chemotherapy", "CAR T-cell therapy"):
    it meets an exclusion of that kind (or of a broader one); for a narrower one ("prior
    anthracycline" against "chemotherapy") or a named drug, which one it was decides. None when
    no recorded therapy is written as a class."""
    if vocab is None or not hasattr(vocab, "find_drug_classes"):
        return None
    v = c.values
    wanted = set(v.get("classes") or []) | (set(v.get("categories") or []) & _CATEGORY_CLASSES)
    narrower = False
    for t in p.prior_therapies or []:
        if t.kind != "unrecognised" or not t.text:
            continue
        for cid, _text in vocab.find_drug_classes(t.text):
            ancestors = set(vocab.class_ancestors(cid))
            if ancestors & wanted or v.get("any_systemic"):
                if v.get("qualified") or v.get("exceptions"):
                    return (
                        UNKNOWN,
                        f"recorded {t.text!r}; trial excludes prior {_therapy_desc(c, vocab)} "
                        "with exceptions/setting: verify",
                    )
                return (
                    NOT_MET,
                    f"recorded {t.text!r} ({_class_name(vocab, cid)}); trial excludes prior "
                    f"{_therapy_desc(c, vocab)}",
                )
            drug_classes = {
                a
                for d in v.get("drugs") or []
                for k in getattr(getattr(vocab, "drugs", {}).get(d), "classes", ())
                for a in vocab.class_ancestors(k)
            }
            if cid in drug_classes or any(cid in vocab.class_ancestors(w) for w in wanted):
                narrower = True
    if narrower:
        return (
            UNKNOWN,
            f"recorded a kind of therapy, not the drug; trial excludes prior "
            f"{_therapy_desc(c, vocab)}: verify which one it was",
        )
    return None


def _ev_max_lines(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    mx = c.values.get("max_lines")
    if p.prior_therapies is None:
        return UNKNOWN, f"prior therapies not recorded: verify (trial allows ≤{mx} prior lines)"
    n = len(p.prior_drugs)
    if n <= (mx or 0):
        return MET, f"{n} prior drug(s) recorded, so at most {n} line(s); trial allows ≤{mx}"
    return (
        UNKNOWN,
        f"{n} prior drugs recorded; trial allows ≤{mx} prior lines: verify number of lines",
    )


def _ev_washout(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    v = c.values
    span = f"{v['days']} days" if v.get("days") is not None else f"{v.get('half_lives')} half-lives"
    what = ", ".join(v.get("what") or []) or "prior therapy"
    return UNKNOWN, f"washout {span} after {what}: last-dose dates not recorded, verify"


# --- a named item of an exclusion list --------------------------------------------------
def _therapy_spans(vocab: Any, text: str) -> list[tuple[int, int, str]]:
    """(start, end, id) of every drug, drug class and procedure the line names."""
    pairs: list[tuple[str, str]] = []
    for finder in ("find_drugs", "find_drug_classes", "find_procedures"):
        fn = getattr(vocab, finder, None)
        if fn is not None:
            pairs += fn(text)
    return entity_spans(pairs, text)


def settled_listed_item(p: Any, c: Criterion, vocab: Any) -> str | None:
    """Why a NOT_MET on an excluded prior therapy holds whatever the line's unread words say
    ("No prior radiotherapy to chest, immunotherapy or biologic therapy": pembrolizumab is
    excluded by "immunotherapy", named on its own), or None: ``listitem.settled_by_item`` on
    the drugs and classes of the line the patient had."""
    if c.polarity != "exclude" or not c.unexplained or vocab is None or not p.prior_therapies:
        return None
    drugs = set(p.prior_drugs)
    hit_ids = {d for d in c.values.get("drugs") or [] if d in drugs}
    pclasses = {cl for t in p.prior_therapies if t.kind == "drug" for cl in t.classes}
    for cls in c.values.get("classes") or []:
        if drugs & _class_members(vocab, cls) or cls in pclasses:
            hit_ids.add(cls)
    wanted = set(c.values.get("classes") or [])
    for t in p.prior_therapies:
        if t.kind == "unrecognised" and t.text and hasattr(vocab, "find_drug_classes"):
            # recorded as the kind ("CAR T-cell therapy"): the classes of the line it is
            for cid, _m in vocab.find_drug_classes(t.text):
                hit_ids |= {cid, *vocab.class_ancestors(cid)} & wanted
    if not hit_ids:
        return None
    return settled_by_item(c, hit_ids, _therapy_spans(vocab, c.text))
