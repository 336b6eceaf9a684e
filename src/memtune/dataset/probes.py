"""Held-out probes: questions in phrasings the adapter never trained on, with keywords to check.

Two kinds per guideline: up to three about its topic (probe-only templates), and one after a
single value it holds, in a frame training never uses ("The worker listens on which port?",
"What am I supposed to use for logging?"), expecting just that value.

Written as ``probes.jsonl`` in seed 000's test-case layout (``question``,
``expected_keywords``, ``context``) plus the guideline's id, version, name and category,
so evaluation can score recall per guideline and per category.
"""

from __future__ import annotations

import random
from typing import Any

from memtune.dataset.examples import Prepared, prepare
from memtune.dataset.keywords import norm
from memtune.dataset.prompts import context_for
from memtune.dataset.questions import probe_questions

MAX_PROBES = 3
FACT_PROBES = 1


def generate_probes(
    guideline: Any,
    *,
    seed: int = 42,
    n: int = MAX_PROBES,
    facts: int = FACT_PROBES,
    prepared: Prepared | None = None,
) -> list[dict[str, Any]]:
    """1–``n`` topic probes plus up to ``facts`` value probes for a guideline; none when it has
    no checkable keyword."""
    prep = prepared or prepare(guideline)
    keywords = list(prep.text.keywords)
    if not keywords:
        return []
    rng = random.Random(f"{seed}:probe:{guideline.id}")
    asked: list[tuple[str, list[str], str]] = []
    for q in probe_questions(prep.topic, rng, max(1, min(n, MAX_PROBES))):
        # A keyword the question already contains proves nothing (the model could echo it).
        expected = [k for k in keywords if norm(k) not in norm(q.text)]
        if expected:
            asked.append((q.text, expected, q.family))
    value_probes = [f for f in prep.facts if f.probe]
    for f in rng.sample(value_probes, min(facts, len(value_probes))):
        expected = _fact_keywords(f.keys, keywords)
        if expected and not any(norm(k) in norm(f.text) for k in expected):
            asked.append((f.text, expected, "fact"))
    return [{
        "question": text,
        "expected_keywords": expected,
        "context": context_for(guideline.category, list(guideline.tags or []), guideline.scope_id, rng),
        "guideline_id": guideline.id,
        "guideline_version": guideline.version,
        "category": guideline.category,
        "name": guideline.name,
        "family": family,
    } for text, expected, family in asked]


def _fact_keywords(keys: tuple[str, ...], keywords: list[str]) -> list[str]:
    """The note's keywords inside the asked value ("go test -race" of "go test -race ./..."),
    else the value itself."""
    out: list[str] = []
    for key in keys:
        inside = [k for k in keywords if norm(k) and norm(k) in norm(key)]
        out.extend(inside or [key])
    return list(dict.fromkeys(out))
