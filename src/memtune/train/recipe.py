"""LoRA / QLoRA / full fine-tuning: hardware checks, model preparation, resolved hyper-parameters.

Checks run before any model is loaded, so a QLoRA request on a CPU machine fails in
milliseconds with the fix (``--method lora``) instead of after a model load.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
import importlib.util
import warnings
from dataclasses import dataclass
from collections.abc import Iterator
from typing import Any

from memtune.errors import ConfigError, ModelError
from memtune.recipes import recipe_for
from memtune.train.config import FULL_FINETUNE_LR, TrainConfig

PRESET_RANK, PRESET_DROPOUT = 8, 0.05
"""A model with neither a recipe nor a bundle preset gets the small-model preset (dataset.presets)."""
ALL_LINEAR = "all-linear"
"""LoRA on every linear layer but the output head ("LoRA Learns Less and Forgets Less")."""
MODULE_GROUPS: dict[str, tuple[str, ...]] = {
    "mlp": ("mlp", "feed_forward", "ffn"),
    "attention": ("self_attn", "attn", "attention", "self_attention"),
}
"""``--target-modules mlp`` / ``attention``: the linear layers under a block of that name, in any
architecture. On the default model the MLP holds the facts: attention-only LoRA recalled 0.08 of
the topic probes where MLP-only recalled 0.60 (docs/experiments.md)."""


@dataclass(frozen=True)
class Hyper:
    """Hyper-parameters after defaults were filled from the bundle and the method."""

    lr: float
    rank: int
    alpha: int
    dropout: float
    target_modules: list[str] | str


def resolve_hyper(cfg: TrainConfig, adapter_config: dict[str, Any] | None = None,
                  exported: dict[str, Any] | None = None) -> Hyper:
    """The LoRA shape and learning rate, each from one place.

    Training owns these: flags/YAML win, then the base model's recipe. A model without a recipe
    of its own takes the default model's, but the rank and alpha of its size preset (as the
    bundle's ``adapter_config.json`` holds them). That file, written from the same recipe for
    other trainers, otherwise counts only where the export was told a value explicitly
    (``exported``: the bundle's export config, e.g. ``--lora-rank 32``).
    """
    rec = recipe_for(cfg.model)
    lora = dict(rec.lora)
    if not rec.matches(cfg.model):
        lora.pop("rank", None)
        lora.pop("alpha", None)
    ac = adapter_config or {}
    asked = exported or {}

    def exported_value(export_key: str, ac_key: str) -> Any:
        return ac.get(ac_key) if asked.get(export_key) is not None else None

    rank = cfg.rank or exported_value("lora_rank", "r") or lora.get("rank") or ac.get("r") or PRESET_RANK
    alpha = cfg.alpha or (2 * cfg.rank if cfg.rank else None) or exported_value("lora_alpha", "lora_alpha") \
        or (lora.get("alpha") if rank == lora.get("rank") else None) or ac.get("lora_alpha") or 2 * rank
    dropout = cfg.dropout if cfg.dropout is not None else exported_value("lora_dropout", "lora_dropout")
    if dropout is None:
        dropout = lora.get("dropout", ac.get("lora_dropout", PRESET_DROPOUT))
    targets = cfg.target_modules or lora.get("target_modules") or ac.get("target_modules") or ALL_LINEAR
    if isinstance(targets, str) and targets != ALL_LINEAR and "," in targets:
        targets = [t.strip() for t in targets.split(",") if t.strip()]
    if cfg.lr:
        lr = cfg.lr
    elif cfg.method == "full":
        lr = FULL_FINETUNE_LR
    else:
        lr = float(rec.train["lr"])
    return Hyper(lr=lr, rank=int(rank), alpha=int(alpha), dropout=float(dropout), target_modules=targets)


def check_method(method: str, device: str) -> None:
    """Fail fast when the method cannot run on this machine."""
    if method != "qlora":
        return
    import torch

    if not (device.startswith("cuda") and torch.cuda.is_available()):
        raise ModelError(
            "QLoRA (4-bit NF4 via bitsandbytes) needs a CUDA GPU, and this machine has none",
            hint="use --method lora: on a small model LoRA on the CPU is the fast path",
        )
    if importlib.util.find_spec("bitsandbytes") is None:
        raise ModelError(
            "QLoRA needs the bitsandbytes package, which is not installed",
            hint="pip install bitsandbytes (CUDA machines), or use --method lora",
        )


def quantization_config(method: str) -> Any:
    if method != "qlora":
        return None
    import torch
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16,
    )


def group_targets(model: Any, group: str) -> list[str]:
    """``mlp`` / ``attention`` → this model's ``block.leaf`` names for that block's linear layers
    (``mlp.gate_proj``). PEFT matches them as name suffixes, so GPT-2's ``mlp.c_proj`` does not
    pull in ``attn.c_proj``."""
    from memtune.dataset.presets import linear_types

    linear = linear_types()
    parents = MODULE_GROUPS[group]
    found: set[str] = set()
    for name, module in model.named_modules():
        parts = name.split(".")
        if len(parts) >= 2 and parts[-2] in parents and isinstance(module, linear):
            found.add(f"{parts[-2]}.{parts[-1]}")
    return sorted(found)


def _targets(model: Any, targets: list[str] | str) -> list[str] | str:
    """Keep explicit target names that exist in this model; a bundle written for another
    architecture (e.g. gate_proj on a GPT-2) must not abort the run. A block group (``mlp``)
    that this architecture does not name falls back to every linear layer, with a warning."""
    group = targets.strip().lower() if isinstance(targets, str) else None
    if group in MODULE_GROUPS:
        found = group_targets(model, group)
        if not found:
            warnings.warn(f"target modules {group!r}: this model has no linear layers under a block named "
                          f"{' / '.join(MODULE_GROUPS[group])}; LoRA goes on every linear layer instead "
                          "(name the modules with --target-modules to choose)", stacklevel=2)
            return ALL_LINEAR
        return found
    if targets == ALL_LINEAR or isinstance(targets, str):
        return targets
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    kept = [t for t in targets if t in names]
    return kept or ALL_LINEAR


def prepare_model(model: Any, cfg: TrainConfig, hyper: Hyper) -> Any:
    """Wrap the base model for the method; returns the model whose parameters train."""
    if cfg.method == "full":
        model.requires_grad_(True)
        return model
    from peft import LoraConfig, TaskType, get_peft_model

    if cfg.method == "qlora":
        from peft import prepare_model_for_kbit_training

        # No gradient checkpointing: it cost ~15% here, and small models fit without it.
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    lcfg = LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=hyper.rank,
        lora_alpha=hyper.alpha,
        lora_dropout=hyper.dropout,
        target_modules=_targets(model, hyper.target_modules),
        bias="none",
        layers_to_transform=_adapted_layers(model, cfg.skip_layers),
    )
    with warnings.catch_warnings():  # peft calls a transformers API deprecated for v6
        warnings.filterwarnings("ignore", category=FutureWarning)
        return get_peft_model(model, lcfg)


def _adapted_layers(model: Any, skip: float) -> list[int] | None:
    """Indices of the layers that get LoRA when the first ``skip`` are left out (None = all);
    a fraction below 1 is that share of the layers, rounded down."""
    if not skip:
        return None
    n = getattr(getattr(model, "config", None), "num_hidden_layers", None)
    if not isinstance(n, int):
        raise ConfigError("--skip-layers: the model's config does not say how many layers it has",
                          hint="train without --skip-layers")
    if skip < 1:
        skip = math.floor(skip * n + 1e-6)
        if not skip:
            return None
    skip = int(skip)
    if skip >= n:
        raise ConfigError(f"--skip-layers {skip} leaves no layer to adapt: the model has {n}",
                          hint=f"pass a number below {n} (e.g. {n // 3})")
    return list(range(skip, n))


@functools.cache
def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def release_memory() -> None:
    """Hand freed activation memory back to the OS between steps (glibc only).

    Dynamic padding gives every batch a different shape; glibc keeps the freed blocks
    and the heap creeps up step after step (measured: 3.3 → 8 GB over 20 steps). Trimming
    every step costs ~10% tokens/s in page faults and saves ~150 MB of peak RSS.
    """
    libc = _libc()
    if libc is not None and hasattr(libc, "malloc_trim"):
        libc.malloc_trim(0)


def keep_lora_inputs_low_precision(model: Any) -> None:
    """Under bf16 autocast with a bf16 base, stop PEFT casting each LoRA input to the fp32
    adapter dtype: that made two extra full-size copies per adapted layer (x in fp32, then
    its dropout). Measured: -25% activation memory, +5-20% tokens/s; the adapter weights and
    their gradients stay fp32."""
    from peft.tuners.tuners_utils import BaseTunerLayer

    for mod in model.modules():
        if isinstance(mod, BaseTunerLayer):
            mod.cast_input_dtype_enabled = False


def enable_gradient_checkpointing(model: Any) -> None:
    """Trade ~25% speed for ~half the activation memory (off by default: speed first)."""
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if hasattr(model, "enable_input_require_grads"):
        model.enable_input_require_grads()


def trainable_parameters(model: Any) -> list[tuple[str, Any]]:
    return [(n, p) for n, p in model.named_parameters() if p.requires_grad]
