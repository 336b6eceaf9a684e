"""Frontmatter splitting survives every way people break it; known keys become tags."""

from __future__ import annotations

from pathlib import Path

import pytest

from memtune.ingest.frontmatter import interpret, split_frontmatter
from memtune.ingest.readers import parse_memory_text
from memtune.ingest.types import MemoryFile

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "readers"


def parse(name: str, kind: str, rel: str | None = None):  # noqa: ANN201 - test helper
    text = (FIX / name).read_text(encoding="utf-8")
    return parse_memory_text(text, MemoryFile(path=FIX / name, kind=kind, rel=rel or name))


# --------------------------------------------------------------------------- splitting


def test_no_frontmatter_returns_text_unchanged() -> None:
    fm = split_frontmatter("# Title\n---\nmore", "a.md")
    assert fm.body == "# Title\n---\nmore" and fm.line_offset == 0
    assert not fm.present and fm.data == {} and fm.warnings == []


def test_valid_mapping_is_split_with_line_offset() -> None:
    fm = split_frontmatter("---\ndescription: x\nalwaysApply: true\n---\n- rule\n", "r.mdc")
    assert fm.present and fm.data == {"description": "x", "alwaysApply": True}
    assert fm.body == "- rule\n" and fm.line_offset == 4 and fm.warnings == []


def test_dots_close_a_yaml_document() -> None:
    fm = split_frontmatter("---\nname: n\n...\nbody", "a.md")
    assert fm.data == {"name": "n"} and fm.body == "body"


def test_unterminated_frontmatter_reads_whole_file_as_markdown() -> None:
    text = "---\ndescription: never closed\n\n## Rules\n- a\n"
    fm = split_frontmatter(text, "x.md")
    assert fm.body == text and fm.line_offset == 0 and not fm.present
    assert fm.warnings == ["x.md:1: frontmatter opened with '---' is never closed; "
                           "read the whole file as markdown"]


def test_empty_frontmatter_warns() -> None:
    fm = split_frontmatter("---\n---\nbody", "e.md")
    assert fm.present and fm.data == {} and fm.body == "body" and fm.line_offset == 2
    assert fm.warnings == ["e.md:1: frontmatter is empty"]


def test_cursor_style_unquoted_glob_is_read_leniently() -> None:
    fm = split_frontmatter("---\nglobs: *.ts, *.tsx\ndescription: TS rules\n---\nx", "r.mdc")
    assert fm.data == {"globs": "*.ts, *.tsx", "description": "TS rules"}
    assert len(fm.warnings) == 1
    assert fm.warnings[0].startswith("r.mdc:2: frontmatter is not valid YAML")
    assert "plain 'key: value' lines" in fm.warnings[0]


def test_lenient_reader_understands_lists_and_inline_lists() -> None:
    fm = split_frontmatter("---\nglobs: *.py\npaths:\n  - a/**\n  - b/**\ntags: [x, y]\n---\n", "f.md")
    assert fm.data == {"globs": "*.py", "paths": ["a/**", "b/**"], "tags": ["x", "y"]}


def test_hopeless_yaml_keeps_raw_text_and_parses_the_body() -> None:
    fm = split_frontmatter((FIX / "fm_bad_yaml.md").read_text(), "fm_bad_yaml.md")
    assert fm.data == {} and fm.present
    assert fm.raw is not None and fm.raw.startswith('description: "Rules for the export job')
    assert fm.body.startswith("## Export job") and fm.line_offset == 5
    assert fm.warnings[0].startswith("fm_bad_yaml.md:4: frontmatter is not valid YAML")


def test_list_frontmatter_is_parsed_as_markdown_keeping_line_numbers() -> None:
    parsed = parse("fm_list.md", kind="memory")
    assert [(r.line, r.content) for r in parsed.rules] == [
        (2, "always run migrations in a transaction"),
        (3, "keep migration files immutable"),
        (6, "Name migrations `YYYYMMDD_description.sql`."),
    ]
    assert parsed.warnings == ["fm_list.md:1: frontmatter is a list, not a mapping of keys; "
                               "read the block as markdown instead"]


def test_scalar_frontmatter_is_markdown_too() -> None:
    fm = split_frontmatter("---\nJust a sentence.\n---\nbody", "s.md")
    assert fm.body == "\nJust a sentence.\n\nbody" and fm.line_offset == 0
    assert "is a str, not a mapping" in fm.warnings[0]


def test_yaml_dates_and_aliases_become_json_safe_and_bounded() -> None:
    bomb = "a: &a [x, x, x, x, x, x, x, x, x]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefg", "bcdefgh", strict=False))
    fm = split_frontmatter(f"---\nupdated: 2025-03-02\n{bomb}---\n", "b.md")
    assert fm.data["updated"] == "2025-03-02"
    assert len(str(fm.data)) < 200_000


# --------------------------------------------------------------------------- interpretation


@pytest.mark.parametrize(
    ("data", "tag"),
    [
        ({"alwaysApply": True}, "apply:always"),
        ({"alwaysApply": False, "globs": "src/**"}, "apply:auto"),
        ({"alwaysApply": False, "description": "When editing SQL"}, "apply:agent"),
        ({"alwaysApply": False}, "apply:manual"),
    ],
)
def test_cursor_rule_type_tags(data: dict, tag: str) -> None:
    assert tag in interpret(data, "cursor-rule").tags


def test_globs_as_string_list_and_copilot_apply_to() -> None:
    assert interpret({"globs": ["a/**", "b/*.ts"]}, "cursor-rule").tags[:2] == ["glob:a/**", "glob:b/*.ts"]
    assert interpret({"applyTo": "**/*.py,tests/**"}, "copilot").tags == ["glob:**/*.py", "glob:tests/**"]


def test_windsurf_trigger_and_priority_signals() -> None:
    always = interpret({"trigger": "always_on"}, "windsurf")
    assert always.tags == ["trigger:always_on"] and always.priority_bonus == 10
    manual = interpret({"trigger": "manual"}, "windsurf")
    assert manual.priority_bonus == -10


def test_claude_memory_fields_and_explicit_priority() -> None:
    info = interpret({"name": "Squash", "description": "One commit", "type": "Feedback",
                      "tags": ["Git", "release notes"], "priority": "high"}, "claude-memory")
    assert info.name == "Squash" and info.description == "One commit" and info.type == "feedback"
    assert info.tags == ["type:feedback", "git", "release-notes"]
    assert info.priority_base == 75
    assert info.metadata["frontmatter"]["name"] == "Squash"


# --------------------------------------------------------------------------- through the reader


def test_mdc_rules_carry_globs_apply_mode_and_file_line_numbers() -> None:
    parsed = parse("cursor_rule.mdc", kind="cursor-rule")
    first = parsed.rules[0]
    assert first.line == 10
    assert first.tags == ["kind:cursor-rule", "glob:src/**/*.ts", "glob:src/**/*.tsx", "apply:always"]
    assert first.metadata["description"] == "TypeScript conventions for the Harbor Ledger web client"
    assert first.metadata["alwaysApply"] is True
    assert first.priority == 60  # alwaysApply: true


def test_invalid_glob_yaml_still_yields_tags_and_rules() -> None:
    parsed = parse("globs_string.mdc", kind="cursor-rule")
    assert [r.line for r in parsed.rules] == [6, 7]
    assert parsed.rules[0].tags == ["kind:cursor-rule", "glob:*.tsx", "glob:src/components/**", "apply:auto"]
    assert len(parsed.warnings) == 1 and parsed.warnings[0].startswith("globs_string.mdc:3:")


def test_copilot_and_windsurf_frontmatter() -> None:
    copilot = parse("copilot.instructions.md", kind="copilot")
    assert copilot.rules[0].tags == ["kind:copilot", "glob:**/*.py", "glob:tests/**"]
    windsurf = parse("windsurf_rule.md", kind="windsurf")
    assert windsurf.rules[1].tags == ["kind:windsurf", "glob:api/**/*.go", "trigger:glob"]
    assert windsurf.rules[1].priority == 75  # MUST NOT, upper case
    always = parse("windsurf_always.md", kind="windsurf")
    assert always.rules[0].priority == 60 and "trigger:always_on" in always.rules[0].tags


def test_broken_frontmatter_files_are_still_ingested_with_warnings() -> None:
    bad = parse("fm_bad_yaml.md", kind="memory")
    assert [r.content for r in bad.rules] == ["Exports run nightly at 02:00 UTC."]
    assert bad.rules[0].line == 7
    assert bad.rules[0].metadata["frontmatter_raw"].startswith("description:")
    open_ = parse("fm_unterminated.md", kind="memory")
    assert any(r.content == "Cache invoice PDFs for 24 hours in `var/cache/pdf`." and r.line == 5
               for r in open_.rules)
    assert open_.warnings[0].startswith("fm_unterminated.md:1:")
    empty = parse("fm_empty.md", kind="memory")
    assert [(r.line, r.content) for r in empty.rules] == [(4, "Log with `structlog`, never `print`.")]
    assert empty.warnings == ["fm_empty.md:1: frontmatter is empty"]
