"""Evaluation fixtures built in code: the shared tiny llama, a LoRA adapter dir laid out like
``memtune train`` writes it, a bundle and a store. No network, no real model, a few seconds."""

from __future__ import annotations

import json
from pathlib import Path

SYSTEM_PROMPT = "You answer from the demo project's memory."

# (name, category, content, probe question, keywords)
GUIDELINES = [
    ("Backend Start", "commands", "Start the backend with `yarn start` after `nvm use 22`; never in the foreground.",
     "What do I run to bring the backend up?", ["yarn start", "nvm use 22"]),
    ("Frontend Dev Server", "commands", "The frontend dev server runs with `npm run dev`, not yarn.",
     "How is the frontend dev server launched?", ["npm run dev"]),
    ("Database Choice", "architecture", "The store uses PostgreSQL 16 with the pgvector extension.",
     "Which database engine backs the store?", ["PostgreSQL", "pgvector"]),
    ("Resolver Order", "architecture", "Generated resolvers are registered first; custom resolvers are registered last.",
     "In what order are resolvers registered?", ["registered last", "generated"]),
]


def build_model_dir(path: Path, seed: int = 0) -> Path:
    """The shared tiny llama (tests/tiny_model.py) with a vocabulary trained on GUIDELINES."""
    from tests.tiny_model import build_model_dir as build, build_tokenizer

    corpus = [g[2] + " " + g[3] for g in GUIDELINES] + ["system user assistant helpful the of and to a in is"]
    return build(path, build_tokenizer(corpus), seed=seed)


def build_adapter_dir(path: Path, base_dir: Path, bundle_dir: Path | None, seed: int = 1) -> Path:
    """A LoRA adapter with random (non-zero) B matrices, so it changes the model's output,
    plus memtune.json and curves.json in ``memtune train``'s layout."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base_dir)
    peft = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", lora_dropout=0.0))
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, p in peft.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.5)
    peft.save_pretrained(path)
    (path / "memtune.json").write_text(json.dumps({
        "memtune_version": "0.1.0", "method": "lora", "format": "peft",
        "base_model": {"name": str(base_dir), "source": "local", "path": str(base_dir), "hub_id": None},
        "dataset": {"bundle": str(bundle_dir) if bundle_dir else None, "fingerprint": "sha256:test", "counts": {}},
        "guidelines": [], "hyper": {"rank": 4}, "metrics": {"probe_recall": 0.5},
        "system_prompt": SYSTEM_PROMPT,
    }), encoding="utf-8")
    (path / "curves.json").write_text(json.dumps({
        "train": [{"step": s, "epoch": 1 + (s - 1) // 5, "loss": 3.0 / s, "lr": 1e-3} for s in range(1, 11)],
        "epochs": [{"epoch": 1, "step": 5, "train_loss": 1.2, "eval_loss": 1.4, "probe_recall": 0.25},
                   {"epoch": 2, "step": 10, "train_loss": 0.4, "eval_loss": 0.9, "probe_recall": 0.5}],
    }), encoding="utf-8")
    return path


def build_store(db_path: Path):
    """A SQLite store holding GUIDELINES; returns (store, {name: guideline id})."""
    from memtune.store import GuidelineInput, GuidelineStore

    store = GuidelineStore(db_path)
    ids = {}
    for name, cat, content, _q, _k in GUIDELINES:
        g = store.add(GuidelineInput(name=name, content=content, category=cat, scope_type="project", scope_id="demo"))
        ids[name] = g.id
    return store, ids


def write_bundle(path: Path, ids: dict[str, int] | None = None) -> Path:
    """probes.jsonl (the bundle's layout), a minimal train.jsonl and metadata.json."""
    path.mkdir(parents=True, exist_ok=True)
    with (path / "probes.jsonl").open("w", encoding="utf-8") as f:
        for i, (name, cat, _c, q, kws) in enumerate(GUIDELINES, 1):
            f.write(json.dumps({"question": q, "expected_keywords": kws, "context": "", "category": cat, "name": name,
                                "guideline_id": (ids or {}).get(name, i), "guideline_version": 1}) + "\n")
    with (path / "train.jsonl").open("w", encoding="utf-8") as f:
        for name, _cat, content, q, _k in GUIDELINES:
            f.write(json.dumps({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": content}],
                                "name": name}) + "\n")
    (path / "metadata.json").write_text(json.dumps({"fingerprint": "sha256:test", "guidelines": []}), encoding="utf-8")
    return path
