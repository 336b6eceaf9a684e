"""``--rag``: put the store's best-matching guidelines in front of the model.

The adapter has learned the guidelines it was trained on; retrieval adds ones
written since, and lets a reader see which notes an answer leaned on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from memtune.infer import Retrieval
from memtune.serve.engine import Message



@dataclass
class Hit:
    id: int
    name: str
    score: float
    content: str
    category: str = "general"

    def brief(self) -> dict[str, Any]:
        return {"id": self.id, "name": self.name, "score": round(self.score, 4)}


class Retriever(Retrieval):
    """:class:`memtune.infer.Retrieval` for the servers: hits as :class:`Hit` (id, name, score)."""

    def __init__(self, store: Any, k: int = 3, guideline_filter: Any = None, min_ratio: float | None = None,
                 min_known: float | None = None) -> None:
        if k < 1:
            raise ValueError("rag k must be at least 1")
        super().__init__(store, guideline_filter, k=k, min_ratio=min_ratio, min_known=min_known)

    def search(self, query: str) -> list[Hit]:  # type: ignore[override]
        """Notes for a user turn; a trailing "Context: …" line (memtune's question layout) is
        searched only when the question before it matches nothing (see GuidelineStore.search_question)."""
        return [Hit(g.id, g.name, s, g.content, g.category) for g, s in super().search(query)]


def notes_block(hits: list[Hit]) -> str:
    """The notes exactly as the retrieval-style training examples show them."""
    from memtune.dataset.prompts import render_notes

    return render_notes(hits)


def with_guidelines(messages: list[Message], hits: list[Hit], default_system: str | None) -> list[Message]:
    """``messages`` with the hits appended to the system prompt (one is added if missing)."""
    if not hits:
        return messages
    block = notes_block(hits)
    out = [dict(m) for m in messages]
    if out and out[0]["role"] == "system":
        out[0]["content"] = (out[0]["content"].rstrip() + "\n\n" + block).strip()
    else:
        out.insert(0, {"role": "system", "content": ((default_system or "") + "\n\n" + block).strip()})
    return out


def last_user_text(messages: list[Message]) -> str:
    for m in reversed(messages):
        if m["role"] == "user":
            return m["content"]
    return ""
