"""NOT_MET precision per criterion type from judged audit files.

    python bench/notmet_tally.py JUDGED.csv [JUDGED.csv ...]

Each file has the header ``item,type,nct,judgement,why`` (``judgement``: right, wrong or
unsure), as a reader writes it for a sample from ``bench/notmet_sample.py``. Prints per type
right / wrong / unsure and precision = right / (right + wrong), then the totals.
"""

from __future__ import annotations

import csv
import sys
from collections import Counter, defaultdict
from pathlib import Path


def tally(paths: list[Path]) -> dict[str, Counter]:
    out: dict[str, Counter] = defaultdict(Counter)
    for path in paths:
        with path.open(newline="", encoding="utf-8") as f:
            for row in csv.DictReader(f):
                out[row["type"]][row["judgement"].strip().lower()] += 1
    return out


def main(argv: list[str] | None = None) -> int:
    paths = [Path(p) for p in (argv if argv is not None else sys.argv[1:])]
    if not paths:
        print(__doc__)
        return 2
    by_type = tally(paths)
    total: Counter = Counter()
    print(f"{'type':24} {'right':>5} {'wrong':>5} {'unsure':>6}  precision")
    for ctype in sorted(by_type):
        c = by_type[ctype]
        total.update(c)
        judged = c["right"] + c["wrong"]
        prec = f"{c['right'] / judged:.2f}" if judged else "-"
        print(f"{ctype:24} {c['right']:5} {c['wrong']:5} {c['unsure']:6}  {prec}")
    judged = total["right"] + total["wrong"]
    prec = f"{total['right'] / judged:.3f}" if judged else "-"
    print(f"{'all':24} {total['right']:5} {total['wrong']:5} {total['unsure']:6}  {prec}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
