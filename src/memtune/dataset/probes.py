"""Held-out probes: questions in phrasings the adapter never trained on, with keywords to check.

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


def generate_probes(
    guideline: Any,
    *,
    seed: int = 42,
    n: int = MAX_PROBES,
    prepared: Prepared | None = None,
) -> list[dict[str, Any]]:
    """1–``n`` probe records for a guideline; none when it has no checkable keyword."""
    prep = prepared or prepare(guideline)
    keywords = list(prep.text.keywords)
    if not keywords:
        return []
    rng = random.Random(f"{seed}:probe:{guideline.id}")
    out = []
    for q in probe_questions(prep.topic, rng, max(1, min(n, MAX_PROBES))):
        # A keyword the question already contains proves nothing (the model could echo it).
        asked = norm(q.text)
        expected = [k for k in keywords if norm(k) not in asked]
        if not expected:
            continue
        out.append({
            "question": q.text,
            "expected_keywords": expected,
            "context": context_for(guideline.category, list(guideline.tags or []), guideline.scope_id, rng),
            "guideline_id": guideline.id,
            "guideline_version": guideline.version,
            "category": guideline.category,
            "name": guideline.name,
            "family": q.family,
        })
    return out
