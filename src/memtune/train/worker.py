"""Entry point of every rank of a distributed run: ``python -m memtune.train.worker CONFIG``.

``accelerate launch`` starts this module once per process (see :mod:`memtune.train.distributed`).
It lives apart from the launcher because it calls :func:`memtune.train.loop.train`, which itself
calls the launcher; keeping the two in one file made them import each other.
"""

from __future__ import annotations

import os
import sys

from memtune.errors import MemtuneError
from memtune.train.config import merge_config
from memtune.train.result import TrainingInterrupted


def worker(config_path: str) -> int:
    """Train one rank from the launcher's resolved config; the exit code tells the launcher how it ended."""
    from memtune.train.loop import train  # lazy: torch and the model stack load only in the ranks

    cfg = merge_config(config_path)
    try:
        train(cfg, progress=os.environ.get("MEMTUNE_PROGRESS", "1") == "1")
    except TrainingInterrupted as exc:
        print(str(exc), file=sys.stderr)
        return 130
    except MemtuneError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(worker(sys.argv[1]))
