"""export_guidelines_as_lora: store → a complete, atomically written training bundle.

Guidelines stream through in id order (flat memory, no cap); each one's examples are
split and written as they are made. Everything goes into a temp directory next to the
target that is renamed into place at the end, so a killed export never leaves half a
bundle where the user expects a whole one.
"""

from __future__ import annotations

import hashlib
import json
import multiprocessing as mp
import os
import random
import shutil
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from memtune.dataset import artifacts, staging
from memtune.dataset.config import ExportConfig
from memtune.dataset.examples import CONTEXT_SHARE, Example, prepare
from memtune.dataset.formats import SIDECAR_FORMATS, llama_factory_entry, to_record
from memtune.dataset.paraphrase import Paraphraser
from memtune.dataset.presets import adapter_config, resolve_model, write_adapter_config
from memtune.dataset.prompts import DEFAULT_SYSTEM_PROMPT, context_options, system_with_notes
from memtune.dataset.render import RECENT_NOTES, Note, Rendered, RenderSettings, note_dict, render_batch, render_guideline
from memtune.dataset.scrub import ScrubbedStore, removal_warning
from memtune.dataset.split import Splitter
from memtune.dataset.topics import clean_name
from memtune.dataset.near_miss import NEAR_MISS_RAG_SHARE, near_miss_questions
from memtune.dataset.unknown import UnknownQuestion, UnknownTopic, distractor_notes, note_text, unknown_count, \
    unknown_questions
from memtune.errors import ConfigError, MemtuneError

SEARCH_DISTRACTORS_MAX = 1000  # up to this many guidelines, distractors come from full-text search
PARALLEL_MIN = 5000  # from this many guidelines on, worker processes render batches
_BATCH = 250

Progress = Callable[[int, int], None]


@dataclass
class ExportResult:
    """What an export produced (seed 004's LoRAExportResult)."""

    success: bool
    format: str
    files: dict[str, str] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"success": self.success, "format": self.format, "files": self.files, "stats": self.stats,
                "warnings": self.warnings, "error": self.error}


def export_guidelines_as_lora(store: Any, config: ExportConfig, *, progress: Progress | None = None) -> ExportResult:
    """Export every guideline matching ``config.filter`` as a training bundle at ``config.output_path``.

    Raises ConfigError for an unusable target; returns ``success=False`` with ``error`` when
    nothing matches or the files cannot be written.
    """
    out = Path(config.output_path or "")
    _check_target(out, config.force)
    store = ScrubbedStore(store)  # defence in depth: redact again on the way out, and count it
    total = store.count(config.filter)
    if total == 0:
        return ExportResult(False, config.format, error="no guidelines match the filter",
                            warnings=["check the scope, category, priority and tag filters, and --include-inactive"])
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        staging.remove_stale_temps(out)
        tmp, lock = staging.make_temp(out)
    except OSError as exc:
        raise ConfigError(f"cannot write the bundle to {out}: {_why(exc, out)}", hint=_WRITABLE_HINT) from exc
    try:
        writer = _BundleWriter(store, config, tmp, total, progress)
        stats, warnings = writer.run()
        staging.swap_into_place(tmp, out)
    except OSError as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        return ExportResult(False, config.format, error=f"cannot write the bundle to {out}: {_why(exc, out)}",
                            warnings=[_WRITABLE_HINT])
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    finally:
        staging.release(lock)
    files = {key: str(out / name) for key, name in writer.files.items()}
    return ExportResult(True, config.format, files=files, stats=stats, warnings=warnings)


def _check_target(out: Path, force: bool) -> None:
    if not str(out).strip() or str(out) == ".":
        raise ConfigError("output path is required (--out DIR)")
    if out.exists() and not out.is_dir():
        raise ConfigError(f"output path {out} exists and is not a directory", hint="choose another --out")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise ConfigError(f"output directory {out} is not empty",
                          hint="pass --force (force=True) to replace it, or choose another --out")


_WRITABLE_HINT = "choose a writable --out (a folder on a disk with free space)"


def _why(exc: OSError, out: Path) -> str:
    """The OS error in words, and the path it was about when that is not the target itself."""
    what = exc.strerror or str(exc)
    name = str(exc.filename or "")
    if not name or name == str(out):
        return what
    if Path(name).parent == out.parent:  # the temp dir beside the target
        return f"cannot create files in {out.parent}: {what}"
    return f"{what} ({name})"


class _Distractors:
    """Other notes for retrieval-style examples: search neighbours when the store is small
    (what evaluation's retrieval will show), else the few guidelines just before this one."""

    def __init__(self, store: Any, config: ExportConfig, total: int) -> None:
        self.store = store
        self.filter = config.filter
        self.enabled = config.rag_fraction > 0 or config.rag_copies > 0 or bool(config.fact_rag_copies) \
            or config.control_rag_fraction > 0
        self.use_search = self.enabled and total <= SEARCH_DISTRACTORS_MAX
        self.pool: deque[dict[str, Any]] = deque(maxlen=RECENT_NOTES)

    def for_guideline(self, g: Any) -> list[Any]:
        if not self.enabled:
            return []
        if not self.use_search:
            return list(self.pool)
        query = f"{clean_name(g.name)} {g.content[:200]}"
        try:
            return [h for h, _ in self.store.search(query, self.filter, limit=6) if h.id != g.id][:4]
        except MemtuneError:
            return []

    def remember(self, g: Any) -> None:
        if self.enabled and not self.use_search:
            self.pool.append(note_dict(g))

    def for_question(self, question: str) -> list[Any]:
        """What retrieval would show for a question the memory cannot answer (all distractors)."""
        if not self.enabled:
            return []
        if not self.use_search:
            return list(self.pool)
        try:
            return [h for h, _ in self.store.search(question, self.filter, limit=3)]
        except MemtuneError:
            return []


def _worker_count(total: int) -> int:
    """Worker processes for a big export: up to 4, never more than the CPUs this process may use."""
    if total < PARALLEL_MIN:
        return 1
    env = os.environ.get("MEMTUNE_EXPORT_WORKERS")
    if env and env.isdigit():
        return max(1, int(env))
    from memtune.cpu import usable_cores

    return max(1, min(4, usable_cores()))


class _BundleWriter:
    def __init__(self, store: Any, config: ExportConfig, tmp: Path, total: int, progress: Progress | None) -> None:
        self.store, self.config, self.tmp, self.total, self.progress = store, config, tmp, total, progress
        self.fmt = config.format
        self.sidecar = self.fmt in SIDECAR_FORMATS and config.include_metadata
        self.parallel_workers = 1
        self.train_digest: Any = None  # sha256 of train.jsonl, taken while it is written
        self.files: dict[str, str] = {}
        self.warnings: list[str] = []
        self.c = {k: 0 for k in ("guidelines", "train", "eval", "negatives", "rag", "probes", "held_out",
                                 "thin", "redacted", "no_keywords", "short", "dropped_overlap", "unknown", "near_miss")}
        self.mentioned: set[int] = set()  # unknown topics some note mentions
        self.thin_names: list[str] = []
        self.short_names: list[str] = []

    # ------------------------------------------------------------------ main loop
    def run(self) -> tuple[dict[str, Any], list[str]]:
        started = time.time()
        cfg = self.config
        info = resolve_model(cfg.target_model)
        lora_kwargs, lora_summary = adapter_config(info, rank=cfg.lora_rank, alpha=cfg.lora_alpha,
                                                   dropout=cfg.lora_dropout)
        if info.model_type is None:
            self.warnings.append(f"could not tell the architecture of {cfg.target_model!r}; adapter_config.json "
                                 "targets 'all-linear' (PEFT resolves it when the model is loaded)")
        if info.num_params is None:
            self.warnings.append(f"could not tell the size of {cfg.target_model!r}; using the small LoRA preset")
        paraphraser = (Paraphraser(cfg.paraphrase_url, cfg.paraphrase_model or "", cache_dir=cfg.paraphrase_cache_dir)
                       if cfg.paraphrase_url else None)
        settings = RenderSettings(self.fmt, cfg.include_metadata, cfg.examples_per_guideline, cfg.seed,
                                  cfg.include_negative, cfg.rag_fraction, cfg.split_ratio, cfg.split_by,
                                  cfg.control_fraction, cfg.rag_copies, cfg.fact_share, cfg.fact_rag_copies,
                                  cfg.min_topic_questions, cfg.named_answers, cfg.rag_gold_first)
        distractors = _Distractors(self.store, cfg, self.total)
        guard = cfg.split_by == "guideline"  # phrasing sides are prompt-determined: no overlap possible
        eval_keys: set[str] = set()
        paths = {name: self.tmp / name for name in ("train.jsonl", "eval.jsonl", "probes.jsonl")}
        train_target = self.tmp / "train.part" if guard else paths["train.jsonl"]
        lineage_path = self.tmp / "lineage.part"
        handles: dict[str, TextIO] = {
            "train": train_target.open("w", encoding="utf-8"),
            "eval": paths["eval.jsonl"].open("w", encoding="utf-8"),
            "probes": paths["probes.jsonl"].open("w", encoding="utf-8"),
            "lineage": lineage_path.open("w", encoding="utf-8"),
        }
        if self.sidecar:
            handles["train_meta"] = (self.tmp / ("train.metadata.part" if guard else "train.metadata.jsonl")).open(
                "w", encoding="utf-8")
            handles["eval_meta"] = (self.tmp / "eval.metadata.jsonl").open("w", encoding="utf-8")
        workers = _worker_count(self.total)
        parallel = workers > 1 and paraphraser is None and not distractors.use_search
        try:
            rendered = (self._parallel(settings, distractors.enabled, workers, distractors.pool) if parallel
                        else self._serial(settings, distractors, paraphraser))
            for r in rendered:
                self._write(r, handles, eval_keys)
                if self.progress and (self.c["guidelines"] % 50 == 0 or self.c["guidelines"] == self.total):
                    self.progress(self.c["guidelines"], self.total)
            self._write_unknown(settings.splitter(), distractors, handles, eval_keys)
        finally:
            for h in handles.values():
                h.close()
            if paraphraser:
                paraphraser.close()
        self.train_digest = self._filter_train(eval_keys) if guard else None
        lineage_path.rename(self.tmp / "lineage.part.done")
        self.parallel_workers = workers if parallel else 1
        return self._finish(info, lora_kwargs, lora_summary, paraphraser, started)

    def _serial(self, settings: RenderSettings, distractors: _Distractors,
                paraphraser: Paraphraser | None) -> Iterator[Rendered]:
        splitter = settings.splitter()
        n_para = min(settings.examples_per_guideline, 6)
        for g in self.store.iter_guidelines(self.config.filter):
            paraphrases: list[str] = []
            if paraphraser is not None:
                np = prepare(g).topic.np
                paraphrases = paraphraser.paraphrase(f"What should I know about {np}?", n_para)
            yield render_guideline(g, settings, splitter, distractors.for_guideline(g), paraphrases)
            distractors.remember(g)

    def _parallel(self, settings: RenderSettings, use_notes: bool, workers: int,
                  pool_out: deque[dict[str, Any]] | None = None) -> Iterator[Rendered]:
        """Render batches in worker processes, in order, with a bounded number in flight (flat memory).
        ``pool_out`` ends holding the last notes, as the serial path's distractor pool does, so the
        "not in memory" examples written after it show the same notes whatever the worker count."""
        ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else None
        recent: deque[dict[str, Any]] = deque(maxlen=RECENT_NOTES)  # notes just before the next batch
        pending: deque[Future[list[Rendered]]] = deque()
        batch: list[Note] = []
        with ProcessPoolExecutor(max_workers=workers, mp_context=ctx, initializer=staging.worker_init,
                                 initargs=(os.getpid(),)) as pool:
            def submit() -> None:
                nonlocal batch
                pending.append(pool.submit(render_batch, (settings, batch, list(recent), use_notes)))
                recent.extend(note_dict(g) for g in batch)
                batch = []

            for g in self.store.iter_guidelines(self.config.filter):
                batch.append(Note.of(g))
                if len(batch) >= _BATCH:
                    submit()
                    while len(pending) > 2 * workers:
                        yield from pending.popleft().result()
            if batch:
                submit()
            while pending:
                yield from pending.popleft().result()
        if pool_out is not None and use_notes:
            pool_out.extend(recent)

    def _write(self, r: Rendered, h: dict[str, TextIO], eval_keys: set[str]) -> None:
        c = self.c
        c["guidelines"] += 1
        self.mentioned.update(r.mentioned)
        c["held_out"] += not r.trained
        c["redacted"] += r.redacted
        c["negatives"] += r.negatives
        c["rag"] += r.rag
        if r.thin:
            c["thin"] += 1
            if len(self.thin_names) < 5:
                self.thin_names.append(r.name)
        if r.short:
            c["short"] += 1
            if len(self.short_names) < 5:
                self.short_names.append(r.name)
        self._write_lines(r.lines, h, eval_keys)
        if not r.probes:
            c["no_keywords"] += 1
        for p in r.probes:
            h["probes"].write(p + "\n")
        c["probes"] += len(r.probes)
        h["lineage"].write(r.lineage + "\n")

    def _write_lines(self, lines: list[tuple[str, str, str | None, str | None]], h: dict[str, TextIO],
                     eval_keys: set[str]) -> None:
        for side, record, meta, key in lines:
            self.c[side] += 1
            if side == "eval":
                if key is not None:
                    eval_keys.add(key)
                h["eval"].write(record + "\n")
                if meta is not None:
                    h["eval_meta"].write(meta + "\n")
            else:
                prefix = f"{key}\t" if key is not None else ""
                h["train"].write(prefix + record + "\n")
                if meta is not None:
                    h["train_meta"].write(prefix + meta + "\n")

    def _write_unknown(self, splitter: Splitter, distractors: _Distractors, h: dict[str, TextIO],
                       eval_keys: set[str]) -> None:
        """The "not in memory" examples, once every note has been seen (a topic any note
        mentions is skipped); ``control_fraction`` of the whole set, never probes."""
        cfg = self.config
        n = unknown_count(self.c["train"] + self.c["eval"], cfg.control_fraction)
        if not n:
            return
        rng = random.Random(f"{cfg.seed}:unknown-prompts")
        contexts = context_options("general", [], None)
        guard = cfg.split_by == "guideline"
        lines = []
        near = self._near_misses(round(n * cfg.near_miss_share)) if cfg.near_miss_share > 0 else []
        asked = [(uq, False) for uq in near] + [
            (uq, True) for uq in unknown_questions(n - len(near), seed=cfg.seed, excluded=self.mentioned)]
        for uq, generic in asked:
            system, rag, note_ids = DEFAULT_SYSTEM_PROMPT, "none", []
            shown: list[Any] = []
            if not generic and rng.random() < NEAR_MISS_RAG_SHARE:
                shown = [g for g, _ in self.store.search_question(uq.question, f=cfg.filter)]
            elif generic and cfg.control_rag_fraction > 0 and rng.random() < cfg.control_rag_fraction:
                shown = distractor_notes(distractors.for_question(uq.question), rng)
            if shown:
                notes = [{"name": _get(x, "name"), "category": _get(x, "category"),
                          "content": _get(x, "content")} for x in shown]
                system, rag = system_with_notes(notes), "distractors"
                note_ids = [int(_get(x, "id")) for x in shown]
            context = rng.choice(contexts) if rng.random() < CONTEXT_SHARE else None
            ex = Example(guideline_id=None, guideline_version=None, name=uq.topic.np, category="unknown",
                         priority=0, tags=[], system=system, question=uq.question, context=context,
                         answer=uq.answer, is_negative=False, family="unknown", answer_form=uq.form, rag=rag,
                         note_ids=note_ids, kind="unknown")
            side = splitter.side(ex.question, f"unknown: {uq.topic.np}")
            record = json.dumps(to_record(ex, self.fmt, include_metadata=cfg.include_metadata), ensure_ascii=False)
            meta = json.dumps(ex.metadata(), ensure_ascii=False) if self.sidecar else None
            key = splitter.prompt_key(ex.question).hex() if guard else None
            lines.append((side, record, meta, key))
            self.c["rag"] += rag != "none"
        self.c["unknown"] = len(lines)
        self.c["near_miss"] = len(near)
        self._write_lines(lines, h, eval_keys)

    def _near_misses(self, n: int) -> list[UnknownQuestion]:
        """``n`` near-miss questions about the names the (scrubbed) notes use, as unknown questions."""
        texts, bodies = [], []
        for g in self.store.iter_guidelines(self.config.filter):
            texts.append(note_text(g))
            bodies.append("\n".join(x for x in (g.content, g.rationale) if x))
        return [UnknownQuestion(UnknownTopic(q.thing, None, ()), q.question, q.answer, q.form)
                for q in near_miss_questions(texts, n, seed=self.config.seed, bodies=bodies)]

    def _filter_train(self, eval_keys: set[str]) -> Any:
        """Guideline split: drop training prompts identical to a held-out one (rare, but never allowed).

        Returns the sha256 of train.jsonl as written, so the fingerprint need not read it again."""
        digest = hashlib.sha256()
        pairs = [("train.part", "train.jsonl")]
        if self.sidecar:
            pairs.append(("train.metadata.part", "train.metadata.jsonl"))
        for part, final in pairs:
            src, dst = self.tmp / part, self.tmp / final
            dropped = 0
            with src.open(encoding="utf-8") as fin, dst.open("w", encoding="utf-8", newline="\n") as fout:
                hashing = part == "train.part"
                for line in fin:
                    key, _, rest = line.partition("\t")
                    if key in eval_keys:
                        dropped += 1
                        continue
                    fout.write(rest)
                    if hashing:
                        digest.update(rest.encode("utf-8"))
            src.unlink()
            if part == "train.part":
                self.c["dropped_overlap"] = dropped
                self.c["train"] -= dropped
        return digest

    # ------------------------------------------------------------------ the other files
    def _finish(self, info: Any, lora_kwargs: dict[str, Any], lora_summary: dict[str, Any],
                paraphraser: Paraphraser | None, started: float) -> tuple[dict[str, Any], list[str]]:
        cfg, tmp, c = self.config, self.tmp, self.c
        self.files.update(train="train.jsonl", eval="eval.jsonl", probes="probes.jsonl")
        if self.sidecar:
            self.files.update(train_metadata="train.metadata.jsonl", eval_metadata="eval.metadata.jsonl")
        write_adapter_config(tmp, lora_kwargs)
        self.files["adapter_config"] = "adapter_config.json"
        if cfg.generate_script:
            from memtune.dataset.train_script import render_script

            (tmp / "train.py").write_text(render_script(), encoding="utf-8")
            (tmp / "requirements.txt").write_text(artifacts.requirements_txt(), encoding="utf-8")
            self.files.update(training_script="train.py", requirements="requirements.txt")
        self._collect_warnings(paraphraser)
        sizes = {name: (tmp / name).stat().st_size for name in ("train.jsonl", "eval.jsonl", "probes.jsonl")}
        counts = {"guidelines": c["guidelines"], "train": c["train"], "eval": c["eval"],
                  "negatives": c["negatives"], "rag": c["rag"], "probes": c["probes"], "unknown": c["unknown"]}
        card = artifacts.dataset_card(self.fmt, cfg.include_metadata, counts, sizes)
        (tmp / "dataset_info.yaml").write_text(artifacts.dataset_info_yaml(card), encoding="utf-8")
        artifacts.write_json(tmp / "dataset_info.json", artifacts.llama_factory_json(self.fmt, c["eval"] > 0))
        lf_ok = llama_factory_entry(self.fmt, "train.jsonl") is not None
        (tmp / "README.md").write_text(
            artifacts.readme(self.fmt, counts, lora_summary, card, lf_ok, cfg.generate_script), encoding="utf-8")
        self.files.update(dataset_info="dataset_info.yaml", llama_factory="dataset_info.json", readme="README.md",
                          metadata="metadata.json")
        fingerprint = (_fingerprint(tmp / "eval.jsonl", digest=self.train_digest) if self.train_digest is not None
                       else _fingerprint(tmp / "train.jsonl", tmp / "eval.jsonl"))
        exported_at = datetime.now(UTC).isoformat(timespec="seconds")
        stats = {
            "guidelines_matched": self.total,
            "guidelines_exported": c["guidelines"],
            "guidelines_held_out": c["held_out"],
            "examples_total": c["train"] + c["eval"],
            "examples_train": c["train"],
            "examples_eval": c["eval"],
            "negatives": c["negatives"],
            "rag_examples": c["rag"],
            "unknown_examples": c["unknown"],
            "probes": c["probes"],
            "thin_guidelines": c["thin"],
            "redacted_guidelines": c["redacted"],
            "secrets_removed": self.store.removed,
            "file_sizes": sizes,
            "fingerprint": fingerprint,
            "exported_at": exported_at,
            "seconds": round(time.time() - started, 2),
            "workers": self.parallel_workers,
        }
        if cfg.near_miss_share > 0:
            stats["near_miss_examples"] = c["near_miss"]
        if paraphraser:
            stats["paraphrase"] = paraphraser.summary()
        self._write_metadata(stats, lora_summary, info)
        stats["file_sizes"] = {name: (tmp / name).stat().st_size for name in sorted(self.files.values())}
        return stats, self.warnings

    def _collect_warnings(self, paraphraser: Paraphraser | None) -> None:
        c, cfg = self.c, self.config
        if c["thin"]:
            self.warnings.append(f"{c['thin']} guideline(s) are very short (e.g. {', '.join(map(repr, self.thin_names))});"
                                 " their examples carry little to learn")
        if (removed := removal_warning(self.store)) is not None:
            self.warnings.append(removed)
        if c["redacted"]:
            self.warnings.append(f"{c['redacted']} guideline(s) contain redacted secrets ([REDACTED:…]); the model "
                                 "learns the placeholder, never the value, and probes never expect it")
        if c["no_keywords"]:
            self.warnings.append(f"{c['no_keywords']} guideline(s) have no checkable keyword and got no probe")
        if c["short"]:
            self.warnings.append(f"{c['short']} guideline(s) yielded fewer than {cfg.examples_per_guideline} distinct "
                                 f"examples (e.g. {', '.join(map(repr, self.short_names))})")
        if c["dropped_overlap"]:
            self.warnings.append(f"{c['dropped_overlap']} training example(s) were dropped because the same prompt "
                                 "is in the eval split")
        if cfg.split_ratio > 0 and c["eval"] == 0:
            self.warnings.append("the eval split is empty (too few guidelines/examples for the split ratio)")
        if cfg.split_by == "guideline" and c["held_out"] == c["guidelines"]:
            self.warnings.append("every guideline was held out: nothing to train on; lower --split-ratio")
        if llama_factory_entry(self.fmt, "train.jsonl") is None:
            self.warnings.append(f"LLaMA-Factory cannot read {self.fmt!r} records (dataset_info.json is empty); "
                                 "use --format sharegpt or openai for it")
        if paraphraser is not None and paraphraser.failures:
            why = f": {paraphraser.errors[0]}" if paraphraser.errors else ""
            self.warnings.append(f"paraphrasing failed for {paraphraser.failures} guideline(s); templates were used "
                                 f"instead{why}")

    def _write_metadata(self, stats: dict[str, Any], lora_summary: dict[str, Any], info: Any) -> None:
        """metadata.json, with the lineage list streamed in from disk (flat memory)."""
        from memtune import __version__

        head = {
            "created_by": f"memtune {__version__}",
            "exported_at": stats["exported_at"],
            "format": self.fmt,
            "fingerprint": stats["fingerprint"],
            "config": self.config.to_dict(),
            # where the notes came from: serve, chat and ask retrieve from it by default (password hidden)
            "store": {"url": getattr(self.store, "display_url", None)},
            "target_model": lora_summary,
            "system_prompt": DEFAULT_SYSTEM_PROMPT,  # what every example is asked under (train/eval/serve read it)
            "counts": {k: stats[k] for k in ("guidelines_matched", "guidelines_exported", "guidelines_held_out",
                                              "examples_total", "examples_train", "examples_eval", "negatives",
                                              "rag_examples", "unknown_examples", "probes", "secrets_removed")},
            "split": {"by": self.config.split_by, "ratio": self.config.split_ratio, "seed": self.config.seed,
                      "train_overlap_dropped": self.c["dropped_overlap"]},
            "files": dict(self.files),
            "warnings": self.warnings,
        }
        text = json.dumps(head, indent=2, ensure_ascii=False, default=str)
        lineage = self.tmp / "lineage.part.done"
        with (self.tmp / "metadata.json").open("w", encoding="utf-8") as out, lineage.open(encoding="utf-8") as lin:
            out.write(text[:-2] + ',\n  "guidelines": [')
            first = True
            for line in lin:
                out.write(("\n    " if first else ",\n    ") + line.rstrip("\n"))
                first = False
            out.write("\n  ]\n}\n")
        lineage.unlink()


def _fingerprint(*paths: Path, digest: Any = None) -> str:
    """sha256 over the train then eval files' bytes (what the trainer records as dataset lineage);
    ``digest`` already holds the bytes before ``paths``."""
    h = digest if digest is not None else hashlib.sha256()
    for p in paths:
        with p.open("rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return "sha256:" + h.hexdigest()


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key)


__all__ = ["ExportResult", "export_guidelines_as_lora"]

