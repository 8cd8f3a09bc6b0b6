"""Evaluation: the one place that decides each criterion's verdict and combines alternatives."""

from __future__ import annotations

import re
from typing import Any

from matcher.eligibility.age import _ev_age
from matcher.eligibility.biomarker import _ev_biomarker, settled_gene_negative
from matcher.eligibility.brain import _ev_brain
from matcher.eligibility.cohort import _cohort_status
from matcher.eligibility.common import _diag_name
from matcher.eligibility.extent import _ev_extent, _ev_measurable
from matcher.eligibility.histology import _ev_histology, settled_listed_diagnosis
from matcher.eligibility.hla import _ev_hla
from matcher.eligibility.labs import _ev_labs
from matcher.eligibility.model import (
    ABOUT_OTHER,
    BRANCH_SEP,
    MET,
    NOT_MET,
    PART_SCOPE,
    UNKNOWN,
    Criterion,
    ParsedTrial,
    Verdict,
)
from matcher.eligibility.parse import _default_vocab
from matcher.eligibility.performance import (
    _ev_ps,
    not_for_this_age_group,
    settled_named_exception,
)
from matcher.eligibility.pregnancy import _ev_contraception, _ev_pregnancy
from matcher.eligibility.sex import _ev_sex
from matcher.eligibility.site import _ev_site
from matcher.eligibility.stage import _ev_stage
from matcher.eligibility.status import (
    _ev_cml_phase,
    _ev_disease_status,
    settled_untreated_status,
)
from matcher.eligibility.text import _I
from matcher.eligibility.therapy import (
    _ev_max_lines,
    _ev_prior_excluded,
    _ev_prior_required,
    _ev_washout,
    settled_listed_item,
    settled_untreated_required,
)


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
    "histology": ("diagnosis", "diagnosis_name", "diagnosis_lineage", "biomarkers"),
    "disease_extent": ("metastatic", "stage", "diagnosis_lineage", "disease_status", "resectable"),
    "measurable_disease": ("measurable_disease",),
    "prior_therapy_required": ("prior_therapies",),
    "prior_therapy_excluded": ("prior_therapies",),
    "max_prior_lines": ("prior_therapies",),
    "brain_metastases": ("brain_metastases",),
    "pregnancy": ("sex", "pregnant"),
    "contraception": (),
    "organ_function": ("labs", "age"),
    "washout": (),
    "biomarker": ("biomarkers",),
    "disease_status": ("disease_status", "prior_therapies"),
    "stage": ("stage", "metastatic"),
    "cml_phase": ("diagnosis_text",),
    "primary_site": ("diagnosis_text",),
    "hla": ("biomarkers",),
    "unparsed": (),
}
_COHORT_FIELDS = ("diagnosis", "diagnosis_name", "diagnosis_lineage")
# A field ``labs:NAME`` is the one lab value ``patient.labs[NAME]`` (None when absent): an
# organ-function line reads only its own lab (``_ev_labs``), so its verdicts are shared by
# every patient with that value, whatever the rest of the panel.
LAB_FIELD = "labs:"


def fields_read(c: Criterion) -> tuple[str, ...]:
    """The patient fields criterion ``c``'s verdict depends on (the memo key of ``Evaluator``):
    its type's ``FIELDS_BY_TYPE``, the one named lab for a lab line, the cohort fields for a
    criterion scoped to a diagnosis."""
    fields = FIELDS_BY_TYPE.get(c.type, ())
    lab = c.values.get("lab") if c.type == "organ_function" else None
    if isinstance(lab, str):
        fields = tuple(LAB_FIELD + lab if f == "labs" else f for f in fields)
    if c.applies_to or c.disease_scope:
        fields = fields + _COHORT_FIELDS
    return fields


def read_field(patient: Any, field: str) -> Any:
    """One field of :func:`fields_read` from a patient."""
    if field.startswith(LAB_FIELD):
        return (getattr(patient, "labs", None) or {}).get(field[len(LAB_FIELD) :])
    return getattr(patient, field, None)


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
        self._group_fields: list[tuple[str, ...]] = []  # fields of group i
        self._trials: dict[int, tuple] = {}
        self._interned: dict[tuple, int] = {}
        self._patient: Any = None
        self._fids: list[int | None] = []
        self.entries = 0
        self.hits = 0
        self.misses = 0
        self.generation = 0  # counts fresh starts of the memo (fact ids are renumbered)

    def forget_patient(self) -> None:
        """Drop the facts read from the last patient (after modifying that object)."""
        self._patient = None
        self._fids = []

    def _group(self, c: Criterion) -> int:
        fields = fields_read(c)
        g = self._field_groups.get(fields)
        if g is None:
            g = self._field_groups[fields] = len(self._field_groups)
            self._group_fields.append(fields)
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
            combine = bool(groups) or any(c.cohort for c in crits)
            t = (parsed, gs, [{} for _ in crits], combine, sorted(set(gs)))
            self._trials[id(parsed)] = t
        return t

    def _fid(self, patient: Any, g: int) -> int:
        fields = self._group_fields[g]
        facts = tuple(_frozen(read_field(patient, f)) for f in fields)
        got = self._interned.get(facts)
        if got is None:
            got = self._interned[facts] = len(self._interned)
        return got

    def evaluate(self, patient: Any, parsed: ParsedTrial) -> list[Verdict]:
        """Same result as ``evaluate(patient, parsed)``."""
        out, has_groups = self.criterion_verdicts(patient, parsed)
        return _combine(out) if has_groups else out

    def combine(self, verdicts: list[Verdict]) -> list[Verdict]:
        """Alternatives and cohorts combined (what :meth:`evaluate` returns)."""
        return _combine(verdicts)

    def criterion_verdicts(self, patient: Any, parsed: ParsedTrial) -> tuple[list[Verdict], bool]:
        """Each criterion's verdict alone (memoized objects: the same object for every patient
        with the same facts), and whether alternatives or cohorts must still be combined
        (:meth:`combine`)."""
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
            self.generation += 1
        return out, has_groups


def _combine(verdicts: list[Verdict]) -> list[Verdict]:
    """Alternatives: a group member's NOT_MET stands only when every member is NOT_MET;
    cohorts: a cohort's NOT_MET stands only when the patient fails every cohort.
    Builds new ``Verdict`` objects for the changed ones (the inputs may be shared)."""
    groups: dict[str, list[int]] = {}
    branch: dict[int, str] = {}  # member -> the alternative it stands under
    for i, v in enumerate(verdicts):
        g = v.criterion.group
        if g:
            key, _sep, b = g.partition(BRANCH_SEP)
            groups.setdefault(key, []).append(i)
            branch[i] = b if _sep else str(i)
    if not groups:
        return _combine_cohorts(verdicts)
    out = list(verdicts)

    def failed(v: Verdict) -> bool:
        return v.verdict == NOT_MET or v.cohort_fail

    for members in groups.values():
        # a scale for another age group is no alternative ("Lansky (< 16) or Karnofsky
        # (>= 16)": a 14-year-old is judged on Lansky alone)
        members = [i for i in members if not not_for_this_age_group(verdicts[i])] or members
        # an alternative is every criterion standing under it: it fails when one of them does
        alternatives: dict[str, list[int]] = {}
        for i in members:
            alternatives.setdefault(branch[i], []).append(i)
        alts = list(alternatives.values())
        if len(alts) < 2 or all(any(failed(verdicts[i]) for i in a) for a in alts):
            continue
        met = any(all(verdicts[i].verdict == MET for i in a) for a in alts)
        conj = (verdicts[members[0]].criterion.group or "").startswith("and:")
        for i in members:
            v = verdicts[i]
            if failed(v) and conj:
                out[i] = Verdict(
                    v.criterion,
                    MET if met else UNKNOWN,
                    v.reason
                    + (
                        "; the line excludes only when all its parts hold, and one does not"
                        if met
                        else "; the line excludes only when all its parts hold: verify the rest"
                    ),
                )
                continue
            if failed(v):
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
    return _combine_cohorts(out)


def _combine_cohorts(verdicts: list[Verdict]) -> list[Verdict]:
    """A trial of several cohorts, each with its own criteria ("Cohort A: ... Cohort B: ..."):
    the patient is excluded when some criterion of *every* cohort is NOT_MET; otherwise a
    cohort's NOT_MET stays UNKNOWN (another cohort may fit)."""
    cohorts = {
        v.criterion.cohort
        for v in verdicts
        if v.criterion.cohort and not v.criterion.cohort.startswith(PART_SCOPE)
    }
    if len(cohorts) < 2:
        return verdicts
    failed = {v.criterion.cohort for v in verdicts if v.cohort_fail}
    if failed != cohorts:
        return verdicts
    names = ", ".join(sorted(cohorts))
    return [
        Verdict(
            v.criterion,
            NOT_MET,
            v.reason.replace(
                f"applies to {v.criterion.cohort} only (another cohort may fit): verify",
                f"fails {v.criterion.cohort}; the patient fails every cohort ({names})",
            ),
        )
        if v.cohort_fail
        else v
        for v in verdicts
    ]


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
    if c.applies_to and c.applies_qualifier and verdict == NOT_MET:
        # "Patients with low grade serous ovarian cancer must ...": the patient's ovarian
        # cancer may be of another kind, to whom the rule does not apply
        return Verdict(
            c,
            UNKNOWN,
            f"{reason}; applies to {c.applies_qualifier!r} {names} only: verify whether"
            f" {p.diagnosis_name or p.diagnosis} is of that kind",
        )
    if verdict == NOT_MET and c.source == "text":
        if c.later_step:
            return Verdict(
                c,
                UNKNOWN,
                f"{reason}; {c.later_step[len(ABOUT_OTHER) :]} criteria, not the patient's"
                if c.later_step.startswith(ABOUT_OTHER)
                else f"{reason}; applies at a later step ({c.later_step!r}), not at enrolment",
            )
        if c.unexplained:
            quoted = " … ".join(f"“{w}”" for w in c.unexplained)
            # a note about the record's structure (another line's way in, an exemption list)
            # is no unread word of this line: no settling past it
            settle = (
                None
                if any(w.startswith(_STRUCTURE_NOTES) for w in c.unexplained)
                else (_SETTLED.get(c.type))
            )
            why = settle(p, c, vocab) if settle is not None else None
            if not why:
                return Verdict(
                    c, UNKNOWN, f"{reason}; words not understood: {quoted}: read this part"
                )
            # the words left over cannot change this verdict for this patient: say which
            # words, and why, so the coordinator can check the claim
            reason = f"{reason}; {why} (words not read: {quoted})"
        if c.in_definition:
            return Verdict(
                c,
                UNKNOWN,
                reason + "; read from a definition of another term of the line, not a rule of "
                "its own: verify",
            )
        if c.conditional:
            return Verdict(
                c, UNKNOWN, reason + "; applies to a sub-group only (cohort / listed cases): verify"
            )
        if c.cohort and c.cohort.startswith(PART_SCOPE):
            # "excluded from the exercise intervention (but not ...) for:": one part of the
            # study; the patient may still join the rest
            return Verdict(
                c,
                UNKNOWN,
                f"{reason}; holds for one part of the study only "
                f"({c.cohort[len(PART_SCOPE) :]}): verify",
            )
        if c.cohort:
            return Verdict(
                c,
                UNKNOWN,
                f"{reason}; applies to {c.cohort} only (another cohort may fit): verify",
                cohort_fail=True,
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


def _evaluate_one(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    fn = _EVALUATORS.get(c.type)
    if fn is None:
        return UNKNOWN, "to review: criterion not checked automatically"
    try:
        return fn(p, c, vocab)
    except (KeyError, TypeError, ValueError) as exc:  # a vocabulary gap must not stop a batch
        return UNKNOWN, f"could not check ({exc.__class__.__name__}): verify"


def _ev_unparsed(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    if c.values.get("too_long"):
        return UNKNOWN, (
            f"to review: a line of {c.values['too_long']:,} characters is not parsed "
            "automatically (longer than any registry criterion)"
        )
    return UNKNOWN, "to review: not checked automatically"


_STRUCTURE_NOTES = (
    "another line admits",
    "listed under an exemption",
    "a table indexed by age",
    "* (a note elsewhere",
)


# Per type: whether a NOT_MET holds whatever the clause's unread words say, for this patient
# (returns why, or None). Each reads only the fields its type reads (``FIELDS_BY_TYPE``).
_SETTLED = {
    "biomarker": settled_gene_negative,
    "disease_status": settled_untreated_status,
    "prior_therapy_required": settled_untreated_required,
    "prior_therapy_excluded": settled_listed_item,
    "performance_status": settled_named_exception,
    "histology": settled_listed_diagnosis,
}

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
    "disease_status": _ev_disease_status,
    "stage": _ev_stage,
    "cml_phase": _ev_cml_phase,
    "primary_site": _ev_site,
    "hla": _ev_hla,
    "unparsed": _ev_unparsed,
}
