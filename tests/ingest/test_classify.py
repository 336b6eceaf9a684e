"""Categories, priorities, examples and tags from the words people write."""

from __future__ import annotations

import pytest

from memtune.ingest.classify import (
    CATEGORIES,
    categorize,
    extract_examples,
    hashtags,
    heading_category,
    score_priority,
    split_row,
    table_roles,
)

# --------------------------------------------------------------------------- categories


@pytest.mark.parametrize(
    ("heading", "category"),
    [
        ("Critical Commands", "command"),
        ("Befehle", "command"),
        ("Comandos úteis", "command"),
        ("常用命令", "command"),
        ("コマンド一覧", "command"),
        ("Environment Gotchas", "gotcha"),
        ("Stolperfallen", "gotcha"),
        ("注意事项", "gotcha"),
        ("Lessons Learned", "lesson"),
        ("Lições aprendidas", "lesson"),
        ("経験と教訓", "lesson"),
        ("Authentication", "security"),
        ("Testing Strategy", "testing"),
        ("テスト", "testing"),
        ("Database Migrations", "database"),
        ("Deployment", "deployment"),
        ("GraphQL Resolvers", "api"),
        ("Code Style", "code_style"),
        ("Naming Conventions", "code_style"),
        ("Git Workflow", "workflow"),
        ("Architecture Patterns", "pattern"),
        ("Project Structure", "architecture"),
        ("Architektur", "architecture"),
        ("Environment Setup", "environment"),
        ("Performance", "performance"),
        ("Active Context", "context"),
        ("Miscellaneous", None),
    ],
)
def test_heading_keywords(heading: str, category: str | None) -> None:
    assert heading_category(heading) == category


def test_every_emitted_category_is_declared() -> None:
    assert "general" in CATEGORIES and len(set(CATEGORIES)) == len(CATEGORIES)


def test_path_precedence_beats_depth() -> None:
    assert categorize(["Memory", "Environment Gotchas", "Node Version"], kind="memory",
                      title_levels=[1, 2, 3]) == "gotcha"
    assert categorize(["Critical Commands", "Database reset"], kind="memory") == "command"


def test_document_title_is_only_a_fallback() -> None:
    assert categorize(["Testing Guide", "Fixtures"], kind="claude", title_levels=[1, 2]) == "testing"
    assert categorize(["Testing Guide", "Security"], kind="claude", title_levels=[1, 2]) == "security"


def test_code_blocks_are_commands_by_language_or_section() -> None:
    assert categorize(["Architecture"], kind="memory", code_lang="bash") == "command"
    assert categorize(["Scripts"], kind="memory", code_lang="") == "command"
    assert categorize(["Setup"], kind="memory", code_lang="python") == "command"
    assert categorize(["Architecture"], kind="memory", code_lang="mermaid") == "architecture"
    assert categorize(["Setup"], kind="memory", code_lang="yaml") == "environment"


def test_file_based_categories() -> None:
    assert categorize([], kind="memory-bank", rel="memory-bank/systemPatterns.md") == "pattern"
    assert categorize([], kind="memory-bank", rel="memory-bank/techContext.md") == "environment"
    assert categorize([], kind="memory-bank", rel="memory-bank/activeContext.md") == "context"
    assert categorize([], kind="claude-memory", rel="x.md", file_type="feedback") == "lesson"
    assert categorize(["Testing"], kind="memory-bank", rel="memory-bank/techContext.md") == "testing"


def test_content_keywords_are_the_last_resort() -> None:
    assert categorize([], kind="cursorrules", text="Never commit secrets to git") == "security"
    assert categorize([], kind="cursorrules", text="Run pytest before pushing") == "testing"
    assert categorize([], kind="cursorrules", text="Be concise.") == "general"


# --------------------------------------------------------------------------- priority


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Keep the changelog up to date.", 50),
        ("NEVER commit `.env` files.", 70),
        ("You must run migrations first.", 60),
        ("🚨 CRITICAL: rotate the key.", 85),
        ("⚠️ The staging database is shared.", 70),
        ("Consider batching dependency bumps.", 35),
        ("Prefer composition, but NEVER inherit twice.", 70),
        ("NEVER do X. ALWAYS do Y. IMPORTANT: and Z. MUST W.", 80),
        ("Zeitstempel NIEMALS in lokaler Zeit speichern.", 70),
        ("必须先运行 pnpm install。", 70),
        ("絶対にスナップショットを手で編集しない。", 75),  # 絶対 + しない
        ("> [!IMPORTANT]\n> Deploy only from main.", 70),
    ],
)
def test_priority_markers(text: str, expected: int) -> None:
    assert score_priority(text) == expected


def test_priority_heading_bonus_file_bonus_and_clamp() -> None:
    assert score_priority("run it", heading_text="Critical Commands") == 60
    assert score_priority("run it", heading_text="Do and Don't") == 50
    assert score_priority("NEVER. ALWAYS. MUST.", base=95, bonus=20) == 100
    assert score_priority("Consider it.", base=5, bonus=-10) == 0
    assert score_priority("text", bonus=10) == 60


# --------------------------------------------------------------------------- examples


def test_emoji_and_word_labels() -> None:
    ex, why = extract_examples(
        "Use bound parameters.\n- ✅ `execute(sql, params)`\n- ❌ `execute(f-string)`\n"
        "- Do: name the value\n- Don't: say invalid input\n- Correct: x\n- Wrong: y\n"
        "- Why: injection")
    assert ex == {"good": ["`execute(sql, params)`", "name the value", "x"],
                  "bad": ["`execute(f-string)`", "say invalid input", "y"]}
    assert why == "injection"


def test_labels_directly_before_code_blocks_take_the_block() -> None:
    ex, _ = extract_examples("**Bad:**\n```ts\nnew Date(s)\n```\n\n**Good:**\n```ts\nparseISO(s)\n```")
    assert ex == {"good": ["```ts\nparseISO(s)\n```"], "bad": ["```ts\nnew Date(s)\n```"]}


def test_a_block_not_directly_after_a_label_is_not_an_example() -> None:
    ex, _ = extract_examples("Bad:\n\nSome words in between.\n\n```ts\nx\n```")
    assert ex == {"good": [], "bad": []}


def test_wrong_approach_and_rule_pair() -> None:
    ex, why = extract_examples("**Wrong approach**: patch only the custom resolver\n"
                               "**Rule**: patch both resolvers")
    assert ex == {"good": ["patch both resolvers"], "bad": ["patch only the custom resolver"]}
    assert why is None


@pytest.mark.parametrize(
    ("text", "why"),
    [
        ("Reason: CI runs Node 22.", "CI runs Node 22."),
        ("**Rationale:** it is faster", "it is faster"),
        ("Because the lockfile breaks.", "Because the lockfile breaks."),
        ("Use pnpm because npm rewrites the lockfile. Also fast.", "because npm rewrites the lockfile"),
        ("Use pnpm.", None),
    ],
)
def test_rationale(text: str, why: str | None) -> None:
    assert extract_examples(text)[1] == why


# --------------------------------------------------------------------------- tags and tables


def test_hashtags_skip_code_headings_and_numbers() -> None:
    assert hashtags("Tagged #infra and #CI-CD, see issue #123 and `#not-me` and C#") == ["infra", "ci-cd"]


def test_table_roles() -> None:
    assert table_roles(["Rule", "Description", "Why"]) == ["name", "desc", "why"]
    assert table_roles(["Do", "Don't"]) == ["good", "bad"]
    assert table_roles(["Command", "Purpose"]) == ["command", "desc"]
    assert table_roles(["Service", "Port", "URL"]) is None


def test_split_row_respects_escapes() -> None:
    assert split_row("| `a \\| b` | c |") == ["`a \\| b`", "c"]
    assert split_row("x | y | z") == ["x", "y", "z"]
