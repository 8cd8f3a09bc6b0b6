"""FHIR R4 Bundles (mCODE profiles) to patient records.

What goes in: a parsed FHIR Bundle (``transaction``, ``collection``, ``searchset`` ...), a single
resource, a list of either, or a folder of ``*.json`` files. What comes out: raw records with the
interface keys of ``matcher.patient`` (``id``, ``birth_date``, ``sex``, ``diagnosis``, ``stage``,
``metastatic_sites``, ``ecog``, ``karnofsky``, ``biomarkers``, ``prior_therapies``, ``location``)
plus reader warnings; ``matcher.patient.normalize_record`` does the rest, so every input format
shares one set of rules.

Read (and nothing else): Patient ``birthDate``, ``gender``, ``address.postalCode`` (or a
``Parameters`` ``zipCode``); names, address lines, telecom and identifiers are never copied.
PrimaryCancerCondition (``code`` + the histology-morphology-behavior extension; the most
specific diagnosis among them wins), SecondaryCancerCondition (sites from ``bodySite``, else from
the condition's own code text), stage-group Observations (else ``Condition.stage.summary``),
ECOG (LOINC 89247-1) and Karnofsky (LOINC 89243-0) Observations (latest by effective date),
MedicationStatement / MedicationRequest / MedicationAdministration and cancer-related
Procedures (prior therapies), tumor-marker and genomic-variant Observations (biomarkers).

No FHIR library: the handful of paths read here are simpler to follow by hand than through a
model layer, and real bundles break profiles (wrong code systems, foreign subject references)
in ways a validating parser would reject outright.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from matcher.errors import InputError, MatcherError, PatientError, VocabError

LOINC_ECOG = "89247-1"
LOINC_KARNOFSKY = "89243-0"
# Stage group codes: 21908-9 clinical, 21902-2 pathological, 21914-4 other (LOINC "Stage group").
LOINC_STAGE_GROUPS = {"21908-9", "21902-2", "21914-4"}
LOINC_GENE_STUDIED = "48018-6"
LOINC_GENETIC_VARIANT = "69548-6"
LOINC_VARIANT_COMPONENTS = ("81252-9", "81290-9", "48004-6", "48005-3")

# ECOG answers (LOINC answer list for 89247-1), for observations coded without valueInteger.
ECOG_ANSWERS = {"LA9622-7": 0, "LA9623-5": 1, "LA9624-3": 2, "LA9625-0": 3, "LA9626-8": 4}

# Codes seen without a display in real example bundles (fixtures/fhir/), so the text can still
# be read. Only codes whose meaning is certain are listed; anything else yields a warning.
KNOWN_CODES = {
    "254637007": "non-small cell lung cancer",  # SNOMED CT disorder
    "35917007": "adenocarcinoma",  # SNOMED CT morphologic abnormality
    "94225005": "secondary malignant neoplasm of brain",
    "94222008": "secondary malignant neoplasm of bone",
    "94381002": "secondary malignant neoplasm of liver",
    "94391008": "secondary malignant neoplasm of lung",
    "349472": "gefitinib",  # RxNorm: gefitinib 250 MG Oral Tablet
}

POSITIVE_WORDS = ("positive", "present", "detected", "amplification", "amplified", "abnormal")
NEGATIVE_WORDS = ("negative", "absent", "not detected", "normal", "wild type", "wildtype")
_GENOMIC_WORDS = (
    "rearrangement",
    "fusion",
    "mutation",
    "amplification",
    "translocation",
    "deletion",
)

_SKIP_STATUS = {"entered-in-error", "cancelled", "not-taken", "not-done", "draft", "refuted"}
_SECONDARY_RE = re.compile(r"secondary|metasta", re.IGNORECASE)


def _profiles(res: Mapping) -> str:
    meta = res.get("meta")
    prof = meta.get("profile") if isinstance(meta, Mapping) else None
    return " ".join(str(p) for p in prof) if isinstance(prof, list) else ""


def _codings(cc: object) -> list[Mapping]:
    if not isinstance(cc, Mapping):
        return []
    return [c for c in cc.get("coding") or [] if isinstance(c, Mapping)]


def _codes(cc: object) -> set[str]:
    return {str(c.get("code")) for c in _codings(cc) if c.get("code")}


def concept_texts(cc: object) -> list[str]:
    """Every human-readable text of a CodeableConcept: ``text``, each ``display``, then the
    meaning of codes listed in ``KNOWN_CODES`` (SNOMED / RxNorm codes lacking a display)."""
    out: list[str] = []
    if not isinstance(cc, Mapping):
        return out
    if isinstance(cc.get("text"), str) and cc["text"].strip():
        out.append(cc["text"].strip())
    for c in _codings(cc):
        d = c.get("display")
        if isinstance(d, str) and d.strip() and d.strip() not in out:
            out.append(d.strip())
    for c in _codings(cc):
        known = KNOWN_CODES.get(str(c.get("code")))
        if known and known not in out:
            out.append(known)
    return out


def _code_label(cc: object) -> str:
    parts = [
        f"{_system_name(c.get('system'))} {c.get('code')}" for c in _codings(cc) if c.get("code")
    ]
    return ", ".join(parts) or "no code"


def _system_name(system: object) -> str:
    s = str(system or "")
    for key, name in (("snomed", "SNOMED"), ("loinc", "LOINC"), ("rxnorm", "RxNorm")):
        if key in s:
            return name
    return s.rsplit("/", 1)[-1] or "code"


def _strip_qualifier(text: str) -> str:
    """'Infiltrating duct carcinoma of breast (disorder)' -> without the SNOMED semantic tag."""
    return re.sub(r"\s*\((disorder|morphologic abnormality|qualifier value|finding|procedure|"
                  r"body structure|substance|product)\)\s*$", "", text, flags=re.I).strip()  # fmt: skip


def _when(res: Mapping) -> str:
    for key in ("effectiveDateTime", "effectiveInstant", "occurrenceDateTime", "authoredOn",
                "dateAsserted", "issued", "recordedDate", "onsetDateTime"):  # fmt: skip
        if isinstance(res.get(key), str):
            return res[key]
    for key in ("effectivePeriod", "occurrencePeriod"):
        per = res.get(key)
        if isinstance(per, Mapping) and isinstance(per.get("start"), str):
            return per["start"]
    return ""


def _status(res: Mapping) -> str:
    st = res.get("status")
    if isinstance(st, str):
        return st
    vs = res.get("verificationStatus")
    codes = _codes(vs)
    return next(iter(codes), "")


def _ref(value: object) -> str | None:
    if isinstance(value, Mapping) and isinstance(value.get("reference"), str):
        return value["reference"]
    return None


# ---------------------------------------------------------------------------------------
# Bundles -> resources -> per-patient groups
# ---------------------------------------------------------------------------------------
def _bundle_resources(bundle: Mapping, source: str) -> list[tuple[Mapping, str | None]]:
    """(resource, fullUrl) for each entry of a Bundle; nested Bundles are flattened."""
    entries = bundle.get("entry", [])
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise InputError("Bundle.entry is not a list", path=source)
    out: list[tuple[Mapping, str | None]] = []
    for i, entry in enumerate(entries):
        if not isinstance(entry, Mapping):
            raise InputError(
                "bundle entry is not an object", path=source, location=f"Bundle.entry[{i}]"
            )
        res = entry.get("resource")
        if res is None:
            continue
        if not isinstance(res, Mapping) or not isinstance(res.get("resourceType"), str):
            raise InputError(
                "entry resource has no resourceType", path=source, location=f"Bundle.entry[{i}]"
            )
        req = entry.get("request")
        if isinstance(req, Mapping) and str(req.get("method", "")).upper() == "DELETE":
            continue
        if res["resourceType"] == "Bundle":
            out.extend(_bundle_resources(res, source))
        else:
            full = entry.get("fullUrl") if isinstance(entry.get("fullUrl"), str) else None
            out.append((res, full))
    return out


def _patient_keys(res: Mapping, full_url: str | None) -> set[str]:
    keys = set()
    if res.get("id"):
        keys |= {f"Patient/{res['id']}", str(res["id"]), f"urn:uuid:{res['id']}"}
    if full_url:
        keys.add(full_url)
        m = re.search(r"(Patient/[^/]+)$", full_url)
        if m:
            keys.add(m.group(1))
    return keys


def _subject(res: Mapping) -> str | None:
    return _ref(res.get("subject")) or _ref(res.get("patient"))


def group_by_patient(
    resources: list[tuple[Mapping, str | None]], source: str
) -> list[tuple[Mapping | None, list[Mapping], list[str]]]:
    """Split resources into (Patient, its resources, warnings), one group per Patient resource.

    With one Patient, every resource is that patient's (one bundle = one patient); a resource
    whose subject names someone else is still read, with a warning, because real bundles carry
    such defects. With several Patients, resources go by their subject reference.
    """
    patients = [(r, f) for r, f in resources if r.get("resourceType") == "Patient"]
    others = [r for r, _ in resources if r.get("resourceType") != "Patient"]
    if len(patients) <= 1:
        pat = patients[0][0] if patients else None
        keys = _patient_keys(*patients[0]) if patients else set()
        warnings: list[str] = []
        foreign = sorted({s for r in others if (s := _subject(r)) and keys and s not in keys})
        if foreign:
            warnings.append(
                f"resources refer to {', '.join(foreign)}, not this bundle's Patient "
                f"{pat.get('id') if pat else ''!s}; read as the same patient (one bundle = one patient)"
            )
        return [(pat, others, warnings)]
    groups = [(p, _patient_keys(p, f), []) for p, f in patients]
    orphans = 0
    for r in others:
        s = _subject(r)
        for _p, keys, items in groups:
            if s and s in keys:
                items.append(r)
                break
        else:
            orphans += 1
    out = []
    for p, _keys, items in groups:
        w = []
        if orphans:
            w.append(f"{orphans} resource(s) in {source} name no Patient of the bundle; not read")
        out.append((p, items, w))
    return out


# ---------------------------------------------------------------------------------------
# One patient's resources -> raw record
# ---------------------------------------------------------------------------------------
def patient_record(
    patient: Mapping | None, resources: list[Mapping], fallback_id: str
) -> tuple[dict[str, Any], list[str]]:
    """Build the raw record for one patient from its FHIR resources; returns (record, warnings)."""
    warnings: list[str] = []
    raw: dict[str, Any] = {"id": fallback_id}
    by_type: dict[str, list[Mapping]] = {}
    for r in resources:
        if _status(r) in _SKIP_STATUS:
            continue
        by_type.setdefault(r["resourceType"], []).append(r)

    if patient is not None:
        if patient.get("id"):
            raw["id"] = str(patient["id"])
        if patient.get("birthDate"):
            raw["birth_date"] = patient["birthDate"]
        gender = patient.get("gender")
        if gender in ("male", "female"):
            raw["sex"] = gender
        elif gender:
            warnings.append(f"Patient.gender {gender!r} not used (trials list female/male)")
        zips = [
            a.get("postalCode")
            for a in patient.get("address") or []
            if isinstance(a, Mapping) and a.get("postalCode")
        ]
        if zips and re.fullmatch(r"\d{5}(-\d{4})?", str(zips[0]).strip()):
            raw["location"] = {"zip": str(zips[0]).strip()}
        elif zips:
            warnings.append("Patient.address.postalCode is not a US ZIP code; location unknown")
        if patient.get("deceasedBoolean") is True or patient.get("deceasedDateTime"):
            warnings.append("Patient is recorded as deceased")
    for par in by_type.get("Parameters", []):
        for prm in par.get("parameter") or []:
            if (
                isinstance(prm, Mapping)
                and str(prm.get("name", "")).lower() in ("zipcode", "zip", "postalcode")
                and "location" not in raw
            ):
                raw["location"] = {"zip": str(prm.get("valueString") or prm.get("valueCode"))}

    conditions = by_type.get("Condition", [])
    _read_conditions(conditions, raw, warnings)
    observations = by_type.get("Observation", [])
    _read_stage(observations, conditions, raw, warnings)
    _read_performance(observations, raw, warnings)
    _read_biomarkers(observations, raw, warnings)
    _read_therapies(by_type, raw, warnings)
    return raw, list(dict.fromkeys(warnings))


def _is_primary(c: Mapping) -> bool:
    return "primary-cancer-condition" in _profiles(c)


def _is_secondary(c: Mapping) -> bool:
    if "secondary-cancer-condition" in _profiles(c):
        return True
    return not _is_primary(c) and any(_SECONDARY_RE.search(t) for t in concept_texts(c.get("code")))


def _read_conditions(conditions: list[Mapping], raw: dict, warnings: list[str]) -> None:
    from matcher.patient import find_sites, resolve_site

    primaries = [c for c in conditions if _is_primary(c)]
    if not primaries:
        # No mCODE profile: any condition whose text names a cancer (not a metastasis).
        primaries = [c for c in conditions if not _is_secondary(c) and _names_cancer(c)]
    if len(primaries) > 1:
        primaries.sort(key=lambda c: ("active" not in _codes(c.get("clinicalStatus")), _when(c)))
        chosen = primaries[0]
        warnings.append(
            f"{len(primaries)} primary cancer conditions; using "
            f"{_condition_label(chosen)!r} (active, earliest)"
        )
        primaries = [chosen]
    if primaries:
        text = _diagnosis_text(primaries[0], warnings)
        if text:
            raw["diagnosis"] = text
    sites: list[str] = []
    for c in conditions:
        if not _is_secondary(c):
            continue
        found: list[str] = []
        for bs in c.get("bodySite") or []:
            texts = concept_texts(bs)
            for t in texts:
                found += [s for s in [resolve_site(t)] if s] or find_sites(t)
            if not texts or not found:
                warnings.append(
                    f"metastasis body site {_code_label(bs)} not recognised; recorded as 'other'"
                )
                found.append("other")
        if not c.get("bodySite"):
            for t in concept_texts(c.get("code")):
                found += find_sites(t)
            if not found:
                warnings.append(
                    f"secondary cancer condition {_condition_label(c)!r} names no site; "
                    "recorded as 'other'"
                )
                found.append("other")
        sites += [s for s in found if s not in sites]
    if sites:
        raw["metastatic_sites"] = sites


def _names_cancer(c: Mapping) -> bool:
    from matcher.vocab import load_vocab

    v = load_vocab()
    for t in concept_texts(c.get("code")):
        try:
            v.resolve_diagnosis(_strip_qualifier(t))
            return True
        except VocabError:
            continue
    return False


def _condition_label(c: Mapping) -> str:
    texts = concept_texts(c.get("code"))
    return _strip_qualifier(texts[0]) if texts else _code_label(c.get("code"))


_ORGAN_RE = re.compile(
    r"\b(?:neoplasm|carcinoma|cancer|tumou?r) of (?:the )?"
    r"(?:(?:female|male|left|right|upper|lower|overlapping sites of)\s+)*"
    r"([a-z][a-z ]*?)(?:\s+of\s|,|\(|$)",
    re.IGNORECASE,
)


def _diagnosis_text(cond: Mapping, warnings: list[str]) -> str | None:
    """The most specific diagnosis text among the condition's code and its histology."""
    from matcher.vocab import load_vocab

    candidates = [_strip_qualifier(t) for t in concept_texts(cond.get("code"))]
    for ext in cond.get("extension") or []:
        if isinstance(ext, Mapping) and "histology-morphology-behavior" in str(ext.get("url")):
            candidates += [
                _strip_qualifier(t) for t in concept_texts(ext.get("valueCodeableConcept"))
            ]
    if not candidates:
        warnings.append(
            f"primary cancer condition has only codes ({_code_label(cond.get('code'))}) "
            "with no text; diagnosis unknown"
        )
        return None
    # SNOMED names cancers by organ ("Primary malignant neoplasm of female left breast"); the
    # organ phrase "breast cancer" is tried as well, so the vocabulary can place it.
    n_given = len(candidates)
    for text in list(candidates):
        m = _ORGAN_RE.search(text)
        if m:
            candidates.append(f"{m.group(1).strip()} cancer")
    v = load_vocab()
    best: tuple[bool, int, int, str] | None = None
    for i, text in enumerate(candidates):
        try:
            m = v.resolve_diagnosis(text)
        except VocabError:
            continue
        # an organ's cancer beats a histologic type or family word ("adenocarcinoma")
        broad = getattr(m.entry, "level", None) in ("family", "basket", "category")
        key = (broad, -len(m.entry.lineage), i, text)
        if best is None or key < best:
            best = key
    if best is None:
        return candidates[0]
    if best[2] >= n_given:
        warnings.append(f"diagnosis {candidates[0]!r} read as {best[3]!r}")
    return best[3]


# -- stage ---------------------------------------------------------------------------------
_STAGE_IN_TEXT = re.compile(r"\bstage\s*([cpy]{0,2})(iv|iii|ii|i|0|[1-4])([abc][12]?)?\b", re.I)
_STAGE_CODE = re.compile(r"^[cpy]{0,2}(iv|iii|ii|i|0|[1-4])([abc][12]?)?$", re.I)


def stage_from_concept(cc: object) -> str | None:
    """'IV', 'IIIC', ... from a stage CodeableConcept (AJCC code "3C"/"c3A", or display text)."""
    cands: list[tuple[str, str | None]] = []
    for c in _codings(cc):
        if c.get("code") and "cancerstaging" in str(c.get("system", "")):
            m = _STAGE_CODE.match(str(c["code"]).strip())
            if m:
                cands.append((m.group(1), m.group(2)))
    for t in concept_texts(cc):
        m = _STAGE_IN_TEXT.search(t) or _STAGE_CODE.match(t.strip())
        if m:
            g = m.groups()[-2:]
            cands.append((g[0], g[1]))
    for num, letter in cands:
        roman = {"1": "I", "2": "II", "3": "III", "4": "IV", "0": "0"}.get(num, num.upper())
        if roman == "0":
            continue
        return roman + (letter or "").upper()
    return None


def _read_stage(
    observations: list[Mapping], conditions: list[Mapping], raw: dict, warnings: list[str]
) -> None:
    groups = [
        o
        for o in observations
        if "stage-group" in _profiles(o) or _codes(o.get("code")) & LOINC_STAGE_GROUPS
    ]
    obs_stage = None
    for o in sorted(groups, key=_when, reverse=True):
        obs_stage = stage_from_concept(o.get("valueCodeableConcept"))
        if obs_stage:
            break
    cond_stage = None
    for c in conditions:
        if not _is_primary(c):
            continue
        for st in c.get("stage") or []:
            if isinstance(st, Mapping) and (s := stage_from_concept(st.get("summary"))):
                cond_stage = s
                break
        if cond_stage:
            break
    if obs_stage and cond_stage and obs_stage != cond_stage:
        warnings.append(
            f"stage: the stage-group Observation says {obs_stage} but Condition.stage says "
            f"{cond_stage}; using {obs_stage}"
        )
    if obs_stage or cond_stage:
        raw["stage"] = obs_stage or cond_stage


# -- performance status -------------------------------------------------------------------
def _obs_value(o: Mapping) -> int | float | None:
    """The score an Observation records (valueInteger, valueQuantity, an ECOG LOINC answer), or
    None when it holds none that can be read. A decimal is passed on as it is, so the patient
    reader rejects 1.5 by name instead of it being rounded here."""
    if isinstance(o.get("valueInteger"), int) and not isinstance(o["valueInteger"], bool):
        return o["valueInteger"]
    q = o.get("valueQuantity")
    if isinstance(q, Mapping):
        value = q.get("value")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            if isinstance(value, float) and not math.isfinite(value):
                return None
            return int(value) if float(value).is_integer() else value
    for code in _codes(o.get("valueCodeableConcept")):
        if code in ECOG_ANSWERS:
            return ECOG_ANSWERS[code]
    return None


def _value_label(o: Mapping) -> str:
    for key in ("valueInteger", "valueQuantity", "valueString", "valueCodeableConcept"):
        if key in o:
            text = json.dumps(o[key], ensure_ascii=False, default=str)
            return f"{key} {text if len(text) <= 60 else text[:57] + '...'}"
    return "no value"


def _read_performance(observations: list[Mapping], raw: dict, warnings: list[str]) -> None:
    for key, loinc, prof in (
        ("ecog", LOINC_ECOG, "ecog-performance-status"),
        ("karnofsky", LOINC_KARNOFSKY, "karnofsky-performance-status"),
    ):
        found = [o for o in observations if loinc in _codes(o.get("code")) or prof in _profiles(o)]
        for o in sorted(found, key=_when, reverse=True):
            value = _obs_value(o)
            if value is not None:
                raw[key] = value
                break
            # Say so: a silently dropped score reads as "not recorded" to the coordinator.
            warnings.append(
                f"{key} Observation {o.get('id', '')!s} has no readable score "
                f"({_value_label(o)}); skipped"
            )


# -- biomarkers -----------------------------------------------------------------------------
def _is_biomarker(o: Mapping) -> bool:
    prof = _profiles(o)
    return any(k in prof for k in ("tumor-marker", "genetic-variant", "genomic-variant")) or (
        LOINC_GENETIC_VARIANT in _codes(o.get("code"))
    )


def _marker_name(o: Mapping) -> str | None:
    gene = None
    for comp in o.get("component") or []:
        if isinstance(comp, Mapping) and LOINC_GENE_STUDIED in _codes(comp.get("code")):
            cc = comp.get("valueCodeableConcept")
            texts = concept_texts(cc)
            gene = texts[0] if texts else next(iter(sorted(_codes(cc))), None)
    if gene:
        return gene
    texts = [t for t in concept_texts(o.get("code")) if t.lower() != "genetic variant assessment"]
    if not texts:
        return None
    # LOINC long names: keep the analyte, drop "[Interpretation] in Tissue" and the like
    return re.split(r"\s*\[", texts[0])[0].strip() or texts[0]


def _result_words(o: Mapping) -> list[str]:
    words: list[str] = []
    for key in ("valueCodeableConcept", "valueString"):
        v = o.get(key)
        if isinstance(v, str):
            words.append(v)
        words += concept_texts(v)
        words += sorted(_codes(v))
    if isinstance(o.get("valueBoolean"), bool):
        words.append("positive" if o["valueBoolean"] else "negative")
    for interp in o.get("interpretation") or []:
        words += concept_texts(interp) + sorted(_codes(interp))
    return [_strip_qualifier(w) for w in words]


_POS_CODES = {"LA9633-4", "LA6576-8", "10828004", "POS", "DET"}
_NEG_CODES = {"LA9634-2", "LA6577-6", "260385009", "NEG", "N", "ND"}


def _read_biomarkers(observations: list[Mapping], raw: dict, warnings: list[str]) -> None:
    out: list[str] = []
    for o in observations:
        if not _is_biomarker(o):
            continue
        name = _marker_name(o)
        if not name:
            warnings.append(
                f"biomarker Observation {o.get('id', '')!s} has only codes "
                f"({_code_label(o.get('code'))}) and no text; skipped"
            )
            continue
        words = _result_words(o)
        low = " ".join(words).lower()
        genomic = any(g in name.lower() for g in _GENOMIC_WORDS)
        negative = any(w in _NEG_CODES for w in words) or any(n in low for n in NEGATIVE_WORDS)
        positive = any(w in _POS_CODES for w in words) or any(p in low for p in POSITIVE_WORDS)
        variant = _variant_text(o)
        if negative and not positive:
            base = name
            for g in _GENOMIC_WORDS:
                base = re.sub(rf"\s*\b{g}\b", "", base, flags=re.I).strip()
            text = f"{base or name} negative"
        elif positive:
            if "amplification" in low and not genomic:
                text = f"{name} amplification"
            elif genomic:
                text = name
            elif LOINC_GENETIC_VARIANT in _codes(o.get("code")) or "variant" in _profiles(o):
                text = f"{name} variant {variant}" if variant else f"{name} variant present"
            else:
                text = f"{name} positive"
        elif isinstance(o.get("valueQuantity"), Mapping) and "value" in o["valueQuantity"]:
            q = o["valueQuantity"]
            text = f"{name} {q['value']} {q.get('unit', '')}".strip()
        else:
            warnings.append(f"biomarker {name!r}: result unknown or indeterminate; not recorded")
            continue
        if text not in out:
            out.append(text)
    if out:
        raw["biomarkers"] = out


def _variant_text(o: Mapping) -> str | None:
    for comp in o.get("component") or []:
        if isinstance(comp, Mapping) and _codes(comp.get("code")) & set(LOINC_VARIANT_COMPONENTS):
            texts = concept_texts(comp.get("valueCodeableConcept"))
            if texts:
                return texts[0]
    return None


# -- therapies -------------------------------------------------------------------------------
_MED_TYPES = ("MedicationStatement", "MedicationRequest", "MedicationAdministration")
_PROC_PROFILES = ("cancer-related-surgical-procedure", "radiation-procedure", "radiotherapy-course")


def _read_therapies(by_type: dict[str, list[Mapping]], raw: dict, warnings: list[str]) -> None:
    from matcher.vocab import load_vocab

    v = load_vocab()
    meds = {
        f"Medication/{m.get('id')}": m.get("code")
        for m in by_type.get("Medication", [])
        if m.get("id")
    }
    texts: list[str] = []
    skipped = 0
    med_resources = [(rtype, r) for rtype in _MED_TYPES for r in by_type.get(rtype, [])]
    for rtype, r in sorted(med_resources, key=lambda item: _when(item[1])):
        cc = r.get("medicationCodeableConcept")
        if cc is None and (ref := _ref(r.get("medicationReference"))):
            cc = meds.get(ref) or meds.get(f"Medication/{ref.rsplit('/', 1)[-1]}")
        cands = concept_texts(cc)
        if not cands:
            warnings.append(f"{rtype} with only codes ({_code_label(cc)}) not read")
            continue
        cancer = "cancer-related" in _profiles(r)
        # the vocabulary's own reading of the text (e.g. "Paclitaxel 100 MG Injection")
        text = next((t for t in cands if v.resolve_drug(t) is not None), None)
        if text is None and not cancer:
            skipped += 1  # not cancer-related and not a known cancer drug: not a prior therapy
            continue
        text = text or cands[0]
        if text not in texts:
            texts.append(text)
    for r in sorted(by_type.get("Procedure", []), key=_when):
        if any(p in _profiles(r) for p in _PROC_PROFILES):
            cands = [_strip_qualifier(t) for t in concept_texts(r.get("code"))]
            if cands and cands[0] not in texts:
                texts.append(cands[0])
    if skipped:
        warnings.append(
            f"{skipped} medication(s) not cancer-related and not in the drug vocabulary; not read"
        )
    if texts:
        raw["prior_therapies"] = texts


# ---------------------------------------------------------------------------------------
# Entry points used by matcher.patient.read_patients
# ---------------------------------------------------------------------------------------
_Item = tuple[Mapping[str, Any] | MatcherError, str, list[str]]


def fhir_records(data: object, source: str) -> Iterator[_Item]:
    """Raw records (one per Patient) from parsed FHIR JSON: a Bundle, one resource, or a list."""
    if isinstance(data, list):
        for i, item in enumerate(data, start=1):
            if not isinstance(item, Mapping) or "resourceType" not in item:
                raise InputError(
                    "not a FHIR resource (no resourceType)", path=source, location=f"entry {i}"
                )
        if all(d.get("resourceType") == "Bundle" for d in data):
            for i, b in enumerate(data, start=1):
                yield from _records_from(_bundle_resources(b, source), f"{source}, entry {i}")
            return
        yield from _records_from([(d, None) for d in data], source)
        return
    if not isinstance(data, Mapping) or not isinstance(data.get("resourceType"), str):
        raise InputError("not a FHIR resource or Bundle (no resourceType)", path=source)
    if data["resourceType"] == "Bundle":
        yield from _records_from(_bundle_resources(data, source), source)
    else:
        yield from _records_from([(data, None)], source)


def _records_from(resources: list[tuple[Mapping, str | None]], source: str) -> Iterator[_Item]:
    groups = group_by_patient(resources, source)
    for patient, items, warnings in groups:
        label = (
            source
            if len(groups) == 1
            else f"{source}, Patient/{patient.get('id') if patient else ''}"
        )
        if patient is None:
            yield (
                PatientError(
                    "no Patient resource: expected one Patient per bundle",
                    source=label,
                    accepted="a Bundle holding a Patient and resources that refer to it",
                ),
                label,
                [],
            )
            continue
        fallback = Path(source.split(",")[0]).name.split(".")[0]
        try:
            raw, w = patient_record(patient, items, fallback)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:  # malformed shapes
            yield PatientError(f"unreadable FHIR content ({exc!r})", source=label), label, []
            continue
        yield raw, label, warnings + w


def read_fhir_folder(folder: Path) -> Iterator[_Item]:
    """One record per bundle file in ``folder`` (``*.json``, sorted by name). Files holding single
    resources (not Bundles) are pooled and grouped by patient, as if they were one bundle."""
    from matcher.patient import _read_text, load_json_text

    files = sorted(p for p in Path(folder).iterdir() if p.suffix.lower() == ".json" and p.is_file())
    if not files:
        raise InputError("folder holds no *.json FHIR files", path=str(folder))
    loose: list[tuple[Mapping, str | None]] = []
    for f in files:
        data = load_json_text(_read_text(f), f)
        if isinstance(data, Mapping) and data.get("resourceType") == "Bundle":
            yield from fhir_records(data, str(f))
        elif isinstance(data, Mapping) and isinstance(data.get("resourceType"), str):
            loose.append((data, None))
        else:
            raise InputError("not a FHIR resource or Bundle (no resourceType)", path=str(f))
    if loose:
        yield from _records_from(loose, str(folder))
