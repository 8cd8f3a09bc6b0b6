"""Sample free-text NOT_MET verdicts for reading: NOT_MET precision per criterion type.

    python bench/notmet_sample.py RECORDS [RECORDS ...] --patients DIR --out SAMPLE.json
        [--per-type 20] [--n-patients 250] [--seed 3] [--skip EARLIER.json ...]

RECORDS: record files or folders (v2 JSON, export arrays, classic XML); only oncology
records are used. ``--patients``: a folder searched for ``patients.json`` files (the blind
sets' patients, written by reading records, so their facts are realistic). ``--n-patients``
of them, drawn with ``--seed``, are judged against every record; every free-text NOT_MET is
collected, and per criterion type up to ``--per-type`` distinct lines are drawn, each with
one patient it failed (a random one), its section, parent line, reason and the patient's
profile. ``--skip``: earlier samples whose lines are not drawn again (a fresh sample).

The output is for a reader, who judges each item right / wrong / unsure by reading the line
in its record (``tests/blind/notmet-audit/README.md``). Nothing here scores anything.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _profiles(folder: Path) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for f in sorted(folder.rglob("patients.json")):
        data = json.loads(f.read_text(encoding="utf-8"))
        for p in data if isinstance(data, list) else data.get("patients", []):
            out[p["id"]] = {k: v for k, v in p.items() if k != "id"}
    return out


def main(argv: list[str] | None = None) -> int:
    from matcher.eligibility import Evaluator, is_oncology_trial, parse_trial
    from matcher.patient import read_patients
    from matcher.records import iter_records

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("records", nargs="+", type=Path)
    ap.add_argument("--patients", type=Path, required=True)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--per-type", type=int, default=20)
    ap.add_argument("--n-patients", type=int, default=250)
    ap.add_argument("--seed", type=int, default=3)
    ap.add_argument("--skip", type=Path, nargs="*", default=[])
    a = ap.parse_args(argv)
    rng = random.Random(a.seed)

    parsed = {}
    for path in a.records:
        for item in iter_records(path):
            if item.error is not None:
                continue
            try:
                pt = parse_trial(item.record)
            except Exception:  # noqa: BLE001 - a record without an id is no trial to sample
                continue
            if is_oncology_trial(pt.trial):
                parsed.setdefault(pt.nct_id, pt)
    profiles = _profiles(a.patients)
    patients = []
    for f in sorted(a.patients.rglob("patients.json")):
        patients += read_patients(f).patients
    patients = rng.sample(patients, min(a.n_patients, len(patients)))
    used = set()
    for f in a.skip:
        used |= {x["line"] for x in json.loads(f.read_text(encoding="utf-8"))}

    found: dict[str, dict[str, list]] = defaultdict(lambda: defaultdict(list))
    ev = Evaluator()
    for p in patients:
        for pt in parsed.values():
            for v in ev.evaluate(p, pt):
                c = v.criterion
                if v.verdict == "NOT_MET" and c.source == "text" and c.text not in used:
                    found[c.type][c.text].append((pt.nct_id, c.section, c.context, v.reason, p.id))
    sample = []
    for ctype in sorted(found):
        lines = sorted(found[ctype])
        print(f"{ctype:24} {sum(map(len, found[ctype].values())):7} NOT_METs, {len(lines)} lines")
        for line in rng.sample(lines, min(a.per_type, len(lines))):
            nct, section, context, reason, pid = rng.choice(found[ctype][line])
            sample.append(
                {
                    "item": len(sample) + 1,
                    "type": ctype,
                    "nct": nct,
                    "section": section,
                    "context": context,
                    "line": line,
                    "reason": reason,
                    "patient": pid,
                    "patient_profile": profiles.get(pid, {}),
                }
            )
    a.out.write_text(json.dumps(sample, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{len(sample)} items -> {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
