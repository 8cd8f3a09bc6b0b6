"""Privacy wall: every URL sent during a sync (and a live match) carries vocabulary terms,
statuses, dates and NCT ids only -- never a patient identifier, name, birth date, address or
free text."""

from __future__ import annotations

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


def test_sync_reads_no_patient_file(fixtures_dir, tmp_path, monkeypatch):
    """Run the sync command next to a patient file and with the patient readers booby-trapped:
    no file under the patient folders is opened and no patient reader is called."""
    import sys

    import matcher.patient

    patient_file = tmp_path / "patients.json"
    patient_file.write_text(json.dumps([PATIENT]), encoding="utf-8")

    def trap(*args, **kwargs):
        raise AssertionError("sync called a patient reader")

    for name in ("read_patients", "normalize_record", "load_json_text"):
        monkeypatch.setattr(matcher.patient, name, trap)
    watched = (str(patient_file), str(fixtures_dir / "patients"), str(fixtures_dir / "fhir"))
    opened: list[str] = []
    active = [True]

    def hook(event, args):
        opens = active[0] and event == "open" and isinstance(args[0], str)
        if opens and args[0].startswith(watched):
            opened.append(args[0])

    sys.addaudithook(hook)  # audit hooks cannot be removed: ``active`` switches it off
    page = json.loads((fixtures_dir / "ctgov" / "response_4.json").read_text(encoding="utf-8"))
    del page["nextPageToken"]
    monkeypatch.chdir(tmp_path)
    try:
        with responses.RequestsMock(assert_all_requests_are_fired=True) as rs:
            rs.get(VERSION, json={"apiVersion": "2.0.5", "dataTimestamp": "2026-11-20T09:00:05"})
            rs.get(STUDIES, json=page)
            from click.testing import CliRunner

            from matcher.cli import cli

            db = str(tmp_path / "t.sqlite")
            args = ["--db", db, "sync", "--condition", "leiomyosarcoma", "--status", "all"]
            result = CliRunner().invoke(cli, [*args, "--min-interval", "0"])
    finally:
        active[0] = False
    assert result.exit_code == 0, result.output
    assert opened == []
    assert "sync called a patient reader" not in result.output


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


# The live path fed a patient whose private values sit in every field a coordinator might put
# them in, the diagnosis text included.
LIVE_PATIENT = {
    **{k: v for k, v in PATIENT.items() if k not in ("diagnosis", "address")},
    "mrn": "448812",
    "address": "1412 Holcombe Blvd, Houston TX",
    "location": {"zip": "77030"},
    "diagnosis": "Leiomyosarcoma of the uterus - Maria Jose Fernandez-Oliveira, MRN 448812, "
    "DOB 1961-03-14, 1412 Holcombe Blvd Houston, phone 713-555-0142",
}


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_live_match_urls_carry_vocabulary_terms_only(fixtures_dir, tmp_path, fmt):
    from click.testing import CliRunner

    from matcher.cli import cli
    from matcher.vocab import load_vocab

    secrets = private_strings(fixtures_dir) | {"448812", "Oliveira", "uterus", "713-555"}
    path = tmp_path / f"patients.{fmt}"
    if fmt == "json":
        path.write_text(json.dumps([LIVE_PATIENT]), encoding="utf-8")
    else:
        flat = {**{k: v for k, v in LIVE_PATIENT.items() if k != "location"}, "zip": "77030"}
        cells = ['"' + str(v).replace('"', '""') + '"' for v in flat.values()]
        path.write_text(",".join(flat) + "\n" + ",".join(cells) + "\n", encoding="utf-8")
    page = json.loads((fixtures_dir / "ctgov" / "response_4.json").read_text(encoding="utf-8"))
    del page["nextPageToken"]
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rs:
        rs.get(STUDIES, json=page)
        result = CliRunner().invoke(
            cli, ["match", str(path), "--live", "--status", "any", "--json"]
        )
        urls = [c.request.url for c in rs.calls]
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert [p["patient_id"] for p in out] == [PATIENT["id"]]  # the patient was really matched
    assert len(urls) == 1
    vocab_terms = {d.name.lower() for d in load_vocab().diagnoses.values()}
    check_urls(urls, vocab_terms, secrets)
    terms = [t.strip('"') for t in dict(parse_qsl(urlparse(urls[0]).query))["query.cond"].split(
        " OR ")]  # fmt: skip
    assert terms[0] == "Uterine leiomyosarcoma"


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
