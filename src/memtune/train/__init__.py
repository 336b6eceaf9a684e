"""Training: bundle → LoRA / QLoRA / full fine-tune, on the embedded default model by default.

Heavy modules (torch, transformers, peft) load on first use, so ``memtune --help`` and
the adapter registry stay fast.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_EXPORTS = {
    "TrainConfig": "memtune.train.config",
    "merge_config": "memtune.train.config",
    "train": "memtune.train.loop",
    "TrainResult": "memtune.train.result",
    "TrainingInterrupted": "memtune.train.result",
    "DEFAULT_MODEL": "memtune.train.models",
    "load_base_model": "memtune.train.models",
    "resolve_base_model": "memtune.train.models",
    "model_hash": "memtune.train.models",
    "AdapterInfo": "memtune.train.adapters",
    "find_adapters": "memtune.train.adapters",
    "read_adapter": "memtune.train.adapters",
    "check_staleness": "memtune.train.adapters",
    "remove_adapter": "memtune.train.adapters",
    "keyword_recall": "memtune.train.data",
    "load_bundle": "memtune.train.data",
    "load_assistant": "memtune.infer",
    "ask_memory_assistant": "memtune.infer",
    "Assistant": "memtune.infer",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'memtune.train' has no attribute {name!r}")
