"""The shipped example memory exported with `memtune run`'s defaults: what the quality targets rest on.

Each test fails if one property the adapter's recall depends on breaks: one short system
prompt that the bundle names, every answer carrying its guideline's probe keywords, a
small share of "not in memory" examples the evaluation reads as admitting, and modest
retrieval examples.
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import pytest

from memtune.dataset import ExportConfig, export_guidelines_as_lora
from memtune.dataset.prompts import DEFAULT_SYSTEM_PROMPT, NOTES_HEADER
from memtune.dataset.unknown import UNKNOWN_TOPICS
from memtune.evaluate.controls import (
    ControlTopic,
    classify_control,
    memory_texts_from_store,
    select_controls,
)
from memtune.evaluate.scoring import keyword_recall
from memtune.recipes import default_recipe

DEFAULT_EXPORT, DEFAULT_TRAIN = dict(default_recipe().export), dict(default_recipe().train)
from memtune.store import GuidelineStore

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "memtune"


@pytest.fixture(scope="module")
def bundle(tmp_path_factory):
    from memtune.ingest import ingest

    tmp = tmp_path_factory.mktemp("example-memory")
    store = GuidelineStore(tmp / "m.db")
    ingest([EXAMPLE], store)
    res = export_guidelines_as_lora(store, ExportConfig(output_path=tmp / "bundle", **DEFAULT_EXPORT))
    assert res.success, res.error
    records = [json.loads(line) for name in ("train.jsonl", "eval.jsonl")
               for line in (tmp / "bundle" / name).read_text(encoding="utf-8").splitlines()]
    probes = [json.loads(line) for line in (tmp / "bundle" / "probes.jsonl").read_text(encoding="utf-8").splitlines()]
    meta = json.loads((tmp / "bundle" / "metadata.json").read_text(encoding="utf-8"))
    texts = memory_texts_from_store(store)
    yield {"records": records, "probes": probes, "meta": meta, "stats": res.stats, "texts": texts}
    store.close()


def test_one_short_system_prompt_and_the_bundle_names_it(bundle):
    from memtune.train.data import default_system_prompt

    assert bundle["meta"]["system_prompt"] == DEFAULT_SYSTEM_PROMPT
    assert default_system_prompt(bundle["meta"]) == DEFAULT_SYSTEM_PROMPT  # what train/eval/serve ask under
    assert len(DEFAULT_SYSTEM_PROMPT) <= 120
    for r in bundle["records"]:
        system = r["messages"][0]["content"]
        if r["metadata"]["rag"] == "none":
            assert system == DEFAULT_SYSTEM_PROMPT
        else:
            assert system.startswith(DEFAULT_SYSTEM_PROMPT + "\n\n" + NOTES_HEADER)


def test_every_answer_carries_every_probe_keyword_of_its_guideline(bundle):
    expected: dict[int, set[str]] = defaultdict(set)
    for p in bundle["probes"]:
        expected[p["guideline_id"]].update(p["expected_keywords"])
    assert len(expected) >= 45
    checked = 0
    for r in bundle["records"]:
        md = r["metadata"]
        if md["kind"] != "memory":
            continue
        keywords = sorted(expected.get(md["guideline_id"], ()))
        if keywords:  # negatives too: "No, …" followed by the whole right way
            assert keyword_recall(r["messages"][-1]["content"], keywords) == 1.0, (md["name"], md["answer_form"])
            checked += 1
    assert checked >= 0.7 * len(bundle["records"])


def test_not_in_memory_examples_admit_the_gap_and_stay_out_of_probes(bundle):
    records = bundle["records"]
    unknown = [r for r in records if r["metadata"]["kind"] == "unknown"]
    share = DEFAULT_EXPORT["control_fraction"]
    assert 0.6 * share <= len(unknown) / len(records) <= 1.6 * share
    assert bundle["stats"]["unknown_examples"] == len(unknown)
    for r in unknown:
        question, answer = r["messages"][1]["content"].split("\n\nContext:")[0], r["messages"][-1]["content"]
        verdict = classify_control(answer, question)
        assert verdict.label == "admits", (question, answer, verdict)
        assert r["metadata"]["guideline_id"] is None
    per_topic = Counter(r["metadata"]["name"] for r in unknown)
    asked = set(per_topic)
    # spread round-robin: every topic is asked before any is asked again
    assert max(per_topic.values()) - min(per_topic.values()) <= 1, per_topic
    assert len(asked) >= min(len(unknown), 0.8 * len(UNKNOWN_TOPICS)), "spread over many topics"
    # none of them is about something the memory mentions (the evaluation's own term check)
    as_controls = [ControlTopic(t.np, t.terms) for t in UNKNOWN_TOPICS if t.np in asked]
    _, dropped = select_controls(bundle["texts"], n=len(as_controls), topics=as_controls)
    assert not dropped
    probe_questions = {p["question"] for p in bundle["probes"]}
    assert not probe_questions & {r["messages"][1]["content"] for r in unknown}
    assert all(p["guideline_id"] is not None for p in bundle["probes"])


def test_retrieval_examples_are_a_modest_share_with_few_distractors(bundle):
    records = bundle["records"]
    rag = [r for r in records if r["metadata"]["rag"] != "none"]
    # rag_fraction of the positive examples show notes instead of asking closed-book, and
    # rag_copies adds a notes-in-prompt copy of that share of the remaining ones
    f, c = DEFAULT_EXPORT["rag_fraction"], DEFAULT_EXPORT.get("rag_copies", 0.0)
    share = (f + c * (1 - f)) / (1 + c * (1 - f))
    assert 0.5 * share <= len(rag) / len(records) <= share + 0.1
    for r in rag:
        shown = r["messages"][0]["content"].count("\n\n[")
        assert 1 <= shown <= (3 if r["metadata"]["rag"] == "gold" else 2)


def test_many_phrasings_per_guideline_in_a_small_epoch(bundle):
    by_guideline: dict[int, set[str]] = defaultdict(set)
    chars = 0
    for r in bundle["records"]:
        chars += sum(len(m["content"]) for m in r["messages"])
        if r["metadata"]["kind"] == "memory":
            by_guideline[r["metadata"]["guideline_id"]].add(r["messages"][1]["content"])
    assert min(len(v) for v in by_guideline.values()) >= 8
    # ~4 characters a token: what `memtune run` trains (an epoch times its epochs: 3 x 77.5k, which
    # trained in 485-501 s on two AVX-512 cores) stays near what fits in ten minutes
    assert DEFAULT_TRAIN["epochs"] * chars / 4 <= 250_000, (DEFAULT_TRAIN["epochs"], chars)
