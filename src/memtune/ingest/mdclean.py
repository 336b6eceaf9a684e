"""Drop HTML comments and XML-style prompt wrappers outside code, keeping the line count.

Agents' files wrap rules in ``<rules>…</rules>`` or ``<important>`` tags and leave
``<!-- … -->`` notes; the markdown walker should see the markdown inside, and line
numbers must still point into the original file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from markdown_it.token import Token

from memtune.ingest.mdtokens import MD

# Standard HTML element names: these are kept as written; any other tag standing alone on a
# line (or wrapping text on one line) is treated as an agent-prompt wrapper and removed.
HTML_TAGS = frozenset(
    "a abbr address article aside audio b bdi bdo blockquote body br button canvas caption cite "
    "code col colgroup data dd del details dfn dialog div dl dt em embed fieldset figcaption "
    "figure footer form h1 h2 h3 h4 h5 h6 head header hr html i iframe img input ins kbd label "
    "legend li link main map mark meta meter nav noscript object ol optgroup option output p "
    "param picture pre progress q rp rt ruby s samp script section select small source span "
    "strong style sub summary sup svg table tbody td template textarea tfoot th thead time "
    "title tr track u ul var video wbr center font".split()
)
_TAG = r"(?:[a-z][a-z0-9_-]*|[A-Z][A-Z0-9_-]*)"
_LINE_TAGS_RE = re.compile(rf"^\s{{0,3}}((?:</?{_TAG}(?:\s[^<>]*)?/?>\s*)+)$")
_ONE_TAG_RE = re.compile(rf"<(/?)({_TAG})(?:\s[^<>]*)?(/?)>")
_PRIORITY_WRAPPERS = re.compile(r"important|critical|must|required|warning|caution|never|always",
                                re.IGNORECASE)

# --------------------------------------------------------------------------- cleaning


@dataclass
class Cleaned:
    """Body text after comment/wrapper removal (same number of lines as the input)."""

    text: str
    wrappers: list[tuple[str, int, int]] = field(default_factory=list)  # name, first, end (0-based)
    warnings: list[tuple[int, str]] = field(default_factory=list)  # 0-based line, message


def code_line_mask(tokens: list[Token], n_lines: int) -> list[bool]:
    """True for every line that belongs to a fenced or indented code block."""
    mask = [False] * n_lines
    for tok in tokens:
        if tok.type in ("fence", "code_block") and tok.map:
            for i in range(tok.map[0], min(tok.map[1], n_lines)):
                mask[i] = True
    return mask


def _in_code_span(line_prefix: str) -> bool:
    return line_prefix.count("`") % 2 == 1


def _strip_comments(run: str, first_line: int, warnings: list[tuple[int, str]]) -> str:
    """Remove ``<!-- … -->`` from a run of non-code lines, keeping its newlines."""
    out: list[str] = []
    pos = 0
    while True:
        start = run.find("<!--", pos)
        if start < 0:
            out.append(run[pos:])
            break
        line_start = run.rfind("\n", 0, start) + 1
        if _in_code_span(run[line_start:start]):
            out.append(run[pos:start + 4])
            pos = start + 4
            continue
        end = run.find("-->", start + 4)
        out.append(run[pos:start])
        if end < 0:
            lineno = first_line + run.count("\n", 0, start)
            warnings.append((lineno, "HTML comment '<!--' is never closed; kept the text after it"))
            # No '-->' follows, so every later opener in this run is unclosed as well.
            out.append(_unclosed_tail(run[start + 4:]))
            break
        out.append("\n" * run.count("\n", start, end))
        pos = end + 3
    return "".join(out)


def _unclosed_tail(rest: str) -> str:
    """Text after an unclosed ``<!--``: further openers go too, unless inside a code span."""
    lines = rest.split("\n")
    return "\n".join(
        ln if "`" in ln else ln.replace("<!--", "") for ln in lines
    )


def _strip_wrappers(lines: list[str], code: list[bool], wrappers: list[tuple[str, int, int]]) -> None:
    """Blank lines that are only wrapper tags; unwrap ``<x>text</x>`` on one line."""
    stack: list[tuple[str, int]] = []
    for i, line in enumerate(lines):
        if code[i] or "<" not in line:
            continue
        m = _LINE_TAGS_RE.match(line)
        if m:
            tags = list(_ONE_TAG_RE.finditer(m.group(1)))
            if tags and all(t.group(2).lower() not in HTML_TAGS for t in tags):
                for t in tags:
                    name = t.group(2).lower()
                    if t.group(3):
                        continue
                    if t.group(1):
                        for j in range(len(stack) - 1, -1, -1):
                            if stack[j][0] == name:
                                wrappers.append((name, stack[j][1], i + 1))
                                del stack[j:]
                                break
                    else:
                        stack.append((name, i))
                lines[i] = ""
                continue

        def unwrap(match: re.Match[str], line: str = line, i: int = i) -> str:
            name = match.group(2)
            if name.lower() in HTML_TAGS or _in_code_span(line[:match.start()]):
                return match.group(0)
            if match.group(1) == "" and not re.search(rf"</{re.escape(name)}\s*>", line[match.end():]):
                return match.group(0)
            if match.group(1) == "/" and not re.search(rf"<{re.escape(name)}[\s>]", line[:match.start()]):
                return match.group(0)
            if match.group(1) == "":
                wrappers.append((name.lower(), i, i + 1))
            return ""

        lines[i] = _ONE_TAG_RE.sub(unwrap, line)
    for name, first in stack:
        wrappers.append((name, first, len(lines)))


def _clean_once(lines: list[str], code: list[bool], warnings: list[tuple[int, str]],
                wrappers: list[tuple[str, int, int]]) -> list[str]:
    out = list(lines)
    i = 0
    while i < len(out):
        if code[i]:
            i += 1
            continue
        j = i
        while j < len(out) and not code[j]:
            j += 1
        run = "\n".join(out[i:j])
        if "<!--" in run:
            out[i:j] = _strip_comments(run, i, warnings).split("\n")
        i = j
    _strip_wrappers(out, code, wrappers)
    return out


def clean_markup(text: str) -> Cleaned:
    """Drop HTML comments and wrapper tags outside code; line count is preserved.

    Code regions come from markdown-it itself. Removing a wrapper can reveal a code block
    that the wrapper's HTML block used to hide, so the result is re-parsed and any line that
    turned out to be code gets its original text back.
    """
    if "<" not in text:
        return Cleaned(text)
    lines = text.split("\n")
    warnings: list[tuple[int, str]] = []
    wrappers: list[tuple[str, int, int]] = []
    code = code_line_mask(MD.parse(text), len(lines))
    new = _clean_once(lines, code, warnings, wrappers)
    if new == lines:
        return Cleaned(text, wrappers, warnings)
    code2 = code_line_mask(MD.parse("\n".join(new)), len(new))
    for i, is_code in enumerate(code2):
        if is_code and not code[i]:
            new[i] = lines[i]
        elif new[i] != lines[i]:
            new[i] = new[i].rstrip()
    return Cleaned("\n".join(new), wrappers, warnings)


def priority_wrapper_lines(wrappers: list[tuple[str, int, int]]) -> set[int]:
    """Lines (0-based) inside ``<important>``-like wrappers (spans merged first, so many
    nested or unclosed wrappers cost no more than the lines they cover)."""
    spans = sorted((a, b) for name, a, b in wrappers if _PRIORITY_WRAPPERS.search(name))
    lines: set[int] = set()
    covered = 0
    for first, end in spans:
        first = max(first, covered)
        if end > first:
            lines.update(range(first, end))
            covered = end
    return lines


# --------------------------------------------------------------------------- plain-text files
