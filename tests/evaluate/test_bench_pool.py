"""bench_quality.py --pool: which projects it reads, and the mean ± spread it prints (no model)."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


@pytest.fixture(scope="module")
def bench_pool():
    sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_pool", BENCH / "bench_pool.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _pool(tmp_path: Path) -> Path:
    pool = tmp_path / "pool"
    for name in ("alpha", "beta", "gamma"):
        (pool / name / "memory").mkdir(parents=True)
        (pool / name / "memory" / "AGENTS.md").write_text("# x\n- run `make test`\n")
        rows = [{"question": f"{name} q{i}?", "expected_keywords": ["make test"], "kind": "value"} for i in range(3)]
        rows.append({"question": "Which port?", "expected_keywords": [], "kind": "control"})
        (pool / name / "questions.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    (pool / "pool.yaml").write_text("projects:\n  alpha: {split: dev}\n  beta: {split: holdout}\n"
                                    "  gamma: {split: dev}\n")
    return pool


def test_load_pool_reads_splits_questions_and_controls(bench_pool, tmp_path):
    pool = _pool(tmp_path)
    dev = bench_pool.load_pool(pool, "dev")
    assert [p["name"] for p in dev] == ["alpha", "gamma"]
    assert len(dev[0]["questions"]) == 3 and dev[0]["controls"] == ["Which port?"]
    assert [p["name"] for p in bench_pool.load_pool(pool, "holdout")] == ["beta"]
    assert len(bench_pool.load_pool(pool, "all")) == 3
    assert [p["name"] for p in bench_pool.load_pool(pool, "all", ["beta"])] == ["beta"]
    with pytest.raises(SystemExit, match="no project nope"):
        bench_pool.load_pool(pool, "dev", ["nope"])
    # the list form of pool.yaml works too
    (pool / "pool.yaml").write_text("projects:\n  - {name: alpha, split: holdout}\n")
    assert [p["name"] for p in bench_pool.load_pool(pool, "holdout")] == ["alpha"]


def test_main_pool_prints_mean_and_spread_and_writes_json(bench_pool, tmp_path, monkeypatch, capsys):
    pool = _pool(tmp_path)
    figures = {"alpha": 0.6, "gamma": 0.8}

    def fake_run(project, work, overrides, max_new_tokens, rag_k):
        assert overrides == {"export": {}, "train": {"seed": 1}, "eval": {}}
        v = figures[project["name"]]
        return {"project": project["name"], "split": project["split"], "questions": 3, "controls": 1,
                "adapter": v, "base_rag": 0.5, "adapter_rag": 0.9, "right_note": 1.0, "invented": 0.0,
                "invented_rag": 0.25, "loss_change_pct": 2.0, "train_seconds": 100.0, "tokens_per_s": 400.0,
                "seconds": 1.0}

    monkeypatch.setattr(bench_pool, "run_project", fake_run)
    args = SimpleNamespace(pool=pool, split="dev", project=[], work_dir=tmp_path / "w", max_new_tokens=96,
                           rag_k=3, json=False)
    (tmp_path / "w").mkdir()
    assert bench_pool.main_pool(args, {"export": {}, "train": {"seed": 1}, "eval": {}}) == 0
    out = capsys.readouterr().out
    assert "alpha" in out and "gamma" in out and "beta" not in out
    assert "0.700±0.100" in out  # mean ± population sd of 0.6 and 0.8
    assert "CPU vector flags" in out and "NOT met" in out  # invented with retrieval 0.25 > 0.10
    saved = json.loads((tmp_path / "w" / "pool.json").read_text())
    assert saved["summary"]["adapter"]["mean"] == pytest.approx(0.7) and len(saved["projects"]) == 2
