"""The FastAPI application: seed 000's ``/ask``, the OpenAI-compatible routes and ``/health``.

``create_app`` takes an already-loaded backend so tests (and embedders) can serve any
object with a ``generate`` method; ``memtune serve`` loads the adapter and calls it.
Every error, from auth to validation to overload, is JSON in OpenAI's
``{"error": {...}}`` shape so clients need one error path.
"""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from memtune import __version__
from memtune.serve.auth import BearerAuthMiddleware
from memtune.serve.engine import ChatBackend, GenParams, ask_messages
from memtune.serve.limits import BodyLimitMiddleware
from memtune.serve.openai_compat import router as openai_router
from memtune.serve.rag import Retriever
from memtune.serve.service import ApiError, ServeConfig, Service


class AskRequest(BaseModel):
    """Seed 000's body, plus optional generation knobs."""

    model_config = ConfigDict(extra="ignore")
    question: str
    context: str = ""
    max_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)


def create_app(backend: ChatBackend, config: ServeConfig | None = None, retriever: Retriever | None = None) -> FastAPI:
    config = config or ServeConfig()
    service = Service(backend, config, retriever)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        service.pool.shutdown()

    app = FastAPI(
        title="memtune",
        version=__version__,
        description="A LoRA adapter trained on your agents' memory, served locally.",
        lifespan=lifespan,
    )
    app.state.service = service
    _install_error_handlers(app)
    app.include_router(openai_router)

    @app.get("/health")
    async def health() -> dict[str, Any]:
        """Liveness + load, open without a token so orchestrators can probe it."""
        pool = service.pool
        return {
            "status": "ok",
            "in_flight": pool.in_flight,
            "capacity": pool.capacity,
            "workers": pool.max_concurrency,
        }

    @app.post("/ask")
    async def ask(body: AskRequest) -> dict[str, Any]:
        """``{question, context}`` → ``{question, response, context}`` (+ ``guidelines`` with --rag)."""
        if not body.question.strip():
            raise ApiError(400, "question is empty", param="question", code="empty_question")
        asked = body.max_tokens
        if asked is not None and asked > config.max_tokens_limit:
            raise ApiError(
                400,
                f"max_tokens={asked} is over this server's limit of {config.max_tokens_limit}",
                param="max_tokens",
                code="max_tokens_too_large",
            )
        params = GenParams(
            max_new_tokens=asked or config.default_max_tokens,
            temperature=body.temperature or 0.0,
        )
        messages = ask_messages(body.question, body.context, service.system)
        messages, hits = await service.retrieve(messages)
        c = await service.complete(messages, params)
        out: dict[str, Any] = {"question": body.question, "response": c.text, "context": body.context}
        if retriever is not None:
            out["guidelines"] = [h.brief() for h in hits]
        return out

    # Outermost first on the way in: auth (before reading any body), then the size cap.
    app.add_middleware(BodyLimitMiddleware, max_bytes=config.max_body_bytes)
    app.add_middleware(BearerAuthMiddleware, token=config.token)
    return app


def _install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def _api_error(_r: Request, exc: ApiError) -> JSONResponse:
        return JSONResponse(exc.body(), status_code=exc.status, headers=exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_r: Request, exc: RequestValidationError) -> JSONResponse:
        problems = []
        param = None
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ()) if p != "body"]
            param = param or (loc[0] if loc else None)
            where = ".".join(loc) or "body"
            problems.append(f"{where}: {e.get('msg', 'invalid')}")
        msg = "invalid request: " + "; ".join(problems[:5])
        return JSONResponse(ApiError(400, msg, param=param).body(), status_code=400)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_r: Request, exc: StarletteHTTPException) -> JSONResponse:
        type_ = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        body = ApiError(exc.status_code, str(exc.detail), type_=type_).body()
        return JSONResponse(body, status_code=exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(Exception)
    async def _crash(_r: Request, exc: Exception) -> JSONResponse:
        body = ApiError(500, f"internal error: {type(exc).__name__}", type_="server_error").body()
        return JSONResponse(body, status_code=500)
