"""Export-root confinement: every way out is refused with a message naming the problem."""

from __future__ import annotations

import os

import pytest

from memtune.serve.paths import PathRefused, confine, display_path, export_root


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "exports"
    r.mkdir()
    return r.resolve()


def test_relative_and_absolute_inside_are_accepted(root):
    assert confine("bundle", root) == root / "bundle"
    assert confine("a/b/c", root) == root / "a" / "b" / "c"
    assert confine(str(root / "x"), root) == root / "x"
    assert confine(".", root) == root


@pytest.mark.parametrize("bad", ["..", "../x", "a/../../x", "a/..", "..\\x", "./a/../b"])
def test_dotdot_is_refused_even_when_it_would_stay_inside(root, bad):
    with pytest.raises(PathRefused, match=r"contains '\.\.'"):
        confine(bad, root)


def test_absolute_outside_is_refused(root, tmp_path):
    with pytest.raises(PathRefused, match="absolute path outside the export root"):
        confine("/etc/cron.d", root)
    with pytest.raises(PathRefused, match="absolute path outside"):
        confine(str(tmp_path / "elsewhere"), root)


def test_symlink_out_is_refused_but_symlink_within_is_fine(root, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, root / "escape")
    os.symlink(root / "real", root / "alias")
    (root / "real").mkdir()
    with pytest.raises(PathRefused, match="symbolic link"):
        confine("escape", root)
    with pytest.raises(PathRefused, match="symbolic link"):
        confine("escape/deeper/file.json", root)
    assert confine("alias/x", root) == root / "real" / "x"


@pytest.mark.parametrize("bad", ["", "   ", None, "~/x", "a\x00b"])
def test_empty_home_and_nul_are_refused(root, bad):
    with pytest.raises(PathRefused):
        confine(bad, root)


def test_export_root_default_env_and_flag(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MEMTUNE_EXPORT_ROOT", raising=False)
    assert export_root() == (tmp_path / ".memtune" / "exports").resolve()
    monkeypatch.setenv("MEMTUNE_EXPORT_ROOT", str(tmp_path / "env"))
    assert export_root() == (tmp_path / "env").resolve()
    assert export_root(tmp_path / "flag") == (tmp_path / "flag").resolve()
    assert (tmp_path / "flag").is_dir()


def test_display_path_never_shows_host_paths(root):
    assert display_path(root / "b" / "train.json", root, "exports") == "exports/b/train.json"
    assert display_path(root, root, "exports") == "exports/."
    assert display_path(root.parent / "secret" / "x.json", root, "exports") == "exports/x.json"
