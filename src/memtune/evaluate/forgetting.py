"""Forgetting: how much worse the model got at ordinary English after training.

A cheap proxy: the mean next-token loss on a small general-text
sample shipped with the package, with the adapter off vs on. A LoRA that only learned
the memory barely moves it; one that overwrote the model's language shows up as a
rise of several percent.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from importlib import resources
from pathlib import Path
from typing import Any

from memtune.errors import InputError

SAMPLE_NAME = "general_text.txt"


def general_text(path: str | Path | None = None) -> str:
    """The shipped sample (``memtune/data/general_text.txt``) or a file the caller names."""
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise InputError(f"general-text sample {p} does not exist")
        return p.read_text(encoding="utf-8")
    return (resources.files("memtune") / "data" / SAMPLE_NAME).read_text(encoding="utf-8")


def _chunks(tokenizer: Any, text: str, max_tokens: int) -> list[list[int]]:
    """Paragraphs packed into token chunks of at most ``max_tokens`` (each starts fresh)."""
    chunks: list[list[int]] = []
    cur: list[int] = []
    for para in (p.strip() for p in text.split("\n\n")):
        if not para:
            continue
        ids = tokenizer(para + "\n\n", add_special_tokens=False).input_ids
        for i in range(0, len(ids), max_tokens):
            piece = ids[i : i + max_tokens]
            if cur and len(cur) + len(piece) > max_tokens:
                chunks.append(cur)
                cur = []
            cur = cur + piece
    if cur:
        chunks.append(cur)
    return [c for c in chunks if len(c) >= 2]


def text_loss(
    model: Any,
    tokenizer: Any,
    text: str,
    *,
    max_tokens: int = 256,
    batch_size: int = 4,
    progress: Callable[[int, int], None] | None = None,
) -> tuple[float, int]:
    """(mean next-token loss in nats, number of predicted tokens) of ``model`` on ``text``.

    Runs in fp32 without autocast: the figure is compared across two runs, and bf16
    rounding noise would be of the same order as the change being measured.
    """
    import torch
    import torch.nn.functional as F

    chunks = _chunks(tokenizer, text, max_tokens)
    if not chunks:
        raise InputError("the general-text sample is empty", hint="pass a text file with a few paragraphs")
    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    total, count = 0.0, 0
    was_training = model.training
    model.eval()
    try:
        for s in range(0, len(chunks), batch_size):
            batch = chunks[s : s + batch_size]
            width = max(len(c) for c in batch)
            ids = torch.full((len(batch), width), pad, dtype=torch.long)
            mask = torch.zeros((len(batch), width), dtype=torch.long)
            for r, c in enumerate(batch):
                ids[r, : len(c)] = torch.tensor(c)
                mask[r, : len(c)] = 1
            ids, mask = ids.to(device), mask.to(device)
            with torch.no_grad():
                logits = model(input_ids=ids, attention_mask=mask, use_cache=False).logits[:, :-1].float()
            target = ids[:, 1:]
            keep = mask[:, 1:].bool()
            total += float(F.cross_entropy(logits[keep], target[keep], reduction="sum"))
            count += int(keep.sum())
            if progress:
                progress(min(s + batch_size, len(chunks)), len(chunks))
    finally:
        model.train(was_training)
    loss = total / count
    if not math.isfinite(loss):
        raise InputError(f"the loss on the general-text sample is not finite ({loss})")
    return loss, count
