"""Typed eligibility criteria and per-patient verdicts.

``parse_trial(record)`` turns one stored record into a ``ParsedTrial``: the ``Trial``
(structured fields) plus a list of ``Criterion`` read from the structured age/sex gates and
from the free-text criteria (split by ``matcher.criteria_text``). ``evaluate(patient,
parsed)`` checks a ``Patient`` against each criterion and returns one ``Verdict`` each
(``MET`` / ``NOT_MET`` / ``UNKNOWN`` with a one-line reason). Both are pure: no network,
no database. Parsing is cached by (NCT id, last update), so a trial is parsed once per
record version, never per patient.

Criterion types (``Criterion.type``) and their ``values``:

- ``performance_status``: ``{scale: "ecog"|"karnofsky"|"lansky", min, max}`` (WHO, Zubrod
  and "PS" are ECOG-scale). ``> 60`` on a 10-step scale means ``min 70``.
- ``age``: ``{min_years, max_years, source: "structured"|"text"}`` (bounds inclusive;
  ``min_exclusive``/``max_exclusive`` mark ``>`` / ``<``).
- ``sex``: ``{sex: "FEMALE"|"MALE"}`` (structured field, emitted when not ``ALL``).
- ``histology``: ``{diagnoses: [vocabulary diagnosis ids]}``.
- ``disease_extent``: ``{extent: [...]}`` from metastatic, unresectable, locally_advanced,
  advanced (alternatives: any one satisfies).
- ``measurable_disease``: ``{criteria: "RECIST 1.1"|...|None, evaluable_allowed: bool}``.
- ``prior_therapy_required``: ``{drugs, classes, categories, min_lines, progression}``.
- ``prior_therapy_excluded``: ``{drugs, classes, categories, any_systemic, exceptions,
  qualified}``; a class matches every drug of the class.
- ``max_prior_lines``: ``{max_lines}``.
- ``brain_metastases``: ``{allowed_if_treated_stable: bool}``.
- ``pregnancy``: ``{pregnant, breastfeeding, test_required}``.
- ``contraception``: ``{}`` (always UNKNOWN: agreement is confirmed at consent).
- ``organ_function``: ``{lab, op, value, unit, uln_multiple, std_value, std_unit}``; ``lab``
  is anc, platelets, hemoglobin, creatinine, creatinine_clearance, bilirubin,
  direct_bilirubin, ast or alt. ``std_value`` is in the patient unit (``LAB_UNITS``).
- ``washout``: ``{days, half_lives, what}`` (always UNKNOWN: last-dose dates are not in
  the patient profile).
- ``unparsed``: ``{}``: a line nothing typed, listed verbatim "to review".

Polarity rules (``require`` / ``exclude``):

1. The section gives the base: inclusion -> ``require``, exclusion -> ``exclude``.
2. A negation cue *before* the matched phrase in the same clause flips it (``no``, ``not``,
   ``never``, ``without``, ``absence of``, ``free of``, ``lack of``, ``non-``, ``none of``);
   an even number of cues cancels (double negative). Comparators such as "no more than"
   are not negations. Examples:

   - inclusion "No known brain metastases" -> brain_metastases, ``exclude``
   - exclusion "Patients without measurable disease" -> measurable_disease, ``require``
   - exclusion "Non-measurable disease only" -> measurable_disease, ``require``
   - inclusion "Not pregnant or nursing" -> pregnancy, ``exclude``
   - inclusion "stage I-III breast cancer (non-metastatic)" -> disease_extent ``exclude``
   - exclusion "Patients who have not received prior anthracycline" ->
     prior_therapy_required (``require``)

3. A phrase after the mention saying it is not allowed ("... are excluded", "... are not
   eligible") flips as well; a parent line or sub-heading that excludes its children
   ("The following tumor types are not allowed:", "None of the following:") flips the
   children.
4. Types that carry their direction in their name keep a fixed polarity:
   ``prior_therapy_required`` is ``require``; ``prior_therapy_excluded``,
   ``max_prior_lines`` and ``washout`` are ``exclude`` (recent or excess treatment
   excluded). Brain metastases "allowed if treated and stable" is ``exclude`` with
   ``allowed_if_treated_stable: true``.
5. Performance status, age and lab thresholds keep the section polarity: an exclusion line
   "ECOG >= 2" is ``exclude`` with ``min 2, max 5``.
6. In the exclusion section a modal negative restates the exclusion and does not flip it:
   exclusion "Patients must not have received prior treatment with any VEGF receptor tyrosine
   kinase inhibitor" -> prior_therapy_excluded (classes vegfr_tki).
7. A time window makes a washout, not a lifelong exclusion: exclusion "chemotherapy within 2
   weeks prior to day 1" -> washout (14 days) only.

Cohort lines ("For cohort A: ...", "Sub-study B: ...") and parent lines of a sub-list are
``conditional``: their ``NOT_MET`` is reported as ``UNKNOWN`` ("applies to a sub-group only").

Alternatives: criteria under a parent such as "must have one of the following:" and two
criteria of the same kind joined by "or" on one line ("creatinine <= 1.5 mg/dL or CrCl >=
60 mL/min") share a ``group``; a member's ``NOT_MET`` becomes ``UNKNOWN`` unless every
member of the group is ``NOT_MET``.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from matcher.criteria_text import normalize, split_criteria
from matcher.trial import Trial

TYPES = (
    "performance_status",
    "age",
    "sex",
    "histology",
    "disease_extent",
    "measurable_disease",
    "prior_therapy_required",
    "prior_therapy_excluded",
    "max_prior_lines",
    "brain_metastases",
    "pregnancy",
    "contraception",
    "organ_function",
    "washout",
    "unparsed",
)
MET, NOT_MET, UNKNOWN = "MET", "NOT_MET", "UNKNOWN"

# Units the patient profile holds labs in (see matcher.patient.LAB_UNITS).
STD_UNITS = {
    "anc": "cells/uL",
    "platelets": "cells/uL",
    "hemoglobin": "g/dL",
    "creatinine": "mg/dL",
    "bilirubin": "mg/dL",
    "direct_bilirubin": "mg/dL",
    "ast": "U/L",
    "alt": "U/L",
    "creatinine_clearance": "mL/min",
}
LAB_NAMES = {
    "anc": "ANC",
    "platelets": "platelets",
    "hemoglobin": "hemoglobin",
    "creatinine": "creatinine",
    "creatinine_clearance": "creatinine clearance",
    "bilirubin": "bilirubin",
    "direct_bilirubin": "direct bilirubin",
    "ast": "AST",
    "alt": "ALT",
}
# Drug classes counted as cytotoxic chemotherapy (for "no prior chemotherapy").
CHEMO_CLASSES = frozenset(
    {
        "anthracycline",
        "alkylating_agent",
        "taxane",
        "antimetabolite",
        "platinum",
        "vinca_alkaloid",
        "topoisomerase_inhibitor",
        "chemotherapy",
        "cytotoxic",
        "trabectedin_class",
    }
)


@dataclass
class Criterion:
    """One checkable criterion. ``text`` is the source line as written (bullet stripped)."""

    section: str  # "inclusion" | "exclusion"
    text: str
    type: str
    polarity: str  # "require" | "exclude"
    values: dict = field(default_factory=dict)
    context: str | None = None  # parent line / sub-heading
    group: str | None = None  # alternatives: any member satisfies
    source: str = "text"  # "text" | "structured"
    conditional: bool = False  # applies to a sub-group only (cohort line, parent of a sub-list)

    def to_dict(self) -> dict:
        """The fixed JSON shape: section, text, type, polarity, values."""
        return {
            "section": self.section,
            "text": self.text,
            "type": self.type,
            "polarity": self.polarity,
            "values": self.values,
        }


@dataclass
class ParsedTrial:
    """A trial and its criteria, parsed once per record version."""

    trial: Trial
    criteria: list[Criterion]
    n_lines: int = 0  # criteria lines in the text (headings not counted)
    n_typed_lines: int = 0  # of which at least one typed criterion came out

    @property
    def nct_id(self) -> str:
        return self.trial.nct_id

    def to_dict(self) -> dict:
        return {"nct_id": self.trial.nct_id, "criteria": [c.to_dict() for c in self.criteria]}


@dataclass
class Verdict:
    """The patient against one criterion."""

    criterion: Criterion
    verdict: str  # "MET" | "NOT_MET" | "UNKNOWN"
    reason: str

    def to_dict(self) -> dict:
        d = self.criterion.to_dict()
        d["verdict"] = self.verdict
        d["reason"] = self.reason
        return d


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
_NUMW = r"(?:\d+|one|two|three|four|five|six|seven|eight|nine|ten|twelve)"

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
    (re.compile(r"\b(?:at most|a maximum of|maximum of|up to and including|up to)\b", _I), "<="),
    (re.compile(r"\b(?:greater|more|higher|older) than\b|\babove\b|\bexceeding\b", _I), ">"),
    (re.compile(r"\b(?:less|fewer|lower|younger) than\b|\bbelow\b|\bunder\b", _I), "<"),
]

_NEG_RE = re.compile(
    r"\b(?:no|not|never|without|absence of|absent|free of|lack of|lacking|none of|neither|nor"
    r"|cannot|can't|unable to have)\b|\bn't\b",
    _I,
)
_POST_EXCLUDE_RE = re.compile(
    r"^[^.;]{0,60}?\b(?:are|is|will be|be)\s+(?:excluded|ineligible|not eligible|not allowed|"
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
    r"of the following|one of)\b",
    _I,
)
_CLAUSE_BREAK_RE = re.compile(
    r"[.;:]\s|\(|\)|\bbut\b|\bunless\b|\bexcept\b|\bhowever\b|,\s*(?=provided|if\b|as long as|who\b|"
    r"which\b|that\b|and\b)|\bprovided\b",
    _I,
)
_EXCEPT_RE = re.compile(
    r"\b(?:except(?: for)?|excluding|other than|with the exception of|apart from|unless|"
    r"not including|besides)\b",
    _I,
)

# --- performance status -----------------------------------------------------------------
_PS_RE = re.compile(
    r"\b(?P<ecog>ecog|eastern cooperative oncology group|zubrod|who\b(?=[^.;]{0,30}perform)"
    r"|who[- ]ps)\b|\b(?P<kps>karnofsky|kps)\b|\b(?P<lansky>lansky|lps)\b"
    r"|\b(?P<generic>performance status|performance score|ps)\b",
    _I,
)
_PS_VALUE_RE = re.compile(
    r"(?P<range>(?P<r1>\d{1,3})\s*%?\s*(?:-|to|through)\s*(?P<r2>\d{1,3})(?!\s*(?:days|weeks|months|years)))"
    r"|(?P<list>(?P<l1>\d{1,3})(?:\s*,\s*\d{1,3})*\s*,?\s*(?:or|and|/)\s*(?P<l2>\d{1,3}))"
    r"|(?P<op>>=|<=|<|>|=)\s*(?P<n>\d{1,3})"
    r"|(?P<wn>\d{1,3})\s*%?\s*or\s*(?P<dir>less|lower|better|below|fewer|greater|higher|more|above)"
    r"|(?P<single>\d{1,3})\s*%?(?!\s*(?:-|to|days|weeks|months|years|mg|x))",
    _I,
)
_PS_FILLER_RE = re.compile(
    r"^(?:\s|[:(),=]|performance|status|score|scale|ps\b|of\b|must|be\b|is\b|should|have|has"
    r"|a\b|an\b|grade|level|rating|equal to|between|\(ps\)|\(ecog\)|\(kps\)|%|within|range"
    r"|eastern|cooperative|oncology|group|who\b|zubrod|karnofsky|lansky|play|points?\b)*",
    _I,
)

# --- age ----------------------------------------------------------------------------------
_AGE_ANCHOR_RE = re.compile(
    r"\bage[ds]?\b|\b\d{1,3} years? (?:or|and) (?:older|over|above)\b|\byears? (?:of age|old)\b|\byrs? old\b|\byears?-old\b|\bmonths? (?:of age|old)\b",
    _I,
)
_AGE_UNIT = r"(?P<unit>years?|yrs?|months?)"
_AGE_PATTERNS = [
    re.compile(
        r"(?:between|from)\s*(?P<a>\d{1,3}(?:\.\d)?)\s*(?:years?|yrs?|months?)?\s*(?:of age\s*)?"
        r"(?:and|to|-)\s*(?P<b>\d{1,3}(?:\.\d)?)\s*" + _AGE_UNIT,
        _I,
    ),
    re.compile(r"(?P<a>\d{1,3})\s*(?:-|to)\s*(?P<b>\d{1,3})\s*" + _AGE_UNIT, _I),
    re.compile(
        r"(?P<op>>=|<=|<|>|=)\s*(?P<n>\d{1,3}(?:\.\d)?)\s*(?:" + _AGE_UNIT + r")?"
        r"(?!\s*(?:kg|cm|mg|%|weeks|days))",
        _I,
    ),
    re.compile(
        r"(?P<n2>\d{1,3})\s*" + _AGE_UNIT + r"\s*(?:of age|old|of|\))?\s*(?:or|and)\s*"
        r"(?P<dir>older|over|above|greater|more|younger|less|under|below)",
        _I,
    ),
    re.compile(r"\bage[ds]?\s*:?\s*(?P<n3>\d{1,3})\s*(?:years?|yrs?)?\s*\+", _I),
]

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
_ONCO_RE = re.compile(
    r"cancer|carcinoma|sarcoma|tumou?r|malignan|neoplas|lymphoma|leukemi|melanoma|myeloma|"
    r"nsclc|\bgist\b|mesothelioma|glioma|blastoma|metasta|oncolog",
    _I,
)
_CONDITIONAL_PREFIX_RE = re.compile(
    r"(?:\b(?:for|in|if|when|unless|except)\s+(?:\w+\s+){0,3}$)|(?:\bpatients?\s+with\s+$)", _I
)

# --- measurable disease -------------------------------------------------------------------
_MEAS_RE = re.compile(
    r"\b(?P<neg>non-?)?measurable\b(?!\s+residual)(?=(?:[\s,/-]+\w+){0,4}?[\s,/-]+"
    r"(?:disease|lesions?|tumou?rs?|target|parameters|sites?)\b)"
    r"|\b(?P<neg2>non-?)?measurable (?:and|or|and/or) (?:non-?measurable|evaluable)"
    r"|\b(?:disease|lesions?) (?:that (?:is|are) )?measurable\b"
    r"|\bevaluable (?:or measurable )?(?:disease|lesions?)\b",
    _I,
)
_MEAS_CRIT_RE = re.compile(
    r"\b(m?recist|irecist|rano|lugano|inrc|cheson|irrc|pcwg\d?|gcig|choi|who)\b"
    r"(?:\s*(?:criteria\s*)?(?:v(?:ersion)?\.?\s*)?(\d\.\d))?",
    _I,
)

# --- brain metastases ---------------------------------------------------------------------
_BRAIN_RE = re.compile(
    r"\b(?:brain|cns|central nervous system|cerebral|intracranial|intra-cranial|spinal cord|"
    r"brainstem|brain stem)\s+(?:(?:or|and|and/or|/)\s+\w+(?:\s+\w+)?\s+)?(?:metasta\w*|mets\b|"
    r"involvement|lesions?\b(?=[^.;]{0,40}metasta)|disease\b(?=[^.;]{0,40}metasta))"
    r"|\bmetasta\w*\s+(?:\w+\s+){0,2}?(?:to|in|of|involving|within)\s+(?:the\s+)?(?:brain|cns|"
    r"central nervous system)\b|\bleptomeningeal\b|\bmeningeal (?:disease|metasta\w*|"
    r"carcinomatosis|involvement)|\bcns (?:tumou?r )?involvement\b|\bbrain mets\b",
    _I,
)
_BRAIN_ALLOWED_RE = re.compile(
    r"\b(?:untreated|active|symptomatic|unstable|progressive|progressing|uncontrolled|"
    r"not (?:been )?(?:adequately )?treated|requiring (?:\w+ ){0,2}(?:steroids|treatment|therapy)"
    r"|treated|stable|stabl\w+|asymptomatic|previously treated)\b",
    _I,
)

# --- pregnancy / contraception -------------------------------------------------------------
_PREG_RE = re.compile(
    r"\bpregnan\w*|\blactat\w*|\bbreast[- ]?fe(?:e)?d\w*|\bnursing\b(?!\s+(?:home|facility|care|staff))",
    _I,
)
_PREG_STRONG_RE = re.compile(
    r"\bpregnancy test|\btest for pregnancy|\b(?:is|are|be|being|currently|women who are|females who are|not|who are) "
    r"pregnant|\bpregnant (?:or|and|women|female|patients?|participants?|subjects?)|\blactat|"
    r"\bbreast[- ]?fe|\bnursing\b|^\s*pregnan|\bpregnancy (?:or|and|/) |\bpregnant\b",
    _I,
)
_CONTRA_RE = re.compile(
    r"\bcontracepti\w*|\bbirth control\b|\bbarrier method|\babstinen\w*|\bavoid(?:ing)? "
    r"(?:becoming )?pregnan|\bprevent(?:ing)? pregnan",
    _I,
)
_PREG_REQUIRED_RE = re.compile(
    r"\b(?:pregnant (?:women|woman|females?|patients?|participants?|subjects?)|singleton|gestation"
    r"|weeks of pregnancy|pregnant at)\b",
    _I,
)

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
    ("creatinine", r"(?:serum )?creatinine(?!\s+(?:clearance|kinase|phosphokinase))"),
    ("direct_bilirubin", r"(?:direct|conjugated) bilirubin"),
    ("bilirubin", r"(?<!direct )(?<!conjugated )(?:total |serum )?bilirubin|\bt\.? ?bili\b"),
    ("ast", r"\bast\b|\bsgot\b|aspartate (?:amino)?transferase|aspartate aminotransferase"),
    ("alt", r"\balt\b|\bsgpt\b|alanine (?:amino)?transferase|alanine aminotransferase"),
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
    r"(?:upper limit of (?:the )?normal(?: range)?|uln|upper normal limit|normal)"
    r"|uln\b|upper limit of normal)?\s*"
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

# --- prior therapy ------------------------------------------------------------------------
_THERAPY_CUE_RE = re.compile(
    r"\b(?:prior(?! to\b)|previous(?:ly)?|received|receipt of|treated with|started on|"
    r"exposure to|exposed to|pre-?treated|refractory|progress\w*|failed|failure|"
    r"na[iï]ve|untreated|lines? of|regimens?|relapsed|recurred|had)\b",
    _I,
)
_CATEGORY_RES = [
    ("chemotherapy", re.compile(r"\bchemo(?:therapy|therapies|therapeutic)?\b|\bcytotoxic\b", _I)),
    (
        "systemic",
        re.compile(
            r"\bsystemic (?:anti-?cancer |anti-?neoplastic |cancer |anti-?tumou?r )?"
            r"(?:therap\w*|treatments?|agents?|regimens?)|\banti-?cancer (?:therap\w*|treatments?|"
            r"agents?|drugs?)|\banti-?neoplastic (?:therap\w*|treatments?|agents?)|"
            r"\bsystemic (?:\w+ )?(?:therapy|treatment)\b",
            _I,
        ),
    ),
    ("immunotherapy", re.compile(r"\bimmunotherap\w*", _I)),
    ("targeted_therapy", re.compile(r"\btargeted (?:therap\w*|agents?)", _I)),
]
_SKIP_THERAPY_RE = re.compile(
    r"\ballerg\w*|\bhypersensitiv\w*|\bcontraindicat\w*|\bcumulative\b|\bmg/m|"
    r"\b(?:concurrent|concomitant|currently (?:receiving|taking|on|using)|ongoing|during the study|"
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
_MIN_LINES_RE = re.compile(
    r"(?:>=|>)\s*(?P<n>" + _NUMW + r")\s+(?:[\w-]+\s+){0,4}?(?:lines?|regimens?|therap(?:y|ies)|"
    r"treatments?|courses?|chemotherap\w*)\b"
    r"|(?P<n2>" + _NUMW + r")\s+or\s+more\s+(?:[\w-]+\s+){0,4}?(?:lines?|regimens?|therap(?:y|ies)"
    r"|treatments?)\b"
    r"|(?P<r1>\d)\s*(?:-|to)\s*(?P<r2>\d)\s+(?:[\w-]+\s+){0,3}?(?:lines?|regimens?|therap(?:y|ies)"
    r"|treatments?)\b"
    r"|(?P<ord>second|third|fourth)[- ]line\b",
    _I,
)
_MAX_LINES_RE = re.compile(
    r"(?:<=)\s*(?P<n>" + _NUMW + r")\s+(?:[\w-]+\s+){0,4}?(?:lines?|regimens?|therap(?:y|ies)|"
    r"treatments?)\b"
    r"|(?P<n2>" + _NUMW + r")\s+or\s+(?:fewer|less)\s+(?:[\w-]+\s+){0,4}?(?:lines?|regimens?|"
    r"therap(?:y|ies)|treatments?)\b",
    _I,
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
_HISTOLOGY_CUE_RE = re.compile(
    r"\bhistolog\w*|\bcytolog\w*|\bpatholog\w*|\bconfirmed\b|\bdiagnos\w*|\bdocumented\b|"
    r"\bproven\b|\bsubtypes?\b|\bhistotypes?\b|\btumou?r types?\b|\bpatients? with\b|"
    r"\bparticipants? with\b|\bsubjects? with\b|\bmetastatic\b|\badvanced\b|\bunresectable\b|"
    r"\brecurrent\b|\brelapsed\b|\brefractory\b|\bhave\b|\bhas\b|^",
    _I,
)
_TOO_GENERIC_DIAGNOSES = frozenset({"cancer"})
_HISTO_NOISE_RE = re.compile(
    r"response evaluation criteria in solid tumou?rs?|anti-?cancer|anti-?tumou?r|anti-?neoplastic|"
    r"soft[- ]tissue (?:metastatic )?(?:lesions?|metastas\w+|involvement|component)|"
    r"cancer (?:therapy|treatment|drugs?)|anaplastic lymphoma kinase|\banti-[a-z0-9]+(?:-\d+)?\b|"
    r"national cancer institute|cancer institute|cancer center|cancer society|cancer staging",
    _I,
)
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
    s = re.sub(r"triple[- ]negative|hormone[- ]receptor[- ]negative|her2[- ]negative", "tn", s)
    s = re.sub(r"non-small[- ]cell|non small[- ]cell", "nsclc-type", s)
    s = re.sub(r"non-hodgkin", "nhl-type", s)
    s = re.sub(r"\b(?:but )?not limited to\b|\bnot otherwise specified\b|\bif not\b", " ", s)
    s = re.sub(r"\s*\((?:[a-z0-9]{1,6})\)", "", s)
    s = re.sub(r"response evaluation criteria in solid tumou?rs?", "recist", s)
    for rx, rep in _COMPARATORS:
        s = rx.sub(rep, s)
    return s


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
        n = _neg_count(self.s, start, end) + extra + (1 if self.context_negates else 0)
        return _flip(self.base, n)


def _ps(c: _Ctx) -> list[tuple[str, str, dict]]:
    s = c.s
    if not re.search(r"perform|ecog|karnofsky|kps|lansky|zubrod", s):
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
        found.append((start, scale or "generic", v))
    # "Karnofsky (adults) or Lansky (children) >= 50": a mention without value shares the next one's
    for i in range(len(found) - 2, -1, -1):
        if found[i][2] is None and found[i + 1][2] is not None:
            gap = s[mentions[i][1] : mentions[i + 1][0]]
            if len(gap) <= 80 and re.search(r"\bor\b|\band\b|/", gap):
                found[i] = (found[i][0], found[i][1], found[i + 1][2])
    out: list[tuple[str, str, dict]] = []
    for start, scale, v in found:
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
        vals = {"scale": scale, "min": lo, "max": hi}
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
        if d in ("greater", "higher", "more", "above"):
            return n, None
        if d == "better" and n >= 10:
            return n, None
        return None, n
    if v.group("single"):
        n = int(v.group("single"))
        return n, n
    return None, None


def _age(c: _Ctx) -> list[tuple[str, str, dict]]:
    s = c.s
    anchor = _AGE_ANCHOR_RE.search(s)
    if not anchor:
        return []
    if re.search(
        r"gestation|life expectancy|bone age|menopaus|amenorr|perform|ecog|karnofsky|lansky", s
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
            g = m.groupdict()
            unit = (g.get("unit") or "year").lower()
            f = 1 / 12 if unit.startswith("month") else 1.0
            vals: dict[str, Any] = {"min_years": None, "max_years": None, "source": "text"}
            if g.get("a") is not None:
                vals["min_years"] = round(float(g["a"]) * f, 3)
                vals["max_years"] = round(float(g["b"]) * f, 3)
            elif g.get("op"):
                if not g.get("unit") and not re.search(
                    r"\bage[ds]?\s*(?:of|:|is|must be|should be|=)?\s*$",
                    s[max(0, m.start() - 20) : m.start()],
                ):
                    continue
                n = float(g["n"]) * f
                op = g["op"]
                if op in (">=", ">"):
                    vals["min_years"] = round(n, 3)
                    vals["min_exclusive"] = op == ">"
                elif op in ("<=", "<"):
                    vals["max_years"] = round(n, 3)
                    vals["max_exclusive"] = op == "<"
                else:
                    vals["min_years"] = vals["max_years"] = round(n, 3)
            elif g.get("n2"):
                n = float(g["n2"]) * f
                if g["dir"] in ("older", "over", "above", "greater", "more"):
                    vals["min_years"] = round(n, 3)
                else:
                    vals["max_years"] = round(n, 3)
            elif g.get("n3"):
                vals["min_years"] = float(g["n3"])
            else:
                continue
            for k in ("min_years", "max_years"):
                if vals[k] is not None and not 0 <= vals[k] <= 120:
                    break
            else:
                return [("age", c.polarity(m.start()), vals)]
    return []


def _histology(c: _Ctx) -> list[tuple[str, str, dict]]:
    vocab = c.vocab
    if vocab is None:
        return []
    text = _HISTO_NOISE_RE.sub(lambda m: " " * len(m.group(0)), c.plain)
    found = vocab.find_diagnoses(text)
    if not found:
        return []
    if _OTHER_MALIGNANCY_RE.search(c.s):
        return []
    if c.section == "inclusion" and not _HISTOLOGY_CUE_RE.search(c.s):
        return []
    ex = _EXCEPT_RE.search(c.s)
    main_ids: list[str] = []
    except_ids: list[str] = []
    low = text.lower()
    for did, mention in found:
        if did in _TOO_GENERIC_DIAGNOSES:
            continue
        pos = low.find(mention.lower())
        if re.search(
            r"(?:therap\w*|treatment|chemotherapy|radiotherapy|surgery|resection)\s+for\s+(?:the\s+)?"
            r"(?:current\s+|study\s+|this\s+)?(?:[\w/-]+\s+){0,3}$|\bif (?:in )?(?:the )?$",
            low[max(0, pos - 60) : pos],
        ):
            continue  # "prior chemotherapy for stage IV adenocarcinoma": a therapy setting
        target = except_ids if ex is not None and pos >= ex.start() else main_ids
        if did not in target:
            target.append(did)
    out: list[tuple[str, str, dict]] = []
    if main_ids:
        first = low.find(found[0][1].lower())
        pol = c.polarity(max(first, 0))
        out.append(("histology", pol, {"diagnoses": main_ids}))
        if except_ids:
            other = "exclude" if pol == "require" else None
            if other:
                out.append(("histology", other, {"diagnoses": except_ids}))
    elif except_ids and c.section == "inclusion":
        out.append(("histology", "exclude", {"diagnoses": except_ids}))
    return out


def _extent(c: _Ctx) -> list[tuple[str, str, dict]]:
    s = c.s
    if _OTHER_MALIGNANCY_RE.search(s):
        return []  # "non-metastatic prostate cancer" in a second-malignancy clause
    hits: list[tuple[int, str, int]] = []
    for name, rx in _EXTENT_RES:
        for m in rx.finditer(s):
            before = s[max(0, m.start() - 30) : m.start()]
            if (
                name != "unresectable"
                and _CONDITIONAL_PREFIX_RE.search(before)
                and re.search(r"\b(?:for|in|if|when)\b", before)
            ):
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
            if re.search(
                r"\b(?:due|secondary|related) to\s*$", s[max(0, m.start() - 20) : m.start()]
            ):
                continue  # "cord compression due to metastatic disease"
            if re.search(
                r"(?:therap\w*|treatments?|chemotherapy|regimens?|lines?)\s+(?:given\s+)?(?:for|in)\s+(?:the\s+)?"
                r"(?:[\w-]+[\s/]+){0,3}$",
                s[max(0, m.start() - 50) : m.start()],
            ):
                continue  # "prior therapy for metastatic NSCLC": a therapy setting, not an extent gate
            neg = 1 if (m.groupdict().get("neg") if name == "metastatic" else None) else 0
            hits.append((m.start(), name, neg))
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


def _brain(c: _Ctx) -> list[tuple[str, str, dict]]:
    m = _BRAIN_RE.search(c.s)
    if not m:
        return []
    if "involvement" in m.group(0) and not re.search(
        r"tumou?r|cancer|lymphoma|leukemi|metasta|malignan|myeloma|carcinoma|sarcoma", c.s
    ):
        return []  # "autoimmune disease with CNS involvement"
    window = c.s[max(0, m.start() - 40) : m.end() + 160]
    allowed = bool(_BRAIN_ALLOWED_RE.search(window)) or bool(_PERMISSIVE_RE.search(window))
    pol = c.polarity(m.start(), m.end())
    if (
        pol == "require"
        and c.section == "inclusion"
        and (allowed or re.search(r"\b(?:if|provided|in the case of|for patients with|may)\b", c.s))
    ):
        # "patients with treated brain metastases are eligible": untreated ones are excluded
        pol, allowed = "exclude", True
    return [("brain_metastases", pol, {"allowed_if_treated_stable": allowed})]


def _pregnancy(c: _Ctx) -> list[tuple[str, str, dict]]:
    s = c.s
    out: list[tuple[str, str, dict]] = []
    preg = _PREG_RE.search(s)
    contra = _CONTRA_RE.search(s)
    male_only = bool(re.match(r"\s*(?:male|men)\b", s)) and not re.search(
        r"\bfemales?\b(?! partner)|\bwomen\b", s[:40]
    )
    if preg and _PREG_STRONG_RE.search(s) and not (male_only and contra):
        vals = {
            "pregnant": True,
            "breastfeeding": bool(re.search(r"lactat|breast[- ]?fe|nursing", s)),
            "test_required": bool(re.search(r"pregnancy test|hcg", s)),
        }
        if (
            c.section == "inclusion"
            and not contra
            and _PREG_REQUIRED_RE.search(s)
            and not _NEG_RE.search(_clause_prefix(s, preg.start()))
        ):
            out.append(("pregnancy", "require", vals))
        else:
            out.append(("pregnancy", "exclude", vals))
    if contra:
        out.append(("contraception", "require", {}))
    return out


_LAB_HINTS = (
    "neutro", "anc", "agc", "granulocyte", "platelet", "plt", "thrombocyt", "moglobin", "hgb",
    "hb", "creatin", "crcl", "cr cl", "gfr", "glomerular", "bili", "ast", "alt", "sgot", "sgpt",
    "transaminase", "aminotransferase", "liver enzyme",
)  # fmt: skip


def _labs(c: _Ctx) -> list[tuple[str, str, dict]]:
    s = c.s
    if not any(h in s for h in _LAB_HINTS):
        return []
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
    unit_raw = re.sub(r"\s+", "", (v.group("unit") or "").lower())
    mult = v.group("mult")
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
        if re.search(r"10\^?9/l|10\^?3/ul|^k/ul|/nl", u):
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


_SENTENCE_RE = re.compile(r"(?<=[.;])\s+(?=[a-z(])|(?<=\.)\s+(?=note\b)", _I)
_MODAL_NEG_RE = re.compile(
    r"\b(?:must|may|should|will|shall|can)\s+not\b|\bcannot\b|\bmustn't\b|\bare not allowed\b", _I
)
_RADIO_RE = re.compile(
    r"\bradiotherap\w*|\bradiation(?: therapy)?\b|\birradiat\w*|\bradiosurgery\b", _I
)
_TOXICITY_RE = re.compile(
    r"\btoxicit\w*|\badverse (?:events?|reactions?)|\brecovered\b|\bside effects?\b|\bimmune-related\b",
    _I,
)


def _prior_therapy(c: _Ctx, washout_found: bool) -> list[tuple[str, str, dict]]:
    """Prior-therapy criteria, sentence by sentence (a later "X is permitted" sentence must
    not turn its drugs into exclusions)."""
    if washout_found or _WASHOUT_RE.search(c.s):
        return []  # "prior chemotherapy within 4 weeks" is a washout, not a lifelong exclusion
    if not _THERAPY_CUE_RE.search(c.s) and not _NAIVE_RE.search(c.s):
        return []
    out: list[tuple[str, str, dict]] = []
    plain_parts = _SENTENCE_RE.split(c.plain)
    for part in plain_parts:
        for item in _prior_therapy_sentence(c, part):
            if item not in out:
                out.append(item)
    return out


def _prior_therapy_sentence(c: _Ctx, plain: str) -> list[tuple[str, str, dict]]:
    s = _prep(plain)
    cue = _THERAPY_CUE_RE.search(s)
    naive = _NAIVE_RE.search(s)
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
            target = exceptions if ex is not None and pos >= cut else classes
            if cid not in classes and cid not in exceptions:
                target.append(cid)
    cats = [name for name, rx in _CATEGORY_RES if (m := rx.search(s)) and m.start() < cut]
    radio = bool(
        re.search(
            r"\b(?:prior|previous|received)\s+(?:[\w-]+\s+){0,2}?(?:radiotherap|radiation)", s[:cut]
        )
    ) and not re.search(r"\blesions?\b|\bmeasurable\b|\bfield\b", s)

    min_lines = max_lines = None
    mn = _MIN_LINES_RE.search(s)
    if mn and re.match(
        r"\s*(?:>=|>)?\s*\w+\s+(?:days?|weeks?|months?|years?|hours?|cycles? of)\b", mn.group(0)
    ):
        mn = None
    if mn:
        if mn.group("n") or mn.group("n2"):
            min_lines = _num(mn.group("n") or mn.group("n2"))
            if mn.group(0).lstrip().startswith(">") and not mn.group(0).lstrip().startswith(">="):
                min_lines = (min_lines or 0) + 1
        elif mn.group("r1"):
            min_lines, max_lines = int(mn.group("r1")), int(mn.group("r2"))
        elif mn.group("ord"):
            min_lines = {"second": 1, "third": 2, "fourth": 3}[mn.group("ord").lower()]
    mx = _MAX_LINES_RE.search(s)
    if mx:
        max_lines = _num(mx.group("n") or mx.group("n2"))
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
    if c.section == "exclusion" and _MODAL_NEG_RE.search(s[: cue.end() + 20]):
        neg = 0
    if c.context_negates:
        neg += 1
    if _POST_EXCLUDE_RE.match(s[cue.start() :]):
        neg += 1
    required = (c.section == "inclusion") == (neg % 2 == 0)
    if max_lines is not None:
        out.append(("max_prior_lines", "exclude", {"max_lines": max_lines}))
    if required:
        if max_lines is not None and min_lines is None and not (drugs or classes):
            return out  # "no more than 2 prior lines" requires no prior therapy
        if not (drugs or classes or cats or min_lines):
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
                     "progression": bool(_PROGRESSION_RE.search(s))}))  # fmt: skip
        return out
    if not (drugs or classes or cats or radio):
        return out
    specific = [
        x for x in classes if x not in ("chemotherapy", "immunotherapy", "targeted_therapy")
    ]
    if (min_lines is not None or max_lines is not None) and not (drugs or specific):
        return out  # "more than one prior chemotherapy": a line count, not "no chemotherapy"
    if radio and not (drugs or classes or cats):
        cats = ["radiotherapy"]
    any_sys = "systemic" in cats and not (drugs or classes)
    out.append(("prior_therapy_excluded", "exclude",
                {"drugs": drugs, "classes": classes, "categories": cats, "any_systemic": any_sys,
                 "exceptions": exceptions, "qualified": qualified}))  # fmt: skip
    return out


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


def parse_line(
    text: str,
    section: str = "inclusion",
    *,
    vocab: Any = None,
    context: str | None = None,
    oncology: bool = True,
) -> list[Criterion]:
    """Parse one criteria line into typed criteria (or one ``unparsed`` entry).

    ``text`` is the line as written; ``section`` "inclusion" or "exclusion"; ``context``
    the parent line or sub-heading (plain text); ``oncology`` enables the bare word
    "advanced" as a disease-extent cue (set per trial from its conditions).
    """
    if vocab is None:
        vocab = _default_vocab()
    c = _Ctx(normalize(text), section, context, vocab, oncology)
    found: list[tuple[str, str, dict]] = []
    found += _ps(c)
    found += _age(c)
    found += _histology(c)
    found += _extent(c)
    found += _measurable(c)
    found += _brain(c)
    found += _pregnancy(c)
    found += _labs(c)
    wash = _washout(c)
    found += _prior_therapy(c, bool(wash))
    found += wash
    if not found:
        return [Criterion(section, text, "unparsed", c.base, {}, context=context)]
    crits = [Criterion(section, text, t, p, v, context=context) for t, p, v in found]
    _group_alternatives(crits, c.s)
    return crits


def _group_alternatives(crits: list[Criterion], s: str) -> None:
    """Mark "X or Y" alternatives of one kind on one line (see module docstring)."""
    if not re.search(r"\bor\b", s):
        return
    ps = [c for c in crits if c.type == "performance_status"]
    if len(ps) > 1:
        for c in ps:
            c.group = "line:ps"
    renal = [
        c
        for c in crits
        if c.type == "organ_function"
        and c.values.get("lab") in ("creatinine", "creatinine_clearance")
    ]
    if len(renal) > 1:
        for c in renal:
            c.group = "line:renal"


# =========================================================================================
# Trials
# =========================================================================================
_CACHE: OrderedDict[tuple[str, str | None], ParsedTrial] = OrderedDict()
_CACHE_MAX = 20000


def _default_vocab() -> Any:
    from matcher.vocab import load_vocab

    return load_vocab()


def parse_trial(record: dict, vocab: Any = None) -> ParsedTrial:
    """Parse one record (v2 study dict) into a ``ParsedTrial``.

    Cached by (NCT id, last update) when the default vocabulary is used, so the batch job
    parses each record version once. Raises ``RecordError`` only for a record without NCT
    id; any criteria text is accepted (untyped lines become ``unparsed``).
    """
    use_cache = vocab is None
    trial_vocab = vocab if vocab is not None else _default_vocab()
    key = None
    if use_cache:
        ps = record.get("protocolSection") if isinstance(record, dict) else None
        ident = ps.get("identificationModule", {}) if isinstance(ps, dict) else {}
        status = ps.get("statusModule", {}) if isinstance(ps, dict) else {}
        nct = ident.get("nctId") if isinstance(ident, dict) else None
        lu = (
            (status.get("lastUpdatePostDateStruct") or {}).get("date")
            if isinstance(status, dict)
            else None
        )
        if nct:
            key = (str(nct).upper(), lu)
            hit = _CACHE.get(key)
            if hit is not None:
                _CACHE.move_to_end(key)
                return hit
    trial = Trial.from_record(record, vocab=trial_vocab)
    parsed = parse_trial_model(trial, trial_vocab)
    if key is not None:
        _CACHE[key] = parsed
        if len(_CACHE) > _CACHE_MAX:
            _CACHE.popitem(last=False)
    return parsed


def clear_cache() -> None:
    """Forget cached parses (tests; a long-running process after a vocabulary change)."""
    _CACHE.clear()


def _is_oncology(trial: Trial, vocab: Any) -> bool:
    text = " ".join(
        [*trial.conditions, *trial.keywords, trial.title or "", trial.official_title or ""]
    )
    if _ONCO_RE.search(text):
        return True
    return bool(vocab is not None and vocab.find_diagnoses(text))


_CONDITIONAL_LINE_RE = re.compile(
    r"\s*(?:for|in|if|when)\b|\s*(?:sub-?study|cohort|part|arm|group|phase)\s*[\w.-]{0,6}\s*(?:only)?\s*[:(]"
    r"|\s*(?:patients|participants|subjects) (?:in|enrolled in|assigned to) (?:cohort|part|arm|group)",
    _I,
)


def is_oncology_trial(trial: Trial, vocab: Any = None) -> bool:
    """True when the trial's conditions, keywords or titles name a cancer."""
    return _is_oncology(trial, vocab if vocab is not None else _default_vocab())


def parse_trial_model(trial: Trial, vocab: Any = None) -> ParsedTrial:
    """Criteria of an already built ``Trial`` (structured gates first, then the text)."""
    if vocab is None:
        vocab = _default_vocab()
    crits: list[Criterion] = []
    if trial.min_age_years is not None or trial.max_age_years is not None:
        text = (
            f"Age (registered): minimum {trial.min_age_text or 'none'}, "
            f"maximum {trial.max_age_text or 'none'}"
        )
        crits.append(
            Criterion(
                "inclusion",
                text,
                "age",
                "require",
                {
                    "min_years": trial.min_age_years,
                    "max_years": trial.max_age_years,
                    "source": "structured",
                },
                source="structured",
            )  # fmt: skip
        )
    if trial.sex in ("FEMALE", "MALE"):
        crits.append(
            Criterion(
                "inclusion",
                f"Sex (registered): {trial.sex}",
                "sex",
                "require",
                {"sex": trial.sex},
                source="structured",
            )  # fmt: skip
        )
    onco = _is_oncology(trial, vocab)
    lines = split_criteria(trial.criteria_text)
    n_lines = n_typed = 0
    group_of: dict[int, str] = {}
    for line in lines:
        if line.is_heading and line.children:
            continue
        parsed = parse_line(
            line.text, line.section, vocab=vocab, context=line.context, oncology=onco
        )
        if line.children and parsed[0].type == "unparsed" and line.text.rstrip().endswith(":"):
            continue  # a parent such as "Adequate organ function:" -- its children carry it
        n_lines += 1
        if parsed[0].type != "unparsed":
            n_typed += 1
        conditional = (
            bool(line.children)
            or bool(_CONDITIONAL_LINE_RE.match(line.text))
            or bool(line.parent is not None and _CONDITIONAL_LINE_RE.match(line.parent.text))
        )
        for c in parsed:
            c.conditional = conditional
            if c.type == "histology" and c.polarity == "require" and c.section == "inclusion":
                c.group = "histology:require"  # several required histologies are alternatives
        parent = line.parent
        if (
            parent is not None
            and line.section == "inclusion"
            and _CTX_ANYOF_RE.search(normalize(parent.text))
        ):
            gid = group_of.setdefault(id(parent), f"any:{len(group_of) + 1}")
            for c in parsed:
                if c.type != "unparsed" and c.group is None:
                    c.group = gid
        crits.extend(parsed)
    return ParsedTrial(trial=trial, criteria=crits, n_lines=n_lines, n_typed_lines=n_typed)


# =========================================================================================
# Evaluation
# =========================================================================================
def evaluate(patient: Any, parsed: ParsedTrial, vocab: Any = None) -> list[Verdict]:
    """One ``Verdict`` per criterion of ``parsed`` (same order).

    Missing patient data gives ``UNKNOWN``, never ``NOT_MET``. Pure: reads only the patient
    and the parsed trial (and the vocabulary for class membership and diagnosis lineage).
    """
    if vocab is None:
        vocab = _default_vocab()
    verdicts = [_evaluate_one(patient, c, vocab) for c in parsed.criteria]
    for v in verdicts:
        if v.criterion.conditional and v.verdict == NOT_MET:
            v.verdict = UNKNOWN
            v.reason += "; applies to a sub-group only (cohort / listed cases): verify"
    groups: dict[str, list[Verdict]] = {}
    for v in verdicts:
        if v.criterion.group:
            groups.setdefault(v.criterion.group, []).append(v)
    for members in groups.values():
        if len(members) < 2 or all(v.verdict == NOT_MET for v in members):
            continue
        met = any(v.verdict == MET for v in members)
        for v in members:
            if v.verdict == NOT_MET:
                v.verdict = UNKNOWN if not met else MET
                v.reason += (
                    "; not needed: an alternative criterion is met"
                    if met
                    else "; alternatives exist (one of them may apply): verify"
                )
    return verdicts


def _evaluate_one(p: Any, c: Criterion, vocab: Any) -> Verdict:
    fn = _EVALUATORS.get(c.type)
    if fn is None:
        return Verdict(c, UNKNOWN, "to review: criterion not checked automatically")
    try:
        verdict, reason = fn(p, c, vocab)
    except (KeyError, TypeError, ValueError) as exc:  # a vocabulary gap must not stop a batch
        verdict, reason = UNKNOWN, f"could not check ({exc.__class__.__name__}): verify"
    return Verdict(c, verdict, reason)


def _apply(polarity: str, inside: bool) -> str:
    """``inside`` = the patient matches what the criterion describes."""
    if polarity == "require":
        return MET if inside else NOT_MET
    return NOT_MET if inside else MET


def _fmt(x: float | None) -> str:
    if x is None:
        return "?"
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _range_text(lo: float | None, hi: float | None, unit: str = "") -> str:
    if lo is not None and hi is not None:
        return f"{_fmt(lo)}–{_fmt(hi)}{unit}" if lo != hi else f"{_fmt(lo)}{unit}"
    if lo is not None:
        return f"≥{_fmt(lo)}{unit}"
    if hi is not None:
        return f"≤{_fmt(hi)}{unit}"
    return "any"


# ECOG grade -> Karnofsky band (Oken et al. 1982 correspondence used in protocols)
_ECOG_TO_KPS = {0: (90, 100), 1: (70, 80), 2: (50, 60), 3: (30, 40), 4: (10, 20), 5: (0, 0)}


def _ev_ps(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
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
    word = "within" if c.polarity == "require" else "in excluded range"
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
        rel = (
            word if inside else ("outside" if c.polarity == "require" else "outside excluded range")
        )
        return verdict, f"ECOG {p.ecog}{conv} {rel} {_range_text(lo, hi)}"
    own = getattr(p, scale, None)
    if own is not None:
        inside = v["min"] <= own <= v["max"]
        rel = (
            word if inside else ("outside" if c.polarity == "require" else "outside excluded range")
        )
        return _apply(c.polarity, inside), f"{label} {own} {rel} {_range_text(lo, hi)}"
    other = p.karnofsky if scale == "lansky" else p.lansky
    if other is not None:
        inside = v["min"] <= other <= v["max"]
        name = "Karnofsky" if scale == "lansky" else "Lansky"
        if (c.polarity == "require") == inside:
            return MET, f"{name} {other} (same 0–100 scale) {word} {crit}"
        return UNKNOWN, f"{name} {other} recorded, trial states {crit}: verify"
    if p.ecog is not None:
        band = _ECOG_TO_KPS.get(p.ecog)
        if band and v["min"] <= band[0] and band[1] <= v["max"] and c.polarity == "require":
            return MET, f"ECOG {p.ecog} ≈ {label} {band[0]}–{band[1]}, within {_range_text(lo, hi)}"
        if band and (band[1] < v["min"] or band[0] > v["max"]) and c.polarity == "exclude":
            return (
                MET,
                f"ECOG {p.ecog} ≈ {label} {band[0]}–{band[1]}, outside excluded {_range_text(lo, hi)}",
            )
        return UNKNOWN, f"ECOG {p.ecog} recorded, trial states {crit}: verify {label}"
    return UNKNOWN, f"{label} not recorded: verify ({crit})"


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
    return verdict, f"age {_fmt(round(a, 1))} {'within' if inside else 'outside'} {crit}"


def _ev_sex(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    want = c.values["sex"].lower()
    if not p.sex:
        return UNKNOWN, f"sex not recorded: verify (trial enrols {want} only)"
    ok = p.sex.lower() == want
    return (MET if ok else NOT_MET), f"sex {p.sex}; trial enrols {want} only"


def _diag_name(vocab: Any, did: str) -> str:
    try:
        return vocab.diagnosis(did).name
    except Exception:  # noqa: BLE001 - an id missing from the vocabulary just shows as the id
        return did


def _ev_histology(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    ids = c.values.get("diagnoses") or []
    names = ", ".join(_diag_name(vocab, i) for i in ids)
    if not p.diagnosis:
        return (
            UNKNOWN,
            f"diagnosis not recorded: verify ({'requires' if c.polarity == 'require' else 'excludes'} {names})",
        )
    pname = p.diagnosis_name or p.diagnosis
    lineage = set(p.diagnosis_lineage or [p.diagnosis])
    hit = [i for i in ids if i in lineage or _safe_is_a(vocab, p.diagnosis, i)]
    broader = [i for i in ids if _safe_is_a(vocab, i, p.diagnosis) and i != p.diagnosis]
    if c.polarity == "require":
        if hit:
            return MET, f"{pname} is {_diag_name(vocab, hit[0])}; trial requires {names}"
        if broader:
            return (
                UNKNOWN,
                f"diagnosis {pname} (unspecified subtype); trial requires {names}: verify subtype",
            )
        return NOT_MET, f"{pname} is not among {names} required by the trial"
    if hit:
        return NOT_MET, f"{pname} is {_diag_name(vocab, hit[0])}; trial excludes {names}"
    if broader:
        return (
            UNKNOWN,
            f"diagnosis {pname} (unspecified subtype); trial excludes {names}: verify subtype",
        )
    return MET, f"{pname} is not among excluded {names}"


def _safe_is_a(vocab: Any, a: str, b: str) -> bool:
    try:
        return bool(vocab.is_a(a, b))
    except Exception:  # noqa: BLE001 - unknown ids are simply unrelated
        return False


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
    if c.polarity == "require":
        if met and any(e in ("metastatic", "advanced") for e in ext):
            return MET, f"metastatic disease; trial requires {desc}"
        if met:
            return UNKNOWN, f"metastatic disease; trial requires {desc}: verify"
        if ext == ["metastatic"]:
            return NOT_MET, "disease not metastatic; trial requires metastatic disease"
        return (
            UNKNOWN,
            f"disease not metastatic; trial requires {desc}: verify resectability/extent",
        )
    if "metastatic" in ext:
        if met:
            return NOT_MET, f"metastatic disease; trial excludes {desc}"
        return MET, f"disease not metastatic; trial excludes {desc}"
    return UNKNOWN, f"trial excludes {desc}: verify"


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


def _ev_brain(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    allowed = c.values.get("allowed_if_treated_stable")
    if p.brain_metastases is None:
        return UNKNOWN, "brain metastases status not recorded: verify"
    if c.polarity == "exclude":
        if not p.brain_metastases:
            return MET, "no brain metastases recorded; trial excludes them"
        if allowed:
            return (
                UNKNOWN,
                "brain metastases recorded; trial allows treated and stable ones: verify",
            )
        return NOT_MET, "brain metastases recorded; trial excludes them"
    if p.brain_metastases:
        return MET, "brain metastases recorded; trial requires them"
    return NOT_MET, "no brain metastases recorded; trial requires them"


def _ev_pregnancy(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    if c.polarity == "exclude":
        if p.sex and p.sex.lower() == "male":
            return MET, "male patient; pregnancy exclusion does not apply"
        if p.pregnant is None:
            what = "pregnant or breastfeeding" if c.values.get("breastfeeding") else "pregnant"
            return UNKNOWN, f"pregnancy status not recorded: verify (trial excludes {what})"
        if p.pregnant:
            return NOT_MET, "pregnant; trial excludes pregnancy"
        extra = " (breastfeeding not recorded: verify)" if c.values.get("breastfeeding") else ""
        return MET, f"not pregnant; trial excludes pregnancy{extra}"
    if p.pregnant is None:
        return UNKNOWN, "pregnancy status not recorded: verify (trial enrols pregnant women)"
    return _apply(
        "require", bool(p.pregnant)
    ), f"pregnant: {'yes' if p.pregnant else 'no'}; trial enrols pregnant women"


def _ev_contraception(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    return UNKNOWN, "contraception requirement: confirm with the patient at consent"


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
        return (
            UNKNOWN,
            f"{name} {_fmt(val)} {unit}; trial states {crit}: the lab's ULN is not recorded, verify",
        )
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
    if verdict == NOT_MET and re.search(
        r"\b(?:if|unless|in patients with|for patients with|gilbert)", c.text, re.I
    ):
        return (
            UNKNOWN,
            f"{name} {_fmt(val)} {unit} fails {crit}{conv}, but the line has a conditional limit: verify",
        )
    rel = "meets" if ok else "fails"
    if c.polarity == "exclude":
        rel = "in excluded range" if ok else "outside excluded range"
    return verdict, f"{name} {_fmt(val)} {unit} {rel} {crit}{conv}"


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
    if v.get("any_systemic") and "systemic" not in (v.get("categories") or []):
        parts.append("systemic therapy")
    return " / ".join(parts) or "prior therapy"


def _ev_prior_required(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    desc = _therapy_desc(c, vocab)
    if p.prior_therapies is None:
        return UNKNOWN, f"prior therapies not recorded: verify (trial requires prior {desc})"
    v = c.values
    named = bool(v.get("drugs") or v.get("classes") or v.get("categories"))
    hits = _received(p, c, vocab) if named else []
    n_drugs = len(p.prior_drugs)
    if named and not hits:
        if v.get("categories") and not (v.get("drugs") or v.get("classes")) and n_drugs:
            return (
                UNKNOWN,
                f"had {', '.join(sorted(p.prior_drugs))}; trial requires prior {desc}: verify",
            )
        return NOT_MET, f"no prior {desc} recorded; trial requires it"
    if v.get("min_lines"):
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
    if v.get("progression"):
        return UNKNOWN, f"had {got}; progression on it is not recorded: verify"
    if not named and not v.get("min_lines"):
        return UNKNOWN, "prior therapy requirement: verify"
    return MET, f"had {got}; trial requires prior {desc}"


def _ev_prior_excluded(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    desc = _therapy_desc(c, vocab)
    if p.prior_therapies is None:
        return UNKNOWN, f"prior therapies not recorded: verify (trial excludes prior {desc})"
    hits = _received(p, c, vocab)
    if not hits:
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


def _ev_unparsed(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    return UNKNOWN, "to review: not checked automatically"


_EVALUATORS = {
    "performance_status": _ev_ps,
    "age": _ev_age,
    "sex": _ev_sex,
    "histology": _ev_histology,
    "disease_extent": _ev_extent,
    "measurable_disease": _ev_measurable,
    "brain_metastases": _ev_brain,
    "pregnancy": _ev_pregnancy,
    "contraception": _ev_contraception,
    "organ_function": _ev_labs,
    "prior_therapy_required": _ev_prior_required,
    "prior_therapy_excluded": _ev_prior_excluded,
    "max_prior_lines": _ev_max_lines,
    "washout": _ev_washout,
    "unparsed": _ev_unparsed,
}


def trial_report(parsed: ParsedTrial, patient: Any = None, vocab: Any = None) -> dict:
    """The ``trial --json`` object: ``{"nct_id", "criteria": [...]}``; each criterion gets
    ``verdict`` and ``reason`` when a patient is given."""
    if patient is None:
        return parsed.to_dict()
    return {
        "nct_id": parsed.nct_id,
        "criteria": [v.to_dict() for v in evaluate(patient, parsed, vocab=vocab)],
    }


def format_criteria(parsed: ParsedTrial, verdicts: list[Verdict] | None = None) -> str:
    """Human-readable listing of the parsed criteria (and verdicts), one block per criterion."""
    t = parsed.trial
    lines = [f"{t.nct_id}  {t.title or ''}".rstrip()]
    meta = [x for x in (t.status, "/".join(t.phases) if t.phases else None, t.url) if x]
    lines.append("  " + " · ".join(meta))
    items = verdicts if verdicts is not None else [None] * len(parsed.criteria)
    crits = parsed.criteria
    for c, v in zip(crits, items, strict=True):
        c = v.criterion if v is not None else c
        vals = ", ".join(
            f"{k}={_short(x)}" for k, x in c.values.items() if x not in (None, [], False)
        )
        head = f"[{c.section}] {c.type} ({c.polarity})" + (f": {vals}" if vals else "")
        if c.type == "unparsed":
            head = f"[{c.section}] to review"
        lines.append("")
        lines.append(head)
        lines.append(f"    {c.text}")
        if v is not None:
            lines.append(f"    -> {v.verdict}: {v.reason}")
    return "\n".join(lines)


def _short(x: object) -> str:
    if isinstance(x, list):
        return "/".join(str(i) for i in x)
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)
