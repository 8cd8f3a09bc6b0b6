"""medspacy ConText against the clause layer, on the labelled blind sets (opt-in).

    python bench/context_compare.py [SET ...] [--examples N] [--seed S] [--json OUT]

SET: blind-set folders (default: ``tests/blind/set1`` .. ``set4``). Needs medspacy (not a
project dependency: ``pip install medspacy``); without it the script says so and exits 0.

For every typed free-text criterion of the sets' trials it builds a target from what the
parser matched (the criterion's own diagnoses or drugs, else its lab's or type's anchor
words), runs ConText with medspacy's default English rules (sentences by PyRuSH) and keeps
the modifiers ConText attaches to that target (NEGATED_EXISTENCE, POSSIBLE_EXISTENCE,
HYPOTHETICAL, HISTORICAL, FAMILY; the default rules hold no pseudo triggers, counted anyway).

Then each set is scored with ``tests/blind/score.py`` under these variants, by wrapping the
per-criterion verdict function (nothing in the package changes):

- ``a``: the parser as it is;
- ``b``: ConText as a guard: a free-text NOT_MET whose target ConText marks negated (by a
  trigger the polarity rules did not read), possible, hypothetical or family is capped to
  UNKNOWN, quoting the trigger;
- ``b+hist``: the same, HISTORICAL ("history of") capping too;
- ``b;``: ``b`` with a ";" ending ConText's scope as it ends a sentence (a clause for us);
- ``c``: ConText as the modifier judge: an UNKNOWN capped only by left-over *cue* words
  ("if", "may", "or", ...; ``cues`` in ``criteria/clauses.yaml``) whose target ConText finds
  unmodified is restored to NOT_MET (finds exclusions the cue rule misses, if ConText is right);
  ``c-cond`` only where a left-over word is a condition, permission or exception cue,
  ``c-list`` only where none is (lists and examples: "or", "including", "e.g."); ``c;`` is
  ``c`` with ";" ending ConText's scope.

Also printed: the criteria where ConText and the clause layer disagree (ConText marks a
modifier on a criterion read whole; the clause layer left cue words over on a target ConText
finds unmodified), a seeded sample of them, and the time per line of each.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import random
import re
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CAP = ("NEGATED_EXISTENCE", "POSSIBLE_EXISTENCE", "HYPOTHETICAL", "FAMILY")
CATEGORIES = (*CAP, "HISTORICAL")
VARIANTS = ("a", "b", "b+hist", "b;", "c", "c-cond", "c-list", "c;")
# types whose polarity is fixed by their name (a flip there says nothing of a negation read)
_FIXED_POLARITY = ("prior_therapy_required", "prior_therapy_excluded", "max_prior_lines", "washout")
# cues of a condition, permission or exception (the rest of ``cues`` are lists and examples)
_CONDITION_RE = re.compile(
    r"\b(?:if|unless|except\w*|excluding|provided|providing|as long as|when\w*|where|once|until|"
    r"allow\w*|permit\w*|acceptable|accepted|eligible|may|can|could|might|optional\w*|"
    r"regardless|irrespective|but|however|although|though|exceptions?|only|otherwise|whose)\b"
)


def _score_module():
    spec = importlib.util.spec_from_file_location("blind_score", ROOT / "tests/blind/score.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


# ----------------------------------------------------------------------------- targets
def _mention_spans(low: str, mentions) -> list[tuple[int, int]]:
    out = []
    for m in mentions:
        m = m.lower()
        i = low.find(m)
        while i >= 0 and m:
            out.append((i, i + len(m)))
            i = low.find(m, i + 1)
    return out


def target_spans(c, vocab) -> list[tuple[int, int]]:
    """Character spans of ``c.text`` that name what the criterion is about."""
    from matcher.eligibility.clause import LAB_ANCHORS, rules

    text, low = c.text, c.text.lower()
    vals = c.values or {}
    spans: list[tuple[int, int]] = []
    if c.type == "histology" and vals.get("diagnoses"):
        want = set(vals["diagnoses"])
        spans = _mention_spans(low, [m for i, m in vocab.find_diagnoses(text) if i in want])
    elif c.type in ("prior_therapy_excluded", "prior_therapy_required"):
        want_d, want_c = set(vals.get("drugs") or []), set(vals.get("classes") or [])
        ms = [m for i, m in vocab.find_drugs(text) if i in want_d]
        ms += [m for i, m in vocab.find_drug_classes(text) if i in want_c]
        spans = _mention_spans(low, ms)
    if not spans:
        r = rules()
        rx = None
        if c.type == "organ_function" and vals.get("lab") in LAB_ANCHORS:
            rx = re.compile(LAB_ANCHORS[vals["lab"]])
        elif r.anchors.get(c.type) is not None:
            rx = r.anchors[c.type]
        if rx is not None:
            spans = [m.span() for m in rx.finditer(low) if m.end() > m.start()]
        if not spans and r.words.get(c.type) is not None:
            spans = [m.span() for m in r.words[c.type].finditer(low) if m.end() > m.start()]
            spans = [s for s in spans if not r.filler.fullmatch(low[s[0] : s[1]])][:1]
    return spans


class ConTextRunner:
    """medspacy's ConText with its default rules, run on one criterion's targets."""

    def __init__(self, semicolons: bool = False):
        import medspacy  # noqa: F401 - registers the pipeline factories
        import spacy

        try:  # PyRuSH logs every sentence at DEBUG level
            from loguru import logger

            logger.disable("PyRuSH")
        except ImportError:
            pass
        self.nlp = spacy.blank("en")
        self.nlp.add_pipe("medspacy_pyrush")
        self.ctx = self.nlp.add_pipe("medspacy_context", config={"rules": "default"})
        self.pseudo_rules = sum(1 for r in self.ctx.rules if r.direction.upper() == "PSEUDO")
        self.seconds = 0.0
        self.lines: set[str] = set()
        # True: a ";" also ends a sentence (ConText's scope), as it ends a clause for us
        self.semicolons = semicolons

    def modifiers(self, text: str, spans: list[tuple[int, int]]) -> list[dict]:
        """The modifiers ConText attaches to any of ``spans`` (category, trigger, where)."""
        from spacy.util import filter_spans

        t0 = time.perf_counter()
        with self.nlp.select_pipes(enable=["medspacy_pyrush"]):
            doc = self.nlp(text)
        if self.semicolons:
            for tok in doc[:-1]:
                if tok.text in (";", "；"):
                    doc[tok.i + 1].is_sent_start = True
        ents = [doc.char_span(a, b, label="TARGET", alignment_mode="expand") for a, b in spans]
        doc.ents = filter_spans([e for e in ents if e is not None])
        self.ctx(doc)
        out, seen = [], set()
        for ent in doc.ents:
            for m in ent._.modifiers:
                a, b = m.modifier_span
                key = (m.category, a, b)
                if key in seen:
                    continue
                seen.add(key)
                out.append(
                    {
                        "category": m.category,
                        "direction": m.direction,
                        "trigger": doc[a:b].text,
                        "start": doc[a].idx,
                        "end": doc[b - 1].idx + len(doc[b - 1].text),
                        "target_start": ent.start_char,
                    }
                )
        pseudo = [
            m.category
            for m in doc._.context_graph.modifiers
            if m.direction.upper() == "PSEUDO" or "PSEUDO" in m.category.upper()
        ]
        self.seconds += time.perf_counter() - t0
        self.lines.add(text)
        return out + [{"category": "PSEUDO", "trigger": p} for p in pseudo]


# ------------------------------------------------------------------- how our parse reads it
def negation_read_by_parser(c, m: dict) -> bool:
    """The polarity rules read this negation trigger: the criterion's polarity is flipped from
    its section's, or the trigger is a negation word of theirs before the target in the same
    clause (or a "... are excluded" after it)."""
    from matcher.eligibility.text import _CLAUSE_BREAK_RE, _NEG_RE, _POST_EXCLUDE_RE

    base = "require" if c.section == "inclusion" else "exclude"
    if c.polarity != base and c.type not in _FIXED_POLARITY:
        return True
    text = c.text
    trig = text[m["start"] : m["end"]]
    low = text.lower()
    t = m["target_start"]
    if m["start"] >= t:
        return bool(_POST_EXCLUDE_RE.match(low[t:])) or trig.lower() in ("free", ": none", ": no")
    if not _NEG_RE.search(trig):
        return False
    return not any(m["end"] <= b.start() < t for b in _CLAUSE_BREAK_RE.finditer(low))


def cue_only(c) -> bool:
    """Every word the clause layer left over is a cue or filler word (the modifier part)."""
    from matcher.eligibility.clause import _TOKEN_RE, rules

    r = rules()
    if not c.unexplained:
        return False
    for run in c.unexplained:
        low = run.lower()
        mask = [False] * len(low)
        for rx in (r.cues, r.filler):
            for mm in rx.finditer(low):
                for i in range(mm.start(), mm.end()):
                    mask[i] = True
        for tok in _TOKEN_RE.finditer(low):
            if not all(mask[tok.start() : tok.end()]):
                return False
    return True


def unaccounted(c, mods: list[dict], categories) -> list[dict]:
    """ConText modifiers of ``categories`` our parse does not already account for."""
    out = []
    for m in mods:
        if m["category"] not in categories:
            continue
        if m["category"] == "NEGATED_EXISTENCE" and negation_read_by_parser(c, m):
            continue
        out.append(m)
    return out


# ----------------------------------------------------------------------------- variants
def make_wrapper(orig, annot: dict, variant: str, counts: Counter):
    from matcher.eligibility.model import NOT_MET, UNKNOWN, Verdict

    cap_cats = (*CAP, "HISTORICAL") if variant == "b+hist" else CAP
    guard = variant in ("b", "b+hist", "b;")
    judge = variant in ("c", "c;", "c-cond", "c-list")

    def wrapped(p, c, vocab):
        v = orig(p, c, vocab)
        got = annot.get(id(c))
        if got is None or got[0] is not c or c.source != "text":
            return v
        a = got[1]
        if guard and v.verdict == NOT_MET:
            hit = unaccounted(c, a, cap_cats)
            if hit:
                counts[hit[0]["category"]] += 1
                quoted = " … ".join(f"“{m['trigger']}” ({m['category'].lower()})" for m in hit)
                return Verdict(c, UNKNOWN, f"{v.reason}; ConText: {quoted}: verify")
        if judge and v.verdict == UNKNOWN and cue_only(c) and not unaccounted(c, a, CAP):
            cond = any(_CONDITION_RE.search(w.lower()) for w in c.unexplained)
            if (variant == "c-cond" and not cond) or (variant == "c-list" and cond):
                return v
            bare = orig(p, replace(c, unexplained=[]), vocab)
            if bare.verdict == NOT_MET:
                counts["restored"] += 1
                return bare
        return v

    return wrapped


def run_variant(score_mod, root: Path, annot: dict, variant: str) -> tuple[dict, Counter]:
    import matcher.eligibility.verdict as V

    counts: Counter = Counter()
    orig = V._criterion_verdict
    if variant != "a":
        V._criterion_verdict = make_wrapper(orig, annot, variant, counts)
    try:
        return score_mod.score(root), counts
    finally:
        V._criterion_verdict = orig


# ----------------------------------------------------------------------------- main
def annotate(trials: dict, vocab, runner: ConTextRunner) -> tuple[dict, list[dict], Counter]:
    """ConText modifiers per criterion (keyed by ``id``), the disagreements, tallies."""
    annot: dict[int, tuple] = {}
    disagree: list[dict] = []
    tally: Counter = Counter()
    for nct in sorted(trials):
        for c in trials[nct].criteria:
            if c.source != "text" or c.type == "unparsed":
                continue
            tally["typed criteria"] += 1
            spans = target_spans(c, vocab)
            if not spans:
                tally["no target"] += 1
                continue
            mods = runner.modifiers(c.text, spans)
            annot[id(c)] = (c, mods)
            for cat in {m["category"] for m in mods}:
                tally[cat] += 1
            ctx_flags = unaccounted(c, mods, CAP)
            if ctx_flags and not c.unexplained:
                kind = "ConText marks a modifier; clause layer read the line whole"
            elif cue_only(c) and not ctx_flags:
                cond = any(_CONDITION_RE.search(w.lower()) for w in c.unexplained)
                kind = (
                    "clause layer left a condition/permission cue; ConText: target unmodified"
                    if cond
                    else "clause layer left a list cue (or, including, e.g.); ConText: unmodified"
                )
            else:
                continue
            disagree.append(
                {
                    "nct": nct,
                    "type": c.type,
                    "polarity": c.polarity,
                    "section": c.section,
                    "kind": kind,
                    "text": c.text,
                    "target": [c.text[a:b] for a, b in spans],
                    "context": [f"{m['category']}: {m['trigger']}" for m in mods],
                    "unexplained": list(c.unexplained),
                }
            )
    return annot, disagree, tally


def parser_seconds_per_line(roots: list[Path]) -> tuple[float, int]:
    """Our parser's time per criteria line (cache cleared, records re-read)."""
    from matcher.eligibility import clear_cache, parse_trial
    from matcher.records import iter_records

    records = [
        item.record
        for root in roots
        for part in sorted(p for p in root.iterdir() if (p / "trials").is_dir())
        for item in iter_records(part / "trials")
    ]
    clear_cache()
    t0 = time.perf_counter()
    lines = sum(parse_trial(r).n_lines for r in records)
    return (time.perf_counter() - t0) / max(lines, 1), lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("sets", nargs="*", type=Path)
    ap.add_argument("--examples", type=int, default=20, help="disagreements to print")
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--json", type=Path, help="write figures and disagreements here")
    a = ap.parse_args(argv)
    try:
        import medspacy  # noqa: F401
        import spacy  # noqa: F401
    except ImportError:
        print(
            "skipped: medspacy is not installed (it is not a project dependency; "
            "pip install medspacy to run this comparison)"
        )
        return 0
    from matcher.vocab import load_vocab

    roots = a.sets or [ROOT / "tests" / "blind" / f"set{i}" for i in range(1, 5)]
    score_mod = _score_module()
    vocab = load_vocab()
    runner, semi = ConTextRunner(), ConTextRunner(semicolons=True)
    print(f"ConText default rules: {len(runner.ctx.rules)} ({runner.pseudo_rules} pseudo)")
    per_line, n_lines = parser_seconds_per_line(roots)
    result: dict = {"sets": {}, "disagreements": []}
    all_disagree: list[dict] = []
    print("all figures TUNED (every blind set has been used for tuning)")
    print(
        f"{'set':6s} {'variant':7s} {'wrong exclusions':>18s} {'missed exclusions':>19s}  verdict calls changed"
    )
    for root in roots:
        trials, _patients, _labels = score_mod.load_set(root)
        annot, disagree, tally = annotate(trials, vocab, runner)
        annot_semi, disagree_semi, _ = annotate(trials, vocab, semi)
        lines_disagree = len({(d["nct"], d["text"]) for d in disagree})
        all_disagree += [{**d, "set": root.name} for d in disagree]
        rows = {}
        for variant in VARIANTS:
            r, counts = run_variant(
                score_mod, root, annot_semi if variant.endswith(";") else annot, variant
            )
            rows[variant] = {
                "wrong": f"{r['wrong_exclusions']}/{r['keep']}",
                "missed": f"{r['missed_exclusions']}/{r['exclude']}",
                "wrong_by_cause": r["wrong_by_cause"],
                "changed_criteria_verdicts": dict(counts),
                "wrong_pairs": sorted(f"{w['patient']} {w['nct']}" for w in r["wrong"]),
                "missed_pairs": sorted(f"{m['patient']} {m['nct']}" for m in r["missed"]),
            }
            print(
                f"{root.name:6s} {variant:7s} {rows[variant]['wrong']:>10s} "
                f"({100 * r['wrong_exclusion_rate']:4.1f}%) {rows[variant]['missed']:>10s} "
                f"({100 * r['missed_exclusion_rate']:4.1f}%)  {dict(counts)}  [tuned]"
            )
        base_w, base_m = set(rows["a"]["wrong_pairs"]), set(rows["a"]["missed_pairs"])
        for variant in VARIANTS[1:]:
            w, m = set(rows[variant]["wrong_pairs"]), set(rows[variant]["missed_pairs"])
            print(
                f"       {variant}: wrong +{len(w - base_w)} -{len(base_w - w)}, "
                f"missed +{len(m - base_m)} -{len(base_m - m)}"
            )
        print(
            f"       typed criteria {tally['typed criteria']}, with a ConText target "
            f"{len(annot)}; ConText marks "
            + ", ".join(f"{k} {tally[k]}" for k in (*CATEGORIES, "PSEUDO"))
            + f"; disagreements {len(disagree)} criteria on {lines_disagree} lines "
            f"({len(disagree_semi)} criteria with ';' ending ConText's scope)"
        )
        result["sets"][root.name] = {"variants": rows, "tally": dict(tally)}
    ctx_per_line = runner.seconds / max(len(runner.lines), 1)
    kinds = Counter(d["kind"] for d in all_disagree)
    print(f"disagreements, all sets: {len(all_disagree)} criteria: {dict(kinds)}")
    print(
        f"time per line: parser {1000 * per_line:.2f} ms ({n_lines} lines, whole parse); "
        f"ConText {1000 * ctx_per_line:.2f} ms per line (all its runs on the line: tokenizer, "
        f"sentences, ConText; {len(runner.lines)} lines with a typed criterion)"
    )
    # the sample is drawn from each kind in turn (the list-cue kind outnumbers the others)
    rng = random.Random(a.seed)
    pools = [[d for d in all_disagree if d["kind"] == k] for k in sorted(kinds)]
    for pool in pools:
        rng.shuffle(pool)
    sample: list[dict] = []
    while len(sample) < min(a.examples, len(all_disagree)):
        for pool in pools:
            if pool and len(sample) < a.examples:
                sample.append(pool.pop())
    for i, d in enumerate(sample, 1):
        print(
            f"\n[{i}] {d['set']} {d['nct']} {d['section']} {d['type']} ({d['polarity']}) "
            f"— {d['kind']}\n    {d['text'][:400]}\n    target {d['target'][:4]}; "
            f"ConText {d['context']}; left over {d['unexplained']}"
        )
    if a.json:
        result["disagreements"] = all_disagree
        result["sample"] = sample
        result["seconds_per_line"] = {"parser": per_line, "context": ctx_per_line}
        a.json.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
