"""Text normalisation used to spot the same rule written twice (near-duplicates)."""

from __future__ import annotations

import hashlib
import re
import unicodedata

_MARKUP = re.compile(r"[*_`~>#|\[\]()]+")
_PUNCT = re.compile(r"[^\w\s]+")
_WS = re.compile(r"\s+")


def normalize_text(text: str) -> str:
    """Lower-case, NFKC, markdown and punctuation stripped, whitespace collapsed."""
    t = unicodedata.normalize("NFKC", text).casefold()
    t = _MARKUP.sub(" ", t)
    t = _PUNCT.sub(" ", t)
    return _WS.sub(" ", t).strip()


def normalized_hash(text: str) -> str:
    return hashlib.sha256(normalize_text(text).encode("utf-8")).hexdigest()
