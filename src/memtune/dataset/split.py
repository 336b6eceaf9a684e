"""Train/eval split that is seeded, streaming and leak-free.

A side is a pure function of the thing being split — the question's normalised text
(``split_by='phrasing'``) or the guideline's normalised name (``split_by='guideline'``) —
hashed with the seed. So an identical prompt can never land on both sides, the split needs
no memory however many guidelines stream through, and reruns with the same seed agree.
"""

from __future__ import annotations

import hashlib

from memtune.dataset.text import question_key

SPLIT_BY = ("phrasing", "guideline")


def unit_hash(seed: int, *parts: str) -> float:
    """A deterministic number in [0, 1) for (seed, parts)."""
    h = hashlib.blake2b(("\x1f".join((str(seed), *parts))).encode("utf-8"), digest_size=8)
    return int.from_bytes(h.digest(), "big") / 2**64


class Splitter:
    """Decides the side of every example. ``ratio`` is the eval fraction."""

    def __init__(self, ratio: float, by: str = "phrasing", *, seed: int = 42, examples_per_guideline: int = 5):
        self.ratio = ratio
        self.by = by
        self.seed = seed
        # With one example per guideline there is no unseen phrasing to hold out.
        self.threshold = 0.0 if (by == "phrasing" and examples_per_guideline == 1) else ratio

    def question_is_train(self, question: str) -> bool:
        if self.by != "phrasing" or self.threshold <= 0:
            return True
        return unit_hash(self.seed, "q", question_key(question)) >= self.threshold

    def guideline_is_train(self, name: str) -> bool:
        if self.by != "guideline" or self.ratio <= 0:
            return True
        return unit_hash(self.seed, "g", question_key(name)) >= self.ratio

    def side(self, question: str, guideline_name: str) -> str:
        if self.by == "guideline":
            return "train" if self.guideline_is_train(guideline_name) else "eval"
        return "train" if self.question_is_train(question) else "eval"

    def prompt_key(self, question: str) -> bytes:
        """8 bytes identifying a prompt, for the cross-guideline overlap guard."""
        return hashlib.blake2b(question_key(question).encode("utf-8"), digest_size=8).digest()
