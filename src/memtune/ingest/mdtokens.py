"""Markdown helpers with no rule logic: the parser, plain text of inline tokens, line
trimming, top-level block grouping, bold labels and table cells.

Split from :mod:`memtune.ingest.markdown` (the walker that decides what a rule is), so that
file reads as the cutting policy and this one as the token plumbing it stands on.
"""

from __future__ import annotations

import re

from markdown_it import MarkdownIt
from markdown_it.token import Token

MD = MarkdownIt("commonmark", {"maxNesting": 20}).enable("table")


_TERMINAL = tuple(".!?。！？…")


# A line with any of these is not plain enough to become a heading (its plain text would
# lose link targets, entities or escapes).
_MARKUP_CHARS = re.compile(r"[\[\]()<>`\\&*_|#]")


def inline_plain(children: list[Token] | None) -> str:
    """Readable text of an inline token: markup dropped, code spans and alt text kept."""
    parts: list[str] = []
    for c in children or []:
        if c.type in ("text", "code_inline"):
            parts.append(c.content)
        elif c.type in ("softbreak", "hardbreak"):
            parts.append(" ")
        elif c.type == "image":
            parts.append(inline_plain(c.children))
    return re.sub(r"\s+", " ", "".join(parts)).strip()


def plain_of(markdown: str) -> str:
    """Readable text of a markdown snippet (one paragraph's worth)."""
    toks = MD.parseInline(markdown)
    return inline_plain(toks[0].children if toks else None)


def dedent(lines: list[str]) -> list[str]:
    indents = [len(ln) - len(ln.lstrip(" ")) for ln in lines if ln.strip()]
    cut = min(indents) if indents else 0
    return [ln[cut:] if ln[:cut].strip() == "" else ln.lstrip(" ") for ln in lines]


def trim_blank(lines: list[str]) -> list[str]:
    start, end = 0, len(lines)
    while start < end and not lines[start].strip():
        start += 1
    while end > start and not lines[end - 1].strip():
        end -= 1
    return lines[start:end]


def collapse_blank_runs(lines: list[str]) -> list[str]:
    """Blank lines left by removed comments/wrappers: keep at most one in a row."""
    out: list[str] = []
    for ln in lines:
        if not ln.strip() and out and not out[-1].strip():
            continue
        out.append(ln.rstrip() if not ln.strip() else ln)
    return out


def remove_indent(line: str, width: int) -> str:
    col = 0
    i = 0
    while i < len(line) and col < width and line[i] in " \t":
        col += 4 - (col % 4) if line[i] == "\t" else 1
        i += 1
    return line[i:]


def strip_emphasis(text: str) -> str:
    """``**Title**`` → ``Title``: drop emphasis markers that wrap the whole text.

    Only paired markers go, so an underscore or star that belongs to a word (``0_``,
    ``snake_``) is kept: stripping every edge ``*``/``_`` lost such words.
    """
    t = text.strip()
    while True:
        for mark in ("**", "__", "*", "_"):
            if len(t) > 2 * len(mark) and t.startswith(mark) and t.endswith(mark):
                t = t[len(mark):-len(mark)].strip()
                break
        else:
            return t


def is_title_like(text: str) -> bool:
    """A short single line without sentence punctuation: works as a heading."""
    t = strip_emphasis(text)
    if not t or "\n" in t or len(t) > 60:
        return False
    core = t[:-1].rstrip() if t.endswith((":", "：")) else t
    return (bool(core) and len(core.split()) <= 8 and not core.endswith(_TERMINAL)
            and not _MARKUP_CHARS.search(core))


def top_level_blocks(tokens: list[Token]) -> list[list[Token]]:
    """Group a token stream into its top-level blocks (open … close, or single tokens)."""
    blocks: list[list[Token]] = []
    start: int | None = None
    for i, tok in enumerate(tokens):
        if start is None:
            if tok.nesting == 1:
                start = i
            elif tok.level == 0:
                blocks.append([tok])
        elif tok.nesting == -1 and tok.level == tokens[start].level:
            blocks.append(tokens[start:i + 1])
            start = None
    if start is not None:
        blocks.append(tokens[start:])
    return blocks


def bold_label(children: list[Token] | None) -> tuple[str, str] | None:
    """``(label, prefix)`` when an inline run starts with ``**Name**:``-style bold label."""
    kids = list(children or [])
    idx = 0
    prefix = ""
    while idx < len(kids) and kids[idx].type == "text" and not re.search(r"\w", kids[idx].content):
        prefix += kids[idx].content
        idx += 1
    if idx >= len(kids) or kids[idx].type != "strong_open":
        return None
    depth, j, parts = 0, idx, []
    while j < len(kids):
        k = kids[j]
        if k.type == "strong_open":
            depth += 1
        elif k.type == "strong_close":
            depth -= 1
            if depth == 0:
                break
        elif k.type in ("text", "code_inline"):
            parts.append(k.content)
        elif k.type in ("softbreak", "hardbreak"):
            return None
        j += 1
    label = "".join(parts).strip()
    after = kids[j + 1] if j + 1 < len(kids) else None
    if not label or len(label) > 80 or len(label.split()) > 12:
        return None
    punctuated = label.endswith((":", "：", "."))  # **Name:** / **Name.**
    separated = after is not None and after.type == "text" and bool(
        re.match(r"^\s*(?:[:：]|[-–—](?:\s|$))", after.content))  # **Name**: / **Name** -
    own_line = after is not None and after.type in ("softbreak", "hardbreak") and bool(
        inline_plain(kids[j + 1:]))  # **Name** alone on the first line, text below
    if not (punctuated or separated or own_line):
        return None
    label = label.rstrip(":：.").strip()
    return (label, prefix.strip()) if label else None


def cut_label(first_line: str) -> tuple[str, str]:
    """Split ``**Label**: rest`` into (rest, label as written); the label's plain text was
    already read from tokens, this only finds where it ends in the source."""
    m = re.match(r"^(\W*?)(\*\*|__)(.+?)\2\s*(?:[:：]|[-–—](?=\s|$))?\s*", first_line)
    if not m:
        return first_line, ""
    prefix = m.group(1).strip()
    rest = first_line[m.end():]
    return (f"{prefix} {rest}".strip() if prefix else rest), m.group(3)


def table_cells(blk: list[Token]) -> tuple[list[str], list[tuple[int, list[str]]]]:
    """Header cells and ``(line, cells)`` per body row, cells as raw markdown."""
    headers: list[str] = []
    rows: list[tuple[int, list[str]]] = []
    current: list[str] | None = None
    line = 0
    in_head = False
    for tok in blk:
        if tok.type == "thead_open":
            in_head = True
        elif tok.type == "thead_close":
            in_head = False
        elif tok.type == "tr_open":
            current = []
            line = tok.map[0] if tok.map else line
        elif tok.type == "inline" and current is not None:
            current.append(tok.content)
        elif tok.type == "tr_close" and current is not None:
            if in_head:
                headers = current
            else:
                rows.append((line, current))
            current = None
    return headers, rows
