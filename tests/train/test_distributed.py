"""Two processes through accelerate (DDP, gloo on CPU): both ranks train, one adapter is written."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from memtune.train.config import TrainConfig
from memtune.train.distributed import launch_command


def test_two_cpu_processes_train_one_adapter(bundle_dir, tiny_model_dir, tmp_path):
    out = tmp_path / "ddp"
    cmd = [sys.executable, "-m", "memtune", "train", str(bundle_dir), "--out", str(out), "--model",
           str(tiny_model_dir), "--epochs", "1", "--batch-size", "2", "--probe-sample", "1", "--no-bf16",
           "--num-processes", "2", "--threads", "1", "--json",
           "--set", "replay_fraction=0", "--set", "max_batch_tokens=512"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    info = json.loads((out / "memtune.json").read_text())
    procs = info["metrics"]["processes"]
    assert sorted(p["rank"] for p in procs) == [0, 1]
    assert len({p["pid"] for p in procs}) == 2
    assert {p["backend"] for p in procs} == {"gloo"}
    assert info["metrics"]["world_size"] == 2
    # 12 examples / batch 2 = 6 batches, 3 per rank → 3 optimizer steps
    assert info["metrics"]["steps"] == 3
    # exactly one adapter, written once, at the top of --out
    assert [p.relative_to(out) for p in out.rglob("adapter_model.safetensors")] == [Path("adapter_model.safetensors")]
    assert not any(p.name.startswith(".") for p in out.iterdir())  # no half-written temp dirs


def test_launch_command_passes_multi_node_and_accelerate_config(tmp_path):
    acc = tmp_path / "fsdp.yaml"
    acc.write_text("distributed_type: FSDP\n")
    cfg = TrainConfig(bundle="b", out="o", num_processes=8, num_machines=2, machine_rank=1,
                      main_process_ip="10.0.0.1", main_process_port=29501, accelerate_config=str(acc))
    cmd = launch_command(cfg, tmp_path / "c.yaml")
    joined = " ".join(cmd)
    assert "accelerate.commands.launch" in joined and "--config_file " + str(acc) in joined
    for flag in ("--num_processes 8", "--num_machines 2", "--machine_rank 1", "--main_process_ip 10.0.0.1",
                 "--main_process_port 29501"):
        assert flag in joined
    assert "--multi_gpu" not in cmd  # the config file decides the backend
    assert cmd[-2:] == ["memtune.train.distributed", str(tmp_path / "c.yaml")]
