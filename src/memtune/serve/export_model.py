"""``memtune export-model ADAPTER --gguf OUT``: the adapter as GGUF files + an Ollama Modelfile.

The adapter is merged into its base with :func:`memtune.serve.merge.merge_adapter` (itself
checked against base + adapter), written with :mod:`memtune.serve.gguf`, and, unless
``verify=False``, checked before anything lands in OUT (everything is staged in a sibling
folder that is renamed into place only when every check passed):

1. tensors: each file is read back (``gguf.GGUFReader``), dequantised, un-permuted and compared
   with the merged model: f16 exactly the float16-rounded weights, Q8_0 within
   :data:`~memtune.serve.gguf.Q8_TOLERANCE` quantisation steps, norms exact;
2. loading: transformers loads each file (``from_pretrained(dir, gguf_file=...)``, the route
   memtune loads its default model by) with the tokenizer rebuilt from the file, which must
   tokenise the probe prompts identically, and the loaded model must give the logits of the merged
   model holding the file's own weights (:data:`EXACT_LOGITS`), so the hyper-parameters, the
   permutation, the tied head and the tokenizer were all read back as meant;
3. quality: greedy answers to the probe questions against the float32 merged model: on each
   reference token's prefix the file's model must pick that token at least
   :data:`MIN_AGREEMENT` of the time (teacher-forced, so one early divergence does not count
   twice); whole answers that come out identical are counted too.
"""

from __future__ import annotations

import contextlib
import copy
import io
import os
import re
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from memtune.chatformat import conversation, render
from memtune.errors import InputError, ModelError
from memtune.generation import encode_prompt, generate_ids, pad_id, stop_ids
from memtune.serve import gguf, ollama
from memtune.serve.loader import LINEAGE_FILE, inspect, read_json
from memtune.serve.merge import PROBE_QUESTION, merge_adapter

MIN_AGREEMENT = 0.9
"""Share of the merged model's greedy tokens a file's model must also pick (teacher-forced)."""
PROBE_QUESTIONS = (
    PROBE_QUESTION,
    "How do I run the tests?",
    "Which database does this project use?",
    "What should I check before committing?",
)
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")

EXACT_LOGITS = 1e-4
"""The file loaded by transformers and the merged model holding the file's own weights must give the
same logits within this share of their largest (they are the same numbers; in practice 0)."""

Progress = Callable[[str], None]


@dataclass
class GgufFile:
    quant: str
    file: str
    bytes: int
    tensors: int
    tensor_check: dict[str, Any] | None = None
    load_check: dict[str, Any] | None = None
    summary: str = "not verified"


@dataclass
class LoraFiles:
    """The adapter alone as a llama.cpp LoRA GGUF, the base it applies to, and their Modelfile."""

    adapter_file: str
    adapter_bytes: int
    base_file: str
    base_bytes: int
    modelfile: str
    alpha: float
    check: dict[str, Any] | None = None
    summary: str = "not verified"


@dataclass
class ExportResult:
    out_dir: str
    name: str
    base: str | None
    files: list[GgufFile]
    modelfile: str
    system_prompt: str | None
    template: str
    """chatml (a TEMPLATE in the Modelfile) or from-gguf (Ollama reads the GGUF's template)."""
    verified: bool
    probes: list[str] = field(default_factory=list)
    min_agreement: float = MIN_AGREEMENT
    lora: LoraFiles | None = None
    """With ``lora=True``: the adapter alone and its base, for llama.cpp ``--lora`` and Ollama ``ADAPTER``."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- input checks
def parse_quants(quants: Sequence[str] | None) -> list[str]:
    """The requested precisions, deduplicated, largest first (f16 before q8_0)."""
    asked = [q.strip().lower() for q in (quants or gguf.QUANTS)]
    bad = [q for q in asked if q not in gguf.QUANTS]
    if bad or not asked:
        raise InputError(f"unknown --quant {', '.join(map(repr, bad)) or '(none)'}",
                         hint=f"choose from {', '.join(gguf.QUANTS)} (repeat --quant for several)")
    return [q for q in gguf.QUANTS if q in asked]


def model_name(name: str | None, fallback: str) -> str:
    """An Ollama-safe model name: the one given (checked), else ``fallback`` tidied."""
    if name is not None:
        if not _NAME.match(name):
            raise InputError(f"--name {name!r} is not a usable model name",
                             hint="use lower-case letters, digits, '.', '_' or '-' (at most 64), starting with a letter or digit")
        return name
    tidy = re.sub(r"[^a-z0-9._-]+", "-", fallback.lower()).strip("-._")[:64]
    return tidy or "memtune-model"


def _check_out(out: Path, adapter: Path, force: bool) -> None:
    if out.resolve() == adapter.resolve() or out.resolve().is_relative_to(adapter.resolve()):
        raise InputError(f"--gguf {out} is inside the adapter directory", hint="choose a separate folder")
    if out.exists() and not out.is_dir():
        raise InputError(f"--gguf {out} is a file, not a folder", hint="choose a folder path")
    if out.exists() and any(out.iterdir()) and not force:
        raise InputError(f"{out} already exists and is not empty", hint="choose another --gguf folder or pass --force")


# --------------------------------------------------------------------------- verification
def _with_file_weights(model: Any, path: Path) -> Any:
    """A copy of ``model`` holding the weights as read back from ``path`` (what the file should compute)."""
    import torch

    shape = gguf.llama_shape(model.config)
    tensors = gguf.read_tensors(path, shape)
    clone = copy.deepcopy(model)
    state = clone.state_dict()
    with torch.no_grad():
        for gname, hf, _ in gguf.hf_tensors(model, shape, permuted=False):
            state[hf].copy_(torch.from_numpy(tensors[gname][0]))
    return clone


def _trim(ids: list[int], stops: set[int]) -> list[int]:
    cut = next((i for i, t in enumerate(ids) if t in stops), None)
    return ids if cut is None else ids[: cut + 1]


def _answers(model: Any, prompts: list[list[int]], stops: list[int], pad: int, n: int) -> list[list[int]]:
    return [_trim(a, set(stops)) for a in generate_ids(model, prompts, stops=stops, pad=pad, max_new_tokens=n)]


def _forced(model: Any, prompt: list[int], answer: list[int]) -> tuple[list[int], Any]:
    """The model's top token at each answer position given the reference prefix, and its logits."""
    import torch

    ids = torch.tensor([prompt + answer[:-1]])
    with torch.inference_mode():
        logits = model(input_ids=ids).logits[0, len(prompt) - 1 :].float()
    return logits.argmax(-1).tolist(), logits


def _compare(model: Any, ref: Any, prompts: list[list[int]], ref_answers: list[list[int]],
             stops: list[int], pad: int, n: int | None) -> dict[str, Any]:
    """Greedy agreement and logit gap of ``model`` against ``ref``'s answers on the probe prompts
    (with ``n``, also ``model``'s own free-running answers compared whole)."""
    agree = total = 0
    gap = scale = 0.0
    for p, a in zip(prompts, ref_answers, strict=True):
        if not a:
            continue
        top, logits = _forced(model, p, a)
        _, ref_logits = _forced(ref, p, a)
        agree += sum(int(x == y) for x, y in zip(top, a, strict=True))
        total += len(a)
        gap = max(gap, float((logits - ref_logits).abs().max()))
        scale = max(scale, float(ref_logits.abs().max()))
    out: dict[str, Any] = {"agreement": agree / total if total else 1.0, "tokens": total,
                           "max_abs_logit_diff": gap, "logit_scale": scale}
    if n is not None:
        answers = _answers(model, prompts, stops, pad, n)
        out["identical_answers"] = sum(int(x == y) for x, y in zip(answers, ref_answers, strict=True))
        out["answers"] = len(prompts)
    return out


def verify_file(path: Path, merged: Any, tok: Any, quant: str, texts: list[str], prompts: list[list[int]],
                ref_answers: list[list[int]], n: int) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """(tensor check, load check, problems) for one written GGUF file; no problems = it passed."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tensors = gguf.compare_tensors(path, merged, quant)
    problems = [f"{path.name}: {p}" for p in tensors.problems]
    if problems:
        return tensors.to_dict(), {}, problems
    stops = stop_ids(merged, tok)
    pad = pad_id(tok, stops)
    try:  # (its de-quantising progress bar would only clutter the command's output)
        with contextlib.redirect_stderr(io.StringIO()):
            loaded = AutoModelForCausalLM.from_pretrained(str(path.parent), gguf_file=path.name,
                                                          dtype=torch.float32).eval()
            gtok = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    except Exception as exc:  # what a broken file looks like to transformers
        return tensors.to_dict(), {}, [f"{path.name}: transformers cannot load it: {exc}"]
    same_ids = all(gtok(t, add_special_tokens=False).input_ids == tok(t, add_special_tokens=False).input_ids
                   for t in texts) and getattr(gtok, "chat_template", None) == getattr(tok, "chat_template", None)
    exact_ref = _with_file_weights(merged, path)
    exact = _compare(loaded, exact_ref, prompts, ref_answers, stops, pad, None)
    del exact_ref
    quality = _compare(loaded, merged, prompts, ref_answers, stops, pad, n)
    load = {"tokenizer_identical": same_ids, "vs_file_weights": exact, "vs_merged": quality}
    if not same_ids:
        problems.append(f"{path.name}: the tokenizer rebuilt from the file differs (probe prompt ids or chat template)")
    if exact["max_abs_logit_diff"] > EXACT_LOGITS * max(1.0, exact["logit_scale"]):
        problems.append(f"{path.name}: loaded by transformers it does not compute what its own weights do "
                        f"(logits differ by {exact['max_abs_logit_diff']:.3g}): a hyper-parameter or tensor "
                        "was read back differently")
    if quality["agreement"] < MIN_AGREEMENT:
        problems.append(f"{path.name}: agrees with the merged model on {quality['agreement']:.1%} of greedy tokens "
                        f"(at least {MIN_AGREEMENT:.0%} required)")
    return tensors.to_dict(), load, problems


def _summary(t: dict[str, Any], load: dict[str, Any]) -> str:
    q = load["vs_merged"]
    w = (f"weights = f16(merged) exactly (max abs diff vs fp32 {t['max_abs_diff']:.2g})" if t["quant"] == "f16"
         else f"weights within {t['max_q8_steps']:.2f} Q8_0 steps (max abs diff {t['max_abs_diff']:.2g})")
    return (f"{w}; greedy tokens {q['agreement']:.1%} as merged, {q['identical_answers']}/{q['answers']} answers "
            f"identical (logits within {q['max_abs_logit_diff']:.2g})")


# --------------------------------------------------------------------------- the export
def export_model(
    adapter: str | Path,
    out: str | Path,
    *,
    quants: Sequence[str] | None = None,
    name: str | None = None,
    base: str | None = None,
    force: bool = False,
    verify: bool = True,
    lora: bool = False,
    probe_tokens: int = 32,
    progress: Progress | None = None,
) -> ExportResult:
    """Merge ``adapter`` into its base and write ``out``/NAME-{f16,q8_0}.gguf, Modelfile and README.md;
    with ``lora``, also NAME-lora.gguf (the adapter alone), NAME-base-f16.gguf and Modelfile.lora."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    say = progress or (lambda _msg: None)
    wanted = parse_quants(quants)
    ref = inspect(adapter, base)
    out = Path(out).expanduser()
    _check_out(out, ref.path, force)
    label = model_name(name, ref.name)
    if lora and ref.kind != "adapter":
        raise InputError(f"--lora needs a LoRA adapter, but {ref.path} is a merged model",
                         hint="pass the adapter folder `memtune train` wrote, or leave out --lora")

    stage = out.parent / f".{out.name}.tmp-{os.getpid()}"
    shutil.rmtree(stage, ignore_errors=True)
    stage.mkdir(parents=True)
    try:
        if ref.kind == "adapter":
            say(f"merging {ref.path} into {ref.base}")
            source = stage / "merged"
            merge_adapter(ref.path, source, base=base, verify=verify)
        else:
            source = ref.path
        merged = AutoModelForCausalLM.from_pretrained(str(source), dtype=torch.float32).eval()
        tok = AutoTokenizer.from_pretrained(str(source))
        gguf.llama_shape(merged.config)  # fail on an unsupported model before writing anything
        lineage = read_json(source / LINEAGE_FILE)
        layout = ollama.chat_layout(tok)
        system = lineage.get("system_prompt") or layout.default_system
        base_name = _base_name(lineage, ref.base)
        stops = stop_ids(merged, tok)
        stop_text = [t for t in tok.convert_ids_to_tokens(stops) if t and t.startswith("<")]
        if layout.chatml and "<|im_start|>" in tok.get_vocab() and "<|im_start|>" not in stop_text:
            stop_text.append("<|im_start|>")  # never let it open a turn of its own

        files = []
        for q in wanted:
            path = stage / f"{label}-{q}.gguf"
            say(f"writing {path.name}")
            n = gguf.write_gguf(path, merged, tok, q, name=label, base_name=base_name,
                                description=f"memtune adapter {ref.name} merged into {base_name or 'its base'}")
            files.append(GgufFile(q, path.name, path.stat().st_size, n))

        if verify:
            convs = [conversation(qn, "", system) for qn in PROBE_QUESTIONS]
            texts = [render(tok, c, add_generation_prompt=True) for c in convs]
            prompts = [encode_prompt(tok, c) for c in convs]
            pad = pad_id(tok, stops)
            ref_answers = _answers(merged, prompts, stops, pad, probe_tokens)
            problems: list[str] = []
            for f in files:
                say(f"verifying {f.file}")
                f.tensor_check, f.load_check, bad = verify_file(stage / f.file, merged, tok, f.quant, texts,
                                                                 prompts, ref_answers, probe_tokens)
                problems += bad
                if not bad:
                    f.summary = _summary(f.tensor_check, f.load_check)
            if problems:
                raise ModelError("the GGUF export did not pass its checks; nothing was written:\n  "
                                 + "\n  ".join(problems),
                                 hint="report this with the adapter's memtune.json; --no-verify skips the checks")

        lora_files = None
        if lora:
            say(f"writing {label}-lora.gguf and {label}-base-f16.gguf")
            lora_files = _export_lora(ref, stage, label, tok, merged, base_name=base_name, base=base, verify=verify)
            (stage / lora_files.modelfile).write_text(
                ollama.modelfile(lora_files.base_file, system=system, layout=layout, stops=stop_text,
                                 adapter=lora_files.adapter_file), encoding="utf-8")

        (stage / "Modelfile").write_text(
            ollama.modelfile(files[-1].file, system=system, layout=layout, stops=stop_text), encoding="utf-8")
        (stage / "README.md").write_text(
            ollama.readme(label, files=[asdict(f) for f in files], system=system, layout=layout,
                          source=ref.name, base=base_name, lora=asdict(lora_files) if lora_files else None),
            encoding="utf-8")
        del merged
        if source != ref.path:
            shutil.rmtree(source)
        if out.exists():
            shutil.rmtree(out)
        os.replace(stage, out)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    return ExportResult(
        out_dir=str(out), name=label, base=base_name, files=files, modelfile=str(out / "Modelfile"),
        system_prompt=system, template="chatml" if layout.chatml else "from-gguf", verified=verify,
        probes=list(PROBE_QUESTIONS) if verify else [], lora=lora_files,
    )


def _export_lora(ref: Any, stage: Path, label: str, tok: Any, merged: Any, *, base_name: str | None,
                 base: str | None, verify: bool) -> LoraFiles:
    """Write the base as f16 GGUF and the adapter alone as a LoRA GGUF into ``stage``; with ``verify``,
    read both back: the base's tensors exactly its f16-rounded weights, and base + alpha / rank * B @ A
    rebuilt from the LoRA file equal to the merged weights."""
    import torch
    from peft import PeftModel

    from memtune.models import load_base_model

    base_model, _ = load_base_model(base or ref.base, dtype=torch.float32)
    base_model.eval()
    base_file = stage / f"{label}-base-f16.gguf"
    gguf.write_gguf(base_file, base_model, tok, "f16", name=f"{label}-base",
                    description=f"the base model of the memtune adapter {ref.name}", base_name=base_name)
    problems: list[str] = []
    if verify:
        problems += [f"{base_file.name}: {p}" for p in gguf.compare_tensors(base_file, base_model, "f16").problems]
    base_state = {k: v.detach().clone() for k, v in base_model.state_dict().items()} if verify else {}
    try:
        peft_model = PeftModel.from_pretrained(base_model, str(ref.path)).eval()
    except (OSError, ValueError, RuntimeError) as exc:
        raise ModelError(f"cannot load {ref.path} as a LoRA adapter: {exc}", hint="check the adapter folder") from exc
    adapter_file = stage / f"{label}-lora.gguf"
    _, alpha = gguf.write_lora_gguf(adapter_file, peft_model, name=f"{label}-lora", base_name=base_name)
    files = LoraFiles(adapter_file.name, adapter_file.stat().st_size, base_file.name, base_file.stat().st_size,
                      "Modelfile.lora", alpha)
    if verify:
        files.check = gguf.compare_lora(adapter_file, base_state, merged)
        problems += files.check["problems"]
        if problems:
            raise ModelError("the GGUF LoRA export did not pass its checks; nothing was written:\n  "
                             + "\n  ".join(problems),
                             hint="report this with the adapter's adapter_config.json; --no-verify skips the checks")
        files.summary = (f"{files.check['pairs']} LoRA pairs; base + B·A rebuilt from the file = merged weights "
                         f"(max abs diff {files.check['max_abs_diff']:.2g}); base weights = f16(base) exactly")
    return files


def _base_name(lineage: dict[str, Any], fallback: str | None) -> str | None:
    """The base model's public name for the file's metadata (a hub id, never a local path)."""
    from memtune.models import spec_for

    merged_from = lineage.get("merged_from") if isinstance(lineage.get("merged_from"), dict) else {}
    b = lineage.get("base_model")
    name = (b.get("name") if isinstance(b, dict) else b) or merged_from.get("base") or fallback
    if not name:
        return None
    spec = spec_for(str(name))
    return spec.hub_id if spec is not None else Path(str(name)).name
