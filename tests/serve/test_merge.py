"""`memtune merge`: the merged model must behave exactly like base + adapter."""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from memtune.cli import app
from memtune.errors import InputError
from memtune.serve.engine import ask_messages, encode_prompt
from memtune.serve.merge import merge_adapter

pytestmark = pytest.mark.timeout(60)

QUESTIONS = ["How do I start the backend service?", "Which resolvers run first?"]


def _reference(tiny):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    base = AutoModelForCausalLM.from_pretrained(tiny["base"])
    return PeftModel.from_pretrained(base, str(tiny["adapter"])).eval(), AutoTokenizer.from_pretrained(tiny["base"])


def _greedy(model, ids, eos):
    with torch.inference_mode():
        out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=12, do_sample=False,
                             eos_token_id=eos, pad_token_id=eos)
    return out[0, ids.shape[1]:].tolist()


def test_merged_model_matches_base_plus_adapter(tiny, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "merged"
    result = runner_merge(tiny["adapter"], out)
    assert result["verified"] and result["max_abs_logit_diff"] < 1e-4
    assert (out / "config.json").is_file() and not (out / "adapter_config.json").exists()
    assert (out / "tokenizer_config.json").is_file() or (out / "tokenizer.json").is_file()
    lineage = json.loads((out / "memtune.json").read_text())
    assert lineage["format"] == "merged" and lineage["merged_from"]["adapter"] == "adapter"

    merged = AutoModelForCausalLM.from_pretrained(out).eval()  # plain transformers, no peft
    tok = AutoTokenizer.from_pretrained(out)
    ref, ref_tok = _reference(tiny)
    base_only = AutoModelForCausalLM.from_pretrained(tiny["base"]).eval()
    eos = tok.convert_tokens_to_ids("<|im_end|>")
    for q in QUESTIONS:
        ids = torch.tensor([encode_prompt(tok, ask_messages(q))])
        assert ids.tolist() == [encode_prompt(ref_tok, ask_messages(q))]
        with torch.inference_mode():
            got, want, plain = merged(ids).logits, ref(input_ids=ids).logits, base_only(ids).logits
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-4)
        assert not torch.allclose(plain, want, atol=1e-3)  # the adapter really changes the model
        assert _greedy(merged, ids, eos) == _greedy(ref, ids, eos)


def runner_merge(adapter, out, *extra):
    r = CliRunner().invoke(app, ["merge", str(adapter), "--out", str(out), "--json", *extra])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


def test_merged_dir_serves_like_the_adapter(tiny, tiny_backend, tmp_path):
    from memtune.serve.engine import GenParams
    from memtune.serve.loader import load_backend

    merge_adapter(tiny["adapter"], tmp_path / "m")
    merged = load_backend(tmp_path / "m")
    for q in QUESTIONS:
        p = GenParams(max_new_tokens=12)
        assert merged.generate(ask_messages(q), p).text == tiny_backend.generate(ask_messages(q), p).text


def test_merge_refuses_to_overwrite_or_remerge(tiny, tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    with pytest.raises(InputError, match="already exists"):
        merge_adapter(tiny["adapter"], out)
    assert (out / "keep.txt").exists()
    with pytest.raises(InputError, match="already a full model"):
        merge_adapter(tiny["base"], tmp_path / "other")
    with pytest.raises(InputError, match="inside the adapter"):
        merge_adapter(tiny["adapter"], tiny["adapter"] / "sub")
    r = CliRunner().invoke(app, ["merge", str(tiny["adapter"]), "--out", str(out), "--force", "--dtype", "bfloat16"])
    assert r.exit_code == 0, r.output
    assert not (out / "keep.txt").exists() and (out / "config.json").is_file()
    assert json.loads((out / "config.json").read_text())["dtype"] == "bfloat16"
