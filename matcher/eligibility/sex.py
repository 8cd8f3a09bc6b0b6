"""Sex (structured field only): evaluation."""

from __future__ import annotations

from typing import Any

from matcher.eligibility.model import MET, NOT_MET, UNKNOWN, Criterion


def _ev_sex(p: Any, c: Criterion, vocab: Any) -> tuple[str, str]:
    want = c.values["sex"].lower()
    if not p.sex:
        return UNKNOWN, f"sex not recorded: verify (trial enrols {want} only)"
    ok = p.sex.lower() == want
    return (MET if ok else NOT_MET), f"sex {p.sex}; trial enrols {want} only"
