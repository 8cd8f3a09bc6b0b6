"""The writers' shortcuts give exactly what the plain functions give: ``matches.csv`` cells
made once per value or per trial equal ``render.safe_cell``; a trial row's words equal the
digest's functions."""

from __future__ import annotations

import pytest

from matcher import digest, render, report


@pytest.mark.parametrize(
    "value",
    [
        None,
        "",
        "plain",
        "=SUM(A1)",
        "+1",
        "-3",
        "@x",
        "\tTab",
        "\rCR",
        "'already",
        "naïve ≤ 3 × ULN",
    ],
)
def test_text_cells_equal_safe_cell(value):
    assert report._TEXTS[value] == render.safe_cell(value)
    assert report._TEXTS[value] == render.safe_cell(value)  # the kept text, read again


@pytest.mark.parametrize("value", [0, 1, -3, 7, 0.0, -0.0, -3.0, 12.5, -0.4, 1e9, 2.25])
def test_number_cells_equal_safe_cell(value):
    assert report._NUMBERS[value] == render.safe_cell(value)


def test_equal_int_and_float_share_a_text():
    assert report._NUMBERS[3] == report._NUMBERS[3.0] == render.safe_cell(3.0)


@pytest.mark.parametrize(
    "value",
    [
        [],
        ["a"],
        ["a", "b"],
        ["=bad", "b"],
        ["-1 point", "x"],
        ["ok", "=later"],
        "",
        "text",
        "=text",
    ],
)
def test_list_cells_equal_safe_cell(value):
    assert report._list_cell(value, render.FORMULA_PREFIXES) == render.safe_cell(value)


@pytest.mark.parametrize(
    "cells",
    [
        ("NCT00000001", "A title", "PHASE2", "RECRUITING", "2026-01-01", "https://x"),
        ("NCT00000002", "=HYPERLINK()", "NA", "COMPLETED", None, "https://y"),
        ("NCT00000003", "-minus", "PHASE1/PHASE2", "", "", ""),
    ],
)
def test_trial_cells_equal_safe_cell(cells):
    assert report._trial_cells(*cells) == tuple(render.safe_cell(c) for c in cells)


@pytest.mark.parametrize(
    "status, phase, purpose",
    [
        ("RECRUITING", "PHASE2", "TREATMENT"),
        ("ACTIVE_NOT_RECRUITING", "PHASE1/PHASE2", "SUPPORTIVE_CARE"),
        (None, None, None),
        ("", "NA", ""),
        ("SOMETHING_NEW", "EARLY_PHASE1", "OTHER"),
    ],
)
def test_trial_words_equal_the_functions(status, phase, purpose):
    assert digest._trial_words(status, phase, purpose) == (
        digest.is_open(status),
        digest.status_text(status),
        digest.phase_text(phase),
        digest.purpose_text(purpose),
    )


@pytest.mark.parametrize(
    "row",
    [
        ["a", "b"],
        ["", ""],
        ["x, y", "plain"],
        ['say "no"', "'quoted"],
        ["line\nbreak", "cr\rhere", "crlf\r\n"],
        [" lead", "trail ", "\ttab", "naïve ≤ 3 × ULN"],
        ['",\r\n', "", "=SUM(A1)"],
    ],
)
def test_quoted_cells_equal_the_csv_writer(row):
    import csv
    import io

    buf = io.StringIO()
    csv.writer(buf).writerow(row)
    assert ",".join(report._csv_quote(c) for c in row) + "\r\n" == buf.getvalue()


@pytest.mark.parametrize("value", [None, "", "a, b", 'x"y', "=f", "two\nlines", 3, 2.5, -1.0])
def test_quoted_cache_equals_quoting_the_cell(value):
    cells = report._NUMBERS if isinstance(value, (int, float)) else report._TEXTS
    quoted = report._QNUMBERS if cells is report._NUMBERS else report._QTEXTS
    assert quoted[value] == report._csv_quote(cells[value])
    assert quoted[value] == report._csv_quote(render.safe_cell(value))


def test_trial_csv_pieces_equal_the_trial_cells_quoted():
    cells = ("NCT00000009", 'A, B and "C"', "PHASE2", "RECRUITING", None, "https://x?a=1,2")
    nct, middle, url = report._trial_csv(*cells)
    q = [report._csv_quote(c) for c in report._trial_cells(*cells)]
    assert (nct, middle, url) == (q[0], ",".join(q[1:5]), q[5])
