"""Headless Chromium for the browser tests: where it is, the flags every test starts it with,
and the marks that skip a test cleanly when it is missing (.ci/run installs Debian's package)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
# no network, no first-run work, no sandbox (CI runs as root)
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
BROWSER_MARKS = [
    pytest.mark.browser,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="headless Chromium not found (install Debian's 'chromium' package, as .ci/run does)",
    ),
]
