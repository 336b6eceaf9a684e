"""LoRA presets and target modules for the model a bundle is meant for.

Biderman et al. 2024: target every linear layer, alpha = 2r. The rank grows with model
size (small / medium / large). Target module names come from the real model when it is
at hand, else from a table keyed by ``model_type`` — resolved from a local directory's
config.json, a GGUF file's metadata, or a name / hub id matched on word boundaries so
``meta-llama/Llama-3-8B`` is llama and ``optimum/foo`` is not opt.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memtune.models import spec_for

PRESETS = {
    "small": {"r": 8, "lora_alpha": 16, "lora_dropout": 0.05},
    "medium": {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05},
    "large": {"r": 32, "lora_alpha": 64, "lora_dropout": 0.1},
}
_LLAMA_LIKE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
TARGET_MODULES: dict[str, list[str]] = {
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "mixtral": ["q_proj", "k_proj", "v_proj", "o_proj", "w1", "w2", "w3"],
    "qwen2": _LLAMA_LIKE,
    "qwen3": _LLAMA_LIKE,
    "qwen2_moe": _LLAMA_LIKE,
    "gemma": _LLAMA_LIKE,
    "gemma2": _LLAMA_LIKE,
    "gemma3_text": _LLAMA_LIKE,
    "gemma3": _LLAMA_LIKE,
    "olmo2": _LLAMA_LIKE,
    "granite": _LLAMA_LIKE,
    "cohere": _LLAMA_LIKE,
    "deepseek_v3": ["q_a_proj", "q_b_proj", "kv_a_proj_with_mqa", "kv_b_proj", "o_proj",
                    "gate_proj", "up_proj", "down_proj"],
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    "phi": ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"],
    "starcoder2": ["q_proj", "k_proj", "v_proj", "o_proj", "c_fc", "c_proj"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_bigcode": ["c_attn", "c_proj", "c_fc"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "gptj": ["q_proj", "k_proj", "v_proj", "out_proj", "fc_in", "fc_out"],
    "bloom": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "falcon": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
    "t5": ["q", "k", "v", "o", "wi", "wo", "wi_0", "wi_1"],
    "mt5": ["q", "k", "v", "o", "wi_0", "wi_1", "wo"],
    "bart": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
}
FALLBACK_MODULES = ["q_proj", "k_proj", "v_proj", "o_proj"]
# (pattern on the lowercased name, model_type); first match wins, so specific names come first.
_NAME_RULES: list[tuple[str, str]] = [
    (r"mixtral", "mixtral"),
    (r"mistral|ministral|codestral|zephyr", "mistral"),
    (r"qwen[-_ ]?3", "qwen3"),
    (r"qwen|qwq", "qwen2"),
    (r"gemma", "gemma"),
    (r"phi[-_ ]?(?:3|4)", "phi3"),
    (r"phi[-_ ]?[12](?:\.5)?|phi(?![a-z])", "phi"),
    (r"starcoder[-_ ]?2", "starcoder2"),
    (r"starcoder|santacoder|gpt[-_]?bigcode", "gpt_bigcode"),
    (r"distilgpt2|gpt[-_]?2", "gpt2"),
    (r"gpt[-_]?neox|pythia|dolly", "gpt_neox"),
    (r"gpt[-_]?j", "gptj"),
    (r"bloomz?", "bloom"),
    (r"falcon", "falcon"),
    (r"opt", "opt"),
    (r"flan[-_]?t5|t5|ul2", "t5"),
    (r"mt5", "mt5"),
    (r"bart", "bart"),
    (r"deepseek[-_]?v3|deepseek[-_]?r1", "deepseek_v3"),
    (r"(?:code|tiny|open|vicuna[-_]?)?llama|vicuna|alpaca|smollm|deepseek|yi|olmo|granite|hermes|solar", "llama"),
]


@dataclass(frozen=True)
class ModelInfo:
    """What the bundle knows about its target model."""

    name: str  # as written to adapter_config's base_model_name_or_path
    model_type: str | None
    num_params: int | None
    source: str  # default | local | gguf | name


def lora_preset(num_params: int | None) -> dict[str, Any]:
    """small (<3B) / medium (3–13B) / large (>13B): r 8/16/32, alpha 2r, dropout .05/.05/.1."""
    if num_params is None or num_params < 3e9:
        name = "small"
    elif num_params <= 13e9:
        name = "medium"
    else:
        name = "large"
    return {"preset": name, **PRESETS[name]}


def model_type_from_name(name: str) -> str | None:
    """'meta-llama/Llama-3-8B' → 'llama' (word-boundary match; None when unknown)."""
    low = name.lower()
    for pattern, model_type in _NAME_RULES:
        if re.search(r"(?<![a-z0-9])(?:" + pattern + r")(?![a-z])", low):
            return model_type
    return None


def params_from_name(name: str) -> int | None:
    """'Llama-3-8B' → 8e9, 'Mixtral-8x7B' → 56e9, 'SmolLM2-135M' → 135e6."""
    low = name.lower()
    m = re.search(r"(?<![a-z0-9.])(\d+)x(\d+(?:\.\d+)?)b(?![a-z])", low)
    if m:
        return int(int(m.group(1)) * float(m.group(2)) * 1e9)
    m = re.search(r"(?<![a-z0-9.])(\d+(?:\.\d+)?)\s?([bm])(?![a-z])", low)
    if m:
        return int(float(m.group(1)) * (1e9 if m.group(2) == "b" else 1e6))
    return None


def _params_from_config(cfg: dict[str, Any]) -> int | None:
    """A rough parameter count from a transformers config (enough to pick a preset)."""
    cfg = cfg.get("text_config", cfg)
    h = cfg.get("hidden_size") or cfg.get("n_embd") or cfg.get("d_model")
    layers = cfg.get("num_hidden_layers") or cfg.get("n_layer") or cfg.get("num_layers")
    vocab = cfg.get("vocab_size") or 0
    if not h or not layers:
        return None
    inter = cfg.get("intermediate_size") or cfg.get("n_inner") or cfg.get("d_ff") or 4 * h
    heads = cfg.get("num_attention_heads") or cfg.get("n_head") or 1
    kv = cfg.get("num_key_value_heads") or heads
    attn = h * h * 2 + 2 * h * (h * kv // heads)
    mlp = (3 if cfg.get("hidden_act", "") in ("silu", "swiglu", "gelu_pytorch_tanh") else 2) * h * inter
    experts = cfg.get("num_local_experts") or 1
    tied = cfg.get("tie_word_embeddings", True)
    return int(layers * (attn + mlp * experts) + vocab * h * (1 if tied else 2))


def _gguf_arch(path: Path) -> str | None:
    try:
        from gguf import GGUFReader
    except ImportError:
        return None
    try:
        field = GGUFReader(str(path)).fields.get("general.architecture")
        return bytes(field.parts[field.data[0]]).decode() if field else None
    except Exception:  # noqa: BLE001 - a file we cannot read tells us nothing
        return None


def resolve_model(target: str | None) -> ModelInfo:
    """The target model's name, type and size, from whatever the user gave (no network)."""
    spec = spec_for(target)  # a registry name or alias (memtune.models), as training accepts them
    if spec is not None:
        return ModelInfo(spec.hub_id, spec.model_type, spec.num_params, "default")
    p = Path(target).expanduser()
    if p.is_dir() and (p / "config.json").is_file():
        try:
            cfg = json.loads((p / "config.json").read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            cfg = {}
        return ModelInfo(str(p), cfg.get("model_type") or model_type_from_name(p.name), _params_from_config(cfg), "local")
    ggufs = sorted(p.glob("*.gguf")) if p.is_dir() else ([p] if p.suffix == ".gguf" and p.is_file() else [])
    if ggufs:
        arch = _gguf_arch(ggufs[0])
        return ModelInfo(str(p), arch or model_type_from_name(ggufs[0].name), params_from_name(ggufs[0].name), "gguf")
    return ModelInfo(target, model_type_from_name(target), params_from_name(target), "name")


def target_modules_for(model: Any = None, model_type: str | None = None, name_or_path: str | None = None) -> list[str]:
    """LoRA target modules: the model's own Linear leaf names (minus the output head) when
    ``model`` is given, else the table entry for ``model_type`` (resolved from
    ``name_or_path`` if needed), else the attention projections shared by most decoders."""
    if model is not None:
        names = _linear_leaf_names(model)
        if names:
            return names
        model_type = model_type or getattr(getattr(model, "config", None), "model_type", None)
    if model_type is None and name_or_path is not None:
        model_type = resolve_model(name_or_path).model_type
    if model_type and model_type.lower() in TARGET_MODULES:
        return list(TARGET_MODULES[model_type.lower()])
    return list(FALLBACK_MODULES)


def linear_types() -> tuple[type, ...]:
    """Module classes LoRA can adapt: torch's Linear and GPT-2 style Conv1D "linear" layers."""
    import torch

    out: tuple[type, ...] = (torch.nn.Linear,)
    try:
        from transformers.pytorch_utils import Conv1D

        out += (Conv1D,)
    except ImportError:  # pragma: no cover
        pass
    return out


def _linear_leaf_names(model: Any) -> list[str]:
    linear = linear_types()
    head = None
    if hasattr(model, "get_output_embeddings"):
        head = model.get_output_embeddings()
    out: list[str] = []
    for full, module in model.named_modules():
        if not isinstance(module, linear) or module is head:
            continue
        leaf = full.rsplit(".", 1)[-1]
        if leaf in ("lm_head", "embed_out", "score", "classifier", "output") or leaf in out:
            continue
        out.append(leaf)
    return out


_MLP_LEAVES = frozenset({"gate_proj", "up_proj", "down_proj", "gate_up_proj", "w1", "w2", "w3", "fc1", "fc2", "c_fc",
                         "fc_in", "fc_out", "dense_h_to_4h", "dense_4h_to_h", "wi", "wo", "wi_0", "wi_1"})
"""Leaf names of feed-forward layers in the table above (for a recipe's ``target_modules: mlp``)."""


def _recipe_lora(info: ModelInfo) -> tuple[str, dict[str, Any]]:
    """(recipe name, the LoRA shape it gives this model): a model without a recipe of its own
    takes the default model's, but the rank and alpha of its size preset."""
    from memtune.recipes import default_recipe, recipe_for

    rec = default_recipe() if info.source == "default" else recipe_for(info.name)
    lora = dict(rec.lora)
    if info.source != "default" and not rec.matches(info.name):
        lora.pop("rank", None)
        lora.pop("alpha", None)
    return rec.name, lora


def _group(modules: list[str] | str, group: Any) -> list[str] | str:
    """A recipe's block group (``mlp`` / ``attention``) as this model's module names."""
    if not isinstance(modules, list):  # an unknown architecture: PEFT resolves "all-linear" itself
        return modules
    if not isinstance(group, str) or group not in ("mlp", "attention"):
        return group or modules
    picked = [m for m in modules if (m in _MLP_LEAVES) == (group == "mlp")]
    return picked or modules


def adapter_config(info: ModelInfo, *, rank: int | None = None, alpha: int | None = None,
                   dropout: float | None = None, model: Any = None) -> tuple[dict[str, Any], dict[str, Any]]:
    """(``LoraConfig`` keyword arguments, a summary for metadata.json) for the target model.

    The LoRA shape is the recipe's (``memtune/recipes``), the one ``memtune train`` uses; a model
    without a recipe of its own gets the rank and alpha of its size preset. An unknown architecture gets
    ``target_modules="all-linear"``: PEFT then resolves the real Linear layers when the model is
    loaded, which beats guessing names.
    """
    recipe_name, lora = _recipe_lora(info)
    preset = lora_preset(info.num_params)
    r = rank or lora.get("rank") or preset["r"]
    a = alpha or (2 * r if rank else lora.get("alpha") or preset["lora_alpha"])
    d = dropout if dropout is not None else lora.get("dropout", preset["lora_dropout"])
    known = info.model_type is not None and info.model_type.lower() in TARGET_MODULES
    modules: list[str] | str = (
        target_modules_for(model, info.model_type) if (known or model is not None) else "all-linear"
    )
    if lora.get("target_modules"):
        modules = _group(modules, lora["target_modules"])
    kwargs: dict[str, Any] = {"r": r, "lora_alpha": a, "lora_dropout": d, "target_modules": modules,
                              "bias": "none", "task_type": "CAUSAL_LM", "base_model_name_or_path": info.name}
    summary = {"preset": preset["preset"], "recipe": recipe_name, "r": r, "lora_alpha": a, "lora_dropout": d,
               "target_modules": modules, "model_type": info.model_type, "num_params": info.num_params,
               "model_source": info.source, "base_model_name_or_path": info.name}
    return kwargs, summary


def write_adapter_config(directory: Path, kwargs: dict[str, Any]) -> Path:
    """adapter_config.json that ``LoraConfig.from_pretrained(dir)`` loads (fields left out take PEFT's
    defaults). Written without importing peft: that import (torch + transformers) cost ~6 s, more
    than rendering 10,000 guidelines."""
    path = directory / "adapter_config.json"
    path.write_text(json.dumps({**kwargs, "peft_type": "LORA", "inference_mode": False}, indent=2) + "\n",
                    encoding="utf-8")
    return path
