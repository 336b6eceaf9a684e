"""Export under faults: a reader never finds the bundle missing while it is replaced, a SIGKILLed
export leaves no worker behind and its temp dir is cleaned by the next export, and a target that
cannot be written gives one clear message. Bounded: 12 swaps, two killed exports (about 10 s)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

import memtune.cli.export  # noqa: F401  (registers the command)
from memtune.cli.app import app
from memtune.dataset import ExportConfig, export_guidelines_as_lora, staging
from memtune.errors import ConfigError
from memtune.store import GuidelineFilter

from .conftest import add_guidelines, generated

SWAPS = 12


def _export(store, out: Path, **kw):
    res = export_guidelines_as_lora(store, ExportConfig(output_path=out, force=True, **kw))
    assert res.success, res.error
    return res


def _exchange_supported(tmp_path: Path) -> bool:
    a, b = tmp_path / "xa", tmp_path / "xb"
    a.mkdir()
    b.mkdir()
    (a / "from_a").touch()
    try:
        return staging._exchange(a, b) and (b / "from_a").exists()
    finally:
        for p in (a, b):
            for f in p.iterdir():
                f.unlink()
            p.rmdir()


def test_a_reader_never_finds_the_bundle_missing_while_exports_replace_it(store, tmp_path, monkeypatch):
    if not _exchange_supported(tmp_path):
        pytest.skip("no atomic directory exchange on this system / file system")
    out = tmp_path / "bundle"
    _export(store, out, generate_script=False)
    real_replace = os.replace

    def slow_replace(src, dst):  # a slow file system: any gap between two renames becomes visible
        real_replace(src, dst)
        time.sleep(0.02)

    monkeypatch.setattr(os, "replace", slow_replace)
    stop = threading.Event()
    seen = {"checks": 0, "missing": 0, "incomplete": 0}

    def reader() -> None:
        while not stop.is_set():
            seen["checks"] += 1
            if not os.path.isdir(out):
                seen["missing"] += 1
            elif not os.path.isfile(os.path.join(out, "metadata.json")):
                seen["incomplete"] += 1

    t = threading.Thread(target=reader, daemon=True)
    t.start()
    try:
        for seed in range(SWAPS):
            _export(store, out, generate_script=False, seed=seed)
    finally:
        stop.set()
        t.join(10)
    assert seen["checks"] > SWAPS
    assert seen["missing"] == 0 and seen["incomplete"] == 0, seen
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".bundle")) == []


def test_without_an_exchange_the_two_renames_still_replace_the_bundle(store, tmp_path, monkeypatch):
    monkeypatch.setattr(staging, "_exchange", lambda a, b: False)
    out = tmp_path / "bundle"
    first = _export(store, out, seed=1)
    second = _export(store, out, seed=2, generate_script=False)
    assert first.stats["fingerprint"] != second.stats["fingerprint"]
    assert not (out / "train.py").exists() and (out / "metadata.json").is_file()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".bundle")] == []


# --------------------------------------------------------------------------- SIGKILL mid-export
_SLOW_EXPORT = """
import os, sys, time
from pathlib import Path
import memtune.dataset.bundle as bundle
from memtune.dataset import ExportConfig, export_guidelines_as_lora
from memtune.dataset.render import render_batch
from memtune.store import GuidelineStore

db, out, pids = sys.argv[1:4]
bundle.PARALLEL_MIN, bundle.SEARCH_DISTRACTORS_MAX, bundle._BATCH = 10, 0, 5
os.environ["MEMTUNE_EXPORT_WORKERS"] = "2"

def slow_render(args):  # each worker says it is rendering, then takes its time: the kill lands here
    Path(pids, str(os.getpid())).touch()
    time.sleep(120)
    return render_batch(args)

bundle.render_batch = slow_render
export_guidelines_as_lora(GuidelineStore(db), ExportConfig(output_path=out))
"""


def _children(pid: int) -> set[int]:
    found = set()
    for d in Path("/proc").iterdir():
        if d.name.isdigit():
            try:
                stat = (d / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.add(int(d.name))
    return found


KILLS = 2


def _kill_mid_export(store, out: Path, pids: Path, script: Path) -> tuple[int, set[int]]:
    """Start a slow export, SIGKILL it while its workers render; its pid and its workers' pids."""
    for p in pids.iterdir():
        p.unlink()
    proc = subprocess.Popen([sys.executable, str(script), str(store.path), str(out), str(pids)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    workers: set[int] = set()
    try:
        deadline = time.monotonic() + 40
        while len(list(pids.iterdir())) < 2:
            assert proc.poll() is None, proc.stdout.read().decode()
            assert time.monotonic() < deadline, "the export's workers never started"
            time.sleep(0.1)
        workers = {int(p.name) for p in pids.iterdir()} | _children(proc.pid)
        # its own temp dir only: it removed the one the export killed before it left behind
        temps = [p.name for p in out.parent.glob(f".{out.name}.tmp-*")]
        assert len(temps) == 1 and temps[0].startswith(f".{out.name}.tmp-{proc.pid}-"), temps
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    deadline = time.monotonic() + 10
    while (alive := {p for p in workers if staging.pid_alive(p)}) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in alive:  # never leave them behind, even when the test fails
        os.kill(pid, signal.SIGKILL)
    assert alive == set(), f"worker(s) {sorted(alive)} outlived the killed export"
    return proc.pid, workers


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="needs /proc to find the export's workers")
@pytest.mark.timeout(120)
def test_sigkilled_exports_leave_no_worker_and_the_next_export_cleans_their_temp_dirs(store, tmp_path):
    add_guidelines(store, generated(40))
    out, pids = tmp_path / "bundle", tmp_path / "pids"
    pids.mkdir()
    script = tmp_path / "slow_export.py"
    script.write_text(textwrap.dedent(_SLOW_EXPORT))
    killed = [_kill_mid_export(store, out, pids, script) for _ in range(KILLS)]
    assert all(len(workers) >= 2 for _, workers in killed)
    assert not out.exists() and len(list(tmp_path.glob(".bundle.tmp-*"))) == 1
    res = _export(store, out)
    assert res.stats["guidelines_exported"] == store.count(GuidelineFilter())
    assert list(tmp_path.glob(".bundle.tmp-*")) == []


def test_a_temp_dir_held_by_a_running_export_is_kept(store, tmp_path):
    out = tmp_path / "bundle"
    tmp, lock = staging.make_temp(out)
    try:
        assert staging.remove_stale_temps(out) == [] and tmp.is_dir()
        stale = tmp_path / ".bundle.tmp-999999999-deadbeef"
        stale.mkdir()
        assert staging.remove_stale_temps(out) == [stale]
    finally:
        staging.release(lock)
    os.rename(tmp, tmp_path / ".bundle.tmp-999999998-cafe")  # its process gone, its lock released
    assert staging.remove_stale_temps(out) == [tmp_path / ".bundle.tmp-999999998-cafe"]


# --------------------------------------------------------------------------- unwritable targets
runner = CliRunner()


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="needs /proc")
def test_export_into_proc_is_one_clear_message(store, tmp_path):
    r = runner.invoke(app, ["export", "--db", str(store.path), "--out", "/proc/memtune-bundle"])
    assert r.exit_code == ConfigError.exit_code, r.output
    text = " ".join(r.output.split())
    assert "cannot write the bundle to /proc/memtune-bundle" in text and "choose a writable --out" in text
    assert "Traceback" not in r.output and isinstance(r.exception, SystemExit)


def test_export_into_a_read_only_folder_is_one_clear_message(store, tmp_path, monkeypatch):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.geteuid() == 0:  # root writes anyway: make the folder refuse new entries the way a read-only one does
        real_mkdir = Path.mkdir

        def refuse(self, *a, **kw):
            if self.parent == ro:
                raise PermissionError(13, "Permission denied", str(self))
            return real_mkdir(self, *a, **kw)

        monkeypatch.setattr(Path, "mkdir", refuse)
    try:
        r = runner.invoke(app, ["export", "--db", str(store.path), "--out", str(ro / "bundle")])
    finally:
        ro.chmod(0o755)
    assert r.exit_code == ConfigError.exit_code, r.output
    text = " ".join(r.output.split())
    assert f"cannot write the bundle to {ro / 'bundle'}" in text and "Permission denied" in text
    assert "choose a writable --out" in text and "Traceback" not in r.output
    assert list(ro.iterdir()) == []
