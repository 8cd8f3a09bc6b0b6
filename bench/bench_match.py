"""Benchmark the nightly match: generated cohorts against a store of real records.

    python bench/bench_match.py [--records DIR] [--trials 5000] [--cohorts 1000,3000,10000]
                                [--engine local|dask] [--workers 2]

The store is filled from the real records in DIR (default ``../shared/ctgov-records`` if it
exists, else the bundled ``fixtures/demo/trials``), replicated with distinct NCT ids up to
``--trials``. Cohorts are generated with a fixed seed: a realistic mix of sarcoma subtypes,
other cancers, ages, stages, metastatic sites, prior therapies, performance status, labs and
missing fields. Each cohort size runs in a fresh process so peak RSS is per size.

Prints a table: wall time (parse, match), pairs evaluated per second, peak RSS.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SUBTYPES = [
    ("leiomyosarcoma", 14),
    ("undifferentiated pleomorphic sarcoma", 10),
    ("dedifferentiated liposarcoma", 6),
    ("myxoid liposarcoma", 4),
    ("well-differentiated liposarcoma", 3),
    ("synovial sarcoma", 7),
    ("MPNST", 4),
    ("angiosarcoma", 4),
    ("myxofibrosarcoma", 4),
    ("alveolar soft part sarcoma", 2),
    ("solitary fibrous tumor", 3),
    ("PEComa", 1),
    ("inflammatory myofibroblastic tumor", 1),
    ("DFSP", 2),
    ("epithelioid sarcoma", 2),
    ("clear cell sarcoma", 1),
    ("desmoplastic small round cell tumor", 1),
    ("soft tissue sarcoma", 6),
    ("sarcoma", 3),
    ("rhabdomyosarcoma", 4),
    ("Ewing sarcoma", 4),
    ("osteosarcoma", 4),
    ("chondrosarcoma", 2),
    ("chordoma", 1),
    ("GIST", 4),
    ("breast carcinoma", 3),
    ("lung adenocarcinoma", 3),
    ("colorectal cancer", 2),
    ("melanoma", 2),
]
DRUGS = [
    "doxorubicin", "Adriamycin", "ifosfamide", "gemcitabine", "docetaxel", "pazopanib",
    "trabectedin", "eribulin", "dacarbazine", "epirubicin", "paclitaxel", "imatinib",
    "sunitinib", "pembrolizumab", "cyclophosphamide", "vincristine", "regorafenib",
]  # fmt: skip
SITES = ["lung", "liver", "bone", "brain", "lymph_node", "peritoneum", "soft_tissue"]
ZIPS = ["10065", "02115", "77030", "60611", "94158", "98109", "55905", "33136", "19104", "90095"]


def generate_cohort(n: int, seed: int = 7) -> list[dict]:
    """``n`` raw patient dicts (the JSON input shape), reproducible."""
    rng = random.Random(seed)
    names, weights = zip(*SUBTYPES, strict=True)
    out = []
    for i in range(n):
        p: dict = {"id": f"bench-{i:06d}", "diagnosis": rng.choices(names, weights)[0]}
        if rng.random() < 0.95:
            p["age"] = rng.choice(
                [rng.randint(2, 17), rng.randint(18, 39), rng.randint(40, 85), rng.randint(40, 85)]
            )
        if rng.random() < 0.9:
            p["sex"] = rng.choice(["female", "male"])
        r = rng.random()
        if r < 0.55:
            p["stage"] = "IV"
            p["metastatic_sites"] = rng.sample(SITES, rng.randint(1, 3))
        elif r < 0.8:
            p["stage"] = rng.choice(["I", "II", "III", "IIIB"])
        if rng.random() < 0.7:
            p["prior_therapies"] = rng.sample(DRUGS, rng.randint(0, 4))
        if rng.random() < 0.75:
            p["ecog"] = rng.choice([0, 0, 1, 1, 1, 2, 2, 3])
        for key in ("measurable_disease", "brain_metastases", "pregnant", "primary_controlled"):
            if rng.random() < 0.5:
                p[key] = rng.random() < (0.8 if key == "measurable_disease" else 0.15)
        if rng.random() < 0.4:
            p["labs"] = {
                "anc": round(rng.uniform(0.8, 6.0), 1),
                "platelets": rng.randint(60, 400),
                "hemoglobin": round(rng.uniform(8, 15), 1),
                "creatinine": round(rng.uniform(0.5, 2.0), 2),
                "bilirubin": round(rng.uniform(0.2, 2.5), 1),
            }
        if rng.random() < 0.85:
            p["location"] = {"zip": rng.choice(ZIPS)}
        out.append(p)
    return out


def fill_store(db: Path, records_dir: Path, n_trials: int) -> tuple[int, int]:
    """Import the real records, then replicate them with distinct NCT ids up to ``n_trials``."""
    from matcher.records import iter_records
    from matcher.store import Store

    base = [i.record for i in iter_records(records_dir) if i.error is None]
    seen, unique = set(), []
    for rec in base:
        nct = rec.get("protocolSection", {}).get("identificationModule", {}).get("nctId")
        if nct and nct not in seen and "eligibilityModule" in rec.get("protocolSection", {}):
            seen.add(nct)
            unique.append(rec)
    out = []
    k = 0
    while len(out) < n_trials:
        for rec in unique:
            if len(out) >= n_trials:
                break
            r = copy.deepcopy(rec) if k else rec
            if k:
                r["protocolSection"]["identificationModule"]["nctId"] = f"NCT9{k:02d}{len(out):05d}"
            out.append(r)
        k += 1
    with Store(db) as st:
        for i in range(0, len(out), 1000):
            st.upsert_records(out[i : i + 1000], source="bench")
    return len(unique), len(out)


def parse_cache_figures(db: Path) -> str:
    """Parse the open trials through the store's parse cache twice: cold, then warm (a nightly
    run where nothing changed)."""
    from matcher.parsecache import parse_store
    from matcher.rank import DEFAULT_STATUSES
    from matcher.store import Store

    with Store(db) as st:
        t0 = time.perf_counter()
        _, cold = parse_store(st, DEFAULT_STATUSES)
        t1 = time.perf_counter()
        _, warm = parse_store(st, DEFAULT_STATUSES)
        t2 = time.perf_counter()
    return f"parse cache: cold {t1 - t0:.1f}s {cold}, warm {t2 - t1:.1f}s {warm}"


def check_rows(patients, parsed, pack, vocab, config, n_check: int) -> dict:
    """Rows (verdict, score, rank) of the columnar engine vs ``rank_trials`` on the first
    ``n_check`` patients: pairs compared and mismatches."""
    from matcher.columnar import VERDICTS
    from matcher.engine import iter_match_rows
    from matcher.rank import rank_trials

    sample = patients[:n_check]
    ids = [pt.trial.nct_id for pt in parsed]
    got = []
    for _, rows in iter_match_rows(sample, parsed, pack, vocab, config):
        got += [
            (rows.patients[p].id, ids[j], int(r), VERDICTS[v], float(s))
            for p, j, r, v, s in zip(
                rows.patient, rows.trial, rows.rank, rows.verdict, rows.score, strict=True
            )
        ]
    want = [
        (p.id, s.nct_id, s.rank, s.verdict, float(s.score))
        for p in sample
        for s in rank_trials(p, parsed, pack, vocab, config).trials
    ]
    return {"checked_pairs": len(want), "mismatches": len(set(got) ^ set(want))}


def run_one(db: Path, n: int, engine: str, workers: int, mode: str = "explain") -> dict:
    """One cohort size, in this process: returns the figures. ``mode``: ``rows`` (verdicts,
    scores and ranks as arrays, nothing explained) or ``explain`` (every suggestion built)."""
    from matcher.engine import iter_match_local, iter_match_rows, parse_records
    from matcher.errors import MatcherError
    from matcher.knowledge import load_pack
    from matcher.patient import normalize_record
    from matcher.rank import RankConfig
    from matcher.store import Store
    from matcher.vocab import load_vocab

    pack, vocab = load_pack(), load_vocab()
    t0 = time.perf_counter()
    raw = generate_cohort(n)
    patients, rejected = [], 0
    for r in raw:
        try:
            patients.append(normalize_record(r, source="bench"))
        except MatcherError:
            rejected += 1
    t1 = time.perf_counter()
    config = RankConfig()
    with Store(db) as st:
        records = list(st.iter_records(statuses=config.statuses))
    parsed = parse_records(records)
    t2 = time.perf_counter()
    pairs = evaluated = 0
    if mode == "rows":
        for _, rows in iter_match_rows(patients, parsed, pack, vocab, config, explainable=False):
            pairs += len(rows)
            evaluated += int((~rows.gated).sum())
        stream = iter(())
    elif mode == "briefs":
        # what the report streams: every row compact (Dask: shipped as compact rows)
        if engine == "dask":
            from matcher.engine import iter_match_dask_briefs

            briefs = iter_match_dask_briefs(patients, parsed, config, n_workers=workers)
        else:
            from matcher.engine import iter_match_briefs

            briefs = iter_match_briefs(patients, parsed, pack, vocab, config)
        for b in briefs:
            pairs += len(b.trials)
            evaluated += sum(
                1 for t in b.trials if "criteria not evaluated" not in " ".join(t.reasons)
            )
        stream = iter(())
    elif engine == "dask":
        from matcher.engine import iter_match_dask

        stream = iter_match_dask(patients, parsed, config, n_workers=workers)
    else:
        # streamed: results are counted and dropped, as a report writer would write them out
        stream = iter_match_local(patients, parsed, pack, vocab, config)
    for r in stream:
        pairs += len(r.trials)
        evaluated += sum(1 for s in r.trials if "criteria not evaluated" not in " ".join(s.reasons))
    t3 = time.perf_counter()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return {
        "patients": len(patients),
        "rejected": rejected,
        "candidate_trials": len(parsed),
        "all_pairs": len(patients) * len(parsed),
        "relevant_pairs": pairs,
        "criteria_evaluated_pairs": evaluated,
        "normalize_s": round(t1 - t0, 2),
        "parse_s": round(t2 - t1, 2),
        "match_s": round(t3 - t2, 2),
        "total_s": round(t3 - t0, 2),
        "pairs_per_s": round(len(patients) * len(parsed) / max(t3 - t2, 1e-9)),
        "relevant_pairs_per_s": round(pairs / max(t3 - t2, 1e-9)),
        "peak_rss_mb": round(rss_mb),
        "mode": mode,
    }


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_records = ROOT.parent / "shared" / "ctgov-records"
    if not default_records.is_dir():
        default_records = ROOT / "fixtures" / "demo" / "trials"
    ap.add_argument("--records", type=Path, default=default_records)
    ap.add_argument("--trials", type=int, default=5000)
    ap.add_argument("--cohorts", default="1000,3000,10000")
    ap.add_argument("--engine", choices=["local", "dask"], default="local")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument(
        "--mode",
        choices=["rows", "explain", "briefs"],
        default="explain",
        help="rows: verdict/score/rank arrays only; explain: every suggestion built; briefs: "
        "every row as the report streams it (compact, nothing explained)",
    )
    ap.add_argument(
        "--check",
        type=int,
        default=0,
        help="compare rows with rank_trials on the first N patients of each cohort",
    )
    ap.add_argument("--store", type=Path, help="reuse a filled store (else a fresh one)")
    ap.add_argument("--one", type=int, help=argparse.SUPPRESS)  # child mode
    ap.add_argument("--db", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--cache-figures", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()

    if args.cache_figures:
        print(parse_cache_figures(args.db))
        return

    if args.one:
        fig = run_one(args.db, args.one, args.engine, args.workers, args.mode)
        if args.check:
            from matcher.engine import parse_records
            from matcher.knowledge import load_pack
            from matcher.patient import normalize_record
            from matcher.rank import RankConfig
            from matcher.store import Store
            from matcher.vocab import load_vocab

            with Store(args.db) as st:
                parsed = parse_records(st.iter_records(statuses=RankConfig().statuses))
            pats = [normalize_record(r, source="bench") for r in generate_cohort(args.check)]
            fig.update(
                check_rows(pats, parsed, load_pack(), load_vocab(), RankConfig(), args.check)
            )
        print(json.dumps(fig))
        return

    with tempfile.TemporaryDirectory() as tmp:
        db = args.store or Path(tmp) / "bench.sqlite"
        if not db.exists():
            t = time.perf_counter()
            unique, total = fill_store(db, args.records, args.trials)
            print(
                f"store: {unique} real records with criteria, replicated to {total} trials "
                f"in {time.perf_counter() - t:.1f}s ({db.stat().st_size / 1e6:.1f} MB)"
            )
        print(
            f"machine: {os.cpu_count()} cores, Python {sys.version.split()[0]}, engine {args.engine}"
        )
        cache_cmd = [sys.executable, __file__, "--cache-figures", "--db", str(db)]
        print(subprocess.run(cache_cmd, capture_output=True, text=True, check=True).stdout.strip())
        rows = []
        for n in [int(x) for x in args.cohorts.split(",")]:
            cmd = [
                sys.executable,
                __file__,
                "--one",
                str(n),
                "--db",
                str(db),
                "--engine",
                args.engine,
                "--workers",
                str(args.workers),
                "--mode",
                args.mode,
                "--check",
                str(args.check),
            ]
            out = subprocess.run(cmd, capture_output=True, text=True, check=True)
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
        cols = ["mode", "patients", "candidate_trials", "all_pairs", "relevant_pairs",
                "criteria_evaluated_pairs", "normalize_s", "parse_s", "match_s", "total_s",
                "relevant_pairs_per_s", "peak_rss_mb"]  # fmt: skip
        if args.check:
            cols += ["checked_pairs", "mismatches"]
        print("| " + " | ".join(cols) + " |")
        print("|" + "---|" * len(cols))
        for r in rows:
            print("| " + " | ".join(str(r[c]) for c in cols) + " |")


if __name__ == "__main__":
    main()
