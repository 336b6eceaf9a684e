"""Secret redaction quality: recall on the credential corpus, false positives on look-alikes.

The corpus lives in tests/secrets/corpus.py (credential shapes people write into memory
files, and text that only looks like one). A credential counts as caught when none of its
planted values is left and its surrounding rule text is kept; a look-alike is a false positive
when redaction changes it at all. Also prints throughput on the whole corpus. Run:
    .venv/bin/python benchmarks/bench_secrets.py [--verbose]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from memtune.secrets import redact_secrets  # noqa: E402
from tests.secrets.corpus import CREDENTIALS, LOOKALIKES  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--verbose", action="store_true", help="name each miss and false positive (never the value)")
    args = ap.parse_args()
    missed, fps = [], []
    start = time.perf_counter()
    for c in CREDENTIALS:
        out, _ = redact_secrets(c.text + "\n", "memory.md")
        if any(v in out for v in c.values) or any(k not in out for k in c.keep):
            missed.append(c.id)
    for i, t in enumerate(LOOKALIKES):
        out, _ = redact_secrets(t + "\n", "memory.md")
        if out != t + "\n":
            fps.append(f"lookalike-{i}")
    seconds = time.perf_counter() - start
    n_bytes = sum(len(c.text) for c in CREDENTIALS) + sum(len(t) for t in LOOKALIKES)
    recall = 1 - len(missed) / len(CREDENTIALS)
    fp_rate = len(fps) / len(LOOKALIKES)
    print(f"credentials: {len(CREDENTIALS)}  caught: {len(CREDENTIALS) - len(missed)}  recall: {recall:.3f}")
    print(f"look-alikes: {len(LOOKALIKES)}  changed: {len(fps)}  false-positive rate: {fp_rate:.3f}")
    print(f"time: {seconds * 1000:.0f} ms for {n_bytes:,} bytes (first call includes detect-secrets' import)")
    if args.verbose:
        for name in missed:
            print(f"  missed: {name}")
        for name in fps:
            print(f"  false positive: {name}")
    return 0 if not missed and not fps else 1


if __name__ == "__main__":
    raise SystemExit(main())
