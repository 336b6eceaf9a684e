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
from memtune.recipes import recipe_for
from memtune.store import GuidelineFilter, GuidelineStore

STAMP = "run.json"

# Every default comes from the base model's recipe (memtune/recipes/*.yaml), the same file
# `memtune export`, `memtune train`, `memtune eval` and the Python API start from; RunConfig's
# export / train / eval mappings override single values.


@dataclass
class RunConfig:
    """What ``memtune run`` does. ``work_dir`` holds bundle/, adapter/ and report/."""

    paths: list[str]
    db: str | None = None
    work_dir: str | None = None
    scope_type: str = "project"
    scope_id: str | None = None
    model: str | None = None
    """Base model; None = the embedded default. Its recipe gives every default below."""
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


QUICK_HINT_SECONDS = 15 * 60
"""Above this expected training time on a CPU, ``memtune run`` names the quick budget and its cost."""


def _budget_note(budget: str, est: dict[str, Any]) -> str:
    """What the ETA line says about the recipe's budget: that the quick one is in use, or that it exists
    when the full one will take long on a CPU without fast bf16."""
    if budget == "quick":
        return " [quick budget: ~0.36x the tokens; closed-book recall is mostly lost, retrieval answers kept]"
    if est["seconds"] > QUICK_HINT_SECONDS and not est["speed_class"].startswith("bf16"):
        return (" [MEMTUNE_RECIPE_BUDGET=quick trains ~0.36x the tokens: answers with retrieval keep their "
                "recall, closed-book recall is mostly lost]")
    return ""


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
    from memtune.dataset import ExportConfig, export_guidelines_as_lora

    ecfg = ExportConfig.from_sources(output_path=str(bundle), filter=flt, force=True, target_model=config.model,
                                     **config.export)
    export_key = _key(store_state(store, flt), {k: v for k, v in ecfg.to_dict().items() if k != "output_path"},
                      config.model)
    if stamp.get("export") == export_key and (bundle / "metadata.json").is_file():
        stages.append(StageResult("export", "skipped", str(bundle), "guidelines unchanged"))
    else:
        res = export_guidelines_as_lora(store, ecfg)
        if not res.success:
            raise InputError(f"export failed: {res.error}", hint="; ".join(res.warnings) or None)
        s = res.stats
        stages.append(
            StageResult("export", "ran", str(bundle), f"{s.get('guidelines_matched')} guidelines → {s.get('examples_train')} train / {s.get('examples_eval')} eval examples, {s.get('probes')} probes")
        )
        stamp["export"] = export_key  # training reruns only if the bundle's fingerprint moved (train_key)
        _save_stamp(work, stamp)
    say(f"export   {stages[-1].status}: {stages[-1].detail} → {bundle}")

    # 3. train
    adapter = work / "adapter"
    from memtune.train.config import config_from_mapping

    tcfg = config_from_mapping({**config.train, "bundle": str(bundle), "out": str(adapter), "model": config.model},
                               source="train options").validate()
    fingerprint = json.loads((bundle / "metadata.json").read_text(encoding="utf-8")).get("fingerprint")
    train_key = _key(fingerprint, {k: v for k, v in tcfg.to_dict().items() if k not in ("bundle", "out")},
                     config.model)
    if stamp.get("train") == train_key and (adapter / "memtune.json").is_file():
        stages.append(StageResult("train", "skipped", str(adapter), "bundle unchanged"))
    else:
        from memtune.train import train

        from memtune.doctor import describe_estimate, training_estimate

        previous = _set_aside(adapter)
        epochs = tcfg.epochs if tcfg.max_steps is None else min(tcfg.epochs, 1)
        est = training_estimate(bundle, epochs=epochs, replay_fraction=tcfg.replay_fraction)
        say("train    expected: " + describe_estimate(est) + _budget_note(recipe_for(config.model).budget, est))
        try:
            tres = train(tcfg, progress=progress)
        except BaseException:
            _restore(previous, adapter)
            raise
        if previous is not None:
            shutil.rmtree(previous, ignore_errors=True)
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
    eval_opts = {**recipe_for(config.model).eval, **config.eval}
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


def _set_aside(adapter: Path) -> Path | None:
    """Move a finished adapter to ``adapter.previous`` while its successor trains, so a failed or
    interrupted run loses nothing; an unfinished one (no memtune.json, a run killed mid-way) is
    cleared instead, keeping any ``adapter.previous`` an earlier killed run left."""
    previous = adapter.with_name(adapter.name + ".previous")
    if not adapter.exists():
        return previous if (previous / "memtune.json").is_file() else None
    if (adapter / "memtune.json").is_file():
        shutil.rmtree(previous, ignore_errors=True)
        adapter.rename(previous)
    else:
        shutil.rmtree(adapter)
    return previous if (previous / "memtune.json").is_file() else None


def _restore(previous: Path | None, adapter: Path) -> None:
    """Put the set-aside adapter back when its successor did not finish."""
    if previous is None or (adapter / "memtune.json").is_file():
        return
    shutil.rmtree(adapter, ignore_errors=True)
    previous.rename(adapter)


def default_work_dir(paths: Sequence[str | os.PathLike[str]], scope_id: str | None = None) -> Path:
    from memtune.ingest.pipeline import default_scope_id

    return Path(".memtune") / "run" / (scope_id or default_scope_id([Path(p) for p in paths]))
