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
from memtune.generation import GenParams, complete, encode_prompt, generate

Message = dict[str, str]


class Assistant:
    """A loaded model (+ adapter) that answers questions."""

    def __init__(self, model: Any, tokenizer: Any, *, source: str, info: dict[str, Any] | None = None,
                 system: str | None = None, bf16: bool | None = None) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.source = source
        self.info = info or {}
        self.system = system
        self.bf16 = bf16

    def chat(self, messages: list[Message], *, max_new_tokens: int = 200, temperature: float = 0.0, top_p: float = 1.0) -> str:
        return generate(self.model, self.tokenizer, [messages], max_new_tokens=max_new_tokens,
                        temperature=temperature, top_p=top_p, batch_size=1, bf16=self.bf16)[0]

    def ask(self, question: str, context: str = "", *, system: str | None = None, max_new_tokens: int = 200,
            temperature: float = 0.0, top_p: float = 1.0) -> str:
        conv = conversation(question, context, system if system is not None else self.system)
        return self.chat(conv, max_new_tokens=max_new_tokens, temperature=temperature, top_p=top_p)

    def generate_batch(self, questions: Sequence[str], contexts: Sequence[str] | None = None, *,
                       system: str | Sequence[str | None] | None = None, max_new_tokens: int = 200,
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
               max_new_tokens: int = 200, temperature: float = 0.0, top_p: float = 1.0) -> Iterator[str]:
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
                   system: str | None = None) -> Assistant:
    """An adapter dir (PEFT or a full fine-tune) → Assistant; ``None`` → the plain base model.

    LoRA weights are merged into the base for inference (``merge=False`` keeps them apart,
    e.g. to switch adapters later).
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
    return Assistant(model, tok, source=str(path), info=info, system=system, bf16=bf16)


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
    """Seed 000's one-call helper: answer with the default (or $MEMTUNE_ADAPTER) adapter."""
    key = str(default_adapter())
    if key not in _CACHED:
        try:
            _CACHED[key] = load_assistant(key)
        except OSError as exc:
            raise ModelError(f"cannot load adapter {key}: {exc}") from exc
    return _CACHED[key].ask(question, context)


__all__ = ["Assistant", "ask_memory_assistant", "default_adapter", "generate", "load_assistant"]
