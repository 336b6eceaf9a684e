"""Running the conditions: one model in memory, the adapter switched on and off.

A LoRA adapter is loaded *unmerged* so the base condition is the same weights with the
adapter disabled (``PeftModel.disable_adapter()``): one load, no second copy, and base vs
adapter differ by exactly the adapter. A full fine-tune has no adapter to switch off, so
its base model is loaded next to it.

Generation goes through ``memtune.generation.generate`` (batched, left-padded, greedy by
default, stops at the template's end-of-turn), the same code that serves answers.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memtune import generation
from memtune.chatformat import conversation  # the questions are asked exactly as training asked them
from memtune.errors import ConfigError, ModelError
from memtune.evaluate.results import CONDITIONS

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)


def parse_conditions(conditions: Sequence[str] | str | None, *, have_store: bool) -> list[str]:
    """Validated, de-duplicated conditions in canonical order.

    ``None`` = every condition the inputs allow (retrieval ones only with a store).
    Asking for a retrieval condition without a store is an error, not a silent skip.
    """
    if conditions is None:
        return list(CONDITIONS) if have_store else ["base", "adapter"]
    if isinstance(conditions, str):
        conditions = [conditions]
    wanted: list[str] = []
    for c in conditions:
        wanted.extend(x.strip().lower().replace(" ", "") for x in str(c).split(",") if x.strip())
    aliases = {"rag": "base+rag", "retrieval": "base+rag", "tuned": "adapter", "adapter+retrieval": "adapter+rag",
               "base+retrieval": "base+rag"}
    wanted = [aliases.get(w, w) for w in wanted]
    problems = [f"unknown condition {w!r} (choose from {', '.join(CONDITIONS)})" for w in wanted if w not in CONDITIONS]
    if not have_store:
        problems += [f"condition {w!r} needs a guideline store to retrieve from" for w in wanted if w.endswith("+rag")]
    if not wanted:
        problems.append("no condition given")
    if problems:
        raise ConfigError(problems, hint="pass --db PATH for the retrieval conditions, e.g. --conditions base,adapter")
    return [c for c in CONDITIONS if c in wanted]


class ModelUnderTest:
    """The tuned model plus a way to get the base model, sharing weights where possible."""

    def __init__(self, model: Any, tokenizer: Any, *, base_model: Any = None, bf16: bool | None = None,
                 info: dict[str, Any] | None = None, system: str | None = None, merge: bool = True) -> None:
        self.model = model
        self.merge = merge
        self._merged: Any = None
        self.tokenizer = tokenizer
        self.base_model = base_model
        self.bf16 = bf16
        self.info = info or {}
        self.system = system
        """The system prompt the adapter was trained under (its memtune.json), if any."""
        if base_model is None and not hasattr(model, "disable_adapter"):
            raise ModelError(
                "the model has no adapter to switch off and no base model was given",
                hint="load the adapter unmerged (memtune.infer.load_assistant(dir, merge=False)) or pass base_model",
            )

    @classmethod
    def from_adapter_dir(cls, adapter_dir: str | Path, *, device: str | None = None,
                         bf16: bool | None = None, base_model: str | None = None) -> ModelUnderTest:
        from memtune.infer import load_assistant

        a = load_assistant(adapter_dir, base_model=base_model, merge=False, device=device, bf16=bf16)
        return cls.from_assistant(a, device=device)

    @classmethod
    def from_assistant(cls, assistant: Any, *, device: str | None = None) -> ModelUnderTest:
        """Wrap a ``memtune.infer.Assistant`` (e.g. the one ``memtune run`` just trained)."""
        model, info = assistant.model, dict(getattr(assistant, "info", {}) or {})
        base = None
        if not hasattr(model, "disable_adapter"):  # merged LoRA or a full fine-tune
            from memtune.infer import load_assistant

            name = (info.get("base_model") or {}).get("name")
            if not name:
                raise ModelError(
                    f"{getattr(assistant, 'source', 'the model')} is not a PEFT adapter and its memtune.json "
                    "names no base model to compare with",
                    hint="evaluate an adapter directory written by `memtune train`",
                )
            base = load_assistant(None, base_model=name, device=device).model
        return cls(model, assistant.tokenizer, base_model=base, bf16=getattr(assistant, "bf16", None), info=info,
                   system=getattr(assistant, "system", None))

    def merged(self) -> Any:
        """A merged copy of a LoRA model, made once: generation then runs plain linears, about
        twice as fast on a CPU as 200+ unmerged adapter side-paths per token, and it is the
        form ``memtune serve`` answers with. The unmerged original stays for the base condition."""
        if self._merged is None:
            if not hasattr(self.model, "merge_and_unload"):
                return self.model
            import copy

            self._merged = copy.deepcopy(self.model).merge_and_unload()
            self._merged.eval()
        return self._merged

    @contextlib.contextmanager
    def use(self, which: str) -> Iterator[Any]:
        """The model for ``"adapter"`` or ``"base"``; the adapter is re-enabled on exit."""
        if which == "adapter":
            yield self.merged() if self.merge else self.model
        elif self.base_model is not None:
            yield self.base_model
        else:
            with self.model.disable_adapter():
                yield self.model


@dataclass(frozen=True)
class Prompt:
    """One question to put to every condition (a probe or a control)."""

    key: str
    question: str
    context: str = ""


def generate_answers(
    mut: ModelUnderTest,
    which: str,
    prompts: Sequence[Prompt],
    systems: Sequence[str | None],
    *,
    max_new_tokens: int,
    temperature: float,
    batch_size: int,
    seed: int = 0,
    progress: Callable[[int, int], None] | None = None,
) -> list[str]:
    """Answers for ``prompts`` from the base or the adapter model, in input order.

    Prompts are grouped by length and fed ``batch_size`` at a time so progress can be
    reported between batches; greedy unless ``temperature`` > 0 (then seeded).
    """
    import torch

    convs = [conversation(p.question, p.context, s) for p, s in zip(prompts, systems, strict=True)]
    order = sorted(range(len(convs)), key=lambda i: sum(len(m["content"]) for m in convs[i]))
    out: list[str] = [""] * len(convs)
    if temperature > 0:
        torch.manual_seed(seed)
    done = 0
    with mut.use(which) as model:
        for s in range(0, len(order), batch_size):
            idx = order[s : s + batch_size]
            answers = generation.generate(model, mut.tokenizer, [convs[i] for i in idx], max_new_tokens=max_new_tokens,
                               temperature=temperature, batch_size=batch_size, bf16=mut.bf16)
            for i, a in zip(idx, answers, strict=True):
                out[i] = a
            done += len(idx)
            if progress:
                progress(done, len(order))
    return out
