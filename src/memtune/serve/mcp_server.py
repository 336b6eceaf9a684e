"""``memtune mcp``: the store, the exporter and the adapter as MCP tools for coding agents.

Seed 004's reference ``export_lora`` tool wrote wherever it was told and let anyone
list everything. Here an agent is treated as a possibly prompt-injected caller:

* every path it names is confined to the export root (:mod:`memtune.serve.paths`);
* tools that write (export_lora, generate_script with a path, add_guideline) need
  ``admin_key`` = ``$MEMTUNE_ADMIN_KEY`` when one is set;
* list_adapters shows paths only relative to the roots it was given, never the host's;
* text written into the store goes through the same secret redaction as ingestion.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field

from memtune.errors import MemtuneError
from memtune.generation import ANSWER_TOKENS
from memtune.serve.auth import ENV_ADMIN_KEY, tokens_match
from memtune.serve.mcp_errors import explain, make_guard, tool_error
from memtune.serve.paths import PathRefused, confine, display_path

@dataclass
class McpSettings:
    db: str | None = None
    export_root: Path = field(default_factory=lambda: Path(".memtune/exports").resolve())
    adapters_roots: list[Path] = field(default_factory=list)
    adapter: str | None = None
    base: str | None = None
    admin_key: str | None = None
    max_new_tokens_limit: int = 512
    rag: bool | None = None
    """ask's retrieval: None = from the adapter's own store (else --db) when one is known."""


def admin_key_from_env() -> str | None:
    return os.environ.get(ENV_ADMIN_KEY, "").strip() or None


class _Tools:
    """The tool bodies, separate from registration so they stay plain, testable functions."""

    def __init__(self, s: McpSettings) -> None:
        self.s = s
        self._store: Any = None
        self._backend: Any = None
        self._retriever: Any = None
        self._retriever_ready = False  # None is a valid retriever (closed-book), so a flag says "decided"
        self._load_lock = threading.Lock()
        self._gen_lock = threading.Lock()

    # -------------------------------------------------------------- plumbing
    def store(self) -> Any:
        if self._store is None:
            from memtune.store import GuidelineStore

            self._store = GuidelineStore(self.s.db)
        return self._store

    def require_admin(self, given: str | None, tool: str) -> None:
        if self.s.admin_key is None:
            return
        if not tokens_match(given, self.s.admin_key):
            why = "is missing" if not given else "does not match"
            raise tool_error(
                f"{tool} writes files or the store, so it needs admin_key; the admin_key {why}",
                f"pass admin_key equal to the server's ${ENV_ADMIN_KEY}",
            )

    def confine(self, path: str | None, what: str = "output_path") -> Path:
        try:
            return confine(path, self.s.export_root, what=what, allow_root=False)
        except PathRefused as exc:
            raise tool_error(exc.message, exc.hint) from None

    def rel(self, p: str | Path | None) -> str | None:
        return None if p is None else display_path(Path(p), self.s.export_root, "exports")

    def backend(self) -> Any:
        with self._load_lock:
            if self._backend is None:
                from memtune.serve.loader import load_backend

                assert self.s.adapter is not None
                self._backend = load_backend(self.s.adapter, base=self.s.base)
            return self._backend

    # ----------------------------------------------------------------- tools
    def export_lora(self, args: dict[str, Any], admin_key: str | None) -> dict[str, Any]:
        self.require_admin(admin_key, "export_lora")  # before anything else, even path checks
        out = self.confine(args.pop("output_path"))
        from memtune.dataset import ExportConfig, export_guidelines_as_lora

        flt = _filter(args)  # pops the filter fields out of args
        config = ExportConfig.from_sources(output_path=str(out), filter=flt, **_drop_none(args))
        result = export_guidelines_as_lora(self.store(), config)
        d = result.to_dict() if hasattr(result, "to_dict") else dict(vars(result))
        d["files"] = {k: self.rel(v) for k, v in (d.get("files") or {}).items() if v}
        d["output_path"] = self.rel(out)
        return _scrub(d, self.s.export_root)

    def generate_script(self, opts: dict[str, Any], output_path: str | None, admin_key: str | None) -> dict[str, Any]:
        """The bundle's standalone train.py; options become its command line (the script reads flags)."""
        target = None
        if output_path is not None:
            self.require_admin(admin_key, "generate_script")
            target = self.confine(output_path)
        import memtune.dataset.train_script as train_script
        from memtune.dataset.artifacts import requirements_txt

        text = train_script.render_script()
        command = _train_command(opts)
        if target is None:
            return {"written": [], "command": command, "script": text}
        if target.exists() and not target.is_dir():
            raise tool_error(
                f"output_path {self.rel(target)} exists and is not a folder",
                "name a bundle folder, or leave output_path out to get the script's text",
            )
        target.mkdir(parents=True, exist_ok=True)
        written = []
        for name, content in (("train.py", text), ("requirements.txt", requirements_txt())):
            dest = self.confine(str(target / name))  # re-checked: the folder may hold planted links
            _write_no_follow(dest, content)
            written.append(self.rel(dest))
        out: dict[str, Any] = {"written": written, "folder": self.rel(target), "command": command}
        if not (target / "train.jsonl").is_file():
            out["warnings"] = ["this folder has no train.jsonl yet: export a bundle into it first (export_lora)"]
        return out

    def add_guideline(self, fields: dict[str, Any], admin_key: str | None) -> dict[str, Any]:
        self.require_admin(admin_key, "add_guideline")
        from memtune.store import GuidelineInput, Source
        from memtune.store.redact import SecretHit, redact_value

        redacted: list[str] = []
        for key in ("name", "content", "rationale", "tags"):
            if fields.get(key):
                hits: list[SecretHit] = []
                fields[key] = redact_value(fields[key], key, hits)
                redacted += [f"{key}:{h.type}" for h in hits]
        inp = GuidelineInput(
            **{k: v for k, v in fields.items() if v is not None},
            source=Source(file="mcp:add_guideline", kind="mcp"),
            change_reason="added through the MCP add_guideline tool",
        )
        r = self.store().upsert(inp)
        return {"action": r.action, "id": r.guideline_id, "version": r.version, "redacted": redacted}

    def search(self, query: str, limit: int, filt: dict[str, Any]) -> dict[str, Any]:
        from memtune.store import build_filter

        f = build_filter(
            filt.get("scope_type"), filt.get("scope_id"), _as_list(filt.get("category")),
            filt.get("priority_min"), filt.get("priority_max"), _as_list(filt.get("tags")),
            filt.get("tags_mode") or "any", not filt.get("active_only", True),
        )
        hits = self.store().search(query, f, limit=limit)
        return {
            "query": query,
            "results": [
                {
                    "id": g.id, "name": g.name, "category": g.category, "priority": g.priority,
                    "tags": g.tags, "scope": g.scope_type + (f":{g.scope_id}" if g.scope_id else ""),
                    "score": round(s, 4), "content": g.content, "rationale": g.rationale,
                }
                for g, s in hits
            ],
        }

    def list_adapters(self) -> dict[str, Any]:
        from memtune.train.adapters import check_staleness, read_adapter

        out: list[dict[str, Any]] = []
        for i, root in enumerate(self.s.adapters_roots):
            label = root.name or f"root{i}"
            if not root.is_dir():
                continue
            for cand in [root, *sorted(c for c in root.iterdir() if c.is_dir())]:
                real = cand.resolve()
                if real != root and not real.is_relative_to(root):  # a symlink out of the root
                    continue
                try:
                    info = read_adapter(cand)
                except MemtuneError:
                    continue
                try:
                    info = check_staleness(info, self.store())
                except MemtuneError:
                    pass
                out.append(
                    {
                        "name": info.name,
                        "path": display_path(cand, root, label),
                        "method": info.method,
                        "base_model": _public_model_name(info.base_model),
                        "created_at": info.created_at,
                        "guidelines": len(info.guidelines),
                        "metrics": {k: info.metrics.get(k) for k in ("probe_recall", "eval_loss", "epochs_run")},
                        "stale": info.stale,
                        "stale_reasons": info.stale_reasons[:5],
                    }
                )
        served = None
        if self.s.adapter:
            served = {"name": Path(self.s.adapter).resolve().name, "ask_tool": True}
        return {"adapters": out, "served": served}

    def ask(self, question: str, context: str, max_tokens: int) -> dict[str, Any]:
        from memtune.serve.engine import GenParams, ask_messages

        if not question.strip():
            raise tool_error("question is empty", "pass the question to ask")
        if max_tokens > self.s.max_new_tokens_limit:
            limit = self.s.max_new_tokens_limit
            raise tool_error(f"max_tokens={max_tokens} is over the limit of {limit}", f"ask for {limit} or fewer")
        backend = self.backend()
        retriever = self.retriever()
        msgs = ask_messages(question, context, getattr(backend, "system", None))
        hits = retriever.search(msgs[-1]["content"]) if retriever is not None else []
        if hits:
            from memtune.serve.rag import with_guidelines

            msgs = with_guidelines(msgs, hits, getattr(backend, "system", None))
        with self._gen_lock:  # one generation at a time: the model is shared
            c = backend.generate(msgs, GenParams(max_new_tokens=max_tokens))
        return {"question": question, "response": c.text, "context": context,
                "mode": "retrieval" if retriever is not None else "closed-book",
                "notes": [h.brief() for h in hits]}

    def retriever(self) -> Any:
        """ask's notes: the adapter's own store (its lineage), else the server's --db; None: closed-book."""
        with self._load_lock:
            if not self._retriever_ready:
                from memtune.errors import ConfigError
                from memtune.infer import resolve_retrieval
                from memtune.recipes import default_recipe
                from memtune.serve.rag import Retriever
                from memtune.store import GuidelineStore

                assert self.s.adapter is not None
                try:
                    url, flt, _ = resolve_retrieval(self.s.adapter, rag=self.s.rag, db=self.s.db, db_first=False)
                except ConfigError:
                    raise tool_error("retrieval is on, but no store is known for the adapter",
                                     "start the server with --db, the store the adapter's guidelines came from") from None
                store = None if url is None else self.store() if url == self.s.db else GuidelineStore(url)
                self._retriever = None if store is None else Retriever(
                    store, default_recipe().eval["rag_k"], guideline_filter=flt)
                self._retriever_ready = True
            return self._retriever


def _train_command(opts: dict[str, Any]) -> str:
    import shlex

    parts = ["python", "train.py"]
    for key, value in opts.items():
        if value is not None:
            parts += [f"--{key.replace('_', '-')}", str(value)]
    return " ".join(shlex.quote(p) for p in parts)


def _drop_none(d: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in d.items() if v is not None}


def _as_list(v: Any) -> list[str] | None:
    if v is None or v == []:
        return None
    return [v] if isinstance(v, str) else list(v)


_FILTER_KEYS = ("scope_type", "scope_id", "category", "priority_min", "priority_max", "tags", "tags_mode", "active_only")


def _filter(args: dict[str, Any]) -> Any:
    """Pop seed 004's filter fields out of ``args`` into a GuidelineFilter."""
    from memtune.store import build_filter

    v = {k: args.pop(k, None) for k in _FILTER_KEYS}
    return build_filter(
        v["scope_type"], v["scope_id"], _as_list(v["category"]), v["priority_min"], v["priority_max"],
        _as_list(v["tags"]), v["tags_mode"] or "any", v["active_only"] is False,
    )


def _public_model_name(name: str) -> str:
    """A registry name or hub id as is; a local path reduced to its last component."""
    if not name or name == "?":
        return name
    if name.startswith(("/", "~", ".")) or "\\" in name or name.count("/") > 1:
        return "local:" + Path(name).name
    return name


def _scrub(obj: Any, root: Path) -> Any:
    """Replace absolute host paths that slipped into a result (warnings, errors) with relative ones."""
    if isinstance(obj, dict):
        return {k: _scrub(v, root) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_scrub(v, root) for v in obj]
    if isinstance(obj, str) and str(root) in obj:
        return obj.replace(str(root), "exports")
    return obj


def _write_no_follow(target: Path, text: str) -> None:
    """Write without following a symlink planted at the target after the path check."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(target, flags, 0o644)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text)


_EXPORT_ARGS = (
    "output_path", "format", "examples_per_guideline", "include_negative", "split_ratio", "split_by", "target_model",
    "generate_script", "include_metadata", "seed", "rag_fraction", "rag_copies", "fact_rag_copies", "fact_share",
    "min_topic_questions", "named_answers", "rag_gold_first", "lora_rank", "lora_alpha", "lora_dropout",
    *_FILTER_KEYS, "force",
)

# Annotated parameter types: their descriptions become the tools' JSON schema.
OutPath = Annotated[str, Field(description="Folder to write into, relative to the server's export root.")]
AdminKey = Annotated[
    str | None, Field(description="Required when the server has MEMTUNE_ADMIN_KEY set (tools that write).")
]
ScopeType = Annotated[str | None, Field(description="global, org, project or session.")]
Category = Annotated[str | list[str] | None, Field(description="One category or a list.")]
Tags = Annotated[list[str] | None, Field(description="Guideline tags to match.")]


def build_server(s: McpSettings) -> Any:
    """An MCPServer with memtune's tools registered (``ask`` only when an adapter is configured)."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError
    from mcp.types import CallToolResult, TextContent, ToolAnnotations

    from memtune import __version__

    t = _Tools(s)
    roots = [(s.export_root, "exports")]
    roots += [(r, r.name or f"root{i}") for i, r in enumerate(s.adapters_roots)]
    _guard = make_guard(roots)

    class MemtuneMCP(MCPServer):
        async def call_tool(self, name: str, arguments: dict[str, Any], context: Any = None) -> Any:
            """Failed calls come back as an error result whose text :func:`explain` wrote."""
            try:
                return await super().call_tool(name, arguments, context)
            except ToolError as exc:  # UnexpectedToolError (a crash) included; protocol errors pass
                text = explain(name, exc, roots)
                if text.startswith(f"{name}: Unknown tool"):
                    known = ", ".join(sorted(tool.name for tool in await self.list_tools()))
                    text = f"unknown tool {name!r} (hint: this server has {known})"
                return CallToolResult(content=[TextContent(type="text", text=text)], is_error=True)

    server = MemtuneMCP(
        "memtune",
        version=__version__,
        instructions=(
            "memtune turns a project's agent memory into guidelines, LoRA training data and adapters. "
            "Search guidelines before changing code; export_lora writes a training bundle under the export root."
        ),
        log_level="WARNING",
    )
    write = ToolAnnotations(read_only_hint=False, destructive_hint=False, open_world_hint=False)
    read = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    @server.tool(annotations=write)
    @_guard
    def export_lora(
        output_path: OutPath,
        format: Annotated[
            str | None,
            Field(description="messages (default), alpaca, sharegpt, openai, anthropic or prompt-completion "
                  "(seed 004's openai-messages / anthropic-prompts accepted)."),
        ] = None,
        examples_per_guideline: Annotated[int | None, Field(ge=1, le=50)] = None,
        include_negative: Annotated[bool | None, Field(description="~30% contrastive (anti-pattern) examples.")] = None,
        split_ratio: Annotated[float | None, Field(ge=0.0, le=0.5, description="Share held out for eval.")] = None,
        split_by: Annotated[str | None, Field(description="phrasing (default) or guideline.")] = None,
        target_model: Annotated[str | None, Field(description="llama, mistral, gpt2, ... or a model id.")] = None,
        generate_script: Annotated[bool | None, Field(description="Also write train.py + requirements.txt.")] = None,
        include_metadata: bool | None = None,
        seed: int | None = None,
        rag_fraction: Annotated[float | None, Field(ge=0.0, le=1.0, description="Share of examples with notes.")] = None,
        rag_copies: Annotated[float | None, Field(ge=0.0, le=1.0, description="Share of answers repeated "
                                                  "with the right note shown.")] = None,
        fact_rag_copies: Annotated[float | None, Field(ge=0.0, le=1.0, description="The same share for "
                                                       "value questions (default: rag_copies).")] = None,
        fact_share: Annotated[float | None, Field(ge=0.0, le=1.0, description="Share of questions that ask "
                                                  "for one value a note holds.")] = None,
        min_topic_questions: Annotated[int | None, Field(ge=0, le=50, description="With value questions: at "
                                                         "least this many questions per note name its topic.")] = None,
        named_answers: Annotated[bool | None, Field(description="Open every answer about a note with its "
                                                    "name instead of rotating openings.")] = None,
        rag_gold_first: Annotated[float | None, Field(ge=0.0, le=1.0, description="Share of examples with "
                                                      "notes in the prompt that list the right note first, "
                                                      "as retrieval ranks it.")] = None,
        lora_rank: Annotated[int | None, Field(ge=1, le=256)] = None,
        lora_alpha: Annotated[float | None, Field(gt=0)] = None,
        lora_dropout: Annotated[float | None, Field(ge=0.0, lt=1.0)] = None,
        scope_type: ScopeType = None,
        scope_id: str | None = None,
        category: Category = None,
        priority_min: Annotated[int | None, Field(ge=0, le=100)] = None,
        priority_max: Annotated[int | None, Field(ge=0, le=100)] = None,
        tags: Tags = None,
        tags_mode: Annotated[str | None, Field(description="any (default) or all.")] = None,
        active_only: bool = True,
        force: Annotated[bool, Field(description="Replace an existing bundle in output_path.")] = False,
        admin_key: AdminKey = None,
    ) -> dict[str, Any]:
        """Export guidelines from the store as a LoRA training bundle (train/eval/probes, adapter_config, train.py)."""
        given = dict(locals())
        return t.export_lora({k: given[k] for k in _EXPORT_ARGS}, admin_key)

    @server.tool(annotations=write)
    @_guard
    def generate_script(
        output_path: Annotated[
            str | None,
            Field(description="Bundle folder (relative to the export root) to write train.py + requirements.txt "
                  "into; omit to get the script's text instead."),
        ] = None,
        model: Annotated[str | None, Field(description="Base model: 'default', a local dir or a hub id.")] = None,
        epochs: Annotated[float | None, Field(gt=0, le=100)] = None,
        lr: Annotated[float | None, Field(gt=0, lt=1)] = None,
        max_steps: Annotated[int | None, Field(ge=1)] = None,
        batch_size: Annotated[int | None, Field(ge=1, le=1024)] = None,
        admin_key: AdminKey = None,
    ) -> dict[str, Any]:
        """The standalone peft + TRL train.py of a bundle, and the command that runs it with these options."""
        opts = {"model": model, "epochs": epochs, "lr": lr, "max_steps": max_steps, "batch_size": batch_size}
        return t.generate_script(opts, output_path, admin_key)

    @server.tool(annotations=write)
    @_guard
    def add_guideline(
        name: Annotated[str, Field(min_length=1, max_length=300)],
        content: Annotated[str, Field(min_length=1, max_length=20000)],
        category: str = "general",
        priority: Annotated[int, Field(ge=0, le=100)] = 50,
        scope_type: str = "project",
        scope_id: str | None = None,
        tags: list[str] | None = None,
        rationale: str | None = None,
        admin_key: AdminKey = None,
    ) -> dict[str, Any]:
        """Add a guideline (or a new version of one with the same name); secrets are redacted first."""
        fields = {
            "name": name, "content": content, "category": category, "priority": priority,
            "scope_type": scope_type, "scope_id": scope_id, "tags": tags or [], "rationale": rationale,
        }
        return t.add_guideline(fields, admin_key)

    @server.tool(annotations=read)
    @_guard
    def search_guidelines(
        query: Annotated[str, Field(min_length=1, max_length=2000)],
        limit: Annotated[int, Field(ge=1, le=50)] = 5,
        scope_type: ScopeType = None,
        scope_id: str | None = None,
        category: Category = None,
        priority_min: Annotated[int | None, Field(ge=0, le=100)] = None,
        tags: Tags = None,
    ) -> dict[str, Any]:
        """Full-text search over the project's guidelines, best match first."""
        filt = {"scope_type": scope_type, "scope_id": scope_id, "category": category,
                "priority_min": priority_min, "tags": tags}
        return t.search(query, limit, filt)

    @server.tool(annotations=read)
    @_guard
    def list_adapters() -> dict[str, Any]:
        """Trained adapters under the configured roots (paths relative to them) and whether each is stale."""
        return t.list_adapters()

    if s.adapter:

        @server.tool(annotations=read)
        @_guard
        def ask(
            question: Annotated[str, Field(min_length=1, max_length=8000)],
            context: Annotated[str, Field(max_length=16000)] = "",
            max_tokens: Annotated[int, Field(ge=1)] = ANSWER_TOKENS,
        ) -> dict[str, Any]:
            """Ask the project's fine-tuned assistant (seed 000's /ask: question + context → response)."""
            return t.ask(question, context, max_tokens)

    server._memtune_tools = t  # type: ignore[attr-defined]  (tests reach the bodies)
    return server


def preload(server: Any) -> None:
    """Load the ``ask`` adapter in the background so the first question does not wait for it.

    A failure is left for ``ask`` to report: it retries the load and raises the error then.
    """
    t: _Tools = server._memtune_tools

    def work() -> None:
        try:
            t.backend()
        except Exception:  # noqa: BLE001 - surfaced by the next ask call
            pass

    if t.s.adapter:
        threading.Thread(target=work, name="memtune-preload", daemon=True).start()
