"""What a training run hands back, shared by the loop and the distributed launcher.

Kept apart from ``loop.py`` (and free of torch) so that ``distributed.py`` can build the result
of a multi-process run and raise the interrupt error without importing the loop that calls it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memtune.errors import MemtuneError

WORKER_ENV = "MEMTUNE_DISTRIBUTED_WORKER"
"""Set in every rank's environment: ``train()`` then runs the loop instead of launching again."""


class TrainingInterrupted(MemtuneError):
    """Ctrl-C: a checkpoint was saved; the message says how to resume."""

    exit_code = 130


@dataclass
class TrainResult:
    out_dir: Path
    method: str
    steps: int
    epochs_run: int
    best_epoch: int | None
    metrics: dict[str, Any]
    curves: dict[str, Any] = field(default_factory=dict)
    stopped_early: bool = False

    @classmethod
    def from_dir(cls, out: Path) -> TrainResult:
        """Rebuild the result from a finished adapter dir (the distributed parent does this)."""
        from memtune.train.checkpoint import LINEAGE  # lazy: checkpoint imports torch

        info = json.loads((out / LINEAGE).read_text(encoding="utf-8"))
        curves = json.loads((out / "curves.json").read_text(encoding="utf-8")) if (out / "curves.json").is_file() else {}
        m = info.get("metrics", {})
        return cls(out_dir=out, method=info["method"], steps=m.get("steps", 0), epochs_run=m.get("epochs_run", 0),
                   best_epoch=m.get("best_epoch"), metrics=m, curves=curves, stopped_early=m.get("stopped_early", False))
