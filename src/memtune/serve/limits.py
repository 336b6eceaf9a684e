"""Back-pressure: a body-size cap and a bounded generation pool.

Generation is CPU/GPU-bound and one model cannot usefully run many at once, so
requests beyond ``max_concurrency`` wait in a queue of ``queue_size``; beyond that
they are refused at once with 429 + Retry-After instead of piling up until the
server runs out of memory or every client times out.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar

from memtune.serve.auth import send_json_error

T = TypeVar("T")


class BodyLimitMiddleware:
    """413 for bodies over ``max_bytes``: checks Content-Length first, then counts chunked bodies."""

    def __init__(self, app, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers") or []:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = 0
                if declared > self.max_bytes:
                    await self._refuse(send)
                    return
        # Read the whole body up front (never more than max_bytes) and replay it: a limit
        # raised from inside the app's own body parsing would be reported as a 400.
        chunks: list[bytes] = []
        seen = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                return
            body = msg.get("body", b"")
            seen += len(body)
            if seen > self.max_bytes:
                await self._refuse(send)
                return
            chunks.append(body)
            if not msg.get("more_body", False):
                break
        replayed = False

        async def replay():
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": b"".join(chunks), "more_body": False}
            return await receive()  # after the body: wait for a disconnect, as the server would

        await self.app(scope, replay, send)

    async def _refuse(self, send) -> None:
        await send_json_error(
            send,
            413,
            f"request body is larger than the server's limit of {self.max_bytes} bytes",
            "invalid_request_error",
            "request_too_large",
        )


class Busy(Exception):
    """Every worker is busy and the queue is full."""

    def __init__(self, retry_after: int) -> None:
        super().__init__("server busy")
        self.retry_after = retry_after


class GenerationTimeout(Exception):
    pass


@dataclass
class PoolStats:
    accepted: int = 0
    rejected: int = 0
    completed: int = 0
    failed: int = 0
    timed_out: int = 0


class GenerationPool:
    """``max_concurrency`` worker threads plus a waiting room of ``queue_size``.

    A slot is taken on admission and given back only when the worker really finishes
    (not when the caller gives up), so a timed-out generation still counts until its
    thread is free: the pool can never hold more than its capacity.
    """

    def __init__(self, max_concurrency: int = 1, queue_size: int = 8) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if queue_size < 0:
            raise ValueError("queue_size must be at least 0")
        self.max_concurrency = max_concurrency
        self.capacity = max_concurrency + queue_size
        self._executor = ThreadPoolExecutor(max_concurrency, thread_name_prefix="memtune-gen")
        self._lock = threading.Lock()
        self._in_flight = 0
        self._avg_seconds = 1.0
        self.stats = PoolStats()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    def retry_after(self) -> int:
        waves = max(1, self.capacity // self.max_concurrency)
        return max(1, math.ceil(self._avg_seconds * waves))

    def try_acquire(self) -> bool:
        with self._lock:
            if self._in_flight >= self.capacity:
                self.stats.rejected += 1
                return False
            self._in_flight += 1
            self.stats.accepted += 1
            return True

    def release_unused(self) -> None:
        """Give back a slot that was acquired but never submitted (the request was refused)."""
        with self._lock:
            self._in_flight -= 1

    def _release(self, fut: Future[Any]) -> None:
        with self._lock:
            self._in_flight -= 1
            if fut.cancelled():
                return
            if fut.exception() is not None:
                self.stats.failed += 1
            else:
                self.stats.completed += 1

    def submit(self, fn: Callable[[], T]) -> Future[T]:
        """Run ``fn`` on a worker; the caller must already hold a slot from :meth:`try_acquire`."""
        def timed() -> T:
            t0 = time.monotonic()
            try:
                return fn()
            finally:
                took = time.monotonic() - t0
                self._avg_seconds = 0.8 * self._avg_seconds + 0.2 * took

        fut = self._executor.submit(timed)
        fut.add_done_callback(self._release)
        return fut

    async def run(self, fn: Callable[[], T], *, cancel: threading.Event, timeout: float) -> T:
        """Admit, run off the event loop and wait at most ``timeout`` seconds (queueing included)."""
        if not self.try_acquire():
            raise Busy(self.retry_after())
        fut = self.submit(fn)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), timeout)
        except TimeoutError:
            cancel.set()
            self.stats.timed_out += 1
            raise GenerationTimeout() from None
        except asyncio.CancelledError:  # the client went away
            cancel.set()
            raise

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)
