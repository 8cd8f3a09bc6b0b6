"""Normalized patient profiles.

A ``Patient`` is what every later step reads. Every field but ``id`` may be ``None``,
which means *unknown* (never "no"). Readers for JSON, CSV and FHIR fill it; see
``read_patients``.
"""

from __future__ import annotations

import csv
import json
import math
import re
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass, field
from datetime import date
from functools import lru_cache
from pathlib import Path

from matcher.errors import InputError, KnowledgeError, MatcherError, PatientError, VocabError

# Canonical metastatic-site names (interface, fixed).
METASTATIC_SITES = (
    "lung",
    "liver",
    "bone",
    "brain",
    "lymph_node",
    "peritoneum",
    "soft_tissue",
    "other",
)

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
    # "newly_diagnosed" | "relapsed" | "refractory" | "remission" (DISEASE_STATUSES); from the
    # ``disease_status`` field or the diagnosis as written ("relapsed AML")
    disease_status: str | None = None
    metastatic: bool | None = None
    metastatic_sites: list[str] | None = None  # canonical names (METASTATIC_SITES)
    lung_metastases_count: int | None = None
    primary_controlled: bool | None = None
    # the tumour can be removed by surgery (as the treating team judges it); None = not recorded
    resectable: bool | None = None
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


@dataclass
class PatientBatch:
    """What a reader returns: the patients that normalized, and one error per patient that failed."""

    patients: list[Patient] = field(default_factory=list)
    errors: list[MatcherError] = field(default_factory=list)
    # file-level warnings (columns not read ...), once per file
    warnings: list[str] = field(default_factory=list)
    columns_not_read: list[str] = field(default_factory=list)  # spreadsheet headers, as written


# ---------------------------------------------------------------------------------------
# Input keys (the fixed interface; CSV columns use the same names)
# ---------------------------------------------------------------------------------------
RECORD_KEYS = (
    "id",
    "age",
    "birth_date",
    "sex",
    "diagnosis",
    "stage",
    "disease_status",
    "metastatic_sites",
    "lung_metastases_count",
    "primary_controlled",
    "resectable",
    "growth",
    "biomarkers",
    "prior_therapies",
    "ecog",
    "karnofsky",
    "lansky",
    "measurable_disease",
    "brain_metastases",
    "pregnant",
    "location",
    "labs",
)
# Accepted as well, for flat inputs (CSV columns): location and lab values at top level.
FLAT_LOCATION_KEYS = ("zip", "lat", "lon")
# Never read or stored, whatever the input holds (privacy): a warning says they were dropped.
PRIVATE_KEYS = ("name", "first_name", "last_name", "given_name", "family_name", "address", "mrn")

MAX_AGE = 120
# More lung nodules than anyone counts one by one: a larger number is a typo or a bad cell.
MAX_LUNG_METASTASES = 1000
MAX_DIAGNOSIS_CHARS = 1000

# Karnofsky (adults) and Lansky (children) to ECOG: the NCI "Performance Status Criteria"
# table used in NCI CTEP / Children's Oncology Group protocol templates (reproduced e.g. in
# the Bethesda Handbook of Clinical Oncology, appendix "Performance Status Scales/Scores"):
# ECOG 0 = 100-90, 1 = 80-70, 2 = 60-50, 3 = 40-30, 4 = 20-10. The table notes that the
# scores are meant to be multiples of 10 and that the Lansky-to-ECOG mapping is intended for
# NCI reporting. A value between two steps is rounded down to the step below (the worse
# status), with a warning; 0 means dead and is rejected.
KARNOFSKY_TO_ECOG = {100: 0, 90: 0, 80: 1, 70: 1, 60: 2, 50: 2, 40: 3, 30: 3, 20: 4, 10: 4}

_TRUE = {"yes", "y", "true", "t", "1"}
_FALSE = {"no", "n", "false", "f", "0"}
_UNKNOWN = {"", "unknown", "unk", "na", "n/a", "?", "nk", "not known", "none recorded"}
# What spreadsheets and pandas write for an empty cell: read as unknown, with a warning.
_NAN_WORDS = {"nan", "-nan", "#n/a", "#na", "null"}
BOOL_ACCEPTED = "yes/no, true/false, 1/0, or blank for unknown"

_SEX = {"female": "female", "f": "female", "male": "male", "m": "male"}

_ROMAN = {
    "1": "I",
    "2": "II",
    "3": "III",
    "4": "IV",
    "i": "I",
    "ii": "II",
    "iii": "III",
    "iv": "IV",
}
_STAGE_RE = re.compile(
    r"^(?:(?:ajcc|tnm|clinical|pathologic(?:al)?)\s+)*(?:stage\s*)?[cpy]{0,2}"
    r"(iv|iii|ii|i|[1-4])\s*([abc][12]?)?$",
    re.IGNORECASE,
)
_METASTATIC_WORDS = {"metastatic", "metastases", "metastasis", "m1", "distant", "disseminated"}
_LOCALIZED_WORDS = {"localized", "localised", "local", "localized disease", "m0"}
STAGE_ACCEPTED = (
    "I, II, III, IV (roman or arabic, sub-letters such as IIIB allowed), metastatic, localized"
)

_GROWTH = {"slow": "slow", "slowly": "slow", "indolent": "slow", "rapid": "rapid", "fast": "rapid"}

# Lab conventions (documented in docs/patient-input.md): ANC and platelets in cells/µL (= /mcL = /mm³,
# the unit US eligibility criteria use: "ANC >= 1,500/mcL"), hemoglobin g/dL, creatinine and
# bilirubin mg/dL, AST and ALT U/L. A value may carry one of the units below; it is converted.
LAB_UNITS: dict[str, str] = {
    "anc": "cells/µL",
    "platelets": "cells/µL",
    "hemoglobin": "g/dL",
    "creatinine": "mg/dL",
    "bilirubin": "mg/dL",
    "ast": "U/L",
    "alt": "U/L",
}
_PER_UL = {
    "/ul": 1.0,
    "cells/ul": 1.0,
    "/mcl": 1.0,
    "cells/mcl": 1.0,
    "/mm3": 1.0,
    "cells/mm3": 1.0,
}
_GIGA_PER_L = {"x10^9/l": 1000.0, "10^9/l": 1000.0, "x10e9/l": 1000.0, "10e9/l": 1000.0,
               "g/l": 1000.0, "/nl": 1000.0, "k/ul": 1000.0, "x10^3/ul": 1000.0, "10^3/ul": 1000.0,
               "k/mcl": 1000.0, "x10^3/mcl": 1000.0}  # fmt: skip
_LAB_FACTORS: dict[str, dict[str, float]] = {
    "anc": {**_PER_UL, **_GIGA_PER_L},
    "platelets": {**_PER_UL, **_GIGA_PER_L},
    "hemoglobin": {"g/dl": 1.0, "g/l": 0.1, "mmol/l": 1.611},
    "creatinine": {"mg/dl": 1.0, "umol/l": 1 / 88.42, "µmol/l": 1 / 88.42},
    "bilirubin": {"mg/dl": 1.0, "umol/l": 1 / 17.1, "µmol/l": 1 / 17.1},
    "ast": {"u/l": 1.0, "iu/l": 1.0},
    "alt": {"u/l": 1.0, "iu/l": 1.0},
}
_LAB_RE = re.compile(r"^\s*([<>≤≥]=?)?\s*([0-9][0-9,]*(?:\.[0-9]+)?|\.[0-9]+)\s*(.*?)\s*$")


# ---------------------------------------------------------------------------------------
# Metastatic sites vocabulary (criteria/vocab/sites.yaml)
# ---------------------------------------------------------------------------------------
@lru_cache(maxsize=1)
def site_synonyms() -> dict[str, str]:
    """Map every accepted spelling (lower case) to its canonical site; validated on load."""
    import yaml

    from matcher.resources import vocab_dir

    path = vocab_dir() / "sites.yaml"
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise KnowledgeError(f"cannot read sites vocabulary: {exc}", path=str(path)) from exc
    if not isinstance(data, dict) or set(data) - {"version", "sites"}:
        raise KnowledgeError("expected top-level keys: version, sites", path=str(path))
    sites = data.get("sites") or {}
    out: dict[str, str] = {}
    for site, spellings in sites.items():
        if site not in METASTATIC_SITES:
            raise KnowledgeError(
                f"unknown site (allowed: {', '.join(METASTATIC_SITES)})", path=str(path), key=site
            )
        for s in [site, *(spellings or [])]:
            key = _site_key(str(s))
            if out.get(key, site) != site:
                raise KnowledgeError(
                    f"spelling {s!r} maps to both {out[key]!r} and {site!r}",
                    path=str(path),
                    key=site,
                )
            out[key] = site
    return out


def _site_key(text: str) -> str:
    return re.sub(r"[\s_\-]+", " ", re.sub(r"[^\w\s\-]", " ", text.lower())).strip()


def resolve_site(text: str) -> str | None:
    """Canonical site for one site name ("pulmonary" -> "lung"), or None when not recognised."""
    key = _site_key(text)
    syn = site_synonyms()
    if key in syn:
        return syn[key]
    for suffix in (" metastases", " metastasis", " mets", " met", " lesions"):
        if key.endswith(suffix) and key[: -len(suffix)] in syn:
            return syn[key[: -len(suffix)]]
    return None


def find_sites(text: str) -> list[str]:
    """Every canonical site named in free text, in order of first mention (no fuzzy matching).

    "Secondary malignant neoplasm of liver" -> ["liver"].
    """
    key = f" {_site_key(text)} "
    found: list[tuple[int, str]] = []
    taken: list[tuple[int, int]] = []
    for spelling, site in sorted(site_synonyms().items(), key=lambda kv: -len(kv[0])):
        if spelling == "other":
            continue
        for m in re.finditer(rf"(?<=\s){re.escape(spelling)}(?=\s)", key):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            taken.append((m.start(), m.end()))
            found.append((m.start(), site))
    out: list[str] = []
    for _, site in sorted(found):
        if site not in out:
            out.append(site)
    return out


# ---------------------------------------------------------------------------------------
# Normalization
# ---------------------------------------------------------------------------------------
class _Ctx:
    """Per-record context: who we are, for error messages, and the warnings collected."""

    def __init__(self, patient_id: str | None, source: str | None):
        self.patient_id = patient_id
        self.source = source
        self.warnings: list[str] = []

    def error(
        self, field_name: str, message: str, value: object = None, accepted: str | None = None
    ):
        return PatientError(
            message,
            patient_id=self.patient_id,
            field=field_name,
            value=value,
            accepted=accepted,
            source=self.source,
        )


def _blank(value: object) -> bool:
    if value is None:
        return True
    if isinstance(value, str) and value.strip().lower() in _UNKNOWN:
        return True
    return isinstance(value, float) and math.isnan(value)


def _number(ctx: _Ctx, field_name: str, value: object, accepted: str) -> float:
    """The one reader for every number a patient record holds: a finite float, or a
    ``PatientError`` naming the patient and field. ``inf``, ``1e400`` and an integer too large
    for a float are refused here, so no caller ever meets a non-finite value."""
    if isinstance(value, bool):
        raise ctx.error(field_name, f"{value!r} is not a number", value, accepted)
    if isinstance(value, (int, float)):
        try:
            num = float(value)
        except OverflowError:
            num = math.inf
    else:
        text = str(value).strip()
        if re.fullmatch(r"\d{1,3}(,\d{3})+(\.\d+)?", text):
            text = text.replace(",", "")
        try:
            num = float(text)
        except ValueError:
            raise ctx.error(
                field_name, f"{_short(value)} is not a number", _short(value), accepted
            ) from None
    if not math.isfinite(num):
        raise ctx.error(
            field_name, f"{_short(value)} is not a finite number", _short(value), accepted
        )
    return num


def _integer(ctx: _Ctx, field_name: str, value: object, accepted: str) -> int:
    num = _number(ctx, field_name, value, accepted)
    if not num.is_integer():
        raise ctx.error(field_name, f"{value!r} is not a whole number", value, accepted)
    return int(num)


def _short(value: object, limit: int = 40) -> str:
    """``repr`` of a value cut to ``limit`` characters (a 400-digit cell stays readable)."""
    try:
        text = repr(value)
    except ValueError:  # an int beyond the interpreter's digit limit
        text = "a number with too many digits"
    return text if len(text) <= limit else f"{text[: limit - 5]}...{text[-2:]}"


def parse_bool(value: object) -> bool | None:
    """yes/no/true/false/1/0 (any case) -> bool; blank/unknown -> None; anything else -> ValueError."""
    if _blank(value):
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(value)


def _bool(ctx: _Ctx, field_name: str, value: object) -> bool | None:
    try:
        return parse_bool(value)
    except ValueError:
        raise ctx.error(
            field_name, f"{value!r} is not a yes/no value", value, BOOL_ACCEPTED
        ) from None


def _as_list(value: object, also: str = "") -> list[str]:
    """A list field: a JSON list, or text separated by ';' (and each of ``also``). Blank items
    dropped."""
    items: Iterable[object]
    if isinstance(value, (list, tuple)):
        items = value
    else:
        items = re.split("[;" + re.escape(also) + "]", str(value))
    return [str(i).strip() for i in items if i is not None and str(i).strip()]


def parse_date(text: str) -> tuple[date, bool]:
    """ISO date (YYYY-MM-DD), or a partial FHIR date (YYYY or YYYY-MM) -> (first day, partial?)."""
    text = str(text).strip()
    m = re.fullmatch(r"(\d{4})(?:-(\d{2}))?(?:-(\d{2}))?(?:T.*)?", text)
    if not m:
        raise ValueError(text)
    y, mo, d = int(m.group(1)), int(m.group(2) or 1), int(m.group(3) or 1)
    return date(y, mo, d), m.group(3) is None


def age_at(birth: date, as_of: date) -> float:
    """Age in years at ``as_of``: completed years plus the elapsed fraction of the current year,
    floored to 2 decimals (so it never reaches a birthday early)."""
    years = as_of.year - birth.year - ((as_of.month, as_of.day) < (birth.month, birth.day))
    last = _anniversary(birth, birth.year + years)
    nxt = _anniversary(birth, birth.year + years + 1)
    frac = (as_of - last).days / (nxt - last).days
    return math.floor((years + frac) * 100) / 100


def _anniversary(birth: date, year: int) -> date:
    try:
        return birth.replace(year=year)
    except ValueError:  # 29 February in a common year
        return date(year, 3, 1)


def _fmt_num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def normalize_record(
    raw: Mapping[str, object], source: str | None = None, as_of: date | None = None
) -> Patient:
    """Turn one input record (JSON object, CSV row or FHIR-derived dict) into a ``Patient``.

    ``raw`` uses the interface keys (see ``RECORD_KEYS``; flat ``zip``/``lat``/``lon`` and lab
    names at top level are accepted too). ``source`` names the file and entry for messages;
    ``as_of`` (default today) is the date ages are computed at. Warnings (fuzzy matches,
    conversions, contradictions, unknown keys) land in ``Patient.warnings``.
    Raises ``PatientError`` naming the patient, the field, the bad value and what is accepted.
    """
    as_of = as_of or date.today()
    if not isinstance(raw, Mapping):
        raise PatientError(
            f"expected an object with patient fields, got {type(raw).__name__}", source=source
        )
    pid_raw = raw.get("id")
    if _blank(pid_raw) or isinstance(pid_raw, (dict, list, bool)):
        raise PatientError(
            "missing required field 'id'" if _blank(pid_raw) else f"invalid id {pid_raw!r}",
            field="id",
            source=source,
            accepted="a non-empty string",
        )
    if isinstance(pid_raw, float) and not math.isfinite(pid_raw):
        raise PatientError(
            f"invalid id {pid_raw!r}", field="id", source=source, accepted="a non-empty string"
        )
    if isinstance(pid_raw, int):
        pid = str(pid_raw)
    elif isinstance(pid_raw, float):
        pid = _fmt_num(pid_raw)
    else:
        pid = str(pid_raw).strip()
    ctx = _Ctx(pid, source)
    pid = _clean_id(ctx, pid)
    ctx.patient_id = pid
    p = Patient(id=pid, source=source)
    raw = _drop_empty_markers(ctx, raw)

    # unknown / private keys: warn, never fail
    labs_in: dict[str, object] = {}
    for key in raw:
        if key in RECORD_KEYS or key in FLAT_LOCATION_KEYS:
            continue
        if key in LAB_KEYS:
            labs_in[key] = raw[key]
        elif str(key).lower() in PRIVATE_KEYS:
            ctx.warnings.append(f"key {key!r} ignored: identifying data is never read")
        elif not _blank(raw[key]):
            ctx.warnings.append(
                f"unknown key {key!r} ignored (accepted keys: {', '.join(RECORD_KEYS)})"
            )

    def get(key: str) -> object:
        v = raw.get(key)
        return None if _blank(v) else v

    _fill_age(ctx, p, get("age"), get("birth_date"), as_of)
    if (sex := get("sex")) is not None:
        s = _SEX.get(str(sex).strip().lower())
        if s is None:
            raise ctx.error("sex", f"unknown sex {sex!r}", sex, "female, male, F, M (any case)")
        p.sex = s
    if (dx := get("diagnosis")) is not None:
        dx_text = str(dx).strip()
        if len(dx_text) > MAX_DIAGNOSIS_CHARS:
            # A note pasted into the cell, or a broken export; fuzzy matching it would take
            # seconds per patient and could pick anything.
            raise ctx.error(
                "diagnosis",
                f"diagnosis text of {len(dx_text):,} characters is too long ({_short(dx_text)})",
                _short(dx_text),
                f"a diagnosis name of at most {MAX_DIAGNOSIS_CHARS:,} characters",
            )
        _fill_diagnosis(ctx, p, dx_text)
    if (ds := get("disease_status")) is not None:
        p.disease_status = _parse_disease_status(ctx, ds)
    elif p.diagnosis_text:
        p.disease_status = disease_status_in(p.diagnosis_text)
    if (st := get("stage")) is not None:
        p.stage = _parse_stage(ctx, st)
    if (sites := raw.get("metastatic_sites")) is not None and not (
        isinstance(sites, str) and sites.strip().lower() in _UNKNOWN
    ):
        p.metastatic_sites = _parse_sites(ctx, sites)
    if (n := get("lung_metastases_count")) is not None:
        accepted = f"a whole number, 0-{MAX_LUNG_METASTASES}"
        p.lung_metastases_count = _integer(ctx, "lung_metastases_count", n, accepted)
        if p.lung_metastases_count < 0:
            raise ctx.error("lung_metastases_count", f"{n!r} is negative", n, accepted)
        if p.lung_metastases_count > MAX_LUNG_METASTASES:
            raise ctx.error("lung_metastases_count", f"{n!r} is out of range", n, accepted)
    p.primary_controlled = _bool(ctx, "primary_controlled", raw.get("primary_controlled"))
    p.resectable = _bool(ctx, "resectable", raw.get("resectable"))
    if (g := get("growth")) is not None:
        p.growth = _GROWTH.get(str(g).strip().lower())
        if p.growth is None:
            raise ctx.error("growth", f"unknown growth {g!r}", g, "slow, rapid")
    if (bm := get("biomarkers")) is not None:
        p.biomarkers = [re.sub(r"\s+", " ", b) for b in _as_list(bm, ",")]
    if (tx := get("prior_therapies")) is not None:
        p.prior_therapies = _parse_therapies(ctx, tx)
    _fill_performance(ctx, p, get("ecog"), get("karnofsky"), get("lansky"))
    p.measurable_disease = _bool(ctx, "measurable_disease", raw.get("measurable_disease"))
    p.brain_metastases = _bool(ctx, "brain_metastases", raw.get("brain_metastases"))
    p.pregnant = _bool(ctx, "pregnant", raw.get("pregnant"))
    _fill_location(ctx, p, raw)
    labs = raw.get("labs")
    if labs is not None and not _blank(labs):
        if not isinstance(labs, Mapping):
            raise ctx.error(
                "labs", "expected an object of lab values", labs, f"keys {', '.join(LAB_KEYS)}"
            )
        labs_in = {**labs, **labs_in}
    _fill_labs(ctx, p, labs_in)
    _reconcile(ctx, p)
    p.warnings = ctx.warnings
    return p


def _drop_empty_markers(ctx: _Ctx, raw: Mapping[str, object]) -> Mapping[str, object]:
    """``NaN``, ``#N/A`` and ``null`` typed as text (spreadsheet and pandas exports of an empty
    cell) mean unknown, as a JSON ``NaN`` does: drop them with one warning per field."""

    def empty(v: object) -> bool:
        return isinstance(v, str) and v.strip().lower() in _NAN_WORDS

    out: dict[str, object] = {}
    for key, value in raw.items():
        if empty(value):
            ctx.warnings.append(f"{key} {value.strip()!r} read as blank (unknown)")
            continue
        if isinstance(value, Mapping) and key in ("labs", "location"):
            kept = {}
            for k, v in value.items():
                if empty(v):
                    ctx.warnings.append(f"{key}.{k} {v.strip()!r} read as blank (unknown)")
                else:
                    kept[k] = v
            value = kept
        out[key] = value
    return out


# Letters of these scripts that look like Latin ones ("р" Cyrillic er, "ο" Greek omicron):
# an id mixing them with Latin letters is almost always a look-alike typed by mistake.
_LOOKALIKE_SCRIPTS = ("LATIN", "CYRILLIC", "GREEK")


def _clean_id(ctx: _Ctx, pid: str) -> str:
    """Patient ids compared as people read them: NFC form, invisible format characters (zero-width
    space, joiners, BOM) removed with a warning, and a warning when Latin letters mix with
    Cyrillic or Greek ones (look-alikes)."""
    nfc = unicodedata.normalize("NFC", pid)
    visible = "".join(ch for ch in nfc if unicodedata.category(ch) != "Cf").strip()
    if not visible:
        raise ctx.error("id", f"invalid id {pid!r} (only invisible characters)", pid,
                        "a non-empty string")  # fmt: skip
    if visible != nfc:
        ctx.warnings.append(f"id {pid!r} held invisible characters; read as {visible!r}")
    scripts = id_scripts(visible)
    if len(scripts) > 1:
        ctx.warnings.append(
            f"id {visible!r} mixes {' and '.join(scripts)} letters (look-alike characters?)"
        )
    return visible


def id_scripts(text: str) -> list[str]:
    """The look-alike scripts (Latin, Cyrillic, Greek) whose letters appear in ``text``."""
    found = []
    for ch in text:
        if ch.isalpha():
            script = unicodedata.name(ch, "").split(" ")[0]
            if script in _LOOKALIKE_SCRIPTS and script.title() not in found:
                found.append(script.title())
    return found


def id_skeleton(pid: str) -> str:
    """A key under which look-alike ids collide: case-folded, compatibility-normalized, and each
    Cyrillic or Greek letter replaced by the Latin letter it resembles (when it has one)."""
    key = unicodedata.normalize("NFKC", pid).casefold()
    return key.translate(_CONFUSABLES)


# Cyrillic and Greek lower-case letters drawn like Latin ones (a deliberately small table: the
# letters seen in typed ids, not the whole Unicode confusables list).
_CONFUSABLES = str.maketrans(
    "авсеһіјкмнорѕтхуԁԛԝαβεικνορτυχ",
    "abcehijkmhopstxydqwabeiknoptux",
)


def _fill_age(ctx: _Ctx, p: Patient, age: object, birth: object, as_of: date) -> None:
    accepted = f"0-{MAX_AGE} years"
    given_age = None
    if age is not None:
        text = str(age).strip().lower()
        m = re.fullmatch(r"(\d+(?:\.\d+)?)\s*(m|mo|mos|months?)", text)
        if m:  # "18 months"
            months = _number(ctx, "age", m.group(1), accepted)
            if months > MAX_AGE * 12:
                raise ctx.error("age", f"age {age!r} is out of range", age, accepted)
            given_age = math.floor(months / 12 * 100) / 100
        else:
            text = re.sub(r"\s*(y|yo|yrs?|years?)$", "", text) if isinstance(age, str) else age
            given_age = _number(ctx, "age", text, accepted)
        if not 0 <= given_age <= MAX_AGE:
            raise ctx.error("age", f"age {age!r} is out of range", age, accepted)
    if birth is not None:
        if isinstance(birth, date):
            bd, partial = birth, False
        else:
            try:
                bd, partial = parse_date(str(birth))
            except ValueError:
                raise ctx.error(
                    "birth_date", f"{birth!r} is not a date", birth, "ISO date YYYY-MM-DD"
                ) from None
        if bd > as_of:
            raise ctx.error(
                "birth_date",
                f"birth date {bd.isoformat()} is in the future (as of {as_of.isoformat()})",
                birth,
                f"a date on or before {as_of.isoformat()}",
            )
        computed = age_at(bd, as_of)
        if computed > MAX_AGE:
            raise ctx.error(
                "birth_date", f"birth date {bd.isoformat()} gives age {computed:g}", birth, accepted
            )
        if partial:
            ctx.warnings.append(
                f"birth_date {str(birth)!r} is partial; age computed from {bd.isoformat()}"
            )
        if given_age is not None and abs(given_age - computed) >= 1:
            ctx.warnings.append(
                f"age {_fmt_num(given_age)} disagrees with birth_date {bd.isoformat()} "
                f"(age {computed:g} on {as_of.isoformat()}); using birth_date"
            )
        p.birth_date, p.age = bd, computed
    elif given_age is not None:
        p.age = given_age


def _fill_diagnosis(ctx: _Ctx, p: Patient, text: str) -> None:
    from matcher.vocab import load_vocab

    p.diagnosis_text = text
    vocab = load_vocab()
    # "actinic keratoses (non-melanoma skin cancer precursor)": the aside names what the
    # condition may lead to, not a second diagnosis
    lookup = _PRECURSOR_ASIDE_RE.sub(" ", text).strip() or text
    try:
        m = vocab.resolve_diagnosis(lookup)
    except VocabError as exc:
        closest = ", ".join(exc.suggestions) if exc.suggestions else "none"
        raise ctx.error(
            "diagnosis",
            f"diagnosis {text!r} not recognised (closest: {closest})",
            text,
            "a diagnosis name, synonym or OncoTree code from criteria/vocab/diagnoses.yaml",
        ) from None
    d = m.entry
    p.diagnosis, p.diagnosis_name = d.id, d.name
    p.diagnosis_lineage = list(d.lineage)
    p.in_sarcoma_pack = bool(d.in_sarcoma_pack)
    if m.method == "fuzzy":
        ctx.warnings.append(f"diagnosis {text!r} resolved to {d.id!r} (score {round(m.score)})")
    elif m.method == "mention":
        ctx.warnings.append(f"diagnosis {text!r} read as {d.id!r} (named in the text)")
    if not d.in_sarcoma_pack:
        ctx.warnings.append(
            f"diagnosis {d.id!r} ({d.family}) is outside the sarcoma pack: standard options "
            "are not evaluated; trials are still matched"
        )


_PRECURSOR_ASIDE_RE = re.compile(
    r"\([^()]*\b(?:precursors?|pre-?cancer\w*|pre-?malignan\w*)\b[^()]*\)", re.IGNORECASE
)
DISEASE_STATUSES = ("newly_diagnosed", "relapsed", "refractory", "remission")
_DISEASE_STATUS_WORDS = (
    ("refractory", r"\brefractory\b|\br/r\b|\bprimary refractory\b"),
    ("relapsed", r"\brelapsed?\b|\brecurrent\b|\brecurred\b|\bsecond relapse\b"),
    ("remission", r"\bin (?:first |second |complete )?remission\b|\bcr[12]\b|\bmrd[- ]negative\b"),
    (
        "newly_diagnosed",
        r"\bnewly[- ]diagnosed\b|\bnew(?:ly)? diagnosis\b|\bnew\b(?= [a-z]+ ?(?:leuk|lymph|myelom|aml|all\b))|\buntreated\b|\btreatment[- ]na[iï]ve\b",
    ),
)


def disease_status_in(text: str) -> str | None:
    """The disease status a diagnosis as written states ("relapsed acute myeloid leukemia",
    "newly diagnosed B-ALL"); None when it states none, or more than one."""
    low = text.lower()
    found = [name for name, rx in _DISEASE_STATUS_WORDS if re.search(rx, low)]
    if found == ["refractory", "relapsed"] or found == ["relapsed", "refractory"]:
        return "refractory"  # "relapsed/refractory": treated without lasting response
    return found[0] if len(found) == 1 else None


def _parse_disease_status(ctx: _Ctx, value: object) -> str | None:
    low = str(value).strip().lower().replace(" ", "_").replace("-", "_")
    if low in _UNKNOWN:
        return None
    if low in DISEASE_STATUSES:
        return low
    found = disease_status_in(str(value))
    if found is None:
        raise ctx.error(
            "disease_status",
            f"unknown disease status {value!r}",
            value,
            ", ".join(DISEASE_STATUSES)
            + " (or words such as 'relapsed/refractory', 'in remission')",
        )
    return found


def _parse_stage(ctx: _Ctx, value: object) -> str:
    text = re.sub(r"\s+", " ", str(value).strip())
    low = text.lower().rstrip(".")
    if low in _METASTATIC_WORDS or low in ("metastatic disease",):
        return "metastatic"
    if low in _LOCALIZED_WORDS:
        return "localized"
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        low = _fmt_num(value)
    m = _STAGE_RE.match(low)
    if not m:
        raise ctx.error("stage", f"unknown stage {value!r}", value, STAGE_ACCEPTED)
    return _ROMAN[m.group(1).lower()] + (m.group(2) or "").upper()


def _parse_sites(ctx: _Ctx, value: object) -> list[str]:
    from rapidfuzz import fuzz, process

    from matcher.tabular import split_list

    # "lung, liver", "lung/liver" and "lung and liver" are lists too
    items = [part for item in _as_list(value) for part in split_list(item)]
    if len(items) == 1 and items[0].lower() in ("none", "no", "[]"):
        return []
    out: list[str] = []
    syn = site_synonyms()
    for item in items:
        site = resolve_site(item)
        if site is None:
            best = process.extractOne(_site_key(item), list(syn), scorer=fuzz.ratio)
            if best and best[1] >= 85:
                site = syn[best[0]]
                ctx.warnings.append(
                    f"metastatic site {item!r} resolved to {site!r} (score {round(best[1])})"
                )
            else:
                site = "other"
                ctx.warnings.append(f"metastatic site {item!r} not recognised; recorded as 'other'")
        if site not in out:
            out.append(site)
    return out


_SPLIT_RE = re.compile(r"\s*(?:\+|/|&|,|\band\b|\bwith\b|\bthen\b)\s*", re.IGNORECASE)


def _parse_therapies(ctx: _Ctx, value: object) -> list[Therapy]:
    from matcher.vocab import load_vocab

    vocab = load_vocab()
    out: list[Therapy] = []
    seen: set[tuple[str, str]] = set()

    def resolve(text: str) -> Therapy | None:
        dm = vocab.resolve_drug(text)
        if dm is not None:
            if dm.method == "fuzzy":
                ctx.warnings.append(
                    f"therapy {text!r} resolved to {dm.entry.id!r} (score {round(dm.score)})"
                )
            return Therapy(text, dm.entry.id, "drug", list(dm.entry.classes))
        proc = vocab.resolve_procedure(text)
        if proc is not None:
            return Therapy(text, proc, "procedure")
        return None

    def regimen(text: str) -> list[Therapy] | None:
        drugs = vocab.resolve_regimen(text)
        if drugs is None:
            return None
        return [Therapy(text, d, "drug", list(vocab.drug(d).classes)) for d in drugs]

    for text in _as_list(value):
        found = resolve(text)
        therapies: list[Therapy] = []
        if found is not None:
            therapies = [found]
        elif (named := regimen(text)) is not None:
            # a named regimen ("R-CHOP", "FOLFOX"): the drugs it is made of
            therapies = named
        else:
            # a regimen written as parts ("doxorubicin + ifosfamide", "gem/doce"): all parts
            # must resolve, else the text is kept whole
            parts = [x for x in _SPLIT_RE.split(text) if x.strip()]
            if len(parts) > 1:
                resolved = [[t] if (t := resolve(x)) is not None else regimen(x) for x in parts]
                if all(resolved):
                    therapies = [t for group in resolved if group for t in group]
        if not therapies:
            ctx.warnings.append(f"prior therapy {text!r} not recognised; kept verbatim")
            therapies = [Therapy(text, text, "unrecognised")]
        for t in therapies:
            if (t.kind, t.name) not in seen:
                seen.add((t.kind, t.name))
                out.append(t)
    return out


def karnofsky_to_ecog(score: int) -> int:
    """ECOG for a Karnofsky or Lansky score (10-100) by the NCI table (``KARNOFSKY_TO_ECOG``)."""
    return KARNOFSKY_TO_ECOG[max(10, min(100, score - score % 10))]


def _fill_performance(
    ctx: _Ctx, p: Patient, ecog: object, karnofsky: object, lansky: object
) -> None:
    # A coordinator's "KPS 80" typed into the ECOG column is a Karnofsky score.
    if isinstance(ecog, str):
        m = re.fullmatch(r"\s*(kps|karnofsky|lansky|lps)\s*:?\s*(\d+)\s*%?\s*", ecog, re.I)
        if m:
            scale = "lansky" if m.group(1).lower() in ("lansky", "lps") else "karnofsky"
            ctx.warnings.append(f"ecog {ecog!r} read as {scale} {m.group(2)}")
            if scale == "lansky" and lansky is None:
                lansky = m.group(2)
            elif karnofsky is None:
                karnofsky = m.group(2)
            ecog = None
        else:
            ecog = re.sub(r"^\s*(ecog|ps|who)\s*:?\s*", "", ecog, flags=re.I)
    for name, val in (("karnofsky", karnofsky), ("lansky", lansky)):
        if val is None:
            continue
        text = re.sub(r"^\s*(kps|karnofsky|lansky|lps)\s*:?\s*|\s*%\s*$", "", str(val), flags=re.I)
        score = _integer(ctx, name, text, "10-100 (multiples of 10)")
        if not 10 <= score <= 100:
            raise ctx.error(
                name, f"{name} {val!r} is out of range", val, "10-100 (multiples of 10; 0 = dead)"
            )
        if score % 10:
            ctx.warnings.append(
                f"{name} {score} is not a multiple of 10; converted as {score - score % 10}"
            )
        setattr(p, name, score)
    if ecog is not None:
        p.ecog = _integer(ctx, "ecog", ecog, "0-4")
        if not 0 <= p.ecog <= 4:
            raise ctx.error("ecog", f"ECOG {ecog!r} is out of range", ecog, "0-4")
    derived = [(n, getattr(p, n)) for n in ("karnofsky", "lansky") if getattr(p, n) is not None]
    if p.ecog is None and derived:
        name, score = derived[0]
        p.ecog = karnofsky_to_ecog(score)
        p.ecog_converted_from = name
        ctx.warnings.append(f"ECOG {p.ecog} converted from {name} {score}")
    elif p.ecog is not None:
        for name, score in derived:
            if karnofsky_to_ecog(score) != p.ecog:
                ctx.warnings.append(
                    f"ecog {p.ecog} disagrees with {name} {score} "
                    f"(= ECOG {karnofsky_to_ecog(score)}); using ecog {p.ecog}"
                )


def _fill_location(ctx: _Ctx, p: Patient, raw: Mapping[str, object]) -> None:
    loc = raw.get("location")
    merged: dict[str, object] = {}
    if loc is not None and not _blank(loc):
        if isinstance(loc, Mapping):
            merged.update(loc)
        elif isinstance(loc, (str, int)) and re.fullmatch(r"\s*\d{5}(-\d{4})?\s*", str(loc)):
            merged["zip"] = loc
        else:
            raise ctx.error(
                "location",
                f"{loc!r} is not a location",
                loc,
                '{"zip": "10065"} or {"lat": .., "lon": ..}',
            )
    for k in FLAT_LOCATION_KEYS:
        if not _blank(raw.get(k)):
            merged[k] = raw[k]
    for k in set(merged) - set(FLAT_LOCATION_KEYS):
        ctx.warnings.append(f"unknown location key {k!r} ignored (accepted: zip, lat, lon)")
    z = merged.get("zip")
    if not _blank(z):
        text = _fmt_num(z) if isinstance(z, (int, float)) else str(z).strip()
        if isinstance(z, int) and len(text) < 5:
            text = text.zfill(5)
            ctx.warnings.append(f"zip {z} read as {text!r} (a number lost its leading zeros)")
        elif re.fullmatch(r"\d{4}(-\d{4})?", text):
            text = "0" + text
            ctx.warnings.append(
                f"zip {z!r} read as {text[:5]!r} (a spreadsheet dropped its leading zero)"
            )
        if not re.fullmatch(r"\d{5}(-\d{4})?", text):
            raise ctx.error("zip", f"{z!r} is not a US ZIP code", z, "5 digits, e.g. 10065")
        p.zip = text[:5]
        from matcher.geo import zip_to_point

        if zip_to_point(p.zip) is None:
            ctx.warnings.append(f"zip {p.zip!r} not in the offline ZIP table; distance unknown")
    lat, lon = merged.get("lat"), merged.get("lon")
    if _blank(lat) != _blank(lon):
        raise ctx.error(
            "location", "lat and lon must be given together", merged, "both lat and lon"
        )
    if not _blank(lat):
        p.lat = _number(ctx, "lat", lat, "-90 to 90")
        p.lon = _number(ctx, "lon", lon, "-180 to 180")
        if not -90 <= p.lat <= 90:
            raise ctx.error("lat", f"latitude {lat!r} is out of range", lat, "-90 to 90")
        if not -180 <= p.lon <= 180:
            raise ctx.error("lon", f"longitude {lon!r} is out of range", lon, "-180 to 180")


def _fill_labs(ctx: _Ctx, p: Patient, labs: Mapping[str, object]) -> None:
    for key, value in labs.items():
        if key not in LAB_KEYS:
            ctx.warnings.append(f"unknown lab {key!r} ignored (accepted: {', '.join(LAB_KEYS)})")
            continue
        if _blank(value):
            continue
        p.labs[key] = _lab_value(ctx, key, value)


def _lab_value(ctx: _Ctx, key: str, value: object) -> float:
    units = _LAB_FACTORS[key]
    accepted = f"a number in {LAB_UNITS[key]}, or with a unit: {', '.join(units)}"
    if isinstance(value, bool):
        raise ctx.error(f"labs.{key}", f"{value!r} is not a number", value, accepted)
    if isinstance(value, (int, float)):
        num, unit = _number(ctx, f"labs.{key}", value, accepted), ""
    else:
        m = _LAB_RE.match(str(value))
        if not m:
            raise ctx.error(f"labs.{key}", f"{_short(value)} is not a number", value, accepted)
        num = _number(ctx, f"labs.{key}", m.group(2).replace(",", ""), accepted)
        unit = re.sub(r"\s+", "", m.group(3).lower()).replace("μ", "µ").replace("×", "x")
        unit = unit.replace("mcmol", "umol").replace("/µl", "/ul").replace("cells/µl", "cells/ul")
    if unit:
        if unit not in units:
            raise ctx.error(f"labs.{key}", f"unknown unit in {value!r}", value, accepted)
        converted = num * units[unit]
        if units[unit] != 1.0:
            ctx.warnings.append(
                f"{key} {str(value).strip()!r} converted to {_fmt_num(round(converted, 4))} {LAB_UNITS[key]}"
            )
        return round(converted, 4)
    # A bare number is in the documented unit; values only plausible in the other common unit
    # are converted, with a warning (an ANC of 1.5 is 1.5 x10^9/L, not 1.5 cells/µL).
    if key in ("anc", "platelets") and num < (50 if key == "anc" else 1000) and num > 0:
        converted = num * 1000
        ctx.warnings.append(
            f"{key} {_fmt_num(num)} read as x10^9/L and converted to {_fmt_num(converted)} cells/µL"
        )
        return round(converted, 4)
    if key == "hemoglobin" and num > 25:
        ctx.warnings.append(
            f"hemoglobin {_fmt_num(num)} read as g/L and converted to {num / 10:g} g/dL"
        )
        return round(num / 10, 4)
    return num


def _stage_extent(p: Patient) -> str | None:
    """What the recorded stage group settles for this cancer (``Diagnosis.stage_extent``):
    "m0", "unsure", or None (the general rule: stage IV is metastatic)."""
    if not p.stage or not p.diagnosis:
        return None
    from matcher.vocab import load_vocab

    d = load_vocab().diagnoses.get(p.diagnosis)
    return dict(d.stage_extent).get(p.stage.upper()) if d is not None else None


def _reconcile(ctx: _Ctx, p: Patient) -> None:
    """Cross-field rules: implied metastatic status, brain metastases, contradictions."""
    sites = p.metastatic_sites
    if p.lung_metastases_count and sites is not None and "lung" not in sites:
        sites.append("lung")
    elif p.lung_metastases_count and sites is None:
        p.metastatic_sites = sites = ["lung"]
    if sites is not None and p.lung_metastases_count == 0 and "lung" in sites:
        ctx.warnings.append("lung_metastases_count is 0 but metastatic_sites lists lung; kept both")
    if p.brain_metastases is True and sites is not None and "brain" not in sites:
        sites.append("brain")
    elif p.brain_metastases is True and sites is None:
        p.metastatic_sites = sites = ["brain"]
    if sites and "brain" in sites:
        if p.brain_metastases is False:
            ctx.warnings.append(
                "brain_metastases is 'no' but metastatic_sites lists brain; kept both"
            )
        elif p.brain_metastases is None:
            p.brain_metastases = True
    stage_metastatic = p.stage is not None and (p.stage.startswith("IV") or p.stage == "metastatic")
    stage_local = p.stage is not None and not stage_metastatic
    settled = _stage_extent(p)
    if settled == "m0":
        # stage IVA of a head and neck cancer is locoregional (M0 by definition)
        stage_metastatic, stage_local = False, True
    elif settled == "unsure":
        stage_metastatic = stage_local = False
    if sites:
        p.metastatic = True
        if stage_local:
            ctx.warnings.append(
                f"stage {p.stage} contradicts metastatic sites ({', '.join(sites)}); "
                "kept both, treated as metastatic"
            )
    elif stage_metastatic:
        p.metastatic = True
    elif stage_local or sites == []:
        p.metastatic = False
    if p.sex == "male" and p.pregnant:
        ctx.warnings.append("pregnant is 'yes' for a male patient; kept as given")


# ---------------------------------------------------------------------------------------
# Readers
# ---------------------------------------------------------------------------------------
FORMATS = ("json", "csv", "fhir")


def read_patients(
    path: str | Path, fmt: str | None = None, as_of: date | None = None
) -> PatientBatch:
    """Read and normalize every patient in a JSON, CSV or FHIR file, or a folder of FHIR bundles.

    ``fmt`` is "json", "csv", "fhir" or None (sniffed from the extension and content).
    Per-patient problems are collected in ``PatientBatch.errors`` while the others proceed.
    Raises ``InputError`` when the file as a whole cannot be read (missing, not UTF-8,
    malformed JSON with line/column, a CSV without an ``id`` column ...).
    """
    path = Path(path)
    as_of = as_of or date.today()
    if fmt is not None and fmt not in FORMATS:
        raise InputError(f"unknown format {fmt!r} (accepted: {', '.join(FORMATS)})", path=str(path))
    if path.is_dir():
        if fmt not in (None, "fhir"):
            raise InputError(
                f"is a folder; only --format fhir reads a folder (of bundles), not {fmt}",
                path=str(path),
            )
        from matcher.fhir import read_fhir_folder

        return _normalize_all(read_fhir_folder(path), as_of)
    if not path.exists():
        raise InputError("file not found", path=str(path))
    text = _read_text(path)
    if fmt is None:
        from matcher.tabular import sniff_format

        fmt = sniff_format(path, text)
    if fmt == "csv":
        headers: list = []
        batch = _normalize_all(_csv_records(path, text, headers), as_of)
        for hmap in headers:
            batch.warnings += hmap.warnings
            batch.columns_not_read += hmap.dropped
        return batch
    data = load_json_text(text, path)
    if fmt == "fhir" or _looks_fhir(data):
        from matcher.fhir import fhir_records

        return _normalize_all(fhir_records(data, str(path)), as_of)
    return _normalize_all(_json_records(path, data), as_of)


# A record source yields (raw record | error, source label, reader warnings).
_Item = tuple[Mapping[str, object] | MatcherError, str, list[str]]


def _normalize_all(items: Iterable[_Item], as_of: date) -> PatientBatch:
    batch = PatientBatch()
    seen: dict[str, str] = {}
    skeletons: dict[str, str] = {}
    for raw, source, warnings in items:
        if isinstance(raw, MatcherError):
            batch.errors.append(raw)
            continue
        try:
            p = normalize_record(raw, source=source, as_of=as_of)
        except PatientError as exc:
            batch.errors.append(exc)
            continue
        except Exception as exc:  # a defect must cost one patient, never the whole batch
            pid = raw.get("id") if isinstance(raw, Mapping) else None
            batch.errors.append(
                PatientError(
                    f"could not be read ({type(exc).__name__}: {exc}); please report this",
                    patient_id=str(pid) if pid is not None else None,
                    source=source,
                )
            )
            continue
        p.warnings = list(warnings) + p.warnings
        if p.id in seen:
            batch.errors.append(
                PatientError(
                    f"duplicate id (already used at {seen[p.id]})",
                    patient_id=p.id,
                    field="id",
                    source=source,
                    accepted="a unique id per patient",
                )
            )
            continue
        seen[p.id] = source
        twin = skeletons.setdefault(id_skeleton(p.id), p.id)
        if twin != p.id:
            p.warnings.append(
                f"id {p.id!r} looks like id {twin!r} (at {seen[twin]}) but differs in "
                "case or look-alike letters; kept as two patients"
            )
        batch.patients.append(p)
    return batch


def _read_text(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (byte {exc.start}); save the file as UTF-8", path=str(path)
        ) from None
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror or exc}", path=str(path)) from None


def load_json_text(text: str, path: Path | str) -> object:
    """Parse JSON, turning a syntax error into ``InputError`` with its line and column."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"invalid JSON: {exc.msg}",
            path=str(path),
            location=f"line {exc.lineno}, column {exc.colno}",
        ) from None
    except RecursionError:
        raise InputError(
            "JSON nested too deeply to be a patient file (thousands of levels of [ or {)",
            path=str(path),
        ) from None
    except ValueError as exc:  # an integer beyond the interpreter's digit limit
        raise InputError(f"invalid JSON: {exc}", path=str(path)) from None


def _looks_fhir(data: object) -> bool:
    if isinstance(data, dict):
        return "resourceType" in data
    return (
        bool(data)
        and isinstance(data, list)
        and all(isinstance(d, dict) and "resourceType" in d for d in data)
    )


def _json_records(path: Path, data: object) -> Iterable[_Item]:
    if isinstance(data, dict) and "id" not in data and isinstance(data.get("patients"), list):
        data = data["patients"]  # {"patients": [...]} wrapper
    if isinstance(data, dict):
        yield data, str(path), []
        return
    if not isinstance(data, list):
        raise InputError(
            f"expected a patient object or a list of them, got {type(data).__name__}",
            path=str(path),
        )
    for i, item in enumerate(data, start=1):
        source = f"{path}, entry {i}"
        if not isinstance(item, dict):
            yield (
                PatientError(f"expected an object, got {type(item).__name__}", source=source),
                source,
                [],
            )
        else:
            yield item, source, []


def _csv_records(path: Path, text: str, headers: list | None = None) -> Iterable[_Item]:
    """CSV rows as raw records: the delimiter sniffed, headers mapped to fields
    (``matcher.tabular``: "Age (years)" -> age, "Patient ID" -> id), blank cells dropped
    (unknown), lists left as text for ``normalize_record``. The header's ``HeaderMap``
    (columns not read, their warnings) is appended to ``headers``.

    A row the CSV parser cannot read (a stray or unclosed quote) is that row's error and the
    rows after it are still read. A file that does not end with a line break may have been cut
    short: a last row with fewer cells than the header is refused, a full one gets a warning."""
    from matcher.tabular import map_header, sniff_delimiter

    delimiter = sniff_delimiter(text, path)
    lines = _physical_lines(text)
    rows = _csv_rows(lines, delimiter)
    header = None
    for line, _end, header in rows:
        if isinstance(header, csv.Error):
            raise InputError(f"malformed CSV: {header}", path=str(path), location=f"line {line}")
        if any(h.strip() for h in header):
            break
        header = None
    if header is None:
        raise InputError(
            "empty CSV file: expected a header row with an 'id' column", path=str(path)
        )
    hmap = map_header(header, str(path))
    if headers is not None:
        headers.append(hmap)
    cols = [f or "" for f in hmap.fields]
    cut = bool(lines) and not lines[-1].endswith(("\n", "\r"))
    for line, end, row in rows:
        source = f"{path}, line {line}"
        if isinstance(row, csv.Error):
            yield (
                PatientError(
                    f"malformed CSV row ({row}); this row is not read, the others are "
                    "(a stray or unclosed '\"'? quote the whole cell or remove the quote)",
                    source=source,
                ),
                source,
                [],
            )
            continue
        if not any(c.strip() for c in row):
            continue
        if len(row) > len(cols):
            yield (
                PatientError(
                    f"{len(row)} cells but the header has {len(cols)} columns "
                    "(a list separated by ',' instead of ';'? quote the cell)",
                    source=source,
                ),
                source,
                [],
            )
            continue
        warnings: list[str] = []
        if cut and end == len(lines):
            if len(row) < len(cols):
                yield (
                    PatientError(
                        f"the file ends in the middle of this row ({len(row)} of {len(cols)} "
                        "cells, no line break): it was probably cut short; this row is not "
                        "read (export the file again)",
                        source=source,
                    ),
                    source,
                    [],
                )
                continue
            warnings.append(
                f"the file ends without a line break after this row: if it was cut short, "
                f"the last cell ({cols[len(row) - 1]} = {row[-1]!r}) may be incomplete"
            )
        record = {c: v for c, v in zip(cols, row, strict=False) if c and v.strip()}
        yield record, source, warnings


def _physical_lines(text: str) -> list[str]:
    """Lines with their line breaks, split on CR, LF and CRLF only (``str.splitlines`` would also
    split on form feeds and Unicode separators inside a cell)."""
    return re.findall(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$", text)


def _csv_rows(lines: list[str], delimiter: str) -> Iterator[tuple[int, int, list[str] | csv.Error]]:
    """``(first line, last line, cells)`` per CSV record (lines counted from 1), or a
    ``csv.Error`` in place of the cells for a record the parser refuses; parsing goes on after
    it. An unclosed quote would swallow the rest of the file, so after one the reading restarts
    on the line below the quote's row."""
    pos = 0
    while pos < len(lines):
        feed = _LineFeed(lines, pos)
        reader = csv.reader(feed, delimiter=delimiter, strict=True)
        while True:
            start = feed.next_index
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:
                yield start + 1, feed.next_index, exc
                if feed.next_index >= len(lines):  # ran to the end: restart below this row
                    pos = start + 1
                    break
                continue
            yield start + 1, feed.next_index, row


class _LineFeed:
    """Lines for ``csv.reader`` from ``start``, remembering which line comes next."""

    def __init__(self, lines: list[str], start: int):
        self.lines = lines
        self.next_index = start

    def __iter__(self) -> _LineFeed:
        return self

    def __next__(self) -> str:
        if self.next_index >= len(self.lines):
            raise StopIteration
        self.next_index += 1
        return self.lines[self.next_index - 1]
