""""Not in memory" examples: disjoint from evaluation's controls, admitting, no invented specifics."""

from __future__ import annotations

import json
import re

import pytest

from memtune.dataset import ExportConfig, export_guidelines_as_lora
from memtune.dataset.questions import PROBE_MARKERS
from memtune.dataset.unknown import (
    ANSWERS,
    DETAIL_QUESTIONS,
    UNKNOWN_TOPICS,
    answer_for,
    mentioned_topics,
    unknown_questions,
)
from memtune.errors import ConfigError
from memtune.evaluate.controls import CONTROL_TOPICS, classify_control, find_specifics

from .conftest import GUIDELINES


def _has(term: str, text: str) -> bool:
    return re.search(r"(?<![a-z0-9])" + re.escape(term.lower()) + r"(?![a-z0-9])", text.lower()) is not None


def test_topics_are_disjoint_from_the_evaluation_controls():
    for t in UNKNOWN_TOPICS:
        text = " ".join([t.np, t.vp or "", *DETAIL_QUESTIONS.get(t.np, ())])
        for c in CONTROL_TOPICS:
            assert not any(_has(term, text) for term in c.terms), (t.np, c.question)
            assert not any(_has(term, c.question) for term in t.terms), (t.np, c.question)
    qs = {q.question for q in unknown_questions(500, seed=1)}
    assert not qs & {c.question for c in CONTROL_TOPICS}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_answer_is_read_as_admitting_by_the_control_classifier(seed):
    qs = unknown_questions(120, seed=seed)
    assert len(qs) == 120 and len({q.question for q in qs}) == 120
    for q in qs:
        verdict = classify_control(q.answer, q.question)
        assert verdict.label == "admits", (q.question, q.answer, verdict)
        assert not any(m in q.question.lower() for m in PROBE_MARKERS)
    for k in range(len(ANSWERS)):  # every wording, also when the topic is not restated
        t = UNKNOWN_TOPICS[0]
        assert classify_control(answer_for(t, "What about it?", k)).label == "admits"
        assert not find_specifics(answer_for(t, "What about it?", k))


def test_specific_value_questions_are_asked_early_for_every_topic():
    """Controls ask for one value ("Which port ...?"); training must refuse that shape too."""
    assert set(DETAIL_QUESTIONS) == {t.np for t in UNKNOWN_TOPICS}
    details = {q for qs in DETAIL_QUESTIONS.values() for q in qs}
    qs = unknown_questions(2 * len(UNKNOWN_TOPICS), seed=3)
    asked = [q for q in qs if q.question in details]
    assert {q.topic.np for q in asked} == {t.np for t in UNKNOWN_TOPICS}  # each topic, within two rounds
    assert len(asked) < len(qs)  # the memory-style templates are still there
    for q in asked:
        assert classify_control(q.answer, q.question).label == "admits"


def test_deterministic_and_topics_the_memory_mentions_are_skipped():
    a = unknown_questions(30, seed=5)
    assert a == unknown_questions(30, seed=5) and a != unknown_questions(30, seed=6)
    redis = next(i for i, t in enumerate(UNKNOWN_TOPICS) if "redis" in t.terms)
    assert redis in mentioned_topics("We cache sessions in Redis.")
    assert not mentioned_topics("Run `make test-fast` before committing.")
    assert all(q.topic is not UNKNOWN_TOPICS[redis] for q in unknown_questions(200, seed=5, excluded={redis}))


def test_export_adds_them_only_when_asked(store, tmp_path):
    def read(p):
        return [json.loads(line) for line in p.read_text(encoding="utf-8").splitlines()]

    off = export_guidelines_as_lora(store, ExportConfig(output_path=tmp_path / "off", control_fraction=0.0))
    assert off.stats["unknown_examples"] == 0
    on = export_guidelines_as_lora(store, ExportConfig(output_path=tmp_path / "on", control_fraction=0.1))
    rows = read(tmp_path / "on" / "train.jsonl") + read(tmp_path / "on" / "eval.jsonl")
    unknown = [r for r in rows if r["metadata"]["kind"] == "unknown"]
    assert unknown and on.stats["unknown_examples"] == len(unknown)
    assert 0.06 <= len(unknown) / len(rows) <= 0.14
    assert all(r["metadata"]["family"] == "unknown" and not r["metadata"]["is_negative"] for r in unknown)
    probes = (tmp_path / "on" / "probes.jsonl").read_text(encoding="utf-8")
    assert (tmp_path / "off" / "probes.jsonl").read_text(encoding="utf-8") == probes
    mentioned = mentioned_topics(" ".join(f"{g['name']} {g['content']} {' '.join(g['tags'])}" for g in GUIDELINES))
    assert mentioned, "the fixture memory mentions some topics (e.g. npm/React ones)"
    asked = {i for i, t in enumerate(UNKNOWN_TOPICS) for r in unknown if t.np == r["metadata"]["name"]}
    assert asked and not asked & mentioned
    with pytest.raises(ConfigError):
        ExportConfig(output_path=tmp_path / "x", control_fraction=0.9)


def test_control_rag_fraction_sets_how_many_are_asked_with_near_miss_notes_shown(store, tmp_path):
    """0 keeps every "not in memory" example closed-book; 1 shows each the notes the store's search
    returns for it (when it returns any), and the answer still admits the gap."""
    from memtune.dataset.prompts import NOTES_HEADER

    def unknown_rows(name, share):
        export_guidelines_as_lora(store, ExportConfig(output_path=tmp_path / name, control_fraction=0.1,
                                                      control_rag_fraction=share))
        rows = [json.loads(line) for f in ("train.jsonl", "eval.jsonl")
                for line in (tmp_path / name / f).read_text(encoding="utf-8").splitlines()]
        return [r for r in rows if r["metadata"]["kind"] == "unknown"]

    none = unknown_rows("none", 0.0)
    assert none and all(r["metadata"]["rag"] == "none" for r in none)
    assert not any(NOTES_HEADER in r["messages"][0]["content"] for r in none)
    every = unknown_rows("every", 1.0)
    shown = [r for r in every if r["metadata"]["rag"] == "distractors"]
    assert len(shown) >= len(every) // 2, "the search finds near misses for most of them"
    assert all(NOTES_HEADER in r["messages"][0]["content"] for r in shown)
    assert all(classify_control(r["messages"][-1]["content"], r["messages"][-2]["content"]).label == "admits"
               for r in shown)
    with pytest.raises(ConfigError, match="control rag fraction"):
        ExportConfig(output_path=tmp_path / "x", control_rag_fraction=1.5)
