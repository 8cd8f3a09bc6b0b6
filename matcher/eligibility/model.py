"""Criterion types, verdict values and the dataclasses parsing and evaluation share."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    "disease_status",
    "stage",
    "cml_phase",
    "hla",
    "primary_site",
    "unparsed",
)
MET, NOT_MET, UNKNOWN = "MET", "NOT_MET", "UNKNOWN"
# ``Criterion.group`` of an alternatives header's criteria: "any:N" then this separator and the
# index of the alternative (the header's sub-item) the criterion stands under
BRANCH_SEP = "|"
# prefix of ``Criterion.cohort`` for a line scoped to one part of the study, not a cohort
# ("excluded from the exercise intervention (but not the smoking cessation component) for:")
PART_SCOPE = "part of the study: "
# prefix of ``Criterion.later_step`` for criteria about another person than the patient
# ("Donors' inclusion criteria:"): never an enrolment gate for the patient
ABOUT_OTHER = "about another person: "

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
    # words of the cohort subject the vocabulary did not read ("low grade serous" ovarian
    # cancer): a patient with the named diagnosis may or may not be of that kind
    applies_qualifier: str | None = None
    # cancers the line (or its parent line) names, for types whose meaning depends on them
    # ("no prior chemotherapy for lung cancer", "metastatic breast cancer"): a NOT_MET for a
    # patient with another diagnosis becomes UNKNOWN (see ``_SCOPED_TYPES``); None = no name
    disease_scope: list[str] | None = None
    # words of the clause the parse did not account for (see ``clause``): a NOT_MET with
    # words left over is reported as UNKNOWN, quoting them
    unexplained: list[str] = field(default_factory=list)
    # the scope words when the line is for a later step (crossover, step 2, expansion part):
    # never an enrolment gate
    later_step: str | None = None
    # the cohort (part, arm, indication) whose own criteria these are ("Cohort A"): its
    # NOT_MET excludes only when the patient fails some criterion of every cohort
    cohort: str | None = None
    # read only from a definition of another term of the line ("refractory is defined as the
    # failure of CR after 2 courses of idarubicin + cytarabine"): what the term means, not a
    # rule of its own, so never an exclusion
    in_definition: bool = False

    def to_dict(self) -> dict:
        """The fixed JSON shape: section, text, type, polarity, values (``values`` also
        carries ``applies_to`` when the criterion is limited to some histologies)."""
        values = self.values
        if self.applies_to and "applies_to" not in values:
            values = {**values, "applies_to": list(self.applies_to)}
        d = {
            "section": self.section,
            "text": self.text,
            "type": self.type,
            "polarity": self.polarity,
            "values": values,
        }
        if self.unexplained:
            d["unexplained"] = list(self.unexplained)
        if self.later_step:
            d["later_step"] = self.later_step
        if self.cohort:
            d["cohort"] = self.cohort
        return d

    @property
    def not_understood(self) -> list[str]:
        """The words a coordinator must read: the whole line when nothing typed it, else the
        words the typed criterion did not account for (empty: the line was read whole)."""
        if self.type == "unparsed":
            return [self.text]
        return list(self.unexplained)


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
    # UNKNOWN only because the criterion belongs to one cohort: a NOT_MET for that cohort
    cohort_fail: bool = False

    def to_dict(self) -> dict:
        d = self.criterion.to_dict()
        d["verdict"] = self.verdict
        d["reason"] = self.reason
        if self.verdict == UNKNOWN:
            d["not_understood"] = self.criterion.not_understood
        return d
