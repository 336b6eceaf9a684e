"""The Ollama ``Modelfile`` and the README that sit beside exported GGUF files.

Ollama does not run the Jinja chat template stored in the GGUF; it needs the same layout as a
Go template. memtune's models speak ChatML (``<|im_start|>role\\n...<|im_end|>\\n``), so the
tokenizer's own template is rendered on sample conversations and compared with ChatML before a
TEMPLATE is written; a template that is not ChatML gets no TEMPLATE line (Ollama then picks one
from the GGUF's ``tokenizer.chat_template``) and the README says so.

A template such as SmolLM2's adds its own default system turn when a conversation has none.
Training saw that turn whenever the adapter was trained without a system prompt, so SYSTEM is
the lineage's system prompt, or else the template's default: Ollama puts SYSTEM first in every
conversation that brings no system message of its own, as the Jinja template did.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from memtune.errors import ModelError

GO_CHATML = (
    "{{- range .Messages }}<|im_start|>{{ .Role }}\n"
    "{{ .Content }}<|im_end|>\n"
    "{{ end }}<|im_start|>assistant\n"
)
"""ChatML in Ollama's Go template syntax; :func:`chatml` is the same layout in Python."""

_SAMPLES = (
    [{"role": "system", "content": "S1"}, {"role": "user", "content": "Q1"}],
    [{"role": "system", "content": "S1"}, {"role": "user", "content": "Q1"}, {"role": "assistant", "content": "A1"},
     {"role": "user", "content": "Q2"}],
)
_DEFAULT_SYSTEM = re.compile(r"^<\|im_start\|>system\n(.*?)<\|im_end\|>\n", re.S)


def chatml(messages: list[dict[str, str]]) -> str:
    """What :data:`GO_CHATML` renders for ``messages`` (with the assistant turn opened)."""
    return "".join(f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages) + "<|im_start|>assistant\n"


@dataclass
class ChatLayout:
    chatml: bool
    """The tokenizer's template renders exactly as :data:`GO_CHATML` does."""
    default_system: str | None
    """The system turn the template adds when a conversation has none."""


def chat_layout(tok: Any) -> ChatLayout:
    """Whether ``tok``'s chat template is ChatML, and the default system turn it injects (if any)."""
    if not isinstance(getattr(tok, "chat_template", None), str):
        return ChatLayout(False, None)

    def render(msgs: list[dict[str, str]]) -> str:
        return tok.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True)

    try:
        if any(render(list(s)) != chatml(list(s)) for s in _SAMPLES):
            return ChatLayout(False, None)
        alone = [{"role": "user", "content": "Q1"}]
        text = render(alone)
    except Exception:  # a template that cannot render a plain exchange is not ChatML
        return ChatLayout(False, None)
    if text == chatml(alone):
        return ChatLayout(True, None)
    found = _DEFAULT_SYSTEM.match(text)
    if found and text == chatml([{"role": "system", "content": found.group(1)}, *alone]):
        return ChatLayout(True, found.group(1))
    return ChatLayout(False, None)


def _quoted(value: str, what: str) -> str:
    if '"""' in value:
        raise ModelError(f'the {what} contains """, which an Ollama Modelfile cannot hold',
                         hint="train with a system prompt without triple quotes")
    return f'"""{value}"""'


def modelfile(gguf_name: str, *, system: str | None, layout: ChatLayout, stops: list[str],
              adapter: str | None = None) -> str:
    """The Modelfile text: FROM the GGUF (with ``adapter``, the base GGUF + ADAPTER the LoRA GGUF),
    the chat layout, the system prompt, stops, greedy decoding."""
    lines = [f"FROM ./{gguf_name}", *([f"ADAPTER ./{adapter}"] if adapter else []), ""]
    if layout.chatml:
        lines += [f"TEMPLATE {_quoted(GO_CHATML, 'template')}", ""]
    if system:
        lines += [f"SYSTEM {_quoted(system, 'system prompt')}", ""]
    lines += [f'PARAMETER stop "{s}"' for s in stops]
    lines += ["PARAMETER temperature 0", ""]
    return "\n".join(lines)


def readme(name: str, *, files: list[dict[str, Any]], system: str | None, layout: ChatLayout, source: str,
           base: str | None, lora: dict[str, Any] | None = None) -> str:
    """A short README for the export folder: what is there, and the commands that run it."""
    main = files[-1]["file"]  # the smallest (q8_0 when written)
    sys_arg = f" -sys {shlex.quote(system)}" if system else ""
    out = [
        f"# {name}",
        "",
        f"The memtune adapter `{source}` merged into `{base or 'its base model'}` and written as GGUF.",
        "",
        "| file | weights | checked |",
        "|---|---|---|",
    ]
    for f in files:
        out.append(f"| `{f['file']}` | {f['quant']} | {f['summary']} |")
    out += [
        "",
        "## Ollama",
        "",
        "```bash",
        f"ollama create {name} -f Modelfile",
        f"ollama run {name}",
        "```",
        "",
        "## llama.cpp",
        "",
        "```bash",
        f"llama-cli -m {main} --jinja{sys_arg} --temp 0",
        f"llama-server -m {main} --jinja --temp 0 --port 8080   # OpenAI-compatible API",
        "```",
        "",
        "LM Studio loads the same file; set its system prompt to the one below and the temperature to 0.",
        "",
    ]
    if lora:
        out += [
            "## The adapter alone (LoRA GGUF)",
            "",
            f"`{lora['adapter_file']}` is the LoRA by itself (alpha {lora['alpha']:g}) and `{lora['base_file']}` the",
            f"base it was trained on; together they answer like the merged files. Checked: {lora['summary']}.",
            "",
            "```bash",
            f"ollama create {name}-lora -f Modelfile.lora",
            f"llama-cli -m {lora['base_file']} --lora {lora['adapter_file']} --jinja{sys_arg} --temp 0",
            "```",
            "",
        ]
    if system:
        out += ["System prompt the adapter was trained with:", "", "```text", system, "```", ""]
    if not layout.chatml:
        out += ["The chat template is not ChatML, so the Modelfile has no TEMPLATE: Ollama picks one from the",
                "GGUF's `tokenizer.chat_template`. Check its answers against `memtune chat`.", ""]
    return "\n".join(out)
