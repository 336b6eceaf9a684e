"""A ``--db`` that is not a memtune store is refused before anything in it changes.

Each refusal asserts the file's bytes are unchanged: the promise is that nothing in it is touched
(no WAL switch, no memtune_migrations table).
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memtune.cli import app
from memtune.errors import StoreError
from memtune.store import GuidelineStore
from memtune.store.migrations import MIGRATIONS


def _foreign_db(path: Path) -> bytes:
    con = sqlite3.connect(path)
    con.execute("CREATE TABLE contacts (id INTEGER PRIMARY KEY, email TEXT)")
    con.execute("INSERT INTO contacts (email) VALUES ('a@example.test')")
    con.commit()
    con.close()
    return path.read_bytes()


def test_another_applications_sqlite_file_is_refused_untouched(tmp_path):
    db = tmp_path / "app.sqlite"
    before = _foreign_db(db)
    with pytest.raises(StoreError) as err:
        GuidelineStore(db)
    assert str(db) in err.value.message and "another application" in err.value.message
    assert "contacts" in err.value.message and "new path" in (err.value.hint or "")
    assert db.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["app.sqlite"]  # no -wal/-shm either
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "delete"


def test_cli_refuses_a_foreign_db_and_a_non_database_with_one_message(tmp_path):
    runner = CliRunner()
    foreign = tmp_path / "app.sqlite"
    before = _foreign_db(foreign)
    text = tmp_path / "notes.txt"
    text.write_text("just some notes, not a database\n" * 20)
    for path, words in ((foreign, "another application's SQLite database"), (text, "is not a SQLite database")):
        res = runner.invoke(app, ["guidelines", "list", "--db", str(path)])
        assert res.exit_code == StoreError.exit_code, res.output
        assert words in res.output and str(path) in res.output.replace("\n", "")
        assert "Traceback" not in res.output
        assert res.exception is None or isinstance(res.exception, SystemExit)
    assert foreign.read_bytes() == before
    assert text.read_text().startswith("just some notes")


def test_a_directory_or_unreadable_path_as_db_is_refused(tmp_path):
    with pytest.raises(StoreError, match="is a directory"):
        GuidelineStore(tmp_path)
    corrupt = tmp_path / "corrupt.db"
    corrupt.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    with pytest.raises(StoreError, match="corrupt.db"):
        GuidelineStore(corrupt)


def test_an_existing_memtune_store_and_an_empty_file_still_open(tmp_path):
    db = tmp_path / "memtune.db"
    GuidelineStore(db).close()
    again = GuidelineStore(db)
    assert again.migrations_applied == []
    again.close()
    empty = tmp_path / "empty.db"
    empty.touch()
    store = GuidelineStore(empty)
    assert store.migrations_applied == [name for name, _ in MIGRATIONS]
    store.close()
