"""``memtune doctor``: the machine, versions, caches and store in one report for bug reports."""

from __future__ import annotations

from rich.markup import escape
from rich.table import Table

from memtune.cli.app import DbOption, JsonOption, app, console, handle_errors, print_json


@app.command("doctor")
def doctor_cmd(db: DbOption = None, json_out: JsonOption = False) -> None:
    """Python, torch, CPU vector flags, the training speed to expect here, caches, store and default model.

    Paste its output into a bug report. It loads no model and changes nothing.
    """
    with handle_errors():
        from memtune.doctor import diagnose

        report = diagnose(db)
    if json_out:
        print_json(report)
        return
    t = Table(show_header=False, title="memtune doctor")
    t.add_column(style="bold")
    t.add_column(overflow="fold")
    model = report["default_model"]
    rows = [
        ("memtune", report["memtune"]),
        ("python", report["python"]),
        ("platform", report["platform"]),
        ("cpu", f"{report['cpu']}, {report['cores']} core(s) usable"),
        ("vector flags", " ".join(report["vector_flags"]) or "none of AVX2 / AVX-512 / AMX"),
        ("training", f"{report['speed_class']}: expect ~{report['expected_train_tokens_per_s']} tokens/s "
                     f"on the default model; recipe budget {report['recipe_budget']}"),
        ("gpu", report["cuda"] or "none (CPU training)"),
        ("packages", ", ".join(f"{k} {v or '-'}" for k, v in report["packages"].items())),
        ("default model", (f"installed ({model['gguf']})" if model["gguf"] else f"MISSING: {model['fix']}")
         + ("; converted" if model["converted"] else "; converted on first use (~20 s)")),
        ("cache", report["cache_dir"]),
        ("replay cache", report["replay_cache_dir"]),
        ("store", report["store"]),
    ]
    for k, v in rows:
        t.add_row(k, escape(str(v)))
    console.print(t)
