"""``memtune merge``: fold a LoRA adapter into its base and save a plain transformers model.

A merged model loads without peft (``AutoModelForCausalLM.from_pretrained``), runs a
little faster and can be converted by other tools (llama.cpp, vLLM). Before anything
is written the merge is checked: the merged model's logits on a probe prompt must match
base + adapter and greedy decoding must produce the same tokens.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from memtune.errors import InputError, ModelError
from memtune.serve.loader import LINEAGE_FILE, inspect, load_assistant_for

PROBE_QUESTION = "How do I start the backend service?"
_DTYPES = ("float32", "bfloat16", "float16")


@dataclass
class MergeResult:
    out_dir: str
    base: str | None
    verified: bool
    max_abs_logit_diff: float | None
    probe_tokens: int
    dtype: str

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _probe_ids(tok: Any) -> Any:
    import torch

    from memtune.serve.engine import ask_messages, encode_prompt

    return torch.tensor([encode_prompt(tok, ask_messages(PROBE_QUESTION))])


def _greedy(model: Any, ids: Any, eos: list[int], pad: int, n: int) -> list[int]:
    from memtune.generation import generate_ids

    return generate_ids(model, [ids[0].tolist()], stops=eos, pad=pad, max_new_tokens=n)[0]


def _prepare_out(out: Path, adapter: Path, force: bool) -> None:
    if out.resolve() == adapter.resolve() or out.resolve().is_relative_to(adapter.resolve()):
        raise InputError(f"--out {out} is inside the adapter directory", hint="choose a separate folder")
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not force:
            raise InputError(f"{out} already exists and is not empty", hint="choose another --out or pass --force")


def merge_adapter(
    adapter: str | Path,
    out: str | Path,
    *,
    base: str | None = None,
    force: bool = False,
    verify: bool = True,
    dtype: str = "float32",
    probe_tokens: int = 16,
) -> MergeResult:
    import torch

    if dtype not in _DTYPES:
        raise InputError(f"dtype {dtype!r} is not one of {', '.join(_DTYPES)}")
    ref = inspect(adapter, base)
    if ref.kind != "adapter":
        raise InputError(f"{ref.path} is already a full model (no adapter_config.json); there is nothing to merge")
    out = Path(out).expanduser()
    _prepare_out(out, ref.path, force)

    assistant = load_assistant_for(ref, base=base, merge=False)
    model, tok = assistant.model, assistant.tokenizer
    from memtune.serve.engine import TransformersBackend

    probe = TransformersBackend(model, tok)  # for its eos ids and pad id
    ids = _probe_ids(tok).to(probe.device)
    diff = None
    if verify:
        with torch.inference_mode():
            ref_logits = model(input_ids=ids).logits.float()
        ref_tokens = _greedy(model, ids, probe.eos_ids, probe.pad_id, probe_tokens)
    merged = model.merge_and_unload()
    if verify:
        with torch.inference_mode():
            new_logits = merged(input_ids=ids).logits.float()
        diff = float((new_logits - ref_logits).abs().max())
        scale = float(ref_logits.abs().max()) or 1.0
        new_tokens = _greedy(merged, ids, probe.eos_ids, probe.pad_id, probe_tokens)
        if diff > 1e-3 * max(1.0, scale) or new_tokens != ref_tokens:
            raise ModelError(
                f"the merged model does not reproduce base + adapter (max logit difference {diff:.3g}, "
                f"greedy tokens {'equal' if new_tokens == ref_tokens else 'differ'}); nothing was written",
                hint="report this with the adapter's adapter_config.json; --no-verify skips the check",
            )
    if dtype != "float32":
        merged = merged.to(getattr(torch, dtype))

    tmp = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        merged.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        lineage = dict(ref.lineage)
        lineage.update(
            format="merged",
            merged_from={"adapter": ref.path.resolve().name, "base": ref.base or base},
            merge={"verified": verify, "max_abs_logit_diff": diff, "dtype": dtype},
        )
        (tmp / LINEAGE_FILE).write_text(json.dumps(lineage, indent=2, default=str), encoding="utf-8")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return MergeResult(str(out), ref.base or base, verify, diff, probe_tokens, dtype)
