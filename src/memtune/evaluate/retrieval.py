"""The retrieval baseline: top-k guidelines from the store's full-text search, as a system prompt.

Retrieval often beats fine-tuning on new facts (and does on questions people write: see
docs/benchmarks.md), so every evaluation reports it next to the adapter. The notes are rendered by
``memtune.dataset.prompts.system_with_notes``, the same block the RAG-style training
examples and ``memtune serve --rag`` use, so adapter+rag is measured on the prompt
layout it was trained on; the user turn stays exactly what training used.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from memtune.dataset.prompts import DEFAULT_SYSTEM_PROMPT, system_with_notes
from memtune.store import RELEVANCE_RATIO


@dataclass(frozen=True)
class RetrievedNote:
    """One guideline put into the prompt, and its search score."""

    guideline_id: int
    version: int
    name: str
    category: str
    content: str
    score: float

    def to_dict(self, *, with_content: bool = False) -> dict[str, Any]:
        d = {"guideline_id": self.guideline_id, "version": self.version, "name": self.name,
             "category": self.category, "score": round(self.score, 4)}
        if with_content:
            d["content"] = self.content
        return d


def retrieve(store: Any, question: str, context: str = "", *, k: int = 3, f: Any = None,
             min_ratio: float = RELEVANCE_RATIO, min_known: float | None = None) -> list[RetrievedNote]:
    """Up to ``k`` best guidelines for a question (``GuidelineStore.search_question``: the question
    first, its context only as a fallback), best first, without those scoring below
    ``min_ratio`` × the best (0 = always ``k``); none when less than ``min_known`` of the question's
    words occur in the memory (None: the store's default, 0: never)."""
    from memtune.infer import Retrieval

    hits = Retrieval(store, f, k=max(k, 0), min_ratio=min_ratio, min_known=min_known).hits(question, context)
    return [
        RetrievedNote(
            guideline_id=g.id, version=g.version, name=g.name, category=g.category,
            content=g.content, score=score,
        )
        for g, score in hits
    ]


def build_system_prompt(notes: Sequence[RetrievedNote], base: str | None = None) -> str:
    """The system prompt of a retrieval condition: ``base`` (default: the dataset's default
    system prompt, which RAG training examples are built on) followed by the notes block."""
    return system_with_notes(
        [{"name": n.name, "category": n.category, "content": n.content} for n in notes],
        base=base or DEFAULT_SYSTEM_PROMPT,
    )
