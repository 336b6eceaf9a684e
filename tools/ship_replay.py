"""Write the embedded default model's first self-replay chunks into memtune/data/replay/.

A first training run otherwise spends minutes having the base model write its rehearsal text
(about four on a 2-core AVX2 machine). Run after changing the default model, its package, the
replay seeds or memtune.train.replay's sampling:

    .venv/bin/python tools/ship_replay.py [--chunks 16] [--seed 42]

It generates (or reuses from the cache) the chunks exactly as training does, then copies them.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from memtune.models import load_base_model, model_hash, resolve_base_model
from memtune.train.config import TrainConfig
from memtune.train.replay import CHUNK, cache_file, model_cache_key, read_chunk, self_replay_examples, shipped_file_name

DATA = Path(__file__).resolve().parents[1] / "src" / "memtune" / "data" / "replay"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--chunks", type=int, default=16, help=f"chunks of {CHUNK} samples to ship (default 16)")
    ap.add_argument("--seed", type=int, default=TrainConfig().seed, help="training seed they are for (default: TrainConfig's)")
    args = ap.parse_args()
    resolved = resolve_base_model(None)
    key = model_cache_key(resolved.name, model_hash(resolved.path))
    model, tok = load_base_model(None)
    self_replay_examples(model, tok, args.chunks * CHUNK, model_key=key, seed=args.seed, info=print)
    chunks = [read_chunk(cache_file(key, c, args.seed)) for c in range(args.chunks)]
    assert all(chunks), "a chunk is missing from the cache after generation"
    DATA.mkdir(parents=True, exist_ok=True)
    out = DATA / shipped_file_name(key, args.seed)
    out.write_text(json.dumps(chunks, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {out} ({args.chunks} chunks, {out.stat().st_size / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
