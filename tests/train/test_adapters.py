"""The adapter registry and its CLI: list / show / remove, staleness against the store."""

from __future__ import annotations

import json
import time

import pytest
from typer.testing import CliRunner

from memtune.errors import NotFoundError
from memtune.store import GuidelineInput, GuidelineStore
from memtune.train.adapters import check_staleness, find_adapters, latest_adapter, read_adapter, remove_adapter


def fake_adapter(root, name, guidelines, *, created=None, recall=0.5):
    d = root / name
    d.mkdir(parents=True)
    (d / "adapter_config.json").write_text("{}")
    (d / "memtune.json").write_text(json.dumps({
        "method": "lora", "created_at": "2026-01-01T00:00:00+00:00", "created_ts": created or time.time(),
        "base_model": {"name": "smollm2-135m-instruct", "hash": "sha256:abc"},
        "dataset": {"fingerprint": "sha256:data"}, "guidelines": guidelines,
        "metrics": {"probe_recall": recall, "eval_loss": 1.25},
    }))
    return d


@pytest.fixture
def store(tmp_path):
    s = GuidelineStore(str(tmp_path / "m.db"))
    for n in ("one", "two", "three"):
        s.add(GuidelineInput(name=n, content=f"Rule {n}: always do {n}."))
    yield s
    s.close()


def test_find_adapters_newest_first_and_latest(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMTUNE_ADAPTERS_DIR", str(tmp_path / "default"))
    fake_adapter(tmp_path / "default", "old", [], created=1000)
    fake_adapter(tmp_path / "other", "new", [], created=2000)
    (tmp_path / "other" / "not-an-adapter").mkdir()
    names = [a.name for a in find_adapters([tmp_path / "other"])]
    assert names == ["new", "old"]
    assert latest_adapter().name == "old"  # only the default root
    assert latest_adapter(tmp_path / "other").name == "new"


def test_staleness_tracks_versions_deactivation_and_deletion(tmp_path, store):
    ids = [g.id for g in store.query()]
    lineage = [{"id": i, "version": 1} for i in ids]
    info = check_staleness(read_adapter(fake_adapter(tmp_path, "a", lineage)), store)
    assert info.stale is False and info.stale_reasons == []

    store.edit(ids[0], content="Rule one: never do one.")
    store.set_active(ids[1], False)
    info = check_staleness(read_adapter(fake_adapter(tmp_path, "b", [*lineage, {"id": 999, "version": 1}])), store)
    assert info.stale is True
    text = " ".join(info.stale_reasons)
    assert "version 2" in text and "deactivated" in text and "999 was deleted" in text


def test_remove_only_deletes_adapter_dirs(tmp_path):
    d = fake_adapter(tmp_path, "x", [])
    remove_adapter(read_adapter(d))
    assert not d.exists()
    with pytest.raises(NotFoundError):
        read_adapter(tmp_path)


def _cli(args, monkeypatch, root):
    from memtune.cli import app

    monkeypatch.setenv("MEMTUNE_ADAPTERS_DIR", str(root))
    monkeypatch.delenv("MEMTUNE_DB_URL", raising=False)
    return CliRunner().invoke(app, args)


def test_cli_list_show_remove(tmp_path, store, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ids = [g.id for g in store.query()]
    root = tmp_path / "adapters"
    fake_adapter(root, "fresh", [{"id": ids[0], "version": 1}])
    fake_adapter(root, "stale", [{"id": ids[1], "version": 1}])
    store.edit(ids[1], content="Rule two: changed.")
    db = str(tmp_path / "m.db")

    r = _cli(["adapters", "list", "--db", db, "--json"], monkeypatch, root)
    assert r.exit_code == 0, r.output
    rows = {a["name"]: a for a in json.loads(r.stdout)}
    assert rows["fresh"]["stale"] is False and rows["stale"]["stale"] is True
    assert rows["fresh"]["base_model"] == "smollm2-135m-instruct"

    r = _cli(["adapters", "list", "--db", db], monkeypatch, root)
    assert r.exit_code == 0 and "stale" in r.stdout and "fresh" in r.stdout

    r = _cli(["adapters", "show", "stale", "--db", db], monkeypatch, root)
    assert r.exit_code == 0 and "version 2" in r.stdout

    r = _cli(["adapters", "remove", "stale", "--yes"], monkeypatch, root)
    assert r.exit_code == 0 and not (root / "stale").exists()

    r = _cli(["adapters", "show", "nope"], monkeypatch, root)
    assert r.exit_code == 3 and "adapters list" in r.output


def test_cli_list_without_a_store_marks_staleness_unknown(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    fake_adapter(tmp_path / "adapters", "a", [{"id": 1, "version": 1}])
    r = _cli(["adapters", "list", "--json"], monkeypatch, tmp_path / "adapters")
    assert r.exit_code == 0 and json.loads(r.stdout)[0]["stale"] is None
