"""Two CPU-minded replacements for stock training ops, same maths, less time and memory.

- :class:`FastDropout`: LoRA dropout draws one random number per input element; torch's
  CPU Bernoulli sampler made that ~40% of a training step on SmolLM2. Here one 64-bit draw
  yields four 16-bit uniforms (exact drop rate to 1/65536), and LoRA layers that read the
  very same input tensor (q/k/v, gate/up) share one dropped copy: dropout on the layer
  input, as for any other layer, with 4 masks and saved copies per block instead of 7.
- :func:`frozen_head_cross_entropy`: the summed cross-entropy of a *frozen* output layer
  (LoRA never trains the 49k-word head), computed in chunks of rows. The gradient with
  respect to the hidden states is formed chunk by chunk in the forward pass, so no
  (tokens × vocabulary) tensor outlives a chunk: peak memory drops by the size of the
  logits, their log-softmax and their gradient.
"""

from __future__ import annotations

import weakref
from typing import Any

import torch
from torch import nn

_INT16_SPAN = 65536


def dropout_mask(shape: torch.Size, p: float) -> torch.Tensor:
    """Boolean keep-mask with P(drop) = round(p * 65536) / 65536."""
    n = 1
    for s in shape:
        n *= s
    words = torch.empty((n + 3) // 4, dtype=torch.int64).random_(-(2**63), 2**63 - 1)
    u16 = words.view(torch.int16)[:n].view(shape)
    return u16 >= -32768 + round(p * _INT16_SPAN)


class _MaskedScale(torch.autograd.Function):
    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, mask: torch.Tensor, scale: float) -> torch.Tensor:
        ctx.save_for_backward(mask)
        ctx.scale = scale
        return x * mask * scale

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None]:
        (mask,) = ctx.saved_tensors
        return grad * mask * ctx.scale, None, None


class _LastDrop:
    """The most recent (input, p) → dropped output, held weakly so nothing outlives autograd."""

    def __init__(self) -> None:
        self.key: tuple[Any, int, float] | None = None
        self.out: Any = None

    def get(self, x: torch.Tensor, p: float) -> torch.Tensor | None:
        if self.key is None:
            return None
        ref, version, kp = self.key
        out = self.out()
        if ref() is x and version == x._version and kp == p and out is not None:
            return out
        return None

    def put(self, x: torch.Tensor, p: float, out: torch.Tensor) -> None:
        self.key, self.out = (weakref.ref(x), x._version, p), weakref.ref(out)


class FastDropout(nn.Module):
    """Drop-in for ``nn.Dropout`` on CPU tensors (CUDA keeps torch's fused kernel).

    Modules given the same ``shared`` cache return one dropped copy for one input tensor.
    """

    def __init__(self, p: float, shared: _LastDrop | None = None) -> None:
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"dropout probability must be in [0, 1), got {p}")
        self.p = p
        self._shared = shared

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, True)
        if self._shared is not None and (hit := self._shared.get(x, self.p)) is not None:
            return hit
        out = _MaskedScale.apply(x, dropout_mask(x.shape, self.p), 1.0 / (1.0 - self.p))
        if self._shared is not None:
            self._shared.put(x, self.p, out)
        return out

    def extra_repr(self) -> str:
        return f"p={self.p}"


def use_fast_dropout(model: nn.Module) -> int:
    """Swap every ``nn.Dropout`` inside PEFT's ``lora_dropout`` dicts; returns how many.

    Only the adapter's dropouts change: the saved adapter is identical either way, since
    dropout holds no weights.
    """
    swapped, shared = 0, _LastDrop()
    for mod in model.modules():
        drops = getattr(mod, "lora_dropout", None)
        if not isinstance(drops, nn.ModuleDict):
            continue
        for name, d in list(drops.items()):
            if type(d) is nn.Dropout and d.p > 0:
                drops[name] = FastDropout(d.p, shared)
                swapped += 1
    return swapped


class _FrozenHeadCE(torch.autograd.Function):
    """Cross-entropy against sparse target rows (ids, probs; each row sums to 1), chunked."""

    @staticmethod
    def forward(ctx: Any, hidden: torch.Tensor, weight: torch.Tensor, ids: torch.Tensor, probs: torch.Tensor,
                chunk: int) -> torch.Tensor:
        total = torch.zeros((), dtype=torch.float32, device=hidden.device)
        grad_hidden = torch.empty_like(hidden)
        for s in range(0, hidden.shape[0], chunk):
            h, t, p = hidden[s : s + chunk], ids[s : s + chunk], probs[s : s + chunk].float()
            logits = (h.to(weight.dtype) @ weight.t()).float()
            lse = torch.logsumexp(logits, dim=-1)
            total += (lse - (logits.gather(1, t) * p).sum(1)).sum()
            soft = logits.sub_(lse[:, None]).exp_()  # softmax, in place of the logits
            soft.scatter_add_(1, t, -p)  # minus the targets: the gradient of the loss w.r.t. the logits
            grad_hidden[s : s + chunk] = (soft.to(weight.dtype) @ weight).to(hidden.dtype)
        ctx.save_for_backward(grad_hidden)
        return total

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> tuple[torch.Tensor, None, None, None, None]:
        (grad_hidden,) = ctx.saved_tensors
        return grad_hidden * grad.to(grad_hidden.dtype), None, None, None, None


def frozen_head_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, target: torch.Tensor,
                              chunk: int = 128) -> torch.Tensor:
    """Sum over rows of cross_entropy(hidden @ weight.T, target), for a weight that does not train.

    ``hidden``: (N, H) rows at labelled positions; ``weight``: (V, H); ``target``: (N,).
    The matmuls run in autocast's dtype when autocast is on (else the weight's), the
    softmax always in fp32.
    """
    if weight.requires_grad:
        raise ValueError("frozen_head_cross_entropy needs a frozen output layer (full fine-tuning trains it)")
    one_hot = torch.ones((target.shape[0], 1), dtype=torch.float32, device=target.device)
    return frozen_head_soft_cross_entropy(hidden, weight, target[:, None], one_hot, chunk)


def frozen_head_soft_cross_entropy(hidden: torch.Tensor, weight: torch.Tensor, ids: torch.Tensor,
                                   probs: torch.Tensor, chunk: int = 128) -> torch.Tensor:
    """Sum over rows of the cross-entropy between a sparse target distribution and
    softmax(hidden @ weight.T): row i puts mass ``probs[i, j]`` on word ``ids[i, j]`` (rows sum
    to 1; a one-hot row is the ordinary cross-entropy). Its gradient is that of the KL
    divergence from the targets, which is what replay distillation minimises.
    """
    if weight.requires_grad:
        raise ValueError("frozen_head_soft_cross_entropy needs a frozen output layer")
    dev = hidden.device.type
    if torch.is_autocast_enabled(dev) and torch.get_autocast_dtype(dev) != weight.dtype:
        weight = weight.to(torch.get_autocast_dtype(dev))  # what autocast would have multiplied in
    with torch.autocast(device_type=dev, enabled=False):
        if not (torch.is_grad_enabled() and hidden.requires_grad):
            with torch.no_grad():
                total = torch.zeros((), dtype=torch.float32, device=hidden.device)
                for s in range(0, hidden.shape[0], chunk):
                    logits = (hidden[s : s + chunk].to(weight.dtype) @ weight.t()).float().log_softmax(-1)
                    total -= (logits.gather(1, ids[s : s + chunk]) * probs[s : s + chunk].float()).sum()
                return total
        return _FrozenHeadCE.apply(hidden, weight, ids, probs, chunk)
