"""System prompts, user contexts and retrieved-note blocks: the non-question parts of a prompt.

Training and inference must agree on these: :data:`DEFAULT_SYSTEM_PROMPT` (what every
training question is asked under, and what the bundle's metadata names) and
:func:`user_message` (how a question and its context, seed 000's "context", share a turn)
are the chat format's (:mod:`memtune.chatformat`), re-exported here;
:func:`system_with_notes` renders retrieved notes the way the RAG-style training examples
show them.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from typing import Any

from memtune.chatformat import DEFAULT_SYSTEM_PROMPT, user_message
from memtune.dataset.text import clip_markdown
from memtune.dataset.topics import category_label

NOTES_HEADER = "Notes from the project memory (some may not be relevant to the question):"
NOTE_CHAR_LIMIT = 600

_GENERAL_CONTEXTS = (
    "I'm working in this repository.",
    "I'm on a feature branch.",
    "I'm new to the project.",
    "I'm in the middle of a change.",
    "I want to get this right the first time.",
    "I'm reviewing my own change before pushing.",
)
_PRIORITY_WORDS = ((90, "critical"), (70, "important"), (40, "standard"), (0, "minor"))
_CATEGORY_CONTEXTS: dict[str, tuple[str, ...]] = {
    "command": (
        "I'm in a terminal at the repository root.",
        "I'm setting up my local development environment.",
        "I just cloned the repo.",
    ),
    "environment": (
        "I'm setting up my local development environment.",
        "I'm on a fresh machine.",
        "Something in my local setup is off.",
    ),
    "gotcha": (
        "Something broke while I was working on it.",
        "I've been debugging this for a while.",
        "It worked yesterday.",
    ),
    "architecture": (
        "I'm adding a new feature.",
        "I'm reviewing a pull request.",
        "I'm new to this codebase.",
    ),
    "pattern": (
        "I'm implementing a new feature.",
        "I'm refactoring some older code.",
        "I'm new to this codebase.",
    ),
    "code_style": ("I'm writing new code.", "I'm reviewing a pull request.", "I'm cleaning up a module."),
    "testing": ("I'm writing tests for a change.", "CI is red on my branch.", "I'm adding a test suite."),
    "security": ("I'm handling credentials in my change.", "I'm reviewing a change for security.",),
    "workflow": ("I'm about to open a pull request.", "I'm picking up a new task.", "I'm wrapping up a change."),
    "deployment": ("I'm preparing a release.", "I'm deploying a change.", "The deploy pipeline failed."),
    "database": ("I'm changing the database schema.", "I'm writing a new query.", "I'm adding a model."),
    "api": ("I'm adding an API endpoint.", "I'm calling the API from the frontend.", "I'm changing a resolver."),
    "lesson": ("I'm starting a similar task.", "I'm planning my next change.", "I'm about to start implementing."),
    "context": ("I'm new to the project.", "I'm getting oriented in the codebase.",),
    "general": ("I'm working in this repository.", "I'm new to the project.",),
}


def priority_word(priority: int) -> str:
    return next(word for floor, word in _PRIORITY_WORDS if priority >= floor)


def context_options(category: str, tags: Sequence[str], scope_id: str | None) -> list[str]:
    """Every situation line that fits a note (category-specific first, then general ones)."""
    options = list(_CATEGORY_CONTEXTS.get((category or "general").lower(), _CATEGORY_CONTEXTS["general"]))
    clean_tags = [t for t in tags if t and len(t) <= 30 and ":" not in t and "/" not in t]
    if clean_tags:
        options.append(f"I'm working on the {', '.join(clean_tags[:2])} side of the project.")
        options.append(f"I'm touching the {clean_tags[0]} code.")
    if scope_id:
        options.append(f"I'm working in the {scope_id} project.")
    return options + [c for c in _GENERAL_CONTEXTS if c not in options]


def context_for(category: str, tags: Sequence[str], scope_id: str | None, rng: random.Random,
                options: list[str] | None = None) -> str:
    """A short description of the asker's situation, in the style of seed 000's 'context'."""
    options = options or context_options(category, tags, scope_id)
    return rng.choice(options[: max(3, len(options) - len(_GENERAL_CONTEXTS) + 2)])


def render_note(index: int, name: str, category: str, content: str) -> str:
    return f"[{index}] {name} ({category_label(category)}):\n{clip_markdown(content.strip(), NOTE_CHAR_LIMIT)}"


def render_notes(notes: Iterable[Any]) -> str:
    """Notes → the block placed under the system prompt (Guideline objects or dicts)."""
    parts = []
    for i, n in enumerate(notes, 1):
        get = n.get if isinstance(n, dict) else lambda k, _n=n: getattr(_n, k)
        parts.append(render_note(i, get("name"), get("category"), get("content")))
    return NOTES_HEADER + "\n\n" + "\n\n".join(parts)


def system_with_notes(notes: Iterable[Any], base: str = DEFAULT_SYSTEM_PROMPT) -> str:
    """The system prompt for a retrieval-augmented question (what ``adapter+RAG`` should use)."""
    notes = list(notes)
    return base if not notes else f"{base}\n\n{render_notes(notes)}"


__all__ = [
    "DEFAULT_SYSTEM_PROMPT",
    "NOTES_HEADER",
    "context_for",
    "priority_word",
    "render_notes",
    "system_with_notes",
    "user_message",
]
