"""Ranked trial suggestions for one patient, each claim explained.

For a patient and a set of parsed trials:

1. **Relevance** (per diagnosis and trial, so it is computed once per distinct diagnosis):
   the histology a trial *requires in its criteria* wins over its condition list; otherwise
   the conditions and keywords decide. Tiers, best first: the patient's subtype (or a subtype
   group such as liposarcoma) > soft tissue sarcoma > sarcoma > a solid-tumour basket. A trial
   that admits none of the patient's lineage is unrelated and not shown.
2. **Hard gates**: overall status, structured age and sex, ``--max-miles``, and any criterion
   verdict ``NOT_MET``. A gated trial is listed as ``excluded`` with every reason.
3. **Score** = relevance + knowledge-pack boosts - unknown penalty - distance penalty
   (constants below, documented in the README).
4. **Verdict**: ``excluded`` (any gate), ``needs_review`` (any ``UNKNOWN`` criterion or an
   unverified relevance), else ``eligible`` (every typed criterion met; untyped lines are still
   listed "to review").

Order: trials the patient could join (eligible or needs_review) by score, high first; then
excluded trials by score; ties by NCT id.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from matcher.geo import haversine_miles, zip_to_point

DEFAULT_STATUSES = frozenset({"RECRUITING", "NOT_YET_RECRUITING"})

# Relevance tiers and their base score.
TIER_SCORES = {"subtype": 100, "soft_tissue_sarcoma": 80, "sarcoma": 60, "basket": 40}
TIER_LABELS = {
    "subtype": "names the patient's subtype",
    "soft_tissue_sarcoma": "soft tissue sarcoma trial",
    "sarcoma": "sarcoma trial",
    "basket": "solid-tumour basket that admits the patient's diagnosis",
}
GENERIC_IDS = {
    "soft_tissue_sarcoma": "soft_tissue_sarcoma",
    "sarcoma": "sarcoma",
    "solid_tumor": "basket",
}

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


@dataclass(frozen=True)
class Relevance:
    """Why a trial is (or is not) relevant to a diagnosis."""

    tier: str | None  # key of TIER_SCORES, or None = unrelated
    reason: str
    verify: tuple[str, ...] = ()

    @property
    def score(self) -> int:
        return TIER_SCORES.get(self.tier or "", 0)


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
        self._options: dict = {}  # the last patient's option results only

    @staticmethod
    def _key(parsed) -> tuple:
        return (parsed.trial.nct_id, parsed.trial.last_update, id(parsed))

    def trial_targets(self, parsed) -> tuple[frozenset[str], frozenset[str]]:
        """(histologies the criteria require, diagnoses the conditions and keywords name)."""
        key = self._key(parsed)
        if key not in self._targets:
            required: set[str] = set()
            for c in parsed.criteria:
                if c.type == "histology" and c.polarity == "require":
                    required.update(c.values.get("diagnoses", []))
            listed: set[str] = set()
            for text in (*parsed.trial.conditions, *parsed.trial.keywords):
                if text:
                    listed.update(d for d, _ in self.vocab.find_diagnoses(text))
            self._targets[key] = (frozenset(required), frozenset(listed))
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


def _best_tier(lineage: tuple[str, ...], targets: set[str], vocab) -> tuple[str | None, str, list]:
    """Best tier of ``targets`` that admit a patient with ``lineage``; with the target named."""
    best: tuple[int, str | None, str] = (0, None, "")
    verify: list[str] = []
    for t in sorted(targets):
        tier = None
        if t in lineage:
            tier = GENERIC_IDS.get(t, "subtype")
        elif lineage and lineage[0] in GENERIC_IDS and vocab.is_a(t, lineage[0]):
            # patient's subtype is not recorded; the trial wants a specific one
            tier = GENERIC_IDS[lineage[0]]
            verify.append(
                f"trial is for {vocab.diagnosis(t).name}; patient's subtype not recorded: verify histology"
            )
        if tier is not None and TIER_SCORES[tier] > best[0]:
            best = (TIER_SCORES[tier], tier, t)
    return best[1], best[2], verify


def relevance(diagnosis_id: str | None, parsed, ctx: MatchContext) -> Relevance:
    """How relevant a parsed trial is to a diagnosis (see module docstring)."""
    if not diagnosis_id:
        return Relevance(None, "diagnosis not recorded: relevance cannot be judged")
    vocab = ctx.vocab
    lineage = tuple(vocab.diagnosis(diagnosis_id).lineage)
    required, listed = ctx.trial_targets(parsed)

    tier_c, target_c, verify_c = _best_tier(lineage, listed, vocab)
    if required:
        tier_r, target_r, verify_r = _best_tier(lineage, required, vocab)
        if tier_r is None:
            names = ", ".join(sorted(vocab.diagnosis(d).name for d in required))
            return Relevance(None, f"criteria require {names}, which excludes this diagnosis")
        # criteria admit the patient; a more specific condition listing may sharpen the tier
        if tier_c is not None and TIER_SCORES[tier_c] > TIER_SCORES[tier_r]:
            tier_r, target_r, verify_r = tier_c, target_c, verify_c
        return Relevance(
            tier_r,
            f"{TIER_LABELS[tier_r]} ({vocab.diagnosis(target_r).name})",
            tuple(verify_r),
        )
    if tier_c is None:
        return Relevance(None, "conditions do not name this diagnosis or a group containing it")
    return Relevance(
        tier_c, f"{TIER_LABELS[tier_c]} ({vocab.diagnosis(target_c).name})", tuple(verify_c)
    )


# --------------------------------------------------------------------------- gates


def patient_point(patient) -> tuple[float, float] | None:
    """The patient's coordinates: given lat/lon, or the ZIP geocoded offline."""
    if patient.lat is not None and patient.lon is not None:
        return (patient.lat, patient.lon)
    if patient.zip:
        return zip_to_point(patient.zip)
    return None


OPEN_SITE_STATUSES = ("RECRUITING", "NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION")


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


def structured_gates(patient, trial, config: RankConfig) -> list[str]:
    """Reasons a trial is closed to this patient on its structured fields (status, age, sex)."""
    reasons = []
    if config.statuses is not None and trial.status not in config.statuses:
        reasons.append(
            f"status {trial.status or 'not stated'} is not one of {', '.join(sorted(config.statuses))}"
        )
    if patient.age is not None:
        if trial.min_age_years is not None and patient.age < trial.min_age_years:
            reasons.append(
                f"age {_fmt_age(patient.age)} is below the trial minimum {_fmt_age(trial.min_age_years)}"
            )
        if trial.max_age_years is not None and patient.age > trial.max_age_years:
            reasons.append(
                f"age {_fmt_age(patient.age)} is above the trial maximum {_fmt_age(trial.max_age_years)}"
            )
    sex = (trial.sex or "ALL").upper()
    if patient.sex and sex in ("FEMALE", "MALE") and patient.sex.upper() != sex:
        reasons.append(f"trial enrols {sex.lower()} participants only; patient is {patient.sex}")
    return reasons


def _fmt_age(years: float) -> str:
    return f"{years:g} years" if years >= 1 else f"{round(years * 12)} months"


# --------------------------------------------------------------------------- one pair


def _is_structured(verdict) -> bool:
    return verdict.criterion.values.get("source") == "structured"


def _boosts(
    patient, parsed, verdicts, ctx: MatchContext, verify: list[str]
) -> list[tuple[str, int]]:
    """Knowledge-pack alignment boosts (text, points); appends the options' verify items."""
    boosts: list[tuple[str, int]] = []
    trial = parsed.trial
    trial_drugs = {d for i in trial.interventions for d in i.drug_ids}
    if patient.diagnosis:
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
            boosts.append(
                (
                    f"tests {drug}, a Table 9 agent for {patient.diagnosis_name} "
                    f"({option_id}; under clinical evaluation, not standard)",
                    BOOST_TABLE9,
                )
            )
            if option is not None:
                verify.extend(f"{option_id}: {v}" for v in option.verify)
            break
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
            boosts.append(
                (
                    f"fits the patient's line of therapy: trial requires prior {', '.join(fit)}; "
                    f"patient had {', '.join(sorted(had_drugs))}",
                    BOOST_PRIOR_THERAPY_FIT,
                )
            )
            break
    sites = patient.metastatic_sites or []
    if "lung" in sites and patient.primary_controlled is not False:
        hit = ctx.local_procedures(parsed)
        if hit:
            ctl = (
                "primary controlled"
                if patient.primary_controlled
                else "primary control not recorded"
            )
            boosts.append(
                (
                    f"local treatment of lung metastases ({', '.join(sorted(hit))}); "
                    f"patient has lung metastases ({ctl})",
                    BOOST_RESECTION,
                )
            )
    return boosts


def gates(patient, trial, config: RankConfig, site_miles) -> list[str]:
    """Every structured reason (status, age, sex, distance) that closes ``trial`` to ``patient``."""
    reasons = structured_gates(patient, trial, config)
    miles = site_miles[1]
    if config.max_miles is not None and miles is not None and miles > config.max_miles:
        reasons.append(f"nearest open site is {miles:g} miles away (limit {config.max_miles:g})")
    return reasons


def judge(
    patient, parsed, rel: Relevance, gate_reasons, verdicts, ctx: MatchContext, site_miles
) -> Suggestion:
    """Build the suggestion for one relevant (patient, trial) pair.

    ``gate_reasons`` come from :func:`gates`; ``verdicts`` from ``eligibility.evaluate`` (empty
    when a structured gate already closed the trial: its criteria are not evaluated).
    """
    trial = parsed.trial
    excluded_by = list(gate_reasons)
    met, verify, to_review, grouped = [], list(rel.verify), [], {}
    for v in verdicts:
        if _is_structured(v):
            continue  # structured age/sex are judged by structured_gates
        if v.criterion.type == "unparsed":
            to_review.append(v.criterion.text)
        elif v.verdict == "NOT_MET":
            excluded_by.append(f"{v.criterion.section}: {v.reason}")
        elif v.verdict == "UNKNOWN" and v.criterion.type in GROUPED_UNKNOWNS:
            grouped.setdefault(v.criterion.type, []).append(v.reason)
        elif v.verdict == "UNKNOWN":
            verify.append(v.reason)
        else:
            met.append(v.reason)
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
    if miles is not None:
        parts["distance"] = -round(
            min(PENALTY_DISTANCE_CAP, miles / 100 * PENALTY_DISTANCE_PER_100_MILES), 1
        )
    score = round(sum(parts.values()), 1)

    reasons = [rel.reason] + [text for text, _ in boosts]
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
        met=met,
        to_review=to_review,
    )


def order(suggestions: list[Suggestion]) -> list[Suggestion]:
    """Deterministic order, with ranks assigned from 1."""
    ranked = sorted(suggestions, key=lambda s: (VERDICT_ORDER[s.verdict], -s.score, s.nct_id))
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
        gate_reasons = gates(patient, parsed.trial, config, site_miles)
        verdicts = [] if gate_reasons else evaluate(patient, parsed)
        out.append(judge(patient, parsed, rel, gate_reasons, verdicts, ctx, site_miles))
    return finish(patient, out, unrelated, point)


def finish(patient, suggestions: list[Suggestion], unrelated: int, point) -> PatientMatches:
    """Order the suggestions and attach the patient-level notes."""
    notes = []
    if patient.zip and point is None:
        notes.append(f"ZIP {patient.zip} not found in the offline table: distances not computed")
    if point is None and not patient.zip:
        notes.append("no ZIP or coordinates recorded: distances not computed")
    if not patient.diagnosis:
        notes.append("diagnosis not recorded: no trial can be judged relevant; add the diagnosis")
    return PatientMatches(patient.id, order(suggestions), notes, unrelated)
