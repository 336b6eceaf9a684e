"""One generation engine behind every interface (HTTP, chat REPL, MCP ``ask``).

The servers only need :class:`ChatBackend`: turn a list of chat messages into text,
optionally calling ``on_text`` with each new piece (streaming) and stopping early when
``cancel`` is set (client gone, request timed out). :class:`TransformersBackend`
implements it for a transformers model with or without a PEFT adapter, through
:mod:`memtune.generation`, the path evaluation measures; tests and other runtimes can
pass anything with the same two members.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any, Protocol

from memtune.chatformat import DEFAULT_SYSTEM_PROMPT
from memtune.chatformat import conversation as ask_messages
from memtune.errors import InputError
from memtune.generation import (
    Completion,
    GenParams,
    Message,
    OnText,
    complete,
    encode_prompt,
    pad_id,
    stop_ids,
    use_bf16,
)
from memtune.generation import TextStream as _TextStream
from memtune.generation import fallback_prompt as _fallback_prompt


def default_system_prompt() -> str | None:
    """The system prompt memtune's bundles train with; used when an adapter records none."""
    return DEFAULT_SYSTEM_PROMPT


class PromptTooLong(InputError):
    """The prompt does not fit the model's context, even after dropping old turns."""


class ChatBackend(Protocol):
    """What the servers need. An optional ``system`` attribute is the default system prompt."""

    model_id: str

    def generate(
        self,
        messages: Sequence[Message],
        params: GenParams,
        *,
        on_text: OnText | None = None,
        cancel: threading.Event | None = None,
    ) -> Completion: ...


class TransformersBackend:
    """A causal LM (plain, merged or wrapped in a PeftModel) with its tokenizer.

    Generation runs in whatever thread calls :meth:`generate`; the HTTP server bounds
    how many run at once through its worker pool (one by default).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        model_id: str = "memtune",
        context_length: int | None = None,
        info: dict[str, Any] | None = None,
        system: str | None = None,
        bf16: bool | None = None,
    ) -> None:
        self.model = model.eval()
        self.tok = tokenizer
        self.model_id = model_id
        self.info = info or {}
        self.system = system
        """The system prompt requests get when they bring none (the one the adapter was trained with)."""
        cfg_len = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        self.context_length = int(context_length or cfg_len or 2048)
        self.device = next(model.parameters()).device
        # Same rule as evaluation (memtune.generation): bf16 autocast where the hardware runs it
        # fast, so the server answers what `memtune eval` measured.
        self.bf16 = use_bf16(model, bf16)
        # A fast tokenizer may not be used from two threads at once ("Already borrowed"):
        # prompts are checked in request threads while a worker decodes its output.
        self._tok_lock = threading.Lock()
        self.eos_ids = stop_ids(model, tokenizer)
        self.pad_id = pad_id(tokenizer, self.eos_ids)

    # ------------------------------------------------------------------ prompt
    def _encode(self, messages: Sequence[Message]) -> list[int]:
        with self._tok_lock:
            return encode_prompt(self.tok, messages)

    def prompt_ids(self, messages: Sequence[Message], max_new_tokens: int, *, drop_old_turns: bool = True) -> list[int]:
        """Token ids of the prompt; drops the oldest turns (never system, never the last) to fit."""
        budget = self.context_length - max_new_tokens
        msgs = list(messages)
        while True:
            ids = self._encode(msgs)
            if len(ids) <= budget:
                return ids
            droppable = [i for i, m in enumerate(msgs[:-1]) if m["role"] != "system"] if drop_old_turns else []
            if not droppable:
                raise PromptTooLong(
                    f"the prompt is {len(ids)} tokens; with max_tokens={max_new_tokens} it must be at most "
                    f"{budget} for this model (context {self.context_length})",
                    hint="shorten the question/context or lower max_tokens",
                )
            del msgs[droppable[0]]

    # -------------------------------------------------------------- generation
    def generate(
        self,
        messages: Sequence[Message],
        params: GenParams,
        *,
        on_text: OnText | None = None,
        cancel: threading.Event | None = None,
    ) -> Completion:
        ids = self.prompt_ids(messages, params.max_new_tokens, drop_old_turns=params.drop_old_turns)
        return complete(self.model, self.tok, ids, params, stops=self.eos_ids, pad=self.pad_id, bf16=self.bf16,
                        on_text=on_text, cancel=cancel, lock=self._tok_lock)


__all__ = [
    "ChatBackend",
    "Completion",
    "GenParams",
    "Message",
    "OnText",
    "PromptTooLong",
    "TransformersBackend",
    "_TextStream",
    "_fallback_prompt",
    "ask_messages",
    "default_system_prompt",
    "encode_prompt",
]
