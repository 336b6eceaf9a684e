"""How the MCP server's tools fail: one message saying what was wrong and how to fix it, no host path.

Split from :mod:`memtune.serve.mcp_server` (the tools themselves): the guard every tool runs
under, the text of a refused or crashed call, and the scrubbing of absolute paths.
"""

from __future__ import annotations

import functools
import logging
import re
import sqlite3
from pathlib import Path
from typing import Any

from memtune.errors import ConfigError, InputError, MemtuneError

logger = logging.getLogger("memtune.mcp")


def tool_error(message: str, hint: str | None) -> Exception:
    from mcp.server.mcpserver.exceptions import ToolError

    return ToolError(message + (f" (hint: {hint})" if hint else ""))


def make_guard(roots: list[tuple[Path, str]]):
    """Decorator: expected failures become tool errors that say what was wrong and how to fix it.

    memtune's own errors keep their message and hint; file-system and store failures are
    named as such; anything else is left to :func:`explain` (a crash). Paths are shown
    relative to the roots the server was given, never as the host's absolute paths.
    """

    def guard(fn):
        @functools.wraps(fn)
        def wrapper(*a: Any, **kw: Any) -> Any:
            try:
                return fn(*a, **kw)
            except MemtuneError as exc:
                fallback = "fix the value and call again" if isinstance(exc, (ConfigError, InputError)) else None
                raise tool_error(exc.message, exc.hint or fallback) from None
            except OSError as exc:
                where = f" {Path(exc.filename).name!r}" if exc.filename else ""
                raise tool_error(
                    f"could not read or write{where}: {exc.strerror or exc}",
                    "check that the export root and the store are writable and have free space, then try again",
                ) from None
            except sqlite3.Error as exc:
                raise tool_error(
                    f"the guideline store failed: {exc}",
                    "check that the server's --db is a memtune store it may read and write",
                ) from None
            except ValueError as exc:
                from pydantic import ValidationError

                if not isinstance(exc, ValidationError):
                    raise
                raise tool_error(f"invalid value: {_validation_text(exc)}", "fix the value and try again") from None

        return wrapper

    return guard


def _validation_text(exc: Any) -> str:
    """pydantic's errors as ``field: problem (got value)``, without its URLs and type tags."""
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err.get("loc", ())) or "arguments"
        got = err.get("input")
        shown = "" if isinstance(got, dict) else f" (got {_short(got)})"
        parts.append(f"{loc}: {err.get('msg', 'invalid')}{shown}")
    return "; ".join(parts)


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


# An absolute path (POSIX, ~/ or a Windows drive) that is not part of a URL or a relative path.
_ABS_PATH = re.compile(r"(?<![\w/.:~-])(?:~|[A-Za-z]:)?[/\\][^\s'\"`()<>\[\]{},;|]+")


def scrub_text(text: str, roots: list[tuple[Path, str]]) -> str:
    """``text`` with host paths made relative: under a known root as ``label/...``, elsewhere ``…/name``."""
    for root, label in roots:
        for form in {str(root), str(root.resolve())}:
            if form and form != "/":
                text = text.replace(form, label)

    def short(m: re.Match[str]) -> str:
        path = m.group(0)
        tail = ""
        while path and path[-1] in ".:":  # sentence punctuation after the path
            path, tail = path[:-1], path[-1] + tail
        name = re.split(r"[/\\]", path.rstrip("/\\"))[-1]
        return (f"…/{name}" if name else "…") + tail

    return _ABS_PATH.sub(short, text)


def explain(tool: str, exc: Exception, roots: list[tuple[Path, str]]) -> str:
    """The text of a failed call: what was wrong and how to fix it, never a host path.

    The MCP SDK reports every failure as "Error executing tool <name>", and a crash as
    nothing more; here an argument the schema refused names the field, and a crash
    names the tool and the exception type while its details go to the server's log.
    """
    from mcp.server.mcpserver.exceptions import UnexpectedToolError
    from pydantic import ValidationError

    cause = exc.__cause__
    if isinstance(exc, UnexpectedToolError):
        while isinstance(cause, UnexpectedToolError) and cause.__cause__ is not None:
            cause = cause.__cause__
        logger.error("tool %s crashed", tool, exc_info=cause or exc)
        kind = type(cause).__name__ if cause is not None else "error"
        return scrub_text(
            f"{tool} failed unexpectedly ({kind}); nothing in your arguments was found wrong. "
            "This is a bug in memtune: the server's log has the details (hint: report it with that log)",
            roots,
        )
    if isinstance(cause, ValidationError):
        text = f"{tool}: invalid arguments: {_validation_text(cause)} (hint: fix these and call again; " \
            "the tool's input schema says what each argument accepts)"
    else:
        text = str(exc)
        prefix = f"Error executing tool {tool}: "
        text = f"{tool}: " + (text[len(prefix):] if text.startswith(prefix) else text)
    logger.info("tool %s refused: %s", tool, text)
    return scrub_text(text, roots)
