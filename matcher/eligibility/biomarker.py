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
    "BRAF": r"\bBRAF\b|\bBRAF(?=(?:WT|MUT)\b)|(?i:\bb-?raf\b)",
    "EGFR": r"\bEGFR\b|\bEGFR(?=(?:WT|MUT)\b)|(?i:\bepidermal growth factor receptor\b)(?!\s*\(?e?gfr\)?\s*(?:>|<|>=|<=))",
    "HER2": r"\bHER-? ?2\b|\bERBB2\b|\bHER2/neu\b|(?i:\bher-?2(?:/neu)?\b)",
    "KRAS": r"\bK-?RAS\b|\bKRAS(?=(?:WT|MUT)\b)|(?i:\bk-?ras\b)",
    "NRAS": r"\bN-?RAS\b|(?i:\bn-?ras\b)",
    "IDH1": r"\bIDH-?1\b|\bIDH1/2\b",
    "IDH2": r"\bIDH-?2\b|\bIDH1/2\b",
    "MSI": r"\bMSI-?H(?:igh|i)?\b|\bMSI\b|\bdMMR\b|(?i:\bmicrosatellite instab\w*|\bmismatch repair[- ]deficien\w*"
    r"|\bdeficient mismatch repair|\bMMR[- ]deficien\w*)",
    "PD-L1": r"\bPD-? ?L1\b|(?i:\bprogrammed (?:cell )?death[- ]ligand[- ]1\b)",
    # hormone receptors, as breast cancer trials state them ("ER+ and/or PR+", "estrogen-
    # receptor positive"); the bare symbols only before a status (not "ER visit", "CR/PR")
    "ER": r"\bER\b(?=\s*(?:\+|-\s*(?:positiv|negativ)|positiv|negativ|status|express|\(|/\s*PR))"
    r"|\bER\b(?=\s*(?:and/or|or|and|,)\s*(?:PR|PgR)\b)|(?<=\()ER(?=\))|(?i:\bo?estrogen[- ]receptors?\b)",
    "HR": r"\bHR\b(?=\s*(?:\+|-\s*(?:positiv|negativ)|positiv|negativ|status\b))"
    r"|(?i:\bhormone[- ]receptors?\b(?=[\s(-]*(?:\(HR\)\s*)?(?:\+|positiv|negativ|status)))",
    "PR": r"\bPR\b(?=\s*(?:\+|-\s*(?:positiv|negativ)|positiv|negativ|status|express|\())"
    r"|(?<=ER/)PR\b|(?<=ER and/or )PR\b|(?<=ER or )PR\b|(?<=ER and )PR\b|(?<=ER, )PR\b"
    r"|(?<=\()PR(?=\))|(?i:\bprogesterone[- ]receptors?\b)|\bPgR\b",
    "SMARCB1": r"\bSMARCB1\b|\bINI-?1\b",
    "MDM2": r"\bMDM2\b",
    "CDK4": r"\bCDK4\b(?!/6)",
    "MET": r"\bc-?MET\b|\bMET\b(?=\s*(?:exon|amplif|fusion|alteration|mutation|overexpress|14|gene))"
    r"|(?<=\()MET(?=\))",
    "RET": r"\bRET\b(?=\s*(?:gene\s+)?(?:fusion|rearrange|mutation|alteration))|(?<=\()RET(?=\))",
    "FGFR": r"\bFGFR ?[1-4]?\b",
    "KIT": r"\bc-?KIT\b(?!\s*inhib)|\bKIT\b(?=\s*(?:exon|mutation|positive|negative))"
    r"|(?<=\()KIT(?=\))|\bCD-?117\b|\b(?:c-)?Kit\b(?=\s*\(CD-?117\))",
    "PDGFRA": r"\bPDGFR-?A\b|\bPDGFR\b(?=\s*(?:exon|[A-Z]\d{2,4}[A-Z]))",
    "JAK2": r"\bJAK-?2\b",
    "BRCA": r"\bBRCA ?[12]?(?:/2)?m?\b",
    "TP53": r"\bTP53\b|\bTP53(?=(?:WT|MUT)\b)",
    "TMB": r"\bTMB\b|(?i:\btumou?r mutational burden\b)",
    "H3K27M": r"\bH3 ?K27M\b",
    # haematological markers a trial enrols by (CAR-T, antibody and antibody-drug conjugate
    # targets; AML driver mutations). Not CD34 (graft cell doses) nor CD3/CD4 (T-cell counts).
    "CD19": r"\bCD-?19\b",
    "CD20": r"\bCD-?20\b",
    "CD22": r"\bCD-?22\b",
    "CD30": r"\bCD-?30\b",
    "CD33": r"\bCD-?33\b",
    "CD38": r"\bCD-?38\b",
    "CD123": r"\bCD-?123\b",
    "BCMA": r"\bBCMA\b",
    "FLT3": r"\bFLT-?3\b",
    "NPM1": r"\bNPM-?1\b",
}
_GENE_RE = re.compile("|".join(f"(?P<g{i}>{rx})" for i, rx in enumerate(_GENE_SPELLINGS.values())))
_GENE_BY_GROUP = {f"g{i}": g for i, g in enumerate(_GENE_SPELLINGS)}
_MARKER_CUE_RE = re.compile(
    r"\b(?:mutat\w*|mutant|rearrange\w*|fusions?|translocat\w*|amplif\w*|positiv\w*|negativ\w*|"
    r"wild[- ]?type|wt|overexpress\w*|expression|express(?:es|ing)?|deficien\w*|high|loss|lost|"
    r"deleted|deletions?|"
    r"insertions?|exon|alterations?|altered|aberrations?|variants?|skipping|harbou?r\w*|"
    r"[A-Z]\d{2,4}[A-Z]|driver|sensiti[sz]ing|activating|status|proficient|tps|cps|ihc\s*[0-3]\+)\b"
    r"|[+-](?![\w])|\d\+",
    _I,
)
_MARKER_NEG_STATUS_RE = re.compile(
    r"\b(?:negative|negativity|wild[- ]?type|wt|not (?:detected|amplified|rearranged|mutated)|"
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
    # ("anti-PD-1/PD-L1": the second symbol of a therapy's pair; "EGFR/ALK" alone is two genes)
    r"(?:\banti-?\s*|\btargeting (?:the )?|\btarget\w* (?:against )?|\bagainst "
    r"|(?:\banti-?\s*|\btargeting (?:the )?|\bagainst )[\w-]+/)$",
    _I,
)
_MARKER_TESTING_RE = re.compile(
    r"\b(?:available|availability)\b|\bfor (?:central |local )?(?:testing|determination|review|"
    r"analysis|assessment|confirmation)\b|\bdetermination of\b|\btesting (?:of|for)\b"
    r"|\bsamples?\b[^.;]{0,40}\bfor\b|\b(?:will|must|should) be (?:tested|assessed|collected)\b"
    r"|\bis not required\b|\bnot (?:need|required) to be tested\b|\bmust be documented\b"
    r"|\bfor (?:[\w-]+ ){0,4}(?:detection|testing|analysis)\b|\bprovide (?:the )?(?:results?|samples?|tissue)\b",
    _I,
)
# a status the study will test: "for evaluation and confirmation of EGFR and ALK status"
_STATUS_TO_TEST_RE = re.compile(
    r"\b(?:sample|specimen|tissue|biops\w+|block|slides?)\b[^.;]{0,60}\b(?:for|to allow)\s+"
    r"(?:the\s+)?(?:central\s+)?(?:evaluation|confirmation|determination|assessment|testing|analysis)"
    r"\b[^.;]{0,60}\bstatus\b"
    r"|\bconfirmation of (?:a patient's |the )?(?:tumou?r )?[\w/ -]{1,30}? status\b",
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


# --- variants ---------------------------------------------------------------------------
# A general grammar of sequence variants, read the same way in criteria and in a patient's
# biomarker strings. Each variant becomes a key:
#   protein change  "T790M", "G12C", "V600E", "G719X" (X: any residue at that codon)
#   exon-level      "ex19del", "ex20ins", "ex14skip" (a deletion / insertion / skipping of
#                   that exon), "ex11" (a mutation anywhere in that exon, kind not stated)
_AA = "ACDEFGHIKLMNPQRSTVWY"
_PROTEIN_RE = re.compile(
    rf"(?<![A-Za-z0-9._])(?:p\.)?(?P<aa>[{_AA}])(?P<pos>\d{{2,4}})"
    rf"(?P<to>[{_AA}X*](?:/[{_AA}X])*|del|ins|dup|fs)(?![A-Za-z0-9_])"
)
_KIND = r"(?P<kind>del(?:etion)?s?|ins(?:ertion)?s?|skip(?:ping)?|dup(?:lication)?s?)"
_EXON_KIND_RES = (
    # "exon 19 deletion", "Ex19del", "exon-20 insertion", "exon 14 skipping"
    re.compile(rf"\bex(?:on)?[\s-]?(?P<exon>\d{{1,2}})[\s-]?{_KIND}(?![a-z])", _I),
    # "Del19", "DEL 19"
    re.compile(r"\b(?P<kind>del|ins)[\s-]?(?P<exon>\d{1,2})\b", _I),
    # "19del", "20 ins"
    re.compile(r"(?<![\w.])(?P<exon>\d{1,2})[\s-]?(?P<kind>del|ins)\b", _I),
    # "20 exon insertion"
    re.compile(
        rf"(?<![\w.])(?P<exon>\d{{1,2}})(?:st|nd|rd|th)?[\s-]?exon[\s-]?{_KIND}(?![a-z])", _I
    ),
    # "deletion in exon 19", "insertion mutations of exon 20"
    re.compile(
        r"\b(?P<kind>deletion|insertion|skipping|duplication)s?(?:\s+mutations?)?\s+(?:in|of|at|on)"
        r"\s+(?:the\s+)?exon[\s-]?(?P<exon>\d{1,2})\b",
        _I,
    ),
)
# "exon 11 mutation", "mutations in exon 9", "at 20 exon": an exon, kind not stated
_EXON_RE = re.compile(
    r"\bex(?:on)?[\s-]?(?P<exon>\d{1,2})\b|\b(?P<exon2>\d{1,2})(?:st|nd|rd|th)?\s+exon\b", _I
)
_EXON_JOIN_RE = re.compile(r"[\s,-]*(?:(?:of|at|in|on|the|mutations?)[\s,]+)*", _I)
_KIND_KEY = {"del": "del", "ins": "ins", "ski": "skip", "dup": "dup"}
_KIND_NAMES = {"del": "deletion", "ins": "insertion", "skip": "skipping", "dup": "duplication",
               "pt": "point mutation"}  # fmt: skip

# Variant names that identify their gene when a line names none ("T790M positive"): the
# HGVS-style names used for one gene only in the criteria we read. Anything else needs its
# gene named on the line.
_VARIANT_GENE = {
    "T790M": "EGFR", "C797S": "EGFR", "L858R": "EGFR", "L861Q": "EGFR", "S768I": "EGFR",
    "G719X": "EGFR", "G719A": "EGFR", "G719C": "EGFR", "G719S": "EGFR", "E709X": "EGFR",
    "V600E": "BRAF", "V600K": "BRAF", "D842V": "PDGFRA", "V617F": "JAK2",
}  # fmt: skip
# What "activating" / "sensitising" EGFR mutations cover (the named set; an unlisted
# variant is not known to be one or not: UNKNOWN)
_ACTIVATING = {"EGFR": ("ex19del", "L858R", "G719X", "L861Q", "S768I")}
# "sensitising EGFR mutation", "activating mutations of EGFR" (before the gene) and
# "EGFR-sensitive mutations" (after it); never "high-sensitivity EGFR test"
_ACTIVATING_LEAD_RE = re.compile(
    r"\b(?:activating|sensiti[sz]ing|sensitive)(?:\s+(?:somatic|mutations?|of|in|the))*\s*$", _I
)
_ACTIVATING_TAIL_RE = re.compile(
    r"^[\s-]*(?:gene\s+)?(?:activating|sensiti[sz]ing|sensitive)\b", _I
)
# an open list: the named variants are examples
_OPEN_RE = re.compile(
    r"\b(?:including|includes?|such as|e\.g|eg|for example|for instance|etc|other|others|"
    r"rare|uncommon|atypical|not limited to|at least one of|any of|like)\b",
    _I,
)


def _variant_spans(text: str) -> list[tuple[int, int, str, int | None]]:
    """(start, end, key, exon or None) for each variant written in ``text``, in order.

    A protein change and an exon named with it ("exon 21 L858R", "T790M mutations at 20
    exon") are one variant (the exon is recorded); an exon-level kind ("exon 19 deletion")
    is its own variant."""
    out: list[tuple[int, int, str, int | None]] = []
    taken: list[tuple[int, int]] = []
    for m in _PROTEIN_RE.finditer(text):
        aa, pos, to = m.group("aa"), m.group("pos"), m.group("to")
        for alt in to.split("/"):
            alt = alt.upper() if len(alt) == 1 else alt.lower()
            out.append((m.start(), m.end(), f"{aa}{pos}{alt}", None))
        taken.append(m.span())
    for rx in _EXON_KIND_RES:
        for m in rx.finditer(text):
            if any(a < m.end() and m.start() < b for a, b in taken):
                continue
            kind = _KIND_KEY[m.group("kind").lower()[:3]]
            out.append((m.start(), m.end(), f"ex{int(m.group('exon'))}{kind}", None))
            taken.append(m.span())
    for m in _EXON_RE.finditer(text):
        if any(a < m.end() and m.start() < b for a, b in taken):
            continue
        exon = int(m.group("exon") or m.group("exon2"))
        # an exon next to a protein change locates it ("exon 20 T790M", "L861Q in exon 21")
        near = []
        for i, (a, b, k, _e) in enumerate(out):
            if _split_key(k) is None:
                continue
            between = text[m.end() : a] if a >= m.end() else text[b : m.start()]
            if len(between) <= 25 and _EXON_JOIN_RE.fullmatch(between):
                near.append(i)
        if near:
            for i in near:
                a, b, k, _e = out[i]
                out[i] = (a, b, k, exon)
            continue
        if re.match(r"\s*(?:\d|and\b|,|or\b)", text[m.end() : m.end() + 4]):
            continue  # "exon 2, 3 and 4": a list of exons tested, not one variant
        # "exon 20 point mutation", "point mutations in exon 18": a substitution in that exon
        point = re.match(r"\s*point\b", text[m.end() :], _I) or re.search(
            r"\bpoint\s+mutations?\s+(?:in|of|at)\s+(?:the\s+)?$", text[: m.start()], _I
        )
        out.append((m.start(), m.end(), f"ex{exon}{'pt' if point else ''}", None))
    return sorted(out)


def _split_key(key: str) -> tuple[str, str, str] | None:
    """("T", "790", "M") for a protein change key; None for an exon-level key."""
    m = re.fullmatch(rf"([{_AA}])(\d+)(.+)", key)
    return (m.group(1), m.group(2), m.group(3)) if m else None


def _exon_of(key: str, exon: int | None) -> int | None:
    m = re.match(r"ex(\d+)", key)
    return int(m.group(1)) if m else exon


def _compare(want: str, want_exon: int | None, have: str, have_exon: int | None) -> str:
    """Does a patient's variant ``have`` satisfy a criterion's ``want``?
    "match", "different" (a recorded variant that is not this one) or "unknown"."""
    pw, ph = _split_key(want), _split_key(have)
    if pw and ph:
        if pw[:2] != ph[:2]:
            return "different"
        if pw[2] == ph[2] or pw[2] == "X":
            return "match"
        if ph[2] == "X":
            return "unknown"  # "G719X" recorded, "G719S" wanted: the residue is not stated
        return "different"
    if not pw and not ph:
        ew, eh = _exon_of(want, None), _exon_of(have, None)
        kw, kh = want[len(f"ex{ew}") :], have[len(f"ex{eh}") :]
        if ew != eh:
            return "different"
        if not kw or kw == kh:
            return "match"  # "exon 11 mutation" wanted; "exon 11 deletion" recorded
        return "different" if kh else "unknown"
    # a protein change against an exon-level variant
    prot, pex = (pw, want_exon) if pw else (ph, have_exon)
    ex_key = have if pw else want
    ex, kind = _exon_of(ex_key, None), ex_key[len(f"ex{_exon_of(ex_key, None)}") :]
    indel = prot[2] in ("del", "ins", "dup", "fs")
    if kind == "pt":
        if indel or (pex is not None and pex != ex):
            return "different"  # an indel is not a point mutation
        return "match" if pex is not None and pw is None else "unknown"
    if kind and not indel:
        return "different"  # a point substitution is not an exon deletion / insertion
    if pex is not None and pex != ex:
        return "different"
    if pex is not None and not kind:
        return "match" if pw is None else "unknown"
    return "unknown"


# substrings one of which every ``_GENE_SPELLINGS`` match contains (a cheap prefilter: the
# alternation above is the costliest regex of a line)
_GENE_NEEDLES = (
    "ALK", "ROS", "NTRK", "BRAF", "EGFR", "HER", "ERBB", "RAS", "IDH", "MSI", "MMR", "PD",
    "SMARCB", "INI", "MDM2", "CDK4", "MET", "RET", "FGFR", "KIT", "PDGFRA", "BRCA", "TP53",
    "TMB", "H3", "JAK", "CD", "BCMA", "FLT", "NPM", "ER", "PR", "PgR", "HR",
)  # fmt: skip
_GENE_NEEDLES_LOW = (
    "anaplastic lymphoma", "c-ros", "neurotrophic", "epidermal growth", "microsatellite",
    "mismatch", "programmed", "mutational burden", "estrogen", "oestrogen", "progesterone",
    "hormone receptor", "hormone-receptor", "her2", "her-2", "kras", "k-ras", "nras", "n-ras",
    "braf", "b-raf",
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


_ASIDE_ANY_RE = re.compile(
    r"^\(\s*(?:any|all)\b.*\b(?:allowed|permitted|acceptable|eligible)\b|^\(\s*(?:regardless|irrespective)\b",
    _I,
)


def _any_status_asides(text: str) -> list[tuple[int, int]]:
    """Spans of the bracketed asides that free other markers ("(any progesterone receptor
    [PR] and HER2 status is allowed)", "(regardless of PD-L1 status)")."""
    out = []
    for m in re.finditer(r"\(", text):
        depth, j = 0, m.start()
        while j < len(text):
            if text[j] == "(":
                depth += 1
            elif text[j] == ")":
                depth -= 1
                if depth == 0:
                    break
            j += 1
        if _ASIDE_ANY_RE.search(text[m.start() : j + 1]):
            out.append((m.start(), j + 1))
    for m in _REGARDLESS_STATUS_RE.finditer(text):
        # "... melanoma regardless of BRAF mutation status": the same freedom, unbracketed
        if not any(a <= m.start() < b for a, b in out) and _GENE_RE.search(m.group(0)):
            out.append((m.start(), m.end()))
    return out


_REGARDLESS_STATUS_RE = re.compile(
    r"\b(?:regardless|irrespective|independent(?:ly)?) of (?:the |their |tumou?r )?"
    r"(?:[\w/+-]+(?:,|\s+(?:and|or|and/or))?\s+){1,6}?(?:status|expression|results?)\b",
    _I,
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


def _therapy_context(text: str, start: int, end: int) -> bool:
    """True when the mention at ``start:end`` names a therapy's target, not a finding."""
    after = text[end : end + 40]
    before = text[max(0, start - 20) : start]
    if _MARKER_THERAPY_RE.match(after) or _MARKER_THERAPY_BEFORE_RE.search(before):
        return True  # "EGFR-TKI", "anti-HER2 therapy", "PD-1/PD-L1 inhibitors": a therapy
    if _THERAPY_VERB_RE.search(text) and _MARKER_DRUG_AFTER_RE.search(text[end : end + 80]):
        return True  # "treatment with any other EGFR or HER2 exon 20 ... selective inhibitor"
    # "EGFR rare mutations ... have been treated with afatinib": a therapy history
    return bool(
        re.search(r"\b(?:have|has|had) (?:been treated|used|received)\b", text[end : end + 120], _I)
    )


_ALSO_RE = re.compile(r"\b(?:as well as|in addition to|together with|along with|and also)\b", _I)
# where a variant named on a line is not a condition on the patient: a permitted extra
# ("alone or with other EGFR mutations, including T790M"), an exception ("other than
# G12C"), a scope ("for patients whose tumour harbours ...", "required for T790M+"), a
# test to be done ("T790M mutation status")
_VARIANT_PERMISSIVE_RE = re.compile(
    r"\b(?:alone or|either alone|in combination with|in conjunction with|co-?occurring|"
    r"coexist\w*|co-existing|concomitant|concurrent|with or without|regardless of|"
    r"irrespective of|independent of)\b",
    _I,
)
_CLAUSE_PERMISSIVE_RE = re.compile(
    r"\b(?:allowed|permitted|acceptable|can be|may be|may have|are eligible|is eligible)\b", _I
)
_VARIANT_EXCEPT_RE = re.compile(
    r"\b(?:other than|except(?: for)?|excluding|besides|apart from|not|non)[\s-]+(?:[\w-]+\s+){0,2}$",
    _I,
)
_VARIANT_SCOPE_RE = re.compile(
    r"\bfor\s+(?:patients|participants|subjects|those|cases|tumou?rs)\b|\bif\b|\bwhen\b"
    r"|(?<!positive )(?<!negative )(?<!tested )(?<!screened )\bfor\s+(?:[\w-]+\s+)?$",
    _I,
)
_VARIANT_STATUS_RE = re.compile(
    r"^[\s+-]*(?:mutations?\s+)?(?:status|testing|tests?|detection|analysis|assessment)\b", _I
)
# a token that looks like a variant but is not read ("DEL19", "L 858 R"): the list of
# variants on that line is not known whole
_VARIANTISH_RE = re.compile(r"\b(?=[A-Za-z]*\d)(?=\d*[A-Za-z])[A-Za-z0-9]{3,8}\b")
_VARIANT_JOIN_RE = re.compile(
    r"[\s,/]*(?:mutations?\s*)?(?:and/or|and|or|/)?[\s,/]*(?:(?:an?|the)\s+)?(?:ex(?:on)?[\s-]?\d{1,2}[\s-]*)?",
    _I,
)
_MENTION_TESTING_RE = re.compile(
    r"\b(?:determination|testing|analysis|assessment|evaluation|measurement) of\s+(?:the\s+)?"
    r"(?:[\w-]+(?:\s+(?:variants?|status|mutations?|genes?))?\s*(?:,|\band\b|\bor\b)\s*)*$"
    r"|\btest(?:ed|ing)? for\s+(?:the\s+)?$",
    _I,
)
_LIST_JOIN_RE = re.compile(r"[\s,/]*(?:and/or|and|or|/)?[\s,/]*", _I)
_SHORT_SYMBOL_RE = re.compile(r"\b(?:c-?)?(?P<sym>MET|RET|KIT)\b")
_NAME_STOP_RE = re.compile(
    r"^(?:with|and|or|of|for|in|without|harbou?ring|carrying|the|a|an|no|not|any|known|"
    r"documented|positive|negative|mutations?|participants?|patients?|subjects?|lacks?|has|have)$",
    _I,
)


def _name_start(text: str, op: int) -> int:
    """Start of a gene's written-out name before "(SYMBOL)" ("ROS proto-oncogene 1 (ROS1)"):
    up to six words back, stopping at a separator or a word that is not part of a name."""
    i = op
    words = 0
    while words < 6:
        m = re.search(r"([\w-]+)\s*$", text[:i])
        if not m or _NAME_STOP_RE.match(m.group(1)):
            break
        i = m.start(1)
        words += 1
    return i


def _listed_with(text: str, known: list[tuple], cands: list[tuple]) -> list[int]:
    """Indices of ``cands`` that stand in one list with a ``known`` item: consecutive items
    joined by ",", "/", "and", "or" (linear in the number of items)."""
    items = sorted(
        [(a, b, True, -1) for a, b, *_x in known]
        + [(a, b, False, i) for i, (a, b, *_y) in enumerate(cands)]
    )
    n = len(items)
    joined = [
        items[k][1] <= items[k + 1][0]
        and bool(_LIST_JOIN_RE.fullmatch(text[items[k][1] : items[k + 1][0]]))
        for k in range(n - 1)
    ]
    reach = [it[2] for it in items]
    for k in range(n - 1):
        if joined[k] and reach[k]:
            reach[k + 1] = True
    for k in range(n - 2, -1, -1):
        if joined[k] and reach[k + 1]:
            reach[k] = True
    return sorted(it[3] for it, r in zip(items, reach, strict=True) if r and not it[2])


def _gene_mentions(text: str) -> list[tuple[int, int, str]]:
    """(start, end, gene) of every gene mention that names a finding (not a therapy target)."""
    mentions: list[tuple[int, int, str]] = []
    for m in _GENE_RE.finditer(text):
        gene = _GENE_BY_GROUP[m.lastgroup]
        after = text[m.end() : m.end() + 40]
        if _therapy_context(text, m.start(), m.end()):
            continue
        lead = text[max(0, m.start() - 45) : m.start()]
        if _MENTION_TESTING_RE.search(lead) and not re.search(
            r"\b(?:positive|negative|positivity|negativity)\b", lead, _I
        ):
            continue  # "determination of ALK variant and TP53 status": a test to do
        if gene == "EGFR" and re.match(r"[\s)]*(?:\(?e?gfr\)?\s*)?(?:>|<|>=|<=|=)\s*\d", after, _I):
            continue  # "EGFR > 30 mL/min": a misspelt eGFR (kidney function)
        if gene in ("IDH1", "IDH2") and "/" in m.group(0):
            mentions.append((m.start(), m.end(), "IDH1"))
            mentions.append((m.start(), m.end(), "IDH2"))
            continue
        mentions.append((m.start(), m.end(), gene))
    # "NTRK, BRAF, RET, MET or other ...": a short symbol that is also a word (MET, RET, KIT)
    # counts when it stands in a list of genes
    if mentions:
        cands = [
            (m.start(), m.end(), m.group("sym"))
            for m in _SHORT_SYMBOL_RE.finditer(text)
            if not any(a < m.end() and m.start() < b for a, b, _g in mentions)
            and not _therapy_context(text, m.start(), m.end())
        ]
        mentions = sorted(mentions + [cands[i] for i in _listed_with(text, mentions, cands)])
    # "ALK receptor tyrosine kinase (ALK)": the written-out name before a symbol in
    # parentheses is part of that mention
    out: list[tuple[int, int, str]] = []
    for a, b, g in sorted(mentions):
        if text[a - 1 : a] == "(" and text[b : b + 1] == ")":
            start = _name_start(text, a - 1)
            out = [x for x in out if not (x[0] >= start and x[1] <= b + 1)]
            out.append((start, b + 1, g))
        else:
            out.append((a, b, g))
    return out


def gene_mentions(text: str) -> list[tuple[int, int, str]]:
    """(start, end, gene) of every gene named as a finding in ``text`` (not as a therapy
    target, nor as a test still to do): what a trial's condition or criteria line says of
    the tumour's markers."""
    return _gene_mentions(text)


def _bind_variants(
    text: str, mentions: list[tuple[int, int, str]]
) -> tuple[list[tuple[str, str, int | None, int, bool, bool]], bool, list[str]]:
    """(gene, key, exon, start, negative, also) for each variant written on the line
    (``also``: after "as well as" / "in addition to": a second requirement), and whether
    a variant written there was left out (a permitted extra, an exception, a scope, a test
    to do, a gene not read): then no list on the line is known to be closed; and the
    variants named as exceptions ("any KRAS mutation other than G12C").

    A variant belongs to the gene named just before it in its clause (and to every gene
    listed with that one: "EGFR or HER2 exon 20 insertion"), else to the only gene named
    after it in the clause, else to the one gene its name is used for ("T790M"). A status
    word right after a variant ("T790M negative") is that variant's; a run of variants
    joined by "or" / "and" / "/" shares the status written after its last one."""
    spans = _variant_spans(text)
    if not spans:
        return [], False, []
    bounds = [0] + [m.end() for m in re.finditer(r";|\.\s", text)] + [len(text) + 1]
    out = []
    raw: list[tuple[list[str], str, int | None, int, int]] = []
    dropped = False
    excepted: list[str] = []
    for a, b, key, exon in spans:
        lo = max(x for x in bounds if x <= a)
        hi = min(x for x in bounds if x > a)
        pre = text[lo:a]
        if (
            _therapy_context(text, a, b)
            or _VARIANT_PERMISSIVE_RE.search(pre)
            or _CLAUSE_PERMISSIVE_RE.search(text[lo:hi])
            or _VARIANT_EXCEPT_RE.search(pre)
            or _VARIANT_SCOPE_RE.search(pre)
            or _VARIANT_STATUS_RE.match(text[b : b + 25])
        ):
            dropped = True
            if _VARIANT_EXCEPT_RE.search(pre):
                excepted.append(key)
            continue
        before = [x for x in mentions if lo <= x[0] and x[1] <= a]
        after_ = [x for x in mentions if x[0] >= b and x[0] < hi]
        genes: list[str] = []
        sym = re.search(r"\b([A-Z][A-Z0-9]{1,9})[\s:(-]*$", text[lo:a])
        if sym and not _GENE_RE.fullmatch(sym.group(1)) and not _split_key(sym.group(1)):
            dropped = True
            continue  # "CRLF2 F232C": a variant of a gene this module does not read
        if before and a - before[-1][1] <= 60:
            j = len(before) - 1
            genes = [before[j][2]]
            while j > 0 and _LIST_JOIN_RE.fullmatch(text[before[j - 1][1] : before[j][0]]):
                j -= 1
                genes.append(before[j][2])
        elif len({g for *_x, g in after_}) == 1:
            genes = [after_[0][2]]
        elif not before and not after_ and key in _VARIANT_GENE:
            genes = [_VARIANT_GENE[key]]
        raw.append((genes, key, exon, a, b))
    # "an Ex19del or Ex21-L858R substitution": a variant joined to one whose gene is known
    # belongs to that gene too
    for i, (genes, key, exon, a, b) in enumerate(raw):
        if genes:
            continue
        for j in (i + 1, i - 1):
            if 0 <= j < len(raw) and raw[j][0]:
                x, y = (b, raw[j][3]) if j > i else (raw[j][4], a)
                if _VARIANT_JOIN_RE.fullmatch(text[x:y]):
                    raw[i] = (raw[j][0], key, exon, a, b)
                    break
    if any(not r[0] for r in raw):
        dropped = True
    raw = [r for r in raw if r[0]]
    # a variant-like token left unread in a clause with variants: the list is not read whole
    read = {i for r in raw for i in range(r[3], r[4])} | {
        i for x in mentions for i in range(x[0], x[1])
    }
    clauses = {
        (max(x for x in bounds if x <= r[3]), min(x for x in bounds if x > r[3])) for r in raw
    }
    for lo, hi in clauses:
        for m in _VARIANTISH_RE.finditer(text, lo, min(hi, len(text))):
            if m.start() not in read and not re.fullmatch(
                r"\d+(?:st|nd|rd|th|s)|[A-Za-z]+\d?|(?:ex(?:on)?|v|cd|ecog|stage)\d+\w*",
                m.group(0),
                _I,
            ):
                dropped = True
    # the status of each variant (own, or shared along a run)
    neg_after = [
        bool(_MARKER_NEG_STATUS_RE.search(text[b : b + 14].split(",")[0])) for *_x, b in raw
    ]
    for i in range(len(raw) - 2, -1, -1):
        own = re.search(
            r"\b(?:positive|negative|wild[- ]?type|detected|mutat\w*)\b",
            text[raw[i][4] : raw[i][4] + 14],
            _I,
        )
        joined = re.fullmatch(
            r"\s*(?:mutations?\s*)?(?:and/or|and|or|/)\s*", text[raw[i][4] : raw[i + 1][3]], _I
        )
        if not own and joined:
            neg_after[i] = neg_after[i + 1]
    for (genes, key, exon, a, _b), neg in zip(raw, neg_after, strict=True):
        lo = max(x for x in bounds if x <= a)
        # "an EGFR mutation ..., as well as the T790M mutation": a second requirement
        conj = bool(_ALSO_RE.search(text[lo:a]))
        for g in genes:
            out.append((g, key, exon, a, neg, conj))
    return out, dropped, excepted


# alterations that are not sequence variants, and how a patient's string says them
_KIND_WORDS = {
    "amplification": r"amplif|copy number|\bcn[gv]\b",
    "fusion": r"fusion|rearrang|translocat|-[A-Z0-9]{2,}\b",
    "rearrangement": r"fusion|rearrang|translocat|-[A-Z0-9]{2,}\b",
    "overexpression": r"overexpress|ihc|expression|\d\+",
}
_LEVEL_GENES = frozenset({"MSI", "TMB", "PD-L1"})  # "high" is a level only for these


def _after_inline(text: str, inline, start: int) -> bool:
    """True when ``start`` follows an inline "exclusion of" in the same clause."""
    return bool(
        inline and start > inline.start() and not re.search(r";|\.\s", text[inline.end() : start])
    )


def _variant_label(key: str) -> str:
    m = re.fullmatch(r"ex(\d+)(del|ins|skip|dup|pt)?", key)
    if not m:
        return key
    return f"exon {m.group(1)} {_KIND_NAMES.get(m.group(2) or '', 'mutation')}"


def _variant_markers(
    text: str, markers: list[dict], variants: list, head_negative: bool, inline, dropped: bool
) -> list[dict]:
    """Replace the gene-level markers of each gene the line names variants of by markers
    listing those variants (one per status: "L858R positive and T790M negative")."""
    if not variants:
        return markers
    open_list = dropped or bool(_OPEN_RE.search(text))
    by_gene: dict[tuple[str, bool], dict] = {}
    for gene, key, exon, start, neg, conj in variants:
        neg = neg or head_negative
        if _after_inline(text, inline, start):
            neg = not neg
        m = by_gene.get((gene, neg, conj))
        if m is None:
            old = next((x for x in markers if x["gene"] == gene and x["negative"] == neg), None)
            alt = old["alteration"] if old and old.get("alteration") else None
            if alt is None or not (_VARIANT_RE.fullmatch(alt) or _PROTEIN_RE.fullmatch(alt)):
                alt = _variant_label(key)
            m = by_gene[(gene, neg, conj)] = {
                "gene": gene,
                "alteration": alt,
                "negative": neg,
                "start": min(start, old["start"]) if old else start,
                "variants": [],
                "exons": {},
                "open": open_list,
                "conj": conj,
            }
            if old and old.get("activating") and not conj:
                # "EGFR sensitising mutations, EGFR T790M mutation": both are named
                m["variants"] = list(_ACTIVATING[gene])
                m["open"] = True
        if key not in m["variants"]:
            m["variants"].append(key)
        if exon is not None:
            m["exons"][key] = exon
    genes = {g for g, _n, _c in by_gene}
    out = [x for x in markers if x["gene"] not in genes]
    out.extend(by_gene.values())
    return sorted(out, key=lambda x: x["start"])


_NOT_GENES = frozenset(
    [
        "IHC",
        "FISH",
        "NGS",
        "PCR",
        "TKI",
        "TKIS",
        "CNS",
        "NSCLC",
        "SCLC",
        "ECOG",
        "ULN",
        "FDA",
        "CLIA",
        "DNA",
        "RNA",
        "CTDNA",
        "CFDNA",
        "AND",
        "OR",
        "NOT",
        "WHO",
        "NCCN",
        "ASCO",
        "CAP",
        "LDT",
        "CDX",
        "NMPA",
        "EMA",
        "NOS",
        "RECIST",
        "CT",
        "MRI",
        "PET",
        "AJCC",
        "TNM",
        "TPS",
        "CPS",
    ]
)


def _unread_genes(text: str, mentions: list[tuple[int, int, str]]) -> list[str]:
    """Gene-like symbols listed with the line's genes but not read ("JAK2, CALR or MPL
    mutation"): a requirement met by one of those cannot be failed here."""
    cands = []
    for m in re.finditer(r"\b[A-Z][A-Z0-9]{1,7}(?:-[A-Z0-9]{1,6})?\b", text):
        sym = m.group(0)
        if sym in _NOT_GENES or _GENE_RE.fullmatch(sym) or _split_key(sym):
            continue
        if len(sym) < 3 and not any(ch.isdigit() for ch in sym):
            continue
        if not any(a <= m.start() < b for a, b, _g in mentions):
            cands.append((m.start(), m.end(), sym))
    out: list[str] = []
    for i in _listed_with(text, mentions, cands):
        if cands[i][2] not in out:
            out.append(cands[i][2])
    return out


def _marker_values(x: dict, excepted: list[str] | None = None) -> dict:
    v = {"gene": x["gene"], "alteration": x["alteration"]}
    if excepted:
        v["except"] = list(excepted)
    if x.get("variants"):
        v["variants"] = list(x["variants"])
        v["open"] = bool(x.get("open"))
        if x.get("exons"):
            v["exons"] = dict(x["exons"])
    elif x.get("activating"):
        v["variants"] = list(_ACTIVATING[x["gene"]])
        v["open"] = True
        v["activating"] = True
    return v


def _biomarker(c: _Ctx) -> list[tuple]:
    """Required / excluded molecular findings ("ALK rearrangement", "EGFR wild-type",
    "EGFR exon 19 deletion or exon 21 L858R")."""
    text = c.plain
    if (
        not any(n in text for n in _GENE_NEEDLES)
        and not any(n in text.lower() for n in _GENE_NEEDLES_LOW)
        and not _PROTEIN_RE.search(text)
    ):
        return []
    mentions = _gene_mentions(text)
    variants, dropped, excepted = _bind_variants(text, mentions)
    # a variant whose gene the line does not name ("T790M positive") is that gene's mention
    for g, key, _exon, a, _neg, _conj in variants:
        if not any(x[2] == g for x in mentions):
            mentions.append((a, a + len(key), g))
    mentions.sort()
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
    # "In CD-117-negative cases DOG-1 must be positive": the marker names the cases a rule is
    # for, not a rule of its own
    mentions = [
        mn
        for mn in mentions
        if not (
            _CASES_BEFORE_RE.search(text[max(0, mn[0] - 20) : mn[0]])
            and _CASES_AFTER_RE.match(text[mn[1] : mn[1] + 40])
        )
    ]
    if not mentions:
        return []
    free = _any_status_asides(text)
    if free:
        # "ER+ (any progesterone receptor [PR] and HER2 status is allowed)": the markers of
        # the aside are free; the one before it is still required
        mentions = [mn for mn in mentions if not any(a <= mn[0] < b for a, b in free)]
        if not mentions:
            return []
        text_for_any = "".join(
            ch if not any(a <= i < b for a, b in free) else " " for i, ch in enumerate(text)
        )
    else:
        text_for_any = text
    if _MARKER_ANY_STATUS_RE.search(text_for_any):
        return []  # "both dMMR and MMR-proficient patients are eligible": no restriction
    if (
        _MARKER_TESTING_RE.search(text)
        and not re.search(
            r"\b(?:positive|negative|confirm\w*|documented|harbou?r\w*|known|presence)\b", text, _I
        )
    ) or _STATUS_TO_TEST_RE.search(text):
        # "archival tissue for determination of FGFR2 status", "sufficient tumour biopsy
        # sample for evaluation and confirmation of EGFR and ALK status": a sample requirement
        return []
    # "... assay, exclusion of patients with ... EGFR-sensitive mutations": in an inclusion
    # line, what follows an inline exclusion is excluded
    inline = (
        re.search(r"\bexclu(?:sion|ding|ded) of\b", text, _I) if c.section == "inclusion" else None
    )
    genes_with_variants = {v[0] for v in variants}
    # each marker's own phrase: from its mention up to the next mention (or 60 characters)
    markers: list[dict] = []
    any_cue = False
    # "negative molecular testing for EGFR mutations and ALK rearrangements": a status
    # before the first gene covers the list
    head = text[max(0, mentions[0][0] - 60) : mentions[0][0]]
    head = head[max(head.rfind(";"), head.rfind(". "), -1) + 1 :]
    head_negative = bool(
        re.search(r"\bnegative (?:[\w-]+ ){0,3}(?:for|of)\s*$", head, _I)
        # "Wild-type EGFR/ALK", "patients with wild type EGFR and ALK", "with negative EGFR,
        # ALK, and ROS1 gene test results"
        or re.search(r"\b(?:wild[\s-]?type|wt|negative)\s*(?:for\s+|of\s+)?$", head, _I)
    )
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
        if cue is None and gene not in genes_with_variants:
            continue
        any_cue = True
        negative = bool(
            _MARKER_NEG_STATUS_RE.search(tail[:50])
            or head_negative
            # "RAS wild type status (KRAS exons 2, 3 and 4 ...)"
            or _in_negative_parenthesis(text, start)
        )
        if _after_inline(text, inline, start):
            negative = not negative
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
            # the gene's own phrase first: in "HER-2 amplification and KRAS mutations" KRAS
            # is mutated, not amplified
            for low in (tail[:40].lower(), lead[-25:].lower()):
                for name, rx in _ALTERATION_WORDS:
                    if name == "high" and gene not in _LEVEL_GENES:
                        continue  # "high-sensitivity EGFR test" is not "EGFR high"
                    if re.search(rx, low):
                        alteration = name
                        break
                if alteration:
                    break
        marker = {"gene": gene, "alteration": alteration, "negative": negative, "start": start}
        if gene in _ACTIVATING and (
            _ACTIVATING_LEAD_RE.search(lead) or _ACTIVATING_TAIL_RE.match(phrase)
        ):
            marker["activating"] = True
        if not any(x["gene"] == gene and x["negative"] == negative for x in markers):
            markers.append(marker)
        elif marker.get("activating"):
            for x in markers:
                if x["gene"] == gene and x["negative"] == negative:
                    x["activating"] = True
    markers = _variant_markers(text, markers, variants, head_negative, inline, dropped)
    if not any_cue or not markers:
        return []
    scores = her2_ihc_scores(text)
    if scores and max(scores) < 3:
        # "Scoring of 0 or 1+ for HER2 protein expression", "HER2-low (IHC 1+ or 2+/ISH-)":
        # a HER2 score below 3+ is no HER2 overexpression; the line rules HER2-positive out
        for x in markers:
            if x["gene"] == "HER2" and not x["negative"]:
                x["negative"] = True
                x["alteration"] = None
    others = _unread_genes(text, mentions)
    out: list[tuple] = []
    for negative, conj in ((False, False), (True, False), (False, True), (True, True)):
        group = [x for x in markers if x["negative"] == negative and bool(x.get("conj")) == conj]
        if not group:
            continue
        pol = c.polarity_plain(text, group[0]["start"])
        if negative:
            pol = "exclude" if pol == "require" else "require"
        vals = {
            "markers": [_marker_values(x, excepted) for x in group],
            "genes": [x["gene"] for x in group],
        }
        if others:
            vals["also_named"] = others
        # "(1) ... ; (2) IDH1 mutated solid tumor; or (3) ...": one alternative's finding
        # is not required of every patient (NOT_MET -> UNKNOWN)
        out.append(("biomarker", pol, vals, {"conditional": bool(_ENUMERATED_RE.search(text))}))
    return out


# a HER2 immunohistochemistry score ("IHC 0", "1+", "2+", "3+"): ASCO/CAP scoring, where
# 3+ is HER2-positive, 0 and 1+ are HER2-negative and 2+ is equivocal (decided by ISH)
_HER2_SCORE_RE = re.compile(
    r"(?:\bihc\s*(?:score\s*(?:of\s*)?)?|\bscor\w*\s+(?:of\s+)?)(?P<a>[0-3])(?!\.\d)(?P<pa>\s*\+)?"
    r"|(?<![\w.+-])(?P<b>[0-3])\s*\+(?!\w)",
    _I,
)
_HER2_NEAR_RE = re.compile(r"\bHER-?2\b|\bERBB2\b|\bimmunohistochem|\bIHC\b", _I)


def her2_ihc_scores(text: str) -> set[int]:
    """The HER2 IHC scores a text names ("0 or 1+" -> {0, 1}); empty when it names none or
    does not speak of HER2 / IHC."""
    if not _HER2_NEAR_RE.search(text) or not re.search(r"\bHER-?2\b|\bERBB2\b", text, _I):
        return set()
    out: set[int] = set()
    for m in _HER2_SCORE_RE.finditer(text):
        d = m.group("a") or m.group("b")
        if m.group("a") and d in "12" and not m.group("pa"):
            continue  # "IHC 2" without "+" may be a count or a version
        out.add(int(d))
    # "0 or 1+": a bare 0 joined to a scored number is a score too
    if re.search(r"(?<![\w.])0\s*(?:or|/|,|-|to)\s*[1-3]\s*\+", text):
        out.add(0)
    return out


def _patient_her2(biomarkers: list[str]) -> tuple[str | None, str] | None:
    """HER2 status from a recorded IHC score ("HER2 IHC 3+" positive, "HER2 1+" negative,
    "HER2 2+, FISH not amplified" negative), or None when no score is recorded."""
    for b in biomarkers:
        if not re.search(r"\bHER-?2\b|\bERBB2\b", b, _I):
            continue
        scores = her2_ihc_scores(b)
        if not scores or len(scores) > 1:
            continue
        score = scores.pop()
        if score == 3:
            return "positive", b
        if score in (0, 1):
            return "negative", b
        if re.search(r"\b(?:fish|ish|sish|cish)\b", b, _I):
            if re.search(r"\b(?:non-?amplified|not amplified|negative)\b|\bish\s*-", b, _I):
                return "negative", b
            if re.search(r"\bamplified\b|\bpositive\b|\bish\s*\+", b, _I):
                return "positive", b
        return None, f"HER2 IHC 2+ without an ISH result: {b!r}"
    return None


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
    "ER": ("ER", "estrogen receptor", "oestrogen receptor", "estrogen-receptor"),
    "PR": ("PR", "PgR", "progesterone receptor", "progesterone-receptor"),
    "HR": ("HR", "hormone receptor", "hormone-receptor"),
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


_PATIENT_NEG_RE = re.compile(
    r"\b(?:negative|neg|not\s+(?:detected|found|present)|absent|wild[\s-]?type|wt)\b|(?<=\w)\s*-\s*$"
    r"|\(-\)",
    _I,
)
_PATIENT_UNSURE_RE = re.compile(
    r"\b(?:unknown|pending|equivocal|indeterminate|not\s+(?:tested|done|assessed)|unavailable|"
    r"n/?a|vus|uncertain)\b",
    _I,
)


def _names_gene(text: str, gene: str) -> bool:
    return any(
        re.search(rf"(?<![A-Za-z0-9]){re.escape(n)}(?![A-Za-z0-9])", text, _I)
        for n in _GENE_ALIASES.get(gene, (gene,))
    )


def patient_variants(biomarkers: list[str] | None, gene: str) -> dict:
    """The variants of ``gene`` a patient's biomarker strings record, with their status.

    ``{"pos": [(key, exon, text)], "neg": [(key, exon, text)], "unread": [text]}``: "EGFR
    L858R" is a positive L858R, "EGFR T790M negative" a negative T790M; "unread" holds the
    strings naming the gene as positive without a variant this grammar reads ("EGFR
    mutation", "EGFR E746_A750del"). A string naming only a variant ("T790M positive")
    counts for the gene that variant name is used for."""
    out: dict = {"pos": [], "neg": [], "unread": []}
    for b in biomarkers or []:
        for part in re.split(r";|,|\band\b|\bwith\b", b):
            if not part.strip():
                continue
            spans = _variant_spans(part)
            named = _names_gene(part, gene)
            if not named and not (
                spans
                and all(
                    _VARIANT_GENE.get(k) == gene
                    for *_x, k, _e in [(0, 0, sp[2], sp[3]) for sp in spans]
                )
            ):
                continue
            if _PATIENT_UNSURE_RE.search(part):
                continue
            negative = bool(_PATIENT_NEG_RE.search(part))
            if not spans:
                rest = part
                for n in _GENE_ALIASES.get(gene, (gene,)):
                    rest = re.sub(
                        rf"(?<![A-Za-z0-9]){re.escape(n)}(?![A-Za-z0-9])", " ", rest, flags=_I
                    )
                if (
                    not negative
                    and named
                    and (
                        not _variant_free_status(part) or re.search(r"[A-Za-z]\d|\d[A-Za-z]", rest)
                    )
                ):
                    out["unread"].append(b)  # "EGFR mutation", "EGFR E746_A750del"
                continue
            for _a, _b, key, exon in spans:
                exon = exon if exon is not None else _exon_in(part)
                out["neg" if negative else "pos"].append((key, exon, b))
    return out


def _variant_free_status(part: str) -> bool:
    """A gene-level status with no variant ("ALK negative", "EGFR wild-type", "MET
    amplification", "ALK fusion"): read by ``patient_marker_status``, not a variant."""
    return not re.search(r"\b(?:mutat\w*|mutant|variant|deletion|insertion|exon)\b", part, _I)


def _exon_in(part: str) -> int | None:
    m = _EXON_RE.search(part)
    return int(m.group("exon") or m.group("exon2")) if m else None


def patient_marker_status(biomarkers: list[str] | None, gene: str) -> tuple[str | None, str]:
    """(status "positive" | "negative" | None, evidence) for one gene of ``_GENE_SPELLINGS``.

    Reuses ``matcher.knowledge.biomarker_status`` for each spelling of the gene; MSI/MMR and
    SMARCB1/INI1 (where "loss" or "deficient" is the positive finding) are read here. A
    negative result for one variant ("EGFR T790M negative") is not a negative gene: it is
    left out here (``patient_variants`` reads it).
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
    elif gene == "HER2" and _patient_her2(biomarkers) is not None:
        return _patient_her2(biomarkers)
    else:
        gene_level = [
            b for b in biomarkers if not (_variant_spans(b) and _PATIENT_NEG_RE.search(b))
        ]
        pos, neg = [], []
        for name in _GENE_ALIASES.get(gene, (gene,)):
            status, evidence = biomarker_status(gene_level, name)
            if status == "positive":
                pos.append(evidence)
            elif status == "negative":
                neg.append(evidence)
    if gene == "HR" and not (pos or neg):
        # hormone receptor status from the receptors: positive when either is, negative when
        # both are recorded negative
        er, er_ev = patient_marker_status(biomarkers, "ER")
        pr, pr_ev = patient_marker_status(biomarkers, "PR")
        if "positive" in (er, pr):
            return "positive", er_ev if er == "positive" else pr_ev
        if er == "negative" and pr == "negative":
            return "negative", f"{er_ev}; {pr_ev}"
    if pos and neg:
        return None, f"conflicting {gene} results: {'; '.join(pos + neg)}"
    if pos:
        return "positive", pos[0]
    if neg:
        return "negative", neg[0]
    return None, f"{gene} status not recorded"


def _marker_label(m: dict) -> str:
    if m.get("activating"):
        return f"sensitising {m['gene']} mutation ({', '.join(map(_variant_label, m['variants']))})"
    if m.get("variants"):
        return f"{m['gene']} " + " or ".join(_variant_label(k) for k in m["variants"])
    alt = m.get("alteration")
    return f"{m['gene']} {alt}" if alt and alt not in ("positive", "mutation") else m["gene"]


def _variant_status(p: Any, m: dict, polarity: str) -> tuple[str | None, str, bool]:
    """(status, evidence, unconfirmed) of a marker that names variants.

    "positive": the patient has one of them; "negative": the gene is recorded negative, or
    each named variant is recorded negative, or (a requirement naming a closed list) every
    variant the patient has is a different one; None otherwise, with what to verify."""
    gene = m["gene"]
    want = m["variants"]
    exons = m.get("exons") or {}
    facts = patient_variants(p.biomarkers, gene)
    label = _marker_label(m)
    for key, exon, text in facts["pos"]:
        if any(_compare(w, exons.get(w), key, exon) == "match" for w in want):
            return "positive", text, False
    status, evidence = patient_marker_status(p.biomarkers, gene)
    if status == "negative" and not facts["pos"]:
        return "negative", evidence, False
    negs = facts["neg"]
    if negs and all(
        any(_compare(w, exons.get(w), key, exon) == "match" for key, exon, _t in negs) for w in want
    ):
        return "negative", negs[0][2], False
    if (
        polarity == "require"
        and facts["pos"]
        and not facts["unread"]
        and not m.get("open")
        and all(
            _compare(w, exons.get(w), key, exon) == "different"
            and (
                len(want) >= 2
                or _split_key(w)
                and _split_key(key)
                and _split_key(w)[:2] == _split_key(key)[:2]
            )
            for key, exon, _t in facts["pos"]
            for w in want
        )
    ):
        had = "; ".join(repr(t) for _k, _e, t in facts["pos"])
        return "negative", f"{had} is not among the variants listed ({label})", False
    if facts["pos"] or facts["unread"] or status == "positive":
        had = "; ".join(repr(t) for t in [*(t for *_x, t in facts["pos"]), *facts["unread"]])
        return None, f"{gene} positive ({had or repr(evidence)}) but {label} not stated", True
    if negs:
        return None, f"{'; '.join(repr(t) for *_x, t in negs)} recorded; {label} not stated", False
    return None, f"{gene} status not recorded", False


_CASES_BEFORE_RE = re.compile(r"\b(?:in|for|if|when)\s+(?:the\s+)?$", _I)
_CASES_AFTER_RE = re.compile(
    r"[\s-]*(?:positive|negative|[\w-]+)?\s*(?:cases|patients|tumou?rs|subjects|participants|disease)\b",
    _I,
)
# a marker required as a protein finding (immunohistochemistry, staining) ...
_PROTEIN_LEVEL = frozenset({"positive", "expression", "overexpression", "expressing"})
# for the markers whose "positive" is a protein finding (not a mutation: "BRAF-positive" is a
# BRAF mutation) ...
_PROTEIN_MARKERS = frozenset(
    {
        "KIT",
        "HER2",
        "PD-L1",
        "ER",
        "PR",
        "CD19",
        "CD20",
        "CD22",
        "CD30",
        "CD33",
        "CD38",
        "CD123",
        "BCMA",
    }
)
# ... which a mutation test recorded negative does not answer
_MUTATION_ONLY_RE = re.compile(r"wild[\s-]?type|\bwt\b|mutat|sequenc", _I)


def _her2_protein_result(m: dict, status: str | None, evidence: str | None) -> tuple | None:
    """A HER2 mutation asked for, a bare "HER2 negative" recorded: the usual HER2 result is the
    protein or amplification test, which says nothing of a mutation (an undecided result)."""
    if status != "negative" or m["gene"] != "HER2" or _MUTATION_ONLY_RE.search(evidence or ""):
        return None
    why = f"{evidence!r} recorded: a protein or amplification result, not the mutation asked for"
    return (m, None, why, False)


def _ev_biomarker(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    markers = c.values.get("markers") or []
    if not markers:
        return UNKNOWN, "to review: molecular finding not read"
    # (marker, status, evidence as written for the reason, specific variant unconfirmed)
    results = []
    for m in markers:
        if m.get("except"):
            facts = patient_variants(p.biomarkers, m["gene"])
            hit = [
                t
                for key, exon, t in facts["pos"]
                if any(_compare(w, None, key, exon) == "match" for w in m["except"])
            ]
            if hit:
                label = " or ".join(map(_variant_label, m["except"]))
                results.append(
                    (m, None, f"{hit[0]!r}: the line makes an exception of {label}", True)
                )
                continue
        if m.get("variants"):
            status, evidence, unconfirmed = _variant_status(p, m, c.polarity)
            if " is not among " not in evidence and (
                unread := _her2_protein_result(m, status, evidence)
            ):
                results.append(unread)  # "HER2 exon 20 insertion" against "HER2 negative"
                continue
            if status == "positive":
                evidence = f"{m['gene']} positive ({evidence!r})"
            elif status == "negative" and " is not among " not in evidence:
                evidence = f"documented negative ({evidence!r})"
            results.append((m, status, evidence, unconfirmed))
            continue
        status, evidence = patient_marker_status(p.biomarkers, m["gene"])
        alt = m.get("alteration") or ""
        # a named variant ("V600E") or a level ("PD-L1 >= 50%") must be stated to count
        variant = bool(alt and (_VARIANT_RE.fullmatch(alt) or _LEVEL_RE.fullmatch(alt)))
        unconfirmed = (
            status == "positive"
            and variant
            and alt.replace(" ", "").lower() not in evidence.replace(" ", "").lower()
        )
        kind = _KIND_WORDS.get(alt)
        if status == "positive" and kind and not unconfirmed:
            # "HER2 amplification" excluded, "HER2 exon 20 insertion" recorded: a sequence
            # variant is not an amplification / fusion
            found = [b for b in p.biomarkers or [] if _names_gene(b, m["gene"])]
            if found and all(_variant_spans(b) and not re.search(kind, b, _I) for b in found):
                ev = "; ".join(repr(b) for b in found)
                results.append((m, None, f"{ev} recorded (a sequence variant, not {alt})", True))
                continue
        if (
            status == "negative"
            and alt in _PROTEIN_LEVEL
            and m["gene"] in _PROTEIN_MARKERS
            and _MUTATION_ONLY_RE.search(evidence or "")
        ):
            # "KIT wild-type" against "stain positive for KIT (CD117)": a gene without a
            # mutation may still make the protein the trial tests for
            results.append(
                (
                    m,
                    None,
                    f"{evidence!r} recorded: a mutation test, not the protein finding asked for",
                    False,
                )
            )
            continue
        if re.search(r"mutat|variant|insertion|deletion", alt, _I) and (
            unread := _her2_protein_result(m, status, evidence)
        ):
            results.append(unread)  # "HER2 mutation" required, "HER2 negative" recorded
            continue
        if unconfirmed:
            evidence = f"{m['gene']} positive ({evidence!r}) but the variant is not stated"
        elif status == "positive":
            evidence = f"{m['gene']} positive ({evidence!r})"
        elif status == "negative":
            evidence = f"documented negative ({evidence!r})"
        results.append((m, status if not unconfirmed else None, evidence, unconfirmed))
    desc = " or ".join(_marker_label(m) for m in markers)
    verb = "requires" if c.polarity == "require" else "excludes"
    pos = [r for r in results if r[1] == "positive"]
    if pos:
        ev = pos[0][2]
        return (MET if c.polarity == "require" else NOT_MET), f"{ev}; trial {verb} {desc}"
    if all(r[1] == "negative" for r in results):
        ev = "; ".join(r[2] for r in results)
        also = c.values.get("also_named")
        if c.polarity == "require" and also:
            return UNKNOWN, (
                f"{ev}; trial requires {desc} or {' or '.join(also)} (not read): verify "
                f"{', '.join(also)}"
            )
        return (NOT_MET if c.polarity == "require" else MET), f"{ev}; trial {verb} {desc}"
    part = [r for r in results if r[3]]
    if part:
        return UNKNOWN, f"{part[0][2]}; trial {verb} {_marker_label(part[0][0])}: verify"
    plain = [r[0]["gene"] for r in results if r[1] is None and _not_recorded(r[2])]
    other = [r[2] for r in results if r[1] is None and not _not_recorded(r[2])]
    missing = other + ([f"{', '.join(plain)} status not recorded"] if plain else [])
    return UNKNOWN, f"{'; '.join(missing)}: verify (trial {verb} {desc})"


def _not_recorded(evidence: str) -> bool:
    return evidence.endswith("status not recorded") or evidence.startswith(
        ("no biomarker results given", "no ")
    )


# Unread words that only introduce examples of what the line names ("EGFR mutation [e.g.,
# exon 19 deletion, L858R]"): they cannot widen a requirement beyond its genes.
_EXAMPLE_RUN_RE = re.compile(
    r"\W*(?:e\.?\s?g\.?|i\.?\s?e\.?|including|such as|for example|for instance|namely|etc\.?)\W*",
    _I,
)


def settled_gene_negative(p: Any, c: Criterion, vocab: Any) -> str | None:
    """Why a NOT_MET on a required marker holds whatever the line's example words say, or None.

    A patient recorded negative for the whole gene ("EGFR negative", "ALK wild-type") has no
    alteration of it, so no example of one ("EGFR mutation (e.g., exon 19 deletion, L858R)")
    admits them. Only example words may be left over: an "or", an "other", a condition or a
    permission could name another way in, and keeps the verdict UNKNOWN."""
    markers = c.values.get("markers") or []
    if c.polarity != "require" or not markers or c.values.get("also_named"):
        return None
    if not all(_EXAMPLE_RUN_RE.fullmatch(w) for w in c.unexplained):
        return None
    for m in markers:
        if m.get("except"):
            return None
        status, _evidence = patient_marker_status(p.biomarkers, m["gene"])
        if status != "negative" or patient_variants(p.biomarkers, m["gene"])["pos"]:
            return None
    genes = ", ".join(dict.fromkeys(m["gene"] for m in markers))
    return f"recorded negative for {genes} as a whole, so none of the examples applies"
