"""Overload: far more simultaneous requests than workers + queue, against the tiny model."""

from __future__ import annotations

import asyncio
import time
from collections import Counter

import httpx
import pytest

from memtune.serve.service import ServeConfig

pytestmark = pytest.mark.timeout(90)

N = 100


async def _one(client: httpx.AsyncClient, i: int) -> tuple[int, str, dict]:
    """Rotate over /ask, chat completions and streamed chat completions."""
    kind = ("ask", "chat", "stream")[i % 3]
    if kind == "ask":
        r = await client.post("/ask", json={"question": f"How do I start service {i}?", "max_tokens": 32})
        return r.status_code, r.headers.get("retry-after", ""), r.json()
    body = {"messages": [{"role": "user", "content": f"question {i}"}], "max_tokens": 32}
    if kind == "chat":
        r = await client.post("/v1/chat/completions", json=body)
        return r.status_code, r.headers.get("retry-after", ""), r.json()
    async with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as r:
        if r.status_code != 200:  # refused before any event was sent
            await r.aread()
            return r.status_code, r.headers.get("retry-after", ""), r.json()
        lines = [ln async for ln in r.aiter_lines() if ln]
        assert lines[-1] == "data: [DONE]"
        return 200, "", {"events": len(lines)}


def test_hundred_concurrent_requests_are_answered_or_refused(serve, capsys):
    cfg = ServeConfig(max_concurrency=1, queue_size=16, request_timeout=60)

    async def storm(url: str):
        limits = httpx.Limits(max_connections=N + 10, max_keepalive_connections=N + 10)
        async with httpx.AsyncClient(base_url=url, limits=limits, timeout=45) as client:
            t0 = time.monotonic()
            results = await asyncio.wait_for(asyncio.gather(*(_one(client, i) for i in range(N))), 60)
            return results, time.monotonic() - t0

    with serve(cfg) as url:
        results, seconds = asyncio.run(storm(url))
        deadline = time.monotonic() + 10
        while (health := httpx.get(f"{url}/health").json())["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.05)
        after = httpx.post(f"{url}/ask", json={"question": "still there?", "max_tokens": 4}, timeout=30)

    codes = Counter(code for code, _, _ in results)
    with capsys.disabled():
        print(f"\nload test: {N} concurrent requests in {seconds:.2f}s -> {dict(codes)}")
    assert set(codes) <= {200, 429}, codes
    assert codes[200] >= cfg.max_concurrency + cfg.queue_size  # the admitted ones all finished
    assert codes[429] > 0  # and the overflow was refused, not queued without bound
    for code, retry_after, body in results:
        if code == 429:
            assert int(retry_after) >= 1
            assert body["error"]["code"] == "server_busy"
    assert health == {"status": "ok", "in_flight": 0, "capacity": 17, "workers": 1}
    assert after.status_code == 200
