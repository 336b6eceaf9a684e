"""The store's last line of redaction: every guideline written goes through here.

Each entrance (ingest, ``memtune import``, ``guidelines add/edit``, MCP ``add_guideline``)
redacts and reports what it removed in its own words; this pass runs inside the store's write
methods so that an entrance that forgets, or one added later, still cannot store a value the
detector flags. Redaction is idempotent, so text an entrance already redacted passes unchanged.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from memtune.store.types import GuidelineInput

__all__ = ["SecretHit", "redact_fields", "redact_input", "redact_value"]


class SecretHit:
    """Where a secret was removed (field, line, type) — never the value."""

    __slots__ = ("field", "line", "type")

    def __init__(self, field: str, line: int, type_: str) -> None:
        self.field, self.line, self.type = field, line, type_

    def __repr__(self) -> str:
        return f"SecretHit({self.field!r}, line {self.line}, {self.type!r})"

    def describe(self) -> str:
        return f"{self.type} in {self.field}" + (f" line {self.line}" if self.line > 1 else "")


def redact_value(value: Any, where: str, hits: list[SecretHit]) -> Any:
    """Redact a string, or every string inside lists/dicts (metadata, examples), recording hits."""
    from memtune.secrets import redact_secrets  # lazy: ~15 ms of regexes that only writes need

    if isinstance(value, str):
        if not value:
            return value
        out, findings = redact_secrets(value, where)
        hits.extend(SecretHit(where, f.line, f.type) for f in findings)
        return out
    if isinstance(value, list):
        return [redact_value(v, f"{where}[{i}]", hits) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return tuple(redact_value(v, f"{where}[{i}]", hits) for i, v in enumerate(value))
    if isinstance(value, dict):
        return {k: redact_value(v, f"{where}.{k}", hits) for k, v in value.items()}
    return value


def redact_fields(fields: dict[str, Any]) -> tuple[dict[str, Any], list[SecretHit]]:
    """``fields`` with every text value redacted (keys are the field names used in messages)."""
    hits: list[SecretHit] = []
    return {k: redact_value(v, k, hits) for k, v in fields.items()}, hits


def redact_input(inp: GuidelineInput) -> tuple[GuidelineInput, list[SecretHit]]:
    """A copy of ``inp`` whose name, text, examples, tags and metadata hold no detectable secret."""
    fields, hits = redact_fields(
        {
            "name": inp.name,
            "content": inp.content,
            "rationale": inp.rationale,
            "examples": inp.examples,
            "tags": inp.tags,
            "metadata": inp.metadata,
        }
    )
    if not hits:
        return inp, hits
    return replace(inp, **fields), hits
