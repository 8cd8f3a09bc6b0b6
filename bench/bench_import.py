"""Benchmark: import every record in a ctgov-records folder into a fresh store.

Usage: python bench/bench_import.py [FOLDER]   (default: ../shared/ctgov-records beside the repo)

Prints records read, seconds, records per second, store size, and the same for a re-import
(which must write nothing). No network.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from matcher.store import Store, import_paths

DEFAULT = Path(__file__).resolve().parent.parent.parent / "shared" / "ctgov-records"


def main(argv: list[str]) -> int:
    folder = Path(argv[1]) if len(argv) > 1 else DEFAULT
    if not folder.exists():
        print(f"{folder}: not found; pass the ctgov-records folder as the first argument")
        return 1
    xml = sum(1 for _ in folder.rglob("*.xml"))
    js = sum(1 for _ in folder.rglob("*.json"))
    print(f"folder: {folder} ({xml} XML files, {js} JSON files)")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.sqlite"
        with Store(db) as st:
            for label in ("first import", "re-import"):
                t0 = time.perf_counter()
                res = import_paths(st, [folder])
                dt = time.perf_counter() - t0
                st.connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")
                size = db.stat().st_size
                print(
                    f"{label:12s}: {res.records} records in {dt:.2f} s = {res.records / dt:,.0f} "
                    f"records/s; added {res.added}, updated {res.updated}, unchanged "
                    f"{res.unchanged}, older kept {res.stale}, errors {len(res.errors)}; "
                    f"store {st.count()} trials, {size / 1e6:.1f} MB"
                )
            t0 = time.perf_counter()
            n = sum(1 for _ in st.iter_records())
            dt = time.perf_counter() - t0
            print(f"iter_records: {n} records in {dt:.3f} s = {n / dt:,.0f} records/s")
            t0 = time.perf_counter()
            n_open = sum(1 for _ in st.iter_records({"RECRUITING", "NOT_YET_RECRUITING"}))
            dt = time.perf_counter() - t0
            print(f"iter_records(open): {n_open} records in {dt:.3f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
