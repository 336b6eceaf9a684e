"""How markdown structure becomes rules: one fixture per shape real memory files take."""

from __future__ import annotations

from pathlib import Path

import pytest

from memtune.ingest.readers import parse_memory_text
from memtune.ingest.types import MemoryFile, ParsedFile, RuleDraft

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "readers"


def parse(name: str, kind: str = "memory", rel: str | None = None) -> ParsedFile:
    text = (FIX / name).read_text(encoding="utf-8")
    return parse_memory_text(text, MemoryFile(path=FIX / name, kind=kind, rel=rel or name))


def rules_by_name(parsed: ParsedFile) -> dict[str, RuleDraft]:
    return {r.name: r for r in parsed.rules}


def find(parsed: ParsedFile, needle: str) -> RuleDraft:
    hits = [r for r in parsed.rules if needle in r.content]
    assert len(hits) == 1, [r.name for r in hits]
    return hits[0]


# --------------------------------------------------------------------------- memory.md


@pytest.fixture(scope="module")
def memory() -> ParsedFile:
    return parse("memory.md")


def test_bold_labels_become_names_in_all_three_spellings(memory: ParsedFile) -> None:
    rules = rules_by_name(memory)
    assert rules["Invoice Number Pattern"].content.startswith("Generate `invoiceNumber`")
    assert rules["Soft Delete Pattern"].content == (
        "set `deletedAt`, never hard-delete rows that have payments.")
    assert rules["Money Pattern"].content.startswith("Store amounts as integer cents")


def test_hard_wrapped_bullet_is_one_rule_and_sub_bullets_stay_inside(memory: ParsedFile) -> None:
    rules = rules_by_name(memory)
    assert rules["Invoice Number Pattern"].content == (
        "Generate `invoiceNumber` on the backend inside\n"
        "`InvoiceService.create`; the frontend only displays it.")
    money = rules["Money Pattern"]
    assert "- Conversion helpers live in `src/lib/money.ts`." in money.content
    assert "- Rounding uses banker's rounding." in money.content
    assert not any(r.content.startswith("Conversion helpers") for r in memory.rules)


def test_unlabelled_bullet_is_named_by_heading_and_first_words(memory: ParsedFile) -> None:
    rule = find(memory, "Resolvers are registered in two arrays")
    assert rule.name.startswith("Architecture Patterns: Resolvers are registered")
    assert len(rule.name) <= 80
    assert rule.section == ["Project Memory — Harbor Ledger", "Architecture Patterns"]


def test_line_numbers_point_into_the_file(memory: ParsedFile) -> None:
    rules = rules_by_name(memory)
    assert rules["Invoice Number Pattern"].line == 7
    assert rules["Soft Delete Pattern"].line == 9
    assert rules["MUI Lab conflict"].line == 21
    assert rules["Environment Gotchas > Node Version"].line == 18


def test_section_prose_is_one_rule_named_after_its_heading(memory: ParsedFile) -> None:
    rule = rules_by_name(memory)["Environment Gotchas > Node Version"]
    assert rule.content == "The API needs Node 22. ALWAYS run `nvm use 22` before `yarn start`."
    assert rule.section[-2:] == ["Environment Gotchas", "Node Version"]


def test_each_code_block_is_its_own_rule_with_a_distinct_name(memory: ParsedFile) -> None:
    code = [r for r in memory.rules if r.metadata.get("unit") == "code"]
    names = [r.name for r in code]
    assert names == [
        "Critical Commands > Start the backend",
        "Critical Commands > Start the backend: To reset the database",
        "Critical Commands > Start the backend: Seed demo invoices",
    ]
    assert all(r.category == "command" for r in code)
    assert [r.line for r in code] == [30, 35, 40]


def test_code_blocks_are_kept_intact(memory: ParsedFile) -> None:
    start = rules_by_name(memory)["Critical Commands > Start the backend"]
    assert start.content == (
        "```bash\n"
        'export NVM_DIR="$HOME/.config/nvm" && . "$NVM_DIR/nvm.sh" && nvm use 22\n'
        "yarn start > /tmp/api.log 2>&1 &\n"
        "```")
    reset = rules_by_name(memory)["Critical Commands > Start the backend: To reset the database"]
    assert reset.content == "To reset the database:\n\n```bash\nyarn prisma migrate reset --force\n```"
    assert reset.metadata["lead_in"] == "To reset the database:"
    assert reset.metadata["language"] == "bash"


def test_numbered_steps_are_one_rule_in_order(memory: ParsedFile) -> None:
    steps = rules_by_name(memory)["Lessons Learned"]
    assert steps.metadata["unit"] == "steps"
    assert steps.content.splitlines() == [
        "1. Reproduce the bug with a failing test first.",
        "2. Check whether the backend already has the feature.",
        "3. Fix both the generated and the custom resolver.",
    ]
    assert steps.category == "lesson"


def test_wrong_approach_rule_labels_feed_examples_and_rationale(memory: ParsedFile) -> None:
    rule = find(memory, "**Wrong approach:**")
    assert rule.examples["bad"] == ["adding the discount logic only to the custom resolver."]
    assert rule.examples["good"] == ["add it to BOTH resolvers, because the frontend may call either."]
    assert rule.rationale == "because the frontend may call either"
    assert rule.name != "Lessons Learned"  # the step list above owns the bare heading name


def test_redaction_markers_survive_verbatim(memory: ParsedFile) -> None:
    rule = find(memory, "Local admin login")
    assert "`[REDACTED:password]`" in rule.content
    assert "[REDACTED:password]" in rule.name
    assert rule.category == "security"


def test_names_are_unique(memory: ParsedFile) -> None:
    names = [r.name.casefold() for r in memory.rules]
    assert len(names) == len(set(names))


# --------------------------------------------------------------------------- code fences


def test_code_that_looks_like_markdown_stays_code() -> None:
    parsed = parse("code_fences.md", kind="claude", rel="CLAUDE.md")
    tricky = [r for r in parsed.rules if r.section[-1:] == ["Tricky Code"]]
    assert len(tricky) == 2
    assert tricky[0].content == "```markdown\n# This is not a heading\n- this is not a bullet\n```"
    assert tricky[1].content.startswith("~~~python\n# Not a heading either\nitems = [\n    - 1,")
    assert not any("not a bullet" == r.content for r in parsed.rules)
    assert not any(r.section[-1:] == ["This is not a heading"] for r in parsed.rules)


def test_mermaid_and_directory_tree_blocks() -> None:
    rules = rules_by_name(parse("code_fences.md", kind="claude", rel="CLAUDE.md"))
    mermaid = rules["Service Map: The services talk like this"]
    assert "```mermaid\ngraph TD\n" in mermaid.content
    assert mermaid.category == "architecture"
    tree = rules["Layout"]
    assert "├── apps/" in tree.content and tree.metadata["language"] == "text"


def test_several_unintroduced_blocks_under_one_heading_get_their_own_names() -> None:
    rules = rules_by_name(parse("code_fences.md", kind="claude", rel="CLAUDE.md"))
    assert rules["Scripts"].content == "```bash\nmake migrate\n```"
    assert rules["Scripts: make seed"].content == "```bash\nmake seed\n```"


def test_unclosed_fence_keeps_the_rest_as_code_and_warns() -> None:
    parsed = parse("fence_unterminated.md", kind="claude", rel="CLAUDE.md")
    assert len(parsed.rules) == 1
    assert parsed.rules[0].content == "```bash\nmake build\n- not a bullet"
    assert parsed.warnings == ["CLAUDE.md:3: code fence '```' is never closed; "
                               "read the rest of the file as code"]


# --------------------------------------------------------------------------- wrapping, setext


def test_setext_headings_and_hard_wrapped_bullets() -> None:
    parsed = parse("hard_wrapped.md", kind="claude", rel="CLAUDE.md")
    assert len(parsed.rules) == 3
    first = parsed.rules[0]
    assert first.section == ["Project Rules", "Conventions"]
    assert first.line == 7
    assert first.content.endswith("returns a 422 with the field errors when\nvalidation fails.")
    assert parsed.rules[2].content == "Another list\nwith a lazy\ncontinuation."


# --------------------------------------------------------------------------- HTML and XML


def test_html_comments_are_dropped_without_breaking_structure() -> None:
    parsed = parse("html_comments.md")
    contents = [r.content for r in parsed.rules]
    assert "Workers poll `jobs` every 5 seconds." in contents
    assert not any("commented out" in c for c in contents)
    assert not any("memory-sync" in c for c in contents)
    dead = find(parsed, "Dead letters")
    assert dead.line == 12
    code = find(parsed, "<div")
    assert "<!-- this comment is code and must stay -->" in code.content


def test_unclosed_html_comment_keeps_following_rules_and_warns() -> None:
    parsed = parse("html_comment_unclosed.md")
    assert any(r.content == "Credit notes reference the original invoice id." for r in parsed.rules)
    assert parsed.warnings == [
        "html_comment_unclosed.md:4: HTML comment '<!--' is never closed; kept the text after it"]


@pytest.fixture(scope="module")
def wrapped() -> ParsedFile:
    return parse("xml_wrappers.md", kind="claude", rel="CLAUDE.md")


def test_markdown_inside_xml_wrappers_is_parsed(wrapped: ParsedFile) -> None:
    style = [r for r in wrapped.rules if r.section == ["CLAUDE.md", "Code Style"]]
    assert [r.content for r in style] == ["Use 4-space indentation in Python files.",
                                          "Keep functions under 40 lines."]
    assert not any("<rules>" in r.content or "</rules>" in r.content
                   for r in wrapped.rules if r.metadata["unit"] != "code")


def test_closing_wrapper_ends_the_sections_opened_inside_it(wrapped: ParsedFile) -> None:
    push = find(wrapped, "NEVER push directly")
    assert push.section == ["CLAUDE.md"]
    assert push.priority >= 90  # NEVER plus the <important> wrapper


def test_inline_important_wrapper_is_unwrapped_and_raises_priority(wrapped: ParsedFile) -> None:
    check = find(wrapped, "make check")
    assert check.content == "Always run `make check` before committing."
    assert check.priority == 80
    context = find(wrapped, "Django monolith")
    assert context.priority == 50


def test_xml_in_code_and_generics_in_prose_are_untouched(wrapped: ParsedFile) -> None:
    code = find(wrapped, 'rule id="keep-me"')
    assert code.content.startswith("```xml\n<rules>\n")
    assert find(wrapped, "Promise<void>").content == "Return `Promise<void>` from fire-and-forget handlers."


# --------------------------------------------------------------------------- tables


@pytest.fixture(scope="module")
def tables() -> ParsedFile:
    return parse("tables.md")


def test_rule_table_rows_become_rules(tables: ParsedFile) -> None:
    rule = rules_by_name(tables)["Version every route"]
    assert rule.content == ("Rule: Version every route\nDescription: Prefix routes with `/v1`\n"
                            "Why: Clients pin versions")
    assert rule.rationale == "Clients pin versions"
    assert rule.line == 7
    assert rule.examples == {"good": [], "bad": []}
    assert rule.metadata["columns"] == ["Rule", "Description", "Why"]


def test_do_dont_table_rows_carry_examples(tables: ParsedFile) -> None:
    row = find(tables, "Use `Decimal` for money")
    assert row.examples == {"good": ["Use `Decimal` for money"], "bad": ["Use `float` for money"]}
    assert row.priority == 50  # the words Do/Don't in the header are not emphasis


def test_command_table_rows_are_named_by_purpose_and_keep_extra_cells(tables: ParsedFile) -> None:
    rules = rules_by_name(tables)
    reset = rules["Drop and recreate the dev database"]
    assert reset.content.startswith("Command: `make db-reset`")
    assert reset.category == "command"
    assert rules["Run the Playwright suite"].content.endswith("headless only")


def test_reference_table_stays_one_rule(tables: ParsedFile) -> None:
    rule = find(tables, "Mailpit")
    assert rule.metadata["unit"] == "table"
    assert rule.content.splitlines()[0] == "| Service | Port | URL |"
    assert "| Ledger API | 4100 | http://localhost:4100 |" in rule.content
    assert rule.name == "Local Services: Service / Port / URL"


# --------------------------------------------------------------------------- lists, quotes


def test_lead_in_paragraph_names_the_steps_and_list_items() -> None:
    rules = rules_by_name(parse("agents.md", kind="agents", rel="AGENTS.md"))
    setup = rules["Setup > To bootstrap a fresh checkout"]
    assert setup.metadata["unit"] == "steps" and setup.content.startswith("1. Install Python 3.12")
    assert rules["Release Process"].content.count("\n") == 2
    lint = rules["Pull Requests > Before opening a PR: run make lint"]
    assert lint.metadata["lead_in"] == "Before opening a PR:"
    assert rules["Pull Requests"].content == "Keep PR titles in the imperative mood."


def test_blockquote_callouts_are_read_as_markdown() -> None:
    parsed = parse("blockquotes.md")
    prose = rules_by_name(parsed)["Deploys"]
    assert "Deploy only from a green `main` build." in prose.content
    assert prose.priority >= 70  # [!IMPORTANT]
    assert any(r.content == "Re-seed it with `make seed-staging` on Monday." for r in parsed.rules)


def test_good_bad_sub_bullets_and_labelled_fences_become_examples() -> None:
    parsed = parse("examples.md")
    errors = find(parsed, "Error messages name the value")
    assert errors.examples["good"] == ["`invoice 42 has no customer`", "include the fix in the message."]
    assert errors.examples["bad"] == ["`invalid input`", "print stack traces to end users."]
    sql = find(parsed, "bound parameters")
    assert sql.rationale == "string formatting opens the door to SQL injection."
    assert sql.examples["bad"][0].startswith("`cursor.execute(f\"SELECT")
    tx = rules_by_name(parsed)["Transactions"]
    assert tx.examples["bad"] == ["```python\nsave_invoice(inv)\nsave_lines(inv.lines)\n```"]
    assert tx.examples["good"][0].startswith("```python\nwith db.transaction():")
    assert tx.rationale == "a crash between the two writes leaves orphaned invoices."
    flags = find(parsed, "Remove a flag")
    assert flags.rationale == "because stale flags hide dead code"


# --------------------------------------------------------------------------- degenerate files


def test_empty_file_has_no_rules_and_no_warnings() -> None:
    parsed = parse("empty.md")
    assert parsed.rules == [] and parsed.warnings == []


def test_file_with_only_headings_has_no_rules() -> None:
    parsed = parse("headings_only.md")
    assert parsed.rules == [] and parsed.warnings == []


def test_a_heading_that_reads_like_a_rule_is_kept() -> None:
    text = "## Deploys\n\n### NEVER deploy on Fridays\n\n## Other\n- fine\n"
    parsed = parse_memory_text(text, MemoryFile(path=Path("m.md"), kind="memory", rel="m.md"))
    rule = parsed.rules[0]
    assert rule.content == "NEVER deploy on Fridays" and rule.line == 3 and rule.priority >= 70


def test_emphasis_labels_are_neither_names_nor_attached_to_the_previous_rule() -> None:
    text = ("## Gotchas\n- **Cache Location**: models live in `~/.cache`.\n"
            "- IMPORTANT: ingest is one transaction.\n- **Note**: the cache is per user.\n")
    parsed = parse_memory_text(text, MemoryFile(path=Path("m.md"), kind="memory", rel="m.md"))
    assert [r.content for r in parsed.rules] == [
        "models live in `~/.cache`.",
        "IMPORTANT: ingest is one transaction.",
        "**Note**: the cache is per user.",
    ]
    assert parsed.rules[0].name == "Cache Location"
    assert parsed.rules[2].name == "Gotchas: Note: the cache is per user."
    assert parsed.rules[1].priority == 70


def test_problem_and_solution_items_stay_one_rule() -> None:
    text = "### Docker DNS\n- **Problem**: containers cannot resolve the host.\n- **Solution**: use `host.docker.internal`.\n"
    parsed = parse_memory_text(text, MemoryFile(path=Path("m.md"), kind="memory", rel="m.md"))
    assert len(parsed.rules) == 1
    assert parsed.rules[0].name == "Docker DNS" and parsed.rules[0].content.count("\n") == 1
