"""The review server's request checks and pages, through Flask's test client (no browser)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from matcher import review, serve
from matcher.cli import cli
from matcher.rank import RankConfig
from matcher.report import ReportConfig, run_report
from matcher.store import Store

DEMO = Path(__file__).resolve().parent.parent / "fixtures" / "demo"
HOST = "127.0.0.1:8642"


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    res = run_report(
        DEMO / "patients.csv",
        tmp / "out",
        tmp / "t.sqlite",
        [DEMO / "trials"],
        ReportConfig(RankConfig(statuses=None)),
    )
    assert res.exit_code == 0
    return tmp / "t.sqlite"


@pytest.fixture
def client(db):
    return serve.create_app(db, user="ana", port=8642).test_client()


def _token(client) -> tuple[str, str]:
    page = client.get("/patient?id=D02", headers={"Host": HOST}).get_data(as_text=True)
    token = re.search(r'name=token value="([^"]+)"', page).group(1)
    nct = re.search(r'name=nct value="([^"]+)"', page).group(1)
    return token, nct


@pytest.mark.parametrize(
    ("host", "ok"),
    [
        ("127.0.0.1:8642", True),
        ("localhost:8642", True),
        ("127.0.0.1:8643", False),
        ("evil.example:8642", False),
        ("127.0.0.1", False),
    ],
)
def test_every_request_must_name_this_server(client, host, ok):
    """A page that rebinds its own DNS name to 127.0.0.1 still sends its name: refused."""
    assert client.get("/", headers={"Host": host}).status_code == (200 if ok else 400)


@pytest.mark.parametrize(
    ("headers", "with_token", "code"),
    [
        ({"Origin": "http://127.0.0.1:8642", "Sec-Fetch-Site": "same-origin"}, True, 303),
        ({}, True, 303),  # a client that sends neither (not a browser) still needs the token
        ({}, False, 403),
        ({"Origin": "http://127.0.0.1:9999"}, True, 403),
        ({"Origin": "null"}, True, 403),
        ({"Sec-Fetch-Site": "same-site"}, True, 403),
        ({"Sec-Fetch-Site": "cross-site"}, True, 403),
    ],
)
def test_writes_need_token_and_same_origin(client, db, headers, with_token, code):
    token, nct = _token(client)
    form = {"patient": "D02", "nct": nct, "status": "reviewing"}
    if with_token:
        form["token"] = token
    with Store(db) as st:
        before = len(review.history(st, "patients", "D02", nct))
    resp = client.post("/decide", data=form, headers={"Host": HOST, **headers})
    assert resp.status_code == code
    with Store(db) as st:
        after = len(review.history(st, "patients", "D02", nct))
    assert after - before == (1 if code == 303 else 0)


def test_a_token_from_another_session_is_refused(client, db):
    token, nct = _token(client)
    other = serve.create_app(db, user="ana", port=8642).test_client()
    other.get("/", headers={"Host": HOST})
    form = {"patient": "D02", "nct": nct, "status": "reviewing", "token": token}
    assert other.post("/decide", data=form, headers={"Host": HOST}).status_code == 403


def test_not_eligible_without_reason_says_so_and_writes_nothing(client, db):
    token, nct = _token(client)
    form = {"patient": "D02", "nct": nct, "status": "not eligible", "token": token}
    resp = client.post("/decide", data=form, headers={"Host": HOST})
    assert resp.status_code == 422
    assert "&#39;not eligible&#39; needs a reason" in resp.get_data(as_text=True)
    with Store(db) as st:
        d = review.get_decision(st, "patients", "D02", nct)
    assert d is None or d.status != "not eligible"


def test_pages_carry_a_strict_policy_and_no_script(client):
    for url in ("/", "/patient?id=D01"):
        resp = client.get(url, headers={"Host": HOST})
        assert resp.headers["Content-Security-Policy"].startswith("default-src 'none';")
        assert resp.headers["Cache-Control"] == "no-store"
        assert "<script" not in resp.get_data(as_text=True)
    assert client.get("/patient?id=nobody", headers={"Host": HOST}).status_code == 404


def test_a_wildcard_address_accepts_this_machines_names():
    import socket

    allowed = serve._allowed_hosts("0.0.0.0", 8642)
    assert {f"{socket.gethostname()}:8642", "127.0.0.1:8642"} <= allowed
    assert "evil.example:8642" not in allowed
    assert serve._allowed_hosts("::1", 80) == {"[::1]:80", "127.0.0.1:80", "localhost:80"}


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True)]
    + [("0.0.0.0", False), ("192.168.1.5", False), ("example.org", False)],
)
def test_loopback(host, loopback):
    assert serve.is_loopback(host) is loopback


def test_serve_warns_for_another_interface(db, monkeypatch):
    """--host 0.0.0.0 serves with a warning (the server itself is not started here)."""
    started = []

    class Fake:
        url = "http://0.0.0.0:8642/"

        def serve_forever(self):
            started.append(True)

        def server_close(self):
            pass

    monkeypatch.setattr(serve, "make_server", lambda *a, **k: Fake())
    res = CliRunner().invoke(cli, ["--db", str(db), "serve", "--host", "0.0.0.0"])
    assert res.exit_code == 0 and started == [True]
    assert "warning: serving patient data on 0.0.0.0" in res.stderr
    res = CliRunner().invoke(cli, ["--db", str(db), "serve"])
    assert "warning" not in res.stderr
    assert "Review page: http://0.0.0.0:8642/" in res.stderr


def test_opening_a_patient_marks_it_seen_but_not_from_another_site(client, db):
    with Store(db) as st:
        assert "D04" not in review.seen_pairs(st, "patients")[0]
    assert client.get("/patient?id=D04", headers={"Host": HOST}).status_code == 200
    cross = {"Host": HOST, "Sec-Fetch-Site": "cross-site"}
    assert client.get("/patient?id=D05", headers=cross).status_code == 200
    with Store(db) as st:
        seen, shown = review.seen_pairs(st, "patients")
        run = st.connection.execute("SELECT MAX(id) FROM report_runs").fetchone()[0]
        row = st.connection.execute(
            "SELECT run_id, who FROM review_seen WHERE patient_id = 'D04'"
        ).fetchone()
    assert "D04" in seen and "D05" not in seen
    assert tuple(row) == (run, "ana")
    assert {p for p, _ in shown} >= {"D04"}


def test_serve_on_a_port_in_use_says_so(db):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        res = CliRunner().invoke(cli, ["--db", str(db), "serve", "--port", str(port)])
    assert res.exit_code == 1
    assert res.stderr.startswith(f"Error: cannot listen on 127.0.0.1:{port} (")
    assert res.stderr.endswith("Pass --port N\n")


def test_marked_on_the_page_then_in_the_next_nights_csv(client, db, tmp_path):
    """The issue's 'done when': mark a trial on the review page; the next report keeps it."""
    import csv

    page = client.get("/patient?id=D06", headers={"Host": HOST}).get_data(as_text=True)
    token = re.search(r'name=token value="([^"]+)"', page).group(1)
    nct = re.search(r'name=nct value="([^"]+)"', page).group(1)
    form = {"patient": "D06", "nct": nct, "status": "enrolled", "note": "consented", "token": token}
    assert client.post("/decide", data=form, headers={"Host": HOST}).status_code == 303
    res = run_report(
        DEMO / "patients.csv", tmp_path / "out", db, (), ReportConfig(RankConfig(statuses=None))
    )
    assert res.exit_code == 0
    with open(tmp_path / "out" / "matches.csv", newline="", encoding="utf-8") as fh:
        row = next(r for r in csv.DictReader(fh) if (r["patient_id"], r["nct_id"]) == ("D06", nct))
    assert (row["review_status"], row["review_note"]) == ("enrolled", "consented")
