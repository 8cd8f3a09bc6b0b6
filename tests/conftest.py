"""Shared test helpers: paths to fixtures, a temp store, no network."""

from __future__ import annotations

from pathlib import Path

import pytest
import responses
from responses.registries import OrderedRegistry

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "fixtures"


@pytest.fixture
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(autouse=True)
def _no_user_db(tmp_path, monkeypatch):
    """Never touch the user's real store: point the default at a temp file."""
    monkeypatch.setenv("TRIALMATCH_DB", str(tmp_path / "trials.sqlite"))
    monkeypatch.setenv("TRIALMATCH_API_URL", "https://clinicaltrials.gov/api/v2")


@pytest.fixture
def rsps():
    """Mocked HTTP (``responses``), every registered call expected, in registration order."""
    with responses.RequestsMock(
        assert_all_requests_are_fired=True, registry=OrderedRegistry
    ) as mock:
        yield mock
