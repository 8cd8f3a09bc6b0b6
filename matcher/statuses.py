"""One status vocabulary for every command: ``open`` (the default), ``any``, or a list.

``open`` means the trial may still take a new patient: RECRUITING, NOT_YET_RECRUITING and
ENROLLING_BY_INVITATION (the site invites whom it enrols; a coordinator can ask). ``any``
(alias ``all``) means no status filter. A list names ClinicalTrials.gov v2 statuses, any
case, separated by commas (``recruiting,active_not_recruiting``); ``open`` may be part of it.
"""

from __future__ import annotations

from collections.abc import Iterable

from matcher.ctgov import STATUSES
from matcher.errors import MatcherError

OPEN = frozenset({"RECRUITING", "NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION"})
ANY_WORDS = frozenset({"any", "all"})
ACCEPTED = "open (default), any, or a comma list of " + ", ".join(STATUSES)


class StatusError(MatcherError):
    """A ``--status`` value names no known status."""


def parse_statuses(values: str | Iterable[str] | None) -> frozenset[str] | None:
    """``--status`` text (or repeated values) -> the admitted statuses, None for any.

    Empty -> ``OPEN``. Raises ``StatusError`` naming the unknown words and what is accepted.
    """
    if values is None:
        return OPEN
    if isinstance(values, str):
        values = [values]
    words = [w.strip() for v in values for w in v.replace("|", ",").split(",") if w.strip()]
    if not words:
        return OPEN
    if any(w.lower() in ANY_WORDS for w in words):
        return None
    out: set[str] = set()
    bad: list[str] = []
    for w in words:
        up = w.upper().replace(" ", "_").replace("-", "_")
        if up == "OPEN":
            out |= OPEN
        elif up in STATUSES:
            out.add(up)
        else:
            bad.append(w)
    if bad:
        raise StatusError(f"unknown status {', '.join(bad)}; accepted: {ACCEPTED}")
    return frozenset(out)
