"""Fixtures: a tiny llama + LoRA adapter dir + bundle + store, built once per session."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny_env(tmp_path_factory):
    """{base, adapter, bundle, db, ids}: everything an end-to-end evaluation needs."""
    from tests.evaluate.tiny import build_adapter_dir, build_model_dir, build_store, write_bundle

    root = tmp_path_factory.mktemp("tiny_eval")
    store, ids = build_store(root / "memtune.db")
    store.close()
    base = build_model_dir(root / "base")
    bundle = write_bundle(root / "bundle", ids)
    adapter = build_adapter_dir(root / "adapter", base, bundle)
    return {"root": root, "base": base, "adapter": adapter, "bundle": bundle, "db": root / "memtune.db", "ids": ids}


@pytest.fixture
def store_with_guidelines(tmp_path):
    from tests.evaluate.tiny import build_store

    store, ids = build_store(tmp_path / "memtune.db")
    yield store, ids
    store.close()
