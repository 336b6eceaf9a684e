"""Look at a SQLite ``--db`` file, read-only, before the store engine touches it.

Opening a store switches the file to WAL and creates memtune's tables, so a path that
points at another application's database, at something that is not a database, or at a
directory must be refused *before* the first read-write connection.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from memtune.errors import StoreError

_HEADER = b"SQLite format 3\x00"
_NEW_PATH_HINT = "pass --db (or MEMTUNE_DB_URL) a new path, e.g. .memtune/memtune.db, and memtune creates its store there"


def check_sqlite_file(path: Path) -> None:
    """Raise StoreError unless ``path`` is missing, empty, or a memtune store; changes nothing."""
    if path.is_dir():
        raise StoreError(f"the store path {path} is a directory",
                         hint=f"pass --db a file path, e.g. {path / 'memtune.db'}")
    try:
        with path.open("rb") as fh:
            head = fh.read(len(_HEADER))
    except FileNotFoundError:
        return
    except OSError as exc:
        raise StoreError(f"cannot read the store {path}: {exc.strerror or exc}",
                         hint="check the file's permissions, or " + _NEW_PATH_HINT) from exc
    if not head:
        return  # an empty file is a new database to SQLite
    if head != _HEADER:
        raise StoreError(f"{path} is not a SQLite database (memtune did not change it)", hint=_NEW_PATH_HINT)
    try:
        con = sqlite3.connect(path.absolute().as_uri() + "?mode=ro", uri=True, timeout=30)
        try:
            tables = sorted(r[0] for r in con.execute(
                "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'"))
        finally:
            con.close()
    except sqlite3.DatabaseError as exc:
        raise StoreError(f"cannot read the store {path}: {exc}", hint=_NEW_PATH_HINT) from exc
    if tables and "memtune_migrations" not in tables:
        shown = ", ".join(tables[:5]) + (f" and {len(tables) - 5} more" if len(tables) > 5 else "")
        raise StoreError(f"{path} is another application's SQLite database (tables: {shown}); "
                         "memtune did not change it", hint=_NEW_PATH_HINT)


__all__ = ["check_sqlite_file"]
