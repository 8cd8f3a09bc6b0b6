"""A trial never excludes its own patient: count the NOT_METs a trial gives the patient it is
written for (see ``matcher.eligibility.ownpatient``).

    python bench/own_patient.py [PATH ...] [--show N]

PATH: record files or folders (v2 JSON, export arrays, classic XML); default: the bundled
fixture records. Prints the oncology trials checked, the NOT_METs (each a parse error or a
real contradiction in the record), by criterion type, and the first N lines.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    from matcher.eligibility import parse_trial
    from matcher.eligibility.ownpatient import own_patient_survey
    from matcher.records import iter_records
    from matcher.vocab import load_vocab

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("paths", nargs="*", type=Path, default=[ROOT / "fixtures"])
    ap.add_argument("--show", type=int, default=20)
    a = ap.parse_args(argv)
    vocab = load_vocab()
    seen: dict[str, object] = {}
    for path in a.paths:
        for item in iter_records(path):
            try:
                parsed = parse_trial(item.record)
            except Exception:  # noqa: BLE001 - a record without an id is not a trial to check
                continue
            seen[parsed.nct_id] = parsed
    checked, bad = own_patient_survey([seen[k] for k in sorted(seen)], vocab)
    by_type: Counter = Counter(v.criterion.type for r in bad for v in r.not_met)
    trials_with = len(bad)
    lines = [
        f"{r.nct_id} [{v.criterion.type}] {v.criterion.text[:160]!r} -> {v.reason[:120]}"
        for r in bad
        for v in r.not_met
    ]
    total = sum(by_type.values())
    print(
        f"own-patient check: {checked} oncology trials, {total} NOT_MET on their own patient "
        f"({trials_with} trials)"
    )
    for t, n in by_type.most_common():
        print(f"  {t:24s} {n}")
    for line in lines[: a.show]:
        print("  " + line)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
