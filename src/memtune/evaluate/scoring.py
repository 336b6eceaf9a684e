"""Keyword scoring: does an answer contain the facts a probe expects?

Matching is deliberately forgiving about *form* and strict about *content*: case,
whitespace (including its absence: ``Node 22`` = ``node22``), backticks, markdown
emphasis (``**``, ``~~``), backslash escapes, curly quotes and typographic dashes are
ignored, because a small model writes the same fact in many surface forms. Matching is a
plain substring test after that normalisation (as in seed 000's evaluate_model).

The same normalisation also yields, for each kept character, its offset in the original
answer, so a report can highlight exactly the text that matched.
"""

from __future__ import annotations

import unicodedata
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

# Characters that never decide whether a fact is present.
_DROP = frozenset("`*~\\\u200b\u200c\u200d\ufeff")
_SUBST = {
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u201b": "'",
    "\u201c": '"', "\u201d": '"', "\u201e": '"', "\u00ab": '"', "\u00bb": '"',
    "\u2010": "-", "\u2011": "-", "\u2012": "-", "\u2013": "-", "\u2014": "-", "\u2212": "-",
}


def normalize_with_map(text: str) -> tuple[str, list[int]]:
    """The comparison form of ``text`` plus, per output char, its index in ``text``."""
    out: list[str] = []
    where: list[int] = []
    for i, ch in enumerate(text or ""):
        if ch.isspace() or ch in _DROP:
            continue
        ch = _SUBST.get(ch, ch)
        for c in unicodedata.normalize("NFKC", ch).casefold():
            if c.isspace() or c in _DROP:
                continue
            out.append(_SUBST.get(c, c))
            where.append(i)
    return "".join(out), where


def normalize(text: str) -> str:
    """Comparison form: see the module docstring for what is ignored."""
    return normalize_with_map(text)[0]


def usable_keywords(keywords: Iterable[str] | None) -> list[str]:
    """Keywords that still say something after normalisation (``""``, ``"**"`` do not)."""
    seen: set[str] = set()
    out: list[str] = []
    for k in keywords or []:
        n = normalize(str(k))
        if n and n not in seen:
            seen.add(n)
            out.append(str(k))
    return out


@dataclass
class KeywordScore:
    """How one answer did against one probe's keywords.

    ``recall`` is ``None`` when the probe has no usable keyword: such a probe cannot be
    scored and is left out of every average rather than counted as a pass or a fail.
    """

    hits: list[str] = field(default_factory=list)
    missed: list[str] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.hits) + len(self.missed)

    @property
    def recall(self) -> float | None:
        return len(self.hits) / self.total if self.total else None

    @property
    def full(self) -> bool | None:
        return not self.missed if self.total else None

    def to_dict(self) -> dict[str, Any]:
        return {"hits": self.hits, "missed": self.missed, "recall": self.recall, "full": self.full}


def score_answer(answer: str, keywords: Sequence[str] | None) -> KeywordScore:
    """Which of ``keywords`` appear in ``answer`` (forgiving about form; see module doc)."""
    text = normalize(answer)
    score = KeywordScore()
    for k in usable_keywords(keywords):
        (score.hits if normalize(k) in text else score.missed).append(k)
    return score


def keyword_recall(answer: str, keywords: Sequence[str] | None) -> float | None:
    """Fraction of usable keywords found; ``None`` when there is nothing to score."""
    return score_answer(answer, keywords).recall


def keyword_spans(answer: str, keywords: Sequence[str] | None) -> list[tuple[int, int, str]]:
    """Non-overlapping ``(start, end, keyword)`` spans of ``answer`` that matched, in order.

    Every occurrence is marked; where two keywords overlap the earlier (then longer) wins.
    """
    text, where = normalize_with_map(answer)
    found: list[tuple[int, int, str]] = []
    for k in usable_keywords(keywords):
        nk = normalize(k)
        pos = text.find(nk)
        while pos != -1:
            found.append((where[pos], where[pos + len(nk) - 1] + 1, k))
            pos = text.find(nk, pos + 1)
    found.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    spans: list[tuple[int, int, str]] = []
    for s in found:
        if spans and s[0] < spans[-1][1]:
            continue
        spans.append(s)
    return spans


# --------------------------------------------------------------------------- aggregates
@dataclass
class RecallSummary:
    """Mean keyword recall and full-recall rate over the scorable probes of one group."""

    n: int = 0
    recall: float | None = None
    full_rate: float | None = None
    unscored: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "recall": self.recall, "full_rate": self.full_rate, "unscored": self.unscored}


def summarize_scores(scores: Iterable[KeywordScore]) -> RecallSummary:
    """Average recall / full-recall; unscorable probes are counted, never averaged."""
    recalls: list[float] = []
    fulls = 0
    unscored = 0
    for s in scores:
        r = s.recall
        if r is None:
            unscored += 1
            continue
        recalls.append(r)
        fulls += bool(s.full)
    if not recalls:
        return RecallSummary(n=0, unscored=unscored)
    return RecallSummary(
        n=len(recalls), recall=sum(recalls) / len(recalls), full_rate=fulls / len(recalls), unscored=unscored
    )


def summarize_by(items: Iterable[tuple[str, KeywordScore]]) -> dict[str, RecallSummary]:
    """One summary per group key (e.g. category), keys sorted."""
    groups: dict[str, list[KeywordScore]] = defaultdict(list)
    for key, s in items:
        groups[key].append(s)
    return {k: summarize_scores(groups[k]) for k in sorted(groups)}
