"""The demo report opened in headless Chromium: the rendered page shows the patients, the
trials and the disclaimer, and its script runs.

Needs Debian's ``chromium`` package (installed by ``.ci/run``); skipped with a reason when
it is absent. The page is a local file and Chromium runs with networking features off.
"""

from __future__ import annotations

import csv
import html
import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner

from matcher import DISCLAIMER
from matcher.cli import cli

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="headless Chromium not found (install Debian's 'chromium' package, as .ci/run does)",
    ),
]


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


def test_rendered_page_shows_every_patient(dom):
    ids = _demo_ids()
    assert len(ids) == 16
    for pid in ids:
        assert f'id="p-{pid}"' in dom
        assert f'<a href="#p-{pid}">{pid}</a>' in dom


def test_rendered_page_shows_each_patients_top_trials(dom, demo_report):
    """The first-ranked trial of every patient with a shortlist is in that patient's section."""
    matches = json.loads((demo_report / "matches.json").read_text(encoding="utf-8"))
    checked = 0
    for p in matches:
        short = [t for t in p["trials"] if t["verdict"] in ("eligible", "needs_review")]
        if not short:
            continue
        start = dom.index(f'id="p-{p["patient_id"]}"')
        end = dom.find('<section><h2 id="p-', start)
        section = dom[start : end if end > 0 else len(dom)]
        top = short[0]
        assert f">{top['nct_id']}</a>" in section
        assert html.escape(top["title"], quote=False) in section
        checked += 1
    assert checked >= 10
    # two real trials named in the fixtures' SOURCES notes
    assert "NCT02561559" in dom and "NCT02576665" in dom


def test_rendered_page_shows_disclaimer_and_ran_its_script(dom):
    assert DISCLAIMER in dom
    assert dom.count(DISCLAIMER) >= 2  # top and footer
    # the sort script adds a title to every header cell when it runs
    assert '<th scope="col" title="click to sort">Patient</th>' in dom
    assert '<th scope="col" title="Needs review: click to sort">Review</th>' in dom


def test_phone_width_renders_the_same_content(demo_report):
    narrow = dump_dom(demo_report / "report.html", width=390)
    assert 'id="p-D16"' in narrow and DISCLAIMER in narrow
