"""The memory-file question pool (benchmarks/pool) stays well-formed and honest.

The pool is judged by keyword matching, so a keyword missing from the memory files, a question that
quotes a heading, or a silently edited memory file would make scores meaningless without any error.
No model is involved; the whole file runs in well under a second.
"""

from __future__ import annotations

import collections
import csv
import json
import os
import re
from pathlib import Path

import pytest
import yaml

POOL = Path(__file__).resolve().parent.parent / "benchmarks" / "pool"
# Where the memory files were copied from; the byte-identity checks skip when it is absent.
SOURCE = Path(os.environ.get("MEMTUNE_POOL_SOURCE") or next(
    (p for p in (POOL.parents[2] / "shared" / "memories", Path("/work/shared/memories")) if p.is_dir()),
    POOL.parents[2] / "shared" / "memories"))
KINDS = ("situational", "indirect", "why", "yes_no", "reverse", "value", "two_facts")
HOLDOUT = {
    "browserbase__stagehand",
    "thunderbird__thunderbird-android",
    "triggerdotdev__trigger.dev",
    "tursodatabase__turso",
}
HEADING = re.compile(r"^\s{0,3}#{1,6}\s+(.*?)\s*#*\s*$")


def _pool() -> dict:
    return yaml.safe_load((POOL / "pool.yaml").read_text(encoding="utf-8"))


PROJECTS = _pool()["projects"]
IDS = [p["dir"] for p in PROJECTS]


def _memory_text(project: dict) -> str:
    return "\n".join((POOL / project["dir"] / "memory" / f).read_text(encoding="utf-8") for f in project["files"])


def _headings(text: str) -> list[str]:
    """Markdown headings of two or more words, outside fenced code, without list numbering."""
    out, fenced = [], False
    for line in text.splitlines():
        if line.lstrip().startswith(("```", "~~~")):
            fenced = not fenced
            continue
        m = None if fenced else HEADING.match(line)
        if m:
            h = re.sub(r"^\d+(\.\d+)*\.?\s+", "", m.group(1)).strip()
            if len(h.split()) >= 2:
                out.append(h.lower())
    return out


def _questions(project: dict) -> list[dict]:
    path = POOL / project["dir"] / "questions.jsonl"
    rows = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            pytest.fail(f"{path}:{n}: not valid JSON ({e.msg}); write one JSON object per line")
        assert isinstance(row, dict) and set(row) == {"question", "expected_keywords", "kind"}, (
            f"{path}:{n}: needs exactly the keys question, expected_keywords, kind; got {row!r}")
        row["_where"] = f"{path.name}:{n}"
        rows.append(row)
    return rows


def test_split_is_exactly_the_four_named_holdout_projects():
    split = {p["dir"]: p["split"] for p in PROJECTS}
    assert set(split.values()) <= {"dev", "holdout"}
    assert {d for d, s in split.items() if s == "holdout"} == HOLDOUT
    assert len(PROJECTS) == 14 and len(set(IDS)) == 14


def test_every_project_folder_is_listed_and_every_listed_one_exists():
    on_disk = {p.name for p in POOL.iterdir() if p.is_dir() and not p.name.startswith((".", "_"))}
    assert on_disk == set(IDS)


def test_sources_tsv_rows_match_the_listed_files():
    with open(POOL / "SOURCES.tsv", encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    assert {(r["dir"], r["path"]) for r in rows} == {(p["dir"], f) for p in PROJECTS for f in p["files"]}
    for p in PROJECTS:
        assert {(r["repo"], r["commit"]) for r in rows if r["dir"] == p["dir"]} == {(p["repo"], p["commit"])}


@pytest.mark.skipif(not SOURCE.is_dir(), reason=f"source folder {SOURCE} not present")
def test_sources_tsv_is_the_source_copy():
    assert (POOL / "SOURCES.tsv").read_bytes() == (SOURCE / "SOURCES.tsv").read_bytes()


@pytest.mark.parametrize("project", PROJECTS, ids=IDS)
def test_memory_folder_holds_exactly_the_listed_files(project):
    memory = POOL / project["dir"] / "memory"
    found = sorted(str(f.relative_to(memory)) for f in memory.rglob("*") if f.is_file())
    assert found == sorted(project["files"])


@pytest.mark.parametrize("project", PROJECTS, ids=IDS)
def test_memory_files_are_byte_identical_to_the_source(project):
    if not SOURCE.is_dir():
        pytest.skip(f"source folder {SOURCE} not present")
    for f in project["files"]:
        copy = POOL / project["dir"] / "memory" / f
        assert copy.read_bytes() == (SOURCE / project["dir"] / f).read_bytes(), f"{copy} differs from the source"


@pytest.mark.parametrize("project", PROJECTS, ids=IDS)
def test_source_md_names_repo_commit_paths_and_license(project):
    text = (POOL / project["dir"] / "SOURCE.md").read_text(encoding="utf-8")
    with open(POOL / "SOURCES.tsv", encoding="utf-8", newline="") as f:
        licenses = {r["license"] for r in csv.DictReader(f, delimiter="\t") if r["dir"] == project["dir"]}
    for needle in [project["repo"], project["commit"], *project["files"], *licenses, "copied unchanged"]:
        assert needle in text, f"{project['dir']}/SOURCE.md does not mention {needle!r}"


@pytest.mark.parametrize("project", PROJECTS, ids=IDS)
def test_question_counts_and_kinds(project):
    rows = _questions(project)
    kinds = collections.Counter(r["kind"] for r in rows)
    assert set(kinds) <= {*KINDS, "control"}, f"unknown kinds {set(kinds) - {*KINDS, 'control'}}"
    real = sum(n for k, n in kinds.items() if k != "control")
    assert real >= 20, f"{project['dir']}: {real} non-control questions, need >= 20"
    assert kinds["control"] >= 4, f"{project['dir']}: {kinds['control']} controls, need >= 4"
    thin = {k: kinds[k] for k in KINDS if kinds[k] < 2}
    assert not thin, f"{project['dir']}: kinds used fewer than twice: {thin}"
    assert (project["questions"], project["controls"]) == (real, kinds["control"]), "pool.yaml counts are stale"
    assert project["kinds"] == {k: kinds[k] for k in KINDS}, "pool.yaml kind counts are stale"
    questions = [r["question"].strip().lower() for r in rows]
    assert len(questions) == len(set(questions)), f"{project['dir']}: duplicate questions"


@pytest.mark.parametrize("project", PROJECTS, ids=IDS)
def test_keywords_are_verbatim_in_the_memory_files(project):
    text = _memory_text(project).lower()
    for r in _questions(project):
        kws = r["expected_keywords"]
        assert isinstance(kws, list) and all(isinstance(k, str) and k.strip() for k in kws), r["_where"]
        if r["kind"] == "control":
            assert kws == [], f"{r['_where']}: a control question expects no keywords"
            continue
        assert 1 <= len(kws) <= 3, f"{r['_where']}: needs 1-3 keywords, has {len(kws)}"
        concrete = kws[1:] if kws[0].lower() in ("yes", "no") else kws
        assert concrete, f"{r['_where']}: a yes/no verdict needs a concrete keyword from the files too"
        for k in concrete:
            assert k.lower() in text, f"{r['_where']}: keyword {k!r} is not in {project['dir']}'s memory files"


@pytest.mark.parametrize("project", PROJECTS, ids=IDS)
def test_questions_do_not_quote_headings(project):
    headings = _headings(_memory_text(project))
    assert headings, f"{project['dir']}: no headings found; the check would be vacuous"
    for r in _questions(project):
        q = r["question"].lower()
        quoted = [h for h in headings if h in q]
        assert not quoted, f"{r['_where']}: question quotes heading(s) {quoted}"


def test_heading_check_catches_a_quoted_heading():
    """Guard the guard: the extractor must see real headings and ignore comments inside code fences."""
    text = "# Title\n## Adding New Global State Keys\n```bash\n# Install dependencies\n```\n### 2. Go Naming Conventions\n"
    assert _headings(text) == ["adding new global state keys", "go naming conventions"]
