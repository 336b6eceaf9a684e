"""The one generation path: conversation → prompt ids → ``model.generate`` → text.

Evaluation (``memtune eval``), the training probes, ``memtune serve`` (HTTP), ``memtune chat``
and MCP ``ask`` all answer through :func:`generate_ids`, with the prompt built by
:func:`conversation` / :func:`encode_prompt` and the stop tokens of :func:`stop_ids`, so an
answer served is the answer evaluation measured. :func:`generate` answers many conversations in
left-padded batches (evaluation, probes); :func:`complete` answers one, streaming text and
honouring stop strings and cancellation (the servers).

Below every stage: it imports only the chat format, the errors, the model loader and the recipe.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from memtune.chatformat import conversation, encode_chat, end_of_turn_ids
from memtune.models import bf16_supported
from memtune.recipes import answer_tokens

Message = dict[str, str]
OnText = Callable[[str], None]

ANSWER_TOKENS = answer_tokens()
"""The default longest answer in new tokens, the recipe's (every door and evaluation use it)."""

END_OF_TURN_MARKERS = ("<|im_end|>", "<|eot_id|>", "<|end|>", "<end_of_turn>", "<|endoftext|>")
"""End-of-turn markers of common chat templates; generation stops at whichever the vocabulary has."""


@dataclass
class GenParams:
    max_new_tokens: int = ANSWER_TOKENS
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


# --------------------------------------------------------------------------- prompts
def fallback_prompt(messages: Sequence[Message]) -> str:
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
    """Prompt ids exactly as training renders a conversation (``chatformat.encode_chat``);
    the instruction layout where the tokenizer has no chat template."""
    if getattr(tokenizer, "chat_template", None):
        return encode_chat(tokenizer, [dict(m) for m in messages])
    return list(tokenizer(fallback_prompt(messages), add_special_tokens=True)["input_ids"])


# --------------------------------------------------------------------------- stopping
def stop_ids(model: Any, tokenizer: Any) -> list[int]:
    """Token ids that end an answer: the template's end of turn, the model's and tokenizer's eos,
    and any common end-of-turn marker the vocabulary holds."""
    eos = set(end_of_turn_ids(tokenizer)) if getattr(tokenizer, "chat_template", None) else set()
    gen_eos = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    for e in gen_eos if isinstance(gen_eos, list) else [gen_eos, tokenizer.eos_token_id]:
        if e is not None:
            eos.add(int(e))
    vocab = tokenizer.get_vocab()
    for marker in END_OF_TURN_MARKERS:
        if marker in vocab:
            eos.add(int(vocab[marker]))
    return sorted(eos)


def pad_id(tokenizer: Any, stops: Sequence[int]) -> int:
    return tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (list(stops) or [0])[0]


def use_bf16(model: Any, bf16: bool | None) -> bool:
    """bf16 autocast where the hardware runs it fast, unless told (the same rule everywhere)."""
    return bool(bf16_supported(_device_of(model).type) if bf16 is None else bf16)


def _device_of(model: Any) -> Any:
    return next(model.parameters()).device


# --------------------------------------------------------------------------- the one call
def generate_ids(
    model: Any,
    prompts: Sequence[Sequence[int]],
    *,
    stops: Sequence[int],
    pad: int,
    max_new_tokens: int,
    temperature: float = 0.0,
    top_p: float = 1.0,
    bf16: bool = False,
    **extra: Any,
) -> list[list[int]]:
    """New token ids for a batch of prompts (left-padded to the longest), stop token included.

    Greedy unless ``temperature`` > 0. ``extra`` goes to ``model.generate`` (a streamer,
    stopping criteria).
    """
    import torch

    dev = _device_of(model)
    width = max(len(p) for p in prompts)
    ids = torch.full((len(prompts), width), pad, dtype=torch.long)
    mask = torch.zeros((len(prompts), width), dtype=torch.long)
    for r, p in enumerate(prompts):
        ids[r, width - len(p):] = torch.tensor(list(p), dtype=torch.long)
        mask[r, width - len(p):] = 1
    kwargs: dict[str, Any] = {"max_new_tokens": max_new_tokens, "eos_token_id": list(stops) or None,
                              "pad_token_id": pad, **extra}
    if temperature and temperature > 0:
        kwargs.update(do_sample=True, temperature=float(temperature), top_p=float(top_p))
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    autocast = torch.autocast(device_type=dev.type, dtype=torch.bfloat16, enabled=bool(bf16))
    with torch.no_grad(), autocast:
        out = model.generate(input_ids=ids.to(dev), attention_mask=mask.to(dev), **kwargs)
    return [row[width:].tolist() for row in out]


# --------------------------------------------------------------------------- many answers
def generate(
    model: Any,
    tokenizer: Any,
    conversations: Sequence[list[Message]],
    *,
    max_new_tokens: int = ANSWER_TOKENS,
    temperature: float = 0.0,
    top_p: float = 1.0,
    batch_size: int = 8,
    bf16: bool | None = None,
) -> list[str]:
    """Answers for many conversations, in input order; batched with similar lengths together."""
    stops = stop_ids(model, tokenizer)
    stop_set = set(stops)
    pad = pad_id(tokenizer, stops)
    on = use_bf16(model, bf16)
    prompts = [encode_prompt(tokenizer, c) for c in conversations]
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[str] = [""] * len(prompts)
    for s in range(0, len(order), batch_size):
        idx = order[s : s + batch_size]
        news = generate_ids(model, [prompts[i] for i in idx], stops=stops, pad=pad, max_new_tokens=max_new_tokens,
                            temperature=temperature, top_p=top_p, bf16=on)
        for i, new in zip(idx, news, strict=True):
            cut = next((k for k, t in enumerate(new) if t in stop_set), len(new))
            out[i] = tokenizer.decode(new[:cut], skip_special_tokens=True).strip()
    return out


def ask(model: Any, tokenizer: Any, question: str, context: str = "", *, system: str | None = None,
        **kwargs: Any) -> str:
    """One question, asked as training asked it."""
    return generate(model, tokenizer, [conversation(question, context, system)], batch_size=1, **kwargs)[0]


# --------------------------------------------------------------------------- one streamed answer
class TextStream:
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


def complete(
    model: Any,
    tokenizer: Any,
    prompt: Sequence[int],
    params: GenParams,
    *,
    stops: Sequence[int] | None = None,
    pad: int | None = None,
    bf16: bool | None = None,
    on_text: OnText | None = None,
    cancel: threading.Event | None = None,
    lock: Any = None,
) -> Completion:
    """One answer to ``prompt`` (ids), text handed to ``on_text`` as it is generated; stops at a
    stop token, a stop string of ``params`` or when ``cancel`` is set. ``lock`` guards the
    tokenizer when other threads use it too."""
    from transformers import StoppingCriteria, StoppingCriteriaList
    from transformers.generation.streamers import BaseStreamer

    started = time.monotonic()
    stops = list(stops) if stops is not None else stop_ids(model, tokenizer)
    pad = pad if pad is not None else pad_id(tokenizer, stops)
    stream = TextStream(tokenizer, params.stop, on_text, lock)
    n_prompt = len(prompt)
    eos = set(stops)

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
            import torch

            done = stream.stopped or (cancel is not None and cancel.is_set())
            return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

    if cancel is not None and cancel.is_set():
        return Completion("", n_prompt, 0, "cancelled", 0.0)
    new = generate_ids(model, [prompt], stops=stops, pad=pad, max_new_tokens=params.max_new_tokens,
                       temperature=params.temperature, top_p=params.top_p, bf16=use_bf16(model, bf16),
                       streamer=_Streamer(), stopping_criteria=StoppingCriteriaList([_Stop()]))[0]
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


__all__ = [
    "END_OF_TURN_MARKERS",
    "Completion",
    "GenParams",
    "TextStream",
    "complete",
    "conversation",
    "encode_prompt",
    "generate",
    "generate_ids",
    "pad_id",
    "stop_ids",
    "use_bf16",
]
