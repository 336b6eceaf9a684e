"""`memtune mcp` over stdio with the official MCP client: every tool, and every refusal."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from pathlib import Path

import pytest

from memtune.dataset.train_script import render_script

pytestmark = pytest.mark.timeout(90)

EXPECTED_TOOLS = {"export_lora", "list_adapters", "generate_script", "add_guideline", "search_guidelines"}


def _server_params(tmp_path: Path, *extra: str, env: dict[str, str] | None = None):
    from mcp.client.stdio import StdioServerParameters

    base_env = {k: v for k, v in os.environ.items() if not k.startswith("MEMTUNE_")}
    base_env.update({"PYTHONWARNINGS": "ignore", "MEMTUNE_CACHE_DIR": str(tmp_path / "cache"), "OMP_NUM_THREADS": "1"})
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
        # ask first: it imports torch/peft, which the export needs too (one import, not two)
        out["ask"] = _data(await s.call_tool("ask", {"question": "How do I start the backend?", "max_tokens": 6}))
        export = {"output_path": "bundles/b1", "format": "openai-messages", "examples_per_guideline": 2,
                  "category": "command", "priority_min": 50, "scope_type": "project"}
        out["export"] = _data(await s.call_tool("export_lora", export))
        out["export_again"] = _error(await s.call_tool("export_lora", export))
        out["export_forced"] = _data(await s.call_tool("export_lora", {**export, "force": True, "format": "alpaca",
                                                                           "rag_gold_first": 0.5}))
        out["export_none"] = _data(await s.call_tool("export_lora", {"output_path": "b2", "category": "nothing"}))
        out["script_text"] = _data(await s.call_tool("generate_script", {"model": "default", "epochs": 2}))
        out["script_written"] = _data(await s.call_tool("generate_script", {"output_path": "bundles/b1"}))
        return out

    r = _run(params, scenario)
    assert EXPECTED_TOOLS | {"ask"} == set(r["tools"])
    assert "admin_key" in r["tools"]["export_lora"].input_schema["properties"]
    from memtune.recipes import answer_tokens

    assert r["tools"]["ask"].input_schema["properties"]["max_tokens"]["default"] == answer_tokens()
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

    exp = r["export"]
    assert exp["success"] and exp["format"] == "openai" and exp["stats"]["guidelines_exported"] == 1
    assert exp["files"]["train"] == "exports/bundles/b1/train.jsonl" and exp["output_path"] == "exports/bundles/b1"
    bundle = tmp_path / "exports" / "bundles" / "b1"
    assert (bundle / "train.jsonl").is_file() and (bundle / "train.py").is_file()
    assert str(tmp_path) not in json.dumps(exp)
    assert "not empty" in r["export_again"] and str(tmp_path) not in r["export_again"]
    assert r["export_forced"]["success"] and r["export_forced"]["format"] == "alpaca"
    assert '"instruction"' in (bundle / "train.jsonl").read_text()
    assert json.loads((bundle / "metadata.json").read_text())["config"]["rag_gold_first"] == 0.5
    assert r["export_none"]["success"] is False and "no guidelines match" in r["export_none"]["error"]
    assert "def main" in r["script_text"]["script"] and r["script_text"]["written"] == []
    assert r["script_text"]["script"] == render_script()  # the bundle's train.py, rendered from the chat format
    assert r["script_text"]["command"] == "python train.py --model default --epochs 2.0"
    assert r["script_written"]["written"] == ["exports/bundles/b1/train.py", "exports/bundles/b1/requirements.txt"]
    assert r["script_written"]["folder"] == "exports/bundles/b1"
    assert "warnings" not in r["script_written"]  # the folder is a real bundle


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
            "root_itself": _error(await s.call_tool("export_lora", {"output_path": ".", "admin_key": "k3y"})),
            "script_symlink": _error(await s.call_tool("generate_script", {"output_path": "link-out", "admin_key": "k3y"})),
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
    assert "symbolic link" in r["symlink"] and "symbolic link" in r["script_symlink"]
    assert "export root itself" in r["root_itself"]
    assert "priority" in r["bad_priority"]
    assert r["ok_with_key"]["action"] == "added"
    assert r["read_needs_no_key"]["results"][0]["name"] == "n"
    assert list(outside.iterdir()) == [] and not (tmp_path / "evil").exists()


def test_streamable_http_with_bearer_token(tmp_path, monkeypatch):
    """`memtune mcp --http`: the official streamable-HTTP client gets in with the token, nobody without."""
    import httpx
    import httpx2
    from mcp import ClientSession
    from mcp.client.streamable_http import streamable_http_client
    from typer.testing import CliRunner

    from memtune.cli import app
    from memtune.serve import connections
    from tests.serve.conftest import live_server

    seen = {}

    async def scenario(url: str):
        headers = {"Authorization": "Bearer tok"}
        async with httpx2.AsyncClient(headers=headers, timeout=30) as http:
            async with streamable_http_client(f"{url}/mcp", http_client=http) as (read, write):
                async with ClientSession(read, write, read_timeout_seconds=30) as session:
                    await session.initialize()
                    seen["tools"] = {t.name for t in (await session.list_tools()).tools}
                    seen["search"] = _data(await session.call_tool("search_guidelines", {"query": "anything"}))

    def fake_run(asgi, host, port, log_level, limits):
        seen["bind"] = (host, port)
        with live_server(asgi) as url:
            seen["anonymous"] = httpx.post(f"{url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "ping"}).status_code
            asyncio.run(asyncio.wait_for(scenario(url), 40))

    monkeypatch.setattr(connections, "serve_http", fake_run)
    monkeypatch.setenv("MEMTUNE_API_TOKEN", "tok")
    r = CliRunner().invoke(
        app, ["mcp", "--http", "--port", "9911", "--db", str(tmp_path / "m.db"), "--export-root", str(tmp_path / "e")]
    )
    assert r.exit_code == 0, r.output
    assert seen["bind"] == ("127.0.0.1", 9911)
    assert seen["anonymous"] == 401
    assert seen["tools"] == EXPECTED_TOOLS
    assert seen["search"] == {"query": "anything", "results": []}
