"""``ingest``: files on disk → redacted, parsed, deduplicated guidelines in the store.

Reading and parsing happen first, outside any transaction; all writes then happen in
one transaction, so a crash mid-run leaves the store exactly as it was.
"""

from __future__ import annotations

import itertools
import os
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from memtune.errors import InputError
from memtune.ingest.dedup import MergedRule, merge_duplicates
from memtune.ingest.discover import discover
from memtune.ingest.readers import parse_memory_text
from memtune.ingest.textio import read_memory_bytes
from memtune.ingest.types import MemoryFile, RuleDraft, SkippedFile
from memtune.secrets import SecretFinding, redact_secrets
from memtune.store import GuidelineInput, GuidelineStore, Source
from memtune.store.store import ScopeIndex
from memtune.store.normalize import normalized_hash
from memtune.store.types import SCOPE_TYPES

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)


@dataclass
class IngestReport:
    """What one ingest run did. Secret findings carry file/line/type, never values."""

    db: str
    scope_type: str
    scope_id: str | None
    run_id: int | None = None
    files_by_kind: Counter[str] = field(default_factory=Counter)
    rules_found: int = 0
    added: int = 0
    updated: int = 0
    unchanged: int = 0
    merged: int = 0
    secrets: list[SecretFinding] = field(default_factory=list)
    skipped: list[SkippedFile] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    guideline_ids: list[int] = field(default_factory=list)
    dry_run: bool = False

    @property
    def files_read(self) -> int:
        return sum(self.files_by_kind.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "db": self.db,
            "scope": {"type": self.scope_type, "id": self.scope_id},
            "run_id": self.run_id,
            "dry_run": self.dry_run,
            "files_read": self.files_read,
            "files_by_kind": dict(sorted(self.files_by_kind.items())),
            "rules_found": self.rules_found,
            "guidelines": {
                "added": self.added,
                "updated": self.updated,
                "unchanged": self.unchanged,
                "merged": self.merged,
            },
            "secrets_redacted": [
                {"file": s.file, "line": s.line, "type": s.type} for s in self.secrets
            ],
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "warnings": list(self.warnings),
        }


def default_scope_id(paths: Sequence[Path]) -> str:
    """The project a run belongs to: the first directory's name (or a file's parent's)."""
    p = Path(paths[0]).expanduser().resolve()
    return (p if p.is_dir() else p.parent).name or "default"


def read_files(
    files: list[MemoryFile], report: IngestReport, progress: ProgressFn | None = None
) -> list[tuple[MemoryFile, RuleDraft]]:
    """Decode, redact and parse each file. Unreadable files become ``report.skipped``."""
    items: list[tuple[MemoryFile, RuleDraft]] = []
    for i, mf in enumerate(files):
        try:
            decoded = read_memory_bytes(mf.path, name=mf.rel)
        except InputError as exc:
            report.skipped.append(SkippedFile(mf.rel, getattr(exc, "reason", None) or exc.message))
            continue
        except OSError as exc:
            report.skipped.append(SkippedFile(mf.rel, f"cannot read: {exc.strerror or exc}"))
            continue
        report.warnings.extend(decoded.warnings)
        text, findings = redact_secrets(decoded.text, mf.rel)
        report.secrets.extend(findings)
        parsed = parse_memory_text(text, mf)
        report.warnings.extend(parsed.warnings)
        report.files_by_kind[mf.kind] += 1
        items.extend((mf, r) for r in parsed.rules)
        if progress:
            progress("read", i + 1, len(files))
    report.rules_found = len(items)
    return items


def _to_input(rule: MergedRule, scope_type: str, scope_id: str | None, name: str) -> GuidelineInput:
    d, mf = rule.draft, rule.file
    kinds = sorted({mf.kind, *(f.kind for f, _ in rule.duplicates)})
    meta = dict(d.metadata)
    meta["kinds"] = kinds
    if d.section:
        meta["section"] = d.section
    if mf.imported_from:
        meta["imported_from"] = mf.imported_from
    return GuidelineInput(
        name=name,
        content=d.content,
        category=d.category,
        priority=d.priority,
        scope_type=scope_type,
        scope_id=scope_id,
        tags=sorted(set(d.tags)),
        rationale=d.rationale,
        examples={"good": list(d.examples.get("good", [])), "bad": list(d.examples.get("bad", []))},
        source=Source(mf.rel, d.line, mf.kind),
        extra_sources=[Source(f.rel, dd.line, f.kind) for f, dd in rule.duplicates],
        metadata=meta,
    )


def _unique_name(idx: ScopeIndex, inp: GuidelineInput, used: set[str]) -> str:
    """Keep names unique per scope without letting one file's rule overwrite another's.

    A name already held by a guideline that came from a *different* file gets the
    file appended, so two files' "Testing" sections stay two guidelines.
    """
    name = inp.name.strip()[:250]
    src = inp.source.file if inp.source else None
    candidates = itertools.chain(
        [name, f"{name} ({src})" if src else name], (f"{name} ({src}) #{n}" for n in range(2, 10_000))
    )
    for cand in candidates:
        if cand in used:
            continue
        existing = idx.by_name.get(cand)
        if existing is None or src in existing.sources:
            used.add(cand)
            return cand
    raise InputError(f"cannot find a unique name for rule {name!r} in {src}")


def write_rules(
    store: GuidelineStore,
    rules: list[MergedRule],
    report: IngestReport,
    progress: ProgressFn | None = None,
) -> None:
    """Decide added / updated / unchanged / merged per rule, then write.

    Decisions use an in-memory index of the scope; new guidelines are inserted in
    bulk, the (rarer) updates and extra sources one by one.
    """
    idx = store.scope_index(report.scope_type, report.scope_id)
    used: set[str] = set()
    new: list[GuidelineInput] = []
    for i, rule in enumerate(rules):
        inp = _to_input(rule, report.scope_type, report.scope_id, rule.draft.name)
        srcs = [s for s in [inp.source, *inp.extra_sources] if s is not None]
        report.merged += len({f.path for f, _ in rule.duplicates} - {rule.file.path})
        same_text = idx.by_norm.get(normalized_hash(inp.content))
        if same_text is not None and same_text not in used and same_text != inp.name:
            # the same text is already stored under another name: record this source only
            existing = idx.by_name[same_text]
            fresh = [s for s in srcs if existing.sources.get(s.file, -1) != s.line]
            if any(s.file not in existing.sources for s in srcs):
                report.merged += 1
            else:
                report.unchanged += 1
            for s in fresh:
                store.add_source(existing.id, s)
                existing.sources[s.file] = s.line
            used.add(same_text)
            report.guideline_ids.append(existing.id)
            continue
        inp.name = _unique_name(idx, inp, used)
        existing = idx.by_name.get(inp.name)
        if existing is None:
            new.append(inp)
            continue
        if existing.content_hash == inp.content_hash():
            report.unchanged += 1
            fresh = [s for s in srcs if existing.sources.get(s.file, -1) != s.line]
            for s in fresh:
                store.add_source(existing.id, s)
            report.guideline_ids.append(existing.id)
        else:
            res = store.upsert(inp)
            setattr(report, res.action, getattr(report, res.action) + 1)
            report.guideline_ids.append(res.guideline_id)
        if progress:
            progress("store", i + 1, len(rules))
    for start in range(0, len(new), 2000):
        batch = new[start : start + 2000]
        report.guideline_ids.extend(store.bulk_add(batch))
        report.added += len(batch)
        if progress:
            progress("store", len(rules) - len(new) + start + len(batch), len(rules))


def ingest(
    paths: Sequence[str | os.PathLike[str]],
    store: GuidelineStore | None,
    *,
    kind: str | None = None,
    scope_type: str = "project",
    scope_id: str | None = None,
    dry_run: bool = False,
    progress: ProgressFn | None = None,
    db_label: str | None = None,
) -> IngestReport:
    """Ingest agent-memory files/trees into ``store`` in one transaction.

    ``scope_id`` defaults to the first path's directory name for project scope.
    With ``dry_run`` nothing is written; the report says what would happen. A dry run
    needs no store (``store=None``, ``db_label`` names the one a real run would use),
    so it creates no database file or folder either.
    """
    if store is None and not dry_run:
        raise ValueError("ingest needs a store unless dry_run is set")
    if not paths:
        raise InputError("no paths given", hint="memtune ingest PATH [PATH...] (a repo folder or files)")
    if scope_type not in SCOPE_TYPES:
        raise InputError(
            f"scope {scope_type!r} is not one of {', '.join(SCOPE_TYPES)}", hint="use --scope project"
        )
    ppaths = [Path(p).expanduser() for p in paths]
    if scope_type != "global" and not scope_id:
        scope_id = default_scope_id(ppaths)
    if scope_type == "global":
        scope_id = None
    db = store.display_url if store is not None else db_label or ""
    report = IngestReport(db=db, scope_type=scope_type, scope_id=scope_id, dry_run=dry_run)
    files, skipped = discover(ppaths, kind=kind)
    report.skipped.extend(skipped)
    items = read_files(files, report, progress)
    rules = merge_duplicates(items)
    if dry_run or store is None:
        report.merged = sum(len(r.duplicates) for r in rules)
        report.added = len(rules)
        return report
    with store.transaction():
        report.run_id = store.start_run([str(p) for p in ppaths])
        write_rules(store, rules, report, progress)
        store.record_findings(report.run_id, [(s.file, s.line, s.type) for s in report.secrets])
        store.finish_run(report.run_id, report.to_dict())
    return report
