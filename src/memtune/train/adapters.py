"""The adapter registry: trained adapter dirs, their lineage, and whether they are stale.

An adapter is any directory holding ``memtune.json``. The registry scans the default
root (``.memtune/adapters`` or ``$MEMTUNE_ADAPTERS_DIR``) plus any roots given. An
adapter is *stale* when a guideline it learned has a newer version in the store, was
deleted, or was deactivated — it no longer knows the current memory.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from memtune.errors import InputError, NotFoundError

LINEAGE = "memtune.json"


def default_root() -> Path:
    return Path(os.environ.get("MEMTUNE_ADAPTERS_DIR", ".memtune/adapters"))


@dataclass
class AdapterInfo:
    path: Path
    name: str
    method: str
    base_model: str
    base_model_hash: str | None
    created_at: str | None
    created_ts: float
    metrics: dict[str, Any]
    guidelines: list[dict[str, Any]]
    dataset_fingerprint: str | None
    stale: bool | None = None
    """None = not checked (no store)."""
    stale_reasons: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["path"] = str(self.path)
        return d


def read_adapter(path: str | os.PathLike[str]) -> AdapterInfo:
    p = Path(path)
    f = p / LINEAGE
    if not f.is_file():
        raise NotFoundError(f"{p} is not a memtune adapter (no {LINEAGE})", hint="`memtune adapters list` shows them")
    try:
        info = json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{f}: not valid JSON ({exc.msg})") from exc
    base = info.get("base_model") or {}
    return AdapterInfo(
        path=p,
        name=p.name,
        method=info.get("method", "?"),
        base_model=base.get("name", "?"),
        base_model_hash=base.get("hash"),
        created_at=info.get("created_at"),
        created_ts=float(info.get("created_ts") or f.stat().st_mtime),
        metrics=info.get("metrics") or {},
        guidelines=info.get("guidelines") or [],
        dataset_fingerprint=(info.get("dataset") or {}).get("fingerprint"),
    )


def find_adapters(roots: list[str | os.PathLike[str]] | None = None) -> list[AdapterInfo]:
    """Adapters directly in, or one level below, each root (newest first)."""
    seen: set[Path] = set()
    found: list[AdapterInfo] = []
    for root in [default_root(), *(roots or [])]:
        r = Path(root)
        if not r.is_dir():
            continue
        for cand in [r, *sorted(c for c in r.iterdir() if c.is_dir())]:
            key = cand.resolve()
            if key in seen or not (cand / LINEAGE).is_file():
                continue
            seen.add(key)
            try:
                found.append(read_adapter(cand))
            except InputError:
                continue
    found.sort(key=lambda a: a.created_ts, reverse=True)
    return found


def latest_adapter(root: str | os.PathLike[str] | None = None) -> Path | None:
    adapters = find_adapters([root] if root else None)
    return adapters[0].path if adapters else None


def check_staleness(info: AdapterInfo, store: Any) -> AdapterInfo:
    """Compare the lineage's guideline versions with the store's current ones."""
    reasons: list[str] = []
    for g in info.guidelines:
        gid, ver = g.get("id"), g.get("version")
        if gid is None:
            continue
        try:
            cur = store.get(int(gid))
        except NotFoundError:
            reasons.append(f"guideline {gid} was deleted")
            continue
        if not cur.is_active:
            reasons.append(f"guideline {gid} ({cur.name}) was deactivated")
        elif ver is not None and cur.version != int(ver):
            reasons.append(f"guideline {gid} ({cur.name}) is at version {cur.version}, adapter learned {ver}")
    info.stale, info.stale_reasons = bool(reasons), reasons
    return info


def resolve_adapter(name_or_path: str, roots: list[str | os.PathLike[str]] | None = None) -> AdapterInfo:
    """A path, or the name of an adapter under one of the roots."""
    p = Path(name_or_path)
    if (p / LINEAGE).is_file():
        return read_adapter(p)
    matches = [a for a in find_adapters(roots) if a.name == name_or_path]
    if not matches:
        raise NotFoundError(f"no adapter {name_or_path!r}", hint="`memtune adapters list` shows them")
    return matches[0]


def remove_adapter(info: AdapterInfo) -> None:
    """Delete an adapter dir (only one that holds memtune.json: never an arbitrary folder)."""
    if not (info.path / LINEAGE).is_file():
        raise NotFoundError(f"{info.path} is not a memtune adapter")
    shutil.rmtree(info.path)
