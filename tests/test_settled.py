"""Verdicts that hold whatever a line's unread words say, for this patient (``_SETTLED``).

A NOT_MET with words left over is normally UNKNOWN. These patients settle it: one recorded
negative for a whole gene against examples of that gene's alterations; one with no prior
therapy at all against a line that needs treated disease -- unless the line offers another
way in (unfit, refused, newly diagnosed, a permission or a condition); one who had a therapy
a list names as an item of its own, the unread words qualifying other items. The reason
still quotes the words not read, so the coordinator can check the claim.
"""

from __future__ import annotations

import pytest
from test_clause import _patient, _verdicts

from matcher.eligibility import NOT_MET, UNKNOWN

AML = {"diagnosis": "acute myeloid leukemia", "stage": None, "prior_therapies": []}
NSCLC = {"diagnosis": "lung adenocarcinoma", "prior_therapies": []}

# (section, line, patient overrides, criterion type, expected verdict)
CASES = [
    # a whole-gene negative against examples of the gene's alterations
    (
        "inclusion",
        r"The patients should be confirmed with EGFR mutation \[e.g., T 790 M , exon 19 "
        r"deletion, L 858 R, etc\],",
        {**NSCLC, "biomarkers": ["EGFR negative"]},
        "biomarker",
        NOT_MET,
    ),
    (
        "inclusion",
        "Confirmed EGFR mutation (e.g. T 790 M, exon 19 deletion, L 858 R, etc.)",
        {**NSCLC, "biomarkers": ["EGFR wild-type"]},
        "biomarker",
        NOT_MET,
    ),
    # ... but not when only one variant is recorded negative (another may be present)
    (
        "inclusion",
        "Confirmed EGFR mutation (e.g. T 790 M, exon 19 deletion, L 858 R, etc.)",
        {**NSCLC, "biomarkers": ["EGFR T790M negative"]},
        "biomarker",
        UNKNOWN,
    ),
    # ... nor when the words left over may name another way in
    (
        "inclusion",
        "EGFR mutation (e.g., exon 19 deletion) or other driver alteration",
        {**NSCLC, "biomarkers": ["EGFR negative"]},
        "biomarker",
        UNKNOWN,
    ),
    (
        "inclusion",
        "EGFR mutation (e.g., exon 19 deletion), unless enrolled in cohort 3",
        {**NSCLC, "biomarkers": ["EGFR negative"]},
        "biomarker",
        UNKNOWN,
    ),
    # an untreated patient against a relapsed-or-refractory requirement
    (
        "inclusion",
        "Relapsed or refractory acute leukemia, including participants who are MRD-positive "
        "by flow cytometry or next-generation sequencing",
        AML,
        "disease_status",
        NOT_MET,
    ),
    (
        "inclusion",
        "Relapsed AML is defined as >= 5% blasts in the bone marrow or peripheral blood at "
        "any time after achieving a CR, CRh, CRi, or MLFS.",
        AML,
        "disease_status",
        NOT_MET,
    ),
    # ... not when the line admits the unfit, the refusing or the newly diagnosed too
    (
        "inclusion",
        "Relapsed or refractory AML, or newly diagnosed AML in patients unfit for intensive "
        "chemotherapy",
        AML,
        "disease_status",
        UNKNOWN,
    ),
    (
        "inclusion",
        "Relapsed or refractory acute leukemia and has exhausted, or is ineligible for, "
        "available therapeutic options",
        AML,
        "disease_status",
        UNKNOWN,
    ),
    # ... nor for a patient with treatment recorded (relapse not recorded either way)
    (
        "inclusion",
        "Relapsed or refractory acute leukemia, including participants who are MRD-positive "
        "by flow cytometry or next-generation sequencing",
        {**AML, "prior_therapies": ["cytarabine", "daunorubicin"]},
        "disease_status",
        UNKNOWN,
    ),
    # ... nor for a patient whose therapies are not recorded at all
    (
        "inclusion",
        "Relapsed or refractory acute leukemia, including participants who are MRD-positive "
        "by flow cytometry or next-generation sequencing",
        {**AML, "prior_therapies": None},
        "disease_status",
        UNKNOWN,
    ),
    # a required prior therapy, for a patient with none
    (
        "inclusion",
        "Relapsed or refractory AML after at least one prior line, including primary "
        "induction failure",
        AML,
        "prior_therapy_required",
        NOT_MET,
    ),
    (
        "inclusion",
        "Refractory to or relapsed after standard therapy, or for whom no standard therapy exists",
        AML,
        "prior_therapy_required",
        UNKNOWN,
    ),
    (
        "inclusion",
        "Progression after prior chemotherapy, or patients who refused chemotherapy",
        AML,
        "prior_therapy_required",
        UNKNOWN,
    ),
]


# an excluded therapy named as its own item of a list, the unread words in other items
LMS = {"diagnosis": "leiomyosarcoma"}
CASES += [
    (
        "inclusion",
        "No prior radiotherapy to chest, immunotherapy or biologic therapy",
        {**LMS, "prior_therapies": ["pembrolizumab"]},
        "prior_therapy_excluded",
        NOT_MET,
    ),
    (
        "exclusion",
        "Have received CAR-T therapy or other genetically modified cell therapy before screening",
        {"diagnosis": "B-ALL", "stage": None, "prior_therapies": ["CAR T-cell therapy"]},
        "prior_therapy_excluded",
        NOT_MET,
    ),
    (
        "exclusion",
        "Prior pazopanib, high-dose chemotherapy or trabectedin",
        {**LMS, "prior_therapies": ["pazopanib"]},
        "prior_therapy_excluded",
        NOT_MET,
    ),
    # ... not when the unread words may reach the whole list (a head before the first item,
    # a tail after the last), sit in the item the patient's therapy is named in, or set a
    # condition
    (
        "exclusion",
        "Prior adjuvant doxorubicin, ifosfamide or trabectedin",
        {**LMS, "prior_therapies": ["trabectedin"]},
        "prior_therapy_excluded",
        UNKNOWN,
    ),
    (
        "exclusion",
        "Prior high-dose chemotherapy, pazopanib or trabectedin",
        {**LMS, "prior_therapies": ["trabectedin"]},
        "prior_therapy_excluded",
        UNKNOWN,
    ),
    (
        "exclusion",
        "Prior trabectedin, pazopanib or gemcitabine given as maintenance",
        {**LMS, "prior_therapies": ["trabectedin"]},
        "prior_therapy_excluded",
        UNKNOWN,
    ),
    (
        "exclusion",
        "Prior pazopanib, regorafenib given in combination, or trabectedin",
        {**LMS, "prior_therapies": ["regorafenib"]},
        "prior_therapy_excluded",
        UNKNOWN,
    ),
    (
        "exclusion",
        "Prior trabectedin, or pazopanib unless given more than 6 months ago",
        {**LMS, "prior_therapies": ["trabectedin"]},
        "prior_therapy_excluded",
        UNKNOWN,
    ),
]


# a first line the patient must have progressed on is no first-line way in
CASES += [
    (
        "inclusion",
        "Has experienced documented objective radiographic or clinical disease progression "
        "during or after first-line therapy containing platinum and/or fluoropyrimidine",
        {"diagnosis": "gastric adenocarcinoma", "prior_therapies": []},
        "prior_therapy_required",
        NOT_MET,
    ),
    (
        "inclusion",
        "Relapsed or refractory AML, or patients eligible for first-line therapy",
        {**AML},
        "disease_status",
        UNKNOWN,
    ),
]

# a diagnosis named as its own item of an exclusion list
CASES += [
    (
        "exclusion",
        "1. Squamous cell carcinoma (including adenosquamous carcinoma); Small cell lung "
        "carcinoma (including small cell carcinoma and non-small cell mixed lung carcinoma)",
        {"diagnosis": "adenosquamous carcinoma of the lung"},
        "histology",
        NOT_MET,
    ),
]

# an exception that admits named performance scores only
PS_LINE = (
    "Eastern Cooperative Oncology Group (ECOG) Performance Status of 0/1. ECOG PS 2 are "
    "eligible if depends solely on orthopedic problems"
)
CASES += [
    ("inclusion", PS_LINE, {"ecog": 3}, "performance_status", NOT_MET),
    ("inclusion", PS_LINE, {"ecog": 2}, "performance_status", UNKNOWN),
    ("inclusion", "ECOG 0-1 (ECOG 2 allowed if due to bone metastases)", {"ecog": 4},
     "performance_status", NOT_MET),
    # ... not when a second exception names more, another scale is an alternative, the
    # exception names no score, or the ECOG was converted from another scale
    ("inclusion", "ECOG 0-1 (ECOG 2 allowed if due to bone metastases, and ECOG 3 if bedridden "
     "from a fracture)", {"ecog": 3}, "performance_status", UNKNOWN),
    ("inclusion", "ECOG 0-1 or Karnofsky >= 70 (ECOG 2 allowed if due to pain)", {"ecog": 3},
     "performance_status", UNKNOWN),
    ("inclusion", "ECOG 0-1 unless the investigator judges otherwise", {"ecog": 3},
     "performance_status", UNKNOWN),
    ("inclusion", PS_LINE, {"ecog": None, "karnofsky": 40}, "performance_status", UNKNOWN),
]  # fmt: skip


@pytest.mark.parametrize(("section", "line", "over", "ctype", "expected"), CASES)
def test_settled_verdicts(section, line, over, ctype, expected):
    vs = [v for v in _verdicts(section, line, _patient(**over)) if v.criterion.type == ctype]
    assert vs, f"no {ctype} criterion read from {line!r}"
    got = {v.verdict for v in vs}
    if expected == NOT_MET:
        assert NOT_MET in got, [v.reason for v in vs]
        settled = [v for v in vs if v.verdict == NOT_MET and v.criterion.unexplained]
        for v in settled:
            assert "words not read" in v.reason  # the unread words are still quoted
    else:
        assert NOT_MET not in got, [v.reason for v in vs]
