"""Expected keywords for probes: the concrete tokens an answer must contain to be right.

Keyword recall only measures knowledge if the keywords are the specific, checkable parts
of a guideline — commands, flags, identifiers, paths, versions — not words any fluent
answer would contain. Every keyword is a literal substring of the guideline's content
(so every positive training answer contains it), never a stopword, never a redaction.
"""

from __future__ import annotations

import re
from functools import lru_cache

from memtune.dataset import words
from memtune.dataset.grammar import third_person_forms
from memtune.dataset.text import REDACTED_RE, split_blocks

STOPWORDS = frozenset(
    """
    a about above after again against all also always am an and any are as at be because been before being
    below between both but by can cannot could did do does doing don done down during each either else ever
    every few first for from further get gets got had has have having he her here hers him his how however i
    if in into is it its itself just least less let like make makes many may me might more most much must my
    need needs never no nor not now of off often on once one only or other our ours out over own per please
    rather really same see set shall she should since so some such than that the their them then there these
    they this those though through thus to too under until up upon us use used uses using very via was we
    well were what when where whether which while who whom why will with within without would yet you your
    yours ok okay instead sure first last new old run runs make thing things way ways stuff important
    critical note project code file files always never rule rules team work works working example e.g i.e
    etc something anything everything nothing someone anyone correct correctly right wrong good bad better
    best really actually already still even just simply directly
    """.split()
)
PROGRAMS = words.names_with("program")  # "npm …", "git …": a phrase starting with one is a command
_FLAG_RE = re.compile(r"(?<![\w-])--[a-zA-Z][\w-]*(?:=[\w.:/-]+)?")
_PATH_RE = re.compile(
    r"(?<![\w@/$])(?:~?\.{0,2}/)?(?:[\w.-]+/)+[\w.*-]+/?|"
    r"(?<![\w/])\.?[\w-]+\.(?:json|ya?ml|toml|md|mdc|ts|tsx|js|jsx|mjs|cjs|py|prisma|sql|env|sh|lock|cfg|"
    r"ini|txt|rb|go|rs|java|kt|swift|css|scss|html|graphql|gql|proto|tf|xml|gradle|csproj)\b|"
    r"(?<![\w/])\.env(?:\.[\w-]+)?\b"
)
_CAMEL_RE = re.compile(r"\b(?:[a-z]+[A-Z][\w]*|[A-Z][a-z0-9]+[A-Z][\w]*)\b")
_SNAKE_RE = re.compile(r"\b[a-zA-Z][a-zA-Z0-9]*_[a-zA-Z0-9_]+\b")
_DECORATOR_RE = re.compile(r"(?:(?<=\s)|(?<=^)|(?<=[(`]))@[a-zA-Z][\w.]*", re.M)
_URL_RE = re.compile(r"\b[a-z][\w+.-]*://[^\s`'\")\]]+")
_HOST_RE = re.compile(r"@?([\w-]+(?:\.[\w-]+)+(?::\d+)?|localhost:\d+|(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?)")
_SCI_RE = re.compile(r"(?<![\w.-])\d+(?:\.\d+)?(?:e-?\d+|[KMBkmb])\b")
_COUNT_RE = re.compile(r"(?<![\w.-])(\d+(?:\.\d+)?)\s([a-z]{3,}s)\b")
_VERSIONED_RE = re.compile(
    r"\b(?:[A-Z][a-zA-Z.+#]*|port|version|v|node|python|java|go)\s?v?\d+(?:\.\d+)*(?:\+|\.x)?\b"
)
_UNIT_RE = re.compile(
    r"\b\d+(?:\.\d+)?\s?(?:ms|s|sec|secs|seconds?|minutes?|mins?|hours?|hrs?|h|days?|weeks?|MB|GB|KB|TB|"
    r"MiB|GiB|KiB|%|px|rem|em|x|rps|req/s|chars?|characters|lines?|tokens?|retries|attempts|workers|threads)\b"
)
_PROPER_RE = re.compile(r"(?<=[a-z,;(] )[A-Z][a-zA-Z0-9+#.]*[a-zA-Z0-9+#](?:\s[A-Z][a-zA-Z0-9]+)?")
_PAIRED = {"(": ")", "[": "]", "{": "}"}
_WORD_RE = re.compile(r"\b[a-zA-Z][a-zA-Z-]{4,}[a-zA-Z]\b")
_SPAN_RE = re.compile(r"`([^`\n]+)`")


_LOWER_WORD_RE = re.compile(r"(?<![\w/.-])([a-z][\w.-]*)")
_CMD_TAIL_RE = re.compile(r"\s+([a-z][\w:.-]*)(?:\s+(?:[a-z][\w:-]*|\d+(?:\.\d+)*))?")
_DIGIT_RE = re.compile(r"\d")
_BIGRAM_WORD_RE = re.compile(r"(?<![\w/.-])[A-Za-z][a-z]+(?:-[a-z]+)*(?![\w/.-])")
_QUOTED_RE = re.compile(r"[\"“]([^\"”\n`]{3,40})[\"”]")
_DECIMAL_RE = re.compile(r"(?<![\w.-])\d+\.\d+(?![\w.-]|\.\d)")
_GENERIC_CAPS = frozenset("pattern patterns rule rules convention conventions guide guideline guidelines note notes "
                          "setup section overview usage example examples config tip tips gotcha gotchas lesson "
                          "lessons command commands workflow step steps add use run".split())
_EMPHASIS_RE = re.compile(r"(?<![\w`/.-])[A-Z]{3,}(?![\w`/-]|\.\w)")
_MODAL_CAPS = frozenset("ALWAYS NEVER MUST NOT DON'T IMPORTANT CRITICAL NOTE WARNING TODO FIXME AND THE FOR "
                        "YOU SHOULD ONLY".split())
_CASE_CHANGE_RE = re.compile(r"[a-z][A-Z]")


_PROSE_VERBS = frozenset("needs uses has is does makes runs gets takes works keeps was will can must may "
                         "might could would should lives comes goes reads writes sees the a an to in on for "
                         "and or of with it this that into from as at by be are".split())


@lru_cache(maxsize=16384)
def norm(keyword: str) -> str:
    """How evaluation compares keywords: case-, whitespace- and backtick-insensitive."""
    return "".join(keyword.replace("`", "").lower().split())


def _command_parts(segment: str) -> list[tuple[str, int]]:
    """A shell segment → its program+subcommand ('npm install') and distinctive pieces."""
    seg = segment.strip().lstrip("$> ").strip()
    if not seg or seg.startswith(("#", "//", "[", "\\.", "{", "}", "(", ")")):
        return []
    toks = seg.split()
    while toks and re.match(r"^[A-Z_][A-Z0-9_]*=", toks[0]):
        toks = toks[1:]  # leading env assignments
    if toks and toks[0] in ("sudo", "exec", "time", "nohup", "env"):
        toks = toks[1:]
    if not toks:
        return []
    prog = toks[0]
    out: list[tuple[str, int]] = []
    known = prog in PROGRAMS or prog.split("/")[-1] in PROGRAMS
    if len(toks) >= 2 and re.match(r"^[a-z][\w:.-]*$", toks[1]) and not toks[1].startswith("-"):
        head = f"{prog} {toks[1]}"
        if len(toks) >= 3 and re.match(r"^(?:[\w.:-]{1,12})$", toks[2]) and not toks[2].startswith("-") and (
            toks[1] in ("use", "run", "exec", "migrate", "db", "compose", "prisma", "install", "add", "test")
        ):
            head = f"{head} {toks[2]}"
        out.append((head, 9 if known else 6))
    elif known and len(toks) == 1:
        out.append((prog, 5))
    return out


def _code_candidates(code: str) -> list[tuple[str, int]]:
    out: list[tuple[str, int]] = []
    for line in code.splitlines():
        line = re.sub(r"\s#\s.*$", "", line).strip()
        if not line or line.startswith(("#", "//", "--")):
            continue
        for seg in re.split(r"\s*(?:&&|\|\||;|\|(?!\|))\s*", line):
            out.extend(_command_parts(seg))
    return out


def extract_keywords(content: str, *, limit: int = 5, minimum: int = 2) -> list[str]:
    """2–5 specific keywords from a guideline's content, most specific first (deterministic)."""
    text = REDACTED_RE.sub("\x00", content or "")
    cands: list[tuple[int, int, str]] = []  # (-score, position, keyword)

    def add(kw: str, score: int, pos: int, *, emphasis: bool = False) -> None:
        kw = _trim(kw)
        if len(kw) < 2 or "\x00" in kw or "REDACTED" in kw.upper() or (kw.lower() in STOPWORDS and not emphasis):
            return
        if len(kw) > 40:
            return
        cands.append((-score, pos, kw))

    offset = 0
    for block in split_blocks(text):
        pos = text.find(block.text[:30], offset) if block.text else offset
        pos = max(pos, 0)
        offset = pos
        if block.kind == "code":
            for kw, score in _code_candidates(block.text):
                add(kw, score, pos)
            body = block.text
        else:
            body = block.text
            for m in _SPAN_RE.finditer(body):
                span = m.group(1).strip()
                if len(span.split()) <= 5 and len(span) <= 40 and not _URL_RE.search(span):
                    add(span, 10, pos + m.start())
                else:
                    for kw, score in _code_candidates(span):
                        add(kw, score + 1, pos + m.start())
        if block.kind == "text":  # commands written inline without backticks: "run yarn start"
            unspanned = _SPAN_RE.sub(lambda m: " " * len(m.group(0)), body) if "`" in body else body
            for m in _LOWER_WORD_RE.finditer(unspanned):
                if m.group(1) not in PROGRAMS:
                    continue
                tail = _CMD_TAIL_RE.match(unspanned, m.end())
                if not tail or tail.group(1) in _PROSE_VERBS:
                    continue
                for kw, score in _command_parts(m.group(1) + tail.group(0)):
                    add(kw, score - 1, pos + m.start())
        if "://" in body:
            for m in _URL_RE.finditer(body):  # a URL: its host[:port] is the memorable part
                host = _HOST_RE.search(m.group(0).split("://", 1)[1].rsplit("@", 1)[-1])
                if host:
                    add(host.group(1), 7, pos + m.start())
            body = _URL_RE.sub(lambda m: " " * len(m.group(0)), body)
        has_digit = _DIGIT_RE.search(body) is not None
        for rx, score in ((_FLAG_RE, 8), (_PATH_RE, 7), (_CAMEL_RE, 7), (_SNAKE_RE, 7), (_DECORATOR_RE, 6),
                          (_VERSIONED_RE, 6), (_UNIT_RE, 6), (_SCI_RE, 6)):
            if not _worth(rx, body, has_digit):
                continue
            for m in rx.finditer(body):
                kw = m.group(0)
                if rx is _VERSIONED_RE and kw.split()[0].lower() in STOPWORDS:
                    continue
                if rx is _PATH_RE:
                    kw = _path_keyword(kw)
                    if not kw:
                        continue
                add(kw, score, pos + m.start())
        for m in _COUNT_RE.finditer(body) if has_digit else ():
            if re.search(r"[A-Z][\w.+#]*\s$", body[max(0, m.start() - 16):m.start()]):
                continue  # "Node 18 breaks": the number is a version, taken above
            if m.group(2) not in STOPWORDS and m.group(2) not in third_person_forms():
                add(m.group(0), 5, pos + m.start())
        if block.kind == "text":
            for m in _PROPER_RE.finditer(body):
                if len(m.group(0)) >= 3 and m.group(0).split()[0].lower() not in _GENERIC_CAPS:
                    add(m.group(0), 4, pos + m.start())
            for m in _EMPHASIS_RE.finditer(body):  # "registered FIRST … LAST", "add it to BOTH"
                if m.group(0) not in _MODAL_CAPS:
                    add(m.group(0), 4, pos + m.start(), emphasis=True)
    prose_text = "\n".join(b.text for b in split_blocks(text) if b.kind == "text")
    for phrase, first in _repeated_bigrams(prose_text):  # "custom resolvers" said twice is what it is about
        add(phrase, 5, first)
    for m in _QUOTED_RE.finditer(prose_text):  # a quoted example: ("Add probe scoring")
        if 1 <= len(m.group(1).split()) <= 4:
            add(m.group(1), 5, m.start())
    for m in _DECIMAL_RE.finditer(prose_text) if _DIGIT_RE.search(prose_text) else ():
        add(m.group(0), 4, m.start())
    chosen = _pick(cands, limit)
    if len(chosen) < minimum:
        words = []
        for m in _WORD_RE.finditer(" ".join(b.text for b in split_blocks(text) if b.kind == "text")):
            w = m.group(0)
            if w.lower() not in STOPWORDS:
                words.append((-(2 + min(len(w), 12) // 4), m.start() + 10_000, w))
        chosen = _pick(cands + words, max(minimum, len(chosen)))
    return chosen


def _repeated_bigrams(text: str) -> list[tuple[str, int]]:
    """Two-word phrases (no stopwords) that the note uses more than once, first occurrence first."""
    words = [(m.group(0), m.start()) for m in _BIGRAM_WORD_RE.finditer(text)]
    seen: dict[str, tuple[str, int, int]] = {}
    for (a, pa), (b, pb) in zip(words, words[1:]):
        if pb != pa + len(a) + 1 or text[pa + len(a)] != " ":
            continue  # only words written next to each other
        if a.lower() in STOPWORDS or b.lower() in STOPWORDS or len(a) < 3 or len(b) < 3:
            continue
        key = f"{a.lower()} {b.lower()}"
        phrase, pos, n = seen.get(key, (f"{a} {b}", pa, 0))
        seen[key] = (phrase, pos, n + 1)
    return [(phrase, pos) for phrase, pos, n in seen.values() if n >= 2]


def _worth(rx: re.Pattern[str], body: str, has_digit: bool) -> bool:
    """Cheap pre-checks so typical prose skips the regexes that cannot match it."""
    if rx is _FLAG_RE:
        return "--" in body
    if rx is _SNAKE_RE:
        return "_" in body
    if rx is _DECORATOR_RE:
        return "@" in body
    if rx is _CAMEL_RE:
        return _CASE_CHANGE_RE.search(body) is not None
    if rx is _PATH_RE:
        return "/" in body or "." in body
    if rx in (_UNIT_RE, _SCI_RE, _VERSIONED_RE):
        return has_digit
    return True


def _trim(kw: str) -> str:
    """Strip surrounding punctuation, keeping dotfiles (.venv) and brackets that belong (memtune[postgres])."""
    kw = kw.strip(" \t\"'").rstrip(".,;:!?")
    kw = re.sub(r"^[.,;:!?]+(?![\w/])", "", kw)
    while kw and kw[-1] in ")]}" and kw.count(kw[-1]) > kw.count({")": "(", "]": "[", "}": "{"}[kw[-1]]):
        kw = kw[:-1].rstrip(" .,;:")
    while kw and kw[0] in "([{" and kw.count(kw[0]) > kw.count(_PAIRED[kw[0]]):
        kw = kw[1:].lstrip()
    return kw


def _path_keyword(kw: str) -> str | None:
    """A path-looking match → a path worth remembering (not 'tokens/s'); long paths → their tail."""
    last = kw.rstrip("/").rsplit("/", 1)[-1]
    real = kw.startswith(("/", "~", "./", "../", ".")) or kw.endswith("/") or "." in last or kw.count("/") >= 2
    if "/" in kw and not real:
        return None
    if len(kw) > 40:
        return last if len(last) >= 4 else None
    return kw


def _overlaps(a: str, na: str, b: str, nb: str) -> bool:
    """One keyword adds nothing over another: contained in it, unless both are multi-word
    commands that differ by a real word ('make test' vs 'make test-fast')."""
    (short, ns), (long_, nl) = ((a, na), (b, nb)) if len(na) <= len(nb) else ((b, nb), (a, na))
    if ns not in nl:
        return False
    if " " in short.strip() and " " in long_.strip():
        extra = nl.replace(ns, "", 1)
        return not re.search(r"[a-z0-9]{2,}", extra)
    return True


def _pick(cands: list[tuple[int, int, str]], limit: int) -> list[str]:
    out: list[str] = []
    seen: list[tuple[str, str]] = []
    for _score, _pos, kw in sorted(cands):
        n = norm(kw)
        if not n or any(_overlaps(kw, n, s, sn) for s, sn in seen):
            continue
        seen.append((kw, n))
        out.append(kw)
        if len(out) >= limit:
            break
    return out
