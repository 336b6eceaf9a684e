"""Every way text enters the store redacts it, and export redacts once more on the way out.

Entrances: ``memtune ingest``, ``memtune import``, ``guidelines add/edit``, MCP ``add_guideline``
and the store's own write methods (the choke point behind all of them). Each test plants values
in the shapes that once got through and then looks for them everywhere they could end up: the
raw database bytes (file, WAL, full-text index), ``memtune dump --versions`` and the messages
printed — which must name the type and place of a redaction, never the value.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memtune.cli import app
from memtune.store import GuidelineInput, GuidelineStore, Source

runner = CliRunner()

PLANTED = {
    "prose": "Harbor!Sail2024",
    "login": "S3cr3t!pass",
    "pass": "QaPassWord2718",
    "german": "GermanPw123",
    "shell": "myredissecret",
    "table": "Adm1n!Tbl",
    "unseal": "5c1e9a0b7d3f42e8a6b1c0d9e8f7a6b5",
    "mdc": "Kiwi77#fruit",
}
MEMORY_MD = f"""# Ops memory

## Access
- Local admin account is ops-admin@example.test with password {PLANTED["prose"]}
- QA: login admin / {PLANTED["login"]} on staging
- Use `$DB_PASSWORD` from the vault for the database; never paste it here.

## Cache
- `REDISCLI_AUTH="${{REDIS_AUTH:-{PLANTED["shell"]}}}" redis-cli ping` checks the cache.
- Vault unseal key: {PLANTED["unseal"]}

## Seed users

| User | Password | Role |
|------|----------|------|
| admin | {PLANTED["table"]} | owner |
"""
CLAUDE_MD = f"""# Notes
- Seed user qa@example.test, pass "{PLANTED["pass"]}"
- Testkonto Passwort: {PLANTED["german"]}
- ALWAYS run `make seed` before the e2e tests.
"""
MDC = f"""---
description: Staging CMS; admin pw {PLANTED["mdc"]} for content fixes
globs: ["cms/**"]
alwaysApply: false
---
- Use the CMS admin only for content fixes.
"""


def write_memory(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "memory.md").write_text(MEMORY_MD, encoding="utf-8")
    (root / "CLAUDE.md").write_text(CLAUDE_MD, encoding="utf-8")
    rules = root / ".cursor" / "rules"
    rules.mkdir(parents=True)
    (rules / "cms.mdc").write_text(MDC, encoding="utf-8")
    return root


def raw_bytes(db: Path) -> bytes:
    """Everything SQLite has on disk for this store (main file, WAL, shared memory)."""
    return b"".join(p.read_bytes() for p in db.parent.glob(db.name + "*") if p.is_file())


def leaked(blob: bytes | str, values) -> list[str]:
    data = blob.encode("utf-8") if isinstance(blob, str) else blob
    return [v for v in values if v.encode("utf-8") in data]


def dump_all(db: Path) -> str:
    r = runner.invoke(app, ["dump", "--versions", "--format", "json", "--db", str(db)])
    assert r.exit_code == 0, r.output
    return r.output


def test_ingest_stores_no_planted_value(tmp_path: Path) -> None:
    repo = write_memory(tmp_path / "repo")
    db = tmp_path / "s.db"
    r = runner.invoke(app, ["ingest", str(repo), "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert leaked(r.output, PLANTED.values()) == []
    dumped = dump_all(db)
    assert leaked(dumped, PLANTED.values()) == []
    assert leaked(raw_bytes(db), PLANTED.values()) == []
    # the rules around the credentials are still there
    assert "Use `$DB_PASSWORD` from the vault" in dumped
    assert "ops-admin@example.test with password [REDACTED:password]" in dumped
    assert "make seed" in dumped and "content fixes" in dumped
    with GuidelineStore(db) as s:  # the ingest log records where and what kind, never the value
        assert s.count() > 0


def _import_file(tmp_path: Path) -> Path:
    data = [
        {
            "name": "Staging login",
            "category": "context",
            "tags": ["auth"],
            "metadata": {"note": f"admin pw {PLANTED['mdc']}"},
            "versions": [
                {"content": f"Login admin / {PLANTED['login']}"},
                {"content": f"Log in with password {PLANTED['prose']}.",
                 "rationale": f"Passwort: {PLANTED['german']}",
                 "examples": {"good": [f'pass "{PLANTED["pass"]}"'], "bad": []}},
            ],
        },
        {"name": "Cache", "content": f"REDISCLI_AUTH=\"${{REDIS_AUTH:-{PLANTED['shell']}}}\" redis-cli ping"},
    ]
    path = tmp_path / "team.json"
    path.write_text(json.dumps(data), encoding="utf-8")
    return path


def test_import_redacts_every_version_and_field(tmp_path: Path) -> None:
    path, db = _import_file(tmp_path), tmp_path / "s.db"
    r = runner.invoke(app, ["import", str(path), "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert leaked(r.output, PLANTED.values()) == []
    assert "secret redacted" in r.output and "password in content" in r.output
    assert "6 secret(s) redacted" in r.output
    assert leaked(dump_all(db), PLANTED.values()) == []
    assert leaked(raw_bytes(db), PLANTED.values()) == []
    # importing the same file again changes nothing: the redacted text is what is compared
    r = runner.invoke(app, ["import", str(path), "--db", str(db), "--json"])
    counts = json.loads(r.stdout)
    assert counts["unchanged"] == 2 and counts["secrets_redacted"] == 6


def test_guidelines_add_and_edit_redact_every_field(tmp_path: Path) -> None:
    db = tmp_path / "s.db"
    r = runner.invoke(app, ["guidelines", "add", "-n", "Router", "--content", f"Router admin pw {PLANTED['mdc']}",
                            "--rationale", f"login admin / {PLANTED['login']}", "--good",
                            f"with password {PLANTED['prose']}", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "Redacted 3 secret(s)" in r.output and "password in content" in r.output
    assert leaked(r.output, PLANTED.values()) == []
    gid = json.loads(runner.invoke(app, ["guidelines", "list", "--json", "--db", str(db)]).stdout)["guidelines"][0]["id"]
    r = runner.invoke(app, ["guidelines", "edit", str(gid), "--content", f"Passwort: {PLANTED['german']}",
                            "--rationale", f'pass "{PLANTED["pass"]}"', "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "Redacted 2 secret(s)" in r.output and leaked(r.output, PLANTED.values()) == []
    dumped = dump_all(db)
    assert leaked(dumped, PLANTED.values()) == [] and leaked(raw_bytes(db), PLANTED.values()) == []
    assert "Router admin pw [REDACTED:password]" in dumped  # the old version, redacted, kept in history


def test_mcp_add_guideline_redacts(tmp_path: Path) -> None:
    from memtune.serve.mcp_server import McpSettings, _Tools

    db = tmp_path / "m.db"
    tools = _Tools(McpSettings(db=str(db), export_root=tmp_path / "exports"))
    out = tools.add_guideline({"name": "Admin", "content": "Login admin / McpS3cret!pw",
                               "rationale": f"admin pw {PLANTED['mdc']}", "tags": ["auth"]}, None)
    assert out["action"] == "added"
    assert out["redacted"] == ["content:password", "rationale:password"]
    tools.store().close()
    assert leaked(raw_bytes(db), ["McpS3cret!pw", PLANTED["mdc"]]) == []
    assert "Login admin / [REDACTED:password]" in dump_all(db)


def test_store_write_methods_redact_whatever_the_caller(sqlite_store: GuidelineStore) -> None:
    """The choke point: a caller that never heard of redaction still cannot store a secret."""
    s = sqlite_store
    s.upsert(GuidelineInput(name="a", content=f"with password {PLANTED['prose']}", source=Source("x.md", 1)))
    g = s.add(GuidelineInput(name="b", content="plain", rationale=f"Passwort: {PLANTED['german']}",
                             metadata={"frontmatter": {"description": f"admin pw {PLANTED['mdc']}"}}))
    s.bulk_add([GuidelineInput(name="c", content=f"login admin / {PLANTED['login']}",
                               examples={"good": [f'pass "{PLANTED["pass"]}"'], "bad": []})])
    s.edit(g.id, content=f"Vault unseal key: {PLANTED['unseal']}")
    s.upsert(GuidelineInput(name=f"password {PLANTED['table']}", content="x"))
    assert s.search(PLANTED["prose"]) == [] and s.search("GermanPw123") == []
    s.close()
    assert leaked(raw_bytes(s.path), PLANTED.values()) == []


# --- export: defence in depth -------------------------------------------------------------------


def _poison(db: Path) -> None:
    """Write secrets straight into the tables, as a store filled by another tool or by SQL might."""
    with sqlite3.connect(db) as c:
        c.execute("UPDATE guideline_versions SET content = ?, rationale = ?, examples_json = ? WHERE guideline_id = 1",
                  (f"Local admin account is ops-admin@example.test with password {PLANTED['prose']}",
                   f"Passwort: {PLANTED['german']}", json.dumps({"good": [f"login admin / {PLANTED['login']}"],
                                                                  "bad": []})))
        c.execute("UPDATE guidelines SET name = ?, metadata_json = ? WHERE id = 2",
                  (f"Router admin pw {PLANTED['mdc']}", json.dumps({"description": f"pass \"{PLANTED['pass']}\""})))


def _store_with_poison(tmp_path: Path) -> Path:
    db = tmp_path / "s.db"
    with GuidelineStore(db) as s:
        s.upsert(GuidelineInput(name="Staging admin", content="Log in to staging as the ops admin.",
                                category="context", source=Source("memory.md", 3)))
        s.upsert(GuidelineInput(name="Router", content="The router admin UI is on port 8443.",
                                category="context", source=Source("memory.md", 4)))
        s.upsert(GuidelineInput(name="Node", content="ALWAYS run `nvm use 22` before `yarn install`.",
                                category="environment", source=Source("memory.md", 5)))
    _poison(db)
    with GuidelineStore(db) as s:  # the poison is really there (the test would prove nothing otherwise)
        assert PLANTED["prose"] in s.get(1).content and PLANTED["mdc"] in s.get(2).name
    return db


def test_export_removes_what_the_store_still_holds(tmp_path: Path) -> None:
    from memtune.dataset import ExportConfig, export_guidelines_as_lora

    db = _store_with_poison(tmp_path)
    out = tmp_path / "bundle"
    with GuidelineStore(db) as s:
        res = export_guidelines_as_lora(s, ExportConfig(output_path=out, examples_per_guideline=4))
    assert res.success, res.error
    for f in out.rglob("*"):
        if f.is_file():
            assert leaked(f.read_bytes(), PLANTED.values()) == [], f.name
    assert res.stats["secrets_removed"] == 5
    meta = json.loads((out / "metadata.json").read_text(encoding="utf-8"))
    assert meta["counts"]["secrets_removed"] == 5
    assert any("removed 5 secret value(s) from 2 guideline(s)" in w for w in res.warnings)
    assert "[REDACTED:password]" in (out / "train.jsonl").read_text(encoding="utf-8")


def test_export_cli_reports_the_removal(tmp_path: Path) -> None:
    db = _store_with_poison(tmp_path)
    out = tmp_path / "bundle"
    r = runner.invoke(app, ["export", "--out", str(out), "-n", "3", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert "secrets removed" in r.output and "removed 5 secret value(s)" in r.output
    assert leaked(r.output, PLANTED.values()) == []


def test_clean_export_reports_zero(tmp_path: Path) -> None:
    from memtune.dataset import ExportConfig, export_guidelines_as_lora

    db = tmp_path / "s.db"
    with GuidelineStore(db) as s:
        s.upsert(GuidelineInput(name="Node", content="ALWAYS run `nvm use 22` first.", category="environment"))
        res = export_guidelines_as_lora(s, ExportConfig(output_path=tmp_path / "b", examples_per_guideline=2))
    assert res.success and res.stats["secrets_removed"] == 0
    assert not any("secret value" in w for w in res.warnings)


@pytest.mark.parametrize("field", ["content", "rationale"])
def test_redaction_messages_never_hold_the_value(tmp_path: Path, field: str) -> None:
    from memtune.store.redact import redact_fields

    _, hits = redact_fields({field: f"line one\nwith password {PLANTED['prose']}"})
    assert [h.describe() for h in hits] == [f"password in {field} line 2"]
    assert PLANTED["prose"] not in repr(hits)
