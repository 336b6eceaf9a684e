"""Discovery on fixture trees (tests/fixtures/trees) plus noise made at test time.

Noise folders that .gitignore would drop (build/, dist/, .venv/, __pycache__/), symlinks
and unreadable files are created in a temporary copy of the tree.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from memtune.errors import InputError
from memtune.ingest import textio
from memtune.ingest.discover import discover, find_imports, kind_for
from memtune.ingest.types import KINDS

TREES = Path(__file__).resolve().parents[1] / "fixtures" / "trees"

EXPECTED_REPO = {
    ".claude/CLAUDE.md": "claude",
    ".claude/memory/user_prefers_short_answers.md": "claude-memory",
    ".claude/rules/testing.md": "claude",
    ".clinerules/01-style.md": "clinerules",
    ".clinerules/02-notes.txt": "clinerules",
    ".cursor/memory/decisions.md": "memory",
    ".cursor/rules/frontend/react.mdc": "cursor-rule",
    ".cursor/rules/python.mdc": "cursor-rule",
    ".cursorrules": "cursorrules",
    ".github/copilot-instructions.md": "copilot",
    ".github/instructions/python.instructions.md": "copilot",
    ".windsurf/rules/deploy.md": "windsurf",
    ".windsurfrules": "windsurf",
    "AGENTS.md": "agents",
    "CLAUDE.local.md": "claude",
    "CLAUDE.md": "claude",
    "docs/setup.md": "claude",  # imported by CLAUDE.md
    "memory-bank/activeContext.md": "memory-bank",
    "memory-bank/productContext.md": "memory-bank",
    "memory.md": "memory",
    "notes/Memory.md": "memory",
    "services/api/AGENTS.md": "agents",
}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """The fixture repo plus the noise a real checkout has."""
    root = tmp_path / "repo"
    shutil.copytree(TREES / "repo", root, symlinks=True)
    for noise in (".git", ".venv/lib", "dist", "build", "__pycache__", ".memtune", "env"):
        d = root / noise
        d.mkdir(parents=True, exist_ok=True)
        (d / "CLAUDE.md").write_text("- noise\n")
        (d / "AGENTS.md").write_text("- noise\n")
    (root / "env" / "pyvenv.cfg").write_text("home = /usr/bin\n")  # a virtualenv by another name
    return root


def _by_rel(files):
    return {f.rel: f.kind for f in files}


def test_realistic_tree_finds_every_kind_and_nothing_else(repo: Path) -> None:
    files, skipped = discover([repo])
    assert _by_rel(files) == EXPECTED_REPO
    assert skipped == []
    # every kind except the --kind-only "markdown" is represented
    assert {f.kind for f in files} == set(KINDS) - {"markdown"}


def test_order_is_sorted_and_deterministic(repo: Path) -> None:
    first, _ = discover([repo])
    second, _ = discover([repo])
    rels = [f.rel for f in first]
    assert rels == sorted(rels)
    assert rels == [f.rel for f in second]


def test_paths_are_posix_relative_and_point_at_files(repo: Path) -> None:
    files, _ = discover([repo])
    for f in files:
        assert not f.rel.startswith("/") and "\\" not in f.rel
        assert f.path.is_file()
        assert (repo / f.rel).resolve() == f.path.resolve()


def test_imported_file_records_its_importer(repo: Path) -> None:
    files, _ = discover([repo])
    setup = next(f for f in files if f.rel == "docs/setup.md")
    assert setup.imported_from == "CLAUDE.md"
    agents = next(f for f in files if f.rel == "AGENTS.md")
    assert agents.kind == "agents" and agents.imported_from is None  # found on its own: not duplicated
    assert sum(f.rel == "AGENTS.md" for f in files) == 1


def test_clinerules_as_a_single_file() -> None:
    files, skipped = discover([TREES / "cline_file"])
    assert [(f.rel, f.kind) for f in files] == [(".clinerules", "clinerules")]
    assert skipped == []


@pytest.mark.parametrize(
    ("rel", "kind"),
    [
        ("MEMORY.md", "memory"),
        ("deep/er/memory.MD", "memory"),
        (".cursor/memory/x.md", "memory"),
        (".cursor/rules/a/b/c.mdc", "cursor-rule"),
        (".cursor/rules/c.md", None),
        (".claude/memory/feedback.md", "claude-memory"),
        (".claude/memory/MEMORY.md", "claude-memory"),
        (".claude/agents/reviewer.md", None),
        ("pkg/CLAUDE.md", "claude"),
        ("claude.md", None),
        ("a/b/c/AGENTS.md", "agents"),
        ("memory-bank/progress.md", "memory-bank"),
        ("memory-bank/notes.txt", None),
        (".clinerules/sub/rule.txt", "clinerules"),
        (".github/instructions/sub/ts.instructions.md", "copilot"),
        (".github/copilot-instructions.md", "copilot"),
        ("docs/copilot-instructions.md", None),
        (".windsurf/rules/a.md", "windsurf"),
        ("README.md", None),
        ("node_modules/x/CLAUDE.md", None),
        ("vendor/lib/AGENTS.md", None),
    ],
)
def test_kind_for(rel: str, kind: str | None, tmp_path: Path) -> None:
    assert kind_for(tmp_path / rel, tmp_path) == kind


def test_kind_for_uses_folders_above_the_root(tmp_path: Path) -> None:
    rules = tmp_path / ".cursor" / "rules"
    assert kind_for(rules / "x.mdc", rules) == "cursor-rule"


def test_ingesting_a_subfolder_keeps_kinds(repo: Path) -> None:
    files, _ = discover([repo / ".cursor" / "rules"])
    assert _by_rel(files) == {"frontend/react.mdc": "cursor-rule", "python.mdc": "cursor-rule"}


# --- explicit files and --kind ---------------------------------------------------------


def test_explicit_file_is_always_taken(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(repo)
    files, skipped = discover([Path("docs/guide.md"), Path("services/api/AGENTS.md")])
    assert [(f.rel, f.kind) for f in files] == [
        ("docs/guide.md", "markdown"),
        ("services/api/AGENTS.md", "agents"),
    ]
    assert skipped == []


def test_kind_forces_the_reader(repo: Path) -> None:
    files, _ = discover([repo / "docs" / "guide.md"], kind="cursor-rule")
    assert [f.kind for f in files] == ["cursor-rule"]


def test_invalid_kind_lists_valid_ones(repo: Path) -> None:
    with pytest.raises(InputError) as err:
        discover([repo / "memory.md"], kind="notes")
    assert "notes" in err.value.message
    assert all(k in (err.value.hint or "") for k in KINDS)


def test_kind_with_directory_is_refused(repo: Path) -> None:
    with pytest.raises(InputError) as err:
        discover([repo], kind="memory")
    assert "single files" in err.value.message and str(repo) in err.value.message


def test_missing_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError) as err:
        discover([tmp_path / "nope", tmp_path / "also-missing.md"])
    assert "nope" in err.value.message and "also-missing.md" in err.value.message


def test_same_file_given_twice_is_read_once(repo: Path) -> None:
    files, _ = discover([repo, repo / "memory.md"])
    assert sum(f.path.resolve() == (repo / "memory.md").resolve() for f in files) == 1


def test_empty_directory(tmp_path: Path) -> None:
    assert discover([tmp_path]) == ([], [])


# --- skipped files -----------------------------------------------------------------------


def test_binary_memory_file_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "CLAUDE.md").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(64))
    (tmp_path / "AGENTS.md").write_text("- fine\n")
    files, skipped = discover([tmp_path])
    assert [f.rel for f in files] == ["AGENTS.md"]
    assert [(s.path, s.reason) for s in skipped] == [("CLAUDE.md", "binary file (contains NUL bytes)")]


def test_explicit_binary_file_is_skipped_not_fatal() -> None:
    files, skipped = discover([TREES.parent / "text" / "binary.png"])
    assert files == []
    assert skipped and "binary" in skipped[0].reason


def test_oversized_file_is_skipped(tmp_path: Path) -> None:
    (tmp_path / "memory.md").write_text("- rule\n" * 50)
    (tmp_path / "AGENTS.md").write_text("- small\n")
    files, skipped = discover([tmp_path], max_bytes=100)
    assert [f.rel for f in files] == ["AGENTS.md"]
    assert skipped[0].path == "memory.md" and "too large" in skipped[0].reason


def test_unreadable_file_is_skipped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "AGENTS.md").write_text("- rule\n")
    real_open = open

    def fake_open(path, *args, **kwargs):  # type: ignore[no-untyped-def]
        if str(path).endswith("AGENTS.md"):
            raise PermissionError(13, "Permission denied")
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(textio, "open", fake_open, raising=False)
    files, skipped = discover([tmp_path])
    assert files == []
    assert [(s.path, s.reason) for s in skipped] == [("AGENTS.md", "unreadable (permission denied)")]


def test_unreadable_file_chmod(tmp_path: Path) -> None:
    p = tmp_path / "CLAUDE.md"
    p.write_text("- rule\n")
    p.chmod(0)
    try:
        if os.access(p, os.R_OK):
            pytest.skip("running as root: chmod 000 does not stop reads")
        files, skipped = discover([tmp_path])
        assert files == [] and "permission denied" in skipped[0].reason
    finally:
        p.chmod(0o644)


# --- symlinks ------------------------------------------------------------------------------


def test_symlinks_out_of_the_tree_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    (outside / "rules").mkdir(parents=True)
    (outside / "AGENTS.md").write_text("- someone else's memory\n")
    (outside / "rules" / "x.md").write_text("- outside rule\n")
    root = tmp_path / "root"
    (root / ".claude").mkdir(parents=True)
    (root / "memory.md").write_text("- inside\n")
    (root / "AGENTS.md").symlink_to(outside / "AGENTS.md")
    (root / ".claude" / "rules").symlink_to(outside / "rules", target_is_directory=True)
    (root / "loop").symlink_to(root, target_is_directory=True)  # would loop if followed
    (root / "CLAUDE.md").symlink_to(root / "gone.md")  # broken
    files, skipped = discover([root])
    assert [f.rel for f in files] == ["memory.md"]
    reasons = {s.path: s.reason for s in skipped}
    assert reasons == {
        ".claude/rules": "symlinked directory outside the tree (not followed)",
        "AGENTS.md": "symlink to a file outside the tree (not followed)",
        "CLAUDE.md": "broken symlink",
    }


def test_symlink_inside_the_tree_is_read_once_and_imports_followed(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "extra.md").write_text("- extra\n")
    (tmp_path / "AGENTS.md").write_text("# Shared\n- rule. See @docs/extra.md\n")
    (tmp_path / "CLAUDE.md").symlink_to("AGENTS.md")
    files, skipped = discover([tmp_path])
    assert [(f.rel, f.kind, f.imported_from) for f in files] == [
        ("AGENTS.md", "agents", None),
        ("docs/extra.md", "claude", "AGENTS.md"),
    ]
    assert skipped == []


# --- @imports ------------------------------------------------------------------------------


def test_imports_tree() -> None:
    files, skipped = discover([TREES / "imports"])
    got = [(f.rel, f.kind, f.imported_from) for f in files]
    assert got == [
        ("AGENTS.md", "agents", None),
        ("CLAUDE.md", "claude", None),
        ("chain/1.md", "claude", "CLAUDE.md"),
        ("chain/2.md", "claude", "chain/1.md"),
        ("chain/3.md", "claude", "chain/2.md"),
        ("chain/4.md", "claude", "chain/3.md"),
        ("chain/5.md", "claude", "chain/4.md"),
        ("docs/a.md", "claude", "CLAUDE.md"),
        ("docs/b.md", "claude", "docs/a.md"),  # b imports a back: the cycle stops here
    ]
    reasons = {s.path: s.reason for s in skipped}
    assert reasons["chain/6.md"].startswith("import depth limit (5) reached")
    assert reasons["docs/missing.md"].startswith("import target not found")
    assert "CLAUDE.md:7" in reasons["docs/missing.md"]
    assert "home directory" in reasons["~/.claude/personal.md"]
    assert "outside the ingested tree" in reasons["../outside.md"]
    assert len(skipped) == 4
    # fenced, code-span and commented @paths, emails and @mentions are not imports
    assert not {"docs/fenced.md", "docs/not-imported.md", "docs/commented.md"} & {f.rel for f in files}


def test_import_depth_is_a_parameter() -> None:
    files, skipped = discover([TREES / "imports"], max_import_depth=1)
    rels = {f.rel for f in files}
    assert "chain/1.md" in rels and "chain/2.md" not in rels and "docs/b.md" not in rels
    assert any(s.path == "chain/2.md" and "depth limit (1)" in s.reason for s in skipped)
    files0, _ = discover([TREES / "imports"], max_import_depth=0)
    assert {f.rel for f in files0} == {"AGENTS.md", "CLAUDE.md"}


def test_imports_from_a_single_file_stay_in_its_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(TREES)
    files, skipped = discover([Path("imports/CLAUDE.md")])
    got = {f.rel: f.imported_from for f in files}
    assert got["imports/CLAUDE.md"] is None
    assert got["imports/docs/a.md"] == "imports/CLAUDE.md"
    assert got["imports/AGENTS.md"] == "imports/CLAUDE.md"
    assert any("outside the ingested tree" in s.reason for s in skipped)


def test_find_imports_ignores_code_email_and_mentions() -> None:
    text = (
        "Read @docs/a.md, then @b.md.\n"
        "Mail me@example.com or @alice.\n"
        "`@inline.md` and ``@double `tick`.md``\n"
        "~~~\n@fenced.md\n~~~\n"
        "````md\n```\n@still-fenced.md\n```\n````\n"
        "<!-- @hidden.md -->\n"
        "(see @c/d.md)\n"
    )
    assert find_imports(text) == [(1, "docs/a.md"), (1, "b.md"), (2, "alice"), (13, "c/d.md")]


def test_mentions_that_are_not_files_are_not_reported(tmp_path: Path) -> None:
    (tmp_path / "CLAUDE.md").write_text(
        "- Use @pytest.fixture for setup, install @types/node, ask @alice.\n- See @docs/gone.md\n"
    )
    files, skipped = discover([tmp_path])
    assert [f.rel for f in files] == ["CLAUDE.md"]
    assert [s.path for s in skipped] == ["docs/gone.md"]


def test_unreadable_directory_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "locked").mkdir()
    (tmp_path / "locked" / "AGENTS.md").write_text("- hidden\n")
    (tmp_path / "AGENTS.md").write_text("- visible\n")
    real_scandir = os.scandir

    def fake_scandir(path):  # type: ignore[no-untyped-def]
        if str(path).endswith("locked"):
            raise PermissionError(13, "Permission denied", str(path))
        return real_scandir(path)

    monkeypatch.setattr(os, "scandir", fake_scandir)
    files, skipped = discover([tmp_path])
    assert [f.rel for f in files] == ["AGENTS.md"]
    assert [(s.path, s.reason) for s in skipped] == [("locked", "unreadable directory (Permission denied)")]
