"""Coordinator review: review page load time, store writes per status change, and the nightly
run's overhead on a store holding many decisions.

    python bench/bench_review.py                         # 1,000 patients, 10,000 decisions
    python bench/bench_review.py --patients 200 --decisions 2000 --repeat 3

Patients are the demo list's 16 rows repeated under new ids; trials are the demo records
(``--status any``). Everything runs in-process on a temporary store; the review server is
started on a free port of 127.0.0.1 and fetched over HTTP (and opened in headless Chromium
through Playwright when both are installed). Prints figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
import urllib.parse
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_report import make_patients  # noqa: E402 - the demo list, replicated

from matcher import review, serve  # noqa: E402
from matcher.rank import RankConfig  # noqa: E402
from matcher.report import ReportConfig, run_report  # noqa: E402
from matcher.store import Store, now_iso  # noqa: E402

DEMO = ROOT / "fixtures" / "demo"


def timed_report(patients: Path, db: Path, out: Path, trials=()) -> tuple[float, float, float]:
    """(wall seconds, CPU seconds, CPU seconds inside the review steps) of one nightly run.
    CPU time of this process is the steadier figure on a machine shared with other work."""
    spent = [0.0]
    originals = {name: getattr(review, name) for name in ("for_run", "save_pages")}

    def wrap(fn):
        def inner(*a, **k):
            t0 = time.process_time()
            try:
                return fn(*a, **k)
            finally:
                spent[0] += time.process_time() - t0

        return inner

    for name, fn in originals.items():
        setattr(review, name, wrap(fn))
    try:
        t0, c0 = time.perf_counter(), time.process_time()
        res = run_report(patients, out, db, trials, ReportConfig(RankConfig(statuses=None)))
        took, cpu = time.perf_counter() - t0, time.process_time() - c0
    finally:
        for name, fn in originals.items():
            setattr(review, name, fn)
    if res.exit_code != 0:
        raise SystemExit(f"report failed: {res.errors[:3]}")
    return took, cpu, spent[0]


def add_decisions(db: Path, n: int) -> int:
    """Replace the decisions with ``n`` spread over the reported pairs (one transaction:
    setup, not measured)."""
    with Store(db) as st:
        conn = st.connection
        pairs = conn.execute(
            "SELECT m.patient_id, m.nct_id, m.criteria_hash, m.trial_status, p.patient_hash"
            " FROM report_matches m JOIN report_patients p"
            " ON p.run_id = m.run_id AND p.patient_id = m.patient_id"
            " WHERE m.run_id = (SELECT MAX(id) FROM report_runs) ORDER BY m.patient_id, m.score DESC"
        ).fetchall()
        statuses = ["contacted", "reviewing", "not eligible", "deferred", "enrolled"]
        at = now_iso()
        rows = [
            (
                "patients",
                r["patient_id"],
                r["nct_id"],
                statuses[i % len(statuses)],
                "bench reason",
                None,
                "bench",
                at,
                r["patient_hash"],
                r["criteria_hash"],
                r["trial_status"],
            )
            for i, r in enumerate(pairs[:n])
        ]
        with st.transaction():
            conn.execute("DELETE FROM review_decisions")
            conn.executemany("INSERT INTO review_decisions VALUES (?,?,?,?,?,?,?,?,?,?,?)", rows)
        return len(rows)


def writes_per_change(db: Path) -> tuple[int, int, int]:
    """(rows written, write statements, transactions) of one ``set_status``."""
    with Store(db) as st:
        pid, nct = st.connection.execute(
            "SELECT patient_id, nct_id FROM report_matches ORDER BY run_id DESC LIMIT 1"
        ).fetchone()
        seen: list[str] = []
        before = st.connection.total_changes
        st.connection.set_trace_callback(seen.append)
        review.set_status(st, pid, nct, "contacted", who="bench")
        st.connection.set_trace_callback(None)
        rows = st.connection.total_changes - before
    writes = sum(1 for s in seen if s.lstrip().split()[0].upper() in ("INSERT", "UPDATE", "DELETE"))
    commits = sum(1 for s in seen if s.strip().upper() == "COMMIT")
    return rows, writes, commits


def http_ms(url: str, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        with urllib.request.urlopen(url, timeout=120) as resp:
            resp.read()
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times)


def browser_ms(url: str, repeat: int) -> float | None:
    """Median ms from navigation start to the load event in headless Chromium, or None."""
    import shutil

    chromium = shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not chromium:
        return None
    times = []
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        for _ in range(repeat):
            page = b.new_page()
            page.goto(url, wait_until="load")
            times.append(
                page.evaluate(
                    "() => { const n = performance.getEntriesByType('navigation')[0];"
                    " return n.loadEventEnd - n.startTime; }"
                )
            )
            page.close()
        b.close()
    return statistics.median(times)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--patients", type=int, default=1000)
    ap.add_argument("--decisions", type=int, default=10_000)
    ap.add_argument("--repeat", type=int, default=3, help="nightly runs per setting (median)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        patients, db, out = work / "patients.csv", work / "trials.sqlite", work / "out"
        make_patients(patients, args.patients)
        first, _, _ = timed_report(patients, db, out, [DEMO / "trials"])  # import + baseline
        print(f"patients: {args.patients}; first run (with import): {first:.1f} s")

        # alternate the two settings, so a busy machine slows both alike
        plain, decided = [], []
        for _ in range(args.repeat):
            add_decisions(db, 0)
            plain.append(timed_report(patients, db, out))
            n = add_decisions(db, args.decisions)
            decided.append(timed_report(patients, db, out))

        def med(runs, i):
            return statistics.median(r[i] for r in runs)

        w0, w1 = med(plain, 0), med(decided, 0)
        c0, c1 = med(plain, 1), med(decided, 1)
        s0, s1 = med(plain, 2), med(decided, 2)
        print(
            f"nightly run, no decisions: {w0:.2f} s wall, {c0:.2f} s CPU (review steps {s0 * 1000:.0f} ms)"
        )
        print(
            f"nightly run, {n} decisions: {w1:.2f} s wall, {c1:.2f} s CPU (review steps {s1 * 1000:.0f} ms)"
        )
        print(
            f"overhead of the decisions: {100 * (c1 - c0) / c0:+.1f}% CPU, "
            f"{100 * (w1 - w0) / w0:+.1f}% wall; review steps {100 * s1 / c1:.1f}% of the run's "
            "CPU (target < 10%)"
        )

        rows, writes, commits = writes_per_change(db)
        print(
            f"store writes per status change: {writes} statements ({rows} rows: decision + "
            f"history), {commits} transaction"
        )

        srv = serve.make_server(db, port=0, user="bench")
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        try:
            with Store(db) as st:
                pid = review.load_pages(st, "patients")[0]["patient_id"]
            index = srv.url
            page = srv.url + "patient?" + urllib.parse.urlencode({"id": pid})
            print(f"review index, {args.patients} patients, HTTP: {http_ms(index, 5):.0f} ms")
            print(f"review patient page, HTTP: {http_ms(page, 5):.0f} ms")
            b = browser_ms(index, 3)
            if b is not None:
                print(f"review index, {args.patients} patients, Chromium load: {b:.0f} ms")
            else:
                print("review index in Chromium: skipped (chromium or playwright missing)")
        finally:
            srv.shutdown()
            srv.server_close()


if __name__ == "__main__":
    main()
