"""The HTTP server, driven over real sockets with httpx and the official openai client."""

from __future__ import annotations

import threading
import time

import httpx
import pytest

from memtune.dataset.prompts import NOTES_HEADER
from memtune.serve.engine import Completion, GenParams, ask_messages
from memtune.serve.service import ServeConfig

pytestmark = pytest.mark.timeout(60)


def test_ask_contract_matches_direct_generation(serve, tiny_backend):
    """POST /ask echoes question and context and answers exactly what the engine generates (greedy)."""
    body = {"question": "How do I start the backend service?", "context": "Node project", "max_tokens": 12}
    with serve() as url:
        r = httpx.post(f"{url}/ask", json=body, timeout=30)
    assert r.status_code == 200, r.text
    data = r.json()
    assert data["question"] == body["question"]
    assert data["context"] == body["context"]
    msgs = ask_messages(body["question"], body["context"], tiny_backend.system)
    expected = tiny_backend.generate(msgs, GenParams(max_new_tokens=12))
    assert data["response"] == expected.text
    assert "guidelines" not in data  # only with --rag


def test_ask_context_is_optional(serve):
    with serve() as url:
        r = httpx.post(f"{url}/ask", json={"question": "hello?", "max_tokens": 4}, timeout=30)
    assert r.status_code == 200
    assert r.json()["context"] == ""


def test_openai_client_non_streaming_and_streaming_agree(serve, tiny_backend):
    from openai import OpenAI

    with serve() as url:
        client = OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=30)
        models = client.models.list()
        assert [m.id for m in models.data] == [tiny_backend.model_id]
        msgs = [{"role": "user", "content": "How do I start the backend service?"}]
        full = client.chat.completions.create(model=tiny_backend.model_id, messages=msgs, max_tokens=16)
        chunks = list(
            client.chat.completions.create(
                model=tiny_backend.model_id, messages=msgs, max_tokens=16, stream=True,
                stream_options={"include_usage": True},
            )
        )
    choice = full.choices[0]
    assert choice.message.role == "assistant"
    assert choice.finish_reason in ("stop", "length")
    assert full.usage.completion_tokens >= 1 and full.usage.prompt_tokens > 5
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed == choice.message.content
    assert sum(1 for c in chunks if c.choices and c.choices[0].delta.content) >= 2  # really incremental
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == [choice.finish_reason]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == full.usage.completion_tokens


def test_sse_wire_format_ends_with_done(serve):
    body = {"messages": [{"role": "user", "content": "hi"}], "max_tokens": 5, "stream": True}
    with serve() as url:
        with httpx.stream("POST", f"{url}/v1/chat/completions", json=body, timeout=30) as r:
            assert r.status_code == 200
            assert r.headers["content-type"].startswith("text/event-stream")
            lines = [ln for ln in r.iter_lines() if ln]
    assert all(ln.startswith("data: ") for ln in lines)
    assert lines[-1] == "data: [DONE]"
    assert '"role": "assistant"' in lines[0]


def test_stop_sequences_cut_the_answer(serve, tiny_backend):
    from openai import OpenAI

    msgs = [{"role": "user", "content": "How do I start the backend service?"}]
    free = tiny_backend.generate([{"role": "system", "content": tiny_backend.system}, *msgs], GenParams(max_new_tokens=20)).text
    stop = free[3:5]  # a substring that certainly occurs in the unconstrained answer
    assert stop.strip(), free
    with serve() as url:
        client = OpenAI(base_url=f"{url}/v1", api_key="x", max_retries=0, timeout=30)
        r = client.chat.completions.create(model=tiny_backend.model_id, messages=msgs, max_tokens=20, stop=[stop])
        s = client.chat.completions.create(model=tiny_backend.model_id, messages=msgs, max_tokens=20, stop=[stop], stream=True)
        streamed = "".join(c.choices[0].delta.content or "" for c in s if c.choices)
    assert r.choices[0].message.content == free[: free.index(stop)]
    assert r.choices[0].finish_reason == "stop"
    assert streamed == r.choices[0].message.content


def test_bearer_token_required_except_health(serve, monkeypatch):
    from openai import AuthenticationError, OpenAI

    cfg = ServeConfig(token="s3cret-token")
    with serve(cfg) as url:
        assert httpx.get(f"{url}/health").status_code == 200
        no = httpx.post(f"{url}/ask", json={"question": "q"})
        wrong = httpx.post(f"{url}/ask", json={"question": "q"}, headers={"Authorization": "Bearer nope"})
        docs = httpx.get(f"{url}/openapi.json")
        ok = httpx.post(
            f"{url}/ask", json={"question": "q", "max_tokens": 3}, headers={"Authorization": "Bearer s3cret-token"},
            timeout=30,
        )
        with pytest.raises(AuthenticationError):
            OpenAI(base_url=f"{url}/v1", api_key="wrong", max_retries=0).models.list()
        good = OpenAI(base_url=f"{url}/v1", api_key="s3cret-token", max_retries=0).models.list()
    assert no.status_code == 401 and wrong.status_code == 401 and docs.status_code == 401
    assert no.headers["www-authenticate"] == "Bearer"
    assert "missing bearer token" in no.json()["error"]["message"]
    assert "invalid bearer token" in wrong.json()["error"]["message"]
    assert ok.status_code == 200
    assert len(good.data) == 1


@pytest.mark.parametrize(
    ("path", "body", "status", "needle"),
    [
        ("/ask", {"question": "   "}, 400, "question is empty"),
        ("/ask", {"context": "no question"}, 400, "question"),
        ("/ask", {"question": "q", "max_tokens": 5000}, 400, "over this server's limit of 64"),
        ("/v1/chat/completions", {"messages": []}, 400, "messages is empty"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}] * 5}, 400, "too many messages: 5"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "max_tokens": 65}, 400, "max_tokens=65"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "max_completion_tokens": 99}, 400, "max_completion_tokens=99"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "n": 2}, 400, "n must be 1"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "x"}], "temperature": 7}, 400, "temperature"),
        ("/v1/chat/completions", {"messages": [{"role": "assistant", "content": "x"}]}, 400, "last message"),
        ("/v1/chat/completions", {"model": "gpt-4", "messages": [{"role": "user", "content": "x"}]}, 404, "not served here"),
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, 400, "only text"),
        # too long for the context: refused before the stream starts, not cut silently
        ("/v1/chat/completions", {"messages": [{"role": "user", "content": "word " * 600}], "stream": True}, 400,
         "the prompt is"),
    ],
)
def test_input_limits_give_clear_json_errors(serve, path, body, status, needle):
    cfg = ServeConfig(max_tokens_limit=64, default_max_tokens=8, max_messages=4)
    with serve(cfg) as url:
        r = httpx.post(f"{url}{path}", json=body, timeout=30)
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert needle in err["message"]
    assert err["type"]


def test_body_size_limit_413_and_malformed_json_400(serve):
    cfg = ServeConfig(max_body_bytes=2_000)
    big = {"question": "x" * 5_000}
    with serve(cfg) as url:
        r = httpx.post(f"{url}/ask", json=big, timeout=30)
        # chunked upload without Content-Length is counted too
        chunked = httpx.post(f"{url}/ask", content=iter([b'{"question": "', b"x" * 3_000, b'"}']), timeout=30)
        bad = httpx.post(f"{url}/ask", content=b"{not json", headers={"content-type": "application/json"})
        alive = httpx.get(f"{url}/health")
    assert r.status_code == 413 and "2000 bytes" in r.json()["error"]["message"]
    assert chunked.status_code == 413
    assert bad.status_code == 400 and "invalid request" in bad.json()["error"]["message"]
    assert alive.status_code == 200


def test_prompt_longer_than_context_is_400(serve):
    with serve(ServeConfig(max_tokens_limit=400)) as url:
        r = httpx.post(f"{url}/ask", json={"question": "word " * 600, "max_tokens": 8}, timeout=30)
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "context_length_exceeded"


class _SlowBackend:
    """Generates nothing until cancelled (or 5 s): shows timeouts cancel the worker."""

    model_id = "slow"

    def __init__(self) -> None:
        self.cancelled = threading.Event()

    def generate(self, messages, params, *, on_text=None, cancel=None):
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            if cancel is not None and cancel.is_set():
                self.cancelled.set()
                return Completion("", 1, 0, "cancelled")
            if on_text is not None:
                on_text(".")
            time.sleep(0.01)
        return Completion("done", 1, 1, "stop")


def test_request_timeout_is_504_and_cancels_generation(serve):
    slow = _SlowBackend()
    with serve(ServeConfig(request_timeout=0.3), backend=slow) as url:
        t0 = time.monotonic()
        r = httpx.post(f"{url}/ask", json={"question": "q"}, timeout=10)
        took = time.monotonic() - t0
        assert slow.cancelled.wait(3)
        with httpx.stream(
            "POST", f"{url}/v1/chat/completions", timeout=10,
            json={"messages": [{"role": "user", "content": "q"}], "stream": True},
        ) as s:
            lines = [ln for ln in s.iter_lines() if ln]
        health = httpx.get(f"{url}/health").json()
    assert r.status_code == 504 and r.json()["error"]["code"] == "timeout"
    assert took < 3
    assert any('"code": "timeout"' in ln for ln in lines) and lines[-1] == "data: [DONE]"
    assert health["status"] == "ok"


def test_rag_puts_store_hits_in_the_prompt(serve, sqlite_store):
    from memtune.serve.rag import Retriever
    from memtune.store import GuidelineInput

    sqlite_store.add(GuidelineInput(name="Node version", content="Always run nvm use 22 before yarn start."))
    sqlite_store.add(GuidelineInput(name="Styling", content="Use tabs in Makefiles."))
    rec = _Recorder()
    seen = rec.seen
    with serve(retriever=Retriever(sqlite_store, k=1), backend=rec) as url:
        r = httpx.post(f"{url}/ask", json={"question": "which nvm version before yarn start?"}, timeout=10)
        c = httpx.post(
            f"{url}/v1/chat/completions", timeout=10,
            json={"messages": [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "nvm?"}]},
        )
    assert r.status_code == 200 and c.status_code == 200
    assert [g["name"] for g in r.json()["guidelines"]] == ["Node version"]
    system = seen[0][0]
    assert system["role"] == "system" and "Makefiles" not in system["content"]
    # the notes look exactly like the retrieval-style training examples
    assert system["content"].startswith("TRAINED SYSTEM PROMPT\n\n" + NOTES_HEADER)
    assert "[1] Node version (" in system["content"] and "nvm use 22" in system["content"]
    assert seen[1][0]["content"].startswith("Be brief.") and "nvm use 22" in seen[1][0]["content"]


class _Recorder:
    model_id = "rec"
    system = "TRAINED SYSTEM PROMPT"

    def __init__(self) -> None:
        self.seen: list[list[dict]] = []

    def generate(self, messages, params, *, on_text=None, cancel=None):
        self.seen.append(messages)
        return Completion("ok", 1, 1, "stop")


def test_system_prompt_default_override_and_none(serve):
    """Requests without a system message get the adapter's training prompt; --system changes or drops it."""
    chat = {"messages": [{"role": "user", "content": "q"}]}
    own = {"messages": [{"role": "system", "content": "mine"}, {"role": "user", "content": "q"}]}
    results = {}
    for label, cfg in (("default", ServeConfig()), ("custom", ServeConfig(system_prompt="X")),
                       ("none", ServeConfig(system_prompt=""))):
        rec = _Recorder()
        with serve(cfg, backend=rec) as url:
            httpx.post(f"{url}/ask", json={"question": "q", "context": "ctx"}, timeout=10)
            httpx.post(f"{url}/v1/chat/completions", json=chat, timeout=10)
            httpx.post(f"{url}/v1/chat/completions", json=own, timeout=10)
        results[label] = rec.seen
    d = results["default"]
    assert d[0][0] == {"role": "system", "content": "TRAINED SYSTEM PROMPT"}
    assert d[0][1]["role"] == "user" and d[0][1]["content"].startswith("q") and "ctx" in d[0][1]["content"]
    assert d[1][0]["content"] == "TRAINED SYSTEM PROMPT" and d[2][0]["content"] == "mine"
    assert results["custom"][0][0]["content"] == "X" and results["custom"][1][0]["content"] == "X"
    assert [m["role"] for m in results["none"][0]] == ["user"] and results["none"][2][0]["content"] == "mine"
