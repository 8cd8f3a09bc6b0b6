"""Score the tool against a blind set labelled by reading.

A set is a folder (``tests/blind/set1``) with one sub-folder per labeller, each holding
``trials/`` (the real registry records, as downloaded), ``patients.json`` (patients written
for those trials) and ``labels.csv`` (``patient_id,nct_id,label,basis,reason``; label
``keep`` or ``exclude``; basis ``none``, ``population``, ``age``, ``sex`` or ``criterion``).
The labels were written by reading the records *before* the tool was run on them.

For every labelled pair the tool's outcome is one of ``shown`` (eligible or needs review),
``excluded`` (a gate or a NOT_MET criterion) or ``not listed`` (relevance: the trial is not
about the patient's cancer). Printed:

- wrong exclusions: keep-pairs the tool excludes or does not list, over all keep-pairs
  (split by cause: a free-text NOT_MET, a structured gate, relevance);
- missed exclusions: exclude-pairs the tool shows, over all exclude-pairs (split by basis);
- every NOT_MET on a keep-pair, by criterion type, with the line, so each can be read.

Usage: ``python tests/blind/score.py tests/blind/set1 [--json OUT] [--quiet]``.
Statuses are ignored (the records are historical): every status is admitted.
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections import Counter
from pathlib import Path


def load_set(root: Path):
    """(parsed trials by NCT id, patients by id, labelled pairs) of one blind set."""
    from matcher.eligibility import parse_trial
    from matcher.patient import read_patients
    from matcher.records import iter_records

    trials, patients, labels = {}, {}, []
    for part in sorted(p for p in root.iterdir() if p.is_dir()):
        tdir = part / "trials"
        if not tdir.is_dir() or not (part / "labels.csv").exists():
            continue
        for item in iter_records(tdir):
            parsed = parse_trial(item.record)
            trials[parsed.nct_id] = parsed
        batch = read_patients(part / "patients.json")
        for err in batch.errors:
            print(f"warning: {part.name}: {err}", file=sys.stderr)
        for p in batch.patients:
            patients[p.id] = p
        with open(part / "labels.csv", newline="", encoding="utf-8") as fh:
            for row in csv.DictReader(fh):
                row = {k.strip(): (v or "").strip() for k, v in row.items() if k}
                row["part"] = part.name
                labels.append(row)
    return trials, patients, labels


def outcome(patient, parsed, pack, vocab):
    """The tool's outcome for one pair: (shown|excluded|not listed, suggestion or None)."""
    from matcher.rank import RankConfig, rank_trials

    res = rank_trials(patient, [parsed], pack, vocab, RankConfig(statuses=None))
    if not res.trials:
        return "not listed", None
    s = res.trials[0]
    return ("excluded" if s.verdict == "excluded" else "shown"), s


def score(root: Path) -> dict:
    from matcher.eligibility import evaluate
    from matcher.knowledge import load_pack
    from matcher.vocab import load_vocab

    pack, vocab = load_pack(), load_vocab()
    trials, patients, labels = load_set(root)
    keep = exclude = 0
    wrong = Counter()  # cause -> count, on keep-pairs
    missed = Counter()  # basis -> count, on exclude-pairs
    by_basis = Counter()
    wrong_lines: list[dict] = []
    missed_pairs: list[dict] = []
    notmet_keep = Counter()
    notmet_excl = Counter()
    skipped = []
    for row in labels:
        p, t = patients.get(row["patient_id"]), trials.get(row["nct_id"])
        if p is None or t is None or row["label"] not in ("keep", "exclude"):
            skipped.append(row)
            continue
        got, s = outcome(p, t, pack, vocab)
        verdicts = evaluate(p, t)
        free_notmet = [
            v for v in verdicts if v.verdict == "NOT_MET" and v.criterion.source == "text"
        ]
        if row["label"] == "keep":
            keep += 1
            for v in free_notmet:
                notmet_keep[v.criterion.type] += 1
            if got == "shown":
                continue
            if got == "not listed":
                cause = "relevance"
            elif s and any(r.startswith(("inclusion:", "exclusion:")) for r in s.excluded_by):
                cause = "free-text NOT_MET"
            else:
                cause = "structured gate"
            wrong[cause] += 1
            wrong_lines.append(
                {
                    "patient": p.id,
                    "nct": t.nct_id,
                    "cause": cause,
                    "label_reason": row.get("reason", ""),
                    "excluded_by": (s.excluded_by if s else []),
                    "lines": [
                        {"type": v.criterion.type, "text": v.criterion.text, "reason": v.reason}
                        for v in free_notmet
                    ],
                }
            )
        else:
            exclude += 1
            basis = row.get("basis") or "criterion"
            by_basis[basis] += 1
            for v in free_notmet:
                notmet_excl[v.criterion.type] += 1
            if got == "shown":
                missed[basis] += 1
                missed_pairs.append(
                    {
                        "patient": p.id,
                        "nct": t.nct_id,
                        "basis": basis,
                        "label_reason": row.get("reason", ""),
                        "verdict": s.verdict if s else None,
                    }
                )
    types = sorted(set(notmet_keep) | set(notmet_excl))
    return {
        "set": str(root),
        "trials": len(trials),
        "patients": len(patients),
        "pairs": keep + exclude,
        "keep": keep,
        "exclude": exclude,
        "wrong_exclusions": sum(wrong.values()),
        "wrong_exclusion_rate": round(sum(wrong.values()) / keep, 4) if keep else None,
        "wrong_by_cause": dict(wrong),
        "missed_exclusions": sum(missed.values()),
        "missed_exclusion_rate": round(sum(missed.values()) / exclude, 4) if exclude else None,
        "missed_by_basis": {b: f"{missed[b]}/{by_basis[b]}" for b in sorted(by_basis)},
        # a NOT_MET on a pair a reader kept is wrong; on an excluded pair it is counted as
        # right (pair-level approximation of per-line precision)
        "notmet_by_type": {
            t: {
                "on_keep_pairs": notmet_keep[t],
                "on_exclude_pairs": notmet_excl[t],
                "precision_approx": round(notmet_excl[t] / (notmet_excl[t] + notmet_keep[t]), 3),
            }
            for t in types
        },
        "skipped_rows": len(skipped),
        "wrong": wrong_lines,
        "missed": missed_pairs,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("set", type=Path)
    ap.add_argument("--json", type=Path, help="write the full result here")
    ap.add_argument("--quiet", action="store_true", help="figures only, no per-pair lines")
    a = ap.parse_args(argv)
    r = score(a.set)
    print(
        f"{r['set']}: {r['trials']} trials, {r['patients']} patients, {r['pairs']} pairs "
        f"({r['keep']} keep, {r['exclude']} exclude; {r['skipped_rows']} rows skipped)"
    )
    print(
        f"wrong exclusions: {r['wrong_exclusions']}/{r['keep']} = "
        f"{100 * r['wrong_exclusions'] / max(1, r['keep']):.1f}% of keep-pairs  {r['wrong_by_cause']}"
    )
    print(
        f"missed exclusions: {r['missed_exclusions']}/{r['exclude']} = "
        f"{100 * r['missed_exclusions'] / max(1, r['exclude']):.1f}% of exclude-pairs  by basis "
        f"{r['missed_by_basis']}"
    )
    print("NOT_MET by type (on keep-pairs = wrong / on exclude-pairs):")
    for t, d in r["notmet_by_type"].items():
        print(
            f"  {t:24s} {d['on_keep_pairs']:4d} / {d['on_exclude_pairs']:4d}  precision≈{d['precision_approx']}"
        )
    if not a.quiet:
        for w in r["wrong"]:
            print(f"\nWRONG {w['patient']} {w['nct']} ({w['cause']}) — label: {w['label_reason']}")
            for e in w["excluded_by"]:
                print(f"   by: {e[:300]}")
        for m in r["missed"]:
            print(
                f"\nMISSED {m['patient']} {m['nct']} ({m['basis']}, tool: {m['verdict']}) — {m['label_reason']}"
            )
    if a.json:
        a.json.write_text(json.dumps(r, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
    raise SystemExit(main())
