"""`memtune mcp` over stdio with the official MCP client: every tool, and every refusal."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(90)

EXPECTED_TOOLS = {"export_lora", "list_adapters", "generate_script", "add_guideline", "search_guidelines"}


def _server_params(tmp_path: Path, *extra: str, env: dict[str, str] | None = None):
    from mcp.client.stdio import StdioServerParameters

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("MEMTUNE_")}
    base_env.update({"PYTHONWARNINGS": "ignore", "MEMTUNE_CACHE_DIR": str(tmp_path / "cache")})
    base_env.update(env or {})
    return StdioServerParameters(
        command=sys.executable,
        args=["-m", "memtune", "mcp", "--db", str(tmp_path / "m.db"), "--export-root", str(tmp_path / "exports"), *extra],
        env=base_env,
        cwd=str(tmp_path),
    )


async def _session_run(params, scenario):
    from mcp import ClientSession
    from mcp.client.stdio import stdio_client

    with open(os.devnull, "w") as devnull:
        async with stdio_client(params, errlog=devnull) as (read, write):
            async with ClientSession(read, write, read_timeout_seconds=60) as session:
                await session.initialize()
                return await scenario(session)


def _run(params, scenario):
    return asyncio.run(asyncio.wait_for(_session_run(params, scenario), 80))


def _data(result) -> dict:
    assert not result.is_error, result.content[0].text
    if result.structured_content is not None:
        return result.structured_content
    return json.loads(result.content[0].text)


def _error(result) -> str:
    assert result.is_error, result
    return result.content[0].text


@pytest.fixture
def adapters_root(tmp_path, tiny):
    """An adapters root holding the tiny adapter (as a copy) and a symlink that points out of it."""
    import shutil

    root = tmp_path / "adapters"
    root.mkdir()
    shutil.copytree(tiny["adapter"], root / "tiny-adapter")
    outside = tmp_path / "outside-adapter"
    shutil.copytree(tiny["adapter"], outside)
    os.symlink(outside, root / "sneaky")
    return root


def test_tools_work_end_to_end(tmp_path, tiny, adapters_root):
    params = _server_params(
        tmp_path, "--adapter", str(tiny["adapter"]), "--adapters-root", str(adapters_root)
    )

    async def scenario(s):
        tools = {t.name: t for t in (await s.list_tools()).tools}
        out = {"tools": tools}
        out["added"] = _data(await s.call_tool("add_guideline", {
            "name": "Node version", "content": "Run nvm use 22 before yarn start. api_key=sk-live-abcdef0123456789abcdef",
            "category": "command", "priority": 80, "tags": ["node"],
        }))
        out["again"] = _data(await s.call_tool("add_guideline", {
            "name": "Node version", "content": "Run nvm use 22 before yarn start, always.", "category": "command",
        }))
        out["search"] = _data(await s.call_tool("search_guidelines", {"query": "which nvm before yarn start", "limit": 3}))
        out["search_filtered"] = _data(await s.call_tool(
            "search_guidelines", {"query": "nvm", "category": "style"}
        ))
        out["adapters"] = _data(await s.call_tool("list_adapters", {}))
        out["ask"] = _data(await s.call_tool("ask", {"question": "How do I start the backend?", "max_tokens": 6}))
        return out

    r = _run(params, scenario)
    assert EXPECTED_TOOLS | {"ask"} == set(r["tools"])
    assert "admin_key" in r["tools"]["export_lora"].input_schema["properties"]
    assert r["tools"]["search_guidelines"].annotations.read_only_hint is True
    assert r["added"]["action"] == "added"
    assert r["added"]["redacted"] and all(x.startswith("content:") for x in r["added"]["redacted"])
    assert r["again"]["action"] == "updated" and r["again"]["version"] == 2
    hits = r["search"]["results"]
    assert hits and hits[0]["name"] == "Node version" and "sk-live" not in hits[0]["content"]
    assert r["search_filtered"]["results"] == []
    names = {a["name"]: a for a in r["adapters"]["adapters"]}
    assert set(names) == {"tiny-adapter"}  # the symlink pointing out of the root is not listed
    listed = json.dumps(r["adapters"])
    assert str(tmp_path) not in listed and str(tiny["base"]) not in listed  # no host paths leak
    assert names["tiny-adapter"]["path"] == "adapters/tiny-adapter"
    assert names["tiny-adapter"]["base_model"] == "local:base"
    assert r["ask"]["question"] == "How do I start the backend?" and isinstance(r["ask"]["response"], str)


def test_refusals(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (tmp_path / "exports").mkdir()
    os.symlink(outside, tmp_path / "exports" / "link-out")
    params = _server_params(tmp_path, env={"MEMTUNE_ADMIN_KEY": "k3y"})

    async def scenario(s):
        tools = {t.name for t in (await s.list_tools()).tools}
        add = {"name": "n", "content": "bundle contents"}
        return {
            "tools": tools,
            "no_key": _error(await s.call_tool("add_guideline", add)),
            "bad_key": _error(await s.call_tool("add_guideline", {**add, "admin_key": "nope"})),
            "export_no_key": _error(await s.call_tool("export_lora", {"output_path": "b"})),
            "script_no_key": _error(await s.call_tool("generate_script", {"output_path": "b"})),
            "dotdot": _error(await s.call_tool("export_lora", {"output_path": "../evil", "admin_key": "k3y"})),
            "absolute": _error(await s.call_tool("export_lora", {"output_path": str(outside), "admin_key": "k3y"})),
            "symlink": _error(await s.call_tool("export_lora", {"output_path": "link-out/b", "admin_key": "k3y"})),
            "script_dotdot": _error(await s.call_tool("generate_script", {"output_path": "a/../../x", "admin_key": "k3y"})),
            "bad_priority": _error(await s.call_tool("add_guideline", {**add, "priority": 101, "admin_key": "k3y"})),
            "ok_with_key": _data(await s.call_tool("add_guideline", {**add, "admin_key": "k3y"})),
            "read_needs_no_key": _data(await s.call_tool("search_guidelines", {"query": "contents"})),
        }

    r = _run(params, scenario)
    assert "ask" not in r["tools"]  # no --adapter, no ask tool
    assert "admin_key is missing" in r["no_key"] and "MEMTUNE_ADMIN_KEY" in r["no_key"]
    assert "does not match" in r["bad_key"]
    assert "needs admin_key" in r["export_no_key"] and "needs admin_key" in r["script_no_key"]
    assert "contains '..'" in r["dotdot"] and "contains '..'" in r["script_dotdot"]
    assert "absolute path outside the export root" in r["absolute"]
    assert "symbolic link" in r["symlink"]
    assert "priority" in r["bad_priority"]
    assert r["ok_with_key"]["action"] == "added"
    assert r["read_needs_no_key"]["results"][0]["name"] == "n"
    assert list(outside.iterdir()) == [] and not (tmp_path / "evil").exists()
