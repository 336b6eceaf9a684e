"""Write a merged llama-architecture transformers model as GGUF, and read it back to check it.

GGUF is what llama.cpp, LM Studio and Ollama load. The file is written with the ``gguf``
package's :class:`~gguf.GGUFWriter` the way llama.cpp's ``convert_hf_to_gguf.py`` writes a
llama model (that script is not installed here): llama.cpp's tensor names, its Q/K row
permutation, the hyper-parameters under ``llama.*``, the byte-level BPE tokenizer under
``tokenizer.ggml.*`` and the chat template the adapter was trained with. The embedded default
model's own GGUF (``SmolLM2-135M-Instruct.Q4_1.gguf``) is the reference for the keys.

Norm weights stay float32 (as llama.cpp keeps 1-D tensors); matrices are float16 or Q8_0
(``gguf.quants.quantize``), a matrix whose rows do not split into 32-value blocks falls back to
float16 as llama.cpp does. :func:`compare_tensors` reads a written file back, dequantises it,
undoes the permutation and compares every tensor with the model it came from.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from memtune.errors import ModelError

QUANTS = ("f16", "q8_0")
Q8_BLOCK = 32
Q8_TOLERANCE = 0.6
"""A Q8_0 value may differ from its weight by at most this many quantisation steps (block max / 127):
half a step from rounding, plus the rounding of the block's scale to float16 (<= 127 * 2**-11 steps)."""

_LAYER = {
    "input_layernorm.weight": "attn_norm.weight",
    "self_attn.q_proj.weight": "attn_q.weight",
    "self_attn.k_proj.weight": "attn_k.weight",
    "self_attn.v_proj.weight": "attn_v.weight",
    "self_attn.o_proj.weight": "attn_output.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
    "mlp.gate_proj.weight": "ffn_gate.weight",
    "mlp.up_proj.weight": "ffn_up.weight",
    "mlp.down_proj.weight": "ffn_down.weight",
}
_GLOBAL = {"model.embed_tokens.weight": "token_embd.weight", "model.norm.weight": "output_norm.weight",
           "lm_head.weight": "output.weight"}


# --------------------------------------------------------------------------- what can be exported
@dataclass(frozen=True)
class LlamaShape:
    """The hyper-parameters llama.cpp reads from ``llama.*``."""

    context_length: int
    embedding_length: int
    block_count: int
    feed_forward_length: int
    head_count: int
    head_count_kv: int
    head_dim: int
    rope_freq_base: float
    rms_eps: float
    vocab_size: int
    tied: bool


def _rope_theta(config: Any) -> tuple[float, str]:
    params = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    theta = params.get("rope_theta", getattr(config, "rope_theta", None))
    kind = params.get("rope_type", params.get("type", "default")) or "default"
    return float(theta if theta is not None else 10000.0), str(kind)


def llama_shape(config: Any) -> LlamaShape:
    """The model's shape, or a ModelError naming what llama.cpp's llama loader could not run."""
    kind = getattr(config, "model_type", None)
    if kind != "llama":
        raise ModelError(f"GGUF export supports llama-architecture models (SmolLM2, Llama 2); this one is {kind!r}",
                         hint="use `memtune merge` for a transformers model instead")
    theta, rope = _rope_theta(config)
    problems = []
    if rope != "default":
        problems.append(f"rope type {rope!r} (only the default rotary embedding is written)")
    if getattr(config, "attention_bias", False) or getattr(config, "mlp_bias", False):
        problems.append("bias terms in attention or MLP")
    if getattr(config, "hidden_act", "silu") != "silu":
        problems.append(f"activation {config.hidden_act!r} (llama uses silu)")
    if problems:
        raise ModelError("this llama model cannot be written as GGUF: " + "; ".join(problems),
                         hint="use `memtune merge` for a transformers model instead")
    heads = int(config.num_attention_heads)
    return LlamaShape(
        context_length=int(config.max_position_embeddings),
        embedding_length=int(config.hidden_size),
        block_count=int(config.num_hidden_layers),
        feed_forward_length=int(config.intermediate_size),
        head_count=heads,
        head_count_kv=int(getattr(config, "num_key_value_heads", None) or heads),
        head_dim=int(getattr(config, "head_dim", None) or config.hidden_size // heads),
        rope_freq_base=theta,
        rms_eps=float(config.rms_norm_eps),
        vocab_size=int(config.vocab_size),
        tied=bool(getattr(config, "tie_word_embeddings", False)),
    )


@dataclass
class TokenizerFields:
    """The ``tokenizer.ggml.*`` values of a byte-level BPE (``gpt2``) tokenizer."""

    pre: str
    tokens: list[str]
    types: list[int]
    merges: list[str]
    bos_id: int | None
    eos_id: int | None
    unk_id: int | None
    pad_id: int | None
    add_bos: bool
    add_eos: bool
    chat_template: str | None


def _pre_tokenizer(pre: dict[str, Any] | None) -> str | None:
    """llama.cpp's name for a transformers pre-tokenizer it reproduces exactly, if any."""
    def byte_level(p: dict[str, Any]) -> bool:
        return p.get("type") == "ByteLevel" and p.get("use_regex", True) and not p.get("add_prefix_space", False)

    if not pre:
        return None
    if byte_level(pre):
        return "gpt-2"  # GPT-2's split regex, as transformers' ByteLevel(use_regex=True) applies it
    parts = pre.get("pretokenizers") or []
    if (pre.get("type") == "Sequence" and len(parts) == 2 and parts[0].get("type") == "Digits"
            and parts[0].get("individual_digits") and byte_level(parts[1])):
        return "smollm"  # each digit alone, then GPT-2's regex
    return None


def tokenizer_fields(tok: Any, vocab_size: int) -> TokenizerFields:
    """Read the tokenizer memtune trained with into GGUF's fields, or say why llama.cpp could not rebuild it."""
    backend = getattr(tok, "backend_tokenizer", None)
    if backend is None:
        raise ModelError("GGUF export needs a fast (tokenizers) tokenizer; this one has no tokenizer.json")
    spec = json.loads(backend.to_str())
    model = spec.get("model") or {}
    pre = _pre_tokenizer(spec.get("pre_tokenizer"))
    if model.get("type") != "BPE" or pre is None or spec.get("normalizer"):
        raise ModelError(
            f"GGUF export supports byte-level BPE tokenizers (GPT-2 / SmolLM style); this one is "
            f"{model.get('type')} with pre-tokenizer {json.dumps(spec.get('pre_tokenizer'))[:120]}",
            hint="use `memtune merge` for a transformers model instead",
        )
    by_id = {i: t for t, i in tok.get_vocab().items()}
    if len(by_id) > vocab_size or max(by_id) >= vocab_size:
        raise ModelError(f"the tokenizer has {len(by_id)} tokens but the model's embedding only {vocab_size}")
    added = {int(i): t for i, t in (getattr(tok, "added_tokens_decoder", None) or {}).items()}
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in by_id:  # embedding rows no token uses: llama.cpp's convert names them so
            tokens.append(f"[PAD{i}]")
            types.append(4)  # USER_DEFINED
            continue
        tokens.append(by_id[i])
        types.append(1 if i not in added else 3 if getattr(added[i], "special", False) else 4)  # NORMAL/CONTROL/USER
    merges = [m if isinstance(m, str) else " ".join(m) for m in model.get("merges") or []]
    plain = tok("a", add_special_tokens=True).input_ids
    bare = tok("a", add_special_tokens=False).input_ids
    template = getattr(tok, "chat_template", None)
    return TokenizerFields(
        pre=pre, tokens=tokens, types=types, merges=merges,
        bos_id=tok.bos_token_id, eos_id=tok.eos_token_id, unk_id=tok.unk_token_id, pad_id=tok.pad_token_id,
        add_bos=tok.bos_token_id is not None and len(plain) > len(bare) and plain[0] == tok.bos_token_id,
        add_eos=tok.eos_token_id is not None and len(plain) > len(bare) and plain[-1] == tok.eos_token_id,
        chat_template=template if isinstance(template, str) else None,
    )


# --------------------------------------------------------------------------- tensors
def permute(w: Any, n_head: int, n_head_kv: int) -> Any:
    """llama.cpp's Q/K row order (convert_hf_to_gguf.LlamaModel.permute): rotary pairs interleaved."""
    if n_head_kv != n_head:
        n_head = n_head_kv
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def unpermute(w: Any, n_head: int, n_head_kv: int) -> Any:
    """The inverse of :func:`permute` (what transformers' GGUF loader applies)."""
    if n_head_kv != n_head:
        n_head = n_head_kv
    return w.reshape(n_head, w.shape[0] // n_head // 2, 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def gguf_name(hf_name: str) -> str | None:
    """llama.cpp's name for a transformers llama tensor (None: not one llama.cpp knows)."""
    if hf_name in _GLOBAL:
        return _GLOBAL[hf_name]
    parts = hf_name.split(".", 3)
    if len(parts) == 4 and parts[:2] == ["model", "layers"] and parts[2].isdigit() and parts[3] in _LAYER:
        return f"blk.{parts[2]}.{_LAYER[parts[3]]}"
    return None


def hf_tensors(model: Any, shape: LlamaShape, *, permuted: bool = True) -> Iterator[tuple[str, str, Any]]:
    """(gguf name, transformers name, float32 numpy array) for every tensor; in llama.cpp's row
    order unless ``permuted`` is False."""
    state = model.state_dict()
    for hf, t in state.items():
        if hf == "lm_head.weight" and shape.tied:
            continue  # tied to token_embd: llama.cpp reuses it when `output` is absent
        name = gguf_name(hf)
        if name is None:
            raise ModelError(f"tensor {hf!r} has no llama.cpp counterpart; this model cannot be written as GGUF")
        w = t.detach().float().cpu().numpy()
        if permuted and name.endswith(("attn_q.weight", "attn_k.weight")):
            w = permute(w, shape.head_count, shape.head_count if "attn_q" in name else shape.head_count_kv)
        yield name, hf, w


def _encode(name: str, w: Any, quant: str) -> tuple[Any, Any]:
    """(data, raw GGML type or None) for one tensor at the requested precision."""
    import numpy as np
    from gguf import GGMLQuantizationType
    from gguf.quants import quantize

    if w.ndim == 1:
        return w.astype(np.float32), None
    if quant == "q8_0" and w.shape[-1] % Q8_BLOCK == 0:
        return quantize(w, GGMLQuantizationType.Q8_0), GGMLQuantizationType.Q8_0
    half = w.astype(np.float16)
    if not np.isfinite(half).all():
        raise ModelError(f"{name} holds values beyond float16's range (largest {float(np.abs(w).max()):.3g})",
                         hint="this model cannot be written as f16 or q8_0 GGUF")
    return half, None


# --------------------------------------------------------------------------- the file
def write_gguf(path: Path, model: Any, tok: Any, quant: str, *, name: str, description: str = "",
               base_name: str | None = None) -> int:
    """Write ``model`` (a merged transformers llama) and ``tok`` as one GGUF file; return its tensor count."""
    from gguf import GGML_QUANT_VERSION, GGUFWriter, LlamaFileType

    shape = llama_shape(model.config)
    fields = tokenizer_fields(tok, shape.vocab_size)
    w = GGUFWriter(str(path), "llama")
    w.add_type("model")
    w.add_name(name)
    if description:
        w.add_description(description)
    if base_name:
        w.add_base_model_count(1)
        w.add_base_model_name(0, base_name)
    w.add_file_type(LlamaFileType.MOSTLY_Q8_0 if quant == "q8_0" else LlamaFileType.MOSTLY_F16)
    w.add_quantization_version(GGML_QUANT_VERSION)
    w.add_vocab_size(shape.vocab_size)
    w.add_context_length(shape.context_length)
    w.add_embedding_length(shape.embedding_length)
    w.add_block_count(shape.block_count)
    w.add_feed_forward_length(shape.feed_forward_length)
    w.add_head_count(shape.head_count)
    w.add_head_count_kv(shape.head_count_kv)
    w.add_rope_dimension_count(shape.head_dim)
    if shape.head_dim * shape.head_count != shape.embedding_length:
        w.add_key_length(shape.head_dim)
        w.add_value_length(shape.head_dim)
    w.add_rope_freq_base(shape.rope_freq_base)
    w.add_layer_norm_rms_eps(shape.rms_eps)

    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(fields.pre)
    w.add_token_list(fields.tokens)
    w.add_token_types(fields.types)
    w.add_token_merges(fields.merges)
    for setter, value in ((w.add_bos_token_id, fields.bos_id), (w.add_eos_token_id, fields.eos_id),
                          (w.add_unk_token_id, fields.unk_id), (w.add_pad_token_id, fields.pad_id)):
        if value is not None:
            setter(int(value))
    w.add_add_bos_token(fields.add_bos)
    w.add_add_eos_token(fields.add_eos)
    w.add_add_space_prefix(False)
    if fields.chat_template:
        w.add_chat_template(fields.chat_template)

    count = 0
    for gname, _hf, arr in hf_tensors(model, shape):
        data, raw = _encode(gname, arr, quant)
        w.add_tensor(gname, data, raw_dtype=raw)
        count += 1
    _write_out(w)
    return count


def _write_out(w: Any) -> None:
    """Header, key-values and tensors to disk, closing the writer whatever happens."""
    try:
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
    finally:
        w.close()


# --------------------------------------------------------------------------- reading back
@dataclass
class TensorCheck:
    """How every tensor read back from a GGUF compares with the model it was written from."""

    quant: str
    tensors: int
    max_abs_diff: float
    """Largest |file - merged fp32| over all tensors (f16/Q8_0 rounding)."""
    worst_tensor: str
    max_abs_diff_f16: float | None = None
    """f16 only: largest |file - merged rounded to f16|; 0 when the file holds exactly those values."""
    max_q8_steps: float | None = None
    """q8_0 only: the largest difference in Q8_0 steps (block max / 127); at most Q8_TOLERANCE."""
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_tensors(path: Path, shape: LlamaShape) -> dict[str, tuple[Any, str]]:
    """{gguf name: (float32 array in transformers' layout, GGML type name)} from a written file."""
    from gguf import GGUFReader
    from gguf.quants import dequantize

    out = {}
    for t in GGUFReader(str(path)).tensors:
        w = dequantize(t.data, t.tensor_type).astype("float32").reshape(tuple(int(d) for d in reversed(t.shape)))
        if t.name.endswith("attn_q.weight"):
            w = unpermute(w, shape.head_count, shape.head_count)
        elif t.name.endswith("attn_k.weight"):
            w = unpermute(w, shape.head_count, shape.head_count_kv)
        out[t.name] = (w, t.tensor_type.name)
    return out


def compare_tensors(path: Path, model: Any, quant: str) -> TensorCheck:
    """Every tensor of ``path`` against ``model``: same names and shapes; f16 exactly the f16-rounded
    weights; Q8_0 within :data:`Q8_TOLERANCE` steps of each block's scale."""
    import numpy as np

    shape = llama_shape(model.config)
    got = read_tensors(path, shape)
    check = TensorCheck(quant, len(got), 0.0, "", 0.0 if quant == "f16" else None, 0.0 if quant == "q8_0" else None)
    seen = set()
    for gname, hf, ref in hf_tensors(model, shape, permuted=False):
        seen.add(gname)
        if gname not in got:
            check.problems.append(f"{gname} ({hf}) is missing")
            continue
        w, kind = got[gname]
        if w.shape != ref.shape:
            check.problems.append(f"{gname}: shape {w.shape} in the file, {ref.shape} in the model")
            continue
        if not np.isfinite(w).all():
            check.problems.append(f"{gname}: holds inf/nan (a weight beyond float16's range?)")
            continue
        diff = float(np.abs(w - ref).max()) if w.size else 0.0
        if diff >= check.max_abs_diff:
            check.max_abs_diff, check.worst_tensor = diff, gname
        if kind == "F32":
            if diff != 0.0:
                check.problems.append(f"{gname}: float32 values differ by {diff:.3g}")
        elif kind == "F16":
            exact = float(np.abs(w - ref.astype(np.float16).astype(np.float32)).max())
            check.max_abs_diff_f16 = max(check.max_abs_diff_f16 or 0.0, exact)
            if exact != 0.0:
                check.problems.append(f"{gname}: differs from the float16-rounded weights by {exact:.3g}")
        elif kind == "Q8_0":
            blocks = ref.reshape(-1, Q8_BLOCK)
            step = np.abs(blocks).max(axis=1, keepdims=True) / 127.0
            err = np.abs(w.reshape(-1, Q8_BLOCK) - blocks)
            steps = float(np.where(step > 0, err / np.where(step > 0, step, 1), err * 1e9).max())
            check.max_q8_steps = max(check.max_q8_steps or 0.0, steps)
            if steps > Q8_TOLERANCE:
                check.problems.append(f"{gname}: off by {steps:.2f} Q8_0 steps (tolerance {Q8_TOLERANCE})")
        else:
            check.problems.append(f"{gname}: unexpected type {kind}")
    for extra in sorted(set(got) - seen):
        check.problems.append(f"{extra} is in the file but not in the model")
    return check


def read_metadata(path: Path) -> dict[str, Any]:
    """Every key of a GGUF file with its value (arrays of strings in full), for tests and inspection."""
    from gguf import GGUFReader

    return {k: f.contents() for k, f in GGUFReader(str(path)).fields.items()}


# --------------------------------------------------------------------------- the LoRA alone
LORA_EXACT = 1e-5
"""base + scale * B @ A rebuilt from a LoRA GGUF must equal the merged weights within this share of
their largest value (float32 rounding of the product; in practice ~1e-7)."""


@dataclass
class LoraPair:
    """One adapted matrix: llama.cpp's name for it and its factors in transformers' layout."""

    gguf_base: str
    """The weight the pair adapts, e.g. ``blk.12.ffn_up.weight``."""
    hf_weight: str
    a: Any
    """float32 (rank, in_features)."""
    b: Any
    """float32 (out_features, rank), in transformers' row order."""
    scaling: float


def lora_pairs(peft_model: Any) -> list[LoraPair]:
    """Every LoRA pair of a peft model, or a ModelError naming what a llama.cpp adapter cannot hold."""
    from peft.tuners.lora import LoraLayer

    pairs = []
    for mod_name, module in peft_model.named_modules():
        if not isinstance(module, LoraLayer):
            continue
        adapters = list(getattr(module, "lora_A", {}))
        if not adapters:
            continue
        if len(adapters) > 1:
            raise ModelError(f"{mod_name} carries {len(adapters)} adapters; a GGUF LoRA holds one",
                             hint="export one adapter at a time")
        key = adapters[0]
        if getattr(module, "use_dora", {}).get(key):
            raise ModelError("DoRA adapters have no llama.cpp LoRA form", hint="export the merged model only (no --lora)")
        hf = mod_name.split("base_model.model.", 1)[-1] + ".weight"
        name = gguf_name(hf)
        if name is None or name in ("token_embd.weight", "output.weight"):
            raise ModelError(f"LoRA on {hf} has no llama.cpp adapter form here",
                             hint="export the merged model only (no --lora)")
        a = module.lora_A[key].weight.detach().float().cpu().numpy()
        b = module.lora_B[key].weight.detach().float().cpu().numpy()
        pairs.append(LoraPair(name, hf, a, b, float(module.scaling[key])))
    if not pairs:
        raise ModelError("the adapter has no LoRA layers", hint="export the merged model only (no --lora)")
    extra = getattr(getattr(peft_model, "peft_config", {}).get("default"), "modules_to_save", None)
    if extra:
        raise ModelError(f"the adapter also trains whole modules ({', '.join(extra)}), which a GGUF LoRA cannot hold",
                         hint="export the merged model only (no --lora)")
    return pairs


def write_lora_gguf(path: Path, peft_model: Any, *, name: str, base_name: str | None = None) -> tuple[int, float]:
    """Write the adapter alone as a llama.cpp LoRA GGUF (``--lora``, Ollama ``ADAPTER``); return
    (tensor count, alpha). Factors stay float32: they are small and exact."""
    import numpy as np
    from gguf import GGUFWriter

    shape = llama_shape(peft_model.get_base_model().config)
    pairs = lora_pairs(peft_model)
    # llama.cpp scales each pair by alpha / rank: one alpha for the file, so a scaling that is not
    # the same alpha for every pair (rank_pattern, rsLoRA) is folded into B and alpha left at 0 (scale 1).
    alphas = {round(p.scaling * p.a.shape[0], 6) for p in pairs}
    alpha = alphas.pop() if len(alphas) == 1 else 0.0
    w = GGUFWriter(str(path), "llama")
    w.add_type("adapter")
    w.add_string("adapter.type", "lora")
    w.add_float32("adapter.lora.alpha", float(alpha))
    w.add_name(name)
    if base_name:
        w.add_base_model_count(1)
        w.add_base_model_name(0, base_name)
    for p in pairs:
        b = p.b if alpha else p.b * p.scaling
        if p.gguf_base.endswith(("attn_q.weight", "attn_k.weight")):
            b = permute(b, shape.head_count, shape.head_count if "attn_q" in p.gguf_base else shape.head_count_kv)
        w.add_tensor(f"{p.gguf_base}.lora_a", np.ascontiguousarray(p.a, dtype=np.float32))
        w.add_tensor(f"{p.gguf_base}.lora_b", np.ascontiguousarray(b, dtype=np.float32))
    _write_out(w)
    return 2 * len(pairs), float(alpha)


def compare_lora(path: Path, base_state: dict[str, Any], merged: Any) -> dict[str, Any]:
    """Rebuild every adapted weight from ``path`` as llama.cpp does (base + alpha / rank * B @ A) and
    compare it with the merged model: {pairs, alpha, max_abs_diff, worst_tensor, problems}."""
    import numpy as np
    from gguf import GGUFReader

    shape = llama_shape(merged.config)
    reader = GGUFReader(str(path))
    fields = {k: f.contents() for k, f in reader.fields.items()}
    problems = []
    if fields.get("general.type") != "adapter" or fields.get("adapter.type") != "lora":
        problems.append(f"{path.name}: not marked as a LoRA adapter (general.type {fields.get('general.type')!r})")
    alpha = float(fields.get("adapter.lora.alpha") or 0.0)
    got = {t.name: np.asarray(t.data, dtype=np.float32).reshape(tuple(int(d) for d in reversed(t.shape)))
           for t in reader.tensors}
    merged_state = merged.state_dict()
    by_gguf = {gguf_name(hf): hf for hf in merged_state}
    worst, diff_max, pairs = "", 0.0, 0
    for key in sorted(k for k in got if k.endswith(".lora_a")):
        target = key[: -len(".lora_a")]
        hf = by_gguf.get(target)
        b = got.get(target + ".lora_b")
        if hf is None or b is None:
            problems.append(f"{path.name}: {key} has no {'weight' if hf is None else 'lora_b'} to pair with")
            continue
        a = got[key]
        if target.endswith(("attn_q.weight", "attn_k.weight")):
            b = unpermute(b, shape.head_count, shape.head_count if "attn_q" in target else shape.head_count_kv)
        scale = alpha / b.shape[1] if alpha else 1.0
        rebuilt = base_state[hf].float().numpy() + scale * (b @ a)
        want = merged_state[hf].float().numpy()
        diff = float(np.abs(rebuilt - want).max())
        pairs += 1
        if diff >= diff_max:
            diff_max, worst = diff, target
        if diff > LORA_EXACT * max(1.0, float(np.abs(want).max())):
            problems.append(f"{path.name}: {target} rebuilt from the file differs from the merged weight by {diff:.3g}")
    changed = [gguf_name(hf) for hf in merged_state
               if hf in base_state and not bool((merged_state[hf] == base_state[hf]).all())]
    missing = sorted(set(changed) - {k[: -len(".lora_a")] for k in got if k.endswith(".lora_a")})
    if missing:
        problems.append(f"{path.name}: weights the merge changed have no LoRA pair: {', '.join(map(str, missing[:5]))}")
    return {"pairs": pairs, "alpha": alpha, "max_abs_diff": diff_max, "worst_tensor": worst, "problems": problems}
