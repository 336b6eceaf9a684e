"""``train(config)``: bundle → adapter, CPU-first, resumable, optionally distributed.

A small custom loop on accelerate rather than a Trainer: it lets us pad per batch
(length-grouped), compute the vocabulary layer only on answer tokens, skip gradient
checkpointing and autocast to bf16 on CPUs that have it — together ~15× the tokens/s of
the seed guide's Trainer recipe on 2 CPU cores (benchmarks/bench_train.py).
"""

from __future__ import annotations

import gc
import math
import os
import shutil
import socket
import sys
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memtune.errors import ConfigError, MemtuneError
from memtune.train import checkpoint as ck
from memtune.train.config import TrainConfig, dump_config
from memtune.train.data import Bundle, default_system_prompt, load_bundle, sample_probes, tokenize_all
from memtune.train.recipe import release_memory
from memtune.train.result import WORKER_ENV, TrainingInterrupted, TrainResult

EVAL_LOSS_GAIN = 0.05


def beats(metric: list[float], best: list[float], n_probes: int) -> bool:
    """Is ``[probe recall, -eval loss]`` better than ``best``?

    Recall over a few sampled probes is noisy: the standard error of a mean of n values in [0, 1] is at
    most 0.5/sqrt(n) (0.18 for 8 probes). A gap within that is a tie, and eval loss, which is measured
    on many more examples, decides. Otherwise one run kept epoch 2 of 4 on 0.94 vs 0.81 recall of 8
    probes while eval loss fell 0.31 → 0.22, and the kept adapter was worse on every held-out measure.
    """
    if n_probes and abs(metric[0] - best[0]) <= 0.5 / math.sqrt(n_probes) + 1e-9:
        return metric[1] > best[1]
    return metric > best
"""Relative eval-loss drop that counts an epoch as progress for early stopping."""


# ----------------------------------------------------------------------------- preparation
def _looks_like_adapter_dir(p: Path) -> bool:
    return (p / ck.LINEAGE).is_file() or (p / ck.CKPT_DIR).is_dir() or (p / "train_config.yaml").is_file()


def prepare_run(cfg: TrainConfig) -> TrainConfig:
    """Validate, pick the output dir, handle --overwrite/--resume, export --from-store.

    Runs once (in the launching process for distributed runs) so ranks never race.
    """
    cfg.validate()
    if cfg.out is None:
        stem = Path(cfg.bundle).resolve().name if cfg.bundle else time.strftime("store-%Y%m%d-%H%M%S")
        from memtune.train.adapters import default_root

        cfg = cfg.replace(out=str(default_root() / stem))
    out = Path(cfg.out)
    if out.exists() and any(out.iterdir()):
        if cfg.resume:
            if not ck.has_checkpoint(out):
                raise ConfigError(f"--resume: {out} holds no checkpoint to resume from",
                                  hint="start afresh without --resume (add --overwrite to replace it)")
        elif cfg.overwrite:
            if not _looks_like_adapter_dir(out):
                raise ConfigError(f"refusing to delete {out}: it does not look like a memtune adapter dir",
                                  hint="pass an empty or new --out directory")
            shutil.rmtree(out)
        else:
            raise ConfigError(f"{out} already exists",
                              hint="pass --resume to continue it, --overwrite to replace it, or another --out")
    elif cfg.resume:
        raise ConfigError(f"--resume: {out} holds no checkpoint", hint="start without --resume")
    out.mkdir(parents=True, exist_ok=True)
    if cfg.from_store:
        derived = out / "bundle"
        if not (derived / "train.jsonl").is_file():
            export_from_store(cfg, derived)
        cfg = cfg.replace(bundle=str(derived), from_store=False)
    return cfg.replace(overwrite=False)


FILTER_KEYS = ("scope_type", "scope_id", "category", "tags", "tags_mode", "priority_min", "priority_max",
               "active_only")


def export_from_store(cfg: TrainConfig, dest: Path) -> None:
    """--from-store: memtune.dataset writes the bundle (one source of truth for the data).

    ``cfg.export`` holds GuidelineFilter fields (scope_type, category, tags, ...) and any
    other ExportConfig option (examples_per_guideline, split_ratio, ...).
    """
    try:
        from memtune.dataset import ExportConfig, export_guidelines_as_lora
    except ImportError as exc:
        raise ConfigError("--from-store needs memtune.dataset's exporter, which is not available",
                          hint="export a bundle with `memtune export --out DIR` and pass DIR") from exc
    from memtune.errors import NotFoundError
    from memtune.store import GuidelineFilter, GuidelineStore

    opts = {k: v for k, v in cfg.export.items() if v is not None}
    flt = GuidelineFilter(**{k: opts.pop(k) for k in FILTER_KEYS if k in opts})
    problems = flt.problems()
    if problems:
        raise ConfigError(problems)
    config = ExportConfig.from_sources(output_path=dest, filter=flt, force=True, **opts)
    store = GuidelineStore(cfg.db)
    try:
        result = export_guidelines_as_lora(store, config)
    finally:
        store.close()
    if not result.success:
        cls = NotFoundError if (result.error or "").startswith("no guidelines") else MemtuneError
        raise cls(f"--from-store: {result.error or 'export failed'}",
                  hint=result.warnings[0] if result.warnings else "check the store with `memtune guidelines list`")


# ----------------------------------------------------------------------------- the loop
def _cache_key(name: str, digest: str) -> str:
    """A file-name-safe cache key for a base model: its name and fingerprint."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[-60:]
    return f"{safe}-{digest.split(':')[-1][:16]}"


def train(config: TrainConfig, *, progress: bool = True) -> TrainResult:
    """Train an adapter (or a full fine-tune) from ``config.bundle`` into ``config.out``."""
    from memtune.train.models import pick_device
    from memtune.train.recipe import check_method

    if os.environ.get(WORKER_ENV):
        return _run(config, progress=progress)
    check_method(config.method, pick_device(config.device))  # before anything slow
    cfg = prepare_run(config)
    if cfg.distributed:
        from memtune.train.distributed import launch

        return launch(cfg, progress=progress)
    return _run(cfg, progress=progress)


def _run(cfg: TrainConfig, *, progress: bool) -> TrainResult:  # noqa: PLR0915 - the recipe, top to bottom
    started = time.perf_counter()  # wall clock from here: loading, replay, steps and per-epoch checks
    # oneDNN caches kernels per tensor shape (1024 by default); with dynamic padding nearly
    # every batch is a new shape and the cache grew RSS by ~40 MB a step. Read on first use.
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "32")
    import torch
    from accelerate import Accelerator
    from accelerate.utils import broadcast_object_list, set_seed

    from memtune.train import recipe
    from memtune.train.fastops import use_fast_dropout
    from memtune.train.evaluation import AnswerLoss, eval_loss, probe_recall, supports_selective_head
    from memtune.train.models import bf16_supported, load_base_model, model_hash, pick_device
    from memtune.train.progress import Reporter

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    recipe.check_method(cfg.method, device)
    acc = Accelerator(cpu=device == "cpu")
    main, rank, world = acc.is_main_process, acc.process_index, acc.num_processes
    out = Path(cfg.out)  # type: ignore[arg-type]
    bundle: Bundle = load_bundle(cfg.bundle)  # type: ignore[arg-type]
    hyper = recipe.resolve_hyper(cfg, bundle.adapter_config, bundle.metadata.get("config"))
    bf16 = bf16_supported(acc.device.type) if cfg.bf16 is None else cfg.bf16
    if cfg.method == "qlora":
        bf16 = True

    set_seed(cfg.seed)
    # LoRA under bf16 autocast: keep the frozen base in bf16 (half the memory, no per-step weight
    # casts); the adapter and optimizer stay fp32. Full fine-tuning keeps fp32 master weights.
    base_dtype = torch.bfloat16 if bf16 and cfg.method == "lora" else None
    model, tok = load_base_model(cfg.model, dtype=base_dtype, device=None if cfg.method == "qlora" else str(acc.device),
                                 quantization_config=recipe.quantization_config(cfg.method))
    resolved = model.memtune_resolved
    pad_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    train_set = tokenize_all(tok, bundle.train, cfg.max_length)
    n_replay = round(cfg.replay_fraction * len(train_set.examples))
    n_memory = len(train_set.examples)
    if n_replay:  # written by the base model, before the adapter exists
        from memtune.train.replay import self_replay_examples

        train_set.examples.extend(self_replay_examples(
            model, tok, n_replay, model_key=_cache_key(resolved.name, model_hash(resolved.path)),
            seed=cfg.seed, info=(lambda m: print(m, file=sys.stderr, flush=True)) if progress and main else None))
    model = recipe.prepare_model(model, cfg, hyper)
    gc.collect()
    release_memory()  # the load's transient copies
    if base_dtype is not None:
        recipe.keep_lora_inputs_low_precision(model)
    if cfg.method != "full":
        use_fast_dropout(model)
    if cfg.gradient_checkpointing:
        recipe.enable_gradient_checkpointing(model)
    guard = None
    if cfg.protect_energy and cfg.method != "full":
        from memtune.train.data import replay_examples
        from memtune.train.protect import InputGuard

        rehearsal = [e.input_ids for e in train_set.examples[n_memory:]] + \
            [e.input_ids for e in replay_examples(tok, 64)]
        guard = InputGuard.fit(model, rehearsal, cfg.protect_energy)
        if progress and main:
            print(f"protect: {guard.summary()}", file=sys.stderr, flush=True)
    model.train()
    eval_set = tokenize_all(tok, bundle.eval, cfg.max_length).examples
    probes = sample_probes(bundle.probes, cfg.probe_sample, cfg.seed)
    system = default_system_prompt(bundle.metadata, bundle.train)
    if not train_set.examples:
        raise ConfigError("no training example fits --max-length with its answer", hint="raise --max-length")
    lengths = [len(e) for e in train_set.examples]

    from memtune.train.data import length_grouped_batches, shard, split_by_tokens

    def epoch_batches(epoch: int) -> list[list[int]]:
        return shard(length_grouped_batches(lengths, cfg.batch_size, seed=cfg.seed, epoch=epoch), rank, world)

    per_epoch = math.ceil(len(epoch_batches(0)) / cfg.grad_accum)
    total_steps = per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, per_epoch * cfg.epochs)
    params = [p for _, p in recipe.trainable_parameters(model)]
    opt = torch.optim.AdamW(params, lr=hyper.lr, weight_decay=cfg.weight_decay)
    warm = int(total_steps * cfg.warmup_ratio)

    def lr_lambda(s: int) -> float:
        if s < warm:
            return (s + 1) / (warm + 1)
        return max(0.0, (total_steps - s) / max(1, total_steps - warm))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda)
    identity = {"method": cfg.method, "model": resolved.name, "rank": hyper.rank, "alpha": hyper.alpha,
                "batch_size": cfg.batch_size, "grad_accum": cfg.grad_accum, "seed": cfg.seed,
                "world": world, "fingerprint": bundle.fingerprint}
    state = ck.RunState(identity=identity)
    if cfg.resume:
        state = ck.load_checkpoint(out, model, opt, sched, identity)
        if state.epoch >= cfg.epochs and (cfg.max_steps is None or state.step >= cfg.max_steps):
            raise ConfigError(f"--resume: the run already trained {state.epoch} epoch(s)",
                              hint=f"pass --epochs above {state.epoch} to train further")
        state.finished = False
    start_epoch = state.epoch
    selective = supports_selective_head(model)
    loss_mod, opt = acc.prepare(AnswerLoss(model, selective), opt, device_placement=[False, False])
    unwrapped = model  # the PEFT/causal LM; loss_mod may be DDP-wrapped

    rep = Reporter(enabled=progress and main, total=total_steps, done=state.step)
    if main:
        # what ran, with the LoRA shape and lr resolved from the recipe: enough to reproduce it
        dump_config(cfg.replace(lr=hyper.lr, rank=hyper.rank, alpha=hyper.alpha, dropout=hyper.dropout,
                                target_modules=hyper.target_modules), out / "train_config.yaml")
        rep.info(f"[bold]memtune train[/]: {cfg.method} on {resolved.name}, {len(train_set.examples)} examples "
                 f"({train_set.dropped} dropped, {train_set.truncated} truncated), {cfg.epochs} epoch(s), "
                 f"lr {hyper.lr:g}, r {hyper.rank}, {'bf16' if bf16 else 'fp32'} on {acc.device.type}"
                 + (f", {world} processes" if world > 1 else ""))
    stop = False

    def measure(epoch: int) -> None:
        """Eval loss + probe recall on the main process; every rank gets the decision."""
        nonlocal stop
        verdict: list[Any] = [None]
        if main:
            verdict = judge(epoch)
        if world > 1:
            broadcast_object_list(verdict)
        stop = bool(verdict[0])

    def judge(epoch: int) -> list[Any]:
        """Measure the adapter as it will be kept; save it when it is the best so far."""
        el = eval_loss(AnswerLoss(unwrapped, selective), eval_set, batch_size=cfg.batch_size,
                       pad_id=pad_id, device=acc.device, bf16=bf16, max_batch_tokens=cfg.max_batch_tokens * 2)
        pr, rows = probe_recall(unwrapped, tok, probes, max_new_tokens=cfg.probe_max_new_tokens, bf16=bf16,
                                 system=system)
        recent = [r["loss"] for r in state.curves["train"][-per_epoch:]]
        row = {"epoch": epoch + 1, "step": state.step, "train_loss": sum(recent) / max(len(recent), 1),
               "eval_loss": el, "probe_recall": pr}
        state.curves["epochs"].append(row)
        better = pr is not None or el is not None  # nothing to judge by: the last epoch is final
        # Still learning while eval loss falls by > EVAL_LOSS_GAIN: a dip in the few sampled probes is
        # then noise, not a reason to stop (8 probes stopped a run at epoch 2 of 4, eval loss 1.0 → 0.3).
        learning = el is not None and (state.best_eval_loss is None
                                       or el < state.best_eval_loss * (1 - EVAL_LOSS_GAIN))
        if el is not None and (state.best_eval_loss is None or el < state.best_eval_loss):
            state.best_eval_loss = el
        if better:
            # probe recall first; eval loss breaks ties (and decides when there are no probes)
            metric = [pr if pr is not None else 0.0, -(el if el is not None else 0.0)]
            better = state.best_metric is None or beats(metric, state.best_metric, len(probes))
            if better:
                state.best_metric, state.best_epoch, state.bad_epochs = metric, epoch + 1, 0
                ck.save_best(out, unwrapped, tok)
            else:
                state.bad_epochs = 0 if learning else state.bad_epochs + 1
        else:
            state.best_epoch = epoch + 1
        rep.epoch(row, best=better)
        return [bool(cfg.patience) and state.bad_epochs >= cfg.patience]

    dev_type = acc.device.type
    try:
        with rep:
            while state.epoch < cfg.epochs and not stop:
                batches = epoch_batches(state.epoch)
                while state.batch_pos < len(batches):
                    if cfg.max_steps is not None and state.step >= cfg.max_steps:
                        break
                    window = batches[state.batch_pos : state.batch_pos + cfg.grad_accum]
                    t0 = time.perf_counter()
                    data = [_batch(train_set.examples, sub, pad_id, acc.device) for b in window
                            for sub in split_by_tokens(b, lengths, cfg.max_batch_tokens)]
                    n_tok = sum(int((d["labels"][:, 1:] != -100).sum()) for d in data)
                    loss_total = 0.0
                    for j, d in enumerate(data):
                        sync = acc.no_sync(loss_mod) if (j < len(data) - 1 and world > 1) else nullcontext()
                        with sync, torch.autocast(device_type=dev_type, dtype=torch.bfloat16, enabled=bf16):
                            s, _ = loss_mod(**d)
                            loss = s / max(n_tok, 1)
                        acc.backward(loss)
                        loss_total += float(loss.detach())
                    if cfg.max_grad_norm:
                        acc.clip_grad_norm_(params, cfg.max_grad_norm)
                    opt.step()
                    if guard is not None:
                        guard.apply()
                    sched.step()
                    opt.zero_grad(set_to_none=True)
                    release_memory()
                    state.step += 1
                    state.batch_pos += len(window)
                    real = sum(int(d["attention_mask"].sum()) for d in data) * world
                    step_seconds = time.perf_counter() - t0
                    state.train_tokens += real
                    state.train_seconds += step_seconds
                    state.curves["train"].append({"step": state.step, "epoch": state.epoch + 1,
                                                  "loss": round(loss_total, 5), "lr": sched.get_last_lr()[0]})
                    rep.step(loss_total, real, step_seconds, state.epoch + 1, cfg.epochs)
                    if cfg.save_every and state.step % cfg.save_every == 0 and main:
                        ck.save_checkpoint(out, unwrapped, opt, sched, state)
                hit_max = cfg.max_steps is not None and state.step >= cfg.max_steps
                measure(state.epoch)
                release_memory()
                state.epoch += 1
                state.batch_pos = 0
                if main:
                    ck.save_checkpoint(out, unwrapped, opt, sched, state)
                if hit_max:
                    break
    except KeyboardInterrupt:
        if main:
            opt.zero_grad(set_to_none=True)
            ck.save_checkpoint(out, unwrapped, opt, sched, state)
        raise TrainingInterrupted(
            f"training interrupted at step {state.step} (epoch {state.epoch + 1}); checkpoint saved in "
            f"{out / ck.CKPT_DIR / ck.LAST}",
            hint=f"resume with: memtune train {cfg.bundle} --out {out} --resume",
        ) from None

    state.finished = True
    last = state.curves["epochs"][-1] if state.curves["epochs"] else {}
    best = next((r for r in state.curves["epochs"] if r["epoch"] == state.best_epoch), last)
    metrics = {
        "steps": state.step, "epochs_run": state.epoch, "best_epoch": state.best_epoch,
        "train_loss": last.get("train_loss"), "eval_loss": best.get("eval_loss"),
        "probe_recall": best.get("probe_recall"), "probes_sampled": len(probes),
        "stopped_early": stop, "train_seconds": round(state.train_seconds, 2),
        "tokens_per_s": round(state.train_tokens / max(state.train_seconds, 1e-9), 1),
        "train_examples": len(train_set.examples), "world_size": world,
        "wall_seconds": round(time.perf_counter() - started, 1),
    }
    processes = [{"rank": rank, "pid": os.getpid(), "host": socket.gethostname(), "device": str(acc.device),
                  "backend": str(getattr(acc.state, "backend", None))}]
    if world > 1:
        from accelerate.utils import gather_object

        processes = gather_object(processes)
    metrics["processes"] = processes
    if main:
        ck.save_checkpoint(out, unwrapped, opt, sched, state)
        base = {"name": resolved.name, "source": resolved.source, "path": resolved.path,
                "hub_id": resolved.spec.hub_id if resolved.spec else None, "hash": model_hash(resolved.path)}
        info = ck.lineage(system_prompt=system, method=cfg.method, base=base, bundle=bundle, metrics=metrics,
                          hyper={"lr": hyper.lr, "rank": hyper.rank, "alpha": hyper.alpha, "dropout": hyper.dropout,
                                 "target_modules": hyper.target_modules, "bf16": bf16},
                          config=cfg.to_dict())
        earlier_best = state.best_epoch is not None and state.best_epoch <= start_epoch and ck.has_weights(out)
        ck.finalize(out, model=unwrapped, tokenizer=tok, keep_checkpoint=cfg.keep_checkpoint,
                    files={"curves.json": state.curves, ck.LINEAGE: info}, best_already_in_out=earlier_best)
        rep.info(f"[green]adapter written to {out}[/] (best epoch {state.best_epoch}, "
                 f"probe recall {metrics['probe_recall']}, {metrics['tokens_per_s']} tok/s)")
    acc.wait_for_everyone()
    return TrainResult(out_dir=out, method=cfg.method, steps=state.step, epochs_run=state.epoch,
                       best_epoch=state.best_epoch, metrics=metrics, curves=state.curves, stopped_early=stop)


def _batch(examples: list[Any], idx: list[int], pad_id: int, device: Any) -> dict[str, Any]:
    from memtune.train.data import collate

    return {k: v.to(device) for k, v in collate([examples[i] for i in idx], pad_id).items()}
