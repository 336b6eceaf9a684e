"""Self-replay: rehearsal text written by the base model itself.

Training on the memory sharpens the model everywhere (measured on SmolLM2: next-token
entropy on ordinary prose fell from 2.9 to 2.0 nats and its loss rose ~25 %). Mixing in
text the *base model* wrote, with loss on every token, pulls the adapter back towards the
base model's own distribution on everything that is not the memory: in expectation that
loss is the KL divergence from the base model, minimised when the adapter leaves
ordinary text alone. Unlike a fixed paragraph sample it is endless and varied, and it
works for any base model.

Samples start from the opening words of the shipped replay text's sentences, are drawn
with plain sampling (temperature 1, no top-k/top-p, so they follow the model's true
distribution) and are cached per model fingerprint: written once, reused by every run. For
the embedded default model memtune ships its first chunks (``memtune/data/replay/``), so a
first run does not spend minutes writing them (about four on a 2-core AVX2 machine).
"""

from __future__ import annotations

import json
import random
import re
import time
from pathlib import Path
from typing import Any

from memtune.train.data import Example

SAMPLE_TOKENS = 64
"""New tokens per sample: with the seed words, about a short training example."""


def replay_seeds(text: str | None = None) -> list[str]:
    """Opening words (3-7) of every sentence of ``text`` (default: the shipped replay sample)."""
    if text is None:
        from importlib.resources import files

        text = files("memtune").joinpath("data/replay_text.txt").read_text(encoding="utf-8")
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+", text) if len(s.split()) >= 4]
    rng = random.Random(0)
    return [" ".join(s.split()[: rng.randint(3, 7)]) for s in sentences]


def replay_cache_dir() -> Path:
    from memtune.train.models import cache_root

    return cache_root() / "replay"


CHUNK = 32
"""Samples per cache file (and per generation batch): runs that want different counts share the
first chunks, so changing the replay share only generates what is missing."""


def model_cache_key(name: str, digest: str) -> str:
    """A file-name-safe cache key for a base model: its name and fingerprint."""
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in name)[-60:]
    return f"{safe}-{digest.split(':')[-1][:16]}"


def cache_file(model_key: str, chunk: int, seed: int) -> Path:
    """Where one chunk of a model's self-replay samples is cached."""
    return replay_cache_dir() / f"{model_key}-c{chunk}x{CHUNK}-t{SAMPLE_TOKENS}-s{seed}.json"


def shipped_file_name(model_key: str, seed: int) -> str:
    """The name of a model's shipped samples in ``memtune/data/replay/`` (a JSON list of chunks)."""
    return f"{model_key}-x{CHUNK}-t{SAMPLE_TOKENS}-s{seed}.json"


def _shipped_chunks(model_key: str, seed: int) -> list[list[list[int]]]:
    """Chunks shipped with memtune for this model fingerprint and seed (none for other models)."""
    from importlib.resources import files

    f = files("memtune").joinpath(f"data/replay/{shipped_file_name(model_key, seed)}")
    try:
        chunks = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return []
    return chunks if isinstance(chunks, list) else []


def self_replay_examples(model: Any, tokenizer: Any, count: int, *, model_key: str, seed: int = 0,
                         batch_size: int = CHUNK, info: Any = None) -> list[Example]:
    """``count`` samples of the base model's own text (cached), as loss-on-every-token examples.

    ``model`` must be the *base* model (call before adding the adapter). ``model_key``
    names the cache entry (the model's fingerprint). A file lock lets distributed ranks
    share one generation.
    """
    if count <= 0:
        return []
    from filelock import FileLock

    chunks = -(-count // CHUNK)
    rows: list[list[int]] = []
    replay_cache_dir().mkdir(parents=True, exist_ok=True)
    with FileLock(str(replay_cache_dir() / f"{model_key}-s{seed}.lock"), timeout=30 * 60):
        shipped = _shipped_chunks(model_key, seed)
        for c, rows_c in enumerate(shipped[:chunks]):  # the shipped samples seed the cache
            f = cache_file(model_key, c, seed)
            if _valid(rows_c) and read_chunk(f) is None:
                tmp = f.with_suffix(".tmp")
                tmp.write_text(json.dumps(rows_c), encoding="utf-8")
                tmp.replace(f)
        missing = [c for c in range(chunks) if read_chunk(cache_file(model_key, c, seed)) is None]
        if missing and info is not None:
            info(f"writing {len(missing) * CHUNK} self-replay samples with the base model (once per model; "
                 f"cached in {replay_cache_dir()})")
        started, written = time.perf_counter(), 0
        for c in range(chunks):
            f = cache_file(model_key, c, seed)
            chunk = read_chunk(f) if c not in missing else None
            if chunk is None:
                chunk = _generate(model, tokenizer, CHUNK, seed=seed, chunk=c, batch_size=batch_size)
                tmp = f.with_suffix(".tmp")
                tmp.write_text(json.dumps(chunk), encoding="utf-8")
                tmp.replace(f)
                written += 1
                if info is not None:  # minutes on a first run: say how far it is and how long is left
                    info(_progress_line(written, len(missing), time.perf_counter() - started))
            rows += chunk
    return [Example(list(r), list(r)) for r in rows[:count]]


def _progress_line(done: int, total: int, seconds: float) -> str:
    """``self-replay: 96/288 samples, 41 s, about 1 min 22 s left``."""
    left = seconds / done * (total - done)
    tail = f", about {_duration(left)} left" if done < total else ", done"
    return f"self-replay: {done * CHUNK}/{total * CHUNK} samples, {_duration(seconds)}{tail}"


def _duration(seconds: float) -> str:
    m, s = divmod(round(seconds), 60)
    return f"{m} min {s} s" if m else f"{s} s"


def read_chunk(f: Path) -> list[list[int]] | None:
    """A cached chunk, or None when absent or damaged (then it is written again)."""
    try:
        rows = json.loads(f.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return rows if _valid(rows) else None


def _valid(rows: Any) -> bool:
    return isinstance(rows, list) and len(rows) == CHUNK and all(
        isinstance(r, list) and r and all(isinstance(t, int) for t in r) for r in rows)


def _generate(model: Any, tokenizer: Any, count: int, *, seed: int, chunk: int = 0,
              batch_size: int = CHUNK) -> list[list[int]]:
    import torch

    seeds = replay_seeds()
    rng = random.Random(f"{seed}:{chunk}")
    prompts = [seeds[(chunk * count + i) % len(seeds)] for i in range(count)]
    rng.shuffle(prompts)
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    stop = {t for t in (tokenizer.eos_token_id, pad) if t is not None}
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    gen = torch.Generator().manual_seed(seed * 100_003 + chunk)
    rows: list[list[int]] = []
    try:
        for s in range(0, count, batch_size):
            enc = [tokenizer(p, add_special_tokens=False).input_ids for p in prompts[s : s + batch_size]]
            width = max(len(e) for e in enc)
            ids = torch.tensor([[pad] * (width - len(e)) + e for e in enc], device=device)
            mask = torch.tensor([[0] * (width - len(e)) + [1] * len(e) for e in enc], device=device)
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            with torch.no_grad():
                out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=SAMPLE_TOKENS,
                                     do_sample=True, temperature=1.0, top_k=0, top_p=1.0,
                                     pad_token_id=pad, eos_token_id=sorted(stop) or None)
            for e, row in zip(enc, out[:, width:].tolist(), strict=True):
                new = []
                for t in row:
                    if t in stop:
                        break
                    new.append(t)
                rows.append(e + new)
    finally:
        model.train(was_training)
    return rows
