"""The review page in a real browser: Playwright drives Debian's Chromium (no browser download).

A report is run on D01 of the demo list and a copy of D01 under a hostile id, against three
demo trials, one with a hostile title. The server runs on a free port of 127.0.0.1 in a
thread; a second local server on another port plays the cross-site attacker. Skipped with a
reason when Chromium or Playwright is missing.
"""

from __future__ import annotations

import http.server
import threading
from pathlib import Path

import pytest
from _browser import BROWSER_MARKS, CHROMIUM  # tests/_browser.py
from _browser import CHROMIUM_FLAGS as BASE_FLAGS

from matcher import review
from matcher.rank import RankConfig
from matcher.report import ReportConfig, run_report
from matcher.store import Store

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "fixtures" / "demo"
CHROMIUM_FLAGS = BASE_FLAGS

pytestmark = BROWSER_MARKS

HOSTILE_ID = '<img src=x onerror="document.title=2">/../x'
HOSTILE_TITLE = '<script>document.title="pwned"</script><img src=x onerror="document.title=1"> IP'
TRIALS = ("NCT05688280", "NCT05691491", "NCT05699811")


@pytest.fixture(scope="module")
def store_path(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    trials = tmp / "trials"
    trials.mkdir()
    for nct in TRIALS:
        src = next(DEMO.glob(f"trials/*/{nct}.xml"))
        text = src.read_text("utf-8")
        if nct == TRIALS[0]:
            start, end = text.index("<brief_title>"), text.index("</brief_title>")
            escaped = HOSTILE_TITLE.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            text = text[: start + len("<brief_title>")] + escaped + text[end:]
        (trials / src.name).write_text(text, "utf-8")
    lines = (DEMO / "patients.csv").read_text("utf-8").splitlines()
    d01 = next(line for line in lines if line.startswith("D01,"))
    hostile = '"' + HOSTILE_ID.replace('"', '""') + '"' + d01[3:]
    patients = tmp / "patients.csv"
    patients.write_text("\n".join([lines[0], d01, hostile]) + "\n", "utf-8")
    res = run_report(
        patients, tmp / "out", tmp / "t.sqlite", [trials], ReportConfig(RankConfig(statuses=None))
    )
    assert res.exit_code == 0 and res.n_patients_ok == 2, res.errors
    return tmp / "t.sqlite"


@pytest.fixture(scope="module")
def server(store_path):
    from matcher import serve

    srv = serve.make_server(store_path, port=0, user="ana")
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()
    thread.join(10)


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield b
        b.close()


@pytest.fixture
def page(browser):
    context = browser.new_context()
    yield context.new_page()
    context.close()


def _decision(store_path, nct):
    with Store(store_path) as st:
        return review.get_decision(st, "patients", "D01", nct)


def test_set_contacted_reload_and_see_it(server, page, store_path):
    page.goto(server.url)
    page.get_by_role("link", name="D01", exact=True).click()
    section = page.locator(f"section#{TRIALS[1]}")
    assert section.locator(".review-status").text_content() == "new"
    section.get_by_role("button", name="contacted", exact=True).click()
    page.wait_for_url("**/patient?*")
    page.reload()
    section = page.locator(f"section#{TRIALS[1]}")
    assert section.locator(".review-status").text_content() == "contacted"
    section.locator("details.history summary").click()
    assert "ana: new → contacted" in section.locator("details.history").inner_text()
    d = _decision(store_path, TRIALS[1])
    assert (d.status, d.who) == ("contacted", "ana")

    # not eligible, with a reason picked from the verdict's verify items
    other = page.locator(f"section#{TRIALS[2]}")
    choice = other.locator("select[name=reason] option").nth(1).text_content()
    other.locator("select[name=reason]").select_option(label=choice)
    other.get_by_role("button", name="not eligible", exact=True).click()
    page.wait_for_url("**/patient?*")
    other = page.locator(f"section#{TRIALS[2]}")
    assert other.locator(".review-reason").text_content() == choice
    # the index counts what is still awaiting review, and filters by status
    page.goto(server.url + "?status=contacted")
    rows = page.locator("#patients tbody tr")
    assert rows.count() == 1 and rows.first.get_attribute("data-patient") == "D01"


ATTACK = """<!doctype html><html><body><form id=f method=post action="{action}">
<input name=patient value=D01><input name=nct value="{nct}"><input name=status value=enrolled>
{token}</form><script>document.getElementById('f').submit()</script></body></html>"""


def _attacker(html_text: str):
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            body = html_text.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    srv = http.server.HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.mark.parametrize("with_token", [False, True])
def test_cross_site_post_is_refused(server, page, store_path, with_token):
    """A page on another origin (another port of 127.0.0.1) posts a decision: refused with
    403, without the token and even with a valid one (its Origin is not this server's)."""
    token = ""
    if with_token:
        page.goto(server.url + "patient?id=D01")
        value = page.locator("input[name=token]").first.get_attribute("value")
        token = f"<input name=token value={value}>"
    before = _decision(store_path, TRIALS[0])
    evil = _attacker(ATTACK.format(action=server.url + "decide", nct=TRIALS[0], token=token))
    try:
        with page.expect_response(lambda r: r.url.endswith("/decide")) as resp:
            page.goto(f"http://127.0.0.1:{evil.server_port}/")
        assert resp.value.status == 403
    finally:
        evil.shutdown()
        evil.server_close()
    assert _decision(store_path, TRIALS[0]) == before


def test_hostile_patient_id_and_trial_title_render_as_text(server, page):
    page.goto(server.url)
    link = page.get_by_role("link", name=HOSTILE_ID, exact=True)
    assert link.count() == 1
    link.click()
    page.wait_for_url("**/patient?*")
    assert page.locator("#pid").text_content() == HOSTILE_ID
    title = page.locator(f"section#{TRIALS[0]} .title").text_content()
    assert title == HOSTILE_TITLE
    assert page.locator("img").count() == 0 and page.locator("script").count() == 0
    assert page.title().endswith("· trialmatch review")
    assert HOSTILE_ID in page.title()
