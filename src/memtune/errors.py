"""Errors that tell the user what is wrong, with which value, and how to fix it.

Every error memtune raises on purpose derives from :class:`MemtuneError`; the CLI is
the only place that turns one into an exit code.
"""

from __future__ import annotations


class MemtuneError(Exception):
    """Base class. ``message`` says what is wrong; ``hint`` says what to do about it."""

    exit_code = 1

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message if not self.hint else f"{self.message}\nHint: {self.hint}"


class ConfigError(MemtuneError):
    """One or more settings are invalid. ``problems`` lists every one of them."""

    exit_code = 2

    def __init__(self, problems: list[str] | str, *, hint: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        if len(self.problems) == 1:
            msg = self.problems[0]
        else:
            msg = "Invalid configuration:\n" + "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(msg, hint=hint)


class InputError(MemtuneError):
    """A file or value the user gave cannot be used (names the file/line/value)."""

    exit_code = 2


class NotFoundError(MemtuneError):
    """A guideline, adapter, model or file that was asked for does not exist."""

    exit_code = 3


class StoreError(MemtuneError):
    """The guideline store cannot be opened, migrated or written."""

    exit_code = 4


class ModelError(MemtuneError):
    """A base model cannot be found, loaded or used on this machine."""

    exit_code = 5
