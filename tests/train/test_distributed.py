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
    assert cmd[-2:] == ["memtune.train.worker", str(tmp_path / "c.yaml")]


def test_worker_exit_codes_tell_the_launcher_how_a_rank_ended(tmp_path, monkeypatch, capsys):
    """The rank entry (its own module, so the launcher does not import the loop) maps Ctrl-C to 130
    and a MemtuneError to 1 with the message on stderr; the rank sees the resolved config."""
    from memtune.errors import ConfigError
    from memtune.train import loop
    from memtune.train.config import dump_config
    from memtune.train.result import TrainingInterrupted
    from memtune.train.worker import worker

    config = tmp_path / "launch_config.yaml"
    dump_config(TrainConfig(bundle=str(tmp_path / "b"), out=str(tmp_path / "o"), epochs=3), config)
    seen = []
    outcome: list[BaseException | None] = [None]

    def fake_train(cfg, *, progress):
        seen.append((cfg.epochs, progress))
        if outcome[0] is not None:
            raise outcome[0]

    monkeypatch.setattr(loop, "train", fake_train)
    monkeypatch.setenv("MEMTUNE_PROGRESS", "0")
    assert worker(str(config)) == 0 and seen == [(3, False)]
    outcome[0] = TrainingInterrupted("training interrupted at step 2")
    assert worker(str(config)) == 130 and "interrupted at step 2" in capsys.readouterr().err
    outcome[0] = ConfigError("epochs must be positive")
    assert worker(str(config)) == 1 and "Error: epochs must be positive" in capsys.readouterr().err
