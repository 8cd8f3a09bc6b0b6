"""Biomarkers (gene alterations): parsing, the patient's marker status and evaluation."""

from __future__ import annotations

import re
from typing import Any

from matcher.eligibility.model import MET, NOT_MET, UNKNOWN, Criterion
from matcher.eligibility.text import _I, _Ctx

# --- biomarkers ---------------------------------------------------------------------------
# gene -> spelling regex. Symbols are matched case-sensitively (so "eGFR", the kidney
# filtration rate, and "alkaline" never read as EGFR / ALK); written-out names are not.
# Short symbols that are also English or other abbreviations (MET, RET, KIT) need an
# alteration word right after them.
_GENE_SPELLINGS: dict[str, str] = {
    "ALK": r"\bALK\b|(?i:\banaplastic lymphoma kinase\b)",
    "ROS1": r"\bROS-? ?1\b|(?i:\bc-ros oncogene 1\b)",
    "NTRK": r"\bNTRK ?[123]?\b|(?i:\bneurotrophic tyrosine receptor kinase\b)",
    "BRAF": r"\bBRAF\b",
    "EGFR": r"\bEGFR\b|(?i:\bepidermal growth factor receptor\b)(?!\s*\(?e?gfr\)?\s*(?:>|<|>=|<=))",
    "HER2": r"\bHER-? ?2\b|\bERBB2\b|\bHER2/neu\b",
    "KRAS": r"\bK-?RAS\b",
    "NRAS": r"\bN-?RAS\b",
    "IDH1": r"\bIDH-?1\b|\bIDH1/2\b",
    "IDH2": r"\bIDH-?2\b|\bIDH1/2\b",
    "MSI": r"\bMSI-?H(?:igh|i)?\b|\bMSI\b|\bdMMR\b|(?i:\bmicrosatellite instab\w*|\bmismatch repair[- ]deficien\w*"
    r"|\bdeficient mismatch repair|\bMMR[- ]deficien\w*)",
    "PD-L1": r"\bPD-? ?L1\b|(?i:\bprogrammed (?:cell )?death[- ]ligand[- ]1\b)",
    "SMARCB1": r"\bSMARCB1\b|\bINI-?1\b",
    "MDM2": r"\bMDM2\b",
    "CDK4": r"\bCDK4\b(?!/6)",
    "MET": r"\bc-?MET\b|\bMET\b(?=\s*(?:exon|amplif|fusion|alteration|mutation|overexpress|14|gene))",
    "RET": r"\bRET\b(?=\s*(?:gene\s+)?(?:fusion|rearrange|mutation|alteration))",
    "FGFR": r"\bFGFR ?[1-4]?\b",
    "KIT": r"\bc-?KIT\b(?!\s*inhib)|\bKIT\b(?=\s*(?:exon|mutation|positive|negative))",
    "PDGFRA": r"\bPDGFRA\b",
    "BRCA": r"\bBRCA ?[12]?(?:/2)?m?\b",
    "TP53": r"\bTP53\b",
    "TMB": r"\bTMB\b|(?i:\btumou?r mutational burden\b)",
    "H3K27M": r"\bH3 ?K27M\b",
}
_GENE_RE = re.compile("|".join(f"(?P<g{i}>{rx})" for i, rx in enumerate(_GENE_SPELLINGS.values())))
_GENE_BY_GROUP = {f"g{i}": g for i, g in enumerate(_GENE_SPELLINGS)}
_MARKER_CUE_RE = re.compile(
    r"\b(?:mutat\w*|mutant|rearrange\w*|fusions?|translocat\w*|amplif\w*|positiv\w*|negativ\w*|"
    r"wild[- ]?type|wt|overexpress\w*|expression|deficien\w*|high|loss|lost|deleted|deletions?|"
    r"insertions?|exon|alterations?|altered|aberrations?|variants?|skipping|harbou?r\w*|"
    r"[A-Z]\d{2,4}[A-Z]|driver|sensiti[sz]ing|activating|status|proficient|tps|cps|ihc\s*[0-3]\+)\b"
    r"|[+-](?![\w])|\d\+",
    _I,
)
_MARKER_NEG_STATUS_RE = re.compile(
    r"\b(?:negative|wild[- ]?type|wt|not (?:detected|amplified|rearranged|mutated)|"
    r"non-?(?:amplified|mutated)|unmutated|retained|proficient|mss|msi-?l(?:ow)?|pmmr)\b"
    r"|^\s*-(?![\w])|^\s*\(?-\)?(?![\w])",
    _I,
)
_MARKER_THERAPY_RE = re.compile(
    r"^[\s-]*(?:tkis?|inhibit\w*|targeted|targeting|directed|antibod\w*|therap\w*|agents?|drugs?|"
    r"tyrosine kinase|kinase inhibit\w*|"
    r"blockade|blocking|antagonists?|[\w-]*mabs?|adcs?|pathways?|receptor\s+(?:tyrosine|antagonist|"
    r"inhibit|blocker))\b"
    r"|^\s*(?:and|or|/|,)\s*(?:[\w-]+\s*(?:and|or|/|,)\s*){0,3}[\w-]+\s*(?:tkis?|inhibitors?|"
    r"targeted|directed|antibod\w*|therap\w*)\b",
    _I,
)
_MARKER_THERAPY_BEFORE_RE = re.compile(
    r"(?:\banti-?\s*|\btargeting (?:the )?|\btarget\w* (?:against )?|\bagainst |/)$", _I
)
_MARKER_TESTING_RE = re.compile(
    r"\b(?:available|availability)\b|\bfor (?:central |local )?(?:testing|determination|review|"
    r"analysis|assessment|confirmation)\b|\bdetermination of\b|\btesting (?:of|for)\b"
    r"|\bsamples?\b[^.;]{0,40}\bfor\b|\b(?:will|must|should) be (?:tested|assessed|collected)\b"
    r"|\bis not required\b|\bnot (?:need|required) to be tested\b|\bmust be documented\b",
    _I,
)
_VARIANT_RE = re.compile(
    r"\b[A-Z]\d{2,4}(?:[A-Z]|X|del|ins|fs)\b|\bexon ?\d{1,2}(?:\s+(?:deletion|insertion|skipping|"
    r"mutation)s?)?|\b(?:19|20) ?(?:del|ins)\b|\bex ?\d{1,2} ?(?:del|ins)\b",
)
_ALTERATION_WORDS = (
    ("rearrangement", r"rearrange|translocat"),
    ("fusion", r"fusion"),
    ("amplification", r"amplif"),
    ("overexpression", r"overexpress|ihc\s*3\+|expression"),
    ("loss", r"\bloss\b|\blost\b|deficien"),
    ("high", r"-?high\b|msi-?h\b|\bdmmr\b"),
    ("mutation", r"mutat|mutant|sensiti[sz]ing|activating|insertion|deletion|skipping|variant"),
    ("positive", r"positiv|\+"),
)


# substrings one of which every ``_GENE_SPELLINGS`` match contains (a cheap prefilter: the
# alternation above is the costliest regex of a line)
_GENE_NEEDLES = (
    "ALK", "ROS", "NTRK", "BRAF", "EGFR", "HER", "ERBB", "RAS", "IDH", "MSI", "MMR", "PD",
    "SMARCB", "INI", "MDM2", "CDK4", "MET", "RET", "FGFR", "KIT", "PDGFRA", "BRCA", "TP53",
    "TMB", "H3",
)  # fmt: skip
_GENE_NEEDLES_LOW = (
    "anaplastic lymphoma", "c-ros", "neurotrophic", "epidermal growth", "microsatellite",
    "mismatch", "programmed", "mutational burden",
)  # fmt: skip


_LEVEL_RE = re.compile(r"(?P<op>>=|<=|>|<)\s*(?P<num>\d+(?:\.\d+)?)\s*(?P<pct>%)?")
_THERAPY_VERB_RE = re.compile(
    r"\b(?:treatment with|treated with|therapy with|received|receiving|(?:have|has|had) used|"
    r"exposure to|exposed to)\b",
    _I,
)
_MARKER_DRUG_AFTER_RE = re.compile(r"\b(?:drugs?|inhibitors?|tkis?|agents?)\b", _I)
_MARKER_ANY_STATUS_RE = re.compile(
    r"\bboth\b[^.;]{0,80}\b(?:are|is) (?:eligible|allowed|permitted)|\bregardless of\b|"
    r"\birrespective of\b|\bany (?:\w+ )?status\b",
    _I,
)
_ENUMERATED_RE = re.compile(
    r"\(\s*1\s*\)[^()]{3,}\(\s*2\s*\)|\b2 of the following\b|\btwo of the following\b"
)


def _in_negative_parenthesis(text: str, pos: int) -> bool:
    """True inside "(...)" opened right after a negative status: "RAS wild type status (KRAS
    exons 2, 3 and 4 and NRAS exons 2, 3, and 4)"."""
    op = text.rfind("(", 0, pos)
    if op < 0 or text.rfind(")", 0, pos) > op:
        return False
    return bool(
        re.search(
            r"\b(?:negative|wild[- ]?type|wt)\s*(?:status)?\s*$", text[max(0, op - 40) : op], _I
        )
    )


def _biomarker(c: _Ctx) -> list[tuple]:
    """Required / excluded molecular findings ("ALK rearrangement", "EGFR wild-type")."""
    text = c.plain
    if not any(n in text for n in _GENE_NEEDLES) and not any(n in c.s for n in _GENE_NEEDLES_LOW):
        return []
    mentions: list[tuple[int, int, str]] = []
    for m in _GENE_RE.finditer(text):
        gene = _GENE_BY_GROUP[m.lastgroup]
        after = text[m.end() : m.end() + 40]
        before = text[max(0, m.start() - 20) : m.start()]
        if _MARKER_THERAPY_RE.match(after) or _MARKER_THERAPY_BEFORE_RE.search(before):
            continue  # "EGFR-TKI", "anti-HER2 therapy", "PD-1/PD-L1 inhibitors": a therapy
        if _THERAPY_VERB_RE.search(text) and _MARKER_DRUG_AFTER_RE.search(
            text[m.end() : m.end() + 80]
        ):
            continue  # "treatment with any other EGFR or HER2 exon 20 ... selective inhibitor"
        if re.search(
            r"\b(?:have|has|had) (?:been treated|used|received)\b",
            text[m.end() : m.end() + 120],
            _I,
        ):
            continue  # "EGFR rare mutations ... have been treated with afatinib": a therapy history
        if gene == "EGFR" and re.match(r"[\s)]*(?:\(?e?gfr\)?\s*)?(?:>|<|>=|<=|=)\s*\d", after, _I):
            continue  # "EGFR > 30 mL/min": a misspelt eGFR (kidney function)
        if gene in ("IDH1", "IDH2") and "/" in m.group(0):
            mentions.append((m.start(), m.end(), "IDH1"))
            mentions.append((m.start(), m.end(), "IDH2"))
            continue
        mentions.append((m.start(), m.end(), gene))
    if not mentions:
        return []
    # "anaplastic lymphoma kinase (ALK) negative": a gene's name and its symbol are one mention
    merged: list[tuple[int, int, str]] = []
    for mn in mentions:
        if (
            merged
            and merged[-1][2] == mn[2]
            and re.fullmatch(r"[\s(]*", text[merged[-1][1] : mn[0]])
        ):
            end = mn[1] + 1 if text[mn[1] : mn[1] + 1] == ")" else mn[1]
            merged[-1] = (merged[-1][0], end, mn[2])
        else:
            merged.append(mn)
    mentions = merged
    if _MARKER_ANY_STATUS_RE.search(text):
        return []  # "both dMMR and MMR-proficient patients are eligible": no restriction
    if _MARKER_TESTING_RE.search(text) and not re.search(
        r"\b(?:positive|negative|confirm\w*|documented|harbou?r\w*|known|presence)\b", text, _I
    ):
        return []  # "archival tissue for determination of FGFR2 status": a sample requirement
    # each marker's own phrase: from its mention up to the next mention (or 60 characters)
    markers: list[dict] = []
    any_cue = False
    # "negative molecular testing for EGFR mutations and ALK rearrangements": a status
    # before the first gene covers the list
    head = text[max(0, mentions[0][0] - 60) : mentions[0][0]]
    head = head[max(head.rfind(";"), head.rfind(". "), -1) + 1 :]
    head_negative = bool(re.search(r"\bnegative (?:[\w-]+ ){0,3}(?:for|of)\s*$", head, _I))
    for i, (start, end, gene) in enumerate(mentions):
        nxt = mentions[i + 1][0] if i + 1 < len(mentions) else len(text)
        phrase = text[end : min(nxt, end + 60)]
        # a cue before the gene counts when the gene has no phrase of its own
        # ("negative molecular testing for EGFR", "sensitizing mutations in EGFR")
        lead = text[max(0, start - 40) : start]
        lead = lead[max(lead.rfind(";"), lead.rfind("."), -1) + 1 :]
        # in "EGFR, ALK gene wild type" the status after the last gene covers the list
        tail = phrase
        j = i
        while (
            not _MARKER_CUE_RE.search(tail)
            and j + 1 < len(mentions)
            and re.fullmatch(
                r"[\s,/]*(?:and|or|and/or|/)?[\s,/]*", text[mentions[j][1] : mentions[j + 1][0]]
            )
        ):
            j += 1
            nj = mentions[j + 1][0] if j + 1 < len(mentions) else len(text)
            tail = text[mentions[j][1] : min(nj, mentions[j][1] + 60)]
        cue = _MARKER_CUE_RE.search(tail) or _MARKER_CUE_RE.search(lead)
        if cue is None:
            continue
        any_cue = True
        negative = bool(
            _MARKER_NEG_STATUS_RE.search(tail[:50])
            or head_negative
            # "RAS wild type status (KRAS exons 2, 3 and 4 ...)"
            or _in_negative_parenthesis(text, start)
        )
        alteration = None
        var = _VARIANT_RE.search(tail[:40])
        level = _LEVEL_RE.search(tail[:50]) if gene in ("PD-L1", "TMB") else None
        if level:
            # "PD-L1 TPS < 1%" is a negative result; "TPS >= 50%" a level to verify
            op, num = level.group("op"), float(level.group("num"))
            if op in ("<", "<=") and num <= 1:
                negative = True
            elif op in (">", ">=") and num <= 1:
                alteration = "positive"  # "PD-L1 >= 1%" is what "PD-L1 positive" means
            else:
                alteration = f"{op} {level.group('num')}{'%' if level.group('pct') else ''}"
        if alteration or negative and level:
            pass
        elif var:
            alteration = var.group(0)
        else:
            low = (tail[:40] + " " + lead[-25:]).lower()
            for name, rx in _ALTERATION_WORDS:
                if re.search(rx, low):
                    alteration = name
                    break
        marker = {"gene": gene, "alteration": alteration, "negative": negative, "start": start}
        if not any(x["gene"] == gene and x["negative"] == negative for x in markers):
            markers.append(marker)
    if not any_cue or not markers:
        return []
    out: list[tuple] = []
    for negative in (False, True):
        group = [x for x in markers if x["negative"] == negative]
        if not group:
            continue
        pol = c.polarity_plain(text, group[0]["start"])
        if negative:
            pol = "exclude" if pol == "require" else "require"
        vals = {
            "markers": [{"gene": x["gene"], "alteration": x["alteration"]} for x in group],
            "genes": [x["gene"] for x in group],
        }
        # "(1) ... ; (2) IDH1 mutated solid tumor; or (3) ...": one alternative's finding
        # is not required of every patient (NOT_MET -> UNKNOWN)
        out.append(("biomarker", pol, vals, {"conditional": bool(_ENUMERATED_RE.search(text))}))
    return out


# Spellings a patient's biomarker list may use for each gene (matcher.knowledge.biomarker_status
# reads one name at a time).
_GENE_ALIASES: dict[str, tuple[str, ...]] = {
    "HER2": ("HER2", "ERBB2", "HER-2"),
    "ROS1": ("ROS1", "ROS-1"),
    "NTRK": ("NTRK", "NTRK1", "NTRK2", "NTRK3", "TRK"),
    "PD-L1": ("PD-L1", "PDL1"),
    "SMARCB1": ("SMARCB1", "INI1", "INI-1"),
    "BRCA": ("BRCA", "BRCA1", "BRCA2"),
    "MET": ("MET", "c-MET"),
    "KIT": ("KIT", "c-KIT", "CD117"),
}
_MSI_POS_RE = re.compile(
    r"\bmsi-?h(?:igh)?\b|\bmsi[- ]high\b|\bdmmr\b|\bmmr[- ]deficien\w*|\bmismatch repair[- ]deficien\w*"
    r"|\bdeficient mismatch repair|\bmicrosatellite instability[- ]high\b",
    _I,
)
_MSI_NEG_RE = re.compile(
    r"\bmss\b|\bmicrosatellite stable\b|\bmsi-?l(?:ow)?\b|\bpmmr\b|\bmmr[- ]proficient\b"
    r"|\bmismatch repair[- ]proficient\b|\bmsi\b[^,;]*\bnegative\b",
    _I,
)
_LOSS_POS_RE = re.compile(r"\b(?:loss|lost|deficien\w*|absent|negative)\b", _I)  # SMARCB1/INI1 loss
_LOSS_NEG_RE = re.compile(r"\b(?:retained|intact|preserved|positive)\b", _I)


def patient_marker_status(biomarkers: list[str] | None, gene: str) -> tuple[str | None, str]:
    """(status "positive" | "negative" | None, evidence) for one gene of ``_GENE_SPELLINGS``.

    Reuses ``matcher.knowledge.biomarker_status`` for each spelling of the gene; MSI/MMR and
    SMARCB1/INI1 (where "loss" or "deficient" is the positive finding) are read here.
    """
    from matcher.knowledge import biomarker_status

    if biomarkers is None:
        return None, "no biomarker results given"
    if gene == "MSI":
        pos = [b for b in biomarkers if _MSI_POS_RE.search(b)]
        neg = [b for b in biomarkers if _MSI_NEG_RE.search(b) and not _MSI_POS_RE.search(b)]
    elif gene == "SMARCB1":
        hits = [b for b in biomarkers if re.search(r"\bSMARCB1\b|\bINI-?1\b", b, _I)]
        pos = [b for b in hits if _LOSS_POS_RE.search(b)]
        neg = [b for b in hits if _LOSS_NEG_RE.search(b) and not _LOSS_POS_RE.search(b)]
    else:
        pos, neg = [], []
        for name in _GENE_ALIASES.get(gene, (gene,)):
            status, evidence = biomarker_status(biomarkers, name)
            if status == "positive":
                pos.append(evidence)
            elif status == "negative":
                neg.append(evidence)
    if pos and neg:
        return None, f"conflicting {gene} results: {'; '.join(pos + neg)}"
    if pos:
        return "positive", pos[0]
    if neg:
        return "negative", neg[0]
    return None, f"{gene} status not recorded"


def _marker_label(m: dict) -> str:
    alt = m.get("alteration")
    return f"{m['gene']} {alt}" if alt and alt not in ("positive", "mutation") else m["gene"]


def _ev_biomarker(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    markers = c.values.get("markers") or []
    if not markers:
        return UNKNOWN, "to review: molecular finding not read"
    results = []  # (marker, status, evidence, specific_variant_unconfirmed)
    for m in markers:
        status, evidence = patient_marker_status(p.biomarkers, m["gene"])
        alt = m.get("alteration") or ""
        # a named variant ("V600E") or a level ("PD-L1 >= 50%") must be stated to count
        variant = bool(alt and (_VARIANT_RE.fullmatch(alt) or _LEVEL_RE.fullmatch(alt)))
        unconfirmed = (
            status == "positive"
            and variant
            and alt.replace(" ", "").lower() not in evidence.replace(" ", "").lower()
        )
        results.append((m, status, evidence, unconfirmed))
    desc = " or ".join(_marker_label(m) for m in markers)
    if c.polarity == "require":
        pos = [r for r in results if r[1] == "positive" and not r[3]]
        if pos:
            m, _, ev, _ = pos[0]
            return MET, f"{m['gene']} positive ({ev!r}); trial requires {desc}"
        if all(r[1] == "negative" for r in results):
            ev = "; ".join(repr(r[2]) for r in results)
            return NOT_MET, f"documented negative ({ev}); trial requires {desc}"
        part = [r for r in results if r[3]]
        if part:
            m, _, ev, _ = part[0]
            return (
                UNKNOWN,
                f"{m['gene']} positive ({ev!r}) but the variant is not stated; trial requires "
                f"{_marker_label(m)}: verify",
            )
        missing = [r[0]["gene"] for r in results if r[1] is None]
        return UNKNOWN, f"{', '.join(missing)} status not recorded: verify (trial requires {desc})"
    # exclude: each listed finding is excluded on its own
    hit = [r for r in results if r[1] == "positive" and not r[3]]
    if hit:
        m, _, ev, _ = hit[0]
        return NOT_MET, f"{m['gene']} positive ({ev!r}); trial excludes {desc}"
    if all(r[1] == "negative" for r in results):
        return MET, f"{', '.join(r[0]['gene'] for r in results)} negative; trial excludes {desc}"
    part = [r for r in results if r[3]]
    if part:
        m, _, ev, _ = part[0]
        return (
            UNKNOWN,
            f"{m['gene']} positive ({ev!r}); trial excludes {_marker_label(m)}: verify the variant",
        )
    missing = [r[0]["gene"] for r in results if r[1] is None]
    return UNKNOWN, f"{', '.join(missing)} status not recorded: verify (trial excludes {desc})"
