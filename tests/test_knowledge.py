"""The knowledge pack: every cases file, the schema, the scope rules, faithfulness to the
seeds (copies in fixtures/seeds/), the README mapping, and the CLI."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from matcher import DISCLAIMER
from matcher.cli import batch_exit_code, cli
from matcher.errors import KnowledgeError
from matcher.knowledge import (
    REQUIRED_OPTION_IDS,
    STATUSES,
    ScopeConfig,
    biomarker_status,
    evaluate_options,
    load_pack,
    patient_from_facts,
    run_case,
)

ROOT = Path(__file__).resolve().parent.parent
CRITERIA = ROOT / "criteria"
OPTIONS_DIR = CRITERIA / "options"
SEEDS_DIR = ROOT / "fixtures" / "seeds"
OPTIONS_FIXTURES = ROOT / "fixtures" / "options"
ADULT_SEED = "000_6c70745bc3b10cc6.txt"
CHILD_SEED = "004_b6741e001f26ebd4.txt"
STANDARD_IDS = [i for i in REQUIRED_OPTION_IDS if not i.startswith("targeted-")]
TARGETED_IDS = [i for i in REQUIRED_OPTION_IDS if i.startswith("targeted-")]


def _case_params() -> list:
    """(option id, case index) for every case of every cases file, read without the loader."""
    params = []
    for path in sorted(OPTIONS_DIR.glob("*.cases.yaml")):
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
        for i, case in enumerate(data["cases"]):
            tag = "GAP " if case.get("known_gap") else ""
            params.append(
                pytest.param(data["option"], i, id=f"{data['option']}[{i}] {tag}{case['name']}")
            )
    return params


@pytest.fixture(scope="module")
def pack():
    return load_pack()


# ---- cases ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("option_id", "index"), _case_params())
def test_case(pack, option_id, index):
    case = pack.options[option_id].cases[index]
    result = run_case(pack, option_id, case)
    assert result.ok, result.problem


@pytest.mark.parametrize("option_id", REQUIRED_OPTION_IDS)
def test_every_option_has_cases_and_citations(pack, option_id):
    opt = pack.options[option_id]
    assert opt.cases_path.name == f"{option_id}.cases.yaml"
    expects = {c["expect"] for c in opt.cases}
    # Each option is shown both applying and not applying, so no rule goes untested.
    assert {"applies", "not_applicable"} <= expects
    assert opt.data["citations"], "an option without citations"
    assert pack.citations(option_id)


def test_pack_has_exactly_the_required_options(pack):
    assert list(pack.options) == list(REQUIRED_OPTION_IDS)
    assert re.fullmatch(r"[0-9a-f]{12}", pack.version)


def test_known_gaps_are_written_down(pack):
    gaps = [c for o in pack.options.values() for c in o.cases if c.get("known_gap")]
    assert len(gaps) >= 10
    assert all(len(c["known_gap"]) > 40 for c in gaps)


# ---- schema --------------------------------------------------------------------------------
@pytest.fixture
def pack_copy(tmp_path, monkeypatch):
    """A writable copy of criteria/ (vocab included), used as the pack and vocab folder."""
    dest = tmp_path / "criteria"
    shutil.copytree(CRITERIA, dest)
    monkeypatch.setenv("TRIALMATCH_CRITERIA", str(dest))
    load_pack.cache_clear()
    yield dest
    load_pack.cache_clear()


def _edit(path: Path, fn) -> None:
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    fn(data)
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")


ALLOWED_OPTION_KEYS = (
    "id, title, kind, summary, population, applies_when, recommends, rationale, evidence_level, "
    "outcomes, citations, caveats, informative, seed_source"
)


SCHEMA_BREAKS = [
    # (file, mutation, expected key, expected message fragment)
    (
        "targeted-crizotinib-imt.yaml",
        lambda d: d.update(colour="blue"),
        "colour",
        f"unknown key; allowed keys: {ALLOWED_OPTION_KEYS}",
    ),
    (
        "targeted-crizotinib-imt.yaml",
        lambda d: d["applies_when"].append({"stage_is": "IV"}),
        "applies_when[3].stage_is",
        "allowed rule keys: metastatic, age_years, diagnosis_is_a",
    ),
    (
        "targeted-crizotinib-imt.yaml",
        lambda d: d["recommends"].update(agents=["crizotinibb"]),
        "recommends.agents",
        "not in criteria/vocab/drugs.yaml",
    ),
    (
        "targeted-crizotinib-imt.yaml",
        lambda d: d.pop("citations"),
        "citations",
        "required key missing",
    ),
    (
        "targeted-crizotinib-imt.yaml",
        lambda d: d.update(citations=[]),
        "citations",
        "at least one citation is required",
    ),
    (
        "targeted-crizotinib-imt.yaml",
        lambda d: d["citations"][0].update(references={}),
        "citations[0].references",
        "give the full citation string for [17]",
    ),
    (
        "child-multimodal-therapy.yaml",
        lambda d: d["citations"][1]["references"].update({6: "Pappo AS."}),
        "citations",
        "reference 6 of 004_b6741e001f26ebd4.txt differs from the string in child-multimodal-therapy",
    ),
    (
        "targeted-crizotinib-imt.yaml",
        lambda d: d["citations"][0].update(refs=[20]),
        "citations[0].refs",
        "reference numbers 1..19",
    ),
    (
        "targeted-crizotinib-imt.yaml",
        lambda d: d["applies_when"].append({"diagnosis_is_a": ["imt_typo"]}),
        "applies_when[3].diagnosis_is_a",
        "not in criteria/vocab/diagnoses.yaml",
    ),
    (
        "targeted-crizotinib-imt.yaml",
        lambda d: d["recommends"].update(colour=1),
        "recommends.colour",
        "allowed keys: agents, optional_agents, first_line, procedures, strategy",
    ),
    (
        "targeted-crizotinib-imt.yaml",
        lambda d: d["population"].update(group="adult"),
        "population.group",
        "targeted options (Table 9) are for any age",
    ),
    (
        "targeted-crizotinib-imt.yaml",
        lambda d: d.update(id="crizotinib"),
        "id",
        "does not match the file name",
    ),
    (
        "adult-pulmonary-metastasectomy.yaml",
        lambda d: d["citations"][0].update(references={1: "Invented citation."}),
        "citations[0].references",
        "does not print its reference list",
    ),
    (
        "adult-hepatic-metastasectomy-unclear.yaml",
        lambda d: d["recommends"].update(procedures=["hepatic_metastasectomy"]),
        "recommends",
        "a caveat option recommends nothing",
    ),
    (
        "adult-older-patient-sequential.yaml",
        lambda d: d["applies_when"].append({"age_years": {"min": "elderly"}}),
        "applies_when[3].age_years",
        "neither a number nor a ScopeConfig threshold",
    ),
    (
        "adult-single-agent-chemotherapy.yaml",
        lambda d: d["recommends"].update(first_line="vincristine"),
        "recommends.first_line",
        "first_line must be one of recommends.agents",
    ),
    (
        "child-stereotactic-radiotherapy.yaml",
        lambda d: d["recommends"].update(procedures=["cyberknife_typo"]),
        "recommends.procedures",
        "procedure 'cyberknife_typo' unknown; allowed: surgery,",
    ),
    (
        "targeted-crizotinib-imt.cases.yaml",
        lambda d: d["cases"][0].update(expect="maybe"),
        "cases[0].expect",
        "expect must be one of applies, possibly_applies, not_applicable",
    ),
    (
        "targeted-crizotinib-imt.cases.yaml",
        lambda d: d["cases"][0].update(expected="applies"),
        "cases[0].expected",
        "unknown key; allowed keys: name, patient, expect, known_gap",
    ),
    (
        "targeted-crizotinib-imt.cases.yaml",
        lambda d: d.update(cases=[]),
        "cases",
        "at least one case",
    ),
]


@pytest.mark.parametrize(
    ("filename", "mutate", "key", "message"),
    SCHEMA_BREAKS,
    ids=[f"{b[0]}:{b[2]}" for b in SCHEMA_BREAKS],
)
def test_schema_rejects(pack_copy, filename, mutate, key, message):
    _edit(pack_copy / "options" / filename, mutate)
    with pytest.raises(KnowledgeError) as info:
        load_pack()
    err = info.value
    assert err.path.endswith(filename)
    assert err.key == key
    assert message in str(err)
    assert str(err).startswith(f"{err.path}, key {key!r}: ")


def test_option_without_cases_file_is_rejected(pack_copy):
    (pack_copy / "options" / "targeted-imatinib-dfsp.cases.yaml").unlink()
    with pytest.raises(
        KnowledgeError, match="no cases file; add targeted-imatinib-dfsp.cases.yaml"
    ):
        load_pack()


def test_missing_required_option_is_rejected(pack_copy):
    (pack_copy / "options" / "targeted-imatinib-dfsp.yaml").unlink()
    (pack_copy / "options" / "targeted-imatinib-dfsp.cases.yaml").unlink()
    with pytest.raises(KnowledgeError, match="required options missing: targeted-imatinib-dfsp"):
        load_pack()


def test_invalid_yaml_names_line(pack_copy):
    (pack_copy / "options" / "targeted-imatinib-dfsp.yaml").write_text(
        "id: [unclosed\n", encoding="utf-8"
    )
    with pytest.raises(
        KnowledgeError, match=r"targeted-imatinib-dfsp.yaml: line 2, column 1: not valid YAML"
    ):
        load_pack()


def test_pack_version_follows_content(pack_copy):
    first = load_pack().version
    assert load_pack().version == first  # cached, stable
    path = pack_copy / "options" / "targeted-imatinib-dfsp.yaml"
    path.write_text(path.read_text(encoding="utf-8") + "# reviewed\n", encoding="utf-8")
    load_pack.cache_clear()
    assert load_pack().version != first


@pytest.mark.parametrize(
    ("kwargs", "key"),
    [
        ({"aya_max_age": 17}, "aya_max_age"),
        ({"older_patient_age": -1}, "older_patient_age"),
        ({"child_max_age": "18"}, "child_max_age"),
    ],
)
def test_scope_config_rejects(kwargs, key):
    with pytest.raises(KnowledgeError) as info:
        ScopeConfig(**kwargs)
    assert info.value.key == key


# ---- scope rules ---------------------------------------------------------------------------
MET_LUNG = {
    "metastatic": True,
    "metastatic_sites": ["lung"],
    "primary_controlled": True,
    "prior_drugs": [],
}

SCOPE_TABLE = [
    # (facts, {option id: status}, not_covered fragment or None)
    (
        {"age": 12, "diagnosis": "synovial_sarcoma", **MET_LUNG},
        {
            "child-multimodal-therapy": "applies",
            "child-pulmonary-metastasectomy": "applies",
            "adult-single-agent-chemotherapy": "not_applicable",
            "adult-pulmonary-metastasectomy": "not_applicable",
        },
        None,
    ),
    (
        {"age": 17.9, "diagnosis": "synovial_sarcoma", **MET_LUNG},
        {
            "child-multimodal-therapy": "applies",
            "adult-single-agent-chemotherapy": "not_applicable",
        },
        None,
    ),
    (
        {"age": 18, "diagnosis": "synovial_sarcoma", **MET_LUNG},
        {"child-multimodal-therapy": "applies", "adult-single-agent-chemotherapy": "applies"},
        None,
    ),
    (
        {"age": 21, "diagnosis": "synovial_sarcoma", **MET_LUNG},
        {"child-stereotactic-radiotherapy": "applies", "adult-pulmonary-metastasectomy": "applies"},
        None,
    ),
    (
        {"age": 22, "diagnosis": "synovial_sarcoma", **MET_LUNG},
        {
            "child-multimodal-therapy": "not_applicable",
            "adult-single-agent-chemotherapy": "applies",
        },
        None,
    ),
    (
        {"diagnosis": "leiomyosarcoma", **MET_LUNG},
        {
            i: "possibly_applies"
            for i in STANDARD_IDS
            if i != "adult-hepatic-metastasectomy-unclear"
        },
        None,
    ),
    (
        {"age": 40, "diagnosis": "leiomyosarcoma", "stage": "III"},
        {i: "not_applicable" for i in REQUIRED_OPTION_IDS},
        None,
    ),
    (
        {"age": 40, "diagnosis": "rhabdomyosarcoma", **MET_LUNG},
        {i: "not_applicable" for i in REQUIRED_OPTION_IDS},
        "own PDQ summary (Rhabdomyosarcoma)",
    ),
    (
        {"age": 8, "diagnosis": "embryonal_rhabdomyosarcoma", **MET_LUNG},
        {i: "not_applicable" for i in REQUIRED_OPTION_IDS},
        "own PDQ summary (Rhabdomyosarcoma)",
    ),
    (
        {"age": 15, "diagnosis": "ewing_sarcoma", **MET_LUNG},
        {i: "not_applicable" for i in REQUIRED_OPTION_IDS},
        "own PDQ summary (Ewing sarcoma)",
    ),
    (
        {"age": 15, "diagnosis": "osteosarcoma", **MET_LUNG},
        {i: "not_applicable" for i in REQUIRED_OPTION_IDS},
        "own PDQ summary (Osteosarcoma)",
    ),
    (
        {"age": 50, "diagnosis": "chondrosarcoma", **MET_LUNG},
        {i: "not_applicable" for i in REQUIRED_OPTION_IDS},
        "own PDQ summary (Chondrosarcoma)",
    ),
    (
        {"age": 50, "diagnosis": "gist", **MET_LUNG},
        {i: "not_applicable" for i in REQUIRED_OPTION_IDS},
        "own PDQ summary (Gastrointestinal stromal tumors)",
    ),
    (
        {"age": 50, "diagnosis": "kaposi_sarcoma", **MET_LUNG},
        {i: "not_applicable" for i in REQUIRED_OPTION_IDS},
        "own PDQ summary (Kaposi sarcoma)",
    ),
    (
        {"age": 30, "diagnosis": "desmoid_tumor", **MET_LUNG},
        {i: "not_applicable" for i in REQUIRED_OPTION_IDS},
        "own PDQ summary (Desmoid tumor)",
    ),
    (
        {"age": 12, "diagnosis": "chordoma", **MET_LUNG},
        {
            **{i: "not_applicable" for i in REQUIRED_OPTION_IDS},
            "targeted-imatinib-chordoma": "applies",
        },
        "Table 9 lists imatinib for it",
    ),
    (
        {"age": 45, "diagnosis": "tenosynovial_giant_cell_tumor", **MET_LUNG},
        {**{i: "not_applicable" for i in REQUIRED_OPTION_IDS}, "targeted-imatinib-tgct": "applies"},
        "it is not a soft tissue sarcoma",
    ),
    (
        {"age": 60, "diagnosis": "breast_cancer", **MET_LUNG},
        {i: "not_applicable" for i in REQUIRED_OPTION_IDS},
        "is not a sarcoma",
    ),
    (
        {"age": 60, "diagnosis": "lung_adenocarcinoma", **MET_LUNG},
        {i: "not_applicable" for i in REQUIRED_OPTION_IDS},
        "is not a sarcoma",
    ),
    (
        {"age": 30, "diagnosis": "alveolar_soft_part_sarcoma", **MET_LUNG},
        {
            "targeted-sunitinib-asps": "applies",
            "targeted-cediranib-asps": "applies",
            "adult-single-agent-chemotherapy": "applies",
            "targeted-sunitinib-sft": "not_applicable",
        },
        None,
    ),
    (
        {"age": 30, "diagnosis": "soft_tissue_sarcoma", **MET_LUNG},
        {
            "adult-single-agent-chemotherapy": "applies",
            "targeted-sunitinib-asps": "possibly_applies",
            "targeted-imatinib-chordoma": "not_applicable",
        },
        None,
    ),
    (
        {"age": 30, "diagnosis": "sarcoma", **MET_LUNG},
        {
            "adult-single-agent-chemotherapy": "possibly_applies",
            "targeted-imatinib-chordoma": "possibly_applies",
        },
        None,
    ),
]


@pytest.mark.parametrize(
    ("facts", "expected", "not_covered"),
    SCOPE_TABLE,
    ids=[f"{r[0].get('diagnosis')}-age{r[0].get('age')}" for r in SCOPE_TABLE],
)
def test_scope_rules(pack, facts, expected, not_covered):
    res = evaluate_options(patient_from_facts(facts), pack)
    got = {o.id: o.status for o in res.options}
    assert {k: got[k] for k in expected} == expected
    if not_covered is None:
        assert res.not_covered_reason is None
    else:
        assert not_covered in res.not_covered_reason
        for oid, status in expected.items():
            if status == "not_applicable" and not oid.startswith("targeted-"):
                assert res.by_id(oid).reasons, oid


@pytest.mark.parametrize("age", [18, 19.5, 21, 21.99])
def test_aya_overlap_is_labelled(pack, age):
    res = evaluate_options(
        patient_from_facts({"age": age, "diagnosis": "synovial_sarcoma", **MET_LUNG}), pack
    )
    for oid in ("adult-single-agent-chemotherapy", "child-multimodal-therapy"):
        opt = res.by_id(oid)
        assert opt.status == "applies"
        assert opt.label.endswith("; adolescent/young-adult overlap")
        assert any("overlap for adolescents and young adults" in r for r in opt.reasons)


@pytest.mark.parametrize(
    ("config", "age", "option_id", "status"),
    [
        (
            ScopeConfig(child_max_age=16, aya_max_age=18),
            17,
            "adult-single-agent-chemotherapy",
            "applies",
        ),
        (
            ScopeConfig(child_max_age=16, aya_max_age=18),
            19,
            "child-multimodal-therapy",
            "not_applicable",
        ),
        (
            ScopeConfig(child_max_age=16, aya_max_age=16),
            16.5,
            "child-multimodal-therapy",
            "applies",
        ),
        (ScopeConfig(older_patient_age=70), 68, "adult-older-patient-sequential", "not_applicable"),
        (ScopeConfig(older_patient_age=60), 62, "adult-older-patient-sequential", "applies"),
        (ScopeConfig(), 64.9, "adult-older-patient-sequential", "not_applicable"),
    ],
)
def test_thresholds_are_configurable(pack, config, age, option_id, status):
    res = evaluate_options(
        patient_from_facts({"age": age, "diagnosis": "leiomyosarcoma", **MET_LUNG}), pack, config
    )
    assert res.by_id(option_id).status == status


@settings(max_examples=200, deadline=None)
@given(age=st.floats(min_value=0, max_value=110, allow_nan=False))
def test_every_age_gets_adult_or_childhood_options(age):
    pack = load_pack()
    res = evaluate_options(
        patient_from_facts({"age": age, "diagnosis": "synovial_sarcoma", **MET_LUNG}), pack
    )
    adult = res.by_id("adult-single-agent-chemotherapy").status == "applies"
    child = res.by_id("child-multimodal-therapy").status == "applies"
    assert adult == (age >= 18)
    assert child == (age < 22)
    assert adult or child
    assert res.by_id("adult-older-patient-sequential").status == (
        "applies" if age >= 65 else "not_applicable"
    )


def test_older_threshold_is_labelled_as_the_tools_choice(pack):
    res = evaluate_options(
        patient_from_facts({"age": 70, "diagnosis": "leiomyosarcoma", **MET_LUNG}), pack
    )
    opt = res.by_id("adult-older-patient-sequential")
    assert (
        "age 70 (65 or over) (the summary gives no age; this threshold is the tool's choice, configurable)"
        in opt.reasons
    )
    assert any("is this tool's choice, not the summary's" in c for c in opt.caveats)


def test_unknown_field_is_a_verify_item_never_dropped(pack):
    res = evaluate_options(patient_from_facts({}), pack)
    assert len(res.options) == len(REQUIRED_OPTION_IDS)
    assert {o.status for o in res.options} == {"possibly_applies"}
    crizo = res.by_id("targeted-crizotinib-imt")
    assert [v.split(":")[0] for v in crizo.verify] == [
        "metastatic",
        "diagnosis",
        "biomarkers",
        "prior_therapies",
    ]


def test_targeted_options_are_labelled_not_standard(pack):
    res = evaluate_options(patient_from_facts({"age": 30, "diagnosis": "pecoma", **MET_LUNG}), pack)
    for oid in TARGETED_IDS:
        assert res.by_id(oid).label == "under clinical evaluation, not standard"
    assert res.by_id("targeted-sirolimus-pecoma").status == "applies"


@pytest.mark.parametrize(
    ("diagnosis", "expected"),
    [
        (
            "alveolar_soft_part_sarcoma",
            [("sunitinib", "targeted-sunitinib-asps"), ("cediranib", "targeted-cediranib-asps")],
        ),
        ("solitary_fibrous_tumor", [("sunitinib", "targeted-sunitinib-sft")]),
        ("pecoma", [("sirolimus", "targeted-sirolimus-pecoma")]),
        ("inflammatory_myofibroblastic_tumor", [("crizotinib", "targeted-crizotinib-imt")]),
        ("tenosynovial_giant_cell_tumor", [("imatinib", "targeted-imatinib-tgct")]),
        ("chordoma", [("imatinib", "targeted-imatinib-chordoma")]),
        ("dermatofibrosarcoma_protuberans", [("imatinib", "targeted-imatinib-dfsp")]),
        ("leiomyosarcoma", []),
        ("soft_tissue_sarcoma", []),
    ],
)
def test_targeted_agents(pack, diagnosis, expected):
    assert pack.targeted_agents(diagnosis) == expected


def test_to_dict_shape(pack):
    facts = {
        "id": "P1",
        "age": 61,
        "diagnosis": "leiomyosarcoma",
        **MET_LUNG,
        "prior_drugs": ["Adriamycin"],
    }
    d = evaluate_options(patient_from_facts(facts), pack).to_dict()
    assert list(d) == ["patient_id", "options", "not_covered_reason"]
    assert d["patient_id"] == "P1"
    assert [o["id"] for o in d["options"]] == list(REQUIRED_OPTION_IDS)
    required = [
        "id",
        "status",
        "reasons",
        "verify",
        "agents_received",
        "agents_remaining",
        "citations",
    ]
    for o in d["options"]:
        assert list(o)[:7] == required
        assert o["status"] in STATUSES
    single = d["options"][0]
    assert single["agents_received"] == ["doxorubicin"]
    assert single["agents_remaining"] == ["ifosfamide", "epirubicin", "gemcitabine", "paclitaxel"]
    assert single["citations"][0] == {
        "seed": ADULT_SEED,
        "section": "Standard treatment options",
        "ref": 4,
        "text": None,
        "note": "Full citation strings are not printed in the seed: its reference list is on page 2 "
        "of 2, which the seed does not include.",
    }
    assert json.loads(json.dumps(d)) == d


@pytest.mark.parametrize(
    ("texts", "status"),
    [
        (["ALK rearrangement"], "positive"),
        (["ALK positive"], "positive"),
        (["ALK+"], "positive"),
        (["ALK-rearranged"], "positive"),
        (["EML4-ALK fusion detected"], "positive"),
        (["ALK: positive (IHC)"], "positive"),
        (["ROS1 negative, ALK positive"], "positive"),
        (["ALK positive; ROS1 negative"], "positive"),
        (["ALK fusion not detected"], "negative"),
        (["ALK negative"], "negative"),
        (["ALK-"], "negative"),
        (["ALK -"], "negative"),
        (["no ALK rearrangement"], "negative"),
        (["ALK not rearranged"], "negative"),
        (["ALK FISH: not detected"], "negative"),
        (["ALK wild-type"], "negative"),
        (["ALK pending"], None),
        (["ALK"], None),
        (["ROS1 fusion"], None),
        (["BALKAN positive"], None),
        (["ALK IHC positive", "ALK FISH negative"], None),
        ([], None),
        (None, None),
    ],
)
def test_biomarker_status(texts, status):
    assert biomarker_status(texts, "ALK")[0] == status


# ---- faithfulness to the seeds ---------------------------------------------------------------
def _squash(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def _seed(name: str) -> str:
    return _squash((SEEDS_DIR / name).read_text(encoding="utf-8"))


def _child_references() -> dict[int, str]:
    refs = {}
    for line in (SEEDS_DIR / CHILD_SEED).read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\s+(\d+)\. (.+)$", line)
        if m:
            refs[int(m.group(1))] = m.group(2)
    return refs


@pytest.mark.parametrize("option_id", REQUIRED_OPTION_IDS)
def test_quotes_are_verbatim(pack, option_id):
    data = pack.options[option_id].data
    seed = _seed(data["seed_source"]["file"])
    quotes = [r["quote"] for r in data["rationale"]]
    quotes += [o["quote"] for o in data.get("outcomes") or []]
    if "evidence_level" in data:
        quotes.append(data["evidence_level"]["quote"])
    for q in quotes:
        assert _squash(q) in seed, q
    assert data["seed_source"]["section"] in seed


@pytest.mark.parametrize("option_id", REQUIRED_OPTION_IDS)
def test_citations_match_the_seed(pack, option_id):
    refs = _child_references()
    assert sorted(refs) == list(range(1, 20))
    for cit in pack.citations(option_id):
        assert cit["section"] in _seed(cit["seed"])
        if cit["seed"] == CHILD_SEED and cit["ref"] is not None:
            assert cit["text"] == refs[cit["ref"]]
        elif cit["seed"] == ADULT_SEED:
            assert cit["text"] is None
            assert (
                f"[{cit['ref']}" in _seed(ADULT_SEED)
                or f",{cit['ref']}" in _seed(ADULT_SEED)
                or cit["ref"] is None
            )
            assert "not printed in the seed" in cit["note"] or "no reference marker" in cit["note"]


def test_every_child_reference_is_cited(pack):
    cited = {
        c["ref"] for oid in pack.options for c in pack.citations(oid) if c["seed"] == CHILD_SEED
    }
    assert cited - {None} == set(range(1, 20))


def test_tgct_row_has_no_reference_number(pack):
    (cit,) = pack.citations("targeted-imatinib-tgct")
    assert cit["ref"] is None and cit["text"] is None
    assert "Table 9 prints no reference number for this row" in cit["note"]
    assert "Imatinib Tenosynovial giant cell tumor" in _seed(CHILD_SEED)


def test_evidence_level(pack):
    ev = pack.options["child-pulmonary-metastasectomy"].data["evidence_level"]
    assert (ev["level"], ev["ref"]) == ("3iiiA", 9)
    assert "[9][Level of evidence: 3iiiA]" in _seed(CHILD_SEED)


# ---- the README mapping ----------------------------------------------------------------------
_REF_LINE = re.compile(r"^\s*\d+\. [^:]+: ")  # "  12. Stacchiotti S, Negri T, ...: Title"
_SENTENCE_END = re.compile(r"(?<!Table \d\.)(?<=[.?!])((?:\[[^\]]*\])*)\s+(?=[A-Z])")


def seed_units(text: str) -> list[str]:
    """Every line of a seed cut into sentences (bullets and list numbers dropped), in order,
    without the printed reference list. Citation markers stay with their sentence."""
    units = []
    for line in text.splitlines():
        if not line.strip() or _REF_LINE.match(line):
            continue
        line = re.sub(r"^\s*(?:•|\d+\.)\s+", "", line).strip()
        parts = _SENTENCE_END.split(line)
        # split keeps the captured markers as separate items: glue them back on
        sentence = ""
        for i, part in enumerate(parts):
            if i % 2 == 0:
                sentence += part
            else:
                units.append(sentence + part)
                sentence = ""
        units.append(sentence)
    return [u.strip() for u in units if u.strip()]


def _readme_rows() -> list[tuple[str, str]]:
    rows = []
    for line in (CRITERIA / "README.md").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^\| \d+ \| (.*) \| (.*) \|$", line)
        if m:
            rows.append((m.group(1).replace("\\|", "|"), m.group(2)))
    return rows


@pytest.mark.parametrize("seed", [ADULT_SEED, CHILD_SEED])
def test_readme_maps_every_sentence(seed):
    mapped = {s for s, _ in _readme_rows()}
    units = seed_units((SEEDS_DIR / seed).read_text(encoding="utf-8"))
    assert len(units) > 20
    missing = [u for u in units if u not in mapped]
    assert not missing, missing


def test_readme_mapping_names_real_options():
    ids = set()
    for _, target in _readme_rows():
        found = re.findall(r"`([a-z0-9]+(?:-[a-z0-9]+)+)`", target)
        assert found or target.startswith("not encoded:"), target
        ids.update(found)
    assert ids <= set(REQUIRED_OPTION_IDS)
    assert ids == set(REQUIRED_OPTION_IDS)  # every option is traced to the seed


# ---- CLI --------------------------------------------------------------------------------------
def test_cli_criteria_check(pack):
    result = CliRunner().invoke(cli, ["criteria", "check"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == len(REQUIRED_OPTION_IDS) + 1
    assert lines[0].startswith("ok   adult-single-agent-chemotherapy  [standard, adult]  ")
    assert lines[13].startswith("ok   targeted-imatinib-tgct  [targeted, any]  ")
    assert lines[13].endswith("  10 cases (1 known gap), 1 citation")
    assert lines[8].endswith("  8 cases (0 known gaps), 2 citations")
    n_cases = sum(len(o.cases) for o in pack.options.values())
    assert lines[-1] == f"knowledge pack {load_pack().version}: 16 options, {n_cases} cases pass"


def test_cli_criteria_check_invalid(pack_copy):
    _edit(
        pack_copy / "options" / "targeted-sirolimus-pecoma.yaml", lambda d: d.update(colour="blue")
    )
    result = CliRunner().invoke(cli, ["criteria", "check"])
    assert result.exit_code == 1
    path = pack_copy / "options" / "targeted-sirolimus-pecoma.yaml"
    assert (
        result.output
        == f"Error: {path}, key 'colour': unknown key; allowed keys: {ALLOWED_OPTION_KEYS}\n"
    )


def test_cli_criteria_check_failing_case(pack_copy):
    _edit(
        pack_copy / "options" / "targeted-sirolimus-pecoma.cases.yaml",
        lambda d: d["cases"][0].update(expect="not_applicable"),
    )
    result = CliRunner().invoke(cli, ["criteria", "check"])
    assert result.exit_code == 1
    assert "FAIL targeted-sirolimus-pecoma" in result.output
    assert (
        "case failed: targeted-sirolimus-pecoma: 'metastatic pecoma, adult': status applies, expected not_applicable"
        in result.output
    )
    assert result.output.endswith(
        "Error: 1 case(s) failed; fix the option or its cases file in criteria/options/\n"
    )


def test_cli_options_json():
    result = CliRunner().invoke(
        cli, ["options", str(OPTIONS_FIXTURES / "patients.json"), "--json", "--as-of", "2025-01-01"]
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert [d["patient_id"] for d in data] == ["OPT-LMS", "OPT-IMT", "OPT-RMS", "OPT-CHILD"]
    lms = {o["id"]: o for o in data[0]["options"]}
    assert lms["adult-single-agent-chemotherapy"]["status"] == "applies"
    assert lms["adult-single-agent-chemotherapy"]["agents_received"] == ["doxorubicin"]
    assert lms["adult-single-agent-chemotherapy"]["agents_remaining"] == [
        "ifosfamide",
        "epirubicin",
        "gemcitabine",
        "paclitaxel",
    ]
    assert lms["adult-pulmonary-metastasectomy"]["status"] == "applies"
    assert lms["adult-hepatic-metastasectomy-unclear"]["status"] == "not_applicable"
    imt = {o["id"]: o for o in data[1]["options"]}
    assert imt["targeted-crizotinib-imt"]["status"] == "possibly_applies"
    assert "verify ALK status" in " ".join(imt["targeted-crizotinib-imt"]["verify"])
    assert data[2]["not_covered_reason"].startswith("Embryonal rhabdomyosarcoma is not covered")
    child = {o["id"]: o for o in data[3]["options"]}
    assert child["child-multimodal-therapy"]["status"] == "applies"
    assert child["adult-single-agent-chemotherapy"]["status"] == "not_applicable"


def test_cli_options_text():
    result = CliRunner().invoke(
        cli, ["options", str(OPTIONS_FIXTURES / "patients.json"), "--as-of", "2025-01-01"]
    )
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.count(DISCLAIMER + "\n") == 4
    assert "Patient OPT-LMS -- Leiomyosarcoma; age 58; metastatic: lung" in out
    assert "  [applies] adult-single-agent-chemotherapy: Single-agent chemotherapy" in out
    assert (
        "      agents received: doxorubicin; remaining: ifosfamide, epirubicin, gemcitabine, paclitaxel"
        in out
    )
    assert "      verify: biomarkers: ALK status unknown" in out
    assert "  NOT COVERED: Embryonal rhabdomyosarcoma is not covered" in out
    assert "[17] Butrynski JE, D'Adamo DR, Hornick JL, et al.: Crizotinib in ALK-rearranged" in out


def test_cli_options_partial_failure():
    result = CliRunner().invoke(cli, ["options", str(OPTIONS_FIXTURES / "one_bad.json"), "--json"])
    assert result.exit_code == 3
    data = json.loads(result.stdout)
    assert [d["patient_id"] for d in data] == ["OK-1"]
    assert "error:" in result.stderr and "BAD-2" in result.stderr


def test_cli_options_missing_file(tmp_path):
    result = CliRunner().invoke(cli, ["options", str(tmp_path / "nope.json")])
    assert result.exit_code == 2
    assert "does not exist" in result.output


def test_cli_options_malformed_file(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('[{"id": "X",', encoding="utf-8")
    result = CliRunner().invoke(cli, ["options", str(bad)])
    assert result.exit_code == 4  # nothing processed (README exit codes)
    assert result.output.startswith(f"Error: {bad}")


PATIENT_FILES = sorted(
    p for p in (ROOT / "fixtures" / "patients").iterdir() if p.suffix in (".json", ".csv")
)


@pytest.mark.parametrize("path", PATIENT_FILES, ids=[p.name for p in PATIENT_FILES])
def test_cli_options_on_every_patient_fixture(path):
    from matcher.patient import read_patients

    batch = read_patients(path)
    result = CliRunner().invoke(cli, ["options", str(path), "--json"])
    assert result.exit_code == batch_exit_code(len(batch.patients), len(batch.errors))
    data = json.loads(result.stdout)
    assert [d["patient_id"] for d in data] == [p.id for p in batch.patients]
    for d in data:
        assert len(d["options"]) == len(REQUIRED_OPTION_IDS)
