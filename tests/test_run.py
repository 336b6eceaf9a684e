"""``memtune run``: every stage runs once, a rerun skips unchanged stages, an edit reruns the rest."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from memtune.cli import app
from memtune.run import RunConfig, run

MEMORY = """# Demo project memory

## Critical Commands

### Start the API
```bash
make api-up PORT=8123
```

## Environment Gotchas
- **Node Version**: ALWAYS run `nvm use 22` before `yarn start`; Node 20 breaks the Prisma client.
- **Redis Port**: the dev Redis listens on port `6380`, not 6379.
"""

FAST_EVAL = {"limit": 3, "max_new_tokens": 8, "n_controls": 2, "batch_size": 4}


def _memory(tmp_path: Path) -> Path:
    repo = tmp_path / "demo"
    repo.mkdir()
    (repo / "memory.md").write_text(MEMORY, encoding="utf-8")
    return repo


def _cfg(repo: Path, tmp_path: Path, model: str | None, **kw) -> RunConfig:
    return RunConfig(
        paths=[str(repo)],
        db=str(tmp_path / "store.db"),
        work_dir=str(tmp_path / "work"),
        model=model,
        export={"examples_per_guideline": 3},
        train={"max_steps": 2, "epochs": 1, "batch_size": 4, "probe_sample": 2, "probe_max_new_tokens": 8},
        eval=FAST_EVAL,
        **kw,
    )


def _status(res) -> dict[str, str]:
    return {s.name: s.status for s in res.stages}


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from tests.tiny_model import build_model_dir

    return str(build_model_dir(tmp_path_factory.mktemp("tiny") / "model", initializer_range=0.2))


def test_run_all_stages_then_skip_then_rerun_after_edit(tmp_path, tiny_model):
    repo = _memory(tmp_path)
    said: list[str] = []
    first = run(_cfg(repo, tmp_path, tiny_model), progress=False, say=said.append)
    assert _status(first) == {"ingest": "ran", "export": "ran", "train": "ran", "eval": "ran"}
    # before training it says how long training should take on this machine
    eta = next(m for m in said if m.startswith("train    expected: about "))
    assert "tokens/s" in eta and "core" in eta
    assert said.index(eta) < next(i for i, m in enumerate(said) if m.startswith("train    ran"))
    work = tmp_path / "work"
    assert (work / "bundle" / "train.jsonl").is_file()
    assert (work / "adapter" / "adapter_model.safetensors").is_file()
    # the adapter's lineage names the store and scope its notes came from (answers retrieve from it)
    ds = json.loads((work / "adapter" / "memtune.json").read_text())["dataset"]
    assert ds["store"] == f"sqlite:///{(tmp_path / 'store.db').resolve()}" and ds["filter"]["scope_id"]
    # the run recipe puts LoRA on the MLP blocks only (where the default model keeps facts)
    targets = json.loads((work / "adapter" / "adapter_config.json").read_text())["target_modules"]
    assert targets and all(t.startswith("mlp.") for t in targets), targets
    # ... kept off the massive-activation input directions (train_config.yaml records what ran)
    ran = (work / "adapter" / "train_config.yaml").read_text()
    assert "protect_energy: 0.3" in ran and "lr: 0.002" in ran and "replay_fraction: 0.4" in ran, ran
    # ... on a bundle where every note keeps questions that name its topic
    exported = json.loads((work / "bundle" / "metadata.json").read_text())["config"]
    assert exported["min_topic_questions"] == 4 and exported["fact_share"] == 0.75, exported
    # ... whose answers open with the note's name
    assert exported["named_answers"] is True, exported
    # ... with a third of the answers asked again with the note shown, listed first in most of them
    assert exported["rag_copies"] == 0.35 and exported["rag_gold_first"] == 0.75, exported
    forms = [json.loads(line)["metadata"]["answer_form"]
             for line in (work / "bundle" / "train.jsonl").read_text().splitlines()]
    assert forms.count("named") > len(forms) / 3, forms
    for name in ("report.json", "report.md", "report.html"):
        assert (work / "report" / name).is_file()
    assert set(first.headline) >= {"adapter_recall", "base_recall", "adapter_rag_recall"}

    again = run(_cfg(repo, tmp_path, tiny_model), progress=False)
    assert _status(again) == {"ingest": "ran", "export": "skipped", "train": "skipped", "eval": "skipped"}
    assert again.headline == first.headline

    mem = repo / "memory.md"
    mem.write_text(mem.read_text().replace("6380", "6390"), encoding="utf-8")
    third = run(_cfg(repo, tmp_path, tiny_model), progress=False)
    assert _status(third) == {"ingest": "ran", "export": "ran", "train": "ran", "eval": "ran"}
    assert "6390" in (work / "bundle" / "train.jsonl").read_text()

    forced = run(_cfg(repo, tmp_path, tiny_model, force=True, skip_eval=True), progress=False)
    assert _status(forced) == {"ingest": "ran", "export": "ran", "train": "ran"}


def test_a_rerun_keeps_the_adapter_when_only_the_export_settings_moved_and_loses_nothing_when_training_fails(
        tmp_path, tiny_model, monkeypatch):
    """Export settings that leave the training data as it was (here: no train.py in the bundle) rerun the
    export but not the 15-60 minutes of training; a training run that fails or is interrupted puts the
    previous adapter back."""
    repo = _memory(tmp_path)
    first = run(_cfg(repo, tmp_path, tiny_model, skip_eval=True), progress=False)
    assert _status(first)["train"] == "ran"
    adapter = tmp_path / "work" / "adapter"
    created = json.loads((adapter / "memtune.json").read_text())["created_at"]
    cfg = _cfg(repo, tmp_path, tiny_model, skip_eval=True)
    cfg.export = {**cfg.export, "generate_script": False}
    same_data = run(cfg, progress=False)
    assert _status(same_data) == {"ingest": "ran", "export": "ran", "train": "skipped"}

    import memtune.train

    def interrupted(tcfg, progress=True):
        Path(tcfg.out).mkdir(parents=True, exist_ok=True)
        (Path(tcfg.out) / "checkpoint-partial").write_text("half done")
        raise KeyboardInterrupt

    monkeypatch.setattr(memtune.train, "train", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(_cfg(repo, tmp_path, tiny_model, skip_eval=True, force=True), progress=False)
    assert json.loads((adapter / "memtune.json").read_text())["created_at"] == created
    assert not (adapter / "checkpoint-partial").exists()
    assert not adapter.with_name("adapter.previous").exists()


def test_run_missing_path_is_clear(tmp_path):
    r = CliRunner().invoke(app, ["run", str(tmp_path / "nope"), "--db", str(tmp_path / "s.db")])
    assert r.exit_code == 2 and "path not found" in r.output


@pytest.mark.slow
def test_run_end_to_end_on_default_model(tmp_path):
    """The main job on the real embedded model, a few steps (CI)."""
    repo = _memory(tmp_path)
    res = run(_cfg(repo, tmp_path, None), progress=False)
    assert _status(res) == {"ingest": "ran", "export": "ran", "train": "ran", "eval": "ran"}
    lineage = json.loads((tmp_path / "work" / "adapter" / "memtune.json").read_text())
    assert "smollm2" in json.dumps(lineage["base_model"]).lower()
    assert (tmp_path / "work" / "report" / "report.html").is_file()
    assert res.headline["adapter_recall"] is not None
