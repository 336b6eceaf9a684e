"""`memtune export`: options map onto ExportConfig, errors exit cleanly, --json for scripts."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from memtune.cli.app import app

import memtune.cli.export  # noqa: F401  (registers the command even if memtune.cli is not imported)

runner = CliRunner()


@pytest.fixture
def db(store):
    return str(store.path)


def test_export_json(db, tmp_path):
    out = tmp_path / "bundle"
    r = runner.invoke(app, ["export", "--db", db, "--out", str(out), "--format", "alpaca", "-n", "3", "--json",
                            "--tag", "node", "--tag", "security", "--tags-mode", "any", "--no-negatives"])
    assert r.exit_code == 0, r.output
    data = json.loads(r.stdout)
    assert data["success"] and data["format"] == "alpaca"
    assert data["stats"]["guidelines_matched"] == 3 and data["stats"]["negatives"] == 0
    lines = sum(len((out / f).read_text().splitlines()) for f in ("train.jsonl", "eval.jsonl"))
    assert data["stats"]["examples_total"] == lines >= 9  # 3 per guideline, plus the recipe's note-shown copies


def test_export_table_and_force(db, tmp_path):
    out = tmp_path / "bundle"
    r = runner.invoke(app, ["export", "--db", db, "--out", str(out), "--category", "command", "--split-by", "guideline",
                            "--split-ratio", "0.5", "--no-script", "--seed", "3"])
    assert r.exit_code == 0, r.output
    assert "Bundle written" in r.stdout and "train.jsonl" in r.stdout
    assert not (out / "train.py").exists()
    again = runner.invoke(app, ["export", "--db", db, "--out", str(out)])
    assert again.exit_code == 2 and "not empty" in again.output and "--force" in again.output
    forced = runner.invoke(app, ["export", "--db", db, "--out", str(out), "--force", "--json"])
    assert forced.exit_code == 0 and (out / "train.py").is_file()


def test_export_reports_every_bad_option_at_once(db, tmp_path):
    r = runner.invoke(app, ["export", "--db", db, "--out", str(tmp_path / "b"), "--format", "csv", "-n", "99",
                            "--split-ratio", "0.8", "--priority-min", "200", "--tags-mode", "most"])
    assert r.exit_code == 2
    for needle in ("format 'csv'", "examples per guideline 99", "split ratio 0.8", "priority min 200", "tags mode"):
        assert needle in r.output


def test_export_with_no_match_fails_clearly(db, tmp_path):
    r = runner.invoke(app, ["export", "--db", db, "--out", str(tmp_path / "b"), "--tag", "nothing-has-this"])
    assert r.exit_code == 3 and "no guidelines match" in r.output


def test_environment_supplies_defaults(db, tmp_path, monkeypatch):
    monkeypatch.setenv("AGENT_MEMORY_LORA_OUTPUT_PATH", str(tmp_path / "from-env"))
    monkeypatch.setenv("AGENT_MEMORY_LORA_DEFAULT_FORMAT", "sharegpt")
    r = runner.invoke(app, ["export", "--db", db, "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["format"] == "sharegpt" and (tmp_path / "from-env" / "train.jsonl").is_file()


def test_control_fraction_flag_adds_not_in_memory_examples(db, tmp_path):
    base = runner.invoke(app, ["export", "--db", db, "--out", str(tmp_path / "a"), "--json", "--control-fraction", "0"])
    more = runner.invoke(app, ["export", "--db", db, "--out", str(tmp_path / "b"), "--json", "--control-fraction", "0.2"])
    assert base.exit_code == 0 and more.exit_code == 0, more.output
    assert json.loads(base.stdout)["stats"]["unknown_examples"] == 0
    assert json.loads(more.stdout)["stats"]["unknown_examples"] > 0
    rows = [json.loads(line) for line in (tmp_path / "b" / "train.jsonl").read_text().splitlines()]
    unknown = [r for r in rows if r["metadata"].get("kind") == "unknown"]
    assert unknown and all("project memory" in r["messages"][-1]["content"] for r in unknown)
    bad = runner.invoke(app, ["export", "--db", db, "--out", str(tmp_path / "c"), "--control-fraction", "0.9"])
    assert bad.exit_code != 0 and "control" in bad.output.lower()


def test_fact_share_option_switches_value_questions(db, tmp_path):
    def families(share: str) -> set[str]:
        out = tmp_path / f"bundle-{share}"
        r = runner.invoke(app, ["export", "--db", db, "--out", str(out), "-n", "8", "--fact-share", share, "--json"])
        assert r.exit_code == 0, r.output
        rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
        return {row["metadata"]["family"] for row in rows}

    assert any(f.startswith("fact_") for f in families("1"))
    assert not any(f.startswith("fact_") for f in families("0"))
    r = runner.invoke(app, ["export", "--db", db, "--out", str(tmp_path / "bad"), "--fact-share", "2"])
    assert r.exit_code != 0 and "fact share 2.0 must be a number in 0..1" in r.output


def test_min_topic_questions_option_reaches_the_bundle(db, tmp_path):
    def topical(floor: str) -> int:
        out = tmp_path / f"bundle-{floor}"
        r = runner.invoke(app, ["export", "--db", db, "--out", str(out), "-n", "8", "--fact-share", "1",
                                "--min-topic-questions", floor, "--json"])
        assert r.exit_code == 0, r.output
        rows = [json.loads(line) for line in (out / "train.jsonl").read_text().splitlines()]
        return sum(not row["metadata"]["family"].startswith(("fact_", "negative")) for row in rows)

    assert topical("3") > topical("0")
    r = runner.invoke(app, ["export", "--db", db, "--out", str(tmp_path / "bad"), "--min-topic-questions", "-2"])
    assert r.exit_code != 0 and "min topic questions -2 must be a whole number in 0..50" in r.output
