"""Vocabularies: diagnoses, drugs and classes, procedures (matcher/vocab.py + criteria/vocab/)."""

from __future__ import annotations

import re
import textwrap
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher.errors import KnowledgeError, VocabError
from matcher.vocab import (
    DIAGNOSIS_FUZZY_THRESHOLD,
    DRUG_FUZZY_THRESHOLD,
    Vocab,
    load_vocab,
    squash,
)

SEEDS = Path(__file__).resolve().parent.parent / "fixtures" / "seeds"


@pytest.fixture(scope="module")
def v() -> Vocab:
    return load_vocab()


# ----------------------------------------------------------------------------------- diagnoses

DIAGNOSIS_SPELLINGS = [
    # (text, expected id, method)
    ("leiomyosarcoma", "leiomyosarcoma", "exact"),
    ("LMS", "leiomyosarcoma", "exact"),
    ("Leiomyosarcoma (LMS)", "leiomyosarcoma", "mention"),
    ("uterine leiomyosarcoma", "uterine_leiomyosarcoma", "exact"),
    ("metastatic leiomyosarcoma of the uterus", "uterine_leiomyosarcoma", "mention"),
    ("ULMS", "uterine_leiomyosarcoma", "exact"),
    ("liposarcoma", "liposarcoma", "exact"),
    ("well-differentiated liposarcoma", "well_differentiated_liposarcoma", "exact"),
    ("ALT", "well_differentiated_liposarcoma", "exact"),
    ("atypical lipomatous tumour", "well_differentiated_liposarcoma", "exact"),
    ("DDLPS", "dedifferentiated_liposarcoma", "exact"),
    ("dedifferentiated liposarcoma", "dedifferentiated_liposarcoma", "exact"),
    ("myxoid/round cell liposarcoma", "myxoid_liposarcoma", "exact"),
    ("MRLS", "myxoid_liposarcoma", "oncotree"),
    ("pleomorphic liposarcoma", "pleomorphic_liposarcoma", "exact"),
    ("Synovial Sarcoma", "synovial_sarcoma", "exact"),
    ("SYNS", "synovial_sarcoma", "exact"),
    ("UPS", "undifferentiated_pleomorphic_sarcoma", "exact"),
    ("MFH", "undifferentiated_pleomorphic_sarcoma", "exact"),
    ("malignant fibrous histiocytoma", "undifferentiated_pleomorphic_sarcoma", "exact"),
    ("MPNST", "mpnst", "exact"),
    ("malignant peripheral nerve sheath tumour", "mpnst", "exact"),
    ("angiosarcoma", "angiosarcoma", "exact"),
    ("epithelioid sarcoma", "epithelioid_sarcoma", "exact"),
    ("fibrosarcoma", "fibrosarcoma", "exact"),
    ("myxofibrosarcoma", "myxofibrosarcoma", "exact"),
    ("clear cell sarcoma", "clear_cell_sarcoma", "exact"),
    ("clear cell sarcoma of the kidney", "clear_cell_sarcoma_of_kidney", "exact"),
    ("DSRCT", "dsrct", "exact"),
    ("desmoplastic small round cell tumor", "dsrct", "exact"),
    ("ASPS", "alveolar_soft_part_sarcoma", "exact"),
    ("alveolar soft-part sarcoma", "alveolar_soft_part_sarcoma", "exact"),
    ("Sarcoma, Alveolar Soft Part", "alveolar_soft_part_sarcoma", "fuzzy"),
    ("SFT", "solitary_fibrous_tumor", "exact"),
    ("HPC", "solitary_fibrous_tumor", "exact"),
    ("hemangiopericytoma", "solitary_fibrous_tumor", "exact"),
    ("PEComa", "pecoma", "exact"),
    ("PECOMA", "pecoma", "exact"),
    ("perivascular epithelioid cell tumor", "pecoma", "exact"),
    ("IMT", "inflammatory_myofibroblastic_tumor", "exact"),
    ("inflammatory myofibroblastic tumour", "inflammatory_myofibroblastic_tumor", "exact"),
    ("TGCT", "tenosynovial_giant_cell_tumor", "exact"),
    ("PVNS", "tenosynovial_giant_cell_tumor", "exact"),
    ("pigmented villonodular synovitis", "tenosynovial_giant_cell_tumor", "exact"),
    ("DFSP", "dermatofibrosarcoma_protuberans", "exact"),
    ("Dermatofibrosarcoma", "dermatofibrosarcoma_protuberans", "exact"),
    ("chordoma", "chordoma", "exact"),
    ("CHDM", "chordoma", "exact"),
    ("RMS", "rhabdomyosarcoma", "exact"),
    ("ERMS", "embryonal_rhabdomyosarcoma", "exact"),
    ("alveolar rhabdomyosarcoma", "alveolar_rhabdomyosarcoma", "exact"),
    ("Ewing's sarcoma", "ewing_sarcoma", "exact"),
    ("ES", "ewing_sarcoma", "exact"),
    ("osteosarcoma", "osteosarcoma", "exact"),
    ("OS", "osteosarcoma", "exact"),
    ("osteogenic sarcoma", "osteosarcoma", "exact"),
    ("chondrosarcoma", "chondrosarcoma", "exact"),
    ("GIST", "gist", "exact"),
    ("gastrointestinal stromal tumour", "gist", "exact"),
    ("Kaposi's sarcoma", "kaposi_sarcoma", "exact"),
    ("desmoid tumour", "desmoid_tumor", "exact"),
    ("aggressive fibromatosis", "desmoid_tumor", "exact"),
    ("endometrial stromal sarcoma", "endometrial_stromal_sarcoma", "exact"),
    ("gliosarcoma", "gliosarcoma", "exact"),
    ("sarcoma", "sarcoma", "exact"),
    ("soft tissue sarcoma", "soft_tissue_sarcoma", "exact"),
    ("Soft-Tissue Sarcomas", "soft_tissue_sarcoma", "exact"),
    ("STS", "soft_tissue_sarcoma", "exact"),
    ("Metastasis From Malignant Tumor of Soft Tissues", "soft_tissue_sarcoma", "mention"),
    ("advanced solid tumors", "solid_tumor", "exact"),
    ("  Leiomyosarcoma®  ", "leiomyosarcoma", "exact"),
    # misspellings
    ("leiomyosarcma", "leiomyosarcoma", "fuzzy"),
    ("leiomyosarcomma", "leiomyosarcoma", "fuzzy"),
    ("synovail sarcoma", "synovial_sarcoma", "fuzzy"),
    ("liposarcomma", "liposarcoma", "fuzzy"),
    ("rhabdomyosarcma", "rhabdomyosarcoma", "fuzzy"),
    ("osteosarcma", "osteosarcoma", "fuzzy"),
    ("chondrosarcma", "chondrosarcoma", "fuzzy"),
    ("angiosarcomma", "angiosarcoma", "fuzzy"),
    ("metastatic leiomyosarcma", "leiomyosarcoma", "fuzzy"),
    ("dermatofibrosarcoma protuberance", "dermatofibrosarcoma_protuberans", "mention"),
    ("dermatofibrosarcma protuberans", "dermatofibrosarcoma_protuberans", "fuzzy"),
    # what today's disease arose from is its history, not a second diagnosis
    ("AML arising from primary myelofibrosis", "acute_myeloid_leukemia", "mention"),
    ("DLBCL transformed from follicular lymphoma", "diffuse_large_b_cell_lymphoma", "mention"),
    # sub-sites and entries that had resolved to another organ or family
    ("oropharyngeal squamous cell carcinoma", "oropharyngeal_cancer", "exact"),
    ("hypopharyngeal squamous cell carcinoma", "hypopharyngeal_cancer", "exact"),
    ("atypical teratoid/rhabdoid tumor", "atypical_teratoid_rhabdoid_tumor", "exact"),
    ("adenocarcinoma of the prostate", "prostate_adenocarcinoma", "exact"),
    ("rectal adenocarcinoma", "rectal_adenocarcinoma", "exact"),
    ("Burkitt's lymphoma", "burkitt_lymphoma", "exact"),
    ("primary myelofibrosis", "myelofibrosis", "exact"),
    ("thymic carcinoma", "thymic_carcinoma", "exact"),
    ("anaplastic ependymoma", "ependymoma", "exact"),
    ("ovarian carcinosarcoma", "ovarian_carcinosarcoma", "exact"),
    ("MMMT", "carcinosarcoma", "exact"),
    # a misspelling changes letters of a word, not the word: "urethral" is no "rectal"
    ("urethral carcinoma", "carcinoma", "mention"),
    ("nasopharangeal carcinoma", "nasopharyngeal_carcinoma", "fuzzy"),
    (
        "newly diagnosed Philadelphia-like B-cell acute lymphoblastic leukemia",
        "ph_like_all",
        "fuzzy",
    ),
]


@pytest.mark.parametrize(("text", "expected", "method"), DIAGNOSIS_SPELLINGS)
def test_resolve_diagnosis_spellings(v, text, expected, method):
    m = v.resolve_diagnosis(text)
    assert (m.entry.id, m.method) == (expected, method)
    if method == "fuzzy":
        assert DIAGNOSIS_FUZZY_THRESHOLD <= m.score <= 100
    else:
        assert m.score == 100.0


# every spelling added (or moved to a more specific entry) for the vocabulary gaps
NEW_DIAGNOSIS_SPELLINGS = [
    ("Lung adenosquamous carcinoma", "lung_adenosquamous_carcinoma"),
    ("adenosquamous carcinoma of the lung", "lung_adenosquamous_carcinoma"),
    ("adenosquamous lung carcinoma", "lung_adenosquamous_carcinoma"),
    ("adenosquamous lung cancer", "lung_adenosquamous_carcinoma"),
    ("pulmonary adenosquamous carcinoma", "lung_adenosquamous_carcinoma"),
    ("lung adenosquamous cell carcinoma", "lung_adenosquamous_carcinoma"),
    ("Large cell neuroendocrine carcinoma of the lung", "lung_large_cell_neuroendocrine_carcinoma"),
    ("lung large cell neuroendocrine carcinoma", "lung_large_cell_neuroendocrine_carcinoma"),
    ("pulmonary large cell neuroendocrine carcinoma", "lung_large_cell_neuroendocrine_carcinoma"),
    ("large-cell neuroendocrine carcinoma of the lung", "lung_large_cell_neuroendocrine_carcinoma"),
    ("pulmonary LCNEC", "lung_large_cell_neuroendocrine_carcinoma"),
    ("lung LCNEC", "lung_large_cell_neuroendocrine_carcinoma"),
    ("Adrenocortical carcinoma", "adrenocortical_carcinoma"),
    ("adrenocortical cancer", "adrenocortical_carcinoma"),
    ("adrenal cortical carcinoma", "adrenocortical_carcinoma"),
    ("adrenal cortex carcinoma", "adrenocortical_carcinoma"),
    ("adrenal cortical cancer", "adrenocortical_carcinoma"),
    ("carcinoma of the adrenal cortex", "adrenocortical_carcinoma"),
    ("adrenocortical carcinomas", "adrenocortical_carcinoma"),
    ("Pheochromocytoma and paraganglioma", "pheochromocytoma_paraganglioma"),
    ("pheochromocytoma/paraganglioma", "pheochromocytoma_paraganglioma"),
    ("phaeochromocytoma and paraganglioma", "pheochromocytoma_paraganglioma"),
    ("PPGL", "pheochromocytoma_paraganglioma"),
    ("PPGLs", "pheochromocytoma_paraganglioma"),
    ("pheochromocytomas and paragangliomas", "pheochromocytoma_paraganglioma"),
    ("malignant pheochromocytoma and paraganglioma", "pheochromocytoma_paraganglioma"),
    ("metastatic pheochromocytoma and paraganglioma", "pheochromocytoma_paraganglioma"),
    ("Pheochromocytoma", "pheochromocytoma"),
    ("phaeochromocytoma", "pheochromocytoma"),
    ("pheochromocytomas", "pheochromocytoma"),
    ("phaeochromocytomas", "pheochromocytoma"),
    ("malignant pheochromocytoma", "pheochromocytoma"),
    ("metastatic pheochromocytoma", "pheochromocytoma"),
    ("adrenal paraganglioma", "pheochromocytoma"),
    ("Paraganglioma", "paraganglioma"),
    ("paragangliomas", "paraganglioma"),
    ("extra-adrenal paraganglioma", "paraganglioma"),
    ("malignant paraganglioma", "paraganglioma"),
    ("metastatic paraganglioma", "paraganglioma"),
    ("head and neck paraganglioma", "paraganglioma"),
    ("carotid body tumor", "paraganglioma"),
    ("Follicular lymphoma", "follicular_lymphoma"),
    ("follicular lymphomas", "follicular_lymphoma"),
    ("follicular non-Hodgkin lymphoma", "follicular_lymphoma"),
    ("follicular non-Hodgkin's lymphoma", "follicular_lymphoma"),
    ("FL", "follicular_lymphoma"),
    ("Mantle cell lymphoma", "mantle_cell_lymphoma"),
    ("mantle cell lymphomas", "mantle_cell_lymphoma"),
    ("mantle-cell lymphoma", "mantle_cell_lymphoma"),
    ("MCL", "mantle_cell_lymphoma"),
    ("Acute promyelocytic leukemia", "acute_promyelocytic_leukemia"),
    ("acute promyelocytic leukaemia", "acute_promyelocytic_leukemia"),
    ("APL", "acute_promyelocytic_leukemia"),
    ("APML", "acute_promyelocytic_leukemia"),
    ("AML M3", "acute_promyelocytic_leukemia"),
    ("AML-M3", "acute_promyelocytic_leukemia"),
    ("FAB M3", "acute_promyelocytic_leukemia"),
    ("FAB M3 AML", "acute_promyelocytic_leukemia"),
    ("acute promyelocytic leukemia with PML-RARA", "acute_promyelocytic_leukemia"),
    ("APL with PML::RARA fusion", "acute_promyelocytic_leukemia"),
    ("APL with PML-RARA", "acute_promyelocytic_leukemia"),
    ("acute myeloid leukemia with PML-RARA", "acute_promyelocytic_leukemia"),
    ("AML with PML::RARA", "acute_promyelocytic_leukemia"),
    ("Myeloid leukemia associated with Down syndrome", "myeloid_leukemia_down_syndrome"),
    ("myeloid leukaemia associated with Down syndrome", "myeloid_leukemia_down_syndrome"),
    ("ML-DS", "myeloid_leukemia_down_syndrome"),
    ("myeloid leukemia of Down syndrome", "myeloid_leukemia_down_syndrome"),
    ("Down syndrome myeloid leukemia", "myeloid_leukemia_down_syndrome"),
    ("Down syndrome-associated myeloid leukemia", "myeloid_leukemia_down_syndrome"),
    ("AML in Down syndrome", "myeloid_leukemia_down_syndrome"),
    ("Down syndrome AML", "myeloid_leukemia_down_syndrome"),
    ("acute myeloid leukemia in Down syndrome", "myeloid_leukemia_down_syndrome"),
    ("Philadelphia chromosome-positive acute lymphoblastic leukemia", "ph_positive_all"),
    ("Ph+ ALL", "ph_positive_all"),
    ("Phi+ ALL", "ph_positive_all"),
    ("Ph-positive ALL", "ph_positive_all"),
    ("Ph-pos ALL", "ph_positive_all"),
    ("Philadelphia chromosome-positive ALL", "ph_positive_all"),
    ("Philadelphia-positive ALL", "ph_positive_all"),
    ("Philadelphia positive ALL", "ph_positive_all"),
    ("Philadelphia-positive acute lymphoblastic leukemia", "ph_positive_all"),
    ("Philadelphia chromosome-positive acute lymphoblastic leukaemia", "ph_positive_all"),
    ("Ph+ B-ALL", "ph_positive_all"),
    ("BCR-ABL1-positive ALL", "ph_positive_all"),
    ("BCR-ABL-positive ALL", "ph_positive_all"),
    ("BCR::ABL1-positive ALL", "ph_positive_all"),
    ("BCR-ABL1-positive acute lymphoblastic leukemia", "ph_positive_all"),
    ("B-lymphoblastic leukemia with BCR::ABL1 fusion", "ph_positive_all"),
    ("B-ALL with BCR::ABL1", "ph_positive_all"),
    ("B-lymphoblastic leukemia/lymphoma with t(9;22)(q34.1;q11.2)/BCR-ABL1", "ph_positive_all"),
    ("B-lineage ALL", "b_cell_all"),
    ("B-cell lineage acute lymphocytic leukemia", "b_cell_all"),
    ("acute B-cell lymphoblastic leukaemia", "b_cell_all"),
    ("B cell derived acute lymphoblastic leukemia", "b_cell_all"),
    ("B-cell leukemia", "b_cell_leukemia"),
    ("B cell leukaemia", "b_cell_leukemia"),
    ("B-lineage leukemia", "b_cell_leukemia"),
    ("Ph-like ALL", "ph_like_all"),
    ("juvenile myelomonocytic leukemia", "juvenile_myelomonocytic_leukemia"),
    ("JMML", "juvenile_myelomonocytic_leukemia"),
    ("Philadelphia chromosome-like acute lymphoblastic leukemia", "ph_like_all"),
    ("BCR-ABL1-like ALL", "ph_like_all"),
    ("T-cell lymphoblastic lymphoma", "t_cell_all"),
    ("T-lymphoblastic lymphoma", "t_cell_all"),
    ("T-LBL", "t_cell_all"),
    ("T-ALL/LBL", "t_cell_all"),
    ("T-ALL/T-LBL", "t_cell_all"),
    ("T-lymphoblastic leukemia/lymphoma", "t_cell_all"),
    ("T-lymphoblastic leukaemia/lymphoma", "t_cell_all"),
    ("Myelodysplastic syndrome", "myelodysplastic_syndrome"),
    ("myelodysplastic syndromes", "myelodysplastic_syndrome"),
    ("MDS", "myelodysplastic_syndrome"),
    ("myelodysplastic neoplasm", "myelodysplastic_syndrome"),
    ("myelodysplastic neoplasms", "myelodysplastic_syndrome"),
    ("myelodysplasia", "myelodysplastic_syndrome"),
    ("high-risk MDS", "myelodysplastic_syndrome"),
    ("higher-risk MDS", "myelodysplastic_syndrome"),
    ("high risk MDS", "myelodysplastic_syndrome"),
    ("high-risk myelodysplastic syndrome", "myelodysplastic_syndrome"),
    ("higher-risk myelodysplastic syndrome", "myelodysplastic_syndrome"),
    ("lower-risk MDS", "myelodysplastic_syndrome"),
    ("low-risk MDS", "myelodysplastic_syndrome"),
    ("lower-risk myelodysplastic syndrome", "myelodysplastic_syndrome"),
]


@pytest.mark.parametrize(("text", "expected"), NEW_DIAGNOSIS_SPELLINGS)
def test_new_diagnosis_spellings_resolve_exactly(v, text, expected):
    m = v.resolve_diagnosis(text)
    assert (m.entry.id, m.method) == (expected, "exact")


@pytest.mark.parametrize(
    ("ident", "parent"),
    [
        ("acute_promyelocytic_leukemia", "acute_myeloid_leukemia"),
        ("myeloid_leukemia_down_syndrome", "acute_myeloid_leukemia"),
        ("ph_positive_all", "b_cell_all"),
        ("myelodysplastic_syndrome", "hematologic_malignancy"),
        ("pheochromocytoma_paraganglioma", "neuroendocrine_tumor"),
        ("pheochromocytoma", "pheochromocytoma_paraganglioma"),
        ("paraganglioma", "pheochromocytoma_paraganglioma"),
        ("adrenocortical_carcinoma", "carcinoma"),
        ("lung_adenosquamous_carcinoma", "nsclc"),
        ("lung_large_cell_neuroendocrine_carcinoma", "lung_cancer"),
        ("follicular_lymphoma", "b_cell_lymphoma"),
        ("mantle_cell_lymphoma", "b_cell_lymphoma"),
        ("b_cell_lymphoma", "non_hodgkin_lymphoma"),
        ("peripheral_t_cell_lymphoma", "t_cell_lymphoma"),
        ("malt_lymphoma", "marginal_zone_lymphoma"),
        ("gallbladder_carcinoma", "biliary_tract_cancer"),
        ("cholangiocarcinoma", "biliary_tract_cancer"),
    ],
)
def test_new_diagnoses_sit_in_the_tree(v, ident, parent):
    assert v.diagnosis(ident).parent == parent


def test_lung_lcnec_is_also_a_neuroendocrine_carcinoma(v):
    lineage = v.diagnosis("lung_large_cell_neuroendocrine_carcinoma").lineage
    assert {"lung_cancer", "neuroendocrine_carcinoma", "neuroendocrine_tumor"} <= set(lineage)
    assert "nsclc" not in lineage


def test_fuzzy_score_is_reported(v):
    assert v.resolve_diagnosis("leiomyosarcma").score == 96.3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # close but different entities keep their own identity
        ("liposarcoma", "liposarcoma"),
        ("leiomyosarcoma", "leiomyosarcoma"),
        ("osteosarcoma", "osteosarcoma"),
        ("chondrosarcoma", "chondrosarcoma"),
        ("fibrosarcoma", "fibrosarcoma"),
        ("myxofibrosarcoma", "myxofibrosarcoma"),
        ("liposarcomas", "liposarcoma"),
        ("fibrosarcom", "fibrosarcoma"),
        ("myxofibrosarcom", "myxofibrosarcoma"),
        ("angiosarcoma", "angiosarcoma"),
    ],
)
def test_close_entities_do_not_swap(v, text, expected):
    assert v.resolve_diagnosis(text).entry.id == expected


@pytest.mark.parametrize(
    ("text", "family"),
    [
        ("breast carcinoma", "carcinoma"),
        ("Breast cancer", "carcinoma"),
        ("lung adenocarcinoma", "carcinoma"),
        ("NSCLC", "carcinoma"),
        ("colorectal cancer", "carcinoma"),
        ("prostate cancer", "carcinoma"),
        ("ovarian cancer", "carcinoma"),
        ("endometrial carcinoma", "carcinoma"),
        ("melanoma", "melanoma"),
        ("diffuse large B-cell lymphoma", "lymphoma"),
        ("Primary CNS lymphoma", "lymphoma"),
        ("AML", "leukemia"),
        ("glioblastoma", "cns"),
        ("gliosarcoma", "cns"),
        ("neuroblastoma", "other"),
        ("cancer", "other"),
    ],
)
def test_non_sarcoma_cancers_are_recognised_outside_the_pack(v, text, family):
    d = v.resolve_diagnosis(text).entry
    assert (d.family, d.in_sarcoma_pack) == (family, False)


@pytest.mark.parametrize(
    "text", ["headache", "patient is well", "AIDS", "hypertension", "xyzoma", ""]
)
def test_text_naming_no_cancer_is_an_error_with_three_suggestions(v, text):
    with pytest.raises(VocabError) as err:
        v.resolve_diagnosis(text)
    exc = err.value
    assert (exc.kind, exc.term, len(exc.suggestions)) == ("diagnosis", text, 3)
    assert str(exc) == (f"diagnosis {text!r} not recognised; closest: {', '.join(exc.suggestions)}")
    assert all(s in {d.name for d in v.diagnoses.values()} for s in exc.suggestions)


def test_unrecognised_diagnosis_message_exact(v):
    with pytest.raises(VocabError) as err:
        v.resolve_diagnosis("leiomyo")
    assert str(err.value) == (
        "diagnosis 'leiomyo' not recognised; closest: Leiomyosarcoma, Uterine leiomyosarcoma, "
        "Pleomorphic liposarcoma"
    )


@pytest.mark.parametrize("text", ["LMX", "MPNTS", "GITS", "ASP", "DFPS"])
def test_short_abbreviations_never_match_fuzzily(v, text):
    with pytest.raises(VocabError):
        v.resolve_diagnosis(text)


def test_two_unrelated_mentions_are_ambiguous(v):
    with pytest.raises(VocabError) as err:
        v.resolve_diagnosis("angiosarcoma and breast cancer")
    assert "ambiguous" in str(err.value)
    assert set(err.value.suggestions) == {"Angiosarcoma", "Breast carcinoma"}


NRSTS = "non_rhabdomyosarcoma_soft_tissue_sarcoma"


@pytest.mark.parametrize(
    ("ident", "lineage"),
    [
        (
            "leiomyosarcoma",
            ("leiomyosarcoma", NRSTS, "soft_tissue_sarcoma", "sarcoma", "solid_tumor"),
        ),
        (
            "myxoid_liposarcoma",
            (
                "myxoid_liposarcoma",
                "liposarcoma",
                NRSTS,
                "soft_tissue_sarcoma",
                "sarcoma",
                "solid_tumor",
            ),
        ),
        (
            "embryonal_rhabdomyosarcoma",
            (
                "embryonal_rhabdomyosarcoma",
                "rhabdomyosarcoma",
                "soft_tissue_sarcoma",
                "sarcoma",
                "solid_tumor",
            ),
        ),
        ("osteosarcoma", ("osteosarcoma", "bone_sarcoma", "sarcoma", "solid_tumor")),
        (
            "gliosarcoma",
            (
                "gliosarcoma",
                "glioblastoma",
                "astrocytic_tumor",
                "glioma",
                "cns_tumor",
                "solid_tumor",
            ),
        ),
        (
            "tenosynovial_giant_cell_tumor",
            ("tenosynovial_giant_cell_tumor", "soft_tissue_tumor", "solid_tumor"),
        ),
        ("solid_tumor", ("solid_tumor",)),
    ],
)
def test_lineage(v, ident, lineage):
    assert v.diagnosis(ident).lineage == lineage


@pytest.mark.parametrize(
    ("ident", "ancestor", "expected"),
    [
        ("uterine_leiomyosarcoma", "leiomyosarcoma", True),
        ("synovial_sarcoma", "soft_tissue_sarcoma", True),
        ("synovial_sarcoma", "sarcoma", True),
        ("ewing_sarcoma", "soft_tissue_sarcoma", False),
        ("ewing_sarcoma", "bone_sarcoma", True),
        ("gliosarcoma", "sarcoma", False),
        ("lymphoma", "solid_tumor", False),
        ("leiomyosarcoma", "leiomyosarcoma", True),
        ("no_such_id", "sarcoma", False),
    ],
)
def test_is_a(v, ident, ancestor, expected):
    assert v.is_a(ident, ancestor) is expected


@pytest.mark.parametrize(
    ("ident", "oncotree", "category", "summaries", "separate"),
    [
        ("leiomyosarcoma", "LMS", "soft_tissue", ["adult_sts", "child_nrsts"], None),
        ("synovial_sarcoma", "SYNS", "soft_tissue", ["adult_sts", "child_nrsts"], None),
        ("alveolar_soft_part_sarcoma", "ASPS", "soft_tissue", ["adult_sts", "child_nrsts"], None),
        ("tenosynovial_giant_cell_tumor", None, "soft_tissue", ["child_nrsts"], None),
        ("chordoma", "CHDM", "bone", ["child_nrsts"], "Chordoma"),
        ("rhabdomyosarcoma", "RMS", "soft_tissue", [], "Rhabdomyosarcoma"),
        ("alveolar_rhabdomyosarcoma", "ARMS", "soft_tissue", [], "Rhabdomyosarcoma"),
        ("ewing_sarcoma", "ES", "bone", [], "Ewing sarcoma"),
        ("osteosarcoma", "OS", "bone", [], "Osteosarcoma"),
        ("chondrosarcoma", "CHS", "bone", [], "Chondrosarcoma"),
        ("gist", "GIST", "soft_tissue", [], "Gastrointestinal stromal tumors"),
        ("kaposi_sarcoma", "KS", "soft_tissue", [], "Kaposi sarcoma"),
        ("desmoid_tumor", "DES", "soft_tissue", [], "Desmoid tumor"),
        ("soft_tissue_sarcoma", None, "soft_tissue", ["adult_sts", "child_nrsts"], None),
    ],
)
def test_codes_and_coverage(v, ident, oncotree, category, summaries, separate):
    d = v.diagnosis(ident)
    assert (d.oncotree, d.category, d.summaries, d.separate_summary) == (
        oncotree,
        category,
        summaries,
        separate,
    )


def test_null_oncotree_codes_say_why(v):
    """A missing code is either a grouping node or explicitly marked unverified, never silent."""
    groupings = {
        "solid_tumor",
        "hematologic_malignancy",
        "cancer",
        "soft_tissue_tumor",
        "bone_tumor",
        "carcinoma",
        "cns_tumor",
        "leukemia",
        "precancerous_condition",
    }
    silent = [
        d.id
        for d in v.diagnoses.values()
        if d.oncotree is None and not d.oncotree_note and d.id not in groupings
    ]
    assert silent == []


def test_unknown_diagnosis_id(v):
    with pytest.raises(VocabError) as err:
        v.diagnosis("leiomyosarcom")
    assert err.value.suggestions[0] == "Leiomyosarcoma"


# ----------------------------------------------------------------------------------------- drugs

DRUG_SPELLINGS = [
    ("doxorubicin", "doxorubicin", "exact"),
    ("Adriamycin", "doxorubicin", "exact"),
    ("ADRIAMYCIN®", "doxorubicin", "exact"),
    ("doxorubicin hydrochloride", "doxorubicin", "exact"),
    ("Doxil", "doxorubicin", "exact"),
    ("Caelyx", "doxorubicin", "exact"),
    ("liposomal doxorubicin", "doxorubicin", "exact"),
    ("pegylated liposomal doxorubicin", "doxorubicin", "exact"),
    ("Ifex", "ifosfamide", "exact"),
    ("ifosphamide", "ifosfamide", "exact"),
    ("epirubicin", "epirubicin", "exact"),
    ("Gemzar", "gemcitabine", "exact"),
    ("Taxol", "paclitaxel", "exact"),
    ("Abraxane", "paclitaxel", "exact"),
    ("nab-paclitaxel", "paclitaxel", "exact"),
    ("Taxotere", "docetaxel", "exact"),
    ("Votrient", "pazopanib", "exact"),
    ("GW786034", "pazopanib", "exact"),
    ("Sutent", "sunitinib", "exact"),
    ("sunitinib malate", "sunitinib", "exact"),
    ("SU11248", "sunitinib", "exact"),
    ("AZD2171", "cediranib", "exact"),
    ("Yondelis", "trabectedin", "exact"),
    ("ET-743", "trabectedin", "exact"),
    ("ET743", "trabectedin", "exact"),
    ("Halaven", "eribulin", "exact"),
    ("E7389", "eribulin", "exact"),
    ("Gleevec", "imatinib", "exact"),
    ("Glivec", "imatinib", "exact"),
    ("imatinib mesylate", "imatinib", "exact"),
    ("STI571", "imatinib", "exact"),
    ("STI-571", "imatinib", "exact"),
    ("Xalkori", "crizotinib", "exact"),
    ("PF-02341066", "crizotinib", "exact"),
    ("Rapamune", "sirolimus", "exact"),
    ("rapamycin", "sirolimus", "exact"),
    ("Fyarro", "sirolimus", "exact"),
    ("nab-sirolimus", "sirolimus", "exact"),
    ("ABI-009", "sirolimus", "exact"),
    ("Keytruda", "pembrolizumab", "exact"),
    ("MK-3475", "pembrolizumab", "exact"),
    ("Opdivo", "nivolumab", "exact"),
    ("BMS-936558", "nivolumab", "exact"),
    ("MDX-1106", "nivolumab", "exact"),
    ("Yervoy", "ipilimumab", "exact"),
    ("MDX-010", "ipilimumab", "exact"),
    ("Tecentriq", "atezolizumab", "exact"),
    ("MPDL3280A", "atezolizumab", "exact"),
    ("Tazverik", "tazemetostat", "exact"),
    ("EPZ-6438", "tazemetostat", "exact"),
    ("Stivarga", "regorafenib", "exact"),
    ("BAY 73-4506", "regorafenib", "exact"),
    ("Nexavar", "sorafenib", "exact"),
    ("BAY 43-9006", "sorafenib", "exact"),
    ("Temodar", "temozolomide", "exact"),
    ("DTIC", "dacarbazine", "exact"),
    ("actinomycin D", "dactinomycin", "exact"),
    ("Oncovin", "vincristine", "exact"),
    ("Cytoxan", "cyclophosphamide", "exact"),
    ("mitomycin C", "mitomycin", "exact"),
    ("CDDP", "cisplatin", "exact"),
    ("Mesnex", "mesna", "exact"),
    ("Turalio", "pexidartinib", "exact"),
    ("Ogsiveo", "nirogacestat", "exact"),
    ("Qinlock", "ripretinib", "exact"),
    ("VP-16", "etoposide", "exact"),
    ("5-FU", "fluorouracil", "exact"),
    ("doxorubicin 75 mg/m2 every 3 weeks", "doxorubicin", "mention"),
    ("Adriamycin (doxorubicin)", "doxorubicin", "mention"),
    # misspellings
    ("doxorubicine", "doxorubicin", "exact"),
    ("doxorubicn", "doxorubicin", "fuzzy"),
    ("sunitnib", "sunitinib", "fuzzy"),
    ("sorafinib", "sorafenib", "fuzzy"),
    ("pazopinib", "pazopanib", "fuzzy"),
    ("imatinb", "imatinib", "fuzzy"),
    ("Gleevac", "imatinib", "fuzzy"),
    ("gemcitabne hydrochloride", "gemcitabine", "fuzzy"),
    ("trabectidin", "trabectedin", "fuzzy"),
]


@pytest.mark.parametrize(("text", "expected", "method"), DRUG_SPELLINGS)
def test_resolve_drug_spellings(v, text, expected, method):
    m = v.resolve_drug(text)
    assert m is not None
    assert (m.entry.id, m.method) == (expected, method)
    if method == "fuzzy":
        assert DRUG_FUZZY_THRESHOLD <= m.score < 100


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sunitinib", "sunitinib"),
        ("sorafenib", "sorafenib"),
        ("regorafenib", "regorafenib"),
        ("epirubicin", "epirubicin"),
        ("idarubicin", "idarubicin"),
        ("daunorubicin", "daunorubicin"),
        ("vincristine", "vincristine"),
        ("vinblastine", "vinblastine"),
        ("everolimus", "everolimus"),
        ("temsirolimus", "temsirolimus"),
        ("cisplatin", "cisplatin"),
        ("carboplatin", "carboplatin"),
        ("regorafinib", "regorafenib"),
        ("sunitinb", "sunitinib"),
    ],
)
def test_close_drugs_do_not_swap(v, text, expected):
    assert v.resolve_drug(text).entry.id == expected


# every spelling of the drugs added for the vocabulary gaps (haematology, thoracic, breast)
NEW_DRUG_SPELLINGS = [
    ("Asparaginase (E. coli)", "asparaginase"),
    ("Elspar", "asparaginase"),
    ("L-asparaginase", "asparaginase"),
    ("E. coli asparaginase", "asparaginase"),
    ("E. coli L-asparaginase", "asparaginase"),
    ("native E. coli asparaginase", "asparaginase"),
    ("native asparaginase", "asparaginase"),
    ("Pegaspargase", "pegaspargase"),
    ("Oncaspar", "pegaspargase"),
    ("PEG-asparaginase", "pegaspargase"),
    ("pegylated asparaginase", "pegaspargase"),
    ("pegylated L-asparaginase", "pegaspargase"),
    ("PEG-L-asparaginase", "pegaspargase"),
    ("PEG-ASP", "pegaspargase"),
    ("Calaspargase pegol", "calaspargase_pegol"),
    ("Asparlas", "calaspargase_pegol"),
    ("calaspargase", "calaspargase_pegol"),
    ("calaspargase pegol-mknl", "calaspargase_pegol"),
    ("Asparaginase Erwinia chrysanthemi", "asparaginase_erwinia"),
    ("Erwinaze", "asparaginase_erwinia"),
    ("Rylaze", "asparaginase_erwinia"),
    ("crisantaspase", "asparaginase_erwinia"),
    ("Erwinia asparaginase", "asparaginase_erwinia"),
    ("Erwinia chrysanthemi asparaginase", "asparaginase_erwinia"),
    ("Erwinia L-asparaginase", "asparaginase_erwinia"),
    ("asparaginase Erwinia chrysanthemi recombinant", "asparaginase_erwinia"),
    ("recombinant Erwinia asparaginase", "asparaginase_erwinia"),
    ("Azacitidine", "azacitidine"),
    ("Vidaza", "azacitidine"),
    ("Onureg", "azacitidine"),
    ("5-azacitidine", "azacitidine"),
    ("5-azacytidine", "azacitidine"),
    ("azacytidine", "azacitidine"),
    ("oral azacitidine", "azacitidine"),
    ("CC-486", "azacitidine"),
    ("Decitabine", "decitabine"),
    ("Dacogen", "decitabine"),
    ("Inqovi", "decitabine"),
    ("5-aza-2'-deoxycytidine", "decitabine"),
    ("5-aza-2-deoxycytidine", "decitabine"),
    ("decitabine and cedazuridine", "decitabine"),
    ("oral decitabine", "decitabine"),
    ("Hydroxyurea", "hydroxyurea"),
    ("Hydrea", "hydroxyurea"),
    ("Droxia", "hydroxyurea"),
    ("hydroxycarbamide", "hydroxyurea"),
    ("Venetoclax", "venetoclax"),
    ("Venclexta", "venetoclax"),
    ("Venclyxto", "venetoclax"),
    ("ABT-199", "venetoclax"),
    ("GDC-0199", "venetoclax"),
    ("Ibrutinib", "ibrutinib"),
    ("Imbruvica", "ibrutinib"),
    ("PCI-32765", "ibrutinib"),
    ("Acalabrutinib", "acalabrutinib"),
    ("Calquence", "acalabrutinib"),
    ("ACP-196", "acalabrutinib"),
    ("Zanubrutinib", "zanubrutinib"),
    ("Brukinsa", "zanubrutinib"),
    ("BGB-3111", "zanubrutinib"),
    ("Midostaurin", "midostaurin"),
    ("Rydapt", "midostaurin"),
    ("PKC412", "midostaurin"),
    ("Gilteritinib", "gilteritinib"),
    ("Xospata", "gilteritinib"),
    ("ASP2215", "gilteritinib"),
    ("Quizartinib", "quizartinib"),
    ("Vanflyta", "quizartinib"),
    ("AC220", "quizartinib"),
    ("Asciminib", "asciminib"),
    ("Scemblix", "asciminib"),
    ("ABL001", "asciminib"),
    ("Arsenic trioxide", "arsenic_trioxide"),
    ("Trisenox", "arsenic_trioxide"),
    ("ATO", "arsenic_trioxide"),
    ("As2O3", "arsenic_trioxide"),
    ("Tretinoin", "tretinoin"),
    ("Vesanoid", "tretinoin"),
    ("all-trans retinoic acid", "tretinoin"),
    ("all-trans-retinoic acid", "tretinoin"),
    ("ATRA", "tretinoin"),
    ("Obinutuzumab", "obinutuzumab"),
    ("Gazyva", "obinutuzumab"),
    ("Gazyvaro", "obinutuzumab"),
    ("GA101", "obinutuzumab"),
    ("RO5072759", "obinutuzumab"),
    ("Daratumumab", "daratumumab"),
    ("Darzalex", "daratumumab"),
    ("Darzalex Faspro", "daratumumab"),
    ("daratumumab and hyaluronidase", "daratumumab"),
    ("daratumumab-hyaluronidase", "daratumumab"),
    ("subcutaneous daratumumab", "daratumumab"),
    ("Isatuximab", "isatuximab"),
    ("Sarclisa", "isatuximab"),
    ("isatuximab-irfc", "isatuximab"),
    ("Bortezomib", "bortezomib"),
    ("Velcade", "bortezomib"),
    ("PS-341", "bortezomib"),
    ("Carfilzomib", "carfilzomib"),
    ("Kyprolis", "carfilzomib"),
    ("PR-171", "carfilzomib"),
    ("Ixazomib", "ixazomib"),
    ("Ninlaro", "ixazomib"),
    ("MLN9708", "ixazomib"),
    ("Thalidomide", "thalidomide"),
    ("Thalomid", "thalidomide"),
    ("Lenalidomide", "lenalidomide"),
    ("Revlimid", "lenalidomide"),
    ("CC-5013", "lenalidomide"),
    ("Pomalidomide", "pomalidomide"),
    ("Pomalyst", "pomalidomide"),
    ("Imnovid", "pomalidomide"),
    ("CC-4047", "pomalidomide"),
    ("Blinatumomab", "blinatumomab"),
    ("Blincyto", "blinatumomab"),
    ("MT103", "blinatumomab"),
    ("AMG 103", "blinatumomab"),
    ("Tarlatamab", "tarlatamab"),
    ("Imdelltra", "tarlatamab"),
    ("tarlatamab-dlle", "tarlatamab"),
    ("AMG 757", "tarlatamab"),
    ("Inotuzumab ozogamicin", "inotuzumab_ozogamicin"),
    ("Besponsa", "inotuzumab_ozogamicin"),
    ("inotuzumab", "inotuzumab_ozogamicin"),
    ("InO", "inotuzumab_ozogamicin"),
    ("CMC-544", "inotuzumab_ozogamicin"),
    ("Gemtuzumab ozogamicin", "gemtuzumab_ozogamicin"),
    ("Mylotarg", "gemtuzumab_ozogamicin"),
    ("gemtuzumab", "gemtuzumab_ozogamicin"),
    ("GO", "gemtuzumab_ozogamicin"),
    ("CMA-676", "gemtuzumab_ozogamicin"),
    ("Dexamethasone", "dexamethasone"),
    ("Decadron", "dexamethasone"),
    ("dexamethasone sodium phosphate", "dexamethasone"),
    ("Prednisone", "prednisone"),
    ("Deltasone", "prednisone"),
    ("Prednisolone", "prednisolone"),
    ("Methylprednisolone", "methylprednisolone"),
    ("Medrol", "methylprednisolone"),
    ("Solu-Medrol", "methylprednisolone"),
    ("Tisagenlecleucel", "tisagenlecleucel"),
    ("Kymriah", "tisagenlecleucel"),
    ("tisa-cel", "tisagenlecleucel"),
    ("CTL019", "tisagenlecleucel"),
    ("Axicabtagene ciloleucel", "axicabtagene_ciloleucel"),
    ("Yescarta", "axicabtagene_ciloleucel"),
    ("axi-cel", "axicabtagene_ciloleucel"),
    ("axicabtagene", "axicabtagene_ciloleucel"),
    ("KTE-C19", "axicabtagene_ciloleucel"),
    ("Brexucabtagene autoleucel", "brexucabtagene_autoleucel"),
    ("Tecartus", "brexucabtagene_autoleucel"),
    ("brexu-cel", "brexucabtagene_autoleucel"),
    ("brexucabtagene", "brexucabtagene_autoleucel"),
    ("KTE-X19", "brexucabtagene_autoleucel"),
    ("Lisocabtagene maraleucel", "lisocabtagene_maraleucel"),
    ("Breyanzi", "lisocabtagene_maraleucel"),
    ("liso-cel", "lisocabtagene_maraleucel"),
    ("lisocabtagene", "lisocabtagene_maraleucel"),
    ("JCAR017", "lisocabtagene_maraleucel"),
    ("Obecabtagene autoleucel", "obecabtagene_autoleucel"),
    ("Aucatzyl", "obecabtagene_autoleucel"),
    ("obe-cel", "obecabtagene_autoleucel"),
    ("obecabtagene", "obecabtagene_autoleucel"),
    ("Idecabtagene vicleucel", "idecabtagene_vicleucel"),
    ("Abecma", "idecabtagene_vicleucel"),
    ("ide-cel", "idecabtagene_vicleucel"),
    ("idecabtagene", "idecabtagene_vicleucel"),
    ("bb2121", "idecabtagene_vicleucel"),
    ("Ciltacabtagene autoleucel", "ciltacabtagene_autoleucel"),
    ("Carvykti", "ciltacabtagene_autoleucel"),
    ("cilta-cel", "ciltacabtagene_autoleucel"),
    ("ciltacabtagene", "ciltacabtagene_autoleucel"),
    ("JNJ-68284528", "ciltacabtagene_autoleucel"),
    ("LCAR-B38M", "ciltacabtagene_autoleucel"),
    ("Dacomitinib", "dacomitinib"),
    ("Vizimpro", "dacomitinib"),
    ("PF-00299804", "dacomitinib"),
    ("Icotinib", "icotinib"),
    ("Conmana", "icotinib"),
    ("icotinib hydrochloride", "icotinib"),
    ("Lazertinib", "lazertinib"),
    ("Lazcluze", "lazertinib"),
    ("YH25448", "lazertinib"),
    ("JNJ-73841937", "lazertinib"),
    ("Mobocertinib", "mobocertinib"),
    ("Exkivity", "mobocertinib"),
    ("TAK-788", "mobocertinib"),
    ("AP32788", "mobocertinib"),
    ("Poziotinib", "poziotinib"),
    ("HM781-36B", "poziotinib"),
    ("Amivantamab", "amivantamab"),
    ("Rybrevant", "amivantamab"),
    ("amivantamab-vmjw", "amivantamab"),
    ("JNJ-61186372", "amivantamab"),
    ("Capmatinib", "capmatinib"),
    ("Tabrecta", "capmatinib"),
    ("INC280", "capmatinib"),
    ("Tepotinib", "tepotinib"),
    ("Tepmetko", "tepotinib"),
    ("MSC2156119J", "tepotinib"),
    ("Selpercatinib", "selpercatinib"),
    ("Retevmo", "selpercatinib"),
    ("LOXO-292", "selpercatinib"),
    ("Pralsetinib", "pralsetinib"),
    ("Gavreto", "pralsetinib"),
    ("BLU-667", "pralsetinib"),
    ("Sotorasib", "sotorasib"),
    ("Lumakras", "sotorasib"),
    ("Lumykras", "sotorasib"),
    ("AMG 510", "sotorasib"),
    ("Adagrasib", "adagrasib"),
    ("Krazati", "adagrasib"),
    ("MRTX849", "adagrasib"),
    ("Sacituzumab govitecan", "sacituzumab_govitecan"),
    ("Trodelvy", "sacituzumab_govitecan"),
    ("sacituzumab govitecan-hziy", "sacituzumab_govitecan"),
    ("sacituzumab-govitecan", "sacituzumab_govitecan"),
    ("IMMU-132", "sacituzumab_govitecan"),
    ("Trastuzumab deruxtecan", "trastuzumab_deruxtecan"),
    ("Enhertu", "trastuzumab_deruxtecan"),
    ("fam-trastuzumab deruxtecan-nxki", "trastuzumab_deruxtecan"),
    ("T-DXd", "trastuzumab_deruxtecan"),
    ("DS-8201", "trastuzumab_deruxtecan"),
    ("DS-8201a", "trastuzumab_deruxtecan"),
    ("Trastuzumab emtansine", "trastuzumab_emtansine"),
    ("Kadcyla", "trastuzumab_emtansine"),
    ("ado-trastuzumab emtansine", "trastuzumab_emtansine"),
    ("T-DM1", "trastuzumab_emtansine"),
    ("Letrozole", "letrozole"),
    ("Femara", "letrozole"),
    ("Anastrozole", "anastrozole"),
    ("Arimidex", "anastrozole"),
    ("Exemestane", "exemestane"),
    ("Aromasin", "exemestane"),
    ("Tamoxifen", "tamoxifen"),
    ("Nolvadex", "tamoxifen"),
    ("tamoxifen citrate", "tamoxifen"),
    ("Fulvestrant", "fulvestrant"),
    ("Faslodex", "fulvestrant"),
]


@pytest.mark.parametrize(("text", "expected"), NEW_DRUG_SPELLINGS)
def test_new_drug_spellings_resolve_exactly(v, text, expected):
    m = v.resolve_drug(text)
    assert m is not None
    assert (m.entry.id, m.method) == (expected, "exact")


def test_decitabine_is_not_gemcitabine(v):
    # "decitabine" used to fuzzy-resolve to gemcitabine
    m = v.resolve_drug("decitabine")
    assert (m.entry.id, m.method, m.score) == ("decitabine", "exact", 100.0)
    assert v.resolve_drug("gemcitabine").entry.id == "gemcitabine"


@pytest.mark.parametrize(
    "text", ["aspirin", "headache", "doxorubicin + ifosfamide", "", "ADRX", "chemotherapy"]
)
def test_unresolved_drug_is_none(v, text):
    assert v.resolve_drug(text) is None


def test_strict_drug_errors_list_closest(v):
    with pytest.raises(VocabError) as err:
        v.resolve_drug("aspirin", strict=True)
    assert err.value.kind == "drug"
    assert len(err.value.suggestions) == 3
    assert str(err.value).startswith("drug 'aspirin' not recognised; closest: ")
    with pytest.raises(VocabError) as err:
        v.resolve_drug("doxorubicin + ifosfamide", strict=True)
    assert err.value.suggestions == ["Doxorubicin", "Ifosfamide"]


def test_drug_suggestions(v):
    assert v.drug_suggestions("doxorub")[0] == "Doxorubicin"


# --------------------------------------------------------------------------------------- classes


@pytest.mark.parametrize(
    ("class_id", "must_include"),
    [
        ("anthracycline", {"doxorubicin", "epirubicin", "aldoxorubicin"}),
        ("alkylating_agent", {"ifosfamide", "cyclophosphamide", "dacarbazine", "temozolomide"}),
        (
            "vegfr_tki",
            {"pazopanib", "sunitinib", "sorafenib", "regorafenib", "cediranib", "axitinib"}
            | {"cabozantinib", "lenvatinib", "anlotinib"},
        ),
        ("mtor_inhibitor", {"sirolimus", "everolimus", "temsirolimus"}),
        ("alk_inhibitor", {"crizotinib", "ceritinib", "alectinib", "lorlatinib"}),
        (
            "kit_pdgfr_inhibitor",
            {"imatinib", "sunitinib", "regorafenib", "ripretinib", "avapritinib"},
        ),
        ("taxane", {"paclitaxel", "docetaxel"}),
        ("antimetabolite", {"gemcitabine", "methotrexate"}),
        ("platinum", {"cisplatin", "carboplatin"}),
        ("vinca_alkaloid", {"vincristine", "vinorelbine"}),
        ("topoisomerase_inhibitor", {"irinotecan", "topotecan", "etoposide"}),
        ("cdk4_6_inhibitor", {"palbociclib", "abemaciclib"}),
        ("ezh2_inhibitor", {"tazemetostat"}),
        ("pd1_inhibitor", {"pembrolizumab", "nivolumab", "cemiplimab"}),
        ("pdl1_inhibitor", {"atezolizumab", "durvalumab", "avelumab"}),
        ("ctla4_inhibitor", {"ipilimumab", "tremelimumab"}),
        (
            "immune_checkpoint_inhibitor",
            {"pembrolizumab", "nivolumab", "atezolizumab", "durvalumab", "ipilimumab"},
        ),
        ("tyrosine_kinase_inhibitor", {"pazopanib", "imatinib", "crizotinib", "pexidartinib"}),
        ("chemotherapy", {"doxorubicin", "ifosfamide", "gemcitabine", "eribulin", "trabectedin"}),
        (
            "bcr_abl_inhibitor",
            {"imatinib", "dasatinib", "nilotinib", "bosutinib", "ponatinib", "asciminib"},
        ),
        ("btk_inhibitor", {"ibrutinib", "acalabrutinib", "zanubrutinib"}),
        ("bcl2_inhibitor", {"venetoclax"}),
        ("hypomethylating_agent", {"azacitidine", "decitabine"}),
        ("flt3_inhibitor", {"midostaurin", "gilteritinib", "quizartinib"}),
        ("cd20_antibody", {"rituximab", "obinutuzumab"}),
        ("cd38_antibody", {"daratumumab", "isatuximab"}),
        ("proteasome_inhibitor", {"bortezomib", "carfilzomib", "ixazomib"}),
        ("immunomodulatory_drug", {"thalidomide", "lenalidomide", "pomalidomide"}),
        (
            "asparaginase_preparation",
            {"asparaginase", "pegaspargase", "calaspargase_pegol", "asparaginase_erwinia"},
        ),
        ("t_cell_engager", {"blinatumomab", "tarlatamab"}),
        (
            "engineered_t_cell_therapy",
            {"tisagenlecleucel", "axicabtagene_ciloleucel", "brexucabtagene_autoleucel"}
            | {"lisocabtagene_maraleucel", "idecabtagene_vicleucel", "ciltacabtagene_autoleucel"},
        ),
        (
            "antibody_drug_conjugate",
            {"inotuzumab_ozogamicin", "gemtuzumab_ozogamicin", "sacituzumab_govitecan"}
            | {"trastuzumab_deruxtecan", "trastuzumab_emtansine"},
        ),
        ("her2_inhibitor", {"trastuzumab", "trastuzumab_deruxtecan"}),
        (
            "egfr_inhibitor",
            {"osimertinib", "dacomitinib", "icotinib", "lazertinib", "mobocertinib"}
            | {"poziotinib", "amivantamab"},
        ),
        ("met_inhibitor", {"capmatinib", "tepotinib", "amivantamab"}),
        ("ret_inhibitor", {"selpercatinib", "pralsetinib"}),
        ("kras_inhibitor", {"sotorasib", "adagrasib"}),
        ("aromatase_inhibitor", {"letrozole", "anastrozole", "exemestane"}),
        ("endocrine_therapy", {"letrozole", "tamoxifen", "fulvestrant"}),
        ("corticosteroid", {"dexamethasone", "prednisone", "prednisolone", "methylprednisolone"}),
        ("antimetabolite", {"azacitidine", "decitabine", "hydroxyurea"}),
    ],
)
def test_drugs_in_class_include_every_member(v, class_id, must_include):
    assert must_include <= v.drugs_in_class(class_id)


@pytest.mark.parametrize(
    ("class_id", "must_exclude"),
    [
        ("anthracycline", {"ifosfamide", "mesna", "trabectedin"}),
        ("vegfr_tki", {"imatinib", "bevacizumab", "crizotinib"}),
        ("chemotherapy", {"mesna", "pazopanib", "pembrolizumab"}),
        ("immune_checkpoint_inhibitor", {"imatinib", "afamitresgene_autoleucel"}),
        ("pd1_inhibitor", {"atezolizumab", "ipilimumab"}),
        ("tyrosine_kinase_inhibitor", {"amivantamab", "blinatumomab", "venetoclax"}),
        (
            "chemotherapy",
            {"venetoclax", "dexamethasone", "trastuzumab_deruxtecan", "arsenic_trioxide"},
        ),
        ("immunotherapy", {"lenalidomide", "daratumumab"}),
    ],
)
def test_drugs_in_class_exclude_non_members(v, class_id, must_exclude):
    assert not (must_exclude & v.drugs_in_class(class_id))


def test_class_parents_are_expanded_on_the_drug(v):
    assert v.drug("pembrolizumab").classes == [
        "pd1_inhibitor",
        "pd1_pdl1_inhibitor",
        "immune_checkpoint_inhibitor",
        "immunotherapy",
    ]
    assert v.drug("pazopanib").declared_classes == ["vegfr_tki"]
    assert {"tyrosine_kinase_inhibitor", "angiogenesis_inhibitor", "targeted_therapy"} <= set(
        v.drug("pazopanib").classes
    )


def test_every_subclass_member_is_in_its_parents(v):
    for cid in v.drug_classes:
        for anc in v.class_ancestors(cid):
            assert v.drugs_in_class(cid) <= v.drugs_in_class(anc), (cid, anc)


def test_unknown_class_raises(v):
    with pytest.raises(VocabError) as err:
        v.drugs_in_class("anthracyclines")
    assert err.value.suggestions[0] == "Anthracycline"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("anthracyclines", "anthracycline"),
        ("Anthracycline-based", "anthracycline"),
        ("VEGFR tyrosine kinase inhibitor", "vegfr_tki"),
        ("VEGFR TKI", "vegfr_tki"),
        ("VEGF receptor inhibitors", "vegfr_tki"),
        ("anti-angiogenic TKI", "vegfr_tki"),
        ("PD-1 inhibitor", "pd1_inhibitor"),
        ("anti-PD-1", "pd1_inhibitor"),
        ("anti-PD-L1", "pdl1_inhibitor"),
        ("checkpoint inhibitors", "immune_checkpoint_inhibitor"),
        ("mTOR inhibitors", "mtor_inhibitor"),
        ("taxanes", "taxane"),
        ("alkylating agents", "alkylating_agent"),
        ("prior anthracycline exposure", "anthracycline"),
        ("doxorubicin", None),
    ],
)
def test_resolve_drug_class(v, text, expected):
    assert v.resolve_drug_class(text) == expected


# ---------------------------------------------------------------------- free text (real sentences)
# Sentences below are eligibility criteria of real ClinicalTrials.gov records (public), quoted
# with their NCT id.

FIND_DIAGNOSES = [
    (
        "Patients must have histologically confirmed metastatic alveolar soft part sarcoma that",  # NCT01391962
        [("alveolar_soft_part_sarcoma", "alveolar soft part sarcoma")],
    ),
    (
        "Patients with newly diagnosed, unresectable, metastatic, and measurable ASPS who show",  # NCT01391962
        [("alveolar_soft_part_sarcoma", "ASPS")],
    ),
    (
        "- Histological diagnosis of primary or recurrent dermatofibrosarcoma protuberans",  # NCT00122473
        [("dermatofibrosarcoma_protuberans", "dermatofibrosarcoma protuberans")],
    ),
    (
        "- high grade undifferentiated pleomorphic sarcomas (HGUPS/MFH),",  # NCT02636725
        [
            (
                "undifferentiated_pleomorphic_sarcoma",
                "high grade undifferentiated pleomorphic sarcomas",
            ),
            ("undifferentiated_pleomorphic_sarcoma", "HGUPS"),
            ("undifferentiated_pleomorphic_sarcoma", "MFH"),
        ],
    ),
    (
        "- Chondrosarcoma (excluding extraskeletal myxoid chondrosarcoma)",  # NCT01189253
        [
            ("chondrosarcoma", "Chondrosarcoma"),
            ("extraskeletal_myxoid_chondrosarcoma", "extraskeletal myxoid chondrosarcoma"),
        ],
    ),
    (
        "- Ewing tumors/primitive neuroectodermal tumor (PNET)",  # NCT01189253
        [("ewing_sarcoma", "Ewing tumors"), ("ewing_sarcoma", "primitive neuroectodermal tumor")],
    ),
    (
        "- Gastrointestinal stromal tumors (GIST)",  # NCT01189253
        [("gist", "Gastrointestinal stromal tumors"), ("gist", "GIST")],
    ),
    (
        "- solitary fibrous tumor/hemangiopericytoma.",  # NCT02636725
        [("solitary_fibrous_tumor", "solitary fibrous tumor/hemangiopericytoma")],
    ),
    (
        "Primary tumors of bone including Ewing's sarcoma, osteosarcoma, and dedifferentiated",  # NCT02636725
        [("ewing_sarcoma", "Ewing's sarcoma"), ("osteosarcoma", "osteosarcoma")],
    ),
    (
        "Patients must have a histologically confirmed diagnosis of malignant PEComa that is",  # NCT02494570
        [("pecoma", "malignant PEComa")],
    ),
    (
        "active second malignancy other than non-melanoma skin cancers, carcinoma in situ of",  # NCT02494570
        [
            ("cancer", "malignancy"),
            ("skin_carcinoma", "non-melanoma skin cancers"),
            ("carcinoma", "carcinoma"),
        ],
    ),
    # ambiguous abbreviations are not searched in running text; lower-case words are not abbreviations
    ("Median OS was 12 months; ALT and AST < 3 x ULN; ES-SCLC excluded", [("sclc", "ES-SCLC")]),
    ("the gist of the study; lms access; Non-anthracycline therapy", []),
    # chordoma subtypes; colon / rectum adenocarcinoma written out; acral melanoma in a list
    (
        "Dedifferentiated chordomas, chondrosarcoma",
        [
            ("dedifferentiated_chordoma", "Dedifferentiated chordomas"),
            ("chondrosarcoma", "chondrosarcoma"),
        ],
    ),
    (
        "diagnosis of adenocarcinoma of the breast",
        [("breast_cancer", "adenocarcinoma of the breast")],
    ),
    (
        "Histologically confirmed adenocarcinoma of the colon or rectum",
        [("colorectal_adenocarcinoma", "adenocarcinoma of the colon or rectum")],
    ),
    (
        "Histologically confirmed metastatic adenocarcinoma originating from the colon or the rectum",
        [("colorectal_adenocarcinoma", "adenocarcinoma originating from the colon or the rectum")],
    ),
    # "MM" in capitals is myeloma, except as a unit after a number
    (
        "Patients previously diagnosed with MM who have received 1 to 3 prior lines",
        [("multiple_myeloma", "MM")],
    ),
    ("a lesion of 10 MM or more", []),
    (
        "Histologically-confirmed squamous cell carcinoma of the esophagus",
        [("esophageal_squamous_cell_carcinoma", "squamous cell carcinoma of the esophagus")],
    ),
    ("radiologically-verified DIPG", [("dipg", "DIPG")]),
    # "non-squamous NSCLC": the negated "squamous NSCLC" does not hide the NSCLC
    ("diagnosis of non-Squamous NSCLC Stage IIIB or IV", [("nsclc", "NSCLC")]),
    # "WT" after a gene is wild-type, not Wilms tumour
    ("metastatic NSCLC, EGFR WT, ALK negative", [("nsclc", "NSCLC")]),
    (
        "Documented adenocarcinoma of the pancreas",
        [("pancreatic_cancer", "adenocarcinoma of the pancreas")],
    ),
    (
        "recurrent squamous cell carcinoma of the cervix",
        [("cervical_cancer", "squamous cell carcinoma of the cervix")],
    ),
    # a mixed small cell / non-small cell lung cancer is one diagnosis (combined SCLC)
    (
        "Mixed small cell and non small-cell lung cancer history.",
        [("combined_sclc", "Mixed small cell and non small-cell lung cancer")],
    ),
    # an abbreviation inside a molecule's name ("anti-CLL-1": the CLEC12A antigen)
    ("Previous exposure to any anti-CLL-1 monoclonal antibody", []),
    (
        "CLL-1 positive AML; relapsed CLL",
        [("acute_myeloid_leukemia", "AML"), ("chronic_lymphocytic_leukemia", "CLL")],
    ),
    (
        "Soft-tissue sarcomas of the extremity, GISTs and LMS",
        [
            ("soft_tissue_sarcoma", "Soft-tissue sarcomas"),
            ("gist", "GISTs"),
            ("leiomyosarcoma", "LMS"),
        ],
    ),
]


@pytest.mark.parametrize(("text", "expected"), FIND_DIAGNOSES)
def test_find_diagnoses_in_real_criteria(v, text, expected):
    assert v.find_diagnoses(text) == expected


FIND_DRUGS = [
    (
        "inhibitor (e.g., cediranib, sunitinib, pazopanib, sorafenib); however, prior treatment",  # NCT01391962
        [
            ("cediranib", "cediranib"),
            ("sunitinib", "sunitinib"),
            ("pazopanib", "pazopanib"),
            ("sorafenib", "sorafenib"),
        ],
    ),
    ("with bevacizumab is allowed.", [("bevacizumab", "bevacizumab")]),  # NCT01391962
    (
        "mitomycin C. Prior radiation should have been completed",
        [("mitomycin", "mitomycin C")],
    ),  # NCT01391962
    (
        "2. Biomolecular or immunohistochemical evidence of Imatinib mesylate target (PDGFRβ",  # NCT00150072
        [("imatinib", "Imatinib mesylate")],
    ),
    ("the first dose of ABI-009. Additionally, use of", [("sirolimus", "ABI-009")]),  # NCT02494570
    (
        "after failure of anthracyclines and/or ifosfamide or patients unsuited to receive",  # NCT01299506
        [("ifosfamide", "ifosfamide")],
    ),
    (
        "Adriamycin (doxorubicin) 75 mg/m2 with Ifex; then 5-FU, gemcitabine/docetaxel",
        [
            ("doxorubicin", "Adriamycin"),
            ("doxorubicin", "doxorubicin"),
            ("ifosfamide", "Ifex"),
            ("fluorouracil", "5-FU"),
            ("gemcitabine", "gemcitabine"),
            ("docetaxel", "docetaxel"),
        ],
    ),
    ("ADR-related cardiotoxicity; CTX scan; the GEM study", []),
]


@pytest.mark.parametrize(("text", "expected"), FIND_DRUGS)
def test_find_drugs_in_real_criteria(v, text, expected):
    assert v.find_drugs(text) == expected


FIND_CLASSES = [
    ("- No prior anthracycline", [("anthracycline", "anthracycline")]),  # NCT01189253
    ("- Non-anthracycline therapy for nonmetastatic disease is acceptable", []),  # NCT01189253
    (
        "after failure of anthracyclines and/or ifosfamide or patients unsuited to receive",  # NCT01299506
        [("anthracycline", "anthracyclines")],
    ),
    (
        "4. Patients must not have been previously treated with an mTOR inhibitor.",  # NCT02494570
        [("mtor_inhibitor", "mTOR inhibitor")],
    ),
    (
        "3. The following histologies may be enrolled ONLY if refractory to anthracycline-based",  # NCT02636725
        [("anthracycline", "anthracycline-based")],
    ),
    (
        "1. Prior therapy with axitinib. Patients are permitted to have received prior tyrosine kinase inhibitor (TKI) therapy",  # NCT02636725
        [
            ("tyrosine_kinase_inhibitor", "tyrosine kinase inhibitor"),
            ("tyrosine_kinase_inhibitor", "TKI"),
        ],
    ),
    ("prior treatment with an anthracycline", [("anthracycline", "anthracycline")]),
    (
        "no prior VEGFR tyrosine kinase inhibitor",
        [("vegfr_tki", "VEGFR tyrosine kinase inhibitor")],
    ),
    ("No prior TKI targeting VEGFR", [("vegfr_tki", "TKI targeting VEGFR")]),
    (
        "prior vascular endothelial growth factor receptor (VEGFR) inhibitors",
        [("vegfr_tki", "vascular endothelial growth factor receptor (VEGFR) inhibitors")],
    ),
    (
        "No prior anti-PD-1/PD-L1 therapy; prior anti-CTLA-4 allowed",
        [("pd1_pdl1_inhibitor", "anti-PD-1/PD-L1"), ("ctla4_inhibitor", "anti-CTLA-4")],
    ),
    (
        "prior immune checkpoint inhibitors",
        [("immune_checkpoint_inhibitor", "immune checkpoint inhibitors")],
    ),
    (
        "Prior taxanes or alkylating agents",
        [("taxane", "taxanes"), ("alkylating_agent", "alkylating agents")],
    ),
]


@pytest.mark.parametrize(("text", "expected"), FIND_CLASSES)
def test_find_drug_classes_in_real_criteria(v, text, expected):
    assert v.find_drug_classes(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Resection of pulmonary lesions", "pulmonary_metastasectomy"),
        ("pulmonary metastasectomy", "pulmonary_metastasectomy"),
        ("pulmonry metastasectomy", "pulmonary_metastasectomy"),
        ("resection of hepatic metastases", "hepatic_metastasectomy"),
        ("surgery", "surgery"),
        ("wide local excision", "surgery"),
        ("radiotherapy", "radiation_therapy"),
        ("radiation therapy to the thigh", "radiation_therapy"),
        ("SBRT", "stereotactic_radiotherapy"),
        ("fractionated stereotactic radiation therapy", "stereotactic_radiotherapy"),
        ("segmentectomy", "lung_resection"),
        ("doxorubicin", None),
        ("headache", None),
    ],
)
def test_resolve_procedure(v, text, expected):
    assert v.resolve_procedure(text) == expected


def test_procedure_hierarchy(v):
    assert v.procedure_is_a("pulmonary_metastasectomy", "surgery")
    assert v.procedure_is_a("stereotactic_radiotherapy", "radiation_therapy")
    assert not v.procedure_is_a("radiation_therapy", "surgery")


# ------------------------------------------------------------------------------- seeds coverage

SEED_DIAGNOSES = {
    "000_6c70745bc3b10cc6.txt": {
        "soft tissue sarcoma": "soft_tissue_sarcoma",
        "sarcomas": "sarcoma",
        "Primary CNS Lymphoma": "primary_cns_lymphoma",
        "Colorectal cancer": "colorectal_cancer",
        "Lung cancer": "lung_cancer",
        "Ovarian cancer": "ovarian_cancer",
        "breast cancer": "breast_cancer",
        "prostate cancer": "prostate_cancer",
    },
    "004_b6741e001f26ebd4.txt": {
        "Childhood Soft Tissue Sarcoma": "soft_tissue_sarcoma",
        "synovial sarcoma": "synovial_sarcoma",
        "Alveolar soft part sarcoma": "alveolar_soft_part_sarcoma",
        "Solitary fibrous tumor": "solitary_fibrous_tumor",
        "Perivascular epithelioid cell tumor (PEComa)": "pecoma",
        "Inflammatory myofibroblastic tumor": "inflammatory_myofibroblastic_tumor",
        "Tenosynovial giant cell tumor": "tenosynovial_giant_cell_tumor",
        "Chordoma": "chordoma",
        "Dermatofibrosarcoma protuberans": "dermatofibrosarcoma_protuberans",
        "Malignant peripheral nerve sheath tumors": "mpnst",
        "Nonrhabdomyosarcoma": "non_rhabdomyosarcoma_soft_tissue_sarcoma",
        "nonrhabdomyosarcomatous soft-tissue sarcomas": "non_rhabdomyosarcoma_soft_tissue_sarcoma",
    },
}

SEED_DRUGS = {
    "000_6c70745bc3b10cc6.txt": [
        "doxorubicin",
        "ifosfamide",
        "epirubicin",
        "gemcitabine",
        "paclitaxel",
    ],
    "004_b6741e001f26ebd4.txt": [
        "vincristine",
        "dactinomycin",
        "doxorubicin",
        "cyclophosphamide",
        "dacarbazine",
        "sunitinib",
        "cediranib",
        "sirolimus",
        "crizotinib",
        "imatinib",
        "mesna",
        "ifosfamide",
        "mitomycin",
        "cisplatin",
    ],
}


@pytest.mark.parametrize("seed", sorted(SEED_DIAGNOSES))
def test_every_seed_diagnosis_is_in_the_vocabulary(v, seed):
    text = (SEEDS / seed).read_text(encoding="utf-8")
    for phrase, ident in SEED_DIAGNOSES[seed].items():
        assert phrase in text, phrase  # the table quotes the seed
        assert v.resolve_diagnosis(phrase).entry.id == ident, phrase
    found = {i for i, _ in v.find_diagnoses(text)}
    assert set(SEED_DIAGNOSES[seed].values()) <= found


@pytest.mark.parametrize("seed", sorted(SEED_DRUGS))
def test_every_seed_drug_is_in_the_vocabulary(v, seed):
    text = (SEEDS / seed).read_text(encoding="utf-8")
    found = {i for i, _ in v.find_drugs(text)}
    assert found == set(SEED_DRUGS[seed])
    for ident in SEED_DRUGS[seed]:
        assert v.drug(ident).source is not None


def test_seed_procedures_are_in_the_vocabulary(v):
    text = (SEEDS / "004_b6741e001f26ebd4.txt").read_text(encoding="utf-8")
    found = {i for i, _ in v.find_procedures(text)}
    assert {
        "surgery",
        "radiation_therapy",
        "stereotactic_radiotherapy",
        "lung_resection",
        "lymph_node_dissection",
    } <= found


# -------------------------------------------------------------------- data integrity (real files)


def test_every_spelling_resolves_to_exactly_its_own_entry(v):
    for d in v.diagnoses.values():
        for text in [d.name, *d.synonyms]:
            m = v.resolve_diagnosis(text)
            assert (m.entry.id, m.method) == (d.id, "exact"), text
    for drug in v.drugs.values():
        for text in [drug.name, *drug.brands, *drug.synonyms, *drug.codes]:
            m = v.resolve_drug(text)
            assert m is not None and (m.entry.id, m.method) == (drug.id, "exact"), text
    for c in v.drug_classes.values():
        for text in [c.name, *c.synonyms]:
            assert v.resolve_drug_class(text) == c.id, text
    for p in v.procedures.values():
        for text in [p.name, *p.synonyms]:
            assert v.resolve_procedure(text) == p.id, text


def test_every_oncotree_code_resolves(v):
    for d in v.diagnoses.values():
        if d.oncotree:
            assert v.resolve_diagnosis(d.oncotree).entry.id == d.id


def test_spellings_are_unique_across_drugs_and_classes(v):
    drug_keys = {
        squash(t) for d in v.drugs.values() for t in [d.name, *d.brands, *d.synonyms, *d.codes]
    }
    class_keys = {squash(t) for c in v.drug_classes.values() for t in [c.name, *c.synonyms]}
    assert drug_keys.isdisjoint(class_keys)


def test_every_name_in_its_own_entry_is_found_in_text(v):
    """Names (not flagged abbreviations) are findable in running text."""
    for d in v.diagnoses.values():
        assert v.find_diagnoses(f"History of {d.name}.")[0][0] == d.id, d.name
    for drug in v.drugs.values():
        assert v.find_drugs(f"prior {drug.name} given")[0][0] == drug.id, drug.name


def test_load_is_cached():
    # Load time is measured in bench/, not asserted here: a wall-clock bound flakes under load.
    assert load_vocab() is load_vocab()
    fresh = Vocab(load_vocab().directory)
    assert fresh is not load_vocab() and fresh.diagnoses.keys() == load_vocab().diagnoses.keys()


def test_find_on_long_text_finds_every_repeat(v):
    one = " ".join(s for s, _ in FIND_DIAGNOSES + FIND_DRUGS + FIND_CLASSES)
    text = " ".join([one] * 50)  # ~60 kB
    hits = v.find_diagnoses(text) + v.find_drugs(text) + v.find_drug_classes(text)
    single = v.find_diagnoses(one) + v.find_drugs(one) + v.find_drug_classes(one)
    assert len(single) > 10
    assert len(hits) == 50 * len(single)
    assert {h[0] for h in hits} == {h[0] for h in single}


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=80))
def test_arbitrary_text_never_crashes(text):
    v = load_vocab()
    try:
        m = v.resolve_diagnosis(text)
        assert m.entry.id in v.diagnoses
    except VocabError as exc:
        assert exc.kind == "diagnosis"
    m = v.resolve_drug(text)
    assert m is None or m.entry.id in v.drugs
    for _ident, span in v.find_diagnoses(text) + v.find_drugs(text) + v.find_drug_classes(text):
        assert span in text


# ------------------------------------------------------------------ validation (synthetic files)

GOOD_DIAGNOSES = """
diagnoses:
  - id: solid_tumor
    name: Solid tumor
    family: other
    category: other
    in_sarcoma_pack: false
  - id: sarcoma
    name: Sarcoma
    parent: solid_tumor
    family: sarcoma
    in_sarcoma_pack: true
  - id: alphaoma
    name: Alphaoma
    parent: sarcoma
  - id: alphaomb
    name: Alphaomb
    parent: sarcoma
"""

GOOD_DRUGS = """
classes:
  - id: parent_class
    name: Parent class
  - id: child_class
    name: Child class
    parents: [parent_class]
drugs:
  - id: drugone
    name: Drugone
    classes: [child_class]
"""


def _write(tmp_path: Path, diagnoses: str = GOOD_DIAGNOSES, drugs: str = GOOD_DRUGS) -> Path:
    (tmp_path / "diagnoses.yaml").write_text(textwrap.dedent(diagnoses), encoding="utf-8")
    (tmp_path / "drugs.yaml").write_text(textwrap.dedent(drugs), encoding="utf-8")
    return tmp_path


def test_synthetic_vocab_loads_and_inherits(tmp_path):
    v = Vocab(_write(tmp_path))
    d = v.diagnosis("alphaoma")
    assert (d.family, d.category, d.in_sarcoma_pack, d.lineage) == (
        "sarcoma",
        "other",
        True,
        ("alphaoma", "sarcoma", "solid_tumor"),
    )
    assert v.drugs_in_class("parent_class") == {"drugone"}
    assert v.procedures == {}


def test_fuzzy_ambiguity_is_rejected_with_candidates(tmp_path):
    v = Vocab(_write(tmp_path))
    with pytest.raises(VocabError) as err:
        v.resolve_diagnosis("alphaom")
    assert str(err.value) == (
        "diagnosis 'alphaom' is ambiguous: it is as close to Alphaoma, Alphaomb; spell it out"
    )
    assert err.value.suggestions == ["Alphaoma", "Alphaomb"]


@pytest.mark.parametrize(
    ("diagnoses", "drugs", "message"),
    [
        (
            GOOD_DIAGNOSES + "    colour: red\n",
            GOOD_DRUGS,
            "diagnoses.yaml, key 'colour': entry 'alphaomb': unknown key(s) colour; allowed keys: "
            "category, defining_markers, family, histotype, id, in_sarcoma_pack, level, mixed_types, name, note, oncotree, oncotree_note, "
            "parent, separate_summary, source, stage_extent, stage_source, summaries, synonyms, "
            "who_family, who_note",
        ),
        (
            GOOD_DIAGNOSES + "    stage_extent: {IVA: local}\n    stage_source: AJCC 8th edition\n",
            GOOD_DRUGS,
            "diagnoses.yaml, key 'stage_extent': entry 'alphaomb': stage_extent must map stage "
            "groups to one of m0, unsure",
        ),
        (
            GOOD_DIAGNOSES + "    stage_extent: {IVA: m0}\n",
            GOOD_DRUGS,
            "diagnoses.yaml: entry 'alphaomb': stage_extent needs a stage_source citing the "
            "staging system",
        ),
        (
            GOOD_DIAGNOSES.replace(
                "parent: sarcoma\n  - id: alphaomb", "parent: sarcomax\n  - id: alphaomb"
            ),
            GOOD_DRUGS,
            "diagnoses.yaml, key 'parent': entry 'alphaoma': parent 'sarcomax' is not defined",
        ),
        (
            GOOD_DIAGNOSES.replace("parent: solid_tumor", "parent: alphaoma"),
            GOOD_DRUGS,
            "diagnoses.yaml, key 'parent': entry 'sarcoma': parent cycle: "
            "sarcoma -> alphaoma -> sarcoma",
        ),
        (
            GOOD_DIAGNOSES + "    synonyms: [Alpha-oma]\n",
            GOOD_DRUGS,
            "diagnoses.yaml: entry 'alphaomb': diagnosis spelling 'Alpha-oma' belongs to both "
            "'alphaoma' and 'alphaomb'; a spelling must name exactly one entry",
        ),
        (
            GOOD_DIAGNOSES + "    family: sarcomatous\n",
            GOOD_DRUGS,
            "diagnoses.yaml, key 'family': entry 'alphaomb': family 'sarcomatous' not allowed; "
            "allowed: sarcoma, carcinoma, lymphoma, leukemia, melanoma, cns, other",
        ),
        (
            GOOD_DIAGNOSES + "    summaries: [adult_gist]\n",
            GOOD_DRUGS,
            "diagnoses.yaml, key 'summaries': entry 'alphaomb': summaries must be a list drawn "
            "from adult_sts, child_nrsts",
        ),
        (
            GOOD_DIAGNOSES,
            GOOD_DRUGS + "    brand: [Onex]\n",
            "drugs.yaml, key 'brand': entry 'drugone': unknown key(s) brand; allowed keys: brands, "
            "classes, codes, id, name, note, source, synonyms",
        ),
        (
            GOOD_DIAGNOSES,
            GOOD_DRUGS.replace("classes: [child_class]", "classes: [kinase]"),
            "drugs.yaml, key 'classes': entry 'drugone': 'classes' value 'kinase' not allowed; "
            "allowed: parent_class, child_class",
        ),
        (
            GOOD_DIAGNOSES,
            GOOD_DRUGS.replace(
                "    name: Parent class\n", "    name: Parent class\n    parents: [child_class]\n"
            ),
            "drugs.yaml, key 'parents': entry 'parent_class': class parent cycle: "
            "parent_class -> child_class -> parent_class",
        ),
        (
            GOOD_DIAGNOSES,
            GOOD_DRUGS + "    synonyms: [Child class]\n",
            "drugs.yaml: spelling 'childclass' names both a drug and a drug class",
        ),
        (
            GOOD_DIAGNOSES,
            GOOD_DRUGS + "    codes: [{text: X-1, match: false}]\n",
            "drugs.yaml, key 'codes': entry 'drugone': a spelling in 'codes' must be a string or a "
            "mapping with keys note, text, text_match ('text' required)",
        ),
        (
            GOOD_DIAGNOSES,
            GOOD_DRUGS.replace(
                "    name: Child class\n", "    name: Child class\n    later_line: yes please\n"
            ),
            "drugs.yaml, key 'later_line': entry 'child_class': later_line must be true or false",
        ),
        (
            GOOD_DIAGNOSES,
            GOOD_DRUGS.replace(
                "    name: Child class\n", "    name: Child class\n    later_line: true\n"
            ),
            "drugs.yaml, key 'note': entry 'child_class': later_line needs a note stating the fact",
        ),
        (GOOD_DIAGNOSES, "drugs: [\n", None),
    ],
)
def test_invalid_files_are_rejected_naming_file_and_entry(tmp_path, diagnoses, drugs, message):
    with pytest.raises(KnowledgeError) as err:
        Vocab(_write(tmp_path, diagnoses, drugs))
    if message is None:
        assert re.match(r"drugs\.yaml: not valid YAML", str(err.value))
    else:
        assert str(err.value) == message


def test_missing_file_is_a_knowledge_error(tmp_path):
    (tmp_path / "diagnoses.yaml").write_text(GOOD_DIAGNOSES, encoding="utf-8")
    with pytest.raises(KnowledgeError) as err:
        Vocab(tmp_path)
    assert str(err.value) == "drugs.yaml: vocabulary file is missing"


def test_a_histologic_type_joins_organ_entries():
    """Lung squamous cell carcinoma is also a squamous cell carcinoma (``histotype``); an NSCLC
    may be an adenocarcinoma; "NSCLC, adenocarcinoma" is a lung adenocarcinoma."""
    v = load_vocab()
    assert v.is_a("lung_squamous_cell_carcinoma", "squamous_cell_carcinoma")
    assert v.is_a("lung_squamous_cell_carcinoma", "nsclc")
    assert not v.is_a("lung_adenocarcinoma", "squamous_cell_carcinoma")
    assert v.may_be("nsclc", "adenocarcinoma") and not v.may_be("leiomyosarcoma", "adenocarcinoma")
    assert v.resolve_diagnosis("non-small cell lung cancer, adenocarcinoma").entry.id == (
        "lung_adenocarcinoma"
    )
    assert v.resolve_diagnosis("squamous cell carcinoma").entry.id == "squamous_cell_carcinoma"


def test_car_t_products_are_a_later_line_class_of_engineered_t_cell_therapy():
    """Every approved CAR T-cell product is indicated after a prior line (``later_line``, with
    the fact in the note); the broader engineered-cell class is not marked (TCR T cells,
    "cell therapy" of unstated kind)."""
    v = load_vocab()
    car = v.drugs_in_class("car_t_cell_therapy")
    assert car >= {"tisagenlecleucel", "axicabtagene_ciloleucel", "ciltacabtagene_autoleucel"}
    assert car <= v.drugs_in_class("engineered_t_cell_therapy")
    assert "afamitresgene_autoleucel" not in car
    assert v.drug_classes["car_t_cell_therapy"].later_line
    assert "prior line" in v.drug_classes["car_t_cell_therapy"].note
    assert [c for c, k in v.drug_classes.items() if k.later_line] == ["car_t_cell_therapy"]
    assert {c for c, _ in v.find_drug_classes("CAR T-cell therapy")} == {"car_t_cell_therapy"}
    assert {c for c, _ in v.find_drug_classes("adoptive cell therapy")} == {
        "engineered_t_cell_therapy"
    }


def test_a_lineage_group_reaches_the_subtypes_of_its_members():
    """B-ALL, CLL and hairy cell leukaemia name B-cell leukaemia as histotype; a subtype
    inherits it (Ph+ ALL, a B-ALL, is a B-cell leukaemia); T-ALL and AML are not; an ALL or a
    leukaemia recorded without its lineage may be one."""
    v = load_vocab()
    for ident in (
        "b_cell_all",
        "ph_positive_all",
        "ph_like_all",
        "chronic_lymphocytic_leukemia",
        "hairy_cell_leukemia",
    ):
        assert v.is_a(ident, "b_cell_leukemia"), ident
    assert v.is_a("ph_positive_all", "acute_lymphoblastic_leukemia")
    for ident in (
        "t_cell_all",
        "acute_myeloid_leukemia",
        "chronic_myeloid_leukemia",
        "mixed_phenotype_acute_leukemia",
    ):
        assert not v.is_a(ident, "b_cell_leukemia") and not v.may_be(ident, "b_cell_leukemia")
    for ident in ("acute_lymphoblastic_leukemia", "acute_leukemia", "chronic_leukemia"):
        assert v.may_be(ident, "b_cell_leukemia"), ident
    # the entry's own chain comes first: family and the rest are inherited from it
    assert v.diagnosis("ph_positive_all").lineage[:2] == ("ph_positive_all", "b_cell_all")
    assert v.diagnosis("chronic_lymphocytic_leukemia").family == "leukemia"


def test_a_plus_sign_joins_a_spelling():
    """ "Ph+ ALL" is found in running text (a "+" between tokens no longer breaks a spelling)."""
    v = load_vocab()
    assert ("ph_positive_all", "Ph+ ALL") in v.find_diagnoses("Relapsed Ph+ ALL after two TKIs")


@pytest.mark.parametrize(
    ("text", "ident"),
    [
        ("lapatinib", "lapatinib"),  # resolved fuzzily to apatinib before it was listed
        ("Tykerb", "lapatinib"),
        ("Perjeta", "pertuzumab"),
        ("tucatinib", "tucatinib"),
    ],
)
def test_her2_drugs_resolve_to_themselves(v, text, ident):
    assert v.resolve_drug(text).entry.id == ident


# named regimens: exact spellings only, read as their drugs
@pytest.mark.parametrize(
    ("text", "drugs"),
    [
        ("R-CHOP", ("rituximab", "cyclophosphamide", "doxorubicin", "vincristine", "prednisone")),
        ("mFOLFIRINOX", ("fluorouracil", "leucovorin", "irinotecan", "oxaliplatin")),
        ("XELOX", ("capecitabine", "oxaliplatin")),
        ("VDC/IE", ("vincristine", "doxorubicin", "cyclophosphamide", "ifosfamide", "etoposide")),
        ("ABVD", ("doxorubicin", "bleomycin", "vinblastine", "dacarbazine")),
        ("AVD", None),  # one letter from ABVD: no fuzzy match
        ("doxorubicin", None),  # a drug, not a regimen
    ],
)
def test_named_regimens(v, text, drugs):
    assert v.resolve_regimen(text) == drugs


@pytest.mark.parametrize(
    ("text", "expected", "klass"),
    [
        ("Lupron", "leuprolide", "androgen_deprivation_therapy"),
        ("Zoladex", "goserelin", "endocrine_therapy"),
        ("Xtandi", "enzalutamide", "androgen_receptor_pathway_inhibitor"),
        ("abiraterone acetate", "abiraterone", "androgen_receptor_pathway_inhibitor"),
        ("Casodex", "bicalutamide", "first_generation_antiandrogen"),
        ("6-MP", "mercaptopurine", "antimetabolite"),
        ("Treanda", "bendamustine", "alkylating_agent"),
        ("CCNU", "lomustine", "chemotherapy"),
        ("Unituxin", "dinutuximab", "immunotherapy"),
        ("Adcetris", "brentuximab_vedotin", "antibody_drug_conjugate"),
        ("Jakafi", "ruxolitinib", "jak_inhibitor"),
        ("doce", "docetaxel", "taxane"),
    ],
)
def test_hormonal_and_other_agents_added_in_the_eighth_session(v, text, expected, klass):
    m = v.resolve_drug(text)
    assert m is not None and m.entry.id == expected
    assert klass in m.entry.classes


def test_a_regimen_must_name_known_drugs(tmp_path):
    drugs = GOOD_DRUGS + "regimens:\n  - id: onetwo\n    name: OT\n    drugs: [drugone, drugtwo]\n"
    with pytest.raises(KnowledgeError) as err:
        Vocab(_write(tmp_path, GOOD_DIAGNOSES, drugs))
    assert "'drugs' value 'drugtwo' not allowed" in str(err.value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("radical prostatectomy", "prostatectomy"),
        ("TURBT", "turbt"),
        ("total hysterectomy and bilateral salpingo-oophorectomy", "hysterectomy_bso"),
        ("kidney transplant", "organ_transplant"),
        ("Whipple procedure", "pancreatectomy"),
        ("bilateral orchiectomy", "orchiectomy"),
    ],
)
def test_surgeries_a_coordinator_records_resolve(v, text, expected):
    assert v.resolve_procedure(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "metastatic adenocarcinoma of the sigmoid colon, liver metastases",
            "colon_adenocarcinoma",
        ),
        ("cancer of the ascending colon", "colon_cancer"),
        ("grade 4 astrocytic tumour", "astrocytic_tumor"),
    ],
)
def test_colon_sub_sites_and_astrocytic_tumours(v, text, expected):
    assert v.resolve_diagnosis(text).entry.id == expected
    if expected == "astrocytic_tumor":
        assert v.is_a("glioblastoma", "astrocytic_tumor") and v.is_a("astrocytoma", expected)


def test_a_junction_cancer_is_gastric_and_oesophageal(v):
    m = v.resolve_diagnosis("adenocarcinoma of the oesophagogastric junction, Siewert type II")
    assert m.entry.id == "gastroesophageal_junction_cancer"
    assert v.is_a(m.entry.id, "gastric_cancer") and v.is_a(m.entry.id, "esophageal_cancer")
    assert v.resolve_drug("serplulimab").entry.id == "serplulimab"
