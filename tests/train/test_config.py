"""TrainConfig: YAML keys mirror flags, flags win, every problem reported at once."""

from __future__ import annotations

import pytest

from memtune.errors import ConfigError, InputError
from memtune.train.config import TrainConfig, config_from_mapping, dump_config, merge_config
from memtune.train.recipe import ALL_LINEAR, resolve_hyper


def test_yaml_keys_with_dashes_and_flags_win(tmp_path):
    f = tmp_path / "c.yaml"
    f.write_text("batch-size: 4\nepochs: 5\nlearning_rate: 0.002\nmethod: full\n")
    cfg = merge_config(f, {"epochs": 2, "method": None, "bundle": "b"})
    assert (cfg.batch_size, cfg.epochs, cfg.lr, cfg.method, cfg.bundle) == (4, 2, 0.002, "full", "b")


def test_dump_and_reload_round_trip(tmp_path):
    cfg = TrainConfig(bundle="b", out="o", rank=8, export={"category": ["a"]})
    dump_config(cfg, tmp_path / "c.yaml")
    assert merge_config(tmp_path / "c.yaml") == cfg


def test_unknown_keys_and_bad_files():
    with pytest.raises(ConfigError, match="epochz"):
        config_from_mapping({"epochz": 1})
    with pytest.raises(InputError):
        merge_config("/no/such/file.yaml")


def test_all_problems_at_once():
    cfg = TrainConfig(method="x", epochs=0, batch_size=0, dropout=1.5, num_machines=2)
    problems = cfg.problems()
    assert len(problems) == 6  # bundle, method, epochs, batch size, dropout, main-process-ip
    assert any("main-process-ip" in p for p in problems)


def test_hyper_parameters_from_flags_then_the_recipe_then_the_bundle_for_other_models():
    from memtune.recipes import default_recipe

    lora = default_recipe().lora
    ac = {"r": 32, "lora_alpha": 64, "lora_dropout": 0.1, "target_modules": ["q_proj", "v_proj"]}
    h = resolve_hyper(TrainConfig(), ac)  # the default model: the recipe, not the bundle's file
    assert (h.rank, h.alpha, h.dropout, h.target_modules, h.lr) == (
        lora["rank"], lora["alpha"], lora["dropout"], lora["target_modules"], default_recipe().train["lr"])
    other = resolve_hyper(TrainConfig(model="someone/Other-70B"), ac)  # no recipe: its size preset's rank
    assert (other.rank, other.alpha, other.dropout, other.target_modules) == (32, 64, lora["dropout"], "mlp")
    h = resolve_hyper(TrainConfig(rank=4, method="full"), {})
    assert (h.rank, h.alpha, h.lr) == (4, 8, 5e-5)
    h = resolve_hyper(TrainConfig(target_modules="q_proj, k_proj"), ac)
    assert h.target_modules == ["q_proj", "k_proj"]
    h = resolve_hyper(TrainConfig(target_modules=ALL_LINEAR), ac)
    assert h.target_modules == ALL_LINEAR
