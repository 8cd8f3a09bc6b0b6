"""Report writers: formula-injection neutralisation and HTML escaping."""

from __future__ import annotations

import csv
import io

import pytest

from matcher import DISCLAIMER
from matcher.render import csv_text, render_html, safe_cell


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


def test_html_escapes_markup_in_titles_and_reasons():
    title = '<script>alert("x")</script> Sarcoma & "friends"'
    page = render_html(
        {"started": "2026-01-01T00:00:00Z", "n_patients_ok": 1},
        [
            {
                "patient_id": "p<1>",
                "diagnosis": "leiomyosarcoma",
                "options": [],
                "trials": [_trial(title)],
                "notes": [],
            }
        ],
        [{"source": "x.csv, line 3", "patient_id": "bad", "error": "ECOG 7 <not allowed>"}],
        {"previous_run": None},
    )
    assert "<script>alert" not in page
    assert (
        "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt; Sarcoma &amp; &quot;friends&quot;"
        in page
    )
    assert "&lt;b&gt;bold&lt;/b&gt; reason" in page
    assert "A &amp; B &lt;Hospital&gt;" in page
    assert "ECOG 7 &lt;not allowed&gt;" in page
    assert "Patient p&lt;1&gt;" in page
    assert DISCLAIMER in page


def test_html_is_self_contained():
    page = render_html({"started": "t"}, [], [], {"previous_run": None})
    for external in ("<link", 'src="http', "src='http", "@import", "url(http"):
        assert external not in page
    assert '<meta name=viewport content="width=device-width,initial-scale=1">' in page
