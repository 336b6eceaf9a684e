"""Multi-process / multi-machine training through ``accelerate launch``.

The launching process validates and prepares the run once (output dir, store export,
model conversion), writes the resolved config to ``<out>/launch_config.yaml`` and
starts ``python -m accelerate.commands.launch ... -m memtune.train.worker CONFIG``.
Every rank then runs the same loop; accelerate picks DDP (gloo on CPU, nccl on GPUs),
or FSDP/DeepSpeed from ``--accelerate-config``.

Multi-node: run the same command on every machine with ``--num-machines M
--machine-rank R --main-process-ip <rank-0 address> --main-process-port <port>``;
``--num-processes`` is the total over all machines.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from memtune.errors import MemtuneError
from memtune.train.config import TrainConfig, dump_config
from memtune.train.result import WORKER_ENV, TrainingInterrupted, TrainResult


def launch_command(cfg: TrainConfig, config_path: Path) -> list[str]:
    import torch

    cmd = [sys.executable, "-m", "accelerate.commands.launch"]
    if cfg.accelerate_config:
        cmd += ["--config_file", str(cfg.accelerate_config)]
    cmd += ["--num_processes", str(cfg.num_processes), "--num_machines", str(cfg.num_machines),
            "--machine_rank", str(cfg.machine_rank), "--mixed_precision", "no", "--dynamo_backend", "no"]
    if cfg.main_process_ip:
        cmd += ["--main_process_ip", cfg.main_process_ip]
    port = cfg.main_process_port or _free_port()
    cmd += ["--main_process_port", str(port)]
    if not cfg.accelerate_config and (cfg.num_processes > 1 or cfg.num_machines > 1):
        # torchrun-style launcher; on a CPU-only machine each worker then picks gloo.
        cmd += ["--multi_gpu"]
    if not torch.cuda.is_available():
        cmd += ["--num_cpu_threads_per_process", str(cfg.threads or max(1, (os.cpu_count() or 1) // cfg.num_processes))]
    cmd += ["-m", "memtune.train.worker", str(config_path)]
    return cmd


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def launch(cfg: TrainConfig, *, progress: bool = True) -> TrainResult:
    """Run ``cfg`` on ``cfg.num_processes`` processes and return the main rank's result."""
    from memtune.train.models import resolve_base_model

    resolve_base_model(cfg.model)  # convert/cache the default model once, not per rank
    out = Path(cfg.out)  # type: ignore[arg-type]
    config_path = out / "launch_config.yaml"
    dump_config(cfg, config_path)
    env = dict(os.environ, **{WORKER_ENV: "1", "MEMTUNE_PROGRESS": "1" if progress else "0"})
    env.setdefault("ACCELERATE_LOG_LEVEL", "error")
    cmd = launch_command(cfg, config_path)
    try:
        rc = subprocess.call(cmd, env=env)
    except KeyboardInterrupt:
        rc = 130
    if rc == 130 or rc == -2:
        raise TrainingInterrupted(f"distributed training interrupted; checkpoint in {out / 'checkpoints' / 'last'}",
                                  hint=f"resume with the same command plus --resume (--out {out})")
    if rc != 0:
        raise MemtuneError(f"distributed training failed (exit {rc}); the workers' errors are printed above",
                           hint="run with --num-processes 1 to see the error in a single process")
    return TrainResult.from_dir(out)
