"""Which trials each patient is shown, over a whole record collection; and what changed.

    python bench/relevance_listing.py PATIENTS PATH [PATH ...] --out listed.json
    python bench/relevance_listing.py --diff before.json after.json [--sample N] [--seed S]

The first form ranks every record under the PATHs (v2 JSON, export arrays, classic XML; any
status) for every patient and writes, per patient, the trials listed with their tier and the
relevance reason, printing the number listed per patient. The second form compares two such
files (for instance before and after a relevance change) and prints, per patient, the number
listed in each, then a random sample of N newly listed and N newly hidden pairs with the
reasons, for reading.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def listing(patients_path: Path, paths: list[Path]) -> dict:
    from matcher.engine import match_cohort, parse_records
    from matcher.knowledge import load_pack
    from matcher.patient import read_patients
    from matcher.rank import RankConfig
    from matcher.records import iter_records

    seen: dict[str, dict] = {}
    for path in paths:
        for item in iter_records(path):
            if item.error is not None:
                continue
            ident = (item.record.get("protocolSection") or {}).get("identificationModule") or {}
            nct = ident.get("nctId")
            if nct:
                seen.setdefault(nct, item.record)  # the first copy of a duplicated record
    parsed = parse_records([seen[k] for k in sorted(seen)])
    from matcher.vocab import load_vocab

    batch = read_patients(patients_path)
    results = match_cohort(
        batch.patients, parsed, load_pack(), load_vocab(), RankConfig(statuses=None)
    )
    out = {"records": len(parsed), "patients": {}}
    for p, r in zip(batch.patients, results, strict=True):
        out["patients"][p.id] = {
            "diagnosis": p.diagnosis,
            "listed": {
                s.nct_id: {"tier": s.relevance, "reason": s.reasons[0], "title": s.title}
                for s in r.trials
            },
        }
    return out


def diff(before: dict, after: dict, sample: int, seed: int) -> None:
    print(f"records: {before['records']} before, {after['records']} after")
    new, gone = [], []
    for pid, a in after["patients"].items():
        b = before["patients"].get(pid, {"listed": {}})
        la, lb = a["listed"], b["listed"]
        print(f"  {pid:10s} {a['diagnosis'] or '-':40s} listed {len(lb):4d} -> {len(la):4d}")
        new += [(pid, a["diagnosis"], k, la[k]) for k in sorted(set(la) - set(lb))]
        gone += [(pid, a["diagnosis"], k, lb[k]) for k in sorted(set(lb) - set(la))]
    print(f"newly listed pairs: {len(new)}; newly hidden pairs: {len(gone)}")
    print("newly listed by tier:", dict(Counter(x[3]["tier"] for x in new)))
    rng = random.Random(seed)
    for label, items in (("NEW", new), ("HIDDEN", gone)):
        for pid, dx, nct, info in sorted(rng.sample(items, min(sample, len(items)))):
            print(f"{label} {pid} ({dx}) {nct} [{info['tier']}] {info['title'][:70]!r}")
            print(f"     {info['reason'][:200]}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("args", nargs="+")
    ap.add_argument("--out", type=Path)
    ap.add_argument("--diff", action="store_true")
    ap.add_argument("--sample", type=int, default=50)
    ap.add_argument("--seed", type=int, default=12)
    a = ap.parse_args(argv)
    if a.diff:
        b, c = (json.loads(Path(x).read_text(encoding="utf-8")) for x in a.args[:2])
        diff(b, c, a.sample, a.seed)
        return 0
    r = listing(Path(a.args[0]), [Path(x) for x in a.args[1:]])
    for pid, info in r["patients"].items():
        print(f"{pid:10s} {info['diagnosis'] or '-':40s} listed {len(info['listed'])}")
    if a.out:
        a.out.write_text(json.dumps(r, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
