"""The relevance cache in the store gives exactly what computing relevance gives.

Trials are the real records of fixtures/trials and fixtures/demo/trials; patients the demo
list. No test reaches the network: sockets are disabled for the whole module.
"""

from __future__ import annotations

import ast
import dataclasses
import json
import shutil
from datetime import date
from pathlib import Path

import pytest

from matcher import relcache, report
from matcher.engine import MatchState, parse_records
from matcher.knowledge import load_pack
from matcher.parsecache import parse_store
from matcher.rank import Evidence, RankConfig, Relevance
from matcher.records import iter_records
from matcher.store import Store
from matcher.vocab import load_vocab

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "fixtures"
DEMO_PATIENTS = FIX / "demo" / "patients.csv"
DEMO_TRIALS = FIX / "demo" / "trials"

# Diagnoses of the demo patients and some of their relatives: subtype, group, family tiers.
DIAGNOSES = (
    "leiomyosarcoma",
    "synovial_sarcoma",
    "liposarcoma",
    "gist",
    "ewing_sarcoma",
    "soft_tissue_sarcoma",
)


@pytest.fixture(autouse=True)
def _no_network(no_network):
    """No test of this module may reach the network (the shared guard)."""


def _records(folder: Path = FIX / "trials") -> list[dict]:
    return [i.record for i in iter_records(folder) if i.error is None]


def _state(parsed) -> MatchState:
    return MatchState(parsed, load_pack(), load_vocab(), RankConfig())


def _uncached(parsed, diagnoses) -> dict:
    """Relevance as ``MatchState`` computes it without a store."""
    st = _state(parsed)
    return {d: st.relevant(d) for d in diagnoses}


def _rows(db: Path) -> list[tuple]:
    with Store(db) as st:
        return list(
            st.connection.execute(
                "SELECT diagnosis, nct_id, content_hash, relevance_key, relevance"
                " FROM relevance_cache ORDER BY 1, 2"
            )
        )


def test_diagnoses_are_in_the_vocabulary():
    vocab = load_vocab()
    assert [d for d in DIAGNOSES if d not in vocab.diagnoses] == []


# ----------------------------------------------------------------------------- rows


@pytest.mark.parametrize(
    "rel",
    [
        Relevance(None, "conditions and keywords do not name this diagnosis"),
        Relevance("subtype", "subtype (Leiomyosarcoma), from condition", (), None),
        Relevance(
            "group",
            'group, from criteria "Histologically confirmed liposarcoma"',
            ("verify histology", "second item"),
            Evidence("criteria", "Histologically confirmed liposarcoma", "liposarcoma"),
        ),
        Relevance(
            "family",
            "a kind of leukemia not in the vocabulary",
            ("trial is for a kind of leukemia the vocabulary does not list",),
            Evidence("condition", "Aggressive NK Cell Leukemia", "leukemia", narrowed=True),
        ),
        Relevance(
            "basket",
            "solid-tumour basket defined by MSI status",
            ("trial is for tumours with a stated MSI status: verify the tumour's MSI status",),
            Evidence("condition", "MSI-High Solid Malignant Tumor", "solid_tumor", marker="MSI"),
        ),
        # text as registered: quotes, backslashes, non-ASCII, control and lone surrogates
        Relevance(
            "basket",
            'any-cancer basket, from keyword "Tumeur maligne \\ « \u00e9 » \t \u2265 2"',
            ("\u00b5g/L \ud800 \x00",),
            Evidence("keyword", 'Tumeur "maligne" \u2014 \U0001f9ec', "cancer", False),
        ),
    ],
    ids=["unrelated", "no-evidence", "criteria-verify", "narrowed", "marker", "odd-text"],
)
def test_row_round_trip_is_exact(rel):
    text = relcache.relevance_to_json(rel)
    back = relcache.relevance_from_json(text)
    assert back == rel
    assert type(back.verify) is tuple
    assert relcache.relevance_to_json(back) == text


@pytest.mark.parametrize(
    "text",
    [
        "{",
        "null",
        '{"tier": "subtype", "reason": "r", "verify": [], "evidence": null}',
        '["subtype", "r", []]',
        '["best", "r", [], null]',
        '["subtype", 3, [], null]',
        '["subtype", "r", "verify", null]',
        '["subtype", "r", [1], null]',
        '["subtype", "r", [], ["condition", "x", "liposarcoma"]]',
        '["subtype", "r", [], ["condition", "x", "liposarcoma", 1]]',
        '["subtype", "r", [], ["condition", "x", "liposarcoma", false]]',
        '["subtype", "r", [], ["condition", "x", "liposarcoma", false, 7]]',
        '["subtype", "r", [], {"source": "condition"}]',
    ],
)
def test_rows_that_are_not_relevance_are_refused(text):
    with pytest.raises((ValueError, TypeError)):
        relcache.relevance_from_json(text)


def test_relevance_has_only_fields_the_row_carries():
    """A field added to Relevance or Evidence needs the row format (and _FORMAT) updated;
    until then such results are not cached (``_exact``), so never returned wrong."""
    assert [f.name for f in dataclasses.fields(Relevance)] == [
        "tier",
        "reason",
        "verify",
        "evidence",
    ]
    assert [f.name for f in dataclasses.fields(Evidence)] == [
        "source",
        "text",
        "diagnosis",
        "narrowed",
        "marker",
    ]


def test_every_fixture_relevance_round_trips():
    """Every (trial, diagnosis) relevance of the fixture trials survives its row exactly."""

    parsed = parse_records(_records(FIX / "trials") + _records(DEMO_TRIALS))
    st = _state(parsed)
    n = 0
    for d in DIAGNOSES:
        for _, rel in st.relevant(d):
            assert relcache.relevance_from_json(relcache.relevance_to_json(rel)) == rel
            n += 1
    assert n > 50


# ----------------------------------------------------------------------------- the key


def test_key_covers_the_relevance_code_and_the_criteria_folder():
    names = {p.relative_to(ROOT / "matcher").as_posix() for p in relcache.relevance_modules()}
    assert {"rank.py", "vocab.py", "geo.py", "trial.py", "eligibility/parse.py"} <= names
    assert "report.py" not in names  # the report's writing does not decide relevance


def _parsed_closure() -> set[str]:
    """What ``rank`` imports, directly or not, found by parsing every file (the reference
    for the text scan the key uses)."""
    pkg = ROOT / "matcher"

    def file_of(name: str) -> Path | None:
        p = pkg.joinpath(*name.split(".")[1:])
        for f in (p / "__init__.py", p.with_suffix(".py")):
            if f.is_file():
                return f
        return None

    seen: set[Path] = set()
    todo = ["matcher.rank"]
    while todo:
        name = todo.pop()
        f = file_of(name) if name.split(".")[0] == "matcher" else None
        if f is None or f in seen:
            continue
        seen.add(f)
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                todo.extend(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                todo.append(node.module)
                todo.extend(f"{node.module}.{a.name}" for a in node.names)
    return {f.relative_to(pkg).as_posix() for f in seen}


def test_key_scan_finds_what_a_parse_finds():
    names = {p.relative_to(ROOT / "matcher").as_posix() for p in relcache.relevance_modules()}
    assert names == _parsed_closure()


@pytest.mark.parametrize(
    "source, found",
    [
        ("import matcher.geo\n", ["matcher.geo"]),
        ("import matcher.geo as g, matcher.vocab\n", ["matcher.geo", "matcher.vocab"]),
        ("    from matcher import rank, geo as g  # note\n",
         ["matcher", "matcher.rank", "matcher.geo"]),
        ("from matcher.eligibility import (\n    parse,  # the parser\n    Criterion,\n)\n",
         ["matcher.eligibility", "matcher.eligibility.parse", "matcher.eligibility.Criterion"]),
        ("from .model import ParsedTrial\n", ["matcher.eligibility.model",
                                              "matcher.eligibility.model.ParsedTrial"]),
        ("from . import text\n", ["matcher.eligibility", "matcher.eligibility.text"]),
    ],
)  # fmt: skip
def test_import_scan(tmp_path, source, found):
    f = tmp_path / "mod.py"
    f.write_text(source, encoding="utf-8")
    assert relcache._imported_names(f, "matcher.eligibility.mod") == found


def test_key_changes_with_a_criteria_file(tmp_path, monkeypatch):
    before = relcache.relevance_key()
    copy = tmp_path / "criteria"
    shutil.copytree(ROOT / "criteria", copy)
    monkeypatch.setenv("TRIALMATCH_CRITERIA", str(copy))
    assert relcache.relevance_key() == before  # same files, same key
    pack_file = sorted((copy / "options").glob("*.yaml"))[0]
    pack_file.write_text(pack_file.read_text(encoding="utf-8") + "\n# edited\n", "utf-8")
    relcache._key.cache_clear()  # the key is computed once per process and folder
    assert relcache.relevance_key() != before
    monkeypatch.delenv("TRIALMATCH_CRITERIA")
    assert relcache.relevance_key() == before


# ----------------------------------------------------------------------------- a run


def _change_record(db: Path) -> str:
    """Edit one stored record (a keyword added): its content hash changes. Returns its id."""
    with Store(db) as st:
        nct, record = next((n, json.loads(r)) for n, r in st.connection.execute(
            "SELECT nct_id, record FROM trials ORDER BY nct_id"))  # fmt: skip
        ps = record["protocolSection"]
        cond = ps.setdefault("conditionsModule", {})
        cond["keywords"] = [*cond.get("keywords", []), "leiomyosarcoma"]
        ps["statusModule"]["lastUpdatePostDateStruct"]["date"] = "2026-11-30"
        counts = st.upsert_records([record], source="test")
        assert counts.updated == 1
    return nct


def _stale_key(db: Path, monkeypatch) -> None:
    monkeypatch.setattr(relcache, "relevance_key", lambda vocab=None: "0123456789abcdef")


def _undecodable(db: Path) -> int:
    with Store(db) as st:
        cur = st.connection.execute(
            "UPDATE relevance_cache SET relevance = '[\"subtype\"' WHERE relevance IS NOT NULL"
        )
        return cur.rowcount


# (id, what is done between the first and the second load, diagnoses of the second load,
#  how many pairs the second load computes: n = trials, d = diagnoses)
SCENARIOS = [
    ("hit", None, DIAGNOSES, lambda n, d, k: 0),
    ("miss: a new diagnosis", None, (*DIAGNOSES, "chordoma"), lambda n, d, k: n),
    ("stale content hash", "record", DIAGNOSES, lambda n, d, k: d),
    ("stale code key", "key", DIAGNOSES, lambda n, d, k: n * d),
    ("row not decodable", "garble", DIAGNOSES, lambda n, d, k: k),
]


@pytest.mark.parametrize(
    "change, diagnoses, computed",
    [s[1:] for s in SCENARIOS],
    ids=[s[0] for s in SCENARIOS],
)
def test_second_load(tmp_path, monkeypatch, change, diagnoses, computed):
    db = tmp_path / "t.sqlite"
    with Store(db) as st:
        st.upsert_records(_records(), source="test")
        digests: dict = {}
        parsed, _ = parse_store(st, digests=digests)
        first = relcache.load_relevance(st, _state(parsed), digests, DIAGNOSES)
    n, d = len(parsed), len(DIAGNOSES)
    assert first == {"cached": 0, "computed": n * d}
    assert len(_rows(db)) == n * d

    garbled = 0
    if change == "record":
        _change_record(db)
    elif change == "key":
        _stale_key(db, monkeypatch)
    elif change == "garble":
        garbled = _undecodable(db)
        assert garbled > 0

    with Store(db) as st:
        digests = {}
        parsed, _ = parse_store(st, digests=digests)
        state = _state(parsed)
        second = relcache.load_relevance(st, state, digests, diagnoses)
    want = computed(n, d, garbled)
    assert second == {"cached": n * len(diagnoses) - want, "computed": want}
    # results equal to computing them (dataclass equality, trial order kept)
    assert state.relevant_by_diag == _uncached(parsed, diagnoses)
    # stale and invalid rows were replaced: one current row per pair
    rows = _rows(db)
    assert len(rows) == n * len(diagnoses)
    assert {r[3] for r in rows} == {relcache.relevance_key()}
    assert {(r[1], r[2]) for r in rows} == set(digests.items())
    assert all(r[4] is None or relcache.relevance_from_json(r[4]) for r in rows)


def test_load_leaves_to_the_state_what_it_cannot_cache(tmp_path):
    """No diagnosis, an unknown one, and trials without a content hash: computed lazily or
    not cached, still equal to the uncached state."""
    with Store(tmp_path / "t.sqlite") as st:
        st.upsert_records(_records(), source="test")
        parsed, _ = parse_store(st)
        state = _state(parsed)
        counts = relcache.load_relevance(st, state, {}, [None, "", "not_a_diagnosis", DIAGNOSES[0]])
        assert counts == {"cached": 0, "computed": len(parsed)}
        assert list(state.relevant_by_diag) == [DIAGNOSES[0]]
        assert st.connection.execute("SELECT COUNT(*) FROM relevance_cache").fetchone()[0] == 0
    assert state.relevant(None) == [] == _uncached(parsed, [None])[None]
    assert state.relevant_by_diag[DIAGNOSES[0]] == _uncached(parsed, DIAGNOSES[:1])[DIAGNOSES[0]]


# ----------------------------------------------------------------------------- the report


def _report(db: Path, out: Path, workers: int, trials=()) -> report.ReportResult:
    cfg = report.ReportConfig(
        rank=RankConfig(statuses=None), as_of=date(2025, 6, 1), workers=workers
    )
    return report.run_report(DEMO_PATIENTS, out, db, trials, cfg)


def _files(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in out.rglob("*") if p.is_file()}


@pytest.mark.parametrize("workers", [1, 2])
def test_report_outputs_are_identical_with_and_without_the_cache(tmp_path, monkeypatch, workers):
    """The demo report run twice on copies of one store, with the relevance cache and with
    relevance computed as before: every output file byte-identical, cold and warm."""
    monkeypatch.setattr(report, "_now", lambda: "2025-06-01T06:00:00Z")
    loads: list[dict] = []
    real_load = relcache.load_relevance

    def counted(*args):
        loads.append(real_load(*args))
        return loads[-1]

    def without(store, state, digests, diagnoses):
        return {"cached": 0, "computed": 0}  # MatchState computes relevance itself

    seed = tmp_path / "seed.sqlite"
    with Store(seed) as st:
        st.upsert_records(_records(DEMO_TRIALS), source="test")
    for name in ("cached", "uncached"):
        shutil.copy(seed, tmp_path / f"{name}.sqlite")
    for run in ("cold", "warm"):
        outs = {}
        for name, load in (("cached", counted), ("uncached", without)):
            monkeypatch.setattr(relcache, "load_relevance", load)
            outs[name] = tmp_path / f"{name}-{run}"
            res = _report(tmp_path / f"{name}.sqlite", outs[name], workers)
            assert res.n_patients_ok > 0
        cached, uncached = _files(outs["cached"]), _files(outs["uncached"])
        assert sorted(cached) == sorted(uncached)
        assert "matches.json" in cached
        assert [f for f in cached if cached[f] != uncached[f]] == []
    cold, warm = loads
    assert cold["cached"] == 0 and cold["computed"] > 0
    assert warm == {"cached": cold["computed"], "computed": 0}
