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

from memtune.cli.app import (DbOption, JsonOption, app, console, handle_errors, hidden_option,
                             print_json)
from memtune.recipes import default_recipe

_R = default_recipe()
_RT = _R.training()

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
    config: Annotated[Path | None, _opt("--config", help="YAML file of recipe keys (`memtune recipe` lists "
                                        "them); flags win.")] = None,
    set_: Annotated[list[str] | None, _opt("--set", help="One recipe value, KEY=VALUE or train.KEY / lora.KEY "
                                           "(repeatable), e.g. --set patience=0 --set lora.skip_layers=0.")] = None,
    method: Annotated[str | None, _opt("--method", help="lora (default) | qlora (CUDA + bitsandbytes) | full.")] = None,
    model: Annotated[str | None, _opt("--model", help="Base model: smollm2-135m-instruct (embedded default), a "
                                      "local transformers dir, or a hub id.")] = None,
    epochs: Annotated[int | None, _opt("--epochs", help=f"Epochs (recipe: {_RT['epochs']}; early stopping "
                                       "on held-out probes).")] = None,
    max_steps: Annotated[int | None, _opt("--max-steps", help="Stop after N optimizer steps (quick checks).")] = None,
    lr: Annotated[float | None, _opt("--lr", help=f"Learning rate (recipe: {_R.train['lr']:g} for LoRA; "
                                     "5e-5 for a full fine-tune).")] = None,
    rank: Annotated[int | None, _opt("--rank", help=f"LoRA rank (recipe: {_R.lora['rank']}; alpha follows "
                                     "at 2 x rank).")] = None,
    target_modules: Annotated[str | None, _opt("--target-modules", help="Comma-separated module names, "
                                               "all-linear, or a block: mlp | attention (recipe: "
                                               f"{_R.lora['target_modules']}).")] = None,
    seed: Annotated[int | None, _opt("--seed", help="Random seed (default 42).")] = None,
    device: Annotated[str | None, _opt("--device", help="cpu | cuda | cuda:N | mps (default: best available).")] = None,
    bf16: Annotated[bool | None, _opt("--bf16/--no-bf16", help="bf16 autocast (default: on where the hardware "
                                      "is fast at it).")] = None,
    resume: Annotated[bool, _opt("--resume", help="Continue from OUT/checkpoints/last.")] = False,
    overwrite: Annotated[bool, _opt("--overwrite", help="Replace an existing adapter in OUT.")] = False,
    num_processes: Annotated[int | None, _opt("--num-processes", help="Processes in total (>1 launches through "
                                              "accelerate: DDP, gloo on CPU; more machines: --set "
                                              "num_machines=N, machine_rank, main_process_ip).", panel=_D)] = None,
    accelerate_config: Annotated[Path | None, _opt("--accelerate-config", help="accelerate config file "
                                                   "(FSDP / DeepSpeed), passed through.", panel=_D)] = None,
    from_store: Annotated[bool, _opt("--from-store", help="Export a bundle from the store first (into "
                                     "OUT/bundle; filters: --scope, --scope-id, --category, --tag).",
                                     panel=_S)] = False,
    db: DbOption = None,
    quiet: Annotated[bool, _opt("--quiet", "-q", help="No progress bar.")] = False,
    json_out: JsonOption = False,
    # recipe keys that also work as flags (hidden from --help; `memtune recipe` lists them)
    alpha: Annotated[int | None, hidden_option("--alpha", help="LoRA alpha.")] = None,
    dropout: Annotated[float | None, hidden_option("--dropout", help="LoRA dropout.")] = None,
    protect_energy: Annotated[float | None, hidden_option("--protect-energy", help="Massive-activation guard.")] = None,
    skip_layers: Annotated[float | None, hidden_option("--skip-layers", help="Layers without LoRA.")] = None,
    batch_size: Annotated[int | None, hidden_option("--batch-size", help="Examples per micro-batch.")] = None,
    grad_accum: Annotated[int | None, hidden_option("--grad-accum", help="Micro-batches per step.")] = None,
    max_length: Annotated[int | None, hidden_option("--max-length", help="Token limit per example.")] = None,
    max_batch_tokens: Annotated[int | None, hidden_option("--max-batch-tokens", help="Tokens per forward pass.")] = None,
    replay_fraction: Annotated[float | None, hidden_option("--replay-fraction", help="Rehearsal share.")] = None,
    gradient_checkpointing: Annotated[bool | None, hidden_option("--gradient-checkpointing/--no-gradient-checkpointing",
                                                           help="Less memory, slower.")] = None,
    threads: Annotated[int | None, hidden_option("--threads", help="CPU threads for torch.")] = None,
    probe_sample: Annotated[int | None, hidden_option("--probe-sample", help="Probes per epoch.")] = None,
    patience: Annotated[int | None, hidden_option("--patience", help="Early-stopping patience.")] = None,
    save_every: Annotated[int | None, hidden_option("--save-every", help="Checkpoint every N steps.")] = None,
    num_machines: Annotated[int | None, hidden_option("--num-machines", help="Machines.")] = None,
    machine_rank: Annotated[int | None, hidden_option("--machine-rank", help="This machine's rank.")] = None,
    main_process_ip: Annotated[str | None, hidden_option("--main-process-ip", help="Rank 0's address.")] = None,
    main_process_port: Annotated[int | None, hidden_option("--main-process-port", help="Rank 0's port.")] = None,
    scope: Annotated[str | None, hidden_option("--scope", help="Scope type.")] = None,
    scope_id: Annotated[str | None, hidden_option("--scope-id", help="Scope id.")] = None,
    category: Annotated[list[str] | None, hidden_option("--category", "-c", help="Category (repeatable).")] = None,
    tag: Annotated[list[str] | None, hidden_option("--tag", "-t", help="Tag (repeatable).")] = None,
    priority_min: Annotated[int | None, hidden_option("--priority-min", help="Lowest priority.")] = None,
    priority_max: Annotated[int | None, hidden_option("--priority-max", help="Highest priority.")] = None,
    examples_per_guideline: Annotated[int | None, hidden_option("--examples-per-guideline", help="Examples per "
                                                          "guideline.")] = None,
) -> None:
    """Train a LoRA adapter (or QLoRA / full fine-tune) from a bundle; CPU-first, resumable.

    Every default is the base model's recipe (`memtune recipe` shows it); flags, --set and
    --config override single values.

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
            "dropout": dropout, "protect_energy": protect_energy,
            "skip_layers": _whole(skip_layers), "target_modules": target_modules, "batch_size": batch_size,
            "grad_accum": grad_accum, "max_length": max_length, "max_batch_tokens": max_batch_tokens,
            "replay_fraction": replay_fraction,
            "gradient_checkpointing": gradient_checkpointing, "seed": seed, "bf16": bf16, "device": device,
            "threads": threads, "probe_sample": probe_sample, "patience": patience, "save_every": save_every,
            "resume": resume or None, "overwrite": overwrite or None, "num_processes": num_processes,
            "num_machines": num_machines, "machine_rank": machine_rank, "main_process_ip": main_process_ip,
            "main_process_port": main_process_port,
            "accelerate_config": str(accelerate_config) if accelerate_config else None,
            "from_store": from_store or None, "db": db, "export": export or None,
        }
        # --set values sit under the flags: an explicit flag wins over a --set of the same key
        flags = {**_train_overrides(set_ or []), **{k: v for k, v in flags.items() if v is not None}}
        cfg = merge_config(config, flags)
        result = train(cfg, progress=not (quiet or json_out))
        if json_out:
            print_json({"out_dir": str(result.out_dir), "method": result.method, "steps": result.steps,
                        "epochs_run": result.epochs_run, "best_epoch": result.best_epoch,
                        "stopped_early": result.stopped_early, "metrics": result.metrics})


def _train_overrides(items: list[str]) -> dict[str, Any]:
    """``--set`` items for training: a bare KEY is a train key; ``lora.KEY`` maps to its TrainConfig name."""
    from memtune.recipes import parse_overrides

    parsed = parse_overrides([i if "." in i.partition("=")[0] else f"train.{i}" for i in items])
    if parsed["export"] or parsed["eval"]:
        from memtune.errors import ConfigError

        raise ConfigError([f"--set {k}: not a training key" for k in [*parsed["export"], *parsed["eval"]]],
                          hint="memtune train takes train.KEY and lora.KEY; export keys go to memtune export")
    return parsed["train"]


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
