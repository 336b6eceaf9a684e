"""The quality figures of one adapter, against their targets.

Prints: adapter keyword recall on held-out phrasings (≥ 0.85), base recall (≤ 0.30),
adapter + retrieval recall (≥ 0.95), control questions answered with invented specifics
(≤ 20 %), general-text loss change (≤ 5 %), plus base + retrieval and leaks for context.

The whole pipeline on a memory (ingest → export → train the default model with the
`memtune run` recipe → this), e.g. the shipped example memory:
    .venv/bin/python benchmarks/bench_quality.py --memory examples/memtune --work-dir /tmp/q

On every project of the real-memory pool, with hand-written questions (mean ± spread):
    .venv/bin/python benchmarks/bench_quality.py --pool benchmarks/pool --split dev --work-dir /tmp/pool

Or on an adapter you already trained:
    .venv/bin/python benchmarks/bench_quality.py --adapter ADAPTER --bundle BUNDLE --db DB [--out DIR] [--strict]

Training time and tokens/s are printed from the adapter's memtune.json: the training stage's wall clock
(target ≤ 600 s) and the part of it spent in optimizer steps.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from memtune.recipes import default_recipe

ROWS = (
    ("adapter_recall", "adapter recall (held-out phrasings)"),
    ("base_recall", "base model recall"),
    ("adapter_rag_recall", "adapter + retrieval recall"),
    ("control_invented_rate", "controls: invented answers (adapter)"),
    ("general_loss_change_pct", "general-text loss change"),
)

_EVAL = default_recipe().eval


def _fmt(key: str, v: float | None) -> str:
    if v is None:
        return "n/a"
    return f"{v:+.2f} %" if key == "general_loss_change_pct" else f"{v:.3f}"


def _target(key: str, op: str, t: float) -> str:
    return f"{op} {t:g} %" if key == "general_loss_change_pct" else f"{op} {t:g}"


def _train_metrics(adapter: Path) -> dict:
    """train_seconds / tokens_per_s / steps from the adapter's memtune.json (empty if absent)."""
    try:
        lineage = json.loads((adapter / "memtune.json").read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}
    m = lineage.get("metrics") or {}
    return {k: m.get(k) for k in ("train_seconds", "wall_seconds", "tokens_per_s", "steps", "epochs_run",
                                       "train_examples")}


def parse_overrides(items: list[str]) -> dict[str, dict]:
    """``--set`` values: the same parser as ``memtune run --set`` (memtune.recipes)."""
    from memtune.recipes import parse_overrides as parse

    return parse(items)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--adapter", type=Path, help="adapter dir written by `memtune train`")
    src.add_argument("--memory", type=Path, help="memory folder/files: run ingest → export → train first")
    src.add_argument("--pool", type=Path, help="a pool of real memories (benchmarks/pool): the recipe on every "
                     "project of --split, judged on its hand-written questions (see benchmarks/bench_pool.py)")
    ap.add_argument("--split", choices=("dev", "holdout", "all"), default="dev",
                    help="with --pool: which projects (held-out ones only when a change is final)")
    ap.add_argument("--project", action="append", default=[], help="with --pool: only this project (repeatable)")
    ap.add_argument("--work-dir", type=Path, help="with --memory: where the store, bundle and adapter go")
    ap.add_argument("--bundle", type=Path, help="bundle with held-out probes.jsonl (default: from memtune.json)")
    ap.add_argument("--db", help="guideline store (enables the retrieval conditions)")
    ap.add_argument("--probes", type=Path, action="append", default=[], help="extra probe file (repeatable)")
    ap.add_argument("--out", type=Path, help="also write report.json/md/html here")
    ap.add_argument("--limit", type=int, help="ask at most N probes (quick look; not for the recorded figures)")
    ap.add_argument("--conditions", help="comma-separated subset of base,base+rag,adapter,adapter+rag "
                    "(default: all four; a skipped condition's figures print as n/a)")
    ap.add_argument("--rag-k", type=int, default=_EVAL["rag_k"],
                    help=f"notes retrieved per question at most (default {_EVAL['rag_k']}, the recipe's)")
    ap.add_argument("--rag-min-ratio", type=float, help="drop notes scoring below this share of the best "
                    "(default: the store's RELEVANCE_RATIO)")
    ap.add_argument("--rag-min-known", type=float, help="show no notes for a question less than this share of "
                    "whose words occur in the memory (default: the store's KNOWN_WORDS_MIN_SHARE; 0 = off)")
    ap.add_argument("--max-new-tokens", type=int, default=_EVAL["max_new_tokens"],
                    help=f"answer length cap (default {_EVAL['max_new_tokens']}, the recipe's)")
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--set", dest="overrides", action="append", default=[], metavar="STAGE.KEY=VALUE",
                    help="with --memory: change one recipe setting of the export or train stage, e.g. "
                         "--set export.rag_copies=0.2 --set train.replay_fraction=0.5 --set train.seed=1 "
                         "(repeatable; VALUE is read as JSON, else as text)")
    ap.add_argument("--strict", action="store_true", help="exit 1 when any target is missed")
    ap.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    args = ap.parse_args(argv)

    from memtune.errors import MemtuneError
    from memtune.evaluate import evaluate

    if args.pool is not None:
        sys.path.insert(0, str(Path(__file__).resolve().parent))
        from bench_pool import main_pool

        try:
            return main_pool(args, parse_overrides(args.overrides))
        except MemtuneError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2

    if args.memory is not None:
        from memtune.run import RunConfig, run

        work = args.work_dir or Path(".memtune") / "bench-quality"
        args.db = args.db or str(work / "memtune.db")
        try:
            recipe = parse_overrides(args.overrides)
        except MemtuneError as exc:
            ap.error(str(exc))
        print(f"memtune run {args.memory} (work dir {work}) ...", file=sys.stderr)
        try:
            res = run(RunConfig(paths=[str(args.memory)], db=args.db, work_dir=str(work), skip_eval=True,
                                **recipe),
                      say=lambda m: print(m, file=sys.stderr))
        except MemtuneError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        args.adapter, args.bundle = Path(res.path("train")), Path(res.path("export"))
    metrics = _train_metrics(args.adapter)
    t0 = time.perf_counter()

    def progress(stage: str, done: int, total: int) -> None:
        if done == total:
            print(f"  {stage}: {total} done ({time.perf_counter() - t0:.0f}s)", file=sys.stderr)

    rag = {"rag_k": args.rag_k} | ({} if args.rag_min_ratio is None else {"rag_min_ratio": args.rag_min_ratio}) \
        | ({} if args.rag_min_known is None else {"rag_min_known": args.rag_min_known})
    try:
        report = evaluate(args.adapter, bundle=args.bundle, db=args.db, extra_probe_files=args.probes,
                          out_dir=args.out, limit=args.limit, conditions=args.conditions, **rag,
                          max_new_tokens=args.max_new_tokens, batch_size=args.batch_size, progress=progress)
    except MemtuneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    checks = report.target_checks()
    h = report.headline()
    by_source = {cond: {src: round(rs.recall, 3) for src, rs in summary.by_source.items()}
                 for cond, summary in report.summaries.items()}
    refusals = refusals_by_source(report)
    if args.json:
        print(json.dumps({"figures": h, "targets": checks, "training": metrics, "seconds": round(time.perf_counter() - t0, 1),
                          "probes": len(report.probes), "controls": len(report.controls), "by_source": by_source,
                          "refusals": refusals},
                         indent=2))
    else:
        print(f"\nadapter {args.adapter}  ·  {len(report.probes)} probes, {len(report.controls)} controls, "
              f"{time.perf_counter() - t0:.0f}s\n")
        print(f"{'figure':40} {'value':>10} {'target':>10}  met")
        for key, name in ROWS:
            c = checks[key]
            met = "–" if c["met"] is None else ("yes" if c["met"] else "NO")
            print(f"{name:40} {_fmt(key, c['value']):>10} {_target(key, c['op'], c['target']):>10}  {met}")
        print(f"{'base + retrieval recall':40} {_fmt('x', h['base_rag_recall']):>10}")
        if metrics.get("train_seconds") is not None:
            print(f"{'training (optimizer steps), s':40} {metrics['train_seconds']:>10.0f} {'':>10}  "
                  f"     ({metrics.get('tokens_per_s')} tok/s, {metrics.get('steps')} steps)")
        if metrics.get("wall_seconds") is not None:  # loading, self-replay, steps, per-epoch checks, saving
            wall = metrics["wall_seconds"]
            print(f"{'training stage, wall clock, s':40} {wall:>10.0f} {'<= 600':>10}  {'yes' if wall <= 600 else 'NO'}")
        print(f"{'secret leaks in answers':40} {report.leak_count:>10}")
        print("\nrecall by probe source (bundle = topic probes, bundle · values = one-value probes):")
        for cond, per in by_source.items():
            print(f"  {cond:14} " + ", ".join(f"{src} {v:.2f}" for src, v in per.items()))
        print("memory questions answered with \"not in the memory\" (wrong: each probe is answerable):")
        for cond, per in refusals.items():
            print(f"  {cond:14} " + ", ".join(f"{src} {n}/{total}" for src, (n, total) in per.items()))
        for w in report.warnings:
            print(f"warning: {w}")
        if report.files:
            print(f"report: {report.files.get('html')}")
    missed = [k for k, c in checks.items() if c["met"] is False] + (["leaks"] if report.leak_count else [])
    return 1 if args.strict and missed else 0


def refusals_by_source(report: Any) -> dict[str, dict[str, tuple[int, int]]]:
    """Per condition and probe source: (answers that admit not knowing, probes). Every probe is about
    a stored note, so each such answer is a miss the recall figure alone does not explain."""
    from memtune.evaluate.api import source_label
    from memtune.evaluate.controls import classify_control

    out: dict[str, dict[str, list[int]]] = {}
    for p in report.probes:
        src = source_label(p.probe)
        for cond, a in p.answers.items():
            row = out.setdefault(cond, {}).setdefault(src, [0, 0])
            row[0] += classify_control(a.answer, p.probe.question).label == "admits"
            row[1] += 1
    return {c: {s: (n, t) for s, (n, t) in per.items()} for c, per in out.items()}


if __name__ == "__main__":
    sys.exit(main())
