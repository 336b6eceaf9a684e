"""What this CPU can do for training, read once from the place every part of memtune asks.

Training speed on a CPU depends mostly on its vector units: with AVX-512 bf16 or AMX memtune
trains in bf16 autocast (measured ~600 tokens/s for the default model on two cores), with AVX2
only in fp32 (~120 tokens/s). Precision choice (:func:`has_fast_bf16`), the ETA ``memtune run``
prints, ``memtune doctor`` and the benchmarks all read the flags here.

``MEMTUNE_CPU_FLAGS`` (space- or comma-separated, e.g. ``avx2``) replaces what ``/proc/cpuinfo``
says: with ``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2`` it makes an AVX-512 machine train
as an AVX2-only one does, to measure that class without one.
"""

from __future__ import annotations

import os
from pathlib import Path

#: CPU flags that decide the training speed class, in the order they matter
VECTOR_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile")
FLAGS_ENV = "MEMTUNE_CPU_FLAGS"


def cpu_flags(cpuinfo: str | None = None) -> list[str]:
    """The vector flags of :data:`VECTOR_FLAGS` this CPU reports (Linux ``/proc/cpuinfo``, or
    ``MEMTUNE_CPU_FLAGS`` when set and no ``cpuinfo`` text is given)."""
    words: set[str] = set()
    if cpuinfo is None and os.environ.get(FLAGS_ENV) is not None:
        words.update(os.environ[FLAGS_ENV].replace(",", " ").lower().split())
        return [f for f in VECTOR_FLAGS if f in words]
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(errors="ignore")
        except OSError:
            return []
    for line in cpuinfo.splitlines():
        if line.startswith(("flags", "Features")):
            words.update(line.split(":", 1)[-1].split())
    return [f for f in VECTOR_FLAGS if f in words]


def has_fast_bf16(flags: list[str] | None = None) -> bool:
    """AVX512-bf16 or AMX: bf16 autocast measured 15-25 % faster than fp32 on such CPUs (and
    several times slower than fp32 where it is emulated)."""
    flags = cpu_flags() if flags is None else flags
    return "avx512_bf16" in flags or "amx_bf16" in flags


def usable_cores() -> int:
    """The CPUs this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1
