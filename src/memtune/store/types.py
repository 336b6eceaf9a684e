"""Plain data objects that cross the store boundary (no SQLAlchemy leaks out)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

from memtune.errors import ConfigError

SCOPE_TYPES = ("global", "org", "project", "session")
DEFAULT_PRIORITY = 50


@dataclass
class Source:
    """Where a guideline's text was found."""

    file: str
    line: int | None = None
    kind: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "kind": self.kind}


@dataclass
class GuidelineInput:
    """Everything needed to create a guideline or add a version to it.

    Ingestion produces these; ``memtune guidelines add`` and ``memtune import`` too.
    """

    name: str
    content: str
    category: str = "general"
    priority: int = DEFAULT_PRIORITY
    scope_type: str = "project"
    scope_id: str | None = None
    tags: list[str] = field(default_factory=list)
    rationale: str | None = None
    examples: dict[str, list[str]] = field(default_factory=lambda: {"good": [], "bad": []})
    source: Source | None = None
    extra_sources: list[Source] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    is_active: bool = True
    change_reason: str | None = None

    def content_hash(self) -> str:
        return content_hash(self.content, self.rationale, self.examples)


def content_hash(content: str, rationale: str | None, examples: dict[str, list[str]] | None) -> str:
    """Hash of what a version *says* (not where it came from): equal hash = no new version."""
    payload = json.dumps(
        {
            "content": content.strip(),
            "rationale": (rationale or "").strip(),
            "examples": {k: list(v) for k, v in sorted((examples or {}).items()) if v},
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


@dataclass
class GuidelineVersion:
    version: int
    content: str
    rationale: str | None
    examples: dict[str, list[str]]
    source_file: str | None
    source_line: int | None
    source_kind: str | None
    content_hash: str
    change_reason: str | None
    created_at: datetime


@dataclass
class Guideline:
    """A guideline with its current version's text flattened in for convenience."""

    id: int
    scope_type: str
    scope_id: str | None
    name: str
    category: str
    priority: int
    is_active: bool
    tags: list[str]
    metadata: dict[str, Any]
    version: int
    content: str
    rationale: str | None
    examples: dict[str, list[str]]
    content_hash: str
    sources: list[Source]
    created_at: datetime
    updated_at: datetime
    versions: list[GuidelineVersion] | None = None

    def to_dict(self, *, with_versions: bool = False) -> dict[str, Any]:
        """The export layout (seed 004's guideline fields, snake_case)."""
        d = asdict(self)
        d["created_at"] = self.created_at.isoformat()
        d["updated_at"] = self.updated_at.isoformat()
        d["sources"] = [s.as_dict() for s in self.sources]
        if with_versions and self.versions is not None:
            d["versions"] = [
                {**asdict(v), "created_at": v.created_at.isoformat()} for v in self.versions
            ]
        else:
            d.pop("versions", None)
        return d


@dataclass
class GuidelineFilter:
    """Which guidelines a query, export or training run works on. ``None`` = no constraint."""

    scope_type: str | None = None
    scope_id: str | None = None
    category: str | list[str] | None = None
    priority_min: int | None = None
    priority_max: int | None = None
    tags: list[str] | None = None
    tags_mode: str = "any"  # any | all
    active_only: bool = True

    def problems(self) -> list[str]:
        out: list[str] = []
        if self.scope_type is not None and self.scope_type not in SCOPE_TYPES:
            out.append(f"scope type {self.scope_type!r} is not one of {', '.join(SCOPE_TYPES)}")
        if self.scope_id is not None and self.scope_type is None:
            out.append("a scope id needs a scope type (e.g. --scope project --scope-id myrepo)")
        for label, v in (("priority min", self.priority_min), ("priority max", self.priority_max)):
            if v is not None and not 0 <= v <= 100:
                out.append(f"{label} {v} is outside 0..100")
        if (
            self.priority_min is not None
            and self.priority_max is not None
            and self.priority_min > self.priority_max
        ):
            out.append(f"priority min {self.priority_min} is above priority max {self.priority_max}")
        if self.tags_mode not in ("any", "all"):
            out.append(f"tags mode {self.tags_mode!r} must be 'any' or 'all'")
        return out


def build_filter(
    scope: str | None = None,
    scope_id: str | None = None,
    category: list[str] | None = None,
    priority_min: int | None = None,
    priority_max: int | None = None,
    tag: list[str] | None = None,
    tags_mode: str = "any",
    include_inactive: bool = False,
) -> GuidelineFilter:
    """A checked GuidelineFilter from command-line style options (CLI list/search/dump and the
    MCP tools); every problem is raised at once as a ConfigError."""
    f = GuidelineFilter(
        scope_type=scope,
        scope_id=scope_id,
        category=category or None,
        priority_min=priority_min,
        priority_max=priority_max,
        tags=tag or None,
        tags_mode=tags_mode,
        active_only=not include_inactive,
    )
    problems = f.problems()
    if problems:
        raise ConfigError(problems)
    return f


@dataclass
class UpsertResult:
    """What happened to one input: added | updated | unchanged | merged."""

    action: str
    guideline_id: int
    version: int
