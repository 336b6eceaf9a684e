"""Forgetting: a finite % change in general-text loss between base and adapter."""

from __future__ import annotations

import math

import pytest

from memtune.evaluate.forgetting import general_text, text_loss


def test_shipped_sample_is_varied_plain_english():
    text = general_text()
    assert 3000 <= len(text.encode()) <= 6000
    paras = [p for p in text.split("\n\n") if p.strip()]
    assert len(paras) >= 10


def test_loss_base_vs_adapter_is_finite_and_differs(tiny_env):
    from memtune.evaluate.runner import ModelUnderTest

    mut = ModelUnderTest.from_adapter_dir(tiny_env["adapter"], bf16=False)
    text = general_text()
    with mut.use("base") as m:
        base, n = text_loss(m, mut.tokenizer, text, max_tokens=128)
    with mut.use("adapter") as m:
        tuned, n2 = text_loss(m, mut.tokenizer, text, max_tokens=128)
    assert n == n2 and n > 500
    assert math.isfinite(base) and math.isfinite(tuned) and base > 0
    change = (tuned - base) / base * 100
    assert math.isfinite(change) and change != 0
    # the adapter is switched back on after `use("base")`
    with mut.use("adapter") as m:
        assert text_loss(m, mut.tokenizer, text, max_tokens=128)[0] == pytest.approx(tuned)


def test_empty_text_is_an_error(tiny_env):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from memtune.errors import InputError

    m = AutoModelForCausalLM.from_pretrained(tiny_env["base"])
    tok = AutoTokenizer.from_pretrained(tiny_env["base"])
    with pytest.raises(InputError, match="empty"):
        text_loss(m, tok, "\n\n   \n")


def test_adapter_condition_runs_a_merged_copy_with_the_same_outputs(tiny_env):
    import torch

    from memtune.evaluate.runner import ModelUnderTest

    mut = ModelUnderTest.from_adapter_dir(tiny_env["adapter"], bf16=False)
    unmerged = ModelUnderTest.from_adapter_dir(tiny_env["adapter"], bf16=False)
    unmerged.merge = False
    ids = torch.tensor([[1, 5, 9, 14, 3, 7]])
    with mut.use("adapter") as merged, unmerged.use("adapter") as plain:
        assert not hasattr(merged, "disable_adapter")  # plain linears, no LoRA side-paths
        assert hasattr(plain, "disable_adapter")
        assert torch.allclose(merged(ids).logits, plain(ids).logits, atol=1e-4)
    with mut.use("adapter") as again:
        assert again is merged  # merged once
    with mut.use("base") as base, unmerged.use("base") as base2:  # the original stays unmerged for "base"
        assert torch.allclose(base(ids).logits, base2(ids).logits, atol=1e-6)
