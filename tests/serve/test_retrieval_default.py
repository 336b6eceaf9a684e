"""Answers retrieve from the adapter's own store by default (its lineage names it); --no-rag turns it off."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memtune.errors import ConfigError
from memtune.infer import adapter_store, load_assistant, resolve_retrieval
from memtune.store import GuidelineFilter, GuidelineInput, GuidelineStore

NOTE = ("Backend start", "Switch to Node 22 with nvm use 22, then run yarn start; never in the foreground.")


@pytest.fixture
def adapter_with_store(tmp_path, tiny):
    """A copy of the tiny adapter whose lineage names a store holding one note, in project 'shop'."""
    db = tmp_path / "m.db"
    store = GuidelineStore(db)
    store.add(GuidelineInput(name=NOTE[0], content=NOTE[1], category="command", scope_type="project",
                             scope_id="shop"))
    store.add(GuidelineInput(name="Other project", content="Run yarn start in the other repo.", category="command",
                             scope_type="project", scope_id="elsewhere"))
    store.close()
    adapter = tmp_path / "adapter"
    shutil.copytree(tiny["adapter"], adapter)
    info = json.loads((adapter / "memtune.json").read_text())
    info["dataset"]["store"] = f"sqlite:///{db}"
    info["dataset"]["filter"] = {"scope_type": "project", "scope_id": "shop", "active_only": True}
    (adapter / "memtune.json").write_text(json.dumps(info))
    return adapter, db


def test_resolve_retrieval_follows_the_lineage_unless_told_otherwise(adapter_with_store, tmp_path):
    adapter, db = adapter_with_store
    url, flt, why = resolve_retrieval(adapter, rag=None)
    assert url == f"sqlite:///{db}" and why.startswith("retrieval from the adapter's store")
    assert flt == GuidelineFilter(scope_type="project", scope_id="shop")
    assert resolve_retrieval(adapter, rag=False)[0] is None
    assert resolve_retrieval(adapter, rag=None, db="other.db")[:2] == ("other.db", None)
    # the MCP server's --db is its tools' store: the adapter's own store comes first there
    assert resolve_retrieval(adapter, rag=None, db="other.db", db_first=False)[0] == f"sqlite:///{db}"
    db.unlink()  # the store is gone: closed-book by default, an error when retrieval is required
    assert adapter_store(adapter) == (None, None)
    assert resolve_retrieval(adapter, rag=True, db="other.db", db_first=False)[:2] == ("other.db", None)
    url, _, why = resolve_retrieval(adapter, rag=None)
    assert url is None and "pass --db" in why
    with pytest.raises(ConfigError, match="names no store"):
        resolve_retrieval(adapter, rag=True)


def test_a_hidden_password_or_no_store_in_the_lineage_means_none(tmp_path, tiny):
    adapter = tmp_path / "a"
    shutil.copytree(tiny["adapter"], adapter)
    assert adapter_store(adapter) == (None, None)  # lineage without a store (older adapters)
    info = json.loads((adapter / "memtune.json").read_text())
    info["dataset"]["store"] = "postgresql+psycopg://alice:***@db.example.test/m"
    (adapter / "memtune.json").write_text(json.dumps(info))
    assert adapter_store(adapter) == (None, None)


def test_assistant_retrieves_from_its_own_store_scoped_as_its_bundle(adapter_with_store):
    adapter, _ = adapter_with_store
    a = load_assistant(adapter, rag=None)
    assert a.mode == "retrieval"
    system = a.retrieval.system_prompt("How do I start the backend?", "", a.system)
    assert "nvm use 22" in system and "other repo" not in system  # the bundle's scope only
    assert load_assistant(adapter).mode == "closed-book"  # the library default stays closed-book


def test_mcp_ask_says_which_mode_and_which_notes(adapter_with_store, tmp_path):
    from memtune.serve.mcp_server import McpSettings, _Tools

    adapter, _ = adapter_with_store
    on = _Tools(McpSettings(adapter=str(adapter), export_root=tmp_path / "x"))
    r = on.ask("How do I start the backend?", "", 4)
    assert r["mode"] == "retrieval" and [n["name"] for n in r["notes"]] == [NOTE[0]]
    off = _Tools(McpSettings(adapter=str(adapter), export_root=tmp_path / "x", rag=False))
    r = off.ask("How do I start the backend?", "", 4)
    assert r["mode"] == "closed-book" and r["notes"] == []


def test_chat_says_how_it_answers(adapter_with_store):
    from memtune.cli import app

    adapter, _ = adapter_with_store
    res = CliRunner().invoke(app, ["chat", str(adapter)], input="")
    assert res.exit_code == 0, res.output
    assert "Answers: retrieval from the adapter's store" in res.output
    res = CliRunner().invoke(app, ["chat", str(adapter), "--no-rag"], input="")
    assert "Answers: closed-book" in res.output


def test_serve_and_chat_take_the_retrieval_floor_from_one_place(adapter_with_store):
    """--rag-min-known reaches the retriever; without it the store's KNOWN_WORDS_MIN_SHARE applies, so
    a question about what the memory never mentions shows no note (with 0 it shows the closest)."""
    from memtune.cli import app
    from memtune.cli.serve import _retriever
    from memtune.store import KNOWN_WORDS_MIN_SHARE

    adapter, _ = adapter_with_store
    default, _ = _retriever(adapter, None, None, 3)
    off, _ = _retriever(adapter, None, None, 3, None, 0.0)
    assert default.min_known == KNOWN_WORDS_MIN_SHARE and off.min_known == 0.0
    q = "Which Kubernetes namespace runs the yarn canary?"
    assert default.search(q) == [] and [h.name for h in off.search(q)] == [NOTE[0]]
    assert [h.name for h in default.search("How do I start the backend with yarn?")] == [NOTE[0]]
    for cmd in ("serve", "chat"):
        res = CliRunner().invoke(app, [cmd, "--help"], env={"COLUMNS": "200"})
        assert "--rag-min-known" in res.output
    res = CliRunner().invoke(app, ["chat", str(adapter), "--rag-min-known", "3"], input="")
    assert res.exit_code == 2 and "--rag-min-known" in res.output
