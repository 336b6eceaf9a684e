"""LoRA size presets and target modules, from names, config dirs and real models."""

from __future__ import annotations

import json

import pytest

from memtune.dataset import lora_preset, resolve_model, target_modules_for
from memtune.dataset.presets import adapter_config, model_type_from_name, params_from_name, write_adapter_config


@pytest.mark.parametrize(("params", "preset", "r", "alpha", "dropout"), [
    (135e6, "small", 8, 16, 0.05), (2.9e9, "small", 8, 16, 0.05), (7e9, "medium", 16, 32, 0.05),
    (13e9, "medium", 16, 32, 0.05), (70e9, "large", 32, 64, 0.1),
])
def test_size_presets(params, preset, r, alpha, dropout):
    p = lora_preset(int(params))
    assert (p["preset"], p["r"], p["lora_alpha"], p["lora_dropout"]) == (preset, r, alpha, dropout)


@pytest.mark.parametrize(("name", "model_type"), [
    ("meta-llama/Llama-3-8B", "llama"), ("meta-llama/Meta-Llama-3.1-70B-Instruct", "llama"),
    ("codellama/CodeLlama-7b-hf", "llama"), ("TinyLlama/TinyLlama-1.1B-Chat-v1.0", "llama"),
    ("HuggingFaceTB/SmolLM2-135M-Instruct", "llama"), ("mistralai/Mistral-7B-v0.1", "mistral"),
    ("mistralai/Mixtral-8x7B-v0.1", "mixtral"), ("Qwen/Qwen2.5-7B-Instruct", "qwen2"),
    ("google/gemma-2-9b", "gemma"), ("microsoft/Phi-3-mini-4k-instruct", "phi3"), ("microsoft/phi-2", "phi"),
    ("openai-community/gpt2", "gpt2"), ("distilgpt2", "gpt2"), ("EleutherAI/pythia-410m", "gpt_neox"),
    ("bigscience/bloom-560m", "bloom"), ("tiiuae/falcon-7b", "falcon"), ("facebook/opt-1.3b", "opt"),
    ("google/flan-t5-base", "t5"), ("t5-small", "t5"), ("llama", "llama"),
    ("optimum/some-model", None), ("acme/unknown-model", None),
])
def test_model_type_from_names_uses_word_boundaries(name, model_type):
    assert model_type_from_name(name) == model_type


def test_params_from_names():
    assert params_from_name("meta-llama/Llama-3-8B") == 8_000_000_000
    assert params_from_name("mistralai/Mixtral-8x7B-v0.1") == 56_000_000_000
    assert params_from_name("SmolLM2-135M-Instruct") == 135_000_000
    assert params_from_name("Qwen2.5-0.5B") == 500_000_000
    assert params_from_name("gpt2") is None


def test_table_lookups():
    llama = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    assert target_modules_for(name_or_path="meta-llama/Llama-3-8B") == llama
    assert target_modules_for(model_type="gpt2") == ["c_attn", "c_proj", "c_fc"]
    assert target_modules_for(model_type="t5")[:6] == ["q", "k", "v", "o", "wi", "wo"]
    assert target_modules_for(name_or_path="acme/unknown") == ["q_proj", "k_proj", "v_proj", "o_proj"]


def test_default_target_is_the_embedded_model():
    info = resolve_model(None)
    assert (info.model_type, info.source) == ("llama", "default")
    assert lora_preset(info.num_params)["preset"] == "small"


def test_local_dir_reads_config_json(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "qwen2", "hidden_size": 896,
                                                      "num_hidden_layers": 24, "intermediate_size": 4864,
                                                      "vocab_size": 151936, "num_attention_heads": 14,
                                                      "num_key_value_heads": 2, "hidden_act": "silu"}))
    info = resolve_model(str(tmp_path))
    assert info.model_type == "qwen2" and 3e8 < info.num_params < 8e8
    assert target_modules_for(name_or_path=str(tmp_path))[0] == "q_proj"


def test_real_model_linear_leaves(tiny_model_dir):
    from transformers import AutoModelForCausalLM, GPT2Config, GPT2LMHeadModel

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    names = target_modules_for(model)
    assert set(names) == {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"}
    assert "lm_head" not in names
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=32))
    assert set(target_modules_for(gpt2)) == {"c_attn", "c_proj", "c_fc"}  # Conv1D "linears"


def test_adapter_config_loads_with_peft(tmp_path):
    from peft import LoraConfig

    kwargs, summary = adapter_config(resolve_model("meta-llama/Llama-3-8B"))
    write_adapter_config(tmp_path, kwargs)
    cfg = LoraConfig.from_pretrained(str(tmp_path))
    # no recipe for this model: its size preset's rank and alpha, the default recipe's dropout and blocks
    assert (cfg.r, cfg.lora_alpha, cfg.lora_dropout) == (16, 32, 0.0)
    assert set(cfg.target_modules) == {"gate_proj", "up_proj", "down_proj"}
    assert summary["preset"] == "medium"
    kwargs, _ = adapter_config(resolve_model("acme/unknown"), rank=4)
    assert (kwargs["target_modules"], kwargs["r"], kwargs["lora_alpha"]) == ("all-linear", 4, 8)
