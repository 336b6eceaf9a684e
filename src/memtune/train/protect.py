"""Keep LoRA from reading the few input directions that every text shares.

Language models push a handful of huge activations through the same few hidden directions
on nearly every token ("massive activations", Sun et al. 2024). A LoRA ``A`` matrix that
reads those directions changes the model's output on *all* text, and that is most of what
shows up as forgetting. Measured on SmolLM2-135M (LoRA on the MLP, lr 2e-3): projecting the
single strongest input direction out of each ``A`` after training took the general-text loss
change from +12.3 % to +3.3 % with closed-book recall unchanged (0.72 vs 0.73).

:class:`InputGuard` finds those directions from the inputs each LoRA layer sees on rehearsal
text (the top eigenvectors of their second-moment matrix, as many as carry ``energy`` of it)
and keeps every ``A`` orthogonal to them: once at the start and after every optimizer step
(projected gradient descent). The saved adapter is a plain PEFT adapter.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

MAX_SEQUENCES = 512
"""Rehearsal sequences read to estimate the input statistics (a few seconds of forward passes)."""


def lora_layers(model: Any) -> dict[str, Any]:
    """PEFT LoRA layers by name (those with a default ``lora_A``)."""
    return {n: m for n, m in model.named_modules()
            if hasattr(m, "lora_A") and hasattr(m.lora_A, "keys") and "default" in m.lora_A.keys()}


def top_directions(second_moment: Any, energy: float) -> Any:
    """The leading eigenvectors (columns) of a symmetric PSD matrix that together hold at
    least ``energy`` of its trace (at least one)."""
    import torch

    values, vectors = torch.linalg.eigh(second_moment)
    values, vectors = values.flip(0).clamp(min=0), vectors.flip(1)
    share = torch.cumsum(values, 0) / values.sum().clamp(min=1e-30)
    k = int((share < energy).sum()) + 1
    return vectors[:, : min(k, vectors.shape[1])]


@dataclass
class InputGuard:
    """Per LoRA layer, the input directions its ``A`` must not read."""

    directions: dict[str, Any] = field(default_factory=dict)
    layers: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def fit(cls, model: Any, sequences: Sequence[Sequence[int]], energy: float) -> InputGuard:
        """Run ``model`` (adapter still zero) over ``sequences`` and pick each layer's directions.

        Sequences are batched by equal length, so no padding token enters the statistics.
        """
        import torch

        if not 0 < energy < 1:
            raise ValueError(f"energy must be in (0, 1), got {energy}")
        layers = lora_layers(model)
        if not layers:
            return cls()
        sums: dict[str, Any] = {}

        def hook(name: str):
            def record(_mod: Any, inputs: tuple[Any, ...], _out: Any) -> None:
                x = inputs[0].detach().reshape(-1, inputs[0].shape[-1]).double()
                sums[name] = sums[name] + x.T @ x if name in sums else x.T @ x
            return record

        handles = [m.register_forward_hook(hook(n)) for n, m in layers.items()]
        by_length: dict[int, list[list[int]]] = defaultdict(list)
        for s in list(sequences)[:MAX_SEQUENCES]:
            if len(s) >= 2:
                by_length[len(s)].append(list(s))
        device = next(model.parameters()).device
        # a bf16 base with fp32 LoRA weights runs under autocast, as in training
        low = any(p.dtype == torch.bfloat16 for p in model.parameters())
        was_training = model.training
        model.eval()
        try:
            with torch.no_grad(), torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=low):
                for group in by_length.values():
                    for i in range(0, len(group), 16):
                        ids = torch.tensor(group[i : i + 16], device=device)
                        model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=False)
        finally:
            for h in handles:
                h.remove()
            model.train(was_training)
        dirs = {n: top_directions(s, energy).to(device=device, dtype=torch.float32) for n, s in sums.items()}
        guard = cls(directions=dirs, layers={n: layers[n] for n in dirs})
        guard.apply()
        return guard

    def apply(self) -> None:
        """Project the protected directions out of every ``A`` (in place)."""
        import torch

        with torch.no_grad():
            for name, u in self.directions.items():
                w = self.layers[name].lora_A["default"].weight
                uw = u.to(w.dtype)
                w.sub_((w @ uw) @ uw.T)

    def summary(self) -> str:
        if not self.directions:
            return "no LoRA layers to guard"
        ks = [u.shape[1] for u in self.directions.values()]
        return (f"{len(ks)} LoRA layers keep off their strongest input directions on rehearsal text "
                f"({min(ks)}-{max(ks)} each, {sum(ks) / len(ks):.1f} on average)")
