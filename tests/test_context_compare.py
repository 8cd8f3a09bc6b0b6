"""bench/context_compare.py: opt-in (medspacy is not a dependency) and its targets."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _bench():
    spec = importlib.util.spec_from_file_location(
        "context_compare", ROOT / "bench" / "context_compare.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_skips_with_a_clear_message_without_medspacy(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "medspacy", None)  # import fails as if not installed
    assert _bench().main([]) == 0
    out = capsys.readouterr().out
    assert "skipped: medspacy is not installed" in out


def test_targets_are_what_the_parser_matched():
    from matcher.eligibility import parse_line
    from matcher.vocab import load_vocab

    bench, vocab = _bench(), load_vocab()
    crits = parse_line("Prior treatment with trabectedin", "exclusion", vocab=vocab)
    c = next(c for c in crits if c.type == "prior_therapy_excluded")
    assert [c.text[a:b].lower() for a, b in bench.target_spans(c, vocab)] == ["trabectedin"]
    crits = parse_line("ECOG performance status 0-1", "inclusion", vocab=vocab)
    c = next(c for c in crits if c.type == "performance_status")
    got = {c.text[a:b].lower() for a, b in bench.target_spans(c, vocab)}
    assert "ecog" in got
