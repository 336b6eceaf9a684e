"""memtune: turn coding-agent memory into a LoRA adapter that knows it, proves it, and serves it.

The public Python API: everything the CLI does is reachable from here. Heavy pieces
(torch, transformers, peft) load on first use, so ``import memtune`` stays fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

from memtune.errors import ConfigError, InputError, MemtuneError, ModelError, NotFoundError, StoreError
from memtune.store import Guideline, GuidelineFilter, GuidelineInput, GuidelineStore, Source

_LAZY = {
    "ingest": "memtune.ingest",
    "IngestReport": "memtune.ingest",
    "ExportConfig": "memtune.dataset",
    "ExportResult": "memtune.dataset",
    "export_guidelines_as_lora": "memtune.dataset",
    "TrainConfig": "memtune.train",
    "TrainResult": "memtune.train",
    "train": "memtune.train",
    "load_base_model": "memtune.train",
    "find_adapters": "memtune.train",
    "load_assistant": "memtune.infer",
    "ask_memory_assistant": "memtune.infer",
    "Assistant": "memtune.infer",
    "evaluate": "memtune.evaluate",
    "EvalReport": "memtune.evaluate",
    "RunConfig": "memtune.run",
    "RunResult": "memtune.run",
    "run": "memtune.run",
}

__all__ = sorted(
    [
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
        *_LAZY,
    ]
)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'memtune' has no attribute {name!r}")
