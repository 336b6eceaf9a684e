"""Ask a trained adapter (or a plain base model) questions: seed 000's ``ask_memory_assistant``.

Greedy by default (answers that evaluation can reproduce), stops at the chat template's
end-of-turn token, and batches with left padding for evaluation: all of it is
:mod:`memtune.generation`, the path evaluation and serving answer through too.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from memtune.chatformat import conversation
from memtune.errors import ModelError, NotFoundError
from memtune.generation import ANSWER_TOKENS, GenParams, complete, encode_prompt, generate

Message = dict[str, str]


class Assistant:
    """A loaded model (+ adapter) that answers questions."""

    def __init__(self, model: Any, tokenizer: Any, *, source: str, info: dict[str, Any] | None = None,
                 system: str | None = None, bf16: bool | None = None, retrieval: Retrieval | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.source = source
        self.info = info or {}
        self.system = system
        self.bf16 = bf16
        self.retrieval = retrieval
        """When set, :meth:`ask` puts the store's best-matching notes under the system prompt."""

    @property
    def mode(self) -> str:
        """``retrieval`` (notes from the store in every prompt) or ``closed-book``."""
        return "retrieval" if self.retrieval is not None else "closed-book"

    def chat(self, messages: list[Message], *, max_new_tokens: int = ANSWER_TOKENS, temperature: float = 0.0, top_p: float = 1.0) -> str:
        return generate(self.model, self.tokenizer, [messages], max_new_tokens=max_new_tokens,
                        temperature=temperature, top_p=top_p, batch_size=1, bf16=self.bf16)[0]

    def ask(self, question: str, context: str = "", *, system: str | None = None, max_new_tokens: int = ANSWER_TOKENS,
            temperature: float = 0.0, top_p: float = 1.0) -> str:
        if system is None:
            system = self.system
            if self.retrieval is not None:
                system = self.retrieval.system_prompt(question, context, system)
        conv = conversation(question, context, system)
        return self.chat(conv, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)

    def generate_batch(self, questions: Sequence[str], contexts: Sequence[str] | None = None, *,
                       system: str | Sequence[str | None] | None = None, max_new_tokens: int = ANSWER_TOKENS,
                       temperature: float = 0.0, batch_size: int = 8) -> list[str]:
        """Many questions at once; ``system`` may be one prompt or one per question (retrieval)."""
        contexts = list(contexts) if contexts is not None else [""] * len(questions)
        systems = list(system) if isinstance(system, (list, tuple)) else [system if system is not None else self.system] * len(questions)
        if not len(contexts) == len(systems) == len(questions):
            raise ValueError("questions, contexts and system prompts must have the same length")
        convs = [conversation(q, c, s) for q, c, s in zip(questions, contexts, systems, strict=True)]
        return generate(self.model, self.tokenizer, convs, max_new_tokens=max_new_tokens,
                        temperature=temperature, batch_size=batch_size, bf16=self.bf16)

    def stream(self, question: str, context: str = "", *, system: str | None = None, messages: list[Message] | None = None,
               max_new_tokens: int = ANSWER_TOKENS, temperature: float = 0.0, top_p: float = 1.0) -> Iterator[str]:
        """Yield text chunks as they are generated (for a chat REPL)."""
        conv = messages or conversation(question, context, system if system is not None else self.system)
        ids = encode_prompt(self.tokenizer, conv)
        params = GenParams(max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)
        chunks: queue.Queue[str | None] = queue.Queue()
        errors: list[BaseException] = []

        def work() -> None:
            try:
                complete(self.model, self.tokenizer, ids, params, bf16=self.bf16, on_text=chunks.put)
            except BaseException as exc:  # surface it in the caller's thread
                errors.append(exc)
            finally:
                chunks.put(None)

        t = threading.Thread(target=work, daemon=True)
        t.start()
        while (chunk := chunks.get()) is not None:
            if chunk:
                yield chunk
        t.join()
        if errors:
            raise errors[0]


def _read_json(p: Path) -> dict[str, Any]:
    try:
        return json.loads(p.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def load_assistant(adapter_dir: str | os.PathLike[str] | None = None, *, base_model: str | None = None,
                   merge: bool = True, device: str | None = None, bf16: bool | None = None,
                   system: str | None = None, rag: bool | None = False, db: str | None = None) -> Assistant:
    """An adapter dir (PEFT or a full fine-tune) → Assistant; ``None`` → the plain base model.

    LoRA weights are merged into the base for inference (``merge=False`` keeps them apart,
    e.g. to switch adapters later). ``rag``: False answers closed-book (the default here, as
    evaluation needs); None retrieves from ``db`` or the adapter's own store when one is known;
    True requires a store (see :func:`resolve_retrieval`).
    """
    from memtune.models import load_base_model, load_tokenizer, model_hash, pick_device, resolve_base_model

    device = pick_device(device)
    if adapter_dir is None:
        model, tok = load_base_model(base_model, device=device)
        model.eval()
        return Assistant(model, tok, source=f"base:{base_model or 'default'}", system=system, bf16=bf16)
    path = Path(adapter_dir)
    info = _read_json(path / "memtune.json")
    if (path / "adapter_config.json").is_file():
        from peft import PeftModel

        base_name = base_model or (info.get("base_model") or {}).get("name") \
            or _read_json(path / "adapter_config.json").get("base_model_name_or_path")
        want = (info.get("base_model") or {}).get("hash")
        if want and base_model is None:
            have = model_hash(resolve_base_model(base_name).path)
            if have != want:
                warnings.warn(f"base model {base_name!r} differs from the one {path} was trained on", stacklevel=2)
        model, tok = load_base_model(base_name, device=device)
        model = PeftModel.from_pretrained(model, str(path))
        if merge:
            model = model.merge_and_unload()
        if (path / "tokenizer_config.json").is_file():
            tok = load_tokenizer(str(path))
    elif (path / "config.json").is_file():
        model, tok = load_base_model(str(path), device=device)
    else:
        raise NotFoundError(f"{path} is not an adapter directory (no adapter_config.json or config.json)",
                            hint="`memtune adapters list` shows trained adapters")
    model.eval()
    if system is None:
        system = info.get("system_prompt")
    retrieval = None
    if rag is not False:
        url, flt, _why = resolve_retrieval(path, rag=rag, db=db)
        if url is not None:
            retrieval = Retrieval.open(url, flt)
    return Assistant(model, tok, source=str(path), info=info, system=system, bf16=bf16, retrieval=retrieval)


class Retrieval:
    """The store's best-matching notes for a question, under the system prompt, as training showed them."""

    def __init__(self, store: Any, guideline_filter: Any = None, k: int | None = None,
                 min_ratio: float | None = None, min_known: float | None = None) -> None:
        from memtune.recipes import default_recipe
        from memtune.store import KNOWN_WORDS_MIN_SHARE, RELEVANCE_RATIO

        self.store = store
        self.filter = guideline_filter
        self.k = default_recipe().eval["rag_k"] if k is None else k
        self.min_ratio = RELEVANCE_RATIO if min_ratio is None else min_ratio
        self.min_known = KNOWN_WORDS_MIN_SHARE if min_known is None else min_known

    @classmethod
    def open(cls, url: str, guideline_filter: Any = None, **kw: Any) -> Retrieval:
        from memtune.store import GuidelineStore

        return cls(GuidelineStore(url), guideline_filter, **kw)

    def hits(self, question: str, context: str = "") -> list[tuple[Any, float]]:
        """``(guideline, score)`` for the best notes, best first: the question searched first, its
        context only when the question matches nothing; notes below ``min_ratio`` x the best dropped,
        and none at all when less than ``min_known`` of the question's words occur in the memory.
        The one place serve, chat, MCP, evaluation and the Python API retrieve through."""
        if self.k <= 0 or not (question.strip() or context.strip()):
            return []
        return [(g, float(s)) for g, s in self.store.search_question(question, context, self.filter, limit=self.k,
                                                                      min_ratio=self.min_ratio,
                                                                      min_known=self.min_known)]

    def search(self, user_turn: str) -> list[tuple[Any, float]]:
        """:meth:`hits` for a whole user turn in memtune's layout (a trailing "Context: ..." line is
        the context)."""
        from memtune.chatformat import CONTEXT_MARKER

        question, sep, context = user_turn.rpartition(CONTEXT_MARKER)
        return self.hits(question, context) if sep else self.hits(user_turn)

    def system_prompt(self, question: str, context: str, base: str | None) -> str:
        from memtune.dataset.prompts import DEFAULT_SYSTEM_PROMPT, system_with_notes

        return system_with_notes([g for g, _ in self.hits(question, context)], base=base or DEFAULT_SYSTEM_PROMPT)


def adapter_store(adapter_dir: str | os.PathLike[str]) -> tuple[str | None, dict[str, Any] | None]:
    """The store URL and filter the adapter's bundle was exported with (its memtune.json), if that
    store can be opened here: a SQLite file that exists, or a URL whose password was not hidden."""
    ds = _read_json(Path(adapter_dir) / "memtune.json").get("dataset") or {}
    url, flt = ds.get("store"), ds.get("filter")
    if not url or "***" in url:
        return None, None
    if url.startswith("sqlite"):
        path = url.removeprefix("sqlite:///")
        if url == "sqlite://" or path in ("", ":memory:") or not Path(path).is_file():
            return None, None
    return url, flt if isinstance(flt, dict) else None


def resolve_retrieval(adapter_dir: str | os.PathLike[str], *, rag: bool | None,
                      db: str | None = None, db_first: bool = True) -> tuple[str | None, Any, str]:
    """Which store answers retrieve from: ``(url or None, GuidelineFilter or None, why)``.

    ``rag`` False: none. Otherwise ``db`` when given, else the adapter's own store (lineage),
    scoped as its bundle was; with ``db_first`` False the adapter's own store comes first and
    ``db`` is the fallback (the MCP server, whose ``--db`` is its tools' store, possibly of many
    projects). ``rag`` True with no store known is an error; None then answers closed-book and
    ``why`` says how to turn retrieval on.
    """
    from memtune.errors import ConfigError

    if rag is False:
        return None, None, "closed-book (retrieval turned off)"
    url, flt = (None, None) if db and db_first else adapter_store(adapter_dir)
    if db and url is None:
        return db, None, f"retrieval from {_shown(db)}"
    if url is not None:
        return url, lineage_filter(flt), f"retrieval from the adapter's store {_shown(url)}"
    if rag:
        raise ConfigError("retrieval asked for, but this adapter names no store that can be opened here",
                          hint="pass --db with the store its guidelines came from")
    return None, None, "closed-book (the adapter names no store here; pass --db to retrieve)"


def lineage_filter(d: dict[str, Any] | None) -> Any:
    """The bundle's GuidelineFilter from its to_dict() form (unknown keys ignored)."""
    if not d:
        return None
    from dataclasses import fields

    from memtune.store import GuidelineFilter

    names = {f.name for f in fields(GuidelineFilter)}
    return GuidelineFilter(**{k: v for k, v in d.items() if k in names})


def _shown(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url if "://" in url else "sqlite:///" + url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - only for display
        return url


_CACHED: dict[str, Assistant] = {}


def default_adapter() -> Path:
    """$MEMTUNE_ADAPTER, else the newest adapter under the default adapters root."""
    env = os.environ.get("MEMTUNE_ADAPTER")
    if env:
        return Path(env)
    from memtune.train.adapters import latest_adapter

    found = latest_adapter()
    if found is None:
        raise NotFoundError("no trained adapter found", hint="train one with `memtune train BUNDLE_DIR`, or set MEMTUNE_ADAPTER")
    return found


def ask_memory_assistant(question: str, context: str = "") -> str:
    """Seed 000's one-call helper: answer with the default (or $MEMTUNE_ADAPTER) adapter, with
    retrieval from the adapter's own store when its lineage names one that exists here."""
    key = str(default_adapter())
    if key not in _CACHED:
        try:
            _CACHED[key] = load_assistant(key, rag=None)
        except OSError as exc:
            raise ModelError(f"cannot load adapter {key}: {exc}") from exc
    return _CACHED[key].ask(question, context)


__all__ = ["Assistant", "Retrieval", "adapter_store", "ask_memory_assistant", "default_adapter", "generate",
           "lineage_filter", "load_assistant", "resolve_retrieval"]
