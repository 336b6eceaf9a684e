"""FastDropout and the chunked frozen-head cross-entropy compute what the stock ops compute."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from memtune.train.fastops import (
    FastDropout,
    dropout_mask,
    frozen_head_cross_entropy,
    frozen_head_soft_cross_entropy,
    use_fast_dropout,
)


def test_dropout_mask_drops_the_requested_share():
    torch.manual_seed(0)
    for p in (0.05, 0.1, 0.5):
        keep = dropout_mask(torch.Size([400, 500]), p)
        assert keep.dtype == torch.bool and keep.shape == (400, 500)
        assert abs((~keep).float().mean().item() - p) < 0.005
    odd = dropout_mask(torch.Size([3, 7]), 0.2)  # element count not a multiple of four
    assert odd.shape == (3, 7)


def test_fast_dropout_scales_kept_values_and_backprops_through_the_same_mask():
    torch.manual_seed(1)
    d = FastDropout(0.25).train()
    x = torch.randn(64, 32, requires_grad=True)
    y = d(x)
    kept = y != 0
    assert torch.allclose(y[kept], x[kept] / 0.75)
    assert 0.15 < 1 - kept.float().mean().item() < 0.35
    y.sum().backward()
    assert torch.allclose(x.grad, kept.float() / 0.75)
    d.eval()
    assert d(x) is x
    assert FastDropout(0.0).train()(x) is x
    with pytest.raises(ValueError, match="dropout probability"):
        FastDropout(1.0)


def test_use_fast_dropout_replaces_only_lora_dropouts(tiny_model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, lora_dropout=0.1, target_modules="all-linear"))
    n_lora = sum(1 for m in model.modules() if isinstance(getattr(m, "lora_dropout", None), nn.ModuleDict))
    assert use_fast_dropout(model) == n_lora > 0
    drops = [d for m in model.modules() if isinstance(getattr(m, "lora_dropout", None), nn.ModuleDict)
             for d in m.lora_dropout.values()]
    assert all(isinstance(d, FastDropout) and d.p == 0.1 for d in drops)
    assert use_fast_dropout(model) == 0  # idempotent


@pytest.mark.parametrize("n", [1, 127, 128, 300])
def test_frozen_head_cross_entropy_matches_autograd(n):
    torch.manual_seed(n)
    w = torch.randn(50, 16) * 0.3
    h1 = torch.randn(n, 16, requires_grad=True)
    h2 = h1.detach().clone().requires_grad_(True)
    t = torch.randint(0, 50, (n,))
    ref = F.cross_entropy(h1 @ w.t(), t, reduction="sum")
    got = frozen_head_cross_entropy(h2, w, t, chunk=128)
    assert torch.allclose(ref, got, rtol=1e-5, atol=1e-4)
    (ref * 0.5).backward()
    (got * 0.5).backward()
    assert torch.allclose(h1.grad, h2.grad, rtol=1e-4, atol=1e-5)


def test_frozen_head_cross_entropy_without_grad_and_under_bf16_autocast():
    torch.manual_seed(0)
    w = torch.randn(50, 16) * 0.3
    h = torch.randn(40, 16)
    t = torch.randint(0, 50, (40,))
    ref = F.cross_entropy(h @ w.t(), t, reduction="sum")
    with torch.no_grad():
        assert torch.allclose(frozen_head_cross_entropy(h, w, t, chunk=7), ref, rtol=1e-5)
    hb = h.to(torch.bfloat16).requires_grad_(True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = frozen_head_cross_entropy(hb, w, t)
    got.backward()
    assert got.dtype == torch.float32 and abs(got.item() - ref.item()) / ref.item() < 0.02
    assert hb.grad is not None and hb.grad.dtype == torch.bfloat16


def test_frozen_head_cross_entropy_refuses_a_trainable_head():
    w = torch.randn(5, 4, requires_grad=True)
    with pytest.raises(ValueError, match="frozen output layer"):
        frozen_head_cross_entropy(torch.randn(2, 4), w, torch.tensor([0, 1]))


def test_fast_dropouts_sharing_a_cache_drop_one_input_the_same_way():
    from memtune.train.fastops import _LastDrop

    torch.manual_seed(3)
    shared = _LastDrop()
    q, k = FastDropout(0.3, shared).train(), FastDropout(0.3, shared).train()
    x = torch.randn(32, 16, requires_grad=True)
    a, b = q(x), k(x)
    assert a is b  # q/k/v read one tensor: one mask, one saved copy
    y = torch.randn(32, 16)
    assert not torch.equal(q(y) != 0, a != 0)  # another input gets a fresh mask
    x2 = x.detach().clone()
    first = q(x2)
    x2.add_(1.0)  # modified in place: never served from the cache
    assert q(x2) is not first
    (a.sum() + b.sum()).backward()
    assert torch.allclose(x.grad, 2 * (a != 0).float() / 0.7)


@pytest.mark.parametrize("n", [5, 300])
def test_soft_cross_entropy_matches_autograd_and_one_hot_rows_are_the_ordinary_loss(n):
    torch.manual_seed(n)
    w = torch.randn(50, 16) * 0.3
    h1 = torch.randn(n, 16, requires_grad=True)
    h2 = h1.detach().clone().requires_grad_(True)
    ids = torch.stack([torch.randperm(50)[:4] for _ in range(n)])
    p = torch.rand(n, 4)
    p = p / p.sum(1, keepdim=True)
    dense = torch.zeros(n, 50).scatter_(1, ids, p)
    ref = -(dense * (h1 @ w.t()).log_softmax(-1)).sum()
    got = frozen_head_soft_cross_entropy(h2, w, ids, p, chunk=128)
    assert torch.allclose(ref, got, rtol=1e-5, atol=1e-4)
    (ref * 0.5).backward()
    (got * 0.5).backward()
    assert torch.allclose(h1.grad, h2.grad, rtol=1e-4, atol=1e-5)
    with torch.no_grad():
        assert torch.allclose(frozen_head_soft_cross_entropy(h1.detach(), w, ids, p), ref.detach(), rtol=1e-5, atol=1e-4)
    t = torch.randint(0, 50, (n,))
    one_hot = frozen_head_soft_cross_entropy(h1.detach(), w, t[:, None], torch.ones(n, 1))
    assert torch.allclose(one_hot, F.cross_entropy(h1.detach() @ w.t(), t, reduction="sum"), rtol=1e-5, atol=1e-4)
