"""Golden snapshots: every note of the shipped example memory (and two more memories) → the
topic, questions, value questions, negatives, probes and answer forms the exporter builds for it.

The recipe's measured quality rests on these exact strings, so any change to question
generation must show up in review as a diff of ``tests/dataset/golden/*.json``. After an
intended change, regenerate and review the diff:

    MEMTUNE_UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/dataset/test_golden.py -q
"""

from __future__ import annotations

import difflib
import json
import os
import random
from pathlib import Path
from typing import Any

import pytest

from memtune.dataset.answers import forms
from memtune.dataset.examples import prepare
from memtune.dataset.negatives import negatives
from memtune.dataset.probes import generate_probes
from memtune.dataset.questions import train_questions
from memtune.dataset.unknown import UNKNOWN_TOPICS, unknown_questions
from memtune.ingest import ingest
from memtune.store import GuidelineFilter, GuidelineStore

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
UPDATE = os.environ.get("MEMTUNE_UPDATE_GOLDEN") == "1"
SEED = 42  # the export's default seed
QUESTIONS = 24  # per note: the export asks the first examples_per_guideline + 6 (plus value questions)
# name → the paths ingested (one store each, scope "golden" so ids and names don't depend on the checkout)
MEMORIES: dict[str, list[Path]] = {
    "example_memory": [ROOT / "examples" / "memtune"],
    "holdout_memory": [ROOT / "benchmarks" / "holdout" / "memory"],
    "reader_fixtures": sorted(p for p in (ROOT / "tests" / "fixtures" / "readers").iterdir() if p.is_file()),
}


def note_snapshot(g: Any) -> dict[str, Any]:
    """What the exporter derives from one note, seeded as the export seeds it."""
    prep = prepare(g)
    topic, text = prep.topic, prep.text
    rng = random.Random(f"{SEED}:{g.id}")
    questions = train_questions(topic, rng, has_rationale=bool(text.rationale), limit=QUESTIONS)
    negs = negatives(topic, text, prep.bad, rng, priority=g.priority)
    return {
        "note": g.name,
        "category": g.category,
        "content": g.content,
        "topic": {"np": topic.np, "vp": topic.vp, "ger": topic.ger, "vp3": topic.vp3, "polarity": topic.polarity,
                  "symptom": topic.symptom, "situations": [list(s) for s in topic.situations],
                  "alternatives": list(topic.alternatives), "forbidden": list(topic.forbidden)},
        "keywords": list(text.keywords),
        "questions": [f"{q.family}: {q.text}" for q in questions],
        "value_questions": [f"{'probe' if f.probe else 'train'} {f.frame}: {f.text} -> {list(f.keys)}"
                            for f in prep.facts],
        "negatives": [f"{n.family}: {n.question} -> {n.answer}" for n in negs],
        "probes": [f"{p['family']}: {p['question']} -> {p['expected_keywords']}"
                   for p in generate_probes(g, seed=SEED, prepared=prep)],
        "answers": forms(text, topic, g.priority),
    }


def memory_snapshot(paths: list[Path], db: Path) -> list[dict[str, Any]]:
    store = GuidelineStore(db)
    try:
        ingest([str(p) for p in paths], store, scope_id="golden")
        notes = sorted(store.iter_guidelines(GuidelineFilter()), key=lambda g: g.id)
        return [note_snapshot(g) for g in notes]
    finally:
        store.close()


def unknown_snapshot() -> list[str]:
    """Questions about topics no memory covers: built from the same verb inflections."""
    return [f"{u.form}: {u.question} -> {u.answer}" for u in unknown_questions(2 * len(UNKNOWN_TOPICS), seed=SEED)]


def check(name: str, data: Any) -> None:
    path = GOLDEN / f"{name}.json"
    text = json.dumps(data, indent=1, ensure_ascii=False) + "\n"
    if UPDATE:
        GOLDEN.mkdir(exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return
    if not path.is_file():
        pytest.fail(f"{path} is missing: create it with MEMTUNE_UPDATE_GOLDEN=1 pytest {Path(__file__).name}")
    want = path.read_text(encoding="utf-8")
    if text != want:
        diff = "".join(list(difflib.unified_diff(want.splitlines(True), text.splitlines(True), str(path), "now"))[:80])
        pytest.fail(f"generated questions changed for {name}; if intended, rerun with MEMTUNE_UPDATE_GOLDEN=1 "
                    f"and review the diff:\n{diff}")


@pytest.mark.parametrize("name", sorted(MEMORIES))
def test_generated_questions_match_the_golden_snapshot(name, tmp_path):
    snap = memory_snapshot(MEMORIES[name], tmp_path / "memtune.db")
    assert snap, f"{name}: no notes ingested"
    check(name, snap)


def test_unknown_topic_questions_match_the_golden_snapshot():
    check("unknown_topics", unknown_snapshot())
