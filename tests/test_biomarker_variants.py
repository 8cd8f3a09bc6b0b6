"""Variant-level biomarker criteria: the variant grammar, gene lists, and the verdicts.

Line shapes are registry criteria text (ClinicalTrials.gov) seen in the blind sets and the
shared record collection. The rule under test: a closed list of variants excludes a patient
with a recorded different variant of that gene; an open list, an unread variant, another
gene's result or an assay word ("high-sensitivity") never does.
"""

from __future__ import annotations

import pytest

from matcher.eligibility import MET, NOT_MET, UNKNOWN, ParsedTrial, evaluate, parse_line
from matcher.eligibility.biomarker import _compare, _variant_spans, patient_marker_status
from matcher.patient import normalize_record
from matcher.trial import Trial


def _markers(text, section):
    return [
        (c.polarity, [(m["gene"], m.get("variants"), m.get("open")) for m in c.values["markers"]])
        for c in parse_line(text, section)
        if c.type == "biomarker"
    ]


def _biomarker_verdicts(text, section, biomarkers):
    pt = ParsedTrial(Trial(nct_id="NCT00000000"), parse_line(text, section))
    p = normalize_record({"id": "P1", "biomarkers": biomarkers}, source="test")
    return [(v.verdict, v.reason) for v in evaluate(p, pt) if v.criterion.type == "biomarker"]


# --- the grammar ------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "keys"),
    [
        ("EGFR exon 19 deletion", ["ex19del"]),
        ("Ex19del or Ex21-L858R", ["ex19del", "L858R"]),
        ("EGFR 19DEL mutation", ["ex19del"]),
        ("DEL19 or L858R", ["ex19del", "L858R"]),
        ("EGFR exon20ins", ["ex20ins"]),
        ("EGFR 20 exon insertion mutations", ["ex20ins"]),
        ("deletion of exon 19", ["ex19del"]),
        ("MET exon 14 skipping", ["ex14skip"]),
        ("KIT exon 11 mutation", ["ex11"]),
        ("exon 20 point mutation", ["ex20pt"]),
        ("G719A/C/S", ["G719A", "G719C", "G719S"]),
        ("exon 21 L858R", ["L858R"]),  # the exon locates the change: one variant
        ("T790M mutations at 20 exon", ["T790M"]),
        ("KRAS exons 2, 3 and 4", []),  # exons tested, not a variant
        ("high-sensitivity EGFR mutation test", []),
        ("EGFR high", []),
    ],
)
def test_variant_grammar(text, keys):
    assert [k for _a, _b, k, _e in _variant_spans(text)] == keys


@pytest.mark.parametrize(
    ("want", "have", "result"),
    [
        ("L858R", "L858R", "match"),
        ("G719X", "G719S", "match"),  # X: any residue at the codon
        ("G719S", "G719X", "unknown"),  # the recorded residue is not stated
        ("G12C", "G12D", "different"),
        ("ex19del", "ex20ins", "different"),
        ("ex19del", "T790M", "different"),  # a substitution is not an exon deletion
        ("ex11", "ex11del", "match"),
        ("ex20", "T790M", "unknown"),  # the exon of the change is not stated
        ("ex20pt", "ex20ins", "different"),
    ],
)
def test_variant_comparison(want, have, result):
    assert _compare(want, None, have, None) == result


# --- parsing: genes and lists ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "section", "expected"),
    [
        (
            "An exon 19 deletion mutation or exon 21 L858R mutation has been found in "
            "high-sensitivity EGFR mutation tests by PCR using tumor tissue centrally confirmed.",
            "inclusion",
            [("require", [("EGFR", ["ex19del", "L858R"], False)])],
        ),
        (
            "A positive result for the exon 20 T790M mutation from any high-sensitivity EGFR "
            "mutation test such as digital PCR using tumor tissue or cells.",
            "exclusion",
            [("exclude", [("EGFR", ["T790M"], True)])],
        ),
        (
            "Patients with T790M mutations at 20 exon;",
            "exclusion",
            [("exclude", [("EGFR", ["T790M"], False)])],
        ),
        (
            "Participants with epidermal growth factor receptor (EGFR)/ALK receptor tyrosine "
            "kinase (ALK)/ROS proto-oncogene 1 (ROS1)/neurotrophic tyrosine receptor kinase "
            "(NTRK)/MET proto-oncogene (MET)/B-Raf proto-oncogene (BRAF)/RET proto-oncogene (RET) "
            "mutations amenable to targeted therapies",
            "exclusion",
            [
                (
                    "exclude",
                    [
                        ("EGFR", None, None),
                        ("ALK", None, None),
                        ("ROS1", None, None),
                        ("NTRK", None, None),
                        ("MET", None, None),
                        ("BRAF", None, None),
                        ("RET", None, None),
                    ],
                )
            ],
        ),
        (
            "Known positivity for human epidermal growth factor receptor 2 (HER2)",
            "exclusion",
            [("exclude", [("HER2", None, None)])],
        ),
        ("TP53WT tumours", "inclusion", [("exclude", [("TP53", None, None)])]),
        (
            "KIT or PDGFRA mutation",
            "inclusion",
            [("require", [("KIT", None, None), ("PDGFRA", None, None)])],
        ),
        (
            "Harboring EGFR sensitizing mutation or ALK gene translocation",
            "exclusion",
            [
                (
                    "exclude",
                    [
                        ("EGFR", ["ex19del", "L858R", "G719X", "L861Q", "S768I"], True),
                        ("ALK", None, None),
                    ],
                )
            ],
        ),
        # "as well as": a second requirement, not one more alternative
        (
            "an EGFR mutation, including an exon-19 deletion (Ex19del), L858R, or other (L861Q, "
            "G719A, G719C, or G719S), as well as the T790M mutation of EGFR",
            "inclusion",
            [
                (
                    "require",
                    [("EGFR", ["ex19del", "L858R", "L861Q", "G719A", "G719C", "G719S"], True)],
                ),
                ("require", [("EGFR", ["T790M"], True)]),
            ],
        ),
        # a test to be done is not a finding
        (
            "Must agree to provide tumor tissue or blood samples collected during or after previous "
            "EGFR-TKI treatment-induced radiological progression for EGFR T790M detection",
            "inclusion",
            [],
        ),
    ],
)
def test_biomarker_lists_and_variants(text, section, expected):
    assert _markers(text, section) == expected


def test_comma_list_keeps_short_symbols():
    [(pol, markers)] = _markers(
        "Lacks sensitising EGFR tumour tissue mutation and ALK and ROS1 rearrangements and has no "
        "documented tumour genomic alterations in NTRK, BRAF, RET, MET or other actionable driver "
        "oncogenes with approved therapies (actionable genomic alterations).",
        "inclusion",
    )
    assert pol == "exclude"
    assert [g for g, _v, _o in markers] == ["EGFR", "ALK", "ROS1", "NTRK", "BRAF", "RET", "MET"]


# --- verdicts -------------------------------------------------------------------------------
CLOSED = "An exon 19 deletion or exon 21 L858R mutation"
T790M_REQ = (
    "Progressed after receiving first or second generation EGFR-TKI treatment, T790M positive."
)
T790M_EXCL = (
    "A positive result for the exon 20 T790M mutation from any high-sensitivity EGFR mutation "
    "test such as digital PCR using tumor tissue or cells."
)


@pytest.mark.parametrize(
    ("text", "section", "biomarkers", "verdict", "reason_part"),
    [
        # a closed list: a recorded different variant of the gene does not meet it
        (CLOSED, "inclusion", ["EGFR exon 20 insertion"], NOT_MET, "not among the variants listed"),
        (CLOSED, "inclusion", ["EGFR G719X", "EGFR S768I"], NOT_MET, "not among"),
        (CLOSED, "inclusion", ["EGFR L858R"], MET, "L858R"),
        (CLOSED, "inclusion", ["EGFR L858R", "EGFR T790M negative"], MET, "L858R"),
        (CLOSED, "inclusion", ["EGFR negative"], NOT_MET, "documented negative"),
        # must NOT exclude: the variant is not stated / not read / another gene's result
        (CLOSED, "inclusion", ["EGFR mutation"], UNKNOWN, "not stated"),
        (CLOSED, "inclusion", ["EGFR E746_A750del"], UNKNOWN, "not stated"),
        (CLOSED, "inclusion", ["ALK negative"], UNKNOWN, "EGFR status not recorded"),
        (CLOSED, "inclusion", ["EGFR T790M negative"], UNKNOWN, "not stated"),
        # must NOT exclude: an open list
        (
            "Rare EGFR mutations, including exon 18 G719X, E709X, etc., S768I in exon 20",
            "inclusion",
            ["EGFR exon 19 deletion"],
            UNKNOWN,
            "not stated",
        ),
        (
            "EGFR mutation such as exon 19 deletion or L858R",
            "inclusion",
            ["EGFR exon 20 insertion"],
            UNKNOWN,
            "",
        ),
        (
            "EGFR exon 19 deletion, L858R or other sensitising mutation",
            "inclusion",
            ["EGFR exon 20 insertion"],
            UNKNOWN,
            "",
        ),
        # one named variant: another recorded variant may coexist (T790M after L858R)
        ("EGFR exon 20 insertion mutation", "inclusion", ["EGFR L858R"], UNKNOWN, "not stated"),
        # a required variant recorded negative, or the gene negative
        (T790M_REQ, "inclusion", ["EGFR L858R", "EGFR T790M negative"], NOT_MET, "T790M negative"),
        (T790M_REQ, "inclusion", ["EGFR negative"], NOT_MET, "documented negative"),
        (T790M_REQ, "inclusion", ["EGFR exon 19 deletion"], UNKNOWN, "T790M not stated"),
        (T790M_REQ, "inclusion", ["EGFR exon 19 deletion", "EGFR T790M"], MET, "T790M"),
        # "high-sensitivity test" is not "EGFR high": only T790M excludes
        (T790M_EXCL, "exclusion", ["EGFR exon 19 deletion", "EGFR T790M"], NOT_MET, "T790M"),
        (T790M_EXCL, "exclusion", ["EGFR exon 19 deletion"], UNKNOWN, "T790M not stated"),
        (T790M_EXCL, "exclusion", ["EGFR L858R", "EGFR T790M negative"], MET, "T790M negative"),
        ("Patients with T790M mutations at 20 exon;", "exclusion", ["EGFR negative"], MET, ""),
        # same codon, another residue
        ("KRAS G12C mutation", "inclusion", ["KRAS G12D"], NOT_MET, "not among"),
        ("KRAS G12C mutation", "inclusion", ["KRAS G12C"], MET, "G12C"),
        ("KRAS G12C mutation", "inclusion", ["KRAS mutation"], UNKNOWN, "not stated"),
        ("BRAF V600E mutation", "inclusion", ["BRAF V600K"], NOT_MET, "not among"),
        # sensitising EGFR: the named set; anything else is not known to be one
        (
            "Harboring EGFR sensitizing mutation or ALK gene translocation",
            "exclusion",
            ["EGFR exon 19 deletion"],
            NOT_MET,
            "sensitising EGFR mutation",
        ),
        (
            "Harboring EGFR sensitizing mutation or ALK gene translocation",
            "exclusion",
            ["EGFR exon 20 insertion", "ALK negative"],
            UNKNOWN,
            "",
        ),
        (
            "Harboring EGFR sensitizing mutation or ALK gene translocation",
            "exclusion",
            ["EGFR negative", "ALK negative"],
            MET,
            "",
        ),
        # other genes
        ("PDGFRA D842V mutation", "exclusion", ["PDGFRA D842V"], NOT_MET, "D842V"),
        ("PDGFRA D842V mutation", "exclusion", ["KIT exon 11 mutation"], UNKNOWN, ""),
        ("KIT exon 11 mutation", "inclusion", ["KIT exon 11 mutation"], MET, ""),
        ("KIT exon 11 mutation", "inclusion", ["KIT exon 9 mutation"], UNKNOWN, ""),
        ("KIT or PDGFRA mutation", "inclusion", ["PDGFRA D842V"], MET, ""),
        ("JAK2 V617F mutation", "inclusion", ["JAK2 V617F"], MET, ""),
        # permitted extras and exceptions are not requirements
        (
            "EGFR exon 19 deletion or L858R, with or without T790M",
            "inclusion",
            ["EGFR L858R", "EGFR T790M negative"],
            MET,
            "",
        ),
        (
            "any pathogenic KRAS mutation other than G12C",
            "inclusion",
            ["KRAS G12C"],
            UNKNOWN,
            "exception",
        ),
        # HER2 IHC scores (ASCO/CAP): 0 and 1+ are HER2-negative, 3+ positive, 2+ by ISH
        (
            "Scoring of 0 or 1+ for HER2 protein expression by IHC",
            "inclusion",
            ["HER2 IHC 3+"],
            NOT_MET,
            "HER2",
        ),
        (
            "Scoring of 0 or 1+ for HER2 protein expression by IHC",
            "inclusion",
            ["HER2 IHC 1+"],
            MET,
            "HER2",
        ),
        (
            "HER2-low (IHC 1+ or IHC 2+/ISH-)",
            "inclusion",
            ["HER2 IHC 2+, FISH not amplified"],
            MET,
            "HER2",
        ),
        ("HER2-low (IHC 1+ or IHC 2+/ISH-)", "inclusion", ["HER2 2+"], UNKNOWN, "ISH"),
        ("HER2-positive breast cancer", "inclusion", ["HER2 IHC 3+"], MET, "HER2"),
        # a bracketed aside frees the markers inside it, not the one before it
        (
            "Histologically confirmed ER+ (any progesterone receptor [PR] and HER2 status is allowed) metastatic breast cancer",
            "inclusion",
            ["ER 0%", "ER negative", "PR positive"],
            NOT_MET,
            "ER",
        ),
    ],
)
def test_variant_verdicts(text, section, biomarkers, verdict, reason_part):
    got = _biomarker_verdicts(text, section, biomarkers)
    assert got, "no biomarker criterion"
    v, reason = got[0]
    assert v == verdict, reason
    assert reason_part in reason


@pytest.mark.parametrize(
    ("text", "section", "biomarkers"),
    [
        # a scope, not a requirement: "required for T790M+"
        (
            "Have undergone failure 1-2 prior EGFR-TKI (Osimertinib exposure required for T790M+)",
            "inclusion",
            ["EGFR L858R", "EGFR T790M negative"],
        ),
        # the exon-20 insertion is allowed by the line's own words
        (
            "Must have at least one EGFR-sensitive mutation: exon 19 deletion, L858R mutation in "
            "exon 21, T790M mutation in exon 20, G719X mutation in exon 18, S768I mutation in exon "
            "20, or L871Q mutation in exon 21 (inclusion of patients with exon 20 insertion "
            "mutations is allowed)",
            "inclusion",
            ["EGFR exon 20 insertion"],
        ),
        # "exon 20 point mutation" is not an exon 20 insertion
        (
            "Patient has EGFR T790M mutation or any other acquired EGFR exon 20 point mutation",
            "exclusion",
            ["EGFR exon 20 insertion"],
        ),
        # an inline exclusion is read as an exclusion (capped: the clause is not read whole)
        (
            "All patients with non-small cell lung cancer brain metastases should be recommended "
            "for EGFR mutation and ALK gene rearrangement assay, exclusion of patients with NSCLC "
            "brain metastases with positive EGFR-sensitive mutations or ALK gene rearrangement",
            "inclusion",
            ["EGFR exon 19 deletion"],
        ),
    ],
)
def test_never_excludes(text, section, biomarkers):
    got = _biomarker_verdicts(text, section, biomarkers)
    assert all(v != NOT_MET for v, _r in got), got


def test_inline_exclusion_flips_polarity():
    crits = [
        c
        for c in parse_line(
            "All patients with NSCLC brain metastases should be recommended for EGFR mutation and "
            "ALK gene rearrangement assay, exclusion of patients with NSCLC brain metastases with "
            "positive EGFR-sensitive mutations or ALK gene rearrangement",
            "inclusion",
        )
        if c.type == "biomarker"
    ]
    assert "exclude" in [c.polarity for c in crits]


@pytest.mark.parametrize(
    ("biomarkers", "status"),
    [
        # a negative variant is not a negative gene ("EGFR status not recorded" before)
        (["EGFR L858R", "EGFR T790M negative"], "positive"),
        (["EGFR T790M negative"], None),
        (["EGFR negative"], "negative"),
        (["EGFR exon 19 deletion", "EGFR T790M"], "positive"),
    ],
)
def test_patient_gene_status_with_variant_results(biomarkers, status):
    assert patient_marker_status(biomarkers, "EGFR")[0] == status


@pytest.mark.parametrize(
    ("biomarkers", "verdict"),
    [
        (["HER2 exon 20 insertion"], UNKNOWN),  # a sequence variant is not an amplification
        (["MET exon 14 skipping"], UNKNOWN),
        (["HER2 amplification"], NOT_MET),
        (["HER2 negative", "MET negative"], MET),
    ],
)
def test_amplification_is_not_a_variant(biomarkers, verdict):
    [(got, reason)] = _biomarker_verdicts(
        "MET amplification or HER2 amplification", "exclusion", biomarkers
    )
    assert got == verdict, reason


@pytest.mark.parametrize(
    ("text", "biomarkers", "verdict"),
    [
        # an "or" between two specimens is not an alternative to the finding
        (
            "Provide detectable specimens (tissue or cancerous pleural effusion) for genotype "
            "testing before enrollment, and patients whose EGFR, ALK and ROS1 gene test results "
            "are all negative;",
            ["EGFR exon 19 deletion", "ALK negative", "ROS1 negative"],
            NOT_MET,
        ),
        (
            "Provide detectable specimens (tissue or cancerous pleural effusion) for genotype "
            "testing before enrollment, and patients whose EGFR, ALK and ROS1 gene test results "
            "are all negative;",
            ["EGFR negative", "ALK negative", "ROS1 negative"],
            MET,
        ),
        (
            "with EGFR mutation confirmed by tumor histology or cytology or hematology prior to "
            "EGFR-TKI treatment.",
            ["EGFR negative"],
            NOT_MET,
        ),
        (
            "with EGFR mutation confirmed by tumor histology or cytology or hematology prior to "
            "EGFR-TKI treatment.",
            ["ALK negative"],
            UNKNOWN,
        ),
    ],
)
def test_specimen_words_are_read(text, biomarkers, verdict):
    [(got, reason)] = _biomarker_verdicts(text, "inclusion", biomarkers)
    assert got == verdict, reason


@pytest.mark.parametrize(
    ("text", "section", "genes"),
    [
        # a gene named as a test to do is not an alternative finding
        (
            "metastatic (stage IV) ALK+ NSCLC NOTE: Documentation of ALK rearrangement by a "
            "positive result of any ALK assay must be available at baseline. Treatment can "
            "already be started based on a local ALK+ test result, but subsequent central testing "
            "of the baseline biopsy for molecular profiling, incl. determination of ALK variant "
            "and TP53 status, should be made possible for all patients.",
            "inclusion",
            [["ALK"]],
        ),
        (
            "Local testing of ALK with no ALK rearrangement (failed testing is considered negative)",
            "inclusion",
            [["ALK"]],
        ),
    ],
)
def test_genes_to_test_are_not_findings(text, section, genes):
    assert [[g for g, _v, _o in ms] for _p, ms in _markers(text, section)] == genes


@pytest.mark.parametrize(
    ("text", "biomarkers", "verdict", "reason_part"),
    [
        # a gene this reader does not know, listed as an alternative: never NOT_MET
        ("JAK2, CALR or MPL mutation", ["JAK2 negative"], UNKNOWN, "CALR, MPL"),
        ("KRAS, NRAS or HRAS mutation", ["KRAS negative", "NRAS negative"], UNKNOWN, "HRAS"),
        ("KIT or PDGFRA mutation", ["KIT negative", "PDGFRA negative"], NOT_MET, ""),
        ("Documented EGFR mutation by PCR or NGS", ["EGFR negative"], NOT_MET, ""),
    ],
)
def test_unread_alternative_genes(text, biomarkers, verdict, reason_part):
    [(got, reason)] = _biomarker_verdicts(text, "inclusion", biomarkers)
    assert got == verdict, reason
    assert reason_part in reason


def test_inline_exclusion_ends_with_its_sentence():
    crits = [
        c
        for c in parse_line(
            "Exclusion of other primary malignancy by imaging. Documented EGFR exon 19 deletion.",
            "inclusion",
        )
        if c.type == "biomarker"
    ]
    assert [c.polarity for c in crits] == ["require"]
