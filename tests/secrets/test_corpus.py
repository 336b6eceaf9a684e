"""The credential corpus: every planted value is redacted, every look-alike comes back unchanged.

The corpus is data (tests/secrets/corpus.py); benchmarks/bench_secrets.py prints the same
figures. Recall must be 1.0 and false positives 0: a shape that regresses fails here by name.
"""

from __future__ import annotations

import pytest

from memtune.secrets import redact_secrets
from tests.secrets.corpus import CREDENTIALS, LOOKALIKES


def test_corpus_is_big_enough_and_distinct() -> None:
    assert len(CREDENTIALS) >= 60
    assert len({c.id for c in CREDENTIALS}) == len(CREDENTIALS)
    assert len(set(LOOKALIKES)) == len(LOOKALIKES) >= 40
    for c in CREDENTIALS:  # a planted value must really be in its text, or the test proves nothing
        assert c.values and all(v in c.text for v in c.values), c.id
        assert all(k in c.text for k in c.keep), c.id


@pytest.mark.parametrize("case", CREDENTIALS, ids=[c.id for c in CREDENTIALS])
def test_credential_is_redacted_and_rule_text_kept(case) -> None:
    text = f"# Notes\n\n{case.text}\nafter\n"
    out, findings = redact_secrets(text, "memory.md")
    leaked = [v for v in case.values if v in out]
    assert not leaked, f"{case.id}: value(s) survived redaction"
    for k in case.keep:
        assert k in out, f"{case.id}: rule text {k!r} was lost"
    assert findings and all(f.file == "memory.md" and f.line >= 3 for f in findings)
    assert out.count("\n") == text.count("\n")
    assert out.startswith("# Notes\n\n") and out.endswith("\nafter\n")
    for f in findings:  # findings name type and place only
        assert not any(v in repr(f) for v in case.values)
    assert redact_secrets(out, "memory.md") == (out, [])  # idempotent


@pytest.mark.parametrize("text", LOOKALIKES, ids=[f"lookalike-{i}" for i in range(len(LOOKALIKES))])
def test_lookalike_is_unchanged(text: str) -> None:
    assert redact_secrets(text + "\n", "memory.md") == (text + "\n", [])


def test_whole_corpus_as_one_file() -> None:
    """All shapes in one memory file (sections, tables and fences side by side) still redact
    every value and keep every look-alike: state such as tables and fences must not leak."""
    parts = []
    for i, c in enumerate(CREDENTIALS):
        parts += [f"## Case {i}", c.text, ""]
    for t in LOOKALIKES:
        parts += ["## Look-alike", t, ""]
    text = "\n".join(parts)
    out, _ = redact_secrets(text, "all.md")
    assert [c.id for c in CREDENTIALS if any(v in out for v in c.values)] == []
    for t in LOOKALIKES:
        assert t in out
