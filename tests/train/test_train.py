"""The training loop on a tiny llama: LoRA, full, resume, interrupts, output layout."""

from __future__ import annotations

import json

import pytest
import torch

from memtune.errors import ConfigError, ModelError
from memtune.train import TrainConfig, train
from memtune.train.loop import TrainingInterrupted


def _weights(path):
    from safetensors.torch import load_file

    return load_file(str(path))


def test_lora_moves_adapter_weights_and_leaves_base_weights_unchanged(tiny_config, tiny_model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    res = train(tiny_config(epochs=2), progress=False)
    out = res.out_dir
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    before = {k: v.clone() for k, v in base.state_dict().items()}
    tuned = PeftModel.from_pretrained(base, str(out))
    # adapter B matrices start at zero; training must have moved them
    lora_b = {k: v for k, v in _weights(out / "adapter_model.safetensors").items() if "lora_B" in k}
    assert lora_b and all(v.abs().sum() > 0 for v in lora_b.values())
    # the base weights inside the PEFT model are the original ones
    for name, p in tuned.get_base_model().named_parameters():
        if "lora_" in name:
            continue
        key = name.replace("base_layer.", "")
        assert torch.equal(p, before[key]), name
    # and the saved base model on disk was not touched
    assert all(torch.equal(v, before[k]) for k, v in _weights(tiny_model_dir / "model.safetensors").items()
               if k in before)


def test_adapter_dir_layout_and_lineage(tiny_config):
    res = train(tiny_config(epochs=2), progress=False)
    out = res.out_dir
    for f in ("adapter_model.safetensors", "adapter_config.json", "tokenizer_config.json", "train_config.yaml",
              "curves.json", "memtune.json"):
        assert (out / f).is_file(), f
    info = json.loads((out / "memtune.json").read_text())
    assert info["method"] == "lora" and info["format"] == "peft"
    assert info["base_model"]["hash"].startswith("sha256:")
    assert info["dataset"]["fingerprint"] == "sha256:test-bundle"
    assert info["guidelines"] == [{"id": i, "version": 1} for i in range(1, 5)]
    assert set(info["metrics"]) >= {"eval_loss", "probe_recall", "tokens_per_s", "steps", "best_epoch", "wall_seconds"}
    assert info["metrics"]["wall_seconds"] >= info["metrics"]["train_seconds"] > 0
    curves = json.loads((out / "curves.json").read_text())
    assert len(curves["train"]) == res.steps == 6  # 12 examples / batch 4 × 2 epochs
    assert [e["epoch"] for e in curves["epochs"]] == [1, 2]
    assert all(e["eval_loss"] is not None and e["probe_recall"] is not None for e in curves["epochs"])
    # the rank/alpha came from the bundle's adapter_config.json
    assert json.loads((out / "adapter_config.json").read_text())["r"] == 4


def test_loss_goes_down(tiny_config):
    res = train(tiny_config(epochs=4, lr=3e-2), progress=False)
    losses = [r["loss"] for r in res.curves["train"]]
    assert sum(losses[-3:]) < sum(losses[:3])


def test_flags_override_bundle_hyper_parameters(tiny_config):
    res = train(tiny_config(rank=2, alpha=3, max_steps=1), progress=False)
    cfg = json.loads((res.out_dir / "adapter_config.json").read_text())
    assert (cfg["r"], cfg["lora_alpha"]) == (2, 3)


def test_resume_continues_from_the_checkpoint(tiny_config):
    from memtune.train.checkpoint import CKPT_DIR, LAST

    first = train(tiny_config(epochs=1), progress=False)
    ck = first.out_dir / CKPT_DIR / LAST
    state = json.loads((ck / "state.json").read_text())
    assert state["step"] == 3 and state["epoch"] == 1
    saved_opt = torch.load(ck / "optimizer.pt", weights_only=False)
    assert all(int(s["step"]) == 3 for s in saved_opt["state"].values())

    second = train(tiny_config(epochs=2, resume=True), progress=False)
    assert second.steps == 6
    steps = [r["step"] for r in second.curves["train"]]
    assert steps == [1, 2, 3, 4, 5, 6]  # the first run's curve plus the continuation
    assert [e["epoch"] for e in second.curves["epochs"]] == [1, 2]
    opt = torch.load(ck / "optimizer.pt", weights_only=False)
    assert all(int(s["step"]) == 6 for s in opt["state"].values())  # Adam state carried over


def test_resume_matches_an_uninterrupted_run(tiny_config, tmp_path):
    straight = train(tiny_config(epochs=2, out=str(tmp_path / "a")), progress=False)
    train(tiny_config(epochs=1, out=str(tmp_path / "b")), progress=False)
    resumed = train(tiny_config(epochs=2, out=str(tmp_path / "b"), resume=True), progress=False)
    a = [r["loss"] for r in straight.curves["train"]]
    b = [r["loss"] for r in resumed.curves["train"]]
    # the LR schedule differs in epoch 1 (it was planned for 1 epoch), so compare shapes loosely
    assert len(a) == len(b) == 6


def test_resume_refuses_changed_settings(tiny_config):
    train(tiny_config(epochs=1), progress=False)
    with pytest.raises(ConfigError, match="batch_size"):
        train(tiny_config(epochs=2, resume=True, batch_size=2), progress=False)


def test_existing_out_needs_resume_or_overwrite(tiny_config):
    train(tiny_config(max_steps=1), progress=False)
    with pytest.raises(ConfigError, match="already exists"):
        train(tiny_config(max_steps=1), progress=False)
    train(tiny_config(max_steps=1, overwrite=True), progress=False)


def test_ctrl_c_saves_a_checkpoint_and_says_how_to_resume(tiny_config, monkeypatch):
    from memtune.train import evaluation
    from memtune.train.checkpoint import CKPT_DIR, LAST

    calls = {"n": 0}
    orig = evaluation.AnswerLoss.forward

    def forward(self, *a, **k):
        calls["n"] += 1
        if calls["n"] == 3 and self.training:  # in the middle of the third step
            raise KeyboardInterrupt
        return orig(self, *a, **k)

    monkeypatch.setattr(evaluation.AnswerLoss, "forward", forward)
    cfg = tiny_config(epochs=2, probe_sample=0)
    with pytest.raises(TrainingInterrupted) as exc:
        train(cfg, progress=False)
    assert exc.value.exit_code == 130
    assert "--resume" in exc.value.hint
    state = json.loads(open(f"{cfg.out}/{CKPT_DIR}/{LAST}/state.json").read())
    assert state["step"] == 2 and state["batch_pos"] == 2  # the step in flight is dropped
    monkeypatch.setattr(evaluation.AnswerLoss, "forward", orig)
    res = train(tiny_config(epochs=2, probe_sample=0, resume=True), progress=False)
    assert res.steps == 6 and [r["step"] for r in res.curves["train"]] == [1, 2, 3, 4, 5, 6]


def test_full_fine_tuning_changes_base_weights_and_saves_a_loadable_model(tiny_config, tiny_model_dir):
    from transformers import AutoModelForCausalLM

    res = train(tiny_config(method="full", lr=1e-3, max_steps=2), progress=False)
    out = res.out_dir
    assert (out / "config.json").is_file() and not (out / "adapter_config.json").exists()
    tuned = AutoModelForCausalLM.from_pretrained(out)
    base = AutoModelForCausalLM.from_pretrained(tiny_model_dir)
    changed = [n for (n, a), (_, b) in zip(tuned.named_parameters(), base.named_parameters(), strict=True)
               if not torch.equal(a, b)]
    assert len(changed) > 5
    assert json.loads((out / "memtune.json").read_text())["format"] == "full"


def test_qlora_without_cuda_fails_fast_with_the_fix(tiny_config, monkeypatch):
    import memtune.train.models as models

    def boom(*a, **k):  # the model must not even be loaded
        raise AssertionError("model loaded")

    monkeypatch.setattr(models, "load_base_model", boom)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ModelError, match="CUDA") as exc:
        train(tiny_config(method="qlora"), progress=False)
    assert "--method lora" in exc.value.hint


def test_invalid_settings_are_reported_together(bundle_dir):
    with pytest.raises(ConfigError) as exc:
        train(TrainConfig(bundle=str(bundle_dir), method="nope", epochs=0, lr=5.0), progress=False)
    assert len(exc.value.problems) == 3


def test_bf16_autocast_trains_on_cpu(tiny_config):
    res = train(tiny_config(bf16=True, max_steps=2), progress=False)
    assert res.steps == 2
    assert json.loads((res.out_dir / "memtune.json").read_text())["hyper"]["bf16"] is True


def test_early_stopping_on_probe_recall_keeps_the_best_epoch(tiny_config, monkeypatch):
    import memtune.train.evaluation as ev

    recalls = iter([0.25, 1.0, 0.5, 0.25, 0.25, 0.25])
    monkeypatch.setattr(ev, "eval_loss", lambda *a, **k: 1.0)
    monkeypatch.setattr(ev, "probe_recall", lambda *a, **k: (next(recalls), []))
    res = train(tiny_config(epochs=6, patience=2), progress=False)
    assert res.stopped_early and res.epochs_run == 4 and res.best_epoch == 2
    assert res.metrics["probe_recall"] == 1.0
    info = json.loads((res.out_dir / "memtune.json").read_text())
    assert info["metrics"]["best_epoch"] == 2


def test_early_stopping_waits_while_eval_loss_still_falls(tiny_config, monkeypatch):
    """A dip in the few sampled probes is noise while eval loss keeps falling; stop once both stall."""
    import memtune.train.evaluation as ev

    recalls = iter([1.0, 0.25, 0.25, 0.25, 0.25])
    losses = iter([1.0, 0.5, 0.3, 0.29, 0.29])
    monkeypatch.setattr(ev, "eval_loss", lambda *a, **k: next(losses))
    monkeypatch.setattr(ev, "probe_recall", lambda *a, **k: (next(recalls), []))
    res = train(tiny_config(epochs=5, patience=1), progress=False)
    assert res.stopped_early and res.epochs_run == 4 and res.best_epoch == 1


def test_recall_gap_within_sampling_noise_is_decided_by_eval_loss(tiny_config, monkeypatch):
    """2 sampled probes: 1.0 vs 0.75 recall is noise, so the epoch with the lower eval loss is kept."""
    import memtune.train.evaluation as ev

    recalls = iter([1.0, 0.75, 0.75])
    losses = iter([1.0, 0.5, 0.6])
    monkeypatch.setattr(ev, "eval_loss", lambda *a, **k: next(losses))
    monkeypatch.setattr(ev, "probe_recall", lambda *a, **k: (next(recalls), []))
    res = train(tiny_config(epochs=3, patience=1), progress=False)
    assert res.best_epoch == 2 and res.metrics["probe_recall"] == 0.75


def test_token_budget_splits_forward_passes_without_changing_the_step(tiny_config, tmp_path):
    """Gradient accumulation inside a step: the same update whether or not a batch is split."""
    whole = train(tiny_config(out=str(tmp_path / "w"), max_steps=2, dropout=0.0, max_batch_tokens=0), progress=False)
    split = train(tiny_config(out=str(tmp_path / "s"), max_steps=2, dropout=0.0, max_batch_tokens=40),
                  progress=False)
    a, b = _weights(whole.out_dir / "adapter_model.safetensors"), _weights(split.out_dir / "adapter_model.safetensors")
    assert all(torch.allclose(a[k], b[k], atol=1e-5) for k in a)
    assert [r["loss"] for r in whole.curves["train"]] == pytest.approx([r["loss"] for r in split.curves["train"]], abs=1e-4)


def test_grad_accum_counts_micro_batches_per_step(tiny_config):
    res = train(tiny_config(batch_size=2, grad_accum=3, epochs=1), progress=False)
    assert res.steps == 2  # 12 examples / batch 2 = 6 micro-batches / 3 per step


def test_replay_fraction_mixes_plain_text_into_training(tiny_config, tmp_path):
    from memtune.errors import ConfigError

    plain = train(tiny_config(out=str(tmp_path / "a")), progress=False)
    mixed = train(tiny_config(out=str(tmp_path / "b"), replay_fraction=0.5), progress=False)
    n = plain.metrics["train_examples"]
    assert mixed.metrics["train_examples"] == n + round(0.5 * n)
    assert mixed.steps > plain.steps
    with pytest.raises(ConfigError, match="replay-fraction"):
        train(tiny_config(out=str(tmp_path / "c"), replay_fraction=2), progress=False)


def test_skip_layers_leaves_the_first_layers_without_lora(tiny_config, tmp_path):
    from memtune.errors import ConfigError
    from memtune.infer import load_assistant

    res = train(tiny_config(out=str(tmp_path / "a"), skip_layers=1), progress=False)
    keys = list(_weights(res.out_dir / "adapter_model.safetensors"))
    assert keys and all(".layers.1." in k for k in keys), keys  # the tiny llama has layers 0 and 1
    assert json.loads((res.out_dir / "adapter_config.json").read_text())["layers_to_transform"] == [1]
    assert load_assistant(res.out_dir).ask("What is the rule?", max_new_tokens=4) is not None
    half = train(tiny_config(out=str(tmp_path / "h"), skip_layers=0.5), progress=False)  # a share: 1 of 2
    assert json.loads((half.out_dir / "adapter_config.json").read_text())["layers_to_transform"] == [1]
    few = train(tiny_config(out=str(tmp_path / "f"), skip_layers=0.4), progress=False)  # rounds down to none
    assert json.loads((few.out_dir / "adapter_config.json").read_text())["layers_to_transform"] is None
    with pytest.raises(ConfigError, match="leaves no layer to adapt"):
        train(tiny_config(out=str(tmp_path / "b"), skip_layers=2), progress=False)
    for bad in (-1, 2.5):
        with pytest.raises(ConfigError, match="skip-layers"):
            train(tiny_config(out=str(tmp_path / "c"), skip_layers=bad), progress=False)


def test_target_module_blocks_put_lora_on_the_mlp_or_the_attention_only(tiny_config, tmp_path):
    from memtune.infer import load_assistant

    mlp = train(tiny_config(out=str(tmp_path / "m"), target_modules="mlp", skip_layers=1), progress=False)
    keys = list(_weights(mlp.out_dir / "adapter_model.safetensors"))
    assert keys and all(".mlp." in k and ".layers.1." in k for k in keys), keys
    assert {k.split(".mlp.")[1].split(".")[0] for k in keys} == {"gate_proj", "up_proj", "down_proj"}
    saved = json.loads((mlp.out_dir / "adapter_config.json").read_text())
    assert sorted(saved["target_modules"]) == ["mlp.down_proj", "mlp.gate_proj", "mlp.up_proj"]
    assert load_assistant(mlp.out_dir).ask("What is the rule?", max_new_tokens=4) is not None  # reloads
    att = train(tiny_config(out=str(tmp_path / "a"), target_modules="Attention"), progress=False)
    keys = list(_weights(att.out_dir / "adapter_model.safetensors"))
    assert keys and all(".self_attn." in k for k in keys), keys
    assert {k.split(".self_attn.")[1].split(".")[0] for k in keys} == {"q_proj", "k_proj", "v_proj", "o_proj"}


def test_block_groups_keep_gpt2_attention_out_of_the_mlp_and_fall_back_with_a_warning():
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    from memtune.train.recipe import ALL_LINEAR, _targets, group_targets

    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=1, n_embd=16, n_head=2, vocab_size=50, n_positions=32))
    assert group_targets(gpt2, "mlp") == ["mlp.c_fc", "mlp.c_proj"]  # not attn.c_proj
    assert group_targets(gpt2, "attention") == ["attn.c_attn", "attn.c_proj"]
    flat = torch.nn.Sequential(torch.nn.Linear(4, 4))  # no block named mlp anywhere
    with pytest.warns(UserWarning, match="no linear layers under a block named mlp"):
        assert _targets(flat, "mlp") == ALL_LINEAR


def test_protect_energy_keeps_every_lora_a_off_the_strongest_input_directions(tiny_config, tmp_path, monkeypatch):
    import memtune.train.protect as protect

    seen = {}
    fit = protect.InputGuard.fit.__func__

    def spy(cls, model, sequences, energy):
        guard = fit(cls, model, sequences, energy)
        seen["guard"], seen["energy"] = guard, energy
        return guard

    monkeypatch.setattr(protect.InputGuard, "fit", classmethod(spy))
    res = train(tiny_config(out=str(tmp_path / "g"), epochs=2, protect_energy=0.3), progress=False)
    guard = seen["guard"]
    assert seen["energy"] == 0.3 and guard.directions  # every LoRA layer got its directions
    saved = _weights(res.out_dir / "adapter_model.safetensors")
    a_keys = [k for k in saved if "lora_A" in k]
    assert len(a_keys) == len(guard.directions)
    for name, u in guard.directions.items():
        key = next(k for k in a_keys if k.startswith(name + "."))
        a = saved[key].float()
        assert a.abs().sum() > 0  # A still learns in the other directions ...
        assert torch.allclose(a @ u.cpu(), torch.zeros(a.shape[0], u.shape[1]), atol=1e-5)  # ... never in these
    b = [v for k, v in saved.items() if "lora_B" in k]
    assert all(v.abs().sum() > 0 for v in b)


def test_top_directions_hold_the_requested_share_of_the_energy():
    from memtune.train.protect import top_directions

    basis = torch.linalg.qr(torch.randn(6, 6, dtype=torch.float64)).Q
    m = basis @ torch.diag(torch.tensor([50.0, 30.0, 10.0, 5.0, 3.0, 2.0], dtype=torch.float64)) @ basis.T
    assert top_directions(m, 0.4).shape[1] == 1  # the first holds 50 %
    assert top_directions(m, 0.85).shape[1] == 3  # 50 + 30 + 10 = 90 % >= 85 %
    u = top_directions(m, 0.7)
    assert u.shape[1] == 2 and torch.allclose(u @ u.T @ basis[:, :2], basis[:, :2], atol=1e-8)


def test_protect_energy_must_be_below_one(tiny_config):
    with pytest.raises(ConfigError, match="protect-energy 1.5 must be a number in"):
        train(tiny_config(protect_energy=1.5), progress=False)
