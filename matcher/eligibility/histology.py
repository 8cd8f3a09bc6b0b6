"""Histology (diagnoses a line requires or excludes): parsing and evaluation."""

from __future__ import annotations

import re
from typing import Any

from matcher.eligibility.clause import without_definitions
from matcher.eligibility.common import _diag_name, _safe_is_a
from matcher.eligibility.listitem import entity_spans, settled_by_item
from matcher.eligibility.model import MET, NOT_MET, UNKNOWN, Criterion
from matcher.eligibility.text import (
    _I,
    _OTHER_MALIGNANCY_RE,
    _POST_EXCLUDE_RE,
    _TOO_GENERIC_DIAGNOSES,
    _Ctx,
    _except_spans,
    _find_diagnoses,
    _positions,
)

_HISTO_NOISE_RE = re.compile(
    r"response evaluation criteria in solid tumou?rs?|anti-?cancer|anti-?tumou?r|anti-?neoplastic|"
    r"soft[- ]tissue (?:metastatic )?(?:lesions?|metastas\w+|involvement|component)|"
    r"cancer (?:therapy|treatment|drugs?)|anaplastic lymphoma kinase|\banti-[a-z0-9]+(?:-\d+)?\b|"
    r"national cancer institute|cancer institute|cancer center|cancer society|cancer staging|"
    # "tested by ARMS-PCR" (amplification refractory mutation system), not alveolar RMS
    r"\barms[- ]pcr\b|"
    # gene names that spell a cancer: NRAS, "neuroblastoma RAS viral oncogene homolog"
    r"neuroblastoma ras\b(?: viral)?(?: \(v-ras\))?(?: oncogene)?(?: homolog)?",
    _I,
)


def _histology(c: _Ctx) -> list[tuple]:
    vocab = c.vocab
    if vocab is None:
        return []
    if _OTHER_MALIGNANCY_RE.search(c.s) and _OTHER_MALIGNANCY_RE.search(
        without_definitions(c.plain)
    ):
        # a second-malignancy clause (checked first: cheaper than the vocabulary); not "in situ"
        # inside a definition of the line's own cancer ("NMIBC, defined as any T1, high-grade
        # Ta, and/or carcinoma in situ")
        return []
    text = _HISTO_NOISE_RE.sub(lambda m: " " * len(m.group(0)), c.plain)
    # "non-squamous NSCLC": the NSCLC is required, the squamous type excluded (the finder
    # would read "squamous NSCLC" and drop it as negated)
    nonsq = _NON_SQUAMOUS_RE.search(text)
    if nonsq:
        text = _NON_SQUAMOUS_RE.sub(lambda m: " " * len(m.group(0)), text)
    # each (diagnosis, spelling) once: its positions are all looked at below
    found = list(dict.fromkeys(_find_diagnoses(vocab, text)))
    if not found and not nonsq:
        return []
    low = text.lower()
    spans = _except_spans(low)
    main_ids: list[str] = []
    except_ids: list[str] = []
    post_ids: list[str] = []
    first_main: int | None = None
    # where each spelling stands: a shorter spelling inside a longer one found at the same
    # place ("leukemia" in "chronic myelocytic leukemia") is that longer mention, not its own
    where = {m: [(p, p + len(m)) for p in _positions(low, m.lower())] for _d, m in found}
    longer = [(a, b) for m, ps in where.items() for a, b in ps]
    for did, mention in found:
        if did in _TOO_GENERIC_DIAGNOSES:
            continue
        for pos in _positions(low, mention.lower()):
            end = pos + len(mention)
            if any(a <= pos and end <= b and b - a > end - pos for a, b in longer):
                continue
            if re.search(
                r"(?:therap\w*|treatment|chemotherapy|radiotherapy|surgery|resection)\s+for\s+(?:the\s+)?"
                r"(?:current\s+|study\s+|this\s+)?(?:[\w/-]+\s+){0,3}$|\bif (?:in )?(?:the )?$|"
                r"\b(?:prior|previous|previously|received|no)\b[^.;]{0,60}?(?:therap\w*|treatments?|"
                r"chemotherapy|regimens?|agents?|lines?)\s+(?:for|of)\s+(?:the\s+)?"
                r"(?:[\w/-]+\s+){0,6}$",
                low[max(0, pos - 120) : pos],
            ):
                continue  # "prior chemotherapy for stage IV adenocarcinoma": a therapy setting
            cns = _CNS_SITE_RE.search(low[max(0, pos - 80) : pos])
            if cns and (cns.group("inv") or _HAEM_RE.search(mention)):
                continue  # "central nervous system leukemia": a site of the disease (brain type)
            if _POST_EXCLUDE_RE.match(low[end:]):
                # "Adenocarcinoma of the prostate. Patients with pure small cell /
                # neuroendocrine tumors of the prostate are not permitted": that kind is
                # excluded, whatever the line requires
                if did not in post_ids:
                    post_ids.append(did)
                continue
            excepted = any(a <= pos < b for a, b in spans)
            target = except_ids if excepted else main_ids
            if did not in target:
                target.append(did)
            if not excepted and (first_main is None or pos < first_main):
                first_main = pos
    except_ids = [d for d in except_ids if d not in main_ids]
    out: list[tuple] = []
    if main_ids:
        pol = c.polarity_plain(text, first_main or 0)
        if (
            c.section == "inclusion"
            and pol == "require"
            and _NEGATED_LEAD_RE.search(text[: first_main or 0])
        ):
            # "Patients do not have histologic subtypes: GIST, desmoid, Ewing sarcoma": the
            # negation before the colon governs the list after it (under exclusions, "No
            # history of the following:" only restates the exclusion)
            pol = "exclude"
        out.append(("histology", pol, {"diagnoses": main_ids}))
        if except_ids and pol == "require":
            # an inclusion line listing alternatives never excludes one of them: when a listed
            # diagnosis falls under an excepted one ("solid tumor (other than glioma) ... or
            # glioblastoma"), the exception is only a sub-group rule (NOT_MET -> UNKNOWN)
            overlap = any(_safe_is_a(vocab, m, e) for m in main_ids for e in except_ids)
            out.append(
                ("histology", "exclude", {"diagnoses": except_ids}, {"conditional": overlap})
            )
    elif except_ids and c.section == "inclusion":
        out.append(("histology", "exclude", {"diagnoses": except_ids}))
    post_ids = [d for d in post_ids if d not in main_ids]
    if post_ids:
        out.append(("histology", "exclude", {"diagnoses": post_ids}))
    if nonsq:
        pol = c.polarity_plain(text, nonsq.start())
        if pol == "require":
            out.append(("histology", "exclude", {"diagnoses": ["squamous_cell_carcinoma"]}))
    return out


# the disease named as reaching the central nervous system ("CNS leukemia", "central nervous
# system (CNS) involvement of multiple myeloma"): the brain type reads it, not histology
_CNS_SITE_RE = re.compile(
    r"\b(?:cns|central nervous system|meningeal|leptomeningeal)\s*(?:\(cns\)\s*)?"
    r"(?P<inv>(?:involvement|infiltration|relapse|disease)\s+(?:of|by|with)\s+(?:the\s+)?"
    r"(?:[\w-]+\s+)?)?$",
    re.IGNORECASE,
)
_NEGATED_LEAD_RE = re.compile(
    r"\b(?:do(?:es)? not|must not|should not|cannot|no|without|never)\b[^.;:()]{0,60}:\s*$",
    re.IGNORECASE,
)
_NON_SQUAMOUS_RE = re.compile(r"\bnon[- ]?squamous(?:[- ]cell)?\b", re.IGNORECASE)
# "CNS leukemia" is the leukaemia's spread; "CNS sarcoma" is a sarcoma of the CNS (a histology)
_HAEM_RE = re.compile(r"leuka?emi|lymphoma|myeloma", re.IGNORECASE)


def _marker_settles(p: Any, ident: str, vocab: Any) -> tuple[str, str] | None:
    """("positive" | "negative", the result as recorded) when the patient's results settle
    the marker that defines subtype ``ident``; None when they do not (not recorded,
    conflicting, no such marker)."""
    from matcher.eligibility.biomarker import patient_marker_status

    entry = getattr(vocab, "diagnoses", {}).get(ident)
    names = getattr(entry, "defining_markers", ())
    if not names or not p.biomarkers:
        return None
    found = {}
    for n in names:
        status, evidence = patient_marker_status(p.biomarkers, n)
        if status is not None:
            found.setdefault(status, evidence)
    return next(iter(found.items())) if len(found) == 1 else None


def _may(may: Any, ident: str, other: str) -> bool:
    try:
        return bool(may(ident, other))
    except (KeyError, AttributeError):
        return False


def _ev_histology(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    # a subtype defined by a marker the patient's results settle ("AML" with "PML-RARA
    # fusion" is APL; "B-ALL" with "BCR-ABL1 negative" is not Ph+ ALL)
    settled: dict[str, tuple[str, str]] = {}
    if p.diagnosis:
        for i in c.values.get("diagnoses") or []:
            if i != p.diagnosis and _safe_is_a(vocab, i, p.diagnosis):
                got = _marker_settles(p, i, vocab)
                if got is not None:
                    settled[i] = got
    verdict, reason = _ev_histology_core(p, c, vocab, settled)
    if settled and verdict != UNKNOWN:
        evidence = next(iter(settled.values()))[1]
        return verdict, f"{reason} (read from the recorded result {evidence!r})"
    return verdict, reason


def _ev_histology_core(
    p: Any, c: Criterion, vocab: Any, settled: dict[str, tuple[str, str]]
) -> tuple[str, str]:
    ids = c.values.get("diagnoses") or []
    names = ", ".join(_diag_name(vocab, i) for i in ids)
    if not p.diagnosis:
        return (
            UNKNOWN,
            f"diagnosis not recorded: verify ({'requires' if c.polarity == 'require' else 'excludes'} {names})",
        )
    pname = p.diagnosis_name or p.diagnosis
    lineage = set(p.diagnosis_lineage or [p.diagnosis])
    hit = [i for i in ids if i in lineage or _safe_is_a(vocab, p.diagnosis, i)]
    broader = [i for i in ids if _safe_is_a(vocab, i, p.diagnosis) and i != p.diagnosis]
    hit += [i for i, (s, _e) in settled.items() if s == "positive"]
    broader = [i for i in broader if i not in settled]
    # "adenocarcinoma" for a patient recorded as NSCLC: a subtype of the patient's diagnosis
    # may be of that type (lung adenocarcinoma), so the subtype decides
    may = getattr(vocab, "may_be", None)
    broader += [
        i
        for i in ids
        if i not in broader and i not in settled and may is not None and _may(may, p.diagnosis, i)
    ]
    entry = getattr(vocab, "diagnoses", {}).get(p.diagnosis)
    mixed = [i for i in ids if i in getattr(entry, "mixed_types", ())]
    if mixed and not hit:
        verb = "requires" if c.polarity == "require" else "excludes"
        return (
            UNKNOWN,
            f"{pname} is partly {_diag_name(vocab, mixed[0])}; trial {verb} {names}: verify",
        )
    if c.polarity == "require":
        if hit:
            return MET, f"{pname} is {_diag_name(vocab, hit[0])}; trial requires {names}"
        if broader:
            return (
                UNKNOWN,
                f"diagnosis {pname} (unspecified subtype); trial requires {names}: verify subtype",
            )
        return NOT_MET, f"{pname} is not among {names} required by the trial"
    if hit:
        return NOT_MET, f"{pname} is {_diag_name(vocab, hit[0])}; trial excludes {names}"
    if broader:
        return (
            UNKNOWN,
            f"diagnosis {pname} (unspecified subtype); trial excludes {names}: verify subtype",
        )
    return MET, f"{pname} is not among excluded {names}"


def settled_listed_diagnosis(p: Any, c: Criterion, vocab: Any) -> str | None:
    """Why a NOT_MET on an excluded histology holds whatever the line's unread words say
    ("Squamous cell carcinoma (including adenosquamous carcinoma); Small cell lung carcinoma
    (including ... mixed ...)" excludes an adenosquamous patient by its first item), or None:
    ``listitem.settled_by_item`` on the diagnoses of the line the patient's diagnosis is."""
    if c.polarity != "exclude" or not c.unexplained or vocab is None or not p.diagnosis:
        return None
    lineage = set(p.diagnosis_lineage or [p.diagnosis])
    hit_ids = {i for i in c.values.get("diagnoses") or [] if i in lineage}
    if not hit_ids:
        return None
    return settled_by_item(c, hit_ids, entity_spans(_find_diagnoses(vocab, c.text), c.text))
