"""``match --live`` end to end: the only patient facts that leave the machine are vocabulary
terms for the diagnosis (privacy wall), and the answers come back ranked."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl, unquote_plus, urlparse

import responses
from click.testing import CliRunner

from matcher.cli import cli
from matcher.ctgov import DEFAULT_BASE_URL
from matcher.vocab import load_vocab

STUDIES = f"{DEFAULT_BASE_URL}/studies"

# Private values written in the constructed FHIR bundle (name, birth date, address, ids).
SECRETS = [
    "Constructed Example Child",
    "Constructed",
    "2016-02-10",
    "2016",
    "1 Example Street",
    "Example Street",
    "Philadelphia",
    "19104",
    "fhir-ss-child",
]


def test_live_match_sends_vocabulary_terms_only(fixtures_dir):
    bundle = fixtures_dir / "patients" / "synovial-child-lung-mets.fhir.json"
    page = {
        "studies": [json.loads((fixtures_dir / "trials" / "v2" / "NCT02576665.json").read_text())]
    }
    with responses.RequestsMock(assert_all_requests_are_fired=True) as rs:
        rs.get(STUDIES, json=page)
        result = CliRunner().invoke(
            cli, ["match", str(bundle), "--live", "--status", "any", "--json"]
        )
        urls = [c.request.url for c in rs.calls]
    assert result.exit_code == 0, result.output
    assert len(urls) == 1
    decoded = unquote_plus(urls[0])
    for secret in SECRETS:
        assert secret.lower() not in decoded.lower(), secret
    params = dict(parse_qsl(urlparse(urls[0]).query))
    assert set(params) <= {"format", "query.cond", "pageSize"}
    names = {d.name.lower() for d in load_vocab().diagnoses.values()}
    terms = [t.strip().strip('"') for t in params["query.cond"].split(" OR ")]
    assert terms == [
        "Synovial sarcoma",
        "Non-rhabdomyosarcoma soft tissue sarcoma",
        "Soft tissue sarcoma",
        "Sarcoma",
    ]
    assert all(t.lower() in names for t in terms)
    out = json.loads(result.stdout)
    assert [p["patient_id"] for p in out] == ["fhir-ss-child"]
    assert [t["nct_id"] for t in out[0]["trials"]] == ["NCT02576665"]
