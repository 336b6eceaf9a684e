"""Processes racing to create the same new store all succeed (bounded: 12 per round, 3 rounds)."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
import uuid

import pytest

from memtune.store import GuidelineStore
from memtune.store.migrations import MIGRATIONS

PROCS = 12
ROUNDS = 3


def _open(url: str, q) -> None:  # runs in a child process
    try:
        GuidelineStore(url).close()
        q.put(None)
    except BaseException as exc:  # noqa: BLE001 - reported to the parent
        q.put(repr(exc)[:300])


def _race(url: str) -> list[str]:
    """Open ``url`` from PROCS processes released at once; the errors they hit."""
    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context("spawn")
    q = ctx.Queue()
    procs = [ctx.Process(target=_open, args=(url, q)) for _ in range(PROCS)]
    for p in procs:
        p.start()
    results = [q.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
    return [r for r in results if r]


@pytest.mark.timeout(120)
def test_processes_racing_to_create_a_sqlite_store_all_succeed(tmp_path):
    for r in range(ROUNDS):
        db = tmp_path / f"race{r}" / "memtune.db"
        assert _race(str(db)) == []
        with sqlite3.connect(db) as con:
            names = [row[0] for row in con.execute("SELECT name FROM memtune_migrations ORDER BY name")]
        assert names == [name for name, _ in MIGRATIONS]  # each applied exactly once


@pytest.mark.postgres
@pytest.mark.timeout(120)
def test_processes_racing_to_create_a_postgres_store_all_succeed():
    from tests.conftest import PG_URL

    if not PG_URL:
        pytest.skip("set MEMTUNE_TEST_PG_URL to run PostgreSQL store tests (.ci/run does)")
    import sqlalchemy as sa

    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    try:
        for _ in range(ROUNDS):
            name = "memtune_race_" + uuid.uuid4().hex[:12]
            with admin.connect() as c:
                c.execute(sa.text(f'CREATE DATABASE "{name}"'))
            url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
            try:
                assert _race(url) == []
                store = GuidelineStore(url)
                with store.engine.connect() as c:
                    n = c.execute(sa.text("SELECT count(*) FROM memtune_migrations")).scalar()
                store.close()
                assert n == len(MIGRATIONS)
            finally:
                with admin.connect() as c:
                    c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
