"""The typer app and helpers every command module shares.

Command modules (``guidelines.py``, ``ingest.py``, ...) import ``app`` from here and
register their commands; ``memtune.cli`` imports them all. The CLI is thin: parse,
call the library, print. It is the only layer that exits.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console

from memtune import __version__
from memtune.errors import MemtuneError

console = Console(highlight=False, soft_wrap=True)
err_console = Console(stderr=True, highlight=False, soft_wrap=True)

app = typer.Typer(
    name="memtune",
    help=(
        "Turn what your coding agents remember (memory.md, Cursor rules, CLAUDE.md, AGENTS.md, ...) "
        "into a LoRA adapter that knows it, prove it, and serve it."
    ),
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

DbOption = Annotated[
    str | None,
    typer.Option(
        "--db",
        help="Store: a SQLite file path or a database URL (postgresql://...). "
        "Default: $MEMTUNE_DB_URL, else ./.memtune/memtune.db",
        show_default=False,
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of tables.")]

T = TypeVar("T")


def version_callback(value: bool) -> None:
    if value:
        console.print(f"memtune {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=version_callback, is_eager=True, help="Show the version and exit."),
    ] = False,
) -> None:
    """memtune: agent memory → fine-tuned model, with proof."""


def fail(exc: MemtuneError) -> None:
    """Print one clear error (and its fix) and exit non-zero."""
    err_console.print(f"[bold red]Error:[/] {exc.message}", markup=True, soft_wrap=True)
    if exc.hint:
        err_console.print(f"[yellow]Hint:[/] {exc.hint}", soft_wrap=True)
    raise typer.Exit(code=exc.exit_code)


@contextmanager
def handle_errors() -> Iterator[None]:
    """Turn MemtuneError into a message + exit code; Ctrl-C into exit 130."""
    try:
        yield
    except MemtuneError as exc:
        fail(exc)
    except KeyboardInterrupt:
        err_console.print("[yellow]Interrupted.[/]")
        raise typer.Exit(code=130) from None


def open_store(db: str | None) -> Any:
    from memtune.store import GuidelineStore

    return GuidelineStore(db)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def run(fn: Callable[[], T]) -> T:
    with handle_errors():
        return fn()
    raise AssertionError("unreachable")  # pragma: no cover


def hidden_option(*names: str, help: str, **kw: Any) -> Any:  # noqa: A002 - typer's name
    """A flag kept working for existing scripts but left out of --help: its value is a recipe key
    (`--set KEY=VALUE` or --config), listed by `memtune recipe`."""
    return typer.Option(*names, help=help, hidden=True, show_default=False, **kw)
