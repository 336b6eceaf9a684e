"""A tiny random Llama (hidden 32, 2 layers) with a byte-level BPE tokenizer and a LoRA adapter.

Built in code so the serving tests never touch the real model or the network; the
adapter's LoRA B matrices are random (not zero) so base and base+adapter differ.
"""

from __future__ import annotations

import json
from pathlib import Path

CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
_CORPUS = [
    "How do I start the backend service? Switch to Node 22 with nvm use 22, then run yarn start.",
    "Use TypeScript strict mode. Generated resolvers are registered first, custom resolvers last.",
    "the quick brown fox jumps over the lazy dog 0123456789",
]


def build_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=400,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(_CORPUS * 5, trainer)
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tok, eos_token="<|im_end|>", bos_token="<|im_start|>", pad_token="<|endoftext|>"
    )
    fast.chat_template = CHAT_TEMPLATE
    return fast


def build(root: Path, *, seed: int = 0) -> dict[str, Path]:
    """Write ``root/base`` (model + tokenizer) and ``root/adapter`` (PEFT LoRA); return both paths."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

    root.mkdir(parents=True, exist_ok=True)
    base_dir, adapter_dir = root / "base", root / "adapter"
    tok = build_tokenizer()
    cfg = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        max_position_embeddings=512,
        eos_token_id=tok.eos_token_id,
        bos_token_id=tok.bos_token_id,
        pad_token_id=tok.pad_token_id,
        tie_word_embeddings=False,
    )
    torch.manual_seed(seed)
    LlamaForCausalLM(cfg).save_pretrained(base_dir)
    tok.save_pretrained(base_dir)
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
