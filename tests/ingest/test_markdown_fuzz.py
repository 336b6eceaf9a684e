"""Fuzz the readers: any text parses without raising, and no word of it is lost.

"Lost" is checked against the source, independently of how the reader cut it up: every
word of the body must appear in some rule's name, content, rationale, examples, section,
tags or metadata. Exempt are words the format says are not content: HTML comments, tag
names/attributes, and heading lines (headings become rule names/sections; a heading with
nothing under it is legitimately not a rule).

The draw is fixed so CI reproduces; `FUZZ_RANDOM=1 pytest … --hypothesis-seed=N` searches new
inputs, and what it finds goes into ``FOUND`` below.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memtune.ingest.classify import CATEGORIES
from memtune.ingest.frontmatter import split_frontmatter
from memtune.ingest.mdtokens import MD
from memtune.ingest.readers import clean_markup, parse_memory_text
from memtune.ingest.types import KINDS, MemoryFile, ParsedFile

RELS = ["memory.md", ".cursorrules", ".windsurfrules", ".clinerules", "rules/api.mdc",
        "CLAUDE.md", "AGENTS.md", "memory-bank/techContext.md", ".claude/memory/note.md"]

WORDS = st.one_of(
    st.sampled_from(["deploy", "NEVER", "always", "Prefer", "pnpm", "Node", "Befehle", "命令",
                     "テスト", "Lições", "why", "Because", "[REDACTED:password]", "✅", "❌",
                     "⚠️", "🚨", "Good:", "Bad:", "Rule:", "Wrong approach:", "#infra", "Do:",
                     "Don't:", "Why:", "**Bold**", "`code`", "[link](http://example.test/x)",
                     "&amp;", "a\\*b", "<b>x</b>", "<important>", "</important>", "x<!--y-->z"]),
    st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs", "Cc")),
            min_size=1, max_size=10),
)
PHRASE = st.lists(WORDS, min_size=1, max_size=8).map(" ".join)


@st.composite
def fragment(draw: st.DrawFn) -> str:
    kind = draw(st.integers(0, 18))
    p = draw(PHRASE)
    if kind == 0:
        return f"{'#' * draw(st.integers(1, 6))} {p}"
    if kind == 1:
        return f"{p}\n{draw(st.sampled_from(['===', '---']))}"
    if kind == 2:
        marker = draw(st.sampled_from(["-", "*", "+", "1.", "2)"]))
        indent = " " * draw(st.sampled_from([0, 0, 2, 4]))
        return f"{indent}{marker} {p}"
    if kind == 3:
        return f"- **{draw(PHRASE)}**{draw(st.sampled_from([':', ' -', '.', '']))} {p}"
    if kind == 4:
        fence = draw(st.sampled_from(["```", "~~~", "````"]))
        lang = draw(st.sampled_from(["", "bash", "python", "mermaid", "text"]))
        body = "\n".join(draw(st.lists(st.one_of(PHRASE, st.just("- not a bullet"),
                                                 st.just("# not a heading")), max_size=3)))
        close = draw(st.sampled_from([fence, fence, ""]))
        return f"{fence}{lang}\n{body}\n{close}"
    if kind == 5:
        cols = draw(st.integers(1, 3))
        head = draw(st.lists(st.sampled_from(["Rule", "Why", "Do", "Don't", "Command", "Purpose",
                                              "Service", "Port", p]), min_size=cols, max_size=cols))
        rows = draw(st.lists(st.lists(PHRASE, min_size=1, max_size=4), max_size=3))
        lines = ["| " + " | ".join(head) + " |", "|" + "---|" * cols]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines)
    if kind == 6:
        return f"<!-- {p} -->" if draw(st.booleans()) else f"<!-- {p}"
    if kind == 7:
        tag = draw(st.sampled_from(["rules", "important", "project_context"]))
        return f"<{tag}>\n{draw(PHRASE)}\n- {p}\n</{tag}>"
    if kind == 8:
        return f"> {p}\n> - {draw(PHRASE)}"
    if kind == 9:
        return f"    {p}"
    if kind == 10:
        return f"[{draw(PHRASE)}]: http://example.test/{draw(st.integers(0, 9))}"
    if kind == 11:
        return f"{p}:"
    if kind == 12:
        return f"1. {p}\n2. {draw(PHRASE)}\n3. {draw(PHRASE)}"
    if kind == 13:
        return "---"
    if kind == 14:
        return f"- {p}\n  - {draw(PHRASE)}\n\n  ```bash\n  {draw(PHRASE)}\n  ```"
    if kind == 15:
        label = draw(st.sampled_from(["**Bad:**", "Good:", "❌ Wrong:", "Why:", p + ":"]))
        return f"{label}\n```ts\n{draw(PHRASE)}\n```"
    if kind == 16:
        return f"<div>\n{p}\n</div>"
    return p


@st.composite
def documents(draw: st.DrawFn) -> str:
    parts = draw(st.lists(fragment(), max_size=12))
    sep = draw(st.sampled_from(["\n", "\n\n"]))
    body = sep.join(parts)
    fm = draw(st.sampled_from([
        "", "", "---\ndescription: fuzz\nglobs: src/**/*.ts\nalwaysApply: true\n---\n",
        "---\nglobs: *.ts\n---\n", "---\n- a\n- b\n---\n", "---\nname: [unclosed\n---\n",
        "---\n---\n", "---\ntitle: never closed\n", "---\nname: Note\ntype: feedback\n---\n",
    ]))
    return fm + body


def _haystack(parsed: ParsedFile) -> str:
    parts: list[str] = []
    for r in parsed.rules:
        parts += [r.name, r.content, r.rationale or "", " ".join(r.section), " ".join(r.tags),
                  json.dumps(r.metadata, ensure_ascii=False),
                  json.dumps(r.examples, ensure_ascii=False)]
    return "\n".join(parts)


_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)
_TAG = re.compile(r"</?[A-Za-z][^<>]*>")
_ORDERED_MARKER = re.compile(r"^([\s>]*)\d{1,9}[.)](?=\s|$)", re.MULTILINE)


def _required_words(text: str) -> set[str]:
    """Words of the body that must survive: headings, comments and tags exempted."""
    body = split_frontmatter(text, "f").body
    heading_lines: set[int] = set()
    for tok in MD.parse(clean_markup(body).text):
        if tok.type == "heading_open" and tok.map:
            heading_lines.update(range(tok.map[0], tok.map[1]))
    body = _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n") or " ", body)
    body = _ORDERED_MARKER.sub(r"\1", _TAG.sub(lambda m: "\n" * m.group(0).count("\n") or " ", body))
    kept = "\n".join("" if i in heading_lines else ln for i, ln in enumerate(body.split("\n")))
    return set(re.findall(r"\w+", kept))


def _check(text: str, kind: str, rel: str) -> None:
    parsed = parse_memory_text(text, MemoryFile(path=Path(rel), kind=kind, rel=rel))
    assert not [w for w in parsed.warnings if "reader error" in w], parsed.warnings
    n_lines = text.count("\n") + 1
    names = [r.name.casefold() for r in parsed.rules]
    assert len(names) == len(set(names)), names
    for r in parsed.rules:
        assert r.name.strip() and len(r.name) <= 80, r.name
        assert r.content.strip()
        assert 1 <= r.line <= n_lines, (r.line, n_lines)
        assert 0 <= r.priority <= 100
        assert r.category in CATEGORIES
        assert set(r.examples) == {"good", "bad"}
    for w in parsed.warnings:
        assert w.startswith(f"{rel}:"), w
    hay = _haystack(parsed)
    hay_words = set(re.findall(r"\w+", hay))
    missing = {w for w in _required_words(text) if w not in hay_words and w not in hay}
    assert not missing, (missing, [r.content for r in parsed.rules])


FUZZ = settings(max_examples=200, deadline=None, derandomize=os.environ.get("FUZZ_RANDOM") is None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(st.text(), st.sampled_from(KINDS), st.sampled_from(RELS))
def test_any_text_never_raises_and_loses_nothing(text: str, kind: str, rel: str) -> None:
    _check(text, kind, rel)


@FUZZ
@given(documents(), st.sampled_from(KINDS), st.sampled_from(RELS))
def test_composed_markdown_never_raises_and_loses_nothing(text: str, kind: str, rel: str) -> None:
    _check(text, kind, rel)


# Inputs earlier random draws found losing words; each stays checked whatever the draw.
FOUND = [
    ("0_\n<!-- NEVER deploy", "memory"),  # "0_" was read as a title "0" (edge "_" stripped)
    ("snake_\nNEVER deploy", "cursorrules"),
    ("_0\nNEVER deploy", "memory"),
    ("> <A\n> - deploy\n# 0", "memory"),  # a tag spanning lines shifted the checker's heading lines
    (">0\n=", "memory"),  # a quote's lazy "=" line became a setext underline: the paragraph was dropped
    ("> zero words\n===\n\nnext", "markdown"),
]


def test_found_cases_lose_nothing() -> None:
    for text, kind in FOUND:
        _check(text, kind, "memory.md")


def test_strip_emphasis_drops_only_wrapping_markers() -> None:
    from memtune.ingest.mdtokens import strip_emphasis
    assert strip_emphasis("**Commands:**") == "Commands:"
    assert strip_emphasis(" _*Deploy*_ ") == "Deploy"
    assert strip_emphasis("0_") == "0_"
    assert strip_emphasis("_private") == "_private"
    assert strip_emphasis("**") == "**"
