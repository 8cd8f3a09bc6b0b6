"""Splitting criteria texts: flattened PDQ paragraphs laid out as the registry lays out PDQ."""

from __future__ import annotations

import pytest

from matcher.criteria_text import split_criteria, unflatten_pdq

_HEAD = "DISEASE CHARACTERISTICS: Soft tissue sarcoma PATIENT CHARACTERISTICS: "


@pytest.mark.parametrize(
    ("content", "items"),
    [
        # a criterion starts at a known first word after the end of a phrase
        (
            "Hematopoietic Absolute neutrophil count > 1,500/mm^3 Platelet count > 100,000/mm^3",
            ["Absolute neutrophil count > 1,500/mm^3", "Platelet count > 100,000/mm^3"],
        ),
        # a capital name inside a phrase never starts one
        (
            "Other Histologically confirmed Ewing sarcoma No Kaposi's sarcoma",
            ["Histologically confirmed Ewing sarcoma", "No Kaposi's sarcoma"],
        ),
        # nor does anything inside brackets, or a lab name inside a phrase
        (
            "Other No known allergy to study drug (e.g., Cremophor EL) No known HIV positivity",
            ["No known allergy to study drug (e.g., Cremophor EL)", "No known HIV positivity"],
        ),
        # a lab name starts one after a value or a bracket
        (
            "Hematopoietic WBC at least 4,000 ANC at least 2,000 Platelets at least 100,000",
            ["WBC at least 4,000", "ANC at least 2,000", "Platelets at least 100,000"],
        ),
        (
            "Hepatic Bilirubin < 3 times upper limit of normal (ULN) SGOT and SGPT < 2.5 times ULN",
            ["Bilirubin < 3 times upper limit of normal (ULN)", "SGOT and SGPT < 2.5 times ULN"],
        ),
        # "OR" between two criteria keeps them one alternative
        (
            "Renal Creatinine no greater than 1.25 times normal OR Creatinine clearance > 65 mL/min",
            ["Creatinine no greater than 1.25 times normal OR Creatinine clearance > 65 mL/min"],
        ),
    ],
)
def test_a_flattened_pdq_sub_section_splits_into_its_criteria(content, items):
    laid = unflatten_pdq(_HEAD + "Age 18 and over " + content)
    sub = content.split(" ", 1)[0]
    at = laid.index(sub)
    got = [x[2:] for x in laid[at + 1 :] if x.startswith("* ")]
    assert got == items


def test_the_items_after_one_of_the_following_are_its_list():
    text = (
        "DISEASE CHARACTERISTICS: Adenocarcinoma of the colon in one of the following "
        "categories: Locally advanced disease Metastatic disease PATIENT CHARACTERISTICS: Age Not "
        "specified Performance status WHO 0-2"
    )
    lines = split_criteria(text)
    parent = next(x for x in lines if x.plain.endswith("categories:"))
    assert [c.plain for c in parent.children] == ["Locally advanced disease", "Metastatic disease"]


@pytest.mark.parametrize(
    "text",
    [
        "Histologically confirmed soft tissue sarcoma, age 18 or over, ECOG 0-1, adequate organ "
        "function, no prior chemotherapy for metastatic disease, Measurable disease by RECIST",
        "DISEASE CHARACTERISTICS: Histologically confirmed soft tissue sarcoma",
    ],
)
def test_other_texts_are_left_as_they_are(text):
    assert unflatten_pdq(text) is None


def test_laying_out_loses_no_word():
    text = _HEAD + (
        "Age 18 to 70 Performance status WHO 0-2 Other Not pregnant Fertile patients must use "
        "effective contraception PRIOR CONCURRENT THERAPY: Surgery Not specified"
    )
    words = " ".join(x.lstrip("* ").strip() for x in unflatten_pdq(text)).split()
    assert words == text.split()
