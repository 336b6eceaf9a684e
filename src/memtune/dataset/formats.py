"""Record formats: one Example → one JSONL record, and how each tool is told to read it.

Every format carries the same conversation (system prompt, user turn, answer), so a
bundle trains the same in memtune, TRL, LLaMA-Factory, Axolotl or OpenAI. ``to_messages``
reads any of them back (:mod:`memtune.chatformat`, rendered into the shipped ``train.py`` so bundles are standalone).
"""

from __future__ import annotations

from typing import Any

from memtune.dataset.examples import Example
from memtune.chatformat import to_messages

FORMATS = ("messages", "alpaca", "sharegpt", "openai", "anthropic", "prompt-completion")
ALIASES = {
    "openai-messages": "openai",
    "openai_messages": "openai",
    "anthropic-prompts": "anthropic",
    "anthropic_prompts": "anthropic",
    "trl": "messages",
    "chatml": "messages",
    "conversational": "messages",
    "prompt_completion": "prompt-completion",
    "promptcompletion": "prompt-completion",
}
# formats whose records must not carry extra keys: metadata goes to a line-aligned sidecar file
SIDECAR_FORMATS = frozenset({"openai"})


def normalize_format(name: str | None) -> str | None:
    """A user-given format name → the canonical one, or None if unknown."""
    if name is None:
        return None
    key = str(name).strip().lower()
    key = ALIASES.get(key, key)
    return key if key in FORMATS else None


def to_record(ex: Example, fmt: str, *, include_metadata: bool = True) -> dict[str, Any]:
    """The JSONL record for one example in ``fmt`` (metadata inline unless the format forbids it)."""
    if fmt in ("messages", "openai"):
        rec: dict[str, Any] = {"messages": ex.messages()}
    elif fmt == "alpaca":
        rec = {"instruction": ex.question, "input": ex.context or "", "output": ex.answer, "system": ex.system}
    elif fmt == "sharegpt":
        rec = {"conversations": [
            {"from": "system", "value": ex.system},
            {"from": "human", "value": ex.user},
            {"from": "gpt", "value": ex.answer},
        ]}
    elif fmt == "anthropic":
        rec = {"prompt": f"{ex.system}\n\nHuman: {ex.user}\n\nAssistant:", "completion": f" {ex.answer}"}
    elif fmt == "prompt-completion":
        msgs = ex.messages()
        rec = {"prompt": msgs[:-1], "completion": msgs[-1:]}
    else:  # pragma: no cover - config validation rejects unknown formats first
        raise ValueError(f"unknown format {fmt!r}")
    if include_metadata and fmt not in SIDECAR_FORMATS:
        rec["metadata"] = ex.metadata()
    return rec


def columns(fmt: str, *, include_metadata: bool) -> list[str]:
    """Top-level keys of every record in ``fmt`` (for the dataset card and tests)."""
    base = {
        "messages": ["messages"],
        "openai": ["messages"],
        "alpaca": ["instruction", "input", "output", "system"],
        "sharegpt": ["conversations"],
        "anthropic": ["prompt", "completion"],
        "prompt-completion": ["prompt", "completion"],
    }[fmt]
    return base + (["metadata"] if include_metadata and fmt not in SIDECAR_FORMATS else [])


_CHAT_TAGS_OPENAI = {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                     "assistant_tag": "assistant", "system_tag": "system"}
_CHAT_TAGS_SHAREGPT = {"role_tag": "from", "content_tag": "value", "user_tag": "human",
                       "assistant_tag": "gpt", "system_tag": "system"}


def llama_factory_entry(fmt: str, file_name: str) -> dict[str, Any] | None:
    """LLaMA-Factory's dataset_info.json entry for a file in ``fmt`` (None: it cannot read it)."""
    if fmt in ("messages", "openai"):
        return {"file_name": file_name, "formatting": "sharegpt", "columns": {"messages": "messages"},
                "tags": dict(_CHAT_TAGS_OPENAI)}
    if fmt == "sharegpt":
        return {"file_name": file_name, "formatting": "sharegpt", "columns": {"messages": "conversations"},
                "tags": dict(_CHAT_TAGS_SHAREGPT)}
    if fmt == "alpaca":
        return {"file_name": file_name, "formatting": "alpaca",
                "columns": {"prompt": "instruction", "query": "input", "response": "output", "system": "system"}}
    if fmt == "anthropic":
        return {"file_name": file_name, "formatting": "alpaca", "columns": {"prompt": "prompt", "response": "completion"}}
    return None  # TRL's conversational prompt-completion has no LLaMA-Factory equivalent


def hf_features(fmt: str, *, include_metadata: bool) -> list[dict[str, Any]]:
    """The `dataset_info.features` list of a Hugging Face dataset card for ``fmt``."""
    turn = [{"name": "role", "dtype": "string"}, {"name": "content", "dtype": "string"}]
    feats: list[dict[str, Any]]
    if fmt in ("messages", "openai"):
        feats = [{"name": "messages", "list": turn}]
    elif fmt == "sharegpt":
        feats = [{"name": "conversations", "list": [{"name": "from", "dtype": "string"},
                                                    {"name": "value", "dtype": "string"}]}]
    elif fmt == "alpaca":
        feats = [{"name": k, "dtype": "string"} for k in ("instruction", "input", "output", "system")]
    elif fmt == "anthropic":
        feats = [{"name": "prompt", "dtype": "string"}, {"name": "completion", "dtype": "string"}]
    else:
        feats = [{"name": "prompt", "list": turn}, {"name": "completion", "list": turn}]
    if include_metadata and fmt not in SIDECAR_FORMATS:
        feats.append({"name": "metadata", "struct": [
            {"name": "guideline_id", "dtype": "int64"},
            {"name": "guideline_version", "dtype": "int64"},
            {"name": "name", "dtype": "string"},
            {"name": "category", "dtype": "string"},
            {"name": "priority", "dtype": "int64"},
            {"name": "tags", "sequence": "string"},
            {"name": "is_negative", "dtype": "bool"},
            {"name": "family", "dtype": "string"},
            {"name": "answer_form", "dtype": "string"},
            {"name": "rag", "dtype": "string"},
            {"name": "kind", "dtype": "string"},
        ]})
    return feats


__all__ = [
    "ALIASES",
    "FORMATS",
    "SIDECAR_FORMATS",
    "columns",
    "hf_features",
    "llama_factory_entry",
    "normalize_format",
    "to_messages",
    "to_record",
]
