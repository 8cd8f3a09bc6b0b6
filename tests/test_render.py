"""Report writers: formula-injection neutralisation and HTML escaping."""

from __future__ import annotations

import csv
import io

import pytest

from matcher import DISCLAIMER
from matcher.digest import patient_digest
from matcher.render import (
    bar_chart,
    csv_text,
    open_trials_buckets,
    patient_page_name,
    render_index,
    render_patient,
    safe_cell,
    verdict_bar,
)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('=HYPERLINK("http://x")', '\'=HYPERLINK("http://x")'),
        ("+1+1", "'+1+1"),
        ("-2+3", "'-2+3"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("leiomyosarcoma", "leiomyosarcoma"),
        ("a=b", "a=b"),
        (-3, "-3"),  # a real number is data, not a formula
        (12.5, "12.5"),
        (40.0, "40"),
        (None, ""),
        (True, "true"),
        (["=x", "y"], "'=x; y"),
    ],
)
def test_safe_cell(value, expected):
    assert safe_cell(value) == expected


def test_csv_text_neutralises_every_cell():
    text = csv_text(["a", "b"], [["=1+2", "ok"], ["x", "@evil"]])
    rows = list(csv.reader(io.StringIO(text)))
    assert rows == [["a", "b"], ["'=1+2", "ok"], ["x", "'@evil"]]


def _trial(title: str) -> dict:
    return {
        "nct_id": "NCT00000001",
        "rank": 1,
        "score": 80.0,
        "verdict": "needs_review",
        "reasons": ["<b>bold</b> reason"],
        "verify": ["ECOG not recorded: verify"],
        "excluded_by": [],
        "nearest_site": {
            "facility": "A & B <Hospital>",
            "city": "Boston",
            "state": "MA",
            "country": "United States",
        },
        "distance_miles": 12.3,
        "title": title,
        "phase": "PHASE2",
        "status": "RECRUITING",
        "last_update": "2024-01-01",
        "url": "https://clinicaltrials.gov/study/NCT00000001",
        "is_new": True,
    }


def _patient(title: str) -> dict:
    trial = _trial(title)
    return {
        "patient_id": "p<1>",
        "diagnosis": "leiomyosarcoma",
        "facts": [("age", "40")],
        "notes": [],
        "digest": patient_digest([trial], top=5),
        "options": [],
        "gone": [],
    }


def test_html_escapes_markup_in_titles_and_reasons():
    title = '<script>alert("x")</script> Sarcoma & "friends"'
    run = {"started": "2026-01-01T00:00:00Z", "n_patients_ok": 1}
    page = render_patient(run, _patient(title))
    assert "<script>alert" not in page
    assert (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Sarcoma &amp; &quot;friends&quot;"
        in page
    )
    assert "&lt;b&gt;bold&lt;/b&gt; reason" in page
    assert "A &amp; B &lt;Hospital&gt;, Boston, MA, United States (12.3 mi)" in page
    assert "Patient p&lt;1&gt;" in page
    assert DISCLAIMER in page
    index = render_index(
        run,
        [
            {
                "patient_id": "p<1>",
                "diagnosis": "leio <b>",
                "href": "patients/p_1_-x.html",
                "counts": {"eligible": 0, "needs_review": 1},
                "best": None,
                "facts_sentence": "record <ECOG>",
                "flags": ["<i>note</i>"],
            }
        ],
        [{"source": "x.csv, line 3", "patient_id": "bad", "error": "ECOG 7 <not allowed>"}],
        {"previous_run": None},
    )
    assert "ECOG 7 &lt;not allowed&gt;" in index
    assert "leio &lt;b&gt;" in index and "record &lt;ECOG&gt;" in index
    assert "&lt;i&gt;note&lt;/i&gt;" in index
    assert '<a href="patients/p_1_-x.html">p&lt;1&gt;</a>' in index


@pytest.mark.parametrize("which", ["index", "patient"])
def test_html_is_self_contained(which):
    run = {"started": "t"}
    if which == "index":
        page = render_index(run, [], [], {"previous_run": None})
    else:
        page = render_patient(run, _patient("t"))
    for external in ("<link", 'src="http', "src='http", "@import", "url(http", "fetch("):
        assert external not in page
    assert '<meta name=viewport content="width=device-width,initial-scale=1">' in page


@pytest.mark.parametrize(
    ("patient_id", "name"),
    [
        ("D01", "D01.html"),
        ("a b", "a_b-" + __import__("hashlib").sha256(b"a b").hexdigest()[:8] + ".html"),
        ("../x", "_x-" + __import__("hashlib").sha256(b"../x").hexdigest()[:8] + ".html"),
    ],
)
def test_patient_page_names_are_safe_and_distinct(patient_id, name):
    assert patient_page_name(patient_id) == name
    assert patient_page_name("a_b") != patient_page_name("a b")


def test_verdict_bar_and_chart_say_their_figures_in_words():
    bar = verdict_bar({"eligible": 1, "needs_review": 3, "closed": 0, "excluded": 2})
    assert "1 eligible, 3 needs review, 0 closed or not recruiting, 2 excluded" in bar
    assert bar.count("<rect") == 3
    chart = bar_chart("Patients", open_trials_buckets([0, 0, 1, 4, 12]))
    assert 'aria-label="Patients: none: 2; 1: 1; 2: 0; 3-5: 1; 6-10: 0; more than 10: 1"' in chart


def test_compact_row_cells_made_once_equal_the_row_made_in_full():
    """A compact row's cells come from cells made once per value (``_compact_cells``); they
    equal what the general row code writes, on text that needs escaping, int and float
    scores and distances, a closed trial, a new row and a coordinator's decision."""
    import itertools

    from matcher import render

    base = {
        "nct_id": "NCT01234567",
        "rank": 7,
        "verdict": "needs_review",
        "url": "https://clinicaltrials.gov/study/NCT01234567?a=1&b=<2>",
        "title": 'A "quoted" <b>title</b> & more',
        "status_words": "Active, not recruiting",
        "phase_words": "phase 1/2",
        "purpose": "treatment",
        "last_update": None,
        "where": "Clinic <A>, Boston, MA (12.5 mi)",
        "groups": [],
        "explained": False,
    }
    variants = itertools.product(
        [100, 100.0, -3.5],  # score
        [None, 12.5, 12],  # distance_miles
        [True, False],  # open
        [True, False],  # is_new
        [0, 1, 4],  # checks
        [0, 3],  # met_count / to_review_count
        [
            {"review_status": "new", "review_reason": "", "review_changed": ""},
            {"review_status": "reviewing", "review_reason": "a <b>", "review_changed": "ECOG"},
        ],
        [[], ["subtype trial", "fits the line of therapy; prior_therapies <"], ["=1+1"]],
    )
    n = 0
    for score, miles, is_open, is_new, checks, k, rv, reasons in variants:
        t = {**base, **rv, "score": score, "distance_miles": miles, "open": is_open}
        t.update(is_new=is_new, checks=checks, met_count=k, to_review_count=k, reasons=reasons)
        t["place"] = checks + 1 if k else None
        if t["place"] is None:
            del t["place"]
        for full in (True, False):
            assert render._compact_cells(t) == render._trial_cells(t, full)
        n += 1
    assert n > 500
    for reasons in ([], ["one <a>"], ["a", "b", "c & d", "e_f"]):
        t = {**base, "excluded_by": reasons, "is_new": bool(reasons)}
        generic = render._td(
            render._ul([render.plain(x) for x in reasons[:2]])
            + render._fold(
                f"{len(reasons) - 2} more reasons",
                render._ul([render.plain(x) for x in reasons[2:]], "small"),
            ),
            raw=True,
        )
        assert render._excluded_cell(tuple(reasons)) == generic
        link = render._trial_link(t["nct_id"], t["url"], t["title"], t["is_new"])
        assert render._link_cell(t["nct_id"], t["url"], t["title"], t["is_new"]) == render._td(
            link, raw=True, sort_value=t["nct_id"]
        )


def _table_rows_by_cell(cols, rows) -> list[str]:
    """The reference for the rows of ``render._table``: each cell's ``<td`` replaced by its
    column's labelled tag, one cell at a time."""
    from matcher import render

    cols = [c if isinstance(c, render._Col) else render._Col(c) for c in cols]
    labelled = [f'<td data-label="{render._e(c.label)}"' if c.label else None for c in cols]
    out = []
    for row in rows:
        row_attrs = ""
        if isinstance(row, tuple) and len(row) == 3:
            row_cls, cells, row_attrs = row
        else:
            row_cls, cells = row if isinstance(row, tuple) else ("", row)
        tds = "".join(
            cell.replace("<td", tag, 1) if tag else cell
            for tag, cell in zip(labelled, cells, strict=True)
        )
        attr = f' class="{render._e(row_cls)}"' if row_cls else ""
        out.append(f"<tr{attr}{row_attrs}>{tds}</tr>")
    return out


def test_table_rows_equal_the_cell_by_cell_reference():
    """``_table`` labels a row's cells with ``str.replace`` mapped over the row; it writes what
    labelling them one by one writes: labelled and unlabelled columns, the three row forms,
    cells that hold ``<td`` in their text, a row given as a generator; a row of the wrong
    length is refused."""
    from matcher import render

    cols = [render._Col("#", "Place"), "Trial", render._Col("Why", ""), render._Col("A&B", "x<y")]
    cells = [
        render._td(1, sort_value=1),
        render._td("<td> in text", sort_value="NCT1"),
        render._td("no label <td", raw=True),
        render._td(None, cls="c"),
    ]
    rows = [cells, ("new", cells), ("", cells, ' data-f=1 data-miles="2.5"'), ("x&y", cells)]
    got = render._table(cols, rows + [("", (c for c in cells))])
    want = _table_rows_by_cell(cols, rows + [("", list(cells))])
    assert "<tbody>" + "".join(want) + "</tbody>" in got
    assert got.count("<tr") == len(rows) + 2  # the header row and every row
    with pytest.raises(ValueError, match="3 cells in a table of 4 columns"):
        render._table(cols, [cells[:3]])


def test_trial_attrs_equal_the_row_made_in_full():
    from matcher import render

    for miles in (None, 0.0, 12.5, 12, 1234.5):
        for verdict, is_open, phase, purpose in (
            ("eligible", True, "phase 2", "treatment"),
            ("excluded", False, "phase 1/2", "supportive care <x>"),
        ):
            t = {"verdict": verdict, "open": is_open, "phase_words": phase, "purpose": purpose}
            t["distance_miles"] = miles
            want = (
                f' data-f=1 data-verdict="{render._e(verdict)}"'
                f' data-status="{"open" if is_open else "closed"}"'
                f' data-phase="{render._e(render._slug(phase))}"'
                f' data-miles="{"" if miles is None else render._e(miles)}"'
                f' data-purpose="{render._e(render._slug(purpose))}"'
            )
            assert render._trial_attrs(t) == want
