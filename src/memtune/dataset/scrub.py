"""Export's own secret check: a bundle never holds a value the detector flags, whatever the store holds.

The store redacts on every write, but a store can predate a detector fix, be filled by another
tool, or be edited with plain SQL. The exporter therefore reads guidelines through
:class:`ScrubbedStore`, which redacts each guideline's text on the way out and counts the
values it removed, so the export summary (``stats["secrets_removed"]``, metadata.json, the CLI)
can say so. The store itself is not changed: an export only reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import Any

from memtune.store.redact import SecretHit, redact_value

__all__ = ["ScrubbedStore", "removal_warning"]

_FIELDS = ("name", "category", "content", "rationale", "examples", "tags", "metadata")


class ScrubbedStore:
    """A read view of a guideline store whose guidelines come out redacted.

    ``removed`` counts the values removed, once per guideline version however often the
    export reads it (a guideline is read once in order and again as a retrieval distractor).
    Everything other than the guideline readers passes through to the wrapped store.
    """

    def __init__(self, store: Any) -> None:
        self._store = store
        self._removed: dict[tuple[int, int], int] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    @property
    def removed(self) -> int:
        return sum(self._removed.values())

    @property
    def guidelines_affected(self) -> int:
        return len(self._removed)

    def scrub(self, g: Any) -> Any:
        """``g`` with every text field redacted (the same object when nothing was found)."""
        hits: list[SecretHit] = []
        fields = {f: redact_value(getattr(g, f), f, hits) for f in _FIELDS if hasattr(g, f)}
        if not hits:
            return g
        self._removed[(getattr(g, "id", 0), getattr(g, "version", 0))] = len(hits)
        return replace(g, **fields)

    def iter_guidelines(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        for g in self._store.iter_guidelines(*args, **kwargs):
            yield self.scrub(g)

    def search(self, *args: Any, **kwargs: Any) -> list[tuple[Any, float]]:
        return [(self.scrub(g), s) for g, s in self._store.search(*args, **kwargs)]

    def search_question(self, *args: Any, **kwargs: Any) -> list[tuple[Any, float]]:
        return [(self.scrub(g), s) for g, s in self._store.search_question(*args, **kwargs)]

    def get(self, *args: Any, **kwargs: Any) -> Any:
        return self.scrub(self._store.get(*args, **kwargs))


def removal_warning(store: Any) -> str | None:
    """The export warning for values removed on the way out, or None (type and count only)."""
    n = getattr(store, "removed", 0)
    if not n:
        return None
    return (f"removed {n} secret value(s) from {store.guidelines_affected} guideline(s) that the store still "
            "holds unredacted; they are not in this bundle. Re-ingest or edit those guidelines "
            "(`memtune guidelines edit`) so the store is clean too")
