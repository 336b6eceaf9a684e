"""The shared tiny Llama (tests/tiny_model.py) plus a LoRA adapter, for the serving tests.

Built in code so the serving tests never touch the real model or the network; the
adapter's LoRA B matrices are random (not zero) so base and base+adapter differ.
"""

from __future__ import annotations

import json
from pathlib import Path

_CORPUS = [
    "How do I start the backend service? Switch to Node 22 with nvm use 22, then run yarn start.",
    "Use TypeScript strict mode. Generated resolvers are registered first, custom resolvers last.",
    "the quick brown fox jumps over the lazy dog 0123456789",
]


def build(root: Path, *, seed: int = 0) -> dict[str, Path]:
    """Write ``root/base`` (model + tokenizer) and ``root/adapter`` (PEFT LoRA); return both paths."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from tests.tiny_model import build_model_dir, build_tokenizer

    root.mkdir(parents=True, exist_ok=True)
    base_dir, adapter_dir = root / "base", root / "adapter"
    # a pad token apart from end-of-turn, and an untied output head: padding must never end a reply
    tok = build_tokenizer(_CORPUS, pad_token="<|endoftext|>")
    build_model_dir(base_dir, tok, seed=seed, tie_word_embeddings=False)
    base = AutoModelForCausalLM.from_pretrained(base_dir)  # so the adapter records the base path
    torch.manual_seed(seed + 1)
    peft_model = get_peft_model(
        base,
        LoraConfig(r=4, lora_alpha=16, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False),
    )
    with torch.no_grad():  # make the adapter matter: noticeably different logits from the base
        for n, p in peft_model.named_parameters():
            if "lora_" in n:
                p.mul_(4.0)
    peft_model.save_pretrained(adapter_dir)
    from memtune.dataset import DEFAULT_SYSTEM_PROMPT
    from memtune.train.models import model_hash

    lineage = {  # the layout `memtune train` writes (memtune.train.checkpoint.lineage)
        "method": "lora",
        "format": "peft",
        "base_model": {"name": str(base_dir), "source": "local", "path": str(base_dir), "hash": model_hash(base_dir)},
        "dataset": {"bundle": str(root / "bundle")},
        "system_prompt": DEFAULT_SYSTEM_PROMPT,
    }
    (adapter_dir / "memtune.json").write_text(json.dumps(lineage), encoding="utf-8")
    return {"base": base_dir, "adapter": adapter_dir}


if __name__ == "__main__":  # pragma: no cover - `python -m tests.serve.tiny DIR` for manual checks
    import sys

    print(build(Path(sys.argv[1])))
