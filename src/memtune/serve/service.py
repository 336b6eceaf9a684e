"""The server's state and the two ways to run a generation (whole answer or streamed).

Routes stay thin: they validate input, build messages and call :class:`Service`,
which applies retrieval, admission control, timeouts and cancellation the same way
for ``/ask`` and ``/v1/chat/completions``.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from memtune.generation import ANSWER_TOKENS
from memtune.serve.engine import ChatBackend, Completion, GenParams, Message, PromptTooLong, default_system_prompt
from memtune.serve.limits import Busy, GenerationPool, GenerationTimeout
from memtune.serve.rag import Hit, Retriever, last_user_text, with_guidelines


@dataclass
class ServeConfig:
    host: str = "127.0.0.1"
    port: int = 8000
    token: str | None = None
    max_concurrency: int = 1
    queue_size: int = 8
    max_body_bytes: int = 1_000_000
    max_tokens_limit: int = 1024
    default_max_tokens: int = ANSWER_TOKENS
    max_messages: int = 64
    request_timeout: float = 120.0
    system_prompt: str | None = None
    """Added when a request has none. None = the adapter's own (what it was trained with); "" = none."""

    def problems(self) -> list[str]:
        out = []
        if not 0 < self.port < 65536:
            out.append(f"port {self.port} is outside 1..65535")
        for name in ("max_concurrency", "max_body_bytes", "max_tokens_limit", "max_messages"):
            if getattr(self, name) < 1:
                out.append(f"{name.replace('_', '-')} must be at least 1 (got {getattr(self, name)})")
        if self.queue_size < 0:
            out.append(f"queue-size must be 0 or more (got {self.queue_size})")
        if self.request_timeout <= 0:
            out.append(f"request-timeout must be positive (got {self.request_timeout})")
        if not 1 <= self.default_max_tokens <= self.max_tokens_limit:
            out.append(
                f"default max tokens {self.default_max_tokens} must be within 1..max-tokens-limit "
                f"({self.max_tokens_limit})"
            )
        return out


class ApiError(Exception):
    """Becomes ``{"error": {message, type, param, code}}`` with ``status`` (OpenAI's error shape)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        type_: str = "invalid_request_error",
        code: str | None = None,
        param: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.type, "param": self.param, "code": self.code}}


def busy_error(retry_after: int) -> ApiError:
    return ApiError(
        429,
        f"the server is at capacity (all workers busy and the queue is full); retry in {retry_after}s",
        type_="rate_limit_error",
        code="server_busy",
        headers={"Retry-After": str(retry_after)},
    )


class Service:
    def __init__(self, backend: ChatBackend, config: ServeConfig, retriever: Retriever | None = None) -> None:
        self.backend = backend
        self.config = config
        self.retriever = retriever
        self.pool = GenerationPool(config.max_concurrency, config.queue_size)

    async def retrieve(self, messages: list[Message]) -> tuple[list[Message], list[Hit]]:
        """Messages with the RAG block added (if enabled) and the hits used."""
        if self.retriever is None:
            return messages, []
        query = last_user_text(messages)
        hits = await asyncio.to_thread(self.retriever.search, query)
        return with_guidelines(messages, hits, self.system or default_system_prompt()), hits

    @property
    def system(self) -> str | None:
        """--system if given, else the backend's default (the adapter's training prompt)."""
        if self.config.system_prompt is not None:
            return self.config.system_prompt or None
        return getattr(self.backend, "system", None)

    def with_default_system(self, messages: list[Message]) -> list[Message]:
        if self.system and not any(m["role"] == "system" for m in messages):
            return [{"role": "system", "content": self.system}, *messages]
        return messages

    async def complete(self, messages: list[Message], params: GenParams) -> Completion:
        params.drop_old_turns = False  # an API client should hear that its prompt is too long
        cancel = threading.Event()
        try:
            return await self.pool.run(
                lambda: self.backend.generate(messages, params, cancel=cancel),
                cancel=cancel,
                timeout=self.config.request_timeout,
            )
        except Busy as exc:
            raise busy_error(exc.retry_after) from None
        except GenerationTimeout:
            raise _timeout_error(self.config.request_timeout) from None
        except PromptTooLong as exc:
            raise ApiError(400, exc.message, code="context_length_exceeded", param="messages") from None

    async def open_stream(self, messages: list[Message], params: GenParams) -> AsyncIterator[tuple[str, Any]]:
        """Admit and check the prompt now (so 429/400 go out before any event), then stream.

        Yields ``("text", str)`` pieces and finally ``("done", Completion)``; raises
        :class:`ApiError` from inside the iterator if generation fails or times out.
        """
        params.drop_old_turns = False
        if not self.pool.try_acquire():
            raise busy_error(self.pool.retry_after())
        prompt_ids = getattr(self.backend, "prompt_ids", None)
        if prompt_ids is not None:
            try:  # off the event loop: a long prompt takes a while to tokenize
                await asyncio.to_thread(prompt_ids, messages, params.max_new_tokens, drop_old_turns=False)
            except PromptTooLong as exc:
                self.pool.release_unused()
                raise ApiError(400, exc.message, code="context_length_exceeded", param="messages") from None
            except BaseException:
                self.pool.release_unused()
                raise
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        cancel = threading.Event()

        def put(item: tuple[str, Any]) -> None:
            try:
                loop.call_soon_threadsafe(queue.put_nowait, item)
            except RuntimeError:  # the loop is gone (server shutting down)
                cancel.set()

        def job() -> None:
            try:
                c = self.backend.generate(messages, params, on_text=lambda t: put(("text", t)), cancel=cancel)
                put(("done", c))
            except Exception as exc:  # handed to the client as an error event
                put(("error", exc))

        self.pool.submit(job)
        timeout = self.config.request_timeout

        async def events() -> AsyncIterator[tuple[str, Any]]:
            deadline = loop.time() + timeout
            try:
                while True:
                    remaining = deadline - loop.time()
                    if remaining <= 0:
                        raise TimeoutError
                    kind, value = await asyncio.wait_for(queue.get(), remaining)
                    if kind == "error":
                        if isinstance(value, PromptTooLong):
                            raise ApiError(400, value.message, code="context_length_exceeded")
                        raise ApiError(500, f"generation failed: {value}", type_="server_error")
                    yield kind, value
                    if kind == "done":
                        return
            except TimeoutError:
                self.pool.stats.timed_out += 1
                raise _timeout_error(timeout) from None
            finally:
                cancel.set()  # stops the worker early if the client left or we timed out

        return events()


def _timeout_error(seconds: float) -> ApiError:
    return ApiError(
        504,
        f"generation did not finish within the server's request timeout ({seconds:g}s)",
        type_="timeout_error",
        code="timeout",
    )
