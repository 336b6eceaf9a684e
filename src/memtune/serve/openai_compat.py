"""``/v1/chat/completions`` and ``/v1/models`` in OpenAI's wire format.

Enough of the API for the official clients, editors and agent frameworks that speak
it: messages, max_tokens / max_completion_tokens, temperature, top_p, stop, and
streaming as server-sent events ending in ``data: [DONE]``. Parameters that cannot be
honoured (n > 1, tools, images) are refused with a 400 rather than silently ignored.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from memtune.serve.engine import Completion, GenParams, Message
from memtune.serve.service import ApiError, Service

router = APIRouter()
_CREATED = int(time.time())


class ContentPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[ContentPart] | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")
    model: str | None = None
    messages: list[ChatMessage]
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    n: int | None = 1
    stream: bool = False
    stream_options: StreamOptions | None = None
    stop: str | list[str] | None = None
    tools: list[Any] | None = None


def _text_of(m: ChatMessage, i: int) -> str:
    if m.content is None:
        return ""
    if isinstance(m.content, str):
        return m.content
    texts = []
    for part in m.content:
        if part.type != "text" or part.text is None:
            raise ApiError(
                400, f"messages[{i}] has a {part.type!r} content part; only text is supported", param="messages"
            )
        texts.append(part.text)
    return "".join(texts)


def to_messages(req: ChatCompletionRequest, max_messages: int) -> list[Message]:
    if not req.messages:
        raise ApiError(400, "messages is empty; send at least one user message", param="messages")
    if len(req.messages) > max_messages:
        raise ApiError(
            400,
            f"too many messages: {len(req.messages)} (this server accepts at most {max_messages})",
            param="messages",
            code="too_many_messages",
        )
    out: list[Message] = []
    for i, m in enumerate(req.messages):
        role = "system" if m.role == "developer" else m.role
        if role == "tool":
            raise ApiError(400, "tool messages are not supported by this server", param="messages")
        out.append({"role": role, "content": _text_of(m, i)})
    if out[-1]["role"] != "user" or not out[-1]["content"].strip():
        raise ApiError(400, "the last message must be a non-empty user message", param="messages")
    return out


def gen_params(req: ChatCompletionRequest, svc: Service) -> GenParams:
    limit = svc.config.max_tokens_limit
    asked = req.max_completion_tokens or req.max_tokens
    if asked is not None and asked > limit:
        name = "max_completion_tokens" if req.max_completion_tokens else "max_tokens"
        raise ApiError(400, f"{name}={asked} is over this server's limit of {limit}", param=name, code="max_tokens_too_large")
    if req.n not in (None, 1):
        raise ApiError(400, "n must be 1 (one answer per request)", param="n")
    if req.tools:
        raise ApiError(400, "tool calling is not supported by this server", param="tools")
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    if len(stop) > 4:
        raise ApiError(400, f"at most 4 stop sequences are allowed (got {len(stop)})", param="stop")
    return GenParams(
        max_new_tokens=asked or svc.config.default_max_tokens,
        temperature=req.temperature if req.temperature is not None else 0.0,
        top_p=req.top_p if req.top_p is not None else 1.0,
        stop=stop,
    )


def _check_model(req: ChatCompletionRequest, svc: Service) -> str:
    served = svc.backend.model_id
    if req.model and req.model != served:
        raise ApiError(
            404,
            f"model {req.model!r} is not served here; this server serves {served!r} (see GET /v1/models)",
            type_="invalid_request_error",
            code="model_not_found",
            param="model",
        )
    return served


def _usage(c: Completion) -> dict[str, int]:
    return {
        "prompt_tokens": c.prompt_tokens,
        "completion_tokens": c.completion_tokens,
        "total_tokens": c.prompt_tokens + c.completion_tokens,
    }


def _finish(c: Completion) -> str:
    return "length" if c.finish_reason == "length" else "stop"


@router.get("/v1/models")
async def list_models(request: Request) -> dict[str, Any]:
    svc: Service = request.app.state.service
    return {"object": "list", "data": [_model_card(svc)]}


@router.get("/v1/models/{model_id:path}")
async def get_model(model_id: str, request: Request) -> dict[str, Any]:
    svc: Service = request.app.state.service
    if model_id != svc.backend.model_id:
        raise ApiError(404, f"model {model_id!r} is not served here", code="model_not_found", param="model")
    return _model_card(svc)


def _model_card(svc: Service) -> dict[str, Any]:
    return {"id": svc.backend.model_id, "object": "model", "created": _CREATED, "owned_by": "memtune"}


@router.post("/v1/chat/completions", response_model=None)
async def chat_completions(req: ChatCompletionRequest, request: Request) -> JSONResponse | StreamingResponse:
    svc: Service = request.app.state.service
    model = _check_model(req, svc)
    params = gen_params(req, svc)
    messages = svc.with_default_system(to_messages(req, svc.config.max_messages))
    messages, _hits = await svc.retrieve(messages)
    cid = "chatcmpl-" + uuid.uuid4().hex[:24]
    created = int(time.time())
    if not req.stream:
        c = await svc.complete(messages, params)
        return JSONResponse(
            {
                "id": cid,
                "object": "chat.completion",
                "created": created,
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": c.text},
                        "finish_reason": _finish(c),
                        "logprobs": None,
                    }
                ],
                "usage": _usage(c),
            }
        )
    events = await svc.open_stream(messages, params)  # raises 429/400 before the response starts
    include_usage = bool(req.stream_options and req.stream_options.include_usage)
    return StreamingResponse(
        _sse(events, cid, created, model, include_usage),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


def _chunk(cid: str, created: int, model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": cid,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


def _data(obj: Any) -> bytes:
    return f"data: {json.dumps(obj, ensure_ascii=False)}\n\n".encode()


async def _sse(
    events: AsyncIterator[tuple[str, Any]], cid: str, created: int, model: str, include_usage: bool
) -> AsyncIterator[bytes]:
    yield _data(_chunk(cid, created, model, {"role": "assistant", "content": ""}, None))
    try:
        async for kind, value in events:
            if kind == "text":
                yield _data(_chunk(cid, created, model, {"content": value}, None))
            else:
                yield _data(_chunk(cid, created, model, {}, _finish(value)))
                if include_usage:
                    u = {"id": cid, "object": "chat.completion.chunk", "created": created, "model": model}
                    yield _data({**u, "choices": [], "usage": _usage(value)})
    except ApiError as exc:  # headers are already sent: report in-band, as OpenAI does
        yield _data(exc.body())
    finally:
        await events.aclose()  # type: ignore[attr-defined]
    yield b"data: [DONE]\n\n"
