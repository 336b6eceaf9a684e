"""load_assistant / ask / stream / generate_batch / ask_memory_assistant on tiny models."""

from __future__ import annotations

import json

import pytest

from memtune.errors import NotFoundError
from memtune.infer import ask_memory_assistant, load_assistant
from memtune.train import TrainConfig, train

Q, A = "Which database do we use?", "PostgreSQL 16"


@pytest.fixture(scope="module")
def memorized(tiny_model_dir, tmp_path_factory):
    """A full fine-tune that has memorised one answer (so it must stop right after it)."""
    root = tmp_path_factory.mktemp("memorized")
    b = root / "bundle"
    b.mkdir()
    row = {"messages": [{"role": "user", "content": Q}, {"role": "assistant", "content": A}]}
    (b / "train.jsonl").write_text((json.dumps(row) + "\n") * 8)
    res = train(TrainConfig(bundle=str(b), out=str(root / "adapter"), model=str(tiny_model_dir), method="full",
                            epochs=8, batch_size=2, lr=1e-2, warmup_ratio=0.0, probe_sample=0, bf16=False,
                            threads=2, keep_checkpoint=False), progress=False)
    return res.out_dir


def test_ask_answers_and_stops_at_end_of_turn(memorized):
    a = load_assistant(memorized, bf16=False)
    # 60 new tokens allowed, yet the answer ends where the model emitted <|im_end|>
    assert a.ask(Q, max_new_tokens=60) == A


def test_stream_yields_the_same_text_in_chunks(memorized):
    a = load_assistant(memorized, bf16=False)
    chunks = list(a.stream(Q, max_new_tokens=60))
    assert len(chunks) >= 1 and "".join(chunks).strip() == A


def test_generate_batch_left_pads_and_keeps_order(memorized):
    a = load_assistant(memorized, bf16=False)
    single = a.ask(Q, max_new_tokens=20)
    outs = a.generate_batch([Q, "Something much longer than the first question, to force padding?", Q],
                            max_new_tokens=20)
    assert len(outs) == 3 and outs[0] == outs[2] == single


def test_sampling_with_temperature_returns_text(memorized):
    a = load_assistant(memorized, bf16=False)
    assert isinstance(a.ask(Q, temperature=0.8, max_new_tokens=10), str)


def test_lora_adapter_loads_through_peft_and_answers(tiny_config):
    res = train(tiny_config(max_steps=2), progress=False)
    merged = load_assistant(res.out_dir, bf16=False)
    kept = load_assistant(res.out_dir, merge=False, bf16=False)
    assert type(kept.model).__name__.startswith("Peft")
    assert merged.ask(Q, max_new_tokens=8) == kept.ask(Q, max_new_tokens=8)
    assert merged.info["method"] == "lora"


def test_plain_base_model_and_system_prompt(tiny_model_dir):
    a = load_assistant(None, base_model=str(tiny_model_dir), bf16=False)
    assert isinstance(a.ask(Q, max_new_tokens=5), str)
    assert isinstance(a.ask(Q, "some context", system="Answer briefly.", max_new_tokens=5), str)
    outs = a.generate_batch([Q, Q], system=["S1", None], max_new_tokens=3)
    assert len(outs) == 2


def test_ask_memory_assistant_uses_the_env_adapter(memorized, monkeypatch):
    monkeypatch.setenv("MEMTUNE_ADAPTER", str(memorized))
    import memtune.infer as infer

    infer._CACHED.clear()
    seen = {}

    def load(p, **kw):
        seen.update(kw)
        return load_assistant(p, bf16=False, **kw)

    monkeypatch.setattr(infer, "load_assistant", load)
    assert ask_memory_assistant(Q) == A
    assert seen == {"rag": None}  # retrieval whenever the adapter's store is known (this one names none)


def test_ask_memory_assistant_without_any_adapter_says_how_to_get_one(tmp_path, monkeypatch):
    monkeypatch.delenv("MEMTUNE_ADAPTER", raising=False)
    monkeypatch.setenv("MEMTUNE_ADAPTERS_DIR", str(tmp_path / "none"))
    with pytest.raises(NotFoundError) as exc:
        ask_memory_assistant(Q)
    assert "memtune train" in exc.value.hint


def test_not_an_adapter_dir(tmp_path):
    with pytest.raises(NotFoundError):
        load_assistant(tmp_path)
