"""Read one memory file's text into rule drafts: ``parse_memory_text`` is the entry point.

Steps: split frontmatter (:mod:`.frontmatter`) → drop HTML comments and XML-style wrappers
outside code (here, keeping the line count) → walk markdown-it tokens into units
(:mod:`.markdown`; :class:`PlainTextWalker` for ``.cursorrules``-style plain text) → name,
classify, score and tag each unit (:mod:`.classify`). Every problem becomes a warning naming
the file and line; the function itself never raises, because one odd file must not stop an
ingest run.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from markdown_it.token import Token

from memtune.ingest.classify import (
    categorize,
    extract_examples,
    hashtags,
    score_priority,
)
from memtune.ingest.frontmatter import FrontmatterInfo, interpret, split_frontmatter
from memtune.ingest.markdown import PSEUDO_LEVEL, Unit, Walker
from memtune.ingest.mdclean import (  # noqa: F401
    Cleaned,
    clean_markup,
    code_line_mask,
    priority_wrapper_lines,
)
from memtune.ingest.mdtokens import MD, is_title_like, plain_of, strip_emphasis
from memtune.ingest.types import MemoryFile, ParsedFile, RuleDraft

__all__ = ["PLAIN_FILE_NAMES", "Cleaned", "PlainTextWalker", "clean_markup", "parse_memory_text"]

#: Longest rule name; the store keys guidelines by (scope, name).
MAX_NAME = 80
#: Files that are usually plain text with one rule per line or paragraph.
PLAIN_FILE_NAMES = frozenset({".cursorrules", ".windsurfrules", ".clinerules"})
_MARKDOWN_SUFFIXES = (".md", ".mdc", ".markdown", ".mdx")

_TITLE_SMALL_WORDS = frozenset(
    "a an the and or nor but of to in on at by for with from as vs via per und oder de da do "
    "das dos e y o".split())
_SENTENCE_END = tuple(".!?。！？…:;；")


def heading_style(text: str) -> bool:
    """Title Case, ALL CAPS, a trailing colon, or an uncased script: reads as a heading
    rather than a short rule ("Key Principles" vs "Never use any")."""
    t = strip_emphasis(text)
    if t.endswith((":", "：")):
        return True
    words = [w for w in re.split(r"[\s/]+", t) if w[:1].isalpha()]
    cased = [w for w in words if w[:1].lower() != w[:1].upper()]
    if not cased:
        return True
    return cased[0][:1].isupper() and all(
        w[:1].isupper() or w.lower() in _TITLE_SMALL_WORDS for w in cased[1:])


def _title_line(text: str) -> bool:
    return "\n" not in text.strip() and is_title_like(text) and heading_style(text)


def _title(text: str) -> str:
    return strip_emphasis(text).rstrip(":：").strip()


class PlainTextWalker(Walker):
    """``.cursorrules``-style files: no markdown structure, one rule per line or paragraph.

    A sentence line is a rule; a line that continues the previous one (no sentence end
    before it, or a lower-case start) stays with it, so hard-wrapped text is one rule. Title
    lines ("Key Principles", "ERROR HANDLING:") act as headings.
    """

    plain = True

    def _loose_paragraph(self, raw_lines: list[str], start: int, nxt_blk: list[Token] | None) -> bool:
        nxt_is_para = bool(nxt_blk) and nxt_blk[0].type == "paragraph_open"  # type: ignore[index]
        nxt_text = nxt_blk[1].content if nxt_blk and len(nxt_blk) > 1 else ""
        if len(raw_lines) == 1 and nxt_is_para and _title_line(raw_lines[0]) and not _title_line(nxt_text):
            self._plain_title(_title(raw_lines[0]), persist=True)
            return True
        groups: list[tuple[int, list[str]]] = []
        for i, ln in enumerate(raw_lines):
            nxt = raw_lines[i + 1] if i + 1 < len(raw_lines) else ""
            if _title_line(ln) and nxt and not _title_line(nxt) and not nxt[:1].islower():
                self._flush_groups(groups)
                groups = []
                self._plain_title(_title(ln), persist=True)
                continue
            prev = groups[-1][1][-1] if groups else ""
            if not groups or (prev.rstrip().endswith(_SENTENCE_END) and not ln[:1].islower()):
                groups.append((start + i, [ln]))
            else:
                groups[-1][1].append(ln)
        self._flush_groups(groups)
        return True

    def _flush_groups(self, groups: list[tuple[int, list[str]]]) -> None:
        for line, g in groups:
            text = "\n".join(g)
            self._emit("paragraph", line, text, hint=plain_of(text))

    def _plain_title(self, title: str | None, *, persist: bool = False) -> str | None:
        """A title followed by sentences starts a section that lasts until the next title
        (``persist``); a title introducing a list or table covers only that block and is
        returned to the caller. A title with nothing under it yet is kept and the new one
        nests under it, so its words are never lost."""
        if title is None:
            return None
        if self.pseudo_used:
            while self.stack and self.stack[-1][0] == PSEUDO_LEVEL:
                self._pop()
        if not persist:
            return title
        self._push(PSEUDO_LEVEL, title, self.cur_line)
        self.pseudo_used = False
        return None


# --------------------------------------------------------------------------- naming


# Leading emoji, bullets and task-list boxes say nothing in a name.
_NAME_NOISE = re.compile(r"^(?:\[[ xX]\]\s*|[^\w\[`(\"'<]+)+")


def first_words(text: str, budget: int) -> str:
    """``text`` cut at a word boundary to at most ``budget`` characters (… when cut)."""
    text = re.sub(r"\s+", " ", text).strip()
    text = _NAME_NOISE.sub("", text).strip()
    budget = max(budget, 12)
    if len(text) <= budget:
        return text.rstrip(":：").strip()
    cut = text[: budget - 1]
    space = cut.rfind(" ")
    if space >= budget * 0.4:
        cut = cut[:space]
    return cut.rstrip(" ,;:-—–(") + "…"


def path_label(section: list[str], levels: list[int]) -> str:
    """Heading path for names: a lone level-1 document title is dropped when deeper headings
    exist, and long paths keep only their last heading."""
    parts = list(section)
    if len(parts) > 1 and levels and levels[0] == 1:
        parts = parts[1:]
    label = " > ".join(p for p in parts if p)
    if len(label) > 48 and parts:
        label = first_words(parts[-1], 48)
    return label


_COMMENT_RE = re.compile(r"^\s*(?:#(?!!)|//|--|%%|;|<!--|/\*|rem\s)\s*(?P<text>.*?)\s*(?:-->|\*/)?\s*$", re.I)
_TREE_RE = re.compile(r"[├└│]──|^\s*[│├└]", re.M)
_PROMPT_RE = re.compile(r"^\s*(?:\$|>|PS [^>]*>|%)\s+")


def code_label(code: str, lang: str | None) -> str:
    """A short label for an unintroduced code block: its first comment, the first command of
    a shell block, "directory tree", or the language."""
    if _TREE_RE.search(code):
        return "directory tree"
    shell = (lang or "").lower() in ("bash", "sh", "shell", "zsh", "console", "powershell", "pwsh",
                                     "ps1", "cmd", "fish", "")
    for raw in code.split("\n"):
        if not raw.strip():
            continue
        m = _COMMENT_RE.match(raw)
        if m and m.group("text") and re.search(r"\w", m.group("text")):
            return first_words(m.group("text"), 48)
        if shell:
            return first_words(_PROMPT_RE.sub("", raw), 48)
        break
    return f"{lang} block" if lang else "code block"


class _Names:
    """Hands out names unique within one file: add the nearest heading, then a counter."""

    def __init__(self) -> None:
        self.used: set[str] = set()
        self.next_n: dict[str, int] = {}

    def claim(self, name: str, section: list[str]) -> str:
        name = self._pick(name, section)
        self.used.add(name.casefold())
        return name

    def _pick(self, name: str, section: list[str]) -> str:
        if name.casefold() not in self.used:
            return name
        if section and not name.startswith(section[-1]):
            candidate = first_words(f"{section[-1]}: {name}", MAX_NAME)
            if candidate.casefold() not in self.used:
                return candidate
        key = name.casefold()
        n = self.next_n.get(key, 2)
        while True:
            suffix = f" ({n})"
            candidate = first_words(name, MAX_NAME - len(suffix)) + suffix
            n += 1
            if candidate.casefold() not in self.used:
                self.next_n[key] = n
                return candidate


def _name_for(unit: Unit) -> str:
    """Explicit labels win; section prose, lists, steps and code take the heading path;
    single bullets, paragraphs and rows take the path plus their first words."""
    path = path_label(unit.section, unit.levels)
    if unit.label:
        if unit.kind == "code" and path:
            return first_words(f"{path}: {unit.label}", MAX_NAME)
        return first_words(unit.label, MAX_NAME)
    if unit.kind == "table" and unit.hint:
        return first_words(f"{path}: {unit.hint}" if path else unit.hint, MAX_NAME)
    if unit.kind in _BARE and unit.path_name and path:
        return first_words(path, MAX_NAME)
    hint = first_words(unit.hint, MAX_NAME - len(path) - 2) if unit.hint else ""
    if path and hint:
        return f"{path}: {hint}"
    return path or hint


_BARE = ("prose", "list", "steps", "code", "note")


def _disambiguate(units: list[Unit]) -> None:
    """Units that would all be named by the bare heading path get distinct labels.

    The block right under its heading (or else the section's prose, or else the first)
    keeps the heading name; every other code block is labelled by its first comment or
    command, every other list/step list by its first words. This is what keeps several
    command blocks under one heading from all being called after it.
    """
    groups: dict[tuple[str, ...], list[Unit]] = {}
    for u in units:
        if u.kind in _BARE and not u.label:
            groups.setdefault(tuple(u.section), []).append(u)
    for section, group in groups.items():
        if len(group) == 1 and section:
            continue
        owner = None
        if section:
            owner = next((u for u in group if u.after_heading), None) or next(
                (u for u in group if u.kind == "prose"), None) or group[0]
        for u in group:
            if u is owner:
                continue
            if u.kind == "code":
                u.label = code_label(u.code, u.lang)
            elif u.hint:
                u.path_name = False


# --------------------------------------------------------------------------- drafts


def _prose_and_comments(content: str) -> str:
    """The rule's prose plus comment lines of its code: what priority markers and hashtags
    are read from (a ``# NEVER …`` comment counts, ``NEVER`` as a string literal does not)."""
    if "```" not in content and "~~~" not in content and "\n    " not in content and "\t" not in content:
        return content
    out: list[str] = []
    lines = content.split("\n")
    code_spans: list[tuple[int, int]] = []
    for tok in MD.parse(content):
        if tok.type in ("fence", "code_block") and tok.map:
            code_spans.append((tok.map[0], tok.map[1]))
    in_code = [False] * len(lines)
    for a, b in code_spans:
        for i in range(a, min(b, len(lines))):
            in_code[i] = True
    for line, code in zip(lines, in_code, strict=False):
        if not code:
            out.append(line)
        elif _COMMENT_RE.match(line) and not line.lstrip().startswith(("```", "~~~")):
            out.append(line)
    return "\n".join(out)


def _draft(unit: Unit, file: MemoryFile, info: FrontmatterInfo, offset: int,
           important: set[int]) -> RuleDraft:
    name = _name_for(unit)
    content = unit.content.strip("\n")
    if unit.kind == "row":  # columns already said what is good, bad or why
        examples, rationale = {"good": [], "bad": []}, None
    else:
        examples, rationale = extract_examples(content)
    for key in ("good", "bad"):
        preset = list(unit.examples.get(key, []))
        examples[key] = preset + [x for x in examples[key] if x not in preset]
    rationale = unit.rationale or rationale
    if unit.kind == "note" and rationale is None and file.kind == "claude-memory":
        rationale = info.description
    prose = _prose_and_comments(content)
    marker_text = "\n".join(
        x for x in (unit.label or "", unit.lead_in or "", unit.marker_text or prose) if x)
    category = categorize(
        unit.section,
        kind=file.kind,
        rel=file.rel,
        text=f"{name}\n{prose}",
        code_lang=(unit.lang or "") if unit.kind == "code" else None,
        title_levels=unit.levels,
        file_type=info.type,
    )
    priority = score_priority(
        marker_text,
        heading_text=" ".join(unit.section),
        base=info.priority_base if info.priority_base is not None else 50,
        bonus=info.priority_bonus + (20 if unit.start in important else 0),
    )
    tags = [f"kind:{file.kind}"] + [t for t in info.tags if t != f"kind:{file.kind}"]
    tags += [t for t in hashtags(prose) if t not in tags]
    metadata: dict[str, Any] = dict(info.metadata)
    metadata["unit"] = unit.kind
    if unit.kind == "code":
        metadata["language"] = unit.lang or ""
    if unit.lead_in:
        metadata["lead_in"] = unit.lead_in
    if unit.columns:
        metadata["columns"] = unit.columns
    if unit.label_markdown:
        metadata["label_markdown"] = unit.label_markdown
    return RuleDraft(
        name=name,
        content=content,
        line=unit.start + 1 + offset,
        category=category,
        priority=priority,
        tags=tags,
        rationale=rationale,
        examples=examples,
        metadata=metadata,
        section=list(unit.section),
    )


def _is_plain(file: MemoryFile, tokens: list[Token]) -> bool:
    """Plain-text rule files (and markdown with no structure at all) split per line/paragraph."""
    name = PurePosixPath(file.rel.replace("\\", "/")).name.lower()
    if name in PLAIN_FILE_NAMES:
        return True
    if file.kind in ("cursorrules", "windsurf", "clinerules") and not name.endswith(_MARKDOWN_SUFFIXES):
        return True
    structure = {"heading_open", "bullet_list_open", "ordered_list_open", "fence", "table_open",
                 "blockquote_open"}
    return not any(t.type in structure for t in tokens)


def _single_note(tokens: list[Token]) -> bool:
    return sum(1 for t in tokens if t.type == "heading_open") <= 1


def _note_unit(body: str, info: FrontmatterInfo) -> list[Unit]:
    lines = body.split("\n")
    first = next((i for i, ln in enumerate(lines) if ln.strip()), 0)
    content = "\n".join(lines[first:]).strip()
    if not content:
        content = info.description or ""
    if not content:
        return []
    return [Unit(kind="note", start=first, content=content, section=[], levels=[],
                 label=info.name, hint=plain_of(content.split("\n", 1)[0]))]


def _parse(text: str, file: MemoryFile) -> ParsedFile:
    rel = file.rel
    fm = split_frontmatter(text, rel)
    warnings = list(fm.warnings)
    info = interpret(fm.data, file.kind)
    if fm.raw is not None:
        info.metadata["frontmatter_raw"] = fm.raw
    cleaned = clean_markup(fm.body)

    def warn(line: int, message: str) -> None:
        warnings.append(f"{rel}:{line + 1 + fm.line_offset}: {message}")

    for line, message in cleaned.warnings:
        warn(line, message)
    tokens = MD.parse(cleaned.text)
    if file.kind == "claude-memory" and info.name and _single_note(tokens):
        units = _note_unit(cleaned.text, info)
    else:
        walker_cls = PlainTextWalker if _is_plain(file, tokens) else Walker
        walker = walker_cls(cleaned.text.split("\n"), warn=warn,
                            scope_ends=[(a, b) for _, a, b in cleaned.wrappers])
        units = walker.run(tokens)
        if not units and file.kind == "claude-memory" and info.name:
            units = _note_unit("", info)
    _disambiguate(units)
    important = priority_wrapper_lines(cleaned.wrappers)
    names = _Names()
    rules: list[RuleDraft] = []
    for unit in units:
        if not unit.content.strip():
            continue
        draft = _draft(unit, file, info, fm.line_offset, important)
        draft.name = names.claim(draft.name or f"{PurePosixPath(rel).name} rule", draft.section)
        rules.append(draft)
    return ParsedFile(file=file, rules=rules, warnings=warnings)


def _fallback(text: str, file: MemoryFile, exc: BaseException) -> ParsedFile:
    """Last resort after an unexpected reader error: one rule per blank-line paragraph."""
    warnings = [f"{file.rel}:1: reader error ({type(exc).__name__}: {exc}); "
                "stored each paragraph as a plain rule"]
    rules: list[RuleDraft] = []
    names = _Names()
    try:
        para: list[str] = []
        start = 0
        for i, line in enumerate([*text.split("\n"), ""]):
            if line.strip():
                if not para:
                    start = i
                para.append(line)
                continue
            if para:
                content = "\n".join(para)
                name = names.claim(first_words(content, MAX_NAME) or "rule", [])
                rules.append(RuleDraft(name=name, content=content, line=start + 1,
                                       tags=[f"kind:{file.kind}"]))
                para = []
    except Exception:  # noqa: BLE001 - the fallback must not fail either
        pass
    return ParsedFile(file=file, rules=rules, warnings=warnings)


def parse_memory_text(text: str, file: MemoryFile) -> ParsedFile:
    """Parse one file's decoded, redacted text into rule drafts; never raises.

    ``text`` has "\\n" newlines and ``[REDACTED:<type>]`` markers (kept verbatim).
    Rule lines are 1-based lines of the original file (frontmatter included). Problems
    (broken frontmatter, unclosed fences or comments) are returned as warnings of the form
    ``"<file.rel>:<line>: <what happened>"``.
    """
    try:
        return _parse(text, file)
    except Exception as exc:  # noqa: BLE001 - one odd file must not stop an ingest run
        return _fallback(text, file, exc)
