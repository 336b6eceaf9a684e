"""Self-replay: text the base model writes, cached per model, learned on every token."""

from __future__ import annotations

import json

import pytest


@pytest.fixture
def tiny_lm(tiny_model_dir):
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(tiny_model_dir)


def test_seeds_are_openings_of_the_shipped_sentences():
    from memtune.train.replay import replay_seeds

    seeds = replay_seeds()
    assert len(seeds) > 30
    assert all(3 <= len(s.split()) <= 7 for s in seeds)
    two = replay_seeds("One two three four five. Six seven eight nine ten! Short one.")
    assert len(two) == 2 and two[0].startswith("One two three") and two[1].startswith("Six seven eight")
    assert two == replay_seeds("One two three four five. Six seven eight nine ten! Short one.")  # deterministic


def test_self_replay_generates_once_then_reads_the_cache(tiny_lm, tiny_tokenizer, monkeypatch):
    import memtune.train.replay as replay

    calls = []
    real = replay._generate
    monkeypatch.setattr(replay, "_generate", lambda *a, **k: calls.append(k["chunk"]) or real(*a, **k))
    first = replay.self_replay_examples(tiny_lm, tiny_tokenizer, 5, model_key="tiny-abc", seed=3, batch_size=16)
    assert len(first) == 5 and calls == [0]
    for ex in first:
        assert ex.labels == ex.input_ids  # loss on every token
        assert len(ex.input_ids) > 3  # the seed words plus generated ones
    cached = replay.cache_file("tiny-abc", 0, 3)
    assert cached.is_file() and len(json.loads(cached.read_text())) == replay.CHUNK
    again = replay.self_replay_examples(tiny_lm, tiny_tokenizer, 5, model_key="tiny-abc", seed=3)
    assert calls == [0] and [e.input_ids for e in again] == [e.input_ids for e in first]
    fewer = replay.self_replay_examples(tiny_lm, tiny_tokenizer, 2, model_key="tiny-abc", seed=3)
    assert calls == [0] and [e.input_ids for e in fewer] == [e.input_ids for e in first[:2]]  # same chunk
    more = replay.self_replay_examples(tiny_lm, tiny_tokenizer, replay.CHUNK + 3, model_key="tiny-abc", seed=3)
    assert calls == [0, 1] and len(more) == replay.CHUNK + 3  # only the missing chunk is written
    assert [e.input_ids for e in more[:5]] == [e.input_ids for e in first]
    other = replay.self_replay_examples(tiny_lm, tiny_tokenizer, 5, model_key="tiny-abc", seed=4)
    assert calls == [0, 1, 0] and [e.input_ids for e in other] != [e.input_ids for e in first]


def test_damaged_cache_is_rewritten(tiny_lm, tiny_tokenizer):
    import memtune.train.replay as replay

    f = replay.cache_file("tiny-x", 0, 0)
    f.parent.mkdir(parents=True, exist_ok=True)
    f.write_text("{not json")
    out = replay.self_replay_examples(tiny_lm, tiny_tokenizer, 2, model_key="tiny-x", seed=0)
    assert len(out) == 2 and len(json.loads(f.read_text())) == replay.CHUNK
    f.write_text("[[1, 2]]")  # valid JSON, wrong size: rewritten too
    assert len(replay.self_replay_examples(tiny_lm, tiny_tokenizer, 2, model_key="tiny-x", seed=0)) == 2
    assert len(json.loads(f.read_text())) == replay.CHUNK


def test_generation_restores_training_mode(tiny_lm, tiny_tokenizer):
    import memtune.train.replay as replay

    tiny_lm.train()
    replay.self_replay_examples(tiny_lm, tiny_tokenizer, 1, model_key="tiny-mode", seed=0)
    assert tiny_lm.training


def test_training_with_self_replay_adds_the_samples(tiny_config, tmp_path):
    from memtune.errors import ConfigError
    from memtune.train import train
    from memtune.train.replay import replay_cache_dir

    plain = train(tiny_config(out=str(tmp_path / "a")), progress=False)
    mixed = train(tiny_config(out=str(tmp_path / "b"), replay_fraction=0.5), progress=False)
    n = plain.metrics["train_examples"]
    assert mixed.metrics["train_examples"] == n + round(0.5 * n)
    assert list(replay_cache_dir().glob("*.json"))  # the samples were cached
    with pytest.raises(ConfigError, match="replay-fraction"):
        train(tiny_config(out=str(tmp_path / "c"), replay_fraction=1.5), progress=False)


def test_test_runs_keep_their_caches_out_of_the_users_cache():
    """The root conftest points MEMTUNE_CACHE_DIR at the test run's own folder unless the caller set
    one, so tests outside tests/train (run, CLI) that train tiny models cache their replay there too."""
    import os
    from pathlib import Path

    import platformdirs

    from memtune.train.models import cache_root

    root = Path(os.environ["MEMTUNE_CACHE_DIR"])
    assert cache_root() == root
    if root.parent.name == ".pytest_cache":  # the conftest default, not a caller's choice
        assert not root.is_relative_to(platformdirs.user_cache_dir("memtune"))


def test_writing_samples_reports_progress_per_chunk_and_reading_the_cache_is_silent(tiny_lm, tiny_tokenizer):
    import memtune.train.replay as replay

    said: list[str] = []
    replay.self_replay_examples(tiny_lm, tiny_tokenizer, replay.CHUNK * 2, model_key="tiny-progress", seed=0,
                                info=said.append)
    assert said[0].startswith(f"writing {replay.CHUNK * 2} self-replay samples")
    assert said[1].startswith(f"self-replay: {replay.CHUNK}/{replay.CHUNK * 2} samples") and "left" in said[1]
    assert said[2].startswith(f"self-replay: {replay.CHUNK * 2}/{replay.CHUNK * 2} samples") and "done" in said[2]
    said.clear()
    replay.self_replay_examples(tiny_lm, tiny_tokenizer, replay.CHUNK * 2, model_key="tiny-progress", seed=0,
                                info=said.append)
    assert said == []  # cached: nothing to say


def test_progress_line_formats_minutes():
    from memtune.train.replay import _progress_line

    assert _progress_line(1, 3, 61.0) == "self-replay: 32/96 samples, 1 min 1 s, about 2 min 2 s left"


def test_shipped_samples_are_used_before_generating(tiny_lm, tiny_tokenizer, monkeypatch):
    """A model whose samples ship with memtune starts from them: nothing generated for those chunks."""
    import memtune.train.replay as replay

    shipped = [[[7, 8, 9 + i]] * replay.CHUNK for i in range(2)]
    monkeypatch.setattr(replay, "_shipped_chunks", lambda key, seed: shipped if key == "shipped-m" else [])
    calls = []
    real = replay._generate
    monkeypatch.setattr(replay, "_generate", lambda *a, **k: calls.append(k["chunk"]) or real(*a, **k))
    got = replay.self_replay_examples(tiny_lm, tiny_tokenizer, replay.CHUNK + 1, model_key="shipped-m", seed=5)
    assert calls == [] and [e.input_ids for e in got] == [[7, 8, 9]] * replay.CHUNK + [[7, 8, 10]]
    assert json.loads(replay.cache_file("shipped-m", 1, 5).read_text()) == shipped[1]
    more = replay.self_replay_examples(tiny_lm, tiny_tokenizer, 3 * replay.CHUNK, model_key="shipped-m", seed=5)
    assert calls == [2] and len(more) == 3 * replay.CHUNK  # only what was not shipped is written


def test_the_default_models_shipped_samples_are_whole_chunks_of_its_vocabulary():
    from importlib.resources import files

    import memtune.train.replay as replay
    from memtune.models import spec_for
    from memtune.train.config import TrainConfig

    found = [f for f in files("memtune").joinpath("data/replay").iterdir()
             if f.name.startswith(spec_for("default").name + "-") and f.name.endswith(f"-s{TrainConfig().seed}.json")]
    assert len(found) == 1, "the default model's replay samples for the default seed are not shipped"
    chunks = json.loads(found[0].read_text(encoding="utf-8"))
    assert len(chunks) >= 12 and all(replay._valid(c) for c in chunks)  # the example memory needs 12
    assert all(0 <= t < 49152 for c in chunks for r in c for t in r)
    assert found[0].name == replay.shipped_file_name(found[0].name.split("-x")[0], TrainConfig().seed)
