"""Live candidates for one patient, straight from the API.

Privacy wall: the query is built from *vocabulary terms* for the patient's diagnosis (its
canonical name and the names of its groups), never from identifiers, names, dates, addresses
or free text. Only these strings reach ``ctgov.py``.
"""

from __future__ import annotations

from collections.abc import Iterable

from matcher.errors import MatcherError

# Groups too broad to query on their own (they would fetch every cancer trial).
_TOO_BROAD = {"solid_tumor"}


def query_terms(diagnosis_id: str | None, vocab) -> list[str]:
    """Canonical vocabulary names for a diagnosis and its sarcoma groups, most specific first."""
    if not diagnosis_id:
        raise MatcherError(
            "a live match needs the patient's diagnosis (it is the only thing sent to the API); "
            "add a diagnosis or match against the store"
        )
    names = []
    for d in vocab.diagnosis(diagnosis_id).lineage:
        if d in _TOO_BROAD:
            continue
        names.append(vocab.diagnosis(d).name)
    return names


def cond_expression(terms: Iterable[str]) -> str:
    """An Essie OR-expression of quoted terms: ``"leiomyosarcoma" OR "soft tissue sarcoma"``."""
    return " OR ".join(f'"{t}"' for t in terms)


def live_records(diagnosis_id: str | None, vocab, client, statuses=None) -> list[dict]:
    """Every study the API returns for the diagnosis terms (all pages)."""
    expr = cond_expression(query_terms(diagnosis_id, vocab))
    records: list[dict] = []
    for page in client.search(cond=expr, statuses=sorted(statuses) if statuses else None):
        records.extend(page.studies)
    return records
