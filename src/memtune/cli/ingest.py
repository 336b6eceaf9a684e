"""``memtune ingest PATH...``: agent memory files → the guideline store."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from memtune.cli.app import DbOption, JsonOption, app, console, err_console, handle_errors, open_store, print_json


@app.command("ingest")
def ingest_cmd(
    paths: Annotated[list[Path], typer.Argument(help="Repository folders and/or memory files.", show_default=False)],
    db: DbOption = None,
    kind: Annotated[
        str | None,
        typer.Option(
            help="Force the reader for a single file: memory, cursor-rule, cursorrules, claude, claude-memory, "
            "agents, memory-bank, clinerules, copilot, windsurf, markdown."
        ),
    ] = None,
    scope: Annotated[str, typer.Option("--scope", help="Scope type for new guidelines: global, org, project, session.")] = "project",
    scope_id: Annotated[str | None, typer.Option("--scope-id", help="Scope id (default: the folder's name).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Read and parse, but write nothing.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Print every warning and skipped file.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Find the memory your coding agents keep and store one guideline per rule.

    Reads memory.md, .cursor/rules/*.mdc, .cursorrules, CLAUDE.md (+ @imports), AGENTS.md,
    memory-bank/, .clinerules, Copilot and Windsurf instructions. Secrets are redacted
    before anything is stored. Re-running is safe: unchanged rules are left alone, changed
    ones get a new version. The whole run is one transaction.

    Example: memtune ingest ~/code/myrepo
    """
    from memtune.ingest import ingest

    with handle_errors():
        # a dry run reads and parses only: it must not create the store, its folder or WAL files
        store = None if dry_run else open_store(db)
        with Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeRemainingColumn(),
            console=err_console,
            transient=True,
            disable=json_out or not err_console.is_terminal,
        ) as bar:
            tasks: dict[str, int] = {}

            def progress(stage: str, done: int, total: int) -> None:
                if stage not in tasks:
                    label = "Reading files" if stage == "read" else "Storing guidelines"
                    tasks[stage] = bar.add_task(label, total=total)
                bar.update(tasks[stage], completed=done)

            report = ingest(paths, store, kind=kind, scope_type=scope, scope_id=scope_id, dry_run=dry_run,
                            progress=progress, db_label=_db_label(db))
        if json_out:
            print_json(report.to_dict())
        else:
            _print_summary(report, verbose)
        if report.files_read == 0:
            # nothing ingested is a failure whether nothing was found or everything was skipped
            if not json_out:
                why = ("every file found was skipped" if report.skipped else "no agent-memory files found")
                err_console.print(f"[bold red]Error:[/] nothing ingested: {why}", soft_wrap=True)
            raise typer.Exit(code=1)


def _db_label(db: str | None) -> str:
    """The store a real run would use, for the dry-run report (password hidden)."""
    import sqlalchemy as sa

    from memtune.store import resolve_db_url

    return sa.engine.make_url(resolve_db_url(db)).render_as_string(hide_password=True)


def _print_summary(report, verbose: bool) -> None:
    scope = report.scope_type + (f":{report.scope_id}" if report.scope_id else "")
    title = "Dry run (nothing written)" if report.dry_run else "Ingested"
    console.print(f"[bold]{title}[/] into {escape(report.db)} (scope {escape(scope)})")
    t = Table(show_header=True, header_style="bold", box=None, pad_edge=False)
    t.add_column("files by kind")
    t.add_column("", justify="right")
    for k, n in sorted(report.files_by_kind.items()):
        t.add_row(k, str(n))
    if not report.files_by_kind:
        t.add_row("[yellow]no agent-memory files found[/]", "0")
    console.print(t)
    console.print(
        f"rules found {report.rules_found} · added {report.added} · updated {report.updated} · "
        f"unchanged {report.unchanged} · merged duplicates {report.merged}"
    )
    if report.secrets:
        console.print(f"[yellow]secrets redacted: {len(report.secrets)}[/] (values never stored or shown)")
        for s in report.secrets[: None if verbose else 10]:
            console.print(f"  {escape(s.file)}:{s.line} {s.type}")
        if not verbose and len(report.secrets) > 10:
            console.print(f"  … {len(report.secrets) - 10} more (--verbose)")
    if report.skipped:
        console.print(f"[yellow]files skipped: {len(report.skipped)}[/]")
        for s in report.skipped[: None if verbose else 10]:
            console.print(f"  {escape(s.path)}: {escape(s.reason)}")
        if not verbose and len(report.skipped) > 10:
            console.print(f"  … {len(report.skipped) - 10} more (--verbose)")
    if report.warnings:
        console.print(f"[dim]warnings: {len(report.warnings)}[/]")
        for w in report.warnings[: None if verbose else 5]:
            console.print(f"  [dim]{escape(w)}[/]")
        if not verbose and len(report.warnings) > 5:
            console.print(f"  [dim]… {len(report.warnings) - 5} more (--verbose)[/]")
