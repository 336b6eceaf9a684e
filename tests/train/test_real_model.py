"""The embedded default model end to end: a few LoRA steps, then reload with PEFT (CI: slow)."""

from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.slow


def test_default_model_trains_a_few_steps_and_reloads(tmp_path, bundle_dir):
    import torch
    from peft import PeftModel
    from safetensors.torch import load_file

    from memtune.infer import load_assistant
    from memtune.train import TrainConfig, load_base_model, train

    torch.set_num_threads(2)
    res = train(TrainConfig(bundle=str(bundle_dir), out=str(tmp_path / "adapter"), max_steps=3, batch_size=4,
                            probe_sample=2, probe_max_new_tokens=16, threads=2), progress=False)
    assert res.steps == 3
    out = res.out_dir
    info = json.loads((out / "memtune.json").read_text())
    assert info["base_model"]["name"] == "smollm2-135m-instruct"
    assert info["base_model"]["hub_id"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert info["metrics"]["tokens_per_s"] > 0

    base, tok = load_base_model()
    assert tok.pad_token_id == tok.eos_token_id == 2  # SmolLM2: pad *is* <|im_end|>
    model = PeftModel.from_pretrained(base, str(out))
    saved = load_file(str(out / "adapter_model.safetensors"))
    loaded = dict(model.named_parameters())
    name = next(k for k in saved if "lora_B" in k)
    match = [v for k, v in loaded.items() if k.endswith(name.replace(".weight", ".default.weight"))]
    assert match and torch.equal(match[0].detach(), saved[name])
    assert saved[name].abs().sum() > 0  # trained

    answer = load_assistant(out).ask("Which database do we use?", max_new_tokens=24)
    assert isinstance(answer, str) and answer
