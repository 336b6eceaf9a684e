"""Training benchmark: seed 000's recipe vs memtune's, and example memory → adapter wall time.

    .venv/bin/python benchmarks/bench_train.py                  # compare (a few minutes)
    .venv/bin/python benchmarks/bench_train.py --mode e2e       # examples/ memory → adapter
    .venv/bin/python benchmarks/bench_train.py --mode all --seed-steps 2 --memtune-steps 40

*compare* trains the embedded default model on the same bundle with each recipe, each in
its own subprocess (so peak RSS is per recipe):

- seed: seed 000's LoRA recipe — "### Instruction/Context/Response" text, every example
  padded to 512 tokens, batch 4 × accumulation 4, HF Trainer, fp32, LoRA r16 on q/k/v/o.
- memtune: ``memtune.train.train`` with its defaults (chat template, answer-only loss,
  length-grouped dynamic padding, answer-only output layer, bf16 autocast where fast), with
  the bundle's LoRA settings — and once more with ``--dropout 0`` (LoRA dropout's random
  masks are ~40% of a CPU step: see the figures).

"Real" tokens are non-pad tokens. Targets (docs/benchmarks.md): ≥ 10× tokens/s at ≤ ¼ peak RSS;
*e2e*: the example memory (~50 guidelines) → adapter in ≤ 10 minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THREADS = int(os.environ.get("BENCH_THREADS", "2"))

QUESTION_TEMPLATES = [
    "What is the {name} rule?",
    "What should I know about {name}?",
    "Explain {name} in this project.",
    "How do we handle {name} here?",
    "Remind me of the {name} guideline.",
    "What does the project memory say about {name}?",
]


# ----------------------------------------------------------------------------- the data
def ingest_examples(db: Path) -> None:
    from memtune.ingest import ingest
    from memtune.store import GuidelineStore

    with GuidelineStore(str(db)) as store:
        ingest([ROOT / "examples"], store)


def _fallback_bundle(db: Path, out: Path) -> None:
    """A plain bundle from the store when memtune.dataset's exporter is not available:
    six question phrasings per guideline, answer = the guideline text."""
    from memtune.store import GuidelineStore

    rng = random.Random(0)
    out.mkdir(parents=True, exist_ok=True)
    train, evals, probes, lineage = [], [], [], []
    with GuidelineStore(str(db)) as store:
        for g in store.iter_guidelines():
            name = g.name.replace("-", " ").replace("_", " ")
            qs = [t.format(name=name) for t in QUESTION_TEMPLATES]
            rng.shuffle(qs)
            answer = g.content.strip()
            for q in qs[:5]:
                train.append({"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": answer}]})
            evals.append({"messages": [{"role": "user", "content": qs[5]}, {"role": "assistant", "content": answer}]})
            words = [w.strip("`*.,:;()") for w in answer.split() if len(w.strip("`*.,:;()")) > 6]
            probes.append({"question": qs[5], "expected_keywords": words[:3], "context": "", "guideline_id": g.id,
                           "guideline_version": g.version, "category": g.category, "name": g.name})
            lineage.append({"id": g.id, "version": g.version})
    for name, rows in (("train", train), ("eval", evals), ("probes", probes)):
        (out / f"{name}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (out / "adapter_config.json").write_text(json.dumps({"r": 16, "lora_alpha": 32, "lora_dropout": 0.05,
                                                         "target_modules": "all-linear"}))
    (out / "metadata.json").write_text(json.dumps({"guidelines": lineage, "counts": {"train": len(train)},
                                                   "generator": "bench_train fallback"}))


def build_bundle(work: Path) -> tuple[Path, str]:
    """examples/ → store → bundle; memtune.dataset's exporter when present."""
    db = work / "memtune.db"
    ingest_examples(db)
    out = work / "bundle"
    try:
        from memtune.dataset import ExportConfig, export_guidelines_as_lora  # type: ignore[attr-defined]
    except ImportError:
        _fallback_bundle(db, out)
        return out, "synthetic (memtune.dataset exporter not available)"
    del ExportConfig, export_guidelines_as_lora  # present: train's own --from-store path does the export
    from memtune.train.config import TrainConfig
    from memtune.train.loop import export_from_store

    export_from_store(TrainConfig(from_store=True, db=str(db)), out)
    return out, "memtune.dataset export"


# ----------------------------------------------------------------------------- the workers
def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def worker_seed(bundle: Path, steps: int) -> dict:
    """Seed 000's recipe, as written (fp16 → fp32 on CPU; Trainer; pad to 512)."""
    import torch

    torch.set_num_threads(THREADS)
    from datasets import Dataset
    from peft import LoraConfig, TaskType, get_peft_model
    from transformers import AutoModelForCausalLM, DataCollatorForLanguageModeling, Trainer, TrainingArguments

    from memtune.train.data import load_bundle
    from memtune.train.models import load_tokenizer, resolve_base_model

    path = resolve_base_model(None).path
    tok = load_tokenizer(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    model = get_peft_model(model, LoraConfig(task_type=TaskType.CAUSAL_LM, r=16, lora_alpha=32, lora_dropout=0.1,
                                             target_modules=["q_proj", "v_proj", "k_proj", "o_proj"]))
    texts = []
    for conv in load_bundle(bundle).train:
        user = next(m["content"] for m in conv if m["role"] == "user")
        ans = next(m["content"] for m in conv if m["role"] == "assistant")
        texts.append(f"### Instruction:\n{user}\n\n### Context:\n\n\n### Response:\n{ans}")
    ds = Dataset.from_list([{"text": t} for t in texts]).map(
        lambda b: tok(b["text"], truncation=True, padding="max_length", max_length=512), batched=True,
        remove_columns=["text"])
    real_per_example = sum(sum(m) for m in ds["attention_mask"]) / len(ds)
    args = TrainingArguments(output_dir=tempfile.mkdtemp(), per_device_train_batch_size=4,
                             gradient_accumulation_steps=4, max_steps=steps, learning_rate=2e-4, logging_steps=1,
                             save_strategy="no", report_to=[], use_cpu=True, disable_tqdm=True, seed=0)
    trainer = Trainer(model=model, args=args, train_dataset=ds,
                      data_collator=DataCollatorForLanguageModeling(tok, mlm=False))
    t0 = time.perf_counter()
    trainer.train()
    secs = time.perf_counter() - t0
    examples = steps * 16
    return {"recipe": "seed", "steps": steps, "examples": examples, "seconds": secs,
            "real_tokens": real_per_example * examples, "padded_tokens": 512 * examples,
            "tokens_per_s": real_per_example * examples / secs, "peak_rss_mb": peak_rss_mb()}


def worker_memtune(bundle: Path, steps: int, dropout: float | None = None) -> dict:
    import torch

    torch.set_num_threads(THREADS)
    from memtune.train import TrainConfig, train

    out = Path(tempfile.mkdtemp()) / "adapter"
    t0 = time.perf_counter()
    r = train(TrainConfig(bundle=str(bundle), out=str(out), epochs=100, max_steps=steps, probe_sample=0,
                          threads=THREADS, dropout=dropout), progress=False)
    wall = time.perf_counter() - t0
    m = r.metrics
    return {"recipe": "memtune", "dropout": dropout, "steps": m["steps"], "seconds": m["train_seconds"], "wall_seconds": wall,
            "real_tokens": m["tokens_per_s"] * m["train_seconds"], "tokens_per_s": m["tokens_per_s"],
            "peak_rss_mb": peak_rss_mb()}


def run_worker(kind: str, bundle: Path, steps: int, dropout: float | None = None) -> dict:
    cmd = [sys.executable, __file__, "--worker", kind, "--bundle", str(bundle), "--steps", str(steps)]
    if dropout is not None:
        cmd += ["--dropout", str(dropout)]
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr[-4000:])
        raise SystemExit(f"{kind} worker failed ({proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


# ----------------------------------------------------------------------------- modes
def compare(args: argparse.Namespace, work: Path) -> dict:
    bundle, source = build_bundle(work)
    print(f"bundle: {source}, {sum(1 for _ in open(bundle / 'train.jsonl'))} train examples", flush=True)
    from memtune.train.models import resolve_base_model

    resolve_base_model(None)  # convert/cache once, outside the timed workers
    seed = run_worker("seed", bundle, args.seed_steps)
    print(f"{'seed 000 recipe':20s}: {seed['tokens_per_s']:8.1f} real tok/s   peak RSS {seed['peak_rss_mb']:8.0f} MB"
          f"   ({seed['steps']} steps, {seed['seconds']:.0f} s)", flush=True)
    out: dict = {"seed": seed, "bundle_source": source}
    for label, dropout in (("memtune", None), ("memtune --dropout 0", 0.0)):
        mem = run_worker("memtune", bundle, args.memtune_steps, dropout)
        ratio_t = mem["tokens_per_s"] / seed["tokens_per_s"]
        ratio_m = mem["peak_rss_mb"] / seed["peak_rss_mb"]
        print(f"{label:20s}: {mem['tokens_per_s']:8.1f} real tok/s   peak RSS {mem['peak_rss_mb']:8.0f} MB"
              f"   ({mem['steps']} steps, {mem['seconds']:.0f} s)  → {ratio_t:.1f}x tokens/s (target >= 10x), "
              f"{ratio_m:.2f}x peak RSS (target <= 0.25x)", flush=True)
        out[label] = {**mem, "tokens_per_s_ratio": ratio_t, "peak_rss_ratio": ratio_m}
    return out


def e2e(args: argparse.Namespace, work: Path) -> dict:
    import torch

    torch.set_num_threads(THREADS)
    t0 = time.perf_counter()
    bundle, source = build_bundle(work / "e2e")
    t_bundle = time.perf_counter() - t0
    from memtune.train import TrainConfig, train

    r = train(TrainConfig(bundle=str(bundle), out=str(work / "e2e" / "adapter"), threads=THREADS,
                          epochs=args.epochs), progress=not args.quiet)
    total = time.perf_counter() - t0
    res = {"bundle_source": source, "bundle_seconds": t_bundle, "total_seconds": total, "metrics": r.metrics}
    print(f"example memory → adapter: {total / 60:.1f} min total (bundle {t_bundle:.0f} s, "
          f"{r.metrics['train_examples']} examples, {r.epochs_run} epochs, probe recall {r.metrics['probe_recall']}, "
          f"{r.metrics['tokens_per_s']} tok/s) — target <= 10 min")
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mode", choices=["compare", "e2e", "all"], default="compare")
    ap.add_argument("--seed-steps", type=int, default=1, help="optimizer steps of the seed recipe (16 examples each)")
    ap.add_argument("--memtune-steps", type=int, default=20, help="optimizer steps of memtune's recipe")
    ap.add_argument("--epochs", type=int, default=3, help="e2e: epochs")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    ap.add_argument("--quiet", action="store_true")
    ap.add_argument("--worker", choices=["seed", "memtune"], help=argparse.SUPPRESS)
    ap.add_argument("--bundle", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--steps", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--dropout", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        res = worker_seed(args.bundle, args.steps) if args.worker == "seed" else \
            worker_memtune(args.bundle, args.steps, args.dropout)
        print(json.dumps(res))
        return
    results = {}
    with tempfile.TemporaryDirectory(prefix="memtune-bench-") as tmp:
        work = Path(tmp)
        if args.mode in ("compare", "all"):
            results["compare"] = compare(args, work)
        if args.mode in ("e2e", "all"):
            results["e2e"] = e2e(args, work)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
