"""Confine paths that remote callers choose (MCP tools) to one export root.

An agent talking to ``memtune mcp`` may be steered by prompt injection, so every
path it names is treated as hostile: relative paths are taken under the root,
``..`` is refused outright (even when it would land back inside), and the final
location is resolved through symlinks and must still be inside the root.
"""

from __future__ import annotations

import os
from pathlib import Path, PurePath

from memtune.errors import InputError

DEFAULT_EXPORT_ROOT = Path(".memtune") / "exports"
ENV_EXPORT_ROOT = "MEMTUNE_EXPORT_ROOT"


class PathRefused(InputError):
    """A caller-supplied path points outside the configured root."""


def export_root(value: str | os.PathLike[str] | None = None) -> Path:
    """``--export-root``, else ``$MEMTUNE_EXPORT_ROOT``, else ``./.memtune/exports`` (resolved, created)."""
    raw = value or os.environ.get(ENV_EXPORT_ROOT) or DEFAULT_EXPORT_ROOT
    root = Path(raw).expanduser()
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the export root {root}: {exc.strerror}",
            hint=f"pass a writable folder with --export-root or ${ENV_EXPORT_ROOT}",
        ) from exc
    return root.resolve()


def confine(path: str | None, root: Path, *, what: str = "output_path", allow_root: bool = True) -> Path:
    """The resolved location of ``path`` inside ``root``, or :class:`PathRefused`.

    Absolute paths are accepted only when they already lie inside the root. With
    ``allow_root=False`` the root itself is refused too (an export replaces its target
    folder, and must never replace the whole root).
    """
    root = root.resolve()
    if path is None or not str(path).strip():
        raise PathRefused(f"{what} is empty", hint=f"give a folder name relative to the export root {root}")
    text = str(path).strip()
    if "\x00" in text:
        raise PathRefused(f"{what} contains a NUL byte")
    if text.startswith("~"):
        raise PathRefused(
            f"{what} {text!r} starts with '~'; home-relative paths are not allowed",
            hint=f"give a folder name relative to the export root {root}",
        )
    parts = PurePath(text.replace("\\", "/")).parts
    if ".." in parts:
        raise PathRefused(
            f"{what} {text!r} contains '..'; paths may not climb out of the export root",
            hint=f"give a folder name relative to the export root {root}",
        )
    candidate = Path(text) if Path(text).is_absolute() else root / text
    # resolve() follows every symlink that already exists along the way (strict=False
    # keeps the not-yet-created tail), so a link pointing out is caught here.
    resolved = candidate.resolve()
    if resolved != root and not resolved.is_relative_to(root):
        if Path(text).is_absolute() and not _lexically_inside(candidate, root):
            why = "is an absolute path outside the export root"
        else:
            why = "leads outside the export root through a symbolic link"
        raise PathRefused(
            f"{what} {text!r} {why} ({root})",
            hint=f"use a path inside {root}, or start the server with --export-root pointing where you want files",
        )
    if resolved == root and not allow_root:
        raise PathRefused(
            f"{what} {text!r} is the export root itself; name a folder inside it",
            hint="e.g. output_path='my-bundle'",
        )
    return resolved


def _lexically_inside(p: Path, root: Path) -> bool:
    try:
        return Path(os.path.abspath(p)).is_relative_to(root)
    except ValueError:  # pragma: no cover - different drives on Windows
        return False


def display_path(p: Path, root: Path, label: str = "") -> str:
    """``p`` shown relative to ``root`` (prefixed with ``label/``) so replies never leak host paths."""
    try:
        rel = p.resolve().relative_to(root.resolve())
    except ValueError:
        return (label + "/" if label else "") + p.name
    rel_s = "." if str(rel) == "." else rel.as_posix()
    return f"{label}/{rel_s}" if label else rel_s
