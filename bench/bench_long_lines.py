"""Criteria parsing time on hostile lines (issue 16, defect 5): a long run of digits, a
diagnosis repeated, a realistic line repeated, at growing lengths. Prints seconds per line;
nothing is asserted (a line over ``MAX_LINE_CHARS`` is listed to read, not parsed).

    python bench/bench_long_lines.py
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SHAPES = {
    "digits": "1",
    "diagnosis repeated": "leiomyosarcoma ",
    "criteria repeated": "Patients with leiomyosarcoma or synovial sarcoma, ECOG 0-1, ANC >= "
    "1500/mm3, prior doxorubicin within 4 weeks; ",
}


def main() -> int:
    from matcher.eligibility.parse import MAX_LINE_CHARS, parse_line

    parse_line("warm up", "inclusion")
    print(f"line cap: {MAX_LINE_CHARS:,} characters")
    print(f"{'shape':22s} {'chars':>8s} {'seconds':>8s}  parsed as")
    for name, unit in SHAPES.items():
        for n in (1_000, 2_500, MAX_LINE_CHARS, 10_000, 50_000):
            line = (unit * (n // len(unit) + 1))[:n]
            t0 = time.perf_counter()
            crits = parse_line(line, "exclusion")
            dt = time.perf_counter() - t0
            print(f"{name:22s} {n:8,d} {dt:8.3f}  {crits[0].type}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
