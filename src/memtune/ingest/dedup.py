"""Merge the same rule written in several files into one guideline with every source.

Agents' files copy each other: CLAUDE.md repeats AGENTS.md, `.windsurfrules` is
generated from `.cursorrules`. Two rules are the same when their normalised text is
equal, or nearly equal (≥ ``SIMILARITY`` by difflib) among candidates that share
their first words — a cheap blocking key that keeps this linear on 20,000 rules.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from difflib import SequenceMatcher

from memtune.ingest.types import MemoryFile, RuleDraft
from memtune.store.normalize import normalize_text

SIMILARITY = 0.92
_BLOCK_WORDS = 4
_MAX_CANDIDATES = 64


@dataclass
class MergedRule:
    """A rule and every (file, draft) where it was found; ``first`` is kept as the text."""

    file: MemoryFile
    draft: RuleDraft
    norm: str
    duplicates: list[tuple[MemoryFile, RuleDraft]] = field(default_factory=list)
    matcher: SequenceMatcher | None = field(default=None, repr=False)

    @property
    def words(self) -> set[str]:
        return set(self.norm.split())


def merge_duplicates(items: list[tuple[MemoryFile, RuleDraft]]) -> list[MergedRule]:
    """Return one MergedRule per distinct rule, in first-seen order."""
    out: list[MergedRule] = []
    by_norm: dict[str, MergedRule] = {}
    by_block: dict[str, list[MergedRule]] = {}
    for mf, draft in items:
        norm = normalize_text(draft.content)
        hit = by_norm.get(norm)
        if hit is None and len(norm) >= 40:
            hit = _similar(norm, by_block.get(" ".join(norm.split()[:_BLOCK_WORDS]), ()))
        if hit is not None and (hit.file.path != mf.path or hit.norm == norm):
            # another file's copy, or the very same text twice in one file: one rule, more sources
            hit.duplicates.append((mf, draft))
            continue
        rule = MergedRule(mf, draft, norm)
        out.append(rule)
        by_norm.setdefault(norm, rule)
        if len(norm) >= 40:
            by_block.setdefault(" ".join(norm.split()[:_BLOCK_WORDS]), []).append(rule)
    return out


def _similar(norm: str, candidates) -> MergedRule | None:
    """First candidate whose text is ≥ SIMILARITY alike; cheap length/word checks go first."""
    words = set(norm.split())
    for cand in candidates[-_MAX_CANDIDATES:]:
        if not 0.85 <= len(norm) / max(1, len(cand.norm)) <= 1.18:
            continue
        cw = cand.words
        if len(words & cw) / max(1, len(words | cw)) < 0.75:
            continue
        if cand.matcher is None:
            cand.matcher = SequenceMatcher(None, autojunk=False)
            cand.matcher.set_seq2(cand.norm)
        cand.matcher.set_seq1(norm)
        if cand.matcher.quick_ratio() >= SIMILARITY and cand.matcher.ratio() >= SIMILARITY:
            return cand
    return None
