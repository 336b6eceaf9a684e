"""`memtune export-model`: GGUF files llama.cpp and Ollama can load, holding exactly the merged model."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from memtune.chatformat import DEFAULT_SYSTEM_PROMPT, conversation
from memtune.cli import app
from memtune.errors import ModelError
from memtune.generation import encode_prompt, generate_ids, pad_id, stop_ids
from memtune.serve import gguf, ollama
from memtune.serve.export_model import PROBE_QUESTIONS, export_model
from memtune.serve.merge import merge_adapter

pytestmark = pytest.mark.timeout(120)


def _cli(*args):
    return CliRunner().invoke(app, ["export-model", *map(str, args)])


@pytest.fixture(scope="module")
def exported(tiny, tmp_path_factory):
    """The tiny adapter exported once through the CLI (both quants, verified), and its merged model."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    root = tmp_path_factory.mktemp("gguf")
    r = _cli(tiny["adapter"], "--gguf", root / "out", "--json")
    assert r.exit_code == 0, r.output
    merge_adapter(tiny["adapter"], root / "merged")
    merged = AutoModelForCausalLM.from_pretrained(root / "merged").eval()
    return {"dir": root / "out", "result": json.loads(r.stdout), "merged": merged,
            "tok": AutoTokenizer.from_pretrained(root / "merged")}


def _greedy(model, tok, n=16):
    stops = stop_ids(model, tok)
    prompts = [encode_prompt(tok, conversation(q, "", DEFAULT_SYSTEM_PROMPT)) for q in PROBE_QUESTIONS]
    return generate_ids(model, prompts, stops=stops, pad=pad_id(tok, stops), max_new_tokens=n)


def test_files_metadata_and_tensor_names(exported):
    out, tok, merged = exported["dir"], exported["tok"], exported["merged"]
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", "README.md", "adapter-f16.gguf", "adapter-q8_0.gguf"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging left behind
    cfg = merged.config
    vocab = {i: t for t, i in tok.get_vocab().items()}
    for quant, ftype, matrix in (("f16", 1, "F16"), ("q8_0", 7, "Q8_0")):
        path = out / f"adapter-{quant}.gguf"
        meta = gguf.read_metadata(path)
        assert meta["general.architecture"] == "llama" and meta["general.type"] == "model"
        assert meta["general.name"] == "adapter" and meta["general.file_type"] == ftype
        assert (meta["llama.block_count"], meta["llama.embedding_length"], meta["llama.feed_forward_length"]) == (
            cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size)
        assert (meta["llama.attention.head_count"], meta["llama.attention.head_count_kv"]) == (4, 2)
        assert meta["llama.context_length"] == cfg.max_position_embeddings
        assert meta["llama.vocab_size"] == cfg.vocab_size == len(meta["tokenizer.ggml.tokens"])
        assert meta["llama.rope.dimension_count"] == cfg.hidden_size // 4
        assert meta["llama.rope.freq_base"] == pytest.approx(cfg.rope_parameters["rope_theta"])
        assert meta["llama.attention.layer_norm_rms_epsilon"] == pytest.approx(cfg.rms_norm_eps)
        assert meta["tokenizer.ggml.model"] == "gpt2" and meta["tokenizer.ggml.pre"] == "gpt-2"
        assert meta["tokenizer.ggml.tokens"] == [vocab[i] for i in range(len(vocab))]
        types = meta["tokenizer.ggml.token_type"]
        assert [types[tok.convert_tokens_to_ids(s)] for s in ("<|endoftext|>", "<|im_start|>", "<|im_end|>")] == [3] * 3
        assert types.count(1) == len(types) - 3
        assert meta["tokenizer.ggml.merges"][0].count(" ") == 1 and len(meta["tokenizer.ggml.merges"]) > 100
        assert (meta["tokenizer.ggml.bos_token_id"], meta["tokenizer.ggml.eos_token_id"],
                meta["tokenizer.ggml.padding_token_id"]) == (tok.bos_token_id, tok.eos_token_id, tok.pad_token_id)
        assert meta["tokenizer.ggml.add_bos_token"] is False
        assert meta["tokenizer.chat_template"] == tok.chat_template

        from gguf import GGUFReader

        kinds = {t.name: t.tensor_type.name for t in GGUFReader(str(path)).tensors}
        want = {"token_embd.weight", "output_norm.weight", "output.weight"}  # the tiny base has an untied head
        for i in range(cfg.num_hidden_layers):
            want |= {f"blk.{i}.{n}.weight" for n in ("attn_norm", "attn_q", "attn_k", "attn_v", "attn_output",
                                                      "ffn_norm", "ffn_gate", "ffn_up", "ffn_down")}
        assert set(kinds) == want
        assert {k for n, k in kinds.items() if "norm" in n} == {"F32"}
        assert {k for n, k in kinds.items() if "norm" not in n} == {matrix}


def test_metadata_keys_cover_the_reference_gguf(exported):
    """Every llama.* and tokenizer.* key the embedded model's own GGUF has, ours has too."""
    import importlib.util
    from pathlib import Path

    from memtune.models import DEFAULT_SPEC

    found = importlib.util.find_spec(DEFAULT_SPEC.package)
    if found is None:
        pytest.skip("the embedded model's package is not installed")
    ref = gguf.read_metadata(Path(list(found.submodule_search_locations)[0]) / DEFAULT_SPEC.gguf_file)
    ours = gguf.read_metadata(exported["dir"] / "adapter-f16.gguf")
    wanted = {k for k in ref if k.startswith(("llama.", "tokenizer.", "general.architecture", "general.file_type"))}
    assert wanted - set(ours) == set()


def _llama_cpp_order(w, heads):
    """convert_hf_to_gguf.py's permute, written out independently of memtune.serve.gguf."""
    return w.reshape(heads, 2, w.shape[0] // heads // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def test_tensors_round_trip(exported):
    from gguf import GGUFReader
    from gguf.quants import dequantize

    state = {k: v.float().numpy() for k, v in exported["merged"].state_dict().items()}
    for quant in ("f16", "q8_0"):
        raw = {t.name: dequantize(t.data, t.tensor_type).reshape([int(d) for d in reversed(t.shape)])
               for t in GGUFReader(str(exported["dir"] / f"adapter-{quant}.gguf")).tensors}
        q = state["model.layers.1.self_attn.q_proj.weight"]
        k = state["model.layers.1.self_attn.k_proj.weight"]
        pairs = [("blk.1.attn_q.weight", _llama_cpp_order(q, 4)), ("blk.1.attn_k.weight", _llama_cpp_order(k, 2)),
                 ("blk.0.ffn_down.weight", state["model.layers.0.mlp.down_proj.weight"]),
                 ("output.weight", state["lm_head.weight"]), ("token_embd.weight", state["model.embed_tokens.weight"]),
                 ("blk.0.attn_norm.weight", state["model.layers.0.input_layernorm.weight"])]
        for name, want in pairs:
            got = raw[name]
            if got.ndim == 1:
                assert np.array_equal(got, want), name
            elif quant == "f16":
                assert np.array_equal(got, want.astype(np.float16).astype(np.float32)), name
            else:  # each value within 0.6 of its 32-block's step (block max / 127)
                step = np.abs(want.reshape(-1, 32)).max(axis=1, keepdims=True) / 127
                assert (np.abs(got.reshape(-1, 32) - want.reshape(-1, 32)) <= 0.6 * step + 1e-12).all(), name
        assert not np.allclose(raw["blk.1.attn_q.weight"], q.astype(np.float16), atol=1e-3)  # really permuted
        check = gguf.compare_tensors(exported["dir"] / f"adapter-{quant}.gguf", exported["merged"], quant)
        assert check.problems == [] and check.tensors == 21


def test_transformers_loads_the_f16_file_and_answers_alike(exported):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out, merged, tok = exported["dir"], exported["merged"], exported["tok"]
    loaded = AutoModelForCausalLM.from_pretrained(str(out), gguf_file="adapter-f16.gguf", dtype=torch.float32).eval()
    gtok = AutoTokenizer.from_pretrained(str(out), gguf_file="adapter-f16.gguf")
    assert not loaded.config.tie_word_embeddings
    for q in PROBE_QUESTIONS:
        text = tok.apply_chat_template(conversation(q, "", DEFAULT_SYSTEM_PROMPT), tokenize=False,
                                       add_generation_prompt=True)
        assert gtok(text, add_special_tokens=False).input_ids == tok(text, add_special_tokens=False).input_ids
    assert _greedy(loaded, tok) == _greedy(merged, tok)
    ids = torch.tensor([encode_prompt(tok, conversation(PROBE_QUESTIONS[0], "", DEFAULT_SYSTEM_PROMPT))])
    with torch.inference_mode():
        assert torch.allclose(loaded(ids).logits, merged(ids).logits, atol=1e-2)

    files = {f["quant"]: f for f in exported["result"]["files"]}
    assert exported["result"]["verified"] is True
    f16, q8 = files["f16"]["load_check"], files["q8_0"]["load_check"]
    assert f16["vs_file_weights"]["max_abs_logit_diff"] == 0.0
    assert f16["vs_merged"]["identical_answers"] == f16["vs_merged"]["answers"] == len(PROBE_QUESTIONS)
    assert q8["vs_file_weights"]["max_abs_logit_diff"] == 0.0
    assert q8["vs_merged"]["agreement"] >= 0.9 and f16["tokenizer_identical"] and q8["tokenizer_identical"]
    assert files["f16"]["tensor_check"]["max_abs_diff_f16"] == 0.0
    assert 0 < files["q8_0"]["tensor_check"]["max_q8_steps"] <= gguf.Q8_TOLERANCE


def test_modelfile_and_readme(exported):
    out, tok = exported["dir"], exported["tok"]
    text = (out / "Modelfile").read_text()
    lines = text.splitlines()
    assert lines[0] == "FROM ./adapter-q8_0.gguf"
    assert f'SYSTEM """{DEFAULT_SYSTEM_PROMPT}"""' in text
    assert 'PARAMETER stop "<|im_end|>"' in lines and "PARAMETER temperature 0" in lines
    assert f'TEMPLATE """{ollama.GO_CHATML}"""' in text
    # the Go template's layout is the tokenizer's own chat template
    conv = conversation("How do I start the backend service?", "", DEFAULT_SYSTEM_PROMPT)
    assert ollama.chatml(conv) == tok.apply_chat_template(conv, tokenize=False, add_generation_prompt=True)
    readme = (out / "README.md").read_text()
    assert "ollama create adapter -f Modelfile" in readme and "ollama run adapter" in readme
    assert "llama-cli -m adapter-q8_0.gguf --jinja" in readme and DEFAULT_SYSTEM_PROMPT in readme


def test_template_default_system_becomes_system(tiny):
    """A template that injects its own system turn (SmolLM2's) gives that turn as SYSTEM when training had none."""
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny["base"])
    tok.chat_template = ("{% for message in messages %}{% if loop.first and messages[0]['role'] != 'system' %}"
                         "{{ '<|im_start|>system\nYou are a helpful AI assistant<|im_end|>\n' }}{% endif %}"
                         + tok.chat_template.removeprefix("{% for message in messages %}"))
    layout = ollama.chat_layout(tok)
    assert layout.chatml and layout.default_system == "You are a helpful AI assistant"
    tok.chat_template = "{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }}\n{% endfor %}"
    assert not ollama.chat_layout(tok).chatml
    assert "TEMPLATE" not in ollama.modelfile("x.gguf", system=None, layout=ollama.chat_layout(tok), stops=[])


def test_one_quant_a_name_and_no_verify(tiny, tmp_path):
    out = tmp_path / "only-f16"
    r = _cli(tiny["adapter"], "--gguf", out, "--quant", "F16", "--name", "tiny-x", "--no-verify", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert res["verified"] is False and [f["file"] for f in res["files"]] == ["tiny-x-f16.gguf"]
    assert res["files"][0]["tensor_check"] is None
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", "README.md", "tiny-x-f16.gguf"]
    assert (out / "Modelfile").read_text().startswith("FROM ./tiny-x-f16.gguf\n")


def test_bad_input_is_one_clear_error_and_writes_nothing(tiny, tmp_path):
    empty = tmp_path / "not-an-adapter"
    empty.mkdir()
    r = _cli(empty, "--gguf", tmp_path / "a")
    assert r.exit_code == 3 and "neither a LoRA adapter" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "a").exists()

    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("x")
    r = _cli(tiny["adapter"], "--gguf", busy)
    assert r.exit_code == 2 and "already exists" in r.output and "--force" in r.output
    assert [p.name for p in busy.iterdir()] == ["keep.txt"]

    r = _cli(tiny["adapter"], "--gguf", tmp_path / "b", "--quant", "q4_k")
    assert r.exit_code == 2 and "unknown --quant 'q4_k'" in r.output and "f16, q8_0" in r.output
    r = _cli(tiny["adapter"], "--gguf", tmp_path / "b", "--name", "Bad Name")
    assert r.exit_code == 2 and "--name 'Bad Name'" in r.output
    r = _cli(tiny["adapter"], "--gguf", tiny["adapter"] / "gguf")
    assert r.exit_code == 2 and "inside the adapter" in r.output
    assert not (tmp_path / "b").exists() and not (tiny["adapter"] / "gguf").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["busy", "not-an-adapter"]

    r = _cli(tiny["adapter"], "--gguf", busy, "--force", "--quant", "f16", "--no-verify")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in busy.iterdir()) == ["Modelfile", "README.md", "adapter-f16.gguf"]


def test_a_broken_file_fails_verification_and_writes_nothing(tiny, tmp_path, monkeypatch):
    """Written without llama.cpp's Q/K permutation the file computes something else: the check refuses it."""
    monkeypatch.setattr(gguf, "permute", lambda w, n_head, n_head_kv: w)
    with pytest.raises(ModelError, match="did not pass its checks") as err:
        export_model(tiny["adapter"], tmp_path / "out", quants=["f16"], probe_tokens=4)
    assert "attn_q.weight" in err.value.message
    assert list(tmp_path.iterdir()) == []


def test_a_wrong_hyper_parameter_fails_the_load_check(tiny, tmp_path, monkeypatch):
    """Right tensors, wrong rope base in the metadata: only loading the file shows it, and it is refused."""
    import dataclasses

    real = gguf.llama_shape
    monkeypatch.setattr(gguf, "llama_shape", lambda cfg: dataclasses.replace(real(cfg), rope_freq_base=1e6))
    with pytest.raises(ModelError, match="does not compute what its own weights do"):
        export_model(tiny["adapter"], tmp_path / "out", quants=["f16"], probe_tokens=4)
    assert list(tmp_path.iterdir()) == []


def test_unsupported_models_are_refused():
    from types import SimpleNamespace

    with pytest.raises(ModelError, match="llama-architecture"):
        gguf.llama_shape(SimpleNamespace(model_type="gpt2"))
    cfg = SimpleNamespace(model_type="llama", rope_parameters={"rope_type": "llama3", "rope_theta": 5e5},
                          num_attention_heads=4, hidden_size=32)
    with pytest.raises(ModelError, match="rope type 'llama3'"):
        gguf.llama_shape(cfg)


def real_model_adapter(adapter, name: str, *, r: int, targets: list[str], b_scale: float = 1.0):
    """A random LoRA on the embedded SmolLM2, saved as memtune would (its lineage names the base and system
    prompt). ``b_scale`` < 1 makes it a small change, like a trained adapter's."""
    from peft import LoraConfig, get_peft_model

    from memtune.models import load_base_model, model_hash, resolve_base_model

    torch.manual_seed(0)
    base, tok = load_base_model(None, dtype=torch.float32)
    peft = get_peft_model(base, LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets, init_lora_weights=False))
    with torch.no_grad():
        for pname, p in peft.named_parameters():
            if "lora_B" in pname:
                p.mul_(b_scale)
    peft.save_pretrained(adapter)
    tok.save_pretrained(adapter)
    resolved = resolve_base_model(None)
    (adapter / "memtune.json").write_text(json.dumps({
        "name": name, "method": "lora", "format": "peft", "system_prompt": DEFAULT_SYSTEM_PROMPT,
        "base_model": {"name": resolved.name, "source": "registry", "path": resolved.path,
                       "hash": model_hash(resolved.path)}}))
    return adapter


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_real_default_model_f16_answers_like_the_merged_model(tmp_path):
    """The embedded SmolLM2 with a random (untrained) LoRA: the f16 GGUF's greedy answers equal the merged model's."""
    from transformers import AutoModelForCausalLM

    adapter = real_model_adapter(tmp_path / "adapter", "smollm-probe", r=4, targets=["q_proj", "k_proj", "v_proj"])
    res = export_model(adapter, tmp_path / "gguf", quants=["f16", "q8_0"], probe_tokens=24)
    f16 = res.files[0].load_check
    assert f16["tokenizer_identical"] and f16["vs_file_weights"]["max_abs_logit_diff"] == 0.0
    assert f16["vs_merged"]["identical_answers"] == len(PROBE_QUESTIONS)
    assert res.files[1].load_check["vs_merged"]["agreement"] >= 0.9
    meta = gguf.read_metadata(tmp_path / "gguf" / "smollm-probe-f16.gguf")
    assert meta["general.base_model.0.name"] == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert meta["llama.vocab_size"] == 49152 and meta["tokenizer.ggml.add_bos_token"] is False
    loaded = AutoModelForCausalLM.from_pretrained(str(tmp_path / "gguf"), gguf_file="smollm-probe-f16.gguf")
    assert loaded.config.tie_word_embeddings
    print({f.quant: f.summary for f in res.files})


# --------------------------------------------------------------------------- the LoRA alone
def test_lora_gguf_rebuilds_the_merged_weights(tiny, tmp_path):
    """--lora: the adapter alone + its base as GGUF; base + alpha / rank * B @ A read back = merged weights."""
    from gguf import GGUFReader

    out = tmp_path / "with-lora"
    r = _cli(tiny["adapter"], "--gguf", out, "--quant", "f16", "--lora", "--name", "tiny-l", "--json")
    assert r.exit_code == 0, r.output
    res = json.loads(r.stdout)
    assert sorted(p.name for p in out.iterdir()) == ["Modelfile", "Modelfile.lora", "README.md", "tiny-l-base-f16.gguf",
                                                     "tiny-l-f16.gguf", "tiny-l-lora.gguf"]
    lora = res["lora"]
    assert lora["check"]["problems"] == [] and lora["check"]["pairs"] > 0
    assert lora["check"]["max_abs_diff"] < 1e-5 and "LoRA pairs" in lora["summary"]

    meta = gguf.read_metadata(out / "tiny-l-lora.gguf")
    assert meta["general.type"] == "adapter" and meta["adapter.type"] == "lora"
    assert meta["general.architecture"] == "llama" and meta["adapter.lora.alpha"] == lora["alpha"] > 0
    names = [t.name for t in GGUFReader(str(out / "tiny-l-lora.gguf")).tensors]
    assert names and all(n.startswith("blk.") and n.endswith((".weight.lora_a", ".weight.lora_b")) for n in names)
    assert len(names) == 2 * lora["check"]["pairs"]

    # the base file is the untouched base, exactly (f16-rounded)
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(tiny["base"]).eval()
    assert gguf.compare_tensors(out / "tiny-l-base-f16.gguf", base, "f16").problems == []

    modelfile = (out / "Modelfile.lora").read_text()
    assert modelfile.startswith("FROM ./tiny-l-base-f16.gguf\nADAPTER ./tiny-l-lora.gguf\n")
    assert "PARAMETER temperature 0" in modelfile
    assert "--lora tiny-l-lora.gguf" in (out / "README.md").read_text()


def test_a_wrong_lora_file_fails_verification_and_writes_nothing(tiny, tmp_path, monkeypatch):
    """A LoRA written with the wrong scale would change what the model says: the check refuses it."""
    monkeypatch.setattr(gguf, "lora_pairs", lambda m, _real=gguf.lora_pairs: [
        gguf.LoraPair(p.gguf_base, p.hf_weight, p.a, p.b, p.scaling * 2) for p in _real(m)])
    with pytest.raises(ModelError, match="LoRA export did not pass") as err:
        export_model(tiny["adapter"], tmp_path / "out", quants=["f16"], lora=True, probe_tokens=4)
    assert "differs from the merged weight" in err.value.message
    assert list(tmp_path.iterdir()) == []


def test_lora_of_a_merged_model_is_refused(tiny, tmp_path):
    merge_adapter(tiny["adapter"], tmp_path / "merged")
    r = _cli(tmp_path / "merged", "--gguf", tmp_path / "out", "--lora")
    assert r.exit_code == 2 and "--lora needs a LoRA adapter" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "out").exists()
