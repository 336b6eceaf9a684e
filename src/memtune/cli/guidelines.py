"""``memtune guidelines …``, ``memtune import`` and ``memtune dump``: the store by hand."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from memtune.cli.app import DbOption, JsonOption, app, console, err_console, handle_errors, open_store, print_json
from memtune.errors import InputError
from memtune.store import build_filter

guidelines_app = typer.Typer(
    help="List, show, add, edit, (de)activate and search guidelines in the store.",
    no_args_is_help=True,
)
app.add_typer(guidelines_app, name="guidelines")

ScopeOpt = Annotated[str | None, typer.Option("--scope", help="Scope type: global, org, project or session.")]
ScopeIdOpt = Annotated[str | None, typer.Option("--scope-id", help="Scope id (e.g. the project name).")]
CategoryOpt = Annotated[list[str] | None, typer.Option("--category", "-c", help="Category (repeatable).")]
TagOpt = Annotated[list[str] | None, typer.Option("--tag", "-t", help="Tag (repeatable).")]


def _table(rows, *, score: dict[int, float] | None = None) -> Table:
    t = Table(show_lines=False, header_style="bold")
    t.add_column("id", justify="right")
    t.add_column("name", overflow="fold", max_width=48)
    t.add_column("category")
    t.add_column("prio", justify="right")
    t.add_column("v", justify="right")
    t.add_column("tags", overflow="fold", max_width=24)
    t.add_column("source", overflow="fold", max_width=36)
    if score is not None:
        t.add_column("score", justify="right")
    for g in rows:
        src = g.sources[0] if g.sources else None
        where = f"{src.file}:{src.line}" if src and src.line else (src.file if src else "")
        if len(g.sources) > 1:
            where += f" (+{len(g.sources) - 1})"
        cells = [
            str(g.id),
            escape(g.name) + ("" if g.is_active else " [dim](inactive)[/]"),
            g.category,
            str(g.priority),
            str(g.version),
            escape(", ".join(g.tags)),
            escape(where),
        ]
        if score is not None:
            cells.append(f"{score[g.id]:.2f}")
        t.add_row(*cells)
    return t


@guidelines_app.command("list")
def list_cmd(
    db: DbOption = None,
    scope: ScopeOpt = None,
    scope_id: ScopeIdOpt = None,
    category: CategoryOpt = None,
    priority_min: Annotated[int | None, typer.Option(help="Lowest priority (0-100).")] = None,
    priority_max: Annotated[int | None, typer.Option(help="Highest priority (0-100).")] = None,
    tag: TagOpt = None,
    tags_mode: Annotated[str, typer.Option(help="Match 'any' or 'all' of the --tag values.")] = "any",
    include_inactive: Annotated[bool, typer.Option("--include-inactive", help="Also list deactivated guidelines.")] = False,
    limit: Annotated[int | None, typer.Option(min=0, help="Show at most this many (default: all).")] = None,
    offset: Annotated[int, typer.Option(min=0, help="Skip this many first (for paging).")] = 0,
    json_out: JsonOption = False,
) -> None:
    """List guidelines, highest priority first. No hidden cap: use --limit/--offset to page.

    Example: memtune guidelines list --category command --priority-min 70
    """
    with handle_errors():
        store = open_store(db)
        f = build_filter(scope, scope_id, category, priority_min, priority_max, tag, tags_mode, include_inactive)
        rows = store.query(f, limit=limit, offset=offset)
        total = store.count(f)
        if json_out:
            print_json({"total": total, "offset": offset, "guidelines": [g.to_dict() for g in rows]})
            return
        if not rows:
            console.print(f"No guidelines match (store: {store.display_url}).")
            return
        console.print(_table(rows))
        shown = f"{offset + 1}-{offset + len(rows)} of {total}" if (limit or offset) else f"{total}"
        console.print(f"[dim]{shown} guideline(s) · store {escape(store.display_url)}[/]")


@guidelines_app.command("show")
def show_cmd(
    guideline_id: Annotated[int, typer.Argument(help="Guideline id (see `guidelines list`).")],
    db: DbOption = None,
    versions: Annotated[bool, typer.Option("--versions", help="Show every version, oldest first.")] = False,
    json_out: JsonOption = False,
) -> None:
    """Show one guideline in full: content, examples, sources and (optionally) its history.

    Example: memtune guidelines show 12 --versions
    """
    with handle_errors():
        g = open_store(db).get(guideline_id, with_versions=versions)
        if json_out:
            print_json(g.to_dict(with_versions=versions))
            return
        state = "active" if g.is_active else "inactive"
        scope = g.scope_type + (f":{g.scope_id}" if g.scope_id else "")
        console.print(f"[bold]#{g.id} {escape(g.name)}[/]  ({g.category}, priority {g.priority}, {state}, v{g.version}, {escape(scope)})")
        if g.tags:
            console.print(f"tags: {escape(', '.join(g.tags))}")
        console.print()
        console.print(escape(g.content))
        if g.rationale:
            console.print(f"\n[bold]Why:[/] {escape(g.rationale)}")
        for label, key in (("Good", "good"), ("Bad", "bad")):
            for ex in g.examples.get(key, []):
                console.print(f"[bold]{label}:[/] {escape(ex)}")
        if g.sources:
            console.print("\n[bold]Sources:[/]")
            for s in g.sources:
                console.print(f"  {escape(s.file)}{':' + str(s.line) if s.line else ''} ({s.kind or '?'})")
        if versions and g.versions:
            console.print("\n[bold]History:[/]")
            for v in g.versions:
                console.print(f"  v{v.version} {v.created_at:%Y-%m-%d %H:%M} {escape(v.change_reason or '')} [dim]{v.content_hash[:12]}[/]")


def _read_content(content: str | None, file: Path | None) -> str | None:
    if content is not None and file is not None:
        raise InputError("give the text either as --content or --file, not both")
    if file is None:
        return content
    if str(file) == "-":
        return sys.stdin.read()
    try:
        return file.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc.strerror}") from exc


@guidelines_app.command("add")
def add_cmd(
    name: Annotated[str, typer.Option("--name", "-n", help="Unique name within the scope.")],
    content: Annotated[str | None, typer.Option("--content", help="The guideline text.")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Read the text from a file ('-' = stdin).")] = None,
    category: Annotated[str, typer.Option(help="Category, e.g. command, gotcha, pattern.")] = "general",
    priority: Annotated[int, typer.Option(help="0-100; 50 is normal, 90+ critical.")] = 50,
    tag: TagOpt = None,
    rationale: Annotated[str | None, typer.Option(help="Why the rule exists.")] = None,
    good: Annotated[list[str] | None, typer.Option("--good", help="A good example (repeatable).")] = None,
    bad: Annotated[list[str] | None, typer.Option("--bad", help="A bad example (repeatable).")] = None,
    scope: Annotated[str, typer.Option("--scope", help="Scope type.")] = "project",
    scope_id: ScopeIdOpt = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Add a guideline by hand.

    Example: memtune guidelines add -n "Use pnpm" --content "Use pnpm, never npm install." --category command --priority 80
    """
    from memtune.store import GuidelineInput, Source
    from memtune.store.redact import redact_fields

    with handle_errors():
        text = _read_content(content, file)
        if not text or not text.strip():
            raise InputError("the guideline has no text", hint="pass --content TEXT or --file PATH")
        f, hits = redact_fields({"name": name, "content": text, "rationale": rationale,
                                 "good": good or [], "bad": bad or [], "tag": tag or []})
        g = open_store(db).add(
            GuidelineInput(
                name=f["name"],
                content=f["content"],
                category=category,
                priority=priority,
                tags=f["tag"],
                rationale=f["rationale"],
                examples={"good": f["good"], "bad": f["bad"]},
                scope_type=scope,
                scope_id=scope_id,
                source=Source("cli", None, "manual"),
            )
        )
        _report_redactions(hits)
        if json_out:
            print_json(g.to_dict())
        else:
            console.print(f"Added guideline #{g.id} {escape(g.name)!s}")


@guidelines_app.command("edit")
def edit_cmd(
    guideline_id: Annotated[int, typer.Argument(help="Guideline id.")],
    content: Annotated[str | None, typer.Option("--content", help="New text (adds a version).")] = None,
    file: Annotated[Path | None, typer.Option("--file", help="Read the new text from a file ('-' = stdin).")] = None,
    name: Annotated[str | None, typer.Option(help="Rename.")] = None,
    category: Annotated[str | None, typer.Option(help="New category.")] = None,
    priority: Annotated[int | None, typer.Option(help="New priority 0-100.")] = None,
    tag: Annotated[list[str] | None, typer.Option("--tag", "-t", help="Replace the tags (repeatable).")] = None,
    rationale: Annotated[str | None, typer.Option(help="New rationale (adds a version).")] = None,
    reason: Annotated[str | None, typer.Option("--reason", help="Why you changed it (kept in the history).")] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Edit a guideline. Text changes append a version; the old text stays in the history.

    Example: memtune guidelines edit 12 --content "Use Node 22 (not 20)." --reason "upgraded"
    """
    from memtune.store.redact import redact_fields

    with handle_errors():
        text = _read_content(content, file)
        f, hits = redact_fields({"name": name, "content": text, "rationale": rationale, "tag": tag,
                                 "reason": reason})
        g = open_store(db).edit(
            guideline_id,
            content=f["content"],
            name=f["name"],
            category=category,
            priority=priority,
            tags=f["tag"],
            rationale=f["rationale"],
            change_reason=f["reason"],
        )
        _report_redactions(hits)
        if json_out:
            print_json(g.to_dict())
        else:
            console.print(f"Guideline #{g.id} is now at version {g.version}.")


def _report_redactions(hits: list[Any]) -> None:
    """Say what was removed and where (type and field only: the value is never shown)."""
    if hits:
        where = ", ".join(h.describe() for h in hits[:10]) + (" …" if len(hits) > 10 else "")
        err_console.print(f"[yellow]Redacted {len(hits)} secret(s) before storing:[/] {escape(where)}")


def _set_active(guideline_id: int, active: bool, db: str | None, json_out: bool) -> None:
    with handle_errors():
        g = open_store(db).set_active(guideline_id, active)
        if json_out:
            print_json(g.to_dict())
        else:
            console.print(f"Guideline #{g.id} {escape(g.name)} is {'active' if active else 'inactive'}.")


@guidelines_app.command("deactivate")
def deactivate_cmd(
    guideline_id: Annotated[int, typer.Argument(help="Guideline id.")],
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Stop using a guideline (kept in the store; `activate` brings it back).

    Example: memtune guidelines deactivate 12
    """
    _set_active(guideline_id, False, db, json_out)


@guidelines_app.command("activate")
def activate_cmd(
    guideline_id: Annotated[int, typer.Argument(help="Guideline id.")],
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Use a deactivated guideline again.

    Example: memtune guidelines activate 12
    """
    _set_active(guideline_id, True, db, json_out)


@guidelines_app.command("search")
def search_cmd(
    query: Annotated[str, typer.Argument(help="Words to look for (any may match; best first).")],
    db: DbOption = None,
    limit: Annotated[int, typer.Option(min=1, help="How many results.")] = 10,
    scope: ScopeOpt = None,
    scope_id: ScopeIdOpt = None,
    category: CategoryOpt = None,
    tag: TagOpt = None,
    include_inactive: Annotated[bool, typer.Option("--include-inactive")] = False,
    json_out: JsonOption = False,
) -> None:
    """Full-text search (SQLite FTS5 / PostgreSQL full text), ranked.

    Example: memtune guidelines search "start the backend"
    """
    with handle_errors():
        store = open_store(db)
        f = build_filter(scope, scope_id, category, None, None, tag, "any", include_inactive)
        hits = store.search(query, f, limit=limit)
        if json_out:
            print_json([{**g.to_dict(), "score": s} for g, s in hits])
            return
        if not hits:
            console.print("No matches.")
            return
        console.print(_table([g for g, _ in hits], score={g.id: s for g, s in hits}))


@app.command("import")
def import_cmd(
    file: Annotated[Path, typer.Argument(help="A .json, .jsonl or .yaml file of guidelines (e.g. from `memtune dump`).")],
    fmt: Annotated[str | None, typer.Option("--format", help="json, jsonl or yaml (default: from the suffix).")] = None,
    db: DbOption = None,
    json_out: JsonOption = False,
) -> None:
    """Import guidelines. Everything is checked first; one bad record means nothing is written.

    Example: memtune import team-guidelines.yaml
    """
    from memtune.store.transfer import import_file

    with handle_errors():
        redacted: list[str] = []
        counts = import_file(open_store(db), file, fmt, redacted=redacted)
        for line in redacted[:20]:
            err_console.print(f"[yellow]secret redacted:[/] {escape(line)} (value not stored or shown)")
        if len(redacted) > 20:
            err_console.print(f"[yellow]… and {len(redacted) - 20} more secret(s) redacted[/]")
        if json_out:
            print_json(counts)
        else:
            console.print(f"Imported {file}: {counts['added']} added, {counts['updated']} updated, {counts['unchanged']} unchanged."
                          + (f" {counts['secrets_redacted']} secret(s) redacted." if redacted else ""))


@app.command("dump")
def dump_cmd(
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write to this file (default: stdout).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", help="json, jsonl or yaml (default: from --out, else json).")] = None,
    versions: Annotated[bool, typer.Option("--versions", help="Include every version (full history).")] = False,
    db: DbOption = None,
    scope: ScopeOpt = None,
    scope_id: ScopeIdOpt = None,
    category: CategoryOpt = None,
    tag: TagOpt = None,
    active_only: Annotated[bool, typer.Option("--active-only", help="Leave out deactivated guidelines.")] = False,
) -> None:
    """Dump guidelines as JSON, JSONL or YAML (importable with `memtune import`).

    Example: memtune dump --out guidelines.yaml --versions
    """
    from memtune.store.transfer import dump, format_for

    with handle_errors():
        store = open_store(db)
        f = build_filter(scope, scope_id, category, None, None, tag, "any", not active_only)
        if out is None:
            dump(store, sys.stdout, (fmt or "json").lower(), f, versions=versions)
            return
        kind = format_for(out, fmt)
        tmp = out.with_name(out.name + ".tmp")
        with tmp.open("w", encoding="utf-8") as fh:
            n = dump(store, fh, kind, f, versions=versions)
        tmp.replace(out)
        console.print(f"Wrote {n} guideline(s) to {escape(str(out))}")
