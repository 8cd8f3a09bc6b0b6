"""The nightly report as a user runs it: generated patients against 5,000 replicated real trials.

    python bench/bench_nightly.py                             # 1,000 and 10,000 patients
    python bench/bench_nightly.py --code ../before          # another checkout (`git archive`)
    python bench/bench_nightly.py --code ../before --code . # side by side, alternating
    python bench/bench_nightly.py --cohorts 100000 --engine dask

For each cohort size and each checkout: a fresh store (filled once per size, copied per
checkout), then ``trialmatch report`` run twice in a fresh process: **cold** (empty parse
cache, no previous run) and **warm** (parse cache filled, yesterday's run to compare with: the
nightly case). Each run is the library call behind the CLI (``run_report``) in its own process;
the figures are that process's wall time, CPU seconds (its own and its workers': less
sensitive than wall time to a shared machine), peak RSS (and the largest worker's), the
output sizes, and the stage seconds
the run reports (checkouts that predate ``ReportResult.timings`` show "-").

Patients come from ``bench_match.generate_cohort`` (fixed seed); trials from
``../shared/ctgov-records`` (else the bundled demo records) replicated with distinct NCT ids.
Prints tables; asserts nothing. The machine may be shared: run it twice.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DRIVER = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from matcher.report import ReportConfig, run_report
from matcher.rank import RankConfig
db, patients, out, engine, workers = sys.argv[1:6]
try:  # --engine dask: the workers are the LocalCluster's
    cfg = ReportConfig(rank=RankConfig(), engine=engine, workers=int(workers),
                       dask_workers=int(workers))
except TypeError:
    try:
        cfg = ReportConfig(rank=RankConfig(), engine=engine, workers=int(workers))
    except TypeError:  # a checkout before --workers
        cfg = ReportConfig(rank=RankConfig(), engine=engine)
res = run_report(patients, out, db, (), cfg)
wall = time.perf_counter() - t0
print(json.dumps({
    "wall_s": round(wall, 2),
    "rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
    "child_rss_mb": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
    "cpu_s": round(sum(
        r.ru_utime + r.ru_stime
        for r in (resource.getrusage(resource.RUSAGE_SELF),
                  resource.getrusage(resource.RUSAGE_CHILDREN))
    ), 1),
    "patients": res.n_patients_ok,
    "trials": res.n_trials,
    "timings": getattr(res, "timings", None),
    "pairs": getattr(res, "n_pairs", None),
}))
"""


def _sizes(out: Path) -> dict:
    def size(p: Path) -> int:
        return p.stat().st_size if p.exists() else 0

    pages = out / "patients"
    return {
        "matches.json": size(out / "matches.json"),
        "trials.json": size(out / "trials.json"),
        "matches.csv": size(out / "matches.csv"),
        "report.html": size(out / "report.html"),
        "patient pages": sum(size(p) for p in pages.glob("*.html")) if pages.is_dir() else 0,
    }


def run_one(code: Path, db: Path, patients: Path, out: Path, engine: str, workers: int) -> dict:
    env = {**os.environ, "PYTHONPATH": str(code)}
    proc = subprocess.run(
        [sys.executable, "-c", DRIVER, str(db), str(patients), str(out), engine, str(workers)],
        env=env,
        cwd=code,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode not in (0, 3):
        raise SystemExit(f"report failed ({proc.returncode}): {proc.stderr[-3000:]}")
    fig = json.loads(proc.stdout.strip().splitlines()[-1])
    fig["sizes"] = _sizes(out)
    return fig


def main() -> None:
    sys.path.insert(0, str(ROOT / "bench"))
    from bench_match import fill_store, generate_cohort

    ap = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    default_records = ROOT.parent / "shared" / "ctgov-records"
    if not default_records.is_dir():
        default_records = ROOT / "fixtures" / "demo" / "trials"
    ap.add_argument("--records", type=Path, default=default_records)
    ap.add_argument("--trials", type=int, default=5000)
    ap.add_argument("--cohorts", default="1000,10000")
    ap.add_argument("--code", type=Path, action="append", help="checkout(s) to run (default .)")
    ap.add_argument("--engine", choices=["local", "dask"], default="local")
    ap.add_argument(
        "--workers",
        default="1",
        help="report --workers values, e.g. 1,2 (--engine dask: the LocalCluster's workers)",
    )
    ap.add_argument("--work", type=Path, default=None, help="keep stores and outputs here")
    args = ap.parse_args()
    codes = [c.resolve() for c in (args.code or [ROOT])]
    print(f"machine: {os.cpu_count()} cores (shared), Python {sys.version.split()[0]}")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        base = args.work or Path(tmp)
        base.mkdir(parents=True, exist_ok=True)
        seed_db = base / "seed.sqlite"
        if not seed_db.exists():
            t = time.perf_counter()
            unique, total = fill_store(seed_db, args.records, args.trials)
            print(f"store: {unique} real records replicated to {total} trials "
                  f"({time.perf_counter() - t:.0f} s)")  # fmt: skip
        for n in (int(x) for x in args.cohorts.split(",")):
            patients = base / f"patients-{n}.json"
            if not patients.exists():
                patients.write_text(json.dumps(generate_cohort(n)), encoding="utf-8")
            for code, workers in ((c, int(w)) for c in codes for w in args.workers.split(",")):
                work = base / f"{code.name or 'code'}-{n}-w{workers}"
                shutil.rmtree(work, ignore_errors=True)
                work.mkdir()
                db = work / "trials.sqlite"
                shutil.copy(seed_db, db)
                for phase in ("cold", "warm"):
                    out = work / "out"
                    fig = run_one(code, db, patients, out, args.engine, workers)
                    fig["workers"] = workers
                    rows.append((n, str(code), phase, fig))
                    print(json.dumps([n, str(code), phase, fig]), flush=True)
                if args.work is None:
                    shutil.rmtree(work, ignore_errors=True)
    print()
    print("| patients | code | workers | run | wall s | CPU s | peak RSS MB (largest worker) "
          "| matches.json (+ trials.json) MB | matches.csv MB | pages MB | pairs/s |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for n, code, phase, f in rows:
        s = f["sizes"]
        pps = f"{f['pairs'] / f['wall_s']:,.0f}" if f.get("pairs") else "-"
        print(
            f"| {n:,} | {Path(code).name} | {f['workers']} | {phase} | {f['wall_s']:.1f} "
            f"| {f.get('cpu_s', '-')} "
            f"| {f['rss_mb']:,} ({f.get('child_rss_mb', 0):,}) "
            f"| {s['matches.json'] / 1e6:,.0f} (+ {s.get('trials.json', 0) / 1e6:,.1f}) "
            f"| {s['matches.csv'] / 1e6:,.0f} "
            f"| {(s['report.html'] + s['patient pages']) / 1e6:,.0f} | {pps} |"
        )
    stages = [(n, c, p, f["timings"]) for n, c, p, f in rows if f.get("timings")]
    if stages:
        keys = list(dict.fromkeys(k for *_, t in stages for k in t))
        print()
        print("| patients | code | run | " + " | ".join(keys) + " |")
        print("|---|---|---|" + "---|" * len(keys))
        for n, code, phase, t in stages:
            cells = " | ".join(f"{t.get(k, 0):.1f}" for k in keys)
            print(f"| {n:,} | {Path(code).name} | {phase} | {cells} |")


if __name__ == "__main__":
    main()
