"""``memtune serve | chat | mcp | merge``: use what was learned.

Every command checks what it can (flags, bind address, adapter layout) before
loading a model, so mistakes fail in milliseconds rather than after a model load.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from memtune.cli.app import DbOption, JsonOption, app, console, err_console, handle_errors, open_store, print_json
from memtune.errors import ConfigError
from memtune.generation import ANSWER_TOKENS
from memtune.recipes import default_recipe
from memtune.serve.connections import DEFAULT_HEADER_TIMEOUT, DEFAULT_MAX_CONNECTIONS
from memtune.store import KNOWN_WORDS_MIN_SHARE, RELEVANCE_RATIO

AdapterArg = Annotated[
    Path, typer.Argument(help="Adapter dir from `memtune train` (or a merged model dir).", show_default=False)
]
BaseOpt = Annotated[
    str | None,
    typer.Option("--base", help="Base model to load the adapter onto (default: the one recorded at training)."),
]
SystemOpt = Annotated[
    str | None, typer.Option("--system", help="System prompt (default: the one the adapter was trained with; \"\" for none).")
]
_RAG_K = default_recipe().eval["rag_k"]
RagKOpt = Annotated[int, typer.Option("--rag-k", min=1, max=20, help="Guidelines retrieved per question.")]
RagOpt = Annotated[bool | None, typer.Option(
    "--rag/--no-rag", show_default=False,
    help="Put the store's best-matching guidelines in each prompt. Default: on when the store is known "
    "(--db, or the store the adapter's bundle came from), which answers best; --no-rag answers closed-book.")]
RagRatioOpt = Annotated[float | None, typer.Option(
    "--rag-min-ratio", min=0.0, max=1.0,
    help=f"Leave out guidelines scoring below this share of the best match (default {RELEVANCE_RATIO}; "
         "0 = always rag-k).")]
RagKnownOpt = Annotated[float | None, typer.Option(
    "--rag-min-known", min=0.0, max=1.0,
    help=f"Show no guidelines for a question less than this share of whose words occur anywhere in the "
         f"memory (default {KNOWN_WORDS_MIN_SHARE}; 0 = always show the best matches).")]
HeaderTimeoutOpt = Annotated[float, typer.Option(
    "--header-timeout",
    help="Seconds a client may take to send a whole request, headers and body (slow or idle ones are closed).")]
MaxConnectionsOpt = Annotated[int, typer.Option(
    "--max-connections",
    help="Open connections at most (kept under the open-file limit); at the cap the client waiting longest "
    "for its request is dropped, or a 503 is sent when all are busy.")]
ThreadsOpt = Annotated[
    int | None,
    typer.Option("--threads", min=1, help="torch CPU threads (default: torch's; 1-2 is faster on a busy machine)."),
]


def _set_threads(threads: int | None) -> None:
    if threads:
        import torch

        torch.set_num_threads(threads)


def _quiet_transformers() -> None:
    """Model-loading progress bars would garble the REPL and the MCP stdio stream.

    Environment variables when transformers is not imported yet (importing it only to
    silence it would add a second to every start-up), its API when it already is.
    """
    import os

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    if "transformers" in sys.modules:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()


def _retriever(adapter: Path, rag: bool | None, db: str | None, k: int, min_ratio: float | None = None,
               min_known: float | None = None):
    """The retriever answers use, and a line saying which mode that is.

    By default (``rag`` None) answers retrieve from ``--db`` or else the store the adapter's
    bundle came from (its lineage), scoped as the bundle was: the best answer memtune measured.
    """
    from memtune.infer import resolve_retrieval

    url, flt, why = resolve_retrieval(adapter, rag=rag, db=db)
    if url is None:
        return None, why
    from memtune.serve.rag import Retriever

    return Retriever(open_store(url), k, guideline_filter=flt, min_ratio=min_ratio, min_known=min_known), why


@app.command("serve")
def serve_cmd(
    adapter: AdapterArg,
    base: BaseOpt = None,
    host: Annotated[str, typer.Option(help="Address to listen on. Non-loopback needs MEMTUNE_API_TOKEN.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
    rag: RagOpt = None,
    db: DbOption = None,
    rag_k: RagKOpt = _RAG_K,
    rag_min_ratio: RagRatioOpt = None,
    rag_min_known: RagKnownOpt = None,
    max_concurrency: Annotated[int, typer.Option(help="Generations run at the same time.")] = 1,
    queue_size: Annotated[int, typer.Option(help="Requests that may wait; beyond this → 429.")] = 8,
    max_body_bytes: Annotated[int, typer.Option(help="Largest request body accepted (413 above).")] = 1_000_000,
    max_tokens_limit: Annotated[int, typer.Option(help="Largest max_tokens a request may ask for.")] = 1024,
    default_max_tokens: Annotated[int, typer.Option(help="max_tokens when a request gives none.")] = ANSWER_TOKENS,
    max_messages: Annotated[int, typer.Option(help="Most chat messages accepted in one request.")] = 64,
    timeout: Annotated[float, typer.Option(help="Seconds a request may take, queueing included (504 after).")] = 120.0,
    system: SystemOpt = None,
    model_id: Annotated[str | None, typer.Option(help="Model name in /v1/models (default: the adapter's).")] = None,
    threads: ThreadsOpt = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
    header_timeout: HeaderTimeoutOpt = DEFAULT_HEADER_TIMEOUT,
    max_connections: MaxConnectionsOpt = DEFAULT_MAX_CONNECTIONS,
) -> None:
    """Serve the adapter over HTTP: POST /ask, OpenAI-compatible /v1/chat/completions, /health.

    Set MEMTUNE_API_TOKEN to require 'Authorization: Bearer <token>' (required off loopback).

    Example: MEMTUNE_API_TOKEN=secret memtune serve .memtune/adapters/myrepo --rag
    """
    from memtune.serve.auth import check_bind, token_from_env
    from memtune.serve.connections import ConnectionLimits
    from memtune.serve.service import ServeConfig

    with handle_errors():
        cfg = ServeConfig(
            host=host, port=port, token=token_from_env(), max_concurrency=max_concurrency, queue_size=queue_size,
            max_body_bytes=max_body_bytes, max_tokens_limit=max_tokens_limit, default_max_tokens=default_max_tokens,
            max_messages=max_messages, request_timeout=timeout, system_prompt=system,
        )
        limits = ConnectionLimits(header_timeout=header_timeout, max_connections=max_connections)
        problems = cfg.problems() + limits.problems()
        if problems:
            raise ConfigError(problems)
        check_bind(host, cfg.token)
        from memtune.serve.loader import inspect, load_backend

        inspect(adapter, base)  # fail fast on a wrong path before the slow imports
        retriever, mode = _retriever(adapter, rag, db, rag_k, rag_min_ratio, rag_min_known)
        err_console.print(f"Answers: {escape(mode)}")
        _quiet_transformers()
        _set_threads(threads)
        err_console.print(f"Loading {adapter} …")
        backend = load_backend(adapter, base=base, model_id=model_id)
        from memtune.serve import connections
        from memtune.serve.app import create_app

        auth = "bearer token required" if cfg.token else "no auth (loopback only)"
        err_console.print(
            f"Serving [bold]{backend.model_id}[/] on http://{host}:{port} ({auth}; "
            f"{max_concurrency} worker(s), queue {queue_size}{'; rag k=' + str(rag_k) if retriever else ''})"
        )
        connections.serve_http(
            create_app(backend, cfg, retriever), host=host, port=port, log_level=log_level, limits=limits
        )


@app.command("chat")
def chat_cmd(
    adapter: AdapterArg,
    base: BaseOpt = None,
    db: DbOption = None,
    rag: RagOpt = None,
    rag_k: RagKOpt = _RAG_K,
    rag_min_ratio: RagRatioOpt = None,
    rag_min_known: RagKnownOpt = None,
    system: SystemOpt = None,
    max_tokens: Annotated[int, typer.Option(min=1, help="Longest answer, in tokens.")] = ANSWER_TOKENS,
    temperature: Annotated[float, typer.Option(min=0.0, max=2.0, help="0 = greedy (default).")] = 0.0,
    threads: ThreadsOpt = None,
) -> None:
    """Chat with the adapter in the terminal: streamed answers, /reset, /rag on|off, Ctrl-D to quit.

    Example: memtune chat .memtune/adapters/myrepo --db .memtune/memtune.db
    """
    from memtune.serve.chat import ChatSession, run_repl
    from memtune.serve.engine import GenParams
    from memtune.serve.loader import inspect, load_backend

    with handle_errors():
        inspect(adapter, base)
        # --no-rag still opens a known store, so /rag on can turn retrieval on later
        retriever, mode = _retriever(adapter, None if rag is False else rag, db, rag_k, rag_min_ratio,
                                     rag_min_known)
        if rag is False:
            mode = "closed-book (retrieval turned off; /rag on turns it on)" if retriever else mode
        err_console.print(f"Answers: {escape(mode)}")
        _quiet_transformers()
        _set_threads(threads)
        err_console.print(f"Loading {adapter} …")
        backend = load_backend(adapter, base=base)
        session = ChatSession(
            backend, retriever=retriever, rag=retriever is not None and rag is not False, system=system,
            params=GenParams(max_new_tokens=max_tokens, temperature=temperature),
        )
        run_repl(session, sys.stdin, sys.stdout)


@app.command("mcp")
def mcp_cmd(
    adapter: Annotated[
        Path | None, typer.Option("--adapter", help="Adapter for the `ask` tool (omit: no ask tool).")
    ] = None,
    base: BaseOpt = None,
    db: DbOption = None,
    export_root: Annotated[
        Path | None,
        typer.Option(help="Only folder tools may write into. Default: $MEMTUNE_EXPORT_ROOT, else ./.memtune/exports"),
    ] = None,
    adapters_root: Annotated[
        list[Path] | None,
        typer.Option("--adapters-root", help="Where list_adapters looks (repeatable). Default: .memtune/adapters"),
    ] = None,
    rag: RagOpt = None,
    http: Annotated[bool, typer.Option("--http", help="Serve streamable HTTP at /mcp instead of stdio.")] = False,
    host: Annotated[str, typer.Option(help="With --http: address (non-loopback needs MEMTUNE_API_TOKEN).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="With --http: TCP port.")] = 8765,
    header_timeout: HeaderTimeoutOpt = DEFAULT_HEADER_TIMEOUT,
    max_connections: MaxConnectionsOpt = DEFAULT_MAX_CONNECTIONS,
) -> None:
    """Run an MCP server for coding agents (stdio by default, --http for streamable HTTP).

    Tools: export_lora, list_adapters, generate_script, add_guideline, search_guidelines,
    and ask (with --adapter). Tools that write need admin_key when MEMTUNE_ADMIN_KEY is set; all output paths stay
    inside the export root.

    Example (Claude Desktop / Cursor): command "memtune", args ["mcp", "--db", "/abs/memtune.db"]
    """
    from memtune.serve.auth import check_bind, token_from_env
    from memtune.serve.loader import inspect
    from memtune.serve.mcp_server import McpSettings, admin_key_from_env, build_server, preload
    from memtune.serve.paths import export_root as resolve_export_root

    from memtune.serve.connections import ConnectionLimits

    with handle_errors():
        token = token_from_env()
        limits = ConnectionLimits(header_timeout=header_timeout, max_connections=max_connections)
        if http:
            if limits.problems():
                raise ConfigError(limits.problems())
            check_bind(host, token, what="memtune mcp --http")
        if adapter is not None:
            inspect(adapter, base)
        from memtune.train.adapters import default_root

        roots = [r.expanduser().resolve() for r in (adapters_root or [default_root()])]
        settings = McpSettings(
            db=db, export_root=resolve_export_root(export_root), adapters_roots=roots,
            adapter=str(adapter) if adapter else None, base=base, admin_key=admin_key_from_env(), rag=rag,
        )
        _quiet_transformers()
        server = build_server(settings)
        preload(server)
        if not http:
            server.run("stdio")
            return
        from memtune.serve import connections
        from memtune.serve.auth import BearerAuthMiddleware

        asgi = BearerAuthMiddleware(server.streamable_http_app(host=host), token, open_paths=())
        err_console.print(f"MCP (streamable HTTP) on http://{host}:{port}/mcp")
        connections.serve_http(asgi, host=host, port=port, log_level="warning", limits=limits)


@app.command("merge")
def merge_cmd(
    adapter: AdapterArg,
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for the merged model.", show_default=False)],
    base: BaseOpt = None,
    dtype: Annotated[str, typer.Option(help="Weights dtype: float32, bfloat16 or float16.")] = "float32",
    force: Annotated[bool, typer.Option("--force", help="Replace --out if it exists.")] = False,
    verify: Annotated[bool, typer.Option("--verify/--no-verify", help="Check logits + greedy tokens match.")] = True,
    json_out: JsonOption = False,
) -> None:
    """Merge the LoRA adapter into its base and save a standalone transformers model.

    The result loads with AutoModelForCausalLM.from_pretrained (no peft) and can be
    served with `memtune serve OUT`.

    Example: memtune merge .memtune/adapters/myrepo --out .memtune/merged/myrepo
    """
    from memtune.serve.merge import merge_adapter

    with handle_errors():
        _quiet_transformers()
        result = merge_adapter(adapter, out, base=base, force=force, verify=verify, dtype=dtype)
        if json_out:
            print_json(result.to_dict())
            return
        check = (
            f"verified: logits match within {result.max_abs_logit_diff:.2g}, same greedy tokens"
            if result.verified and result.max_abs_logit_diff is not None
            else "not verified (--no-verify)"
        )
        console.print(f"[green]Merged model written to {result.out_dir}[/] ({result.dtype}; {check})")
