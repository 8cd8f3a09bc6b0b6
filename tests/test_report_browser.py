"""The demo report opened in headless Chromium: the rendered page shows the patients, the
trials and the disclaimer, and its script runs.

Needs Debian's ``chromium`` package (installed by ``.ci/run``); skipped with a reason when
it is absent. The page is a local file and Chromium runs with networking features off.
"""

from __future__ import annotations

import csv
import html
import json
import re
import subprocess
import tempfile
from pathlib import Path

import pytest
from _browser import BROWSER_MARKS, CHROMIUM  # tests/_browser.py
from _browser import CHROMIUM_FLAGS as BASE_FLAGS
from click.testing import CliRunner

from matcher import DISCLAIMER
from matcher.cli import cli

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"

CHROMIUM_FLAGS = ["--headless", *BASE_FLAGS]

pytestmark = BROWSER_MARKS


def dump_dom(page: Path, width: int = 1280) -> str:
    """The DOM after load (scripts run), as Chromium serialises it."""
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                CHROMIUM,
                *CHROMIUM_FLAGS,
                f"--user-data-dir={profile}",
                f"--window-size={width},2000",
                "--dump-dom",
                page.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="module")
def demo_report(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("demo")
    res = CliRunner().invoke(
        cli,
        [
            "--db",
            str(tmp / "trials.sqlite"),
            "report",
            str(FIX / "demo" / "patients.csv"),
            "--trials",
            str(FIX / "demo" / "trials"),
            "--status",
            "any",
            "--out",
            str(tmp / "out"),
        ],
    )
    assert res.exit_code == 0, res.output
    return tmp / "out"


@pytest.fixture(scope="module")
def dom(demo_report):
    return dump_dom(demo_report / "report.html")


def _demo_ids() -> list[str]:
    with open(FIX / "demo" / "patients.csv", newline="", encoding="utf-8") as fh:
        return [r["id"] for r in csv.DictReader(fh)]


def test_index_links_every_patient_page(dom, demo_report):
    ids = _demo_ids()
    assert len(ids) == 16
    for pid in ids:
        assert f'<a href="patients/{pid}.html">{pid}</a>' in dom
        assert (demo_report / "patients" / f"{pid}.html").is_file()
    # the index's chart of patients by open trials is drawn inline
    assert "Patients by number of open trials to consider" in dom and "<svg" in dom


def test_each_patient_page_shows_at_most_top_open_trials_with_facts_first(demo_report):
    """Every page: the facts to record come before the trials; at most 5 open trials shown
    unfolded, all of them open and in the order of matches.json."""
    matches = json.loads((demo_report / "matches.json").read_text(encoding="utf-8"))
    open_ = {"RECRUITING", "NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION"}
    checked = 0
    for p in matches:
        page = (demo_report / "patients" / f"{p['patient_id']}.html").read_text(encoding="utf-8")
        consider = [t for t in p["trials"] if t["verdict"] != "excluded" and t["status"] in open_]
        start = page.index("id=consider>")
        end = page.find('<details class="block', start)
        shown = page[start : end if end > 0 else len(page)]
        ids = [t["nct_id"] for t in consider[:5]]
        assert [i for i in ids if f">{i}</a>" in shown] == ids
        assert shown.count(" data-f=1 ") == len(ids) <= 5
        assert page.index("id=record") < start
        if p["facts_to_record"]:
            assert p["facts_sentence"] in html.unescape(page)
        checked += 1
    assert checked == 16
    # two real trials named in the fixtures' SOURCES notes
    d01 = (demo_report / "patients" / "D01.html").read_text(encoding="utf-8")
    assert "NCT02561559" in d01


def test_rendered_page_shows_disclaimer_and_ran_its_script(dom):
    assert DISCLAIMER in dom
    assert dom.count(DISCLAIMER) >= 2  # top and footer
    # the sort script adds a title to every header cell when it runs
    assert '<th scope="col" title="click to sort">Patient</th>' in dom
    assert "16 of 16 shown" in dom  # the filter script counted the rows


# A page shown in a 390 or 1280 px frame (Chromium's window is at least 500 px wide) with a
# probe that reports what a reader would see: the frame's width, the page's scroll width,
# whether the named elements are laid out, and what a filter leaves visible.
_HARNESS = """<!doctype html><html><body style="margin:0">
<iframe id=f src="{src}" style="width:{width}px;height:1800px;border:0"></iframe>
<pre id=probe></pre><script>
document.getElementById('f').addEventListener('load', function () {{
  var w = this.contentWindow, d = w.document, r = {{}};
  r.width = d.documentElement.clientWidth; r.scroll = d.documentElement.scrollWidth;
  r.visible = {{}};
  {selectors}.forEach(function (s) {{
    var e = d.querySelector(s), b = e && e.getBoundingClientRect();
    r.visible[s] = !!(e && b.width > 0 && b.height > 0 && b.left >= 0 && b.right <= r.width + 1);
  }});
  var f = d.getElementById('filters');
  if (f && f.verdict) {{
    f.verdict.value = 'eligible'; f.verdict.dispatchEvent(new w.Event('change', {{bubbles: true}}));
    var rows = d.querySelectorAll('tr[data-f]'), bad = 0, shown = 0;
    rows.forEach(function (t) {{ if (!t.hidden) {{ shown++; if (t.dataset.verdict !== 'eligible') bad++; }} }});
    r.filter = {{rows: rows.length, shown: shown, wrong: bad}};
  }}
  document.getElementById('probe').textContent = JSON.stringify(r);
}});
</script></body></html>"""


def probe(page: Path, width: int, selectors: list[str]) -> dict:
    harness = page.with_name(f"probe-{width}-{page.name}")
    harness.write_text(
        _HARNESS.format(src=page.name, width=width, selectors=json.dumps(selectors)),
        encoding="utf-8",
    )
    try:
        with tempfile.TemporaryDirectory() as profile:
            proc = subprocess.run(
                [
                    CHROMIUM,
                    *CHROMIUM_FLAGS,
                    "--allow-file-access-from-files",  # the probe reads the framed page
                    f"--user-data-dir={profile}",
                    "--window-size=1400,2000",
                    "--virtual-time-budget=10000",
                    "--dump-dom",
                    harness.resolve().as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
    finally:
        harness.unlink()
    assert proc.returncode == 0, proc.stderr[-2000:]
    found = re.search(r'<pre id="probe">(.*?)</pre>', proc.stdout, re.S)
    assert found and found.group(1), proc.stdout[-2000:]
    return json.loads(html.unescape(found.group(1)))


def screenshot(page: Path, width: int, shot: Path) -> tuple[int, int]:
    """A PNG of ``page`` in a frame ``width`` px wide; returns the PNG's (width, height)."""
    frame = page.with_name(f"shot-{width}-{page.name}")
    frame.write_text(
        '<!doctype html><html><body style="margin:0">'
        f'<iframe src="{page.name}" style="width:{width}px;height:1600px;border:0"></iframe>'
        "</body></html>",
        encoding="utf-8",
    )
    try:
        with tempfile.TemporaryDirectory() as profile:
            proc = subprocess.run(
                [
                    CHROMIUM,
                    *CHROMIUM_FLAGS,
                    f"--user-data-dir={profile}",
                    f"--window-size={max(width, 500)},1600",
                    "--hide-scrollbars",
                    f"--screenshot={shot}",
                    frame.resolve().as_uri(),
                ],
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
    finally:
        frame.unlink()
    assert proc.returncode == 0, proc.stderr[-2000:]
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    return int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")


INDEX_ELEMENTS = ["h1", ".disclaimer", "#filters", "table.summary", "svg.chart", "#changes"]
PATIENT_ELEMENTS = ["h1", "#record", "svg.bar", "#filters", "table.shortlist", "#options"]


@pytest.mark.parametrize("width", [1280, 390])
@pytest.mark.parametrize(
    ("page", "elements"),
    [("report.html", INDEX_ELEMENTS), ("patients/D01.html", PATIENT_ELEMENTS)],
)
def test_pages_at_desk_and_phone_width(demo_report, tmp_path, page, elements, width):
    """Index and a patient page at 1280 and 390 px: the key elements are laid out inside the
    frame, and nothing scrolls sideways on the phone; the verdict filter leaves only eligible
    rows. A screenshot of each is taken (kept in the test's temporary folder)."""
    got = probe(demo_report / page, width, elements)
    assert got["width"] <= width
    assert got["visible"] == {s: True for s in elements}
    assert got["scroll"] <= got["width"], f"{page} scrolls sideways at {width} px"
    if page.startswith("patients/"):
        assert got["filter"]["rows"] > 5
        assert got["filter"]["wrong"] == 0 and got["filter"]["shown"] >= 1
    shot = tmp_path / f"{Path(page).stem}-{width}.png"
    assert screenshot(demo_report / page, width, shot) == (max(width, 500), 1600)
