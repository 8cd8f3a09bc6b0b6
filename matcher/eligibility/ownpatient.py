"""The patient a trial is written for, and the NOT_METs the trial gives that patient.

A trial never excludes its own patient: build, from a parsed trial alone, the patient it is
written for -- its condition, an age inside its structured range, the registered sex, ECOG 0,
normal labs, no brain metastases, measurable disease, the prior therapies, markers and
disease state its typed criteria require -- and evaluate the trial on that patient. Every
NOT_MET is a parse error or a real contradiction in the record; the count is a measure of
the parser that needs no labels (``bench/own_patient.py`` prints it for a folder of records).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

NORMAL_LABS = {
    "anc": 4000,
    "platelets": 250000,
    "hemoglobin": 13.5,
    "creatinine": 0.8,
    "bilirubin": 0.6,
    "ast": 20,
    "alt": 20,
}


@dataclass
class OwnPatientResult:
    """One trial checked against its own patient."""

    nct_id: str
    patient: Any | None  # None: no diagnosis of the trial is in the vocabulary
    not_met: list  # Verdicts (free text only)
    note: str = ""


def _diagnosis(parsed, vocab) -> str | None:
    for c in parsed.criteria:
        if c.type == "histology" and c.polarity == "require" and not c.applies_to:
            ids = c.values.get("diagnoses") or []
            if ids:
                return ids[0]
    for text in (*parsed.trial.conditions, parsed.trial.title or ""):
        found = [d for d, _ in vocab.find_diagnoses(text or "") if d != "cancer"]
        if found:
            return found[0]
    return None


def _age(trial) -> float:
    lo, hi = trial.min_age_years, trial.max_age_years
    if lo is not None and hi is not None:
        return round((lo + hi) / 2, 1)
    if lo is not None:
        return max(lo, min(lo + 10, 50.0)) if lo < 50 else lo + 1
    if hi is not None:
        return max(0.5, min(hi - 1, hi / 2))
    return 50.0


def _sex(parsed) -> str | None:
    """The registered sex, else the one a line of the text enrols ("Men with ...")."""
    if parsed.trial.sex in ("FEMALE", "MALE"):
        return parsed.trial.sex
    said = {c.values["sex"] for c in parsed.criteria if c.type == "sex"}
    return said.pop() if len(said) == 1 else None


def own_patient_record(parsed, vocab) -> dict | None:
    """The input record (``matcher.patient`` keys) of the patient the trial is written for."""
    diag = _diagnosis(parsed, vocab)
    if diag is None:
        return None
    trial = parsed.trial
    age = _age(trial)
    rec: dict[str, Any] = {
        "id": f"own-{trial.nct_id}",
        "age": age,
        "sex": "M" if _sex(parsed) == "MALE" else "F",
        "diagnosis": vocab.diagnosis(diag).name,
        "measurable_disease": True,
        "brain_metastases": False,
        "pregnant": False,
        "labs": dict(NORMAL_LABS),
    }
    if age < 16:
        rec["lansky"] = 100
    else:
        rec["ecog"] = 0
    banned_drugs: set[str] = set()
    banned_classes: set[str] = set()
    for c in parsed.criteria:
        if c.type == "prior_therapy_excluded":
            banned_drugs.update(c.values.get("drugs") or [])
            banned_classes.update(c.values.get("classes") or [])
    therapies: list[str] = []
    biomarkers: list[str] = []
    for c in parsed.criteria:
        if c.source != "text" or c.applies_to or c.conditional or c.cohort:
            continue
        v = c.values
        if c.type == "disease_extent" and c.polarity == "require":
            ext = v.get("extent") or []
            if "metastatic" in ext or "advanced" in ext:
                rec["stage"] = "IV"
            elif ext:
                rec.setdefault("stage", "III")
        elif c.type == "disease_extent" and c.polarity == "exclude":
            rec.setdefault("stage", "II")
        elif c.type == "brain_metastases" and c.polarity == "require":
            rec["brain_metastases"] = True
        elif c.type == "measurable_disease" and c.polarity == "exclude":
            rec["measurable_disease"] = False
        elif c.type == "prior_therapy_required":
            drugs = [d for d in v.get("drugs") or [] if d not in banned_drugs]
            if not drugs:
                for cls in v.get("classes") or []:
                    try:
                        members = sorted(vocab.drugs_in_class(cls) - banned_drugs)
                    except Exception:  # noqa: BLE001 - an unknown class is a vocabulary gap
                        members = []
                    if members:
                        drugs = [members[0]]
                        break
            for d in drugs[:1]:
                name = vocab.drug(d).name
                if name not in therapies:
                    therapies.append(name)
            need = v.get("min_lines") or 0
            if need > len(therapies):
                for extra in ("doxorubicin", "ifosfamide", "gemcitabine", "docetaxel"):
                    if len(therapies) >= need:
                        break
                    if extra not in therapies and extra not in banned_drugs:
                        therapies.append(extra)
        elif c.type == "disease_status":
            want = v.get("status") or []
            if c.polarity == "require" and want:
                rec["disease_status"] = want[-1]
            elif c.polarity == "exclude" and "newly_diagnosed" not in want:
                rec.setdefault("disease_status", "newly_diagnosed")
        elif c.type == "biomarker" and c.polarity == "require":
            for m in (v.get("markers") or [])[:1]:
                biomarkers.append(f"{m['gene']} positive")
    _own_stage(parsed, rec)
    if "stage" in rec and rec["stage"] == "IV":
        rec["metastatic_sites"] = ["lung"]
    if therapies:
        rec["prior_therapies"] = therapies
    if biomarkers:
        rec["biomarkers"] = biomarkers
    return rec


def check_own_patient(parsed, vocab=None) -> OwnPatientResult:
    """Evaluate ``parsed`` on the patient it is written for; list the free-text NOT_METs."""
    from matcher.eligibility import evaluate
    from matcher.patient import normalize_record
    from matcher.vocab import load_vocab

    vocab = vocab or load_vocab()
    rec = own_patient_record(parsed, vocab)
    if rec is None:
        return OwnPatientResult(parsed.nct_id, None, [], "no diagnosis in the vocabulary")
    patient = normalize_record(rec, source="own-patient")
    bad = [
        v
        for v in evaluate(patient, parsed)
        if v.verdict == "NOT_MET" and v.criterion.source == "text"
    ]
    return OwnPatientResult(parsed.nct_id, patient, bad)


def own_patient_survey(parsed_trials, vocab=None) -> tuple[int, list[OwnPatientResult]]:
    """Check every oncology trial of ``parsed_trials`` against its own patient.

    Returns (trials checked, results that have at least one NOT_MET)."""
    from matcher.eligibility import is_oncology_trial
    from matcher.vocab import load_vocab

    vocab = vocab or load_vocab()
    checked, bad = 0, []
    for parsed in parsed_trials:
        if not is_oncology_trial(parsed.trial, vocab):
            continue
        res = check_own_patient(parsed, vocab)
        if res.patient is None:
            continue
        checked += 1
        if res.not_met:
            bad.append(res)
    return checked, bad


def _own_stage(parsed, rec: dict) -> None:
    """A stage inside every stage group the trial requires (and outside those it excludes),
    when the stage chosen from the extent lines is not: the most advanced stage a required
    group names that no exclusion names."""
    from matcher.eligibility.stage import _inside, _name, stage_items

    wanted = [
        stage_items(c.values.get("stages") or [])
        for c in parsed.criteria
        if c.type == "stage"
        and c.source == "text"
        and c.polarity == "require"
        and not (c.conditional or c.cohort or c.values.get("alternative"))
    ]
    banned = [
        it
        for c in parsed.criteria
        if c.type == "stage" and c.source == "text" and c.polarity == "exclude"
        for it in stage_items(c.values.get("stages") or [])
    ]
    if any(
        c.type == "disease_extent"
        and c.polarity == "exclude"
        and "metastatic" in (c.values.get("extent") or [])
        for c in parsed.criteria
    ):
        banned.append((4, "", ""))  # "Metastatic disease" excluded: not stage IV
    wanted = [w for w in wanted if w]
    if not wanted:
        return
    own = stage_items([str(rec.get("stage") or "")])
    if own and all(_inside(w, own[0]) == "in" for w in wanted):
        return
    for cand in sorted({it for w in wanted for it in w}, reverse=True):
        probe = cand if cand[1] or cand[0] == 4 else (cand[0], "A", "")
        if _inside(banned, probe) == "out" and all(_inside(w, probe) == "in" for w in wanted):
            rec["stage"] = _name(probe)
            return
