"""Ranked trial suggestions for one patient, each claim explained.

For a patient and a set of parsed trials:

1. **Relevance** (per diagnosis and trial, so it is computed once per distinct diagnosis):
   one tier, with the evidence that gave it (which condition, keyword or criteria line).
   Tiers, best first: the patient's subtype > its group (liposarcoma for a dedifferentiated
   liposarcoma) > a category (soft tissue sarcoma, bone sarcoma) > a family (sarcoma) > a
   basket (solid tumours, any cancer). The inclusion histology lines win over the conditions
   and keywords; lines about measurement standards, tissue, testing or other malignancies
   never decide. A trial that admits none of the patient's lineage is unrelated, not shown.
2. **Hard gates**: overall status, structured age and sex, ``--max-miles``, a screening (or
   healthy-volunteer prevention) purpose, and any criterion verdict ``NOT_MET``. A gated trial is listed as ``excluded`` with every reason.
3. **Score** = relevance + knowledge-pack boosts - unknown penalty - distance penalty
   (constants below, documented in the README).
4. **Verdict**: ``excluded`` (any gate), ``needs_review`` (any ``UNKNOWN`` criterion or an
   unverified relevance), else ``eligible`` (every typed criterion met; untyped lines are still
   listed "to review").

Order: treatment trials first, then trials of every other primary purpose as their own
group; within a group, trials the patient could join (eligible or needs_review) by score,
high first, then excluded trials by score; ties by NCT id.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from matcher.eligibility.clause import without_definitions
from matcher.eligibility.text import POPULATION_STATED_RE
from matcher.geo import haversine_miles, zip_to_point

DEFAULT_STATUSES = frozenset({"RECRUITING", "NOT_YET_RECRUITING"})

# Relevance tiers, best first, and their base score (see ``relevance``).
TIERS = ("subtype", "group", "category", "family", "basket")
TIER_SCORES = {"subtype": 100, "group": 90, "category": 80, "family": 60, "basket": 40}
TIER_LABELS = {
    "subtype": "names the patient's subtype",
    "group": "names the patient's subtype group",
    "category": "{name} trial",
    "family": "{name} trial, any subtype",
    "basket": "basket open to any {name}",
}
# a vocabulary entry's ``level`` -> the tier a trial naming it gets
LEVEL_TIERS = {"basket": "basket", "family": "family", "category": "category"}
ANY_CANCER = "cancer"  # the vocabulary root that names a cancer without its type
PRECANCER = "precancerous_condition"  # the root of conditions that are not cancers

BOOST_TABLE9 = 20  # trial tests a Table 9 agent for the patient's subtype
BOOST_PRIOR_THERAPY_FIT = 10  # a required prior therapy the patient has had
BOOST_RESECTION = 10  # metastasectomy / stereotactic RT trial for a resection candidate
PENALTY_UNKNOWN = 3  # per criterion that could not be judged
PENALTY_DISTANCE_PER_100_MILES = 2  # nearest recruiting site, capped below
PENALTY_DISTANCE_CAP = 10

# Unknowns of these types become ONE verify item each (a trial with six washout lines is not
# six times less certain); (label, counts toward the unknown penalty).
GROUPED_UNKNOWNS = {
    "washout": ("washout periods to check against last-dose dates", True),
    "contraception": ("contraception requirements to confirm at consent", False),
}

# Trials a patient could join (eligible or needs review) come first, ordered by score: a
# subtype trial with one thing to verify outranks a basket with nothing to verify. Excluded
# trials follow, also by score.
VERDICT_ORDER = {"eligible": 0, "needs_review": 0, "excluded": 1}

LOCAL_PROCEDURES = {"pulmonary_metastasectomy", "stereotactic_radiotherapy", "metastasectomy"}


@dataclass
class RankConfig:
    """Options that change what is shown (not how it is judged)."""

    statuses: frozenset[str] | None = DEFAULT_STATUSES  # None: any status
    max_miles: float | None = None
    # primary purposes shown (lower-case keys of PURPOSES); None: every purpose, treatment
    # trials first and the others in their own group
    purposes: frozenset[str] | None = None


@dataclass(frozen=True)
class Evidence:
    """Where a trial names a diagnosis: a condition, a keyword or an inclusion criteria line."""

    source: str  # "condition" | "keyword" | "title" (no conditions given) | "criteria"
    text: str  # as registered
    diagnosis: str  # vocabulary id
    # a broad word narrowed by words the vocabulary does not know ("Aggressive NK Cell
    # Leukemia"): it admits only a patient recorded with that broad diagnosis, to verify
    narrowed: bool = False
    # a broad word narrowed only by a tumour marker ("Microsatellite Instability-High Solid
    # Malignant Tumor", "BRAF-mutant melanoma"): the marker's gene; the broad word admits as
    # usual, and the coordinator checks the tumour's marker status
    marker: str | None = None

    def describe(self, limit: int = 120) -> str:
        text = self.text if len(self.text) <= limit else self.text[: limit - 3].rstrip() + "..."
        return f'{self.source} "{text}"'


@dataclass(frozen=True)
class Relevance:
    """Why a trial is (or is not) relevant to a diagnosis: the tier and its evidence."""

    tier: str | None  # one of TIERS, or None = unrelated
    reason: str
    verify: tuple[str, ...] = ()
    evidence: Evidence | None = None

    @property
    def score(self) -> int:
        return TIER_SCORES.get(self.tier or "", 0)

    def to_dict(self) -> dict:
        """The JSON view: tier, the diagnosis the trial names, and where it names it."""
        e = self.evidence
        return {
            "tier": self.tier or "unrelated",
            "diagnosis": e.diagnosis if e else None,
            "source": e.source if e else None,
            "text": e.text if e else None,
        }


@dataclass(frozen=True)
class TrialScope:
    """Whom a trial is for, as the record says it: derived once per trial, for every patient.

    ``listed``: diagnoses its conditions and keywords name; ``required``: diagnoses its
    inclusion histology lines name (coordinated lists expanded, exceptions removed);
    ``ignored``: histology words on lines that never decide relevance (measurement standards,
    tissue handling, testing, other malignancies), kept to explain a decision.
    """

    listed: tuple[Evidence, ...]
    required: tuple[Evidence, ...]
    ignored: tuple[str, ...]
    purpose: str
    healthy_volunteers: bool | None
    # who the participants are when they are not patients ("caregivers", "pharmacists"):
    # the words of the title and the first inclusion line that say so; None for patients
    participants: str | None = None


# A study of people around the patient, not of patients: the title names them, and the first
# inclusion line is about them. A study of patients *and* caregivers (a dyad) is not one.
_ROLE_WORDS = (
    r"(?:primary |family |informal |co-primary |bereaved )?caregivers?|carers?|pharmacists?|"
    r"nurses?|physicians?|oncologists?|clinicians?|health ?care (?:providers?|professionals?|"
    r"workers?)|providers?|medical staff|staff members?|family members?|parents? of"
)
_ROLE_TITLE_RE = re.compile(rf"\b(?:{_ROLE_WORDS})\b", re.IGNORECASE)
_ROLE_LINE_RE = re.compile(
    rf"^\W*(?:(?:self-identified|adult|adults|being|be|is|are|a|an|the|who)\s+)*"
    rf"(?:{_ROLE_WORDS})\b|^\W*who (?:belong|work|have instructed|prescribe|are employed)\b",
    re.IGNORECASE,
)
_DYAD_RE = re.compile(
    r"\bdyads?\b|\bpatients? (?:and|&|or) (?:their )?(?:caregivers?|carers?|famil)|"
    r"\b(?:caregivers?|carers?|family members?) (?:and|&) (?:the )?patients?\b",
    re.IGNORECASE,
)


def participants_of(parsed) -> str | None:
    """Who a study enrols when they are not patients: "caregivers", "pharmacists" (the
    title's word), or None."""
    trial = parsed.trial
    title = trial.title or ""
    m = _ROLE_TITLE_RE.search(title)
    if m is None or _DYAD_RE.search(title) or _DYAD_RE.search(trial.criteria_text or ""):
        return None
    first = next(
        (c.text for c in parsed.criteria if c.section == "inclusion" and c.source != "structured"),
        "",
    )
    if not _ROLE_LINE_RE.search(first):
        return None
    return m.group(0).lower()


@dataclass
class Suggestion:
    """One trial for one patient, with every part of its verdict and score explained."""

    nct_id: str
    title: str
    verdict: str
    score: float
    reasons: list[str]
    verify: list[str]
    excluded_by: list[str]
    nearest_site: dict | None
    distance_miles: float | None
    phase: str
    status: str
    last_update: str | None
    url: str
    relevance: str
    score_parts: dict[str, float]
    met: list[str] = field(default_factory=list)
    to_review: list[str] = field(default_factory=list)
    rank: int = 0
    purpose: str = "not_stated"  # lower-case key of PURPOSE_LABELS
    relevance_evidence: dict = field(default_factory=dict)  # Relevance.to_dict()

    def to_dict(self) -> dict:
        """The ``match --json`` trial entry (fixed keys first, then detail)."""
        return {
            "nct_id": self.nct_id,
            "rank": self.rank,
            "score": self.score,
            "verdict": self.verdict,
            "reasons": self.reasons,
            "verify": self.verify,
            "excluded_by": self.excluded_by,
            "nearest_site": self.nearest_site,
            "distance_miles": self.distance_miles,
            "title": self.title,
            "phase": self.phase,
            "status": self.status,
            "last_update": self.last_update,
            "url": self.url,
            "relevance": self.relevance,
            "score_parts": self.score_parts,
            "met": self.met,
            "to_review": self.to_review,
            "purpose": self.purpose,
            "relevance_evidence": self.relevance_evidence,
        }


@dataclass
class PatientMatches:
    """All suggestions for one patient, ranked."""

    patient_id: str
    trials: list[Suggestion]
    notes: list[str] = field(default_factory=list)
    unrelated: int = 0  # trials considered and found unrelated (not shown)

    def to_dict(self) -> dict:
        return {
            "patient_id": self.patient_id,
            "trials": [s.to_dict() for s in self.trials],
            "notes": self.notes,
            "unrelated_count": self.unrelated,
        }


# --------------------------------------------------------------------------- relevance


class MatchContext:
    """Per-run caches over the knowledge pack and vocabulary.

    Facts that depend only on a trial (the diagnoses it names or requires, its local-treatment
    procedures) or only on a diagnosis (its Table 9 agents) are derived once per run, not once
    per patient-trial pair.
    """

    def __init__(self, pack, vocab):
        self.pack = pack
        self.vocab = vocab
        self._targets: dict = {}
        self._agents: dict = {}
        self._procs: dict = {}
        self._drugs: dict = {}
        self._options: dict = {}  # the last patient's option results only

    @staticmethod
    def _key(parsed) -> tuple:
        return (parsed.trial.nct_id, parsed.trial.last_update, id(parsed))

    def scope(self, parsed) -> TrialScope:
        """The trial's :class:`TrialScope` (derived once per trial and record version)."""
        key = self._key(parsed)
        if key not in self._targets:
            self._targets[key] = trial_scope(parsed, self.vocab)
        return self._targets[key]

    def targeted_agents(self, diagnosis_id: str) -> list[tuple[str, str]]:
        """Table 9 (drug id, option id) pairs for a diagnosis."""
        if diagnosis_id not in self._agents:
            self._agents[diagnosis_id] = self.pack.targeted_agents(diagnosis_id)
        return self._agents[diagnosis_id]

    def option_result(self, patient, option_id: str):
        """The knowledge pack's verdict on one option for this patient (evaluated once per patient)."""
        from matcher.knowledge import evaluate_options

        key = (patient.id, id(patient))
        if key not in self._options:
            self._options = {key: {o.id: o for o in evaluate_options(patient, self.pack).options}}
        return self._options[key].get(option_id)

    def trial_drugs(self, parsed) -> frozenset[str]:
        """Drug ids among a trial's interventions."""
        key = self._key(parsed)
        if key not in self._drugs:
            self._drugs[key] = frozenset(d for i in parsed.trial.interventions for d in i.drug_ids)
        return self._drugs[key]

    def local_procedures(self, parsed) -> frozenset[str]:
        """Metastasectomy / stereotactic radiotherapy procedures among a trial's interventions."""
        key = self._key(parsed)
        if key not in self._procs:
            names = [n for i in parsed.trial.interventions for n in (i.name, *i.other_names) if n]
            found = {self.vocab.resolve_procedure(n) for n in names}
            # the title often names the procedure when the intervention does not
            # ("SBRT Treatment for Lung Metastasis ..." with intervention "Lung metastasis ...")
            found.update(p for p, _ in self.vocab.find_procedures(parsed.trial.title or ""))
            self._procs[key] = frozenset(found & LOCAL_PROCEDURES)
        return self._procs[key]


# Lines whose histology words never decide relevance. Other malignancies: "no other cancer
# within 3 years", "history of breast cancer". Tissue handling and testing: "archival tumour
# tissue ...", "tumour must be tested for ..." (unless the line also states the diagnosis).
_OTHER_MALIGNANCY_LINE_RE = re.compile(
    r"\b(?:other|another|prior|previous|second|secondary|concurrent|additional|synchronous|"
    r"active|history of)\s+(?:[\w-]+\s+){0,3}?(?:malignan\w*|cancers?|tumou?rs?|neoplas\w*|primary)"
    r"|\bin situ\b|\bwithin the (?:past|last|previous) (?:\d+|one|two|three|five) years\b"
    r"|\bdisease[- ]free\b|\bcuratively treated\b",
    re.I,
)
_TISSUE_TEST_LINE_RE = re.compile(
    r"\b(?:tissue|biops\w+|block|slides?|specimens?|samples?|archival|FFPE|paraffin|"
    r"test(?:s|ed|ing)?|assays?|sequencing|NGS|immunohistochemi\w+|IHC|FISH|PCR)\b",
    re.I,
)
_VERIFIED_BY_RE = re.compile(
    r"[\s()\]\\-]*(?:\(?[a-z]{2,5}\)?)?[\s-]*(?:verified|confirmed|proven|documented|diagnosed)\b",
    re.I,
)
_DIAGNOSIS_CUE_RE = re.compile(
    r"\b(?:histolog\w*|cytolog\w*|patholog\w*|diagnos\w*|confirmed|documented|proven)\b", re.I
)
# A criteria line that states a cancer of any type as the population: "Being a Cancer
# Patient", "patients with cancer", "diagnosis of cancer"
_ANY_CANCER_STATED_RE = re.compile(
    r"\bcancer patients?\b|\b(?:patients?|subjects?|participants?|people|adults?) with "
    r"(?:a |any |an active )?cancer\b|\bdiagnos\w* (?:of|with) (?:a |any )?cancer\b"
    r"|^\s*(?:advanced|metastatic|terminal|incurable|end-stage) cancer\b"
    r"|^\s*(?:a\s+)?(?:personal\s+)?history of (?:a\s+|any\s+)?cancer\b|\bcancer survivors?\b"
    r"|\bcancer\s*\((?:all|any) (?:tumou?r |cancer )?types?\)",
    re.I,
)
# "patients with malignant tumours": the population only in a record about cancer (a
# lipid trial lists "patients with malignant tumor" among its risk categories)
_MALIGNANCY_STATED_RE = re.compile(
    r"\b(?:patients?|subjects?|participants?|people|adults?) with (?:a |any |an active )?"
    r"(?:malignant (?:tumou?rs?|neoplasms?|disease)|malignanc(?:y|ies))\b",
    re.I,
)
_BEFORE_ANY_CANCER = frozenset(
    [
        "",
        "a",
        "an",
        "any",
        "all",
        "being",
        "adult",
        "adults",
        "pediatric",
        "paediatric",
        "with",
        "of",
    ]
)


_CANCER_TOPIC_RE = re.compile(
    r"cancer|tumou?r|malignan|oncolog|carcinom|sarcom|leuka?em|lymphom|myelom|neoplas|metasta|"
    r"chemotherap|radiotherap|\bcinv\b",
    re.I,
)


def _about_cancer(trial) -> bool:
    """The record's title, conditions or keywords speak of cancer: an untyped "patients with
    malignant tumour" line then states its population ("Hypercholesterolemia" trials list
    "patients with malignant tumor" among their risk categories, not as the population)."""
    texts = [trial.title or "", trial.official_title or "", *trial.conditions, *trial.keywords]
    return any(_CANCER_TOPIC_RE.search(t) for t in texts)


def _any_cancer_stated(text: str) -> bool:
    """True when ``text`` states "cancer" of any type as who may enrol; "non-small cell cancer
    patients" (a kind of cancer the vocabulary does not spell that way) does not."""
    for m in _ANY_CANCER_STATED_RE.finditer(text):
        pos = m.group(0).lower().find("cancer") + m.start()
        before = text[:pos].split()
        if m.group(0).lower().startswith("cancer") and (
            before and before[-1].lower().strip("(,;:") not in _BEFORE_ANY_CANCER
        ):
            continue
        return True
    return False


# Measurement standards named after a disease: "RECIST version 1.1 for solid tumours".
_MEASUREMENT_RE = re.compile(
    r"response evaluation criteria (?:in|for) solid tumou?rs?"
    r"|\b(?:i|m)?RECIST\b[^;]{0,60}?\bsolid tumou?rs?"
    r"|\b(?:criteria|guidelines?|standards?) (?:for|in) (?:[\w-]+ ){0,3}?solid tumou?rs?"
    r"|\b(?:according to|as defined by|per) (?:the )?(?:[\w-]+ edition of (?:the )?)?WHO\b[^.;]{0,60}",
    re.I,
)
# Words a condition may add to "cancer", "carcinoma" or "leukemia" without naming a kind of
# it ("Cancer Pain", "Advanced Cancer", "Solid Tumor, Adult"). Any other word narrows it to a
# kind the vocabulary does not know ("Vocal Cord Carcinoma", "Myelogenous Leukemia"), and
# the bare word is then no evidence.
_BROAD_WORD_FILLER = frozenset(
    [
        "adult",
        "adults",
        "adolescent",
        "adolescents",
        "child",
        "children",
        "childhood",
        "pediatric",
        "paediatric",
        "young",
        "elderly",
        "older",
        "patient",
        "patients",
        "people",
        "persons",
        "survivor",
        "survivors",
        "survivorship",
        "pain",
        "fatigue",
        "related",
        "cachexia",
        "anorexia",
        "nausea",
        "vomiting",
        "anxiety",
        "depression",
        "distress",
        "insomnia",
        "symptom",
        "symptoms",
        "care",
        "palliative",
        "caregiver",
        "caregivers",
        "any",
        "all",
        "other",
        "various",
        "type",
        "types",
        "tumor",
        "tumors",
        "tumour",
        "tumours",
        "cancer",
        "cancers",
        "malignant",
        "malignancy",
        "malignancies",
        "neoplasm",
        "neoplasms",
        "solid",
        "metastasis",
        "metastases",
        "in",
        "for",
        "or",
        "and",
        "to",
        "on",
        "by",
        "at",
    ]
)


# Cues that turn the diagnoses after them (to the end of the sentence or bracket) into
# exceptions: "soft tissue sarcoma (excluding GIST)", "patients do not have: GIST, desmoid".
_EXCEPT_CUE_RE = re.compile(
    r"\b(?:except(?:ion of| for)?|excluding|exclusive of|other than|not including|apart from|"
    r"(?:do|does|must|should|may) not (?:have|be)|are not (?:eligible|allowed)|nor)\b",
    re.I,
)
# Sentences that say the diagnoses in them are excluded: "Patients with GIST will be excluded".
# (Not "... with no available (or are ineligible) therapy": an alternative of a relative
# clause about therapy.)
_EXCLUDED_SENTENCE_RE = re.compile(
    r"(?<!\bor )\b(?:(?:will be|are|is|be) excluded|(?:are|is) not eligible|(?:are|is) ineligible|"
    r"not permitted|not allowed)\b",
    re.I,
)
_CLAUSE_END_RE = re.compile(r"[)\]]|[.;](?:\s|$)")
_SENTENCE_END_RE = re.compile(r"[.;](?:\s|$)")
# "sarcoma centre", "cancer institute": a diagnosis word naming a place or team
_INSTITUTION_RE = re.compile(
    r"\b(?:sarcoma|cancer|tumou?r|oncology)\s+(?:cent(?:re|er)s?|units?|teams?|boards?|"
    r"specialists?|surgeons?|programs?|programmes?|services?|clinics?|network|"
    r"institutes?|society|consortium|multidisciplinary)\b"
    # "Children's Oncology Group", "Sarcoma Study Group" (not "prostate cancer group" of
    # patients)
    r"|\boncology\s+groups?\b|\b(?:sarcoma|cancer|tumou?r)\s+(?:study|research|cooperative|"
    r"trials?)\s+groups?\b",
    re.I,
)
_FUNCTION_WORDS = frozenset(
    [
        "with", "have", "has", "had", "having", "from", "as", "is", "are", "be", "was",
        "documented", "proven", "cytologically", "pathologically", "known", "measurable",
        "evaluable", "any", "must", "who", "that", "which", "including", "include", "includes",
        "e", "g", "eg", "ie", "i", "or", "and", "nor", "not", "diagnosed", "confirmed",
    ]
)  # fmt: skip


def _excepted_spans(text: str) -> list[tuple[int, int]]:
    """Character spans of ``text`` whose diagnoses are exceptions, not requirements."""
    spans = []
    for m in _EXCEPT_CUE_RE.finditer(text):
        end = _CLAUSE_END_RE.search(text, m.end())
        spans.append((m.start(), end.start() + 1 if end else len(text)))
    start = 0
    for end_m in [*_SENTENCE_END_RE.finditer(text), None]:
        end = end_m.end() if end_m else len(text)
        if _EXCLUDED_SENTENCE_RE.search(text, start, end):
            spans.append((start, end))
        start = end
    return spans


def _kept_mentions(text: str, mentions) -> list[tuple[str, str]]:
    """``mentions`` of ``text`` that lie outside every exception span."""
    spans = _excepted_spans(text)
    if not spans:
        return list(mentions)
    low = text.lower()
    out, start = [], 0
    for did, mention in mentions:
        probe = mention.split(" … ")[0].lower()
        pos = low.find(probe, start)
        if pos < 0:
            pos = low.find(probe)
        if pos >= 0 and any(a <= pos < b for a, b in spans):
            continue
        out.append((did, mention))
        if pos >= 0:
            start = pos
    return out


def _narrowed_in_line(text: str, mention: str) -> bool:
    """A broad mention in a criteria line narrowed by the word before it ("B cell Leukemia",
    "CNS leukemia", "myeloid leukemia"); qualifiers ("metastatic sarcoma") do not narrow."""
    from matcher.vocab import QUALIFIERS, normalize

    pos = text.lower().find(mention.lower())
    if pos <= 0:
        return False
    before = normalize(text[max(0, pos - 40) : pos]).split()
    if not before or not re.search(r"[\w)]\s*$", text[:pos].rstrip() or " "):
        return False
    w = before[-1]
    return not (w in QUALIFIERS or w in _BROAD_WORD_FILLER or w in _FUNCTION_WORDS or w.isdigit())


def _about_tissue_or_testing(text: str, vocab) -> bool:
    """A line about tissue or a test ("Archival tumor tissue from the sarcoma ...", "Tumour
    must be tested for ..."): the tissue or test word comes before any diagnosis it names,
    and the line does not state the diagnosis ("histologically confirmed ...")."""
    cue = next(
        (
            m
            for m in _TISSUE_TEST_LINE_RE.finditer(text)
            # a test named in an aside ("[IHC 2+, with FISH confirmation]") or as how the
            # diagnosis was made ("IHC-verified lung squamous cell carcinoma") is no subject
            if text[: m.start()].count("(") + text[: m.start()].count("[")
            <= text[: m.start()].count(")") + text[: m.start()].count("]")
            and not _VERIFIED_BY_RE.match(text, m.end())
        ),
        None,
    )
    if cue is None or _DIAGNOSIS_CUE_RE.search(text, 0, cue.start()):
        return False
    if POPULATION_STATED_RE.search(text, 0, cue.start()):
        return False  # "Females with HER2-positive [IHC ...] metastatic breast cancer"
    found = vocab.find_diagnoses(text)
    first = min((text.find(m) for _, m in found if text.find(m) >= 0), default=len(text))
    return cue.start() < first


def _narrowed(text: str, mention: str) -> bool:
    """True when ``text`` adds words that narrow the broad ``mention`` it contains."""
    from matcher.vocab import QUALIFIERS, normalize

    left = normalize(text).split()
    for w in normalize(mention).split():
        if w in left:
            left.remove(w)
    return any(w not in QUALIFIERS and w not in _BROAD_WORD_FILLER and len(w) > 1 for w in left)


# what a marker word says of a gene ("MSI-High", "BRAF-mutant", "NTRK fusion-positive"),
# variants ("V600E", "G12C") and the words a marker-defined population is written with
_MARKER_STATE_RE = re.compile(
    r"\b(?:high|h|hi|positive|pos|negative|neg|mutant|mutated|mutations?|altered|"
    r"alterations?|fusions?|rearranged|rearrangements?|translocated|amplified|amplifications?|"
    r"deficient|deficiency|proficient|instability|instable|stable|overexpressing|"
    r"overexpression|expressing|expression|driven|harbou?ring|with|wild[- ]?type|wt|status|"
    r"gene|genes|and|or|[a-z]\d{2,4}[a-z]?|exon|\d{1,2}|[dp]?mmr|msi|mss)\b",
    re.IGNORECASE,
)
# tumour words a marker-only condition may carry ("MSI-H tumors", "NTRK fusion cancers")
_MARKER_TUMOUR_WORDS = frozenset(
    ["tumor", "tumors", "tumour", "tumours", "cancer", "cancers", "neoplasm", "neoplasms",
     "malignancy", "malignancies", "malignant", "solid"]
)  # fmt: skip


def _marker_scope(text: str, mention: str, tumour_words: bool = False) -> str | None:
    """The gene(s) of a tumour marker that alone narrows ``mention`` in ``text`` ("MSI" for
    "Microsatellite Instability-High Solid Malignant Tumor" naming solid tumour), else None.
    ``tumour_words``: also accept generic tumour words (a condition that names no diagnosis:
    "MSI/dMMR", "NTRK fusion-positive tumors")."""
    from matcher.eligibility.biomarker import gene_mentions
    from matcher.vocab import QUALIFIERS, normalize

    genes = gene_mentions(text)
    if not genes:
        return None
    rest = text
    for a, b, _g in sorted(genes, reverse=True):
        rest = rest[:a] + " " + rest[b:]
    if mention:
        pos = rest.lower().find(mention.lower())
        if pos < 0:
            return None
        rest = rest[:pos] + " " + rest[pos + len(mention) :]
    rest = _MARKER_STATE_RE.sub(" ", rest)
    for w in normalize(rest).split():
        if w in QUALIFIERS or w in _BROAD_WORD_FILLER or len(w) <= 1:
            continue
        if tumour_words and w in _MARKER_TUMOUR_WORDS:
            continue
        return None
    return "/".join(dict.fromkeys(g for _a, _b, g in genes))


_MARKER_POSITIVE_RE = re.compile(
    r"high\b|\bmsi-?h|\bdmmr\b|positiv|\+|mutant|mutated|mutation|alteration|altered|fusion|"
    r"rearrang|translocat|amplif|deficien|instability|overexpress|driven|harbou?r|\b[a-z]\d{2,4}[a-z]\b",
    re.IGNORECASE,
)
_MARKER_NEGATIVE_RE = re.compile(
    r"\bmss\b|\bpmmr\b|\bstable\b|proficient|wild[- ]?type|\bwt\b|negativ", re.IGNORECASE
)


def _marker_wanted(text: str) -> str | None:
    """The marker status a marker-defined condition asks for: "positive" ("MSI-High",
    "BRAF-mutant"), "negative" ("KRAS wild-type"), None when it does not say or says both."""
    pos, neg = bool(_MARKER_POSITIVE_RE.search(text)), bool(_MARKER_NEGATIVE_RE.search(text))
    if pos == neg:
        return None
    return "positive" if pos else "negative"


def marker_check(patient, rel: Relevance) -> tuple[str | None, bool]:
    """For a trial whose relevance rests on a marker-defined condition (``Evidence.marker``):
    (why the patient's recorded marker status rules it out, or None; whether the recorded
    status settles the check). Unrecorded or conflicting results settle nothing."""
    ev = rel.evidence
    if ev is None or not ev.marker or not rel.verify:
        return None, False
    want = _marker_wanted(ev.text)
    if want is None:
        return None, False
    from matcher.eligibility.biomarker import patient_marker_status

    have = [
        patient_marker_status(getattr(patient, "biomarkers", None), g) for g in ev.marker.split("/")
    ]
    # one gene of the condition's with the wanted status is enough for "positive" ("NTRK or
    # ROS1 fusion"); "negative" ("KRAS/NRAS wild-type") needs every gene negative
    if want == "positive":
        if any(st == "positive" for st, _ in have):
            return None, True
        if have and all(st == "negative" for st, _ in have):
            said = "; ".join(e for _, e in have)
            return (
                f"trial is for tumours positive for {ev.marker} ({ev.describe(80)}); "
                f"the patient's tumour is recorded negative ({said})"
            ), True
        return None, False
    if have and all(st == "negative" for st, _ in have):
        return None, True
    pos = [e for st, e in have if st == "positive"]
    if pos:
        return (
            f"trial is for tumours negative for {ev.marker} ({ev.describe(80)}); "
            f"the patient's tumour is recorded positive ({'; '.join(pos)})"
        ), True
    return None, False


def _inverted(text: str) -> str | None:
    """ "Sarcoma, Synovial" -> "Synovial Sarcoma" (MeSH-style inverted condition names)."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) == 2 and all(parts):
        return f"{parts[1]} {parts[0]}"
    return None


def _listed_evidence(trial, vocab) -> tuple[list[Evidence], list[str]]:
    listed: list[Evidence] = []
    ignored: list[str] = []
    markers_only: list[Evidence] = []
    sources = [("condition", trial.conditions), ("keyword", trial.keywords)]
    if not any(trial.conditions) and not any(trial.keywords):
        # a record without conditions or keywords (a partial copy, an old export): its title
        # names whom it is for ("Nirogacestat for Adults With Desmoid Tumor")
        sources.append(("title", [t for t in (trial.title, trial.official_title) if t]))
    for source, texts in sources:
        for text in texts:
            if not text:
                continue
            found = vocab.find_diagnoses_listed(text)
            inv = _inverted(text)
            if inv:
                try:
                    m = vocab.resolve_diagnosis(inv)
                except Exception:  # noqa: BLE001 - not a diagnosis: nothing to add
                    m = None
                if m is not None and m.method == "exact":
                    # the whole condition, inverted, is one diagnosis ("Leukemia, Myeloid"): its
                    # head word alone ("Leukemia") is not a second one
                    found = [(m.entry.id, text)]
            for did, mention in _kept_mentions(text, found):
                level = vocab.diagnosis(did).level
                narrow = (
                    level in ("family", "basket") and mention != text and _narrowed(text, mention)
                )
                marker = _marker_scope(text, mention) if narrow else None
                if narrow and marker is None:
                    ignored.append(f'{source} "{text}": "{mention}" names an unlisted kind')
                ev = Evidence(source, text, did, narrow and marker is None, marker)
                if ev not in listed:
                    listed.append(ev)
            if not found and source == "condition":
                marker = _marker_scope(text, "", tumour_words=True)
                if marker is not None:
                    markers_only.append(Evidence(source, text, ANY_CANCER, False, marker))
    if not listed:
        # conditions that name only a tumour marker ("MSI/dMMR"): a trial for any cancer with
        # it (when a condition names a diagnosis, that diagnosis decides instead)
        listed = markers_only
    return listed, ignored


def _required_evidence(parsed, vocab, listed=()) -> tuple[list[Evidence], list[str]]:
    """Diagnoses the inclusion histology lines require (see :class:`TrialScope`); ``listed``:
    the conditions' evidence (a broad word that refers back to a listed kind is dropped)."""
    lines: dict[str, dict] = {}
    for c in parsed.criteria:
        if c.type != "histology" or c.section != "inclusion" or c.later_step:
            continue
        entry = lines.setdefault(c.text, {"main": set(), "except": set()})
        ids = set(c.values.get("diagnoses") or [])
        entry["main" if c.polarity == "require" else "except"].update(ids)
    required: list[Evidence] = []
    ignored: list[str] = []
    # "Being a Cancer Patient in the second or third stage": a line the criteria parser left
    # untyped can still state the population (any cancer) when "cancer" is all it names
    for c in parsed.criteria:
        if c.section != "inclusion" or c.text in lines or c.later_step:
            continue
        if {d for d, _ in vocab.find_diagnoses(c.text)} == {ANY_CANCER} and (
            _any_cancer_stated(c.text)
            or (_MALIGNANCY_STATED_RE.search(c.text) and _about_cancer(parsed.trial))
        ):
            required.append(Evidence("criteria", c.text, ANY_CANCER))
    for text, ids in lines.items():
        if not ids["main"]:
            continue
        short = text if len(text) <= 80 else text[:77] + "..."
        if _OTHER_MALIGNANCY_LINE_RE.search(text) and _OTHER_MALIGNANCY_LINE_RE.search(
            without_definitions(text)
        ):
            # (not "carcinoma in situ" inside a definition of the line's own cancer: "NMIBC,
            # defined as any T1, high-grade Ta, and/or carcinoma in situ")
            ignored.append(f'other-malignancy line "{short}"')
            continue
        if _about_tissue_or_testing(text, vocab):
            ignored.append(f'tissue or testing line "{short}"')
            continue
        masked = _MEASUREMENT_RE.sub(lambda m: " " * len(m.group(0)), text)
        if masked != text:
            ignored.append(f'measurement standard in "{short}"')
        masked = _INSTITUTION_RE.sub(lambda m: " " * len(m.group(0)), masked)
        plain_found = vocab.find_diagnoses(masked)
        plain = {d for d, _ in plain_found}
        mentions = _kept_mentions(masked, vocab.find_diagnoses_listed(masked))
        narrowed: dict[str, bool] = {}
        for did, mention in mentions:
            if did not in ids["main"] and did in plain:
                continue  # the eligibility parse set it aside (a therapy setting, an exception)
            if did in ids["except"]:
                continue
            if did == ANY_CANCER and not _any_cancer_stated(masked):
                continue  # "anti-cancer therapy": a bare "cancer" states no population
            if vocab.diagnosis(did).level in ("family", "basket"):
                narrow = _narrowed_in_line(masked, mention)
                narrowed[did] = narrowed.get(did, True) and narrow
            else:
                narrowed[did] = False
        for did in sorted(narrowed):
            required.append(Evidence("criteria", text, did, narrowed[did]))
    return _without_back_references(parsed, required, ignored, vocab, listed), ignored


# A line that states who the trial is for: a diagnosis word, a confirmation, "patients with"


def _without_back_references(parsed, required: list, ignored: list, vocab, listed=()) -> list:
    """Drop a broad diagnosis (a family, category or basket) named by a line that does not
    state the population ("CD33+ leukaemia associated immunophenotype", "pain at diagnosis
    related to leukemia") when another line or a condition names a kind of it: the line
    speaks of that disease again, it does not widen whom the trial is for. A line of a cohort,
    one that states a population ("patients with any leukemia"), one that names other
    diagnoses beside it, or a broad word a condition names too, keeps its diagnosis."""
    scoped = {c.text for c in parsed.criteria if c.cohort or c.applies_to or c.conditional}
    named = [e for e in listed if e.source == "condition" and not e.marker]
    out = []
    for e in required:
        d = vocab.diagnosis(e.diagnosis)
        kinds = [
            o
            for o in [*required, *named]
            if o.text != e.text
            and o.diagnosis != e.diagnosis
            and not o.narrowed
            and vocab.is_a(o.diagnosis, e.diagnosis)
        ]
        # the line names other diagnoses itself ("neuroblastoma or solid tumor"), or a
        # condition names the broad word too: an alternative, not a back-reference
        alternatives = any(o.text == e.text and o.diagnosis != e.diagnosis for o in required)
        listed_too = any(o.diagnosis == e.diagnosis and not o.narrowed for o in named)
        if (
            d.level in ("family", "category", "basket")
            and kinds
            and not alternatives
            and not listed_too
            and e.text not in scoped
            and not POPULATION_STATED_RE.search(e.text)
        ):
            short = e.text if len(e.text) <= 80 else e.text[:77] + "..."
            ignored.append(
                f'"{short}": {d.name.lower()} here refers back to '
                f"{vocab.diagnosis(kinds[0].diagnosis).name} (another line)"
            )
            continue
        out.append(e)
    return out


def trial_scope(parsed, vocab) -> TrialScope:
    """Derive a parsed trial's :class:`TrialScope` (pure: the record and the vocabulary)."""
    trial = parsed.trial
    listed, ignored_c = _listed_evidence(trial, vocab)
    required, ignored_r = _required_evidence(parsed, vocab, listed)
    return TrialScope(
        listed=tuple(listed),
        required=tuple(required),
        ignored=tuple(ignored_c + ignored_r),
        purpose=purpose_of(trial),
        healthy_volunteers=trial.healthy_volunteers,
        participants=participants_of(parsed),
    )


def tier_for(
    lineage: tuple[str, ...], target: str, vocab, narrowed: bool = False
) -> tuple[str | None, str | None]:
    """(tier, verify item or None) of a trial naming ``target`` for a patient with ``lineage``.

    - ``target`` in the patient's lineage: its ``level`` decides (category, family, basket);
      without a level it is the patient's subtype (the recorded diagnosis itself) or group.
    - the any-cancer root admits every patient with a cancer (basket).
    - ``target`` narrower than the recorded diagnosis (patient "liposarcoma", trial
      "dedifferentiated liposarcoma"): the tier of the recorded diagnosis, with a verify item.
    """
    d = vocab.diagnoses.get(target)
    if d is None or not lineage:
        return None, None
    if narrowed:
        # "Aggressive NK Cell Leukemia": a kind of leukemia the vocabulary does not list; it
        # admits at the broad word's tier, and the coordinator checks the kind
        if target not in lineage:
            return None, None
        return (
            LEVEL_TIERS.get(d.level or "", "group"),
            f"trial is for a kind of {d.name.lower()} the vocabulary does not list: "
            "verify the patient's diagnosis is included",
        )
    if target in lineage:
        if d.level:
            return LEVEL_TIERS[d.level], None
        return ("subtype" if target == lineage[0] else "group"), None
    if target == ANY_CANCER:
        if PRECANCER in lineage:
            return None, None  # "any cancer" does not admit a precancerous condition
        return "basket", None
    if vocab.is_a(target, lineage[0]):
        own = vocab.diagnosis(lineage[0])
        return (
            LEVEL_TIERS[own.level] if own.level else "group",
            f"trial is for {d.name}; patient's diagnosis is recorded as {own.name}: verify histology",
        )
    may = getattr(vocab, "may_be", None)
    if may is not None and d.level and may(lineage[0], target):
        # a histologic type ("adenocarcinoma") a subtype of the patient's diagnosis (NSCLC)
        # may have: the family tier, with the histology to verify
        own = vocab.diagnosis(lineage[0])
        return (
            LEVEL_TIERS[d.level],
            f"trial is for {d.name}; patient's diagnosis is recorded as {own.name}: verify histology",
        )
    return None, None


_BASKET_NAMES = {
    "solid_tumor": "solid-tumour basket",
    "cancer": "any-cancer basket",
    "hematologic_malignancy": "haematological-malignancy basket",
}


def _label(tier: str, target, vocab) -> str:
    if tier == "basket" and target.id in _BASKET_NAMES:
        return _BASKET_NAMES[target.id]
    name = target.name
    if len(name) > 1 and name[1].islower():
        name = name[0].lower() + name[1:]  # "Soft tissue sarcoma" -> "soft tissue sarcoma"
    return TIER_LABELS[tier].format(name=name)


def _best(lineage: tuple[str, ...], evidence, vocab) -> Relevance | None:
    """The best tier any piece of ``evidence`` gives, explained; None when none admits."""
    best: Relevance | None = None
    for ev in evidence:
        tier, verify = tier_for(lineage, ev.diagnosis, vocab, ev.narrowed)
        if tier is None or (best is not None and TIER_SCORES[tier] <= best.score):
            continue
        target = vocab.diagnosis(ev.diagnosis)
        if ev.marker and not verify:
            verify = (
                f"trial is for tumours with a stated {ev.marker} status ({ev.describe(80)}): "
                f"verify the tumour's {ev.marker} status"
            )
            label = f"{_label(tier, target, vocab)} defined by {ev.marker} status"
            best = Relevance(tier, f"{label}, from {ev.describe()}", (verify,), ev)
            continue
        if verify and ev.narrowed:
            label = f"{_label(tier, target, vocab)} (a kind of {target.name.lower()} not in the vocabulary)"
        elif verify:
            label = f"trial names {target.name}, narrower than the recorded diagnosis"
        else:
            label = _label(tier, target, vocab)
            if tier in ("subtype", "group"):
                label = f"{label} ({target.name})"
        best = Relevance(tier, f"{label}, from {ev.describe()}", (verify,) if verify else (), ev)
    return best


def relevance(diagnosis_id: str | None, parsed, ctx: MatchContext) -> Relevance:
    """How relevant a parsed trial is to a diagnosis: a tier and the evidence for it.

    The inclusion histology lines, when the trial has any that decide, win over the
    conditions and keywords: a trial whose criteria admit none of the patient's lineage is
    unrelated whatever its conditions say. Otherwise the conditions and keywords decide.
    Within what admits the patient, the best tier wins (see ``TIERS``).
    """
    if not diagnosis_id:
        return Relevance(None, "diagnosis not recorded: relevance cannot be judged")
    vocab = ctx.vocab
    lineage = tuple(vocab.diagnosis(diagnosis_id).lineage)
    scope = ctx.scope(parsed)
    from_listed = _best(lineage, scope.listed, vocab)
    if scope.required:
        from_criteria = _best(lineage, scope.required, vocab)
        if from_criteria is None:
            names = ", ".join(sorted({vocab.diagnosis(e.diagnosis).name for e in scope.required}))
            return Relevance(
                None,
                f"criteria require {names}, which excludes this diagnosis",
                evidence=scope.required[0],
            )
        if (
            from_listed is not None
            and from_listed.score > from_criteria.score
            and from_listed.evidence is not None
            and from_criteria.evidence is not None
            and vocab.is_a(from_listed.evidence.diagnosis, from_criteria.evidence.diagnosis)
        ):
            # the criteria admit the patient and a condition names a narrower part of what they
            # admit ("sarcoma" in the criteria, "leiomyosarcoma" in the conditions)
            return from_listed
        return from_criteria
    if from_listed is None and _unlabelled(parsed.trial, vocab):
        # a record with no conditions, keywords or diagnosis in its title (a partial copy):
        # whom it is for is read from inclusion lines that name a disease but do not decide
        # alone (a cohort expansion line, a biopsy line); they admit or they name another
        mentions = _inclusion_mentions(parsed, vocab)
        if mentions:
            got = _best(lineage, mentions, vocab)
            if got is None:
                names = ", ".join(sorted({vocab.diagnosis(e.diagnosis).name for e in mentions}))
                return Relevance(
                    None,
                    f"the record lists no conditions; its criteria name {names}, not this "
                    "diagnosis",
                    evidence=mentions[0],
                )
            note = "the record lists no conditions: verify whom the trial is for"
            return Relevance(got.tier, got.reason, (*got.verify, note), got.evidence)
        got = _best(lineage, _inclusion_named(parsed, vocab), vocab)
        if got is not None:
            note = "the record lists no conditions: verify whom the trial is for"
            return Relevance(got.tier, got.reason, (*got.verify, note), got.evidence)
    if from_listed is None:
        unnamed = _names_no_disease(parsed, vocab) if PRECANCER not in lineage else None
        if unnamed is not None:
            # a record that names no disease at all (no conditions, keywords, or cancer in its
            # title or criteria) but reads as a cancer trial: hiding it would decide what the
            # record does not say
            ev = Evidence("criteria", unnamed, ANY_CANCER)
            return Relevance(
                "basket",
                f"the record names no disease; it reads as a trial for any cancer, from {ev.describe()}",
                ("the record names no disease: verify whom the trial is for",),
                ev,
            )
        return Relevance(
            None, "conditions and keywords do not name this diagnosis or a group containing it"
        )
    return from_listed


# a line that reads as a cancer trial's without naming the cancer ("advanced or metastatic
# disease (unresectable) that is resistant to standard therapy")
_CANCER_TRIAL_LINE_RE = re.compile(
    r"\b(?:metasta\w*|unresectable|locally advanced|advanced (?:or|and/or) metastatic|"
    r"solid tumou?rs?|malignan\w*|recist)\b",
    re.I,
)


def _unlabelled(trial, vocab) -> bool:
    """No conditions, no keywords, and no diagnosis in the title."""
    if trial.conditions or trial.keywords:
        return False
    return not any(
        text and vocab.find_diagnoses(text) for text in (trial.title, trial.official_title)
    )


def _inclusion_mentions(parsed, vocab) -> list[Evidence]:
    """The specific diagnoses the inclusion histology lines require, whether or not a line
    decides alone (bare "cancer" or "malignancy" is no specific diagnosis)."""
    out: list[Evidence] = []
    for c in parsed.criteria:
        if c.type != "histology" or c.section != "inclusion" or c.polarity != "require":
            continue
        for did in c.values.get("diagnoses") or []:
            ev = Evidence("criteria", c.text, did)
            if did != ANY_CANCER and ev not in out:
                out.append(ev)
    return out


def _inclusion_named(parsed, vocab) -> list[Evidence]:
    """The specific diagnoses the inclusion lines name, typed or not ("have a newly diagnosed
    AML according to WHO criteria o patients with AML related to prior chemotherapy ... will
    be eligible" typed no histology): evidence that may admit, never that hides."""
    out: list[Evidence] = []
    for c in parsed.criteria:
        if c.section != "inclusion" or c.source != "text":
            continue
        for did, _m in vocab.find_diagnoses(c.text):
            ev = Evidence("criteria", c.text, did)
            if did != ANY_CANCER and ev not in out:
                out.append(ev)
    return out


def _names_no_disease(parsed, vocab) -> str | None:
    """The inclusion line that makes a record a cancer trial when the record names no disease
    anywhere (no conditions or keywords, no diagnosis in its title or criteria); else None."""
    trial = parsed.trial
    if trial.conditions or trial.keywords:
        return None
    for text in (trial.title or "", trial.official_title or ""):
        if text and vocab.find_diagnoses(text):
            return None
    if _inclusion_mentions(parsed, vocab):
        return None
    for c in parsed.criteria:
        if c.section == "inclusion" and not c.later_step and _CANCER_TRIAL_LINE_RE.search(c.text):
            # "advanced/metastatic malignant tumor": any cancer is no specific disease
            if {d for d, _ in vocab.find_diagnoses(c.text)} - {ANY_CANCER}:
                return None
            return c.text
    return None


# --------------------------------------------------------------------------- purpose

PURPOSE_LABELS = {
    "TREATMENT": "treatment",
    "SUPPORTIVE_CARE": "supportive care",
    "DIAGNOSTIC": "diagnostic",
    "SCREENING": "screening",
    "PREVENTION": "prevention",
    "BASIC_SCIENCE": "basic science",
    "HEALTH_SERVICES_RESEARCH": "health services research",
    "DEVICE_FEASIBILITY": "device feasibility",
    "ECT": "educational / counselling / training",
    "OTHER": "other",
    "OBSERVATIONAL": "observational study",
    "NOT_STATED": "not stated",
}
PURPOSES = tuple(p.lower() for p in PURPOSE_LABELS)
"""``--purpose`` values (lower case): the record's primaryPurpose, ``observational`` for
observational studies (which have none), ``not_stated`` when the record gives none."""


def parse_purposes(value: str | None) -> frozenset[str] | None:
    """``--purpose`` text ("treatment", "treatment,supportive_care", "all") -> purpose keys.

    None (every purpose, grouped) for empty text or ``all``; ValueError naming the allowed
    values for anything else. Spaces and hyphens count as underscores ("supportive care").
    """
    if not value or value.strip().lower() in ("all", "any"):
        return None
    wanted = {re.sub(r"[\s-]+", "_", v.strip().lower()) for v in value.split(",") if v.strip()}
    unknown = sorted(wanted - set(PURPOSES))
    if unknown:
        raise ValueError(
            f"unknown purpose {', '.join(unknown)}; choose from all, {', '.join(PURPOSES)}"
        )
    return frozenset(wanted)


# listed first; a record that states no purpose (older records) stays with treatment trials
FIRST_GROUP_PURPOSES = frozenset({"treatment", "not_stated"})


def purpose_of(trial) -> str:
    """The trial's primary purpose key (upper case, see ``PURPOSE_LABELS``)."""
    if trial.primary_purpose:
        return trial.primary_purpose
    if (trial.study_type or "").upper() == "OBSERVATIONAL":
        return "OBSERVATIONAL"
    return "NOT_STATED"


def purpose_gates(patient, scope: TrialScope) -> list[str]:
    """Reasons a trial's purpose and population close it to a patient with a diagnosis.

    A screening trial looks for a cancer in people not known to have it; a prevention trial
    that takes healthy volunteers is for people without the disease. A patient with an
    established diagnosis can join neither.
    """
    if scope.participants:
        return [
            f"the study enrols {scope.participants}, not patients (title and first inclusion "
            "criterion): the patient cannot take part"
        ]
    if not patient.diagnosis:
        return []
    if scope.purpose == "SCREENING":
        return [
            "screening trial (primary purpose: screening) for people not known to have the "
            f"disease; patient has an established diagnosis ({patient.diagnosis_name or patient.diagnosis})"
        ]
    if scope.purpose == "PREVENTION" and scope.healthy_volunteers:
        return [
            "prevention trial that enrols healthy volunteers; patient has an established "
            f"diagnosis ({patient.diagnosis_name or patient.diagnosis})"
        ]
    return []


# --------------------------------------------------------------------------- gates


def patient_point(patient) -> tuple[float, float] | None:
    """The patient's coordinates: given lat/lon, or the ZIP geocoded offline."""
    if patient.lat is not None and patient.lon is not None:
        return (patient.lat, patient.lon)
    if patient.zip:
        return zip_to_point(patient.zip)
    return None


OPEN_SITE_STATUSES = ("RECRUITING", "NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION")


def sites_abroad_only(trial, country: str) -> list[str]:
    """The countries of the trial's open sites when none is in ``country`` (else [])."""
    open_sites = [
        loc
        for loc in trial.locations
        if not (loc.status or "") or (loc.status or "").upper() in OPEN_SITE_STATUSES
    ]
    countries = sorted({loc.country for loc in open_sites if loc.country})
    if not countries or country in countries or any(not loc.country for loc in open_sites):
        return []
    return countries


def open_site_point(loc) -> tuple[float, float] | None:
    """Coordinates of a site that may enrol (open, or status not stated), else None.

    From the record's geoPoint, or the site's US ZIP through the offline table.
    """
    status = (loc.status or "").upper()
    if status and status not in OPEN_SITE_STATUSES:
        return None
    if loc.lat is not None and loc.lon is not None:
        return (loc.lat, loc.lon)
    if loc.zip and (loc.country or "United States") == "United States":
        return zip_to_point(loc.zip)
    return None


def nearest_site(point, trial) -> tuple[dict | None, float | None]:
    """Nearest open site to ``point``: (site dict, miles rounded to 0.1), or (None, None)."""
    if point is None:
        return None, None
    best: tuple[float, object] | None = None
    for loc in trial.locations:
        site_pt = open_site_point(loc)
        if site_pt is None:
            continue
        miles = haversine_miles(point, site_pt)
        if best is None or miles < best[0]:
            best = (miles, loc)
    if best is None:
        return None, None
    return site_dict(best[1]), round(best[0], 1)


def site_dict(loc) -> dict:
    """The JSON view of a trial site."""
    return {
        "facility": loc.facility,
        "city": loc.city,
        "state": loc.state,
        "country": loc.country,
        "zip": loc.zip,
        "status": loc.status,
    }


def text_age_ranges(parsed) -> list[tuple[float | None, float | None, str]]:
    """Age criteria the criteria text states of its own, read whole (an inclusion line, not a
    later step, not an age at diagnosis, nothing left unexplained; a table indexed by age is
    not one): (min, max, text)."""
    from matcher.eligibility.age import AT_DIAGNOSIS_RE

    out = []
    for c in getattr(parsed, "criteria", None) or ():
        v = c.values
        if (
            c.type != "age"
            or v.get("source") == "structured"
            or c.section != "inclusion"
            or c.polarity != "require"
            or c.later_step
            or c.unexplained
            or AT_DIAGNOSIS_RE.search(c.text)
        ):
            continue
        out.append((v.get("min_years"), v.get("max_years"), c.text))
    return out


def age_bounds(parsed) -> tuple[float | None, float | None]:
    """The age range a structured gate closes on: the registered one, widened where the
    criteria text states a wider age criterion of its own ("Ages 16-65 years" with a
    registered minimum of 18; a cohort "Age >= 18 years who are unsuitable ..." with a
    registered minimum of 60). A text bound widens only the bound it states."""
    trial = parsed.trial
    lo, hi = trial.min_age_years, trial.max_age_years
    for tlo, thi, _ in text_age_ranges(parsed):
        if lo is not None and tlo is not None and tlo < lo:
            lo = tlo
        if hi is not None and thi is not None and thi > hi:
            hi = thi
    return lo, hi


def age_range_note(patient, parsed) -> str | None:
    """A verify item when the patient's age is outside the registered range but inside the
    range the criteria text states (:func:`age_bounds`): the record contradicts itself."""
    age = getattr(patient, "age", None)
    trial = getattr(parsed, "trial", None)
    if age is None or trial is None:
        return None
    lo, hi = trial.min_age_years, trial.max_age_years
    below = lo is not None and age < lo
    above = hi is not None and age > hi
    if not (below or above):
        return None
    wlo, whi = age_bounds(parsed)
    if (wlo is not None and age < wlo) or (whi is not None and age > whi):
        return None
    said = next(
        t for tlo, thi, t in text_age_ranges(parsed)
        if (below and tlo is not None and tlo <= age) or (above and thi is not None and thi >= age)
    )  # fmt: skip
    short = said if len(said) <= 80 else said[:77] + "..."
    side = f"below the registered minimum {_fmt_age(lo)}" if below else (
        f"above the registered maximum {_fmt_age(hi)}"
    )  # fmt: skip
    return f'age {_fmt_age(age)} is {side}, but the criteria text states "{short}": verify'


def structured_gates(patient, trial, config: RankConfig, bounds=None) -> list[str]:
    """Reasons a trial is closed to this patient on its structured fields (status, age, sex).
    ``bounds``: the age range to close on (:func:`age_bounds`), else the registered one."""
    reasons = []
    if config.statuses is not None and trial.status not in config.statuses:
        reasons.append(
            f"status {trial.status or 'not stated'} is not one of {', '.join(sorted(config.statuses))}"
        )
    lo, hi = bounds if bounds is not None else (trial.min_age_years, trial.max_age_years)
    if patient.age is not None:
        if lo is not None and patient.age < lo:
            reasons.append(f"age {_fmt_age(patient.age)} is below the trial minimum {_fmt_age(lo)}")
        if hi is not None and patient.age > hi:
            reasons.append(f"age {_fmt_age(patient.age)} is above the trial maximum {_fmt_age(hi)}")
    sex = (trial.sex or "ALL").upper()
    if patient.sex and sex in ("FEMALE", "MALE") and patient.sex.upper() != sex:
        reasons.append(f"trial enrols {sex.lower()} participants only; patient is {patient.sex}")
    return reasons


def _fmt_age(years: float) -> str:
    return f"{years:g} years" if years >= 1 else f"{round(years * 12)} months"


# --------------------------------------------------------------------------- one pair


def _is_structured(verdict) -> bool:
    return verdict.criterion.values.get("source") == "structured"


def table9_boost(patient, parsed, ctx: MatchContext, verify: list[str]) -> tuple[str, int] | None:
    """The Table 9 boost (text, points) when the trial tests an agent of the patient's subtype;
    appends the options' verify items (also for an agent whose option does not apply)."""
    if not patient.diagnosis:
        return None
    trial_drugs = ctx.trial_drugs(parsed)
    for drug, option_id in ctx.targeted_agents(patient.diagnosis):
        if drug not in trial_drugs:
            continue
        option = ctx.option_result(patient, option_id)
        if option is not None and option.status == "not_applicable":
            # e.g. crizotinib for IMT when the patient is ALK negative: no boost, say why
            verify.append(
                f"tests {drug} (Table 9, {option_id}), but that option does not apply: "
                + "; ".join(option.reasons)
            )
            continue
        if option is not None:
            verify.extend(f"{option_id}: {v}" for v in option.verify)
        return (
            f"tests {drug}, a Table 9 agent for {patient.diagnosis_name} "
            f"({option_id}; under clinical evaluation, not standard)",
            BOOST_TABLE9,
        )
    return None


def prior_fit_boost(patient, verdicts) -> tuple[str, int] | None:
    """The line-of-therapy boost: the patient had a prior therapy the trial requires.

    Reads the verdicts, the patient's prior therapies and (for a requirement of some cohorts
    only) the diagnosis lineage: the facts the verdicts of those criteria are memoized on."""
    had_drugs, had_classes = patient.prior_drugs, patient.prior_drug_classes
    for v in verdicts:
        c = v.criterion
        if c.type != "prior_therapy_required" or v.verdict == "NOT_MET":
            continue
        applies_to = getattr(c, "applies_to", None)
        if (
            applies_to
            and patient.diagnosis
            and not set(applies_to) & set(patient.diagnosis_lineage)
        ):
            continue  # a requirement for other histologies' cohorts: not this patient's line
        # the patient had what the trial asks for (progression on it may still need checking)
        fit = sorted(set(c.values.get("drugs") or []) & had_drugs) + sorted(
            set(c.values.get("classes") or []) & had_classes
        )
        if fit:
            return (
                f"fits the patient's line of therapy: trial requires prior {', '.join(fit)}; "
                f"patient had {', '.join(sorted(had_drugs))}",
                BOOST_PRIOR_THERAPY_FIT,
            )
    return None


def resection_candidate(patient) -> bool:
    """Lung metastases and a primary not known to be uncontrolled."""
    return "lung" in (patient.metastatic_sites or []) and patient.primary_controlled is not False


def resection_boost(patient, parsed, ctx: MatchContext) -> tuple[str, int] | None:
    """The local-treatment boost: a metastasectomy / SBRT trial for a resection candidate."""
    if not resection_candidate(patient):
        return None
    hit = ctx.local_procedures(parsed)
    if not hit:
        return None
    ctl = "primary controlled" if patient.primary_controlled else "primary control not recorded"
    return (
        f"local treatment of lung metastases ({', '.join(sorted(hit))}); "
        f"patient has lung metastases ({ctl})",
        BOOST_RESECTION,
    )


def _boosts(
    patient, parsed, verdicts, ctx: MatchContext, verify: list[str]
) -> list[tuple[str, int]]:
    """Knowledge-pack alignment boosts (text, points); appends the options' verify items."""
    found = (
        table9_boost(patient, parsed, ctx, verify),
        prior_fit_boost(patient, verdicts),
        resection_boost(patient, parsed, ctx),
    )
    return [b for b in found if b is not None]


def gates(patient, trial, config: RankConfig, site_miles, bounds=None) -> list[str]:
    """Every structured reason (status, age, sex, distance) that closes ``trial`` to ``patient``
    (``bounds``: see :func:`structured_gates`)."""
    reasons = structured_gates(patient, trial, config, bounds)
    miles = site_miles[1]
    if config.max_miles is not None and miles is not None and miles > config.max_miles:
        reasons.append(f"nearest open site is {miles:g} miles away (limit {config.max_miles:g})")
    return reasons


@dataclass(frozen=True)
class VerdictPartition:
    """The criterion verdicts of one pair sorted into what a suggestion says (texts in order):
    depends on the verdicts only, so it can be shared by every pair with the same verdicts."""

    met: list[str]
    verify: list[str]
    to_review: list[str]
    grouped: dict[str, list[str]]  # GROUPED_UNKNOWNS type -> reasons
    excluded: list[str]

    @property
    def n_unknown(self) -> int:
        """Unknowns toward the penalty (each grouped type counts once, if it counts)."""
        return len(self.verify) + sum(1 for t in self.grouped if GROUPED_UNKNOWNS[t][1])


def partition_verdicts(verdicts) -> VerdictPartition:
    """Sort criterion verdicts (structured age/sex skipped: :func:`structured_gates` judges
    them) into met, to verify, lines to read, grouped unknowns and exclusions."""
    met, verify, to_review, grouped, excluded = [], [], [], {}, []
    for v in verdicts:
        if _is_structured(v):
            continue  # structured age/sex are judged by structured_gates
        if v.criterion.type == "unparsed":
            to_review.append(v.criterion.text)
        elif v.verdict == "NOT_MET":
            excluded.append(f"{v.criterion.section}: {v.reason}")
        elif v.verdict == "UNKNOWN" and v.criterion.type in GROUPED_UNKNOWNS:
            grouped.setdefault(v.criterion.type, []).append(v.reason)
        elif v.verdict == "UNKNOWN":
            verify.append(v.reason)
        else:
            met.append(v.reason)
    return VerdictPartition(met, verify, to_review, grouped, excluded)


def judge(
    patient,
    parsed,
    rel: Relevance,
    gate_reasons,
    verdicts,
    ctx: MatchContext,
    site_miles,
    partition: VerdictPartition | None = None,
) -> Suggestion:
    """Build the suggestion for one relevant (patient, trial) pair.

    ``gate_reasons`` come from :func:`gates`; ``verdicts`` from ``eligibility.evaluate`` (empty
    when a structured gate already closed the trial: its criteria are not evaluated).
    ``partition``: :func:`partition_verdicts` of ``verdicts`` when the caller kept it (the
    columnar engine keeps one per distinct verdict list), else computed here.
    """
    trial = parsed.trial
    scope = ctx.scope(parsed)
    part = partition if partition is not None else partition_verdicts(verdicts)
    marker_out, marker_settled = marker_check(patient, rel)
    excluded_by = list(gate_reasons) + purpose_gates(patient, scope) + part.excluded
    if marker_out:
        excluded_by.append(marker_out)
    verify = ([] if marker_settled else list(rel.verify)) + part.verify
    if (age_note := age_range_note(patient, parsed)) is not None:
        verify.append(age_note)
    met, to_review = list(part.met), list(part.to_review)
    grouped = part.grouped
    site, miles = site_miles

    boosts = _boosts(patient, parsed, verdicts, ctx, verify)
    n_unknown = len(verify) + sum(1 for t in grouped if GROUPED_UNKNOWNS[t][1])
    for t, items in grouped.items():
        verify.append(
            f"{GROUPED_UNKNOWNS[t][0]} ({len(items)}): " + "; ".join(dict.fromkeys(items))
        )
    parts: dict[str, float] = {"relevance": rel.score}
    for _, pts in boosts:
        parts["alignment"] = parts.get("alignment", 0) + pts
    parts["unknowns"] = -PENALTY_UNKNOWN * n_unknown
    abroad = None
    if miles is not None:
        parts["distance"] = -round(
            min(PENALTY_DISTANCE_CAP, miles / 100 * PENALTY_DISTANCE_PER_100_MILES), 1
        )
    elif getattr(patient, "zip", None) and patient_point(patient) is not None:
        abroad = sites_abroad_only(parsed.trial, "United States")
        if abroad:
            # a US patient; every open site is in another country (often without coordinates):
            # as far as the distance penalty goes
            parts["distance"] = -float(PENALTY_DISTANCE_CAP)
    score = round(sum(parts.values()), 1)

    reasons = [rel.reason] + [text for text, _ in boosts]
    if abroad:
        reasons.append(f"open sites outside the United States only ({', '.join(abroad)})")
    if scope.purpose == "NOT_STATED":
        reasons.append("primary purpose not stated in the record (listed with treatment trials)")
    elif scope.purpose != "TREATMENT":
        reasons.append(
            f"primary purpose: {PURPOSE_LABELS.get(scope.purpose, scope.purpose.lower())} "
            "(listed after treatment trials)"
        )
    if gate_reasons:
        reasons.append("criteria not evaluated: closed by status, age, sex or distance")
    if met:
        reasons.append(f"{len(met)} criteria met")
    if to_review:
        reasons.append(f"{len(to_review)} criteria lines not machine-checked: read them")

    if excluded_by:
        verdict = "excluded"
    elif verify:
        verdict = "needs_review"
    else:
        verdict = "eligible"
    return Suggestion(
        nct_id=trial.nct_id,
        title=trial.title,
        verdict=verdict,
        score=score,
        reasons=reasons,
        verify=verify,
        excluded_by=excluded_by,
        nearest_site=site,
        distance_miles=miles,
        phase="/".join(trial.phases) if trial.phases else "NA",
        status=trial.status,
        last_update=trial.last_update,
        url=trial.url,
        relevance=rel.tier or "unrelated",
        score_parts=parts,
        purpose=scope.purpose.lower(),
        relevance_evidence=rel.to_dict(),
        met=met,
        to_review=to_review,
    )


def order(suggestions: list[Suggestion]) -> list[Suggestion]:
    """Deterministic order, with ranks assigned from 1: treatment trials (and records that
    state no purpose) first, then the others (supportive care, diagnostic, observational ...)
    as their own group; within each,
    trials the patient could join by score, then excluded ones."""
    ranked = sorted(
        suggestions,
        key=lambda s: (
            s.purpose not in FIRST_GROUP_PURPOSES,
            VERDICT_ORDER[s.verdict],
            -s.score,
            s.nct_id,
        ),
    )
    for i, s in enumerate(ranked, 1):
        s.rank = i
    return ranked


def rank_trials(
    patient, parsed_trials, pack, vocab, config: RankConfig | None = None
) -> PatientMatches:
    """Rank ``parsed_trials`` for ``patient``: the straightforward path (every pair evaluated).

    ``matcher.engine`` gives the same result faster for many patients.
    """
    from matcher.eligibility import evaluate

    config = config or RankConfig()
    ctx = MatchContext(pack, vocab)
    point = patient_point(patient)
    out, unrelated = [], 0
    for parsed in parsed_trials:
        rel = relevance(patient.diagnosis, parsed, ctx)
        if rel.tier is None:
            unrelated += 1
            continue
        site_miles = nearest_site(point, parsed.trial)
        gate_reasons = gates(patient, parsed.trial, config, site_miles, age_bounds(parsed))
        verdicts = [] if gate_reasons else evaluate(patient, parsed)
        out.append(judge(patient, parsed, rel, gate_reasons, verdicts, ctx, site_miles))
    return finish(patient, out, unrelated, point, config)


def finish(
    patient, suggestions: list[Suggestion], unrelated: int, point, config: RankConfig | None = None
) -> PatientMatches:
    """Order the suggestions (keeping only ``config.purposes``) and attach the patient notes."""
    n_dropped = 0
    if config is not None and config.purposes is not None:
        kept = [s for s in suggestions if s.purpose in config.purposes]
        n_dropped = len(suggestions) - len(kept)
        suggestions = kept
    notes = patient_notes(patient, n_dropped, point, config)
    return PatientMatches(patient.id, order(suggestions), notes, unrelated)


def patient_notes(patient, n_dropped: int, point, config: RankConfig | None = None) -> list[str]:
    """The notes on a patient's matches: relevant trials of other purposes not shown
    (``n_dropped``), distances not computed, diagnosis not recorded."""
    notes = []
    if n_dropped and config is not None and config.purposes is not None:
        notes.append(
            f"{n_dropped} relevant trial(s) of other primary purposes not "
            f"shown (purpose: {', '.join(sorted(config.purposes))})"
        )
    if patient.zip and point is None:
        notes.append(f"ZIP {patient.zip} not found in the offline table: distances not computed")
    if point is None and not patient.zip:
        notes.append("no ZIP or coordinates recorded: distances not computed")
    if not patient.diagnosis:
        notes.append("diagnosis not recorded: no trial can be judged relevant; add the diagnosis")
    return notes
