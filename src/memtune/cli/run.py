"""``memtune run PATH``: the main job in one command."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from memtune.cli.app import DbOption, JsonOption, app, console, handle_errors, print_json
from memtune.recipes import default_recipe

_R = default_recipe()


@app.command("run")
def run_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Repository folder(s) and/or memory files.", show_default=False)],
    db: DbOption = None,
    work_dir: Annotated[Path | None, typer.Option("--work-dir", help="Where bundle/, adapter/ and report/ go. Default: .memtune/run/<project>.")] = None,
    model: Annotated[str | None, typer.Option("--model", help="Base model (default: the embedded SmolLM2-135M-Instruct).")] = None,
    scope_id: Annotated[str | None, typer.Option("--scope-id", help="Project name (default: the folder's name).")] = None,
    epochs: Annotated[int | None, typer.Option(help=f"Training epochs (default {_R.train['epochs']}, early stopping on held-out probes).")] = None,
    max_steps: Annotated[int | None, typer.Option(help="Stop training after this many steps (quick checks).")] = None,
    examples_per_guideline: Annotated[int | None, typer.Option(help=f"Training examples per guideline (default {_R.export['examples_per_guideline']}).")] = None,
    set_: Annotated[list[str] | None, typer.Option("--set", help="Override one recipe value, SECTION.KEY=VALUE "
                                                   "(repeatable; sections export, lora, train, eval), e.g. "
                                                   "--set train.lr=0.001 --set export.control_fraction=0.2. "
                                                   "`memtune recipe` shows them all.", show_default=False)] = None,
    eval_limit: Annotated[int | None, typer.Option("--eval-limit", min=1, help="Evaluate on at most this many probes.")] = None,
    no_eval: Annotated[bool, typer.Option("--no-eval", help="Stop after training.")] = False,
    force: Annotated[bool, typer.Option("--force", help="Rerun every stage even if its inputs did not change.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Ingest PATH → export a bundle → train the default model → evaluate → report.

    A rerun skips every stage whose inputs did not change (edit one rule and only the
    stages after it run again). Prints where each artifact is.

    Example: memtune run examples/memtune
    """
    from memtune.run import RunConfig, run

    with handle_errors():
        from memtune.recipes import parse_overrides

        over = parse_overrides(set_ or [])
        train_opts = {**over["train"], **{k: v for k, v in {"epochs": epochs, "max_steps": max_steps}.items()
                                         if v is not None}}
        export_opts = {**over["export"], **({"examples_per_guideline": examples_per_guideline}
                                           if examples_per_guideline else {})}
        eval_opts = {**over["eval"], **({"limit": eval_limit} if eval_limit else {})}
        result = run(
            RunConfig(
                paths=[str(p) for p in paths],
                db=db,
                work_dir=str(work_dir) if work_dir else None,
                scope_id=scope_id,
                model=model,
                export=export_opts,
                train=train_opts,
                eval=eval_opts,
                force=force,
                skip_eval=no_eval,
            ),
            say=(lambda m: None) if json_out else (lambda m: console.print(escape(m))),
            progress=not json_out,
        )
    if json_out:
        print_json(result.to_dict())
        return
    t = Table(title="memtune run", header_style="bold")
    t.add_column("stage")
    t.add_column("")
    t.add_column("artifact", overflow="fold")
    for s in result.stages:
        t.add_row(s.name, s.status, escape(s.path or ""))
    console.print(t)
    if result.targets:
        h = Table(title="What the adapter knows (held-out phrasings)", header_style="bold")
        h.add_column("figure")
        h.add_column("value", justify="right")
        h.add_column("target")
        h.add_column("")
        for key, row in result.targets.items():
            v = row.get("value")
            shown = "—" if v is None else (f"{v:+.1f}%" if key.endswith("pct") else f"{v:.2f}")
            ok = row.get("met")
            h.add_row(key, shown, f"{row.get('op', '')} {row.get('target', '')}", "" if ok is None else ("[green]met[/]" if ok else "[red]not met[/]"))
        console.print(h)
