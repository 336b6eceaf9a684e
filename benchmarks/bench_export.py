"""Benchmark: N generated guidelines in a temp SQLite store → a full export bundle.

    .venv/bin/python benchmarks/bench_export.py                 # 100,000 guidelines
    .venv/bin/python benchmarks/bench_export.py --n 10000 --format alpaca

Prints the store fill time, the export time and peak RSS (target: 100k in <= 60 s with
flat memory — compare peak RSS at --n 10000 and --n 100000). The store is filled through
a bulk insert into the schema tables (the same rows GuidelineStore.upsert writes, minus
per-row checks) so the fill does not dominate the run.
"""

from __future__ import annotations

import argparse
import json
import random
import resource
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import psutil
import sqlalchemy as sa

from memtune.store import GuidelineStore, content_hash, normalized_hash
from memtune.store import schema

CATEGORIES = ["command", "gotcha", "pattern", "architecture", "security", "testing", "workflow", "lesson",
              "code_style", "environment", "database", "api", "deployment", "context", "general"]
TOOLS = ["yarn", "npm", "pnpm", "make", "docker", "pytest", "cargo", "go", "uv", "poetry"]
SERVICES = ["backend", "frontend", "worker", "scheduler", "gateway", "billing service", "search index", "auth service"]
NOUNS = ["migrations", "fixtures", "feature flags", "API keys", "cache keys", "log levels", "env files", "resolvers"]


def make_guideline(i: int, rng: random.Random) -> dict:
    """One realistic-looking guideline (name, category, content, tags, priority)."""
    cat = CATEGORIES[i % len(CATEGORIES)]
    svc, tool, noun = rng.choice(SERVICES), rng.choice(TOOLS), rng.choice(NOUNS)
    port = 3000 + i % 5000
    kind = i % 5
    if cat == "command" or kind == 0:
        name = f"Start the {svc} #{i}"
        content = (f"Start the {svc} with `{tool} run dev-{i}` from the repo root:\n\n```bash\ncd services/{i}\n"
                   f"{tool} run dev-{i} --port {port}\n```\nIt listens on port {port}.")
    elif kind == 1:
        name = f"NEVER edit {noun} by hand ({i})"
        content = (f"NEVER edit generated {noun} in `src/gen_{i}/` by hand; run `{tool} run codegen-{i}` instead. "
                   f"Hand edits are overwritten on the next build.")
    elif kind == 2:
        name = f"Port {port} already in use on node {i}"
        content = (f"If the {svc} fails with EADDRINUSE on port {port}, a stale process #{i} is still running: "
                   f"run `lsof -i :{port}` and kill it, then restart with `{tool} start`.")
    elif kind == 3:
        name = f"{svc.title()} Retry Pattern {i}"
        content = (f"Wrap calls to the {svc} in `with_retry_{i}()` (3 attempts, 200 ms backoff). ALWAYS log the "
                   f"final failure with `logger.error` and the request id.")
    else:
        name = f"Use {tool} for {noun} {i}"
        content = f"Use `{tool}` for {noun} in project {i}; the lockfile `{tool}-{i}.lock` must be committed."
    return {"name": name, "category": cat, "content": content, "priority": rng.choice([40, 50, 60, 70, 90]),
            "tags": [svc.split()[0], tool], "rationale": "It broke CI twice." if i % 7 == 0 else None}


def fill(db: Path, n: int, seed: int = 0) -> float:
    """Bulk-insert ``n`` guidelines (plus versions, tags, FTS rows) into a new store."""
    store = GuidelineStore(db)
    rng = random.Random(seed)
    started = time.time()
    now = datetime.now(UTC)
    batch = 5000
    with store.engine.begin() as c:
        for start in range(0, n, batch):
            rows, versions, tags, fts = [], [], [], []
            for i in range(start, min(n, start + batch)):
                g = make_guideline(i, rng)
                gid = i + 1
                h = content_hash(g["content"], g["rationale"], {})
                rows.append({"id": gid, "scope_type": "project", "scope_id": "bench", "name": g["name"],
                             "category": g["category"], "priority": g["priority"], "is_active": True,
                             "metadata_json": "{}", "current_version": 1, "content_hash": h,
                             "norm_hash": normalized_hash(g["content"]), "search_text": g["content"],
                             "created_at": now, "updated_at": now})
                versions.append({"guideline_id": gid, "version": 1, "content": g["content"],
                                 "rationale": g["rationale"], "examples_json": json.dumps({"good": [], "bad": []}),
                                 "content_hash": h, "change_reason": "bench", "created_at": now})
                tags.extend({"guideline_id": gid, "tag": t} for t in sorted(set(g["tags"])))
                fts.append({"id": gid, "name": g["name"], "cat": g["category"], "tags": " ".join(g["tags"]),
                            "body": g["content"]})
            c.execute(schema.guidelines.insert(), rows)
            c.execute(schema.guideline_versions.insert(), versions)
            c.execute(schema.guideline_tags.insert(), tags)
            if getattr(store, "fts", False):
                c.execute(sa.text("INSERT INTO guideline_fts (rowid, name, category, tags, body) "
                                  "VALUES (:id, :name, :cat, :tags, :body)"), fts)
    store.close()
    return time.time() - started


def peak_rss_mb() -> float:
    """Peak resident set size of this process so far (MiB)."""
    ru = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    return ru / 1024 if sys.platform != "darwin" else ru / (1024 * 1024)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="guidelines to generate (default 100000)")
    ap.add_argument("--format", default="messages")
    ap.add_argument("--examples-per-guideline", type=int, default=5)
    ap.add_argument("--keep", action="store_true", help="keep the temp dir and print its path")
    args = ap.parse_args()

    from memtune.dataset import ExportConfig, export_guidelines_as_lora

    tmp = Path(tempfile.mkdtemp(prefix="memtune-bench-"))
    fill_s = fill(tmp / "bench.db", args.n)
    rss_before = psutil.Process().memory_info().rss / 2**20
    store = GuidelineStore(tmp / "bench.db")
    config = ExportConfig(output_path=tmp / "bundle", format=args.format,
                          examples_per_guideline=args.examples_per_guideline)
    started = time.time()
    result = export_guidelines_as_lora(store, config)
    export_s = time.time() - started
    if not result.success:
        sys.exit(f"export failed: {result.error}")
    s = result.stats
    print(json.dumps({
        "guidelines": args.n,
        "format": args.format,
        "fill_seconds": round(fill_s, 1),
        "export_seconds": round(export_s, 1),
        "guidelines_per_second": round(args.n / export_s),
        "examples": s["examples_total"],
        "probes": s["probes"],
        "bundle_mb": round(sum(s["file_sizes"].values()) / 2**20, 1),
        "rss_before_export_mb": round(rss_before, 1),
        "peak_rss_mb": round(peak_rss_mb(), 1),
    }, indent=2))
    if args.keep:
        print(f"kept: {tmp}")
    else:
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
