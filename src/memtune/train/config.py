"""TrainConfig: every knob of a training run, its YAML form and its checks.

One flat dataclass so that CLI flags, YAML keys and Python keyword arguments are the
same names (``--batch-size`` = ``batch_size:`` = ``batch_size=``). ``None`` means
"resolve later": from the bundle's ``adapter_config.json`` (rank/alpha/dropout/targets),
the method (learning rate) or the hardware (bf16, device).
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from memtune.errors import ConfigError, InputError
from memtune.recipes import default_recipe

METHODS = ("lora", "qlora", "full")
REMOVED = {
    "lora_plus_ratio": "LoRA+ (a faster rate for B) drifted +21.6 % for no more recall",
    "min_lr_ratio": "an lr floor measured the same as the plain decay",
    "adapter_scale": "scaling the trained update traded recall for drift one for one",
    "replay_source": "rehearsal text is always the base model's own (the shipped paragraphs were memorised)",
    "replay_loss": "distilling the base model's distribution did not lower drift",
}
"""Options that were measured no better than the recipe and removed: a config that still sets
one gets this reason instead of a bare "unknown key"."""
FULL_FINETUNE_LR = 5e-5
"""A full fine-tune moves every weight: the recipe's LoRA rate would wreck the model."""
_R = default_recipe()
_RT = _R.training()
"""The defaults: the default model's recipe (``memtune/recipes``), so ``memtune train``, ``memtune
run`` and ``TrainConfig()`` train the same way."""


@dataclass
class TrainConfig:
    """A training run. Field names are the YAML keys and (with dashes) the CLI flags."""

    bundle: str | None = None
    """Bundle directory (train.jsonl, eval.jsonl, probes.jsonl, adapter_config.json, metadata.json)."""
    out: str | None = None
    """Adapter directory to write. Default: .memtune/adapters/<bundle name>."""
    model: str | None = None
    """Base model: registry name (default smollm2-135m-instruct), local transformers dir or hub id."""
    method: str = "lora"
    epochs: int = _RT["epochs"]
    max_steps: int | None = None
    """Stop after this many optimizer steps (smoke tests, GPU checks)."""
    lr: float | None = None
    """None = the recipe's (LoRA/QLoRA) or 5e-5 (full fine-tune)."""
    rank: int | None = None
    """None = the recipe's, unless the bundle was exported with an explicit LoRA rank."""
    alpha: int | None = None
    """None = the recipe's (2 x rank when only the rank is given)."""
    dropout: float | None = None
    """None = the recipe's, unless the bundle was exported with an explicit LoRA dropout."""
    target_modules: list[str] | str | None = None
    """Module names, ``all-linear``, or a block (``mlp`` / ``attention``); None = the recipe's."""
    protect_energy: float = _RT["protect_energy"]
    """LoRA/QLoRA: keep every LoRA A matrix off the input directions that carry this share of
    its input energy on rehearsal text: the few massive-activation directions all text shares,
    through which an adapter changes the model's output on everything (0 = off; at 0.3, 9
    directions a layer on average on SmolLM2)."""
    skip_layers: int | float = _RT["skip_layers"]
    """LoRA/QLoRA: leave the first N transformer layers without an adapter (a fraction below
    1 = that share of the model's layers, rounded down). The backward pass then stops above
    them (SmolLM2, 10 of 30: ~40% more tokens/s)."""
    batch_size: int = _RT["batch_size"]
    grad_accum: int = 1
    max_length: int = 512
    max_batch_tokens: int = _RT["max_batch_tokens"]
    """Split a micro-batch into forward passes of at most this many padded tokens (bounds
    peak memory; same optimizer step). 0 = never split."""
    replay_fraction: float = _RT["replay_fraction"]
    """Add this many rehearsal examples per training example (a share, 0-1): text the base model
    writes itself (once per model, cached), learned with loss on every token, which pulls the
    adapter back to the base model's own distribution on everything that is not the memory."""
    gradient_checkpointing: bool = False
    """Recompute activations in the backward pass: less memory, ~25% slower."""
    seed: int = 42
    warmup_ratio: float = 0.05
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    bf16: bool | None = None
    """None = on where the hardware runs it fast (CUDA bf16, CPU with AVX512-bf16/AMX)."""
    device: str | None = None
    threads: int | None = None
    """torch CPU threads (None = torch's default)."""
    probe_sample: int = _RT["probe_sample"]
    """How many probes to generate answers for after each epoch (0 = none)."""
    probe_max_new_tokens: int = 64
    patience: int = _RT["patience"]
    """Epochs without a better probe recall before stopping (0 = never stop early)."""
    save_every: int = 0
    """Also checkpoint every N optimizer steps (0 = only at epoch ends and on Ctrl-C)."""
    keep_checkpoint: bool = True
    """Keep checkpoints/last after a finished run so it can be resumed with more epochs."""
    resume: bool = False
    overwrite: bool = False
    # distributed (accelerate launch)
    num_processes: int = 1
    num_machines: int = 1
    machine_rank: int = 0
    main_process_ip: str | None = None
    main_process_port: int | None = None
    accelerate_config: str | None = None
    # --from-store
    from_store: bool = False
    db: str | None = None
    export: dict[str, Any] = field(default_factory=dict)
    """Filters/options passed to memtune.dataset's export (scope_type, category, tags, ...)."""

    # ----------------------------------------------------------------- helpers
    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def problems(self) -> list[str]:
        """Every invalid setting at once (litgpt-style), so the user fixes them in one go."""
        p: list[str] = []
        if self.method not in METHODS:
            p.append(f"method {self.method!r} is not one of {', '.join(METHODS)}")
        if not self.bundle and not self.from_store:
            p.append("no bundle: pass BUNDLE_DIR or --from-store")
        for name in ("epochs", "batch_size", "grad_accum", "max_length", "num_processes", "num_machines"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 1:
                p.append(f"{name.replace('_', '-')} must be a positive integer (got {v!r})")
        for name in ("max_steps", "rank", "alpha"):
            v = getattr(self, name)
            if v is not None and (not isinstance(v, int) or v < 1):
                p.append(f"{name.replace('_', '-')} must be a positive integer (got {v!r})")
        if self.lr is not None and not 0 < self.lr < 1:
            p.append(f"lr {self.lr} must be in (0, 1)")
        if not isinstance(self.replay_fraction, (int, float)) or not 0 <= self.replay_fraction <= 1:
            p.append(f"replay-fraction {self.replay_fraction!r} must be a number in 0..1")
        sl = self.skip_layers
        if isinstance(sl, bool) or not isinstance(sl, (int, float)) or sl < 0 or (sl >= 1 and sl != int(sl)):
            p.append(f"skip-layers must be a whole number of layers or a fraction below 1 (got {sl!r})")
        if self.dropout is not None and not 0 <= self.dropout < 1:
            p.append(f"dropout {self.dropout} must be in [0, 1)")
        if not isinstance(self.protect_energy, (int, float)) or not 0 <= self.protect_energy < 1:
            p.append(f"protect-energy {self.protect_energy!r} must be a number in [0, 1) (0 = off)")
        if not 0 <= self.warmup_ratio < 1:
            p.append(f"warmup-ratio {self.warmup_ratio} must be in [0, 1)")
        for name in ("probe_sample", "probe_max_new_tokens", "patience", "save_every", "machine_rank",
                     "max_batch_tokens"):
            v = getattr(self, name)
            if not isinstance(v, int) or v < 0:
                p.append(f"{name.replace('_', '-')} must be >= 0 (got {v!r})")
        if self.max_length is not None and isinstance(self.max_length, int) and self.max_length < 16:
            p.append(f"max-length {self.max_length} is too small (>= 16)")
        if self.num_machines > 1 and not self.main_process_ip:
            p.append("--num-machines > 1 needs --main-process-ip (the address of machine rank 0)")
        if self.machine_rank >= self.num_machines:
            p.append(f"machine-rank {self.machine_rank} must be below num-machines {self.num_machines}")
        if self.accelerate_config and not Path(self.accelerate_config).is_file():
            p.append(f"accelerate config {self.accelerate_config} does not exist")
        if self.resume and self.overwrite:
            p.append("--resume and --overwrite contradict each other")
        if not isinstance(self.export, dict):
            p.append("export must be a mapping of filter names to values")
        return p

    def validate(self) -> TrainConfig:
        problems = self.problems()
        if problems:
            raise ConfigError(problems, hint="`memtune train --help` lists every option")
        return self

    @property
    def distributed(self) -> bool:
        """Whether this run must go through `accelerate launch`."""
        return self.num_processes > 1 or self.num_machines > 1 or bool(self.accelerate_config)


_FIELDS = {f.name for f in dataclasses.fields(TrainConfig)}


def _norm_key(k: str) -> str:
    return k.strip().lstrip("-").replace("-", "_")


def config_from_mapping(data: dict[str, Any], *, source: str = "config") -> TrainConfig:
    """Build a TrainConfig from YAML-ish keys (dashes or underscores); unknown keys are errors."""
    clean: dict[str, Any] = {}
    unknown: list[str] = []
    for k, v in (data or {}).items():
        nk = _norm_key(str(k))
        if nk == "learning_rate":
            nk = "lr"
        if nk not in _FIELDS:
            unknown.append(str(k))
        else:
            clean[nk] = v
    if unknown:
        raise ConfigError(
            [f"{source}: {k!r} was removed: {REMOVED[_norm_key(k)]}" if _norm_key(k) in REMOVED
             else f"{source}: unknown key {k!r}" for k in unknown],
            hint=f"valid keys: {', '.join(sorted(_FIELDS))}",
        )
    return TrainConfig(**clean)


def load_config_file(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Read a YAML config; returns the raw mapping so flags can be layered on top."""
    p = Path(path)
    if not p.is_file():
        raise InputError(f"config file {p} does not exist", hint="pass an existing YAML file to --config")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as exc:
        raise InputError(f"config file {p} is not valid YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise InputError(f"config file {p} must hold a mapping of option: value")
    return {_norm_key(str(k)): v for k, v in data.items()}


def merge_config(
    file: str | os.PathLike[str] | None = None, overrides: dict[str, Any] | None = None
) -> TrainConfig:
    """YAML file first, then explicit overrides (CLI flags win; None = not given)."""
    data: dict[str, Any] = load_config_file(file) if file else {}
    for k, v in (overrides or {}).items():
        if v is not None:
            data[_norm_key(k)] = v
    return config_from_mapping(data, source=str(file) if file else "options")


def dump_config(cfg: TrainConfig, path: str | os.PathLike[str]) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False), encoding="utf-8")
