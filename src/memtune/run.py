"""``memtune run PATH``: memory files → store → bundle → adapter → evaluation report, in one call.

Each stage records a key of its inputs in ``<work_dir>/run.json``; a rerun skips a
stage whose key (and output) is unchanged, so editing one rule retrains, while
rerunning on the same memory only re-ingests (a no-op) and prints where things are.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from memtune.errors import InputError
from memtune.store import GuidelineFilter, GuidelineStore

STAMP = "run.json"

# The recipe `memtune run` trains with on the embedded default model, sized so the shipped
# example memory (~50 guidelines) trains three epochs in under ten minutes on two CPU cores
# (NOTES.md has every run behind it, and the time each took on its machine):
# - many short phrasings per guideline (9): what moves held-out recall; up to three in four ask
#   for one value the note holds ("Which port does the worker listen on?", fact_share 0.75), the
#   way people ask, instead of about the note's topic (a note yields as many as it has values);
#   yet at least four training questions per note name its topic (min_topic_questions 4): notes
#   whose values filled every slot trained 0-2 such questions and were recalled 0.35 when asked
#   about by name, against 0.87 for the rest (NOTES.md, session 15);
# - every answer about a note opens with its name ("Torch Pin: ALWAYS install …", named_answers):
#   the name is then the last thing before the content in each example, so the content is learned
#   as following it. Closed-book topic recall 0.816 / 0.785 -> 0.887 / 0.891 on two seeds, at
#   +4.3 % general-text loss instead of +4.7 % (NOTES.md, session 16); the copies asked with the
#   note in the prompt answer "From the project memory: …" instead, so that with notes shown the
#   adapter copies the note rather than choosing among titles (adapter + retrieval 0.935 / 0.958 ->
#   0.972 / 0.963 on two seeds, closed-book 0.868 / 0.906).
# - few retrieved-notes examples in place of closed-book ones (10 %: they teach copying, not
#   remembering), plus notes-in-prompt copies of a fifth of the rest (rag_copies 0.2): adapter +
#   retrieval 0.87 → 0.949 with closed-book recall intact, for ~45 % more tokens per epoch; half
#   of the value questions get one (fact_rag_copies 0.5): adapter + retrieval on hand-written
#   questions 0.69 → 0.83, on value probes 0.86 → 0.96 (e13 → e14). Since session 17 a third of
#   the rest get one (rag_copies 0.35), and three in four notes-in-prompt examples list the right
#   note first, as the store's ranking does (rag_gold_first 0.75; the rest at a random place among
#   0-2 near misses): at three epochs adapter + retrieval 0.939 / 0.943 -> 0.969 / 0.963 on two
#   seeds, and 0.80 -> 0.86 / 0.89 on hand-written questions (NOTES.md, session 17);
# - 15 % "not in memory" examples, half of them asking for one specific value ("Which port …?"),
#   the shape that tempted the model to invent;
# - self-replay at 0.4: the base model's own text holds the general-text loss change down (+25 %
#   without it); 0.4 measured the same as 0.5 on two seeds (+4.7 % both, recall within noise) with
#   6 % fewer steps (NOTES.md, session 15);
# - no LoRA on the first third of the layers and 1024-token forward passes: ~40 % more tokens/s;
# - LoRA on the MLP blocks only (target_modules "mlp"): the same closed-book recall as every linear
#   layer (topic probes 0.60 vs 0.59, two seeds each) at +4.4 % general-text loss instead of +6.7 %,
#   and adapter + retrieval on hand-written questions 0.77 vs 0.70; attention-only recalled 0.08;
# - no LoRA dropout (faster on a CPU);
# - three epochs at lr 2e-3 (session 17): 345 steps in 485 / 501 s at 606 / 588 tok/s (~545 s at
#   session 16's 540 tok/s) instead of four epochs' 420 in 640-683 s, at +2.0 / +3.6 % general-text
#   loss instead of +4.6 / +4.7 %, closed-book topic recall 0.880 / 0.851 (0.868 / 0.906 before);
# - protect_energy 0.3 (with lr 1.75e-3 at four epochs, sessions 13-16): every LoRA A kept off
#   the few input directions that carry 30 % of each layer's input energy on ordinary text (the
#   massive activations all text shares).
#   Closed-book topic recall 0.60 -> 0.78 / 0.73 and adapter + retrieval 0.94 -> 0.97 / 0.96, at
#   +2.7 % / +5.0 % general-text loss (two seeds); lr 2e-3 recalled as much at +6.6 % / +7.0 %,
#   lr 1.5e-3 0.70 / 0.69 at +2.9 % / +3.5 %. NOTES.md, sessions 13-14.
# Every value can be overridden through RunConfig.export / RunConfig.train.
DEFAULT_EXPORT: dict[str, Any] = {"examples_per_guideline": 9, "include_negative": True, "split_ratio": 0.1,
                                  "rag_fraction": 0.1, "rag_copies": 0.35, "fact_share": 0.75, "fact_rag_copies": 0.5,
                                  "min_topic_questions": 4, "named_answers": True, "control_fraction": 0.15,
                                  "rag_gold_first": 0.75}
DEFAULT_TRAIN: dict[str, Any] = {"epochs": 3, "batch_size": 8, "patience": 1, "probe_sample": 8, "dropout": 0.0,
                                 "replay_fraction": 0.4, "replay_source": "self", "skip_layers": 1 / 3,
                                 "max_batch_tokens": 1024, "target_modules": "mlp", "lr": 2e-3, "protect_energy": 0.3}
DEFAULT_EVAL: dict[str, Any] = {"max_new_tokens": 96, "rag_k": 3}

@dataclass
class RunConfig:
    """What ``memtune run`` does. ``work_dir`` holds bundle/, adapter/ and report/."""

    paths: list[str]
    db: str | None = None
    work_dir: str | None = None
    scope_type: str = "project"
    scope_id: str | None = None
    model: str | None = None
    export: dict[str, Any] = field(default_factory=dict)
    train: dict[str, Any] = field(default_factory=dict)
    eval: dict[str, Any] = field(default_factory=dict)
    force: bool = False
    skip_eval: bool = False


@dataclass
class StageResult:
    name: str
    status: str  # ran | skipped
    path: str | None
    detail: str = ""


@dataclass
class RunResult:
    work_dir: str
    db: str
    stages: list[StageResult]
    headline: dict[str, Any] = field(default_factory=dict)
    targets: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def path(self, stage: str) -> str | None:
        return next((s.path for s in self.stages if s.name == stage), None)


def _key(*parts: Any) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


def _load_stamp(work: Path) -> dict[str, str]:
    try:
        return json.loads((work / STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _save_stamp(work: Path, stamp: dict[str, str]) -> None:
    tmp = work / (STAMP + ".tmp")
    tmp.write_text(json.dumps(stamp, indent=2), encoding="utf-8")
    tmp.replace(work / STAMP)


def store_state(store: GuidelineStore, f: GuidelineFilter) -> str:
    """A key of what an export would read: every matching guideline's id, version and attributes."""
    h = hashlib.sha256()
    for g in store.iter_guidelines(f):
        h.update(f"{g.id}:{g.version}:{g.content_hash}:{g.priority}:{g.category}:{','.join(g.tags)}\n".encode())
    return h.hexdigest()[:20]


def run(config: RunConfig, *, say: Callable[[str], None] = lambda _m: None, progress: bool = True) -> RunResult:
    """Run every stage, skipping those whose inputs did not change since the last run."""
    from memtune.ingest import ingest
    from memtune.ingest.pipeline import default_scope_id

    if not config.paths:
        raise InputError("no paths given", hint="memtune run PATH (a repository folder or memory files)")
    paths = [Path(p).expanduser() for p in config.paths]
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        raise InputError(f"path not found: {', '.join(missing)}", hint="pass a repository folder or memory files")
    scope_id = config.scope_id or (None if config.scope_type == "global" else default_scope_id(paths))
    work = Path(config.work_dir or Path(".memtune") / "run" / (scope_id or "global"))
    work.mkdir(parents=True, exist_ok=True)
    stamp = {} if config.force else _load_stamp(work)
    store = GuidelineStore(config.db)
    stages: list[StageResult] = []

    # 1. ingest (idempotent and cheap: always runs)
    rep = ingest(paths, store, scope_type=config.scope_type, scope_id=scope_id)
    stages.append(
        StageResult(
            "ingest",
            "ran",
            store.display_url,
            f"{rep.files_read} files, {rep.rules_found} rules: +{rep.added} new, {rep.updated} updated, "
            f"{rep.unchanged} unchanged, {rep.merged} merged, {len(rep.secrets)} secrets redacted",
        )
    )
    say(f"ingest   {stages[-1].detail}")
    flt = GuidelineFilter(scope_type=config.scope_type, scope_id=scope_id if config.scope_type != "global" else None)

    # 2. export
    bundle = work / "bundle"
    export_opts = {**DEFAULT_EXPORT, **config.export}
    export_key = _key(store_state(store, flt), export_opts, config.model)
    if stamp.get("export") == export_key and (bundle / "metadata.json").is_file():
        stages.append(StageResult("export", "skipped", str(bundle), "guidelines unchanged"))
    else:
        from memtune.dataset import ExportConfig, export_guidelines_as_lora

        ecfg = ExportConfig.from_sources(output_path=str(bundle), filter=flt, force=True, target_model=config.model, **export_opts)
        res = export_guidelines_as_lora(store, ecfg)
        if not res.success:
            raise InputError(f"export failed: {res.error}", hint="; ".join(res.warnings) or None)
        s = res.stats
        stages.append(
            StageResult("export", "ran", str(bundle), f"{s.get('guidelines_matched')} guidelines → {s.get('examples_train')} train / {s.get('examples_eval')} eval examples, {s.get('probes')} probes")
        )
        stamp["export"] = export_key
        stamp.pop("train", None)
        _save_stamp(work, stamp)
    say(f"export   {stages[-1].status}: {stages[-1].detail} → {bundle}")

    # 3. train
    adapter = work / "adapter"
    train_opts = {**DEFAULT_TRAIN, **config.train}
    fingerprint = json.loads((bundle / "metadata.json").read_text(encoding="utf-8")).get("fingerprint")
    train_key = _key(fingerprint, train_opts, config.model)
    if stamp.get("train") == train_key and (adapter / "memtune.json").is_file():
        stages.append(StageResult("train", "skipped", str(adapter), "bundle unchanged"))
    else:
        from memtune.train import TrainConfig, train

        if adapter.exists():
            shutil.rmtree(adapter)
        tcfg = TrainConfig(bundle=str(bundle), out=str(adapter), model=config.model, **train_opts)
        tres = train(tcfg, progress=progress)
        m = tres.metrics
        recall = m.get("best_probe_recall", m.get("probe_recall"))
        detail = f"{tres.steps} steps, {tres.epochs_run} epochs"
        if recall is not None:
            detail += f", probe recall {recall:.2f}"
        stages.append(StageResult("train", "ran", str(adapter), detail))
        stamp["train"] = train_key
        stamp.pop("eval", None)
        _save_stamp(work, stamp)
    say(f"train    {stages[-1].status}: {stages[-1].detail} → {adapter}")

    # 4. evaluate
    report_dir = work / "report"
    result = RunResult(str(work), store.display_url, stages)
    if config.skip_eval:
        return result
    eval_opts = {**DEFAULT_EVAL, **config.eval}
    lineage = json.loads((adapter / "memtune.json").read_text(encoding="utf-8"))
    eval_key = _key(stamp.get("train"), lineage.get("created_at"), eval_opts, store_state(store, flt))
    if stamp.get("eval") == eval_key and (report_dir / "report.json").is_file():
        from memtune.evaluate.report import load_report

        report = load_report(report_dir / "report.json")
        stages.append(StageResult("eval", "skipped", str(report_dir / "report.html"), "adapter unchanged"))
    else:
        from memtune.evaluate import evaluate

        report = evaluate(str(adapter), bundle=str(bundle), db=store, store_filter=flt, out_dir=str(report_dir), **eval_opts)
        stages.append(StageResult("eval", "ran", str(report_dir / "report.html"), ""))
        stamp["eval"] = eval_key
        _save_stamp(work, stamp)
    result.headline = report.headline()
    result.targets = report.target_checks()
    say(f"eval     {stages[-1].status} → {report_dir / 'report.html'}")
    return result


def default_work_dir(paths: Sequence[str | os.PathLike[str]], scope_id: str | None = None) -> Path:
    from memtune.ingest.pipeline import default_scope_id

    return Path(".memtune") / "run" / (scope_id or default_scope_id([Path(p) for p in paths]))
