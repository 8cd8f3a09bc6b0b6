"""Normalized patient profiles.

A ``Patient`` is what every later step reads. Every field but ``id`` may be ``None``,
which means *unknown* (never "no"). Readers for JSON, CSV and FHIR fill it; see
``read_patients``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import date

# Canonical metastatic-site names (interface, fixed).
METASTATIC_SITES = ("lung", "liver", "bone", "brain", "lymph_node", "peritoneum", "soft_tissue", "other")

LAB_KEYS = ("anc", "platelets", "hemoglobin", "creatinine", "bilirubin", "ast", "alt")


@dataclass
class Therapy:
    """One prior therapy as given, and what it resolved to."""

    text: str  # as written in the input
    name: str  # canonical drug / procedure name, or ``text`` when unrecognised
    kind: str  # "drug" | "procedure" | "unrecognised"
    classes: list[str] = field(default_factory=list)  # drug classes from the vocabulary


@dataclass
class Patient:
    """One normalized patient. ``None`` = unknown."""

    id: str
    source: str | None = None  # file (and entry/line) the patient came from
    age: float | None = None  # years, at ``as_of``
    birth_date: date | None = None
    sex: str | None = None  # "female" | "male"
    diagnosis_text: str | None = None  # as written
    diagnosis: str | None = None  # canonical diagnosis id from criteria/vocab/diagnoses.yaml
    diagnosis_name: str | None = None  # its display name
    diagnosis_lineage: list[str] = field(default_factory=list)  # id, parent, ..., "solid_tumor"
    in_sarcoma_pack: bool | None = None  # False: cancer outside sarcoma (recognised by family)
    stage: str | None = None  # "I".."IV" with sub-letter ("IVA"), "metastatic" or "localized"
    metastatic: bool | None = None
    metastatic_sites: list[str] | None = None  # canonical names (METASTATIC_SITES)
    lung_metastases_count: int | None = None
    primary_controlled: bool | None = None
    growth: str | None = None  # "slow" | "rapid"
    biomarkers: list[str] | None = None
    prior_therapies: list[Therapy] | None = None
    ecog: int | None = None
    ecog_converted_from: str | None = None  # "karnofsky" | "lansky" when ``ecog`` was derived
    karnofsky: int | None = None
    lansky: int | None = None
    measurable_disease: bool | None = None
    brain_metastases: bool | None = None
    pregnant: bool | None = None
    zip: str | None = None
    lat: float | None = None
    lon: float | None = None
    labs: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    # -- convenience views used by knowledge, eligibility and ranking -------------------
    @property
    def prior_drugs(self) -> set[str]:
        """Canonical names of every prior drug (empty when unknown or none)."""
        return {t.name for t in (self.prior_therapies or []) if t.kind == "drug"}

    @property
    def prior_drug_classes(self) -> set[str]:
        """Every drug class the patient has received."""
        return {c for t in (self.prior_therapies or []) for c in t.classes}

    def to_dict(self) -> dict:
        """JSON-ready dict (dates as ISO strings)."""
        d = asdict(self)
        if self.birth_date is not None:
            d["birth_date"] = self.birth_date.isoformat()
        return d
