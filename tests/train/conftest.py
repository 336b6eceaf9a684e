"""Tiny models and bundles built in code: no network, seconds per test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

CHATML = (
    "{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
    "{{ '<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n' }}{% endif %}"
    "{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)

FACTS = [
    ("Which database do we use?", "We use PostgreSQL 16 with the pgvector extension.", ["PostgreSQL", "pgvector"]),
    ("How do I start the backend?", "Run `yarn start` in the background after nvm use 22.", ["yarn start", "nvm use 22"]),
    ("Which package manager does the frontend use?", "The frontend uses npm run dev, not yarn.", ["npm run dev"]),
    ("Where do resolvers go?", "Custom resolvers are registered last in the resolver array.", ["registered last"]),
]


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    corpus = [q + " " + a for q, a, _ in FACTS] + ["system user assistant helpful"]
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    tok.train_from_iterator(corpus * 5, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", pad_token="<|im_end|>", bos_token="<|im_start|>",
        unk_token="<|endoftext|>",
    )
    fast.chat_template = CHATML
    return fast


def build_tiny_model_dir(path: Path, seed: int = 0) -> Path:
    """A randomly initialised 2-layer llama + ChatML tokenizer saved as a transformers dir."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = build_tokenizer()
    torch.manual_seed(seed)
    cfg = LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True, initializer_range=0.2,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
    )
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return path


def write_bundle(path: Path, *, repeats: int = 3, fmt: str = "messages", guidelines=None) -> Path:
    path.mkdir(parents=True, exist_ok=True)

    def rec(q: str, a: str) -> dict:
        if fmt == "alpaca":
            return {"instruction": q, "input": "", "output": a}
        return {"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": a}]}

    with (path / "train.jsonl").open("w") as fh:
        for _ in range(repeats):
            for q, a, _ in FACTS:
                fh.write(json.dumps(rec(q, a)) + "\n")
    with (path / "eval.jsonl").open("w") as fh:
        for q, a, _ in FACTS[:2]:
            fh.write(json.dumps(rec(q.replace("?", " please?"), a)) + "\n")
    with (path / "probes.jsonl").open("w") as fh:
        for i, (q, _, kws) in enumerate(FACTS):
            fh.write(json.dumps({"question": q, "expected_keywords": kws, "context": "", "guideline_id": i + 1,
                                 "guideline_version": 1, "category": "general", "name": f"g{i + 1}"}) + "\n")
    (path / "adapter_config.json").write_text(json.dumps(
        {"r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj",
                                                                          "gate_proj", "up_proj", "down_proj"]}))
    gl = guidelines if guidelines is not None else [{"id": i + 1, "version": 1} for i in range(len(FACTS))]
    (path / "metadata.json").write_text(json.dumps({"counts": {"train": repeats * len(FACTS)}, "guidelines": gl,
                                                    "fingerprint": "sha256:test-bundle"}))
    return path


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    import torch

    torch.set_num_threads(2)
    return build_tiny_model_dir(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_tokenizer(tiny_model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny_model_dir)


@pytest.fixture
def bundle_dir(tmp_path) -> Path:
    return write_bundle(tmp_path / "bundle")


@pytest.fixture
def tiny_config(tiny_model_dir, bundle_dir, tmp_path):
    """A fast TrainConfig on the tiny model (a factory: override any field)."""
    from memtune.train.config import TrainConfig

    def make(**kw):
        base = dict(bundle=str(bundle_dir), out=str(tmp_path / "adapter"), model=str(tiny_model_dir), epochs=1,
                    batch_size=4, lr=1e-2, probe_sample=2, probe_max_new_tokens=8, bf16=False, threads=2)
        base.update(kw)
        return TrainConfig(**base)

    return make


@pytest.fixture(autouse=True)
def _replay_cache_in_tmp(tmp_path, monkeypatch):
    """Self-replay samples are cached per model: keep the tests' out of the user cache."""
    import memtune.train.replay as replay

    monkeypatch.setattr(replay, "replay_cache_dir", lambda: tmp_path / "replay-cache")
