"""``memtune export``: the store → a training bundle (examples, probes, adapter config, train.py)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from memtune.cli.app import DbOption, JsonOption, app, console, err_console, handle_errors, open_store, print_json
from memtune.errors import MemtuneError, NotFoundError

if TYPE_CHECKING:
    from memtune.dataset import ExportResult


@app.command("export")
def export_cmd(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Bundle directory to create. "
                                             "Default: $MEMTUNE_EXPORT_OUTPUT_PATH.", show_default=False)] = None,
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="messages (TRL, default) | openai | sharegpt | "
                                            "alpaca | anthropic | prompt-completion.", show_default=False)] = None,
    examples_per_guideline: Annotated[int | None, typer.Option("--examples-per-guideline", "-n",
                                                               help="Distinct examples per guideline, 1-50 "
                                                               "(default 5).", show_default=False)] = None,
    negatives: Annotated[bool | None, typer.Option("--negatives/--no-negatives",
                                                   help="~30% contrastive examples (default on).",
                                                   show_default=False)] = None,
    split_ratio: Annotated[float | None, typer.Option("--split-ratio", help="Eval fraction, 0-0.5 (default 0.15).",
                                                      show_default=False)] = None,
    split_by: Annotated[str | None, typer.Option("--split-by", help="phrasing (eval = unseen phrasings, default) | "
                                                 "guideline (hold out whole guidelines).", show_default=False)] = None,
    target_model: Annotated[str | None, typer.Option("--target-model", help="model_type, hub id or local dir "
                                                     "(default: embedded SmolLM2-135M).", show_default=False)] = None,
    no_script: Annotated[bool, typer.Option("--no-script", help="Skip train.py and requirements.txt.")] = False,
    no_metadata: Annotated[bool, typer.Option("--no-metadata", help="No per-example metadata.")] = False,
    seed: Annotated[int | None, typer.Option("--seed", help="Random seed (default 42).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace a non-empty output directory.")] = False,
    rag_fraction: Annotated[float | None, typer.Option("--rag-fraction", help="Share of examples with retrieved "
                                                       "notes in the prompt (default 0.3).", show_default=False)] = None,
    rag_copies: Annotated[float | None, typer.Option(
        "--rag-copies", help="Share of answers repeated with the right note in the prompt, on top of the "
        "closed-book examples (teaches copying from retrieved notes; default 0).", show_default=False)] = None,
    fact_rag_copies: Annotated[float | None, typer.Option(
        "--fact-rag-copies", help="--rag-copies for questions that ask for one value (default: the same share; "
        "memtune run uses 0.5).", show_default=False)] = None,
    fact_share: Annotated[float | None, typer.Option(
        "--fact-share", help="Share of each note's questions that ask for one value it holds (a port, a command, "
        "a path) instead of about its topic (default 0.5; 0 = topic questions only).", show_default=False)] = None,
    min_topic_questions: Annotated[int | None, typer.Option(
        "--min-topic-questions", help="With value questions on, at least this many of each note's training "
        "questions still name its topic, so it is recalled when asked by name (default 0 = no floor; memtune run "
        "uses 4).", show_default=False)] = None,
    named_answers: Annotated[bool | None, typer.Option(
        "--named-answers/--varied-answers", help="Open every answer about a note with the note's name "
        "('Torch pin: ALWAYS …') instead of rotating openings, so its content is learned as following the name; "
        "copies with the note in the prompt answer 'From the project memory: …' (default varied; memtune run "
        "uses named).", show_default=False)] = None,
    rag_gold_first: Annotated[float | None, typer.Option(
        "--rag-gold-first", help="Share of the examples with notes in the prompt that list the right note first, "
        "as a retriever ranks its best match; the rest put it at a random place (default 0).",
        show_default=False)] = None,
    control_fraction: Annotated[float | None, typer.Option(
        "--control-fraction", help="Share of extra examples about topics the memory does not cover, answered "
        "'not in the project memory' (default 0; memtune run sets its own share, see the README).", show_default=False)] = None,
    scope: Annotated[str | None, typer.Option("--scope", help="Scope type: global, org, project or session.")] = None,
    scope_id: Annotated[str | None, typer.Option("--scope-id", help="Scope id (e.g. the project name).")] = None,
    category: Annotated[list[str] | None, typer.Option("--category", "-c", help="Category (repeatable).")] = None,
    priority_min: Annotated[int | None, typer.Option("--priority-min", help="Lowest priority (0-100).")] = None,
    priority_max: Annotated[int | None, typer.Option("--priority-max", help="Highest priority (0-100).")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="Tag (repeatable).")] = None,
    tags_mode: Annotated[str, typer.Option("--tags-mode", help="any | all of the --tag values.")] = "any",
    include_inactive: Annotated[bool, typer.Option("--include-inactive", help="Export deactivated guidelines too.")]
    = False,
    paraphrase_url: Annotated[str | None, typer.Option("--paraphrase-url", help="OpenAI-compatible endpoint "
                                                       "(…/v1) to paraphrase questions; cached.")] = None,
    paraphrase_model: Annotated[str | None, typer.Option("--paraphrase-model", help="Model name for "
                                                         "--paraphrase-url.")] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Export guidelines as a LoRA training bundle that memtune, TRL, LLaMA-Factory, Axolotl and OpenAI accept."""
    with handle_errors():
        from memtune.dataset import ExportConfig, export_guidelines_as_lora
        from memtune.store import GuidelineFilter

        flt = GuidelineFilter(scope_type=scope, scope_id=scope_id, category=category or None,
                              priority_min=priority_min, priority_max=priority_max, tags=tag or None,
                              tags_mode=tags_mode, active_only=not include_inactive)
        config = ExportConfig.from_sources(
            output_path=out, format=fmt, filter=flt, examples_per_guideline=examples_per_guideline,
            include_negative=negatives, split_ratio=split_ratio, split_by=split_by, target_model=target_model,
            generate_script=False if no_script else None, include_metadata=False if no_metadata else None,
            seed=seed, force=force or None, rag_fraction=rag_fraction, rag_copies=rag_copies,
            fact_rag_copies=fact_rag_copies, fact_share=fact_share, min_topic_questions=min_topic_questions,
            named_answers=named_answers, rag_gold_first=rag_gold_first, control_fraction=control_fraction,
            paraphrase_url=paraphrase_url, paraphrase_model=paraphrase_model,
        )
        store = open_store(db)
        if json_out:
            result = export_guidelines_as_lora(store, config)
        else:
            with Progress(TextColumn("[bold]exporting"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                          console=err_console, transient=True) as bar:
                task = bar.add_task("export", total=None)
                result = export_guidelines_as_lora(
                    store, config, progress=lambda done, total: bar.update(task, completed=done, total=total))
        if json_out:
            print_json(result.to_dict())
        if not result.success:
            cls = NotFoundError if (result.error or "").startswith("no guidelines") else MemtuneError
            raise cls(result.error or "export failed", hint=result.warnings[0] if result.warnings else None)
        if not json_out:
            _summary(result)


def _summary(result: ExportResult) -> None:
    stats = result.stats
    out = Path(next(iter(result.files.values()))).parent
    console.print(f"[bold green]Bundle written[/] to {escape(str(out))} ({result.format})", soft_wrap=True)
    t = Table(show_header=False)
    t.add_column(style="bold")
    t.add_column()
    t.add_row("guidelines", f"{stats['guidelines_exported']} of {stats['guidelines_matched']} matched"
              + (f" ({stats['guidelines_held_out']} held out)" if stats["guidelines_held_out"] else ""))
    t.add_row("examples", f"{stats['examples_total']} = {stats['examples_train']} train + {stats['examples_eval']} eval")
    t.add_row("negatives", str(stats["negatives"]))
    t.add_row("with retrieved notes", str(stats["rag_examples"]))
    t.add_row("probes", str(stats["probes"]))
    if stats.get("secrets_removed"):
        t.add_row("secrets removed", f"{stats['secrets_removed']} (the store still holds them; see the warning)")
    t.add_row("fingerprint", stats["fingerprint"][:23] + "…")
    t.add_row("time", f"{stats['seconds']} s")
    console.print(t)
    files = Table(show_header=True, header_style="bold")
    files.add_column("file")
    files.add_column("bytes", justify="right")
    sizes = stats.get("file_sizes", {})
    for path in result.files.values():
        files.add_row(escape(Path(path).name), f"{sizes.get(Path(path).name, 0):,}")
    console.print(files)
    for w in result.warnings:
        console.print(f"[yellow]warning:[/] {escape(w)}")
