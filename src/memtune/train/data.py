"""Bundle reading, chat-template tokenisation with answer-only labels, length-grouped batches.

Labels are built explicitly (never by masking pad ids): SmolLM2's pad token *is* its
end-of-turn token, and a pad-masking collator would teach the model never to stop.
Every token the model sees before an assistant turn is -100; the assistant's text and
its end-of-turn token are labelled; the template's trailing newline is not.
"""

from __future__ import annotations

import functools
import hashlib
import json
import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memtune.errors import InputError

IGNORE = -100
_ROLE_ALIASES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                 "model": "assistant", "bot": "assistant", "system": "system"}


# --------------------------------------------------------------------------- formats
def user_content(question: str, context: str | None = "") -> str:
    """How a question and its context become one user turn (alpaca instruction + input).

    memtune.dataset owns the training layout; its ``user_message`` wins when installed.
    """
    try:
        from memtune.dataset.prompts import user_message
    except ImportError:
        context = (context or "").strip()
        return f"{question.strip()}\n\nContext: {context}" if context else question.strip()
    return user_message(question, context)


def default_system_prompt(
    metadata: dict[str, Any] | None = None, conversations: Sequence[list[dict[str, str]]] = ()
) -> str | None:
    """The system prompt to ask questions under, as the training data taught it.

    The bundle's ``system_prompt`` if it names one; else the most common system turn of
    the training conversations (None when most have none, i.e. the template's default).
    """
    if metadata and metadata.get("system_prompt") is not None:
        return str(metadata["system_prompt"]) or None
    counts = Counter(c[0]["content"] if c and c[0]["role"] == "system" else None for c in conversations)
    return counts.most_common(1)[0][0] if counts else None


def _msgs(items: Iterable[dict[str, Any]], role_key: str, text_key: str) -> list[dict[str, str]]:
    out = []
    for m in items:
        role = _ROLE_ALIASES.get(str(m.get(role_key, "")).lower())
        if role is None:
            raise ValueError(f"unknown role {m.get(role_key)!r}")
        out.append({"role": role, "content": str(m.get(text_key, ""))})
    return out


def _anthropic(prompt: str, completion: str) -> list[dict[str, str]]:
    parts = re.split(r"\n\n(Human|Assistant):", "\n\n" + prompt.lstrip("\n"))
    msgs: list[dict[str, str]] = []
    head = parts[0].strip()
    if head:
        msgs.append({"role": "system", "content": head})
    for who, text in zip(parts[1::2], parts[2::2], strict=False):
        if text.strip():
            msgs.append({"role": "user" if who == "Human" else "assistant", "content": text.strip()})
    msgs.append({"role": "assistant", "content": completion.strip()})
    return msgs


def detect_format(record: dict[str, Any]) -> str:
    """messages | sharegpt | alpaca | anthropic | prompt_completion (ValueError if none)."""
    if "messages" in record:
        return "messages"
    if "conversations" in record:
        return "sharegpt"
    if "instruction" in record and ("output" in record or "response" in record):
        return "alpaca"
    if "prompt" in record and "completion" in record:
        p = record["prompt"]
        if isinstance(p, str) and "\n\nHuman:" in p:
            return "anthropic"
        return "prompt_completion"
    raise ValueError(f"unrecognised record keys {sorted(record)}")


@functools.cache
def _dataset_to_messages() -> Any:
    try:
        from memtune.dataset import to_messages
    except ImportError:
        return None
    return to_messages


def record_to_messages(record: dict[str, Any]) -> list[dict[str, str]]:
    """Any supported record → chat messages; memtune.dataset.to_messages (the format owner) when present."""
    external = _dataset_to_messages()
    if external is not None:
        return [{"role": m["role"], "content": m["content"]} for m in external(record)]
    return _to_messages(record)


def _to_messages(r: dict[str, Any]) -> list[dict[str, str]]:
    kind = detect_format(r)
    if kind == "messages":
        return _msgs(r["messages"], "role", "content")
    if kind == "sharegpt":
        return _msgs(r["conversations"], "from", "value")
    if kind == "alpaca":
        msgs = [{"role": "system", "content": r["system"]}] if r.get("system") else []
        msgs.append({"role": "user", "content": user_content(r["instruction"], r.get("input") or r.get("context"))})
        msgs.append({"role": "assistant", "content": str(r.get("output", r.get("response", "")))})
        return msgs
    if kind == "anthropic":
        return _anthropic(r["prompt"], str(r["completion"]))
    p, c = r["prompt"], r["completion"]
    msgs = _msgs(p, "role", "content") if isinstance(p, list) else [{"role": "user", "content": str(p)}]
    msgs += _msgs(c, "role", "content") if isinstance(c, list) else [{"role": "assistant", "content": str(c)}]
    return msgs


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    rows = []
    if not path.is_file():
        return rows
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rows.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{n}: not valid JSON ({exc.msg})") from exc
    return rows


def load_conversations(path: Path) -> list[list[dict[str, str]]]:
    out = []
    for n, rec in enumerate(read_jsonl(path), 1):
        try:
            msgs = record_to_messages(rec)
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(
                f"{path}:{n}: {exc}",
                hint="records must be messages, alpaca, sharegpt, anthropic or prompt/completion JSON",
            ) from exc
        if not any(m["role"] == "assistant" for m in msgs):
            raise InputError(f"{path}:{n}: the record has no assistant answer to learn")
        out.append(msgs)
    return out


@dataclass
class Bundle:
    """A training bundle directory as memtune.dataset writes it."""

    path: Path
    train: list[list[dict[str, str]]]
    eval: list[list[dict[str, str]]]
    probes: list[dict[str, Any]]
    adapter_config: dict[str, Any] = field(default_factory=dict)
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def fingerprint(self) -> str:
        """metadata's fingerprint, or a hash of the train/eval files when there is none."""
        fp = self.metadata.get("fingerprint")
        if fp:
            return str(fp)
        h = hashlib.sha256()
        for name in ("train.jsonl", "eval.jsonl"):
            f = self.path / name
            if f.is_file():
                h.update(f.read_bytes())
        return "sha256:" + h.hexdigest()

    @property
    def guidelines(self) -> list[dict[str, Any]]:
        return [
            {"id": g.get("id"), "version": g.get("version")}
            for g in self.metadata.get("guidelines", [])
            if isinstance(g, dict)
        ]


def load_bundle(path: str | Path) -> Bundle:
    p = Path(path)
    if not (p / "train.jsonl").is_file():
        raise InputError(
            f"{p} is not a training bundle (no train.jsonl)",
            hint="create one with `memtune export` or train with --from-store",
        )

    def _json(name: str) -> dict[str, Any]:
        f = p / name
        if not f.is_file():
            return {}
        try:
            return json.loads(f.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputError(f"{f}: not valid JSON ({exc.msg})") from exc

    train = load_conversations(p / "train.jsonl")
    if not train:
        raise InputError(f"{p / 'train.jsonl'} holds no examples")
    return Bundle(
        path=p,
        train=train,
        eval=load_conversations(p / "eval.jsonl"),
        probes=[r for r in read_jsonl(p / "probes.jsonl") if r.get("question")],
        adapter_config=_json("adapter_config.json"),
        metadata=_json("metadata.json"),
    )


# --------------------------------------------------------------------------- tokenising
def render(tokenizer: Any, messages: list[dict[str, str]], *, add_generation_prompt: bool = False) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_generation_prompt)


_PLACEHOLDER = re.compile("\ue000(\\d+)\ue001")


def _special_strings(tokenizer: Any) -> list[str]:
    """The text forms of the tokenizer's special tokens, longest first."""
    found = set(getattr(tokenizer, "all_special_tokens", None) or [])
    for tok in (getattr(tokenizer, "added_tokens_decoder", None) or {}).values():
        if getattr(tok, "special", False):
            found.add(str(tok.content))
    return sorted((t for t in found if t), key=len, reverse=True)


def defuse(tokenizer: Any, messages: list[dict[str, str]]) -> tuple[list[dict[str, str]], list[str]]:
    """Messages whose special-token strings (a note quoting ``<|im_end|>``) are swapped for
    private-use placeholders, and the strings they stand for.

    Left alone, the tokenizer reads such text as the real control token: a training answer
    that quotes it is cut there (the model learns to stop mid-sentence) and a prompt that
    quotes it ends the turn early. :func:`encode` turns the placeholders back into the
    string's *plain* tokens.
    """
    specials = [t for t in _special_strings(tokenizer) if any(t in (m.get("content") or "") for m in messages)]
    if not specials:
        return messages, []
    out = []
    for m in messages:
        content = m.get("content") or ""
        for i, t in enumerate(specials):
            content = content.replace(t, f"\ue000{i}\ue001")
        out.append({**m, "content": content})
    return out, specials


def encode(tokenizer: Any, text: str, specials: Sequence[str] = ()) -> list[int]:
    """Token ids of rendered text: template markers as control tokens, placeholders from
    :func:`defuse` as the plain tokens of the text they stand for."""
    if not text:
        return []
    if not specials:
        return tokenizer(text, add_special_tokens=False).input_ids
    ids: list[int] = []
    pos = 0
    for m in _PLACEHOLDER.finditer(text):
        if m.start() > pos:
            ids += tokenizer(text[pos : m.start()], add_special_tokens=False).input_ids
        ids += tokenizer(specials[int(m.group(1))], add_special_tokens=False, split_special_tokens=True).input_ids
        pos = m.end()
    if pos < len(text):
        ids += tokenizer(text[pos:], add_special_tokens=False).input_ids
    return ids


def encode_chat(tokenizer: Any, messages: list[dict[str, str]], *, add_generation_prompt: bool = True) -> list[int]:
    """A conversation's prompt ids, exactly as training tokenises it (see :func:`defuse`)."""
    safe, specials = defuse(tokenizer, list(messages))
    return encode(tokenizer, render(tokenizer, safe, add_generation_prompt=add_generation_prompt), specials)


def end_of_turn_ids(tokenizer: Any) -> list[int]:
    """Token ids that end an assistant turn in this tokenizer's chat template (+ eos)."""
    ids: list[int] = []
    probe = "MEMTUNE_PROBE"
    try:
        text = render(tokenizer, [{"role": "user", "content": "q"}, {"role": "assistant", "content": probe}])
        tail = text[text.rindex(probe) + len(probe):]
        tail_ids = tokenizer(tail, add_special_tokens=False).input_ids
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        first = next((t for t in tail_ids if t in special), None)
        if first is not None:
            ids.append(first)
    except Exception:  # a template that cannot render a plain exchange: fall back to eos
        pass
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(tokenizer.eos_token_id)
    return ids


@dataclass
class Example:
    input_ids: list[int]
    labels: list[int]

    def __len__(self) -> int:
        return len(self.input_ids)


def tokenize_conversation(tokenizer: Any, messages: list[dict[str, str]], eot: Sequence[int]) -> Example:
    """Tokenise piecewise so every assistant turn starts exactly where generation starts.

    For assistant turn i: the text before it is rendered with add_generation_prompt=True
    (what inference feeds the model), and the answer runs up to and including the first
    end-of-turn token.
    """
    ids: list[int] = []
    labels: list[int] = []
    done = 0  # characters of the full rendering already tokenised
    messages, specials = defuse(tokenizer, messages)
    full = render(tokenizer, messages)
    eot_texts = [t for t in tokenizer.convert_ids_to_tokens(list(eot)) if t]

    def enc(text: str) -> list[int]:
        return encode(tokenizer, text, specials)

    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        prompt = render(tokenizer, messages[:i], add_generation_prompt=True)
        upto = render(tokenizer, messages[: i + 1])
        if not full.startswith(upto) or not upto.startswith(prompt) or len(prompt) < done:
            raise ValueError("the chat template does not render conversations incrementally")
        answer = upto[len(prompt):]
        ends = [answer.find(t) + len(t) for t in eot_texts if t in answer]
        if ends:  # answer + end-of-turn; what follows (e.g. "\n") joins the next prompt chunk
            answer = answer[: min(ends)]
            a_ids = enc(answer)
        else:  # a template without an end-of-turn marker: teach eos explicitly
            a_ids = enc(answer) + [eot[0]]
        p_ids = enc(prompt[done:])
        done = len(prompt) + len(answer)
        ids += p_ids + a_ids
        labels += [IGNORE] * len(p_ids) + a_ids
    return Example(ids, labels)


@dataclass
class Tokenized:
    examples: list[Example]
    dropped: int
    truncated: int


def replay_examples(tokenizer: Any, count: int, text: str | None = None) -> list[Example]:
    """``count`` plain-text examples (loss on every token), cycling through the paragraphs of
    ``text`` (default: the replay sample shipped with memtune).

    Mixed into training they anchor the adapter to ordinary language so that learning the
    memory does not raise the model's loss on everything else (rehearsal against
    forgetting). The shipped sample is different text from the one `memtune eval` measures
    forgetting on, so the figure stays honest.
    """
    if count <= 0:
        return []
    if text is None:
        from importlib.resources import files

        text = files("memtune").joinpath("data/replay_text.txt").read_text(encoding="utf-8")
    paras = [p.strip() for p in text.split("\n\n") if p.strip()]
    if not paras:
        raise InputError("the replay text is empty", hint="pass a text with a few paragraphs, or set replay_fraction 0")
    pool = [tokenizer(p + "\n\n", add_special_tokens=False).input_ids for p in paras]
    return [Example(list(pool[i % len(pool)]), list(pool[i % len(pool)])) for i in range(count)]


def tokenize_all(tokenizer: Any, conversations: list[list[dict[str, str]]], max_length: int) -> Tokenized:
    """Tokenise; truncate to max_length from the right and drop examples left without labels."""
    eot = end_of_turn_ids(tokenizer)
    out, dropped, truncated = [], 0, 0
    for msgs in conversations:
        ex = tokenize_conversation(tokenizer, msgs, eot)
        if len(ex) > max_length:
            truncated += 1
            ex = Example(ex.input_ids[:max_length], ex.labels[:max_length])
        if sum(1 for t in ex.labels[1:] if t != IGNORE) == 0:
            dropped += 1
            continue
        out.append(ex)
    return Tokenized(out, dropped, truncated)


# --------------------------------------------------------------------------- batching
def length_grouped_batches(
    lengths: Sequence[int], batch_size: int, *, seed: int, epoch: int, shuffle: bool = True
) -> list[list[int]]:
    """Batches of similar-length examples in a random (seed, epoch)-determined order.

    Shuffle, cut into mega-chunks of 32 batches, sort each chunk by length and slice it:
    batches pad little yet the order still varies every epoch. Deterministic, so a resumed
    run replays exactly the same batches.
    """
    idx = list(range(len(lengths)))
    rng = random.Random(seed * 1_000_003 + epoch)
    if shuffle:
        rng.shuffle(idx)
    mega = batch_size * 32
    batches: list[list[int]] = []
    for s in range(0, len(idx), mega):
        chunk = sorted(idx[s : s + mega], key=lambda i: -lengths[i])
        batches += [chunk[k : k + batch_size] for k in range(0, len(chunk), batch_size)]
    if shuffle:
        rng.shuffle(batches)
    return batches


def shard(batches: list[list[int]], rank: int, world: int) -> list[list[int]]:
    """This rank's batches; every rank gets the same count (DDP steps in lockstep)."""
    if world <= 1:
        return batches
    n = -(-len(batches) // world) * world
    padded = batches + batches[: n - len(batches)]
    return padded[rank::world]


PAD_MULTIPLE = 32
"""Batch widths are rounded up to this: a few dozen recurring tensor shapes instead of one
per batch let the allocator and oneDNN's kernel cache reuse what they hold (measured on
SmolLM2 with 2 threads: ~8% faster and ~150 MB less peak RSS than exact widths)."""


def padded_width(n: int, multiple: int = PAD_MULTIPLE) -> int:
    return -(-n // multiple) * multiple if multiple > 1 else n


def split_by_tokens(batch: list[int], lengths: Sequence[int], budget: int) -> list[list[int]]:
    """Cut a batch into forward passes of at most ``budget`` padded tokens.

    The pieces share one optimizer step (the loss is normalised over the whole step), so
    this bounds peak memory on long examples without changing what is learned.
    """
    if budget <= 0:
        return [batch]
    order = sorted(batch, key=lambda i: -lengths[i])
    out: list[list[int]] = []
    cur: list[int] = []
    for i in order:
        if cur and (len(cur) + 1) * padded_width(lengths[cur[0]]) > budget:
            out.append(cur)
            cur = []
        cur.append(i)
    return out + [cur] if cur else out


def collate(examples: Sequence[Example], pad_id: int, multiple: int = PAD_MULTIPLE) -> dict[str, Any]:
    """Right-pad to the longest in the batch rounded up to ``multiple`` (not to max_length)."""
    import torch

    width = padded_width(max(len(e) for e in examples), multiple)
    ids = torch.full((len(examples), width), pad_id, dtype=torch.long)
    labels = torch.full((len(examples), width), IGNORE, dtype=torch.long)
    mask = torch.zeros((len(examples), width), dtype=torch.long)
    for r, e in enumerate(examples):
        n = len(e)
        ids[r, :n] = torch.tensor(e.input_ids)
        labels[r, :n] = torch.tensor(e.labels)
        mask[r, :n] = 1
    out = {"input_ids": ids, "attention_mask": mask, "labels": labels}
    return out


def iter_batches(examples: Sequence[Example], batches: Iterable[list[int]], pad_id: int) -> Iterator[dict[str, Any]]:
    for b in batches:
        yield collate([examples[i] for i in b], pad_id)


# --------------------------------------------------------------------------- probes
def _kw_norm(s: str) -> str:
    return re.sub(r"\s+", "", s.replace("`", "").lower())


def keyword_recall(text: str, keywords: Sequence[str]) -> float:
    """Fraction of expected keywords in ``text``: case-, whitespace- and backtick-insensitive."""
    kws = [k for k in keywords if k and _kw_norm(k)]
    if not kws:
        return 1.0
    t = _kw_norm(text)
    return sum(1 for k in kws if _kw_norm(k) in t) / len(kws)


def sample_probes(probes: list[dict[str, Any]], n: int, seed: int) -> list[dict[str, Any]]:
    """A fixed sample (same every epoch so epochs compare), spread over guidelines."""
    usable = [p for p in probes if p.get("expected_keywords")]
    if n <= 0 or not usable:
        return []
    if len(usable) <= n:
        return usable
    rng = random.Random(seed)
    by_g: dict[Any, list[dict[str, Any]]] = {}
    for p in usable:
        by_g.setdefault(p.get("guideline_id"), []).append(p)
    groups = list(by_g.values())
    rng.shuffle(groups)
    for g in groups:
        rng.shuffle(g)
    out: list[dict[str, Any]] = []
    while len(out) < n:  # round-robin over guidelines
        for g in groups:
            if g and len(out) < n:
                out.append(g.pop())
    return out
