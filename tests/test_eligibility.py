"""Criteria splitting, typed criteria, polarity, verdicts and the `trial` command."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from matcher.cli import cli
from matcher.criteria_text import normalize, split_criteria
from matcher.eligibility import (
    MET,
    NOT_MET,
    UNKNOWN,
    clear_cache,
    evaluate,
    parse_line,
    parse_trial,
)
from matcher.patient import normalize_record
from matcher.records import iter_records

# ---------------------------------------------------------------------------------------
# splitting
# ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "Inclusion Criteria:\n\n* Age 18\n* ECOG 0-1\n\nExclusion Criteria:\n\n* Pregnant",
            [("inclusion", "Age 18"), ("inclusion", "ECOG 0-1"), ("exclusion", "Pregnant")],
        ),
        (
            "Key Inclusion Criteria:\n\n1. A\n2. B\n\nKey Exclusion Criteria:\n\n1. C",
            [("inclusion", "A"), ("inclusion", "B"), ("exclusion", "C")],
        ),
        (
            "Inclusion criteria\n- A\nExclusion criteria\n- B",
            [("inclusion", "A"), ("exclusion", "B")],
        ),
        ("Inclusion:\n* A\nExclusion:\n* B", [("inclusion", "A"), ("exclusion", "B")]),
        (
            "Patient Inclusion Criteria:\n* A\nPatient Exclusion Criteria:\n* B",
            [("inclusion", "A"), ("exclusion", "B")],
        ),
        (
            "• Inclusion Criteria:\n• A\n• Exclusion Criteria:\n• B",
            [("inclusion", "A"), ("exclusion", "B")],
        ),
        ("* A\n* B", [("inclusion", "A"), ("inclusion", "B")]),  # no heading at all
        (
            "Exclusion Criteria:\n* A\n\nOther exclusion criteria:\n* B",
            [("exclusion", "A"), ("exclusion", "B")],
        ),
        ("Inclusion Criteria:\r\n\r\n* A\r\n* B\r\n", [("inclusion", "A"), ("inclusion", "B")]),
        (  # classic XML: '-' bullets, hard-wrapped continuation lines are re-joined
            "Inclusion Criteria:\n\n  -  Written, voluntary, informed consent; must include\n"
            "     investigational use of tumor tissue biopsies.\n\n  -  ECOG < 3\n",
            [
                (
                    "inclusion",
                    "Written, voluntary, informed consent; must include investigational use "
                    "of tumor tissue biopsies.",
                ),
                ("inclusion", "ECOG < 3"),
            ],
        ),
        (  # a value wrapped onto the next line is not a numbered bullet
            "  -  AST and ALT ≤\n     2.5 X ULN OR ≤ 5 X ULN for liver metastases.",
            [("inclusion", "AST and ALT ≤ 2.5 X ULN OR ≤ 5 X ULN for liver metastases.")],
        ),
        (  # "1. A 2. B 3. C" written on one line
            "Exclusion Criteria:\n\n1. Any prior fusion 2. Requires two levels 3. BMI \\> 40",
            [
                ("exclusion", "Any prior fusion"),
                ("exclusion", "Requires two levels"),
                ("exclusion", "BMI \\> 40"),
            ],
        ),
        (  # a list on one line under a lead-in: the lead and its items
            "Exclusion Criteria:\n* Received any of the following treatments: 1. prior "
            "gefitinib; 2. major surgery within 4 weeks; c. radiotherapy",
            [
                ("exclusion", "Received any of the following treatments:"),
                ("exclusion", "prior gefitinib"),
                ("exclusion", "major surgery within 4 weeks"),
                ("exclusion", "radiotherapy"),
            ],
        ),
        (  # ... not when the lead-in holds a condition: its items hold only for those patients
            "Exclusion Criteria:\n* Patients with prior anti-CD38 therapy, if any of the "
            "following: a) progression on it; b) intolerance",
            [
                (
                    "exclusion",
                    "Patients with prior anti-CD38 therapy, if any of the following: "
                    "a) progression on it; b) intolerance",
                )
            ],
        ),
    ],
)
def test_split_sections_and_bullets(text, expected):
    assert [(c.section, c.text) for c in split_criteria(text)] == expected


def test_sub_bullets_carry_their_parent_as_context():
    text = (
        "Inclusion Criteria:\n\n* Patients must have one of the following:\n\n"
        "  * Leiomyosarcoma\n  * Liposarcoma\n* ECOG 0-1"
    )
    lines = split_criteria(text)
    assert [(c.text, c.depth, c.context) for c in lines] == [
        ("Patients must have one of the following:", 0, None),
        ("Leiomyosarcoma", 1, "Patients must have one of the following:"),
        ("Liposarcoma", 1, "Patients must have one of the following:"),
        ("ECOG 0-1", 0, None),
    ]


@pytest.mark.parametrize(
    ("raw", "plain"),
    [
        ("Patients' age must be \\>= 18 years", "Patients' age must be >= 18 years"),
        ("ANC ≥ 1,500/mcL", "ANC >= 1,500/mcL"),
        ("bilirubin ≤ 1.5 × ULN", "bilirubin <= 1.5 x ULN"),
        ("Patient &gt;/= 18 years", "Patient >= 18 years"),
        ("temperature \\<38°C \\[oral\\]", "temperature <38°C [oral]"),
    ],
)
def test_normalize_for_matching(raw, plain):
    assert normalize(raw) == plain


def test_text_keeps_markdown_escapes_as_written():
    [line] = split_criteria("* Patients' age must be \\>= 18 years")
    assert line.text == "Patients' age must be \\>= 18 years"
    assert line.plain == "Patients' age must be >= 18 years"


# ---------------------------------------------------------------------------------------
# typed criteria
# ---------------------------------------------------------------------------------------


def _typed(text, section="inclusion", context=None):
    return [(c.type, c.polarity, c.values) for c in parse_line(text, section, context=context)]


@pytest.mark.parametrize(
    ("text", "section", "scale", "lo", "hi", "polarity"),
    [
        ("ECOG performance status 0-1", "inclusion", "ecog", 0, 1, "require"),
        ("ECOG performance status < 3", "inclusion", "ecog", 0, 2, "require"),
        ("Performance status 0, 1, 2 or 3 (ECOG)", "inclusion", "ecog", 0, 3, "require"),
        ("Zubrod performance status ≤ 2", "inclusion", "ecog", 0, 2, "require"),
        ("WHO performance status 0-1", "inclusion", "ecog", 0, 1, "require"),
        ("Karnofsky performance status ≥ 70%", "inclusion", "karnofsky", 70, 100, "require"),
        ("KPS\\>60.", "inclusion", "karnofsky", 70, 100, "require"),
        ("Lansky play score ≥ 50", "inclusion", "lansky", 50, 100, "require"),
        ("ECOG performance status ≥ 3", "exclusion", "ecog", 3, 5, "exclude"),
        ("PS according to ECOG >2", "exclusion", "ecog", 3, 5, "exclude"),
        # "70 or above" reaches the scale as "70 or >"
        (
            "Karnofsky performance score of 70 or above",
            "inclusion",
            "karnofsky",
            70,
            100,
            "require",
        ),
        # a later mention's "within 14 days" is no score of 1 (the digits end together)
        (
            "ECOG performance status of 0 to 1. Evaluation of ECOG is to be performed within"
            " 14 days before registration.",
            "inclusion",
            "ecog",
            0,
            1,
            "require",
        ),
    ],
)
def test_performance_status(text, section, scale, lo, hi, polarity):
    assert _typed(text, section) == [
        ("performance_status", polarity, {"scale": scale, "min": lo, "max": hi})
    ]


def test_two_scales_on_one_line_are_alternatives():
    crits = parse_line("ECOG performance status =< 2 (Karnofsky >= 60%) or ECOG 0-1", "inclusion")
    ps = [c for c in crits if c.type == "performance_status"]
    assert {c.values["scale"] for c in ps} == {"ecog", "karnofsky"}
    assert {c.group for c in ps} == {"line:ps"}


@pytest.mark.parametrize(
    ("text", "section", "lo", "hi", "polarity"),
    [
        ("Patient >/= 18 years of age", "inclusion", 18.0, None, "require"),
        ("Patients' age must be \\>= 18 years", "inclusion", 18.0, None, "require"),
        (
            "Patient is between 18 and 75 years of age, inclusive.",
            "inclusion",
            18.0,
            75.0,
            "require",
        ),
        ("Male or female, 18 years of age or older", "inclusion", 18.0, None, "require"),
        ("Age > 85 years", "exclusion", 85.0, None, "exclude"),
        ("Age ≥ 6 months", "inclusion", 0.5, None, "require"),
    ],
)
def test_age_restated_in_text(text, section, lo, hi, polarity):
    [(t, pol, v)] = _typed(text, section)
    assert (t, pol, v["min_years"], v["max_years"], v["source"]) == (
        "age",
        polarity,
        lo,
        hi,
        "text",
    )


def test_conditional_age_is_not_an_age_gate():
    assert [
        t for t, _, _ in _typed("For minors that are 16 to 18 years of age, assent is required")
    ] == ["unparsed"]


@pytest.mark.parametrize(
    ("text", "section", "context", "polarity", "ids"),
    [
        (
            "Histological diagnosis of primary or recurrent dermatofibrosarcoma protuberans",
            "inclusion",
            None,
            "require",
            ["dermatofibrosarcoma_protuberans"],
        ),
        (
            "Histologically confirmed intermediate- or high-grade malignant soft tissue sarcoma",
            "inclusion",
            None,
            "require",
            ["soft_tissue_sarcoma"],
        ),
        (
            "Gastrointestinal stromal tumors (GIST)",
            "inclusion",
            "The following tumor types are not allowed:",
            "exclude",
            ["gist"],
        ),
        (
            "Embryonal rhabdomyosarcoma",
            "exclusion",
            None,
            "exclude",
            ["embryonal_rhabdomyosarcoma"],
        ),
    ],
)
def test_histology(text, section, context, polarity, ids):
    got = [(p, v["diagnoses"]) for t, p, v in _typed(text, section, context) if t == "histology"]
    assert got == [(polarity, ids)]


def test_histology_exclusion_list_and_except_clause():
    got = _typed("Soft tissue sarcoma (excluding GIST and dermatofibrosarcoma protuberans)")
    hist = [(p, v["diagnoses"]) for t, p, v in got if t == "histology"]
    assert hist == [
        ("require", ["soft_tissue_sarcoma"]),
        ("exclude", ["gist", "dermatofibrosarcoma_protuberans"]),
    ]


def test_other_malignancy_lines_are_not_histology():
    text = "Patient is < 5 years free of another primary malignancy except basal cell skin cancer"
    assert [t for t, _, _ in _typed(text, "exclusion")] == ["unparsed"]


@pytest.mark.parametrize(
    ("text", "section", "polarity", "extent"),
    [
        ("Advanced and/or metastatic disease", "inclusion", "require", ["advanced", "metastatic"]),
        ("Any evidence of distant metastases", "exclusion", "exclude", ["metastatic"]),
        (
            "Unresectable or medically inoperable as determined by the investigator.",
            "inclusion",
            "require",
            ["unresectable"],
        ),
        (
            "Locally advanced or metastatic NSCLC",
            "inclusion",
            "require",
            ["locally_advanced", "metastatic"],
        ),
        ("No evidence of metastatic disease", "inclusion", "exclude", ["metastatic"]),
        ("stage I-III breast cancer (non-metastatic)", "inclusion", "exclude", ["metastatic"]),
    ],
)
def test_disease_extent(text, section, polarity, extent):
    got = [(p, v["extent"]) for t, p, v in _typed(text, section) if t == "disease_extent"]
    assert got == [(polarity, extent)]


@pytest.mark.parametrize(
    "text",
    [
        "AST <= 5 x ULN in patients with metastatic disease to the liver",
        "Prior treatment with any systemic anti-cancer therapy for locally advanced/metastatic NSCLC",
        "Known leptomeningeal disease or spinal cord compression due to metastatic disease",
    ],
)
def test_extent_words_that_are_not_extent_gates(text):
    assert "disease_extent" not in [t for t, _, _ in _typed(text, "exclusion")]


@pytest.mark.parametrize(
    ("text", "section", "polarity", "allowed"),
    [
        ("Known brain metastasis.", "exclusion", "exclude", False),
        (
            "No known history of CNS metastases or leptomeningeal tumor spread",
            "inclusion",
            "exclude",
            False,
        ),
        ("Known active central nervous system (CNS) metastases", "exclusion", "exclude", True),
        (
            "Brain metastases are allowed, given that are clinically stable",
            "inclusion",
            "exclude",
            True,
        ),
        ("Brain metastases unless treated and stable for 4 weeks", "exclusion", "exclude", True),
    ],
)
def test_brain_metastases(text, section, polarity, allowed):
    got = [(p, v) for t, p, v in _typed(text, section) if t == "brain_metastases"]
    assert got == [(polarity, {"allowed_if_treated_stable": allowed})]


def test_cns_involvement_of_another_disease_is_not_brain_metastases():
    text = "Any autoimmune disease with CNS involvement that may impair the evaluation"
    assert "brain_metastases" not in [t for t, _, _ in _typed(text, "exclusion")]


@pytest.mark.parametrize(
    ("text", "section", "polarity", "evaluable"),
    [
        ("Measurable disease according to RECIST v 1.1 criteria", "inclusion", "require", False),
        ("Measurable or evaluable disease", "inclusion", "require", True),
        ("Patients without measurable disease", "exclusion", "require", False),  # double negative
        ("Non-measurable disease only", "exclusion", "require", False),
        ("Must have a target lesion to evaluate treatment response", "inclusion", "require", False),
        (
            "At least one tumor lesion that can be accurately measured",
            "inclusion",
            "require",
            False,
        ),
    ],
)
def test_measurable_disease(text, section, polarity, evaluable):
    [(t, p, v)] = [x for x in _typed(text, section) if x[0] == "measurable_disease"]
    assert (p, v["evaluable_allowed"]) == (polarity, evaluable)


def test_which_lesions_count_is_not_a_measurable_disease_rule():
    assert not [
        t
        for t, _, _ in _typed("Lesions in a previously irradiated area cannot be target lesions")
        if t == "measurable_disease"
    ]


def test_recist_version_recorded():
    [(_, _, v)] = _typed("At least one measurable lesion according to RECIST version 1.1")
    assert v["criteria"] == "RECIST 1.1"


@pytest.mark.parametrize(
    ("text", "section", "expected"),
    [
        (
            "Patients must not have received prior treatment with any VEGF receptor tyrosine kinase "
            "inhibitor (e.g., cediranib, sunitinib); however, prior treatment with bevacizumab is allowed.",
            "exclusion",
            ("prior_therapy_excluded", {"classes": ["vegfr_tki"]}),
        ),
        (
            "No prior anthracycline",
            "inclusion",
            ("prior_therapy_excluded", {"classes": ["anthracycline"]}),
        ),
        (
            "Previously untreated disease",
            "inclusion",
            ("prior_therapy_excluded", {"any_systemic": True}),
        ),
        (
            "No prior systemic therapy for the treatment of cancer",
            "inclusion",
            ("prior_therapy_excluded", {"any_systemic": True}),
        ),
        (
            "Prior therapy with axitinib.",
            "exclusion",
            ("prior_therapy_excluded", {"drugs": ["axitinib"]}),
        ),
        (
            "Must have progressed on or after prior doxorubicin",
            "inclusion",
            ("prior_therapy_required", {"drugs": ["doxorubicin"], "progression": True}),
        ),
        (
            "Participants must have received at least one line of platinum-based chemotherapy",
            "inclusion",
            ("prior_therapy_required", {"classes": ["platinum"], "min_lines": 1}),
        ),
        (
            "Patients who have not received prior anthracycline",
            "exclusion",
            ("prior_therapy_required", {"classes": ["anthracycline"]}),
        ),
        (
            "No more than 2 prior lines of systemic therapy",
            "inclusion",
            ("max_prior_lines", {"max_lines": 2}),
        ),
        # "naive" with a named drug or class: not received (it read as a requirement)
        (
            "osimertinib treatment-naive for NSCLC",
            "inclusion",
            ("prior_therapy_excluded", {"drugs": ["osimertinib"]}),
        ),
        (
            "Patients must be naive to ALK inhibitors",
            "inclusion",
            ("prior_therapy_excluded", {"classes": ["alk_inhibitor"]}),
        ),
        (
            "EGFR-TKI naive patients",
            "inclusion",
            ("prior_therapy_excluded", {"classes": ["egfr_inhibitor"]}),
        ),
        (
            "Chemotherapy-naive",
            "inclusion",
            ("prior_therapy_excluded", {"classes": ["chemotherapy"]}),
        ),
        (
            "Chemotherapy-naive patients",
            "exclusion",
            ("prior_therapy_required", {"classes": ["chemotherapy"]}),
        ),
        (
            "Patients must not be chemotherapy-naive",
            "inclusion",
            ("prior_therapy_required", {"classes": ["chemotherapy"]}),
        ),
        # under exclusions "No prior X" restates the exclusion (literally it would require X)
        (
            "No prior trabectedin",
            "exclusion",
            ("prior_therapy_excluded", {"drugs": ["trabectedin"]}),
        ),
        (
            "No prior PARP inhibitor for any indication.",
            "exclusion",
            ("prior_therapy_excluded", {"classes": ["parp_inhibitor"]}),
        ),
        # a ceiling on lines requires none
        (
            "The number of previous chemotherapy regimens does not exceed 2",
            "inclusion",
            ("max_prior_lines", {"max_lines": 2}),
        ),
        ("Prior regimens <= 3", "inclusion", ("max_prior_lines", {"max_lines": 3})),
        # "any CDK inhibitor" is a class that holds the CDK4/6 inhibitors
        (
            "Prior therapy with any CDK inhibitor.",
            "exclusion",
            ("prior_therapy_excluded", {"classes": ["cdk_inhibitor"]}),
        ),
        (
            "Previously untreated with imatinib",
            "inclusion",
            ("prior_therapy_excluded", {"drugs": ["imatinib"]}),
        ),
    ],
)
def test_prior_therapy(text, section, expected):
    crits = [(t, v) for t, _, v in _typed(text, section) if t.startswith(("prior_", "max_prior"))]
    assert [t for t, _ in crits] == [expected[0]]
    values = crits[0][1]
    for k, want in expected[1].items():
        got = values[k]
        assert (set(want) <= set(got)) if isinstance(want, list) else got == want, (k, got)


@pytest.mark.parametrize(
    "text",
    [
        "Hypersensitivity to axitinib, pembrolizumab or any of its excipients.",
        "Patients are permitted to have received prior tyrosine kinase inhibitor therapy including imatinib.",
        "Pruritus prior to immunotherapy.",
        "The patient is currently being treated with radiation, chemotherapy or steroid therapy",
        # resolution of toxicity is no requirement (nor exclusion) of therapy
        "Any adverse effects from prior surgery, radiotherapy, or antineoplastic therapy must "
        "have improved to Grade 1 or less by the time of enrollment",
    ],
)
def test_not_prior_therapy(text):
    assert not [t for t, _, _ in _typed(text, "exclusion") if t.startswith("prior_")]


def test_a_window_from_another_event_is_no_washout():
    got = _typed(
        "Received autologous stem cell transplant as upfront therapy for myeloma (defined as "
        "ASCT within one year of diagnosis of symptomatic myeloma)",
        "inclusion",
    )
    assert "washout" not in [t for t, _, _ in got]
    assert ("prior_therapy_required", "require") in [(t, p) for t, p, _ in got]


def test_time_window_is_a_washout_not_a_lifelong_exclusion():
    got = _typed(
        "Patient received chemotherapy within 2 weeks prior to initiation of treatment", "exclusion"
    )
    assert [(t, p, v["days"]) for t, p, v in got] == [("washout", "exclude", 14)]


@pytest.mark.parametrize(
    ("text", "days"),
    [
        ("Major surgery within 4 weeks prior to entry into the study", 28),
        ("At least 28 days since prior and no concurrent anticancer therapy", 28),
        ("Has received a live vaccine within 30 days of planned start of study therapy", 30),
    ],
)
def test_washout(text, days):
    [(t, p, v)] = [x for x in _typed(text, "exclusion") if x[0] == "washout"]
    assert v["days"] == days


@pytest.mark.parametrize(
    ("text", "section", "polarity"),
    [
        ("Not pregnant or nursing", "inclusion", "exclude"),
        (
            "Female patients of childbearing potential must have negative pregnancy test",
            "inclusion",
            "exclude",
        ),
        ("Pregnant or breastfeeding women.", "exclusion", "exclude"),
        ("Pregnant women between 24 and 34 weeks of gestation", "inclusion", "require"),
    ],
)
def test_pregnancy(text, section, polarity):
    assert [p for t, p, _ in _typed(text, section) if t == "pregnancy"] == [polarity]


@pytest.mark.parametrize(
    ("text", "labs"),
    [
        (
            "ANC ≥ 1,500/mcL and platelets ≥ 100,000/mcL",
            [("anc", ">=", 1500.0, None), ("platelets", ">=", 100000.0, None)],
        ),
        ("Absolute neutrophil count ≥ 1.5 x 10^9/L", [("anc", ">=", 1500.0, None)]),
        ("Hemoglobin ≥ 9 g/dL", [("hemoglobin", ">=", 9.0, None)]),
        ("hemoglobin ≥ 90 g/L", [("hemoglobin", ">=", 9.0, None)]),
        ("Serum creatinine ≤ 1.5 times ULN", [("creatinine", "<=", None, 1.5)]),
        ("creatinine ≤ 133 µmol/L", [("creatinine", "<=", 1.504, None)]),
        ("Creatinine clearance ≥ 60 mL/min", [("creatinine_clearance", ">=", 60.0, None)]),
        (
            "ALT/AST ≤ 2.5 times upper limit of normal (ULN)",
            [("alt", "<=", None, 2.5), ("ast", "<=", None, 2.5)],
        ),
        ("Bilirubin normal", [("bilirubin", "<=", None, 1.0)]),
        ("Platelet count≥75×109/L", [("platelets", ">=", 75000.0, None)]),
        # thousands per microlitre written as k/mm3, K/cumm, x 10^3/mm3
        ("Platelets >= 100 k/mm3", [("platelets", ">=", 100000.0, None)]),
        ("ANC >= 1.5 K/cumm", [("anc", ">=", 1500.0, None)]),
        ("Platelets >= 100 x 10^3/mm3", [("platelets", ">=", 100000.0, None)]),
        # the limit written after its value
        ("Hemoglobin of 9 g/dL or more", [("hemoglobin", ">=", 9.0, None)]),
        ("Creatinine 1.5 mg/dL or less", [("creatinine", "<=", 1.5, None)]),
    ],
)
def test_organ_function(text, labs):
    got = [
        (v["lab"], v["op"], v["std_value"], v["uln_multiple"])
        for t, _, v in _typed(text)
        if t == "organ_function"
    ]
    assert got == labs


def test_creatinine_or_clearance_are_alternatives():
    crits = parse_line(
        "Serum creatinine ≤ 1.5 mg/dL or creatinine clearance ≥ 60 mL/min", "inclusion"
    )
    assert [(c.values["lab"], c.group) for c in crits] == [
        ("creatinine", "line:renal"),
        ("creatinine_clearance", "line:renal"),
    ]


def test_untyped_line_is_kept_verbatim():
    [c] = parse_line(
        "Ability to understand and the willingness to sign a written informed consent.", "inclusion"
    )
    assert (c.type, c.text) == (
        "unparsed",
        "Ability to understand and the willingness to sign a written informed consent.",
    )
    assert c.to_dict() == {
        "section": "inclusion",
        "text": "Ability to understand and the willingness to sign a written informed consent.",
        "type": "unparsed",
        "polarity": "require",
        "values": {},
    }


# ---------------------------------------------------------------------------------------
# trials and caching
# ---------------------------------------------------------------------------------------


def _records(fixtures_dir):
    return [it.record for it in iter_records(fixtures_dir / "trials") if it.error is None]


def test_every_fixture_record_parses_and_keeps_every_line(fixtures_dir):
    records = _records(fixtures_dir)
    assert len(records) >= 10
    for rec in records:
        pt = parse_trial(rec)
        text_lines = [c for c in pt.criteria if c.source == "text"]
        assert {c.text for c in text_lines} >= {
            ln.text for ln in split_criteria(pt.trial.criteria_text) if not ln.children
        }


def test_parse_trial_is_cached_per_record_version(fixtures_dir):
    clear_cache()
    rec = _records(fixtures_dir)[0]
    first = parse_trial(rec)
    assert parse_trial(rec) is first
    changed = json.loads(json.dumps(rec))
    changed["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"] = {"date": "2099-01-01"}
    assert parse_trial(changed) is not first


def test_structured_age_and_sex_gates(fixtures_dir):
    rec = next(
        r
        for r in _records(fixtures_dir)
        if r["protocolSection"]["identificationModule"]["nctId"] == "NCT06388018"
    )
    pt = parse_trial(rec)
    structured = [(c.type, c.values) for c in pt.criteria if c.source == "structured"]
    assert structured == [
        ("age", {"min_years": 18.0, "max_years": None, "source": "structured"}),
        ("sex", {"sex": "FEMALE"}),
    ]
    # the criteria text restates the age: both are reported
    assert any(c.type == "age" and c.values["source"] == "text" for c in pt.criteria)


# ---------------------------------------------------------------------------------------
# verdicts
# ---------------------------------------------------------------------------------------


def _patient(**kw):
    raw = {"id": "P1", **kw}
    return normalize_record(raw, source="test")


def _verdict(text, section="inclusion", context=None, **patient):
    from matcher.eligibility import ParsedTrial
    from matcher.trial import Trial

    pt = ParsedTrial(Trial(nct_id="NCT00000000"), parse_line(text, section, context=context))
    typed = [v for v in evaluate(_patient(**patient), pt) if v.criterion.type != "contraception"]
    return [(v.verdict, v.reason) for v in typed]


@pytest.mark.parametrize(
    ("text", "section", "patient", "verdict", "reason_part"),
    [
        ("ECOG performance status 0-1", "inclusion", {"ecog": 1}, MET, "ECOG 1 within 0–1"),
        ("ECOG performance status 0-1", "inclusion", {"ecog": 2}, NOT_MET, "ECOG 2 outside 0–1"),
        ("ECOG performance status 0-1", "inclusion", {}, UNKNOWN, "ECOG not recorded: verify"),
        ("ECOG performance status ≥ 3", "exclusion", {"ecog": 1}, MET, "ECOG 1"),
        (
            "Karnofsky performance status ≥ 70%",
            "inclusion",
            {"karnofsky": 80},
            MET,
            "Karnofsky 80 within ≥70",
        ),
        (
            "Karnofsky performance status ≥ 70%",
            "inclusion",
            {"ecog": 1},
            MET,
            "ECOG 1 ≈ Karnofsky 70–80",
        ),
        ("Karnofsky performance status ≥ 70%", "inclusion", {"ecog": 2}, UNKNOWN, "verify"),
        # a prohibition under "Exclusion criteria" is no double negative requiring the disease
        (
            "Participants must not have a diagnosis of Burkitt lymphoma.",
            "exclusion",
            {"diagnosis": "diffuse large B-cell lymphoma"},
            MET,
            "not among excluded",
        ),
        # "N or above" is a lower bound; "staging of" states a stage
        ("Female or male 18 years of age or above", "inclusion", {"age": 16}, NOT_MET, "age 16"),
        ("Clinical staging of IIIc or IV disease", "inclusion", {"stage": "IIIA"}, NOT_MET, "IIIA"),
        # a kind the line says is not permitted is excluded, beside the kind it requires
        (
            "Patients with neuroendocrine tumors of the prostate are not permitted.",
            "inclusion",
            {"diagnosis": "neuroendocrine prostate cancer"},
            NOT_MET,
            "trial excludes",
        ),
        # the serous grades are kinds of ovarian cancer: one excluded is not every ovarian cancer
        (
            "High-grade serous ovarian carcinoma",
            "exclusion",
            {"diagnosis": "low grade serous ovarian cancer"},
            MET,
            "not among",
        ),
        (
            "High-grade serous ovarian carcinoma",
            "exclusion",
            {"diagnosis": "ovarian cancer"},
            UNKNOWN,
            "unspecified subtype",
        ),
        # colon and rectal cancer are siblings under colorectal cancer
        (
            "Participants diagnosed with rectal cancer.",
            "exclusion",
            {"diagnosis": "colon cancer"},
            MET,
            "not among",
        ),
        (
            "Participants diagnosed with rectal cancer.",
            "exclusion",
            {"diagnosis": "colorectal cancer"},
            UNKNOWN,
            "unspecified subtype",
        ),
        (
            "Participants diagnosed with rectal cancer.",
            "exclusion",
            {"diagnosis": "rectal adenocarcinoma"},
            NOT_MET,
            "trial excludes Rectal cancer",
        ),
        (
            "Patients must not have received prior treatment with any VEGF receptor tyrosine kinase inhibitor",
            "exclusion",
            {"prior_therapies": ["pazopanib"]},
            NOT_MET,
            "had pazopanib (VEGFR",
        ),
        (
            "Patients must not have received prior treatment with any VEGF receptor tyrosine kinase inhibitor",
            "exclusion",
            {"prior_therapies": ["doxorubicin"]},
            MET,
            "no prior",
        ),
        (
            "Patients must not have received prior treatment with any VEGF receptor tyrosine kinase inhibitor",
            "exclusion",
            {},
            UNKNOWN,
            "prior therapies not recorded",
        ),
        (
            "Previously untreated disease",
            "inclusion",
            {"prior_therapies": ["doxorubicin"]},
            NOT_MET,
            "had doxorubicin",
        ),
        ("Previously untreated disease", "inclusion", {"prior_therapies": []}, MET, "no prior"),
        (
            "No prior systemic therapy for metastatic disease",
            "inclusion",
            {"prior_therapies": ["doxorubicin"]},
            UNKNOWN,
            "verify",
        ),
        (
            "Must have progressed on or after prior doxorubicin",
            "inclusion",
            {"prior_therapies": ["doxorubicin"]},
            UNKNOWN,
            "progression on it is not recorded",
        ),
        (
            "Must have progressed on or after prior doxorubicin",
            "inclusion",
            {"prior_therapies": []},
            NOT_MET,
            "no prior doxorubicin",
        ),
        (
            "Histologically confirmed soft tissue sarcoma",
            "inclusion",
            {"diagnosis": "leiomyosarcoma"},
            MET,
            "Leiomyosarcoma",
        ),
        (
            "Histologically confirmed alveolar soft part sarcoma",
            "inclusion",
            {"diagnosis": "sarcoma"},
            UNKNOWN,
            "verify subtype",
        ),
        (
            "Histologically confirmed alveolar soft part sarcoma",
            "inclusion",
            {"diagnosis": "leiomyosarcoma"},
            NOT_MET,
            "not among",
        ),
        (
            "Histologically confirmed alveolar soft part sarcoma",
            "inclusion",
            {},
            UNKNOWN,
            "diagnosis not recorded",
        ),
        (
            "Gastrointestinal stromal tumors (GIST)",
            "exclusion",
            {"diagnosis": "gist"},
            NOT_MET,
            "excludes",
        ),
        (
            "Known brain metastasis.",
            "exclusion",
            {"brain_metastases": True},
            NOT_MET,
            "brain metastases recorded",
        ),
        (
            "Known active CNS metastases",
            "exclusion",
            {"brain_metastases": True},
            UNKNOWN,
            "treated and stable",
        ),
        (
            "Known brain metastasis.",
            "exclusion",
            {"brain_metastases": False},
            MET,
            "no brain metastases",
        ),
        (
            "Advanced and/or metastatic disease",
            "inclusion",
            {"stage": "IV"},
            MET,
            "metastatic disease",
        ),
        ("Metastatic disease", "inclusion", {"stage": "II"}, NOT_MET, "not metastatic"),
        (
            "Measurable disease per RECIST 1.1",
            "inclusion",
            {"measurable_disease": False},
            NOT_MET,
            "no measurable",
        ),
        ("Pregnant or breastfeeding women.", "exclusion", {"sex": "M"}, MET, "male patient"),
        (
            "Pregnant or breastfeeding women.",
            "exclusion",
            {"sex": "F"},
            UNKNOWN,
            "pregnancy status not recorded",
        ),
        ("ANC ≥ 1,500/mcL", "inclusion", {"labs": {"anc": 2100}}, MET, "ANC 2100"),
        ("ANC ≥ 1.5 x 10^9/L", "inclusion", {"labs": {"anc": 1200}}, NOT_MET, "ANC 1200"),
        # x ULN: MET only when the value fits even the lowest adult ULN (CONSERVATIVE_ULN)
        (
            "Total bilirubin ≤ 1.5 x ULN",
            "inclusion",
            {"labs": {"bilirubin": 0.6}},
            MET,
            "bilirubin 0.6 mg/dL <= 1.5 × ULN for any ULN ≥ 0.4 mg/dL",
        ),
        (
            "Total bilirubin ≤ 1.5 x ULN",
            "inclusion",
            {"labs": {"bilirubin": 1.8}},
            UNKNOWN,
            "ULN is not recorded",
        ),
        ("Creatinine > 1.5 x ULN", "exclusion", {"labs": {"creatinine": 2.0}}, UNKNOWN, "ULN"),
        ("Creatinine > 1.5 x ULN", "exclusion", {"labs": {"creatinine": 1.1}}, MET, "not > 1.5"),
        # exclusion wording: a MET reason never says "outside"
        ("Age > 85 years", "exclusion", {"age": 58}, MET, "age 58: not over 85"),
        ("Age > 85 years", "exclusion", {"age": 90}, NOT_MET, "age 90: over 85"),
        ("ECOG performance status ≥ 2", "exclusion", {"ecog": 1}, MET, "not in the excluded"),
        ("Serum creatinine ≤ 1.5 mg/dL", "inclusion", {}, UNKNOWN, "creatinine not recorded"),
        (
            "Major surgery within 4 weeks prior to entry",
            "exclusion",
            {},
            UNKNOWN,
            "washout 28 days",
        ),
        ("Life expectancy of greater than 3 months.", "inclusion", {}, UNKNOWN, "to review"),
    ],
)
def test_verdicts(text, section, patient, verdict, reason_part):
    [(got, reason)] = _verdict(text, section, **patient)
    assert got == verdict, reason
    assert reason_part in reason


def test_missing_data_is_never_not_met(fixtures_dir):
    empty = _patient()
    for rec in _records(fixtures_dir):
        for v in evaluate(empty, parse_trial(rec)):
            if v.criterion.type != "sex":
                assert v.verdict != NOT_MET, (v.criterion.text, v.reason)


def test_any_of_group_downgrades_a_failed_alternative():
    text = (
        "Inclusion Criteria:\n\n* Patients must have one of the following:\n\n"
        "  * Metastatic disease\n  * ECOG performance status 0\n"
    )
    record = {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT00000009"},
            "eligibilityModule": {"eligibilityCriteria": text},
        }
    }
    pt = parse_trial(record)
    verdicts = {v.criterion.type: v for v in evaluate(_patient(stage="IV", ecog=2), pt)}
    assert verdicts["disease_extent"].verdict == MET
    assert verdicts["performance_status"].verdict == MET  # not needed: the alternative is met
    verdicts = {v.criterion.type: v for v in evaluate(_patient(stage="II", ecog=2), pt)}
    assert verdicts["performance_status"].verdict == NOT_MET  # every alternative fails


# ---------------------------------------------------------------------------------------
# CLI
# ---------------------------------------------------------------------------------------

XML = "trials/classic-xml-sarcoma/NCT01391962.xml"


def test_cli_trial_json_without_patient(fixtures_dir):
    res = CliRunner().invoke(cli, ["trial", str(fixtures_dir / XML), "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["nct_id"] == "NCT01391962"
    assert set(data) == {"nct_id", "criteria"}
    optional = {"unexplained", "later_step"}  # present only when there is something to say
    for c in data["criteria"]:
        assert {"section", "text", "type", "polarity", "values"} <= set(c)
        assert set(c) - {"section", "text", "type", "polarity", "values"} <= optional
    vegfr = [c for c in data["criteria"] if c["type"] == "prior_therapy_excluded"]
    assert vegfr and "vegfr_tki" in vegfr[0]["values"]["classes"]


def test_cli_trial_json_with_one_patient(fixtures_dir):
    res = CliRunner().invoke(
        cli,
        [
            "trial",
            str(fixtures_dir / XML),
            "--patient",
            str(fixtures_dir / "patients/lms-001.json"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert set(data) == {"nct_id", "criteria"}
    ps = [c for c in data["criteria"] if c["type"] == "performance_status"]
    assert ps[0]["verdict"] == "MET" and ps[0]["reason"] == "ECOG 1 within 0–2"
    required = {"section", "text", "type", "polarity", "values", "verdict", "reason"}
    optional = {"unexplained", "later_step", "not_understood"}
    assert all(required <= set(c) and set(c) - required <= optional for c in data["criteria"])
    # every UNKNOWN says which words the coordinator must read (empty: data is missing)
    assert all("not_understood" in c for c in data["criteria"] if c["verdict"] == "UNKNOWN")
    unparsed = [c for c in data["criteria"] if c["type"] == "unparsed"]
    assert unparsed and all(c["not_understood"] == [c["text"]] for c in unparsed)


def test_cli_trial_json_with_several_patients(fixtures_dir):
    res = CliRunner().invoke(
        cli,
        [
            "trial",
            str(fixtures_dir / XML),
            "--patient",
            str(fixtures_dir / "patients/patients.json"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert isinstance(data, list) and len(data) > 1
    assert data[0]["patient_id"] == "LMS-001" and data[0]["nct_id"] == "NCT01391962"


def test_cli_trial_text_output(fixtures_dir):
    res = CliRunner().invoke(cli, ["trial", str(fixtures_dir / XML)])
    assert res.exit_code == 0
    assert res.output.startswith(
        "NCT01391962  Sunitinib or Cediranib for Alveolar Soft Part Sarcoma\n"
    )
    assert (
        "[exclusion] prior_therapy_excluded (exclude): drugs=cediranib/sunitinib/pazopanib/sorafenib, classes=vegfr_tki"
        in res.output
    )
    assert res.output.rstrip().endswith("Supports coordinator review; not medical advice.")


def test_cli_trial_not_in_store(tmp_path):
    res = CliRunner().invoke(cli, ["--db", str(tmp_path / "x.sqlite"), "trial", "NCT01391962"])
    assert res.exit_code == 1
    assert "trial NCT01391962 not found" in res.output and "trialmatch sync" in res.output


# ---------------------------------------------------------------------------------------
# properties
# ---------------------------------------------------------------------------------------

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_WORDS = st.sampled_from(
    ["ECOG", "≤", "2", "no", "prior", "brain", "metastases", "\\>=", "1,500/mcL", "ANC", "*", "-",
     "Inclusion Criteria:", "Exclusion Criteria:", "\n", "\r\n", "  ", "pregnant", "within", "4",
     "weeks", "doxorubicin", "(", ")", "x ULN", "Karnofsky", "%", "1.", "•"]
)  # fmt: skip


@settings(max_examples=150, deadline=None)
@given(st.lists(_WORDS, max_size=40).map(" ".join))
def test_any_text_parses_and_no_line_is_dropped(text):
    for line in split_criteria(text):
        crits = parse_line(line.text, line.section)
        assert crits and all(c.text == line.text for c in crits)
        assert all(c.polarity in ("require", "exclude") for c in crits)


# ---------------------------------------------------------------------------------------
# scenarios from real fixture trials: a wrong NOT_MET hides a trial (ELIGIBILITY-2 fixes)
# ---------------------------------------------------------------------------------------
def _trial_verdicts(fixtures_dir, relpath, **patient):
    rec = next(iter_records(fixtures_dir / "trials" / relpath)).record
    return evaluate(_patient(**patient), parse_trial(rec))


def _by_text(verdicts, start, type_):
    return [v for v in verdicts if v.criterion.text.startswith(start) and v.criterion.type == type_]


LMS = {"age": 58, "sex": "F", "diagnosis": "leiomyosarcoma", "brain_metastases": False}


@pytest.mark.parametrize(
    "patient",
    [
        LMS,
        {"age": 45, "diagnosis": "sarcoma", "brain_metastases": False},
        {"age": 31, "diagnosis": "alveolar soft part sarcoma", "brain_metastases": False},
    ],
)
def test_basket_trial_never_excludes_a_listed_sarcoma(fixtures_dir, patient):
    # NCT02576665 line 4 lists sarcoma among alternatives; "(other than glioma)" excepts
    # glioma only; line 9 "Patients with ... brain metastases must be undergoing resection"
    # is a condition, not a requirement to have brain metastases; "Patients with GBM ... must"
    # is a GBM cohort line
    verdicts = _trial_verdicts(fixtures_dir, "v2/NCT02576665.json", **patient)
    assert [v.reason for v in verdicts if v.verdict == NOT_MET] == []
    [exc] = [
        v
        for v in _by_text(verdicts, "Patient has histologically confirmed (1)", "histology")
        if v.criterion.polarity == "exclude"
    ]
    assert exc.criterion.values["diagnoses"] == ["glioma"]
    [brain] = _by_text(verdicts, "Patients with solid tumors or lymphoma", "brain_metastases")
    assert (brain.criterion.polarity, brain.verdict) == ("exclude", MET)
    [gbm] = _by_text(verdicts, "Patients with GBM", "histology")
    assert gbm.verdict == MET and "applies to Glioblastoma, Astrocytoma only" in gbm.reason


def test_glioma_exception_is_only_a_subgroup_rule_for_gbm(fixtures_dir):
    verdicts = _trial_verdicts(
        fixtures_dir, "v2/NCT02576665.json", age=50, diagnosis="glioblastoma"
    )
    [exc] = [
        v
        for v in _by_text(verdicts, "Patient has histologically confirmed (1)", "histology")
        if v.criterion.polarity == "exclude"
    ]
    assert exc.verdict == UNKNOWN  # GBM is admitted by alternative (3)


@pytest.mark.parametrize(
    ("patient", "anthracycline_header", "bone_line"),
    [
        # ASPS: "may be enrolled without prior treatment" -> the requirements do not apply
        ({"diagnosis": "alveolar soft part sarcoma", "prior_therapies": []}, MET, MET),
        # synovial sarcoma is in the anthracycline group; "or if the patient refuses" -> UNKNOWN
        ({"diagnosis": "synovial sarcoma", "prior_therapies": []}, UNKNOWN, MET),
        # had doxorubicin: refractoriness still to verify
        ({"diagnosis": "synovial sarcoma", "prior_therapies": ["doxorubicin"]}, UNKNOWN, MET),
        # generic "sarcoma": the subtype decides -> UNKNOWN
        ({"diagnosis": "sarcoma", "prior_therapies": []}, UNKNOWN, UNKNOWN),
        # Ewing sarcoma without anthracycline: the bone-tumour line applies and fails
        ({"diagnosis": "ewing sarcoma", "prior_therapies": []}, MET, NOT_MET),
    ],
)
def test_histology_group_conditions(fixtures_dir, patient, anthracycline_header, bone_line):
    verdicts = _trial_verdicts(
        fixtures_dir, "classic-xml-sarcoma/NCT02636725.xml", age=31, **patient
    )
    [head] = _by_text(
        verdicts,
        "The following histologies may be enrolled ONLY if refractory to anthracycline",
        "prior_therapy_required",
    )
    assert "synovial_sarcoma" in head.criterion.applies_to
    assert head.verdict == anthracycline_header, head.reason
    [bone] = _by_text(verdicts, "Primary tumors of bone", "prior_therapy_required")
    assert bone.verdict == bone_line, bone.reason


@pytest.mark.parametrize(
    ("biomarkers", "verdict", "reason_part"),
    [
        (["ALK negative"], NOT_MET, "documented negative ('ALK negative')"),
        (["ALK-"], NOT_MET, "documented negative"),
        (None, UNKNOWN, "ALK status not recorded: verify"),
        (["ALK rearrangement"], MET, "ALK positive"),
        (["ALK positive"], MET, "ALK positive"),
        (["ALK pending"], UNKNOWN, "ALK status not recorded"),
    ],
)
def test_alk_requirement_on_constructed_imt_trial(fixtures_dir, biomarkers, verdict, reason_part):
    extra = {} if biomarkers is None else {"biomarkers": biomarkers}
    verdicts = _trial_verdicts(
        fixtures_dir,
        "constructed/CONSTRUCTED-crizotinib-imt.json",
        age=24,
        diagnosis="inflammatory myofibroblastic tumor",
        **extra,
    )
    [bm] = [v for v in verdicts if v.criterion.type == "biomarker"]
    assert bm.criterion.values["genes"] == ["ALK"]
    assert bm.verdict == verdict and reason_part in bm.reason, bm.reason


@pytest.mark.parametrize(
    ("text", "section", "polarity", "markers"),
    [
        ("ALK rearrangement confirmed by FISH", "inclusion", "require", [("ALK", "rearrangement")]),
        ("ALK-positive NSCLC", "inclusion", "require", [("ALK", "positive")]),
        ("BRAF V600E mutation", "inclusion", "require", [("BRAF", "V600E")]),
        ("KRAS G12C mutation", "inclusion", "require", [("KRAS", "G12C")]),
        ("NTRK fusion-positive tumors", "inclusion", "require", [("NTRK", "fusion")]),
        ("IDH1 mutated", "inclusion", "require", [("IDH1", "mutation")]),
        ("MSI-high or dMMR solid tumors", "inclusion", "require", [("MSI", "high")]),
        ("SMARCB1/INI1 loss confirmed by IHC", "inclusion", "require", [("SMARCB1", "loss")]),
        ("MDM2 amplification by FISH", "inclusion", "require", [("MDM2", "amplification")]),
        ("PD-L1 TPS ≥ 50%", "inclusion", "require", [("PD-L1", ">= 50%")]),
        ("EGFR, ALK gene wild type;", "inclusion", "exclude", [("EGFR", None), ("ALK", None)]),
        ("No EGFR sensitive mutations or ALK gene translocation", "inclusion", "exclude", None),
        ("HER2-positive breast cancer", "exclusion", "exclude", [("HER2", "positive")]),
        ("NSCLC without known ALK rearrangements", "exclusion", "require", None),
        # a gene's name and its symbol are one mention; a list's status may stand at its end
        (
            "Epidermal growth factor receptor (EGFR) gene mutation negative, ROS oncogene 1 "
            "(ROS1) negative, and anaplastic lymphoma kinase (ALK) negative",
            "inclusion",
            "exclude",
            [("EGFR", None), ("ROS1", None), ("ALK", None)],
        ),
        (
            "patients whose EGFR, ALK and ROS1 gene test results are all negative",
            "inclusion",
            "exclude",
            [("EGFR", None), ("ALK", None), ("ROS1", None)],
        ),
        (
            "Lacks sensitising EGFR tumour tissue mutation and ALK and ROS1 rearrangements",
            "inclusion",
            "exclude",
            [("EGFR", None), ("ALK", None), ("ROS1", None)],
        ),
    ],
)
def test_biomarker_parsing(text, section, polarity, markers):
    crits = [c for c in parse_line(text, section) if c.type == "biomarker"]
    assert [c.polarity for c in crits] == [polarity]
    if markers is not None:
        got = [(m["gene"], m["alteration"]) for m in crits[0].values["markers"]]
        assert [g for g, _ in got] == [g for g, _ in markers]
        assert all(a is None or a == b for (_, b), (_, a) in zip(got, markers, strict=True))
    # the histology only qualifies the finding in an exclusion line
    if section == "exclusion":
        assert not [c for c in parse_line(text, section) if c.type == "histology"]


@pytest.mark.parametrize(
    "text",
    [
        "Prior treatment with an ALK inhibitor",
        "Previous treatment with anti-PD-1/PD-L1 antibodies is allowed.",
        "eGFR < 60 mL/min",
        "Alkaline phosphatase ≤ 2.5 x ULN",
        "Epidermal growth factor receptor (EGFR) > 30 mL/min/1.73m2.",
        "Archival tumor tissue for determination of FGFR2 status",
        "Received MDM2 inhibitors or BCL-2 inhibitors.",
    ],
)
def test_not_a_biomarker(text):
    assert not [c for c in parse_line(text, "inclusion") if c.type == "biomarker"]


@pytest.mark.parametrize(
    ("text", "biomarkers", "verdict"),
    [
        ("BRAF V600E mutation", ["BRAF mutation"], UNKNOWN),  # variant not stated
        ("BRAF V600E mutation", ["BRAF V600E positive"], MET),
        ("MSI-high or dMMR", ["MSI-H"], MET),
        ("MSI-high or dMMR", ["MSS"], NOT_MET),
        ("SMARCB1 loss", ["INI1 loss"], MET),
        ("SMARCB1 loss", ["INI1 retained"], NOT_MET),
        ("HER2-positive", ["ERBB2 amplified"], MET),
        ("PD-L1 TPS ≥ 50%", ["PD-L1 positive"], UNKNOWN),  # level not stated
    ],
)
def test_biomarker_verdicts(text, biomarkers, verdict):
    [(got, reason)] = _verdict(text, "inclusion", biomarkers=biomarkers)
    assert got == verdict, reason


@pytest.mark.parametrize(
    ("line", "section", "age", "labs", "verdict"),
    [
        # above the multiple of even the highest adult ULN: NOT_MET whatever the lab
        ("AST and ALT <= 2.5 x ULN", "inclusion", 60, {"ast": 250, "alt": 230}, NOT_MET),
        ("Total bilirubin > 1.5 x ULN", "exclusion", 40, {"bilirubin": 3.2}, NOT_MET),
        ("Serum creatinine <= 1.5 x ULN", "inclusion", 70, {"creatinine": 2.7}, NOT_MET),
        # between the lowest and the highest plausible ULN: the lab's own ULN decides
        ("AST <= 3 x ULN", "inclusion", 60, {"ast": 160}, UNKNOWN),
        # children's reference ranges differ: never NOT_MET from an assumed adult ULN
        ("AST and ALT <= 2.5 x ULN", "inclusion", 9, {"ast": 250, "alt": 230}, UNKNOWN),
        ("AST and ALT <= 2.5 x ULN", "inclusion", None, {"ast": 250, "alt": 230}, UNKNOWN),
    ],
)
def test_lab_uln_ceiling_for_adults(line, section, age, labs, verdict):
    got = _verdict(line, section, labs=labs, **({} if age is None else {"age": age}))
    assert {g for g, _ in got} == {verdict}, got


def test_lab_uln_pair_uses_conservative_uln():
    got = _verdict("AST and ALT ≤ 2.5 x ULN", "inclusion", labs={"ast": 70, "alt": 19})
    assert got[0][0] == UNKNOWN  # 70 > 2.5 x 25 (lowest plausible AST ULN)
    assert got[1] == (
        MET,
        "ALT 19 U/L <= 2.5 × ULN for any ULN ≥ 7.6 U/L (adult ULNs are ≥ 19 U/L)",
    )


def test_met_reasons_never_say_outside(fixtures_dir):
    from matcher.patient import read_patients

    patients = [
        p
        for f in sorted((fixtures_dir / "patients").glob("*.json"))
        for p in read_patients(f).patients
    ]
    for rec in _records(fixtures_dir):
        parsed = parse_trial(rec)
        for p in patients:
            for v in evaluate(p, parsed):
                if v.verdict == MET:
                    assert "outside" not in v.reason, (parsed.nct_id, v.reason)


# ---------------------------------------------------------------------------------------
# speed: memoized evaluator and content-hashed parse cache
# ---------------------------------------------------------------------------------------
class _FieldGuard:
    """A patient that only answers the fields its criterion's type is documented to read."""

    def __init__(self, patient, fields):
        self._p, self._fields = patient, set(fields)

    # properties computed from a field (Patient.prior_drugs from prior_therapies)
    DERIVED = {"prior_drugs": "prior_therapies", "prior_drug_classes": "prior_therapies"}

    def __getattr__(self, name):
        if name == "labs" and "labs" not in self._fields:
            # "labs:NAME" fields: only those labs can be read
            named = {f.split(":", 1)[1] for f in self._fields if f.startswith("labs:")}
            if named:
                labs = getattr(self._p, "labs", None) or {}
                return _LabGuard({k: v for k, v in labs.items() if k in named}, named)
        if name not in self._fields and self.DERIVED.get(name) not in self._fields:
            raise AssertionError(f"reads undeclared field {name!r}")
        return getattr(self._p, name)


class _LabGuard(dict):
    """The labs a lab line declares (``labs:NAME``); reading any other lab fails."""

    def __init__(self, labs, named):
        super().__init__(labs)
        self._named = named

    def _check(self, key):
        if key not in self._named:
            raise AssertionError(f"reads undeclared lab {key!r}")

    def get(self, key, default=None):
        self._check(key)
        return super().get(key, default)

    def __getitem__(self, key):
        self._check(key)
        return super().__getitem__(key)

    def __contains__(self, key):
        self._check(key)
        return super().__contains__(key)

    def __iter__(self):
        raise AssertionError("iterates over the whole lab panel")

    def items(self):
        raise AssertionError("iterates over the whole lab panel")


def _fixture_patients(fixtures_dir):
    from matcher.patient import read_patients

    out = []
    for f in sorted((fixtures_dir / "patients").iterdir()):
        if f.suffix in (".json", ".csv"):
            out.extend(read_patients(f).patients)
    return out


def test_evaluator_equals_evaluate_on_every_fixture_pair(fixtures_dir):
    from matcher.eligibility import Evaluator

    parsed = [parse_trial(r) for r in _records(fixtures_dir)]
    patients = _fixture_patients(fixtures_dir)
    assert len(patients) >= 20 and len(parsed) >= 10
    ev = Evaluator()
    for _ in range(2):  # the second round is served from the memo
        for p in patients:
            for pt in parsed:
                assert ev.evaluate(p, pt) == evaluate(p, pt)
    assert ev.hits > ev.misses


def test_fields_by_type_lists_every_field_read(fixtures_dir):
    from matcher.eligibility import FIELDS_BY_TYPE, TYPES, _criterion_verdict
    from matcher.eligibility.verdict import fields_read

    assert set(FIELDS_BY_TYPE) == set(TYPES)
    vocab = _default_vocab_for_test()
    lab_lines = 0
    for rec in _records(fixtures_dir):
        for c in parse_trial(rec).criteria:
            fields = fields_read(c)
            lab_lines += any(f.startswith("labs:") for f in fields)
            for p in _fixture_patients(fixtures_dir):
                _criterion_verdict(_FieldGuard(p, fields), c, vocab)
    assert lab_lines >= 10  # lab lines are read through their one lab


def _default_vocab_for_test():
    from matcher.vocab import load_vocab

    return load_vocab()


def test_parse_cache_sees_content_changes_without_new_date(fixtures_dir):
    import copy

    clear_cache()
    rec = next(iter_records(fixtures_dir / "trials" / "v2" / "NCT02576665.json")).record
    first = parse_trial(rec)
    assert parse_trial(copy.deepcopy(rec)) is first  # same content: served from the cache
    changed = copy.deepcopy(rec)
    changed["protocolSection"]["eligibilityModule"]["eligibilityCriteria"] += "\n* ECOG 0-2"
    again = parse_trial(changed)
    assert again is not first
    assert again.criteria[-1].type == "performance_status"


# ---------------------------------------------------------------------------------------
# NOT_MET audit: real lines that gave a wrong NOT_MET (line text + patient facts -> verdict)
# ---------------------------------------------------------------------------------------
_LMS_DOX = {"diagnosis": "leiomyosarcoma", "prior_therapies": ["doxorubicin", "gemcitabine"]}
_LMS_PAZ = {"diagnosis": "leiomyosarcoma", "prior_therapies": ["pazopanib"]}


@pytest.mark.parametrize(
    ("text", "section", "context", "type_", "patient", "verdict"),
    [
        # fix 1: a therapy / extent / marker said of another cancer ("for lung cancer")
        (
            "Any prior systemic chemotherapy for the treatment of lung cancer. This includes "
            "systemic radiosensitizers used to treat brain metastases and any biologic agent.",
            "exclusion",
            None,
            "prior_therapy_excluded",
            _LMS_DOX,
            UNKNOWN,
        ),
        (
            "No prior radiation therapy, chemotherapy or hormonal therapy for treatment of "
            "endometrial cancer.",
            "inclusion",
            None,
            "prior_therapy_excluded",
            _LMS_DOX,
            UNKNOWN,
        ),
        (
            "Metastatic breast cancer.",
            "exclusion",
            None,
            "disease_extent",
            {"diagnosis": "leiomyosarcoma", "stage": "IV"},
            UNKNOWN,
        ),
        (  # the same line still excludes a patient with that cancer
            "Metastatic breast cancer.",
            "exclusion",
            None,
            "disease_extent",
            {"diagnosis": "breast carcinoma", "stage": "IV"},
            NOT_MET,
        ),
        (
            "NSCLC without known ALK rearrangements",
            "exclusion",
            None,
            "biomarker",
            {"diagnosis": "inflammatory myofibroblastic tumor", "biomarkers": ["ALK negative"]},
            UNKNOWN,
        ),
        (
            "Patients must have received at least 1 prior line of therapy for recurrent or "
            "metastatic disease, including both PD-1/programmed cell death-ligand 1 "
            "immunotherapy and anti-angiogenic-directed treatment, such as a tyrosine kinase "
            "inhibitor.",
            "inclusion",
            "Renal Cell Carcinoma",
            "prior_therapy_required",
            {"diagnosis": "leiomyosarcoma", "prior_therapies": ["paclitaxel"]},
            UNKNOWN,
        ),
        (  # an inclusion line that itself requires the cancer is not scoped
            "Previously untreated, histologically confirmed resectable stage IB-IIIA NSCLC",
            "inclusion",
            None,
            "prior_therapy_excluded",
            _LMS_DOX,
            NOT_MET,
        ),
        # fix 2: a generic therapy word narrowed by a target or setting
        (
            "Prior treatment with any EpCAM-targeted anti-cancer therapies",
            "exclusion",
            None,
            "prior_therapy_excluded",
            _LMS_DOX,
            UNKNOWN,
        ),
        (
            "Have received neoadjuvant chemotherapy, radiotherapy or adjuvant radiotherapy;",
            "exclusion",
            None,
            "prior_therapy_excluded",
            _LMS_DOX,
            UNKNOWN,
        ),
        (
            "Prior treatment with PARP inhibitor or platinum chemotherapy",
            "exclusion",
            None,
            "prior_therapy_excluded",
            _LMS_DOX,
            MET,  # "platinum chemotherapy" names the platinum class, not every chemotherapy
        ),
        (
            "Previous treatment with HER2 targeted antibody or tyrosine kinase inhibitor "
            "including afatinib.",
            "exclusion",
            None,
            "prior_therapy_excluded",
            {"diagnosis": "gastrointestinal stromal tumor", "prior_therapies": ["imatinib"]},
            UNKNOWN,
        ),
        (
            "Prior exposure to neurotoxic chemotherapy",
            "exclusion",
            None,
            "prior_therapy_excluded",
            _LMS_DOX,
            UNKNOWN,
        ),
        (  # "anti-cytotoxic T lymphocyte associated protein 4" is not chemotherapy
            "prior PD-1/PD-L1 immunotherapies (prior treatment with CD137 agonists or immune "
            "checkpoint blockade therapies, including, but not limited to, anti-cytotoxic T "
            "lymphocyte associated protein 4 [anti-CTLA-4])",
            "exclusion",
            "Patients having received:",
            "prior_therapy_excluded",
            _LMS_DOX,
            MET,
        ),
        (
            "Prior use of chemotherapy.",
            "exclusion",
            None,
            "prior_therapy_excluded",
            _LMS_DOX,
            NOT_MET,
        ),
        # fix 3: required prior therapy with a way out, a permission or a sub-group
        (
            "Patients of both sexes with histologically diagnosed advanced soft tissue sarcoma "
            "after failure of anthracyclines and/or ifosfamide or patients unsuited to receive "
            "these drugs.",
            "inclusion",
            None,
            "prior_therapy_required",
            _LMS_PAZ,
            UNKNOWN,
        ),
        (
            "Disease progression in doses extension cases may have been treated with an "
            "EGFR-TKI (e.g., gefitinib, erlotinib, eclitinib, afatinib, or dapatinib) and prior "
            "written test reports confirming EGFR T790M mutation.",
            "inclusion",
            "Previous treatment and type of mutation:",
            "prior_therapy_required",
            _LMS_PAZ,
            UNKNOWN,
        ),
        (
            "Disease progression after prior chemotherapy regimen and/or EGFR-TKI treatment in "
            "dose-extension cases",
            "inclusion",
            None,
            "prior_therapy_required",
            _LMS_PAZ,
            UNKNOWN,
        ),
        (
            "Progression on at least one prior standard therapy.",
            "inclusion",
            None,
            "prior_therapy_required",
            {"diagnosis": "leiomyosarcoma", "prior_therapies": ["surgery", "radiation therapy"]},
            UNKNOWN,
        ),
        (
            "Patients must have had at least one prior line of systemic therapy directed at "
            "their malignancy.",
            "inclusion",
            None,
            "prior_therapy_required",
            {"diagnosis": "leiomyosarcoma", "prior_therapies": ["surgery", "radiation therapy"]},
            NOT_MET,
        ),
        # fix 4: brain metastases read from a permission, a qualifier or leptomeningeal only
        (
            "Participants with unstable brain metastases are excluded. Patients with a history "
            "of brain metastases (>1cm) are permitted to enroll if they have been treated and "
            "have been stable for a minimum of one month on imaging.",
            "exclusion",
            None,
            "brain_metastases",
            {"brain_metastases": False},
            MET,  # "are excluded" excludes in the exclusion section too; none recorded
        ),
        (
            "Patient has measurable disease, as per RECIST 1.1. Metastatic lesions in CNS or in "
            "brain cannot be used for target lesions.",
            "inclusion",
            None,
            "brain_metastases",
            {"brain_metastases": False},
            UNKNOWN,
        ),
        (
            "Known leptomeningeal disease or spinal cord compression due to metastatic disease",
            "exclusion",
            None,
            "brain_metastases",
            {"brain_metastases": True},
            UNKNOWN,
        ),
        (
            "Patients with active (without medical control or with clinical symptoms) brain "
            "metastasis, cancerous meningitis, spinal cord compression",
            "exclusion",
            None,
            "brain_metastases",
            {"brain_metastases": True},
            UNKNOWN,
        ),
        (
            "Participant must have brain metastasis and either",
            "inclusion",
            None,
            "brain_metastases",
            {"brain_metastases": False},
            NOT_MET,
        ),
        (
            "Known brain metastasis.",
            "exclusion",
            None,
            "brain_metastases",
            {"brain_metastases": True},
            NOT_MET,
        ),
        # fix 5: disease extent alternatives, site words, samples
        (
            "Stage IIIC or IV by AJCC 8th edition",
            "inclusion",
            None,
            "disease_extent",
            {"stage": "localized"},
            UNKNOWN,
        ),
        (
            "Histologically or cytologically confirmed metastatic or refractory/recurrent "
            "HPV-16+ cancer.",
            "inclusion",
            None,
            "disease_extent",
            {"stage": "localized"},
            UNKNOWN,
        ),
        ("Stage IV NSCLC;", "inclusion", None, "disease_extent", {"stage": "localized"}, NOT_MET),
    ],
)
def test_not_met_audit_regressions(text, section, context, type_, patient, verdict):
    from matcher.eligibility import ParsedTrial
    from matcher.trial import Trial

    pt = ParsedTrial(Trial(nct_id="NCT00000000"), parse_line(text, section, context=context))
    got = [v for v in evaluate(_patient(**patient), pt) if v.criterion.type == type_]
    assert got, [c.type for c in pt.criteria]
    assert {v.verdict for v in got} == {verdict}, [v.reason for v in got]


@pytest.mark.parametrize(
    "text",
    [
        "Agree to provide archived tumor tissue samples of primary or metastatic lesions.",
        "Untreated or progressive CNS metastatic disease, any leptomeningeal disease, or cord "
        "compression.",
        "Locally advanced or metastatic breast cancer with either measurable (according to "
        "RECIST 1.1) or non-measurable lesions.",
    ],
)
def test_not_met_audit_no_false_gate(text):
    types = {c.type for c in parse_line(text, "inclusion")}
    bad = {
        "Agree": "disease_extent",
        "Untreated": "disease_extent",
        "Locally": "measurable_disease",
    }
    assert bad[text.split()[0]] not in types


@pytest.mark.parametrize(
    ("text", "lo", "hi"),
    [("ECOG score 0~2.", 0, 2), ("ECOG performance status 0, 1.", 0, 1)],
)
def test_not_met_audit_ps_ranges(text, lo, hi):
    [c] = [c for c in parse_line(text, "inclusion") if c.type == "performance_status"]
    assert (c.values["min"], c.values["max"]) == (lo, hi)


def test_not_met_audit_ps_ignores_life_expectancy():
    text = "Performance status and life expectancy > 3 months expected to allow enrolment"
    assert "performance_status" not in {c.type for c in parse_line(text, "inclusion")}


def test_not_met_audit_sublist_in_another_bullet_style_is_an_any_of_group():
    text = (
        "Inclusion Criteria:\n\n10. Patients must have one of the following:\n\n"
        "* Creatinine \\>/= 2 mg/dL\n* Total bilirubin \\>/= 2 mg/dL\n"
        "* Is ineligible for participation in a protocol of higher priority\n\n"
        "  11. A negative urine pregnancy test is required\n"
    )
    lines = split_criteria(text)
    assert [ln.context for ln in lines[1:4]] == ["Patients must have one of the following:"] * 3
    assert lines[4].context is None
    record = {
        "protocolSection": {
            "identificationModule": {"nctId": "NCT00000010"},
            "eligibilityModule": {"eligibilityCriteria": text},
        }
    }
    labs = {"creatinine": 0.9, "bilirubin": 0.5}
    got = [
        v
        for v in evaluate(_patient(labs=labs), parse_trial(record))
        if v.criterion.type == "organ_function"
    ]
    assert [v.verdict for v in got] == [UNKNOWN, UNKNOWN]  # the unparsed alternative may hold
