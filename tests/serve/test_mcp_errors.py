"""MCP tool errors say what was wrong and how to fix it, and never show a host path.

Through the official client: over stdio against `memtune mcp` for the failures a
caller can provoke, and in-process for a crash (a tool body monkeypatched to fail).
"""

from __future__ import annotations

import asyncio
import json
import os
import re

import pytest

from tests.serve.test_mcp import _run, _server_params

pytestmark = pytest.mark.timeout(90)

GENERIC = "Error executing tool"


def _error_text(result) -> str:
    assert result.is_error, result
    return result.content[0].text


def _assert_clean(text: str, tmp_path) -> None:
    assert GENERIC not in text
    assert str(tmp_path) not in text and os.path.realpath(tmp_path) not in text
    # no absolute path at all: a '/' that starts a path (not in a URL, not inside a relative path)
    assert not re.search(r"(?<![\w/.:~…-])/[\w.-]", text), text
    assert "errors.pydantic.dev" not in text and "validation error for" not in text


def test_tool_errors_are_specific_and_show_no_host_path(tmp_path):
    exports = tmp_path / "exports"
    exports.mkdir()
    (exports / "a-file").write_text("not a folder")
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, exports / "link-out")
    adapter = tmp_path / "adapters" / "orphan"  # an adapter whose base model is gone
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": str(tmp_path / "gone")}))
    params = _server_params(tmp_path, "--adapter", str(adapter), "--adapters-root", str(tmp_path / "adapters"))

    async def scenario(s):
        add = {"name": "n", "content": "c"}
        calls = {
            "priority": ("add_guideline", {**add, "priority": 101}),
            "tags": ("add_guideline", {**add, "tags": "not-a-list"}),
            "scope": ("add_guideline", {**add, "scope_type": "galaxy"}),
            "search_scope": ("search_guidelines", {"query": "x", "scope_type": "galaxy"}),
            "format": ("export_lora", {"output_path": "b", "format": "docx"}),
            "absolute": ("export_lora", {"output_path": str(outside / "b")}),
            "symlink": ("export_lora", {"output_path": "link-out/b"}),
            "under_file": ("export_lora", {"output_path": "a-file/b"}),
            "script_on_file": ("generate_script", {"output_path": "a-file"}),
            "ask_no_base": ("ask", {"question": "hello?", "max_tokens": 2}),
            "ask_too_long": ("ask", {"question": "hello?", "max_tokens": 100_000}),
            "unknown": ("summon_dragon", {}),
        }
        added = await s.call_tool("add_guideline", {"name": "Node", "content": "Use nvm use 22 first."})
        assert not added.is_error, added  # so that an export has something to write
        return {k: (name, _error_text(await s.call_tool(name, args))) for k, (name, args) in calls.items()}

    out = _run(params, scenario)
    for key, (tool, text) in out.items():
        _assert_clean(text, tmp_path)
        assert key == "unknown" or text.startswith(f"{tool}: "), (key, text)
    r = {key: text for key, (_, text) in out.items()}

    assert "priority: Input should be less than or equal to 100 (got 101)" in r["priority"]
    assert "hint: fix these and call again" in r["priority"]
    assert "tags: Input should be a valid list (got 'not-a-list')" in r["tags"]
    assert "scope type 'galaxy' is not one of global, org, project, session" in r["scope"]
    assert "hint: fix the value and call again" in r["search_scope"]
    assert "format 'docx' is not one of messages" in r["format"]
    assert "is an absolute path outside the export root (exports)" in r["absolute"] and "…/b" in r["absolute"]
    assert "hint: use a path inside exports" in r["absolute"]
    assert "leads outside the export root through a symbolic link" in r["symlink"]
    assert "exports/a-file" in r["under_file"] and "hint:" in r["under_file"]
    assert "a-file exists and is not a folder (hint: name a bundle folder" in r["script_on_file"]
    assert "gone" in r["ask_no_base"] and "hint:" in r["ask_no_base"]  # the base is named, its folder is not
    assert "max_tokens=100000 is over the limit of 512 (hint: ask for 512 or fewer)" in r["ask_too_long"]
    assert r["unknown"].startswith("unknown tool 'summon_dragon' (hint: this server has add_guideline, ask, ")


def test_a_crash_names_the_tool_and_the_exception_type_only(tmp_path, monkeypatch, caplog):
    from mcp.client import Client

    from memtune.serve.mcp_server import McpSettings, build_server

    server = build_server(McpSettings(db=str(tmp_path / "m.db"), export_root=tmp_path / "exports"))
    secret_path = str(tmp_path / "private" / "notes.txt")

    def boom(query, limit, filt):
        raise KeyError(f"no entry for {secret_path}")

    monkeypatch.setattr(server._memtune_tools, "search", boom)

    async def scenario():
        async with Client(server) as client:
            return await client.call_tool("search_guidelines", {"query": "anything"})

    with caplog.at_level("ERROR", logger="memtune.mcp"):
        result = asyncio.run(asyncio.wait_for(scenario(), 30))
    text = _error_text(result)
    _assert_clean(text, tmp_path)
    assert text.startswith("search_guidelines failed unexpectedly (KeyError)")
    assert "server's log has the details" in text and "notes.txt" not in text
    assert any("search_guidelines" in r.getMessage() and r.exc_info for r in caplog.records)  # the log keeps it
