"""Checkpoints (resume exactly) and the finished adapter directory with its lineage.

Layout of an adapter dir::

    adapter_model.safetensors, adapter_config.json   PEFT (or config.json + model.safetensors: full)
    tokenizer files, chat_template.jinja
    train_config.yaml    the resolved TrainConfig
    curves.json          train loss per step; eval loss + probe recall per epoch
    memtune.json         lineage: base model + hash, dataset fingerprint, guideline versions, metrics
    checkpoints/last/    trainable weights, optimizer, scheduler, RNG, step (for --resume)

Every directory is written next to its final place and renamed in, so a Ctrl-C during a
save leaves the previous checkpoint intact.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch

from memtune.errors import ConfigError

CKPT_DIR = "checkpoints"
LAST, BEST = "last", "best"
LINEAGE = "memtune.json"


@dataclass
class RunState:
    """Where a run is: enough to continue it bit-for-bit on the same data."""

    step: int = 0
    epoch: int = 0
    """The epoch in progress (0-based)."""
    batch_pos: int = 0
    """This rank's next micro-batch index inside ``epoch``."""
    best_metric: list[float] | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    best_eval_loss: float | None = None
    finished: bool = False
    train_tokens: int = 0
    train_seconds: float = 0.0
    curves: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {"train": [], "epochs": []})
    identity: dict[str, Any] = field(default_factory=dict)
    """Settings that must match on --resume (method, model, rank, ...)."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _atomic_dir(final: Path, write: Callable[[Path], None]) -> None:
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        write(tmp)
        old = final.with_name(f".{final.name}.old-{os.getpid()}")
        if final.exists():
            os.replace(final, old)
        os.replace(tmp, final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def trainable_state(model: Any) -> dict[str, torch.Tensor]:
    return {n: p.detach().cpu().clone() for n, p in model.named_parameters() if p.requires_grad}


def rng_state() -> dict[str, Any]:
    st: dict[str, Any] = {"python": random.getstate(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        st["cuda"] = torch.cuda.get_rng_state_all()
    return st


def restore_rng(st: dict[str, Any]) -> None:
    random.setstate(st["python"])
    torch.set_rng_state(st["torch"])
    if "cuda" in st and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(st["cuda"])


def save_checkpoint(out: Path, model: Any, optimizer: Any, scheduler: Any, state: RunState) -> Path:
    final = out / CKPT_DIR / LAST

    def write(d: Path) -> None:
        torch.save(trainable_state(model), d / "trainable.pt")
        torch.save(optimizer.state_dict(), d / "optimizer.pt")
        torch.save(scheduler.state_dict(), d / "scheduler.pt")
        torch.save(rng_state(), d / "rng.pt")
        (d / "state.json").write_text(json.dumps(state.to_dict(), indent=1), encoding="utf-8")

    final.parent.mkdir(parents=True, exist_ok=True)
    _atomic_dir(final, write)
    return final


def has_checkpoint(out: Path) -> bool:
    return (out / CKPT_DIR / LAST / "state.json").is_file()


def load_checkpoint(out: Path, model: Any, optimizer: Any, scheduler: Any, identity: dict[str, Any]) -> RunState:
    d = out / CKPT_DIR / LAST
    if not (d / "state.json").is_file():
        raise ConfigError(f"--resume: {d} holds no checkpoint", hint="start without --resume")
    raw = json.loads((d / "state.json").read_text(encoding="utf-8"))
    state = RunState(**raw)
    diff = [f"{k}: checkpoint {state.identity.get(k)!r} vs now {v!r}" for k, v in identity.items()
            if k in state.identity and state.identity[k] != v]
    if diff:
        raise ConfigError(["--resume: the run's settings changed since the checkpoint", *diff],
                          hint="resume with the original settings, or train afresh with --overwrite")
    weights = torch.load(d / "trainable.pt", map_location="cpu")
    named = dict(model.named_parameters())
    missing = [n for n in weights if n not in named]
    if missing:
        raise ConfigError(f"--resume: checkpoint weights do not fit the model ({missing[:3]} ...)")
    with torch.no_grad():
        for n, t in weights.items():
            named[n].copy_(t.to(named[n].device, named[n].dtype))
    optimizer.load_state_dict(torch.load(d / "optimizer.pt", map_location="cpu", weights_only=False))
    scheduler.load_state_dict(torch.load(d / "scheduler.pt", map_location="cpu", weights_only=False))
    restore_rng(torch.load(d / "rng.pt", map_location="cpu", weights_only=False))
    return state


def save_model_dir(dest: Path, model: Any, tokenizer: Any) -> None:
    """PEFT adapter files (LoRA/QLoRA) or the whole model (full), plus the tokenizer."""
    def write(d: Path) -> None:
        model.save_pretrained(d)
        tokenizer.save_pretrained(d)

    dest.parent.mkdir(parents=True, exist_ok=True)
    _atomic_dir(dest, write)


def save_best(out: Path, model: Any, tokenizer: Any) -> None:
    save_model_dir(out / CKPT_DIR / BEST, model, tokenizer)


def has_weights(out: Path) -> bool:
    return (out / "adapter_config.json").is_file() or (out / "config.json").is_file()


def finalize(out: Path, *, model: Any, tokenizer: Any, keep_checkpoint: bool, files: dict[str, Any],
             best_already_in_out: bool = False) -> None:
    """Move the best weights (or the current ones) into ``out`` and write the side files.

    ``best_already_in_out``: a resumed run whose best epoch was finalised by an earlier run.
    """
    best = out / CKPT_DIR / BEST
    if not best.is_dir() and not best_already_in_out:
        save_best(out, model, tokenizer)
    if best.is_dir():
        for f in best.iterdir():
            os.replace(f, out / f.name)
        shutil.rmtree(best, ignore_errors=True)
    for name, content in files.items():
        text = content if isinstance(content, str) else json.dumps(content, indent=2, default=str)
        (out / name).write_text(text, encoding="utf-8")
    if not keep_checkpoint:
        shutil.rmtree(out / CKPT_DIR, ignore_errors=True)


def lineage(*, system_prompt: str | None, method: str, base: dict[str, Any], bundle: Any, metrics: dict[str, Any],
            hyper: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    from memtune import __version__

    return {
        "memtune_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "created_ts": time.time(),
        "method": method,
        "format": "full" if method == "full" else "peft",
        "base_model": base,
        "dataset": {
            "bundle": str(bundle.path.resolve()),
            "fingerprint": bundle.fingerprint,
            # the store and filter the bundle was exported with: answers retrieve from them by default
            "store": (bundle.metadata.get("store") or {}).get("url"),
            "filter": (bundle.metadata.get("config") or {}).get("filter"),
            "counts": bundle.metadata.get("counts") or {"train": len(bundle.train), "eval": len(bundle.eval),
                                                         "probes": len(bundle.probes)},
        },
        "guidelines": bundle.guidelines,
        "system_prompt": system_prompt,
        "hyper": hyper,
        "metrics": metrics,
        "config": config,
    }
