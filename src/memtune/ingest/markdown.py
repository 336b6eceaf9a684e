"""Walk markdown-it tokens of one memory file and cut them into rule-sized units.

The walker decides *what* a rule is (a bullet, a section's prose, a code block with the text
that introduces it, a numbered step list, a table row); :mod:`memtune.ingest.readers` then
names, classifies and scores the units. Content is always sliced from the source lines that
a token's ``map`` covers, so markdown (code fences with their language, links, emphasis,
``[REDACTED:…]`` markers) survives byte for byte, and any non-blank line no token claims
(link reference definitions, say) still lands in its section's prose: nothing is dropped.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from markdown_it.token import Token

from memtune.ingest.classify import (
    classify_label_line,
    is_emphasis,
    is_structural,
    split_row,
    table_roles,
    table_row,
)
from memtune.ingest.mdtokens import (
    MD,
    bold_label,
    collapse_blank_runs,
    cut_label,
    dedent,
    inline_plain,
    is_title_like,
    plain_of,
    remove_indent,
    strip_emphasis,
    table_cells,
    top_level_blocks,
    trim_blank,
)

_MARKER_RE = re.compile(r"^(\s*)([-*+]|\d{1,9}[.)])([ \t]*)")
_QUOTE_RE = re.compile(r"^ {0,3}> ?")
_SETEXT_EQ_RE = re.compile(r"^ {0,3}=+[ \t]*$")
_LINE_BULLET_RE = re.compile(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+\S")
PSEUDO_LEVEL = 7  # heading-stack level of a plain-text title line (below every real heading)

_STEP_CONTEXT_RE = re.compile(
    r"step|setup|set up|install|procedure|process|workflow|how to|getting started|quick ?start|"
    r"deploy|release|onboard|migrat|run\b|running|build|bootstrap|checklist|sequence|order|"
    r"schritte|anleitung|passos|pasos|instala|手順|步骤|流程|安装|部署",
    re.IGNORECASE,
)
_SEQUENCE_WORDS_RE = re.compile(r"^(?:first|then|next|finally|after that|afterwards)\b", re.I)
_RAISE_HINT_RE = re.compile(r"\b(?:NEVER|ALWAYS|MUST|DO NOT|DON'T|CRITICAL|IMPORTANT)\b|🚨|⚠️")


def _lazy_line(line: str) -> str:
    """A quote's lazy continuation line, ready to re-parse without its quote: a ``===`` line
    there continues the paragraph, so it must not become a setext underline (the text above
    would turn into a heading with nothing under it and be dropped). Indented, it stays text."""
    return "    " + line.strip() if _SETEXT_EQ_RE.match(line) else line


# --------------------------------------------------------------------------- units


@dataclass
class Unit:
    """One rule-to-be: where it starts, its markdown content and what can name it."""

    kind: str  # bullet | labelled | prose | code | steps | list | table | row | note
    start: int  # 0-based line in the parsed body
    content: str
    section: list[str]
    levels: list[int]  # heading level per section entry; 0 = pseudo-heading
    label: str | None = None  # an explicit name (bold label, table name cell)
    hint: str = ""  # plain text to derive a name from
    lead_in: str | None = None
    lang: str | None = None
    code: str = ""  # code body, for naming code blocks
    examples: dict[str, list[str]] = field(default_factory=lambda: {"good": [], "bad": []})
    rationale: str | None = None
    after_heading: bool = False  # first block under its heading: the heading introduces it
    path_name: bool = True  # prose/list/steps/code/note: named by the bare heading path
    marker_text: str | None = None  # text priority markers are read from, when not the content
    columns: list[str] | None = None  # table rows: the table's header cells
    label_markdown: str | None = None  # the bold label as written, when it had markup


@dataclass
class _Item:
    start: int
    content: str
    hint: str
    label: str | None
    structural: bool
    has_code: bool
    label_markdown: str | None = None


class Walker:
    """Turns a token stream into :class:`Unit` objects; one walker per file.

    Subclasses change how loose text is read: :class:`memtune.ingest.readers.PlainTextWalker`
    splits plain-text rule files per line and treats title lines as headings.
    """

    plain = False  # plain-text rule file: every paragraph is its own rule

    def __init__(self, lines: list[str], *, warn: Callable[[int, str], None],
                 scope_ends: list[tuple[int, int]] | None = None) -> None:
        self.lines = lines
        # (first, end) line spans of XML-style wrappers: headings opened inside one end with it.
        self.scope_ends = sorted(scope_ends or [], key=lambda span: span[1])
        # Wrapper boundaries, sorted: prose on two sides of one is two rules.
        self.boundaries = sorted({ln for span in self.scope_ends for ln in span})
        self.prose_scope = 0
        self.warn = warn
        self.units: list[Unit] = []
        self.stack: list[tuple[int, str]] = []  # (level, text); PSEUDO_LEVEL = title line
        self.stack_lines: list[int] = []  # line where each stack entry was opened
        self.prose: list[tuple[int, str]] = []
        self.leaf: tuple[int, int, str] | None = None  # (level, line, text) of a heading without content yet
        self.lead: tuple[int, str, str] | None = None  # (line, raw, plain) introducing the next block
        self.example_fence_next = False
        self.after_heading = False
        self.cur_line = 0
        self.pseudo_used = True

    # ----------------------------------------------------------------- public

    def run(self, tokens: list[Token]) -> list[Unit]:
        self._walk(tokens, self.lines, 0, 0)
        self._flush_prose()
        self._close_leaf(0)
        self.units.sort(key=lambda u: u.start)
        return self.units

    # ----------------------------------------------------------------- bookkeeping

    def _section(self, extra: str | None = None) -> tuple[list[str], list[int]]:
        sec = [t for _, t in self.stack]
        lev = [0 if lv == PSEUDO_LEVEL else lv for lv, _ in self.stack]
        if extra:
            sec.append(extra)
            lev.append(0)
        return sec, lev

    def _emit(self, kind: str, start: int, content: str, *, extra: str | None = None, **kw: Any) -> Unit:
        sec, lev = self._section(extra)
        kw.setdefault("after_heading", self.after_heading)
        unit = Unit(kind=kind, start=start, content=content.strip("\n"), section=sec, levels=lev, **kw)
        self.units.append(unit)
        self.leaf = None
        self.pseudo_used = True
        return unit

    def _prose_chunk(self, start: int, text: str) -> None:
        text = "\n".join(collapse_blank_runs(trim_blank(text.split("\n"))))
        if not text.strip():
            return
        if self.plain:
            self._emit("paragraph", start, text, hint=plain_of(text))
            return
        scope = bisect_right(self.boundaries, start)  # how many wrapper edges lie before it
        if scope != self.prose_scope:
            self._flush_prose()  # prose inside and outside a wrapper are different rules
            self.prose_scope = scope
        self.prose.append((start, text))
        self.leaf = None

    def _flush_prose(self) -> None:
        if not self.prose:
            return
        start = self.prose[0][0]
        content = "\n\n".join(t for _, t in self.prose)
        self.prose = []
        self._emit("prose", start, content, hint=plain_of(content.split("\n\n", 1)[0]))

    def _close_leaf(self, new_level: int) -> None:
        """A heading with nothing under it is only a rule when it reads like one."""
        if self.leaf is None:
            return
        level, line, text = self.leaf
        if new_level and new_level > level:
            return
        self.leaf = None
        words = text.split()
        if _RAISE_HINT_RE.search(text) or text.rstrip().endswith((".", "!", "。", "！")) or len(words) >= 7:
            self._emit("note", line, text, hint=text)

    def _push(self, level: int, text: str, line: int) -> None:
        self.stack.append((level, text))
        self.stack_lines.append(line)

    def _pop(self) -> None:
        self.stack.pop()
        self.stack_lines.pop()

    def _end_scopes(self, line: int) -> None:
        """Close headings that were opened inside a wrapper which ended before ``line``."""
        while self.scope_ends and self.scope_ends[0][1] <= line:
            first, end = self.scope_ends.pop(0)
            if self.stack_lines and self.stack_lines[-1] >= first:
                self._flush_prose()
                self._close_leaf(0)
                while self.stack_lines and first <= self.stack_lines[-1] < end:
                    self._pop()

    def _slice(self, lines: list[str], s: int, e: int) -> list[str]:
        return collapse_blank_runs(trim_blank(dedent(lines[s:e])))

    def _loose_paragraph(self, raw_lines: list[str], start: int, nxt_blk: list[Token] | None) -> bool:
        """Hook for plain-text files; True when the paragraph was handled."""
        return False

    def _plain_title(self, title: str | None, *, persist: bool = False) -> str | None:
        """Hook: a title line introducing a block. Markdown files keep it to that block."""
        return title

    def _take_lead(self) -> tuple[int, str, str] | None:
        lead, self.lead = self.lead, None
        return lead

    def _block_lead(self) -> tuple[tuple[int, str, str] | None, str | None, str | None]:
        """The paragraph introducing a list/table: (lead, as written, title or None). A short
        title-like lead ("Backend:", "To deploy") joins the section path of the block."""
        lead = self._take_lead()
        if lead is None:
            return None, None, None
        title = (lead[2].rstrip(":：").strip() or lead[1]) if is_title_like(lead[1]) else None
        return lead, lead[1].strip(), self._plain_title(title)

    def _whole(self, kind: str, lines: list[str], base: int, s: int, e: int,
               lead: tuple[int, str, str] | None, extra: str | None, **kw: Any) -> None:
        """Emit a whole list/table as one rule; a lead-in that is not a title is kept in it."""
        content, start = "\n".join(self._slice(lines, s, e)), base + s
        if lead is not None and extra is None:
            content, start = f"{lead[1]}\n\n{content}", lead[0]
        self._emit(kind, start, content, extra=extra, **kw)

    # ----------------------------------------------------------------- walking

    def _walk(self, tokens: list[Token], lines: list[str], base: int, depth: int) -> None:
        blocks = top_level_blocks(tokens)
        prev_end = 0
        for i, blk in enumerate(blocks):
            head = blk[0]
            s, e = head.map if head.map else (prev_end, prev_end)
            if s > prev_end:
                gap = "\n".join(lines[prev_end:s])
                if gap.strip():
                    self._prose_chunk(base + prev_end, "\n".join(dedent(gap.split("\n"))))
            self.cur_line = base + s
            self._end_scopes(base + s)
            if self.lead is not None and head.type not in ("bullet_list_open", "ordered_list_open",
                                                           "fence", "code_block", "table_open"):
                lead = self._take_lead()
                assert lead is not None
                self._prose_chunk(lead[0], lead[1])
            t = head.type
            if t == "heading_open":
                self._heading(blk, base + s)
            elif t == "paragraph_open":
                self._paragraph(blk, lines, base, blocks[i + 1] if i + 1 < len(blocks) else None)
            elif t in ("bullet_list_open", "ordered_list_open"):
                self._list(blk, lines, base)
            elif t in ("fence", "code_block"):
                self._code(head, lines, base, depth)
            elif t == "table_open":
                self._table(blk, lines, base)
            elif t == "blockquote_open":
                self._blockquote(head, lines, base, depth)
            elif t == "hr":
                pass
            else:
                self._prose_chunk(base + s, "\n".join(self._slice(lines, s, e)))
            self.after_heading = t == "heading_open"
            prev_end = max(prev_end, e)
        if prev_end < len(lines) and "\n".join(lines[prev_end:]).strip():
            self._prose_chunk(base + prev_end, "\n".join(dedent(lines[prev_end:])))
        if self.lead is not None and depth == 0:
            lead = self._take_lead()
            assert lead is not None
            self._prose_chunk(lead[0], lead[1])

    def _heading(self, blk: list[Token], line: int) -> None:
        self._flush_prose()
        level = int(blk[0].tag[1:]) if blk[0].tag[1:].isdigit() else 6
        inline = blk[1] if len(blk) > 1 else None
        text = inline_plain(inline.children if inline else None) or (inline.content.strip() if inline else "")
        self._close_leaf(level)
        while self.stack and self.stack[-1][0] >= level:
            self._pop()
        if not text:
            return
        self._push(level, text, line)
        self.leaf = (level, line, text)

    def _paragraph(self, blk: list[Token], lines: list[str], base: int,
                   nxt_blk: list[Token] | None) -> None:
        nxt = nxt_blk[0] if nxt_blk else None
        head = blk[0]
        s, e = head.map or (0, 0)
        inline = blk[1] if len(blk) > 1 else None
        raw_lines = [ln.strip() for ln in lines[s:e]]
        raw = "\n".join(trim_blank(raw_lines))
        plain = inline_plain(inline.children if inline else None)
        start = base + s
        nt = nxt.type if nxt is not None else ""
        label_hit = classify_label_line(raw_lines[0]) if raw_lines else None
        if label_hit is not None and label_hit[0] in ("good", "bad", "why") and not label_hit[1] \
                and nt in ("fence", "code_block") and len(raw_lines) == 1:
            self._prose_chunk(start, raw)
            self.example_fence_next = True
            return
        bullet_lines = [i for i, ln in enumerate(raw_lines) if _LINE_BULLET_RE.match(ln)]
        if len(bullet_lines) >= 2 or (bullet_lines and bullet_lines[0] > 0 and self.plain):
            self._pseudo_list(raw_lines, bullet_lines, start)
            return
        if nt in ("fence", "code_block") and (raw.rstrip().endswith((":", "：")) and len(plain) <= 300
                                               or len(raw_lines) == 1 and len(plain) <= 160):
            self.lead = (start, raw, plain)
            return
        if nt in ("bullet_list_open", "ordered_list_open", "table_open") and (
                is_title_like(plain) or (raw.rstrip().endswith((":", "：")) and len(plain) <= 300)):
            self.lead = (start, raw, plain)
            return
        if self._loose_paragraph(raw_lines, start, nxt_blk):
            return
        bl = bold_label(inline.children if inline else None)
        if bl is not None and not is_emphasis(bl[0]) and not is_structural(bl[0], raw_lines[0]):
            first, raw_label = cut_label(raw_lines[0])
            content = "\n".join([first] + raw_lines[1:]).strip() or bl[0]
            self._emit("labelled", start, content, label=bl[0], hint=plain_of(content),
                       label_markdown=raw_label if raw_label.strip(" :.：") != bl[0] else None)
            return
        self._prose_chunk(start, raw)

    def _pseudo_list(self, raw_lines: list[str], bullet_idx: list[int], start: int) -> None:
        """A paragraph whose lines are bullets that markdown did not see (indented plain text)."""
        head = raw_lines[:bullet_idx[0]]
        extra = None
        if head:
            head_text = "\n".join(head)
            if len(head) == 1 and is_title_like(head_text):
                extra = self._plain_title(strip_emphasis(head_text).rstrip(":：").strip())
            else:
                self._prose_chunk(start, head_text)
        bounds = bullet_idx + [len(raw_lines)]
        for a, b in zip(bounds, bounds[1:], strict=False):
            item = "\n".join(raw_lines[a:b])
            text = re.sub(r"^\s*(?:[-*+•]|\d{1,3}[.)])\s+", "", item, count=1)
            self._emit("bullet", start + a, text, extra=extra, hint=plain_of(text),
                       lead_in=extra)

    # ----------------------------------------------------------------- lists

    def _items(self, blk: list[Token], lines: list[str], base: int) -> list[_Item]:
        items: list[_Item] = []
        level = blk[0].level + 1
        for j, tok in enumerate(blk):
            if tok.type != "list_item_open" or tok.level != level or not tok.map:
                continue
            s, e = tok.map
            seg = lines[s:e]
            m = _MARKER_RE.match(seg[0]) if seg else None
            if m:
                width = len(m.group(1)) + len(m.group(2)) + (len(m.group(3)) if len(m.group(3)) <= 4 else 1)
                rest_first = seg[0][m.end():] if len(m.group(3)) <= 4 else seg[0][m.end() - len(m.group(3)) + 1:]
                body = [rest_first] + [remove_indent(ln, width) for ln in seg[1:]]
            else:
                body = list(seg)
            body = collapse_blank_runs(trim_blank(body))
            inner_end = next((x for x in range(j + 1, len(blk))
                              if blk[x].type == "list_item_close" and blk[x].level == level), len(blk))
            first_inline = next((k for k in blk[j:inner_end] if k.type == "inline"), None)
            children = first_inline.children if first_inline is not None else None
            first_line = body[0] if body else ""
            bl = bold_label(children)
            label = bl[0] if bl and not is_emphasis(bl[0]) else None
            structural = is_structural(label, first_line)
            raw_label = None
            if label is not None and not structural:
                cut, raw = cut_label(first_line)
                content = "\n".join([cut] + body[1:]).strip() or label
                raw_label = raw if raw.strip(" :.：") != label else None
            else:
                label = None
                content = "\n".join(body)
            has_code = any(k.type in ("fence", "code_block") for k in blk[j:inner_end])
            hint = inline_plain(children) if children is not None else plain_of(first_line)
            if label is not None:
                hint = plain_of(content.split("\n", 1)[0])
            items.append(_Item(base + s, content, hint, label, structural, has_code, raw_label))
        return items

    def _list(self, blk: list[Token], lines: list[str], base: int) -> None:
        s, e = blk[0].map or (0, 0)
        lead, lead_raw, extra = self._block_lead()
        items = self._items(blk, lines, base)
        ordered = blk[0].type == "ordered_list_open"
        hint = items[0].hint if items else ""
        if ordered and self._is_steps(items, " ".join(self._section()[0] + [lead_raw or ""])):
            self._whole("steps", lines, base, s, e, lead, extra, hint=hint, lead_in=lead_raw)
            return
        if not ordered and items and all(it.structural for it in items):
            self._whole("list", lines, base, s, e, lead, extra, hint=hint, lead_in=lead_raw)
            return
        last: Unit | None = None
        for it in items:
            if self.scope_ends and self.scope_ends[0][1] <= it.start:
                self._end_scopes(it.start)  # a wrapper closed between two items of one list
                last = None
            if it.structural and last is not None:
                last.content = f"{last.content}\n{it.content}"
                continue
            last = self._emit("labelled" if it.label else "bullet", it.start, it.content, extra=extra,
                              label=it.label, hint=it.hint, lead_in=lead_raw,
                              label_markdown=it.label_markdown)

    def _is_steps(self, items: list[_Item], context: str) -> bool:
        if _STEP_CONTEXT_RE.search(context) or any(it.has_code for it in items):
            return True
        if any(_SEQUENCE_WORDS_RE.match(it.hint) for it in items[1:]):
            return True
        if items and all(it.label or _RAISE_HINT_RE.search(it.content) for it in items):
            return False
        return not self.plain

    # ----------------------------------------------------------------- code, tables, quotes

    def _code(self, tok: Token, lines: list[str], base: int, depth: int) -> None:
        s, e = tok.map or (0, 0)
        if tok.type == "code_block" and self.plain and depth < 6:
            local = [remove_indent(ln, 4) for ln in lines[s:e]]
            self._walk(MD.parse("\n".join(local)), local, base + s, depth + 1)
            return
        body_lines = self._slice(lines, s, e) if tok.type == "fence" else trim_blank(
            [remove_indent(ln, 4) for ln in lines[s:e]])
        raw = "\n".join(body_lines)
        if tok.type == "fence":
            closing = body_lines[-1].strip() if len(body_lines) > 1 else ""
            if not (closing and set(closing) == {tok.markup[:1]} and len(closing) >= len(tok.markup)):
                self.warn(base + s, f"code fence '{tok.markup}' is never closed; "
                                    "read the rest of the file as code")
        lang = (tok.info.split()[0] if tok.info.strip() else "") if tok.type == "fence" else ""
        if self.example_fence_next:
            self.example_fence_next = False
            if self.prose and not self.plain:
                first, text = self.prose[-1]
                self.prose[-1] = (first, f"{text}\n{raw}")
            else:
                self._prose_chunk(base + s, raw)
            return
        lead = self._take_lead()
        if lead is not None:
            label = lead[2].rstrip(":：").strip() or None
            self._emit("code", lead[0], f"{lead[1]}\n\n{raw}", label=label, hint=label or "",
                       lang=lang, code=tok.content, lead_in=lead[1].strip())
        else:
            self._emit("code", base + s, raw, lang=lang, code=tok.content)

    def _table(self, blk: list[Token], lines: list[str], base: int) -> None:
        s, e = blk[0].map or (0, 0)
        lead, lead_raw, extra = self._block_lead()
        headers, rows = table_cells(blk)
        plain_headers = [plain_of(h) for h in headers]
        roles = table_roles(plain_headers)
        if roles is None or not any(any(c.strip() for c in cells) for _, cells in rows):
            self._whole("table", lines, base, s, e, lead, extra, lead_in=lead_raw,
                        hint=" / ".join(h for h in plain_headers if h))
            return
        for line, cells in rows:
            raw_all = split_row(lines[line]) if line < len(lines) else cells
            cells = cells + raw_all[len(cells):]  # markdown-it drops cells past the header's
            row = table_row(plain_headers, roles, cells)
            if row is None:
                continue
            label = plain_of(row.label_source) if row.label_source else None
            first = next((c for c in cells if c.strip()), "")
            self._emit("row", base + line, row.content, extra=extra,
                       label=label if label and len(label) <= 80 else None,
                       hint=plain_of(first), lead_in=lead_raw, marker_text="\n".join(cells),
                       columns=list(headers), examples={"good": row.good, "bad": row.bad},
                       rationale=row.rationale)

    def _blockquote(self, tok: Token, lines: list[str], base: int, depth: int) -> None:
        s, e = tok.map or (0, 0)
        local = [_QUOTE_RE.sub("", ln, count=1) if _QUOTE_RE.match(ln) else _lazy_line(ln) for ln in lines[s:e]]
        if depth >= 6:
            self._prose_chunk(base + s, "\n".join(local))
            return
        self._walk(MD.parse("\n".join(local)), local, base + s, depth + 1)


