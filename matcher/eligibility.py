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

Disease scope: a prior-therapy, extent, measurability or biomarker criterion on a line that
names a cancer as its setting ("no prior chemotherapy for lung cancer", exclusion "Metastatic
breast cancer", a parent line naming a cohort's cancer) keeps those ids in
``Criterion.disease_scope``; its ``NOT_MET`` is reported as ``UNKNOWN`` for a patient whose
diagnosis is not one of them.

Alternatives: criteria under a parent such as "must have one of the following:" and two
criteria of the same kind joined by "or" on one line ("creatinine <= 1.5 mg/dL or CrCl >=
60 mL/min") share a ``group``; a member's ``NOT_MET`` becomes ``UNKNOWN`` unless every
member of the group is ``NOT_MET``.
"""

from __future__ import annotations

import hashlib
import json
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
    "biomarker",
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
    # the line applies to patients with these diagnoses only (a cohort line such as "Patients
    # with GBM must ...", or the header of a histology sub-list); None = everyone
    applies_to: list[str] | None = None
    applies_note: str | None = None  # listed entries the vocabulary did not recognise
    # cancers the line (or its parent line) names, for types whose meaning depends on them
    # ("no prior chemotherapy for lung cancer", "metastatic breast cancer"): a NOT_MET for a
    # patient with another diagnosis becomes UNKNOWN (see ``_SCOPED_TYPES``); None = no name
    disease_scope: list[str] | None = None

    def to_dict(self) -> dict:
        """The fixed JSON shape: section, text, type, polarity, values (``values`` also
        carries ``applies_to`` when the criterion is limited to some histologies)."""
        values = self.values
        if self.applies_to and "applies_to" not in values:
            values = {**values, "applies_to": list(self.applies_to)}
        return {
            "section": self.section,
            "text": self.text,
            "type": self.type,
            "polarity": self.polarity,
            "values": values,
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
    r"(?P<range>(?P<r1>\d{1,3})\s*%?\s*(?:-|~|to|through)\s*(?P<r2>\d{1,3})(?!\s*(?:days|weeks|months|years)))"
    r"|(?P<list>(?P<l1>\d{1,3})(?:\s*,\s*\d{1,3})*\s*,?\s*(?:or|and|/)\s*(?P<l2>\d{1,3})"
    r"|\d(?:\s*,\s*\d)+\b(?!\s*(?:%|days|weeks|months|years|[.,]\d)))"
    r"|(?P<op>>=|<=|<|>|=)\s*(?P<n>\d{1,3})(?!\s*(?:days|weeks|months|years))"
    r"|(?P<wn>\d{1,3})\s*%?\s*or\s*(?P<dir>less|lower|better|below|fewer|greater|higher|more|above)"
    r"|(?P<single>\d{1,3})\s*%?(?!\s*(?:-|~|to|days|weeks|months|years|mg|x))",
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
_NOT_FILLER_RE = re.compile(r"\b(?:but )?not limited to\b|\bnot otherwise specified\b|\bif not\b")
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
        n = _neg_count(self.s, start, end) + extra + (1 if self.context_negates else 0)
        return _flip(self.base, n)

    def polarity_plain(self, text: str, start: int) -> str:
        """``polarity`` for a position in the *plain* text (before ``_prep`` rewrote it)."""
        pre = _prep(text[:start])
        n = len(_NEG_RE.findall(_clause_prefix(pre, len(pre))))
        return _flip(self.base, n + (1 if self.context_negates else 0))


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


def _histology(c: _Ctx) -> list[tuple]:
    vocab = c.vocab
    if vocab is None:
        return []
    if _OTHER_MALIGNANCY_RE.search(c.s):
        return []  # a second-malignancy clause (checked first: cheaper than the vocabulary)
    text = _HISTO_NOISE_RE.sub(lambda m: " " * len(m.group(0)), c.plain)
    found = _find_diagnoses(vocab, text)
    if not found:
        return []
    low = text.lower()
    spans = _except_spans(low)
    main_ids: list[str] = []
    except_ids: list[str] = []
    first_main: int | None = None
    for did, mention in found:
        if did in _TOO_GENERIC_DIAGNOSES:
            continue
        for pos in _positions(low, mention.lower()):
            if re.search(
                r"(?:therap\w*|treatment|chemotherapy|radiotherapy|surgery|resection)\s+for\s+(?:the\s+)?"
                r"(?:current\s+|study\s+|this\s+)?(?:[\w/-]+\s+){0,3}$|\bif (?:in )?(?:the )?$",
                low[max(0, pos - 60) : pos],
            ):
                continue  # "prior chemotherapy for stage IV adenocarcinoma": a therapy setting
            excepted = any(a <= pos < b for a, b in spans)
            target = except_ids if excepted else main_ids
            if did not in target:
                target.append(did)
            if not excepted and (first_main is None or pos < first_main):
                first_main = pos
    except_ids = [d for d in except_ids if d not in main_ids]
    out: list[tuple] = []
    if main_ids:
        pol = c.polarity_plain(text, first_main or 0)
        out.append(("histology", pol, {"diagnoses": main_ids}))
        if except_ids and pol == "require":
            # an inclusion line listing alternatives never excludes one of them: when a listed
            # diagnosis falls under an excepted one ("solid tumor (other than glioma) ... or
            # glioblastoma"), the exception is only a sub-group rule (NOT_MET -> UNKNOWN)
            overlap = any(_safe_is_a(vocab, m, e) for m in main_ids for e in except_ids)
            out.append(
                ("histology", "exclude", {"diagnoses": except_ids}, {"conditional": overlap})
            )
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
    # "Patients with resectable brain metastases must be undergoing planned resection": the
    # brain metastases are the subject of a condition, not a requirement to have them
    subject = bool(
        re.search(
            r"\b(?:patients?|participants?|subjects?|those|individuals)\s+(?:with|who have)\s+"
            r"(?:[\w-]+\s+){0,3}$",
            c.s[max(0, m.start() - 60) : m.start()],
        )
        and re.match(
            r"\s*(?:\([^)]*\)\s*)?,?\s*(?:\w+\s+){0,3}?(?:must|should|shall|need|needs|are required|"
            r"is required|will|may|can|are eligible|are allowed)\b",
            c.s[m.end() :],
        )
    )
    if (
        pol == "require"
        and c.section == "inclusion"
        and (
            allowed
            or subject
            or re.search(r"\b(?:if|provided|in the case of|for patients with|may)\b", c.s)
        )
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


# --- biomarkers ---------------------------------------------------------------------------
# gene -> spelling regex. Symbols are matched case-sensitively (so "eGFR", the kidney
# filtration rate, and "alkaline" never read as EGFR / ALK); written-out names are not.
# Short symbols that are also English or other abbreviations (MET, RET, KIT) need an
# alteration word right after them.
_GENE_SPELLINGS: dict[str, str] = {
    "ALK": r"\bALK\b|(?i:\banaplastic lymphoma kinase\b)",
    "ROS1": r"\bROS-? ?1\b|(?i:\bc-ros oncogene 1\b)",
    "NTRK": r"\bNTRK ?[123]?\b|(?i:\bneurotrophic tyrosine receptor kinase\b)",
    "BRAF": r"\bBRAF\b",
    "EGFR": r"\bEGFR\b|(?i:\bepidermal growth factor receptor\b)(?!\s*\(?e?gfr\)?\s*(?:>|<|>=|<=))",
    "HER2": r"\bHER-? ?2\b|\bERBB2\b|\bHER2/neu\b",
    "KRAS": r"\bK-?RAS\b",
    "NRAS": r"\bN-?RAS\b",
    "IDH1": r"\bIDH-?1\b|\bIDH1/2\b",
    "IDH2": r"\bIDH-?2\b|\bIDH1/2\b",
    "MSI": r"\bMSI-?H(?:igh|i)?\b|\bMSI\b|\bdMMR\b|(?i:\bmicrosatellite instab\w*|\bmismatch repair[- ]deficien\w*"
    r"|\bdeficient mismatch repair|\bMMR[- ]deficien\w*)",
    "PD-L1": r"\bPD-? ?L1\b|(?i:\bprogrammed (?:cell )?death[- ]ligand[- ]1\b)",
    "SMARCB1": r"\bSMARCB1\b|\bINI-?1\b",
    "MDM2": r"\bMDM2\b",
    "CDK4": r"\bCDK4\b(?!/6)",
    "MET": r"\bc-?MET\b|\bMET\b(?=\s*(?:exon|amplif|fusion|alteration|mutation|overexpress|14|gene))",
    "RET": r"\bRET\b(?=\s*(?:gene\s+)?(?:fusion|rearrange|mutation|alteration))",
    "FGFR": r"\bFGFR ?[1-4]?\b",
    "KIT": r"\bc-?KIT\b(?!\s*inhib)|\bKIT\b(?=\s*(?:exon|mutation|positive|negative))",
    "PDGFRA": r"\bPDGFRA\b",
    "BRCA": r"\bBRCA ?[12]?(?:/2)?m?\b",
    "TP53": r"\bTP53\b",
    "TMB": r"\bTMB\b|(?i:\btumou?r mutational burden\b)",
    "H3K27M": r"\bH3 ?K27M\b",
}
_GENE_RE = re.compile("|".join(f"(?P<g{i}>{rx})" for i, rx in enumerate(_GENE_SPELLINGS.values())))
_GENE_BY_GROUP = {f"g{i}": g for i, g in enumerate(_GENE_SPELLINGS)}
_MARKER_CUE_RE = re.compile(
    r"\b(?:mutat\w*|mutant|rearrange\w*|fusions?|translocat\w*|amplif\w*|positiv\w*|negativ\w*|"
    r"wild[- ]?type|wt|overexpress\w*|expression|deficien\w*|high|loss|lost|deleted|deletions?|"
    r"insertions?|exon|alterations?|altered|aberrations?|variants?|skipping|harbou?r\w*|"
    r"[A-Z]\d{2,4}[A-Z]|driver|sensiti[sz]ing|activating|status|proficient|tps|cps|ihc\s*[0-3]\+)\b"
    r"|[+-](?![\w])|\d\+",
    _I,
)
_MARKER_NEG_STATUS_RE = re.compile(
    r"\b(?:negative|wild[- ]?type|wt|not (?:detected|amplified|rearranged|mutated)|"
    r"non-?(?:amplified|mutated)|unmutated|retained|proficient|mss|msi-?l(?:ow)?|pmmr)\b"
    r"|^\s*-(?![\w])|^\s*\(?-\)?(?![\w])",
    _I,
)
_MARKER_THERAPY_RE = re.compile(
    r"^[\s-]*(?:tkis?|inhibit\w*|targeted|targeting|directed|antibod\w*|therap\w*|agents?|drugs?|"
    r"tyrosine kinase|kinase inhibit\w*|"
    r"blockade|blocking|antagonists?|[\w-]*mabs?|adcs?|pathways?|receptor\s+(?:tyrosine|antagonist|"
    r"inhibit|blocker))\b"
    r"|^\s*(?:and|or|/|,)\s*(?:[\w-]+\s*(?:and|or|/|,)\s*){0,3}[\w-]+\s*(?:tkis?|inhibitors?|"
    r"targeted|directed|antibod\w*|therap\w*)\b",
    _I,
)
_MARKER_THERAPY_BEFORE_RE = re.compile(
    r"(?:\banti-?\s*|\btargeting (?:the )?|\btarget\w* (?:against )?|\bagainst |/)$", _I
)
_MARKER_TESTING_RE = re.compile(
    r"\b(?:available|availability)\b|\bfor (?:central |local )?(?:testing|determination|review|"
    r"analysis|assessment|confirmation)\b|\bdetermination of\b|\btesting (?:of|for)\b"
    r"|\bsamples?\b[^.;]{0,40}\bfor\b|\b(?:will|must|should) be (?:tested|assessed|collected)\b"
    r"|\bis not required\b|\bnot (?:need|required) to be tested\b|\bmust be documented\b",
    _I,
)
_VARIANT_RE = re.compile(
    r"\b[A-Z]\d{2,4}(?:[A-Z]|X|del|ins|fs)\b|\bexon ?\d{1,2}(?:\s+(?:deletion|insertion|skipping|"
    r"mutation)s?)?|\b(?:19|20) ?(?:del|ins)\b|\bex ?\d{1,2} ?(?:del|ins)\b",
)
_ALTERATION_WORDS = (
    ("rearrangement", r"rearrange|translocat"),
    ("fusion", r"fusion"),
    ("amplification", r"amplif"),
    ("overexpression", r"overexpress|ihc\s*3\+|expression"),
    ("loss", r"\bloss\b|\blost\b|deficien"),
    ("high", r"-?high\b|msi-?h\b|\bdmmr\b"),
    ("mutation", r"mutat|mutant|sensiti[sz]ing|activating|insertion|deletion|skipping|variant"),
    ("positive", r"positiv|\+"),
)


# substrings one of which every ``_GENE_SPELLINGS`` match contains (a cheap prefilter: the
# alternation above is the costliest regex of a line)
_GENE_NEEDLES = (
    "ALK", "ROS", "NTRK", "BRAF", "EGFR", "HER", "ERBB", "RAS", "IDH", "MSI", "MMR", "PD",
    "SMARCB", "INI", "MDM2", "CDK4", "MET", "RET", "FGFR", "KIT", "PDGFRA", "BRCA", "TP53",
    "TMB", "H3",
)  # fmt: skip
_GENE_NEEDLES_LOW = (
    "anaplastic lymphoma", "c-ros", "neurotrophic", "epidermal growth", "microsatellite",
    "mismatch", "programmed", "mutational burden",
)  # fmt: skip


_LEVEL_RE = re.compile(r"(?P<op>>=|<=|>|<)\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<pct>%)?")
_THERAPY_VERB_RE = re.compile(
    r"\b(?:treatment with|treated with|therapy with|received|receiving|(?:have|has|had) used|"
    r"exposure to|exposed to)\b",
    _I,
)
_MARKER_DRUG_AFTER_RE = re.compile(r"\b(?:drugs?|inhibitors?|tkis?|agents?)\b", _I)
_MARKER_ANY_STATUS_RE = re.compile(
    r"\bboth\b[^.;]{0,80}\b(?:are|is) (?:eligible|allowed|permitted)|\bregardless of\b|"
    r"\birrespective of\b|\bany (?:\w+ )?status\b",
    _I,
)
_ENUMERATED_RE = re.compile(
    r"\(\s*1\s*\)[^()]{3,}\(\s*2\s*\)|\b2 of the following\b|\btwo of the following\b"
)


def _in_negative_parenthesis(text: str, pos: int) -> bool:
    """True inside "(...)" opened right after a negative status: "RAS wild type status (KRAS
    exons 2, 3 and 4 and NRAS exons 2, 3, and 4)"."""
    op = text.rfind("(", 0, pos)
    if op < 0 or text.rfind(")", 0, pos) > op:
        return False
    return bool(
        re.search(
            r"\b(?:negative|wild[- ]?type|wt)\s*(?:status)?\s*$", text[max(0, op - 40) : op], _I
        )
    )


def _biomarker(c: _Ctx) -> list[tuple]:
    """Required / excluded molecular findings ("ALK rearrangement", "EGFR wild-type")."""
    text = c.plain
    if not any(n in text for n in _GENE_NEEDLES) and not any(n in c.s for n in _GENE_NEEDLES_LOW):
        return []
    mentions: list[tuple[int, int, str]] = []
    for m in _GENE_RE.finditer(text):
        gene = _GENE_BY_GROUP[m.lastgroup]
        after = text[m.end() : m.end() + 40]
        before = text[max(0, m.start() - 20) : m.start()]
        if _MARKER_THERAPY_RE.match(after) or _MARKER_THERAPY_BEFORE_RE.search(before):
            continue  # "EGFR-TKI", "anti-HER2 therapy", "PD-1/PD-L1 inhibitors": a therapy
        if _THERAPY_VERB_RE.search(text) and _MARKER_DRUG_AFTER_RE.search(
            text[m.end() : m.end() + 80]
        ):
            continue  # "treatment with any other EGFR or HER2 exon 20 ... selective inhibitor"
        if re.search(
            r"\b(?:have|has|had) (?:been treated|used|received)\b",
            text[m.end() : m.end() + 120],
            _I,
        ):
            continue  # "EGFR rare mutations ... have been treated with afatinib": a therapy history
        if gene == "EGFR" and re.match(r"[\s)]*(?:\(?e?gfr\)?\s*)?(?:>|<|>=|<=|=)\s*\d", after, _I):
            continue  # "EGFR > 30 mL/min": a misspelt eGFR (kidney function)
        if gene in ("IDH1", "IDH2") and "/" in m.group(0):
            mentions.append((m.start(), m.end(), "IDH1"))
            mentions.append((m.start(), m.end(), "IDH2"))
            continue
        mentions.append((m.start(), m.end(), gene))
    if not mentions:
        return []
    if _MARKER_ANY_STATUS_RE.search(text):
        return []  # "both dMMR and MMR-proficient patients are eligible": no restriction
    if _MARKER_TESTING_RE.search(text) and not re.search(
        r"\b(?:positive|negative|confirm\w*|documented|harbou?r\w*|known|presence)\b", text, _I
    ):
        return []  # "archival tissue for determination of FGFR2 status": a sample requirement
    # each marker's own phrase: from its mention up to the next mention (or 60 characters)
    markers: list[dict] = []
    any_cue = False
    # "negative molecular testing for EGFR mutations and ALK rearrangements": a status
    # before the first gene covers the list
    head = text[max(0, mentions[0][0] - 60) : mentions[0][0]]
    head = head[max(head.rfind(";"), head.rfind(". "), -1) + 1 :]
    head_negative = bool(re.search(r"\bnegative (?:[\w-]+ ){0,3}(?:for|of)\s*$", head, _I))
    for i, (start, end, gene) in enumerate(mentions):
        nxt = mentions[i + 1][0] if i + 1 < len(mentions) else len(text)
        phrase = text[end : min(nxt, end + 60)]
        # a cue before the gene counts when the gene has no phrase of its own
        # ("negative molecular testing for EGFR", "sensitizing mutations in EGFR")
        lead = text[max(0, start - 40) : start]
        lead = lead[max(lead.rfind(";"), lead.rfind("."), -1) + 1 :]
        # in "EGFR, ALK gene wild type" the status after the last gene covers the list
        tail = phrase
        j = i
        while (
            not _MARKER_CUE_RE.search(tail)
            and j + 1 < len(mentions)
            and re.fullmatch(
                r"[\s,/]*(?:and|or|and/or|/)?[\s,/]*", text[mentions[j][1] : mentions[j + 1][0]]
            )
        ):
            j += 1
            nj = mentions[j + 1][0] if j + 1 < len(mentions) else len(text)
            tail = text[mentions[j][1] : min(nj, mentions[j][1] + 60)]
        cue = _MARKER_CUE_RE.search(tail) or _MARKER_CUE_RE.search(lead)
        if cue is None:
            continue
        any_cue = True
        negative = bool(
            _MARKER_NEG_STATUS_RE.search(tail[:30])
            or head_negative
            # "RAS wild type status (KRAS exons 2, 3 and 4 ...)"
            or _in_negative_parenthesis(text, start)
        )
        alteration = None
        var = _VARIANT_RE.search(tail[:40])
        level = _LEVEL_RE.search(tail[:50]) if gene in ("PD-L1", "TMB") else None
        if level:
            # "PD-L1 TPS < 1%" is a negative result; "TPS >= 50%" a level to verify
            op, num = level.group("op"), float(level.group("num"))
            if op in ("<", "<=") and num <= 1:
                negative = True
            elif op in (">", ">=") and num <= 1:
                alteration = "positive"  # "PD-L1 >= 1%" is what "PD-L1 positive" means
            else:
                alteration = f"{op} {level.group('num')}{'%' if level.group('pct') else ''}"
        if alteration or negative and level:
            pass
        elif var:
            alteration = var.group(0)
        else:
            low = (tail[:40] + " " + lead[-25:]).lower()
            for name, rx in _ALTERATION_WORDS:
                if re.search(rx, low):
                    alteration = name
                    break
        marker = {"gene": gene, "alteration": alteration, "negative": negative, "start": start}
        if not any(x["gene"] == gene and x["negative"] == negative for x in markers):
            markers.append(marker)
    if not any_cue or not markers:
        return []
    out: list[tuple] = []
    for negative in (False, True):
        group = [x for x in markers if x["negative"] == negative]
        if not group:
            continue
        pol = c.polarity_plain(text, group[0]["start"])
        if negative:
            pol = "exclude" if pol == "require" else "require"
        vals = {
            "markers": [{"gene": x["gene"], "alteration": x["alteration"]} for x in group],
            "genes": [x["gene"] for x in group],
        }
        # "(1) ... ; (2) IDH1 mutated solid tumor; or (3) ...": one alternative's finding
        # is not required of every patient (NOT_MET -> UNKNOWN)
        out.append(("biomarker", pol, vals, {"conditional": bool(_ENUMERATED_RE.search(text))}))
    return out


# --- cohort lines ---------------------------------------------------------------------------
# "Patients with GBM or anaplastic astrocytoma must be ...", "Primary tumors of bone including
# Ewing's sarcoma ... may only be enrolled if ...", "For patients with GIST: ...": the line's
# requirements apply to the named histologies only.
_COHORT_SUBJECT_RES = [
    re.compile(
        r"^\s*(?:note:\s*)?(?:(?:for|in)\s+)?(?:all\s+)?(?:patients?|participants?|subjects?|those|"
        r"individuals|children|adults)\s+(?:with|who have|diagnosed with|whose (?:tumou?rs?|disease) "
        r"(?:is|are))\s+(?P<subj>[^:;.]{3,160}?)\s*(?:[,:]|\b(?:must|should|shall|will need|needs? to|"
        r"are required|is required|may only|can only|may be enrolled|may enroll|are eligible only|"
        r"are only eligible|will be eligible only|only if)\b)",
        _I,
    ),
    re.compile(
        r"^\s*(?P<subj>[^:;.]{3,160}?)\s+(?:may|can|will)\s+(?:only\s+be|be\s+(?:enrolled|included|"
        r"eligible)\s+only)\b",
        _I,
    ),
    re.compile(
        r"^\s*(?:for|in)\s+(?P<subj>[^:;,.]{3,80}?)\s*(?:cohorts?|patients|arms?)?\s*[:]", _I
    ),
]
_CONFIRM_CUE_RE = re.compile(
    r"\bhistolog\w*|\bcytolog\w*|\bpatholog\w*|\bconfirm\w*|\bdiagnosis of\b|\bproven\b|\bdocumented\b",
    _I,
)


def _cohort(c: _Ctx) -> list[str] | None:
    """Diagnosis ids of a cohort subject that opens the line, or None (see above)."""
    if c.vocab is None or c.section != "inclusion":
        return None
    for rx in _COHORT_SUBJECT_RES:
        m = rx.match(c.plain)
        if not m:
            continue
        subj = m.group("subj")
        if _CONFIRM_CUE_RE.search(subj) or _CONFIRM_CUE_RE.search(c.plain[m.end() : m.end() + 40]):
            return None  # "patients with histologically confirmed X must ...": a requirement
        ids = [d for d, _ in _find_diagnoses(c.vocab, subj) if d not in _TOO_GENERIC_DIAGNOSES]
        if ids:
            return list(dict.fromkeys(ids))
    return None


_DIAG_CACHE: OrderedDict[str, list] = OrderedDict()
_DIAG_CACHE_MAX = 50000
_DIAG_VOCAB: list[Any] = [None]


def _find_diagnoses(vocab: Any, text: str) -> list[tuple[str, str]]:
    """``vocab.find_diagnoses`` memoized per text (lines repeat across trials: "Pregnant or
    breastfeeding" ...). The cache is dropped when another vocabulary object is used."""
    if _DIAG_VOCAB[0] is not vocab:
        _DIAG_CACHE.clear()
        _DIAG_VOCAB[0] = vocab
    hit = _DIAG_CACHE.get(text)
    if hit is None:
        hit = vocab.find_diagnoses(text)
        _DIAG_CACHE[text] = hit
        if len(_DIAG_CACHE) > _DIAG_CACHE_MAX:
            _DIAG_CACHE.popitem(last=False)
    return hit


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
    found: list[tuple] = []
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
    found += _biomarker(c)
    if not found:
        return [Criterion(section, text, "unparsed", c.base, {}, context=context)]
    crits = []
    for item in found:
        crit = Criterion(section, text, item[0], item[1], item[2], context=context)
        for k, v in (item[3] if len(item) > 3 else {}).items():
            setattr(crit, k, v)
        crits.append(crit)
    if section == "exclusion" and any(x.type == "biomarker" for x in crits):
        # "HER2-positive gastric carcinoma" / "NSCLC without known ALK rearrangement" in the
        # exclusion section: the histology only qualifies the molecular finding
        crits = [x for x in crits if not (x.type == "histology" and x.polarity == "exclude")]
    cohort = _cohort(c)
    if cohort:
        for crit in crits:
            if (
                crit.type == "histology"
                and crit.polarity == "require"
                and set(crit.values.get("diagnoses") or []) <= set(cohort)
            ):
                crit.values["cohort"] = True
            crit.applies_to = list(cohort)
    if any(x.type in _SCOPED_TYPES for x in crits):
        scope = _disease_scope(vocab, text, context, section)
        for crit in crits:
            if crit.type in _SCOPED_TYPES and scope:
                crit.disease_scope = scope
    _group_alternatives(crits, c.s)
    return crits


# Types whose criterion is about the disease the line names: exclusion "Any prior chemotherapy
# for lung cancer", "Metastatic breast cancer", "NSCLC without known ALK rearrangement";
# inclusion "No prior radiation or chemotherapy for endometrial cancer", a line under the
# heading "Renal Cell Carcinoma", "Colorectal cancer (CRC) - participants must have received
# ...". Said of another cancer, the patient's therapy, extent or marker does not fail the line:
# NOT_MET becomes UNKNOWN. An inclusion line that itself requires the cancer ("Previously
# untreated NSCLC") is not scoped: the patient does not meet that line anyway.
_SCOPED_TYPES = frozenset(
    {
        "prior_therapy_excluded",
        "prior_therapy_required",
        "disease_extent",
        "measurable_disease",
        "biomarker",
    }
)
# "for (the treatment of) (their) <disease>", or "<disease> (CRC) -" / "<disease>:" opening a line
_SCOPE_BEFORE_RE = re.compile(
    r"\bfor\s+(?:the\s+)?(?:treatment\s+of\s+)?(?:this\s+|their\s+|his\s+|her\s+|the\s+)?"
    r"(?:[\w-]+\s+){0,5}$",
    _I,
)
_SCOPE_OPENING_RE = re.compile(r"\s*(?:\([^)]{1,20}\)\s*)?(?:[:\u2013-]|cohort\b)", _I)


def _disease_scope(vocab: Any, text: str, context: str | None, section: str) -> list[str] | None:
    """Vocabulary ids of the cancers a line's criteria are said of (see ``_SCOPED_TYPES``):
    every cancer the exclusion line or its parent line names; in the inclusion section the
    parent line's, and the line's own only in a therapy setting ("for X") or as an opening
    subject ("X:", "X (CRC) - ..."). Generic "cancer" is left out; None when none."""
    ids: list[str] = []
    found = list(_find_diagnoses(vocab, context)) if context else []
    low = text.lower()
    for did, mention in _find_diagnoses(vocab, text):
        if section == "exclusion":
            found.append((did, mention))
            continue
        for pos in _positions(low, mention.lower()):
            if _SCOPE_BEFORE_RE.search(low[max(0, pos - 60) : pos]) or (
                not low[:pos].strip(" -*\u2022")
                and _SCOPE_OPENING_RE.match(low[pos + len(mention) :])
            ):
                found.append((did, mention))
                break
    for did, _ in found:
        if did not in _TOO_GENERIC_DIAGNOSES and did not in ids:
            ids.append(did)
    return ids or None


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
_CACHE: OrderedDict[tuple[str, str | None, str], ParsedTrial] = OrderedDict()
_CACHE_MAX = 20000


_VOCAB_MEMO: dict[str | None, Any] = {}


def _default_vocab() -> Any:
    """The bundled vocabulary, looked up once per ``TRIALMATCH_CRITERIA`` setting
    (``load_vocab`` itself checks the folder on disk on every call)."""
    import os

    key = os.environ.get("TRIALMATCH_CRITERIA")
    got = _VOCAB_MEMO.get(key)
    if got is None:
        from matcher.vocab import load_vocab

        got = _VOCAB_MEMO[key] = load_vocab()
    return got


def parse_trial(record: dict, vocab: Any = None) -> ParsedTrial:
    """Parse one record (v2 study dict) into a ``ParsedTrial``.

    Cached by (NCT id, last update, ``record_digest``) when the default vocabulary is used,
    so the batch job parses each record version once, and a record whose content changed
    without a new last-update date is parsed again. Raises ``RecordError`` only for a record without NCT
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
            key = (str(nct).upper(), lu, record_digest(record))
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


def record_digest(record: dict) -> str:
    """Content hash of the parts of a record a ``ParsedTrial`` is built from (the protocol
    section and the derived MeSH browse modules; not results). Part of the parse cache key,
    so a record edited without a new last-update date is parsed again."""
    ps = record.get("protocolSection") if isinstance(record, dict) else None
    derived = record.get("derivedSection") if isinstance(record, dict) else None
    browse = (
        {k: v for k, v in derived.items() if k.endswith("BrowseModule")}
        if isinstance(derived, dict)
        else None
    )
    blob = json.dumps([ps, browse], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.blake2b(blob.encode("utf-8"), digest_size=12).hexdigest()


def clear_cache() -> None:
    """Forget cached parses (tests; a long-running process after a vocabulary change)."""
    _CACHE.clear()
    _DIAG_CACHE.clear()
    _VOCAB_MEMO.clear()


def _is_oncology(trial: Trial, vocab: Any) -> bool:
    text = " ".join(
        [*trial.conditions, *trial.keywords, trial.title or "", trial.official_title or ""]
    )
    if _ONCO_RE.search(text):
        return True
    return bool(vocab is not None and vocab.find_diagnoses(text))


_CONDITIONAL_LINE_RE = re.compile(
    r"\s*(?:for|in|if|when)\b|\s*(?:sub-?study|cohort|part|arm|group|phase)s?\s*[\w.-]{0,6}(?:\s*(?:,|and|&|/)\s*[\w.-]{1,6})*"
    r"\s*(?:only)?\s*[:(\uff1a]"
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
    by_line: dict[int, list[Criterion]] = {}
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
            c.conditional = c.conditional or (conditional and not c.applies_to)
            if (
                c.type == "histology"
                and c.polarity == "require"
                and c.section == "inclusion"
                and not c.values.get("cohort")
            ):
                c.group = "histology:require"  # several required histologies are alternatives
        parent = line.parent
        if (
            parent is not None
            and line.section == "inclusion"
            and _CTX_ANYOF_RE.search(normalize(parent.text))
        ):
            gid = group_of.setdefault(id(parent), f"any:{len(group_of) + 1}")
            for c in parsed:
                # an unparsed alternative ("Is ineligible for a protocol of higher priority") is
                # UNKNOWN, so the typed alternatives failing does not make the line NOT_MET
                if c.group is None:
                    c.group = gid
        by_line[id(line)] = parsed
        crits.extend(parsed)
    _histology_sublists(lines, by_line)
    return ParsedTrial(trial=trial, criteria=crits, n_lines=n_lines, n_typed_lines=n_typed)


_SUBLIST_HEADER_RE = re.compile(
    r"\b(?:following|these|below)\b[^:]{0,40}\b(?:histolog\w*|histotypes?|subtypes?|tumou?r types?|"
    r"diagnos\w+|sarcomas|tumou?rs|cancers|diseases)\b",
    _I,
)


def _histology_sublists(lines: list, by_line: dict[int, list[Criterion]]) -> None:
    """A header such as "The following histologies may be enrolled ONLY if refractory to
    anthracycline-based chemotherapy:" over a sub-list of histologies: the header's criteria
    apply to the listed histologies only (``applies_to``); they are then evaluated for those
    patients, reported as not applying to others, and UNKNOWN when the subtype is unknown."""
    for line in lines:
        crits = by_line.get(id(line))
        if not crits or not line.children or not _SUBLIST_HEADER_RE.search(line.plain):
            continue
        own = [c for c in crits if c.type not in ("unparsed", "histology")]
        if not own:
            continue
        ids: list[str] = []
        other: list[str] = []
        ok = True
        for child in line.children:
            cc = by_line.get(id(child)) or []
            types = {c.type for c in cc}
            if types <= {"histology"} and cc:
                for c in cc:
                    if c.polarity == "require":
                        ids.extend(d for d in c.values.get("diagnoses") or [] if d not in ids)
            elif types == {"unparsed"}:
                other.append(child.text.strip(" ,.;"))
            else:
                ok = False
        if not ok or not ids:
            continue
        for c in own:
            c.applies_to = ids
            c.applies_note = ", ".join(other) or None
            c.conditional = False


# =========================================================================================
# Evaluation
# =========================================================================================
def evaluate(patient: Any, parsed: ParsedTrial, vocab: Any = None) -> list[Verdict]:
    """One ``Verdict`` per criterion of ``parsed`` (same order).

    Missing patient data gives ``UNKNOWN``, never ``NOT_MET``. Pure: reads only the patient
    and the parsed trial (and the vocabulary for class membership and diagnosis lineage).
    For many pairs use ``Evaluator`` (same verdicts, memoized).
    """
    if vocab is None:
        vocab = _default_vocab()
    return _combine([_criterion_verdict(patient, c, vocab) for c in parsed.criteria])


# Patient fields each criterion type reads (the memo key of ``Evaluator``). A criterion with
# ``applies_to`` or ``disease_scope`` also reads ``_COHORT_FIELDS``. Keep in step with the ``_ev_*`` functions:
# tests/test_eligibility.py evaluates through a guard that refuses any other attribute.
FIELDS_BY_TYPE: dict[str, tuple[str, ...]] = {
    "performance_status": ("ecog", "ecog_converted_from", "karnofsky", "lansky"),
    "age": ("age",),
    "sex": ("sex",),
    "histology": ("diagnosis", "diagnosis_name", "diagnosis_lineage"),
    "disease_extent": ("metastatic", "stage"),
    "measurable_disease": ("measurable_disease",),
    "prior_therapy_required": ("prior_therapies",),
    "prior_therapy_excluded": ("prior_therapies",),
    "max_prior_lines": ("prior_therapies",),
    "brain_metastases": ("brain_metastases",),
    "pregnancy": ("sex", "pregnant"),
    "contraception": (),
    "organ_function": ("labs",),
    "washout": (),
    "biomarker": ("biomarkers",),
    "unparsed": (),
}
_COHORT_FIELDS = ("diagnosis", "diagnosis_name", "diagnosis_lineage")


def _frozen(x: Any) -> Any:
    """A hashable stand-in for a patient field value."""
    if isinstance(x, dict):
        return tuple(sorted((k, _frozen(v)) for k, v in x.items()))
    if isinstance(x, list | tuple | set | frozenset):
        items = [_frozen(v) for v in x]
        return tuple(sorted(items, key=repr)) if isinstance(x, set | frozenset) else tuple(items)
    if hasattr(x, "__dataclass_fields__"):
        return (type(x).__name__, *(_frozen(getattr(x, f)) for f in x.__dataclass_fields__))
    return x


class Evaluator:
    """Memoizing ``evaluate``: ``Evaluator().evaluate(patient, parsed)`` gives verdicts equal
    to ``evaluate(patient, parsed)``, for the batch job's millions of pairs.

    Each criterion's verdict is kept per value of the patient fields its type reads
    (``FIELDS_BY_TYPE``), so every patient with ECOG 1 shares the ECOG verdicts of a trial.
    Verdict objects are shared between pairs: treat them as immutable. Contract: a patient
    object is not modified while it is being evaluated (its facts are read once per run of
    consecutive calls with the same object; call ``forget_patient()`` after changing one).
    Parsed trials are held by the memo, so their ids stay valid; when more than
    ``max_entries`` verdicts are memoized the memo starts afresh.
    """

    def __init__(self, vocab: Any = None, max_entries: int = 2_000_000):
        self.vocab = vocab if vocab is not None else _default_vocab()
        self.max_entries = max_entries
        self._field_groups: dict[tuple[str, ...], int] = {}
        self._trials: dict[int, tuple] = {}
        self._interned: dict[tuple, int] = {}
        self._patient: Any = None
        self._fids: list[int | None] = []
        self.entries = 0
        self.hits = 0
        self.misses = 0

    def forget_patient(self) -> None:
        """Drop the facts read from the last patient (after modifying that object)."""
        self._patient = None
        self._fids = []

    def _group(self, c: Criterion) -> int:
        fields = FIELDS_BY_TYPE.get(c.type, ())
        if c.applies_to or c.disease_scope:
            fields = fields + _COHORT_FIELDS
        g = self._field_groups.get(fields)
        if g is None:
            g = self._field_groups[fields] = len(self._field_groups)
        return g

    def _trial(self, parsed: ParsedTrial) -> tuple:
        t = self._trials.get(id(parsed))
        if t is None or t[0] is not parsed:
            crits = parsed.criteria
            groups: dict[str, list[int]] = {}
            for i, c in enumerate(crits):
                if c.group:
                    groups.setdefault(c.group, []).append(i)
            gs = [self._group(c) for c in crits]
            t = (parsed, gs, [{} for _ in crits], bool(groups), sorted(set(gs)))
            self._trials[id(parsed)] = t
        return t

    def _fid(self, patient: Any, g: int) -> int:
        fields = next(f for f, i in self._field_groups.items() if i == g)
        facts = tuple(_frozen(getattr(patient, f, None)) for f in fields)
        got = self._interned.get(facts)
        if got is None:
            got = self._interned[facts] = len(self._interned)
        return got

    def evaluate(self, patient: Any, parsed: ParsedTrial) -> list[Verdict]:
        """Same result as ``evaluate(patient, parsed)``."""
        _, groups, memos, has_groups, distinct = self._trial(parsed)
        if patient is not self._patient:
            self._patient = patient
            self._fids = []
        fids = self._fids
        if len(fids) < len(self._field_groups):
            fids.extend([None] * (len(self._field_groups) - len(fids)))
        for g in distinct:
            if fids[g] is None:
                fids[g] = self._fid(patient, g)
        out = [memo.get(fids[g]) for g, memo in zip(groups, memos)]  # noqa: B905
        missed = 0
        if any(v is None for v in out):
            crits = parsed.criteria
            for i, v in enumerate(out):
                if v is None:
                    out[i] = memos[i][fids[groups[i]]] = _criterion_verdict(
                        patient, crits[i], self.vocab
                    )
                    missed += 1
            self.misses += missed
            self.entries += missed
        self.hits += len(out) - missed
        if self.entries > self.max_entries:
            self._trials.clear()
            self._interned.clear()
            self.forget_patient()
            self.entries = 0
        return _combine(out) if has_groups else out


def _combine(verdicts: list[Verdict]) -> list[Verdict]:
    """Alternatives: a group member's NOT_MET stands only when every member is NOT_MET.
    Builds new ``Verdict`` objects for the changed ones (the inputs may be shared)."""
    groups: dict[str, list[int]] = {}
    for i, v in enumerate(verdicts):
        if v.criterion.group:
            groups.setdefault(v.criterion.group, []).append(i)
    if not groups:
        return verdicts
    out = list(verdicts)
    for members in groups.values():
        if len(members) < 2 or all(verdicts[i].verdict == NOT_MET for i in members):
            continue
        met = any(verdicts[i].verdict == MET for i in members)
        for i in members:
            v = verdicts[i]
            if v.verdict == NOT_MET:
                out[i] = Verdict(
                    v.criterion,
                    MET if met else UNKNOWN,
                    v.reason
                    + (
                        "; not needed: an alternative criterion is met"
                        if met
                        else "; alternatives exist (one of them may apply): verify"
                    ),
                )
    return out


_ESCAPE_RE = re.compile(
    r"\bor if (?:the )?(?:patient|participant|subject)s?\b|\b(?:refuses?|refused|declines?|declined)"
    r"\b[^.;]{0,30}\b(?:standard|treatment|therapy|chemotherapy|surgery)|\bor (?:is|are) (?:ineligible|"
    r"not (?:a )?candidates?|intolerant)\b|\bunless\b",
    _I,
)
# A required prior therapy with a way out: "after failure of anthracyclines ... or patients
# unsuited to receive these drugs"
_THERAPY_ESCAPE_RE = re.compile(
    r"\bor (?:(?:patients?|participants?|subjects?) )?(?:(?:who|that) (?:are|were) )?"
    r"(?:unsuited|unfit|not suitable|not fit|ineligible|intolerant)\b",
    _I,
)


def _criterion_verdict(p: Any, c: Criterion, vocab: Any) -> Verdict:
    """The verdict on one criterion alone (before alternatives are combined)."""
    if c.applies_to:
        cohort = _cohort_status(p, c.applies_to, vocab)
        names = ", ".join(_diag_name(vocab, i) for i in c.applies_to)
        note = f"; the list also names {c.applies_note}" if c.applies_note else ""
        if c.type == "histology" and c.values.get("cohort"):
            if cohort == "in":
                return Verdict(
                    c,
                    MET,
                    f"{p.diagnosis_name or p.diagnosis}: this line's conditions apply ({names})",
                )
            if cohort == "out":
                return Verdict(
                    c,
                    MET,
                    f"line applies to {names} only; not to {p.diagnosis_name or p.diagnosis}{note}",
                )
            why = "diagnosis not recorded" if cohort == "none" else "subtype not recorded"
            return Verdict(c, UNKNOWN, f"line applies to {names} only; {why}: verify")
        if cohort == "out":
            return Verdict(
                c,
                MET,
                f"does not apply: for {names} only, not {p.diagnosis_name or p.diagnosis}{note}",
            )
    verdict, reason = _evaluate_one(p, c, vocab)
    if verdict == NOT_MET and c.disease_scope:
        scope = _cohort_status(p, c.disease_scope, vocab)
        if scope != "in":
            names = ", ".join(_diag_name(vocab, i) for i in c.disease_scope)
            who = p.diagnosis_name or p.diagnosis or "diagnosis not recorded"
            return Verdict(
                c, UNKNOWN, f"{reason}; the line concerns {names} (patient: {who}): verify"
            )
    if c.applies_to and cohort != "in" and verdict != MET:
        why = "diagnosis not recorded" if cohort == "none" else "subtype not recorded"
        return Verdict(c, UNKNOWN, f"{reason}; applies to {names} only, {why}: verify")
    if verdict == NOT_MET and c.source == "text":
        if c.conditional:
            return Verdict(
                c, UNKNOWN, reason + "; applies to a sub-group only (cohort / listed cases): verify"
            )
        if c.type != "organ_function" and (
            _ESCAPE_RE.search(c.text)
            or c.type == "prior_therapy_required"
            and _THERAPY_ESCAPE_RE.search(c.text)
        ):
            return Verdict(
                c,
                UNKNOWN,
                reason + "; the line allows an alternative (refusal / exception): verify",
            )
    if c.applies_to and cohort == "in" and verdict != UNKNOWN:
        reason += f" (applies to {names}: patient is {p.diagnosis_name or p.diagnosis})"
    return Verdict(c, verdict, reason)


def _cohort_status(p: Any, ids: list[str], vocab: Any) -> str:
    """Return "in" (the patient's diagnosis is one of ``ids`` or under one), "out", "broader" (the
    patient's diagnosis is an ancestor of one: subtype unknown) or "none" (not recorded)."""
    if not p.diagnosis:
        return "none"
    lineage = set(p.diagnosis_lineage or [p.diagnosis])
    if any(i in lineage or _safe_is_a(vocab, p.diagnosis, i) for i in ids):
        return "in"
    if any(_safe_is_a(vocab, i, p.diagnosis) for i in ids):
        return "broader"
    return "out"


def _evaluate_one(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    fn = _EVALUATORS.get(c.type)
    if fn is None:
        return UNKNOWN, "to review: criterion not checked automatically"
    try:
        return fn(p, c, vocab)
    except (KeyError, TypeError, ValueError) as exc:  # a vocabulary gap must not stop a batch
        return UNKNOWN, f"could not check ({exc.__class__.__name__}): verify"


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


def _ps_rel(polarity: str, inside: bool) -> str:
    """How a score relates to a stated range, worded for the verdict it gives."""
    if polarity == "require":
        return "within" if inside else "outside"
    return "in the excluded range" if inside else "not in the excluded range"


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
        if (c.polarity == "require") == inside:
            return MET, f"{name} {other} (same 0–100 scale) {_ps_rel(c.polarity, inside)} {crit}"
        return UNKNOWN, f"{name} {other} recorded, trial states {crit}: verify"
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
    age = _fmt(round(a, 1))
    if c.polarity == "require":
        return verdict, f"age {age} {'within' if inside else 'outside'} {crit}"
    # an exclusion such as "age > 85": say which side of it the patient is on
    span = _age_span(lo, hi, v.get("min_exclusive"), v.get("max_exclusive"))
    if inside:
        return verdict, f"age {age}: {span} ({src}), which the trial excludes"
    return verdict, f"age {age}: not {span} ({src})"


def _age_span(lo: float | None, hi: float | None, lo_excl: Any, hi_excl: Any) -> str:
    """Wording of an age range: "over 85", "85 or older", "under 18", "aged 18–75 y"."""
    if lo is not None and hi is None:
        return f"over {_fmt(lo)}" if lo_excl else f"{_fmt(lo)} or older"
    if hi is not None and lo is None:
        return f"under {_fmt(hi)}" if hi_excl else f"{_fmt(hi)} or younger"
    return f"aged {_range_text(lo, hi, ' y')}"


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
        return (
            UNKNOWN,
            f"disease not metastatic; trial requires {desc}: verify resectability/extent",
        )
    if "metastatic" in ext:
        if met:
            return NOT_MET, f"metastatic disease; trial excludes {desc}"
        return MET, f"disease not metastatic; trial excludes {desc}"
    return UNKNOWN, f"trial excludes {desc}: verify"


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
        named = [
            m
            for m in _BRAIN_METS_RE.finditer(c.text)
            if not re.search(
                r"\b(?:no|without|absence of)\s+(?:evidence of\s+|known\s+)?$",
                c.text[max(0, m.start() - 25) : m.start()],
                _I,
            )
        ]
        if named and all(
            _BRAIN_ACTIVE_RE.search(c.text[max(0, m.start() - 60) : m.start() + 8]) for m in named
        ):
            return (
                UNKNOWN,
                "brain metastases recorded; the trial excludes active / untreated / symptomatic "
                "ones only: verify",
            )
        if not named:
            return (
                UNKNOWN,
                "brain metastases recorded; the line excludes leptomeningeal disease or cord "
                "compression, not brain metastases as such: verify",
            )
        return NOT_MET, "brain metastases recorded; trial excludes them"
    if p.brain_metastases:
        return MET, "brain metastases recorded; trial requires them"
    if not _BRAIN_REQUIRED_RE.search(c.text) or _BRAIN_PERMISSIVE_RE.search(
        f"{c.text} {c.context or ''}"
    ):
        # "Patients with treated brain metastases may enrol", "CNS lesions cannot be target
        # lesions", a sub-list under "... eligible provided ...": permits, does not require
        return UNKNOWN, "no brain metastases recorded; the line may only permit them: verify"
    return NOT_MET, "no brain metastases recorded; trial requires them"


# Brain metastases named as such (not only leptomeningeal disease / cord compression).
_BRAIN_METS_RE = re.compile(
    r"\b(?:brain|cns|central nervous system|intracranial|cerebral|intra-cranial)\b[^.;]{0,30}"
    r"metasta|metasta\w*\s+(?:\w+\s+){0,3}(?:to|in|of)\s+(?:the\s+)?(?:brain|cns|central nervous)",
    _I,
)
_BRAIN_ACTIVE_RE = re.compile(
    r"\b(?:active|untreated|symptomatic|unstable|progressive|progressing|uncontrolled|new|"
    r"growing|severe|recurrent|not (?:controlled|stable))\b",
    _I,
)
# An explicit requirement ("must have at least one measurable brain metastasis").
_BRAIN_REQUIRED_RE = re.compile(
    r"\b(?:must|should|required?|need to)\b[^.;]{0,60}\b(?:brain|cns|intracranial)\b[^.;]{0,30}"
    r"metasta|\b(?:presence of|at least one|documented|confirmed|diagnosis of)\b[^.;]{0,40}"
    r"\b(?:brain|cns|intracranial)\b[^.;]{0,30}metasta",
    _I,
)
_BRAIN_PERMISSIVE_RE = re.compile(
    r"\b(?:eligible|permitted|allowed|may|can|cannot|provided|excluded|exclude)\b", _I
)


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
        return _ev_uln(c, name, val, unit, crit)
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


def _ev_uln(c: Criterion, name: str, val: float, unit: str, crit: str) -> tuple[str, str]:
    """A limit given as a multiple of ULN: MET only when it holds for the lowest plausible
    ULN (``CONSERVATIVE_ULN``); otherwise UNKNOWN. Never NOT_MET from an assumed ULN."""
    v = c.values
    low_uln = CONSERVATIVE_ULN.get(v["lab"])
    mult = float(v["uln_multiple"])
    op = v["op"]
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
    verdict, reason = _ev_prior_required_strict(p, c, vocab)
    if verdict == NOT_MET and _MAY_ONLY_PERMIT_RE.search(c.text):
        return UNKNOWN, f"{reason}; the line may only permit it: verify"
    if verdict == NOT_MET and _SUBGROUP_RE.search(c.text):
        return UNKNOWN, f"{reason}; the line applies to a sub-group only: verify"
    return verdict, reason


# "... EGFR-TKI treatment in dose-extension cases": a requirement for one part of the trial
_SUBGROUP_RE = re.compile(
    r"\b(?:in|for) (?:the )?(?:[\w-]+ ){0,2}(?:cases|cohorts?|arms?|parts?|expansion)\b", _I
)


# "may have been treated with an EGFR-TKI", "Limited prior therapy, including ...", "the use of X
# in the adjuvant setting is acceptable": the line allows, it does not require
_MAY_ONLY_PERMIT_RE = re.compile(
    r"\b(?:may|can|could) (?:have )?(?:been |be )?(?:treated|received|had|used|given)\b|\blimited prior\b"
    r"|\b(?:is|are|will be) (?:acceptable|allowed|permitted)\b",
    _I,
)


def _ev_prior_required_strict(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    desc = _therapy_desc(c, vocab)
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
    if v.get("progression"):
        return UNKNOWN, f"had {got}; progression on it is not recorded: verify"
    if not named and not v.get("min_lines"):
        return UNKNOWN, "prior therapy requirement: verify"
    return MET, f"had {got}; trial requires prior {desc}"


_SYSTEMIC_WORD_RE = re.compile(
    r"\b(?:systemic|chemo\w*|drugs?|lines?|regimens?|agents?|cytotoxic|immunotherap\w*|targeted)\b",
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


def _ev_prior_excluded(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    desc = _therapy_desc(c, vocab)
    if p.prior_therapies is None:
        return UNKNOWN, f"prior therapies not recorded: verify (trial excludes prior {desc})"
    hits = _received(p, c, vocab)
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


# Spellings a patient's biomarker list may use for each gene (matcher.knowledge.biomarker_status
# reads one name at a time).
_GENE_ALIASES: dict[str, tuple[str, ...]] = {
    "HER2": ("HER2", "ERBB2", "HER-2"),
    "ROS1": ("ROS1", "ROS-1"),
    "NTRK": ("NTRK", "NTRK1", "NTRK2", "NTRK3", "TRK"),
    "PD-L1": ("PD-L1", "PDL1"),
    "SMARCB1": ("SMARCB1", "INI1", "INI-1"),
    "BRCA": ("BRCA", "BRCA1", "BRCA2"),
    "MET": ("MET", "c-MET"),
    "KIT": ("KIT", "c-KIT", "CD117"),
}
_MSI_POS_RE = re.compile(
    r"\bmsi-?h(?:igh)?\b|\bmsi[- ]high\b|\bdmmr\b|\bmmr[- ]deficien\w*|\bmismatch repair[- ]deficien\w*"
    r"|\bdeficient mismatch repair|\bmicrosatellite instability[- ]high\b",
    _I,
)
_MSI_NEG_RE = re.compile(
    r"\bmss\b|\bmicrosatellite stable\b|\bmsi-?l(?:ow)?\b|\bpmmr\b|\bmmr[- ]proficient\b"
    r"|\bmismatch repair[- ]proficient\b|\bmsi\b[^,;]*\bnegative\b",
    _I,
)
_LOSS_POS_RE = re.compile(r"\b(?:loss|lost|deficien\w*|absent|negative)\b", _I)  # SMARCB1/INI1 loss
_LOSS_NEG_RE = re.compile(r"\b(?:retained|intact|preserved|positive)\b", _I)


def patient_marker_status(biomarkers: list[str] | None, gene: str) -> tuple[str | None, str]:
    """(status "positive" | "negative" | None, evidence) for one gene of ``_GENE_SPELLINGS``.

    Reuses ``matcher.knowledge.biomarker_status`` for each spelling of the gene; MSI/MMR and
    SMARCB1/INI1 (where "loss" or "deficient" is the positive finding) are read here.
    """
    from matcher.knowledge import biomarker_status

    if biomarkers is None:
        return None, "no biomarker results given"
    if gene == "MSI":
        pos = [b for b in biomarkers if _MSI_POS_RE.search(b)]
        neg = [b for b in biomarkers if _MSI_NEG_RE.search(b) and not _MSI_POS_RE.search(b)]
    elif gene == "SMARCB1":
        hits = [b for b in biomarkers if re.search(r"\bSMARCB1\b|\bINI-?1\b", b, _I)]
        pos = [b for b in hits if _LOSS_POS_RE.search(b)]
        neg = [b for b in hits if _LOSS_NEG_RE.search(b) and not _LOSS_POS_RE.search(b)]
    else:
        pos, neg = [], []
        for name in _GENE_ALIASES.get(gene, (gene,)):
            status, evidence = biomarker_status(biomarkers, name)
            if status == "positive":
                pos.append(evidence)
            elif status == "negative":
                neg.append(evidence)
    if pos and neg:
        return None, f"conflicting {gene} results: {'; '.join(pos + neg)}"
    if pos:
        return "positive", pos[0]
    if neg:
        return "negative", neg[0]
    return None, f"{gene} status not recorded"


def _marker_label(m: dict) -> str:
    alt = m.get("alteration")
    return f"{m['gene']} {alt}" if alt and alt not in ("positive", "mutation") else m["gene"]


def _ev_biomarker(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    markers = c.values.get("markers") or []
    if not markers:
        return UNKNOWN, "to review: molecular finding not read"
    results = []  # (marker, status, evidence, specific_variant_unconfirmed)
    for m in markers:
        status, evidence = patient_marker_status(p.biomarkers, m["gene"])
        alt = m.get("alteration") or ""
        # a named variant ("V600E") or a level ("PD-L1 >= 50%") must be stated to count
        variant = bool(alt and (_VARIANT_RE.fullmatch(alt) or _LEVEL_RE.fullmatch(alt)))
        unconfirmed = (
            status == "positive"
            and variant
            and alt.replace(" ", "").lower() not in evidence.replace(" ", "").lower()
        )
        results.append((m, status, evidence, unconfirmed))
    desc = " or ".join(_marker_label(m) for m in markers)
    if c.polarity == "require":
        pos = [r for r in results if r[1] == "positive" and not r[3]]
        if pos:
            m, _, ev, _ = pos[0]
            return MET, f"{m['gene']} positive ({ev!r}); trial requires {desc}"
        if all(r[1] == "negative" for r in results):
            ev = "; ".join(repr(r[2]) for r in results)
            return NOT_MET, f"documented negative ({ev}); trial requires {desc}"
        part = [r for r in results if r[3]]
        if part:
            m, _, ev, _ = part[0]
            return (
                UNKNOWN,
                f"{m['gene']} positive ({ev!r}) but the variant is not stated; trial requires "
                f"{_marker_label(m)}: verify",
            )
        missing = [r[0]["gene"] for r in results if r[1] is None]
        return UNKNOWN, f"{', '.join(missing)} status not recorded: verify (trial requires {desc})"
    # exclude: each listed finding is excluded on its own
    hit = [r for r in results if r[1] == "positive" and not r[3]]
    if hit:
        m, _, ev, _ = hit[0]
        return NOT_MET, f"{m['gene']} positive ({ev!r}); trial excludes {desc}"
    if all(r[1] == "negative" for r in results):
        return MET, f"{', '.join(r[0]['gene'] for r in results)} negative; trial excludes {desc}"
    part = [r for r in results if r[3]]
    if part:
        m, _, ev, _ = part[0]
        return (
            UNKNOWN,
            f"{m['gene']} positive ({ev!r}); trial excludes {_marker_label(m)}: verify the variant",
        )
    missing = [r[0]["gene"] for r in results if r[1] is None]
    return UNKNOWN, f"{', '.join(missing)} status not recorded: verify (trial excludes {desc})"


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
    "biomarker": _ev_biomarker,
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
