"""Negative counts are refused by the CLI before anything runs: exit 2, the option and value named."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from memtune.cli import app
from memtune.store import GuidelineInput, GuidelineStore

runner = CliRunner()


@pytest.fixture
def db(tmp_path):
    path = tmp_path / "s.db"
    with GuidelineStore(path) as s:
        for i in range(3):
            s.add(GuidelineInput(name=f"rule {i}", content=f"Run `make check-{i}` before pushing.", category="command"))
    return str(path)


@pytest.mark.parametrize("args", [
    ["guidelines", "list", "--limit", "-1"],
    ["guidelines", "list", "--offset", "-2"],
    ["guidelines", "search", "make", "--limit", "-3"],
    ["guidelines", "search", "make", "--limit", "0"],
    ["eval", "adapter-dir", "--limit", "-1"],
    ["run", "repo-dir", "--eval-limit", "-1"],
])
def test_negative_limits_and_offsets_are_refused(db, args):
    r = runner.invoke(app, [*args, "--db", db])
    assert r.exit_code == 2, r.output
    option = next(a for a in args if a.startswith("--"))
    assert option in r.output and "Invalid value" in r.output
    assert "Traceback" not in r.output


def test_zero_and_positive_paging_still_work(db):
    r = runner.invoke(app, ["guidelines", "list", "--db", db, "--limit", "2", "--offset", "0", "--json"])
    assert r.exit_code == 0, r.output
    assert '"total": 3' in r.output
    r = runner.invoke(app, ["guidelines", "list", "--db", db, "--offset", "3"])
    assert r.exit_code == 0, r.output
