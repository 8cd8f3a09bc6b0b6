"""HLA type ("HLA-A*02:01 positive", "HLA-A*02:01, *02:05 or *02:06"): parsing and evaluation.

T-cell receptor therapies enrol by HLA allele (afamitresgene autoleucel for synovial sarcoma
and MRCLS needs HLA-A*02:01, *02:05 or *02:06). A line naming one or more alleles of a locus
is a requirement in the inclusion section and an exclusion in the exclusion section (or
when negated: "HLA-A*02:01 negative", "not HLA-A*02"). Alleles are compared at the
resolution both sides state: "A*02" (allele group) holds for any A*02 allele; "A*02:01" needs
the protein field. "HLA-A2" (serological) reads as the A*02 group.

The patient's HLA type is read from the biomarker entries as written ("HLA-A*02:01",
"HLA-A*24:02/A*01:01", "HLA-A2 negative"). A patient is positive for a wanted allele when
an entry names it (or names a narrower allele of it); negative when an entry says that allele
(or its group) is negative, or when two alleles of the locus are typed and neither is a wanted
one (a full genotype). A group-level type against a protein-level requirement ("HLA-A*02"
recorded, "*02:01" wanted), a single typed allele, or no HLA entry at all is UNKNOWN.
"""

from __future__ import annotations

import re
from typing import Any

from matcher.eligibility.model import MET, NOT_MET, UNKNOWN, Criterion
from matcher.eligibility.text import _I, _Ctx

_LOCI = r"DRB1|DQB1|DPB1|DRB3|DRB4|DRB5|A|B|C"
# "HLA-A*02:01", "HLA-A*0201", "HLA-A 02:01", "HLA-A02", "HLA-A2" (serological)
_ALLELE_RE = re.compile(
    rf"\bHLA[- ]?(?P<locus>{_LOCI})\s*(?P<star>\*)?\s*(?P<group>\d{{1,2}})"
    r"(?:(?::|(?<=\d\d))(?P<protein>\d{2,3}))?(?:[:\d]*[A-Z]?)?(?![\w])",
    _I,
)
# a continuation of a list after a first allele: ", *02:05 or *02:06", "/02:06" (a star or a
# colon marks it: ", 18 years" is no allele)
_MORE_RE = re.compile(
    r"^\s*(?:,|/|\bor\b|\band/or\b|\band\b)\s*(?:or\s+)?"
    rf"(?:(?P<loc2>{_LOCI})?\*(?P<group>\d{{2}})(?::(?P<protein>\d{{2,3}}))?|(?P<g2>\d{{2}}):(?P<p2>\d{{2,3}}))\b",
    _I,
)
_NEGATIVE_AFTER_RE = re.compile(
    r"^[\s)*:\d,/-]*(?:negative|neg\b|-negative|not (?:present|detected))", _I
)
_NEGATED_BEFORE_RE = re.compile(
    r"\b(?:not|non|without|lack\w*)\s+(?:be\s+|carry\s+|have\s+|an?\s+)?$", _I
)
# a line that only asks for the test ("HLA typing will be performed", "consent to HLA
# screening"): no allele requirement
_TESTING_ONLY_RE = re.compile(r"\b(?:typing|screening|testing|test)\b", _I)
_STATUS_WORD_RE = re.compile(r"\bpositiv|\bnegativ|\bmust\b|\brequired\b|\bexpress", _I)


def _alleles_in(text: str) -> list[tuple[int, int, str, str, str | None]]:
    """(start, end, locus, group, protein or None) of every allele named, lists expanded."""
    out: list[tuple[int, int, str, str, str | None]] = []
    for m in _ALLELE_RE.finditer(text):
        locus = m.group("locus").upper()
        if re.match(r"\s*/\s*\d", text[m.end() :]):
            continue  # "HLA-DRB1 8/8 matched": a match score of a donor, not an allele
        if not m.group("star") and (
            locus not in ("A", "B", "C") or not re.match(r"HLA-?[ABC]\d", m.group(0), _I)
        ):
            continue  # without a star only the serological "HLA-A2", "HLA-B27"
        group = m.group("group").zfill(2)
        protein = m.group("protein")  # "HLA-A2" (serological): the A*02 group, no protein
        out.append((m.start(), m.end(), locus, group, protein))
        end = m.end()
        while True:
            more = _MORE_RE.match(text[end:])
            if not more:
                break
            group = more.group("group") or more.group("g2")
            protein = more.group("protein") or more.group("p2")
            locus = (more.group("loc2") or locus).upper()
            out.append((end, end + more.end(), locus, group, protein))
            end += more.end()
    return out


def _hla(c: _Ctx) -> list[tuple[str, str, dict]]:
    text = c.plain
    found = _alleles_in(text)
    if not found:
        return []
    if _TESTING_ONLY_RE.search(text) and not _STATUS_WORD_RE.search(text):
        return []
    first = found[0][0]
    negated = bool(_NEGATED_BEFORE_RE.search(text[max(0, first - 30) : first])) or bool(
        _NEGATIVE_AFTER_RE.match(text[found[-1][1] :])
    )
    polarity = c.polarity(first)
    if negated:
        polarity = "exclude" if polarity == "require" else "require"
    alleles = [
        {"locus": loc, "group": grp, "protein": prot}
        for _a, _b, loc, grp, prot in dict.fromkeys(found)
    ]
    uniq = []
    for a in alleles:
        if a not in uniq:
            uniq.append(a)
    return [("hla", polarity, {"alleles": uniq})]


def _label(a: dict) -> str:
    return f"HLA-{a['locus']}*{a['group']}" + (f":{a['protein']}" if a.get("protein") else "")


def _covers(want: dict, have: dict) -> str:
    """'yes' when the patient's allele ``have`` is the wanted one (or narrower), 'no' when it
    is another allele of the locus, 'unsure' when the patient's type is coarser."""
    if want["locus"] != have["locus"]:
        return "no"
    if want["group"] != have["group"]:
        return "no"
    if want.get("protein") is None:
        return "yes"
    if have.get("protein") is None:
        return "unsure"
    return "yes" if want["protein"] == have["protein"] else "no"


def _patient_hla(biomarkers: list[str] | None) -> tuple[list[dict], list[dict]]:
    """(typed alleles, alleles recorded negative) from the patient's biomarker entries."""
    typed: list[dict] = []
    negative: list[dict] = []
    for entry in biomarkers or []:
        for a, b, loc, grp, prot in _alleles_in(entry):
            allele = {"locus": loc, "group": grp, "protein": prot}
            neg = _NEGATIVE_AFTER_RE.match(entry[b:]) or _NEGATED_BEFORE_RE.search(entry[:a])
            (negative if neg else typed).append(allele)
    return typed, negative


def _ev_hla(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    wanted = c.values.get("alleles") or []
    desc = " or ".join(_label(a) for a in wanted)
    verb = "requires" if c.polarity == "require" else "excludes"
    if not wanted:
        return UNKNOWN, "to review: HLA type not read"
    typed, negative = _patient_hla(p.biomarkers)
    if not typed and not negative:
        return UNKNOWN, f"HLA type not recorded: verify (trial {verb} {desc})"
    hits = [h for h in typed for w in wanted if _covers(w, h) == "yes"]
    if hits:
        said = f"HLA type {_label(hits[0])} recorded; trial {verb} {desc}"
        return (MET if c.polarity == "require" else NOT_MET), said
    coarse = [h for h in typed for w in wanted if _covers(w, h) == "unsure"]
    if coarse:
        return UNKNOWN, (
            f"HLA type {_label(coarse[0])} recorded at a lower resolution than {desc}: verify"
        )
    # each wanted allele recorded negative (itself, or its whole group)
    ruled_out = all(
        any(
            _covers(n, w) == "yes" or (n["protein"] is None and _covers(n, w) != "no")
            for n in negative
        )
        for w in wanted
    )
    loci = {w["locus"] for w in wanted}
    genotyped = all(sum(1 for h in typed if h["locus"] == loc) >= 2 for loc in loci)
    if ruled_out or genotyped:
        have = ", ".join(_label(h) for h in typed if h["locus"] in loci)
        neg = ", ".join(_label(n) + " negative" for n in negative if n["locus"] in loci)
        said = "; ".join(x for x in (have and f"HLA type {have}", neg) if x)
        return (NOT_MET if c.polarity == "require" else MET), f"{said}; trial {verb} {desc}"
    have = ", ".join(_label(h) for h in typed) or "none typed"
    return UNKNOWN, f"HLA type {have} recorded, not the whole genotype; trial {verb} {desc}: verify"
