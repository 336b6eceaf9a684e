"""The held-out benchmark memory stays usable: it ingests cleanly and each hand-written probe
is answerable from what ingest stored (a probe whose keywords are in no guideline would
measure nothing but the probe file's own mistakes)."""

from __future__ import annotations

from pathlib import Path

from memtune.evaluate.probes import load_probe_file
from memtune.evaluate.scoring import normalize, usable_keywords
from memtune.ingest import ingest
from memtune.store import GuidelineStore

HOLDOUT = Path(__file__).resolve().parents[2] / "benchmarks" / "holdout"


def test_holdout_memory_ingests_and_every_probe_is_answerable_from_the_store(tmp_path):
    store = GuidelineStore(tmp_path / "h.db")
    report = ingest([HOLDOUT / "memory"], store)
    guidelines = store.query()
    assert len(guidelines) >= 20 and not report.secrets
    kinds = {t for g in guidelines for t in g.tags if t.startswith("kind:")}
    assert kinds == {"kind:cursorrules", "kind:copilot", "kind:memory-bank"}
    texts = [normalize(f"{g.name} {g.content}").replace("`", "") for g in guidelines]
    probes = load_probe_file(HOLDOUT / "probes.jsonl")
    assert len(probes) >= 20
    for p in probes:
        kws = [normalize(k).replace("`", "") for k in usable_keywords(p.expected_keywords)]
        assert kws, p.question
        assert any(all(k in t for k in kws) for t in texts), f"no single guideline answers {p.question!r}"
