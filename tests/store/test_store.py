"""GuidelineStore behaviour, run on SQLite and (in CI) PostgreSQL."""

from __future__ import annotations

import pytest

from memtune.errors import ConfigError, InputError, NotFoundError
from memtune.store import GuidelineFilter, GuidelineInput, Source, build_filter


def gi(name, content, **kw):
    return GuidelineInput(name=name, content=content, **kw)


def test_add_and_get_roundtrip(any_store):
    g = any_store.add(
        gi(
            "Use Node 22",
            "ALWAYS run `nvm use 22` before `yarn start`.",
            category="environment",
            priority=90,
            tags=["node", "backend"],
            rationale="Node 20 breaks the Prisma client",
            examples={"good": ["nvm use 22 && yarn start"], "bad": ["yarn start"]},
            source=Source("memory.md", 12, "memory"),
            scope_id="estate",
        )
    )
    again = any_store.get(g.id)
    assert again.name == "Use Node 22"
    assert again.category == "environment" and again.priority == 90
    assert again.tags == ["backend", "node"]
    assert again.examples == {"good": ["nvm use 22 && yarn start"], "bad": ["yarn start"]}
    assert again.rationale == "Node 20 breaks the Prisma client"
    assert again.sources == [Source("memory.md", 12, "memory")]
    assert again.scope_type == "project" and again.scope_id == "estate"
    assert again.version == 1 and again.is_active


def test_default_priority_is_50(any_store):
    assert any_store.add(gi("a", "text")).priority == 50


def test_upsert_unchanged_is_noop_and_change_adds_version(any_store):
    r1 = any_store.upsert(gi("r", "first text", source=Source("a.md", 1)))
    r2 = any_store.upsert(gi("r", "first text", source=Source("a.md", 1)))
    assert (r1.action, r2.action) == ("added", "unchanged")
    assert r2.version == 1
    r3 = any_store.upsert(gi("r", "second text", source=Source("a.md", 1)))
    assert r3.action == "updated" and r3.version == 2
    g = any_store.get(r1.guideline_id, with_versions=True)
    assert [v.content for v in g.versions] == ["first text", "second text"]
    assert g.content == "second text"
    assert g.versions[1].change_reason


def test_edit_appends_version_and_keeps_history(any_store):
    g = any_store.add(gi("x", "old"))
    any_store.edit(g.id, content="new", change_reason="fixed typo")
    any_store.edit(g.id, priority=80)  # attribute only: no new version
    h = any_store.get(g.id, with_versions=True)
    assert h.version == 2 and h.priority == 80
    assert [(v.content, v.change_reason) for v in h.versions] == [("old", "created"), ("new", "fixed typo")]


def test_duplicate_name_in_scope_refused_but_other_scope_ok(any_store):
    any_store.add(gi("same", "a", scope_id="p1"))
    with pytest.raises(InputError, match="already exists"):
        any_store.add(gi("same", "b", scope_id="p1"))
    any_store.add(gi("same", "c", scope_id="p2"))
    any_store.add(gi("same", "d", scope_type="global"))


def test_invalid_input_rejected_with_value(any_store):
    with pytest.raises(InputError, match="priority 150"):
        any_store.add(gi("p", "x", priority=150))
    with pytest.raises(InputError, match="scope type 'team'"):
        any_store.add(gi("p", "x", scope_type="team"))
    with pytest.raises(InputError, match="empty content"):
        any_store.add(gi("p", "   "))
    assert any_store.count(GuidelineFilter(active_only=False)) == 0


def test_get_missing_raises_not_found(any_store):
    with pytest.raises(NotFoundError, match="no guideline with id 999"):
        any_store.get(999)


def test_deactivate_and_activate(any_store):
    g = any_store.add(gi("a", "x"))
    any_store.set_active(g.id, False)
    assert any_store.count(GuidelineFilter()) == 0
    assert any_store.count(GuidelineFilter(active_only=False)) == 1
    any_store.set_active(g.id, True)
    assert any_store.count(GuidelineFilter()) == 1


@pytest.fixture
def populated(any_store):
    s = any_store
    s.add(gi("g1", "global rule", scope_type="global", category="security", priority=95, tags=["sec", "critical"]))
    s.add(gi("p1", "project one rule", scope_id="one", category="command", priority=70, tags=["cli"]))
    s.add(gi("p2", "project two rule", scope_id="two", category="command", priority=40, tags=["cli", "critical"]))
    s.add(gi("o1", "org rule", scope_type="org", scope_id="acme", category="workflow", priority=10))
    s.add(gi("s1", "session note", scope_type="session", scope_id="abc", category="context", priority=50, tags=["sec"]))
    return s


def names(rows):
    return sorted(g.name for g in rows)


def test_filters(populated):
    s = populated
    assert names(s.query(GuidelineFilter(scope_type="project"))) == ["p1", "p2"]
    assert names(s.query(GuidelineFilter(scope_type="project", scope_id="two"))) == ["p2"]
    assert names(s.query(GuidelineFilter(category="command"))) == ["p1", "p2"]
    assert names(s.query(GuidelineFilter(category=["security", "workflow"]))) == ["g1", "o1"]
    assert names(s.query(GuidelineFilter(priority_min=50))) == ["g1", "p1", "s1"]
    assert names(s.query(GuidelineFilter(priority_max=40))) == ["o1", "p2"]
    assert names(s.query(GuidelineFilter(priority_min=40, priority_max=70))) == ["p1", "p2", "s1"]
    assert names(s.query(GuidelineFilter(tags=["critical", "cli"]))) == ["g1", "p1", "p2"]
    assert names(s.query(GuidelineFilter(tags=["critical", "cli"], tags_mode="all"))) == ["p2"]
    assert names(s.query(GuidelineFilter(tags=["sec"], tags_mode="all"))) == ["g1", "s1"]


def test_query_orders_by_priority_and_pages(populated):
    s = populated
    assert [g.name for g in s.query()] == ["g1", "p1", "s1", "p2", "o1"]
    assert [g.name for g in s.query(limit=2, offset=2)] == ["s1", "p2"]
    assert s.count() == 5


def test_no_hidden_cap(any_store):
    with any_store.transaction():
        for i in range(130):
            any_store.add(gi(f"rule {i}", f"content number {i}"))
    assert len(any_store.query()) == 130
    assert len(list(any_store.iter_guidelines(batch_size=7))) == 130


def test_filter_problems_reported_together(any_store):
    f = GuidelineFilter(scope_type="team", priority_min=120, priority_max=10)
    with pytest.raises(InputError) as exc:
        any_store.query(f)
    msg = str(exc.value)
    assert "team" in msg and "120" in msg


def test_build_filter_maps_options_and_raises_every_problem_at_once():
    """The CLI and the MCP tools build their filters here, so both report bad options alike."""
    f = build_filter("project", "app", ["command"], 10, 90, ["node"], "all", include_inactive=True)
    assert f == GuidelineFilter(scope_type="project", scope_id="app", category=["command"], priority_min=10,
                                priority_max=90, tags=["node"], tags_mode="all", active_only=False)
    assert build_filter(category=[], tag=[]) == GuidelineFilter()
    with pytest.raises(ConfigError) as exc:
        build_filter(scope="team", priority_min=120, tags_mode="some")
    assert exc.value.problems == [
        "scope type 'team' is not one of global, org, project, session",
        "priority min 120 is outside 0..100",
        "tags mode 'some' must be 'any' or 'all'",
    ]


def test_full_text_search_ranks_relevant_first(any_store):
    s = any_store
    s.add(gi("Start the backend", "Run `yarn start` in the background after `nvm use 22`.", category="command"))
    s.add(gi("Reset the database", "Run `yarn prisma migrate reset` to wipe the dev database.", category="command"))
    s.add(gi("Frontend dev server", "The frontend uses `npm run dev`, not yarn.", category="command"))
    hits = s.search("how do I start the backend?")
    assert hits and hits[0][0].name == "Start the backend"
    assert all(score > 0 for _, score in hits) or s.dialect == "postgresql"
    hits = s.search("wipe database")
    assert hits[0][0].name == "Reset the database"
    assert s.search("   ") == []
    assert s.search("kubernetes helm chart") == []


def test_search_min_ratio_drops_hits_far_behind_the_best(any_store):
    s = any_store
    s.add(gi("Start the backend", "Start the backend with `yarn start` after `nvm use 22`; the backend needs it.",
             category="command"))
    s.add(gi("Frontend dev server", "The frontend uses `npm run dev`; start it after the backend.", category="command"))
    s.add(gi("Reset the database", "Run `yarn prisma migrate reset` to wipe the dev database.", category="command"))
    every = s.search("start the backend", limit=3)
    assert len(every) >= 2
    top = every[0][1]
    kept = s.search("start the backend", limit=3, min_ratio=0.99)
    assert kept[0][0].name == "Start the backend"
    assert all(score >= 0.99 * top for _, score in kept) and len(kept) < len(every)
    assert s.search("start the backend", limit=3, min_ratio=0.0) == every
    with pytest.raises(ValueError, match="min_ratio"):
        s.search("start", min_ratio=1.5)


def test_search_question_leaves_a_situational_context_out_unless_the_question_finds_nothing(any_store):
    s = any_store
    s.add(gi("Acme — Project Memory", "Notes the agents keep while working on the acme project repository."))
    s.add(gi("Reset the database", "Run `yarn prisma migrate reset` to wipe the dev database.", category="command"))
    both = s.search("how do I wipe the dev database? I'm working in the acme project repository.", limit=3)
    assert "Acme — Project Memory" in [g.name for g, _ in both]  # the context's words pull in the title note
    hits = s.search_question("How do I wipe the dev database?", "I'm working in the acme project repository.")
    assert [g.name for g, _ in hits] == ["Reset the database"]
    # the context is searched when the question alone matches nothing
    hits = s.search_question("What comes first?", "resetting the database")
    assert [g.name for g, _ in hits] == ["Reset the database"]
    assert s.search_question("   ", "") == []


def test_search_question_shows_nothing_for_a_question_mostly_about_what_the_memory_never_mentions(any_store):
    """A control question ("Which Kafka topic stores invoices?") shares a word with some note, but most of
    its words occur nowhere in the memory: retrieval shows no note rather than one to be copied."""
    s = any_store
    s.add(gi("Event topics", "Order events go to the `orders` topic; consumers commit offsets manually.",
             category="architecture"))
    s.add(gi("Reset the database", "Run `yarn prisma migrate reset` to wipe the dev database.", category="command"))
    question = "Which Kafka topic stores invoices?"
    assert s.search(question)  # "topic" alone matches a note ...
    assert s.known_share(question) == pytest.approx(1 / 4)  # ... but kafka, stores, invoices occur nowhere
    assert s.search_question(question) == []
    assert s.search_question(question, min_known=0.0)  # the floor can be turned off
    # a real question keeps its note, stemmed words counting as known ("wiping" -> wipe)
    assert s.known_share("How do I go about wiping the dev database?") == 1.0
    assert [g.name for g, _ in s.search_question("How do I go about wiping the dev database?")][0] == "Reset the database"
    # words of asking and remembering say nothing about the topic and do not count against it
    assert s.known_share("Can you remind me what we decided about the database reset?") == 1.0
    assert s.search_question("I forgot our approach to the database reset. What was it?")
    # the share is taken over the notes the filter allows
    assert s.known_share("wipe database", GuidelineFilter(category="architecture")) == 0.0
    assert s.search_question("wipe database", f=GuidelineFilter(category="architecture")) == []
    assert s.known_share("   ") == 0.0
    with pytest.raises(ValueError, match="min_known"):
        s.search_question("wipe", min_known=2)


def test_search_respects_filter_and_updates(any_store):
    s = any_store
    g = s.add(gi("Cache", "Redis caches sessions", category="architecture"))
    s.add(gi("Other", "Redis is also the queue", category="workflow"))
    assert [x.name for x, _ in s.search("redis", GuidelineFilter(category="architecture"))] == ["Cache"]
    s.edit(g.id, content="Memcached caches sessions")
    assert [x.name for x, _ in s.search("memcached")] == ["Cache"]
    assert [x.name for x, _ in s.search("redis")] == ["Other"]
    s.set_active(g.id, False)
    assert s.search("memcached") == []


def test_search_limit_counts_only_notes_the_filter_keeps(any_store):
    """The filter runs inside the query: better-scoring notes it excludes take none of the ``limit``
    places, and the known-words share ignores them too."""
    s = any_store
    for i in range(5):
        s.add(gi(f"Queue {i}", "Kafka kafka kafka queue consumer lag", category="architecture"))
    s.add(gi("Lag alert", "Consumer lag pages the on-call engineer", category="workflow"))
    hits = s.search("kafka consumer lag", GuidelineFilter(category="workflow"), limit=1)
    assert [g.name for g, _ in hits] == ["Lag alert"]
    assert len(s.search("kafka consumer lag", limit=2)) == 2
    assert s.known_share("kafka consumer lag", GuidelineFilter(category="workflow")) == pytest.approx(2 / 3)
    assert s.known_share("kafka consumer lag") == 1.0


def test_unicode_content(any_store):
    g = any_store.add(gi("Deutsch", "Immer `make test` ausführen, bevor du pushst. 提交前运行测试。"))
    assert "ausführen" in any_store.get(g.id).content
    assert any_store.search("ausführen")[0][0].id == g.id


def test_transaction_rolls_back_everything(any_store):
    s = any_store
    s.add(gi("keep", "kept"))
    with pytest.raises(RuntimeError):
        with s.transaction():
            s.add(gi("new", "should vanish"))
            s.upsert(gi("keep", "changed"))
            raise RuntimeError("crash mid-run")
    assert names(s.query()) == ["keep"]
    assert s.get_by_name("keep").content == "kept"
    assert s.search("vanish") == []


def test_sources_accumulate_without_duplicates(any_store):
    r = any_store.upsert(gi("r", "t", source=Source("AGENTS.md", 3, "agents")))
    any_store.upsert(gi("r", "t", source=Source("AGENTS.md", 3, "agents"), extra_sources=[Source("CLAUDE.md", 9, "claude")]))
    any_store.add_source(r.guideline_id, Source("CLAUDE.md", 9, "claude"))
    assert [s.file for s in any_store.get(r.guideline_id).sources] == ["AGENTS.md", "CLAUDE.md"]


def test_migrations_recorded_and_idempotent(any_store):
    from memtune.store import GuidelineStore
    from memtune.store.migrations import MIGRATIONS

    assert any_store.migrations_applied == [n for n, _ in MIGRATIONS]
    again = GuidelineStore(any_store.url)
    assert again.migrations_applied == []
    again.close()


def test_search_finds_other_forms_of_a_word_and_ignores_question_words(any_store):
    """Stemming on both back ends ("committing" finds "commit"); "what/which/the ..." alone match nothing."""
    s = any_store
    s.add(gi("Commit granularly", "Commit each logical change on its own.", category="workflow"))
    s.add(gi("Frontend dev server", "The frontend uses `npm run dev`, not yarn.", category="command"))
    hits = s.search("Before committing my changes, what should I do?")
    assert hits and hits[0][0].name == "Commit granularly"
    top = s.search("which frontend server should I use?")
    assert top[0][0].name == "Frontend dev server"


def test_a_store_indexed_before_stemming_is_migrated_and_keeps_its_notes(tmp_path):
    """A SQLite store made with the unstemmed index (migrations 001-002) is moved to the stemmed one on open."""
    import sqlalchemy as sa

    from memtune.store import GuidelineStore
    from memtune.store import migrations as mig

    url = f"sqlite:///{tmp_path / 'old.db'}"
    old = mig.MIGRATIONS
    try:
        mig.MIGRATIONS = old[:2]
        s = GuidelineStore(url)
        s.add(gi("Commit granularly", "Commit each logical change on its own.", category="workflow"))
        assert s.search("committing") == []  # the old index does not stem
        s.close()
    finally:
        mig.MIGRATIONS = old
    s = GuidelineStore(url)
    assert s.migrations_applied == ["003_fts_stemming"]
    assert [g.name for g, _ in s.search("committing")] == ["Commit granularly"]
    with s._conn() as c:
        sql = c.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'guideline_fts'")).scalar_one()
    assert "porter" in sql
    s.close()
