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


@dataclass
class MergedRule:
    """A rule and every (file, draft) where it was found; ``first`` is kept as the text."""

    file: MemoryFile
    draft: RuleDraft
    norm: str
    duplicates: list[tuple[MemoryFile, RuleDraft]] = field(default_factory=list)


def merge_duplicates(items: list[tuple[MemoryFile, RuleDraft]]) -> list[MergedRule]:
    """Return one MergedRule per distinct rule, in first-seen order."""
    out: list[MergedRule] = []
    by_norm: dict[str, MergedRule] = {}
    by_block: dict[str, list[MergedRule]] = {}
    for mf, draft in items:
        norm = normalize_text(draft.content)
        hit = by_norm.get(norm)
        if hit is None and len(norm) >= 40:
            block = " ".join(norm.split()[:_BLOCK_WORDS])
            for cand in by_block.get(block, ()):
                sm = SequenceMatcher(None, cand.norm, norm, autojunk=False)
                if sm.real_quick_ratio() >= SIMILARITY and sm.quick_ratio() >= SIMILARITY and sm.ratio() >= SIMILARITY:
                    hit = cand
                    break
        if hit is not None and hit.file.path != mf.path:
            hit.duplicates.append((mf, draft))
            continue
        if hit is not None and hit.file.path == mf.path and hit.norm == norm:
            # the same text twice in one file: keep both occurrences as sources
            hit.duplicates.append((mf, draft))
            continue
        rule = MergedRule(mf, draft, norm)
        out.append(rule)
        by_norm.setdefault(norm, rule)
        if len(norm) >= 40:
            by_block.setdefault(" ".join(norm.split()[:_BLOCK_WORDS]), []).append(rule)
    return out
