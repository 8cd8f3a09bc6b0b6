"""FHIR R4 / mCODE reader (matcher.fhir): real example bundles and constructed sarcoma bundles."""

from __future__ import annotations

import json
from datetime import date

import pytest

from matcher.errors import InputError
from matcher.fhir import stage_from_concept
from matcher.patient import read_patients

AS_OF = date(2026, 6, 1)

JENNY = "karlnaden_mCODE-testing-ig__mcode-patient-bundle-jenny-m_transactionBundle_preSTU3-2022-12-16.json"
TM02 = "mcode_clinical-trial-matching-app__TrialMatching_Patient02.json"
SERVICE = "mcode_clinical-trial-matching-service__patient_data.json"
ANCORA = "mcode_clinical-trial-matching-service-ancora.ai__patient_bundle.json"
HL7 = "HL7_fhir-mCODE-ig_STU1_mCODEPatientExample01"


def one(path):
    batch = read_patients(path, as_of=AS_OF)
    assert batch.errors == []
    assert len(batch.patients) == 1
    return batch.patients[0]


# ---------------------------------------------------------------------------------------
# Real example bundles (fixtures/fhir, see SOURCES.md): the values they really contain
# ---------------------------------------------------------------------------------------
def test_jenny_m_transaction_bundle(fixtures_dir):
    p = one(fixtures_dir / "fhir" / JENNY)
    assert (p.id, p.sex, p.birth_date, p.zip) == (
        "cancer-patient-jenny-m",
        "female",
        date(1965, 1, 1),
        "12345",
    )
    assert p.diagnosis == "breast_cancer" and p.in_sarcoma_pack is False
    # the condition says IIIC, the stage-group Observation IIB: the Observation wins, with a warning
    assert p.stage == "IIB" and p.metastatic is False
    assert (
        "stage: the stage-group Observation says IIB but Condition.stage says IIIC; using IIB"
        in p.warnings
    )
    assert p.ecog == 0 and p.karnofsky is None
    assert {"doxorubicin", "paclitaxel", "cyclophosphamide"} <= p.prior_drugs
    assert [t.text for t in p.prior_therapies][:4] == [
        "DOXOrubicin",
        "PACLitaxel",
        "cyclophosphamide",
        "anastrozole",
    ]
    assert set(p.biomarkers) == {
        "HER2 negative",
        "Estrogen receptor Ag positive",
        "Progesterone receptor Ag negative",
        "Oncotype DX Breast Recurrence Score Assay 47 Recurrence score",
        "PALB2 variant NM_024675.3(PALB2):c.3549C>A (p.Tyr1183Ter)",
    }


def test_names_and_addresses_are_never_copied(fixtures_dir):
    p = one(fixtures_dir / "fhir" / JENNY)
    text = json.dumps(p.to_dict())
    for private in (
        "Jenny",
        "Main St",
        "Anytown",
        "555-867-5309",
        "MRN1234",
        "example@example.com",
    ):
        assert private not in text


def test_trial_matching_patient02_bone_metastasis_from_condition_code(fixtures_dir):
    p = one(fixtures_dir / "fhir" / TM02)
    assert (p.id, p.sex, p.birth_date) == (
        "mCODETrialMatchingPatientExample02",
        "female",
        date(1973, 1, 1),
    )
    assert p.zip is None
    assert p.diagnosis == "breast_cancer"
    assert (p.stage, p.metastatic, p.metastatic_sites) == ("IV", True, ["bone"])
    assert p.ecog == 1
    assert {
        "Estrogen receptor Ag positive",
        "Progesterone receptor Ag positive",
        "HER2 Ag negative",
        "Microsatellite instability positive",
        "Cyclin D1 amplification",
        "MDM2 proto-oncogene amplification",
    } <= set(p.biomarkers)
    assert (
        "biomarker 'Tumor mutation burden': result unknown or indeterminate; not recorded"
        in p.warnings
    )
    assert {"capecitabine", "gemcitabine", "palbociclib"} <= p.prior_drugs


def test_matching_service_bundle_with_foreign_references(fixtures_dir):
    p = one(fixtures_dir / "fhir" / SERVICE)
    assert (p.id, p.sex, p.birth_date, p.zip) == (
        "1e208b6b-77f1-4808-a32b-9f9caf1ec334", "female", date(1966, 8, 3), "01951"
    )  # fmt: skip
    assert p.diagnosis == "breast_cancer"
    assert p.stage == "IIIA"
    # ECOG 3 and Karnofsky 90 are both in the bundle; they disagree
    assert (p.ecog, p.karnofsky, p.ecog_converted_from) == (3, 90, None)
    assert "ecog 3 disagrees with karnofsky 90 (= ECOG 0); using ecog 3" in p.warnings
    assert any(
        w.startswith("resources refer to Patient/mCODEMassiveBioPatientExample1004")
        for w in p.warnings
    )
    # the secondary condition's bodySite code has no display: kept as 'other', said so once
    assert p.metastatic_sites == ["other"]
    assert (
        p.warnings.count("metastasis body site SNOMED 8935007 not recognised; recorded as 'other'")
        == 1
    )
    assert [t.name for t in p.prior_therapies if t.kind == "drug"] == ["paclitaxel"]
    assert {"HER2 Receptor positive", "Estrogen Receptor positive"} <= set(p.biomarkers)


def test_ancora_bundle_partial_birth_date_and_parameters_zip(fixtures_dir):
    p = one(fixtures_dir / "fhir" / ANCORA)
    assert (p.id, p.sex, p.birth_date, p.age) == (
        "k6nTBe-AubJMWahAwEnvw",
        "female",
        date(1953, 1, 1),
        73.41,
    )
    assert "birth_date '1953' is partial; age computed from 1953-01-01" in p.warnings
    assert p.zip == "75001"
    assert p.diagnosis == "colon_cancer" and p.in_sarcoma_pack is False
    assert (p.ecog, p.karnofsky, p.stage) == (3, 60, "IIIA")


def test_hl7_single_resources_folder(fixtures_dir):
    p = one(fixtures_dir / "fhir" / HL7)
    assert (p.id, p.sex, p.birth_date, p.zip) == (
        "mCODEPatientExample01",
        "male",
        date(1951, 1, 20),
        "12345",
    )
    assert p.diagnosis_text == "non-small cell lung cancer" and p.in_sarcoma_pack is False
    assert (p.metastatic_sites, p.brain_metastases, p.metastatic) == (["brain"], True, True)
    assert p.stage == "IIIC"
    assert (
        "stage IIIC contradicts metastatic sites (brain); kept both, treated as metastatic"
        in p.warnings
    )
    assert (p.ecog, p.karnofsky) == (0, 90)
    assert [t.text for t in p.prior_therapies] == ["gefitinib"]  # RxNorm 349472, no display
    assert (
        "biomarker Observation mCODETumorMarkerExample01 has only codes (LOINC 39004-7) and no text; skipped"
        in p.warnings
    )


def test_folder_of_bundles(fixtures_dir):
    batch = read_patients(fixtures_dir / "fhir", as_of=AS_OF)
    assert batch.errors == []
    assert sorted(p.id for p in batch.patients) == sorted(
        [
            "cancer-patient-jenny-m",
            "mCODETrialMatchingPatientExample02",
            "1e208b6b-77f1-4808-a32b-9f9caf1ec334",
            "k6nTBe-AubJMWahAwEnvw",
        ]
    )


# ---------------------------------------------------------------------------------------
# Constructed sarcoma bundles (fixtures/patients/*.fhir.json)
# ---------------------------------------------------------------------------------------
def test_constructed_bundles_say_so(fixtures_dir):
    for path in sorted((fixtures_dir / "patients").glob("*.fhir.json")):
        tag = json.loads(path.read_text())["meta"]["tag"][0]
        assert tag["code"] == "constructed" and "not a real patient" in tag["display"]


def test_synovial_sarcoma_child_with_lung_metastases(fixtures_dir):
    p = one(fixtures_dir / "patients" / "synovial-child-lung-mets.fhir.json")
    assert (p.id, p.sex, p.age, p.zip) == ("fhir-ss-child", "male", 10.3, "19104")
    # the histology extension is more specific than the condition code: it wins
    assert p.diagnosis == "synovial_sarcoma" and p.in_sarcoma_pack is True
    assert (p.stage, p.metastatic, p.metastatic_sites) == ("IV", True, ["lung"])
    assert p.ecog == 1  # latest of two ECOG observations
    assert p.prior_drugs == {"ifosfamide"}
    assert "Constructed Example" not in json.dumps(p.to_dict())


def test_leiomyosarcoma_liver_metastasis_transaction_bundle(fixtures_dir):
    p = one(fixtures_dir / "patients" / "lms-liver-mets-doxorubicin.fhir.json")
    assert (p.id, p.sex, p.birth_date, p.zip) == (
        "5b0c7a4e-3f7d-4a53-9a57-2c1d0e3a0f11", "female", date(1968, 7, 21), "10065"
    )  # fmt: skip
    assert p.diagnosis == "uterine_leiomyosarcoma"
    assert (p.stage, p.metastatic_sites) == ("IV", ["liver"])
    assert [t.name for t in p.prior_therapies] == ["doxorubicin", "gemcitabine"]
    assert "anthracycline" in p.prior_drug_classes
    assert (p.ecog, p.karnofsky, p.ecog_converted_from) == (1, 80, "karnofsky")
    assert (
        "1 medication(s) not cancer-related and not in the drug vocabulary; not read" in p.warnings
    )


def test_imt_with_alk_status_unknown(fixtures_dir):
    p = one(fixtures_dir / "patients" / "imt-alk-unknown.fhir.json")
    assert p.diagnosis == "inflammatory_myofibroblastic_tumor"
    assert p.biomarkers is None  # indeterminate ALK = unknown, never "negative"
    assert (
        "biomarker 'ALK rearrangement': result unknown or indeterminate; not recorded" in p.warnings
    )
    assert (
        "2 primary cancer conditions; using 'Inflammatory myofibroblastic tumor of mesentery' "
        "(active, earliest)" in p.warnings
    )
    assert (p.metastatic_sites, p.ecog, p.stage) == (["peritoneum"], 0, None)


# ---------------------------------------------------------------------------------------
# Pieces
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("concept", "stage"),
    [
        ({"coding": [{"system": "http://cancerstaging.org", "code": "3C"}]}, "IIIC"),
        ({"coding": [{"system": "http://cancerstaging.org", "code": "c3A"}]}, "IIIA"),
        ({"coding": [{"system": "http://cancerstaging.org", "code": "4", "display": "IV"}]}, "IV"),
        (
            {
                "coding": [
                    {"display": "American Joint Committee on Cancer stage IIB (qualifier value)"}
                ]
            },
            "IIB",
        ),
        ({"coding": [{"display": "Stage 3A (qualifier value)"}]}, "IIIA"),
        ({"text": "Stage IV"}, "IV"),
        ({"text": "IVB"}, "IVB"),
        ({"text": "Stage 0"}, None),
        ({"text": "unknown"}, None),
        (None, None),
    ],
)
def test_stage_from_concept(concept, stage):
    assert stage_from_concept(concept) == stage


def _bundle(*resources, btype="collection"):
    return {"resourceType": "Bundle", "type": btype, "entry": [{"resource": r} for r in resources]}


def test_several_patients_in_one_bundle_are_split_by_reference(tmp_path):
    path = tmp_path / "two.json"
    path.write_text(
        json.dumps(
            _bundle(
                {"resourceType": "Patient", "id": "a", "gender": "female"},
                {"resourceType": "Patient", "id": "b", "gender": "male"},
                {
                    "resourceType": "Observation",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "89247-1"}]},
                    "subject": {"reference": "Patient/b"},
                    "valueInteger": 2,
                },
            )
        )
    )
    batch = read_patients(path, fmt="fhir", as_of=AS_OF)
    assert [(p.id, p.sex, p.ecog, p.source) for p in batch.patients] == [
        ("a", "female", None, f"{path}, Patient/a"),
        ("b", "male", 2, f"{path}, Patient/b"),
    ]


def test_bundle_without_patient_is_a_patient_error(tmp_path):
    path = tmp_path / "nopatient.json"
    path.write_text(json.dumps(_bundle({"resourceType": "Observation", "status": "final"})))
    batch = read_patients(path, as_of=AS_OF)
    assert batch.patients == []
    assert [str(e) for e in batch.errors] == [
        f"{path}: no Patient resource: expected one Patient per bundle "
        "(accepted: a Bundle holding a Patient and resources that refer to it)"
    ]


def test_bad_fhir_value_is_a_patient_error_naming_the_field(tmp_path):
    path = tmp_path / "ecog7.json"
    path.write_text(
        json.dumps(
            _bundle(
                {"resourceType": "Patient", "id": "p7"},
                {
                    "resourceType": "Observation",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "89247-1"}]},
                    "valueInteger": 7,
                },
            )
        )
    )
    batch = read_patients(path, as_of=AS_OF)
    assert [str(e) for e in batch.errors] == [
        f"{path}, patient 'p7', field 'ecog': ECOG 7 is out of range (accepted: 0-4)"
    ]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            {"resourceType": "Bundle", "entry": {"resource": {}}},
            "{path}: Bundle.entry is not a list",
        ),
        (
            {"resourceType": "Bundle", "entry": ["x"]},
            "{path}, Bundle.entry[0]: bundle entry is not an object",
        ),
        (
            {"resourceType": "Bundle", "entry": [{"resource": {"id": "x"}}]},
            "{path}, Bundle.entry[0]: entry resource has no resourceType",
        ),
        ({"id": "x"}, "{path}: not a FHIR resource or Bundle (no resourceType)"),
        (
            [{"resourceType": "Patient"}, 3],
            "{path}, entry 2: not a FHIR resource (no resourceType)",
        ),
    ],
)
def test_malformed_fhir(tmp_path, data, message):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError) as exc:
        read_patients(path, fmt="fhir")
    assert str(exc.value) == message.format(path=path)


def test_empty_folder(tmp_path):
    with pytest.raises(InputError) as exc:
        read_patients(tmp_path)
    assert str(exc.value) == f"{tmp_path}: folder holds no *.json FHIR files"


def test_folder_with_bad_json_names_the_file(tmp_path):
    (tmp_path / "a.json").write_text('{"resourceType": "Bundle",\n "entry": [}')
    with pytest.raises(InputError) as exc:
        read_patients(tmp_path)
    assert (
        str(exc.value) == f"{tmp_path / 'a.json'}, line 2, column 12: invalid JSON: Expecting value"
    )


def _marker(code_text, value, profile="mcode-tumor-marker-test", component_gene=None):
    obs = {
        "resourceType": "Observation",
        "status": "final",
        "meta": {"profile": [f"http://hl7.org/fhir/us/mcode/StructureDefinition/{profile}"]},
        "code": {"text": code_text},
        "valueCodeableConcept": value,
    }
    if component_gene:
        obs["component"] = [
            {
                "code": {"coding": [{"system": "http://loinc.org", "code": "48018-6"}]},
                "valueCodeableConcept": {
                    "coding": [{"code": "HGNC:427", "display": component_gene}]
                },
            }
        ]
    return obs


@pytest.mark.parametrize(
    ("obs", "biomarkers"),
    [
        (_marker("ALK rearrangement", {"text": "Positive"}), ["ALK rearrangement"]),
        (_marker("ALK rearrangement", {"text": "Negative"}), ["ALK negative"]),
        (
            _marker(
                "ALK rearrangement",
                {"coding": [{"system": "http://snomed.info/sct", "code": "260385009"}]},
            ),
            ["ALK negative"],
        ),
        (
            _marker(
                "Genetic variant assessment",
                {"coding": [{"system": "http://loinc.org", "code": "LA9634-2"}]},
                profile="mcode-genomic-variant",
                component_gene="ALK",
            ),
            ["ALK negative"],
        ),
        (
            _marker(
                "Genetic variant assessment",
                {
                    "coding": [
                        {"system": "http://loinc.org", "code": "LA9633-4", "display": "Present"}
                    ]
                },
                profile="mcode-genomic-variant",
                component_gene="ALK",
            ),
            ["ALK variant present"],
        ),
        (_marker("MDM2 amplification", {"text": "Detected"}), ["MDM2 amplification"]),
        (_marker("ALK rearrangement", {"text": "Indeterminate"}), None),
        (_marker("ALK rearrangement", {"text": "Pending"}), None),
    ],
)
def test_biomarker_results(tmp_path, obs, biomarkers):
    path = tmp_path / "b.json"
    path.write_text(json.dumps(_bundle({"resourceType": "Patient", "id": "x"}, obs)))
    (p,) = read_patients(path, as_of=AS_OF).patients
    assert p.biomarkers == biomarkers


def test_medication_reference_and_coded_ecog_answer(tmp_path):
    path = tmp_path / "m.json"
    path.write_text(
        json.dumps(
            _bundle(
                {"resourceType": "Patient", "id": "m1"},
                {"resourceType": "Medication", "id": "med1", "code": {"text": "Votrient"}},
                {
                    "resourceType": "MedicationRequest",
                    "status": "completed",
                    "medicationReference": {"reference": "Medication/med1"},
                    "subject": {"reference": "Patient/m1"},
                },
                {
                    "resourceType": "MedicationStatement",
                    "status": "entered-in-error",
                    "medicationCodeableConcept": {"text": "doxorubicin"},
                },
                {
                    "resourceType": "Observation",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "89247-1"}]},
                    "effectiveDateTime": "2026-01-05",
                    "valueCodeableConcept": {
                        "coding": [{"system": "http://loinc.org", "code": "LA9624-3"}]
                    },
                },
                {
                    "resourceType": "Observation",
                    "code": {"coding": [{"system": "http://loinc.org", "code": "89247-1"}]},
                    "effectiveDateTime": "2025-01-05",
                    "valueInteger": 0,
                },
            )
        )
    )
    (p,) = read_patients(path, as_of=AS_OF).patients
    assert [(t.text, t.name) for t in p.prior_therapies] == [("Votrient", "pazopanib")]
    assert p.ecog == 2  # the later observation, coded as a LOINC answer


@pytest.mark.parametrize(
    ("postal", "zip_code", "warning"),
    [
        ("10065", "10065", None),
        ("SW1A 1AA", None, "Patient.address.postalCode is not a US ZIP code; location unknown"),
    ],
)
def test_postal_codes(tmp_path, postal, zip_code, warning):
    path = tmp_path / "z.json"
    patient = {
        "resourceType": "Patient",
        "id": "z",
        "address": [{"postalCode": postal, "city": "X"}],
    }
    path.write_text(json.dumps(_bundle(patient)))
    (p,) = read_patients(path, as_of=AS_OF).patients
    assert p.zip == zip_code
    assert (warning in p.warnings) if warning else p.warnings == []
