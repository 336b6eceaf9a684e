"""``parse_memory_text``: per-kind behaviour, plain-text rule files, robustness, speed."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from memtune.ingest import readers
from memtune.ingest.readers import clean_markup, code_label, first_words, parse_memory_text
from memtune.ingest.types import MemoryFile, ParsedFile, RuleDraft

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "readers"


def parse(name: str, kind: str = "memory", rel: str | None = None) -> ParsedFile:
    text = (FIX / name).read_text(encoding="utf-8")
    return parse_memory_text(text, MemoryFile(path=FIX / name, kind=kind, rel=rel or name))


def parse_text(text: str, kind: str = "memory", rel: str = "memory.md") -> ParsedFile:
    return parse_memory_text(text, MemoryFile(path=Path(rel), kind=kind, rel=rel))


def rules_by_name(parsed: ParsedFile) -> dict[str, RuleDraft]:
    return {r.name: r for r in parsed.rules}


# --------------------------------------------------------------------------- plain-text rule files


@pytest.fixture(scope="module")
def cursorrules() -> ParsedFile:
    return parse("cursorrules_plain.txt", kind="cursorrules", rel=".cursorrules")


def test_plain_cursorrules_split_per_line_and_per_bullet(cursorrules: ParsedFile) -> None:
    contents = [r.content for r in cursorrules.rules]
    assert contents[:3] == [
        "You are an expert in Python, FastAPI and PostgreSQL working on the Harbor Ledger API.",
        "Always answer with working code, not pseudo-code.",
        "Never invent environment variables; read them from settings.py.",
    ]
    assert [r.line for r in cursorrules.rules[:3]] == [1, 2, 3]
    assert "Keep routers thin." in contents and "NEVER query the database from a router." in contents
    assert len(cursorrules.rules) == 16


def test_plain_title_lines_become_sections(cursorrules: ParsedFile) -> None:
    rule = next(r for r in cursorrules.rules if r.content.startswith("Write concise"))
    assert rule.section == ["Key Principles"] and rule.line == 6
    assert rule.name.startswith("Key Principles: Write concise")
    handling = next(r for r in cursorrules.rules if r.content.startswith("Handle errors"))
    assert handling.section == ["Error Handling"]


def test_plain_indented_bullets_and_wrapped_lines(cursorrules: ParsedFile) -> None:
    deps = [r.content for r in cursorrules.rules if r.section[-1:] == ["Dependencies"]]
    assert deps == ["FastAPI", "Pydantic v2", "SQLAlchemy 2.0"]
    wrapped = next(r for r in cursorrules.rules if r.content.startswith("Log unexpected"))
    assert wrapped.content == "Log unexpected errors with the request id so on-call can trace\nthem across services."
    para = next(r for r in cursorrules.rules if r.content.startswith("This paragraph"))
    assert para.content.count("\n") == 2 and para.line == 25


def test_plain_numbered_rules_are_separate(cursorrules: ParsedFile) -> None:
    never = next(r for r in cursorrules.rules if r.content == "NEVER query the database from a router.")
    assert never.line == 23 and never.priority == 70 and never.category == "database"


def test_windsurfrules_star_bullets() -> None:
    parsed = parse("windsurfrules_plain.txt", kind="windsurf", rel=".windsurfrules")
    assert [r.content for r in parsed.rules] == [
        "Use pnpm, never npm or yarn, in the web workspace.",
        "Keep Storybook stories next to their components.",
        "Run `pnpm test --filter web` before pushing.",
    ]
    assert all(r.tags == ["kind:windsurf"] for r in parsed.rules)


def test_short_plain_lines_separated_by_blank_lines_are_rules_not_titles() -> None:
    parsed = parse_text("Use TypeScript strictly\n\nNever use any\n\nPrefer interfaces", "cursorrules",
                        ".cursorrules")
    assert [r.content for r in parsed.rules] == ["Use TypeScript strictly", "Never use any",
                                                 "Prefer interfaces"]


def test_structureless_markdown_file_is_split_like_plain_text() -> None:
    parsed = parse_text("Use pnpm.\nRun tests before pushing.\nKeep PRs small.\n", "claude", "CLAUDE.md")
    assert len(parsed.rules) == 3


# --------------------------------------------------------------------------- Claude memory


def test_claude_memory_single_note_is_one_rule_named_by_frontmatter() -> None:
    parsed = parse("claude_memory_feedback.md", kind="claude-memory", rel=".claude/memory/squash.md")
    assert len(parsed.rules) == 1
    rule = parsed.rules[0]
    assert rule.name == "Squash before merging"
    assert rule.line == 6
    assert rule.content.startswith("Squash feature branches into a single commit")
    assert "**How to apply:**" in rule.content
    assert rule.rationale == "the release notes are generated from commit subjects on main."
    assert rule.category == "lesson"
    assert rule.tags == ["kind:claude-memory", "type:feedback"]
    assert rule.metadata["description"] == "The maintainer wants one commit per pull request on main"


def test_claude_memory_description_is_the_rationale_when_no_why_line() -> None:
    text = "---\nname: Port\ndescription: dev port of the API\ntype: project\n---\nThe API listens on 4100.\n"
    rule = parse_text(text, "claude-memory", ".claude/memory/port.md").rules[0]
    assert (rule.name, rule.rationale, rule.category) == ("Port", "dev port of the API", "context")


def test_claude_memory_with_sections_is_parsed_per_rule() -> None:
    parsed = parse("claude_memory_sections.md", kind="claude-memory")
    assert [r.section for r in parsed.rules] == [["Services"], ["People"]]
    assert all("type:project" in r.tags for r in parsed.rules)


# --------------------------------------------------------------------------- other kinds


def test_memory_bank_file_name_sets_category() -> None:
    parsed = parse("systemPatterns.md", kind="memory-bank", rel="memory-bank/systemPatterns.md")
    assert {r.category for r in parsed.rules} == {"pattern"}


def test_multilingual_headings_and_text() -> None:
    parsed = parse("multilingual.md")
    by = rules_by_name(parsed)
    assert by["命令"].category == "command" and "pnpm dev --port 3100" in by["命令"].content
    gotcha = next(r for r in parsed.rules if r.content.startswith("必须先运行"))
    assert gotcha.category == "gotcha" and gotcha.priority == 70
    assert by["Zeitzonen"].category == "gotcha" and by["Zeitzonen"].priority == 70
    comandos = by["Comandos: Para recriar o banco de dados local"]
    assert comandos.category == "command" and comandos.line == 20
    assert next(r for r in parsed.rules if r.content.startswith("Sempre")).category == "lesson"
    assert next(r for r in parsed.rules if "pnpm test" in r.content).category == "testing"


def test_priorities_fixture() -> None:
    got = {r.content.split()[0 if not r.content.startswith(("🚨", "⚠️")) else 1]: r.priority
           for r in parse("priorities.md").rules}
    assert got == {"CRITICAL:": 85, "NEVER": 70, "You": 60, "Keep": 50, "Consider": 35,
                   "The": 70, "Prefer": 70}


# --------------------------------------------------------------------------- names, tags


def test_repeated_headings_get_unique_names() -> None:
    text = "## Testing\n- Use pytest.\n\n## Testing\n- Use pytest.\n\n## Other\n### Testing\n- Use pytest.\n"
    names = [r.name for r in parse_text(text).rules]
    assert names == ["Testing: Use pytest.", "Testing: Use pytest. (2)", "Other > Testing: Use pytest."]


def test_tags_are_kind_frontmatter_and_hashtags_never_heading_words() -> None:
    parsed = parse_text("## Deploy Rules\n- Tag releases #release #infra, not `#nope`.\n")
    assert parsed.rules[0].tags == ["kind:memory", "release", "infra"]


def test_name_helpers() -> None:
    assert first_words("Always run the full test suite before pushing to the main branch", 30) == \
        "Always run the full test…"
    assert first_words("✅ [x] done", 40) == "done"
    assert code_label("# Seed demo data\nmake seed\n", "bash") == "Seed demo data"
    assert code_label("$ yarn start\n", "console") == "yarn start"
    assert code_label("app/\n├── main.py\n", "") == "directory tree"
    assert code_label("SELECT 1;\n", "sql") == "sql block"


def test_clean_markup_keeps_line_count_and_code() -> None:
    text = "a <!-- x\ny --> b\n```\n<!-- keep -->\n```\n<rules>\n- r\n</rules>\n"
    cleaned = clean_markup(text)
    assert cleaned.text.count("\n") == text.count("\n")
    assert [ln.strip() for ln in cleaned.text.split("\n")[:2]] == ["a", "b"]
    assert "<!-- keep -->" in cleaned.text and "<rules>" not in cleaned.text
    assert cleaned.wrappers == [("rules", 5, 8)]


# --------------------------------------------------------------------------- robustness


def test_internal_errors_fall_back_to_paragraph_rules(monkeypatch: pytest.MonkeyPatch) -> None:
    def boom(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("walker exploded")

    monkeypatch.setattr(readers.Walker, "run", boom)
    parsed = parse_text("## A\n- one\n\nsecond paragraph\n", rel="m.md")
    assert [(r.line, r.content) for r in parsed.rules] == [(1, "## A\n- one"), (4, "second paragraph")]
    assert parsed.warnings[0].startswith("m.md:1: reader error (RuntimeError: walker exploded)")


@pytest.mark.parametrize("text", ["", "\n\n\n", "---", "---\n---", "```", "<!--", "|", "> > >", "- - -",
                                  "\x00\x01", "# \n##\n", "**:**", "[x]: <>"])
def test_degenerate_inputs(text: str) -> None:
    parsed = parse_text(text)
    assert all(r.content.strip() and r.name.strip() for r in parsed.rules)


def _session_log(size: int) -> str:
    base = (FIX / "session_log.md").read_text(encoding="utf-8")
    head, _, rest = base.partition("\n## ")
    parts, i = [head], 0
    while sum(len(p) + 1 for p in parts) < size:
        parts.append(("## " + rest).replace("2025-03-0", f"2025-{i % 12 + 1:02d}-{i % 28 + 1:02d}/{i}-"))
        i += 1
    return "\n".join(parts)


def test_sixty_kilobyte_session_log_parses_well_under_a_second() -> None:
    text = _session_log(60_000)
    assert len(text.encode()) >= 60_000
    best = min(_timed(text) for _ in range(3))
    parsed = parse_text(text, rel="session-log.md")
    assert best < 1.0, f"{best:.2f}s"
    assert len(parsed.rules) > 250 and not parsed.warnings
    names = [r.name.casefold() for r in parsed.rules]
    assert len(names) == len(set(names))


def _timed(text: str) -> float:
    start = time.perf_counter()
    parse_text(text, rel="session-log.md")
    return time.perf_counter() - start
