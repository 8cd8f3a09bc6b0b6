"""Nightly report size and load time for 16, 200 and 1,000 patients, and verify items per
patient before and after de-duplication.

    python bench/bench_report.py                      # this checkout
    python bench/bench_report.py --code ../old      # another checkout (e.g. `git archive`)
    python bench/bench_report.py --sizes 16,200 --repeat 5

Patients are the demo list's 16 rows repeated under new ids; trials are the demo records
(`--status any`, as in the README's demo command). Each report is written by the CLI of the
chosen code, then opened in headless Chromium (Debian's ``chromium``): a local harness page
frames the report and records the time from inserting the frame to its load event plus one
forced layout (median of ``--repeat`` runs). No network: the pages are local files and
Chromium runs with its background networking off. Prints one table; asserts nothing.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DEMO = ROOT / "fixtures" / "demo"
OPEN = {"RECRUITING", "NOT_YET_RECRUITING", "ENROLLING_BY_INVITATION"}

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--allow-file-access-from-files",
]

HARNESS = """<!doctype html><html><body><pre id=probe></pre><script>
var t0 = performance.now(), f = document.createElement('iframe');
f.style.width = '1280px'; f.style.height = '900px';
f.addEventListener('load', function () {
  var d = f.contentDocument; d.body.offsetHeight;
  document.getElementById('probe').textContent = String(performance.now() - t0);
});
f.src = %s; document.body.appendChild(f);
</script></body></html>"""


def make_patients(path: Path, n: int) -> None:
    with open(DEMO / "patients.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, list(rows[0].keys()))
        w.writeheader()
        for i in range(n):
            row = dict(rows[i % len(rows)])
            row["id"] = row["id"] if n == len(rows) else f"{row['id']}-{i:04d}"
            w.writerow(row)


def run_report(code: Path, patients: Path, work: Path, out: Path) -> float:
    env = {**os.environ, "PYTHONPATH": str(code)}
    cmd = [
        sys.executable,
        "-m",
        "matcher",
        "--db",
        str(work / "trials.sqlite"),
        "report",
        str(patients),
        "--trials",
        str(DEMO / "trials"),
        "--status",
        "any",
        "--out",
        str(out),
    ]
    t0 = time.perf_counter()
    # run from the code's folder: `python -m` puts the working directory first on the path
    proc = subprocess.run(cmd, env=env, cwd=code, capture_output=True, text=True, check=False)
    took = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"report failed ({proc.returncode}): {proc.stderr[-2000:]}")
    return took


def load_ms(chromium: str, page: Path, repeat: int) -> float:
    """Median milliseconds from framing ``page`` to its load event plus a layout."""
    harness = page.parent / f"bench-harness-{page.stem}.html"
    harness.write_text(HARNESS % json.dumps(page.name), encoding="utf-8")
    times = []
    try:
        for _ in range(repeat):
            with tempfile.TemporaryDirectory() as profile:
                proc = subprocess.run(
                    [
                        chromium,
                        *CHROMIUM_FLAGS,
                        f"--user-data-dir={profile}",
                        "--window-size=1400,1000",
                        "--virtual-time-budget=120000",
                        "--dump-dom",
                        harness.resolve().as_uri(),
                    ],
                    capture_output=True,
                    text=True,
                    timeout=600,
                    check=False,
                )
            m = re.search(r'<pre id="probe">([\d.]+)</pre>', proc.stdout)
            if not m:
                raise SystemExit(f"no load time for {page}: {proc.stderr[-1000:]}")
            times.append(float(m.group(1)))
    finally:
        harness.unlink()
    return statistics.median(times)


def verify_stats(out: Path) -> dict:
    """Verify items per patient: as listed before (every eligible / needs-review row, any
    status) and after (open trials only, grouped by fact within each trial; distinct facts
    across the patient's trials; and the items shown unfolded: 3 on each of the top 5)."""
    sys.path.insert(0, str(ROOT))
    from matcher.digest import group_verify, read_verify

    data = json.loads((out / "matches.json").read_text(encoding="utf-8"))
    raw, raw_open, grouped, facts, shown = [], [], [], [], []
    for p in data:
        rows = [t for t in p["trials"] if t["verdict"] != "excluded"]
        raw.append(sum(len(t["verify"]) for t in rows))
        opened = [t for t in rows if t["status"] in OPEN]
        raw_open.append(sum(len(t["verify"]) for t in opened))
        groups = [group_verify(t["verify"]) for t in opened]
        grouped.append(sum(len(g) for g in groups))
        facts.append(len({read_verify(v).fact for t in opened for v in t["verify"]}))
        shown.append(sum(min(3, len(g)) for g in groups[:5]))

    def mm(xs):
        return f"{statistics.mean(xs):.1f} / {max(xs)}" if xs else "-"

    return {
        "raw": mm(raw),
        "raw_open": mm(raw_open),
        "grouped": mm(grouped),
        "facts": mm(facts),
        "shown": mm(shown),
        "exact_dupes": sum(
            len(t["verify"]) - len(set(t["verify"])) for p in data for t in p["trials"]
        ),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="16,200,1000")
    ap.add_argument("--code", type=Path, default=ROOT, help="checkout whose `matcher` runs")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--keep", type=Path, default=None, help="keep the reports in this folder")
    args = ap.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if not chromium:
        raise SystemExit("headless Chromium not found (Debian package 'chromium')")
    print(f"code: {args.code}")
    head = (
        "patients  run s  index KB  all pages MB  largest patient page KB  index load ms  "
        "patient page load ms"
    )
    print(head)
    stats = {}
    with tempfile.TemporaryDirectory() as tmp:
        base = args.keep or Path(tmp)
        for n in (int(x) for x in args.sizes.split(",")):
            work = base / f"n{n}"
            shutil.rmtree(work, ignore_errors=True)
            work.mkdir(parents=True)
            make_patients(work / "patients.csv", n)
            out = work / "out"
            took = run_report(args.code, work / "patients.csv", work, out)
            index = out / "report.html"
            pages = sorted((out / "patients").glob("*.html")) if (out / "patients").is_dir() else []
            total = index.stat().st_size + sum(p.stat().st_size for p in pages)
            # before per-patient pages existed, the index was the whole report
            largest = max(pages, key=lambda p: p.stat().st_size) if pages else index
            t_index = load_ms(chromium, index, args.repeat)
            t_largest = t_index if largest == index else load_ms(chromium, largest, args.repeat)
            print(
                f"{n:>8}  {took:5.1f}  {index.stat().st_size / 1024:8.0f}  "
                f"{total / 1e6:12.2f}  {largest.stat().st_size / 1024:23.0f}  "
                f"{t_index:13.0f}  {t_largest:20.0f}",
                flush=True,
            )
            stats[n] = verify_stats(out)
    print()
    print("verify items per patient, mean / max")
    print(
        "patients  listed before (all statuses)  open trials, ungrouped  grouped by fact  "
        "distinct facts  shown unfolded  exact duplicates"
    )
    for n, s in stats.items():
        print(
            f"{n:>8}  {s['raw']:>28}  {s['raw_open']:>22}  {s['grouped']:>15}  {s['facts']:>14}  "
            f"{s['shown']:>14}  {s['exact_dupes']:>16}"
        )


if __name__ == "__main__":
    main()
