"""``memtune eval ADAPTER``: base vs adapter vs retrieval, controls, forgetting → reports."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from memtune.cli.app import DbOption, JsonOption, app, console, err_console, handle_errors, print_json
from memtune.evaluate.controls import DEFAULT_N_CONTROLS
from memtune.recipes import default_recipe
from memtune.store import KNOWN_WORDS_MIN_SHARE, RELEVANCE_RATIO

_STAGES = {"retrieve": "Retrieving notes", "forgetting:base": "General-text loss (base)",
           "forgetting:adapter": "General-text loss (adapter)"}

_EVAL = default_recipe().eval


def _default_db(db: str | None) -> str | None:
    """--db, else $MEMTUNE_DB_URL, else the default store if it exists (else no retrieval)."""
    if db:
        return db
    if os.environ.get("MEMTUNE_DB_URL"):
        return os.environ["MEMTUNE_DB_URL"]
    from memtune.store import DEFAULT_DB_PATH

    return str(DEFAULT_DB_PATH) if DEFAULT_DB_PATH.is_file() else None


@app.command("eval")
def eval_cmd(
    adapter: Annotated[Path, typer.Argument(help="Adapter directory written by `memtune train`.", show_default=False)],
    bundle: Annotated[Path | None, typer.Option("--bundle", help="Bundle whose probes.jsonl to ask (default: the one in the adapter's memtune.json).")] = None,
    probes: Annotated[list[Path] | None, typer.Option("--probes", help="Extra probe file (JSON list or JSONL of {question, expected_keywords, context}); repeatable.")] = None,
    db: DbOption = None,
    conditions: Annotated[list[str] | None, typer.Option("--conditions", "-c", help="base, base+rag, adapter, adapter+rag (comma-separated or repeated). Default: all; the +rag ones need a store.")] = None,
    rag_k: Annotated[int, typer.Option("--rag-k", help="Notes retrieved into the prompt for the +rag conditions.")] = _EVAL["rag_k"],
    rag_min_ratio: Annotated[float, typer.Option("--rag-min-ratio", min=0.0, max=1.0, help="Drop retrieved notes scoring below this share of the best one (0 = keep all rag-k).")] = RELEVANCE_RATIO,
    rag_min_known: Annotated[float, typer.Option("--rag-min-known", min=0.0, max=1.0, help="Show no notes for a question less than this share of whose words occur anywhere in the memory (0 = always show the best matches).")] = KNOWN_WORDS_MIN_SHARE,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Report directory. Default: ADAPTER/eval.")] = None,
    limit: Annotated[int | None, typer.Option("--limit", min=1, help="Ask at most N probes (spread over guidelines): a quick look.")] = None,
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", help="Answer length cap in tokens.")] = _EVAL["max_new_tokens"],
    temperature: Annotated[float, typer.Option("--temperature", help="0 = greedy (reproducible).")] = 0.0,
    batch_size: Annotated[int, typer.Option("--batch-size", help="Prompts generated together.")] = 8,
    controls: Annotated[bool, typer.Option("--controls/--no-controls", help="Ask questions the memory cannot answer.")] = True,
    n_controls: Annotated[int, typer.Option("--n-controls", help="How many control questions (topics the memory never mentions).")] = DEFAULT_N_CONTROLS,
    forgetting: Annotated[bool, typer.Option("--forgetting/--no-forgetting", help="Measure general-text loss base vs adapter.")] = True,
    device: Annotated[str | None, typer.Option("--device", help="cpu, cuda, mps (default: the best available).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Prove what the adapter learned: keyword recall of base, base + retrieval, adapter and
    adapter + retrieval on held-out probes; control questions; secret leaks; forgetting.

    Writes report.json, report.md and a self-contained report.html.

    Example: memtune eval .memtune/adapters/memtune --db .memtune/memtune.db --probes my_tests.json
    """
    from memtune.evaluate import evaluate

    with handle_errors():
        store_db = _default_db(db)
        out_dir = out or adapter / "eval"
        with Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
            TimeRemainingColumn(), console=err_console, transient=True,
            disable=json_out or not err_console.is_terminal,
        ) as bar:
            tasks: dict[str, int] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    desc = _STAGES.get(stage) or f"Answering: {stage.split(':', 1)[-1]}"
                    tasks[stage] = bar.add_task(desc, total=total)
                bar.update(tasks[stage], completed=done, total=total)

            report = evaluate(
                adapter, bundle=bundle, extra_probe_files=probes or [], db=store_db, conditions=conditions or None,
                rag_k=rag_k, rag_min_ratio=rag_min_ratio, rag_min_known=rag_min_known, max_new_tokens=max_new_tokens, temperature=temperature, batch_size=batch_size,
                controls=controls, n_controls=n_controls, forgetting=forgetting, limit=limit, out_dir=out_dir,
                device=device, progress=progress,
            )
        if json_out:
            d = report.to_dict()
            print_json({k: d[k] for k in ("meta", "headline", "targets", "summaries", "forgetting", "warnings", "files")})
            return
        _print_summary(report)


def _pct(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:.1f}%"


def _print_summary(report) -> None:
    from memtune.evaluate.report.common import HEADLINE_LABELS, headline_value, label, target_text

    t = Table(title="Conditions", header_style="bold", box=None, pad_edge=False)
    for col in ("condition", "recall", "full recall", "probes", "note retrieved", "controls invented", "leaks"):
        t.add_column(col, justify="left" if col == "condition" else "right")
    for c in report.conditions:
        s = report.summaries[c]
        t.add_row(label(c), _pct(s.overall.recall), _pct(s.overall.full_rate), str(s.overall.n),
                  _pct(s.retrieval_hit_rate), _pct(s.controls.invented_rate if s.controls else None), str(s.leaks))
    console.print(t)
    h = Table(title="Against the quality targets", header_style="bold", box=None, pad_edge=False)
    for col in ("figure", "value", "target", ""):
        h.add_column(col)
    for key, chk in report.target_checks().items():
        mark = "[dim]–[/]" if chk["met"] is None else ("[green]met[/]" if chk["met"] else "[red]missed[/]")
        h.add_row(HEADLINE_LABELS[key], headline_value(key, chk["value"]), target_text(key, chk["op"], chk["target"]), mark)
    console.print(h)
    if report.leak_count:
        console.print(f"[bold red]{report.leak_count} answer(s) contained secret-looking text[/] (redacted in the report)")
    for w in report.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}")
    for kind, path in report.files.items():
        console.print(f"{kind:>5}: {escape(path)}")
