"""Spreadsheets as coordinators have them: headers, delimiters, formats, list cells."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from matcher.errors import InputError
from matcher.patient import read_patients
from matcher.tabular import (
    column_vocab,
    fold_header,
    map_header,
    sniff_delimiter,
    sniff_format,
    split_list,
)


@pytest.mark.parametrize(
    ("header", "field"),
    [
        ("Patient ID", "id"),
        ("patient_id", "id"),
        ("Patient #", "id"),
        ("DOB", "birth_date"),
        ("Date of Birth", "birth_date"),
        ("Gender", "sex"),
        ("ECOG PS", "ecog"),
        ("ecog", "ecog"),
        ("ZIP Code", "zip"),
        ("Zip-Code", "zip"),
        ("Age (years)", "age"),
        ("AGE [yrs]", "age"),
        ("Metastatic Sites", "metastatic_sites"),
        ("Birth-Date", "birth_date"),
        ("ANC (x10^9/L)", "anc"),
        ("Prior Therapies", "prior_therapies"),
        ("KPS", "karnofsky"),
        ("Lung Metastases Count", "lung_metastases_count"),
    ],
)
def test_header_synonyms_map_to_fields(header, field):
    assert column_vocab().spellings[fold_header(header)] == field


def test_every_field_accepts_its_own_name():
    vocab = column_vocab()
    for f in vocab.fields:
        assert vocab.spellings[fold_header(f)] == f


def test_unmapped_header_is_a_warning_with_a_guess():
    hm = map_header(["id", "Diagnosys", "Favourite colour"])
    assert hm.fields == ["id", None, None]
    assert hm.dropped == ["Diagnosys", "Favourite colour"]
    assert hm.warnings == [
        "column 'Diagnosys' (column 2) not read: unknown header; did you mean 'diagnosis'?",
        "column 'Favourite colour' (column 3) not read: unknown header",
    ]


def test_mrn_is_the_id_only_without_an_id_column():
    alone = map_header(["MRN", "Age"])
    assert alone.fields == ["id", "age"]
    assert alone.warnings == ["column 'MRN' used as the patient id (no id column); reports show it"]
    both = map_header(["Patient ID", "MRN", "Name"])
    assert both.fields == ["id", None, None]
    assert both.warnings == [
        "column 'MRN' not read: identifying data is never read",
        "column 'Name' not read: identifying data is never read",
    ]


@pytest.mark.parametrize(
    ("text", "name", "delimiter"),
    [
        ("id,age\n1,2\n", "a.csv", ","),
        ("id;age;sites\n1;2;lung, liver\n", "a.csv", ";"),
        ("id\tage\n1\t2\n", "a.csv", "\t"),
        ("id\tage\n1\t2\n", "a.tsv", "\t"),
        ('"id;x",age\n1,2\n', "a.csv", ","),
        ("id\n1\n", "a.csv", ","),
    ],
)
def test_delimiter_is_sniffed(text, name, delimiter):
    assert sniff_delimiter(text, name) == delimiter


@pytest.mark.parametrize(
    ("name", "text", "fmt"),
    [
        ("p.txt", '[{"id": "a"}]', "json"),
        ("p.csv", '{"id": "a"}', "json"),
        ("p.fhir.json", '{"resourceType": "Bundle"}', "fhir"),
        ("p.json", "id,age\na,3\n", "csv"),
        ("p.dat", "id;age\na;3\n", "csv"),
        ("p.txt", "id\na\n", "csv"),
        ("p.json", "42", "json"),
    ],
)
def test_format_is_sniffed_from_content_first(name, text, fmt):
    assert sniff_format(Path(name), text) == fmt


def test_unknown_format_says_what_to_pass():
    with pytest.raises(InputError, match=r"pass --format json\|csv\|fhir"):
        sniff_format(Path("x.dat"), "hello")


@pytest.mark.parametrize(
    ("cell", "items"),
    [
        ("lung; liver", ["lung", "liver"]),
        ("lung, liver", ["lung", "liver"]),
        ("lung/liver", ["lung", "liver"]),
        ("lung and liver", ["lung", "liver"]),
        ("Lung AND bone & liver", ["Lung", "bone", "liver"]),
        ("lymph node", ["lymph node"]),
        ("", []),
    ],
)
def test_list_cells_split(cell, items):
    assert split_list(cell) == items


def test_the_spreadsheet_from_the_issue_keeps_every_field(fixtures_dir):
    """Headers Age (years), ECOG PS, ZIP Code, Metastatic Sites, Patient ID; lists written
    three ways; ZIPs that lost their leading zero."""
    batch = read_patients(
        fixtures_dir / "patients" / "spreadsheet_export.csv", as_of=date(2026, 1, 1)
    )
    assert batch.errors == []
    assert batch.warnings == []
    got = [
        (p.id, p.age, p.sex, p.diagnosis, p.stage, p.ecog, p.zip, p.metastatic_sites)
        for p in batch.patients
    ]
    assert got == [
        ("S01", 61.0, "female", "leiomyosarcoma", "IV", 1, "10065", ["lung", "liver"]),
        ("S02", 44.0, "male", "synovial_sarcoma", "IV", 0, "02115", ["lung", "liver"]),
        (
            "S03",
            72.0,
            "female",
            "undifferentiated_pleomorphic_sarcoma",
            "metastatic",
            2,
            "07030",
            ["lung", "liver"],
        ),
    ]
    assert [t.name for t in batch.patients[1].prior_therapies] == ["doxorubicin", "ifosfamide"]
    assert batch.patients[1].warnings == [
        "zip '2115' read as '02115' (a spreadsheet dropped its leading zero)"
    ]


def test_semicolon_export_reads_like_the_comma_one(fixtures_dir, tmp_path):
    src = (fixtures_dir / "patients" / "spreadsheet_export.csv").read_text(encoding="utf-8")
    import csv
    import io

    rows = list(csv.reader(io.StringIO(src)))
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\n").writerows(rows)
    eu = tmp_path / "export_eu.csv"
    eu.write_text(out.getvalue(), encoding="utf-8")
    a = read_patients(fixtures_dir / "patients" / "spreadsheet_export.csv")
    b = read_patients(eu)
    strip = [{**p.to_dict(), "source": None} for p in a.patients]
    assert [{**p.to_dict(), "source": None} for p in b.patients] == strip


def test_json_saved_as_txt_is_read_as_json(tmp_path):
    path = tmp_path / "patients.txt"
    path.write_text('[{"id": "a", "diagnosis": "leiomyosarcoma"}]', encoding="utf-8")
    batch = read_patients(path)
    assert [p.diagnosis for p in batch.patients] == ["leiomyosarcoma"]


@pytest.mark.parametrize(
    ("yaml_text", "message"),
    [
        (
            "version: 1\ncolumns:\n  age: [years]\n  sex: [Years]\n",
            "key 'sex': header 'Years' maps to both 'age' and 'sex'",
        ),
        ("version: 1\ncolumns:\n  favourite: [colour]\n", "key 'favourite': unknown field"),
        ("version: 1\ncolums: {}\n", "expected top-level keys: columns, id_fallback, private"),
        (
            "version: 1\ncolumns:\n  id: [mrn]\nid_fallback: [MRN]\n",
            "key 'id_fallback': mrn also listed as a field spelling",
        ),
    ],
)
def test_column_vocabulary_is_validated_on_load(tmp_path, monkeypatch, yaml_text, message):
    from matcher.errors import KnowledgeError

    (tmp_path / "columns.yaml").write_text(yaml_text, encoding="utf-8")
    monkeypatch.setattr("matcher.resources.vocab_dir", lambda: tmp_path)
    column_vocab.cache_clear()
    try:
        with pytest.raises(KnowledgeError) as exc:
            column_vocab()
        assert message in str(exc.value)
    finally:
        column_vocab.cache_clear()


def test_every_spelling_resolves_to_exactly_one_field():
    import yaml

    from matcher.resources import vocab_dir

    data = yaml.safe_load((vocab_dir() / "columns.yaml").read_text(encoding="utf-8"))
    vocab = column_vocab()
    for fld, names in data["columns"].items():
        for name in names:
            assert vocab.spellings[fold_header(name)] == fld, name


_SITE_WORDS = ["lung", "liver", "bone", "brain", "lymph node", "peritoneum", "soft tissue"]


@given(
    st.lists(st.sampled_from(_SITE_WORDS), min_size=1, max_size=5),
    st.sampled_from([";", ",", "/", " and ", " & ", " AND ", "; ", " , "]),
)
def test_any_separator_gives_back_the_items(items, sep):
    assert split_list(sep.join(items)) == items


@given(st.text(max_size=40))
def test_split_list_never_yields_blank_items(text):
    assert all(part.strip() for part in split_list(text))
