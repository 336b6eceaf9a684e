"""One generation engine behind every interface (HTTP, chat REPL, MCP ``ask``).

The servers only need :class:`ChatBackend`: turn a list of chat messages into text,
optionally calling ``on_text`` with each new piece (streaming) and stopping early when
``cancel`` is set (client gone, request timed out). :class:`TransformersBackend`
implements it for a transformers model with or without a PEFT adapter; tests and
other runtimes can pass anything with the same two members.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from memtune.errors import InputError



def default_system_prompt() -> str | None:
    """The system prompt memtune's bundles train with; used when an adapter records none."""
    from memtune.dataset.prompts import DEFAULT_SYSTEM_PROMPT

    return DEFAULT_SYSTEM_PROMPT
# End-of-turn markers of common chat templates; generation stops at whichever exist.
_END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")


class PromptTooLong(InputError):
    """The prompt does not fit the model's context, even after dropping old turns."""


@dataclass
class GenParams:
    max_new_tokens: int = 200
    temperature: float = 0.0
    """0 = greedy (deterministic, the default: answers about a project should not vary)."""
    top_p: float = 1.0
    stop: list[str] = field(default_factory=list)
    drop_old_turns: bool = True
    """Make room by dropping the oldest turns (chat REPL); False = refuse with PromptTooLong (HTTP API)."""


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # stop | length | cancelled
    seconds: float = 0.0


Message = dict[str, str]
OnText = Callable[[str], None]


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


def ask_messages(question: str, context: str = "", system: str | None = None) -> list[Message]:
    """Seed 000's ``ask_memory_assistant(question, context)`` as chat messages (the training layout)."""
    from memtune.train.data import user_content

    user = user_content(question, context)
    msgs: list[Message] = []
    if system:
        msgs.append({"role": "system", "content": system})
    msgs.append({"role": "user", "content": user})
    return msgs


def _fallback_prompt(messages: Sequence[Message]) -> str:
    """Seed 000's instruction layout, for tokenizers without a chat template."""
    system = "\n".join(m["content"] for m in messages if m["role"] == "system")
    turns = [m for m in messages if m["role"] != "system"]
    out = [system + "\n\n"] if system else []
    for m in turns:
        if m["role"] == "assistant":
            out.append(f"### Response:\n{m['content']}\n\n")
        else:
            out.append(f"### Instruction:\n{m['content']}\n\n")
    out.append("### Response:\n")
    return "".join(out)


def encode_prompt(tokenizer: Any, messages: Sequence[Message]) -> list[int]:
    """Exactly how training and evaluation render a conversation (memtune.train.data.render)."""
    if getattr(tokenizer, "chat_template", None):
        from memtune.train.data import encode_chat

        return encode_chat(tokenizer, [dict(m) for m in messages])
    return list(tokenizer(_fallback_prompt(messages), add_special_tokens=True)["input_ids"])


class _TextStream:
    """Incremental detokenisation with stop strings held back until they cannot match."""

    def __init__(self, tokenizer: Any, stop: list[str], on_text: OnText | None, lock: Any = None) -> None:
        self.tok = tokenizer
        self.lock = lock or threading.Lock()
        self.stop = [s for s in stop if s]
        self.on_text = on_text
        self.ids: list[int] = []
        self.emitted = 0
        self.text = ""
        self.stopped = False

    def add(self, token_id: int) -> None:
        if self.stopped:
            return
        self.ids.append(token_id)
        with self.lock:
            text = self.tok.decode(self.ids, skip_special_tokens=True)
        if text.endswith("\ufffd"):  # a multi-byte character is still incomplete
            return
        self.text = text
        for s in self.stop:
            i = text.find(s)
            if i != -1:
                self.text = text[:i]
                self.stopped = True
                break
        self._emit(final=self.stopped)

    def _emit(self, final: bool) -> None:
        safe = len(self.text)
        if not final:
            for s in self.stop:  # hold back a tail that could still become a stop string
                for k in range(min(len(s) - 1, len(self.text)), 0, -1):
                    if self.text.endswith(s[:k]):
                        safe = min(safe, len(self.text) - k)
                        break
        if safe > self.emitted:
            piece = self.text[self.emitted : safe]
            self.emitted = safe
            if self.on_text is not None:
                self.on_text(piece)

    def finish(self) -> str:
        if not self.stopped:
            with self.lock:
                self.text = self.tok.decode(self.ids, skip_special_tokens=True)
        self._emit(final=True)
        return self.text


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
        import torch

        from memtune.train.models import bf16_supported

        self.model = model.eval()
        self.tok = tokenizer
        self.model_id = model_id
        self.info = info or {}
        self.system = system
        """The system prompt requests get when they bring none (the one the adapter was trained with)."""
        cfg_len = getattr(getattr(model, "config", None), "max_position_embeddings", None)
        self.context_length = int(context_length or cfg_len or 2048)
        self.device = next(model.parameters()).device
        self._torch = torch
        # Same rule as evaluation (memtune.infer): bf16 autocast where the hardware runs it
        # fast, so the server answers what `memtune eval` measured.
        self.bf16 = bf16_supported(self.device.type) if bf16 is None else bf16
        # A fast tokenizer may not be used from two threads at once ("Already borrowed"):
        # prompts are checked in request threads while a worker decodes its output.
        self._tok_lock = threading.Lock()
        from memtune.train.data import end_of_turn_ids

        eos = set(end_of_turn_ids(tokenizer)) if getattr(tokenizer, "chat_template", None) else set()
        gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
        for e in gen_eos if isinstance(gen_eos, list) else [gen_eos, tokenizer.eos_token_id]:
            if e is not None:
                eos.add(int(e))
        vocab = tokenizer.get_vocab()
        for marker in _END_OF_TURN:
            if marker in vocab:
                eos.add(int(vocab[marker]))
        self.eos_ids = sorted(eos)
        self.pad_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (self.eos_ids or [0])[0]

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
        torch = self._torch
        from transformers import StoppingCriteria, StoppingCriteriaList
        from transformers.generation.streamers import BaseStreamer

        started = time.monotonic()
        ids = self.prompt_ids(messages, params.max_new_tokens, drop_old_turns=params.drop_old_turns)
        stream = _TextStream(self.tok, params.stop, on_text, self._tok_lock)
        n_prompt = len(ids)
        eos = set(self.eos_ids)

        class _Streamer(BaseStreamer):
            first = True

            def put(self, value: Any) -> None:
                if self.first:  # generate() first hands over the prompt itself
                    self.first = False
                    return
                for t in value.reshape(-1).tolist():
                    if int(t) not in eos:
                        stream.add(int(t))

            def end(self) -> None:
                pass

        class _Stop(StoppingCriteria):
            def __call__(self, input_ids: Any, scores: Any, **kw: Any) -> Any:
                done = stream.stopped or (cancel is not None and cancel.is_set())
                return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

        if cancel is not None and cancel.is_set():
            return Completion("", n_prompt, 0, "cancelled", 0.0)
        kwargs: dict[str, Any] = {
            "max_new_tokens": params.max_new_tokens,
            "eos_token_id": self.eos_ids or None,
            "pad_token_id": self.pad_id,
            "streamer": _Streamer(),
            "stopping_criteria": StoppingCriteriaList([_Stop()]),
        }
        if params.temperature and params.temperature > 0:
            kwargs.update(do_sample=True, temperature=float(params.temperature), top_p=float(params.top_p))
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        input_ids = torch.tensor([ids], device=self.device)
        autocast = torch.autocast(device_type=self.device.type, dtype=torch.bfloat16, enabled=bool(self.bf16))
        with torch.inference_mode(), autocast:
            out = self.model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids), **kwargs)
        new = out[0, n_prompt:].tolist()
        text = stream.finish()
        if cancel is not None and cancel.is_set() and not stream.stopped:
            reason = "cancelled"
        elif stream.stopped or (new and int(new[-1]) in eos):
            reason = "stop"
        elif len(new) >= params.max_new_tokens:
            reason = "length"
        else:
            reason = "stop"
        return Completion(text, n_prompt, len(new), reason, time.monotonic() - started)
