"""A parsed trial as a report dict and as plain text."""

from __future__ import annotations

from typing import Any

from matcher.eligibility.model import ParsedTrial, Verdict
from matcher.eligibility.verdict import evaluate


def trial_report(parsed: ParsedTrial, patient: Any = None, vocab: Any = None) -> dict:
    """The ``trial --json`` object: ``{"nct_id", "criteria": [...]}``; each criterion gets
    ``verdict`` and ``reason`` when a patient is given."""
    if patient is None:
        return parsed.to_dict()
    return {
        "nct_id": parsed.nct_id,
        "criteria": [v.to_dict() for v in evaluate(patient, parsed, vocab=vocab)],
    }


def format_criteria(parsed: ParsedTrial, verdicts: list[Verdict] | None = None) -> str:
    """Human-readable listing of the parsed criteria (and verdicts), one block per criterion."""
    t = parsed.trial
    lines = [f"{t.nct_id}  {t.title or ''}".rstrip()]
    meta = [x for x in (t.status, "/".join(t.phases) if t.phases else None, t.url) if x]
    lines.append("  " + " · ".join(meta))
    items = verdicts if verdicts is not None else [None] * len(parsed.criteria)
    crits = parsed.criteria
    for c, v in zip(crits, items, strict=True):
        c = v.criterion if v is not None else c
        vals = ", ".join(
            f"{k}={_short(x)}" for k, x in c.values.items() if x not in (None, [], False)
        )
        head = f"[{c.section}] {c.type} ({c.polarity})" + (f": {vals}" if vals else "")
        if c.type == "unparsed":
            head = f"[{c.section}] to review"
        lines.append("")
        lines.append(head)
        lines.append(f"    {c.text}")
        if v is not None:
            lines.append(f"    -> {v.verdict}: {v.reason}")
            if v.verdict == "UNKNOWN" and c.type != "unparsed" and c.unexplained:
                lines.append("    not understood: " + " … ".join(f"“{w}”" for w in c.unexplained))
            elif v.verdict == "UNKNOWN" and c.type == "unparsed":
                lines.append("    not understood: the whole line (read it)")
        elif c.unexplained:
            lines.append("    not understood: " + " … ".join(f"“{w}”" for w in c.unexplained))
        if c.later_step:
            lines.append(f"    later step ({c.later_step}): not an enrolment criterion")
    return "\n".join(lines)


def _short(x: object) -> str:
    if isinstance(x, list):
        return "/".join(str(i) for i in x)
    if isinstance(x, float) and x.is_integer():
        return str(int(x))
    return str(x)
