"""The serve/mcp commands' start-up checks, and `memtune serve` run as a user would."""

from __future__ import annotations

import httpx
import pytest
from typer.testing import CliRunner

from memtune.cli import app
from memtune.serve.auth import is_loopback

pytestmark = pytest.mark.timeout(60)


@pytest.fixture(autouse=True)
def _no_token(monkeypatch):
    monkeypatch.delenv("MEMTUNE_API_TOKEN", raising=False)


@pytest.mark.parametrize(
    ("host", "loop"),
    [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True), ("localhost", True), ("[::1]", True),
     ("0.0.0.0", False), ("::", False), ("10.1.2.3", False), ("192.168.0.10", False)],
)
def test_is_loopback(host, loop):
    assert is_loopback(host) is loop


@pytest.mark.parametrize("cmd", [["serve", "ADAPTER", "--host", "0.0.0.0"], ["mcp", "--http", "--host", "0.0.0.0"]])
def test_non_loopback_without_token_is_refused_before_loading(tmp_path, cmd):
    cmd = [str(tmp_path / "missing") if c == "ADAPTER" else c for c in cmd]
    r = CliRunner().invoke(app, cmd)
    assert r.exit_code == 2
    assert "refuses to listen on '0.0.0.0' without authentication" in r.output
    assert "MEMTUNE_API_TOKEN" in r.output


def test_with_token_bind_check_passes_and_adapter_is_checked_next(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMTUNE_API_TOKEN", "t0ken")
    r = CliRunner().invoke(app, ["serve", str(tmp_path / "missing"), "--host", "0.0.0.0"])
    assert r.exit_code == 3 and "is not a directory" in r.output


def test_invalid_limits_are_listed(tmp_path):
    r = CliRunner().invoke(
        app, ["serve", str(tmp_path), "--queue-size", "-1", "--max-concurrency", "0", "--default-max-tokens", "999",
              "--max-tokens-limit", "10"],
    )
    assert r.exit_code == 2
    for needle in ("queue-size must be 0 or more", "max-concurrency must be at least 1", "default max tokens 999"):
        assert needle in r.output


def test_folder_without_adapter_or_model(tmp_path):
    r = CliRunner().invoke(app, ["chat", str(tmp_path)])
    assert r.exit_code == 3 and "neither a LoRA adapter" in r.output


def test_memtune_serve_wires_flags_token_and_rag(tiny, tmp_path, monkeypatch):
    """`memtune serve` end to end, with serve_http swapped for a loopback server in this process."""
    from memtune.serve import connections
    from memtune.store import GuidelineInput, GuidelineStore
    from tests.serve.conftest import live_server

    db = tmp_path / "m.db"
    with GuidelineStore(db) as store:
        store.add(GuidelineInput(name="Node version", content="Run nvm use 22 before yarn start."))
    captured = {}

    def fake_run(asgi, host, port, log_level, limits):
        captured.update(host=host, port=port, limits=limits)
        with live_server(asgi) as url:
            auth = {"Authorization": "Bearer s3cret"}
            captured["ok"] = httpx.post(f"{url}/ask", json={"question": "nvm before yarn?"}, headers=auth, timeout=30)
            captured["too_many"] = httpx.post(
                f"{url}/ask", json={"question": "hi", "max_tokens": 17}, headers=auth, timeout=30
            )
            captured["denied"] = httpx.post(f"{url}/ask", json={"question": "hi"}, timeout=30)
            captured["models"] = httpx.get(f"{url}/v1/models", headers=auth, timeout=30).json()
            captured["health"] = httpx.get(f"{url}/health", timeout=30).json()

    monkeypatch.setattr(connections, "serve_http", fake_run)
    monkeypatch.setenv("MEMTUNE_API_TOKEN", "s3cret")
    r = CliRunner().invoke(
        app,
        ["serve", str(tiny["adapter"]), "--host", "0.0.0.0", "--port", "8123", "--max-tokens-limit", "16",
         "--default-max-tokens", "4", "--queue-size", "3", "--max-concurrency", "2", "--model-id", "proj",
         "--rag", "--db", str(db), "--rag-k", "1", "--header-timeout", "2.5", "--max-connections", "40"],
    )
    assert r.exit_code == 0, r.output
    assert captured["host"] == "0.0.0.0" and captured["port"] == 8123  # allowed: a token is set
    assert (captured["limits"].header_timeout, captured["limits"].max_connections) == (2.5, 40)
    assert "bearer token required" in r.output
    ok = captured["ok"].json()
    assert captured["ok"].status_code == 200 and ok["question"] == "nvm before yarn?"
    assert [g["name"] for g in ok["guidelines"]] == ["Node version"]
    assert captured["too_many"].status_code == 400 and "limit of 16" in captured["too_many"].json()["error"]["message"]
    assert captured["denied"].status_code == 401
    assert captured["models"]["data"][0]["id"] == "proj"
    assert captured["health"]["capacity"] == 5 and captured["health"]["workers"] == 2
