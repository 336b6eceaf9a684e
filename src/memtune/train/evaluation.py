"""The answer-only loss module and the per-epoch measurements (eval loss, probe recall).

Computing the vocabulary layer only where a label exists is the single biggest CPU
win after dynamic padding: on SmolLM2 the 49k-word output layer is ~20% of a forward
pass, and prompts are most of every example.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from memtune import generation
from memtune.chatformat import conversation
from memtune.train.data import (
    IGNORE,
    Example,
    collate,
    iter_batches,
    keyword_recall,
    length_grouped_batches,
    split_by_tokens,
)
from memtune.train.fastops import frozen_head_cross_entropy


def causal_lm(model: Any) -> Any:
    """The transformers *ForCausalLM under a PEFT wrapper (LoRA layers stay injected)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def supports_selective_head(model: Any) -> bool:
    """Only where logits are a plain linear map of the last hidden state."""
    lm = causal_lm(model)
    cfg = getattr(lm, "config", None)
    if cfg is None or getattr(cfg, "final_logit_softcapping", None) or getattr(cfg, "logit_scale", None):
        return False
    try:
        return lm.get_decoder() is not None and isinstance(lm.get_output_embeddings(), torch.nn.Linear)
    except (AttributeError, NotImplementedError):
        return False


class AnswerLoss(torch.nn.Module):
    """Returns (sum of token losses over labelled positions, number of those positions).

    A module (not a function) so DDP can wrap it: gradients are then synchronised even
    though the forward bypasses the model's own ``forward``.
    """

    def __init__(self, model: Any, selective: bool | None = None) -> None:
        super().__init__()
        self.model = model
        self.selective = supports_selective_head(model) if selective is None else selective

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        target = labels[:, 1:]
        keep = target != IGNORE
        if self.selective:
            lm = causal_lm(self.model)
            hidden = lm.get_decoder()(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)[0]
            head = lm.get_output_embeddings()
            if not head.weight.requires_grad and head.bias is None:
                return frozen_head_cross_entropy(hidden[:, :-1][keep], head.weight, target[keep]), keep.sum()
            logits = head(hidden[:, :-1][keep])
        else:
            logits = self.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False).logits[:, :-1][keep]
        loss = F.cross_entropy(logits.float(), target[keep], reduction="sum")
        return loss, keep.sum()


@torch.no_grad()
def eval_loss(loss_mod: AnswerLoss, examples: list[Example], *, batch_size: int, pad_id: int, device: Any, bf16: bool,
              max_batch_tokens: int = 0) -> float | None:
    """Token-weighted mean answer loss over ``examples`` (None when there are none)."""
    if not examples:
        return None
    was_training = loss_mod.training
    loss_mod.eval()
    total, count = 0.0, 0
    lengths = [len(e) for e in examples]
    order = [sub for b in length_grouped_batches(lengths, batch_size, seed=0, epoch=0, shuffle=False)
             for sub in split_by_tokens(b, lengths, max_batch_tokens)]
    for batch in iter_batches(examples, order, pad_id):
        batch = {k: v.to(device) for k, v in batch.items()}
        with torch.autocast(device_type=_dev_type(device), dtype=torch.bfloat16, enabled=bf16):
            s, n = loss_mod(**batch)
        total += float(s)
        count += int(n)
    loss_mod.train(was_training)
    return total / max(count, 1)


def probe_recall(
    model: Any, tokenizer: Any, probes: list[dict[str, Any]], *, max_new_tokens: int, bf16: bool, batch_size: int = 8,
    system: str | None = None,
) -> tuple[float | None, list[dict[str, Any]]]:
    """Greedy answers to the probes (asked and generated as evaluation and serving do) and their mean keyword recall."""
    if not probes:
        return None, []
    was_training = model.training
    model.eval()
    convs = [conversation(p["question"], p.get("context", ""), system) for p in probes]
    answers = generation.generate(model, tokenizer, convs, max_new_tokens=max_new_tokens, batch_size=batch_size,
                                  bf16=bf16)
    model.train(was_training)
    rows = [
        {"question": p["question"], "answer": a, "recall": keyword_recall(a, p["expected_keywords"])}
        for p, a in zip(probes, answers, strict=True)
    ]
    return sum(r["recall"] for r in rows) / len(rows), rows


def _dev_type(device: Any) -> str:
    return str(device).split(":")[0]
