"""Resectability: a patient fact a coordinator records, read by the disease-extent criteria.

A localized tumour may still be unresectable, so "metastatic or unresectable" against a
localized patient is UNKNOWN until the record says whether the tumour can be removed.
"""

from __future__ import annotations

import pytest
from test_clause import _patient, _verdicts

from matcher.eligibility import MET, NOT_MET, UNKNOWN
from matcher.errors import PatientError

LOCAL = {"stage": "localized", "metastatic_sites": []}

# (line, resectable, expected verdict of the extent criterion)
CASES = [
    ("Metastatic or unresectable locally advanced disease", True, NOT_MET),
    ("Metastatic or unresectable locally advanced disease", False, MET),
    ("Metastatic or unresectable locally advanced disease", None, UNKNOWN),
    ("Locally advanced unresectable or metastatic soft tissue sarcoma", True, NOT_MET),
    ("Have metastatic or unresectable sarcoma", True, NOT_MET),
    (
        "Unresectable or metastatic soft tissue sarcoma not amenable to curative treatment",
        True,
        NOT_MET,
    ),
    # "locally advanced" as an alternative of its own: a resectable tumour may be one
    ("Locally advanced, unresectable or metastatic soft tissue sarcoma", True, UNKNOWN),
    ("Locally advanced or metastatic disease", True, UNKNOWN),
    # another way in: recurrence, a stage
    ("Unresectable, recurrent or metastatic disease", True, UNKNOWN),
    ("Unresectable stage III or metastatic disease", True, UNKNOWN),
]


@pytest.mark.parametrize(("line", "resectable", "expected"), CASES)
def test_resectability_against_extent(line, resectable, expected):
    vs = [
        v
        for v in _verdicts("inclusion", line, _patient(**LOCAL, resectable=resectable))
        if v.criterion.type == "disease_extent"
    ]
    assert vs, line
    assert {v.verdict for v in vs} == {expected}, [v.reason for v in vs]


@pytest.mark.parametrize(
    ("value", "expected"), [("yes", True), ("no", False), (True, True), ("", None), (None, None)]
)
def test_resectable_is_read_as_yes_no(value, expected):
    assert _patient(resectable=value).resectable is expected


def test_a_bad_resectable_value_names_the_field_and_what_is_accepted():
    with pytest.raises(PatientError) as err:
        _patient(resectable="maybe")
    assert "resectable" in str(err.value) and "maybe" in str(err.value)
