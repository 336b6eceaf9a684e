"""The wheel and sdist carry everything memtune needs at run time (recipes, word lists, data files).

Built with ``python -m build --no-isolation`` from this checkout; the wheel is installed with
--no-deps into a folder of its own and run with this environment's dependencies, so the test
proves the package's own files, not the network. ~30 s.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
NEEDED = ("memtune/recipes/smollm2-135m.yaml", "memtune/data/words.yaml", "memtune/py.typed")


@pytest.fixture(scope="module")
def dist(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("dist")
    proc = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(ROOT)],
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return out


def test_wheel_and_sdist_hold_the_package_data(dist):
    wheel = next(dist.glob("memtune-*.whl"))
    names = set(zipfile.ZipFile(wheel).namelist())
    for f in NEEDED:
        assert f in names, f
    sdist = next(dist.glob("memtune-*.tar.gz"))
    with tarfile.open(sdist) as tar:
        members = {m.name.split("/", 1)[1] for m in tar.getmembers() if "/" in m.name}
    for f in NEEDED:
        assert f"src/{f}" in members, f


def test_the_installed_wheel_runs(dist, tmp_path):
    """Installed with pip into its own folder, the wheel's memtune (not this checkout's) runs the first stages."""
    target = tmp_path / "site"
    wheel = next(dist.glob("memtune-*.whl"))
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index", "--target", str(target),
                    str(wheel)], check=True, timeout=300)
    env = {**os.environ, "PYTHONPATH": str(target)}
    where = subprocess.run([sys.executable, "-c", "import memtune; print(memtune.__file__)"], capture_output=True,
                           text=True, check=True, cwd=tmp_path, env=env).stdout
    assert str(target) in where  # the wheel's copy, not this checkout's
    memtune = target / "bin" / "memtune"
    assert memtune.is_file()  # the console script the wheel declares
    db = tmp_path / "m.db"

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(memtune), *args], capture_output=True, text=True, cwd=tmp_path, env=env,
                              timeout=300, check=False)

    version = run("--version")
    assert version.returncode == 0 and version.stdout.startswith("memtune "), version.stderr[-2000:]
    ing = run("ingest", str(ROOT / "examples" / "memtune"), "--db", str(db))
    assert ing.returncode == 0, ing.stderr[-2000:]
    exp = run("export", "--out", str(tmp_path / "bundle"), "--db", str(db), "--json")
    assert exp.returncode == 0, exp.stderr[-2000:]
    assert (tmp_path / "bundle" / "train.jsonl").stat().st_size > 1000
    recipe = run("recipe", "--json")
    assert recipe.returncode == 0 and '"rag_copies"' in recipe.stdout
