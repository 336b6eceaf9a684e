"""The one tiny-model builder every test folder uses: a randomly initialised 2-layer Llama
(hidden 32) and a byte-level BPE tokenizer trained in code, so tests never touch the real
model or the network and build one in well under a second.

The tokenizer carries the package's only chat template,
:data:`memtune.chatformat.CHATML_TEMPLATE` (what a bundle's ``train.py`` gives a base
model without one; ``memtune train`` renders with the model's own template, which here is this
one), so tests see the layout real ChatML models use. Each folder passes the text its tests talk
about as ``corpus`` so the vocabulary covers it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
DEFAULT_CORPUS = (
    "How do I start the backend service? Switch to Node 22 with nvm use 22, then run yarn start.",
    "We use PostgreSQL 16 with the pgvector extension. The frontend uses npm run dev, not yarn.",
    "Generated resolvers are registered first, custom resolvers last.",
    "system user assistant helpful the of and to a in is 0123456789",
)


def chat_template() -> str:
    """The package's ChatML template (the single copy in ``src``)."""
    from memtune.chatformat import CHATML_TEMPLATE

    return CHATML_TEMPLATE


def build_tokenizer(corpus: Sequence[str] = DEFAULT_CORPUS, *, vocab_size: int = 400, repeat: int = 5,
                    pad_token: str = "<|im_end|>") -> Any:
    """A byte-level BPE tokenizer (every string encodes) with ChatML specials.

    ``pad_token`` defaults to the end-of-turn token, as memtune pads real models; serving tests
    use a distinct one to show padding never ends a reply.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=list(SPECIAL_TOKENS),
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), show_progress=False)
    tok.train_from_iterator(list(corpus) * repeat, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|im_end|>", bos_token="<|im_start|>",
                                   pad_token=pad_token, unk_token="<|endoftext|>")
    fast.chat_template = chat_template()
    return fast


def build_model_dir(path: Path, tokenizer: Any = None, *, seed: int = 0, **config: Any) -> Path:
    """Save a random tiny Llama + ``tokenizer`` (default: :func:`build_tokenizer`) as a transformers dir.

    ``config`` overrides LlamaConfig fields (e.g. ``initializer_range`` for larger random
    weights, ``tie_word_embeddings=False`` for a separate output head).
    """
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    tok = tokenizer if tokenizer is not None else build_tokenizer()
    fields: dict[str, Any] = dict(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, tie_word_embeddings=True,
        eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id,
    )
    fields.update(config)
    torch.manual_seed(seed)
    LlamaForCausalLM(LlamaConfig(**fields)).save_pretrained(path)
    tok.save_pretrained(path)
    return Path(path)
