"""memtune: turn coding-agent memory into a LoRA adapter that knows it, proves it, and serves it.

The public Python API. Everything the CLI does is reachable from here.
"""

from __future__ import annotations

__version__ = "0.1.0"

from memtune.errors import ConfigError, InputError, MemtuneError, ModelError, NotFoundError, StoreError
from memtune.store import (
    Guideline,
    GuidelineFilter,
    GuidelineInput,
    GuidelineStore,
    Source,
)

__all__ = [
    "ConfigError",
    "Guideline",
    "GuidelineFilter",
    "GuidelineInput",
    "GuidelineStore",
    "InputError",
    "MemtuneError",
    "ModelError",
    "NotFoundError",
    "Source",
    "StoreError",
    "__version__",
]
