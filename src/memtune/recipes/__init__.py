"""The measured recipe for each base model: one YAML file, the one source of every tuned default.

``memtune run``, ``memtune export``, ``memtune train``, ``memtune eval``, the MCP tools and the
Python API (:class:`~memtune.dataset.ExportConfig`, :class:`~memtune.train.TrainConfig`,
:func:`~memtune.evaluate.evaluate`) all take their defaults from here, so whichever door a user
comes through they train what was measured. A recipe has four sections:

- ``export``: the data mix (keys of ``ExportConfig``);
- ``lora``: the adapter's shape (rank, alpha, dropout, target modules, skipped layers, the
  massive-activation guard); training owns these, and the bundle's ``adapter_config.json`` for
  other tools is written from the same values;
- ``train``: the optimisation (keys of ``TrainConfig``);
- ``eval``: how answers are generated and scored.

A model without a recipe of its own starts from the default model's, with the LoRA size of its
parameter count (``dataset.presets``): those values are a starting point there, not a measurement.

A recipe may also carry a ``quick`` budget: ``export`` and ``train`` values that replace the
others when ``MEMTUNE_RECIPE_BUDGET=quick`` (default ``full``), for a much shorter run on a slow CPU
at a measured cost (the recipe file says which). Every door reads the recipe from here, so every
door trains the same budget.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from memtune.errors import ConfigError
from memtune.models import canonical_name, spec_for

SECTIONS = ("export", "lora", "train", "eval")
BUDGET_SECTIONS = ("export", "train")
BUDGET_ENV = "MEMTUNE_RECIPE_BUDGET"
DEFAULT_RECIPE = "smollm2-135m"
#: lora keys → TrainConfig field names (the rest are the same)
LORA_TO_TRAIN = {"rank": "rank", "alpha": "alpha", "dropout": "dropout", "target_modules": "target_modules",
                 "skip_layers": "skip_layers", "protect_energy": "protect_energy"}


@dataclass(frozen=True)
class Recipe:
    """One base model's measured defaults, read-only."""

    name: str
    purpose: str
    models: tuple[str, ...]
    export: Mapping[str, Any] = field(default_factory=dict)
    lora: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    eval: Mapping[str, Any] = field(default_factory=dict)
    quick: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """``export``/``train`` values of the quick budget (see the module)."""
    budget: str = "full"
    """Which values these are: ``full``, or ``quick`` once :meth:`with_budget` applied the quick budget."""

    def with_budget(self, budget: str) -> Recipe:
        """This recipe with the ``quick`` budget's values in place (``full``: unchanged)."""
        if budget != "quick" or not self.quick:
            return self
        over = {s: MappingProxyType({**getattr(self, s), **self.quick.get(s, {})}) for s in BUDGET_SECTIONS}
        return replace(self, budget="quick", **over)

    def training(self) -> dict[str, Any]:
        """The ``TrainConfig`` keyword arguments this recipe sets (LoRA shape and optimisation)."""
        return {**{LORA_TO_TRAIN[k]: v for k, v in self.lora.items()}, **self.train}

    def matches(self, model: str | None) -> bool:
        """Whether ``model`` (a registry name or alias, a hub id; None = the default model) is this recipe's.

        Names go through the model registry (``memtune.models``), so every alias export and
        training accept picks the same recipe."""
        if model is None:
            return self.name == DEFAULT_RECIPE
        want = canonical_name(model)
        return any(want == canonical_name(m) for m in self.models)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "budget": self.budget, **{s: dict(getattr(self, s)) for s in SECTIONS}}


def _parse(text: str, source: str) -> Recipe:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise ConfigError([f"{source}: not valid YAML: {exc}"], hint="fix the recipe file") from exc
    if not isinstance(data, dict):
        raise ConfigError([f"{source}: a recipe is a mapping with sections {', '.join(SECTIONS)}"])
    unknown = sorted(set(data) - {"name", "purpose", "models", "quick", *SECTIONS})
    problems = [f"{source}: unknown key {k!r}" for k in unknown]
    sections: dict[str, Mapping[str, Any]] = {}
    for s in SECTIONS:
        value = data.get(s) or {}
        if not isinstance(value, dict):
            problems.append(f"{source}: section {s!r} must be a mapping of key: value")
            value = {}
        sections[s] = MappingProxyType(dict(value))
    budget_raw = data.get("quick") or {}
    budget: dict[str, Mapping[str, Any]] = {}
    if not isinstance(budget_raw, dict) or set(budget_raw) - set(BUDGET_SECTIONS):
        problems.append(f"{source}: quick holds only the sections {', '.join(BUDGET_SECTIONS)}")
    else:
        for s, values in budget_raw.items():
            if not isinstance(values, dict):
                problems.append(f"{source}: quick.{s} must be a mapping of key: value")
                continue
            problems += [f"{source}: quick.{s}.{k} is not a key of the {s} section"
                         for k in values if k not in sections[s]]
            budget[s] = MappingProxyType(dict(values))
    bad_lora = sorted(set(sections["lora"]) - set(LORA_TO_TRAIN))
    problems += [f"{source}: unknown lora key {k!r} (known: {', '.join(LORA_TO_TRAIN)})" for k in bad_lora]
    if problems:
        raise ConfigError(problems, hint="fix the recipe file")
    return Recipe(name=str(data.get("name") or Path(source).stem), purpose=str(data.get("purpose") or ""),
                  models=_model_names(data.get("models") or ()), quick=MappingProxyType(budget), **sections)


def _model_names(models: Any) -> tuple[str, ...]:
    """A recipe's ``models`` with each registry model spelled out: its name, aliases and hub id
    (the registry is where those live; a recipe names the model once)."""
    out: list[str] = []
    for m in models if isinstance(models, (list, tuple)) else [models]:
        spec = spec_for(str(m))
        for name in (*spec.names, spec.hub_id) if spec is not None else (str(m),):
            if name not in out:
                out.append(name)
    return tuple(out)


@lru_cache(maxsize=None)
def _shipped() -> tuple[Recipe, ...]:
    files = sorted((f for f in resources.files(__name__).iterdir() if f.name.endswith(".yaml")), key=lambda f: f.name)
    return tuple(_parse(f.read_text(encoding="utf-8"), f.name) for f in files)


def recipes() -> tuple[Recipe, ...]:
    """Every recipe shipped with memtune."""
    return _shipped()


def recipe_budget() -> str:
    """``full`` (default) or ``quick``, from ``MEMTUNE_RECIPE_BUDGET``."""
    import os

    asked = os.environ.get(BUDGET_ENV, "full").strip().lower() or "full"
    if asked not in ("full", "quick"):
        raise ConfigError([f"{BUDGET_ENV}={asked!r} is not one of full, quick"],
                          hint=f"unset {BUDGET_ENV}, or set it to full or quick")
    return asked


def default_recipe() -> Recipe:
    """The embedded default model's recipe, with the chosen budget (:func:`recipe_budget`)."""
    return next(r for r in _shipped() if r.name == DEFAULT_RECIPE).with_budget(recipe_budget())


def answer_tokens() -> int:
    """The longest answer, in new tokens, that every door gives unless asked otherwise.

    One value for serve, chat, the MCP ``ask`` tool, the Python API and evaluation, so the report
    measures the answers users get (a shorter cap in evaluation alone hid facts at a long note's end).
    """
    return int(default_recipe().eval["max_new_tokens"])


def recipe_for(model: str | None = None) -> Recipe:
    """The recipe measured on ``model``, else the default model's (see the module docstring), with
    the chosen budget."""
    found = next((r for r in _shipped() if r.matches(model)), None)
    return found.with_budget(recipe_budget()) if found is not None else default_recipe()


def load_recipe(path: str | Path) -> Recipe:
    """A recipe from a YAML file of the same shape as the shipped ones (``memtune run --recipe FILE``)."""
    p = Path(path).expanduser()
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError([f"recipe {p}: cannot read it ({exc.strerror or exc})"],
                          hint="pass an existing YAML file") from exc
    return _parse(text, str(p)).with_budget(recipe_budget())


def parse_overrides(items: list[str] | tuple[str, ...]) -> dict[str, dict[str, Any]]:
    """``["export.rag_copies=0.2", "lora.rank=16"]`` → ``{"export": {...}, "train": {"rank": 16}, "eval": {}}``.

    Values are read as YAML scalars (``0.2``, ``true``, ``[a, b]``, text). ``lora.*`` keys land in
    ``train`` under their ``TrainConfig`` names, since training owns the adapter's shape.
    """
    out: dict[str, dict[str, Any]] = {"export": {}, "train": {}, "eval": {}}
    for item in items:
        key, sep, raw = item.partition("=")
        section, dot, name = key.strip().partition(".")
        name = name.strip().replace("-", "_")
        if not sep or not dot or section not in SECTIONS or not name.isidentifier():
            raise ConfigError([f"--set {item!r}: expected SECTION.KEY=VALUE with SECTION one of {', '.join(SECTIONS)}"],
                              hint="e.g. --set train.lr=0.001 --set export.control_fraction=0.2")
        if section == "lora":
            if name not in LORA_TO_TRAIN:
                raise ConfigError([f"--set {item!r}: unknown lora key {name!r}"],
                                  hint=f"lora keys: {', '.join(LORA_TO_TRAIN)}")
            section, name = "train", LORA_TO_TRAIN[name]
        try:
            value = yaml.safe_load(raw) if raw.strip() else raw
        except yaml.YAMLError:
            value = raw
        out[section][name] = value
    return out


__all__ = ["parse_overrides", "BUDGET_ENV", "DEFAULT_RECIPE", "Recipe", "SECTIONS", "default_recipe", "load_recipe",
           "recipe_budget", "recipe_for", "recipes"]
