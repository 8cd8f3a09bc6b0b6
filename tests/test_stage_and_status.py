"""Stage groups and disease status read from criteria lines (issue 11).

Lines are registry text as written (ClinicalTrials.gov). A stage or status criterion says
NOT_MET only for a recorded, comparable patient fact and a line understood whole; a missing
stage, a coarser stage, a recurrence alternative or a cohort-scoped line stays UNKNOWN.
"""

from __future__ import annotations

import pytest

from matcher.eligibility import MET, NOT_MET, UNKNOWN, ParsedTrial, evaluate, parse_line
from matcher.patient import normalize_record
from matcher.trial import Trial


def _patient(**kw):
    return normalize_record({"id": "P1", **kw}, source="test")


def _typed(text, kind, section="inclusion", context=None):
    return [c for c in parse_line(text, section, context=context) if c.type == kind]


def _verdicts(text, kind, section="inclusion", context=None, **patient):
    pt = ParsedTrial(Trial(nct_id="NCT00000000"), parse_line(text, section, context=context))
    return [v.verdict for v in evaluate(_patient(**patient), pt) if v.criterion.type == kind]


# --- parsing: every stage mention of the line, as one set ---------------------------------
@pytest.mark.parametrize(
    ("line", "polarity", "stages"),
    [
        (
            "Stage I-III NSCLC patients confirmed by histological or cytological examination "
            "based on the 8th edition of the AJCC staging system.",
            "require",
            ["I", "II", "III"],
        ),
        ("Patients with pathology confirmed Ib stage NSCLC", "require", ["IB"]),
        (
            "Have histologically- or cytologically-confirmed diagnosis of StageIIIB/C or IV NSCLC.",
            "require",
            ["IIIB", "IIIC", "IV"],
        ),
        (
            "Resectable stage IIB, III, and IV disease that are not suitable for surgically "
            "resection alone",
            "require",
            ["IIB", "III", "IV"],
        ),
        (
            "Stage IA2-II non-small cell cancer patients who after complete resection.",
            "require",
            ["IA2", "IA3", "IB", "IC", "II"],
        ),
        (
            "Histological/cytological confirmed unresectable stage ⅢB～Ⅳ non-squamous NSCLC",
            "require",
            ["IIIB", "IIIC", "IIID", "IV"],
        ),
        ("advanced cancer (cancer stage III or IV)", "require", ["III", "IV"]),
        (
            "Patients with Stage I or IV breast cancer are not eligible.",
            "exclude",
            ["I", "IV"],
        ),
        (
            "NSCLC, non-curatively treatable stage III or stage IV with palliative treatment "
            "indication",
            "require",
            ["III", "IV"],
        ),
        (
            "Stage IIIB (non amenable to curative-intent multimodal treatment) or IV NSCLC, "
            "according to 7th TNM classification.",
            "require",
            ["IIIB", "IV"],
        ),
        (
            "International Federation of Gynaecology and Obstetrics (FIGO) Stage I-B3, II-A2, "
            "II-B to IV-A",
            "require",
            ["IB3", "IIA2", "IIB", "IIC", "III", "IVA"],
        ),
        (
            "No preoperative evidence of extrauterine disease (Clinical stage IIIA, IIIB)",
            "exclude",
            ["IIIA", "IIIB"],
        ),
        ("Stage 3 or Stage 4 CRC, NSCLC, or STS", "require", ["III", "IV"]),
        ("Stage IV renal cell carcinoma", "require", ["IV"]),
        # metastatic disease as the alternative adds stage IV; a site or a negation does not
        ("Stage IIIB or metastatic NSCLC", "require", ["IIIB", "IV"]),
        ("Stage III NSCLC; no brain metastases", "require", ["III"]),
        ("Stage I-II breast cancer; no brain or liver metastases", "require", ["I", "II"]),
    ],
)
def test_stage_groups_parsed(line, polarity, stages):
    crits = _typed(line, "stage")
    assert [(c.polarity, c.values["stages"]) for c in crits] == [(polarity, stages)]


@pytest.mark.parametrize(
    "line",
    [
        "Chronic kidney disease stage 3 or higher",
        "Stage 1: dose escalation",
        "Prior chemotherapy for Stage IIIB/IV adenocarcinoma of the lung.",
        "History of stage III or higher other malignancy",
        "Rai stage III-IV chronic lymphocytic leukemia",
        "Heart failure NYHA stage III or IV",
        "Study treatment must be first-line therapy for Stage IV or recurrent disease.",
        # study steps written with Arabic numerals
        "Part A (Stage 1): patients with solid tumors",
        "In Stage 2, patients with NSCLC will receive",
        # a list not read whole is not read at all (a partial list would fail the rest)
        "Ann Arbor stage II bulky, III or IV",
        "Stage 3 non eligible for chemoradiotherapy or stage 4 NSCLC, histologically or "
        "cytologically confirmed NSCLC.",
        "Wilms tumour stage I-V",
    ],
)
def test_not_a_patient_stage(line):
    assert _typed(line, "stage") == []


# --- evaluation against Patient.stage ----------------------------------------------------
@pytest.mark.parametrize(
    ("line", "section", "patient", "want"),
    [
        # recorded and comparable: outside the groups
        (
            "Stage I-III hormone receptor positive breast cancer",
            "inclusion",
            {"stage": "IV"},
            NOT_MET,
        ),
        (
            "Have histologically- or cytologically-confirmed diagnosis of StageIIIB/C or IV NSCLC.",
            "inclusion",
            {"stage": "IIIA"},
            NOT_MET,
        ),
        (
            "Patients with pathology confirmed Ib stage NSCLC",
            "inclusion",
            {"stage": "IIA"},
            NOT_MET,
        ),
        ("advanced cancer (cancer stage III or IV)", "inclusion", {"stage": "IB"}, NOT_MET),
        # inside
        ("Stage I-III hormone receptor positive breast cancer", "inclusion", {"stage": "IIB"}, MET),
        (
            "Have histologically- or cytologically-confirmed diagnosis of StageIIIB/C or IV NSCLC.",
            "inclusion",
            {"stage": "IVA"},
            MET,
        ),
        # must NOT exclude: stage missing
        ("Stage I-III hormone receptor positive breast cancer", "inclusion", {}, UNKNOWN),
        # must NOT exclude: coarser stage than the line's sub-stage
        (
            "Have histologically- or cytologically-confirmed diagnosis of StageIIIB/C or IV NSCLC.",
            "inclusion",
            {"stage": "III"},
            UNKNOWN,
        ),
        (
            "Stage IA2-II non-small cell cancer patients who after complete resection.",
            "inclusion",
            {"stage": "IA"},
            UNKNOWN,
        ),
        # must NOT exclude: sarcoma "localized" can still be unresectable / any stage group
        (
            "Histological/cytological confirmed unresectable stage ⅢB～Ⅳ non-squamous NSCLC",
            "inclusion",
            {"stage": "localized"},
            UNKNOWN,
        ),
        # must NOT exclude: a recurrence alternative on the line
        (
            "Participants must have NSCLC with Stage IV or recurrent disease following multimodal "
            "therapy for locally advanced disease.",
            "inclusion",
            {"stage": "IIB"},
            UNKNOWN,
        ),
        (
            "Imageology diagnosed with locally advanced/metastatic or recurrent (stage ⅢB - IV);",
            "inclusion",
            {"stage": "IIA"},
            UNKNOWN,
        ),
        # must NOT exclude: another disease's stage words as the alternative
        ("Stage IIIB-IV NSCLC or extensive-stage SCLC", "inclusion", {"stage": "IIA"}, UNKNOWN),
        # must NOT exclude: a cohort-scoped line
        (
            "Cohort 2: Subjects with unresectable, stage III NSCLC evaluated by MDT.",
            "inclusion",
            {"stage": "IIB"},
            UNKNOWN,
        ),
        # metastatic now, an earlier stage recorded at diagnosis: not comparable
        (
            "Stage I-III hormone receptor positive breast cancer",
            "inclusion",
            {"stage": "II", "metastatic_sites": ["liver"]},
            UNKNOWN,
        ),
        # an exclusion line excludes the patients in its groups
        (
            "Patients with Stage I or IV breast cancer are not eligible.",
            "exclusion",
            {"stage": "IV", "diagnosis": "breast carcinoma"},
            NOT_MET,
        ),
        (
            "Patients with Stage I or IV breast cancer are not eligible.",
            "exclusion",
            {"stage": "III", "diagnosis": "breast carcinoma"},
            MET,
        ),
        # ... said of breast cancer: not a reason to exclude a sarcoma patient
        (
            "Patients with Stage I or IV breast cancer are not eligible.",
            "exclusion",
            {"stage": "IV", "diagnosis": "leiomyosarcoma"},
            UNKNOWN,
        ),
    ],
)
def test_stage_verdict(line, section, patient, want):
    assert _verdicts(line, "stage", section, **patient) == [want]


def test_stage_exclusion_line_excludes_whole():
    """ "Stage I or IV breast cancer" excludes only a breast-cancer patient at stage I or IV."""
    line = "Patients with Stage I or IV breast cancer are not eligible."
    pt = ParsedTrial(Trial(nct_id="NCT00000000"), parse_line(line, "exclusion"))
    p = _patient(stage="IV", diagnosis="breast carcinoma")
    assert NOT_MET in {v.verdict for v in evaluate(p, pt)}
    p = _patient(stage="IV", diagnosis="leiomyosarcoma")
    assert NOT_MET not in {v.verdict for v in evaluate(p, pt)}


# --- disease status: newly diagnosed, first complete remission -----------------------------
@pytest.mark.parametrize(
    ("line", "section", "status"),
    [
        (
            "Newly diagnosed AL (acute myeloid leukemia (AML) and acute lymphocytic leukemia "
            "(ALL)) and is recruited within 2 weeks of hospital admission.",
            "inclusion",
            ["newly_diagnosed"],
        ),
        ("Ph-like ALL newly diagnosed;", "inclusion", ["newly_diagnosed"]),
        ("New diagnosed patients.", "inclusion", ["newly_diagnosed"]),
        (
            "Patients with newly diagnoised diseases including MDS/AML/CMML;",
            "inclusion",
            ["newly_diagnosed"],
        ),
        ("New diagnosis of acute myeloid leukemia (AML)", "inclusion", ["newly_diagnosed"]),
        (
            "Paediatric patients (1-17 years inclusive) with de-novo Acute Lymphoblastic "
            "Leukaemia treated on ALLTogether-1 in the UK in the first 5 days of therapy.",
            "inclusion",
            ["newly_diagnosed"],
        ),
        ("Previously untreated CLL requiring therapy", "inclusion", ["newly_diagnosed"]),
        ("the first complete remission phase (CR1) of acute leukemia;", "inclusion", ["remission"]),
        # alternatives stay one criterion
        (
            "Relapsed or newly diagnosed acute myeloid leukemia",
            "inclusion",
            ["relapsed", "refractory", "newly_diagnosed"],
        ),
        (
            "Patients with AML in CR1 or in first relapse",
            "inclusion",
            ["remission", "relapsed", "refractory"],
        ),
        ("Newly diagnosed patients", "exclusion", ["newly_diagnosed"]),
    ],
)
def test_status_parsed(line, section, status):
    assert [c.values["status"] for c in _typed(line, "disease_status", section)] == [status]


@pytest.mark.parametrize(
    "line",
    [
        # the disease's origin, a biopsy, a solid tumour untreated by drugs, a time since diagnosis
        "Diagnosis of acute myeloid leukaemia (AML) /high risk Myelodysplastic syndrome (MDS) "
        "(>10% blasts in the bone marrow)/isolated myeloid sarcoma (MS) (either de novo or secondary).",
        "Unable or not willing to provide tumour tissue sample (from archival tissue or de-novo biopsy)",
        "Previously untreated NSCLC",
        "Patients who are within 3 months of diagnosis of AML",
        "Induction chemotherapy for newly diagnosed AML",
    ],
)
def test_not_a_status(line):
    assert _typed(line, "disease_status") == []


@pytest.mark.parametrize(
    ("line", "patient", "want"),
    [
        ("Ph-like ALL newly diagnosed;", {"disease_status": "relapsed"}, NOT_MET),
        ("Ph-like ALL newly diagnosed;", {"disease_status": "newly_diagnosed"}, MET),
        # not inferred from therapies (a patient in induction has had chemotherapy): no status
        # recorded is UNKNOWN ...
        ("Ph-like ALL newly diagnosed;", {"prior_therapies": ["cytarabine"]}, UNKNOWN),
        ("Ph-like ALL newly diagnosed;", {"prior_therapies": ["blinatumomab"]}, UNKNOWN),
        ("Ph-like ALL newly diagnosed;", {"prior_therapies": ["stem cell transplant"]}, UNKNOWN),
        # (an engineered cell therapy of unstated kind, or a TCR T-cell product, is not CAR-T)
        ("Ph-like ALL newly diagnosed;", {"prior_therapies": ["cell therapy"]}, UNKNOWN),
        ("Ph-like ALL newly diagnosed;", {"prior_therapies": ["afami-cel"]}, UNKNOWN),
        # ... except a class given only after a prior line (``later_line``: CAR T-cell therapy)
        ("Ph-like ALL newly diagnosed;", {"prior_therapies": ["tisagenlecleucel"]}, NOT_MET),
        (
            "Newly diagnosed AL (acute myeloid leukemia (AML) and acute lymphocytic leukemia (ALL))",
            {"prior_therapies": ["cytarabine", "idarubicin", "CAR T-cell therapy"]},
            NOT_MET,
        ),
        # which it was, relapsed or refractory, is not known; nor whether a remission followed
        (
            "Relapsed or newly diagnosed acute myeloid leukemia",
            {"prior_therapies": ["Kymriah"]},
            UNKNOWN,
        ),
        ("Relapsed AML", {"prior_therapies": ["tisagenlecleucel"]}, UNKNOWN),
        (
            "the first complete remission phase (CR1) of acute leukemia;",
            {"prior_therapies": ["tisagenlecleucel"]},
            UNKNOWN,
        ),
        # a recorded status wins over the inference
        (
            "Ph-like ALL newly diagnosed;",
            {"disease_status": "newly_diagnosed", "prior_therapies": ["tisagenlecleucel"]},
            MET,
        ),
        ("Ph-like ALL newly diagnosed;", {"disease_status": "remission"}, UNKNOWN),
        ("Relapsed or newly diagnosed acute myeloid leukemia", {"disease_status": "relapsed"}, MET),
        (
            "Relapsed or newly diagnosed acute myeloid leukemia",
            {"disease_status": "newly_diagnosed"},
            MET,
        ),
        (
            "the first complete remission phase (CR1) of acute leukemia;",
            {"disease_status": "relapsed"},
            NOT_MET,
        ),
        (
            "the first complete remission phase (CR1) of acute leukemia;",
            {"disease_status": "remission"},
            MET,
        ),
        # a refractory disease may reach a first remission after a second induction; a newly
        # diagnosed one after induction; an untreated record says nothing of remission
        (
            "the first complete remission phase (CR1) of acute leukemia;",
            {"disease_status": "refractory"},
            UNKNOWN,
        ),
        (
            "the first complete remission phase (CR1) of acute leukemia;",
            {"disease_status": "newly_diagnosed"},
            UNKNOWN,
        ),
        (
            "the first complete remission phase (CR1) of acute leukemia;",
            {"prior_therapies": []},
            UNKNOWN,
        ),
        ("Patients with AML in CR1 or in first relapse", {"disease_status": "relapsed"}, MET),
    ],
)
def test_status_verdict(line, patient, want):
    assert _verdicts(line, "disease_status", **patient) == [want]


def test_a_later_line_therapy_meets_an_exclusion_of_newly_diagnosed_disease():
    got = _verdicts(
        "Newly diagnosed patients", "disease_status", "exclusion", prior_therapies=["CAR-T"]
    )
    assert got == [MET]
    # prior therapies not recorded: nothing is inferred
    assert _verdicts("Newly diagnosed patients", "disease_status") == [UNKNOWN]
    assert _verdicts("Ph-like ALL newly diagnosed;", "disease_status") == [UNKNOWN]


def test_statuses_on_several_lines_are_alternatives():
    """A list of disease states ("ALL in CR1", "Relapsed AML with <25% blasts"), one a line:
    a relapsed patient fails the first and meets the second, so is not excluded."""
    from matcher.eligibility import parse_trial

    text = (
        "Inclusion Criteria:\n"
        "* Diagnosis of high-risk hematological malignancy. This includes:\n"
        "* i. High risk ALL in first complete remission (RC1);\n"
        "* vi. Relapsed AML with <25% blasts in bone marrow;\n"
    )
    record = {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT00000001"},
            "eligibilityModule": {"eligibilityCriteria": text},
        }
    }
    parsed = parse_trial(record)
    status = [c for c in parsed.criteria if c.type == "disease_status"]
    assert len(status) == 2 and len({c.group for c in status}) == 1 and status[0].group
    verdicts = evaluate(_patient(disease_status="relapsed"), parsed)
    assert NOT_MET not in {v.verdict for v in verdicts if v.criterion.type == "disease_status"}


# --- CML phase, read from the diagnosis as written ------------------------------------------
@pytest.mark.parametrize(
    ("line", "section", "diagnosis", "want"),
    [
        (
            "patients with ph-positive chronic myeloid leukemia in the chronic phase before "
            "treatment and taking tyrosine kinase inhibitors of I and II generations",
            "inclusion",
            "chronic myeloid leukemia in accelerated phase",
            NOT_MET,
        ),
        (
            "patients with ph-positive chronic myeloid leukemia in the chronic phase before "
            "treatment and taking tyrosine kinase inhibitors of I and II generations",
            "inclusion",
            "chronic myeloid leukemia, chronic phase",
            MET,
        ),
        (
            "Patient with Philadelphia chromosome positive CML in first blast crisis or first "
            "accelerated phase:",
            "inclusion",
            "chronic myeloid leukemia in myeloid blast crisis",
            MET,
        ),
        (
            "Patient with Philadelphia chromosome positive CML in first blast crisis or first "
            "accelerated phase:",
            "inclusion",
            "newly diagnosed chronic myeloid leukemia, chronic phase",
            NOT_MET,
        ),
        # no phase written: never inferred
        (
            "Patient with Philadelphia chromosome positive CML in first blast crisis or first "
            "accelerated phase:",
            "inclusion",
            "chronic myeloid leukemia",
            UNKNOWN,
        ),
        (
            "Blast crisis of chronic myeloid leukaemia.",
            "exclusion",
            "chronic myeloid leukemia in myeloid blast crisis",
            NOT_MET,
        ),
        (
            "Blast crisis of chronic myeloid leukaemia.",
            "exclusion",
            "chronic myeloid leukemia, chronic phase",
            MET,
        ),
        # a narrower exclusion than the patient's phase: "lymphoid" blast crisis, myeloid patient
        (
            "Lymphoid blast crisis of chronic myelocytic leukemia (CML);",
            "exclusion",
            "chronic myeloid leukemia in myeloid blast crisis",
            UNKNOWN,
        ),
    ],
)
def test_cml_phase(line, section, diagnosis, want):
    assert _verdicts(line, "cml_phase", section, diagnosis=diagnosis) == [want]


def test_chronic_phase_of_another_disease_is_not_a_cml_phase():
    assert _typed("Chronic phase of graft versus host disease", "cml_phase") == []
