"""Find the files coding agents keep their memory in.

Given directories and/or files, return every agent-memory file once, in a deterministic
order, with its kind and the path users will see (``rel``); and every file that looked
like memory but cannot be used, with the reason. CLAUDE.md ``@path`` imports are
followed here (not in the parser) because they add *files*, and a file reached twice
(discovered and imported, or imported from two places) must still be read once.
"""

from __future__ import annotations

import os
import re
from collections import deque
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from memtune.errors import InputError
from memtune.ingest.textio import MAX_FILE_BYTES, UnreadableFile, probe_file, read_memory_bytes
from memtune.ingest.types import KINDS, MemoryFile, SkippedFile

#: Directory names never descended into: VCS metadata, dependencies, build output,
#: caches. Agent-memory files inside them belong to other projects.
EXCLUDED_DIRS = frozenset(
    {
        ".git", ".hg", ".svn", ".bzr", "_darcs", "CVS", ".jj", ".pijul", ".fossil",
        "node_modules", "bower_components", "jspm_packages", ".pnpm-store", ".yarn",
        "vendor", "third_party", "Pods", "site-packages", ".venv", "venv", ".tox",
        ".nox", ".eggs", "__pycache__", ".mypy_cache", ".pytest_cache", ".ruff_cache",
        ".hypothesis", "dist", "build", ".next", ".nuxt", ".svelte-kit", ".turbo",
        ".gradle", ".terraform", ".cache", ".memtune",
    }
)  # fmt: skip

_TEXT_SUFFIXES = (".md", ".txt")
_CANDIDATE_SUFFIXES = (".md", ".mdc", ".txt")
_DOTFILES = frozenset({".cursorrules", ".clinerules", ".windsurfrules"})

# Folders whose contents are agent memory; a symlink to one of them leaving the tree is
# worth a line in the skip report (other symlinked folders are skipped silently).
_MEMORY_DIRS = frozenset({".cursor", ".claude", ".clinerules", ".windsurf", ".github", "memory-bank"})


def _memory_dir(path: PurePosixPath) -> bool:
    return any(part in _MEMORY_DIRS for part in path.parts)


def kind_for(path: Path, root: Path) -> str | None:
    """The kind of agent-memory file ``path`` is, judged from its name and folders; None if none.

    ``root`` is the tree being ingested: a file under an excluded folder (relative to
    the root) is not memory. Folders above the root count too, so ``ingest .cursor/rules``
    still knows its ``.mdc`` files are Cursor rules.
    """
    abs_path = Path(os.path.abspath(path))
    try:
        rel_dirs = abs_path.relative_to(os.path.abspath(root)).parts[:-1]
    except ValueError:
        rel_dirs = ()
    if any(d in EXCLUDED_DIRS for d in rel_dirs):
        return None
    name = abs_path.name
    lower = name.lower()
    dirs = abs_path.parts[:-1]
    parent = dirs[-1] if dirs else ""

    def under(*seq: str) -> bool:
        """True when the folders ``seq`` appear, in order and adjacent, above the file."""
        n = len(seq)
        return any(tuple(dirs[i : i + n]) == seq for i in range(len(dirs) - n + 1))

    # Folder-based kinds first: they are more specific than file names.
    if under(".cursor", "rules") and lower.endswith(".mdc"):
        return "cursor-rule"
    if under(".cursor", "memory") and lower.endswith(".md"):
        return "memory"
    if under(".claude", "memory") and lower.endswith(".md"):
        return "claude-memory"
    if under(".claude", "rules") and lower.endswith(".md"):
        return "claude"
    if under(".clinerules") and lower.endswith(_TEXT_SUFFIXES):
        return "clinerules"
    if under(".github", "instructions") and lower.endswith(".instructions.md"):
        return "copilot"
    if under(".windsurf", "rules") and lower.endswith(".md"):
        return "windsurf"
    if "memory-bank" in dirs and lower.endswith(".md"):
        return "memory-bank"
    if name == "copilot-instructions.md" and parent == ".github":
        return "copilot"
    # Name-based kinds.
    if lower == "memory.md":
        return "memory"
    if name in ("CLAUDE.md", "CLAUDE.local.md"):
        return "claude"
    if name in ("AGENTS.md", "AGENTS.override.md"):
        return "agents"
    if name == ".cursorrules":
        return "cursorrules"
    if name == ".clinerules":
        return "clinerules"
    if name == ".windsurfrules":
        return "windsurf"
    return None


@dataclass
class _Root:
    """One path the user gave: the tree imports must stay in, and how to show paths in it."""

    base: Path  # directory that rel paths are relative to
    real: Path  # its resolved form, for "inside the tree" checks
    prefix: PurePosixPath | None  # shown before rel paths (single files: the parent as given)

    def rel(self, path: Path) -> str:
        rel = Path(os.path.relpath(os.path.abspath(path), os.path.abspath(self.base))).as_posix()
        return (self.prefix / rel).as_posix() if self.prefix else rel

    def contains(self, real: Path) -> bool:
        return real == self.real or self.real in real.parents


class _Collector:
    """Accumulates results, keeping each real file once."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self.files: list[tuple[int, MemoryFile]] = []
        self.skipped: list[tuple[int, SkippedFile]] = []
        self.by_real: dict[Path, MemoryFile] = {}
        self.skipped_keys: set[tuple[str, str]] = set()
        self.claude_aliases: set[Path] = set()

    def skip(self, order: int, path: str, reason: str) -> None:
        if (path, reason) not in self.skipped_keys:
            self.skipped_keys.add((path, reason))
            self.skipped.append((order, SkippedFile(path=path, reason=reason)))

    def add(
        self, order: int, path: Path, kind: str, rel: str, imported_from: str | None = None
    ) -> MemoryFile | None:
        """Add a file unless it was already taken or cannot be read; returns the entry."""
        real = Path(os.path.realpath(path))
        if real in self.by_real:
            if kind == "claude":  # CLAUDE.md -> AGENTS.md: Claude reads it, so follow its imports
                self.claude_aliases.add(real)
            return None
        reason = probe_file(path, max_bytes=self.max_bytes)
        if reason:
            self.skip(order, rel, reason)
            return None
        entry = MemoryFile(path=path, kind=kind, rel=rel, imported_from=imported_from)
        self.by_real[real] = entry
        self.files.append((order, entry))
        return entry


def _is_virtualenv(path: Path) -> bool:
    """Whether ``path`` holds a virtualenv; a folder that cannot be looked into is not one
    (the walk then reports it as an unreadable directory)."""
    try:
        return (path / "pyvenv.cfg").exists()
    except OSError:
        return False


def _walk(root: _Root, order: int, out: _Collector) -> None:
    """Walk a directory, pruning excluded and virtualenv folders and never leaving the tree."""
    found: list[tuple[str, Path, str]] = []

    def onerror(exc: OSError) -> None:
        where = root.rel(Path(exc.filename)) if exc.filename else str(root.base)
        out.skip(order, where, f"unreadable directory ({exc.strerror or exc})")

    for dirpath, dirnames, filenames in os.walk(root.base, onerror=onerror, followlinks=False):
        here = Path(dirpath)
        keep = []
        for d in sorted(dirnames):
            sub = here / d
            if d in EXCLUDED_DIRS or _is_virtualenv(sub):
                continue
            if sub.is_symlink():
                # Never followed: outside the tree it leaves the project, inside it is a
                # second route to files the walk reaches anyway (and maybe a loop).
                target = Path(os.path.realpath(sub))
                if not root.contains(target) and _memory_dir(PurePosixPath(root.rel(sub))):
                    out.skip(order, root.rel(sub), "symlinked directory outside the tree (not followed)")
                continue
            keep.append(d)
        dirnames[:] = keep
        for f in sorted(filenames):
            if not f.lower().endswith(_CANDIDATE_SUFFIXES) and f not in _DOTFILES:
                continue  # cheap filter: most files in a tree are code
            path = here / f
            kind = kind_for(path, root.base)
            if kind is None:
                continue
            found.append((root.rel(path), path, kind))

    # Real files before symlinks, so a link to an in-tree file never hides the file itself.
    for rel, path, kind in sorted(found, key=lambda t: (t[1].is_symlink(), t[0])):
        if path.is_symlink():
            target = Path(os.path.realpath(path))
            if not target.exists():
                out.skip(order, rel, "broken symlink")
                continue
            if not root.contains(target):
                out.skip(order, rel, "symlink to a file outside the tree (not followed)")
                continue
        out.add(order, path, kind, rel)


# --- @path imports ------------------------------------------------------------------

_FENCE_RE = re.compile(r"^ {0,3}(`{3,}|~{3,})")
_CODE_SPAN_RE = re.compile(r"(`+)(?:(?!\1).)+?\1")
_HTML_COMMENT_RE = re.compile(r"<!--.*?-->", re.S)
# "@" at the start of a token (not inside an email address or word), then a path.
_IMPORT_RE = re.compile(r"(?<![\w.@/+-])@([^\s`'\"<>()\[\]{},;|*]+)")
_TRAILING_PUNCT = ".,:;!?"
# A missing target is reported only when it clearly names a file; "@alice",
# "@pytest.fixture" or "@types/node" in prose are not meant as imports.
_FILE_LIKE_RE = re.compile(r"^(?:~|\.{0,2}/)|\.(?:md|mdc|markdown|txt|rst|json|ya?ml|toml)$", re.I)


def find_imports(text: str) -> list[tuple[int, str]]:
    """``(line, target)`` for each ``@path`` import in CLAUDE.md text.

    Skips fenced code blocks, inline code spans and HTML comments (Claude Code does the
    same), and ``@`` inside email addresses or words.
    """
    text = _HTML_COMMENT_RE.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    found: list[tuple[int, str]] = []
    fence: str | None = None
    for lineno, line in enumerate(text.split("\n"), start=1):
        m = _FENCE_RE.match(line)
        if fence is not None:
            # A closing fence: same character, at least as long, nothing after it.
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                if not line[m.end() :].strip():
                    fence = None
            continue
        if m:
            fence = m.group(1)
            continue
        if "@" not in line:
            continue
        line = _CODE_SPAN_RE.sub(lambda s: " " * len(s.group(0)), line)
        for im in _IMPORT_RE.finditer(line):
            target = im.group(1).rstrip(_TRAILING_PUNCT)
            if target:
                found.append((lineno, target))
    return found


def _follow_imports(roots: list[_Root], out: _Collector, max_depth: int) -> None:
    """Breadth-first over @imports from every claude file, each file read for imports once."""
    queue: deque[tuple[int, MemoryFile, int]] = deque(
        (o, e, 0)
        for o, e in out.files
        if e.kind == "claude" or Path(os.path.realpath(e.path)) in out.claude_aliases
    )
    scanned: set[Path] = set()
    root_of: dict[int, _Root] = dict(enumerate(roots))
    while queue:
        order, entry, depth = queue.popleft()
        real = Path(os.path.realpath(entry.path))
        if real in scanned:
            continue
        scanned.add(real)
        try:
            text = read_memory_bytes(entry.path, max_bytes=out.max_bytes).text
        except UnreadableFile as exc:
            if entry.imported_from is None:
                out.skip(order, entry.rel, exc.reason)
                out.files = [(o, e) for o, e in out.files if e is not entry]
                out.by_real.pop(real, None)
            continue
        root = root_of[order]
        for line, target in find_imports(text):
            where = f"@{target} in {entry.rel}:{line}"
            if target.startswith("~"):
                out.skip(order, target, f"import from the home directory, outside the ingested tree ({where})")
                continue
            candidate = Path(target) if os.path.isabs(target) else entry.path.parent / target
            try:
                exists = candidate.exists()
                target_real = Path(os.path.realpath(candidate))
            except (OSError, ValueError):
                exists = False
            if not exists:
                if _FILE_LIKE_RE.search(target):
                    shown = root.rel(candidate) if not os.path.isabs(target) else target
                    out.skip(order, shown, f"import target not found ({where})")
                continue
            if not root.contains(target_real):
                out.skip(order, target, f"import target is outside the ingested tree ({where})")
                continue
            if candidate.is_dir():
                out.skip(order, root.rel(candidate), f"import target is a directory ({where})")
                continue
            existing = out.by_real.get(target_real)
            if existing is None:
                if depth + 1 > max_depth:
                    reason = f"import depth limit ({max_depth}) reached ({where})"
                    out.skip(order, root.rel(candidate), reason)
                    continue
                existing = out.add(order, candidate, "claude", root.rel(candidate), imported_from=entry.rel)
            if existing is not None and target_real not in scanned and depth + 1 <= max_depth:
                queue.append((order, existing, depth + 1))


# --- entry point ------------------------------------------------------------------------


def discover(
    paths: list[Path],
    *,
    kind: str | None = None,
    max_import_depth: int = 5,
    max_bytes: int = MAX_FILE_BYTES,
) -> tuple[list[MemoryFile], list[SkippedFile]]:
    """Every agent-memory file under ``paths`` once, and every file skipped with its reason.

    Directories are walked; files given explicitly are always taken (``kind`` forces the
    reader for them). Output order is the order of ``paths``, then by ``rel``.
    """
    if kind is not None and kind not in KINDS:
        raise InputError(
            f"unknown kind {kind!r}",
            hint="use one of: " + ", ".join(KINDS),
        )
    if max_import_depth < 0:
        raise InputError(f"max_import_depth must be >= 0, got {max_import_depth}")
    given = [Path(p) for p in paths]
    missing = [str(p) for p in given if not p.exists() and not p.is_symlink()]
    if missing:
        raise InputError(
            "no such file or directory: " + ", ".join(missing),
            hint="check the path (it is resolved from the current directory)",
        )
    if kind is not None:
        dirs = [str(p) for p in given if p.is_dir()]
        if dirs:
            raise InputError(
                f"kind (--kind) applies to single files, but {', '.join(dirs)} is a directory",
                hint="drop --kind to let memtune recognise each file in the directory, "
                "or pass the file itself",
            )

    out = _Collector(max_bytes)
    roots: list[_Root] = []
    for order, p in enumerate(given):
        if p.is_dir():
            root = _Root(base=p, real=Path(os.path.realpath(p)), prefix=None)
            roots.append(root)
            _walk(root, order, out)
        else:
            parent = p.parent
            prefix = PurePosixPath(parent.as_posix()) if str(parent) not in ("", ".") else None
            root = _Root(base=parent, real=Path(os.path.realpath(parent)), prefix=prefix)
            roots.append(root)
            rel = p.as_posix()
            if p.is_symlink() and not p.exists():
                out.skip(order, rel, "broken symlink")
                continue
            file_kind = kind or kind_for(p, parent) or "markdown"
            out.add(order, p, file_kind, rel)

    _follow_imports(roots, out, max_import_depth)

    files = [e for _, e in sorted(out.files, key=lambda oe: (oe[0], oe[1].rel))]
    skipped = [s for _, s in sorted(out.skipped, key=lambda os_: (os_[0], os_[1].path, os_[1].reason))]
    return files, skipped
