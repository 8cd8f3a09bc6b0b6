"""Disease status (relapsed / refractory / newly diagnosed): parsing and evaluation.

"Relapsed or refractory AML", "R/R B-ALL", "newly diagnosed multiple myeloma": the state of
the disease a trial admits or excludes, read against the patient's ``disease_status`` (from
the record, or from the diagnosis as written: "relapsed AML"). A patient whose record lists no
prior therapy at all (``prior_therapies: []``) is untreated, so not relapsed or refractory.
Only a clean contradiction (newly diagnosed against relapsed / refractory) gives NOT_MET; a
patient in remission, or with treatment but no status recorded, is UNKNOWN (a patient in
induction has had chemotherapy), except a therapy of a class given only after a prior line
(``later_line`` in the drug vocabulary: CAR T-cell therapy): that patient is not newly
diagnosed, though whether relapsed or refractory is not known.

"New diagnosed", "newly diagnoised" (sic), "de novo ALL" and "previously untreated AML" read
as newly diagnosed; "first complete remission" / "CR1" as a required remission, ruled out
only by a recorded relapsed or refractory status. Several statuses on one line are one
criterion whose statuses are alternatives ("relapsed or newly diagnosed AML"), and a line
that names relapse at all also admits relapsed disease ("in CR1 or in first relapse").
"""

from __future__ import annotations

import re
from typing import Any

from matcher.eligibility.model import MET, NOT_MET, UNKNOWN, Criterion
from matcher.eligibility.text import _I, _Ctx, untreated_way_in

_RR_RE = re.compile(
    r"\b(?:relapsed|refractory|r/r|relapse)\b(?:\s*(?:/|or|and/or|and|,)\s*"
    r"(?:relapsed|refractory|recurrent|relapse)\b)*",
    _I,
)
# "newly diagnosed", "new diagnosed", "newly diagnoised" (sic), "new diagnosis"
_ND_RE = re.compile(
    r"\bnew(?:ly)?[- ](?:diagnos(?:ed|is)|diagnoised)\b"
    # "de novo ALL" (not "de novo or secondary AML": there it is the disease's origin)
    r"|\bde[- ]novo\b(?=\s+(?:[\w+-]+\s+){0,2}?(?:acute|leuka?emi|aml\b|all\b|b-all|t-all|lymphom|myelom))"
    # "previously untreated AML": untreated blood cancer is newly diagnosed (a solid tumour
    # may recur after surgery alone, untreated by any drug)
    r"|\bpreviously[- ]untreated\b(?=\s+(?:[\w+()-]+\s+){0,3}?(?:acute|leuka?emi|aml\b|all\b|b-all|"
    r"t-all|cll\b|mds\b|cml\b|lymphom|myelom))",
    _I,
)
# "first complete remission", "CR1": a remission the trial requires
_CR1_RE = re.compile(
    r"\b(?:first|1st)\s+(?:complete\s+)?(?:morphologic(?:al)?\s+)?remission\b|\bcr\s?1\b"
    r"|\b(?:the\s+)?(?:first|1st)\s+cr\b",
    _I,
)
_ORIGIN_RE = re.compile(
    r"\bsecondary\b|therapy[- ]related|\bt-aml\b|\binduced\b|\btransformed\b|\barising\b", _I
)
# relapse named on the line but not typed ("in CR1 or in first relapse"): an alternative
_ANY_RELAPSE_RE = re.compile(r"\brelaps\w*|\brefractor\w*|\brecurren\w*|\br/r\b|\bsalvage\b", _I)
# the disease a status is said of, within a few words after it
_DISEASE_AFTER_RE = re.compile(
    r"^[\s,/()-]*(?:[\w+()/-]+\s+){0,5}?(?:disease|malignanc\w*|leuka?emi\w*|lymphom\w*|myelom\w*|"
    r"\baml\b|\ball\b|\bcll\b|\bsll\b|\bmds\b|\bcml\b|\bmpal\b|b-all|t-all|neoplasm\w*|cancer|"
    r"tumou?rs?|sarcom\w*|carcinom\w*|nhl|dlbcl|\bmm\b|hodgkin)",
    _I,
)
# therapy-history phrasing belongs to the prior-therapy criteria
_THERAPY_AFTER_RE = re.compile(
    r"^\s*(?:to|after|following|on|within|from)\b|^\s*(?:disease\s+)?(?:after|following)\b", _I
)


# "New diagnosed patients.": the trial's own disease is meant
_SUBJECT_AFTER_RE = re.compile(
    r"^[\s,]*(?:and\s+untreated\s+)?(?:patients?|participants?|subjects?|cases?)\b", _I
)
# "Ph-like ALL newly diagnosed;", "acute leukemia in CR1": the status said after the disease
_DISEASE_BEFORE_RE = re.compile(
    r"(?:leuka?emi\w*|lymphom\w*|myelom\w*|\baml|\ball|\bcll|\bmds|\bcml|b-all|t-all|disease|"
    r"malignanc\w*|cancer|sarcom\w*|tumou?rs?)\s*(?:\([^)]{0,30}\)\s*)?(?:[\w-]+\s+){0,2}?"
    r"(?:in\s+(?:the\s+)?)?$",
    _I,
)
_END_RE = re.compile(r"^\s*(?:[;,.)]|$)")
_THERAPY_BEFORE_RE = re.compile(
    r"(?:therap\w*|treatments?|chemotherapy|regimens?|cycles?|courses?|lines?|agents?|"
    r"transplant\w*)\s+(?:for|of|in)\s+(?:the\s+|their\s+)?$",
    _I,
)


def _status(c: _Ctx) -> list[tuple[str, str, dict]]:
    s = c.s
    found: list[tuple[str, list[str]]] = []  # (polarity, statuses) in line order
    for rx, status in (
        (_RR_RE, ["relapsed", "refractory"]),
        (_ND_RE, ["newly_diagnosed"]),
        (_CR1_RE, ["remission"]),
    ):
        for m in rx.finditer(s):
            after = s[m.end() : m.end() + 80]
            before = s[max(0, m.start() - 80) : m.start()]
            if rx is _ND_RE and m.group(0).lower().startswith("de") and _ORIGIN_RE.search(s):
                continue  # "de novo or secondary AML": the disease's origin
            if _THERAPY_AFTER_RE.match(after):
                continue
            if not (
                _DISEASE_AFTER_RE.match(after)
                or (rx is not _RR_RE and _SUBJECT_AFTER_RE.match(after))
                or (rx is not _RR_RE and _DISEASE_BEFORE_RE.search(before) and _END_RE.match(after))
                or (rx is _CR1_RE and _DISEASE_BEFORE_RE.search(before))
            ):
                continue
            if _THERAPY_BEFORE_RE.search(before):
                continue  # "chemotherapy for relapsed leukemia": a therapy setting
            if re.match(r"^[\s,]*(?:[\w-]+\s+){0,2}?metasta", after, _I):
                continue  # "untreated brain metastases": the brain criterion's
            found.append((c.polarity(m.start()), list(status)))
            break
    out: list[tuple[str, str, dict]] = []
    for pol in dict.fromkeys(p for p, _ in found):
        statuses: list[str] = []
        for p, st in found:
            if p == pol:
                statuses += [x for x in st if x not in statuses]
        if (
            pol == "require"
            and set(statuses) & {"newly_diagnosed", "remission"}
            and "relapsed" not in statuses
            and _ANY_RELAPSE_RE.search(s)
        ):
            statuses += ["relapsed", "refractory"]  # "CR1 or first relapse": either
        # "relapsed or newly diagnosed": one criterion, its statuses alternatives
        out.append(("disease_status", pol, {"status": statuses}))
    return out


_LABEL = {
    "newly_diagnosed": "newly diagnosed",
    "relapsed": "relapsed",
    "refractory": "refractory",
    "remission": "in remission",
}
# the remission a line requires is a first complete remission (the only one read)
_WANTED_LABEL = {**_LABEL, "remission": "first complete remission of the"}
_CONTRADICTS = {
    "newly_diagnosed": {"relapsed", "refractory"},
    "relapsed": {"newly_diagnosed"},
    "refractory": {"newly_diagnosed"},
    # (first complete remission, the only remission read) a relapsed disease is past its
    # first remission; a refractory one may reach it after a second induction, a newly
    # diagnosed one after the first: not contradictions
    "remission": {"relapsed"},
}


_FIRST_REMISSION_RE = re.compile(
    r"\b(?:first|1st)\s+(?:complete\s+)?(?:remission|cr)\b|\bcr\s*1\b|\bcr-1\b", _I
)


def _first_remission(p: Any) -> bool:
    """The diagnosis as written says the remission is the first ("AML in first complete
    remission", "CR1")."""
    return bool(p.diagnosis_text and _FIRST_REMISSION_RE.search(p.diagnosis_text))


def _later_line_therapy(p: Any, vocab: Any) -> str | None:
    """The prior therapy, as written, of a class given only after a prior line (CAR T-cell
    therapy: ``later_line`` in the drug vocabulary), or None."""
    classes = getattr(vocab, "drug_classes", None)
    if not classes or not p.prior_therapies:
        return None
    later = {cid for cid, k in classes.items() if getattr(k, "later_line", False)}
    if not later:
        return None
    for t in p.prior_therapies:
        if later & set(t.classes or []):
            return t.text
        written = t.kind == "unrecognised" and t.text and hasattr(vocab, "find_drug_classes")
        if written and any(cid in later for cid, _ in vocab.find_drug_classes(t.text)):
            return t.text  # recorded as the kind: "CAR T-cell therapy"
    return None


def _ev_disease_status(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    wanted = set(c.values.get("status") or [])
    desc = " or ".join(_WANTED_LABEL[x] for x in c.values.get("status") or [])
    own = getattr(p, "disease_status", None)
    how = "recorded"
    if own is None and p.prior_therapies == []:
        own, how = "newly_diagnosed", "untreated: no prior therapy recorded"
    verb = "requires" if c.polarity == "require" else "excludes"
    if own is None and wanted == {"newly_diagnosed"} and (later := _later_line_therapy(p, vocab)):
        # a therapy given only for relapsed or refractory disease: past its first line (whether
        # relapsed or refractory is not known, so only "newly diagnosed" is settled)
        said = f"had {later!r}, given only after a prior line: not newly diagnosed"
        if c.polarity == "require":
            return NOT_MET, f"{said}; trial requires newly diagnosed disease"
        return MET, f"{said}; trial excludes newly diagnosed disease"
    if own is None:
        return UNKNOWN, f"disease status not recorded: verify (trial {verb} {desc} disease)"
    said = f"disease {_LABEL[own]} ({how})"
    inside = own in wanted
    # every status the line admits must be ruled out ("relapsed or newly diagnosed")
    contradicts = bool(wanted) and all(own in _CONTRADICTS.get(w, set()) for w in wanted)
    if not contradicts and own == "remission" and how == "recorded" and _first_remission(p):
        # a first remission was never lost (no relapse) and was reached (not refractory)
        said = "disease in first remission (recorded)"
        contradicts = bool(wanted) and wanted <= {"relapsed", "refractory"}
    if contradicts and how != "recorded" and "remission" in wanted:
        contradicts = False  # a remission is never ruled out by an inferred status
    if c.polarity == "require":
        if inside:
            return MET, f"{said}; trial requires {desc} disease"
        if contradicts:
            return NOT_MET, f"{said}; trial requires {desc} disease"
        return UNKNOWN, f"{said}; trial requires {desc} disease: verify"
    if inside:
        return NOT_MET, f"{said}; trial excludes {desc} disease"
    if contradicts:
        return MET, f"{said}; trial excludes {desc} disease"
    return UNKNOWN, f"{said}; trial excludes {desc} disease: verify"


def settled_untreated_status(p: Any, c: Criterion, vocab: Any) -> str | None:
    """Why a NOT_MET on a relapsed-or-refractory requirement holds for an untreated patient
    whatever the line's unread words say, or None.

    Relapse and refractoriness both follow treatment, so a patient with no prior therapy at
    all (``prior_therapies: []``) or recorded newly diagnosed has neither, unless the line
    offers another way in (newly diagnosed, unfit, refused, a permission or a condition:
    ``text.untreated_way_in``), which keeps the verdict UNKNOWN."""
    wanted = set(c.values.get("status") or [])
    if c.polarity != "require" or not wanted or not wanted <= {"relapsed", "refractory"}:
        return None
    own = getattr(p, "disease_status", None)
    if own is None and p.prior_therapies == []:
        own = "newly_diagnosed"
    if own != "newly_diagnosed":
        return None
    if untreated_way_in(c.text) or untreated_way_in(c.context):
        return None
    return "relapsed or refractory disease follows treatment, and the line offers no other way in"


# --- CML phase ----------------------------------------------------------------------------
# "CML in the chronic phase", "CML in first blast crisis or first accelerated phase": the phase
# of a chronic myeloid leukaemia a trial admits or excludes. The patient's phase is read only
# from the diagnosis as written ("chronic myeloid leukemia in accelerated phase"); no phase
# written is UNKNOWN, never inferred.
_CML_RE = re.compile(
    r"\bcml\b|chronic myel(?:oid|ogenous|ocytic)\s+leuka?emi\w*|\bcp-cml\b|\bph\+?\s*cml\b", _I
)
_PHASES = (
    ("chronic", r"\bchronic[- ]phase\b|\bcp-cml\b|\bcml-cp\b"),
    ("accelerated", r"\baccelerated[- ]phase\b|\bcml-ap\b"),
    ("blast", r"\bblast(?:ic)?[- ](?:crisis|phase)\b|\bcml-bp\b|\bcml-bc\b"),
)
_PHASE_RES = [(name, re.compile(rx, _I)) for name, rx in _PHASES]
_PHASE_LABEL = {
    "chronic": "chronic phase",
    "accelerated": "accelerated phase",
    "blast": "blast phase",
}


def _cml_phase(c: _Ctx) -> list[tuple[str, str, dict]]:
    s = c.s
    if not _CML_RE.search(s):
        return []
    hits = sorted((m.start(), name) for name, rx in _PHASE_RES for m in rx.finditer(s))
    if not hits:
        return []
    phases = list(dict.fromkeys(name for _, name in hits))
    return [("cml_phase", c.polarity(hits[0][0]), {"phases": phases})]


def cml_phase_in(text: str | None) -> str | None:
    """The CML phase a diagnosis as written states; None when none, or more than one."""
    if not text or not _CML_RE.search(text) and not re.search(r"\bcml-", text, _I):
        return None
    found = [name for name, rx in _PHASE_RES if rx.search(text)]
    return found[0] if len(found) == 1 else None


def _ev_cml_phase(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    wanted = c.values.get("phases") or []
    desc = " or ".join(_PHASE_LABEL[x] for x in wanted)
    verb = "requires" if c.polarity == "require" else "excludes"
    own = cml_phase_in(getattr(p, "diagnosis_text", None))
    if own is None:
        return UNKNOWN, f"CML phase not stated in the diagnosis: verify (trial {verb} {desc})"
    said = f"CML in {_PHASE_LABEL[own]} (diagnosis as written)"
    inside = own in wanted
    if c.polarity == "require":
        return (MET if inside else NOT_MET), f"{said}; trial requires {desc}"
    return (NOT_MET if inside else MET), f"{said}; trial excludes {desc}"
