"""The knowledge pack: PDQ standard options and Table 9 targeted agents as validated data.

In: ``criteria/seeds.yaml`` (the two PDQ seed texts the pack encodes) and
``criteria/options/<id>.yaml`` (one option each, with ``<id>.cases.yaml`` beside it).
Out: ``load_pack()`` -> :class:`Pack`; ``evaluate_options(patient, pack, config)`` ->
:class:`PatientOptions`, whose ``to_dict()`` is the ``trialmatch options --json`` shape.

The rule language of ``applies_when`` and the case-file format are documented in
``criteria/README.md``. Nothing here touches the network or the trial store.
"""

from __future__ import annotations

import functools
import hashlib
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from matcher.errors import KnowledgeError, MatcherError
from matcher.patient import METASTATIC_SITES, Patient, Therapy
from matcher.resources import criteria_dir

# Option ids that reports, tests and external checks refer to (fixed by issue 3), in display order.
REQUIRED_OPTION_IDS = (
    "adult-single-agent-chemotherapy",
    "adult-doxorubicin-combination",
    "adult-pulmonary-metastasectomy",
    "adult-hepatic-metastasectomy-unclear",
    "adult-older-patient-sequential",
    "child-multimodal-therapy",
    "child-pulmonary-metastasectomy",
    "child-stereotactic-radiotherapy",
    "targeted-sunitinib-asps",
    "targeted-cediranib-asps",
    "targeted-sunitinib-sft",
    "targeted-sirolimus-pecoma",
    "targeted-crizotinib-imt",
    "targeted-imatinib-tgct",
    "targeted-imatinib-chordoma",
    "targeted-imatinib-dfsp",
)

STATUSES = ("applies", "possibly_applies", "not_applicable")
STS = "soft_tissue_sarcoma"  # what both summaries' standard options are about
KINDS = ("standard", "caveat", "targeted")
GROUPS = ("adult", "child", "any")
SUMMARY_NAMES = {
    "adult_sts": "adult stage IV soft tissue sarcoma",
    "child_nrsts": "childhood metastatic soft tissue sarcoma",
}
# Procedure ids an option may recommend when the vocabulary has no procedures file.
PROCEDURES = (
    "surgery",
    "pulmonary_metastasectomy",
    "hepatic_metastasectomy",
    "radiation_therapy",
    "stereotactic_radiotherapy",
)
KIND_LABELS = {
    "standard": "standard option",
    "caveat": "caveat, not a recommendation",
    "targeted": "under clinical evaluation, not standard",
}
AYA_NOTE = (
    "The adult and childhood summaries overlap for adolescents and young adults: at ages "
    "{lo:g} to {hi:g} both are shown, each labelled (thresholds are configurable)."
)

# ---- schema ------------------------------------------------------------------------------
# key -> (required, expected type(s)). Unknown keys are rejected with this list.
OPTION_SCHEMA: dict[str, tuple[bool, type | tuple[type, ...]]] = {
    "id": (True, str),
    "title": (True, str),
    "kind": (True, str),
    "summary": (True, str),
    "population": (True, dict),
    "applies_when": (True, list),
    "recommends": (True, dict),
    "rationale": (True, list),
    "evidence_level": (False, dict),
    "outcomes": (False, list),
    "citations": (True, list),
    "caveats": (True, list),
    "informative": (False, list),
    "seed_source": (True, dict),
}
POPULATION_KEYS = {"group": (True, str), "text": (True, str)}
RECOMMENDS_KEYS = {
    "agents": (False, list),
    "optional_agents": (False, list),
    "first_line": (False, str),
    "procedures": (False, list),
    "strategy": (True, str),
}
RATIONALE_KEYS = {"quote": (True, str), "section": (True, str)}
EVIDENCE_KEYS = {"level": (True, str), "ref": (True, int), "quote": (True, str)}
OUTCOME_KEYS = {"measure": (True, str), "value": (True, str), "quote": (True, str)}
CITATION_KEYS = {
    "seed": (True, str),
    "section": (True, str),
    "refs": (True, list),
    "references": (False, dict),
    "note": (False, str),
}
INFORMATIVE_KEYS = {"field": (True, str), "note": (True, str)}
SEED_SOURCE_KEYS = {"file": (True, str), "section": (True, str)}
SEED_KEYS = {
    "file": (True, str),
    "summary": (True, str),
    "title": (True, str),
    "source": (True, str),
    "sections": (True, list),
    "reference_list_printed": (True, bool),
    "reference_count": (True, int),
    "note": (False, str),
}
CASES_KEYS = {"option": (True, str), "cases": (True, list)}
CASE_KEYS = {
    "name": (True, str),
    "patient": (True, dict),
    "expect": (True, str),
    "known_gap": (False, str),
    "reasons_include": (False, list),
    "verify_include": (False, list),
    "agents_received": (False, list),
    "agents_remaining": (False, list),
    "not_covered": (False, bool),
}
# Rule keys of ``applies_when`` (one key per rule) and the shape of their value.
RULE_KEYS = (
    "metastatic",
    "age_years",
    "diagnosis_is_a",
    "metastatic_sites_include",
    "primary_controlled",
    "biomarker",
)
# Patient fields whose value the informative notes may echo.
INFORMATIVE_FIELDS = ("growth", "lung_metastases_count", "primary_controlled", "metastatic_sites")


@dataclass(frozen=True)
class ScopeConfig:
    """Age thresholds of the scope rules (years).

    ``child_max_age``: under it the childhood summary applies, at or over it the adult one.
    ``aya_max_age``: from ``child_max_age`` through this age (whole years) both are shown,
    labelled. ``older_patient_age``: from this age the older-patient option applies -- the
    summary names no age; 65 is this tool's choice, not the summary's.
    """

    child_max_age: float = 18
    aya_max_age: float = 21
    older_patient_age: float = 65

    def __post_init__(self) -> None:
        for f in fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
                raise KnowledgeError(
                    f"scope threshold must be a non-negative number of years, got {value!r}",
                    key=f.name,
                )
        if self.aya_max_age < self.child_max_age:
            raise KnowledgeError(
                f"aya_max_age ({self.aya_max_age:g}) is below child_max_age "
                f"({self.child_max_age:g}); raise it or lower child_max_age",
                key="aya_max_age",
            )

    def is_adult(self, age: float) -> bool:
        return age >= self.child_max_age

    def is_child_scope(self, age: float) -> bool:
        """Childhood options: under ``child_max_age``, or in the AYA overlap."""
        return age < self.child_max_age or self.is_aya(age)

    def is_aya(self, age: float) -> bool:
        return self.child_max_age <= age and math.floor(age) <= self.aya_max_age


@dataclass
class Option:
    """One validated option file (``data`` is the YAML mapping as loaded)."""

    id: str
    path: Path
    data: dict
    cases: list[dict]
    cases_path: Path
    flat_citations: list[dict] = field(default_factory=list)  # resolved once at load

    @property
    def kind(self) -> str:
        return self.data["kind"]

    @property
    def group(self) -> str:
        return self.data["population"]["group"]

    @property
    def title(self) -> str:
        return self.data["title"]

    @property
    def agents(self) -> list[str]:
        rec = self.data["recommends"]
        return list(rec.get("agents", [])) + list(rec.get("optional_agents", []))

    @property
    def label(self) -> str:
        if self.kind == "targeted":
            return KIND_LABELS["targeted"]
        summary = "adult summary" if self.group == "adult" else "childhood summary"
        return f"{KIND_LABELS[self.kind]} ({summary})"


@dataclass
class Pack:
    """The loaded knowledge pack. ``options`` is ordered: required ids first."""

    options: dict[str, Option]
    seeds: dict[str, dict]
    version: str
    root: Path
    vocab: Any = None  # the matcher.vocab.Vocab the pack was validated against

    def targeted_agents(self, diagnosis_id: str) -> list[tuple[str, str]]:
        """(drug id, option id) of every Table 9 agent listed for this diagnosis or an ancestor."""
        lineage = set(_lineage(diagnosis_id, self.vocab))
        out = []
        for opt in self.options.values():
            if opt.kind != "targeted":
                continue
            targets = _diagnosis_targets(opt)
            if targets & lineage:
                out.extend((drug, opt.id) for drug in opt.data["recommends"].get("agents", []))
        return out

    def citations(self, option_id: str) -> list[dict]:
        """One dict per cited reference: seed, section, ref, text (None when not printed), note."""
        return [dict(c) for c in self.options[option_id].flat_citations]


# ---- loading -----------------------------------------------------------------------------
def _read_yaml(path: Path) -> object:
    try:
        with path.open(encoding="utf-8") as fh:
            return yaml.safe_load(fh)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise KnowledgeError(
            f"{where}not valid YAML ({exc}); fix the syntax", path=str(path)
        ) from exc
    except OSError as exc:
        raise KnowledgeError(f"cannot read: {exc.strerror}", path=str(path)) from exc


def _check_mapping(
    value: object, schema: dict[str, tuple[bool, type | tuple[type, ...]]], path: Path, where: str
) -> dict:
    """Reject unknown keys (listing the allowed ones), missing required keys and wrong types."""
    if not isinstance(value, dict):
        raise KnowledgeError(
            f"expected a mapping, got {type(value).__name__}", path=str(path), key=where
        )
    allowed = ", ".join(schema)
    for key in value:
        if key not in schema:
            name = f"{where}.{key}" if where else str(key)
            raise KnowledgeError(f"unknown key; allowed keys: {allowed}", path=str(path), key=name)
    for key, (required, typ) in schema.items():
        name = f"{where}.{key}" if where else key
        if key not in value or value[key] is None:
            if required:
                raise KnowledgeError(
                    f"required key missing (allowed keys: {allowed})", path=str(path), key=name
                )
            continue
        if not isinstance(value[key], typ) or (typ is int and isinstance(value[key], bool)):
            want = typ.__name__ if isinstance(typ, type) else " or ".join(t.__name__ for t in typ)
            raise KnowledgeError(
                f"expected {want}, got {type(value[key]).__name__} {value[key]!r}",
                path=str(path),
                key=name,
            )
    return value


def _vocab():
    from matcher.vocab import load_vocab

    return load_vocab()


def _known_drug(drug_id: str) -> bool:
    try:
        _vocab().drug(drug_id)
    except (KeyError, MatcherError):
        return False
    return True


def _known_diagnosis(diagnosis_id: str) -> bool:
    return diagnosis_id in _vocab().diagnoses


def _lineage(diagnosis_id: str, vocab) -> tuple[str, ...]:
    try:
        return tuple(vocab.diagnosis(diagnosis_id).lineage)
    except (KeyError, MatcherError):
        return (diagnosis_id,)


def _diagnosis_targets(opt: Option) -> set[str]:
    return {d for rule in opt.data["applies_when"] for d in rule.get("diagnosis_is_a", [])}


def _validate_rule(rule: object, path: Path, where: str) -> None:
    if not isinstance(rule, dict) or len(rule) != 1:
        raise KnowledgeError(
            f"each rule is a mapping with exactly one key; allowed rule keys: {', '.join(RULE_KEYS)}",
            path=str(path),
            key=where,
        )
    ((key, value),) = rule.items()
    name = f"{where}.{key}"
    if key not in RULE_KEYS:
        raise KnowledgeError(
            f"unknown rule; allowed rule keys: {', '.join(RULE_KEYS)}", path=str(path), key=name
        )
    if key in ("metastatic", "primary_controlled"):
        if not isinstance(value, bool):
            raise KnowledgeError(f"expected true or false, got {value!r}", path=str(path), key=name)
    elif key == "age_years":
        _check_mapping(
            value,
            {"min": (False, (int, float, str)), "max": (False, (int, float, str))},
            path,
            name,
        )
        config_names = {f.name for f in fields(ScopeConfig)}
        for bound in value.values():
            if isinstance(bound, str) and bound not in config_names:
                raise KnowledgeError(
                    f"age bound {bound!r} is neither a number nor a ScopeConfig threshold "
                    f"({', '.join(sorted(config_names))})",
                    path=str(path),
                    key=name,
                )
    elif key == "diagnosis_is_a":
        if not isinstance(value, list) or not value or not all(isinstance(v, str) for v in value):
            raise KnowledgeError(
                "expected a non-empty list of diagnosis ids", path=str(path), key=name
            )
        for diag in value:
            if not _known_diagnosis(diag):
                raise KnowledgeError(
                    f"diagnosis id {diag!r} is not in criteria/vocab/diagnoses.yaml; use a canonical id",
                    path=str(path),
                    key=name,
                )
    elif key == "metastatic_sites_include":
        sites = [value] if isinstance(value, str) else value
        if (
            not isinstance(sites, list)
            or not sites
            or any(s not in METASTATIC_SITES for s in sites)
        ):
            raise KnowledgeError(
                f"expected a site or list of sites from {', '.join(METASTATIC_SITES)}, got {value!r}",
                path=str(path),
                key=name,
            )
    elif key == "biomarker":
        _check_mapping(value, {"name": (True, str), "required": (True, str)}, path, name)
        if value["required"] not in ("positive", "negative"):
            raise KnowledgeError(
                f"required must be 'positive' or 'negative', got {value['required']!r}",
                path=str(path),
                key=f"{name}.required",
            )


def _validate_seeds(path: Path) -> dict[str, dict]:
    data = _read_yaml(path)
    _check_mapping(data, {"seeds": (True, list)}, path, "")
    seeds = {}
    for i, seed in enumerate(data["seeds"]):
        _check_mapping(seed, SEED_KEYS, path, f"seeds[{i}]")
        if seed["summary"] not in SUMMARY_NAMES:
            raise KnowledgeError(
                f"unknown summary {seed['summary']!r}; allowed: {', '.join(SUMMARY_NAMES)}",
                path=str(path),
                key=f"seeds[{i}].summary",
            )
        seeds[seed["file"]] = seed
    return seeds


def _validate_option(data: object, path: Path, seeds: dict[str, dict]) -> dict:
    _check_mapping(data, OPTION_SCHEMA, path, "")
    p = str(path)
    if data["id"] != path.name.removesuffix(".yaml"):
        raise KnowledgeError(
            f"id {data['id']!r} does not match the file name; rename one", path=p, key="id"
        )
    for key, allowed in (("kind", KINDS), ("summary", tuple(SUMMARY_NAMES))):
        if data[key] not in allowed:
            raise KnowledgeError(
                f"got {data[key]!r}; allowed: {', '.join(allowed)}", path=p, key=key
            )
    _check_mapping(data["population"], POPULATION_KEYS, path, "population")
    if data["population"]["group"] not in GROUPS:
        raise KnowledgeError(f"allowed groups: {', '.join(GROUPS)}", path=p, key="population.group")
    if (data["kind"] == "targeted") != (data["population"]["group"] == "any"):
        raise KnowledgeError(
            "targeted options (Table 9) are for any age (group: any); standard and caveat options "
            "are adult or child",
            path=p,
            key="population.group",
        )
    for i, rule in enumerate(data["applies_when"]):
        _validate_rule(rule, path, f"applies_when[{i}]")
    rec = _check_mapping(data["recommends"], RECOMMENDS_KEYS, path, "recommends")
    for key in ("agents", "optional_agents"):
        for drug in rec.get(key, []):
            if not isinstance(drug, str) or not _known_drug(drug):
                raise KnowledgeError(
                    f"drug id {drug!r} is not in criteria/vocab/drugs.yaml; use the canonical generic id",
                    path=p,
                    key=f"recommends.{key}",
                )
    if "first_line" in rec and rec["first_line"] not in rec.get("agents", []):
        raise KnowledgeError(
            "first_line must be one of recommends.agents", path=p, key="recommends.first_line"
        )
    # The vocabulary's procedures when it has them (criteria/vocab/procedures.yaml).
    known_procs = tuple(getattr(_vocab(), "procedures", None) or PROCEDURES)
    for proc in rec.get("procedures", []):
        if proc not in known_procs:
            raise KnowledgeError(
                f"procedure {proc!r} unknown; allowed: {', '.join(known_procs)}",
                path=p,
                key="recommends.procedures",
            )
    if data["kind"] == "caveat" and (rec.get("agents") or rec.get("procedures")):
        raise KnowledgeError(
            "a caveat option recommends nothing: leave agents and procedures empty",
            path=p,
            key="recommends",
        )
    if not data["rationale"]:
        raise KnowledgeError(
            "at least one quote from the summary is required", path=p, key="rationale"
        )
    for i, item in enumerate(data["rationale"]):
        _check_mapping(item, RATIONALE_KEYS, path, f"rationale[{i}]")
    if "evidence_level" in data:
        _check_mapping(data["evidence_level"], EVIDENCE_KEYS, path, "evidence_level")
    for i, item in enumerate(data.get("outcomes") or []):
        _check_mapping(item, OUTCOME_KEYS, path, f"outcomes[{i}]")
    for i, item in enumerate(data.get("informative") or []):
        _check_mapping(item, INFORMATIVE_KEYS, path, f"informative[{i}]")
        if item["field"] not in INFORMATIVE_FIELDS:
            raise KnowledgeError(
                f"allowed fields: {', '.join(INFORMATIVE_FIELDS)}",
                path=p,
                key=f"informative[{i}].field",
            )
    if not all(isinstance(c, str) and c.strip() for c in data["caveats"]):
        raise KnowledgeError("caveats must be non-empty strings", path=p, key="caveats")
    _check_mapping(data["seed_source"], SEED_SOURCE_KEYS, path, "seed_source")
    if data["seed_source"]["file"] not in seeds:
        raise KnowledgeError(
            f"seed {data['seed_source']['file']!r} is not listed in criteria/seeds.yaml",
            path=p,
            key="seed_source.file",
        )
    _validate_citations(data, path, seeds)
    return data


def _validate_citations(data: dict, path: Path, seeds: dict[str, dict]) -> None:
    p = str(path)
    if not data["citations"]:
        raise KnowledgeError("at least one citation is required", path=p, key="citations")
    for i, cit in enumerate(data["citations"]):
        where = f"citations[{i}]"
        _check_mapping(cit, CITATION_KEYS, path, where)
        seed = seeds.get(cit["seed"])
        if seed is None:
            raise KnowledgeError(
                f"seed {cit['seed']!r} is not listed in criteria/seeds.yaml",
                path=p,
                key=f"{where}.seed",
            )
        refs = cit["refs"]
        if any(
            not isinstance(r, int) or isinstance(r, bool) or not 1 <= r <= seed["reference_count"]
            for r in refs
        ):
            raise KnowledgeError(
                f"refs must be reference numbers 1..{seed['reference_count']} of {cit['seed']}, got {refs!r}",
                path=p,
                key=f"{where}.refs",
            )
        strings = cit.get("references") or {}
        if seed["reference_list_printed"]:
            missing = [
                r for r in refs if not isinstance(strings.get(r), str) or not strings[r].strip()
            ]
            if missing:
                raise KnowledgeError(
                    f"the seed prints its reference list: give the full citation string for {missing}",
                    path=p,
                    key=f"{where}.references",
                )
            extra = sorted(set(strings) - set(refs))
            if extra:
                raise KnowledgeError(
                    f"strings given for refs not cited: {extra}", path=p, key=f"{where}.references"
                )
        elif strings:
            raise KnowledgeError(
                "this seed does not print its reference list: do not supply citation strings "
                "(state that in a note instead)",
                path=p,
                key=f"{where}.references",
            )
        if not refs and not cit.get("note"):
            raise KnowledgeError(
                "a citation without reference numbers needs a note saying why",
                path=p,
                key=f"{where}.note",
            )


def _validate_cases(data: object, path: Path, option_id: str) -> list[dict]:
    _check_mapping(data, CASES_KEYS, path, "")
    if data["option"] != option_id:
        raise KnowledgeError(
            f"cases are for {data['option']!r}, expected {option_id!r}",
            path=str(path),
            key="option",
        )
    if not data["cases"]:
        raise KnowledgeError("an option needs at least one case", path=str(path), key="cases")
    for i, case in enumerate(data["cases"]):
        _check_mapping(case, CASE_KEYS, path, f"cases[{i}]")
        if case["expect"] not in STATUSES:
            raise KnowledgeError(
                f"expect must be one of {', '.join(STATUSES)}",
                path=str(path),
                key=f"cases[{i}].expect",
            )
    return data["cases"]


def _pack_version(files: Iterable[Path], root: Path) -> str:
    digest = hashlib.sha256()
    for f in sorted(files):
        digest.update(f.relative_to(root).as_posix().encode())
        digest.update(b"\0")
        digest.update(f.read_bytes())
    return digest.hexdigest()[:12]


def load_pack(root: str | Path | None = None) -> Pack:
    """Load and validate the pack under ``root`` (default ``criteria_dir()``); cached per folder.

    Raises KnowledgeError naming the file and key for any schema violation, a missing required
    option, an option without a cases file, or citation strings that disagree between options.
    """
    return _load_pack_cached(str(Path(root) if root is not None else criteria_dir()))


@functools.lru_cache(maxsize=8)
def _load_pack_cached(root_str: str) -> Pack:
    root = Path(root_str)
    seeds_path = root / "seeds.yaml"
    if not seeds_path.is_file():
        raise KnowledgeError("missing seeds.yaml (the seed texts the pack encodes)", path=str(root))
    seeds = _validate_seeds(seeds_path)
    opt_dir = root / "options"
    files = sorted(p for p in opt_dir.glob("*.yaml") if not p.name.endswith(".cases.yaml"))
    options: dict[str, Option] = {}
    for path in files:
        data = _validate_option(_read_yaml(path), path, seeds)
        cases_path = path.with_name(f"{data['id']}.cases.yaml")
        if not cases_path.is_file():
            raise KnowledgeError(f"no cases file; add {cases_path.name} beside it", path=str(path))
        cases = _validate_cases(_read_yaml(cases_path), cases_path, data["id"])
        flat = _flatten_citations(data["citations"], seeds)
        options[data["id"]] = Option(data["id"], path, data, cases, cases_path, flat)
    for cases_path in opt_dir.glob("*.cases.yaml"):
        if cases_path.name.removesuffix(".cases.yaml") not in options:
            raise KnowledgeError(
                "cases file without an option file beside it", path=str(cases_path)
            )
    missing = [i for i in REQUIRED_OPTION_IDS if i not in options]
    if missing:
        raise KnowledgeError(f"required options missing: {', '.join(missing)}", path=str(opt_dir))
    _check_citation_consistency(options)
    ordered = {i: options[i] for i in REQUIRED_OPTION_IDS}
    ordered.update({i: options[i] for i in sorted(options) if i not in ordered})
    all_files = [p for p in root.rglob("*.yaml") if p.is_file()]
    return Pack(ordered, seeds, _pack_version(all_files, root), root, _vocab())


load_pack.cache_clear = _load_pack_cached.cache_clear  # type: ignore[attr-defined]


def _check_citation_consistency(options: dict[str, Option]) -> None:
    """The same (seed, reference number) must carry the same string in every option."""
    seen: dict[tuple[str, int], tuple[str, Path]] = {}
    for opt in options.values():
        for cit in opt.data["citations"]:
            for ref, text in (cit.get("references") or {}).items():
                key = (cit["seed"], ref)
                if key in seen and seen[key][0] != text:
                    raise KnowledgeError(
                        f"reference {ref} of {cit['seed']} differs from the string in {seen[key][1].name}; "
                        "copy it verbatim from the seed",
                        path=str(opt.path),
                        key="citations",
                    )
                seen.setdefault(key, (text, opt.path))


def _flatten_citations(citations: list[dict], seeds: dict[str, dict]) -> list[dict]:
    out = []
    for cit in citations:
        seed = seeds[cit["seed"]]
        base = {"seed": cit["seed"], "section": cit["section"]}
        if not cit["refs"]:
            out.append({**base, "ref": None, "text": None, "note": cit.get("note")})
        for ref in cit["refs"]:
            if seed["reference_list_printed"]:
                out.append(
                    {**base, "ref": ref, "text": cit["references"][ref], "note": cit.get("note")}
                )
            else:
                note = cit.get("note") or "full citation string not printed in the seed"
                out.append({**base, "ref": ref, "text": None, "note": note})
    return out


# ---- evaluation --------------------------------------------------------------------------
@dataclass
class OptionResult:
    """The verdict on one option for one patient."""

    id: str
    title: str
    kind: str
    label: str
    status: str
    reasons: list[str] = field(default_factory=list)
    verify: list[str] = field(default_factory=list)
    agents_received: list[str] = field(default_factory=list)
    agents_remaining: list[str] = field(default_factory=list)
    procedures: list[str] = field(default_factory=list)
    outcomes: list[str] = field(default_factory=list)
    evidence_level: str | None = None
    caveats: list[str] = field(default_factory=list)
    citations: list[dict] = field(default_factory=list)

    def to_dict(self) -> dict:
        return {
            "id": self.id,
            "status": self.status,
            "reasons": list(self.reasons),
            "verify": list(self.verify),
            "agents_received": list(self.agents_received),
            "agents_remaining": list(self.agents_remaining),
            "citations": [dict(c) for c in self.citations],
            "title": self.title,
            "kind": self.kind,
            "label": self.label,
            "procedures": list(self.procedures),
            "outcomes": list(self.outcomes),
            "evidence_level": self.evidence_level,
            "caveats": list(self.caveats),
        }


@dataclass
class PatientOptions:
    """Every option of the pack, evaluated for one patient (none dropped)."""

    patient_id: str
    options: list[OptionResult]
    not_covered_reason: str | None = None

    def to_dict(self) -> dict:
        """The ``trialmatch options --json`` shape (issue 3)."""
        return {
            "patient_id": self.patient_id,
            "options": [o.to_dict() for o in self.options],
            "not_covered_reason": self.not_covered_reason,
        }

    def to_text(self, patient: Patient | None = None) -> str:
        """Plain-text block for one patient: every option with status, reasons, agents,
        verify items, caveats and citations, ending with the disclaimer line."""
        from matcher import DISCLAIMER

        head = f"Patient {self.patient_id}"
        if patient is not None:
            bits = [patient.diagnosis_name or patient.diagnosis_text or "diagnosis unknown"]
            bits.append(f"age {patient.age:g}" if patient.age is not None else "age unknown")
            if patient.metastatic_sites:
                bits.append("metastatic: " + ", ".join(patient.metastatic_sites))
            elif patient.stage:
                bits.append(f"stage {patient.stage}")
            head += " -- " + "; ".join(bits)
        lines = [head]
        if self.not_covered_reason:
            lines.append(f"  NOT COVERED: {self.not_covered_reason}")
        for o in self.options:
            lines.append(f"  [{o.status}] {o.id}: {o.title}")
            lines.append(f"      {o.label}")
            for r in o.reasons:
                lines.append(f"      - {r}")
            if o.status == "not_applicable":
                continue
            if o.agents_received or o.agents_remaining:
                lines.append(
                    f"      agents received: {', '.join(o.agents_received) or 'none'}; "
                    f"remaining: {', '.join(o.agents_remaining) or 'none'}"
                )
            if o.procedures:
                lines.append(f"      procedures: {', '.join(o.procedures)}")
            for v in o.verify:
                lines.append(f"      verify: {v}")
            for out in o.outcomes:
                lines.append(f"      figure: {out}")
            if o.evidence_level:
                lines.append(f"      level of evidence: {o.evidence_level}")
            for c in o.caveats:
                lines.append(f"      caveat: {c}")
            lines.extend(f"      cite: {line}" for line in _citation_lines(o.citations))
        lines.append(DISCLAIMER)
        return "\n".join(lines)

    def by_id(self, option_id: str) -> OptionResult:
        for o in self.options:
            if o.id == option_id:
                return o
        raise KeyError(option_id)


def _citation_lines(citations: list[dict]) -> list[str]:
    """One line per printed reference string; references whose strings are not printed are
    grouped per seed section with the note, so nothing is implied that the seed lacks."""
    lines: list[str] = []
    grouped: dict[tuple[str, str, str], list[int]] = {}
    for c in citations:
        where = f"{c['seed']} ({c['section']})"
        if c["text"]:
            lines.append(f"{where} [{c['ref']}] {c['text']}")
        elif c["ref"] is None:
            lines.append(f"{where}: {c['note']}")
        else:
            grouped.setdefault((c["seed"], c["section"], c["note"] or ""), []).append(c["ref"])
    for (seed, section, note), refs in grouped.items():
        lines.append(f"{seed} ({section}) refs {', '.join(map(str, refs))}: {note}")
    return lines


MET, NOT_MET, UNKNOWN = "met", "not_met", "unknown"


@dataclass
class _Facts:
    """What the rules read, derived once per patient."""

    patient: Patient
    config: ScopeConfig
    diagnosis: object | None  # vocab Diagnosis, or None when unknown / not in the vocabulary
    lineage: tuple[str, ...]
    metastatic: bool | None
    metastatic_why: str
    received: dict[str, list[str]]  # drug id -> texts as given
    unspecified_classes: dict[str, list[str]]  # class id -> texts naming only a class
    unrecognised: list[str]  # prior-therapy texts that name no known drug or class
    vocab: Any  # the pack's matcher.vocab.Vocab


_STAGE_RE = re.compile(r"^\s*(?:stage\s*)?(IV|III|II|I)[A-C]?\s*$", re.IGNORECASE)


def _metastatic(p: Patient) -> tuple[bool | None, str]:
    if p.metastatic is not None:
        return p.metastatic, ""
    stage = (p.stage or "").strip()
    if stage.lower() == "metastatic":
        return True, "stage given as metastatic"
    if stage.lower() == "localized":
        return False, "stage given as localized"
    m = _STAGE_RE.match(stage)
    if m:
        roman = m.group(1).upper()
        return (
            (True, f"stage {stage} (taken as metastatic)")
            if roman == "IV"
            else (False, f"stage {stage}")
        )
    if p.metastatic_sites:
        return True, f"metastatic sites given ({', '.join(p.metastatic_sites)})"
    return None, "metastatic status unknown"


def _patient_facts(patient: Patient, config: ScopeConfig, vocab) -> _Facts:
    diag = None
    lineage: tuple[str, ...] = tuple(patient.diagnosis_lineage or ())
    if patient.diagnosis:
        try:
            diag = vocab.diagnosis(patient.diagnosis)
        except (KeyError, MatcherError):
            diag = None
        if diag is not None and not lineage:
            lineage = tuple(diag.lineage)
    received: dict[str, list[str]] = {}
    classes: dict[str, list[str]] = {}
    unrecognised: list[str] = []
    for t in patient.prior_therapies or []:
        if t.kind == "procedure":
            continue
        drug_id = t.name if t.kind == "drug" else _resolve_drug(t.text, vocab)
        if drug_id:
            received.setdefault(drug_id, []).append(t.text)
            continue
        # A class-only mention ("anthracycline-based chemotherapy") or an unknown regimen name:
        # the agents it may have included must be verified, never assumed either way.
        found = list(t.classes) or [c for c, _ in _find_classes(t.text, vocab)]
        for c in found:
            classes.setdefault(c, []).append(t.text)
        if not found:
            unrecognised.append(t.text)
    met, why = _metastatic(patient)
    return _Facts(patient, config, diag, lineage, met, why, received, classes, unrecognised, vocab)


def _find_classes(text: str, vocab) -> list[tuple[str, str]]:
    try:
        return vocab.find_drug_classes(text)
    except MatcherError:
        return []


def _resolve_drug(text: str, vocab) -> str | None:
    try:
        match = vocab.resolve_drug(text)
    except MatcherError:
        return None
    return match.entry.id if match is not None else None


def _age_bound(value: float | str, config: ScopeConfig) -> float:
    return getattr(config, value) if isinstance(value, str) else float(value)


def _rule_metastatic(want: bool, f: _Facts, _opt: Option) -> tuple[str, str]:
    if f.metastatic is None:
        return UNKNOWN, "metastatic: unknown -- verify whether the disease is metastatic (stage IV)"
    why = f" ({f.metastatic_why})" if f.metastatic_why else ""
    if f.metastatic == want:
        return MET, ("metastatic" if want else "not metastatic") + why
    if want:
        return NOT_MET, f"not metastatic{why}: this option is for metastatic disease"
    return NOT_MET, f"metastatic{why}: this option is for non-metastatic disease"


def _rule_age(bounds: dict, f: _Facts, _opt: Option) -> tuple[str, str]:
    age = f.patient.age
    lo = _age_bound(bounds["min"], f.config) if "min" in bounds else None
    hi = _age_bound(bounds["max"], f.config) if "max" in bounds else None
    tool_choice = " (the summary gives no age; this threshold is the tool's choice, configurable)"
    note = tool_choice if "older_patient_age" in (bounds.get("min"), bounds.get("max")) else ""
    if age is None:
        return UNKNOWN, "age: unknown -- verify the patient's age"
    if lo is not None and age < lo:
        return NOT_MET, f"age {age:g} is under {lo:g}{note}"
    if hi is not None and age >= hi:
        return NOT_MET, f"age {age:g} is {hi:g} or over{note}"
    span = (
        f"{lo:g} or over"
        if hi is None
        else f"under {hi:g}"
        if lo is None
        else f"{lo:g} to under {hi:g}"
    )
    return MET, f"age {age:g} ({span}){note}"


def _diagnosis_name(f: _Facts) -> str:
    return (
        f.patient.diagnosis_name or getattr(f.diagnosis, "name", None) or f.patient.diagnosis or "?"
    )


def _rule_diagnosis(targets: list[str], f: _Facts, _opt: Option) -> tuple[str, str]:
    names = " or ".join(_lc_first(_name_of(t, f.vocab)) for t in targets)
    if not f.patient.diagnosis:
        return UNKNOWN, f"diagnosis: unknown -- verify whether it is {names}"
    hit = next((t for t in targets if t in f.lineage), None)
    if hit == f.patient.diagnosis:
        return MET, f"diagnosis {_diagnosis_name(f)}"
    if hit is not None:
        return MET, f"diagnosis {_diagnosis_name(f)} (a {_lc_first(_name_of(hit, f.vocab))})"
    # A less specific diagnosis (an ancestor of the target) cannot decide: the subtype is needed.
    if any(f.patient.diagnosis in _lineage(t, f.vocab) for t in targets):
        return (
            UNKNOWN,
            f"diagnosis: {_diagnosis_name(f)} is not specific -- verify whether the subtype is {names}",
        )
    why = f"diagnosis {_diagnosis_name(f)} is not {'a ' if STS in targets else ''}{names}"
    separate = getattr(f.diagnosis, "separate_summary", None)
    if separate:
        why += f" (it has its own PDQ summary: {separate})"
    return NOT_MET, why


def _lc_first(name: str) -> str:
    """'Soft tissue sarcoma' -> 'soft tissue sarcoma'; keeps acronyms ('PEComa') intact."""
    return name[:1].lower() + name[1:] if name[1:2].islower() else name


def _name_of(diagnosis_id: str, vocab) -> str:
    try:
        return vocab.diagnosis(diagnosis_id).name
    except (KeyError, MatcherError):
        return diagnosis_id


def _rule_sites(value: str | list[str], f: _Facts, _opt: Option) -> tuple[str, str]:
    wanted = [value] if isinstance(value, str) else list(value)
    label = " or ".join(s.replace("_", " ") for s in wanted)
    sites = f.patient.metastatic_sites
    if f.metastatic is False:
        return NOT_MET, f"no {label} metastases (not metastatic)"
    if not sites:
        # None, or an empty list beside metastatic disease: the sites are not stated.
        return UNKNOWN, f"metastatic_sites: unknown -- verify whether there are {label} metastases"
    if any(s in sites for s in wanted):
        return MET, f"{label} metastases (sites: {', '.join(sites)})"
    return NOT_MET, f"no {label} metastases recorded (sites: {', '.join(sites)})"


def _rule_primary(want: bool, f: _Facts, _opt: Option) -> tuple[str, str]:
    value = f.patient.primary_controlled
    if value is None:
        return (
            UNKNOWN,
            "primary_controlled: unknown -- verify whether the primary tumour is under control",
        )
    if value == want:
        return MET, "primary tumour under control" if value else "primary tumour not under control"
    return NOT_MET, (
        "primary tumour not under control: the summary conditions this on a controlled primary"
        if want
        else "primary tumour under control"
    )


_NEG_WORDS = (
    r"negative|neg|not\s+(?:detected|rearranged|amplified|present|found)|absent|wild[\s-]?type|wt"
)
_POS_WORDS = (
    r"positive|pos|rearrange(?:d|ment)s?|fusions?|translocat(?:ed|ion)|amplif(?:ied|ication)|"
    r"mutat(?:ed|ions?)|mutant|detected|present|overexpress(?:ed|ion)|"
    # a named alteration: "exon 19 deletion", "exon 20 insertion", "exon 14 skipping", "G12C"
    r"deletions?|insertions?|skipping|ex(?:on)?\s?\d{1,2}\s?(?:del|ins)|[a-z]\d{2,4}(?:[a-z]|del|ins|fs)"
)
_UNSURE_WORDS = (
    r"unknown|pending|equivocal|indeterminate|not\s+(?:tested|done|assessed)|unavailable|n/?a"
)


def biomarker_status(texts: list[str] | None, name: str) -> tuple[str | None, str]:
    """Read free-text biomarker entries for ``name`` (e.g. "ALK").

    Returns (status, evidence): status "positive", "negative" or None (unknown: not tested,
    not mentioned, pending, or conflicting); evidence is the text it was read from or why not.
    """
    if texts is None:
        return None, "no biomarker results given"
    pat = re.compile(rf"(?<![A-Za-z0-9]){re.escape(name)}(?![A-Za-z0-9])", re.IGNORECASE)
    found: list[tuple[str, str]] = []
    for text in texts:
        if not pat.search(text):
            continue
        low = text.lower()
        n = re.escape(name.lower())
        if re.search(_UNSURE_WORDS, low) and not re.search(
            rf"\b(?:{_NEG_WORDS})\b|\b(?:{_POS_WORDS})\b", low
        ):
            found.append(("unknown", text))
        elif (
            re.search(rf"\b(?:no|without|non)\b[^,;]*{n}", low)
            or re.search(rf"{n}\s*(?:[:=(]\s*)?-(?![a-z0-9])", low)
            or re.search(rf"{n}\b[^,;]*\b(?:{_NEG_WORDS})\b", low)
            or re.search(rf"\b(?:{_NEG_WORDS})\b[^,;]*{n}", low)
        ):
            found.append(("negative", text))
        elif re.search(rf"{n}\s*(?:[:=(]\s*)?\+", low) or re.search(rf"\b(?:{_POS_WORDS})\b", low):
            found.append(("positive", text))
        else:
            found.append(("unknown", text))
    decided = {s for s, _ in found if s != "unknown"}
    if not found:
        return None, f"no {name} result among the biomarkers given"
    if len(decided) > 1:
        return None, f"conflicting {name} results: " + "; ".join(repr(t) for _, t in found)
    if not decided:
        return None, f"{name} result not conclusive: " + "; ".join(repr(t) for _, t in found)
    status = decided.pop()
    return status, next(t for s, t in found if s == status)


def _rule_biomarker(spec: dict, f: _Facts, _opt: Option) -> tuple[str, str]:
    name, required = spec["name"], spec["required"]
    status, evidence = biomarker_status(f.patient.biomarkers, name)
    if status is None:
        return UNKNOWN, f"biomarkers: {name} status unknown ({evidence}) -- verify {name} status"
    if status == required:
        return MET, f"{name} {status} ({evidence!r})"
    return (
        NOT_MET,
        f"{name} {status} ({evidence!r}): the cited study is in {name}-{required} disease",
    )


_RULES: dict[str, Callable[[object, _Facts, Option], tuple[str, str]]] = {
    "metastatic": _rule_metastatic,
    "age_years": _rule_age,
    "diagnosis_is_a": _rule_diagnosis,
    "metastatic_sites_include": _rule_sites,
    "primary_controlled": _rule_primary,
    "biomarker": _rule_biomarker,
}
assert set(_RULES) == set(RULE_KEYS)


def _scope_groups(f: _Facts) -> set[str] | None:
    """Which population groups the patient's age puts in scope; None when age is unknown."""
    age = f.patient.age
    if age is None:
        return None
    groups = set()
    if f.config.is_adult(age):
        groups.add("adult")
    if f.config.is_child_scope(age):
        groups.add("child")
    return groups


def _not_covered_reason(
    f: _Facts, pack: Pack, results: list[tuple[OptionResult, bool]]
) -> str | None:
    """Why the patient gets no standard option at all, or None.

    Non-sarcoma cancers; or a known diagnosis for which every standard / caveat option of the
    patient's age scope failed on the diagnosis (a separate PDQ summary, not a soft tissue
    sarcoma). Table 9 agents for the diagnosis are named, since they are still evaluated.
    """
    if _is_non_sarcoma(f):
        family = getattr(f.diagnosis, "family", None)
        what = f" (family: {family})" if family else ""
        return (
            f"{_diagnosis_name(f)}{what} is not a sarcoma: the encoded PDQ summaries cover soft tissue "
            "sarcoma only, so no options are given; use the guideline for this cancer"
        )
    if f.diagnosis is None:
        return None
    groups = _scope_groups(f)
    scoped = [
        blocked
        for res, blocked in results
        if res.kind != "targeted" and (groups is None or pack.options[res.id].group in groups)
    ]
    if not scoped or not all(scoped):
        return None
    summaries = sorted(
        {pack.options[r.id].data["summary"] for r, _ in results if r.kind != "targeted"}
    )
    reason = (
        f"{f.diagnosis.name} is not covered by the standard options of the encoded PDQ summaries ("
    )
    reason += "; ".join(SUMMARY_NAMES[s] for s in summaries) + ")"
    if f.diagnosis.separate_summary:
        reason += f": it has its own PDQ summary ({f.diagnosis.separate_summary}), which this pack does not encode"
    elif STS not in f.lineage:
        reason += ": it is not a soft tissue sarcoma"
    reason += "; no standard options are given"
    agents = pack.targeted_agents(f.diagnosis.id)
    if agents:
        listed = ", ".join(sorted({d for d, _ in agents}))
        reason += f". Table 9 lists {listed} for it (under clinical evaluation, not standard)"
    return reason


def _is_non_sarcoma(f: _Facts) -> bool:
    return f.patient.in_sarcoma_pack is False or (
        f.diagnosis is not None and not f.diagnosis.in_sarcoma_pack
    )


def _evaluate_one(opt: Option, f: _Facts, pack: Pack) -> tuple[OptionResult, bool]:
    """The verdict on one option, and whether the diagnosis alone ruled it out."""
    data = opt.data
    res = OptionResult(
        id=opt.id,
        title=opt.title,
        kind=opt.kind,
        label=opt.label,
        status="applies",
        procedures=list(data["recommends"].get("procedures", [])),
        outcomes=[f"{o['measure']}: {o['value']}" for o in data.get("outcomes") or []],
        evidence_level=(
            f"{data['evidence_level']['level']} (ref {data['evidence_level']['ref']}): "
            f"{data['evidence_level']['quote']}"
            if "evidence_level" in data
            else None
        ),
        caveats=list(data["caveats"]),
        citations=pack.citations(opt.id),
    )
    if _is_non_sarcoma(f):
        res.status = "not_applicable"
        res.reasons = [
            f"{_diagnosis_name(f)} is not a sarcoma: the encoded summaries cover soft tissue sarcoma only"
        ]
        return res, True

    blocked: list[str] = []
    met: list[str] = []
    verify: list[str] = []
    diag_blocked = False

    # Population (age) scope.
    age = f.patient.age
    cfg = f.config
    if opt.group in ("adult", "child"):
        if age is None:
            verify.append(
                f"age: unknown -- verify it (adult summary from {cfg.child_max_age:g}; childhood summary "
                f"under {cfg.child_max_age:g}, and through {cfg.aya_max_age:g} in the overlap)"
            )
        elif opt.group == "adult" and not cfg.is_adult(age):
            blocked.append(
                f"age {age:g}: the adult summary applies from {cfg.child_max_age:g}; see the childhood options"
            )
        elif opt.group == "child" and not cfg.is_child_scope(age):
            blocked.append(
                f"age {age:g}: the childhood summary applies under {cfg.child_max_age:g} "
                f"(through {cfg.aya_max_age:g} in the adolescent/young-adult overlap); see the adult options"
            )
        elif cfg.is_aya(age):
            res.label += "; adolescent/young-adult overlap"
            met.append(AYA_NOTE.format(lo=cfg.child_max_age, hi=cfg.aya_max_age))
        else:
            met.append(f"age {age:g}: {'adult' if opt.group == 'adult' else 'childhood'} summary")

        # A soft tissue sarcoma subtype with its own PDQ summary is outside this option's summary.
        if (
            f.diagnosis is not None
            and STS in f.lineage
            and data["summary"] not in (f.diagnosis.summaries or ())
        ):
            why = (
                f"{f.diagnosis.name} is not covered by the {SUMMARY_NAMES[data['summary']]} summary"
            )
            if f.diagnosis.separate_summary:
                why += f" (it has its own PDQ summary: {f.diagnosis.separate_summary})"
            blocked.append(why)
            diag_blocked = True

    for rule in data["applies_when"]:
        ((key, value),) = rule.items()
        outcome, reason = _RULES[key](value, f, opt)
        {MET: met, NOT_MET: blocked, UNKNOWN: verify}[outcome].append(reason)
        if key == "diagnosis_is_a" and outcome == NOT_MET:
            diag_blocked = True

    if opt.kind == "targeted":
        met.append("Table 9 agent: under clinical evaluation, not standard")

    if blocked:
        res.status = "not_applicable"
    elif verify:
        res.status = "possibly_applies"
    # A not-applicable option gives only what rules it out; the others, what was checked.
    res.reasons = blocked if blocked else met
    res.verify = [] if blocked else verify
    _agents(opt, f, res)
    _informative(opt, f, res)
    return res, diag_blocked


def _agents(opt: Option, f: _Facts, res: OptionResult) -> None:
    agents = opt.agents
    if not agents:
        return
    res.agents_received = [a for a in agents if a in f.received]
    res.agents_remaining = [a for a in agents if a not in f.received]
    if res.status == "not_applicable":
        return
    for a in res.agents_received:
        given = [t for t in f.received[a] if t.lower() != a.lower()]
        res.reasons.append(
            f"already received {a}"
            + (f" (given as {', '.join(repr(t) for t in given)})" if given else "")
        )
    if f.patient.prior_therapies is None:
        res.verify.append(
            "prior_therapies: unknown -- verify which of "
            + ", ".join(agents)
            + " the patient has already received (does not change the status)"
        )
    for cls, texts in f.unspecified_classes.items():
        in_class = [a for a in res.agents_remaining if cls in _drug_classes(a, f.vocab)]
        if in_class:
            res.verify.append(
                f"prior therapy {', '.join(repr(t) for t in texts)} names only a drug class ({cls}) -- "
                f"verify whether it was {' or '.join(in_class)}"
            )
    if f.unrecognised and res.agents_remaining:
        res.verify.append(
            f"prior therapy {', '.join(repr(t) for t in f.unrecognised)} not recognised -- verify "
            f"whether it included {', '.join(res.agents_remaining)}"
        )
    first = opt.data["recommends"].get("first_line")
    if first:
        if first in f.received:
            remaining = [a for a in res.agents_remaining if a != first]
            res.reasons.append(
                f"{first} (the summary's first-line agent) already received: not suggested again as first line; "
                + (
                    "single agents named in the summary not yet received: " + ", ".join(remaining)
                    if remaining
                    else "every single agent named in the summary has been received; the summary names no further agent"
                )
            )
        else:
            res.reasons.append(f"{first} is generally the first-line agent (per the summary)")


@functools.lru_cache(maxsize=256)
def _drug_classes(drug_id: str, vocab) -> tuple[str, ...]:
    try:
        return tuple(vocab.drug(drug_id).classes)
    except (KeyError, MatcherError):
        return ()


def _informative(opt: Option, f: _Facts, res: OptionResult) -> None:
    if res.status == "not_applicable":
        return
    for item in opt.data.get("informative") or []:
        value = getattr(f.patient, item["field"])
        if value is None:
            res.verify.append(
                f"{item['field']}: unknown -- {item['note']} (shown for review; does not change the status)"
            )
        else:
            shown = ", ".join(value) if isinstance(value, list) else value
            res.reasons.append(f"{item['field']}: {shown} -- {item['note']}")


def evaluate_options(
    patient: Patient, pack: Pack | None = None, config: ScopeConfig | None = None
) -> PatientOptions:
    """Evaluate every option of ``pack`` for ``patient``; options that do not apply are kept,
    with status ``not_applicable`` and their reason. Pure: no I/O beyond the cached pack/vocab."""
    pack = pack if pack is not None else load_pack()
    config = config if config is not None else ScopeConfig()
    facts = _patient_facts(patient, config, pack.vocab)
    results = [_evaluate_one(opt, facts, pack) for opt in pack.options.values()]
    not_covered = _not_covered_reason(facts, pack, results)
    if not_covered and _is_non_sarcoma(facts):
        for res, _ in results:
            res.reasons = [not_covered]
    return PatientOptions(patient.id, [r for r, _ in results], not_covered)


# ---- cases -------------------------------------------------------------------------------
_PATIENT_FIELDS = {f.name for f in fields(Patient)} - {
    "prior_therapies",
    "diagnosis_lineage",
    "diagnosis_name",
}
CASE_PATIENT_KEYS = tuple(sorted(_PATIENT_FIELDS | {"prior_drugs", "prior_therapies"}))


def patient_from_facts(facts: dict, *, where: str = "case") -> Patient:
    """Build a Patient from a case's ``patient:`` mapping.

    ``diagnosis`` is a vocabulary id (name, lineage and in_sarcoma_pack are filled from it);
    ``prior_drugs`` is a list of drug names in any spelling the vocabulary resolves (brand,
    salt, synonym); ``prior_therapies`` is a list of free texts (class-only mentions such as
    "anthracycline-based chemotherapy"). Any other key must be a Patient field.
    """
    unknown = sorted(set(facts) - set(CASE_PATIENT_KEYS))
    if unknown:
        raise KnowledgeError(
            f"unknown patient fact; allowed: {', '.join(CASE_PATIENT_KEYS)}",
            path=where,
            key=unknown[0],
        )
    kwargs = {k: v for k, v in facts.items() if k not in ("prior_drugs", "prior_therapies")}
    kwargs.setdefault("id", "case")
    v = _vocab()
    diag_id = kwargs.get("diagnosis")
    if diag_id:
        try:
            entry = v.diagnosis(diag_id)
        except (KeyError, MatcherError) as exc:
            raise KnowledgeError(
                f"diagnosis {diag_id!r} not in the vocabulary", path=where, key="diagnosis"
            ) from exc
        kwargs["diagnosis_name"] = entry.name
        kwargs["diagnosis_lineage"] = list(entry.lineage)
        kwargs.setdefault("in_sarcoma_pack", entry.in_sarcoma_pack)
    therapies = None
    if "prior_drugs" in facts or "prior_therapies" in facts:
        therapies = []
        for text in facts.get("prior_drugs") or []:
            match = v.resolve_drug(text)
            if match is None:
                raise KnowledgeError(
                    f"drug {text!r} does not resolve in the vocabulary",
                    path=where,
                    key="prior_drugs",
                )
            therapies.append(Therapy(text, match.entry.id, "drug", list(match.entry.classes)))
        for text in facts.get("prior_therapies") or []:
            classes = [c for c, _ in v.find_drug_classes(text)]
            therapies.append(Therapy(text, text, "unrecognised", classes))
    kwargs["prior_therapies"] = therapies
    return Patient(**kwargs)


@dataclass
class CaseResult:
    """One case run: ``ok`` False with ``problem`` when the result differs from the file."""

    option_id: str
    name: str
    expect: str
    got: str
    known_gap: str | None
    ok: bool
    problem: str = ""


def run_case(
    pack: Pack, option_id: str, case: dict, config: ScopeConfig | None = None
) -> CaseResult:
    """Evaluate one case of ``option_id`` and compare every expectation it states."""
    where = f"{pack.options[option_id].cases_path.name}, case {case['name']!r}"
    patient = patient_from_facts(case["patient"], where=where)
    result = evaluate_options(patient, pack, config)
    got = result.by_id(option_id)
    problems = []
    if got.status != case["expect"]:
        problems.append(
            f"status {got.status}, expected {case['expect']} (reasons: {got.reasons}; verify: {got.verify})"
        )
    for key, texts in (("reasons_include", got.reasons), ("verify_include", got.verify)):
        for needle in case.get(key, []):
            if not any(needle.lower() in t.lower() for t in texts):
                problems.append(f"{key}: no item contains {needle!r} (got {texts})")
    for key in ("agents_received", "agents_remaining"):
        if key in case and getattr(got, key) != case[key]:
            problems.append(f"{key}: got {getattr(got, key)}, expected {case[key]}")
    if "not_covered" in case and (result.not_covered_reason is not None) != case["not_covered"]:
        problems.append(f"not_covered_reason: got {result.not_covered_reason!r}")
    return CaseResult(
        option_id,
        case["name"],
        case["expect"],
        got.status,
        case.get("known_gap"),
        not problems,
        "; ".join(problems),
    )


def check_pack(pack: Pack | None = None) -> list[CaseResult]:
    """Run every case of every option; returns all results (check ``.ok``)."""
    pack = pack if pack is not None else load_pack()
    return [run_case(pack, oid, case) for oid, opt in pack.options.items() for case in opt.cases]


__all__ = [
    "REQUIRED_OPTION_IDS",
    "STATUSES",
    "ScopeConfig",
    "Option",
    "Pack",
    "OptionResult",
    "PatientOptions",
    "CaseResult",
    "load_pack",
    "evaluate_options",
    "biomarker_status",
    "patient_from_facts",
    "run_case",
    "check_pack",
]
