"""Measure criteria parsing over real records: errors, share of lines typed, per type.

Usage: python bench/measure_criteria.py [--patients PATH] [DIR_OR_FILE ...]
(defaults: fixtures/trials, fixtures/patients)

Reads every record with ``matcher.records.iter_records`` (v2 JSON single records, /studies
pages, export arrays and classic XML), parses it with ``matcher.eligibility.parse_trial``
and prints: records read / unreadable / parse errors (must be 0), criteria lines, the share
of lines with at least one typed criterion, and per type the number and share of lines
carrying it. Duplicate NCT ids (same study in several files) are counted once.

Speed: parse time per record (cold cache, then cached), and evaluation time per
patient-trial pair over every patient in ``--patients`` x every parsed record, with
``evaluate`` and with the memoizing ``Evaluator`` (whose verdicts are checked equal).
"""

from __future__ import annotations

import sys
import time
import traceback
from collections import Counter
from pathlib import Path

from matcher.eligibility import (
    TYPES,
    Evaluator,
    clear_cache,
    evaluate,
    is_oncology_trial,
    parse_trial,
)
from matcher.patient import read_patients
from matcher.records import iter_records


def measure_speed(paths: list[Path], patients_path: Path) -> dict:
    """ms per record (cold and cached parse) and µs per pair (``evaluate`` / ``Evaluator``)."""
    records = [it.record for p in paths for it in iter_records(p) if it.error is None]
    clear_cache()
    t0 = time.perf_counter()
    parsed = [parse_trial(r) for r in records]
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    for r in records:
        parse_trial(r)
    cached = time.perf_counter() - t0
    files = [patients_path] if patients_path.is_file() else sorted(patients_path.iterdir())
    patients = [
        p for f in files if f.suffix in (".json", ".csv") for p in read_patients(f).patients
    ]
    pairs = len(patients) * len(parsed)
    # timed without keeping the verdicts (holding millions of objects skews the timing)
    t0 = time.perf_counter()
    for p in patients:
        for pt in parsed:
            evaluate(p, pt)
    t_plain = time.perf_counter() - t0
    ev = Evaluator()
    t0 = time.perf_counter()
    for p in patients:
        for pt in parsed:
            ev.evaluate(p, pt)
    t_memo = time.perf_counter() - t0
    identical = all(ev.evaluate(p, pt) == evaluate(p, pt) for p in patients for pt in parsed)
    return {
        "records": len(records),
        "parse_ms_cold": 1000 * cold / max(len(records), 1),
        "parse_ms_cached": 1000 * cached / max(len(records), 1),
        "patients": len(patients),
        "pairs": pairs,
        "evaluate_us": 1e6 * t_plain / max(pairs, 1),
        "evaluator_us": 1e6 * t_memo / max(pairs, 1),
        "identical": identical,
        "memo_hit_rate": ev.hits / max(ev.hits + ev.misses, 1),
    }


def measure(paths: list[Path]) -> dict:
    """Parse every record under ``paths``; return the counts (see module docstring)."""
    clear_cache()
    seen: set[str] = set()
    stats = Counter()
    per_type: Counter = Counter()
    errors: list[str] = []
    t0 = time.perf_counter()
    for path in paths:
        for item in iter_records(path):
            if item.error is not None:
                stats["unreadable"] += 1
                continue
            stats["records"] += 1
            try:
                parsed = parse_trial(item.record)
            except Exception as exc:  # noqa: BLE001 - the point is to count every failure
                stats["parse_errors"] += 1
                errors.append(f"{item.source}: {exc!r}\n{traceback.format_exc(limit=3)}")
                continue
            if parsed.nct_id in seen:
                continue
            seen.add(parsed.nct_id)
            stats["unique"] += 1
            if parsed.trial.criteria_text:
                stats["with_criteria"] += 1
            stats["lines"] += parsed.n_lines
            stats["typed_lines"] += parsed.n_typed_lines
            if is_oncology_trial(parsed.trial):
                stats["onco_trials"] += 1
                stats["onco_lines"] += parsed.n_lines
                stats["onco_typed_lines"] += parsed.n_typed_lines
            by_line: dict[str, set[str]] = {}
            for c in parsed.criteria:
                if c.source == "text":
                    by_line.setdefault(f"{c.section}|{c.text}", set()).add(c.type)
            for types in by_line.values():
                for t in types:
                    per_type[t] += 1
    stats["seconds"] = round(time.perf_counter() - t0, 2)
    return {"stats": stats, "per_type": per_type, "errors": errors}


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent
    patients_path = root / "fixtures" / "patients"
    if "--patients" in argv:
        i = argv.index("--patients")
        patients_path = Path(argv[i + 1])
        argv = argv[:i] + argv[i + 2 :]
    paths = [Path(a) for a in argv] or [root / "fixtures" / "trials"]
    res = measure(paths)
    s, per = res["stats"], res["per_type"]
    total = s["records"]
    print(
        f"records read: {total} ({s['unique']} unique NCT ids, {s['with_criteria']} with criteria text)"
    )
    print(f"unreadable files/entries: {s['unreadable']}")
    ok = total - s["parse_errors"]
    print(f"parsed without error: {ok}/{total} ({100.0 * ok / max(total, 1):.1f}%)")
    lines = s["lines"]
    print(
        f"criteria lines: {lines}; typed: {s['typed_lines']} ({100.0 * s['typed_lines'] / max(lines, 1):.1f}%)"
    )
    ol = s["onco_lines"]
    print(
        f"oncology trials: {s['onco_trials']}; their lines: {ol}; typed: {s['onco_typed_lines']} "
        f"({100.0 * s['onco_typed_lines'] / max(ol, 1):.1f}%)"
    )
    print(f"time: {s['seconds']} s")
    print(f"{'type':<24}{'lines':>7}{'share':>8}")
    for t in TYPES:
        print(f"{t:<24}{per[t]:>7}{100.0 * per[t] / max(lines, 1):>7.1f}%")
    sp = measure_speed(paths, patients_path)
    print(
        f"parse: {sp['parse_ms_cold']:.2f} ms/record cold, {sp['parse_ms_cached']:.3f} ms/record "
        f"cached ({sp['records']} records)"
    )
    print(
        f"evaluate: {sp['evaluate_us']:.1f} us/pair; Evaluator: {sp['evaluator_us']:.1f} us/pair "
        f"({sp['patients']} patients x {sp['records']} records = {sp['pairs']} pairs; memo hit "
        f"rate {100 * sp['memo_hit_rate']:.0f}%; identical verdicts: {sp['identical']})"
    )
    for e in res["errors"][:20]:
        print("ERROR", e)
    return 1 if s["parse_errors"] or not sp["identical"] else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
