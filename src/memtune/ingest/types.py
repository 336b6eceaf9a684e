"""Data passed between ingestion steps: discover → read text → redact → parse → dedup → store."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# Every kind of agent-memory file memtune knows how to read.
KINDS = (
    "memory",  # memory.md / MEMORY.md / .cursor/memory/*.md
    "cursor-rule",  # .cursor/rules/**/*.mdc
    "cursorrules",  # .cursorrules (legacy single file)
    "claude",  # CLAUDE.md, .claude/CLAUDE.md, .claude/rules/*.md
    "claude-memory",  # .claude/memory/* (frontmatter name/description/type)
    "agents",  # AGENTS.md at any depth
    "memory-bank",  # Cline memory-bank/*.md
    "clinerules",  # .clinerules file or folder
    "copilot",  # .github/copilot-instructions.md, .github/instructions/*.instructions.md
    "windsurf",  # .windsurfrules, .windsurf/rules/*.md
    "markdown",  # anything else forced with --kind markdown
)


@dataclass
class MemoryFile:
    """A file found by discovery. ``rel`` is the path shown to users and stored as source."""

    path: Path
    kind: str
    rel: str
    imported_from: str | None = None  # CLAUDE.md that pulled this file in with @path


@dataclass
class SkippedFile:
    path: str
    reason: str


@dataclass
class RuleDraft:
    """One rule found in a file, before it is deduplicated and stored."""

    name: str
    content: str
    line: int  # 1-based line in the source file where the rule starts
    category: str = "general"
    priority: int = 50
    tags: list[str] = field(default_factory=list)
    rationale: str | None = None
    examples: dict[str, list[str]] = field(default_factory=lambda: {"good": [], "bad": []})
    metadata: dict[str, Any] = field(default_factory=dict)
    section: list[str] = field(default_factory=list)  # heading path above the rule


@dataclass
class ParsedFile:
    file: MemoryFile
    rules: list[RuleDraft]
    warnings: list[str] = field(default_factory=list)
