"""CtgovClient against recorded real payloads (fixtures/ctgov), mocked with ``responses``."""

from __future__ import annotations

import json
from urllib.parse import parse_qs, urlparse

import pytest
import requests
import responses
from responses import matchers

from matcher.ctgov import DEFAULT_BASE_URL, USER_AGENT, CtgovClient
from matcher.errors import ApiError, TrialNotFound

BASE = DEFAULT_BASE_URL
STUDIES = f"{BASE}/studies"


class FakeTime:
    """Injected clock + sleep: sleeping advances the clock; every sleep is recorded."""

    def __init__(self):
        self.now = 1000.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def load(fixtures_dir, name):
    return json.loads((fixtures_dir / "ctgov" / name).read_text(encoding="utf-8"))


def make_client(fake: FakeTime, **kw) -> CtgovClient:
    kw.setdefault("min_interval", 1.0)
    return CtgovClient(sleep=fake.sleep, clock=fake.clock, **kw)


def qs(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(url).query).items()}


def ids(page):
    return [s["protocolSection"]["identificationModule"]["nctId"] for s in page.studies]


def test_paging_across_three_pages(fixtures_dir, rsps):
    p1 = load(fixtures_dir, "response_10.json")
    p2 = load(fixtures_dir, "response_11.json")
    p3 = load(fixtures_dir, "response_4.json")
    del p3["nextPageToken"]  # the last page carries no token
    t1, t2 = p1["nextPageToken"], p2["nextPageToken"]
    rsps.get(STUDIES, json=p1)
    rsps.get(STUDIES, json=p2)
    rsps.get(STUDIES, json=p3)
    fake = FakeTime()
    client = make_client(fake)
    pages = list(client.search(cond="Phelan-McDermid Syndrome", page_size=5, count_total=True))
    assert [ids(p) for p in pages] == [
        ["NCT02710084", "NCT05105685", "NCT01525901", "NCT03493607", "NCT07119606"],
        ["NCT05187377", "NCT03836300", "NCT07014020", "NCT05025241", "NCT07281079"],
        ["NCT00184067", "NCT03934567"],
    ]
    assert [p.total for p in pages] == [21, None, None]
    sent = [qs(c.request.url) for c in rsps.calls]
    assert sent[0] == {
        "format": "json",
        "query.cond": "Phelan-McDermid Syndrome",
        "pageSize": "5",
        "countTotal": "true",
    }
    # Follow-on pages: same parameters, plus the token, minus countTotal.
    assert sent[1] == {**{k: v for k, v in sent[0].items() if k != "countTotal"}, "pageToken": t1}
    assert sent[2]["pageToken"] == t2
    # Pacing: one second between requests, through the injected sleep.
    assert fake.sleeps == [1.0, 1.0]
    assert all(c.request.headers["User-Agent"] == USER_AGENT for c in rsps.calls)
    assert "trialmatch" in USER_AGENT


@pytest.mark.parametrize(
    ("last_page_token", "last_page_studies"),
    [
        ("same-as-request", True),  # the last page repeats the token it was asked with
        ("first-token", True),  # ... or an earlier one
        ("fresh-token", False),  # an empty page that still carries a token
    ],
)
def test_stops_on_repeated_token_or_empty_page(
    fixtures_dir, rsps, last_page_token, last_page_studies
):
    p1 = load(fixtures_dir, "response_10.json")
    p2 = load(fixtures_dir, "response_11.json")
    p3 = load(fixtures_dir, "response_4.json")
    t1, t2 = p1["nextPageToken"], p2["nextPageToken"]
    p3["nextPageToken"] = {"same-as-request": t2, "first-token": t1, "fresh-token": "zzz"}[
        last_page_token
    ]
    if not last_page_studies:
        p3["studies"] = []
    for page in (p1, p2, p3):
        rsps.get(STUDIES, json=page)
    pages = list(make_client(FakeTime()).search(cond="x"))
    assert len(pages) == 3
    assert len(rsps.calls) == 3


def test_429_then_success(fixtures_dir, rsps):
    rsps.get(STUDIES, status=429, body="Too Many Requests")
    rsps.get(STUDIES, json=load(fixtures_dir, "response_4.json") | {"nextPageToken": ""})
    fake = FakeTime()
    client = make_client(fake, backoff_base=1.0)
    pages = list(client.search(cond="melanoma"))
    assert ids(pages[0]) == ["NCT00184067", "NCT03934567"]
    assert client.requests_sent == 2
    # One backoff of base*2**0 = 1 s +-25 % jitter, topped up to the 1 s pacing interval.
    assert 1.0 - 1e-9 <= sum(fake.sleeps) <= 1.25


def test_503_until_give_up_has_clear_message(rsps):
    for _ in range(4):
        rsps.get(STUDIES, status=503)
    fake = FakeTime()
    client = make_client(fake, max_retries=3, backoff_base=1.0, backoff_cap=3.0)
    with pytest.raises(ApiError) as info:
        list(client.search(cond="sarcoma"))
    msg = str(info.value)
    assert msg.startswith("gave up after 4 attempts: HTTP 503")
    assert "try again later" in msg
    assert info.value.status == 503
    # Exponential backoff 1, 2, 4->capped 3, each +-25 % jitter (the first topped up to the
    # 1 s pacing interval): 4.75 .. 7.5 s in all.
    assert 4.75 - 1e-9 <= sum(fake.sleeps) <= 7.5
    assert max(fake.sleeps) <= 3.0 * 1.25


def test_429_exhausted_says_wait_about_a_minute(rsps):
    for _ in range(3):
        rsps.get(STUDIES, status=429)
    client = make_client(FakeTime(), max_retries=2)
    with pytest.raises(ApiError, match="wait about a minute"):
        list(client.search(cond="sarcoma"))


@pytest.mark.parametrize(
    "bad",
    [
        {"body": "<!DOCTYPE html><html><body>Service Unavailable</body></html>"},
        {"body": "<html><head></head><body>error</body></html>", "content_type": "text/html"},
        {"body": '{"studies": [{"protocolSection": {"identificationModule": {"nctId": "NCT0'},
        {"body": ""},
        {"body": requests.ConnectionError("Connection reset by peer")},
        {"body": requests.Timeout("read timed out")},
    ],
    ids=["html-doctype", "html-content-type", "truncated-json", "empty-body", "reset", "timeout"],
)
def test_transient_failures_are_retried(fixtures_dir, rsps, bad):
    rsps.get(STUDIES, **bad)
    rsps.get(STUDIES, json=load(fixtures_dir, "response_4.json") | {"nextPageToken": ""})
    client = make_client(FakeTime())
    pages = list(client.search(cond="melanoma"))
    assert ids(pages[0]) == ["NCT00184067", "NCT03934567"]
    assert client.requests_sent == 2


def test_html_until_give_up_names_html(rsps):
    for _ in range(2):
        rsps.get(STUDIES, body="<html>oops</html>", content_type="text/html")
    with pytest.raises(ApiError, match="HTML page instead of JSON"):
        list(make_client(FakeTime(), max_retries=1).search(cond="x"))


@pytest.mark.parametrize(
    "text",
    [
        "`query.recrs` is unknown parameter",
        "Parameter 'fields' contains invalid field name: 'StudyDesign'",
    ],
)
def test_400_text_is_surfaced_and_not_retried(rsps, text):
    rsps.get(STUDIES, status=400, body=text, content_type="text/plain")
    client = make_client(FakeTime())
    with pytest.raises(ApiError) as info:
        list(client.search(cond="x"))
    assert str(info.value) == f"ClinicalTrials.gov rejected the request (HTTP 400): {text}"
    assert info.value.status == 400
    assert client.requests_sent == 1


def test_fetch_study_404_is_trial_not_found(rsps):
    rsps.get(
        f"{BASE}/studies/NCT00000001", status=404, body="Study not found", content_type="text/plain"
    )
    with pytest.raises(TrialNotFound) as info:
        make_client(FakeTime()).fetch_study("nct00000001")
    assert (
        str(info.value) == "trial NCT00000001 not found: ClinicalTrials.gov says: Study not found"
    )


def test_fetch_study_follows_alias_redirect(fixtures_dir, rsps):
    study = load(fixtures_dir, "NCT00184067.json")
    rsps.get(
        f"{BASE}/studies/NCT00000002",
        status=301,
        headers={"Location": f"{BASE}/studies/NCT00184067?format=json"},
    )
    rsps.get(f"{BASE}/studies/NCT00184067", json=study)
    got = make_client(FakeTime()).fetch_study("NCT00000002")
    assert got == study


def test_version_and_query_parameters(rsps):
    rsps.get(
        f"{BASE}/version",
        json={"apiVersion": "2.0.5", "dataTimestamp": "2026-11-27T09:00:05"},
    )
    rsps.get(
        STUDIES,
        json={"studies": []},
        match=[
            matchers.query_param_matcher(
                {
                    "format": "json",
                    "query.cond": '"sarcoma"',
                    "query.term": "AREA[Phase]PHASE2",
                    "query.intr": "doxorubicin",
                    "filter.overallStatus": "NOT_YET_RECRUITING,RECRUITING",
                    "filter.advanced": "AREA[LastUpdatePostDate]RANGE[2026-01-01,MAX]",
                    "filter.geo": "distance(39.0035707,-77.1013313,50mi)",
                    "fields": "NCTId,OverallStatus",
                    "pageSize": "1000",
                }
            )
        ],
    )
    client = make_client(FakeTime())
    assert client.version()["dataTimestamp"] == "2026-11-27T09:00:05"
    pages = list(
        client.search(
            cond='"sarcoma"',
            term="AREA[Phase]PHASE2",
            intr="doxorubicin",
            statuses=["recruiting", "NOT_YET_RECRUITING"],
            advanced="AREA[LastUpdatePostDate]RANGE[2026-01-01,MAX]",
            geo="distance(39.0035707,-77.1013313,50mi)",
            fields=["NCTId", "OverallStatus"],
            page_size=5000,  # coerced to the API maximum
        )
    )
    assert [len(p.studies) for p in pages] == [0]


@pytest.mark.parametrize(
    ("arg", "env", "expected"),
    [
        ("http://127.0.0.1:8000/api/v2/", None, "http://127.0.0.1:8000/api/v2"),
        (None, "https://mirror.example.org/v2", "https://mirror.example.org/v2"),
        (None, None, DEFAULT_BASE_URL),
    ],
)
def test_base_url_sources_and_no_network_in_constructor(monkeypatch, arg, env, expected):
    if env:
        monkeypatch.setenv("TRIALMATCH_API_URL", env)
    else:
        monkeypatch.delenv("TRIALMATCH_API_URL", raising=False)
    with responses.RequestsMock(assert_all_requests_are_fired=True):
        client = CtgovClient(base_url=arg)  # any request here would fail: none registered
    assert client.base_url == expected
    assert client.requests_sent == 0


def test_body_cut_off_mid_stream_is_retried(fixtures_dir, rsps):
    rsps.get(STUDIES, body=requests.exceptions.ChunkedEncodingError("Connection broken"))
    rsps.get(STUDIES, json=load(fixtures_dir, "response_4.json") | {"nextPageToken": ""})
    client = make_client(FakeTime())
    assert ids(next(client.search(cond="x"))) == ["NCT00184067", "NCT03934567"]
    assert client.requests_sent == 2


@pytest.mark.network
def test_live_api_accepts_the_sync_request():
    """Opt-in (``pytest -m network``): the live API answers /version and one sync-shaped page."""
    from matcher.ctgov import SYNC_FIELDS

    client = CtgovClient(base_url=DEFAULT_BASE_URL)
    assert client.version()["dataTimestamp"]
    page = next(client.search(cond='"sarcoma"', fields=SYNC_FIELDS, page_size=1, count_total=True))
    assert page.total and page.total > 100
    assert page.studies[0]["protocolSection"]["identificationModule"]["nctId"].startswith("NCT")
