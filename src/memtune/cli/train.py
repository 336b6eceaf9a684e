"""``memtune train`` and ``memtune adapters list|show|remove``.

Flags mirror :class:`memtune.train.TrainConfig`; every flag defaults to "not given" so a
``--config`` YAML can set it and an explicit flag still wins.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from memtune.cli.app import DbOption, JsonOption, app, console, handle_errors, print_json

_T = "Training"
_D = "Distributed (accelerate)"
_S = "--from-store filters"


def _opt(*names: str, help: str, panel: str = _T, **kw: Any) -> Any:  # noqa: A002 - typer's name
    return typer.Option(*names, help=help, rich_help_panel=panel, show_default=False, **kw)


def _whole(v: float | None) -> float | int | None:
    """10.0 from the command line is the layer count 10; 0.33 stays a fraction."""
    return int(v) if v is not None and v >= 1 and v == int(v) else v


@app.command("train")
def train_cmd(
    bundle: Annotated[Path | None, typer.Argument(help="Bundle directory written by `memtune export`.",
                                                  show_default=False)] = None,
    out: Annotated[Path | None, _opt("--out", "-o", help="Adapter directory to write "
                                     "(default .memtune/adapters/<bundle name>).")] = None,
    config: Annotated[Path | None, _opt("--config", help="YAML file whose keys mirror these flags "
                                        "(flags win).")] = None,
    method: Annotated[str | None, _opt("--method", help="lora (default) | qlora (CUDA + bitsandbytes) | full.")] = None,
    model: Annotated[str | None, _opt("--model", help="Base model: smollm2-135m-instruct (embedded default), a "
                                      "local transformers dir, or a hub id.")] = None,
    epochs: Annotated[int | None, _opt("--epochs", help="Epochs (default 3).")] = None,
    max_steps: Annotated[int | None, _opt("--max-steps", help="Stop after N optimizer steps.")] = None,
    lr: Annotated[float | None, _opt("--lr", help="Learning rate (default 1e-3 LoRA, 5e-5 full).")] = None,
    rank: Annotated[int | None, _opt("--rank", help="LoRA rank (default: the bundle's adapter_config.json).")] = None,
    alpha: Annotated[int | None, _opt("--alpha", help="LoRA alpha (default: the bundle's, else 2 x rank).")] = None,
    dropout: Annotated[float | None, _opt("--dropout", help="LoRA dropout (default: the bundle's).")] = None,
    lora_plus_ratio: Annotated[float | None, _opt("--lora-plus-ratio", help="LoRA+: the B matrices learn this "
                                                  "many times faster than A (default 1 = plain LoRA; the "
                                                  "paper uses 16).")] = None,
    protect_energy: Annotated[float | None, _opt("--protect-energy", help="Keep LoRA off the input directions "
                                                 "that hold this share of each layer's input energy on "
                                                 "ordinary text (the massive activations every text shares): "
                                                 "much less forgetting at the same recall (default 0 = off; "
                                                 "memtune run uses 0.3).")] = None,
    min_lr_ratio: Annotated[float | None, _opt("--min-lr-ratio", help="The lr decays linearly to this share of "
                                               "--lr instead of 0, so the last epoch still learns (default 0).")] = None,
    adapter_scale: Annotated[float | None, _opt("--adapter-scale", help="Keep this share of the trained LoRA "
                                                "update, 0-1 (WiSE-FT): the probed and saved adapter is scaled, "
                                                "training and its resume checkpoint are not (default 1).")] = None,
    skip_layers: Annotated[float | None, _opt("--skip-layers", help="Leave the first N layers without LoRA (or a "
                                              "fraction below 1 of them): the backward pass stops above them, "
                                              "~40% faster with 10 of 30 (default 0).")] = None,
    target_modules: Annotated[str | None, _opt("--target-modules", help="Comma-separated module names, "
                                               "all-linear, or a block: mlp (the feed-forward layers, where "
                                               "the default model keeps facts) or attention (default: the "
                                               "bundle's).")] = None,
    batch_size: Annotated[int | None, _opt("--batch-size", help="Examples per micro-batch (default 8).")] = None,
    grad_accum: Annotated[int | None, _opt("--grad-accum", help="Micro-batches per optimizer step (default 1).")] = None,
    max_length: Annotated[int | None, _opt("--max-length", help="Token limit per example (default 512).")] = None,
    max_batch_tokens: Annotated[int | None, _opt("--max-batch-tokens", help="Padded tokens per forward pass; "
                                                 "longer batches are split within the step (default 512, "
                                                 "bounds memory; 0 = off).")] = None,
    replay_fraction: Annotated[float | None, _opt("--replay-fraction", help="Rehearsal examples per training "
                                                  "example, 0-1 (default 0): keeps general-text loss near the "
                                                  "base model's.")] = None,
    replay_source: Annotated[str | None, _opt("--replay-source", help="self: text the base model writes (cached "
                                              "per model; default) | text: the shipped paragraphs.")] = None,
    replay_loss: Annotated[str | None, _opt("--replay-loss", help="tokens: next-token loss on the rehearsal "
                                            "text (default) | distill: match the base model's next-token "
                                            "distribution on it (LoRA/QLoRA).")] = None,
    gradient_checkpointing: Annotated[bool | None, _opt("--gradient-checkpointing/--no-gradient-checkpointing",
                                                        help="Less memory, ~25% slower (default off).")] = None,
    seed: Annotated[int | None, _opt("--seed", help="Random seed (default 42).")] = None,
    bf16: Annotated[bool | None, _opt("--bf16/--no-bf16", help="bf16 autocast (default: on where the hardware "
                                      "is fast at it).")] = None,
    device: Annotated[str | None, _opt("--device", help="cpu | cuda | cuda:N | mps (default: best available).")] = None,
    threads: Annotated[int | None, _opt("--threads", help="CPU threads for torch.")] = None,
    probe_sample: Annotated[int | None, _opt("--probe-sample", help="Probes answered after each epoch (default "
                                             "16; 0 = none).")] = None,
    patience: Annotated[int | None, _opt("--patience", help="Epochs without better probe recall before stopping "
                                         "(default 2; 0 = never).")] = None,
    save_every: Annotated[int | None, _opt("--save-every", help="Also checkpoint every N steps.")] = None,
    resume: Annotated[bool, _opt("--resume", help="Continue from OUT/checkpoints/last.")] = False,
    overwrite: Annotated[bool, _opt("--overwrite", help="Replace an existing adapter in OUT.")] = False,
    num_processes: Annotated[int | None, _opt("--num-processes", help="Processes in total (>1 launches through "
                                              "accelerate: DDP, gloo on CPU).", panel=_D)] = None,
    num_machines: Annotated[int | None, _opt("--num-machines", help="Machines (run the same command on each).",
                                             panel=_D)] = None,
    machine_rank: Annotated[int | None, _opt("--machine-rank", help="This machine's rank (0 = main).",
                                             panel=_D)] = None,
    main_process_ip: Annotated[str | None, _opt("--main-process-ip", help="Address of machine rank 0.",
                                                panel=_D)] = None,
    main_process_port: Annotated[int | None, _opt("--main-process-port", help="Port on machine rank 0.",
                                                  panel=_D)] = None,
    accelerate_config: Annotated[Path | None, _opt("--accelerate-config", help="accelerate config file "
                                                   "(FSDP / DeepSpeed), passed through.", panel=_D)] = None,
    from_store: Annotated[bool, _opt("--from-store", help="Export a bundle from the store first "
                                     "(into OUT/bundle).", panel=_S)] = False,
    scope: Annotated[str | None, _opt("--scope", help="Scope type.", panel=_S)] = None,
    scope_id: Annotated[str | None, _opt("--scope-id", help="Scope id.", panel=_S)] = None,
    category: Annotated[list[str] | None, _opt("--category", "-c", help="Category (repeatable).", panel=_S)] = None,
    tag: Annotated[list[str] | None, _opt("--tag", "-t", help="Tag (repeatable).", panel=_S)] = None,
    priority_min: Annotated[int | None, _opt("--priority-min", help="Lowest priority.", panel=_S)] = None,
    priority_max: Annotated[int | None, _opt("--priority-max", help="Highest priority.", panel=_S)] = None,
    examples_per_guideline: Annotated[int | None, _opt("--examples-per-guideline", help="Examples per guideline.",
                                                       panel=_S)] = None,
    db: DbOption = None,
    quiet: Annotated[bool, _opt("--quiet", "-q", help="No progress bar.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Train a LoRA adapter (or QLoRA / full fine-tune) from a bundle; CPU-first, resumable.

    GPU check: memtune train BUNDLE --out X --method qlora --max-steps 20
    """
    with handle_errors():
        from memtune.train.config import merge_config
        from memtune.train.loop import train

        export = {"scope_type": scope, "scope_id": scope_id, "category": category or None, "tags": tag or None,
                  "priority_min": priority_min, "priority_max": priority_max,
                  "examples_per_guideline": examples_per_guideline}
        export = {k: v for k, v in export.items() if v is not None}
        flags: dict[str, Any] = {
            "bundle": str(bundle) if bundle else None, "out": str(out) if out else None, "method": method,
            "model": model, "epochs": epochs, "max_steps": max_steps, "lr": lr, "rank": rank, "alpha": alpha,
            "dropout": dropout, "lora_plus_ratio": lora_plus_ratio,
            "protect_energy": protect_energy, "min_lr_ratio": min_lr_ratio, "adapter_scale": adapter_scale,
            "skip_layers": _whole(skip_layers), "target_modules": target_modules, "batch_size": batch_size,
            "grad_accum": grad_accum, "max_length": max_length, "max_batch_tokens": max_batch_tokens,
            "replay_fraction": replay_fraction, "replay_source": replay_source, "replay_loss": replay_loss,
            "gradient_checkpointing": gradient_checkpointing, "seed": seed, "bf16": bf16, "device": device,
            "threads": threads, "probe_sample": probe_sample, "patience": patience, "save_every": save_every,
            "resume": resume or None, "overwrite": overwrite or None, "num_processes": num_processes,
            "num_machines": num_machines, "machine_rank": machine_rank, "main_process_ip": main_process_ip,
            "main_process_port": main_process_port,
            "accelerate_config": str(accelerate_config) if accelerate_config else None,
            "from_store": from_store or None, "db": db, "export": export or None,
        }
        cfg = merge_config(config, flags)
        result = train(cfg, progress=not (quiet or json_out))
        if json_out:
            print_json({"out_dir": str(result.out_dir), "method": result.method, "steps": result.steps,
                        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
                        "stopped_early": result.stopped_early, "metrics": result.metrics})


# ----------------------------------------------------------------------------- adapters
adapters_app = typer.Typer(help="Trained adapters: list, show and remove; flags stale ones.", no_args_is_help=True)
app.add_typer(adapters_app, name="adapters")

RootOpt = Annotated[list[Path] | None, typer.Option("--root", help="Also look in this directory (repeatable). "
                                                    "Default root: .memtune/adapters.", show_default=False)]


def _store_or_none(db: str | None) -> Any:
    """The store for staleness, or None when there is none to compare with."""
    import os

    from memtune.store import GuidelineStore, resolve_db_url

    url = resolve_db_url(db)
    if url.startswith("sqlite:///") and not Path(url.removeprefix("sqlite:///")).is_file():
        if db or os.environ.get("MEMTUNE_DB_URL"):
            from memtune.errors import NotFoundError

            raise NotFoundError(f"no store at {url.removeprefix('sqlite:///')}", hint="check --db")
        return None
    return GuidelineStore(db)


def _with_staleness(adapters: list[Any], db: str | None) -> list[Any]:
    from memtune.train.adapters import check_staleness

    store = _store_or_none(db)
    if store is None:
        return adapters
    try:
        return [check_staleness(a, store) for a in adapters]
    finally:
        store.close()


def _fmt(v: Any) -> str:
    return "-" if v is None else f"{v:.3f}" if isinstance(v, float) else str(v)


def _stale_cell(a: Any) -> str:
    return "[dim]?[/]" if a.stale is None else "[red]stale[/]" if a.stale else "[green]fresh[/]"


@adapters_app.command("list")
def adapters_list(root: RootOpt = None, db: DbOption = None, json_out: JsonOption = False) -> None:
    """Every adapter with its base model, date, metrics and whether it is stale."""
    with handle_errors():
        from memtune.train.adapters import find_adapters

        adapters = _with_staleness(find_adapters([str(r) for r in root or []]), db)
        if json_out:
            print_json([a.to_dict() for a in adapters])
            return
        if not adapters:
            console.print("No adapters yet. Train one with `memtune train BUNDLE_DIR`.")
            return
        t = Table(header_style="bold")
        for col in ("name", "method", "base model", "created", "probe recall", "eval loss", "guidelines", "state"):
            t.add_column(col)
        for a in adapters:
            t.add_row(escape(a.name), a.method, escape(a.base_model), (a.created_at or "-")[:19],
                      _fmt(a.metrics.get("probe_recall")), _fmt(a.metrics.get("eval_loss")),
                      str(len(a.guidelines)), _stale_cell(a))
        console.print(t)
        console.print(f"{len(adapters)} adapter(s)")


@adapters_app.command("show")
def adapters_show(name: Annotated[str, typer.Argument(help="Adapter name or path.")], root: RootOpt = None,
                  db: DbOption = None, json_out: JsonOption = False) -> None:
    """One adapter's lineage, metrics and staleness reasons."""
    with handle_errors():
        from memtune.train.adapters import resolve_adapter

        a = _with_staleness([resolve_adapter(name, [str(r) for r in root or []])], db)[0]
        if json_out:
            print_json(a.to_dict())
            return
        t = Table(show_header=False, title=escape(str(a.path)), title_justify="left")
        t.add_column(style="bold")
        t.add_column()
        t.add_row("method", a.method)
        t.add_row("base model", f"{escape(a.base_model)} ({a.base_model_hash or '-'})")
        t.add_row("created", a.created_at or "-")
        t.add_row("dataset", a.dataset_fingerprint or "-")
        t.add_row("guidelines", ", ".join(f"{g.get('id')}@v{g.get('version')}" for g in a.guidelines) or "-")
        for k, v in a.metrics.items():
            t.add_row(k, _fmt(v))
        t.add_row("state", _stale_cell(a) + "".join(f"\n  {escape(r)}" for r in a.stale_reasons))
        console.print(t)


@adapters_app.command("remove")
def adapters_remove(name: Annotated[str, typer.Argument(help="Adapter name or path.")], root: RootOpt = None,
                    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask.")] = False,
                    json_out: JsonOption = False) -> None:
    """Delete an adapter directory (only directories that hold memtune.json)."""
    with handle_errors():
        from memtune.train.adapters import remove_adapter, resolve_adapter

        a = resolve_adapter(name, [str(r) for r in root or []])
        if not yes and not json_out and not typer.confirm(f"Delete {a.path}?"):
            raise typer.Exit(1)
        remove_adapter(a)
        if json_out:
            print_json({"removed": str(a.path)})
        else:
            console.print(f"Removed {escape(str(a.path))}")
