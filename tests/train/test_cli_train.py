"""`memtune train` on the command line: flags, YAML config, errors and exit codes."""

from __future__ import annotations

import json

import torch
import yaml
from typer.testing import CliRunner

from memtune.cli import app


def run(*args):
    return CliRunner().invoke(app, ["train", *map(str, args)])


def test_train_json_output_and_yaml_config_with_flags_winning(bundle_dir, tiny_model_dir, tmp_path):
    cfg = tmp_path / "train.yaml"
    cfg.write_text(yaml.safe_dump({"epochs": 3, "batch-size": 6, "lr": 0.01, "probe_sample": 2,
                                   "probe-max-new-tokens": 4, "bf16": False, "threads": 2,
                                   "replay_fraction": 0}))
    out = tmp_path / "adapter"
    r = run(bundle_dir, "--out", out, "--model", tiny_model_dir, "--config", cfg, "--epochs", 1, "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["epochs_run"] == 1 and res["steps"] == 2  # 12 examples / batch 6 from the YAML
    saved = yaml.safe_load((out / "train_config.yaml").read_text())
    assert saved["batch_size"] == 6 and saved["epochs"] == 1 and saved["lr"] == 0.01


def test_unknown_yaml_key_is_a_config_error(bundle_dir, tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("epochz: 3\n")
    r = run(bundle_dir, "--config", cfg)
    assert r.exit_code == 2 and "epochz" in r.output


def test_qlora_on_cpu_exits_with_the_fix(bundle_dir, tmp_path, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    r = run(bundle_dir, "--out", tmp_path / "q", "--method", "qlora")
    assert r.exit_code == 5
    assert "CUDA" in r.output and "--method lora" in r.output


def test_resume_without_checkpoint(bundle_dir, tmp_path):
    r = run(bundle_dir, "--out", tmp_path / "none", "--resume")
    assert r.exit_code == 2 and "no checkpoint" in r.output


def test_missing_model_says_how_to_get_one(bundle_dir, tmp_path):
    r = run(bundle_dir, "--out", tmp_path / "m", "--model", tmp_path / "no-such-model-dir/x/y")
    assert r.exit_code == 5 and "Hint" in r.output


def test_interrupt_exits_130_with_resume_hint(bundle_dir, tmp_path, monkeypatch):
    import memtune.train.loop as loop

    def interrupted(cfg, progress=True):
        raise loop.TrainingInterrupted("training interrupted at step 3", hint="resume with: memtune train B --resume")

    monkeypatch.setattr(loop, "train", interrupted)
    r = run(bundle_dir, "--out", tmp_path / "i")
    assert r.exit_code == 130 and "--resume" in r.output


def test_from_store_exports_then_trains(tmp_path, tiny_model_dir):
    from memtune.store import GuidelineInput, GuidelineStore

    db = tmp_path / "m.db"
    with GuidelineStore(str(db)) as s:
        s.add(GuidelineInput(name="Database Choice", content="We use PostgreSQL 16 with `pgvector` for embeddings.",
                             category="architecture"))
        s.add(GuidelineInput(name="Backend Start", content="Run `yarn start` in the background after `nvm use 22`.",
                             category="command"))
    out = tmp_path / "adapter"
    r = run("--from-store", "--db", db, "--out", out, "--model", tiny_model_dir, "--max-steps", 1,
            "--probe-sample", 1, "--no-bf16", "--threads", 2, "--json")
    assert r.exit_code == 0, r.output
    info = json.loads((out / "memtune.json").read_text())
    assert sorted(g["id"] for g in info["guidelines"]) == [1, 2]
    assert (out / "bundle" / "train.jsonl").is_file()


def test_skip_layers_and_replay_flags_reach_the_run(bundle_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "adapter"
    r = run(bundle_dir, "--out", out, "--model", tiny_model_dir, "--skip-layers", 1, "--replay-fraction", 0.5,
            "--max-steps", 1, "--probe-sample", 0, "--no-bf16", "--json")
    assert r.exit_code == 0, r.output
    saved = yaml.safe_load((out / "train_config.yaml").read_text())
    assert saved["skip_layers"] == 1 and saved["replay_fraction"] == 0.5


def test_set_overrides_recipe_keys_and_flags_win(bundle_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "adapter"
    r = run(bundle_dir, "--out", out, "--model", tiny_model_dir, "--set", "patience=0", "--set", "lora.skip_layers=1",
            "--set", "train.max_steps=3", "--max-steps", 1, "--set", "probe_sample=0", "--no-bf16", "--json")
    assert r.exit_code == 0, r.output
    saved = yaml.safe_load((out / "train_config.yaml").read_text())
    assert saved["patience"] == 0 and saved["skip_layers"] == 1 and saved["max_steps"] == 1


def test_removed_experiment_flags_are_refused_with_the_reason(bundle_dir, tiny_model_dir, tmp_path):
    bad = run(bundle_dir, "--out", tmp_path / "b", "--model", tiny_model_dir, "--adapter-scale", 0.8)
    assert bad.exit_code != 0 and "No such option" in bad.output
    bad = run(bundle_dir, "--out", tmp_path / "b", "--model", tiny_model_dir, "--set", "adapter_scale=0.8")
    assert bad.exit_code != 0 and "was removed" in bad.output
    bad = run(bundle_dir, "--out", tmp_path / "b", "--model", tiny_model_dir, "--set", "export.rag_copies=0.1")
    assert bad.exit_code != 0 and "not a training key" in bad.output
    assert not (tmp_path / "b").exists()
