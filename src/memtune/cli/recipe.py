"""``memtune recipe``: the measured defaults every command starts from, in one place."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from memtune.cli.app import JsonOption, app, console, handle_errors, print_json


@app.command("recipe")
def recipe_cmd(
    model: Annotated[str | None, typer.Option("--model", help="Show the recipe this base model trains with "
                                              "(default: the embedded SmolLM2-135M-Instruct).",
                                              show_default=False)] = None,
    raw: Annotated[bool, typer.Option("--raw", help="Print the recipe file itself, with the one-line reason "
                                      "behind each value.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Show the recipe: every default of export, LoRA, training and evaluation, and where it comes from.

    Override one value with `memtune run --set SECTION.KEY=VALUE` (`memtune train --set KEY=VALUE`,
    `memtune export --set KEY=VALUE`), or a YAML of keys with --config.
    """
    with handle_errors():
        from importlib import resources

        from memtune.recipes import SECTIONS, recipe_for

        rec = recipe_for(model)
        if json_out:
            print_json({"name": rec.name, "purpose": rec.purpose, "models": list(rec.models), "budget": rec.budget,
                        **{s: dict(getattr(rec, s)) for s in SECTIONS}})
            return
        if raw:
            text = resources.files("memtune.recipes").joinpath(f"{rec.name}.yaml").read_text(encoding="utf-8")
            typer.echo(text, nl=False)
            return
        matched = rec.matches(model)
        console.print(f"[bold]recipe {escape(rec.name)}[/] ({escape(str(Path('memtune/recipes') / rec.name))}.yaml)"
                      + ("" if matched else f" — no recipe was measured on {escape(str(model))}; it starts "
                                            "from this one, with the LoRA size of its parameter count"))
        console.print(escape(rec.purpose))
        if rec.budget == "quick":
            console.print("[yellow]quick budget[/] (MEMTUNE_RECIPE_BUDGET=quick): the recipe's quick values replace "
                          "the full ones below (fewer training tokens; see --raw for what that costs).")
        for section in SECTIONS:
            values = getattr(rec, section)
            t = Table(title=section, title_justify="left", header_style="bold", show_edge=False)
            t.add_column("key")
            t.add_column("value", justify="right")
            for k, v in values.items():
                t.add_row(k, escape(f"{v:g}" if isinstance(v, float) else str(v)))
            console.print(t)
        console.print("Why each value: memtune recipe --raw (and docs/recipe.md).")
