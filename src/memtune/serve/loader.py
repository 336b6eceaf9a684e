"""Find and load what ``memtune serve|chat|mcp|merge ADAPTER`` names.

ADAPTER is a PEFT adapter directory (``adapter_config.json``; its base model comes
from ``--base``, then the ``memtune.json`` lineage written by ``memtune train``, then
PEFT's ``base_model_name_or_path``) or a full transformers model directory
(``config.json``, e.g. the output of ``memtune merge``). Loading goes through
:func:`memtune.infer.load_assistant`, the same path evaluation uses, so the server
answers exactly what ``memtune eval`` measured.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memtune.errors import ModelError, NotFoundError

LINEAGE_FILE = "memtune.json"


@dataclass
class ModelRef:
    path: Path
    kind: str  # adapter | model
    base: str | None
    name: str
    lineage: dict[str, Any]


def read_json(p: Path) -> dict[str, Any]:
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def lineage_base(lineage: dict[str, Any]) -> str | None:
    """The base model recorded by ``memtune train`` (``base_model: {name, path, hash, ...}``)."""
    v = lineage.get("base_model")
    if isinstance(v, dict):
        v = v.get("name") or v.get("path")
    return v if isinstance(v, str) and v else None


def inspect(path: str | Path, base: str | None = None) -> ModelRef:
    """What ``path`` is and which base it needs, without loading any weights (fail fast)."""
    p = Path(path).expanduser()
    if not p.is_dir():
        raise NotFoundError(
            f"adapter {str(path)!r} is not a directory",
            hint="pass the folder written by `memtune train` (see `memtune adapters list`) or by `memtune merge`",
        )
    lineage = read_json(p / LINEAGE_FILE)
    name = str(lineage.get("name") or p.resolve().name)
    if (p / "adapter_config.json").is_file():
        cfg = read_json(p / "adapter_config.json")
        b = base or lineage_base(lineage) or cfg.get("base_model_name_or_path")
        if not b:
            raise ModelError(
                f"{p} does not say which base model it adapts",
                hint="pass --base MODEL (a registry name, local dir or hub id)",
            )
        return ModelRef(p, "adapter", str(b), name, lineage)
    if (p / "config.json").is_file():
        return ModelRef(p, "model", None, name, lineage)
    raise NotFoundError(
        f"{p} holds neither a LoRA adapter (adapter_config.json) nor a model (config.json)",
        hint="pass the folder written by `memtune train` or `memtune merge`",
    )


def load_assistant_for(ref: ModelRef, *, base: str | None = None, merge: bool = True) -> Any:
    from memtune.infer import load_assistant

    try:
        # Only an explicit --base is passed: otherwise load_assistant reads the lineage
        # itself and warns when the base model's hash differs from the one trained on.
        return load_assistant(ref.path, base_model=base, merge=merge)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot load {ref.path}: {exc}", hint="check the adapter and its base model") from exc


def load_backend(path: str | Path, *, base: str | None = None, model_id: str | None = None) -> Any:
    """A ready :class:`~memtune.serve.engine.TransformersBackend` for ``path`` (LoRA merged in for speed)."""
    from memtune.serve.engine import TransformersBackend

    ref = inspect(path, base)
    a = load_assistant_for(ref, base=base)
    info = {"kind": ref.kind, "name": ref.name}
    return TransformersBackend(
        a.model, a.tokenizer, model_id=model_id or ref.name, info=info,
        system=getattr(a, "system", None), bf16=getattr(a, "bf16", None),
    )
