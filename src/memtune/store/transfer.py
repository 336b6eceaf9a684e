"""Import and dump guidelines as JSON, JSONL or YAML (seed 004's guideline fields, snake_case).

A dump with versions can be imported into an empty store and reproduces the same
history: versions are replayed in order.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

import yaml

from memtune.errors import InputError
from memtune.store.redact import redact_input
from memtune.store.store import GuidelineStore
from memtune.store.types import SCOPE_TYPES, GuidelineFilter, GuidelineInput, Source

FORMATS = ("json", "jsonl", "yaml")
_ALIASES = {
    "scopeType": "scope_type",
    "scopeId": "scope_id",
    "isActive": "is_active",
    "guidelineName": "name",
    "changeReason": "change_reason",
}


def format_for(path: Path, explicit: str | None = None) -> str:
    fmt = (explicit or path.suffix.lstrip(".")).lower()
    fmt = {"yml": "yaml", "ndjson": "jsonl"}.get(fmt, fmt)
    if fmt not in FORMATS:
        raise InputError(
            f"cannot tell the format of {path} (suffix {path.suffix!r})",
            hint=f"name it .json, .jsonl or .yaml, or pass --format {'|'.join(FORMATS)}",
        )
    return fmt


def dump(
    store: GuidelineStore, out: IO[str], fmt: str = "json", f: GuidelineFilter | None = None, *, versions: bool = False
) -> int:
    """Write every guideline matching ``f`` to ``out``; returns the count."""
    f = f or GuidelineFilter(active_only=False)
    n = 0
    if fmt == "jsonl":
        for g in store.iter_guidelines(f):
            full = store.get(g.id, with_versions=True) if versions else g
            out.write(json.dumps(full.to_dict(with_versions=versions), ensure_ascii=False) + "\n")
            n += 1
        return n
    items = []
    for g in store.iter_guidelines(f):
        full = store.get(g.id, with_versions=True) if versions else g
        items.append(full.to_dict(with_versions=versions))
    if fmt == "json":
        out.write(json.dumps(items, indent=2, ensure_ascii=False) + "\n")
    else:
        yaml.safe_dump(items, out, allow_unicode=True, sort_keys=False)
    return len(items)


def _records(path: Path, fmt: str) -> Iterator[tuple[str, Any]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError as exc:
        raise InputError(f"{path} does not exist") from exc
    except UnicodeDecodeError as exc:
        raise InputError(f"{path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
    if fmt == "jsonl":
        for i, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                yield f"{path}:{i}", json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputError(f"{path}:{i}: invalid JSON: {exc.msg} (column {exc.colno})") from exc
        return
    try:
        data = json.loads(text) if fmt == "json" else yaml.safe_load(text)
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}:{exc.lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        raise InputError(f"{where}: invalid YAML: {getattr(exc, 'problem', exc)}") from exc
    if isinstance(data, dict) and "guidelines" in data:
        data = data["guidelines"]
    if not isinstance(data, list):
        raise InputError(f"{path}: expected a list of guidelines (or {{guidelines: [...]}}), got {type(data).__name__}")
    for i, rec in enumerate(data):
        yield f"{path} item {i + 1}", rec


def _to_inputs(where: str, rec: Any, problems: list[str], redacted: list[str]) -> list[GuidelineInput]:
    if not isinstance(rec, dict):
        problems.append(f"{where}: expected an object, got {type(rec).__name__}")
        return []
    rec = {_ALIASES.get(k, k): v for k, v in rec.items()}
    base: dict[str, Any] = {
        "name": rec.get("name"),
        "category": rec.get("category") or "general",
        "priority": rec.get("priority", 50),
        "scope_type": rec.get("scope_type") or "project",
        "scope_id": rec.get("scope_id"),
        "tags": rec.get("tags") or [],
        "is_active": bool(rec.get("is_active", True)),
        "metadata": rec.get("metadata") or {},
    }
    before = len(problems)
    if not isinstance(base["name"], str) or not base["name"].strip():
        problems.append(f"{where}: 'name' is missing or empty")
    if base["scope_type"] not in SCOPE_TYPES:
        problems.append(f"{where}: scope_type {base['scope_type']!r} is not one of {', '.join(SCOPE_TYPES)}")
    if not isinstance(base["priority"], int) or not 0 <= base["priority"] <= 100:
        problems.append(f"{where}: priority {base['priority']!r} must be an integer 0..100")
    if not isinstance(base["tags"], list) or not all(isinstance(t, str) for t in base["tags"]):
        problems.append(f"{where}: tags must be a list of strings")
    versions = rec.get("versions") or [rec]
    out = []
    for v in versions:
        content = v.get("content") if isinstance(v, dict) else None
        if not isinstance(content, str) or not content.strip():
            problems.append(f"{where}: 'content' is missing or empty")
            break
        ex = v.get("examples") or {}
        if not isinstance(ex, dict):
            problems.append(f"{where}: examples must be {{good: [...], bad: [...]}}")
            break
        src = None
        if v.get("source_file"):
            src = Source(v["source_file"], v.get("source_line"), v.get("source_kind"))
        extra = [Source(s["file"], s.get("line"), s.get("kind")) for s in rec.get("sources") or [] if isinstance(s, dict) and s.get("file")]
        inp, hits = redact_input(
            GuidelineInput(
                **base,
                content=content,
                rationale=v.get("rationale"),
                examples={"good": list(ex.get("good") or []), "bad": list(ex.get("bad") or [])},
                source=src,
                extra_sources=extra,
                change_reason=v.get("change_reason") or "imported",
            )
        )
        # A dump with history carries every version: each one is redacted, not just the last.
        # Name, tags and metadata belong to the record, so they are reported once, not per version.
        shared = ("name", "tags", "metadata")
        redacted.extend(f"{where}: {h.describe()}" for h in hits if not out or not h.field.startswith(shared))
        out.append(inp)
    return out if len(problems) == before else []


def import_file(
    store: GuidelineStore, path: Path, fmt: str | None = None, *, redacted: list[str] | None = None
) -> dict[str, int]:
    """Validate every record first (one error listing all problems), then write in one transaction.

    Secrets in any text field (every version's) are redacted before anything is written; the
    counts then include ``secrets_redacted``, and ``redacted`` (if given) receives one
    "<file item N>: <type> in <field>" line per value removed — never the value.
    """
    path = Path(path)
    fmt = format_for(path, fmt)
    problems: list[str] = []
    batches: list[list[GuidelineInput]] = []
    hits: list[str] = []
    for where, rec in _records(path, fmt):
        batches.append(_to_inputs(where, rec, problems, hits))
    if problems:
        shown = problems[:50]
        more = f"\n  … and {len(problems) - 50} more" if len(problems) > 50 else ""
        raise InputError(
            f"{len(problems)} problem(s) in {path}; nothing was imported:\n"
            + "\n".join(f"  - {p}" for p in shown)
            + more
        )
    counts = {"added": 0, "updated": 0, "unchanged": 0}
    with store.transaction():
        for inputs in batches:
            if inputs and store.get_by_name(inputs[0].name, inputs[0].scope_type, inputs[0].scope_id):
                inputs = inputs[-1:]  # history replays only into a new guideline
            actions = [store.upsert(i).action for i in inputs]
            if actions:
                counts[_summarise(actions)] += 1
            last = inputs[-1] if inputs else None
            if last is not None and not last.is_active:
                g = store.get_by_name(last.name, last.scope_type, last.scope_id)
                if g is not None:
                    store.set_active(g.id, False)
    if hits:
        counts["secrets_redacted"] = len(hits)
        if redacted is not None:
            redacted.extend(hits)
    return counts


def _summarise(actions: Iterable[str]) -> str:
    acts = list(actions)
    if acts[0] == "added":
        return "added"
    return "updated" if "updated" in acts else "unchanged"
