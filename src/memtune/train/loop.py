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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memtune.errors import ConfigError, MemtuneError
from memtune.train import checkpoint as ck
from memtune.train.config import TrainConfig, dump_config
from memtune.train.data import Bundle, default_system_prompt, load_bundle, sample_probes, tokenize_all
from memtune.train.recipe import release_memory
from memtune.train.result import WORKER_ENV, TrainingInterrupted, TrainResult
from memtune.train.stopping import EarlyStopping


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


def _run(cfg: TrainConfig, *, progress: bool) -> TrainResult:
    """setup → fit (validating after each epoch) → save: the recipe, top to bottom."""
    session = setup(cfg, progress=progress)
    stopped = fit(session)
    return save(session, stopped=stopped)


@dataclass
class Session:
    """What the stages of one training run share: built by :func:`setup`, advanced by :func:`fit`."""

    cfg: TrainConfig
    acc: Any
    out: Path
    bundle: Bundle
    hyper: Any
    bf16: bool
    model: Any
    """The PEFT (or full) causal LM; ``loss_mod`` may be its DDP-wrapped loss."""
    tok: Any
    resolved: Any
    pad_id: int
    train_set: Any
    lengths: list[int]
    eval_set: list[Any]
    probes: list[Any]
    system: str | None
    params: list[Any]
    opt: Any
    sched: Any
    state: ck.RunState
    start_epoch: int
    selective: bool
    loss_mod: Any
    rep: Any
    guard: Any
    per_epoch: int
    total_steps: int
    started: float
    stopper: EarlyStopping

    @property
    def main(self) -> bool:
        return bool(self.acc.is_main_process)

    @property
    def world(self) -> int:
        return int(self.acc.num_processes)

    def epoch_batches(self, epoch: int) -> list[list[int]]:
        """This rank's micro-batches of ``epoch``: length-grouped, shuffled by seed and epoch."""
        from memtune.train.data import length_grouped_batches, shard

        cfg = self.cfg
        return shard(length_grouped_batches(self.lengths, cfg.batch_size, seed=cfg.seed, epoch=epoch),
                     self.acc.process_index, self.world)


def setup(cfg: TrainConfig, *, progress: bool) -> Session:  # noqa: PLR0915 - one step after another
    """Load the bundle and base model, add the adapter, build the optimizer, restore a checkpoint."""
    started = time.perf_counter()  # wall clock from here: loading, replay, steps and per-epoch checks
    # oneDNN caches kernels per tensor shape (1024 by default); with dynamic padding nearly
    # every batch is a new shape and the cache grew RSS by ~40 MB a step. Read on first use.
    os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "32")
    import torch
    from accelerate import Accelerator
    from accelerate.utils import set_seed

    from memtune.train import recipe
    from memtune.train.evaluation import AnswerLoss, supports_selective_head
    from memtune.train.fastops import use_fast_dropout
    from memtune.train.models import bf16_supported, load_base_model, model_hash, pick_device
    from memtune.train.progress import Reporter

    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    device = pick_device(cfg.device)
    recipe.check_method(cfg.method, device)
    acc = Accelerator(cpu=device == "cpu")
    main, world = acc.is_main_process, acc.num_processes
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
        from memtune.train.replay import model_cache_key, self_replay_examples

        train_set.examples.extend(self_replay_examples(
            model, tok, n_replay, model_key=model_cache_key(resolved.name, model_hash(resolved.path)),
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
    if not train_set.examples:
        raise ConfigError("no training example fits --max-length with its answer", hint="raise --max-length")

    params = [p for _, p in recipe.trainable_parameters(model)]
    opt = torch.optim.AdamW(params, lr=hyper.lr, weight_decay=cfg.weight_decay)
    identity = {"method": cfg.method, "model": resolved.name, "rank": hyper.rank, "alpha": hyper.alpha,
                "batch_size": cfg.batch_size, "grad_accum": cfg.grad_accum, "seed": cfg.seed,
                "world": world, "fingerprint": bundle.fingerprint}
    probes = sample_probes(bundle.probes, cfg.probe_sample, cfg.seed)
    selective = supports_selective_head(model)
    state = ck.RunState(identity=identity)
    s = Session(cfg=cfg, acc=acc, out=out, bundle=bundle, hyper=hyper, bf16=bf16, model=model, tok=tok,
                resolved=resolved, pad_id=pad_id, train_set=train_set,
                lengths=[len(e) for e in train_set.examples],
                eval_set=tokenize_all(tok, bundle.eval, cfg.max_length).examples, probes=probes,
                system=default_system_prompt(bundle.metadata, bundle.train), params=params, opt=opt,
                sched=None, state=state, start_epoch=0, selective=selective, loss_mod=None, rep=None,
                guard=guard, per_epoch=0, total_steps=0, started=started,
                stopper=EarlyStopping(state, patience=cfg.patience, n_probes=len(probes)))
    s.per_epoch = math.ceil(len(s.epoch_batches(0)) / cfg.grad_accum)
    s.total_steps = s.per_epoch * cfg.epochs if cfg.max_steps is None else min(cfg.max_steps, s.per_epoch * cfg.epochs)
    s.sched = torch.optim.lr_scheduler.LambdaLR(opt, _warmup_then_linear(s.total_steps, cfg.warmup_ratio))
    if cfg.resume:
        s.state = ck.load_checkpoint(out, model, opt, s.sched, identity)
        if s.state.epoch >= cfg.epochs and (cfg.max_steps is None or s.state.step >= cfg.max_steps):
            raise ConfigError(f"--resume: the run already trained {s.state.epoch} epoch(s)",
                              hint=f"pass --epochs above {s.state.epoch} to train further")
        s.state.finished = False
        s.stopper.record = s.state
    s.start_epoch = s.state.epoch
    s.loss_mod, s.opt = acc.prepare(AnswerLoss(model, selective), opt, device_placement=[False, False])
    s.rep = Reporter(enabled=progress and main, total=s.total_steps, done=s.state.step)
    if main:
        # what ran, with the LoRA shape and lr resolved from the recipe: enough to reproduce it
        dump_config(cfg.replace(lr=hyper.lr, rank=hyper.rank, alpha=hyper.alpha, dropout=hyper.dropout,
                                target_modules=hyper.target_modules), out / "train_config.yaml")
        s.rep.info(f"[bold]memtune train[/]: {cfg.method} on {resolved.name}, {len(train_set.examples)} examples "
                   f"({train_set.dropped} dropped, {train_set.truncated} truncated), {cfg.epochs} epoch(s), "
                   f"lr {hyper.lr:g}, r {hyper.rank}, {'bf16' if bf16 else 'fp32'} on {acc.device.type}"
                   + (f", {world} processes" if world > 1 else ""))
    return s


def _warmup_then_linear(total_steps: int, warmup_ratio: float) -> Any:
    """The learning-rate factor per step: linear warm-up, then linear decay to 0 at the last step."""
    warm = int(total_steps * warmup_ratio)

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / (warm + 1)
        return max(0.0, (total_steps - step) / max(1, total_steps - warm))

    return factor


def fit(s: Session) -> bool:
    """Train epoch by epoch, validating after each; True when early stopping ended the run.

    Ctrl-C saves a checkpoint and raises :class:`TrainingInterrupted` saying how to resume.
    """
    cfg, state = s.cfg, s.state
    stop = False
    try:
        with s.rep:
            while state.epoch < cfg.epochs and not stop:
                batches = s.epoch_batches(state.epoch)
                while state.batch_pos < len(batches):
                    if cfg.max_steps is not None and state.step >= cfg.max_steps:
                        break
                    _step(s, batches[state.batch_pos : state.batch_pos + cfg.grad_accum])
                    if cfg.save_every and state.step % cfg.save_every == 0 and s.main:
                        ck.save_checkpoint(s.out, s.model, s.opt, s.sched, state)
                hit_max = cfg.max_steps is not None and state.step >= cfg.max_steps
                stop = validate(s, state.epoch)
                release_memory()
                state.epoch += 1
                state.batch_pos = 0
                if s.main:
                    ck.save_checkpoint(s.out, s.model, s.opt, s.sched, state)
                if hit_max:
                    break
    except KeyboardInterrupt:
        if s.main:
            s.opt.zero_grad(set_to_none=True)
            ck.save_checkpoint(s.out, s.model, s.opt, s.sched, state)
        raise TrainingInterrupted(
            f"training interrupted at step {state.step} (epoch {state.epoch + 1}); checkpoint saved in "
            f"{s.out / ck.CKPT_DIR / ck.LAST}",
            hint=f"resume with: memtune train {cfg.bundle} --out {s.out} --resume",
        ) from None
    return stop


def _step(s: Session, window: list[list[int]]) -> None:
    """One optimizer step over ``window`` (grad_accum micro-batches, each split to the token budget)."""
    import torch

    from memtune.train.data import split_by_tokens

    cfg, state, acc = s.cfg, s.state, s.acc
    t0 = time.perf_counter()
    data = [_batch(s.train_set.examples, sub, s.pad_id, acc.device) for b in window
            for sub in split_by_tokens(b, s.lengths, cfg.max_batch_tokens)]
    n_tok = sum(int((d["labels"][:, 1:] != -100).sum()) for d in data)
    loss_total = 0.0
    for j, d in enumerate(data):
        sync = acc.no_sync(s.loss_mod) if (j < len(data) - 1 and s.world > 1) else nullcontext()
        with sync, torch.autocast(device_type=acc.device.type, dtype=torch.bfloat16, enabled=s.bf16):
            summed, _ = s.loss_mod(**d)
            loss = summed / max(n_tok, 1)
        acc.backward(loss)
        loss_total += float(loss.detach())
    if cfg.max_grad_norm:
        acc.clip_grad_norm_(s.params, cfg.max_grad_norm)
    s.opt.step()
    if s.guard is not None:
        s.guard.apply()
    s.sched.step()
    s.opt.zero_grad(set_to_none=True)
    release_memory()
    state.step += 1
    state.batch_pos += len(window)
    real = sum(int(d["attention_mask"].sum()) for d in data) * s.world
    step_seconds = time.perf_counter() - t0
    state.train_tokens += real
    state.train_seconds += step_seconds
    state.curves["train"].append({"step": state.step, "epoch": state.epoch + 1,
                                  "loss": round(loss_total, 5), "lr": s.sched.get_last_lr()[0]})
    s.rep.step(loss_total, real, step_seconds, state.epoch + 1, cfg.epochs)


def validate(s: Session, epoch: int) -> bool:
    """Eval loss and probe recall of ``epoch`` (0-based) on the main process, which saves the adapter
    when it is the best so far; every rank gets the stop decision."""
    verdict: list[Any] = [None]
    if s.main:
        verdict = [_judge(s, epoch)]
    if s.world > 1:
        from accelerate.utils import broadcast_object_list

        broadcast_object_list(verdict)
    return bool(verdict[0])


def _judge(s: Session, epoch: int) -> bool:
    from memtune.train.evaluation import AnswerLoss, eval_loss, probe_recall

    cfg, state = s.cfg, s.state
    el = eval_loss(AnswerLoss(s.model, s.selective), s.eval_set, batch_size=cfg.batch_size, pad_id=s.pad_id,
                   device=s.acc.device, bf16=s.bf16, max_batch_tokens=cfg.max_batch_tokens * 2)
    pr, _rows = probe_recall(s.model, s.tok, s.probes, max_new_tokens=cfg.probe_max_new_tokens, bf16=s.bf16,
                             system=s.system)
    recent = [r["loss"] for r in state.curves["train"][-s.per_epoch:]]
    row = {"epoch": epoch + 1, "step": state.step, "train_loss": sum(recent) / max(len(recent), 1),
           "eval_loss": el, "probe_recall": pr}
    state.curves["epochs"].append(row)
    verdict = s.stopper.update(epoch + 1, pr, el)
    if verdict.better:
        ck.save_best(s.out, s.model, s.tok)
    s.rep.epoch(row, best=verdict.better)
    return verdict.stop


def save(s: Session, *, stopped: bool) -> TrainResult:
    """Write the adapter of the best epoch, its lineage (memtune.json) and curves; return the result."""
    from memtune.train.models import model_hash

    cfg, state, acc, out = s.cfg, s.state, s.acc, s.out
    state.finished = True
    last = state.curves["epochs"][-1] if state.curves["epochs"] else {}
    best = next((r for r in state.curves["epochs"] if r["epoch"] == state.best_epoch), last)
    metrics = {
        "steps": state.step, "epochs_run": state.epoch, "best_epoch": state.best_epoch,
        "train_loss": last.get("train_loss"), "eval_loss": best.get("eval_loss"),
        "probe_recall": best.get("probe_recall"), "probes_sampled": len(s.probes),
        "stopped_early": stopped, "train_seconds": round(state.train_seconds, 2),
        "tokens_per_s": round(state.train_tokens / max(state.train_seconds, 1e-9), 1),
        "train_examples": len(s.train_set.examples), "world_size": s.world,
        "wall_seconds": round(time.perf_counter() - s.started, 1),
    }
    processes = [{"rank": acc.process_index, "pid": os.getpid(), "host": socket.gethostname(),
                  "device": str(acc.device), "backend": str(getattr(acc.state, "backend", None))}]
    if s.world > 1:
        from accelerate.utils import gather_object

        processes = gather_object(processes)
    metrics["processes"] = processes
    if s.main:
        ck.save_checkpoint(out, s.model, s.opt, s.sched, state)
        r = s.resolved
        base = {"name": r.name, "source": r.source, "path": r.path,
                "hub_id": r.spec.hub_id if r.spec else None, "hash": model_hash(r.path)}
        h = s.hyper
        info = ck.lineage(system_prompt=s.system, method=cfg.method, base=base, bundle=s.bundle, metrics=metrics,
                          hyper={"lr": h.lr, "rank": h.rank, "alpha": h.alpha, "dropout": h.dropout,
                                 "target_modules": h.target_modules, "bf16": s.bf16},
                          config=cfg.to_dict())
        earlier_best = state.best_epoch is not None and state.best_epoch <= s.start_epoch and ck.has_weights(out)
        ck.finalize(out, model=s.model, tokenizer=s.tok, keep_checkpoint=cfg.keep_checkpoint,
                    files={"curves.json": state.curves, ck.LINEAGE: info}, best_already_in_out=earlier_best)
        s.rep.info(f"[green]adapter written to {out}[/] (best epoch {state.best_epoch}, "
                   f"probe recall {metrics['probe_recall']}, {metrics['tokens_per_s']} tok/s)")
    acc.wait_for_everyone()
    return TrainResult(out_dir=out, method=cfg.method, steps=state.step, epochs_run=state.epoch,
                       best_epoch=state.best_epoch, metrics=metrics, curves=state.curves, stopped_early=stopped)


def _batch(examples: list[Any], idx: list[int], pad_id: int, device: Any) -> dict[str, Any]:
    from memtune.train.data import collate

    return {k: v.to(device) for k, v in collate([examples[i] for i in idx], pad_id).items()}
