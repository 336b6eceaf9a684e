"""The store by hand through the CLI: exit codes, messages, --json output."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from memtune import __version__
from memtune.cli import app

runner = CliRunner()


def call(*args, db=None):
    argv = [a for a in args]
    return runner.invoke(app, argv + (["--db", str(db)] if db else []))


def test_version_and_help():
    r = runner.invoke(app, ["--version"])
    assert r.exit_code == 0 and __version__ in r.output
    r = runner.invoke(app, ["--help"])
    assert r.exit_code == 0
    for cmd in ("ingest", "guidelines", "import", "dump"):
        assert cmd in r.output
    for sub in ("list", "show", "add", "edit", "deactivate", "activate", "search"):
        r = runner.invoke(app, ["guidelines", sub, "--help"])
        assert r.exit_code == 0 and "Example" in r.output


def test_add_list_show_edit_search(tmp_path):
    db = tmp_path / "s.db"
    r = call("guidelines", "add", "-n", "Start backend", "--content", "Run `yarn start` after `nvm use 22`.", "--category", "command", "--priority", "80", "-t", "node", db=db)
    assert r.exit_code == 0, r.output
    r = call("guidelines", "list", "--json", db=db)
    data = json.loads(r.output)
    assert data["total"] == 1 and data["guidelines"][0]["name"] == "Start backend"
    gid = data["guidelines"][0]["id"]
    r = call("guidelines", "edit", str(gid), "--content", "Run `yarn start` after `nvm use 22` (in the background).", "--reason", "clarify", db=db)
    assert r.exit_code == 0 and "version 2" in r.output
    r = call("guidelines", "show", str(gid), "--versions", "--json", db=db)
    shown = json.loads(r.output)
    assert [v["change_reason"] for v in shown["versions"]] == ["created", "clarify"]
    r = call("guidelines", "search", "backend yarn", "--json", db=db)
    assert json.loads(r.output)[0]["id"] == gid
    r = call("guidelines", "deactivate", str(gid), db=db)
    assert r.exit_code == 0
    assert json.loads(call("guidelines", "list", "--json", db=db).output)["total"] == 0
    assert json.loads(call("guidelines", "list", "--json", "--include-inactive", db=db).output)["total"] == 1


def test_add_redacts_secret(tmp_path):
    db = tmp_path / "s.db"
    r = call("guidelines", "add", "-n", "creds", "--content", "Login with password: hunter2secret", db=db)
    assert r.exit_code == 0, r.output
    assert "hunter2secret" not in r.output
    shown = call("guidelines", "show", "1", "--json", db=db).output
    assert "hunter2secret" not in shown and "REDACTED" in shown


def test_errors_are_clear_and_nonzero(tmp_path):
    db = tmp_path / "s.db"
    r = call("guidelines", "show", "42", db=db)
    assert r.exit_code == 3 and "no guideline with id 42" in r.output
    r = call("guidelines", "add", "-n", "x", "--content", "y", "--priority", "500", db=db)
    assert r.exit_code == 2 and "priority 500" in r.output
    r = call("guidelines", "list", "--scope", "team", "--priority-min", "900", db=db)
    assert r.exit_code == 2 and "team" in r.output and "900" in r.output


def test_dump_and_import_cli(tmp_path):
    db = tmp_path / "s.db"
    call("guidelines", "add", "-n", "a", "--content", "alpha", db=db)
    out = tmp_path / "g.yaml"
    r = call("dump", "--out", str(out), "--versions", db=db)
    assert r.exit_code == 0 and out.exists()
    r = call("import", str(out), db=tmp_path / "other.db")
    assert r.exit_code == 0 and "1 added" in r.output
    r = call("import", str(tmp_path / "missing.json"), db=db)
    assert r.exit_code == 2 and "does not exist" in r.output
