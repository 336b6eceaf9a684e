"""Secret-leak check on model output.

Secret values never reach the store (ingest redacts them), but a base model, or an
adapter trained before a redaction fix, could still produce something secret-looking.
Every answer goes through ingest's own detector, and through an exact match against any
values the caller knows to be secret. A report never shows a leaked value: answers are
stored redacted, and a leak is recorded by type only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

# Imported eagerly: a broken detector must fail before minutes of generation, not after.
from memtune.secrets import redact_secrets

KNOWN_SECRET_TYPE = "known-secret"


@dataclass
class LeakCheck:
    """The answer with secrets replaced by ``[REDACTED:<type>]`` and the types found."""

    text: str
    types: list[str] = field(default_factory=list)

    @property
    def leaked(self) -> bool:
        return bool(self.types)

    def to_dict(self) -> dict[str, Any]:
        return {"leaked": self.leaked, "types": self.types}


def check_output(answer: str, known_secrets: Sequence[str] = ()) -> LeakCheck:
    """Redact and report secrets in one model answer (see module docstring)."""
    text = answer or ""
    types: list[str] = []
    for value in sorted({s for s in known_secrets if s and len(s) >= 4}, key=len, reverse=True):
        if value in text:
            text = text.replace(value, f"[REDACTED:{KNOWN_SECRET_TYPE}]")
            types.append(KNOWN_SECRET_TYPE)
    text, findings = redact_secrets(text, "output")
    types.extend(f.type for f in findings)
    return LeakCheck(text=text, types=types)
