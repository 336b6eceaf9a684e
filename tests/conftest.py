"""Shared fixtures: a fresh guideline store on SQLite, and on PostgreSQL when available, and a
test-local memtune cache.

PostgreSQL tests run when ``MEMTUNE_TEST_PG_URL`` points at a server (``.ci/run``
starts one); each test gets its own throwaway database.
"""

from __future__ import annotations

import os
import uuid

import pytest

PG_URL = os.environ.get("MEMTUNE_TEST_PG_URL")

# Tests train tiny models whose self-replay caches and model conversions would otherwise land in the
# user's ~/.cache/memtune. Keep them beside the test run (kept between runs, so the embedded model is
# converted once); an explicit MEMTUNE_CACHE_DIR still wins. Subprocesses inherit it.
os.environ.setdefault("MEMTUNE_CACHE_DIR", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                                                      ".pytest_cache", "memtune-cache"))

# Tests assert the full recipe's values even where a developer chose the quick budget in their shell;
# tests/test_recipe.py checks the budget itself.
os.environ["MEMTUNE_RECIPE_BUDGET"] = "full"


def _pg_store():
    import sqlalchemy as sa

    from memtune.store import GuidelineStore

    admin = sa.create_engine(PG_URL, isolation_level="AUTOCOMMIT")
    name = "memtune_test_" + uuid.uuid4().hex[:12]
    with admin.connect() as c:
        c.execute(sa.text(f'CREATE DATABASE "{name}"'))
    url = sa.engine.make_url(PG_URL).set(database=name).render_as_string(hide_password=False)
    store = GuidelineStore(url)

    def cleanup() -> None:
        store.close()
        with admin.connect() as c:
            c.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()

    return store, cleanup


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def any_store(request, tmp_path):
    """The same store tests on every back end."""
    from memtune.store import GuidelineStore

    if request.param == "sqlite":
        store = GuidelineStore(tmp_path / "memtune.db")
        yield store
        store.close()
        return
    if not PG_URL:
        pytest.skip("set MEMTUNE_TEST_PG_URL to run PostgreSQL store tests (.ci/run does)")
    store, cleanup = _pg_store()
    yield store
    cleanup()


@pytest.fixture
def sqlite_store(tmp_path):
    from memtune.store import GuidelineStore

    store = GuidelineStore(tmp_path / "memtune.db")
    yield store
    store.close()
