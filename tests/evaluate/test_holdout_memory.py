"""The hand-written benchmark probes stay usable: the held-out memory ingests cleanly, and each
hand-written probe (held-out memory, and the development set for the example memory) is
answerable from what ingest stored (a probe whose keywords are in no guideline would measure
nothing but the probe file's own mistakes)."""

from __future__ import annotations

from pathlib import Path

from memtune.evaluate.probes import load_probe_file
from memtune.evaluate.scoring import normalize, usable_keywords
from memtune.ingest import ingest
from memtune.store import GuidelineStore

ROOT = Path(__file__).resolve().parents[2]
HOLDOUT = ROOT / "benchmarks" / "holdout"


def test_holdout_memory_ingests_and_every_probe_is_answerable_from_the_store(tmp_path):
    store = GuidelineStore(tmp_path / "h.db")
    report = ingest([HOLDOUT / "memory"], store)
    guidelines = store.query()
    assert len(guidelines) >= 20 and not report.secrets
    kinds = {t for g in guidelines for t in g.tags if t.startswith("kind:")}
    assert kinds == {"kind:cursorrules", "kind:copilot", "kind:memory-bank"}
    assert_answerable(guidelines, HOLDOUT / "probes.jsonl")


def test_every_development_probe_is_answerable_from_the_example_memory(tmp_path):
    store = GuidelineStore(tmp_path / "e.db")
    ingest([ROOT / "examples" / "memtune"], store)
    assert_answerable(store.query(), ROOT / "benchmarks" / "dev" / "probes.jsonl")


def assert_answerable(guidelines: list, path: Path) -> None:
    texts = [normalize(f"{g.name} {g.content}").replace("`", "") for g in guidelines]
    probes = load_probe_file(path)
    assert len(probes) >= 20
    for p in probes:
        kws = [normalize(k).replace("`", "") for k in usable_keywords(p.expected_keywords)]
        assert kws, p.question
        assert any(all(k in t for k in kws) for t in texts), f"no single guideline answers {p.question!r}"
