"""One model registry: a name export accepts for the embedded model, training, evaluation,
serving, the recipes and the bundle's train.py accept too, and for the same model."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest

import memtune.models as models
from memtune.dataset.presets import resolve_model
from memtune.dataset.train_script import render_script
from memtune.models import DEFAULT_SPEC, REGISTRY, registry_names, resolve_base_model, spec_for
from memtune.recipes import DEFAULT_RECIPE, default_recipe, recipe_for

NAMES = registry_names()
SPELLINGS = sorted({*NAMES, *(n.upper() for n in NAMES), *(f" {n} " for n in NAMES)})


@pytest.fixture
def no_conversion(monkeypatch, tmp_path):
    """Resolving a registry model converts nothing: its cached dir is a temp folder."""
    monkeypatch.setattr(models, "ensure_cached", lambda spec: tmp_path / spec.name)


def test_the_registry_holds_every_name_the_commands_used_to_list():
    assert {"smollm2-135m-instruct", "smollm2-135m", "smollm2", "embedded", "default"} <= set(NAMES)
    assert all(spec_for(n) is DEFAULT_SPEC for n in NAMES) and list(REGISTRY) == [DEFAULT_SPEC.name]


@pytest.mark.parametrize("name", SPELLINGS)
def test_every_alias_is_accepted_by_export_train_eval_serve_and_recipes(name, no_conversion, tmp_path):
    # export --target-model
    info = resolve_model(name)
    assert (info.source, info.name, info.num_params) == ("default", DEFAULT_SPEC.hub_id, DEFAULT_SPEC.num_params)
    # train --model, eval / serve --base (load_assistant -> load_base_model -> resolve_base_model)
    resolved = resolve_base_model(name)
    assert (resolved.source, resolved.spec, Path(resolved.path)) == ("registry", DEFAULT_SPEC, tmp_path / DEFAULT_SPEC.name)
    # the recipe every door takes its defaults from
    assert recipe_for(name).name == DEFAULT_RECIPE and recipe_for(name).matches(name)


def test_the_default_model_is_the_same_everywhere(no_conversion):
    assert resolve_model(None).name == DEFAULT_SPEC.hub_id
    assert resolve_base_model(None).spec is DEFAULT_SPEC
    assert recipe_for(None) is default_recipe() and default_recipe().matches(DEFAULT_SPEC.hub_id)
    assert set(default_recipe().models) == {*NAMES, DEFAULT_SPEC.hub_id}


@pytest.mark.parametrize("name", ["smollm", "smollm2-360m", "embeded", "llama"])
def test_a_name_outside_the_registry_is_nobodys_alias(name, no_conversion):
    assert resolve_model(name).source == "name"
    assert not default_recipe().matches(name)
    with pytest.raises(models.ModelError, match="not a known name"):
        resolve_base_model(name)


def test_the_bundle_script_hands_every_alias_to_memtunes_loader(tmp_path, monkeypatch, no_conversion):
    """train.py --model NAME goes through memtune's loader when memtune is installed."""
    (tmp_path / "train.py").write_text(render_script(), encoding="utf-8")
    spec = importlib.util.spec_from_file_location("bundle_train_registry", tmp_path / "train.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)

    class Tok:
        pad_token, eos_token, chat_template = None, "<eos>", "{{ x }}"

    seen = []

    def fake_load(name):
        seen.append(resolve_base_model(name).spec)
        return object(), Tok()

    monkeypatch.setattr(models, "load_base_model", fake_load)
    for name in [script.DEFAULT_MODEL, *NAMES]:
        script.load_model(name)
    assert seen == [DEFAULT_SPEC] * (len(NAMES) + 1)
