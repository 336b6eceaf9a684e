"""Benchmark: retrieval's cost per question on a large store (what `serve`, `chat` and `eval` pay).

    .venv/bin/python benchmarks/bench_search.py                # 100,000 guidelines, SQLite
    .venv/bin/python benchmarks/bench_search.py --n 10000 --db postgresql+psycopg://user@host/db

Fills a store with the export benchmark's generated guidelines, then times
``GuidelineStore.search_question`` (the search plus the known-words check of the retrieval floor)
over questions that share words with many notes, with and without a category filter. Prints
milliseconds per question and the CPU's vector flags.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_export import fill  # noqa: E402

from memtune.cpu import cpu_flags  # noqa: E402
from memtune.store import GuidelineFilter, GuidelineStore  # noqa: E402

QUESTIONS = (
    "Which port does the billing service listen on?",
    "How do I regenerate the feature flags?",
    "What should I do when the gateway fails with EADDRINUSE?",
    "Which command starts the auth service from the repo root?",
    "Can I edit the generated migrations by hand?",
    "Which Kafka topic stores invoices?",  # mostly words no note uses: the floor shows nothing
)


def time_questions(store: GuidelineStore, f: GuidelineFilter | None, rounds: int) -> list[float]:
    """Milliseconds per question, each question asked ``rounds`` times."""
    out = []
    for _ in range(rounds):
        for q in QUESTIONS:
            t = time.perf_counter()
            store.search_question(q, f=f)
            out.append((time.perf_counter() - t) * 1000)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100_000, help="guidelines to generate (default 100000; SQLite only)")
    ap.add_argument("--db", help="an existing store URL to search instead of filling a temp SQLite one")
    ap.add_argument("--rounds", type=int, default=5, help="times each question is asked (default 5)")
    args = ap.parse_args()
    print(f"cpu vector flags: {', '.join(cpu_flags()) or 'none'}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.db:
            store = GuidelineStore(args.db)
        else:
            db = Path(tmp) / "bench.db"
            fill_s = fill(db, args.n)
            print(f"filled {args.n} guidelines in {fill_s:.1f} s")
            store = GuidelineStore(db)
        time_questions(store, None, 1)  # warm the page cache
        for label, f in (("no filter", None), ("category filter", GuidelineFilter(category="gotcha"))):
            ms = time_questions(store, f, args.rounds)
            print(f"search_question, {label}: median {statistics.median(ms):.1f} ms, "
                  f"max {max(ms):.1f} ms over {len(ms)} questions")


if __name__ == "__main__":
    main()
