"""Markdown-aware text helpers shared by the question, answer, keyword and negative builders.

Guideline text is markdown written by agents: fenced code blocks must survive untouched,
while topic phrases and questions need plain prose. Everything here is pure and fast
(the export streams 100k guidelines through it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

REDACTED_RE = re.compile(r"\[REDACTED(?::[^\]\n]*)?\]")
_LINK_RE = re.compile(r"!?\[([^\]\n]*)\]\([^)\n]*\)")
_BOLD_RE = re.compile(r"(\*\*|__)(?=\S)(.+?)(?<=\S)\1")
_ITALIC_RE = re.compile(r"(?<![\w*])([*_])(?=[^\s*_])(.+?)(?<=[^\s*_])\1(?![\w*])")
_CODE_SPAN_RE = re.compile(r"`+([^`\n]+?)`+")
_HTML_RE = re.compile(r"<!--.*?-->|</?[a-zA-Z][\w-]*(?:\s[^<>]*)?/?>", re.S)
_LINE_PREFIX_RE = re.compile(r"^[ \t]*(?:#{1,6}[ \t]+|>[ \t]?|[-*+][ \t]+(?:\[[ xX]\][ \t]+)?|\d+[.)][ \t]+)")
_EMOJI_RE = re.compile(
    "[\u2600-\u27bf\U0001f300-\U0001faff\u2b50\u2b55\u203c\u2049\u2705\u274c\u26a0\ufe0f\u200d]+"
)
_WS_RE = re.compile(r"[ \t]+")
_ABBREV = ("e.g.", "i.e.", "etc.", "vs.", "approx.", "cf.", "incl.", "a.k.a.")
_ABBREV_RES = [re.compile(re.escape(ab), re.I) for ab in _ABBREV]
_SENT_SPLIT_RE = re.compile(r"(?<=[.!?])[ \t]+(?=[A-Z0-9`\"'(\[*_])|\n+")


@dataclass(frozen=True)
class Block:
    """A piece of a guideline: prose, or a fenced code block kept verbatim."""

    kind: str  # "text" | "code"
    text: str  # prose, or the code body (no fences)
    lang: str = ""
    raw: str = ""  # the code block as written, fences included

    def markdown(self) -> str:
        return self.raw if self.kind == "code" else self.text


def split_blocks(content: str) -> list[Block]:
    """Prose and fenced code blocks in order; an unclosed fence runs to the end (kept as code)."""
    return list(_split_blocks(content))


@lru_cache(maxsize=256)
def _split_blocks(content: str) -> tuple[Block, ...]:
    """Cached: one note's body is split by keywords, facts, answers and prompts (~6 times each).

    Fences are found by markdown-it (the parser ingest reads memory files with), so what counts
    as a code block here is what counted when the note was cut; a note without a fence marker
    skips the parse.
    """
    if "```" not in content and "~~~" not in content:
        return (Block("text", content.strip()),) if content.strip() else ()
    from memtune.ingest.mdtokens import MD

    lines = content.splitlines(keepends=True)
    out: list[Block] = []
    pos = 0  # first line not yet emitted
    quoted = 0
    for tok in MD.parse(content):
        if tok.type == "blockquote_open":
            quoted += 1
        elif tok.type == "blockquote_close":
            quoted -= 1
        if tok.type != "fence" or quoted or tok.map is None or not tok.content.strip():
            continue  # a fence inside a quote, or an empty one (a stray ``` line), stays prose
        start, end = tok.map
        before = "".join(lines[pos:start]).strip("\n")
        if before.strip():
            out.append(Block("text", before.strip()))
        fence = tok.markup
        lang = _LANG_RE.match(tok.info.strip()).group(0)  # type: ignore[union-attr]
        body = tok.content.rstrip("\n")
        out.append(Block("code", body, lang, f"{fence}{lang}\n{body}\n{fence}"))
        pos = end
    rest = "".join(lines[pos:])
    if rest.strip():
        out.append(Block("text", rest.strip()))
    return tuple(out)


_LANG_RE = re.compile(r"[\w+#.-]*")


def code_blocks(content: str) -> list[Block]:
    return [b for b in split_blocks(content) if b.kind == "code"]


def prose(content: str) -> str:
    """The guideline without its code blocks."""
    return "\n".join(b.text for b in split_blocks(content) if b.kind == "text")


def strip_inline(text: str, *, keep_code: bool = False) -> str:
    """Markdown inline syntax → plain words (links keep their text, code spans their content)."""
    if "<" in text:
        text = _HTML_RE.sub(" ", text)
    if "](" in text:
        text = _LINK_RE.sub(r"\1", text)
    if not keep_code and "`" in text:
        text = _CODE_SPAN_RE.sub(r"\1", text)
    if "*" in text or "_" in text:
        text = _BOLD_RE.sub(r"\2", text)
        text = _ITALIC_RE.sub(r"\2", text)
    if not text.isascii():
        text = _EMOJI_RE.sub(" ", text)
    return text


@lru_cache(maxsize=4096)
def plain(text: str, *, keep_code: bool = False) -> str:
    """One line of plain prose: no markdown, no list markers, single spaces."""
    lines = [_LINE_PREFIX_RE.sub("", ln) for ln in text.splitlines()]
    flat = strip_inline(" ".join(ln.strip() for ln in lines if ln.strip()), keep_code=keep_code)
    return _WS_RE.sub(" ", flat).strip()


def sentences(text: str) -> list[str]:
    """Prose split into sentences and list items; abbreviations and versions don't split."""
    low = text.lower()
    used = [(i, ab) for i, ab in enumerate(_ABBREV) if ab in low]
    protected = text
    for i, ab in used:
        protected = _ABBREV_RES[i].sub(f"\x00{i}\x00", protected)
    out = []
    for part in _SENT_SPLIT_RE.split(protected):
        for i, ab in used:
            part = part.replace(f"\x00{i}\x00", ab)
        part = _LINE_PREFIX_RE.sub("", part).strip()
        if part:
            out.append(part)
    return out


def has_redaction(text: str | None) -> bool:
    return bool(text) and bool(REDACTED_RE.search(text or ""))


def word_count(text: str) -> int:
    return len(re.findall(r"[\w'-]+", text))


_KEY_DROP_RE = re.compile(r"[^\w./:@#$%+=<>-]+")
_MARKUP_CHARS = frozenset("*_[<")


@lru_cache(maxsize=8192)
def question_key(question: str) -> str:
    """What makes two questions 'the same prompt' for dedup and the train/eval split:
    case, punctuation, backticks and spacing do not count."""
    if not _MARKUP_CHARS.isdisjoint(question):
        question = strip_inline(question)
    return _KEY_DROP_RE.sub(" ", question.lower()).strip(" .:")


def clip_markdown(content: str, limit: int) -> str:
    """Shorten a note for a retrieval prompt at a block boundary; never cuts a code fence."""
    if len(content) <= limit:
        return content
    out: list[str] = []
    size = 0
    for b in split_blocks(content):
        piece = b.markdown()
        if size and size + len(piece) > limit:
            break
        if b.kind == "text" and size + len(piece) > limit:
            cut = piece[: max(limit - size, 40)]
            cut = cut[: cut.rfind(" ")] if " " in cut else cut
            out.append(cut.rstrip(" ,;:") + " …")
            size = limit
            break
        out.append(piece)
        size += len(piece) + 2
    return "\n\n".join(out) if out else content[:limit]


def lower_first(s: str) -> str:
    """Lowercase the first word unless it looks like a name, an acronym or code."""
    if not s:
        return s
    first = s.split(" ", 1)[0]
    if len(first) > 1 and (first[1:].lower() != first[1:] or any(c.isdigit() for c in first)):
        return s
    return s[0].lower() + s[1:]


def upper_first(s: str) -> str:
    return s[:1].upper() + s[1:] if s else s


def ensure_period(s: str) -> str:
    s = s.rstrip()
    if not s or s.endswith("```") or s[-1] in ".!?:;…)" or s.endswith("`"):
        return s
    return s + "."
