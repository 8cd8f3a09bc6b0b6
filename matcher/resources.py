"""Where the bundled data lives, in a source checkout and in an installed wheel."""

from __future__ import annotations

import os
from pathlib import Path

_PKG = Path(__file__).resolve().parent


def criteria_dir() -> Path:
    """Return the knowledge-pack folder (``criteria/``).

    An installed wheel carries it as ``matcher/_criteria``; a source checkout (or an
    editable install) has it beside the package. ``TRIALMATCH_CRITERIA`` overrides both.
    """
    override = os.environ.get("TRIALMATCH_CRITERIA")
    if override:
        return Path(override)
    for candidate in (_PKG / "_criteria", _PKG.parent / "criteria"):
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        "knowledge pack not found: expected matcher/_criteria (installed) or criteria/ "
        "beside the package (source checkout); set TRIALMATCH_CRITERIA to its folder"
    )


def vocab_dir() -> Path:
    """Return ``criteria/vocab``."""
    return criteria_dir() / "vocab"
