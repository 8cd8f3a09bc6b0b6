"""Relevance: which trials are about this patient, at which tier, and on what evidence.

Trials here are small constructed v2 records (each says what it is for in its conditions and
criteria); the vocabulary is the shipped one. Expectations follow ``matcher.rank.tier_for``
and the WHO placement of each entry (``criteria/vocab/diagnoses.yaml``, ``who_family``).
"""

from __future__ import annotations

from datetime import date

import pytest

from matcher.eligibility import parse_trial
from matcher.knowledge import load_pack
from matcher.patient import normalize_record
from matcher.rank import (
    PURPOSES,
    TIERS,
    MatchContext,
    RankConfig,
    parse_purposes,
    rank_trials,
    relevance,
    tier_for,
    trial_scope,
)
from matcher.vocab import WHO_FAMILIES, load_vocab

ANY = RankConfig(statuses=None)


@pytest.fixture(scope="module")
def v():
    return load_vocab()


def record(
    nct, conditions=(), inclusion=(), purpose="TREATMENT", keywords=(), hv=False, study=None
):
    """A minimal v2 study: conditions, keywords, inclusion lines, primary purpose."""
    design = {"studyType": study or "INTERVENTIONAL"}
    if purpose:
        design["designInfo"] = {"primaryPurpose": purpose}
    criteria = "Inclusion Criteria:\n\n" + "\n".join(f"* {line}" for line in inclusion)
    return {
        "protocolSection": {
            "identificationModule": {"nctId": nct, "briefTitle": f"Trial {nct}"},
            "statusModule": {"overallStatus": "RECRUITING"},
            "designModule": design,
            "conditionsModule": {"conditions": list(conditions), "keywords": list(keywords)},
            "eligibilityModule": {
                "eligibilityCriteria": criteria,
                "healthyVolunteers": hv,
                "sex": "ALL",
            },
        }
    }


def patient(diagnosis, **facts):
    return normalize_record(
        {"id": "p", "age": 50, "diagnosis": diagnosis, **facts},
        source="test",
        as_of=date(2026, 6, 1),
    )


def rel(diagnosis_text, rec, v):
    p = patient(diagnosis_text)
    return relevance(p.diagnosis, parse_trial(rec), MatchContext(load_pack(), v))


# --------------------------------------------------------------------------- the tier model


@pytest.mark.parametrize(
    ("patient_dx", "target", "tier"),
    [
        ("dedifferentiated_liposarcoma", "dedifferentiated_liposarcoma", "subtype"),
        ("dedifferentiated_liposarcoma", "liposarcoma", "group"),
        ("uterine_leiomyosarcoma", "leiomyosarcoma", "group"),
        ("embryonal_rhabdomyosarcoma", "rhabdomyosarcoma", "group"),
        ("synovial_sarcoma", "non_rhabdomyosarcoma_soft_tissue_sarcoma", "category"),
        ("alveolar_soft_part_sarcoma", "non_rhabdomyosarcoma_soft_tissue_sarcoma", "category"),
        ("synovial_sarcoma", "soft_tissue_sarcoma", "category"),
        ("osteosarcoma", "bone_sarcoma", "category"),
        ("osteosarcoma", "sarcoma", "family"),
        ("osteosarcoma", "solid_tumor", "basket"),
        ("osteosarcoma", "cancer", "basket"),
        ("acute_myeloid_leukemia", "cancer", "basket"),
        ("breast_cancer", "carcinoma", "family"),
        ("breast_cancer", "breast_cancer", "subtype"),
        ("lung_adenocarcinoma", "nsclc", "group"),
        ("leiomyosarcoma", "liposarcoma", None),
        ("embryonal_rhabdomyosarcoma", "non_rhabdomyosarcoma_soft_tissue_sarcoma", None),
        ("ewing_sarcoma", "soft_tissue_sarcoma", None),
        ("acute_myeloid_leukemia", "solid_tumor", None),
        ("b_cell_all", "t_cell_all", None),
        ("t_cell_all", "b_cell_leukemia", None),
        ("acute_myeloid_leukemia", "b_cell_leukemia", None),
        ("ph_positive_all", "b_cell_leukemia", "category"),
        ("chronic_lymphocytic_leukemia", "b_cell_leukemia", "category"),
        ("t_cell_all", "ph_like_all", None),
        # the myeloid lineage group: AML (and its subtypes), CML, JMML; not lymphoid leukaemias
        ("acute_myeloid_leukemia", "myeloid_leukemia", "category"),
        ("acute_promyelocytic_leukemia", "myeloid_leukemia", "category"),
        ("chronic_myeloid_leukemia", "myeloid_leukemia", "category"),
        ("juvenile_myelomonocytic_leukemia", "myeloid_leukemia", "category"),
        ("b_cell_all", "myeloid_leukemia", None),
        ("t_cell_all", "myeloid_leukemia", None),
        ("chronic_lymphocytic_leukemia", "myeloid_leukemia", None),
        ("breast_cancer", "lung_cancer", None),
        # a precancerous condition is not a cancer: "any cancer" does not admit it
        ("actinic_keratosis", "cancer", None),
        ("actinic_keratosis", "actinic_keratosis", "subtype"),
        ("cervical_intraepithelial_neoplasia", "cervical_cancer", None),
        # the trial names a narrower diagnosis than the patient's record: verify
        ("liposarcoma", "dedifferentiated_liposarcoma", "group"),
        ("sarcoma", "synovial_sarcoma", "family"),
    ],
)
def test_tier_for(v, patient_dx, target, tier):
    got, verify = tier_for(v.diagnosis(patient_dx).lineage, target, v)
    assert got == tier
    narrower = target != patient_dx and v.is_a(target, patient_dx)
    assert (verify is not None) == narrower


def test_a_lineage_group_admits_a_leukemia_recorded_without_its_lineage(v):
    # "B cell leukemia" for a patient recorded as ALL: the lineage is to verify, never "not listed"
    for dx, tier in (("acute_lymphoblastic_leukemia", "category"), ("leukemia", "family")):
        got, verify = tier_for(v.diagnosis(dx).lineage, "b_cell_leukemia", v)
        assert got == tier and verify and "verify histology" in verify


def test_no_parent_word_alone_lands_at_subtype_tier(v):
    # every broad entry (basket, family, category) gives its own tier to every patient under it,
    # never "subtype", even to a patient recorded with exactly that broad word
    broad = [d for d in v.diagnoses.values() if d.level]
    assert {d.id for d in broad} >= {"carcinoma", "cancer", "sarcoma", "soft_tissue_sarcoma"}
    for d in broad:
        for p in v.diagnoses.values():
            tier, _ = tier_for(p.lineage, d.id, v)
            assert tier != "subtype", (p.id, d.id)
            if d.id in p.lineage:
                assert tier == d.level


def test_every_sarcoma_subtype_reaches_soft_tissue_or_bone_sarcoma(v):
    subtypes = [
        d
        for d in v.diagnoses.values()
        if d.family == "sarcoma" and not d.level and d.id != "sarcoma"
    ]
    assert len(subtypes) > 50
    for d in subtypes:
        assert {"soft_tissue_sarcoma", "bone_sarcoma"} & set(d.lineage), d.id
        # every parent chain is cited: the WHO chapter, or the other WHO volume named
        assert d.who_family in WHO_FAMILIES, d.id
        if d.who_family == "other volume":
            assert d.who_note, d.id
    # rhabdomyosarcoma is the one soft tissue sarcoma outside NRSTS
    nrsts = "non_rhabdomyosarcoma_soft_tissue_sarcoma"
    outside = {
        d.id
        for d in subtypes
        if "soft_tissue_sarcoma" in d.lineage and nrsts not in d.lineage and d.id != nrsts
    }
    assert outside == {
        "rhabdomyosarcoma",
        "embryonal_rhabdomyosarcoma",
        "alveolar_rhabdomyosarcoma",
        "pleomorphic_rhabdomyosarcoma",
        "spindle_cell_rhabdomyosarcoma",
    }


def test_tiers_are_ordered_best_first():
    from matcher.rank import TIER_SCORES

    assert [TIER_SCORES[t] for t in TIERS] == sorted(TIER_SCORES.values(), reverse=True)


# --------------------------------------------------------------------------- coordinated lists


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("soft tissue or bone sarcoma", {"soft_tissue_sarcoma", "bone_sarcoma"}),
        ("bone or soft tissue sarcoma", {"soft_tissue_sarcoma", "bone_sarcoma"}),
        ("Ewing, osteo- or synovial sarcoma", {"ewing_sarcoma", "osteosarcoma", "synovial_sarcoma"}),
        (
            "leiomyosarcoma, liposarcoma, or synovial sarcoma",
            {"leiomyosarcoma", "liposarcoma", "synovial_sarcoma"},
        ),
        ("relapsed AML, ALL, or MPAL", {"acute_myeloid_leukemia", "acute_lymphoblastic_leukemia",
                                        "mixed_phenotype_acute_leukemia"}),
        ("CML or Phi+ ALL", {"chronic_myeloid_leukemia", "acute_lymphoblastic_leukemia", "ph_positive_all"}),
        # a head that is a kind of sarcoma, and a two-word head
        ("dedifferentiated, pleomorphic or myxoid/round cell liposarcoma",
         {"dedifferentiated_liposarcoma", "pleomorphic_liposarcoma", "myxoid_liposarcoma"}),
        ("small cell or non-small cell lung cancer", {"sclc", "nsclc"}),
        ("Hodgkin or non-Hodgkin lymphoma", {"hodgkin_lymphoma", "non_hodgkin_lymphoma"}),
        ("metastatic or soft tissue sarcoma", {"soft_tissue_sarcoma"}),
        ("cutaneous, acral, or mucosal melanoma",
         {"cutaneous_melanoma", "acral_melanoma", "mucosal_melanoma"}),
        # a member the vocabulary lacks does not hide the members before it
        ("cutaneous, lentiginous, or mucosal melanoma", {"cutaneous_melanoma", "mucosal_melanoma"}),
        # an abbreviation kept out of text search stays out when it is not in a list
        ("OS was the primary endpoint", set()),
        ("ALL patients must sign consent", set()),
    ],
)  # fmt: skip
def test_coordinated_lists_expand_to_every_member(v, text, expected):
    assert {d for d, _ in v.find_diagnoses_listed(text)} == expected


# --------------------------------------------------------------------------- what decides


@pytest.mark.parametrize(
    ("diagnosis", "rec", "tier", "source"),
    [
        # a test named in an aside, or as how a diagnosis was made, leaves the line a
        # population line (records with no conditions rest on such lines)
        (
            "breast cancer",
            record("NCT90000011", [], ["Females with HER2-positive [IHC 2 +, with FISH "
                                       "confirmation] or 3+ [IHC or FISH] metastatic breast cancer"]),
            "subtype",
            "criteria",
        ),
        (
            "lung squamous cell carcinoma",
            record("NCT90000012", [], ["Locally advanced (IIIB) or metastatic (stage IV) "
                                       "immunohistochemistry (IHC)-verified Lung squamous cell "
                                       "carcinoma (LSQC)"]),
            "subtype",
            "criteria",
        ),
        # "soft tissue or bone sarcoma" admits soft tissue sarcoma too
        (
            "leiomyosarcoma",
            record("NCT90000001", ["Sarcoma"], ["Histologically confirmed soft tissue or bone sarcoma"]),
            "category",
            "criteria",
        ),
        # RECIST "for solid tumours" does not turn a GIST trial into a basket
        (
            "leiomyosarcoma",
            record(
                "NCT90000002",
                ["Gastrointestinal Stromal Tumors"],
                [
                    "Histologically confirmed GIST",
                    "Measurable disease per RECIST version 1.1 for solid tumours",
                ],
            ),
            None,
            "criteria",
        ),
        (
            "gist",
            record(
                "NCT90000002",
                ["Gastrointestinal Stromal Tumors"],
                [
                    "Histologically confirmed GIST",
                    "Measurable disease per RECIST version 1.1 for solid tumours",
                ],
            ),
            "subtype",
            "criteria",
        ),
        # another-malignancy and tissue lines never decide
        (
            "leiomyosarcoma",
            record(
                "NCT90000003",
                ["Leiomyosarcoma"],
                [
                    "No other malignancy such as breast cancer within 3 years",
                    "Archival tumor tissue block available",
                ],
            ),
            "subtype",
            "condition",
        ),
        (
            "breast cancer",
            record(
                "NCT90000003",
                ["Leiomyosarcoma"],
                ["No other malignancy such as breast cancer within 3 years"],
            ),
            None,
            None,
        ),
        # an exception in the inclusion line is not a requirement
        (
            "gist",
            record(
                "NCT90000004",
                ["Soft Tissue Sarcoma"],
                ["Histologically confirmed soft tissue sarcoma (excluding GIST and Kaposi sarcoma)"],
            ),
            "category",
            "criteria",
        ),
        # a bare "carcinoma" narrowed by words the vocabulary does not know: family tier, verify
        ("breast cancer", record("NCT90000005", ["Vocal Cord Carcinoma"]), "family", "condition"),
        # any-cancer and solid-tumour baskets
        ("synovial sarcoma", record("NCT90000006", ["Cancer"], purpose="SUPPORTIVE_CARE"), "basket", "condition"),
        ("synovial sarcoma", record("NCT90000007", ["Advanced Solid Tumors"]), "basket", "condition"),
        ("acute myeloid leukemia", record("NCT90000007", ["Advanced Solid Tumors"]), None, None),
        # a sentence that says its diagnoses are excluded
        (
            "ewing sarcoma",
            record(
                "NCT90000010",
                ["Soft Tissue Sarcoma"],
                ["Histologically confirmed soft tissue sarcoma. Patients with Ewing sarcoma or "
                 "osteosarcoma will be excluded."],
            ),
            None,
            None,
        ),
        # "the sarcoma centre" states no population
        (
            "leiomyosarcoma",
            record(
                "NCT90000011",
                ["Osteosarcoma"],
                ["Histologically confirmed osteosarcoma",
                 "Unfit for chemotherapy as assessed by the sarcoma centre in charge"],
            ),
            None,
            None,
        ),
        # an untyped line that states any cancer as the population
        (
            "synovial sarcoma",
            record("NCT90000012", ["Symptom Management"], ["Being a Cancer Patient in the second or third stage"]),
            "basket",
            "criteria",
        ),
        # "patients with malignant tumours ... the disease type is not limited", "advanced cancer"
        (
            "synovial sarcoma",
            record("NCT90000015", ["Chemotherapy-induced Nausea and Vomiting"], ["For patients with malignant tumors who can accept chemotherapy, the disease type is not limited."]),
            "basket",
            "criteria",
        ),
        (
            "synovial sarcoma",
            record("NCT90000016", ["Walking Intervention"], ["advanced cancer (cancer stage III or IV)"]),
            "basket",
            "criteria",
        ),
        # a survivorship study: "History of cancer (all tumor types)"
        (
            "synovial sarcoma",
            record("NCT90000018", ["Obesity", "Smoking Cessation"], ["Over 18 years old", "History of cancer (all tumor types)"]),
            "basket",
            "criteria",
        ),
        # ... not in a record about something else, where it is one risk category among others
        (
            "synovial sarcoma",
            record("NCT90000017", ["Hypercholesterolemia"], ["Patients with malignant tumor or those who are judged to have a high risk of recurrence"]),
            None,
            None,
        ),
        # ... but a kind of cancer spelt another way is not "any cancer"
        (
            "synovial sarcoma",
            record("NCT90000013", ["Quality of Life"], ["Stage IA2-II non-small cell cancer patients after resection"]),
            None,
            None,
        ),
        # a line that states the population first and mentions testing after still decides
        (
            "synovial sarcoma",
            record(
                "NCT90000014",
                ["Advanced Malignant Solid Neoplasm"],
                ["Histologically confirmed metastatic cancer",
                 "Any solid tumor patients with MGMT hypermethylation on testing of archival tissue"],
            ),
            "basket",
            "criteria",
        ),
        # "Leukemia, Myeloid" (MeSH): the myeloid lineage group, not any leukaemia
        ("b-cell all", record("NCT90000020", ["Leukemia, Myeloid"]), None, None),
        ("aml", record("NCT90000020", ["Leukemia, Myeloid"]), "category", "condition"),
        # a broad word that speaks of the disease another line names does not widen the
        # population ...
        (
            "t-cell all",
            record(
                "NCT90000021",
                ["Relapsed Acute Myeloid Leukaemia"],
                ["Relapsed AML ahead of allogeneic transplantation",
                 "CD33+ leukaemia associated immunophenotype on >95% of blasts"],
            ),
            None,
            "criteria",
        ),
        (
            "acute myeloid leukemia",
            record(
                "NCT90000021",
                ["Relapsed Acute Myeloid Leukaemia"],
                ["Relapsed AML ahead of allogeneic transplantation",
                 "CD33+ leukaemia associated immunophenotype on >95% of blasts"],
            ),
            "subtype",
            "criteria",
        ),
        # ... nor when a condition names the kind
        (
            "acute myeloid leukemia",
            record(
                "NCT90000024",
                ["Relapsed/Refractory T-cell Acute Lymphoid Leukaemia"],
                ["CD7+ (>99%) leukaemia associated immunophenotype (LAIP)"],
            ),
            None,
            None,
        ),
        (
            "t-all",
            record(
                "NCT90000024",
                ["Relapsed/Refractory T-cell Acute Lymphoid Leukaemia"],
                ["CD7+ (>99%) leukaemia associated immunophenotype (LAIP)"],
            ),
            "subtype",
            "condition",
        ),
        # ... but an alternative in the same line keeps it
        (
            "leiomyosarcoma",
            record("NCT90000025", ["Neuroblastoma"], ["Recurrent or refractory neuroblastoma or solid tumor."]),
            "basket",
            "criteria",
        ),
        # ... as does a line that states a population
        (
            "t-cell all",
            record(
                "NCT90000022",
                ["Leukemia"],
                ["Diagnosis of AML in first relapse",
                 "Patients with any other leukemia after two lines of therapy"],
            ),
            "family",
            "criteria",
        ),
        (
            "leiomyosarcoma",
            record(
                "NCT90000023",
                ["Sarcoma"],
                ["Histologically confirmed sarcoma", "Synovial sarcoma: SS18 fusion documented"],
            ),
            "family",
            "criteria",
        ),
        # "(or are ineligible) therapy" in a line's relative clause excludes no diagnosis
        (
            "b-all",
            record(
                "NCT90000026",
                ["Acute Lymphocytic Leukaemia", "Acute Myeloid Leukaemia Refractory"],
                ["Confirmed diagnosis of primary or secondary AML",
                 "Adult and Pediatric arms: Confirmed diagnosis of CD123+ B-ALL that have no "
                 "available (or are ineligible) therapy with known clinical benefit."],
            ),
            "subtype",
            "criteria",
        ),
        # MeSH-style inverted condition
        ("synovial sarcoma", record("NCT90000008", ["Sarcoma, Synovial"]), "subtype", "condition"),
        # NRSTS names every soft tissue sarcoma but rhabdomyosarcoma
        ("alveolar soft part sarcoma", record("NCT90000009", ["Non-rhabdomyosarcoma Soft Tissue Sarcoma"]), "category", "condition"),
        ("embryonal rhabdomyosarcoma", record("NCT90000009", ["Non-rhabdomyosarcoma Soft Tissue Sarcoma"]), None, None),
    ],
)  # fmt: skip
def test_what_decides_relevance(v, diagnosis, rec, tier, source):
    r = rel(diagnosis, rec, v)
    assert r.tier == tier, r.reason
    if tier is not None:
        assert r.evidence is not None and r.evidence.source == source
        # the reason names where the evidence came from
        assert f'from {source} "' in r.reason


def test_scope_records_what_was_set_aside(v):
    scope = trial_scope(
        parse_trial(
            record(
                "NCT90000002",
                ["Gastrointestinal Stromal Tumors"],
                [
                    "Histologically confirmed GIST",
                    "Measurable disease per RECIST version 1.1 for solid tumours",
                ],
            )
        ),
        v,
    )
    assert {e.diagnosis for e in scope.required} == {"gist"}
    assert any("measurement standard" in i for i in scope.ignored)


def test_narrowed_bare_word_asks_to_verify(v):
    r = rel("breast cancer", record("NCT90000005", ["Vocal Cord Carcinoma"]), v)
    assert r.tier == "family"
    assert r.verify and "not list" in r.verify[0]


# --------------------------------------------------------------------------- purpose


def ranked(diagnosis, recs, config=ANY, **facts):
    return rank_trials(
        patient(diagnosis, **facts),
        [parse_trial(r) for r in recs],
        load_pack(),
        load_vocab(),
        config,
    )


PURPOSE_TRIALS = [
    record("NCT90000101", ["Lung Cancer"], purpose="SCREENING", hv=True),
    record("NCT90000102", ["Lung Cancer"], purpose="SUPPORTIVE_CARE"),
    record("NCT90000103", ["Lung Cancer"], purpose="TREATMENT"),
    record("NCT90000104", ["Lung Cancer"], purpose=None, study="OBSERVATIONAL"),
    record("NCT90000105", ["Lung Cancer"], purpose="PREVENTION", hv=True),
]


def test_purpose_is_read_shown_and_treatment_comes_first():
    pm = ranked("non-small cell lung cancer", PURPOSE_TRIALS, stage="IV")
    got = [(s.nct_id, s.purpose, s.verdict) for s in pm.trials]
    # treatment first; then the other purposes, joinable ones before excluded, ties by NCT id
    assert got == [
        ("NCT90000103", "treatment", "eligible"),
        ("NCT90000102", "supportive_care", "eligible"),
        ("NCT90000104", "observational", "eligible"),
        ("NCT90000101", "screening", "excluded"),
        ("NCT90000105", "prevention", "excluded"),
    ]
    d = {s.nct_id: s for s in pm.trials}
    assert d["NCT90000102"].to_dict()["purpose"] == "supportive_care"
    assert any(r.startswith("primary purpose: supportive care") for r in d["NCT90000102"].reasons)
    # screening, and prevention in healthy volunteers, are closed to a patient with the disease
    assert d["NCT90000101"].verdict == "excluded"
    assert d["NCT90000101"].excluded_by[0].startswith("screening trial")
    assert d["NCT90000105"].verdict == "excluded"
    assert d["NCT90000102"].verdict != "excluded"
    assert d["NCT90000104"].verdict != "excluded"


def test_purpose_filter():
    pm = ranked(
        "non-small cell lung cancer",
        PURPOSE_TRIALS,
        RankConfig(statuses=None, purposes=frozenset({"treatment"})),
    )
    assert [s.nct_id for s in pm.trials] == ["NCT90000103"]
    assert any("4 relevant trial(s) of other primary purposes not shown" in n for n in pm.notes)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("all", None),
        ("", None),
        ("treatment", frozenset({"treatment"})),
        ("Treatment, supportive care", frozenset({"treatment", "supportive_care"})),
    ],
)
def test_parse_purposes(text, expected):
    assert parse_purposes(text) == expected


def test_parse_purposes_rejects_unknown_naming_the_allowed():
    with pytest.raises(ValueError) as err:
        parse_purposes("cure")
    assert str(err.value).startswith("unknown purpose cure; choose from all, treatment")
    assert all(p in str(err.value) for p in PURPOSES)


def test_relevance_evidence_in_json():
    pm = ranked("synovial sarcoma", [record("NCT90000008", ["Sarcoma, Synovial"])])
    d = pm.trials[0].to_dict()
    assert d["relevance"] == "subtype"
    assert d["relevance_evidence"] == {
        "tier": "subtype",
        "diagnosis": "synovial_sarcoma",
        "source": "condition",
        "text": "Sarcoma, Synovial",
    }


def _cli_files(tmp_path):
    import json

    tdir = tmp_path / "trials"
    tdir.mkdir()
    for r in PURPOSE_TRIALS:
        nct = r["protocolSection"]["identificationModule"]["nctId"]
        (tdir / f"{nct}.json").write_text(json.dumps(r), encoding="utf-8")
    pfile = tmp_path / "p.json"
    pfile.write_text(
        json.dumps({"id": "P1", "age": 60, "diagnosis": "non-small cell lung cancer"}),
        encoding="utf-8",
    )
    return tdir, pfile


def test_cli_match_purpose_filter(tmp_path):
    import json

    from click.testing import CliRunner

    from matcher.cli import cli

    tdir, pfile = _cli_files(tmp_path)
    args = ["match", str(pfile), "--trials", str(tdir), "--status", "any", "--json"]
    every = CliRunner().invoke(cli, args)
    assert every.exit_code == 0, every.output
    assert [t["purpose"] for t in json.loads(every.output)[0]["trials"]] == [
        "treatment",
        "supportive_care",
        "observational",
        "screening",
        "prevention",
    ]
    only = CliRunner().invoke(cli, [*args, "--purpose", "supportive_care,observational"])
    assert only.exit_code == 0, only.output
    got = json.loads(only.output)[0]["trials"]
    assert [t["nct_id"] for t in got] == ["NCT90000102", "NCT90000104"]


def test_cli_match_rejects_unknown_purpose(tmp_path):
    from click.testing import CliRunner

    from matcher.cli import cli

    tdir, pfile = _cli_files(tmp_path)
    result = CliRunner().invoke(
        cli, ["match", str(pfile), "--trials", str(tdir), "--purpose", "cure"]
    )
    assert result.exit_code == 2
    assert "Invalid value for --purpose: unknown purpose cure; choose from all," in result.output


def _study(title: str, criteria: str):
    from matcher.eligibility import parse_trial

    return parse_trial(
        {
            "protocolSection": {
                "identificationModule": {"nctId": "NCT00000009", "briefTitle": title},
                "eligibilityModule": {"eligibilityCriteria": criteria},
            }
        }
    )


@pytest.mark.parametrize(
    ("title", "criteria", "expected"),
    [
        (
            "Emotion and Symptom-focused Engagement for Caregivers (EASE-CG) Pilot Study",
            "Inclusion Criteria:\n* Self-identified primary caregiver of an adult or pediatric "
            "patient who is newly diagnosed with acute leukemia\n* Age >= 18 years",
            "caregivers",
        ),
        (
            "A Survey on Material Utilization Among Pharmacists in Japan",
            "Inclusion criteria:\n1. Who belong to hospitals prescribing the drug.",
            "pharmacists",
        ),
        # a study of patients and their caregivers enrols patients
        (
            "Yoga for Patients and Caregivers",
            "Inclusion Criteria:\n* Caregivers of patients with sarcoma\n* Patients with sarcoma",
            None,
        ),
        # a patient study that names caregivers in its title
        (
            "Caregiver-Supported Exercise in Sarcoma",
            "Inclusion Criteria:\n* Patients with metastatic sarcoma",
            None,
        ),
    ],
)
def test_a_study_of_people_around_the_patient_is_not_for_the_patient(title, criteria, expected):
    from matcher.rank import participants_of

    assert participants_of(_study(title, criteria)) == expected


@pytest.mark.parametrize(
    ("line", "diagnosis", "admitted"),
    [
        # a histology of one organ: the organ's cancer of unstated histology is admitted (the
        # histology to verify), another histology of that organ or another organ is not
        (
            "Histologically-confirmed squamous cell carcinoma of the esophagus",
            "esophageal cancer",
            True,
        ),
        ("Histologically-confirmed squamous cell carcinoma of the esophagus", "ESCC", True),
        (
            "Histologically-confirmed squamous cell carcinoma of the esophagus",
            "esophageal adenocarcinoma",
            False,
        ),
        ("Histologically confirmed adenocarcinoma of rectum", "rectal adenocarcinoma", True),
        ("Histologically confirmed adenocarcinoma of rectum", "colorectal cancer", True),
        # colon and rectal cancer are siblings: a rectal trial is not for a colon cancer
        ("Histologically confirmed adenocarcinoma of rectum", "colon cancer", False),
        ("Histologically confirmed adenocarcinoma of rectum", "gastric adenocarcinoma", False),
        # a group of patients is not an institution ("Children's Oncology Group" is)
        ("Group 1: Untreated High-Risk prostate cancer group", "prostate adenocarcinoma", True),
        (
            "With a self-reported diagnosis of NSCLC, soft tissue sarcomas, or hematological malignancies",
            "diffuse large B-cell lymphoma",
            True,
        ),
    ],
)
def test_a_histology_of_one_organ_admits_that_organs_cancer(v, line, diagnosis, admitted):
    ctx = MatchContext(pack=load_pack(), vocab=v)
    parsed = parse_trial(record("NCT00000020", inclusion=[line]))
    dx = v.resolve_diagnosis(diagnosis).entry.id
    assert (relevance(dx, parsed, ctx).tier is not None) is admitted


def test_a_record_without_conditions_is_read_from_its_title(v):
    """A partial copy of a record (no conditions, no keywords): its title names whom it is for."""
    ctx = MatchContext(pack=load_pack(), vocab=v)
    rec = record("NCT00000027", inclusion=["Participant must be at least 18 years of age"])
    rec["protocolSection"]["identificationModule"]["briefTitle"] = (
        "Nirogacestat for Adults With Desmoid Tumor/Aggressive Fibromatosis (DT/AF)"
    )
    parsed = parse_trial(rec)
    assert relevance("desmoid_tumor", parsed, ctx).tier is not None
    assert relevance("osteosarcoma", parsed, ctx).tier is None
    with_condition = record("NCT00000028", conditions=["Osteosarcoma"])
    with_condition["protocolSection"]["identificationModule"]["briefTitle"] = (
        "A desmoid tumor study"
    )
    assert relevance("desmoid_tumor", parse_trial(with_condition), ctx).tier is None


def test_a_record_that_names_no_disease_is_shown_to_verify(v):
    """No conditions, no title, no cancer in the criteria, but a cancer trial's criteria:
    shown as a basket to verify, never hidden."""
    rec = record(
        "NCT90000027",
        [],
        ["Histologically or cytologically confirmed advanced or metastatic disease (unresectable) "
         "that is resistant to standard therapy"],
    )  # fmt: skip
    r = rel("gist", rec, v)
    assert r.tier == "basket" and "names no disease" in r.reason
    assert r.verify and "verify whom the trial is for" in r.verify[0]
