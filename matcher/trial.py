"""The trial model: the structured fields of one ClinicalTrials.gov record.

``Trial.from_record(record)`` reads the internal record shape (the API v2 study dict;
classic XML is mapped to it by ``matcher.records``) and never raises on a real record:
missing modules give empty/``None`` fields and unknown enum values are kept as written.
The free-text eligibility criteria are parsed by ``matcher.eligibility``.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

MAX_AGE_YEARS = 150.0  # an age bound beyond this is a typo or a garbled record: no bound
REGISTRY_URL = "https://clinicaltrials.gov/study/{nct_id}"

_AGE_RE = re.compile(
    r"^\s*(\d+(?:\.\d+)?)\s*(year|yr|month|week|day|hour|minute)s?\s*$", re.IGNORECASE
)
_UNIT_YEARS = {
    "year": 1.0,
    "yr": 1.0,
    "month": 1.0 / 12.0,
    "week": 7.0 / 365.25,
    "day": 1.0 / 365.25,
    "hour": 1.0 / (365.25 * 24),
    "minute": 1.0 / (365.25 * 24 * 60),
}
_MESH_RE = re.compile(r"^([A-Za-z])0*(\d+)$")
_SEX = {"ALL": "ALL", "BOTH": "ALL", "FEMALE": "FEMALE", "MALE": "MALE"}


def parse_age(text: object) -> float | None:
    """``"18 Years"`` -> 18.0, ``"6 Months"`` -> 0.5, ``"1 Year"`` -> 1.0 (years).

    Absent, empty, ``"N/A"`` or unreadable values mean *no bound* and give ``None``.
    """
    if text is None or isinstance(text, bool):
        return None
    if isinstance(text, int | float):
        return _f(text, 0, MAX_AGE_YEARS)
    m = _AGE_RE.match(str(text))
    if not m:
        return None
    years = _f(m.group(1), 0)
    if years is None:
        return None
    return _f(round(years * _UNIT_YEARS[m.group(2).lower()], 4), 0, MAX_AGE_YEARS)


def normalize_mesh_id(mesh_id: str) -> str:
    """Bring the two MeSH id widths to one: ``D000008175`` and ``D008175`` -> ``D008175``.

    The letter is kept and the number is zero-padded to six digits (longer numbers stay
    as they are), so ``C#########`` supplementary ids compare equal to their short form.
    """
    m = _MESH_RE.match((mesh_id or "").strip())
    if not m:
        return (mesh_id or "").strip()
    return f"{m.group(1).upper()}{int(m.group(2)):06d}"


@dataclass(frozen=True)
class MeshTerm:
    """One MeSH concept attached to the trial (conditions or interventions)."""

    id: str  # normalized width (see ``normalize_mesh_id``)
    term: str
    source: str  # "condition" | "intervention"


@dataclass
class Intervention:
    """One intervention as registered, plus the vocabulary drug ids it names."""

    name: str
    type: str | None
    other_names: list[str] = field(default_factory=list)
    drug_ids: list[str] = field(default_factory=list)


@dataclass
class Location:
    """One trial site. ``status`` is the site recruitment status (often absent)."""

    facility: str | None
    city: str | None
    state: str | None
    country: str | None
    zip: str | None
    lat: float | None
    lon: float | None
    status: str | None


@dataclass
class Trial:
    """Structured fields of one record. ``None`` / empty = not stated in the record."""

    nct_id: str
    title: str | None = None
    official_title: str | None = None
    status: str | None = None
    phases: list[str] = field(default_factory=list)
    study_type: str | None = None
    # designInfo.primaryPurpose (TREATMENT, SUPPORTIVE_CARE, DIAGNOSTIC, SCREENING, PREVENTION ...)
    primary_purpose: str | None = None
    conditions: list[str] = field(default_factory=list)
    keywords: list[str] = field(default_factory=list)
    mesh_terms: list[MeshTerm] = field(default_factory=list)
    interventions: list[Intervention] = field(default_factory=list)
    min_age_years: float | None = None
    max_age_years: float | None = None
    min_age_text: str | None = None  # as registered, e.g. "18 Years"
    max_age_text: str | None = None
    sex: str = "ALL"  # "ALL" | "FEMALE" | "MALE" (unknown values kept upper-cased)
    healthy_volunteers: bool | None = None
    locations: list[Location] = field(default_factory=list)
    last_update: str | None = None  # ISO date (possibly partial, "2025-09")
    criteria_text: str | None = None  # eligibilityCriteria as registered

    @property
    def url(self) -> str:
        """Public registry page of the study."""
        return REGISTRY_URL.format(nct_id=self.nct_id)

    @property
    def drug_ids(self) -> set[str]:
        """Every vocabulary drug id among the interventions."""
        return {d for i in self.interventions for d in i.drug_ids}

    @property
    def mesh_ids(self) -> set[str]:
        """Normalized MeSH ids of conditions and interventions."""
        return {m.id for m in self.mesh_terms}

    def to_dict(self) -> dict:
        """JSON-ready dict (adds ``url``)."""
        d = asdict(self)
        d["url"] = self.url
        return d

    @classmethod
    def from_record(cls, record: dict, vocab: Any = None) -> Trial:
        """Build a ``Trial`` from a v2 study dict.

        ``vocab`` (a ``matcher.vocab.Vocab``) resolves intervention names to drug ids; by
        default ``load_vocab()`` is used. Raises ``RecordError`` only when the record has
        no NCT id at all.
        """
        from matcher.errors import RecordError

        if not isinstance(record, dict):
            raise RecordError("record is not a JSON object (expected an API v2 study)")
        ps = _d(record.get("protocolSection"))
        ident = _d(ps.get("identificationModule"))
        nct_id = ident.get("nctId")
        if not nct_id or not isinstance(nct_id, str):
            raise RecordError(
                "record has no protocolSection.identificationModule.nctId; "
                "expected an API v2 study or a classic XML record"
            )
        status = _d(ps.get("statusModule"))
        design = _d(ps.get("designModule"))
        conds = _d(ps.get("conditionsModule"))
        elig = _d(ps.get("eligibilityModule"))
        derived = _d(record.get("derivedSection"))

        trial = cls(nct_id=nct_id.strip().upper())
        trial.title = _s(ident.get("briefTitle"))
        trial.official_title = _s(ident.get("officialTitle"))
        trial.status = _enum(status.get("overallStatus"))
        trial.phases = [p for p in (_enum(x) for x in _l(design.get("phases"))) if p]
        trial.study_type = _enum(design.get("studyType"))
        trial.primary_purpose = _enum(_d(design.get("designInfo")).get("primaryPurpose"))
        trial.conditions = [c for c in (_s(x) for x in _l(conds.get("conditions"))) if c]
        trial.keywords = [k for k in (_s(x) for x in _l(conds.get("keywords"))) if k]
        trial.mesh_terms = _mesh(derived)
        trial.min_age_text = _s(elig.get("minimumAge"))
        trial.max_age_text = _s(elig.get("maximumAge"))
        trial.min_age_years = parse_age(trial.min_age_text)
        trial.max_age_years = parse_age(trial.max_age_text)
        sex = (_s(elig.get("sex")) or "ALL").upper()
        trial.sex = _SEX.get(sex, sex)
        hv = elig.get("healthyVolunteers")
        trial.healthy_volunteers = hv if isinstance(hv, bool) else None
        trial.criteria_text = _s(elig.get("eligibilityCriteria"))
        trial.locations = _locations(_d(ps.get("contactsLocationsModule")))
        trial.last_update = _last_update(status, derived)
        trial.interventions = _interventions(_d(ps.get("armsInterventionsModule")), vocab)
        return trial


# -- tolerant readers ---------------------------------------------------------------------


def _d(x: object) -> dict:
    return x if isinstance(x, dict) else {}


def _l(x: object) -> list:
    return x if isinstance(x, list) else []


def _s(x: object) -> str | None:
    if x is None:
        return None
    s = str(x).strip()
    return s or None


def _f(x: object, low: float = -math.inf, high: float = math.inf) -> float | None:
    """A finite number within ``[low, high]``, else None (unknown): a record is data from
    elsewhere, and a ``1e400`` or ``NaN`` in it must not reach the arithmetic downstream."""
    if isinstance(x, bool):
        return None
    try:
        value = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError, OverflowError):
        return None
    return value if math.isfinite(value) and low <= value <= high else None


def _enum(x: object) -> str | None:
    """Upper-snake an enum value; unknown values are kept (never rejected)."""
    s = _s(x)
    if s is None:
        return None
    return re.sub(r"[^A-Z0-9]+", "_", s.upper()).strip("_") or None


def _mesh(derived: dict) -> list[MeshTerm]:
    out: list[MeshTerm] = []
    seen: set[tuple[str, str]] = set()
    for mod, source in (
        ("conditionBrowseModule", "condition"),
        ("interventionBrowseModule", "intervention"),
    ):
        for m in _l(_d(derived.get(mod)).get("meshes")):
            m = _d(m)
            mid = _s(m.get("id"))
            if not mid:
                continue
            key = (normalize_mesh_id(mid), source)
            if key in seen:
                continue
            seen.add(key)
            out.append(MeshTerm(id=key[0], term=_s(m.get("term")) or "", source=source))
    return out


def _locations(mod: dict) -> list[Location]:
    out = []
    for loc in _l(mod.get("locations")):
        loc = _d(loc)
        geo = _d(loc.get("geoPoint"))
        out.append(
            Location(
                facility=_s(loc.get("facility")),
                city=_s(loc.get("city")),
                state=_s(loc.get("state")),
                country=_s(loc.get("country")),
                zip=_s(loc.get("zip")),
                lat=_f(geo.get("lat"), -90, 90),
                lon=_f(geo.get("lon"), -180, 180),
                status=_enum(loc.get("status")),
            )
        )
    return out


def _last_update(status: dict, derived: dict) -> str | None:
    return (
        _s(_d(status.get("lastUpdatePostDateStruct")).get("date"))
        or _s(status.get("lastUpdateSubmitDate"))
        or _s(_d(derived.get("miscInfoModule")).get("versionHolder"))
    )


def _interventions(mod: dict, vocab: Any) -> list[Intervention]:
    items = [_d(i) for i in _l(mod.get("interventions"))]
    if not items:
        return []
    if vocab is None:
        from matcher.vocab import load_vocab

        vocab = load_vocab()
    out = []
    for it in items:
        name = _s(it.get("name")) or ""
        others = [o for o in (_s(x) for x in _l(it.get("otherNames"))) if o]
        itype = _enum(it.get("type"))
        drug_ids: list[str] = []
        if itype not in ("PROCEDURE", "RADIATION", "BEHAVIORAL", "DEVICE", "DIAGNOSTIC_TEST"):
            drug_ids = _drug_ids(vocab, [name, *others])
        out.append(Intervention(name=name, type=itype, other_names=others, drug_ids=drug_ids))
    return out


def _drug_ids(vocab: Any, names: list[str]) -> list[str]:
    """Drug ids named by an intervention: exact mentions first, then fuzzy resolution."""
    ids: list[str] = []
    for n in names:
        for drug_id, _ in vocab.find_drugs(n):
            if drug_id not in ids:
                ids.append(drug_id)
    if not ids and names and names[0]:
        # fuzzy only on the registered name: otherNames hold codes that fuzzy-match badly
        m = vocab.resolve_drug(names[0])
        if m is not None:
            ids.append(m.entry.id)
    return ids


_NCT_RE = re.compile(r"^NCT\d{8}$", re.IGNORECASE)


def load_trial_records(ref: str, db_path: str | None = None) -> list[tuple[dict, str]]:
    """Records named by ``ref``: an existing file/folder (any format ``iter_records`` reads)
    or an NCT id looked up in the store at ``db_path`` (default: ``default_db_path()``).

    Returns ``[(record, source)]``. Raises ``TrialNotFound`` (NCT id not stored: run
    ``trialmatch sync`` or ``trialmatch import``), ``InputError`` (neither a file nor an NCT
    id, or a file without readable records) or the record's ``RecordError``.
    """
    from pathlib import Path

    from matcher.errors import InputError, TrialNotFound

    path = Path(ref)
    if path.exists():
        from matcher.records import iter_records

        out: list[tuple[dict, str]] = []
        errors = []
        for item in iter_records(path):
            if item.error is not None:
                errors.append(item.error)
            else:
                out.append((item.record, item.source))
        if not out:
            if errors:
                raise errors[0]
            raise InputError("no trial record found in it", path=str(path))
        return out
    if not _NCT_RE.match(ref.strip()):
        raise InputError(
            f"{ref!r} is neither an existing file nor an NCT id (expected NCT followed by 8 digits, "
            "or a record file: API v2 JSON, /studies page, export array or classic XML)"
        )
    from matcher.store import Store, default_db_path

    nct = ref.strip().upper()
    db = Path(db_path) if db_path else default_db_path()
    record = None
    if db.exists():  # never create an empty store just to look a trial up
        with Store(db) as store:
            record = store.get(nct)
    if record is None:
        raise TrialNotFound(
            nct,
            "not in the local store; run `trialmatch sync` (or `trialmatch import FILE`) first, "
            "or pass a record file instead of the id",
        )
    return [(record, f"store:{nct}")]
