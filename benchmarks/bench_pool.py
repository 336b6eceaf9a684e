"""The recipe on every project of the real-memory pool, judged on hand-written questions.

    .venv/bin/python benchmarks/bench_quality.py --pool benchmarks/pool --split dev --work-dir /tmp/pool

For each project of ``benchmarks/pool`` (its memory files at their original paths and a
``questions.jsonl`` written by hand from the files alone): ``memtune run`` with the default recipe,
then the adapter is asked the project's questions closed-book and with retrieval from its own
store, the base model with retrieval, and control questions the memory cannot answer (the
project's own plus the built-in ones it does not cover). Prints per project and as mean ± spread:
adapter closed-book recall, base + retrieval, adapter + retrieval, how often the right note was in
the prompt, invented answers to controls (closed-book and with retrieval), general-text loss
change, training seconds and tokens/s, with the CPU's vector flags.

Held-out projects (``--split holdout``) are judged only when a change is final; record each
judgment with its commit in docs/benchmarks.md and never tune on them.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import yaml

COLUMNS = (
    ("adapter", "adapter closed-book", "{:.3f}"),
    ("base_rag", "base + retrieval", "{:.3f}"),
    ("adapter_rag", "adapter + retrieval", "{:.3f}"),
    ("right_note", "right note in prompt", "{:.3f}"),
    ("invented", "invented (closed-book)", "{:.3f}"),
    ("invented_rag", "invented (+ retrieval)", "{:.3f}"),
    ("loss_change_pct", "general-text loss, %", "{:+.2f}"),
    ("train_seconds", "training, s", "{:.0f}"),
    ("tokens_per_s", "tokens/s", "{:.0f}"),
)
TARGETS = {"adapter": (">=", 0.70), "adapter_rag": (">=", 0.90), "right_note": (">=", 0.95),
           "invented": ("<=", 0.10), "invented_rag": ("<=", 0.10), "loss_change_pct": ("<=", 3.0)}
CONDITIONS = "base+rag,adapter,adapter+rag"


def load_pool(pool: Path, split: str = "dev", only: list[str] | None = None) -> list[dict[str, Any]]:
    """The pool's projects in ``split`` (dev | holdout | all): name, memory dir, questions, controls."""
    meta_file = pool / "pool.yaml"
    meta = yaml.safe_load(meta_file.read_text(encoding="utf-8")) if meta_file.is_file() else {}
    splits = _splits(meta)
    projects = []
    for qfile in sorted(pool.glob("*/questions.jsonl")):
        name = qfile.parent.name
        if only and name not in only:
            continue
        where = splits.get(name, "dev")
        if split != "all" and where != split:
            continue
        rows = [json.loads(line) for line in qfile.read_text(encoding="utf-8").splitlines() if line.strip()]
        projects.append({
            "name": name, "split": where, "memory": qfile.parent / "memory",
            "questions": [r for r in rows if r.get("kind") != "control"],
            "controls": [r["question"] for r in rows if r.get("kind") == "control"],
        })
    if only and len(projects) < len(only):
        missing = sorted(set(only) - {p["name"] for p in projects})
        raise SystemExit(f"error: no project {', '.join(missing)} in {pool} (split {split})")
    return projects


def _splits(meta: Any) -> dict[str, str]:
    """project → split from pool.yaml, whether it lists projects as a mapping or a list."""
    items = (meta or {}).get("projects", meta or {})
    out: dict[str, str] = {}
    if isinstance(items, dict):
        for name, v in items.items():
            if isinstance(v, dict) and "split" in v:
                out[str(name)] = str(v["split"])
    elif isinstance(items, list):
        for v in items:
            if isinstance(v, dict):
                name = v.get("name") or v.get("dir") or v.get("project")
                if name and "split" in v:
                    out[str(name)] = str(v["split"])
    return out


def run_project(project: dict[str, Any], work: Path, overrides: dict[str, dict[str, Any]],
                max_new_tokens: int, rag_k: int) -> dict[str, Any]:
    """memtune run on one project, then its figures."""
    from memtune.evaluate import evaluate
    from memtune.run import RunConfig, run

    wdir = work / project["name"]
    db = str(wdir / "memtune.db")
    t0 = time.perf_counter()
    res = run(RunConfig(paths=[str(project["memory"])], db=db, work_dir=str(wdir), scope_id=project["name"],
                        skip_eval=True, **overrides), say=lambda m: print(f"  {m}", file=sys.stderr))
    adapter, bundle = Path(res.path("train")), Path(res.path("export"))
    lineage = json.loads((adapter / "memtune.json").read_text(encoding="utf-8"))
    m = lineage.get("metrics") or {}
    report = evaluate(adapter, bundle=bundle, db=db, probes=project["questions"],
                      control_questions=project["controls"], conditions=CONDITIONS, rag_k=rag_k,
                      max_new_tokens=max_new_tokens, out_dir=wdir / "report")
    s = report.summaries
    return {
        "project": project["name"], "split": project["split"], "questions": len(project["questions"]),
        "controls": len(report.controls),
        "adapter": s["adapter"].overall.recall, "base_rag": s["base+rag"].overall.recall,
        "adapter_rag": s["adapter+rag"].overall.recall,
        "right_note": s["adapter+rag"].retrieval_hit_rate,
        "invented": report.invented_rate("adapter"), "invented_rag": report.invented_rate("adapter+rag"),
        "loss_change_pct": report.forgetting.change_pct if report.forgetting else None,
        "train_seconds": m.get("train_seconds"), "tokens_per_s": m.get("tokens_per_s"),
        "seconds": round(time.perf_counter() - t0, 1),
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Mean and spread (population standard deviation, min, max) of each figure over the projects."""
    out: dict[str, dict[str, float | None]] = {}
    for key, _, _ in COLUMNS:
        vals = [r[key] for r in rows if r.get(key) is not None]
        out[key] = {"mean": statistics.fmean(vals) if vals else None,
                    "sd": statistics.pstdev(vals) if len(vals) > 1 else 0.0 if vals else None,
                    "min": min(vals) if vals else None, "max": max(vals) if vals else None}
    return out


def print_table(rows: list[dict[str, Any]], summary: dict[str, dict[str, float | None]], flags: list[str]) -> None:
    print(f"\nCPU vector flags: {' '.join(flags) or 'none of AVX2 / AVX-512 / AMX'}")
    head = f"{'project':34}" + "".join(f"{label[:13]:>14}" for _, label, _ in COLUMNS)
    print(head)
    for r in rows:
        print(f"{r['project'][:34]:34}" + "".join(
            f"{(fmt.format(r[k]) if r.get(k) is not None else 'n/a'):>14}" for k, _, fmt in COLUMNS))
    print(f"{'mean ± sd':34}" + "".join(
        f"{(fmt.format(summary[k]['mean']) + '±' + fmt.format(summary[k]['sd']).lstrip('+') if summary[k]['mean'] is not None else 'n/a'):>14}"
        for k, _, fmt in COLUMNS))
    print("\ntargets (mean over the held-out projects):")
    for key, (op, target) in TARGETS.items():
        mean = summary[key]["mean"]
        met = None if mean is None else (mean >= target if op == ">=" else mean <= target)
        label = next(lbl for k, lbl, _ in COLUMNS if k == key)
        print(f"  {label:26} {op} {target:<6g} {'n/a' if mean is None else f'{mean:.3f}':>8}  "
              f"{'–' if met is None else 'met' if met else 'NOT met'}")


def main_pool(args: Any, overrides: dict[str, dict[str, Any]]) -> int:
    """``bench_quality.py --pool``: every project of the split, one after another."""
    from memtune.doctor import cpu_flags

    projects = load_pool(args.pool, args.split, args.project or None)
    if not projects:
        print(f"error: no project with questions.jsonl in {args.pool} (split {args.split})", file=sys.stderr)
        return 2
    work = args.work_dir or Path(".memtune") / "bench-pool"
    rows = []
    for i, p in enumerate(projects, 1):
        print(f"[{i}/{len(projects)}] {p['name']} ({p['split']}, {len(p['questions'])} questions)", file=sys.stderr)
        rows.append(run_project(p, work, overrides, args.max_new_tokens, args.rag_k))
        print(f"  done in {rows[-1]['seconds']:.0f} s", file=sys.stderr)
    summary = summarize(rows)
    flags = cpu_flags()
    result = {"split": args.split, "cpu_flags": flags, "projects": rows, "summary": summary}
    work.mkdir(parents=True, exist_ok=True)
    (work / "pool.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(rows, summary, flags)
        print(f"\nfigures: {work / 'pool.json'}")
    return 0
