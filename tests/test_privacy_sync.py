"""Privacy wall: every URL sent during a sync (and a live match) carries vocabulary terms,
statuses, dates and NCT ids only -- never a patient identifier, name, birth date, address or
free text."""

from __future__ import annotations

import inspect
import json
import re
from types import SimpleNamespace
from urllib.parse import parse_qsl, unquote_plus, urlparse

import pytest
import responses
from responses.registries import OrderedRegistry

from matcher.ctgov import DEFAULT_BASE_URL, CtgovClient
from matcher.store import Store
from matcher.sync import build_cond_expressions, default_conditions, sync

STUDIES = f"{DEFAULT_BASE_URL}/studies"
VERSION = f"{DEFAULT_BASE_URL}/version"

# A patient as a coordinator's file might hold it, with every kind of private detail.
PATIENT = {
    "id": "MRN-448812",
    "name": "Maria Jose Fernandez-Oliveira",
    "birth_date": "1961-03-14",
    "address": {"street": "1412 Holcombe Blvd", "city": "Houston", "zip": "77030"},
    "phone": "713-555-0142",
    "diagnosis": "leiomyosarcoma",
    "notes": "Lives with daughter; prefers morning visits; port placed 2024",
}

VOCAB = SimpleNamespace(
    diagnoses={
        "leiomyosarcoma": SimpleNamespace(
            name="Leiomyosarcoma",
            category="soft_tissue",
            family="sarcoma",
            lineage=("leiomyosarcoma", "soft_tissue_sarcoma", "sarcoma", "solid_tumor"),
        ),
        "soft_tissue_sarcoma": SimpleNamespace(
            name="Soft tissue sarcoma",
            category="soft_tissue",
            family="sarcoma",
            lineage=("soft_tissue_sarcoma", "sarcoma", "solid_tumor"),
        ),
        "sarcoma": SimpleNamespace(
            name="Sarcoma", category="other", family="sarcoma", lineage=("sarcoma", "solid_tumor")
        ),
        "solid_tumor": SimpleNamespace(
            name="Solid tumor", category="other", family="other", lineage=("solid_tumor",)
        ),
        "gist": SimpleNamespace(
            name="Gastrointestinal stromal tumor",
            category="soft_tissue",
            family="sarcoma",
            lineage=("gist", "soft_tissue_sarcoma", "sarcoma", "solid_tumor"),
        ),
    }
)
VOCAB.diagnosis = lambda ident: VOCAB.diagnoses[ident]

ALLOWED_PARAMS = {
    "format",
    "query.cond",
    "filter.overallStatus",
    "filter.advanced",
    "filter.ids",
    "fields",
    "pageSize",
    "countTotal",
    "pageToken",
}
STATUS_RE = re.compile(r"^[A-Z_]+(,[A-Z_]+)*$")
ADVANCED_RE = re.compile(r"^AREA\[LastUpdatePostDate\]RANGE\[\d{4}-\d{2}-\d{2},MAX\]$")
NCT_LIST_RE = re.compile(r"^NCT\d{8}(,NCT\d{8})*$")


def private_strings(fixtures_dir) -> set[str]:
    """The test patient's private values plus ids/birth dates/ZIPs of every fixture patient."""
    out = {
        PATIENT["id"],
        PATIENT["name"],
        "Fernandez",
        PATIENT["birth_date"],
        "1961",
        PATIENT["address"]["street"],
        "Holcombe",
        "Houston",
        PATIENT["address"]["zip"],
        PATIENT["phone"],
        "daughter",
        "morning",
    }
    for path in sorted((fixtures_dir / "patients").glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for p in doc if isinstance(doc, list) else [doc]:
            if isinstance(p, dict) and "resourceType" not in p:
                for key in ("id", "birth_date"):
                    if p.get(key):
                        out.add(str(p[key]))
                zip_code = (p.get("location") or {}).get("zip")
                if zip_code:
                    out.add(str(zip_code))
    return out


def check_urls(urls: list[str], vocab_terms: set[str], secrets: set[str]) -> None:
    assert urls
    for url in urls:
        decoded = unquote_plus(url)
        for secret in secrets:
            assert secret.lower() not in decoded.lower(), (secret, url)
        for key, value in parse_qsl(urlparse(url).query):
            assert key in ALLOWED_PARAMS, (key, url)
            if key == "query.cond":
                terms = [t.strip().strip('"') for t in value.split(" OR ")]
                assert terms and all(t.lower() in vocab_terms for t in terms), value
            elif key == "filter.overallStatus":
                assert STATUS_RE.match(value), value
            elif key == "filter.advanced":
                assert ADVANCED_RE.match(value), value
            elif key == "filter.ids":
                assert NCT_LIST_RE.match(value), value
            elif key in ("pageSize",):
                assert value.isdigit()
            elif key == "fields":
                assert value == "ProtocolSection,DerivedSection,HasResults"


def test_sync_takes_no_patient():
    params = set(inspect.signature(sync).parameters)
    assert not params & {"patient", "patients", "profile"}


@pytest.mark.parametrize("mode", ["full", "incremental"])
def test_sync_urls_carry_vocabulary_terms_only(fixtures_dir, tmp_path, mode):
    secrets = private_strings(fixtures_dir)
    assert len(secrets) > 20
    page = json.loads((fixtures_dir / "ctgov" / "response_4.json").read_text(encoding="utf-8"))
    page["nextPageToken"] = "NF0g5JCG"
    last = {"studies": []}
    vocab_terms = {
        t.strip('"').lower()
        for expr in build_cond_expressions(default_conditions(VOCAB))
        for t in expr.split(" OR ")
    }
    with (
        Store(tmp_path / "t.sqlite") as st,
        responses.RequestsMock(assert_all_requests_are_fired=True, registry=OrderedRegistry) as rs,
    ):
        client = CtgovClient(min_interval=0, sleep=lambda s: None)
        runs = 2 if mode == "incremental" else 1
        for _ in range(runs):
            rs.get(VERSION, json={"apiVersion": "2.0.5", "dataTimestamp": "2026-11-20T09:00:05"})
            rs.get(STUDIES, json=page)
            rs.get(STUDIES, json=last)
            sync(client, st, vocab=VOCAB, statuses={"ALL"})
        urls = [c.request.url for c in rs.calls]
    assert urls == client.urls_sent
    check_urls(urls, vocab_terms, secrets)
    if mode == "incremental":
        assert any("filter.advanced" in u for u in urls)


def test_live_match_urls_carry_vocabulary_terms_only(fixtures_dir):
    live = pytest.importorskip("matcher.live")
    secrets = private_strings(fixtures_dir)
    page = json.loads((fixtures_dir / "ctgov" / "response_4.json").read_text(encoding="utf-8"))
    del page["nextPageToken"]
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rs:
        rs.get(STUDIES, json=page)
        client = CtgovClient(min_interval=0, sleep=lambda s: None)
        got = live.live_records(PATIENT["diagnosis"], VOCAB, client)
        urls = [c.request.url for c in rs.calls]
    assert len(got) == 2
    vocab_terms = {d.name.lower() for d in VOCAB.diagnoses.values()}
    check_urls(urls, vocab_terms, secrets)


@pytest.mark.parametrize(
    "url",
    [
        f"{STUDIES}?query.cond=%22Leiomyosarcoma%22+Houston",
        f"{STUDIES}?query.cond=%22Leiomyosarcoma%22&query.term=MRN-448812",
        f"{STUDIES}?query.cond=%22uterine+mass+in+1961%22",
    ],
)
def test_the_check_catches_a_leak(fixtures_dir, url):
    with pytest.raises(AssertionError):
        check_urls([url], {"leiomyosarcoma"}, private_strings(fixtures_dir))
