"""Helpers several criterion types' evaluate functions share: polarity, wording, vocabulary."""

from __future__ import annotations

from typing import Any

from matcher.eligibility.model import MET, NOT_MET


def _apply(polarity: str, inside: bool) -> str:
    """``inside`` = the patient matches what the criterion describes."""
    if polarity == "require":
        return MET if inside else NOT_MET
    return NOT_MET if inside else MET


def _fmt(x: float | None) -> str:
    if x is None:
        return "?"
    return str(int(x)) if float(x).is_integer() else f"{x:g}"


def _range_text(lo: float | None, hi: float | None, unit: str = "") -> str:
    if lo is not None and hi is not None:
        return f"{_fmt(lo)}–{_fmt(hi)}{unit}" if lo != hi else f"{_fmt(lo)}{unit}"
    if lo is not None:
        return f"≥{_fmt(lo)}{unit}"
    if hi is not None:
        return f"≤{_fmt(hi)}{unit}"
    return "any"


def _diag_name(vocab: Any, did: str) -> str:
    try:
        return vocab.diagnosis(did).name
    except Exception:  # noqa: BLE001 - an id missing from the vocabulary just shows as the id
        return did


def _safe_is_a(vocab: Any, a: str, b: str) -> bool:
    try:
        return bool(vocab.is_a(a, b))
    except Exception:  # noqa: BLE001 - unknown ids are simply unrelated
        return False
