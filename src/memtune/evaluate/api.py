"""``evaluate``: does the adapter know the memory, next to the base model and retrieval?

One call does the whole job so ``memtune run`` and the CLI share it: gather probes
(bundle + user files), pick control questions the memory cannot answer, retrieve notes
once per question, generate every condition's answers in batches, score them, check
for leaked secrets, measure forgetting, and (with ``out_dir``) write the reports.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from memtune.errors import InputError
from memtune.evaluate import controls as ctl
from memtune.evaluate.forgetting import SAMPLE_NAME, general_text, text_loss
from memtune.evaluate.leaks import check_output
from memtune.evaluate.probes import (
    Probe,
    bundle_from_lineage,
    coerce_probes,
    load_bundle_probes,
    load_probe_file,
    read_lineage,
    spread_limit,
)
from memtune.evaluate.results import (
    ConditionSummary,
    ControlAnswer,
    ControlResult,
    EvalReport,
    Forgetting,
    ProbeAnswer,
    ProbeResult,
)
from memtune.evaluate.retrieval import RetrievedNote, build_system_prompt, retrieve
from memtune.store import KNOWN_WORDS_MIN_SHARE, RELEVANCE_RATIO
from memtune.evaluate.runner import ModelUnderTest, ProgressFn, Prompt, generate_answers, parse_conditions
from memtune.evaluate.scoring import score_answer, summarize_by, summarize_scores
from memtune.recipes import default_recipe

_EVAL = default_recipe().eval
"""Answer length and retrieval depth: the recipe's, as `memtune run` evaluates."""


def gather_probes(
    *,
    adapter_dir: str | Path | None,
    lineage: dict[str, Any],
    bundle: str | Path | None,
    probes: Sequence[Probe | dict[str, Any]] | None,
    extra_probe_files: Sequence[str | Path],
    warnings: list[str],
) -> tuple[list[Probe], Path | None]:
    """Explicit probes, else the bundle's (explicit ``bundle`` or the adapter's lineage); plus user files."""
    bundle_dir = Path(bundle) if bundle else (bundle_from_lineage(lineage, adapter_dir) if adapter_dir else None)
    out: list[Probe] = []
    if probes is not None:
        out = coerce_probes(probes)
    elif bundle_dir is not None:
        out = load_bundle_probes(bundle_dir)
    elif not extra_probe_files:
        raise InputError(
            "no probes to ask: the adapter's memtune.json names no bundle that still exists, and no probe file was given",
            hint="pass --bundle BUNDLE_DIR (the one it was trained on) and/or --probes FILE.json",
        )
    else:
        warnings.append("no bundle found: only the user probe files were asked (no held-out phrasings)")
    for f in extra_probe_files:
        out.extend(load_probe_file(f))
    unscorable = [p.id for p in out if not score_answer("", p.expected_keywords).total]
    if unscorable:
        warnings.append(f"{len(unscorable)} probe(s) have no usable keyword and are not scored: {', '.join(unscorable[:5])}")
    return out, bundle_dir


def _memory_texts(store: Any, store_filter: Any, bundle_dir: Path | None, probes: Sequence[Probe]) -> list[str]:
    """What the memory says, for dropping control topics it might cover."""
    texts: list[str] = []
    if store is not None:
        texts.extend(ctl.memory_texts_from_store(store, store_filter))
    if bundle_dir is not None:
        for name in ("train.jsonl", "eval.jsonl"):
            f = bundle_dir / name
            if f.is_file():
                texts.append(f.read_text(encoding="utf-8", errors="replace"))
    texts.extend(" ".join([p.question, p.context, p.name or "", *p.expected_keywords]) for p in probes)
    return texts


def _open_store(db: Any) -> tuple[Any, bool]:
    if db is None:
        return None, False
    if hasattr(db, "search"):
        return db, False
    from memtune.store import GuidelineStore

    return GuidelineStore(db), True


def _notes_dicts(notes: Sequence[RetrievedNote]) -> list[dict[str, Any]]:
    return [n.to_dict() for n in notes]


def evaluate(
    adapter_dir: str | Path | None = None,
    *,
    bundle: str | Path | None = None,
    probes: Sequence[Probe | dict[str, Any]] | None = None,
    extra_probe_files: Sequence[str | Path] = (),
    db: Any = None,
    store_filter: Any = None,
    conditions: Sequence[str] | str | None = None,
    rag_k: int = _EVAL["rag_k"],
    rag_min_ratio: float = RELEVANCE_RATIO,
    rag_min_known: float = KNOWN_WORDS_MIN_SHARE,
    max_new_tokens: int = _EVAL["max_new_tokens"],
    temperature: float = 0.0,
    batch_size: int = 8,
    controls: bool = True,
    n_controls: int = ctl.DEFAULT_N_CONTROLS,
    control_questions: Sequence[str] = (),
    forgetting: bool = True,
    general_text_file: str | Path | None = None,
    limit: int | None = None,
    system_prompt: str | None = None,
    known_secrets: Sequence[str] = (),
    out_dir: str | Path | None = None,
    assistant: Any = None,
    device: str | None = None,
    bf16: bool | None = None,
    seed: int = 0,
    progress: ProgressFn | None = None,
) -> EvalReport:
    """Evaluate an adapter against the base model, with and without retrieval.

    ``adapter_dir``: a directory written by ``memtune train`` (or pass an already loaded
    ``assistant`` from ``memtune.infer.load_assistant(dir, merge=False)``).
    ``db``: a store path/URL or a ``GuidelineStore``; enables the ``+rag`` conditions.
    ``conditions``: any of base, base+rag, adapter, adapter+rag (default: all the inputs allow).
    ``rag_k`` / ``rag_min_ratio``: at most k notes, none scoring below that share of the best.
    ``rag_min_known``: no notes at all for a question less than this share of whose words occur in
    the memory (0 = always show the best matches).
    ``system_prompt``: asked under for every condition (default: the one in the adapter's
    memtune.json, i.e. what training used; ``""`` = none). Retrieval conditions append the notes.
    ``out_dir``: where to write report.json / report.md / report.html (``None`` = write nothing).
    ``progress(stage, done, total)``: stages ``generate:<condition>`` and ``forgetting``.
    """
    t_start = time.perf_counter()
    if adapter_dir is None and assistant is None:
        raise InputError("nothing to evaluate", hint="pass an adapter directory (memtune eval ADAPTER_DIR)")
    for name, v in (("rag_k", rag_k), ("max_new_tokens", max_new_tokens), ("batch_size", batch_size)):
        if not isinstance(v, int) or v < 1:
            raise InputError(f"{name.replace('_', '-')} must be a positive integer (got {v!r})")
    if not isinstance(rag_min_ratio, (int, float)) or not 0 <= rag_min_ratio <= 1:
        raise InputError(f"rag-min-ratio must be a number in 0..1 (got {rag_min_ratio!r})",
                         hint="0 keeps all rag-k notes; 0.6 (default) drops notes far behind the best")
    if not isinstance(rag_min_known, (int, float)) or not 0 <= rag_min_known <= 1:
        raise InputError(f"rag-min-known must be a number in 0..1 (got {rag_min_known!r})",
                         hint=f"0 always shows the best matches; {KNOWN_WORDS_MIN_SHARE} (default) shows none for a "
                              "question most of whose words the memory never uses")
    if temperature < 0:
        raise InputError(f"temperature must be >= 0 (got {temperature})")
    if adapter_dir is None and Path(str(getattr(assistant, "source", ""))).is_dir():
        adapter_dir = Path(assistant.source)  # curves.json and lineage live there
    warnings: list[str] = []
    lineage = read_lineage(adapter_dir) if adapter_dir else dict(getattr(assistant, "info", {}) or {})
    all_probes, bundle_dir = gather_probes(
        adapter_dir=adapter_dir, lineage=lineage, bundle=bundle, probes=probes,
        extra_probe_files=extra_probe_files, warnings=warnings,
    )
    if limit is not None:
        all_probes = spread_limit(all_probes, limit)
    if not all_probes:
        raise InputError("there are no probes to ask", hint="the bundle's probes.jsonl is empty; pass --probes FILE")
    store, close_store = _open_store(db)
    try:
        conds = parse_conditions(conditions, have_store=store is not None)
        if conditions is None and store is None:
            warnings.append("no guideline store given: retrieval conditions (base+rag, adapter+rag) were skipped")
        chosen: list[ctl.ControlTopic] = []
        dropped: list[ctl.ControlTopic] = []
        if controls:
            chosen, dropped = ctl.select_controls(_memory_texts(store, store_filter, bundle_dir, all_probes), n=n_controls)
            if not chosen and not control_questions:
                warnings.append("every built-in control topic overlaps the memory: no control questions asked")
            # questions written for this memory that it cannot answer, asked after the built-in ones
            chosen += [ctl.ControlTopic(q.strip(), ()) for q in control_questions if q.strip()]
        prompts = [Prompt(p.id, p.question, p.context) for p in all_probes]
        prompts += [Prompt(f"control:{i}", t.question) for i, t in enumerate(chosen, 1)]
        notes: dict[str, list[RetrievedNote]] = {}
        if any(c.endswith("+rag") for c in conds):
            for i, p in enumerate(prompts, 1):
                notes[p.key] = retrieve(store, p.question, p.context, k=rag_k, f=store_filter, min_ratio=rag_min_ratio,
                                          min_known=rag_min_known)
                if progress:
                    progress("retrieve", i, len(prompts))
    finally:
        if close_store:
            store.close()

    t_load = time.perf_counter()
    mut = ModelUnderTest.from_assistant(assistant, device=device) if assistant is not None else \
        ModelUnderTest.from_adapter_dir(adapter_dir, device=device, bf16=bf16)
    load_seconds = time.perf_counter() - t_load
    if not lineage:
        lineage = mut.info

    results = [ProbeResult(p) for p in all_probes]
    control_results = [ControlResult(t.question) for t in chosen]
    summaries: dict[str, ConditionSummary] = {}
    # Every condition asks under the same system prompt (the one training used), so
    # conditions differ only by the adapter and by the notes.
    system = system_prompt if system_prompt is not None else mut.system
    for cond in conds:
        which = "adapter" if cond.startswith("adapter") else "base"
        rag = cond.endswith("+rag")
        systems = [build_system_prompt(notes[p.key], system) if rag else system for p in prompts]
        t0 = time.perf_counter()
        answers = generate_answers(
            mut, which, prompts, systems, max_new_tokens=max_new_tokens, temperature=temperature,
            batch_size=batch_size, seed=seed,
            progress=(lambda d, t, c=cond: progress(f"generate:{c}", d, t)) if progress else None,
        )
        summaries[cond] = _score_condition(cond, answers, prompts, results, control_results,
                                           notes if rag else {}, known_secrets, time.perf_counter() - t0)
        if summaries[cond].leaks:
            warnings.append(f"{cond}: {summaries[cond].leaks} answer(s) contained something secret-looking "
                            "(shown redacted)")

    forget = _forgetting(mut, general_text_file, batch_size, progress) if forgetting else None

    report = EvalReport(
        meta=_meta(adapter_dir, lineage, bundle_dir, all_probes, conds, locals_=dict(
            rag_k=rag_k, rag_min_ratio=rag_min_ratio, rag_min_known=rag_min_known, max_new_tokens=max_new_tokens,
            temperature=temperature, batch_size=batch_size, limit=limit, seed=seed, n_controls=len(chosen), system_prompt=system,
            load_seconds=round(load_seconds, 2), total_seconds=round(time.perf_counter() - t_start, 2),
            bf16=mut.bf16,
        )),
        conditions=conds, summaries=summaries, probes=results, controls=control_results,
        dropped_controls=[t.question for t in dropped], forgetting=forget, curves=_curves(adapter_dir),
        warnings=warnings,
    )
    if out_dir is not None:
        from memtune.evaluate.report import write_reports

        write_reports(report, out_dir)
    return report


def _score_condition(
    cond: str,
    answers: Sequence[str],
    prompts: Sequence[Prompt],
    results: list[ProbeResult],
    control_results: list[ControlResult],
    notes: dict[str, list[RetrievedNote]],
    known_secrets: Sequence[str],
    seconds: float,
) -> ConditionSummary:
    """Score one condition's answers in place (probes first, then controls) and summarise.

    Keywords are scored on the raw answer; what is stored (and shown) is the redacted one.
    ``notes`` is empty for conditions without retrieval.
    """
    n = len(results)
    leaks = 0
    for r, prompt, raw in zip(results, prompts[:n], answers[:n], strict=True):
        lc = check_output(raw, known_secrets)
        leaks += lc.leaked
        got = notes.get(prompt.key, [])
        hit = None if not notes else right_note_shown(r.probe, got)
        r.answers[cond] = ProbeAnswer(lc.text, score_answer(raw, r.probe.expected_keywords), _notes_dicts(got), hit, lc.types)
    for cr, prompt, raw in zip(control_results, prompts[n:], answers[n:], strict=True):
        lc = check_output(raw, known_secrets)
        leaks += lc.leaked
        cr.answers[cond] = ControlAnswer(lc.text, ctl.classify_control(raw, cr.question),
                                         _notes_dicts(notes.get(prompt.key, [])), lc.types)
    scored = [(r.probe, r.answers[cond]) for r in results]
    hits = [a.retrieval_hit for _, a in scored if a.retrieval_hit is not None]
    return ConditionSummary(
        condition=cond,
        overall=summarize_scores(a.score for _, a in scored),
        by_category=summarize_by((p.category, a.score) for p, a in scored),
        by_source=summarize_by((source_label(p), a.score) for p, a in scored),
        retrieval_hit_rate=sum(hits) / len(hits) if hits else None,
        controls=ctl.summarize_controls(cr.answers[cond].verdict for cr in control_results) if control_results else None,
        leaks=leaks, seconds=seconds,
    )


ANSWER_WORDS = frozenset({"yes", "no"})
"""Keywords that are the answer to a yes/no question, not a fact a note holds."""


def right_note_shown(probe: Probe, shown: Sequence[RetrievedNote]) -> bool | None:
    """Were the notes that answer ``probe`` among the notes ``shown``?

    A bundle probe names its guideline; a hand-written one names only its expected keywords, so
    there the notes shown must hold every keyword between them (a two-fact question may need two
    notes), leaving out the yes/no that answers a yes/no question (None: nothing left to judge).
    """
    if probe.guideline_id is not None:
        return any(x.guideline_id == probe.guideline_id for x in shown)
    keys = [k.lower() for k in probe.expected_keywords if k.strip() and k.strip().lower() not in ANSWER_WORDS]
    if not keys:
        return None
    text = "\n".join(x.content.lower() for x in shown)
    return all(k in text for k in keys)


def source_label(probe: Probe) -> str:
    """Where a probe came from: the bundle's topic probes, its one-value probes, or a user file."""
    if probe.source != "bundle":
        return Path(probe.source).name
    return "bundle · values" if probe.extra.get("family") == "fact" else "bundle"


def _forgetting(mut: ModelUnderTest, sample: str | Path | None, batch_size: int,
                progress: ProgressFn | None) -> Forgetting:
    """General-text loss with the adapter off, then on."""
    text = general_text(sample)
    losses: dict[str, tuple[float, int]] = {}
    for which in ("base", "adapter"):
        with mut.use(which) as model:
            losses[which] = text_loss(
                model, mut.tokenizer, text, batch_size=batch_size,
                progress=(lambda d, t, w=which: progress(f"forgetting:{w}", d, t)) if progress else None,
            )
    return Forgetting(losses["base"][0], losses["adapter"][0], losses["adapter"][1],
                      sample=str(sample) if sample else SAMPLE_NAME)


def _curves(adapter_dir: str | Path | None) -> dict[str, Any] | None:
    if adapter_dir is None:
        return None
    f = Path(adapter_dir) / "curves.json"
    if not f.is_file():
        return None
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError:
        return None
    return data if isinstance(data, dict) else None


def _meta(adapter_dir: Any, lineage: dict[str, Any], bundle_dir: Path | None, probes: Sequence[Probe],
          conds: list[str], locals_: dict[str, Any]) -> dict[str, Any]:
    from memtune import __version__

    base = lineage.get("base_model") if isinstance(lineage.get("base_model"), dict) else {}
    dataset = lineage.get("dataset") if isinstance(lineage.get("dataset"), dict) else {}
    sources: dict[str, int] = {}
    for p in probes:
        key = "bundle" if p.source == "bundle" else Path(p.source).name
        sources[key] = sources.get(key, 0) + 1
    return {
        "memtune_version": __version__,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "adapter_dir": str(Path(adapter_dir).resolve()) if adapter_dir else None,
        "method": lineage.get("method"),
        "base_model": base.get("name") or base.get("hub_id"),
        "bundle": str(bundle_dir.resolve()) if bundle_dir else None,
        "dataset_fingerprint": dataset.get("fingerprint"),
        "train_metrics": lineage.get("metrics"),
        "conditions": conds,
        "probes": len(probes),
        "probe_sources": sources,
        "machine": f"{platform.system()} {platform.machine()}, python {platform.python_version()}",
        "settings": locals_,
    }
