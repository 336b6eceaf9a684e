"""One guideline → its finished JSONL lines (examples, probes, lineage), as a pure function.

Pure so the bundle writer can run it in worker processes for big stores and get exactly
the bytes a serial run would write: every random choice is seeded per guideline, and the
only cross-guideline input (distractor notes) is passed in explicitly.
"""

from __future__ import annotations

import json
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from memtune.dataset.examples import generate_examples, prepare
from memtune.dataset.formats import SIDECAR_FORMATS, to_record
from memtune.dataset.probes import generate_probes
from memtune.dataset.split import Splitter
from memtune.dataset.text import REDACTED_RE, code_blocks, word_count
from memtune.dataset.topics import clean_name
from memtune.dataset.unknown import mentioned_topics, note_text

RECENT_NOTES = 8  # distractor pool for big stores: the guidelines just before this one


@dataclass(frozen=True)
class RenderSettings:
    """The parts of ExportConfig that shape each guideline's output (picklable)."""

    fmt: str
    include_metadata: bool
    examples_per_guideline: int
    seed: int
    include_negative: bool
    rag_fraction: float
    split_ratio: float
    split_by: str
    control_fraction: float = 0.0
    rag_copies: float = 0.0
    fact_share: float = 0.0
    fact_rag_copies: float | None = None
    min_topic_questions: int = 0
    named_answers: bool = False
    rag_gold_first: float = 0.0

    @property
    def sidecar(self) -> bool:
        return self.fmt in SIDECAR_FORMATS and self.include_metadata

    def splitter(self) -> Splitter:
        return Splitter(self.split_ratio, self.split_by, seed=self.seed,
                        examples_per_guideline=self.examples_per_guideline)


@dataclass(slots=True)
class Note:
    """The fields of a Guideline that rendering reads (small to send to a worker)."""

    id: int
    version: int
    name: str
    category: str
    priority: int
    tags: list[str]
    scope_id: str | None
    content: str
    rationale: str | None
    examples: dict[str, list[str]]
    content_hash: str

    @classmethod
    def of(cls, g: Any) -> Note:
        return cls(g.id, g.version, g.name, g.category, g.priority, list(g.tags or []), g.scope_id, g.content,
                   g.rationale, g.examples or {}, g.content_hash)


@dataclass
class Rendered:
    """A guideline's output lines and the counts the writer adds up."""

    name: str
    lines: list[tuple[str, str, str | None, str | None]] = field(default_factory=list)  # side, record, meta, key
    probes: list[str] = field(default_factory=list)
    lineage: str = ""
    trained: bool = True
    thin: bool = False
    redacted: bool = False
    short: bool = False
    negatives: int = 0
    rag: int = 0
    mentioned: frozenset[int] = frozenset()  # unknown topics this note mentions (never asked about)


def render_guideline(g: Any, s: RenderSettings, splitter: Splitter, distractors: list[Any],
                     paraphrases: list[str] | None = None) -> Rendered:
    prep = prepare(g)
    topic_name = clean_name(g.name)
    trained = splitter.guideline_is_train(topic_name)
    out = Rendered(name=g.name, trained=trained)
    out.thin = word_count(g.content) < 6 and not code_blocks(g.content)
    out.redacted = bool(REDACTED_RE.search(g.content) or REDACTED_RE.search(g.rationale or ""))
    if s.control_fraction > 0:
        out.mentioned = mentioned_topics(note_text(g))
    if trained and s.split_by == "guideline":  # never show held-out guidelines in training prompts
        distractors = [d for d in distractors if splitter.guideline_is_train(clean_name(_get(d, "name")))]
    examples = generate_examples(
        g, s.examples_per_guideline, seed=s.seed, include_negative=s.include_negative,
        rag_fraction=s.rag_fraction, rag_copies=s.rag_copies, fact_share=s.fact_share,
        fact_rag_copies=s.fact_rag_copies, min_topic_questions=s.min_topic_questions,
        named_answers=s.named_answers, rag_gold_first=s.rag_gold_first, distractors=distractors,
        paraphrases=paraphrases or (),
        is_train=splitter.question_is_train if s.split_by == "phrasing" else None, prepared=prep,
    )
    out.short = len(examples) < s.examples_per_guideline
    guard = s.split_by == "guideline"
    sides = set()
    for ex in examples:
        side = splitter.side(ex.question, topic_name)
        record = json.dumps(to_record(ex, s.fmt, include_metadata=s.include_metadata), ensure_ascii=False)
        meta = json.dumps(ex.metadata(), ensure_ascii=False) if s.sidecar else None
        key = splitter.prompt_key(ex.question).hex() if guard else None
        out.lines.append((side, record, meta, key))
        sides.add(side)
        out.negatives += ex.is_negative
        out.rag += ex.rag != "none"
    for p in generate_probes(g, seed=s.seed, prepared=prep):
        p["guideline_split"] = "train" if trained else "eval"
        out.probes.append(json.dumps(p, ensure_ascii=False))
    out.lineage = json.dumps({
        "id": g.id, "version": g.version, "name": g.name, "content_hash": g.content_hash,
        "split": "both" if len(sides) == 2 else (next(iter(sides)) if sides else "none"),
        "examples": len(examples)}, ensure_ascii=False)
    return out


def note_dict(g: Any) -> dict[str, Any]:
    return {"id": g.id, "name": g.name, "category": g.category, "content": g.content[:800]}


def render_batch(args: tuple[RenderSettings, list[Note], list[dict[str, Any]], bool]) -> list[Rendered]:
    """A run of consecutive guidelines (worker entry point); ``recent`` = notes just before them."""
    settings, notes, recent, use_notes = args
    splitter = settings.splitter()
    pool: deque[dict[str, Any]] = deque(recent, maxlen=RECENT_NOTES)
    out = []
    for g in notes:
        out.append(render_guideline(g, settings, splitter, list(pool) if use_notes else []))
        pool.append(note_dict(g))
    return out


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key)
