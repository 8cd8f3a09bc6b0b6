"""The parsed-criteria cache in the store gives exactly what a fresh parse gives."""

from __future__ import annotations

import dataclasses
import json

from matcher.engine import parse_records
from matcher.parsecache import parse_store
from matcher.records import iter_records
from matcher.store import Store


def _dump(parsed):
    return json.dumps(
        [
            [
                p.trial.nct_id,
                p.n_lines,
                p.n_typed_lines,
                [dataclasses.asdict(c) for c in p.criteria],
            ]
            for p in parsed
        ],
        sort_keys=True,
    )


def test_cache_round_trip_equals_fresh_parse(fixtures_dir, tmp_path):
    records = [i.record for i in iter_records(fixtures_dir / "trials") if i.error is None]
    with Store(tmp_path / "t.sqlite") as st:
        st.upsert_records(records, source="test")
        first, counts1 = parse_store(st)
        second, counts2 = parse_store(st)
    fresh = parse_records(records)
    assert counts1 == {"cached": 0, "parsed": len(fresh)}
    assert counts2 == {"cached": len(fresh), "parsed": 0}
    assert _dump(first) == _dump(fresh)
    assert _dump(second) == _dump(fresh)
    assert [p.trial.nct_id for p in second] == [p.trial.nct_id for p in fresh]


def test_changed_record_is_parsed_again(fixtures_dir, tmp_path):
    records = [i.record for i in iter_records(fixtures_dir / "trials" / "constructed")]
    with Store(tmp_path / "t.sqlite") as st:
        st.upsert_records(records, source="test")
        parse_store(st)
        changed = json.loads(json.dumps(records[0]))
        elig = changed["protocolSection"]["eligibilityModule"]
        elig["eligibilityCriteria"] = elig["eligibilityCriteria"].replace(
            "ECOG performance status 0-2", "ECOG performance status 0-1"
        )
        changed["protocolSection"]["statusModule"]["lastUpdatePostDateStruct"]["date"] = (
            "2026-02-01"
        )
        st.upsert_records([changed], source="test")
        parsed, counts = parse_store(st)
    assert counts == {"cached": 0, "parsed": 1}
    ps = [c for c in parsed[0].criteria if c.type == "performance_status"]
    assert [(c.values["min"], c.values["max"]) for c in ps] == [(0, 1)]


def test_the_parser_key_covers_every_module_that_decides_a_parse(monkeypatch):
    """A cached parse is stale when the eligibility modules, the vocabulary's text finders,
    the clause words or a vocabulary file change: each is part of the key."""
    from pathlib import Path

    import matcher.eligibility as el
    import matcher.vocab as vc
    from matcher import parsecache

    read = Path.read_bytes
    seen: list[str] = []

    def spy(self):
        seen.append(self.name)
        return read(self)

    parsecache.parser_key.cache_clear()
    monkeypatch.setattr(Path, "read_bytes", spy)
    try:
        parsecache.parser_key()
    finally:
        monkeypatch.setattr(Path, "read_bytes", read)
        parsecache.parser_key.cache_clear()
    modules = {p.name for p in Path(el.__file__).parent.glob("*.py")}
    assert modules <= set(seen)
    assert {Path(vc.__file__).name, "clauses.yaml", "diagnoses.yaml", "drugs.yaml"} <= set(seen)
