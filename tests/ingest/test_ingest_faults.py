"""`memtune ingest` under faults: an unreadable sub-directory is named and the rest ingested,
nothing ingested (every file skipped, or none found) exits non-zero, and --dry-run creates nothing."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memtune.cli import app
from memtune.store import GuidelineStore

runner = CliRunner()


def _tree(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*"))


def _lock_dir(locked: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """chmod 000 ``locked``; as root (who reads it anyway) make the OS calls refuse it the same way."""
    locked.chmod(0)
    if os.geteuid() != 0:
        return
    inside = str(locked) + os.sep

    def refused(path) -> bool:
        p = os.fsdecode(path) if not isinstance(path, int) else ""
        return p == str(locked) or p.startswith(inside)

    def guard(real, allow_self: bool):
        def call(path, *a, **kw):
            p = os.fsdecode(path) if not isinstance(path, int) else ""
            if refused(path) and not (allow_self and p == str(locked)):
                raise PermissionError(13, "Permission denied", p)
            return real(path, *a, **kw)
        return call

    monkeypatch.setattr(os, "scandir", guard(os.scandir, allow_self=False))
    monkeypatch.setattr(os, "stat", guard(os.stat, allow_self=True))  # the folder's own inode stays visible
    monkeypatch.setattr(os, "lstat", guard(os.lstat, allow_self=True))


def test_an_unreadable_sub_directory_is_named_and_the_rest_ingested(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    (repo / "docs").mkdir(parents=True)
    (repo / "AGENTS.md").write_text("- Always run `make lint` before pushing.\n")
    locked = repo / ".cursor"
    (locked / "rules").mkdir(parents=True)
    (locked / "rules" / "style.mdc").write_text("---\ndescription: style\n---\n- Prefer pathlib.\n")
    db = tmp_path / "s.db"
    _lock_dir(locked, monkeypatch)
    try:
        r = runner.invoke(app, ["ingest", str(repo), "--db", str(db), "--json"])
        table = runner.invoke(app, ["ingest", str(repo), "--db", str(tmp_path / "t.db")])
    finally:
        locked.chmod(0o755)
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["guidelines"]["added"] == 1 and data["files_read"] == 1
    assert [(s["path"], "unreadable directory" in s["reason"]) for s in data["skipped"]] == [(".cursor", True)]
    assert table.exit_code == 0 and "Traceback" not in table.output
    assert ".cursor: unreadable directory (Permission denied)" in table.output


@pytest.mark.parametrize("json_out", [False, True])
def test_nothing_ingested_because_every_file_was_skipped_exits_non_zero(tmp_path, json_out):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "memory.md").write_bytes(b"\x00\x01\x02binary\x00junk" * 10)
    (repo / "AGENTS.md").write_bytes(b"\x00\x00 not text \x00" * 50)
    db = tmp_path / "s.db"
    r = runner.invoke(app, ["ingest", str(repo), "--db", str(db), *(["--json"] if json_out else [])])
    assert r.exit_code == 1, r.output
    assert "memory.md" in r.output
    if not json_out:
        assert "nothing ingested" in r.output
    assert GuidelineStore(db).count() == 0


def test_an_empty_directory_exits_non_zero_with_json_too(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    r = runner.invoke(app, ["ingest", str(empty), "--db", str(tmp_path / "s.db"), "--json"])
    assert r.exit_code == 1 and json.loads(r.stdout)["files_read"] == 0


def test_dry_run_creates_nothing(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "AGENTS.md").write_text("- Always run `make lint` before pushing.\n- Use Node 22.\n")
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.delenv("MEMTUNE_DB_URL", raising=False)
    before = _tree(tmp_path)
    for extra in ([], ["--db", str(tmp_path / "new" / "deep" / "s.db")], ["--json"]):
        r = runner.invoke(app, ["ingest", str(repo), "--dry-run", *extra])
        assert r.exit_code == 0, r.output
        assert _tree(tmp_path) == before, extra
    assert "Dry run" in runner.invoke(app, ["ingest", str(repo), "--dry-run"]).output
    data = json.loads(runner.invoke(app, ["ingest", str(repo), "--dry-run", "--json"]).stdout)
    assert data["dry_run"] and data["guidelines"]["added"] == 2 and data["db"].endswith("memtune.db")


def test_dry_run_against_an_existing_store_leaves_its_files_alone(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "AGENTS.md").write_text("- Always run `make lint` before pushing.\n")
    db = tmp_path / "store" / "s.db"
    GuidelineStore(db).close()
    for side in db.parent.glob("s.db-*"):
        side.unlink()
    before = {p.name: p.read_bytes() for p in db.parent.iterdir()}
    r = runner.invoke(app, ["ingest", str(repo), "--dry-run", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert {p.name: p.read_bytes() for p in db.parent.iterdir()} == before
