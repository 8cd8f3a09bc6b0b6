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
- ``disease_status``: ``{status: [...]}`` from relapsed, refractory, newly_diagnosed
  ("relapsed or refractory AML", "newly diagnoised", "de novo ALL", "previously untreated
  AML") and remission ("first complete remission", "CR1"), read against
  ``Patient.disease_status`` (an untreated patient, ``prior_therapies: []``, is neither
  relapsed nor refractory; one who had a ``later_line`` therapy, CAR T cells, is not newly
  diagnosed). The statuses of one line are alternatives; required statuses
  that exclude each other on several lines of one cohort form one group.
- ``stage``: ``{stages: ["IIIB", "IIIC", "IV"], alternative: bool}``: every stage mention
  of the line as one set of stage groups ("StageIIIB/C or IV", "Stage I-III", "Ib stage"),
  read against ``Patient.stage``; NOT_MET only for a recorded stage at least as fine as the
  line's groups, never when the line also admits recurrent disease (``alternative``).
- ``cml_phase``: ``{phases: [...]}`` from chronic, accelerated, blast ("CML in first blast
  crisis or first accelerated phase"), read against the phase the patient's diagnosis as
  written states ("chronic myeloid leukemia in accelerated phase"); none stated is UNKNOWN.
- ``primary_site``: ``{sites: [...]}`` (ids of ``criteria/vocab/primary_sites.yaml``) from
  "soft tissue sarcoma of the extremities or superficial trunk", "retroperitoneal sarcoma":
  where the tumour arose, read against the site the diagnosis as written names ("leiomyosarcoma
  of the thigh"); none named, or a broader one, is UNKNOWN.
- ``hla``: ``{alleles: [{locus, group, protein}]}`` from "HLA-A*02:01, *02:05 or *02:06
  positive", "HLA-A2" (the A*02 group): read against the HLA entries of the patient's
  biomarkers; NOT_MET only when each wanted allele is recorded negative or two other alleles
  of the locus are typed (``eligibility.hla``).
- ``unparsed``: ``{}``: a line nothing typed, listed verbatim "to review" (``{too_long: n}``
  for a line over ``MAX_LINE_CHARS``, not parsed at all).

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

from matcher.eligibility.biomarker import patient_marker_status
from matcher.eligibility.labs import CONSERVATIVE_ULN
from matcher.eligibility.model import (
    CHEMO_CLASSES,
    LAB_NAMES,
    MET,
    NOT_MET,
    STD_UNITS,
    TYPES,
    UNKNOWN,
    Criterion,
    ParsedTrial,
    Verdict,
)
from matcher.eligibility.parse import (
    clear_cache,
    is_oncology_trial,
    parse_line,
    parse_trial,
    parse_trial_model,
    record_digest,
)
from matcher.eligibility.report import format_criteria, trial_report
from matcher.eligibility.verdict import (
    _COHORT_FIELDS,
    FIELDS_BY_TYPE,
    Evaluator,
    _criterion_verdict,
    evaluate,
)

__all__ = [
    "CHEMO_CLASSES",
    "CONSERVATIVE_ULN",
    "FIELDS_BY_TYPE",
    "LAB_NAMES",
    "MET",
    "NOT_MET",
    "STD_UNITS",
    "TYPES",
    "UNKNOWN",
    "_COHORT_FIELDS",
    "Criterion",
    "Evaluator",
    "ParsedTrial",
    "Verdict",
    "_criterion_verdict",
    "clear_cache",
    "evaluate",
    "format_criteria",
    "is_oncology_trial",
    "parse_line",
    "parse_trial",
    "parse_trial_model",
    "patient_marker_status",
    "record_digest",
    "trial_report",
]
