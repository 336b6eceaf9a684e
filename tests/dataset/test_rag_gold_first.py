"""``rag_gold_first``: examples with notes in the prompt list the right note first, as retrieval ranks it."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import memtune.cli.export  # noqa: F401  (registers the command)
from memtune.cli.app import app
from memtune.dataset.examples import generate_examples

runner = CliRunner()


def _shown(guidelines, share: float, seed: int) -> list:
    g, others = guidelines[0], guidelines[1:]
    out = generate_examples(g, 8, seed=seed, include_negative=False, rag_copies=1.0, distractors=others,
                            rag_gold_first=share)
    return [e for e in out if e.rag == "gold" and len(e.note_ids) > 1]


def test_share_one_puts_the_right_note_first_whenever_near_misses_are_shown(guidelines):
    g = guidelines[0]
    first = [e for seed in range(12) for e in _shown(guidelines, 1.0, seed)]
    assert len(first) >= 10
    assert all(e.note_ids[0] == g.id for e in first)
    # the note is in the prompt, and the system prompt lists it before the near misses
    assert all(e.system.index(g.content[:40]) < min(e.system.index(o.content[:40]) for o in guidelines[1:]
                                                    if o.id in e.note_ids) for e in first)
    # off (the default): the right note lands at a random place, after a near miss in some examples
    anywhere = [e for seed in range(12) for e in _shown(guidelines, 0.0, seed)]
    assert any(e.note_ids[0] != g.id for e in anywhere)
    assert all(g.id in e.note_ids for e in anywhere)


def test_share_zero_leaves_the_examples_unchanged(guidelines):
    g, others = guidelines[0], guidelines[1:]
    kw = dict(seed=5, include_negative=True, rag_fraction=0.3, rag_copies=0.5, distractors=others)
    default = generate_examples(g, 8, **kw)
    explicit = generate_examples(g, 8, rag_gold_first=0.0, **kw)
    assert [(e.system, e.question, e.answer) for e in default] == [(e.system, e.question, e.answer) for e in explicit]


def test_cli_flag_env_var_and_validation(store, tmp_path, monkeypatch):
    from memtune.dataset import ExportConfig
    from memtune.errors import ConfigError

    out = tmp_path / "b"
    r = runner.invoke(app, ["export", "--db", str(store.path), "--out", str(out), "-n", "6", "--json",
                            "--rag-copies", "1", "--rag-gold-first", "1"])
    assert r.exit_code == 0, r.output
    assert json.loads((out / "metadata.json").read_text())["config"]["rag_gold_first"] == 1.0
    rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
    # with near misses shown ("[2] ..."), note [1] is the one the answer is about
    multi = [row for row in rows if row["metadata"]["rag"] == "gold" and "\n[2] " in row["messages"][0]["content"]]
    assert multi
    for row in multi:
        assert f"\n[1] {row['metadata']['name']} (" in row["messages"][0]["content"], row["messages"][0]["content"]

    monkeypatch.setenv("MEMTUNE_EXPORT_RAG_GOLD_FIRST", "0.6")
    assert ExportConfig.from_sources(output_path="x").rag_gold_first == 0.6
    monkeypatch.setenv("MEMTUNE_EXPORT_RAG_GOLD_FIRST", "most")
    with pytest.raises(ConfigError, match="MEMTUNE_EXPORT_RAG_GOLD_FIRST"):
        ExportConfig.from_sources(output_path="x")
    with pytest.raises(ConfigError, match="rag gold first 1.5 must be a number in 0..1"):
        ExportConfig(output_path="x", rag_gold_first=1.5)
    before = sorted(p.name for p in out.iterdir())
    r = runner.invoke(app, ["export", "--db", str(store.path), "--out", str(out), "--force", "--rag-gold-first", "2"])
    assert r.exit_code != 0 and "rag gold first 2.0 must be a number in 0..1" in r.output, r.output
    assert sorted(p.name for p in out.iterdir()) == before  # the existing bundle is kept
