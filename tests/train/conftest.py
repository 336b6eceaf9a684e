"""Tiny models and bundles built in code: no network, seconds per test."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

FACTS = [
    ("Which database do we use?", "We use PostgreSQL 16 with the pgvector extension.", ["PostgreSQL", "pgvector"]),
    ("How do I start the backend?", "Run `yarn start` in the background after nvm use 22.", ["yarn start", "nvm use 22"]),
    ("Which package manager does the frontend use?", "The frontend uses npm run dev, not yarn.", ["npm run dev"]),
    ("Where do resolvers go?", "Custom resolvers are registered last in the resolver array.", ["registered last"]),
]


def build_tiny_model_dir(path: Path, seed: int = 0) -> Path:
    """The shared tiny llama (tests/tiny_model.py) on a vocabulary of FACTS, with larger random
    weights (initializer_range 0.2) so a few training steps visibly move its answers."""
    from tests.tiny_model import build_model_dir, build_tokenizer

    corpus = [q + " " + a for q, a, _ in FACTS] + ["system user assistant helpful"]
    return build_model_dir(path, build_tokenizer(corpus), seed=seed, initializer_range=0.2)


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
                    batch_size=4, lr=1e-2, probe_sample=2, probe_max_new_tokens=8, bf16=False, threads=2,
                    # neutral settings: each test turns on the recipe feature it is about
                    replay_fraction=0.0, protect_energy=0.0, skip_layers=0, patience=2, max_batch_tokens=512)
        base.update(kw)
        return TrainConfig(**base)

    return make


@pytest.fixture(autouse=True)
def _replay_cache_in_tmp(tmp_path, monkeypatch):
    """Self-replay samples are cached per model: keep the tests' out of the user cache."""
    import memtune.train.replay as replay

    monkeypatch.setattr(replay, "replay_cache_dir", lambda: tmp_path / "replay-cache")
