"""Relevance on labelled sets: which trials are about the patient's cancer.

    python bench/relevance.py tests/blind/set1 [tests/blind/set2 ...] [--show N] [--json OUT]

A set is a folder laid out as ``tests/blind`` describes (one sub-folder per labeller with
``trials/``, ``patients.json`` and ``labels.csv``). For every labelled pair the tool's
relevance tier is read (``not listed`` when relevance hides the trial). Printed per set:

- keep-pairs not listed (the trial is one the patient could join, relevance hides it);
- population-exclude pairs listed (a trial not for this cancer is shown), and how many of
  them at *subtype* tier (an unrelated trial presented as naming the patient's subtype);
- the tier of every listed pair;
- with ``--show N``, the first N pairs of each failing kind, with the evidence.

Statuses are ignored (records are historical), as in ``tests/blind/score.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "blind"))


def tier_of(patient, parsed, pack, vocab) -> tuple[str, str]:
    """(tier or 'not listed', relevance reason) for one pair."""
    from matcher.rank import RankConfig, rank_trials

    res = rank_trials(patient, [parsed], pack, vocab, RankConfig(statuses=None))
    if not res.trials:
        return "not listed", ""
    s = res.trials[0]
    return s.relevance, s.reasons[0] if s.reasons else ""


def measure(root: Path) -> dict:
    from score import load_set

    from matcher.knowledge import load_pack
    from matcher.vocab import load_vocab

    pack, vocab = load_pack(), load_vocab()
    trials, patients, labels = load_set(root)
    keep = pop_excl = 0
    hidden, shown_pop, shown_pop_subtype = [], [], []
    tiers: Counter = Counter()
    for row in labels:
        p, t = patients.get(row["patient_id"]), trials.get(row["nct_id"])
        if p is None or t is None or row["label"] not in ("keep", "exclude"):
            continue
        tier, why = tier_of(p, t, pack, vocab)
        if tier != "not listed":
            tiers[tier] += 1
        item = {
            "patient": p.id,
            "diagnosis": p.diagnosis,
            "nct": t.nct_id,
            "tier": tier,
            "why": why,
            "label": row.get("reason", ""),
        }
        if row["label"] == "keep":
            keep += 1
            if tier == "not listed":
                hidden.append(item)
        elif (row.get("basis") or "") == "population":
            pop_excl += 1
            if tier != "not listed":
                shown_pop.append(item)
                if tier == "subtype":
                    shown_pop_subtype.append(item)
    return {
        "set": str(root),
        "keep": keep,
        "keep_not_listed": len(hidden),
        "population_exclude": pop_excl,
        "population_listed": len(shown_pop),
        "population_listed_subtype": len(shown_pop_subtype),
        "tiers": dict(sorted(tiers.items())),
        "hidden": hidden,
        "shown_population": shown_pop,
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sets", nargs="+", type=Path)
    ap.add_argument("--show", type=int, default=0)
    ap.add_argument("--json", type=Path)
    a = ap.parse_args(argv)
    out = []
    for root in a.sets:
        r = measure(root)
        out.append(r)
        k, h = r["keep"], r["keep_not_listed"]
        print(
            f"{r['set']}: keep-pairs not listed {h}/{k} = {100 * h / max(k, 1):.1f}%; "
            f"population-exclude pairs listed {r['population_listed']}/{r['population_exclude']}, "
            f"at subtype tier {r['population_listed_subtype']}; tiers {r['tiers']}"
        )
        for kind in ("hidden", "shown_population"):
            for it in r[kind][: a.show]:
                print(
                    f"  {kind} {it['patient']} ({it['diagnosis']}) {it['nct']} [{it['tier']}] "
                    f"{it['why'][:140]} | label: {it['label'][:120]}"
                )
    if a.json:
        a.json.write_text(json.dumps(out, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
