"""Ingestion throughput: a generated tree of ~1,000 memory files / ~20,000 rules → a fresh store.

Prints files/s, guidelines/s and peak RSS. Target (docs/benchmarks.md): 20,000 guidelines in ≤ 30 s
on 2 cores. Run:  .venv/bin/python benchmarks/bench_ingest.py [--files 1000] [--rules 20000]
"""

from __future__ import annotations

import argparse
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

KIND_PATHS = [
    "memory.md",
    ".cursor/rules/rules-{i}.mdc",
    "AGENTS.md",
    "CLAUDE.md",
    "memory-bank/notes-{i}.md",
    ".github/instructions/area-{i}.instructions.md",
    ".windsurf/rules/rules-{i}.md",
]
WORDS = (
    "cache queue backend frontend worker schema migration deploy token retry timeout index "
    "pipeline adapter session fixture lint build docker compose redis postgres graphql resolver "
    "tenant billing invoice webhook upload thumbnail search ranking vector embedding shard replica"
).split()


def make_rule(rng: random.Random, n: int) -> str:
    words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20)))
    kind = rng.random()
    if kind < 0.15:
        return f"- **Rule {n}**: ALWAYS run `make task-{n}` before {words}."
    if kind < 0.25:
        return f"- NEVER {words} (rule {n}); use `--flag-{n}` instead."
    return f"- Rule {n}: {words}."


def build_tree(root: Path, files: int, rules: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    per_file = max(1, rules // files)
    n = 0
    for i in range(files):
        sub = root / f"pkg{i // 20:03d}" / f"mod{i:04d}"
        rel = KIND_PATHS[i % len(KIND_PATHS)].format(i=i)
        path = sub / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        lines = []
        if path.suffix == ".mdc":
            lines += ["---", f"description: rules for module {i}", "globs: src/**/*.py", "alwaysApply: false", "---", ""]
        lines.append(f"# Module {i} notes")
        for s in range(0, per_file, 10):
            lines.append(f"\n## Section {s // 10} of module {i}\n")
            for _ in range(min(10, per_file - s)):
                lines.append(make_rule(rng, n))
                n += 1
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--rules", type=int, default=20000)
    args = ap.parse_args()

    from memtune.ingest import ingest
    from memtune.store import GuidelineStore

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "tree"
        build_tree(root, args.files, args.rules)
        store = GuidelineStore(Path(tmp) / "bench.db")
        t0 = time.perf_counter()
        report = ingest([root], store)
        dt = time.perf_counter() - t0
        t1 = time.perf_counter()
        again = ingest([root], store)
        dt2 = time.perf_counter() - t1
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    stored = report.added + report.updated + report.unchanged + report.merged
    print(f"files read        {report.files_read}")
    print(f"rules found       {report.rules_found}")
    print(f"guidelines added  {report.added} (merged {report.merged})")
    print(f"first ingest      {dt:.1f} s  → {report.files_read / dt:.0f} files/s, {stored / dt:.0f} guidelines/s")
    print(f"re-ingest (no-op) {dt2:.1f} s  → unchanged {again.unchanged}, added {again.added}")
    print(f"peak RSS          {peak_mb:.0f} MB")
    print(f"target            20,000 guidelines in ≤ 30 s: {'MET' if stored >= 20000 * 0.99 and dt <= 30 else 'NOT MET'}")
    sys.exit(0)


if __name__ == "__main__":
    main()
