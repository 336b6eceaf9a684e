"""Base models for training: the registry and loader of :mod:`memtune.models`, under the name
training code has always imported them by. Nothing is defined here, so there is one registry."""

from __future__ import annotations

from memtune.models import (
    ALIASES,
    DEFAULT_MODEL,
    DEFAULT_SPEC,
    REGISTRY,
    ModelSpec,
    ResolvedModel,
    bf16_supported,
    cache_root,
    canonical_name,
    cpu_has_fast_bf16,
    ensure_cached,
    load_base_model,
    load_tokenizer,
    model_hash,
    pick_device,
    registry_names,
    resolve_base_model,
    spec_for,
)

__all__ = [
    "ALIASES",
    "DEFAULT_MODEL",
    "DEFAULT_SPEC",
    "REGISTRY",
    "ModelSpec",
    "ResolvedModel",
    "bf16_supported",
    "cache_root",
    "canonical_name",
    "cpu_has_fast_bf16",
    "ensure_cached",
    "load_base_model",
    "load_tokenizer",
    "model_hash",
    "pick_device",
    "registry_names",
    "resolve_base_model",
    "spec_for",
]
