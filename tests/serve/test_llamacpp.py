"""`memtune export-model` files run in llama.cpp itself, not only read back by the gguf package.

llama.cpp comes prebuilt from the npm registry (node-llama-cpp; `make llama-runtime`, which `make
test` runs, installs it into .venv/llama-runtime; nothing is compiled). Prompts go in as token
ids, so these tests compare the models; the tokenizer is compared separately on the rendered
prompts. Without node/npm the tests skip, unless MEMTUNE_REQUIRE_LLAMA_CPP=1 (CI) makes that a failure.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from transformers import AutoTokenizer

from memtune.chatformat import DEFAULT_SYSTEM_PROMPT, conversation, render
from memtune.generation import encode_prompt, generate_ids, pad_id, stop_ids
from memtune.serve.export_model import PROBE_QUESTIONS, export_model

ROOT = Path(__file__).resolve().parents[2]
ANSWER_TOKENS = 24


def runtime() -> Path:
    """The folder holding generate.mjs and node-llama-cpp, or skip (fail under MEMTUNE_REQUIRE_LLAMA_CPP=1)."""
    where = Path(os.environ.get("MEMTUNE_LLAMA_RUNTIME") or ROOT / ".venv" / "llama-runtime")
    ready = shutil.which("node") and (where / "node_modules" / "node-llama-cpp").is_dir() and (
        where / "generate.mjs").is_file()
    if not ready:
        why = f"no llama.cpp runtime in {where} (make llama-runtime installs it; needs node and npm)"
        if os.environ.get("MEMTUNE_REQUIRE_LLAMA_CPP") == "1":
            pytest.fail(why)
        pytest.skip(why)
    return where


def llama_cpp(where: Path, runs: list[dict], prompts: list[list[int]], texts: list[str], n: int) -> list[dict]:
    """Greedy answers (and the texts tokenised) from llama.cpp, one entry per run."""
    job = json.dumps({"runs": runs, "prompts": prompts, "texts": texts, "n": n})
    done = subprocess.run(["node", str(where / "generate.mjs")], input=job, capture_output=True, text=True,
                          timeout=600, cwd=where, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)["runs"]


def _trim(ids: list[int], stops: set[int]) -> list[int]:
    """Up to the first stop token, without it (llama.cpp's runner ends there without yielding it)."""
    cut = next((i for i, t in enumerate(ids) if t in stops), None)
    return ids if cut is None else ids[:cut]


def _same_prefix(a: list[int], b: list[int]) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_llama_cpp_answers_like_the_merged_model(tmp_path):
    """The embedded SmolLM2 with a LoRA on attention (Q/K permutation) and MLP: llama.cpp's greedy
    answers from the f16 file, and from the base f16 file + the LoRA GGUF, equal transformers'
    merged model's; q8_0 stays close; llama.cpp tokenises the prompts as the training tokenizer did."""
    where = runtime()
    from peft import PeftModel

    from memtune.models import load_base_model
    from tests.serve.test_gguf import real_model_adapter

    adapter = real_model_adapter(tmp_path / "adapter", "smollm-llamacpp", r=8, b_scale=0.25,
                                 targets=["q_proj", "k_proj", "up_proj", "down_proj"])
    tok = AutoTokenizer.from_pretrained(adapter)
    out = tmp_path / "gguf"
    res = export_model(adapter, out, quants=["f16", "q8_0"], lora=True, probe_tokens=16)
    assert res.lora is not None and res.lora.check["problems"] == []

    fresh, _ = load_base_model(None, dtype=torch.float32)
    merged = PeftModel.from_pretrained(fresh, str(adapter)).merge_and_unload().eval()
    convs = [conversation(q, "", DEFAULT_SYSTEM_PROMPT) for q in PROBE_QUESTIONS]
    prompts = [encode_prompt(tok, c) for c in convs]
    texts = [render(tok, c, add_generation_prompt=True) for c in convs]
    stops = stop_ids(merged, tok)
    want = [_trim(a, set(stops)) for a in generate_ids(merged, prompts, stops=stops, pad=pad_id(tok, stops),
                                                        max_new_tokens=ANSWER_TOKENS)]

    runs = llama_cpp(where, [
        {"model": str(out / "smollm-llamacpp-f16.gguf")},
        {"model": str(out / "smollm-llamacpp-q8_0.gguf")},
        {"model": str(out / "smollm-llamacpp-base-f16.gguf"), "lora": str(out / "smollm-llamacpp-lora.gguf")},
        {"model": str(out / "smollm-llamacpp-base-f16.gguf")},
    ], prompts, texts, ANSWER_TOKENS)
    f16, q8, lora, bare = ([_trim(a, set(stops)) for a in r["answers"]] for r in runs)
    report = {"want": want, "f16": f16, "q8_0": q8, "base+lora": lora, "base": bare}
    print(json.dumps({k: [tok.decode(a) for a in v] for k, v in report.items()}, indent=1))

    def agreement(got: list[list[int]]) -> float:
        """Share of the merged model's answer tokens reproduced before the first divergence."""
        return sum(_same_prefix(a, b) for a, b in zip(got, want, strict=True)) / sum(len(b) for b in want)

    figures = {k: agreement(v) for k, v in report.items() if k != "want"}
    print("agreement with the merged model:", figures)
    assert runs[0]["tokenized"] == [tok(t, add_special_tokens=False).input_ids for t in texts]
    assert figures["base"] < 0.6, "the adapter changed too little for the comparison to mean anything"
    # f16 arithmetic in llama.cpp vs float32 in transformers: a near-tie may flip late in an answer
    for run in ("f16", "base+lora"):
        assert figures[run] >= 0.9 and sum(a == b for a, b in zip(report[run], want)) >= 3, (
            f"llama.cpp ({run}) answers unlike the merged model: {figures[run]:.0%} of its tokens")
    assert figures["q8_0"] >= 0.6, f"q8_0 reproduces only {figures['q8_0']:.0%} of the merged model's tokens"
