"""Reading the store: lookups, filters, full-text search and turning rows into Guidelines.

A mixin of GuidelineStore (store.py), which supplies the engine, ``dialect`` and ``_conn``;
kept apart from the write path so each file stays readable.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from memtune.errors import InputError, NotFoundError
from memtune.store import schema
from memtune.store.types import Guideline, GuidelineFilter, GuidelineVersion, Source

RELEVANCE_RATIO = 0.6
"""Retrieval (eval's +rag conditions, serve --rag) keeps only notes scoring at least this share
of the best hit: on the example memory the right note was kept for 146 of 147 held-out
questions while the notes shown fell from 3 to 1.6 on average, so fewer distractors reach
the model (docs/experiments.md)."""
FIELD_WEIGHTS = (1.0, 1.0, 1.0, 1.0)
"""SQLite bm25 weights of a note's name, category, tags and body in the search: all equal, as PostgreSQL's
single text vector has them. A real memory's note names are heading paths ("Repo structure: tests/ — …")
shared by their siblings; weighted 4x they pulled a section's other notes ahead of the one that answers.
Over the 10 development projects of the pool the right note reached the prompt for 0.793 of the questions
instead of 0.771; the example memory's hand-written questions kept 35 of 35 (docs/experiments.md)."""
QUESTION_STOP_WORDS = frozenset(
    "a an the of to in on for and or is are was be do does did i my me we our you your it its this that what "
    "which who how when where why can should would could will with from at by as about into if then than there "
    "their them they not no yes just so any all".split())
"""Words a question is made of but a note is not found by: left out of a search that has other words
(PostgreSQL's 'english' configuration drops its own list). On the pool's development questions,
with stemming: the right note in the top 3 for 0.775 of questions instead of 0.755."""
KNOWN_WORDS_MIN_SHARE = 0.5
"""Retrieval shows no notes for a question fewer than half of whose words the memory uses anywhere:
it is about something the memory does not cover, and any note shown would only be copied into an
invented answer. On the pool's 10 development projects this hid the notes from 83 % of the built-in
control questions and 9 of 40 hand-written ones, and from 4 of 265 real questions (the right note
lost for 1 of them) (docs/experiments.md)."""
ASKING_WORDS = frozenset(
    "remind remember forgot forget recall decided decide decision approach again please tell know explain "
    "wondering wonder help need want like think thing things way going trying try anything something sure okay "
    "ok hey hi quick question usual us we our here there now currently actually exactly also still really best "
    "right good correct supposed".split())
"""Words of asking and remembering ("Can you remind me what we decided about …?") that say nothing about
the topic: left out of the known-words share (not of the search). On the example memory four generated
questions lost their notes to them; over the development pool, 2 of 265 real questions, and no control."""
_FTS = sa.table("guideline_fts", sa.column("rowid"))
"""SQLite's full-text index of the guidelines (a virtual table the schema creates), for the searches."""
_ENGLISH = sa.literal_column("'english'")


def _fts_hits(match: str, *, scored: bool = False) -> sa.CTE:
    """The SQLite full-text hits of ``match`` (ids, and bm25 scores, higher is better, when ``scored``),
    computed once before any join: joined the other way SQLite would run the match for every row the
    filter keeps (60x slower on a 20k-note store)."""
    cols: list[Any] = [_FTS.c.rowid.label("id")]
    if scored:
        weights = ", ".join(str(float(w)) for w in FIELD_WEIGHTS)
        cols.append(sa.literal_column(f"-bm25(guideline_fts, {weights})").label("score"))
    return (sa.select(*cols).select_from(_FTS).where(sa.text("guideline_fts MATCH :m").bindparams(m=match))
            .cte("hits").prefix_with("MATERIALIZED"))


def _ts_term(word: str) -> str:
    """A search word as a PostgreSQL tsquery term (its word characters only)."""
    return re.sub(r"[^\w]", "", word)


def _ts_vector() -> sa.ColumnElement[Any]:
    """PostgreSQL's text vector of a guideline, written as the GIN index is (so the index is used)."""
    return sa.func.to_tsvector(_ENGLISH, _G.c.search_text)


_G, _V, _T, _S = (
    schema.guidelines,
    schema.guideline_versions,
    schema.guideline_tags,
    schema.guideline_sources,
)


def _now() -> datetime:
    return datetime.now(UTC)


def _scope_id(scope_type: str, scope_id: str | None) -> str:
    return "" if scope_type == "global" else (scope_id or "")


def _chunks(seq: list[int], n: int) -> Iterator[list[int]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


def _query_words(text: str) -> list[str]:
    """The words a search looks for: lower-cased, one-letter ASCII words and (when others remain)
    question words left out, each once, at most 64."""
    words = [w for w in re.findall(r"\w+", text.lower()) if len(w) > 1 or not w.isascii()]
    words = [w for w in words if w not in QUESTION_STOP_WORDS] or words
    return list(dict.fromkeys(words))[:64]


class GuidelineReader:
    """get / query / iterate / count / search; every read runs inside ``self._conn()``."""

    dialect: str

    def _conn(self) -> AbstractContextManager[sa.Connection]:  # pragma: no cover - provided by GuidelineStore
        raise NotImplementedError

    def get(self, guideline_id: int, *, with_versions: bool = False) -> Guideline:
        with self._conn() as c:
            rows = self._load(c, sa.select(_G).where(_G.c.id == guideline_id), with_versions)
        if not rows:
            raise NotFoundError(
                f"no guideline with id {guideline_id}",
                hint="`memtune guidelines list` shows the ids",
            )
        return rows[0]

    def get_by_name(self, name: str, scope_type: str = "project", scope_id: str | None = None) -> Guideline | None:
        sid = _scope_id(scope_type, scope_id)
        with self._conn() as c:
            rows = self._load(
                c,
                sa.select(_G).where(
                    _G.c.scope_type == scope_type, _G.c.scope_id == sid, _G.c.name == name
                ),
                False,
            )
        return rows[0] if rows else None

    def find_by_norm_hash(self, norm_hash: str, scope_type: str, scope_id: str | None) -> int | None:
        """Id of a guideline in this scope whose text normalises to ``norm_hash``."""
        sid = _scope_id(scope_type, scope_id)
        with self._conn() as c:
            row = c.execute(
                sa.select(_G.c.id).where(
                    _G.c.norm_hash == norm_hash, _G.c.scope_type == scope_type, _G.c.scope_id == sid
                ).order_by(_G.c.id).limit(1)
            ).first()
        return row[0] if row else None

    def _filtered(self, f: GuidelineFilter | None) -> sa.Select:
        f = f or GuidelineFilter()
        problems = f.problems()
        if problems:
            raise InputError("; ".join(problems))
        q = sa.select(_G)
        if f.scope_type:
            q = q.where(_G.c.scope_type == f.scope_type)
            if f.scope_id is not None:
                q = q.where(_G.c.scope_id == _scope_id(f.scope_type, f.scope_id))
        if f.category:
            cats = [f.category] if isinstance(f.category, str) else list(f.category)
            q = q.where(_G.c.category.in_(cats))
        if f.priority_min is not None:
            q = q.where(_G.c.priority >= f.priority_min)
        if f.priority_max is not None:
            q = q.where(_G.c.priority <= f.priority_max)
        if f.active_only:
            q = q.where(_G.c.is_active.is_(True))
        if f.tags:
            tags = sorted(set(f.tags))
            sub = sa.select(_T.c.guideline_id).where(_T.c.tag.in_(tags))
            if f.tags_mode == "all":
                sub = sub.group_by(_T.c.guideline_id).having(
                    sa.func.count(sa.distinct(_T.c.tag)) == len(tags)
                )
            q = q.where(_G.c.id.in_(sub))
        return q

    def query(
        self,
        f: GuidelineFilter | None = None,
        *,
        limit: int | None = None,
        offset: int = 0,
        with_versions: bool = False,
    ) -> list[Guideline]:
        """Guidelines matching ``f``, highest priority first. No cap unless ``limit`` is given."""
        q = self._filtered(f).order_by(_G.c.priority.desc(), _G.c.id)
        if limit is not None:
            q = q.limit(limit)
        if offset:
            q = q.offset(offset)
        with self._conn() as c:
            return self._load(c, q, with_versions)

    def iter_guidelines(self, f: GuidelineFilter | None = None, *, batch_size: int = 500) -> Iterator[Guideline]:
        """Stream matching guidelines in id order, ``batch_size`` at a time (flat memory)."""
        base = self._filtered(f)
        last = 0
        while True:
            q = base.where(_G.c.id > last).order_by(_G.c.id).limit(batch_size)
            with self._conn() as c:
                batch = self._load(c, q, False)
            if not batch:
                return
            yield from batch
            last = batch[-1].id

    def count(self, f: GuidelineFilter | None = None) -> int:
        sub = self._filtered(f).subquery()
        with self._conn() as c:
            return c.execute(sa.select(sa.func.count()).select_from(sub)).scalar_one()

    def categories(self) -> dict[str, int]:
        with self._conn() as c:
            rows = c.execute(
                sa.select(_G.c.category, sa.func.count()).group_by(_G.c.category).order_by(_G.c.category)
            )
            return {r[0]: r[1] for r in rows}

    def search(
        self, text: str, f: GuidelineFilter | None = None, *, limit: int = 10, min_ratio: float = 0.0
    ) -> list[tuple[Guideline, float]]:
        """Full-text search (SQLite FTS5 bm25 / PostgreSQL ts_rank), best first.

        Any word may match (OR), so a natural-language question finds its notes.
        Scores are "higher is better" (and positive) on both back ends. ``min_ratio`` drops
        hits scoring below that share of the best one (retrieval uses RELEVANCE_RATIO).
        """
        if not 0 <= min_ratio <= 1:
            raise ValueError(f"min_ratio must be in 0..1 (got {min_ratio})")
        words = _query_words(text)
        if not words:
            return []
        with self._conn() as c:
            q = self._matching(words, f, scored=True)
            ranked = [(r[0], float(r[1])) for r in c.execute(q.order_by(sa.desc("score"), _G.c.id).limit(limit))]
            if ranked and min_ratio and ranked[0][1] > 0:
                ranked = [(gid, s) for gid, s in ranked if s >= min_ratio * ranked[0][1]]
            if not ranked:
                return []
            by_id = {g.id: g for g in self._load(c, sa.select(_G).where(_G.c.id.in_([g for g, _ in ranked])), False)}
        return [(by_id[gid], s) for gid, s in ranked if gid in by_id]

    def search_question(
        self, question: str, context: str = "", f: GuidelineFilter | None = None, *, limit: int = 3,
        min_ratio: float = RELEVANCE_RATIO, min_known: float = KNOWN_WORDS_MIN_SHARE,
    ) -> list[tuple[Guideline, float]]:
        """The notes for one question: searched on the question alone, with its context line
        joining only when the question matches nothing; none at all when less than ``min_known``
        of the question's words occur anywhere in the (filtered) memory.

        Context lines are mostly situational ("I'm working in the memtune project.") and their
        generic words pulled a file's title note into a fifth of the retrievals on the example
        memory; on the question alone the right note led 142 of 147 times instead of 136.
        """
        if not 0 <= min_known <= 1:
            raise ValueError(f"min_known must be in 0..1 (got {min_known})")
        text = question
        hits = self.search(question, f, limit=limit, min_ratio=min_ratio) if question.strip() else []
        if not hits and context.strip():
            text = f"{question} {context}"
            hits = self.search(text, f, limit=limit, min_ratio=min_ratio)
        if hits and min_known and self.known_share(text, f) < min_known:
            return []
        return hits

    def known_share(self, text: str, f: GuidelineFilter | None = None) -> float:
        """The share of ``text``'s search words (as :meth:`search` reads them, stemmed as the back end
        stems, without :data:`ASKING_WORDS` when others remain) that occur in at least one note matching
        ``f``: 0.0 for text with no search words.
        Words the back end ignores altogether (PostgreSQL's stop words) are not counted."""
        words = _query_words(text)
        words = [w for w in words if w not in ASKING_WORDS] or words
        if not words:
            return 0.0
        known = counted = 0
        with self._conn() as c:
            for w in words:
                if self.dialect != "sqlite" and not c.execute(
                        sa.text("SELECT numnode(plainto_tsquery('english', :w))"), {"w": _ts_term(w)}).scalar_one():
                    continue  # a PostgreSQL stop word: the back end ignores it altogether
                counted += 1
                # One "is there any?" per word, the filter inside the query: no ids are read back.
                known += c.execute(self._matching([w], f).limit(1)).first() is not None
        return known / counted if counted else 0.0

    def _matching(self, words: list[str], f: GuidelineFilter | None, *, scored: bool = False) -> sa.Select:
        """The ids (and, when ``scored``, relevance as ``score``, higher is better) of the notes matching ``f``
        that hold any of ``words``. The filter runs inside the query, as a join from the full-text hits to their
        rows, not as a set of ids read into Python: on a large store most notes hold some word of a question."""
        if self.dialect == "sqlite":
            hits = _fts_hits(" OR ".join('"' + w.replace('"', "") + '"' for w in words), scored=scored)
            q = sa.select(*hits.c).join_from(hits, _G, _G.c.id == hits.c.id)
        else:
            vector = _ts_vector()
            terms = [t for t in map(_ts_term, words) if t]
            query = (sa.func.to_tsquery(_ENGLISH, sa.bindparam("q", " | ".join(terms))) if len(terms) > 1
                     else sa.func.plainto_tsquery(_ENGLISH, sa.bindparam("q", terms[0] if terms else "")))
            cols: list[Any] = [_G.c.id] + ([sa.func.ts_rank(vector, query).label("score")] if scored else [])
            q = sa.select(*cols).where(vector.bool_op("@@")(query))
        where = self._filtered(f).whereclause
        return q if where is None else q.where(where)

    def _load(self, c: sa.Connection, q: sa.Select, with_versions: bool) -> list[Guideline]:
        rows = c.execute(q).mappings().all()
        if not rows:
            return []
        ids = [r["id"] for r in rows]
        tags: dict[int, list[str]] = {i: [] for i in ids}
        srcs: dict[int, list[Source]] = {i: [] for i in ids}
        vers: dict[int, list[GuidelineVersion]] = {i: [] for i in ids}
        cur: dict[int, Any] = {}
        for chunk in _chunks(ids, 900):
            for gid, tag in c.execute(
                sa.select(_T.c.guideline_id, _T.c.tag).where(_T.c.guideline_id.in_(chunk)).order_by(_T.c.tag)
            ):
                tags[gid].append(tag)
            for r in c.execute(
                sa.select(_S).where(_S.c.guideline_id.in_(chunk)).order_by(_S.c.id)
            ).mappings():
                srcs[r["guideline_id"]].append(Source(r["source_file"], r["source_line"], r["source_kind"]))
            vq = sa.select(_V).where(_V.c.guideline_id.in_(chunk))
            if not with_versions:
                vq = vq.join(_G, sa.and_(_G.c.id == _V.c.guideline_id, _G.c.current_version == _V.c.version))
            for r in c.execute(vq.order_by(_V.c.guideline_id, _V.c.version)).mappings():
                v = GuidelineVersion(
                    version=r["version"],
                    content=r["content"],
                    rationale=r["rationale"],
                    examples=json.loads(r["examples_json"] or "{}"),
                    source_file=r["source_file"],
                    source_line=r["source_line"],
                    source_kind=r["source_kind"],
                    content_hash=r["content_hash"],
                    change_reason=r["change_reason"],
                    created_at=r["created_at"],
                )
                vers[r["guideline_id"]].append(v)
        out = []
        for r in rows:
            gid = r["id"]
            current = next(v for v in vers[gid] if v.version == r["current_version"])
            cur[gid] = current
            out.append(
                Guideline(
                    id=gid,
                    scope_type=r["scope_type"],
                    scope_id=r["scope_id"] or None,
                    name=r["name"],
                    category=r["category"],
                    priority=r["priority"],
                    is_active=bool(r["is_active"]),
                    tags=tags[gid],
                    metadata=json.loads(r["metadata_json"] or "{}"),
                    version=r["current_version"],
                    content=current.content,
                    rationale=current.rationale,
                    examples={"good": [], "bad": [], **current.examples},
                    content_hash=r["content_hash"],
                    sources=srcs[gid],
                    created_at=r["created_at"],
                    updated_at=r["updated_at"],
                    versions=vers[gid] if with_versions else None,
                )
            )
        return out
