"""End-to-end ingestion into a real store: summary, idempotence, versions, merges, secrets, atomicity."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memtune.cli import app
from memtune.ingest import ingest
from memtune.store import GuidelineFilter, GuidelineStore

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "memtune"
FAKE_SECRETS = ["SuperSecret123!", "ghp_1234567890abcdefghijklmnopqrstuvwxyzAB", "hunter2staging"]


@pytest.fixture
def repo(tmp_path):
    dst = tmp_path / "memtune"
    shutil.copytree(EXAMPLES, dst)
    return dst


def test_ingest_example_memory(repo, tmp_path):
    store = GuidelineStore(tmp_path / "s.db")
    rep = ingest([repo], store)
    assert rep.files_by_kind["memory"] == 1
    assert rep.files_by_kind["cursor-rule"] == 2
    assert rep.files_by_kind["agents"] == 1 and rep.files_by_kind["claude"] == 1
    assert rep.added >= 40, rep.to_dict()
    assert rep.scope_id == "memtune"
    names = {g.name for g in store.query()}
    assert any("Torch Pin" in n for n in names)
    # every command block is its own guideline and keeps its code intact
    cmds = store.query(GuidelineFilter(category="command"))
    assert any("```bash" in g.content and "make demo" in g.content for g in cmds)
    torch = next(g for g in store.query() if "Torch Pin" in g.name)
    assert torch.priority > 50 and torch.sources[0].file.endswith("memory.md") and torch.sources[0].line


def test_secrets_never_reach_store_or_output(repo, tmp_path):
    db = tmp_path / "s.db"
    result = CliRunner().invoke(app, ["ingest", str(repo), "--db", str(db), "--verbose"])
    assert result.exit_code == 0, result.output
    for secret in FAKE_SECRETS:
        assert secret not in result.output
    raw = b"".join(p.read_bytes() for p in tmp_path.glob("s.db*"))
    for secret in FAKE_SECRETS:
        assert secret.encode() not in raw, f"{secret} leaked into the database file"
    store = GuidelineStore(db)
    assert len(store.findings()) >= 3
    assert all(set(f) == {"run_id", "file", "line", "secret_type"} for f in store.findings())
    assert "REDACTED" in "".join(g.content for g in store.query())


def test_reingest_is_noop_and_change_makes_version(repo, tmp_path):
    store = GuidelineStore(tmp_path / "s.db")
    first = ingest([repo], store)
    again = ingest([repo], store)
    assert again.added == 0 and again.updated == 0
    assert again.unchanged + again.merged >= first.added
    mem = repo / ".cursor" / "memory" / "memory.md"
    mem.write_text(mem.read_text().replace("torch==2.13.0", "torch==2.14.0"))
    third = ingest([repo], store)
    assert third.updated == 1 and third.added == 0
    g = next(g for g in store.query() if "torch==2.14.0" in g.content)
    hist = store.get(g.id, with_versions=True)
    assert hist.version == 2 and "torch==2.13.0" in hist.versions[0].content


def test_duplicates_across_files_merged_with_all_sources(repo, tmp_path):
    store = GuidelineStore(tmp_path / "s.db")
    rep = ingest([repo], store)
    assert rep.merged >= 1
    cache = [g for g in store.query() if "MEMTUNE_CACHE_DIR" in g.content]
    assert len(cache) == 1
    assert {s.file for s in cache[0].sources} == {"AGENTS.md", "CLAUDE.md"}


def test_same_heading_in_two_files_stays_two_guidelines(tmp_path):
    (tmp_path / "a").mkdir()
    (tmp_path / "a" / "AGENTS.md").write_text("# Testing\n\nRun pytest with -x to stop early.\n")
    (tmp_path / "a" / "CLAUDE.md").write_text("# Testing\n\nUse the tiny model fixture for unit tests.\n")
    store = GuidelineStore(tmp_path / "s.db")
    ingest([tmp_path / "a"], store)
    texts = [g.content for g in store.query()]
    assert any("pytest" in t for t in texts) and any("tiny model" in t for t in texts)
    assert all(g.version == 1 for g in store.query())


def test_crash_mid_run_leaves_store_unchanged(repo, tmp_path, monkeypatch):
    store = GuidelineStore(tmp_path / "s.db")
    ingest([repo / "AGENTS.md"], store)
    before = [(g.id, g.content, g.version) for g in store.query(GuidelineFilter(active_only=False))]
    real = store.bulk_add

    def crash_after_writing(inputs):
        real(inputs)  # rows are written inside the run's transaction ...
        raise RuntimeError("power cut")  # ... and then the process dies

    monkeypatch.setattr(store, "bulk_add", crash_after_writing)
    with pytest.raises(RuntimeError):
        ingest([repo], store)
    after = [(g.id, g.content, g.version) for g in store.query(GuidelineFilter(active_only=False))]
    assert after == before
    assert store.findings() == []


def test_dry_run_writes_nothing(repo, tmp_path):
    store = GuidelineStore(tmp_path / "s.db")
    rep = ingest([repo], store, dry_run=True)
    assert rep.added > 0 and store.count() == 0


def test_skipped_files_reported(tmp_path):
    (tmp_path / "memory.md").write_bytes(b"\x00\x01\x02binary\x00junk" * 10)
    (tmp_path / "AGENTS.md").write_text("- Always run `make lint` before pushing.\n")
    store = GuidelineStore(tmp_path / "s.db")
    rep = ingest([tmp_path], store)
    assert rep.added == 1
    assert [s.path for s in rep.skipped] == ["memory.md"]
    assert rep.skipped[0].reason


def test_cli_summary_and_json(repo, tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["ingest", str(repo), "--db", str(tmp_path / "s.db"), "--json"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.output)
    assert data["guidelines"]["added"] >= 40 and data["files_read"] == 5
    r = runner.invoke(app, ["ingest", str(repo), "--db", str(tmp_path / "s.db")])
    assert r.exit_code == 0 and "unchanged" in r.output and "added 0" in r.output


def test_cli_errors(tmp_path):
    runner = CliRunner()
    r = runner.invoke(app, ["ingest", str(tmp_path / "nope"), "--db", str(tmp_path / "s.db")])
    assert r.exit_code != 0 and "nope" in r.output
    empty = tmp_path / "empty"
    empty.mkdir()
    r = runner.invoke(app, ["ingest", str(empty), "--db", str(tmp_path / "s.db")])
    assert r.exit_code == 1 and "no agent-memory files found" in r.output
