"""The lr floor (``min_lr_ratio``) and the kept share of the update (``adapter_scale``)."""

from __future__ import annotations

import pytest
import torch

from memtune.errors import ConfigError
from memtune.train import train
from memtune.train.recipe import scaled_update


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def _b_norm(model) -> float:
    return float(sum(p.detach().abs().sum() for n, p in model.named_parameters() if ".lora_B." in n))


def test_lr_decay_ends_at_the_floor_instead_of_zero(tiny_config, tmp_path):
    plain = train(tiny_config(out=str(tmp_path / "a"), epochs=2, lr=1e-2, warmup_ratio=0.0), progress=False)
    floor = train(tiny_config(out=str(tmp_path / "b"), epochs=2, lr=1e-2, warmup_ratio=0.0, min_lr_ratio=0.25),
                  progress=False)
    lr0 = [r["lr"] for r in plain.curves["train"]]
    lr1 = [r["lr"] for r in floor.curves["train"]]
    assert len(lr0) == len(lr1) == 6
    # the decay is the same line squeezed into [floor, 1]: lr = floor + (1 - floor) * plain
    for a, b in zip(lr0, lr1):
        assert b == pytest.approx(1e-2 * 0.25 + 0.75 * a)
    assert lr1[-1] >= 0.25 * 1e-2 > lr0[-1]


def test_adapter_scale_keeps_that_share_of_the_trained_update(tiny_config, tmp_path, monkeypatch):
    import memtune.train.evaluation as evaluation

    seen: dict[str, list[float]] = {"full": [], "half": []}
    real = evaluation.eval_loss
    which = ["full"]

    def spy(loss_fn, *a, **kw):
        seen[which[0]].append(_b_norm(loss_fn.model))
        return real(loss_fn, *a, **kw)

    monkeypatch.setattr(evaluation, "eval_loss", spy)
    full = train(tiny_config(out=str(tmp_path / "full"), epochs=2), progress=False)
    which[0] = "half"
    half = train(tiny_config(out=str(tmp_path / "half"), epochs=2, adapter_scale=0.5), progress=False)

    w1, w2 = _weights(full.out_dir / "adapter_model.safetensors"), _weights(half.out_dir / "adapter_model.safetensors")
    assert set(w1) == set(w2)
    b = [k for k in w1 if "lora_B" in k]
    assert b and all(w1[k].abs().sum() > 0 for k in b)
    # training itself is unchanged: the saved B matrices are exactly half, the A matrices equal
    assert all(torch.allclose(w2[k], 0.5 * w1[k]) for k in b)
    assert all(torch.equal(w1[k], w2[k]) for k in w1 if "lora_A" in k)
    # each epoch was judged on the adapter as it is kept
    assert len(seen["full"]) == len(seen["half"]) == 2
    for a, h in zip(seen["full"], seen["half"]):
        assert h == pytest.approx(0.5 * a, rel=1e-5)
    # the resume checkpoint holds the update as trained, so --resume goes on from it
    state = torch.load(half.out_dir / "checkpoints" / "last" / "trainable.pt", map_location="cpu")
    ck_b = {k: v for k, v in state.items() if "lora_B" in k}
    assert ck_b and sum(float(v.abs().sum()) for v in ck_b.values()) == pytest.approx(
        sum(float(w1[k].abs().sum()) for k in b), rel=1e-5)
    assert "adapter_scale: 0.5" in (half.out_dir / "train_config.yaml").read_text()


def test_scaled_update_restores_the_weights_bit_exactly():
    from peft import LoraConfig, get_peft_model

    net = torch.nn.Sequential(torch.nn.Linear(8, 8))
    model = get_peft_model(net, LoraConfig(r=2, target_modules=["0"], init_lora_weights=False))
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    norm = _b_norm(model)
    with scaled_update(model, 0.3):
        assert _b_norm(model) == pytest.approx(0.3 * norm, rel=1e-6)
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())
    with pytest.raises(RuntimeError), scaled_update(model, 0.3):
        raise RuntimeError("boom")  # restored on the way out of an error too
    assert all(torch.equal(p, before[n]) for n, p in model.named_parameters())


@pytest.mark.parametrize(("kw", "message"), [
    ({"adapter_scale": 0}, "adapter-scale 0 must be a number in (0, 1]"),
    ({"adapter_scale": 1.5}, "adapter-scale 1.5 must be a number in (0, 1]"),
    ({"adapter_scale": 0.8, "method": "full"}, "adapter-scale needs a LoRA adapter"),
    ({"min_lr_ratio": -0.1}, "min-lr-ratio -0.1 must be a number in [0, 1]"),
    ({"min_lr_ratio": "x"}, "min-lr-ratio 'x' must be a number in [0, 1]"),
])
def test_bad_floor_or_scale_is_refused_before_training(tiny_config, kw, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")
                       .replace("]", r"\]")):
        train(tiny_config(**kw), progress=False)
