"""The chat format: how a question becomes a conversation and a conversation becomes token ids.

Training, evaluation, serving and the bundle's standalone ``train.py`` must agree on every
character here, so this is the one place it is written. ``memtune.dataset.train_script``
renders the bundle's ``train.py`` from this module's text (everything below the marker line),
so the module imports nothing but the standard library and nothing from memtune.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

# ---- rendered into the bundle's train.py from here (standard library only) ----

# Short and fixed: it is in every training example, so each token here costs a token of
# every example, and a prompt that varied would teach nothing the answer does not.
DEFAULT_SYSTEM_PROMPT = "You are this project's coding assistant. Answer from the project memory, with exact commands and names."
CONTEXT_MARKER = "\n\nContext: "  # between a question and its context in one user turn
CHATML_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
    "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"
)
_ROLES = {
    "system": "system",
    "user": "user",
    "human": "user",
    "assistant": "assistant",
    "gpt": "assistant",
    "model": "assistant",
    "bot": "assistant",
}


def user_message(question: str, context: str | None = None) -> str:
    """How a question and its optional context become one user turn (alpaca instruction + input)."""
    context = (context or "").strip()
    return f"{question.strip()}{CONTEXT_MARKER}{context}" if context else question.strip()


user_content = user_message


def conversation(question: str, context: str | None = "", system: str | None = None) -> list[dict[str, str]]:
    """The messages a question is asked as: the system prompt (if any), then one user turn."""
    msgs = [{"role": "system", "content": system}] if system else []
    return msgs + [{"role": "user", "content": user_message(question, context)}]


def _turns(items: list[dict[str, Any]], role_key: str, text_key: str) -> list[dict[str, str]]:
    out = []
    for item in items:
        role = _ROLES.get(str(item.get(role_key, "")).lower())
        if role is None:
            raise ValueError(f"unknown role {item.get(role_key)!r}")
        out.append({"role": role, "content": str(item.get(text_key) or "")})
    return out


def _anthropic(prompt: str, completion: str) -> list[dict[str, str]]:
    parts = re.split(r"\n\n(Human|Assistant):", "\n\n" + prompt.lstrip("\n"))
    msgs: list[dict[str, str]] = []
    head = parts[0].strip()
    if head:
        msgs.append({"role": "system", "content": head})
    for who, text in zip(parts[1::2], parts[2::2]):  # noqa: B905 - the split alternates by construction
        if text.strip():
            msgs.append({"role": "user" if who == "Human" else "assistant", "content": text.strip()})
    msgs.append({"role": "assistant", "content": completion[1:] if completion.startswith(" ") else completion})
    return msgs


def to_messages(record: dict[str, Any]) -> list[dict[str, str]]:
    """A record in any supported format → [{role, content}, ...] ending with the assistant answer."""
    if "messages" in record:
        m = record["messages"]
        return _turns(m, "role" if m and "role" in m[0] else "from", "content" if m and "content" in m[0] else "value")
    if "conversations" in record:
        c = record["conversations"]
        return _turns(c, "from" if c and "from" in c[0] else "role", "value" if c and "value" in c[0] else "content")
    if "instruction" in record:
        msgs = [{"role": "system", "content": record["system"]}] if record.get("system") else []
        msgs.append({"role": "user", "content": user_message(record["instruction"], record.get("input"))})
        msgs.append({"role": "assistant", "content": str(record.get("output", record.get("response", "")))})
        return msgs
    if "prompt" in record and "completion" in record:
        prompt, completion = record["prompt"], record["completion"]
        if isinstance(prompt, str) and isinstance(completion, str):
            if "\n\nHuman:" in "\n\n" + prompt.lstrip("\n"):
                return _anthropic(prompt, completion)
            return [{"role": "user", "content": prompt}, {"role": "assistant", "content": completion}]
        msgs = _turns(prompt, "role", "content") if isinstance(prompt, list) else [{"role": "user", "content": str(prompt)}]
        if isinstance(completion, list):
            return msgs + _turns(completion, "role", "content")
        return msgs + [{"role": "assistant", "content": str(completion)}]
    raise ValueError(f"unrecognised record with keys {sorted(record)}")


def render(tokenizer: Any, messages: list[dict[str, str]], *, add_generation_prompt: bool = False) -> str:
    """The conversation as text, through the tokenizer's own chat template."""
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
