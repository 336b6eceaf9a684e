"""The retrieval baseline: top-k guidelines from the store's full-text search, as a system prompt.

Research (ARCHITECTURE.md) says retrieval often beats fine-tuning on new facts, so every
evaluation reports it next to the adapter. The notes go in the *system* prompt so the
user turn stays exactly what training used (``memtune.train.data.user_content``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: Per-note character budget: a 135M model's attention degrades fast with long prompts.
NOTE_CHARS = 700

RAG_SYSTEM_HEADER = (
    "You are a coding assistant for this project. These project notes may help; "
    "use them only if they answer the question. If they do not, say that you don't know."
)


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


def search_query(question: str, context: str = "") -> str:
    """What is searched: the question plus its context line (often a topic hint)."""
    return f"{question} {context}".strip()


def retrieve(store: Any, question: str, context: str = "", *, k: int = 3, f: Any = None) -> list[RetrievedNote]:
    """The ``k`` best guidelines for a question (``GuidelineStore.search``, best first)."""
    if k <= 0:
        return []
    hits = store.search(search_query(question, context), f, limit=k)
    return [
        RetrievedNote(
            guideline_id=g.id, version=g.version, name=g.name, category=g.category,
            content=g.content, score=float(score),
        )
        for g, score in hits
    ]


def format_note(note: RetrievedNote, max_chars: int = NOTE_CHARS) -> str:
    body = note.content.strip()
    if len(body) > max_chars:
        body = body[: max_chars - 1].rstrip() + "…"
    return f"## {note.name}\n{body}"


def build_system_prompt(notes: Sequence[RetrievedNote], *, header: str = RAG_SYSTEM_HEADER) -> str:
    """The system prompt for a retrieval condition: a short instruction, then each note."""
    if not notes:
        return header + "\n\n(No project notes matched this question.)"
    return header + "\n\n" + "\n\n".join(format_note(n) for n in notes)
