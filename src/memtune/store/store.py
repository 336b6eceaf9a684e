"""GuidelineStore: the one place guidelines are written and read.

SQLite by default (a file the user can see), PostgreSQL by URL. Versions are
append-only: an edit adds a version, nothing is overwritten or dropped.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from memtune.errors import InputError, StoreError
from memtune.store.migrations import migrate
from memtune.store.normalize import normalized_hash
from memtune.store.redact import redact_input
from memtune.store.sqlite_file import check_sqlite_file
from memtune.store.reads import (
    _G,
    _S,
    _T,
    _V,
    KNOWN_WORDS_MIN_SHARE,
    RELEVANCE_RATIO,
    GuidelineReader,
    _now,
    _scope_id,
)
from memtune.store.runs import IngestLog
from memtune.store.types import (
    SCOPE_TYPES,
    Guideline,
    GuidelineInput,
    Source,
    UpsertResult,
)

DEFAULT_DB_PATH = Path(".memtune") / "memtune.db"
__all__ = ["DEFAULT_DB_PATH", "KNOWN_WORDS_MIN_SHARE", "RELEVANCE_RATIO", "GuidelineStore", "ScopeIndex", "resolve_db_url"]


def resolve_db_url(db: str | os.PathLike[str] | None = None) -> str:
    """``--db`` value, else ``MEMTUNE_DB_URL``, else ``./.memtune/memtune.db``.

    A plain path means a SQLite file; anything with ``://`` is a SQLAlchemy URL
    (``postgresql+psycopg://user:pw@host/db``).
    """
    value = str(db) if db else os.environ.get("MEMTUNE_DB_URL") or str(DEFAULT_DB_PATH)
    if "://" in value:
        if value.startswith("postgres://") or value.startswith("postgresql://"):
            value = "postgresql+psycopg://" + value.split("://", 1)[1]
        return value
    return "sqlite:///" + str(Path(value).expanduser().absolute())


def _validate_input(inp: GuidelineInput) -> None:
    problems = []
    if not inp.name or not inp.name.strip():
        problems.append("name is empty")
    if not inp.content or not inp.content.strip():
        problems.append(f"guideline {inp.name!r} has empty content")
    if inp.scope_type not in SCOPE_TYPES:
        problems.append(f"scope type {inp.scope_type!r} is not one of {', '.join(SCOPE_TYPES)}")
    if not isinstance(inp.priority, int) or not 0 <= inp.priority <= 100:
        problems.append(f"priority {inp.priority!r} of {inp.name!r} is outside 0..100")
    if len(inp.name) > 300:
        problems.append(f"name is {len(inp.name)} characters long (300 at most): {inp.name[:60]!r}…")
    if problems:
        raise InputError("; ".join(problems), hint="fix the value(s) and try again")


class GuidelineStore(GuidelineReader, IngestLog):
    """Read and write guidelines. Safe to share between threads (one connection per call)."""

    def __init__(self, db: str | os.PathLike[str] | None = None, *, echo: bool = False) -> None:
        self.url = resolve_db_url(db)
        kwargs: dict[str, Any] = {"echo": echo, "future": True}
        if self.url.startswith("sqlite"):
            path = Path(self.url.removeprefix("sqlite:///"))
            if self.url != "sqlite://" and str(path) != ":memory:":
                try:
                    path.parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise StoreError(
                        f"cannot create the folder for the store {path}: {exc.strerror}",
                        hint="pass a writable path with --db or MEMTUNE_DB_URL",
                    ) from exc
                check_sqlite_file(path)
            kwargs["connect_args"] = {"timeout": 30}
        try:
            self.engine = sa.create_engine(self.url, **kwargs)
        except (SQLAlchemyError, ImportError) as exc:
            raise StoreError(
                f"cannot open store {self.display_url}: {exc}",
                hint="for PostgreSQL install memtune[postgres] and use postgresql://user:pw@host/db",
            ) from exc
        if self.dialect == "sqlite":
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        self._local = threading.local()
        try:
            self.migrations_applied = migrate(self.engine)
        except DBAPIError as exc:
            raise StoreError(
                f"cannot open store {self.display_url}: {exc.orig}",
                hint="check the path/URL given with --db or MEMTUNE_DB_URL",
            ) from exc
        if self.dialect == "sqlite":
            self.fts = self._sqlite_has_fts()

    # ------------------------------------------------------------------ basics
    @property
    def dialect(self) -> str:
        return self.engine.dialect.name

    @property
    def display_url(self) -> str:
        """The URL with any password hidden (safe to print)."""
        return sa.engine.make_url(self.url).render_as_string(hide_password=True)

    @property
    def path(self) -> Path | None:
        if self.dialect != "sqlite":
            return None
        return Path(self.url.removeprefix("sqlite:///"))

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> GuidelineStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _sqlite_has_fts(self) -> bool:
        with self.engine.connect() as c:
            return bool(
                c.execute(
                    sa.text("SELECT 1 FROM sqlite_master WHERE name='guideline_fts'")
                ).first()
            )

    @contextmanager
    def transaction(self) -> Iterator[sa.Connection]:
        """All store calls inside the block share one transaction: all or nothing."""
        existing = getattr(self._local, "conn", None)
        if existing is not None:
            yield existing
            return
        with self.engine.begin() as conn:
            self._local.conn = conn
            try:
                yield conn
            finally:
                self._local.conn = None

    @contextmanager
    def _conn(self) -> Iterator[sa.Connection]:
        with self.transaction() as conn:
            yield conn

    # ------------------------------------------------------------------ writes
    def upsert(self, inp: GuidelineInput) -> UpsertResult:
        """Create the guideline, add a version if its text changed, or do nothing.

        The key is (scope type, scope id, name). Sources are always recorded.
        """
        _validate_input(inp)
        inp, _ = redact_input(inp)
        sid = _scope_id(inp.scope_type, inp.scope_id)
        h = inp.content_hash()
        with self._conn() as c:
            row = c.execute(
                sa.select(_G.c.id, _G.c.content_hash, _G.c.current_version).where(
                    _G.c.scope_type == inp.scope_type, _G.c.scope_id == sid, _G.c.name == inp.name
                )
            ).first()
            if row is None:
                gid = self._insert(c, inp, sid, h)
                return UpsertResult("added", gid, 1)
            gid, old_hash, ver = row
            self._add_sources(c, gid, inp)
            if old_hash == h:
                return UpsertResult("unchanged", gid, ver)
            ver += 1
            self._insert_version(c, gid, ver, inp, h, inp.change_reason or "source text changed")
            c.execute(
                _G.update()
                .where(_G.c.id == gid)
                .values(
                    current_version=ver,
                    content_hash=h,
                    norm_hash=normalized_hash(inp.content),
                    category=inp.category,
                    priority=inp.priority,
                    updated_at=_now(),
                    search_text=_search_text(inp),
                    metadata_json=json.dumps(inp.metadata, ensure_ascii=False, default=str),
                )
            )
            self._set_tags(c, gid, inp.tags)
            self._index(c, gid, inp)
            return UpsertResult("updated", gid, ver)

    def add(self, inp: GuidelineInput) -> Guideline:
        """Create a new guideline; refuses a name that already exists in that scope."""
        _validate_input(inp)
        inp, _ = redact_input(inp)
        sid = _scope_id(inp.scope_type, inp.scope_id)
        try:
            with self._conn() as c:
                gid = self._insert(c, inp, sid, inp.content_hash())
        except IntegrityError as exc:
            raise InputError(
                f"a guideline named {inp.name!r} already exists in scope "
                f"{inp.scope_type}{':' + sid if sid else ''}",
                hint="use `memtune guidelines edit` to change it, or pick another --name",
            ) from exc
        return self.get(gid)

    def add_source(self, guideline_id: int, source: Source) -> None:
        """Record one more place a guideline was found (near-duplicate merge)."""
        with self._conn() as c:
            self._add_source_rows(c, guideline_id, [source])

    def edit(
        self,
        guideline_id: int,
        *,
        content: str | None = None,
        rationale: str | None = None,
        examples: dict[str, list[str]] | None = None,
        category: str | None = None,
        priority: int | None = None,
        tags: list[str] | None = None,
        name: str | None = None,
        change_reason: str | None = None,
    ) -> Guideline:
        """Change a guideline. Text changes append a version; attributes change in place."""
        g = self.get(guideline_id)
        new = GuidelineInput(
            name=name if name is not None else g.name,
            content=content if content is not None else g.content,
            category=category if category is not None else g.category,
            priority=priority if priority is not None else g.priority,
            scope_type=g.scope_type,
            scope_id=g.scope_id,
            tags=tags if tags is not None else g.tags,
            rationale=rationale if rationale is not None else g.rationale,
            examples=examples if examples is not None else g.examples,
            metadata=g.metadata,
        )
        _validate_input(new)
        new, _ = redact_input(new)
        h = new.content_hash()
        try:
            with self._conn() as c:
                values: dict[str, Any] = {
                    "name": new.name,
                    "category": new.category,
                    "priority": new.priority,
                    "updated_at": _now(),
                    "search_text": _search_text(new),
                }
                if h != g.content_hash:
                    ver = g.version + 1
                    self._insert_version(c, g.id, ver, new, h, change_reason or "edited")
                    values.update(
                        current_version=ver, content_hash=h, norm_hash=normalized_hash(new.content)
                    )
                c.execute(_G.update().where(_G.c.id == g.id).values(**values))
                if tags is not None:
                    self._set_tags(c, g.id, tags)
                self._index(c, g.id, new)
        except IntegrityError as exc:
            raise InputError(
                f"a guideline named {new.name!r} already exists in this scope",
                hint="pick another name",
            ) from exc
        return self.get(guideline_id)

    def set_active(self, guideline_id: int, active: bool) -> Guideline:
        self.get(guideline_id)  # raises NotFoundError
        with self._conn() as c:
            c.execute(
                _G.update().where(_G.c.id == guideline_id).values(is_active=active, updated_at=_now())
            )
        return self.get(guideline_id)

    def _insert(self, c: sa.Connection, inp: GuidelineInput, sid: str, h: str) -> int:
        now = _now()
        gid = c.execute(
            _G.insert().values(
                scope_type=inp.scope_type,
                scope_id=sid,
                name=inp.name,
                category=inp.category,
                priority=inp.priority,
                is_active=inp.is_active,
                metadata_json=json.dumps(inp.metadata, ensure_ascii=False, default=str),
                current_version=1,
                content_hash=h,
                norm_hash=normalized_hash(inp.content),
                search_text=_search_text(inp),
                created_at=now,
                updated_at=now,
            )
        ).inserted_primary_key[0]
        self._insert_version(c, gid, 1, inp, h, inp.change_reason or "created")
        self._set_tags(c, gid, inp.tags)
        self._add_sources(c, gid, inp)
        self._index(c, gid, inp, new=True)
        return gid

    def _insert_version(
        self, c: sa.Connection, gid: int, ver: int, inp: GuidelineInput, h: str, reason: str
    ) -> None:
        src = inp.source
        c.execute(
            _V.insert().values(
                guideline_id=gid,
                version=ver,
                content=inp.content,
                rationale=inp.rationale,
                examples_json=json.dumps(_clean_examples(inp.examples), ensure_ascii=False),
                source_file=src.file if src else None,
                source_line=src.line if src else None,
                source_kind=src.kind if src else None,
                content_hash=h,
                change_reason=reason,
                created_at=_now(),
            )
        )

    def _set_tags(self, c: sa.Connection, gid: int, tags: list[str]) -> None:
        c.execute(_T.delete().where(_T.c.guideline_id == gid))
        clean = sorted({t.strip() for t in tags if t and t.strip()})
        if clean:
            c.execute(_T.insert(), [{"guideline_id": gid, "tag": t} for t in clean])

    def _add_sources(self, c: sa.Connection, gid: int, inp: GuidelineInput) -> None:
        srcs = ([inp.source] if inp.source else []) + list(inp.extra_sources)
        self._add_source_rows(c, gid, srcs)

    def _add_source_rows(self, c: sa.Connection, gid: int, srcs: list[Source]) -> None:
        """One row per (guideline, file): a rule that moved within its file updates its line."""
        if not srcs:
            return
        have = {
            r[0]: (r[1], r[2])
            for r in c.execute(
                sa.select(_S.c.source_file, _S.c.source_line, _S.c.id).where(_S.c.guideline_id == gid)
            )
        }
        rows = []
        for s in srcs:
            if s.file in have:
                line, sid = have[s.file]
                if s.line is not None and line != s.line:
                    c.execute(_S.update().where(_S.c.id == sid).values(source_line=s.line))
                    have[s.file] = (s.line, sid)
                continue
            have[s.file] = (s.line, None)
            rows.append(
                {
                    "guideline_id": gid,
                    "source_file": s.file,
                    "source_line": s.line,
                    "source_kind": s.kind,
                    "first_seen": _now(),
                }
            )
        if rows:
            c.execute(_S.insert(), rows)

    def bulk_add(self, inputs: list[GuidelineInput]) -> list[int]:
        """Insert many *new* guidelines with a handful of statements (ingest's fast path).

        The caller guarantees the names are new in their scope; returns ids in input order.
        """
        if not inputs:
            return []
        for inp in inputs:
            _validate_input(inp)
        inputs = [redact_input(inp)[0] for inp in inputs]
        now = _now()
        rows = []
        hashes = []
        for inp in inputs:
            h = inp.content_hash()
            hashes.append(h)
            rows.append(
                {
                    "scope_type": inp.scope_type,
                    "scope_id": _scope_id(inp.scope_type, inp.scope_id),
                    "name": inp.name,
                    "category": inp.category,
                    "priority": inp.priority,
                    "is_active": inp.is_active,
                    "metadata_json": json.dumps(inp.metadata, ensure_ascii=False, default=str),
                    "current_version": 1,
                    "content_hash": h,
                    "norm_hash": normalized_hash(inp.content),
                    "search_text": _search_text(inp),
                    "created_at": now,
                    "updated_at": now,
                }
            )
        with self._conn() as c:
            ids = [
                r[0]
                for r in c.execute(_G.insert().returning(_G.c.id, sort_by_parameter_order=True), rows)
            ]
            versions, tags, sources, fts = [], [], [], []
            for gid, inp, h in zip(ids, inputs, hashes, strict=True):
                src = inp.source
                versions.append(
                    {
                        "guideline_id": gid,
                        "version": 1,
                        "content": inp.content,
                        "rationale": inp.rationale,
                        "examples_json": json.dumps(_clean_examples(inp.examples), ensure_ascii=False),
                        "source_file": src.file if src else None,
                        "source_line": src.line if src else None,
                        "source_kind": src.kind if src else None,
                        "content_hash": h,
                        "change_reason": inp.change_reason or "created",
                        "created_at": now,
                    }
                )
                tags += [{"guideline_id": gid, "tag": t} for t in sorted({t.strip() for t in inp.tags if t and t.strip()})]
                seen: set[str] = set()
                for s_ in ([src] if src else []) + list(inp.extra_sources):
                    if s_.file in seen:
                        continue
                    seen.add(s_.file)
                    sources.append(
                        {"guideline_id": gid, "source_file": s_.file, "source_line": s_.line, "source_kind": s_.kind, "first_seen": now}
                    )
                fts.append(
                    {
                        "id": gid,
                        "name": inp.name,
                        "cat": inp.category,
                        "tags": " ".join(inp.tags),
                        "body": "\n".join(x for x in (inp.content, inp.rationale or "") if x),
                    }
                )
            c.execute(_V.insert(), versions)
            if tags:
                c.execute(_T.insert(), tags)
            if sources:
                c.execute(_S.insert(), sources)
            if self.dialect == "sqlite" and self.fts:
                c.execute(
                    sa.text(
                        "INSERT INTO guideline_fts (rowid, name, category, tags, body) "
                        "VALUES (:id, :name, :cat, :tags, :body)"
                    ),
                    fts,
                )
        return ids

    def scope_index(self, scope_type: str, scope_id: str | None) -> ScopeIndex:
        """Names, hashes and source files of every guideline in one scope, in one query each.

        Ingest decides added / unchanged / merged in memory with this instead of
        querying per rule.
        """
        sid = _scope_id(scope_type, scope_id)
        idx = ScopeIndex()
        with self._conn() as c:
            for gid, name, h, nh in c.execute(
                sa.select(_G.c.id, _G.c.name, _G.c.content_hash, _G.c.norm_hash).where(
                    _G.c.scope_type == scope_type, _G.c.scope_id == sid
                )
            ):
                idx.by_name[name] = IndexedGuideline(gid, name, h, {})
                idx.by_norm.setdefault(nh, name)
            ids = {g.id: g for g in idx.by_name.values()}
            if ids:
                q = (
                    sa.select(_S.c.guideline_id, _S.c.source_file, _S.c.source_line)
                    .join(_G, _G.c.id == _S.c.guideline_id)
                    .where(_G.c.scope_type == scope_type, _G.c.scope_id == sid)
                )
                for gid, f, line in c.execute(q):
                    ids[gid].sources[f] = line
        return idx

    def _index(self, c: sa.Connection, gid: int, inp: GuidelineInput, new: bool = False) -> None:
        if self.dialect != "sqlite" or not self.fts:
            return  # PostgreSQL indexes guidelines.search_text directly
        if not new:
            c.execute(sa.text("DELETE FROM guideline_fts WHERE rowid = :id"), {"id": gid})
        c.execute(
            sa.text(
                "INSERT INTO guideline_fts (rowid, name, category, tags, body) "
                "VALUES (:id, :name, :cat, :tags, :body)"
            ),
            {
                "id": gid,
                "name": inp.name,
                "cat": inp.category,
                "tags": " ".join(inp.tags),
                "body": "\n".join(x for x in (inp.content, inp.rationale or "") if x),
            },
        )


@dataclass
class IndexedGuideline:
    id: int
    name: str
    content_hash: str
    sources: dict[str, int | None]  # file -> line


@dataclass
class ScopeIndex:
    by_name: dict[str, IndexedGuideline] = field(default_factory=dict)
    by_norm: dict[str, str] = field(default_factory=dict)  # normalised-text hash -> name


def _search_text(inp: GuidelineInput) -> str:
    return "\n".join(x for x in (inp.name, inp.category, " ".join(inp.tags), inp.content, inp.rationale or "") if x)


def _clean_examples(ex: dict[str, list[str]] | None) -> dict[str, list[str]]:
    ex = ex or {}
    return {"good": list(ex.get("good") or []), "bad": list(ex.get("bad") or [])}


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()
