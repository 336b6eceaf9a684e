"""One recipe: every door (run, export + train + eval, the Python API) starts from the same file."""

from __future__ import annotations

import dataclasses
import inspect
import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from memtune.cli import app
from memtune.dataset import ExportConfig
from memtune.errors import ConfigError
from memtune.recipes import SECTIONS, default_recipe, load_recipe, parse_overrides, recipe_for
from memtune.train import TrainConfig
from memtune.train.config import REMOVED, config_from_mapping
from memtune.train.recipe import resolve_hyper

R = default_recipe()


def test_the_shipped_recipe_names_only_real_keys():
    export_fields = {f.name for f in dataclasses.fields(ExportConfig)}
    train_fields = {f.name for f in dataclasses.fields(TrainConfig)}
    assert set(R.export) <= export_fields, set(R.export) - export_fields
    assert set(R.training()) <= train_fields, set(R.training()) - train_fields
    from memtune.evaluate import evaluate

    assert set(R.eval) <= set(inspect.signature(evaluate).parameters)
    assert R.export and R.lora and R.train and R.eval


def test_every_value_in_the_file_says_why():
    from importlib import resources

    text = resources.files("memtune.recipes").joinpath(f"{R.name}.yaml").read_text(encoding="utf-8")
    for line in text.splitlines():
        if line.startswith("  ") and ":" in line and not line.lstrip().startswith("#"):
            assert "#" in line, f"recipe value without its reason: {line!r}"


def test_python_api_defaults_are_the_recipe():
    cfg = ExportConfig(output_path="x")
    for k, v in R.export.items():
        assert getattr(cfg, k) == v, k
    tcfg = TrainConfig(bundle="b")
    for k, v in R.training().items():
        if k in ("rank", "alpha", "dropout", "target_modules", "lr"):
            continue  # resolved at train time (below), so a bundle's explicit export values can win
        assert getattr(tcfg, k) == v, k
    hyper = resolve_hyper(tcfg, {})
    assert (hyper.rank, hyper.alpha, hyper.dropout, hyper.target_modules, hyper.lr) == (
        R.lora["rank"], R.lora["alpha"], R.lora["dropout"], R.lora["target_modules"], R.train["lr"])
    from memtune.evaluate import evaluate

    params = inspect.signature(evaluate).parameters
    assert {k: params[k].default for k in R.eval} == dict(R.eval)


def test_export_from_sources_uses_the_recipe_and_env_and_flags_override(monkeypatch):
    cfg = ExportConfig.from_sources(env={}, output_path="x")
    assert {k: getattr(cfg, k) for k in R.export} == dict(R.export)
    cfg = ExportConfig.from_sources(env={"MEMTUNE_EXPORT_CONTROL_FRACTION": "0.05"}, output_path="x",
                                    rag_copies=0.1)
    assert cfg.control_fraction == 0.05 and cfg.rag_copies == 0.1
    assert cfg.examples_per_guideline == R.export["examples_per_guideline"]


def test_bundle_adapter_config_is_written_from_the_recipe():
    from memtune.dataset.presets import adapter_config, resolve_model

    kwargs, summary = adapter_config(resolve_model(None))
    assert kwargs["r"] == R.lora["rank"] and kwargs["lora_alpha"] == R.lora["alpha"]
    assert kwargs["lora_dropout"] == R.lora["dropout"]
    assert kwargs["target_modules"] == ["gate_proj", "up_proj", "down_proj"]  # the recipe's `mlp` on llama
    assert summary["recipe"] == R.name
    # a 70B model has no recipe: its size preset's rank, the recipe's shape otherwise
    kwargs, _ = adapter_config(resolve_model("meta-llama/Llama-3-70B"))
    assert kwargs["r"] == 32 and kwargs["lora_dropout"] == R.lora["dropout"]


def test_training_owns_lora_but_an_explicit_export_value_is_kept():
    ac = {"r": 32, "lora_alpha": 64, "lora_dropout": 0.1, "target_modules": ["q_proj"]}
    plain = resolve_hyper(TrainConfig(bundle="b"), ac, {"lora_rank": None})
    assert plain.rank == R.lora["rank"] and plain.target_modules == R.lora["target_modules"]
    asked = resolve_hyper(TrainConfig(bundle="b"), ac, {"lora_rank": 32, "lora_alpha": 64, "lora_dropout": 0.1})
    assert (asked.rank, asked.alpha, asked.dropout) == (32, 64, 0.1)
    flag = resolve_hyper(TrainConfig(bundle="b", rank=4), ac, {"lora_rank": 32})
    assert (flag.rank, flag.alpha) == (4, 8)
    assert resolve_hyper(TrainConfig(bundle="b", method="full"), {}).lr == 5e-5


def test_every_door_answers_at_the_recipe_length():
    """serve, chat, the MCP ask tool, the Python API and evaluation cap answers at one value, so the
    report measures the answers users get."""
    from memtune.cli import serve as serve_cli
    from memtune.evaluate import evaluate
    from memtune.generation import GenParams, generate
    from memtune.infer import Assistant
    from memtune.serve.service import ServeConfig

    want = R.eval["max_new_tokens"]
    assert inspect.signature(evaluate).parameters["max_new_tokens"].default == want
    assert GenParams().max_new_tokens == want
    assert inspect.signature(generate).parameters["max_new_tokens"].default == want
    for method in (Assistant.ask, Assistant.chat, Assistant.generate_batch, Assistant.stream):
        assert inspect.signature(method).parameters["max_new_tokens"].default == want, method.__name__
    assert inspect.signature(serve_cli.serve_cmd).parameters["default_max_tokens"].default == want
    assert inspect.signature(serve_cli.chat_cmd).parameters["max_tokens"].default == want
    assert ServeConfig.__dataclass_fields__["default_max_tokens"].default == want


def test_overrides_parse_to_sections_and_bad_ones_are_refused():
    got = parse_overrides(["export.rag_copies=0.2", "lora.rank=16", "train.seed=1", "eval.rag_k=2",
                           "lora.target_modules=[q_proj, v_proj]"])
    assert got == {"export": {"rag_copies": 0.2}, "train": {"rank": 16, "seed": 1,
                                                            "target_modules": ["q_proj", "v_proj"]},
                   "eval": {"rag_k": 2}}
    for bad in ("rag_copies=0.2", "model.x=1", "lora.nonsense=1", "export.=3"):
        with pytest.raises(ConfigError):
            parse_overrides([bad])


def test_removed_experiment_options_say_why():
    for key in REMOVED:
        with pytest.raises(ConfigError) as exc:
            config_from_mapping({"bundle": "b", key: 1})
        assert "removed" in str(exc.value) and REMOVED[key] in str(exc.value)


def test_recipe_for_an_unknown_model_is_the_default_and_a_bad_file_is_refused(tmp_path):
    assert recipe_for("someone/other-7B") is R and not R.matches("someone/other-7B")
    assert recipe_for("HuggingFaceTB/SmolLM2-135M-Instruct").matches("HuggingFaceTB/SmolLM2-135M-Instruct")
    bad = tmp_path / "r.yaml"
    bad.write_text("export: [1, 2]\nlora: {rnk: 3}\n")
    with pytest.raises(ConfigError) as exc:
        load_recipe(bad)
    assert "section 'export'" in str(exc.value) and "'rnk'" in str(exc.value)
    good = tmp_path / "g.yaml"
    good.write_text(yaml.safe_dump({"name": "mine", **{s: dict(getattr(R, s)) for s in SECTIONS}}))
    assert load_recipe(good).training() == R.training()


def test_recipe_command_prints_every_section():
    res = CliRunner().invoke(app, ["recipe", "--json"])
    assert res.exit_code == 0, res.output
    shown = json.loads(res.output)
    assert shown["export"] == dict(R.export) and shown["lora"] == dict(R.lora)
    raw = CliRunner().invoke(app, ["recipe", "--raw"])
    assert raw.exit_code == 0 and "protect_energy: 0.3" in raw.output and "#" in raw.output


def test_train_and_export_help_stay_short():
    import re

    for cmd in ("train", "export"):
        res = CliRunner().invoke(app, [cmd, "--help"], env={"COLUMNS": "200", "NO_COLOR": "1"})
        assert res.exit_code == 0
        options = set(re.findall(r"(?m)^[│|]\s+(--[a-z][a-z0-9-]+)", res.output))
        assert 5 <= len(options) <= 22, (cmd, len(options), sorted(options))


MEMORY = """# Project memory

## Gotchas
- **Redis Port**: the dev Redis listens on port `6380`, not 6379.
- **Node Version**: ALWAYS run `nvm use 22` before `yarn start`; Node 20 breaks the Prisma client.
- **Torch Pin**: install `torch==2.13.0` first; an unpinned torch pulls GBs of CUDA.
"""


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tests.train.conftest import build_tiny_model_dir

    return str(build_tiny_model_dir(tmp_path_factory.mktemp("tiny") / "model"))


def test_export_then_train_is_what_memtune_run_trains(tmp_path, tiny_model):
    """The acceptance check: the stage commands and `memtune run` resolve the same configs and
    write the same bundle."""
    from memtune.run import RunConfig, run

    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "memory.md").write_text(MEMORY, encoding="utf-8")
    quick = {"max_steps": 1, "epochs": 1, "probe_sample": 0}
    res = run(RunConfig(paths=[str(repo)], db=str(tmp_path / "a.db"), work_dir=str(tmp_path / "run"),
                        model=tiny_model, train=quick, skip_eval=True), progress=False)
    run_bundle, run_adapter = Path(res.path("export")), Path(res.path("train"))

    cli = CliRunner()
    db = str(tmp_path / "b.db")
    r = cli.invoke(app, ["ingest", str(repo), "--db", db, "--scope-id", "repo"])
    assert r.exit_code == 0, r.output
    bundle = tmp_path / "bundle"
    r = cli.invoke(app, ["export", "--db", db, "--out", str(bundle), "--scope", "project", "--scope-id", "repo",
                         "--target-model", tiny_model])
    assert r.exit_code == 0, r.output
    adapter = tmp_path / "adapter"
    r = cli.invoke(app, ["train", str(bundle), "--out", str(adapter), "--model", tiny_model, "--max-steps", "1",
                         "--epochs", "1", "--set", "probe_sample=0", "--quiet"])
    assert r.exit_code == 0, r.output

    meta = [json.loads((b / "metadata.json").read_text()) for b in (run_bundle, bundle)]
    assert meta[0]["fingerprint"] == meta[1]["fingerprint"]
    drop = {"output_path", "filter", "force"}
    assert {k: v for k, v in meta[0]["config"].items() if k not in drop} == \
        {k: v for k, v in meta[1]["config"].items() if k not in drop}
    assert (run_bundle / "adapter_config.json").read_text() == (bundle / "adapter_config.json").read_text()
    lineage = [json.loads((a / "memtune.json").read_text()) for a in (run_adapter, adapter)]
    assert lineage[0]["hyper"] == lineage[1]["hyper"]
    ran = [yaml.safe_load((a / "train_config.yaml").read_text()) for a in (run_adapter, adapter)]
    for c in ran:
        for k in ("bundle", "out", "export", "db", "from_store"):
            c.pop(k, None)
    assert ran[0] == ran[1]


def test_export_set_and_config_layer_over_the_recipe(tmp_path):
    """--config < --set < explicit flags; lora.rank lands in the bundle's adapter config; bad keys are refused."""
    from memtune.cli.export import export_overrides
    from memtune.dataset import ExportConfig
    from memtune.errors import ConfigError

    cfg_file = tmp_path / "mine.yaml"
    cfg_file.write_text("export:\n  control_fraction: 0.05\n  fact_share: 0.5\nlora:\n  rank: 4\ntrain:\n  lr: 0.1\n")
    values = export_overrides(cfg_file, ["control_fraction=0.2", "export.seed=7", "lora.alpha=8"])
    assert values == {"control_fraction": 0.2, "fact_share": 0.5, "lora_rank": 4, "seed": 7, "lora_alpha": 8}
    cfg = ExportConfig.from_sources(env={}, output_path="x", **{**values, "seed": 9})
    assert (cfg.control_fraction, cfg.fact_share, cfg.seed, cfg.lora_rank) == (0.2, 0.5, 9, 4)
    assert cfg.rag_copies == default_recipe().export["rag_copies"]  # untouched keys stay the recipe's
    flat = tmp_path / "flat.yaml"
    flat.write_text("rag_copies: 0.1\n")
    assert export_overrides(flat, []) == {"rag_copies": 0.1}
    with pytest.raises(ConfigError, match="not an export key"):
        export_overrides(None, ["train.lr=0.1"])
    with pytest.raises(ConfigError, match="lora.rank"):
        export_overrides(None, ["lora.skip_layers=0"])
    (tmp_path / "bad.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="mapping"):
        export_overrides(tmp_path / "bad.yaml", [])


def test_export_cli_refuses_an_unknown_set_key(tmp_path):
    res = CliRunner().invoke(app, ["export", "--out", str(tmp_path / "b"), "--db", str(tmp_path / "m.db"),
                                   "--set", "no_such_key=1"])
    assert res.exit_code != 0
    assert "no_such_key" in res.output
    assert not (tmp_path / "b").exists()


_DOORS = """
import json
from memtune.recipes import default_recipe, recipe_for
from memtune.train.config import TrainConfig
from memtune.dataset.config import ExportConfig
e, t = ExportConfig(output_path="x"), TrainConfig(bundle="b")
print(json.dumps({"budget": default_recipe().budget, "for_default": recipe_for("smollm2").budget,
                  "export": {k: getattr(e, k) for k in ("examples_per_guideline", "rag_copies", "fact_rag_copies")},
                  "train": {k: getattr(t, k) for k in ("epochs", "replay_fraction")}}))
"""


def _doors(**env):
    import os
    import subprocess
    import sys

    full_env = {k: v for k, v in os.environ.items() if k != "MEMTUNE_RECIPE_BUDGET"}
    out = subprocess.run([sys.executable, "-c", _DOORS], env={**full_env, **env}, capture_output=True, text=True,
                         check=True)
    return json.loads(out.stdout)


def test_the_quick_budget_is_chosen_by_hand_and_reaches_every_door():
    """MEMTUNE_RECIPE_BUDGET=quick puts the recipe's quick values in place for the Python API and the CLI
    alike; unset, every machine (an AVX2-only one too) trains the full recipe."""
    import os
    from importlib import resources
    from unittest import mock

    raw = yaml.safe_load(resources.files("memtune.recipes").joinpath(f"{R.name}.yaml").read_text(encoding="utf-8"))
    quick = raw["quick"]
    chosen = _doors(MEMTUNE_RECIPE_BUDGET="quick")
    assert chosen["budget"] == chosen["for_default"] == "quick"
    assert chosen["export"] == {k: quick["export"].get(k, raw["export"][k]) for k in chosen["export"]}
    assert chosen["train"] == {k: quick["train"].get(k, raw["train"][k]) for k in chosen["train"]}
    assert chosen["train"]["epochs"] < raw["train"]["epochs"]
    for flags in ("avx2", "avx2 avx512f avx512_bf16"):
        default = _doors(MEMTUNE_CPU_FLAGS=flags)
        assert default["budget"] == "full" and default["train"]["epochs"] == raw["train"]["epochs"]
        assert default["export"]["examples_per_guideline"] == raw["export"]["examples_per_guideline"]

    with mock.patch.dict(os.environ, {"MEMTUNE_RECIPE_BUDGET": "quick"}):
        r = CliRunner().invoke(app, ["recipe", "--json"])
    shown = json.loads(r.stdout)
    assert shown["budget"] == "quick" and shown["train"]["epochs"] == quick["train"]["epochs"]


def test_run_names_the_quick_budget_when_the_full_one_is_slow_here():
    from memtune.run import QUICK_HINT_SECONDS, _budget_note

    slow = {"seconds": QUICK_HINT_SECONDS + 1, "speed_class": "fp32 (AVX2)"}
    assert "MEMTUNE_RECIPE_BUDGET=quick" in _budget_note("full", slow)
    assert _budget_note("full", {**slow, "speed_class": "bf16 (AVX-512 bf16 / AMX)"}) == ""
    assert _budget_note("full", {**slow, "seconds": 60}) == ""
    assert "quick budget" in _budget_note("quick", {**slow, "seconds": 60})


def test_a_bad_budget_setting_is_refused(monkeypatch):
    from memtune.errors import ConfigError
    from memtune.recipes import recipe_budget

    monkeypatch.setenv("MEMTUNE_RECIPE_BUDGET", "tiny")
    with pytest.raises(ConfigError, match="MEMTUNE_RECIPE_BUDGET='tiny' is not one of full, quick"):
        recipe_budget()


def test_a_budget_naming_unknown_keys_is_refused(tmp_path):
    from memtune.errors import ConfigError
    from memtune.recipes import load_recipe

    f = tmp_path / "r.yaml"
    f.write_text("export: {examples_per_guideline: 9}\ntrain: {epochs: 3}\nquick:\n  train: {epochz: 1}\n")
    with pytest.raises(ConfigError) as err:
        load_recipe(f)
    assert "quick.train.epochz is not a key of the train section" in str(err.value.problems)
