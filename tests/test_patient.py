"""Patient normalization rules and the JSON / CSV readers (matcher.patient)."""

from __future__ import annotations

import json
import math
from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.errors import InputError, KnowledgeError, PatientError
from matcher.patient import (
    KARNOFSKY_TO_ECOG,
    METASTATIC_SITES,
    age_at,
    find_sites,
    normalize_record,
    read_patients,
    resolve_site,
    site_synonyms,
)

AS_OF = date(2026, 6, 1)


def norm(**fields):
    return normalize_record({"id": "P1", **fields}, source="test", as_of=AS_OF)


# ---------------------------------------------------------------------------------------
# Field rules, table-driven: input -> normalized value
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "attr", "expected"),
    [
        # sex
        ({"sex": "F"}, "sex", "female"),
        ({"sex": "m"}, "sex", "male"),
        ({"sex": "Female"}, "sex", "female"),
        ({"sex": "MALE"}, "sex", "male"),
        ({"sex": ""}, "sex", None),
        # stage: roman, arabic, sub-letters, words
        ({"stage": "IV"}, "stage", "IV"),
        ({"stage": "iv"}, "stage", "IV"),
        ({"stage": "4"}, "stage", "IV"),
        ({"stage": 4}, "stage", "IV"),
        ({"stage": "Stage IIIB"}, "stage", "IIIB"),
        ({"stage": "3a"}, "stage", "IIIA"),
        ({"stage": "ivb"}, "stage", "IVB"),
        ({"stage": "I"}, "stage", "I"),
        ({"stage": "2"}, "stage", "II"),
        ({"stage": "metastatic"}, "stage", "metastatic"),
        ({"stage": "Metastatic"}, "stage", "metastatic"),
        ({"stage": "localized"}, "stage", "localized"),
        ({"stage": "localised"}, "stage", "localized"),
        # metastatic sites: canonical names and common spellings
        ({"metastatic_sites": ["pulmonary"]}, "metastatic_sites", ["lung"]),
        ({"metastatic_sites": ["hepatic"]}, "metastatic_sites", ["liver"]),
        ({"metastatic_sites": ["CNS"]}, "metastatic_sites", ["brain"]),
        ({"metastatic_sites": ["nodes"]}, "metastatic_sites", ["lymph_node"]),
        ({"metastatic_sites": ["lymph nodes"]}, "metastatic_sites", ["lymph_node"]),
        ({"metastatic_sites": ["Lungs", "bone"]}, "metastatic_sites", ["lung", "bone"]),
        ({"metastatic_sites": "Pulmonary; hepatic"}, "metastatic_sites", ["lung", "liver"]),
        ({"metastatic_sites": "lung;lung metastases"}, "metastatic_sites", ["lung"]),
        ({"metastatic_sites": ["peritoneal"]}, "metastatic_sites", ["peritoneum"]),
        ({"metastatic_sites": ["subcutaneous"]}, "metastatic_sites", ["soft_tissue"]),
        ({"metastatic_sites": ["osseous"]}, "metastatic_sites", ["bone"]),
        ({"metastatic_sites": ["adrenal"]}, "metastatic_sites", ["other"]),
        ({"metastatic_sites": []}, "metastatic_sites", []),
        ({"metastatic_sites": "none"}, "metastatic_sites", []),
        ({"metastatic_sites": ""}, "metastatic_sites", None),
        # implied metastatic status
        ({"stage": "IV"}, "metastatic", True),
        ({"stage": "IVA"}, "metastatic", True),
        # a stage group the cancer's staging makes M0 (criteria/vocab: stage_extent)
        ({"diagnosis": "laryngeal squamous cell carcinoma", "stage": "IVA"}, "metastatic", False),
        ({"diagnosis": "head and neck cancer", "stage": "IVB"}, "metastatic", False),
        ({"diagnosis": "head and neck cancer", "stage": "IVC"}, "metastatic", True),
        ({"diagnosis": "nasopharyngeal carcinoma", "stage": "IVA"}, "metastatic", False),
        ({"diagnosis": "nasopharyngeal carcinoma", "stage": "IVB"}, "metastatic", None),
        ({"diagnosis": "cervical cancer", "stage": "IVA"}, "metastatic", False),
        ({"diagnosis": "lung adenocarcinoma", "stage": "IVA"}, "metastatic", True),
        ({"stage": "metastatic"}, "metastatic", True),
        ({"metastatic_sites": ["lung"]}, "metastatic", True),
        ({"stage": "II"}, "metastatic", False),
        ({"stage": "localized"}, "metastatic", False),
        ({"metastatic_sites": []}, "metastatic", False),
        ({}, "metastatic", None),
        ({"lung_metastases_count": 3}, "metastatic_sites", ["lung"]),
        # brain metastases follow the sites, and the other way round
        ({"metastatic_sites": ["brain"]}, "brain_metastases", True),
        ({"brain_metastases": "yes"}, "metastatic_sites", ["brain"]),
        ({"metastatic_sites": ["lung"]}, "brain_metastases", None),
        # booleans: yes/no/true/false/1/0/blank
        ({"measurable_disease": "yes"}, "measurable_disease", True),
        ({"measurable_disease": "Y"}, "measurable_disease", True),
        ({"measurable_disease": "TRUE"}, "measurable_disease", True),
        ({"measurable_disease": 1}, "measurable_disease", True),
        ({"measurable_disease": "no"}, "measurable_disease", False),
        ({"measurable_disease": "false"}, "measurable_disease", False),
        ({"measurable_disease": "0"}, "measurable_disease", False),
        ({"measurable_disease": False}, "measurable_disease", False),
        ({"measurable_disease": ""}, "measurable_disease", None),
        ({"measurable_disease": "unknown"}, "measurable_disease", None),
        ({"pregnant": "n"}, "pregnant", False),
        ({"primary_controlled": "yes"}, "primary_controlled", True),
        # growth
        ({"growth": "slow"}, "growth", "slow"),
        ({"growth": "Rapid"}, "growth", "rapid"),
        # ages
        ({"age": 45}, "age", 45.0),
        ({"age": "45"}, "age", 45.0),
        ({"age": "45 y"}, "age", 45.0),
        ({"age": "18 months"}, "age", 1.5),
        ({"age": 0}, "age", 0.0),
        ({"age": 120}, "age", 120.0),
        ({"birth_date": "2008-06-01"}, "age", 18.0),  # 18th birthday on AS_OF
        ({"birth_date": "2008-06-02"}, "age", 17.99),  # the day before it: still 17
        ({"birth_date": "2016-02-10"}, "age", 10.3),
        ({"birth_date": "2026-06-01"}, "age", 0.0),
        # ECOG as given, including coordinator spellings
        ({"ecog": 0}, "ecog", 0),
        ({"ecog": "2"}, "ecog", 2),
        ({"ecog": "ECOG 1"}, "ecog", 1),
        ({"ecog": "KPS 80"}, "karnofsky", 80),
        ({"ecog": "KPS 80"}, "ecog", 1),
        ({"karnofsky": "90%"}, "ecog", 0),
        ({"ecog": 1, "karnofsky": 80}, "ecog_converted_from", None),
        ({"karnofsky": 80}, "ecog_converted_from", "karnofsky"),
        ({"lansky": 60}, "ecog_converted_from", "lansky"),
        # location
        ({"location": {"zip": "10065"}}, "zip", "10065"),
        ({"location": {"zip": "10065-1234"}}, "zip", "10065"),
        ({"location": {"zip": 2115}}, "zip", "02115"),
        ({"zip": "02115"}, "zip", "02115"),
        ({"location": {"lat": 40.76, "lon": -73.95}}, "lat", 40.76),
        ({"lat": "40.76", "lon": "-73.95"}, "lon", -73.95),
        # biomarkers are kept as written (spaces tidied)
        ({"biomarkers": ["ALK  rearrangement"]}, "biomarkers", ["ALK rearrangement"]),
        (
            {"biomarkers": "ALK negative; MDM2 amplification"},
            "biomarkers",
            ["ALK negative", "MDM2 amplification"],
        ),
        ({"lung_metastases_count": "4"}, "lung_metastases_count", 4),
    ],
)
def test_field_rules(fields, attr, expected):
    assert getattr(norm(**fields), attr) == expected


@pytest.mark.parametrize(("score", "ecog"), sorted(KARNOFSKY_TO_ECOG.items()))
@pytest.mark.parametrize("scale", ["karnofsky", "lansky"])
def test_karnofsky_and_lansky_convert_by_the_nci_table(scale, score, ecog):
    p = norm(**{scale: score})
    assert (p.ecog, p.ecog_converted_from, getattr(p, scale)) == (ecog, scale, score)
    assert p.warnings == [f"ECOG {ecog} converted from {scale} {score}"]


def test_conversion_table_is_the_standard_one():
    # NCI performance status criteria: ECOG 0 = 100-90, 1 = 80-70, 2 = 60-50, 3 = 40-30, 4 = 20-10
    assert KARNOFSKY_TO_ECOG == {
        100: 0, 90: 0, 80: 1, 70: 1, 60: 2, 50: 2, 40: 3, 30: 3, 20: 4, 10: 4
    }  # fmt: skip


# ---------------------------------------------------------------------------------------
# Errors: one patient's bad value, with patient id, field, value and what is accepted
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"age": -1},
            "test, patient 'P1', field 'age': age -1 is out of range (accepted: 0-120 years)",
        ),
        (
            {"age": 121},
            "test, patient 'P1', field 'age': age 121 is out of range (accepted: 0-120 years)",
        ),
        (
            {"age": "old"},
            "test, patient 'P1', field 'age': 'old' is not a number (accepted: 0-120 years)",
        ),
        (
            {"birth_date": "2030-01-01"},
            "test, patient 'P1', field 'birth_date': birth date 2030-01-01 is in the future "
            "(as of 2026-06-01) (accepted: a date on or before 2026-06-01)",
        ),
        (
            {"birth_date": "1900-01-01"},
            "test, patient 'P1', field 'birth_date': birth date 1900-01-01 gives age 126.41 "
            "(accepted: 0-120 years)",
        ),
        (
            {"birth_date": "12/03/1970"},
            "test, patient 'P1', field 'birth_date': '12/03/1970' is not a date "
            "(accepted: ISO date YYYY-MM-DD)",
        ),
        ({"ecog": 7}, "test, patient 'P1', field 'ecog': ECOG 7 is out of range (accepted: 0-4)"),
        ({"ecog": 5}, "test, patient 'P1', field 'ecog': ECOG 5 is out of range (accepted: 0-4)"),
        (
            {"ecog": "1.5"},
            "test, patient 'P1', field 'ecog': '1.5' is not a whole number (accepted: 0-4)",
        ),
        (
            {"karnofsky": 0},
            "test, patient 'P1', field 'karnofsky': karnofsky 0 is out of range "
            "(accepted: 10-100 (multiples of 10; 0 = dead))",
        ),
        (
            {"lansky": 110},
            "test, patient 'P1', field 'lansky': lansky 110 is out of range "
            "(accepted: 10-100 (multiples of 10; 0 = dead))",
        ),
        (
            {"sex": "x"},
            "test, patient 'P1', field 'sex': unknown sex 'x' (accepted: female, male, F, M (any case))",
        ),
        (
            {"stage": "V"},
            "test, patient 'P1', field 'stage': unknown stage 'V' (accepted: I, II, III, IV (roman "
            "or arabic, sub-letters such as IIIB allowed), metastatic, localized)",
        ),
        (
            {"growth": "medium"},
            "test, patient 'P1', field 'growth': unknown growth 'medium' (accepted: slow, rapid)",
        ),
        (
            {"measurable_disease": "maybe"},
            "test, patient 'P1', field 'measurable_disease': 'maybe' is not a yes/no value "
            "(accepted: yes/no, true/false, 1/0, or blank for unknown)",
        ),
        (
            {"lung_metastases_count": -2},
            "test, patient 'P1', field 'lung_metastases_count': -2 is negative (accepted: a whole number, 0-1000)",
        ),
        (
            {"location": {"zip": "1234A"}},
            "test, patient 'P1', field 'zip': '1234A' is not a US ZIP code (accepted: 5 digits, e.g. 10065)",
        ),
        (
            {"location": {"lat": 91, "lon": 0}},
            "test, patient 'P1', field 'lat': latitude 91 is out of range (accepted: -90 to 90)",
        ),
        (
            {"location": {"lat": 40}},
            "test, patient 'P1', field 'location': lat and lon must be given together (accepted: both lat and lon)",
        ),
        (
            {"labs": {"anc": "1500 per mm"}},
            "test, patient 'P1', field 'labs.anc': unknown unit in '1500 per mm' (accepted: a number "
            "in cells/µL, or with a unit: /ul, cells/ul, /mcl, cells/mcl, /mm3, cells/mm3, x10^9/l, "
            "10^9/l, x10e9/l, 10e9/l, g/l, /nl, k/ul, x10^3/ul, 10^3/ul, k/mcl, x10^3/mcl)",
        ),
        (
            {"labs": [1, 2]},
            "test, patient 'P1', field 'labs': expected an object of lab values (accepted: keys anc, platelets, hemoglobin, creatinine, bilirubin, ast, alt)",
        ),
    ],
)
def test_bad_values_are_patient_errors(fields, message):
    with pytest.raises(PatientError) as exc:
        norm(**fields)
    assert str(exc.value) == message
    assert exc.value.patient_id == "P1"


def test_missing_id_is_an_error():
    with pytest.raises(PatientError) as exc:
        normalize_record({"age": 40}, source="list.json, entry 3", as_of=AS_OF)
    assert str(exc.value) == (
        "list.json, entry 3, field 'id': missing required field 'id' (accepted: a non-empty string)"
    )


def test_numeric_id_becomes_a_string():
    assert normalize_record({"id": 17}, as_of=AS_OF).id == "17"


def test_unknown_diagnosis_lists_three_closest_names():
    with pytest.raises(PatientError) as exc:
        norm(diagnosis="leiomyosarcomaxyzzy qq")
    msg = str(exc.value)
    assert msg.startswith(
        "test, patient 'P1', field 'diagnosis': diagnosis 'leiomyosarcomaxyzzy qq' not recognised (closest: "
    )
    closest = msg.split("(closest: ")[1].split(")")[0].split(", ")
    assert len(closest) == 3


def test_text_naming_no_cancer_is_an_error():
    with pytest.raises(
        PatientError, match="field 'diagnosis': diagnosis 'broken ankle' not recognised"
    ):
        norm(diagnosis="broken ankle")


# ---------------------------------------------------------------------------------------
# Warnings: kept data, said out loud
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "warning"),
    [
        (
            {"stage": "I", "metastatic_sites": ["lung"]},
            "stage I contradicts metastatic sites (lung); kept both, treated as metastatic",
        ),
        (
            {"metastatic_sites": ["brain"], "brain_metastases": "no"},
            "brain_metastases is 'no' but metastatic_sites lists brain; kept both",
        ),
        (
            {"favourite_colour": "blue"},
            "unknown key 'favourite_colour' ignored (accepted keys: id, age, birth_date, sex, diagnosis, stage, disease_status, metastatic_sites, lung_metastases_count, primary_controlled, resectable, growth, biomarkers, prior_therapies, ecog, karnofsky, lansky, measurable_disease, brain_metastases, pregnant, location, labs)",
        ),
        ({"name": "Jane Doe"}, "key 'name' ignored: identifying data is never read"),
        (
            {"ecog": 3, "karnofsky": 90},
            "ecog 3 disagrees with karnofsky 90 (= ECOG 0); using ecog 3",
        ),
        ({"karnofsky": 85}, "karnofsky 85 is not a multiple of 10; converted as 80"),
        ({"ecog": "KPS 70"}, "ecog 'KPS 70' read as karnofsky 70"),
        (
            {"age": 30, "birth_date": "1970-01-01"},
            "age 30 disagrees with birth_date 1970-01-01 (age 56.41 on 2026-06-01); using birth_date",
        ),
        ({"birth_date": "1953"}, "birth_date '1953' is partial; age computed from 1953-01-01"),
        (
            {"metastatic_sites": ["pulmonory"]},
            "metastatic site 'pulmonory' resolved to 'lung' (score 89)",
        ),
        (
            {"metastatic_sites": ["elbow"]},
            "metastatic site 'elbow' not recognised; recorded as 'other'",
        ),
        ({"location": {"zip": 2115}}, "zip 2115 read as '02115' (a number lost its leading zeros)"),
        (
            {"location": {"zip": "00000"}},
            "zip '00000' not in the offline ZIP table; distance unknown",
        ),
        (
            {"prior_therapies": ["P6 protocol"]},
            "prior therapy 'P6 protocol' not recognised; kept verbatim",
        ),
        (
            {"labs": {"troponin": 3}},
            "unknown lab 'troponin' ignored (accepted: anc, platelets, hemoglobin, creatinine, bilirubin, ast, alt)",
        ),
        ({"sex": "male", "pregnant": "yes"}, "pregnant is 'yes' for a male patient; kept as given"),
    ],
)
def test_warnings(fields, warning):
    p = norm(**fields)
    assert warning in p.warnings


def test_contradiction_keeps_both_values():
    p = norm(stage="I", metastatic_sites=["pulmonary"])
    assert (p.stage, p.metastatic_sites, p.metastatic) == ("I", ["lung"], True)


def test_private_keys_never_reach_the_profile():
    p = norm(name="Jane Doe", address="1 Main St", mrn="12345")
    text = json.dumps(p.to_dict())
    assert "Jane" not in text and "Main St" not in text and "12345" not in text


def test_fuzzy_diagnosis_warning_names_score():
    p = norm(diagnosis="leiomyosarcma")
    assert p.diagnosis == "leiomyosarcoma"
    assert p.warnings == ["diagnosis 'leiomyosarcma' resolved to 'leiomyosarcoma' (score 96)"]


@pytest.mark.parametrize("text", ["sarcoma", "soft tissue sarcoma"])
def test_unspecified_sarcoma_is_valid(text):
    p = norm(diagnosis=text)
    assert p.in_sarcoma_pack is True
    assert p.diagnosis_lineage[-1] == "solid_tumor"


@pytest.mark.parametrize(
    ("text", "family"),
    [
        ("breast carcinoma", "carcinoma"),
        ("lung adenocarcinoma", "carcinoma"),
        ("lymphoma", "lymphoma"),
    ],
)
def test_cancer_outside_sarcoma_is_accepted_with_a_warning(text, family):
    p = norm(diagnosis=text)
    assert p.in_sarcoma_pack is False
    assert (
        f"diagnosis {p.diagnosis!r} ({family}) is outside the sarcoma pack: standard options are "
        "not evaluated; trials are still matched"
    ) in p.warnings


@pytest.mark.parametrize(
    ("text", "diagnosis"),
    [
        ("LMS", "leiomyosarcoma"),
        ("leiomyosarcma", "leiomyosarcoma"),
        ("UPS", "undifferentiated_pleomorphic_sarcoma"),
        ("MFH", "undifferentiated_pleomorphic_sarcoma"),
        ("ASPS", "alveolar_soft_part_sarcoma"),
        ("synovail sarcoma", "synovial_sarcoma"),
        ("PEComa", "pecoma"),
        ("IMT", "inflammatory_myofibroblastic_tumor"),
        ("DFSP", "dermatofibrosarcoma_protuberans"),
        ("GIST", "gist"),
        ("chordoma", "chordoma"),
    ],
)
def test_diagnosis_spellings_resolve(text, diagnosis):
    assert norm(diagnosis=text).diagnosis == diagnosis


# ---------------------------------------------------------------------------------------
# Therapies
# ---------------------------------------------------------------------------------------
def test_therapies_resolve_to_canonical_drugs_with_classes():
    p = norm(prior_therapies=["Adriamycin", "Votrient", "P6 protocol"])
    got = [(t.text, t.name, t.kind) for t in p.prior_therapies]
    assert got == [
        ("Adriamycin", "doxorubicin", "drug"),
        ("Votrient", "pazopanib", "drug"),
        ("P6 protocol", "P6 protocol", "unrecognised"),
    ]
    assert "anthracycline" in p.prior_therapies[0].classes
    assert "vegfr_tki" in p.prior_therapies[1].classes
    assert p.prior_drugs == {"doxorubicin", "pazopanib"}
    assert {"anthracycline", "vegfr_tki"} <= p.prior_drug_classes


def test_regimen_written_as_parts_is_split():
    p = norm(prior_therapies="doxorubicin + ifosfamide; gemcitabine/docetaxel")
    assert [t.name for t in p.prior_therapies] == [
        "doxorubicin",
        "ifosfamide",
        "gemcitabine",
        "docetaxel",
    ]


def test_procedures_resolve():
    p = norm(prior_therapies=["surgery", "radiation therapy"])
    assert [(t.name, t.kind) for t in p.prior_therapies] == [
        ("surgery", "procedure"),
        ("radiation_therapy", "procedure"),
    ]


def test_no_therapy_list_means_unknown_and_empty_means_none():
    assert norm().prior_therapies is None
    assert norm(prior_therapies=[]).prior_therapies == []


# ---------------------------------------------------------------------------------------
# Labs (units: README "Patient input")
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("labs", "expected"),
    [
        ({"anc": 1500}, {"anc": 1500.0}),
        ({"anc": "1,500"}, {"anc": 1500.0}),
        ({"anc": "1500/uL"}, {"anc": 1500.0}),
        ({"anc": "1500 cells/µL"}, {"anc": 1500.0}),
        ({"anc": "1.5 x10^9/L"}, {"anc": 1500.0}),
        ({"anc": 1.5}, {"anc": 1500.0}),  # bare value only plausible in x10^9/L
        ({"platelets": "100 x10^9/L"}, {"platelets": 100000.0}),
        ({"platelets": 100000}, {"platelets": 100000.0}),
        ({"platelets": 150}, {"platelets": 150000.0}),
        ({"hemoglobin": 9.5}, {"hemoglobin": 9.5}),
        ({"hemoglobin": "95 g/L"}, {"hemoglobin": 9.5}),
        ({"hemoglobin": 95}, {"hemoglobin": 9.5}),
        ({"creatinine": "88.42 umol/L"}, {"creatinine": 1.0}),
        ({"bilirubin": "17.1 µmol/L"}, {"bilirubin": 1.0}),
        ({"ast": "40 U/L", "alt": 35}, {"ast": 40.0, "alt": 35.0}),
        ({"anc": ""}, {}),
    ],
)
def test_lab_units(labs, expected):
    assert norm(labs=labs).labs == expected


def test_flat_lab_columns_are_read():
    assert norm(anc="2000", platelets="180000").labs == {"anc": 2000.0, "platelets": 180000.0}


# ---------------------------------------------------------------------------------------
# Sites vocabulary
# ---------------------------------------------------------------------------------------
def test_every_site_spelling_maps_to_a_canonical_site():
    syn = site_synonyms()
    assert set(syn.values()) == set(METASTATIC_SITES)
    for spelling, site in syn.items():
        assert resolve_site(spelling) == site


@pytest.mark.parametrize(
    ("text", "sites"),
    [
        ("Secondary malignant neoplasm of liver (disorder)", ["liver"]),
        ("Secondary malignant neoplasm of bone", ["bone"]),
        ("metastases to lung and lymph nodes", ["lung", "lymph_node"]),
        ("Malignant neoplasm of breast", []),
    ],
)
def test_find_sites_in_text(text, sites):
    assert find_sites(text) == sites


# ---------------------------------------------------------------------------------------
# Ages from birth dates (property)
# ---------------------------------------------------------------------------------------
@settings(max_examples=300, deadline=None)
@given(
    birth=st.dates(min_value=date(1906, 6, 2), max_value=AS_OF),
)
def test_age_from_birth_date_is_completed_years(birth):
    age = age_at(birth, AS_OF)
    completed = AS_OF.year - birth.year - ((AS_OF.month, AS_OF.day) < (birth.month, birth.day))
    assert math.floor(age) == completed
    assert 0 <= age < 120 + 1
    assert normalize_record({"id": "x", "birth_date": birth.isoformat()}, as_of=AS_OF).age == age


@settings(max_examples=200, deadline=None)
@given(days=st.integers(min_value=1, max_value=3650))
def test_future_birth_dates_are_errors(days):
    with pytest.raises(PatientError, match="is in the future"):
        normalize_record(
            {"id": "x", "birth_date": (AS_OF + timedelta(days=days)).isoformat()}, as_of=AS_OF
        )


@settings(max_examples=200, deadline=None)
@given(
    age=st.one_of(
        st.floats(max_value=-0.01, min_value=-1e6), st.floats(min_value=120.01, max_value=1e6)
    )
)
def test_ages_out_of_range_are_errors(age):
    with pytest.raises(PatientError, match="is out of range"):
        normalize_record({"id": "x", "age": age}, as_of=AS_OF)


def test_leap_day_birthday():
    assert age_at(date(2008, 2, 29), date(2026, 3, 1)) == 18.0
    assert age_at(date(2008, 2, 29), date(2026, 2, 28)) == 17.99


# ---------------------------------------------------------------------------------------
# Readers on the example files
# ---------------------------------------------------------------------------------------
def test_json_list_reader(fixtures_dir):
    batch = read_patients(fixtures_dir / "patients" / "patients.json", as_of=AS_OF)
    assert batch.errors == []
    ids = [p.id for p in batch.patients]
    assert len(ids) == 16 and ids[0] == "LMS-001" and ids[-1] == "BRCA-016"
    by_id = {p.id: p for p in batch.patients}
    lms = by_id["LMS-001"]
    assert (lms.diagnosis, lms.stage, lms.metastatic_sites, lms.prior_drugs) == (
        "leiomyosarcoma", "IV", ["lung"], {"doxorubicin"}
    )  # fmt: skip
    assert lms.source == f"{fixtures_dir / 'patients' / 'patients.json'}, entry 1"
    assert (by_id["UPS-002"].age, by_id["UPS-002"].ecog, by_id["UPS-002"].lat) == (
        70.21,
        1,
        29.7069,
    )
    assert (by_id["SS-003"].age, by_id["SS-003"].ecog_converted_from) == (10.0, "lansky")
    assert by_id["SS-004"].age == 19.08
    assert "vegfr_tki" in by_id["ASPS-005"].prior_drug_classes
    assert by_id["IMT-006"].biomarkers is None and by_id["IMT-006"].ecog is None
    assert by_id["IMT-007"].biomarkers == ["ALK negative"]
    assert by_id["BRCA-016"].in_sarcoma_pack is False
    assert by_id["LPS-015"].metastatic is False


def test_single_patient_files_match_the_list(fixtures_dir):
    listed = read_patients(fixtures_dir / "patients" / "patients.json", as_of=AS_OF).patients
    for p in listed:
        single = read_patients(fixtures_dir / "patients" / f"{p.id.lower()}.json", as_of=AS_OF)
        assert len(single.patients) == 1
        one = single.patients[0].to_dict()
        two = p.to_dict()
        one.pop("source"), two.pop("source")
        assert one == two


def test_coordinator_csv(fixtures_dir):
    path = fixtures_dir / "patients" / "coordinator_list.csv"
    batch = read_patients(path, as_of=AS_OF)
    assert batch.errors == []
    by_id = {p.id: p for p in batch.patients}
    assert len(by_id) == 12
    c01 = by_id["C01"]
    assert c01.source == f"{path}, line 2"
    assert (c01.diagnosis, c01.stage, c01.metastatic_sites) == (
        "leiomyosarcoma",
        "IV",
        ["lung", "liver"],
    )
    assert (c01.ecog, c01.karnofsky, c01.ecog_converted_from) == (1, 80, "karnofsky")
    assert c01.labs["anc"] == 1800.0 and c01.labs["platelets"] == 210000.0
    assert c01.prior_drugs == {"doxorubicin", "ifosfamide"}
    assert (c01.measurable_disease, c01.brain_metastases, c01.pregnant) == (True, False, False)
    assert by_id["C02"].diagnosis == "synovial_sarcoma" and by_id["C02"].zip == "02115"
    assert by_id["C03"].prior_drugs == {"pazopanib"} and (by_id["C03"].lat, by_id["C03"].lon) == (
        40.7128,
        -74.006,
    )
    assert by_id["C04"].diagnosis == "undifferentiated_pleomorphic_sarcoma"
    assert by_id["C06"].biomarkers == ["ALK rearrangement"] and by_id["C06"].stage is None
    assert by_id["C08"].metastatic is True and by_id["C08"].stage == "I"
    assert by_id["C09"].prior_drugs == {"imatinib", "sunitinib"}
    assert by_id["C10"].prior_therapies[0].kind == "unrecognised"
    assert by_id["C12"].labs == {
        "anc": 1500.0,
        "platelets": 150000.0,
        "hemoglobin": 11.0,
        "creatinine": 0.9048,
    }


def test_demo_csv_is_clean(fixtures_dir):
    batch = read_patients(fixtures_dir / "demo" / "patients.csv", as_of=AS_OF)
    assert (len(batch.patients), batch.errors) == (16, [])


def test_list_with_one_bad_patient(fixtures_dir):
    path = fixtures_dir / "patients" / "list_with_bad_row.csv"
    batch = read_patients(path, as_of=AS_OF)
    assert [p.id for p in batch.patients] == ["D01", "D02", "D03"]
    assert [str(e) for e in batch.errors] == [
        f"{path}, line 2, patient 'D17', field 'ecog': ECOG '7' is out of range (accepted: 0-4)"
    ]


# ---------------------------------------------------------------------------------------
# Malformed files
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "bad.json",
            '[\n  {"id": "a"},\n  {"id": "b",}\n]',
            "{path}, line 3, column 14: invalid JSON: Expecting property name enclosed in double quotes",
        ),
        ("scalar.json", "42", "{path}: expected a patient object or a list of them, got int"),
        ("empty.csv", "", "{path}: empty CSV file: expected a header row with an 'id' column"),
        (
            "noid.csv",
            "name,age\nx,3\n",
            "{path}, line 1: CSV header has no 'id' column (columns: name, age); "
            "name the patient id column 'id' (or 'Patient ID', 'MRN')",
        ),
        (
            "dup.csv",
            "id,age,Age (years)\nx,3,4\n",
            "{path}, line 1: duplicate column(s): 'age' and 'Age (years)' both fill age; "
            "delete or rename one",
        ),
        (
            "quote.csv",
            'id,"diag\na,leio\n',
            "{path}, line 1: malformed CSV: unexpected end of data",
        ),
        (
            "what.dat",
            "hello",
            "{path}: cannot tell the format from the name or content; pass --format json|csv|fhir",
        ),
    ],
)
def test_unreadable_files_raise_input_error(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(InputError) as exc:
        read_patients(path)
    assert str(exc.value) == message.format(path=path)


def test_not_utf8(tmp_path):
    path = tmp_path / "latin1.csv"
    path.write_bytes("id,diagnosis\na,sarcome à cellules claires\n".encode("latin-1"))
    with pytest.raises(InputError) as exc:
        read_patients(path)
    assert str(exc.value) == f"{path}: not UTF-8 text (byte 23); save the file as UTF-8"


def test_batch_collects_per_patient_errors_and_proceeds(tmp_path):
    path = tmp_path / "mixed.json"
    path.write_text(
        json.dumps(
            [
                {"id": "ok1", "age": 40, "diagnosis": "LMS"},
                {"id": "bad", "age": 150},
                "not an object",
                {"age": 30},
                {"id": "ok1", "age": 41},
                {"id": "ok2", "sex": "f"},
            ]
        )
    )
    batch = read_patients(path, as_of=AS_OF)
    assert [p.id for p in batch.patients] == ["ok1", "ok2"]
    assert [str(e) for e in batch.errors] == [
        f"{path}, entry 2, patient 'bad', field 'age': age 150 is out of range (accepted: 0-120 years)",
        f"{path}, entry 3: expected an object, got str",
        f"{path}, entry 4, field 'id': missing required field 'id' (accepted: a non-empty string)",
        f"{path}, entry 5, patient 'ok1', field 'id': duplicate id (already used at {path}, entry 1) "
        "(accepted: a unique id per patient)",
    ]


def test_csv_row_with_extra_cells_is_a_patient_error(tmp_path):
    path = tmp_path / "extra.csv"
    path.write_text("id,prior_therapies\na,doxorubicin\nb,doxorubicin,ifosfamide\n")
    batch = read_patients(path, as_of=AS_OF)
    assert [p.id for p in batch.patients] == ["a"]
    assert [str(e) for e in batch.errors] == [
        f"{path}, line 3: 3 cells but the header has 2 columns (a list separated by ',' instead "
        "of ';'? quote the cell)"
    ]


def test_csv_headers_are_forgiving_and_blank_rows_skipped(tmp_path):
    path = tmp_path / "list.csv"
    path.write_text("\ufeffID,Birth Date,Metastatic Sites,ECOG\nq1,2000-01-01,lung; liver,1\n,,,\n")
    batch = read_patients(path, as_of=AS_OF)
    assert batch.errors == []
    (p,) = batch.patients
    assert (p.id, p.birth_date, p.metastatic_sites, p.ecog) == (
        "q1",
        date(2000, 1, 1),
        ["lung", "liver"],
        1,
    )


def test_unknown_format_name(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("{}")
    with pytest.raises(InputError, match="unknown format 'xml'"):
        read_patients(path, fmt="xml")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (
            "sites:\n  lungs: [pulmonary]\n",
            "sites.yaml, key 'lungs': unknown site (allowed: lung, liver, bone, brain, lymph_node, peritoneum, soft_tissue, other)",
        ),
        (
            "sites:\n  lung: [nodes]\n  lymph_node: [nodes]\n",
            "sites.yaml, key 'lymph_node': spelling 'nodes' maps to both 'lung' and 'lymph_node'",
        ),
        ("version: 1\nsite: {}\n", "sites.yaml: expected top-level keys: version, sites"),
    ],
)
def test_sites_vocabulary_is_validated(tmp_path, monkeypatch, content, message):
    (tmp_path / "vocab").mkdir()
    (tmp_path / "vocab" / "sites.yaml").write_text(content)
    monkeypatch.setenv("TRIALMATCH_CRITERIA", str(tmp_path))
    site_synonyms.cache_clear()
    try:
        with pytest.raises(KnowledgeError) as exc:
            site_synonyms()
        assert str(exc.value) == f"{tmp_path}/vocab/{message}"
    finally:
        site_synonyms.cache_clear()


def test_patients_wrapper_object(tmp_path):
    path = tmp_path / "w.json"
    path.write_text(json.dumps({"patients": [{"id": "a"}, {"id": "b"}]}))
    batch = read_patients(path, as_of=AS_OF)
    assert [(p.id, p.source) for p in batch.patients] == [
        ("a", f"{path}, entry 1"),
        ("b", f"{path}, entry 2"),
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # the aside names what the condition may lead to, not a second diagnosis
        (
            "actinic keratoses in a kidney transplant recipient (non-melanoma skin cancer precursor)",
            "actinic_keratosis",
        ),
        (
            "cervical intraepithelial neoplasia on an abnormal Pap test (cervical cancer precursor)",
            "cervical_intraepithelial_neoplasia",
        ),
        # a cancer beside a precancerous condition is the diagnosis
        (
            "actinic keratoses in a lung transplant recipient; prior excised cutaneous squamous "
            "cell carcinoma",
            "skin_carcinoma",
        ),
        ("CIN 3", "cervical_intraepithelial_neoplasia"),
    ],
)
def test_a_precancerous_condition_is_read_as_itself(text, expected):
    p = normalize_record({"id": "P", "diagnosis": text}, source="test")
    assert p.diagnosis == expected


@pytest.mark.parametrize(
    ("therapies", "names"),
    [
        (["R-CHOP"], ["rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone"]),
        (["FOLFOX then FOLFIRI"], ["fluorouracil", "leucovorin", "oxaliplatin", "irinotecan"]),
        (["gem/doce"], ["gemcitabine", "docetaxel"]),
        (
            ["R-ICE + BEAM"],
            [
                "rituximab",
                "ifosfamide",
                "carboplatin",
                "etoposide",
                "carmustine",
                "cytarabine",
                "melphalan",
            ],
        ),
    ],
)
def test_a_named_regimen_is_read_as_its_drugs(therapies, names):
    p = normalize_record({"id": "R", "prior_therapies": therapies}, source="test")
    assert [t.name for t in p.prior_therapies] == names
    assert all(t.kind == "drug" for t in p.prior_therapies)
