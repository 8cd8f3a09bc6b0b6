"""HLA type: alleles a line requires or excludes, against the HLA entries of the patient."""

from __future__ import annotations

import pytest
from test_clause import _patient, _verdicts

from matcher.eligibility import MET, NOT_MET, UNKNOWN

AFAMI = "HLA-A*02:01, HLA-A*02:05, or HLA-A*02:06 positive"
SHORT = "HLA-A*02:01, *02:05 or *02:06 positive by central testing"

# (section, line, patient biomarkers, expected verdict of the HLA criterion)
CASES = [
    ("inclusion", AFAMI, ["HLA-A*02:01"], MET),
    ("inclusion", SHORT, ["HLA-A*02:06"], MET),
    # two typed alleles of the locus, neither wanted: the whole genotype rules it out
    ("inclusion", AFAMI, ["HLA-A*24:02", "HLA-A*01:01"], NOT_MET),
    ("inclusion", SHORT, ["HLA-A*24:02/A*01:01"], NOT_MET),
    # one allele typed: the other may be the wanted one
    ("inclusion", SHORT, ["HLA-A*24:02"], UNKNOWN),
    # a group-level type against a protein-level requirement
    ("inclusion", SHORT, ["HLA-A*02"], UNKNOWN),
    ("inclusion", SHORT, ["HLA-A2 negative"], NOT_MET),
    ("inclusion", "Must be HLA-A2 positive", ["HLA-A*02:01"], MET),
    ("inclusion", "HLA-A*0201 positive", ["HLA-A*02:01"], MET),
    # nothing about HLA recorded
    ("inclusion", SHORT, ["ALK negative"], UNKNOWN),
    ("inclusion", SHORT, None, UNKNOWN),
    # an exclusion of an allele
    ("exclusion", "HLA-A*02:05P positive", ["HLA-A*02:05"], NOT_MET),
    ("exclusion", "HLA-A*02:05P positive", ["HLA-A*02:01", "HLA-A*11:01"], MET),
]


@pytest.mark.parametrize(("section", "line", "biomarkers", "expected"), CASES)
def test_hla_type(section, line, biomarkers, expected):
    vs = [
        v
        for v in _verdicts(section, line, _patient(biomarkers=biomarkers))
        if v.criterion.type == "hla"
    ]
    assert vs, line
    assert [v.verdict for v in vs] == [expected], [v.reason for v in vs]


@pytest.mark.parametrize(
    "line",
    [
        "Willing to undergo HLA typing",
        "Age 18 years or older",
        "Consent to HLA screening for the donor search",
        "An HLA-DRB1 8/8 matched related or unrelated donor",
        "HLA-A, -B, -C and -DRB1 matched sibling donor",
    ],
)
def test_lines_without_an_allele_requirement_are_not_hla(line):
    assert not [v for v in _verdicts("inclusion", line, _patient()) if v.criterion.type == "hla"]
