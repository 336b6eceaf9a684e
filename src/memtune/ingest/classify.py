"""Decide what a rule is about and how much it matters, from words people actually write.

Pure functions over text, so they are cheap to test:

* :func:`categorize` — category from the heading path, the file (kind and name) and, as a
  last resort, the rule's own words.
* :func:`score_priority` — priority 0..100 from marker words (scheme documented there).
* :func:`extract_examples` — good/bad examples and a rationale from labelled lines
  (✅/❌, ``Good:``/``Bad:``, ``Wrong approach:``/``Rule:``, ``Why:`` …) and the code blocks
  that directly follow such labels.
* :func:`is_structural` / :func:`is_emphasis` — whether a leading label is part of the rule
  before it ("Why:", "Problem:") or mere emphasis ("IMPORTANT:"), never a rule's name.
* :func:`table_roles` / :func:`table_row` — whether a table lists rules, and one row as a rule.

Keyword tables are data, not code: add a language or a synonym by adding a string.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache

from markdown_it import MarkdownIt

from memtune.ingest.mdtokens import strip_emphasis

# --------------------------------------------------------------------------- categories

#: Every category the readers emit. ``general`` is the fallback.
CATEGORIES = (
    "command",
    "gotcha",
    "lesson",
    "security",
    "testing",
    "database",
    "deployment",
    "api",
    "code_style",
    "workflow",
    "pattern",
    "architecture",
    "environment",
    "performance",
    "context",
    "general",
)

# Heading keywords per category, in precedence order: when one heading matches several
# categories the earlier one wins ("Environment Gotchas" is a gotcha, "Architecture
# Patterns" a pattern, "Critical Commands" a command). Latin entries are regex stems matched
# at a word start (so "test" also matches "Testing"); entries containing CJK characters are
# matched as substrings because those scripts have no spaces.
HEADING_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("command", (
        r"commands?\b", r"cmds?\b", r"cli\b", r"scripts?\b", r"cheat ?sheets?", r"shortcuts?\b",
        r"befehle?\b", r"kommandos?\b", r"comandos?\b", r"commandes?\b", r"scripts? úteis",
        "命令", "指令", "コマンド", "脚本",
    )),
    ("gotcha", (
        r"gotchas?\b", r"pitfalls?\b", r"caveats?\b", r"quirks?\b", r"traps?\b", r"known issues?",
        r"troubleshoot", r"common (?:issues|mistakes|errors|problems)", r"watch out", r"footguns?",
        r"warnings?\b", r"stolperfall", r"fallstrick", r"armadilhas?", r"pegadinhas?",
        r"cuidados?\b", r"problemas comunes", r"problemas comuns", r"trampas?\b",
        "注意事项", "踩坑", "陷阱", "坑", "落とし穴", "注意点", "ハマり", "ハマりどころ",
    )),
    ("lesson", (
        r"lessons?\b", r"learn(?:ed|t|ings?)\b", r"retro", r"post-?mortems?", r"insights?\b",
        r"takeaways?\b", r"mistakes\b", r"session (?:log|notes)", r"journal", r"lektion",
        r"erkenntnis", r"gelernt", r"lições", r"lição", r"aprendid", r"aprendizado",
        r"lecciones", "经验", "教训", "心得", "教訓", "学び",
    )),
    ("security", (
        r"secur", r"secrets?\b", r"auth", r"credentials?\b", r"passwords?\b", r"permissions?\b",
        r"access control", r"privacy", r"sicherheit", r"segurança", r"seguridad", r"autentica",
        "安全", "认证", "权限", "セキュリティ", "認証",
    )),
    ("testing", (
        r"test", r"specs?\b", r"qa\b", r"coverage", r"e2e\b", r"pruebas?\b", r"testes?\b",
        "测试", "テスト",
    )),
    ("database", (
        r"databases?\b", r"db\b", r"sql", r"schemas?\b", r"migrations?\b", r"prisma", r"postgres",
        r"mysql", r"sqlite", r"mongo", r"orm\b", r"datenbank", r"banco de dados",
        r"base de datos", "数据库", "データベース",
    )),
    ("deployment", (
        r"deploy", r"releas", r"ci\b", r"ci/cd", r"pipelines?\b", r"docker", r"kubernetes",
        r"k8s\b", r"infra", r"hosting", r"production\b", r"bereitstellung", r"implantação",
        r"despliegue", "部署", "发布", "デプロイ",
    )),
    ("api", (
        r"apis?\b", r"endpoints?\b", r"graphql", r"rest\b", r"grpc", r"resolvers?\b", r"webhooks?\b",
        r"schnittstelle", "接口", "エンドポイント",
    )),
    ("code_style", (
        r"code ?style", r"style\b", r"coding (?:style|standards?|guidelines?|conventions?)", r"style ?guide",
        r"formatting", r"format\b", r"lint", r"naming", r"conventions?\b", r"typing\b",
        r"type hints?", r"codestil", r"konvention", r"estilo", r"convenç", r"convenci",
        r"nomenclatura", "代码风格", "规范", "命名", "コーディング規約", "命名規則", "スタイル",
    )),
    ("workflow", (
        r"workflows?\b", r"process\b", r"git\b", r"commits?\b", r"branch", r"pull requests?",
        r"prs?\b", r"code reviews?", r"reviews?\b", r"collaborat", r"communicat", r"planning",
        r"how (?:we|to) work", r"arbeitsablauf", r"fluxo de trabalho", r"flujo de trabajo",
        "工作流", "流程", "ワークフロー", "作業手順",
    )),
    ("pattern", (
        r"patterns?\b", r"best practices?", r"idioms?\b", r"practices\b", r"muster\b",
        r"padr(?:ão|ões)", r"patr(?:ón|ones)", "模式", "最佳实践", "パターン",
    )),
    ("architecture", (
        r"architect", r"design\b", r"structure", r"system\b", r"components?\b", r"modules?\b",
        r"layout", r"data ?flow", r"tech(?:nology)? stack", r"stack\b", r"architektur",
        r"arquitet", r"arquitect", "架构", "结构", "アーキテクチャ", "構成",
    )),
    ("environment", (
        r"environment", r"env\b", r"setup\b", r"set up\b", r"install", r"dependenc", r"versions?\b",
        r"tooling", r"tools?\b", r"config", r"runtime", r"local dev", r"prerequisites?",
        r"umgebung", r"ambiente", r"entorno", r"einrichtung", "环境", "環境", "依赖", "安装",
    )),
    ("performance", (
        r"performance", r"perf\b", r"optimi[sz]", r"caching", r"latency", r"leistung",
        r"desempenho", r"rendimiento", "性能", "パフォーマンス",
    )),
    ("context", (
        r"context", r"overview", r"about\b", r"background", r"project (?:brief|description|goals?)",
        r"product\b", r"goals?\b", r"status\b", r"progress", r"current (?:state|focus|work)",
        r"kontext", r"contexto", r"überblick", r"visão geral", "背景", "概要", "概述", "现状",
    )),
)

# Headings that make a section's code blocks commands even though its prose is not
# ("Setup", "Build", "Getting started"): used only for code blocks.
COMMAND_SECTION_WEAK = (
    r"setup\b", r"set up\b", r"build", r"install", r"running\b", r"run\b", r"usage\b",
    r"getting started", r"quick ?start", r"how to", r"develop", r"ausführen", r"executar",
    "安装", "构建", "运行", "セットアップ", "ビルド",
)

# Fence languages whose blocks are shell commands.
SHELL_LANGS = frozenset(
    "bash sh shell zsh fish console terminal shell-session sh-session powershell pwsh ps1 ps "
    "cmd bat batch nu nushell".split()
)

# Last resort when no heading says anything: strong words in the rule itself.
CONTENT_KEYWORDS: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("security", (r"secrets?\b", r"passwords?\b", r"api keys?", r"credentials?\b", r"\.env\b",
                  r"tokens?\b", r"\[REDACTED:", r"xss\b", r"csrf\b", r"injection")),
    ("testing", (r"pytest", r"jest\b", r"vitest", r"unit tests?", r"e2e\b", r"test suite",
                 r"tests?\b", r"playwright", r"cypress")),
    ("database", (r"migrations?\b", r"sql\b", r"database", r"prisma", r"postgres", r"schema\b")),
    ("deployment", (r"deploy", r"docker", r"kubernetes", r"helm\b", r"ci pipeline")),
    ("workflow", (r"git\b", r"commits?\b", r"push(?:ed|ing)?\b", r"branch", r"pull requests?", r"\bprs?\b", r"changelog")),
    ("code_style", (r"naming", r"camelcase", r"snake_case", r"pascalcase", r"indent", r"lint",
                    r"formatt", r"type hints?", r"docstrings?", r"\bany\b type")),
)

# Claude Code memory ``type:`` → category.
CLAUDE_MEMORY_TYPES = {"feedback": "lesson", "user": "context", "project": "context",
                       "reference": "context"}

# Cline memory-bank file stem (lower-cased) → category.
MEMORY_BANK_FILES = {
    "systempatterns": "pattern",
    "techcontext": "environment",
    "productcontext": "context",
    "projectbrief": "context",
    "activecontext": "context",
    "progress": "context",
}

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")


def _compile(words: Iterable[str]) -> re.Pattern[str]:
    parts = []
    for w in words:
        parts.append(w if _CJK.search(w) else r"(?<![\w])" + w)
    return re.compile("|".join(parts), re.IGNORECASE)


_HEADING_RES = [(cat, _compile(words)) for cat, words in HEADING_KEYWORDS]
_CONTENT_RES = [(cat, _compile(words)) for cat, words in CONTENT_KEYWORDS]
_WEAK_COMMAND_RE = _compile(COMMAND_SECTION_WEAK)


def heading_category(heading: str) -> str | None:
    """Category one heading names, or None. Precedence follows HEADING_KEYWORDS order."""
    for cat, rx in _HEADING_RES:
        if rx.search(heading):
            return cat
    return None


def is_command_section(section: Sequence[str]) -> bool:
    """True when a heading in the path says its code blocks are commands."""
    return any(heading_category(h) == "command" or _WEAK_COMMAND_RE.search(h) for h in section)


def _file_category(kind: str, rel: str, file_type: str | None) -> str | None:
    if kind == "claude-memory" and file_type:
        return CLAUDE_MEMORY_TYPES.get(file_type.strip().lower())
    stem = rel.replace("\\", "/").rsplit("/", 1)[-1].split(".", 1)[0].lower()
    stem = stem.replace("-", "").replace("_", "")
    if kind == "memory-bank" or stem in MEMORY_BANK_FILES:
        return MEMORY_BANK_FILES.get(stem)
    return None


def categorize(
    section: Sequence[str],
    *,
    kind: str,
    rel: str = "",
    text: str = "",
    code_lang: str | None = None,
    title_levels: Sequence[int] = (),
    file_type: str | None = None,
) -> str:
    """Pick the category of one rule.

    Order: a shell code block (or any code block under a commands heading) is ``command``;
    then the headings of the path (level-1 document titles skipped), where the category with
    the highest precedence wins ("Environment Gotchas > Node Version" is a gotcha, "Critical
    Commands > Database" a command); then the file itself
    (memory-bank file name, Claude memory ``type``); then level-1 titles; then strong words in
    the rule text; else ``general``. ``title_levels`` gives the heading level of each
    ``section`` entry (0 for pseudo-headings) when known.
    """
    levels = list(title_levels) + [2] * (len(section) - len(title_levels))
    if code_lang is not None:
        lang = code_lang.lower()
        if lang in SHELL_LANGS or (lang in ("", "text", "txt") and is_command_section(section)):
            return "command"
        if is_command_section(section) and lang not in ("mermaid", "json", "yaml", "yml"):
            return "command"
    titles: list[str] = []
    found: list[str] = []
    for heading, level in zip(section, levels, strict=False):
        if level == 1:
            titles.append(heading)
            continue
        cat = heading_category(heading)
        if cat:
            found.append(cat)
    if found:
        return min(found, key=CATEGORIES.index)
    cat = _file_category(kind, rel, file_type)
    if cat:
        return cat
    for heading in titles:
        cat = heading_category(heading)
        if cat and cat != "context":  # "# Project Context" titles say little about one rule
            return cat
    for cat, rx in _CONTENT_RES:
        if rx.search(text):
            return cat
    return "general"


# --------------------------------------------------------------------------- priority

# (weight, pattern, case_sensitive). Upper-case shouting counts more than the same word in
# lower case; emoji and non-Latin markers count as shouting.
_RAISE: tuple[tuple[int, str, bool], ...] = (
    (30, r"\bCRITICAL\b|🚨|‼️|\bNEVER EVER\b|\bKRITISCH\b|\bCRÍTICO\b", True),
    (20, r"\bNEVER\b|\bALWAYS\b|\bMUST(?: NOT)?\b|\bDO NOT\b|\bDON'?T\b|\bIMPORTANT\b|"
         r"\bREQUIRED\b|\bMANDATORY\b|\bSHALL NOT\b|⚠️|⚠|⛔|\[!(?:IMPORTANT|WARNING|CAUTION)\]|"
         r"\bNIEMALS\b|\bIMMER\b|\bMUSS\b|\bWICHTIG\b|\bNUNCA\b|\bSEMPRE\b|\bSIEMPRE\b|"
         r"\bIMPORTANTE\b|\bOBRIGATÓRIO\b|必须|禁止|务必|绝对不要|永远不要|重要|絶対|必ず|"
         r"してはいけない|してはならない", True),
    (10, r"\b(?:never|always|must|do not|don't|required|important|critical|mandatory|"
         r"niemals|immer|nunca|sempre|siempre)\b|不要|不得|不能|しないこと|しない", False),
)
_LOWER = re.compile(
    r"\b(?:prefer|preferably|preferred|consider|optional|optionally|if possible|"
    r"where possible|when possible|nice[- ]to[- ]have|try to|ideally|could)\b|"
    r"\b(?:vorzugsweise|möglichst|de preferência|preferiblemente|opcional)\b|"
    r"尽量|建议|可选|できれば|推奨",
    re.IGNORECASE,
)
_RAISE_RES = [(w, re.compile(p, 0 if cs else re.IGNORECASE)) for w, p, cs in _RAISE]
# Heading words that make every rule under them weigh more ("Critical Commands"); "Do and
# Don't" headings are labels, not emphasis, so negations are left out here.
_HEADING_RAISE = re.compile(
    r"\b(?:critical|important|never|always|must|required|mandatory|wichtig|niemals|nunca|"
    r"sempre|siempre|obrigatório)\b|🚨|⚠️|‼️|必须|重要|禁止|絶対|必ず",
    re.IGNORECASE,
)

DEFAULT_PRIORITY = 50


def _raise_markers(text: str) -> list[int]:
    """Weights of distinct raising markers found in ``text``."""
    found: dict[str, int] = {}
    for weight, rx in _RAISE_RES:
        for m in rx.finditer(text):
            key = re.sub(r"[\[\]!\s]", "", m.group(0).upper())  # "[!IMPORTANT]" is IMPORTANT
            found[key] = max(found.get(key, 0), weight)
    return sorted(found.values(), reverse=True)


def score_priority(
    text: str,
    *,
    heading_text: str = "",
    base: int = DEFAULT_PRIORITY,
    bonus: int = 0,
) -> int:
    """Priority of a rule, clamped to 0..100.

    Scheme:

    * start at ``base`` (50, or an integer ``priority:`` from frontmatter);
    * the strongest marker in the rule text adds its weight: +30 for CRITICAL / 🚨 / ‼️;
      +20 for upper-case NEVER, ALWAYS, MUST, DO NOT, DON'T, IMPORTANT, REQUIRED, ⚠️, GitHub
      ``[!IMPORTANT]`` callouts and their German/Portuguese/Spanish/Chinese/Japanese
      equivalents (NIEMALS, NUNCA, 必须, 禁止, 絶対 …); +10 for the same words in lower case;
    * each further distinct marker adds +5, at most +10 in total;
    * a marker in the heading path ("Critical Commands", "⚠️ Gotchas") adds +10 once;
    * ``bonus`` carries file-level signals (``alwaysApply: true`` / ``trigger: always_on``
      +10, ``trigger: manual`` −10, an ``<important>`` wrapper +20);
    * softeners (prefer, consider, optional, if possible, try to, ideally …) subtract 15,
      but only when the rule text has no raising marker — "prefer X, NEVER Y" stays high.
    """
    weights = _raise_markers(text)
    score = base + bonus
    if weights:
        score += weights[0] + min(10, 5 * (len(weights) - 1))
    elif _LOWER.search(text):
        score -= 15
    if heading_text and _HEADING_RAISE.search(heading_text):
        score += 10
    return max(0, min(100, score))


# --------------------------------------------------------------------------- examples

_GOOD_EMOJI = "✅|✔️|✔|☑️|👍|🟢|💚"
_BAD_EMOJI = "❌|✗|✘|✖️|✖|🚫|👎|⛔|🔴|🛑"
_GOOD_LABELS = (
    r"good(?: example| approach| practice)?|do(?: this)?|correct(?: approach| way)?|right(?: way)?|"
    r"better|preferred|instead|use|rule|the rule|fix|richtig|gut|correto|correcto|bom|bien|"
    r"正确|推荐|良い例|正しい"
)
_BAD_LABELS = (
    r"bad(?: example| approach| practice)?|don'?t(?: do this)?|do not|wrong(?: approach| way)?|"
    r"incorrect|avoid|anti-?pattern|worse|never|falsch|schlecht|errado|incorrecto|mal|"
    r"错误|避免|悪い例|間違い"
)
_WHY_LABELS = r"why|reason|rationale|because|warum|grund|porque|motivo|razão|原因|理由|为什么|なぜ"
_B = r"(?:\*\*|__)?"
_LABEL_RE = re.compile(
    rf"^\s*(?:[-*+]\s+)?(?P<emoji>{_GOOD_EMOJI}|{_BAD_EMOJI})?\s*{_B}\s*"
    rf"(?P<label>{_GOOD_LABELS}|{_BAD_LABELS}|{_WHY_LABELS})\s*{_B}\s*[:：]\s*{_B}\s*(?P<rest>.*)$",
    re.IGNORECASE,
)
_EMOJI_RE = re.compile(rf"^\s*(?:[-*+]\s+)?(?P<emoji>{_GOOD_EMOJI}|{_BAD_EMOJI})\s*(?P<rest>.*)$")
_BECAUSE_START_RE = re.compile(r"^\s*(?:\*\*|__)?because\b\s*(?P<rest>.+)$", re.IGNORECASE)
_BECAUSE_INLINE_RE = re.compile(r"(?:[,;(—–-]\s*|\s)(?P<clause>because\b[^.!?\n]*)", re.IGNORECASE)
_GOOD_RX = re.compile(rf"^(?:{_GOOD_LABELS})$", re.IGNORECASE)
_WHY_RX = re.compile(rf"^(?:{_WHY_LABELS})$", re.IGNORECASE)
_BAD_EMOJI_RX = re.compile(_BAD_EMOJI)
_ANY_LABEL_RE = re.compile(
    rf"{_GOOD_EMOJI}|{_BAD_EMOJI}|because|(?:{_GOOD_LABELS}|{_BAD_LABELS}|{_WHY_LABELS})\s*(?:\*\*|__)?\s*[:：]",
    re.IGNORECASE,
)


def _polarity(emoji: str | None, label: str | None) -> str:
    """'good', 'bad' or 'why' for a matched label (the emoji wins over the word)."""
    if emoji:
        return "bad" if _BAD_EMOJI_RX.fullmatch(emoji) else "good"
    assert label is not None
    if _WHY_RX.match(label):
        return "why"
    return "good" if _GOOD_RX.match(label) else "bad"


@lru_cache(maxsize=1)
def _md() -> MarkdownIt:
    return MarkdownIt("commonmark").enable("table")


def classify_label_line(line: str) -> tuple[str, str] | None:
    """('good'|'bad'|'why', rest) when a line starts with an example/rationale label."""
    m = _LABEL_RE.match(line)
    if m:
        kind = _polarity(m.group("emoji"), m.group("label"))
        rest = m.group("rest").strip()
        rest = re.sub(r"^(?:\*\*|__)\s*", "", rest).strip()
        return kind, rest
    m = _EMOJI_RE.match(line)
    if m and m.group("rest").strip():
        return _polarity(m.group("emoji"), None), m.group("rest").strip()
    if m:
        return _polarity(m.group("emoji"), None), ""
    m = _BECAUSE_START_RE.match(line)
    if m:
        return "why", strip_emphasis(line)
    return None


def extract_examples(content: str) -> tuple[dict[str, list[str]], str | None]:
    """Good/bad examples and a rationale found in a rule's markdown ``content``.

    A labelled line gives the text after its label; a label with nothing after it gives the
    code block that directly follows (fence, language and body kept). Without an explicit
    ``Why:``-style line, a "… because …" clause in the first paragraph is the rationale.
    """
    examples: dict[str, list[str]] = {"good": [], "bad": []}
    if not _ANY_LABEL_RE.search(content):  # fast path: most rules have no labels at all
        return examples, None
    why: list[str] = []
    pending: str | None = None
    first_inline: str | None = None
    for tok in _md().parse(content):
        if tok.type == "inline":
            if first_inline is None:
                first_inline = tok.content
            pending = None
            for line in tok.content.split("\n"):
                hit = classify_label_line(line)
                if hit is None:
                    continue
                kind, rest = hit
                if kind == "why":
                    if rest:
                        why.append(rest)
                elif rest:
                    examples[kind].append(rest)
                else:
                    pending = kind
        elif tok.type in ("fence", "code_block"):
            if pending in ("good", "bad"):
                fence = tok.markup or "```"
                body = tok.content if tok.content.endswith("\n") or not tok.content else tok.content + "\n"
                examples[pending].append(f"{fence}{tok.info}\n{body}{fence}" if tok.type == "fence" else body.rstrip("\n"))
            elif pending == "why":
                why.append(tok.content.strip())
            pending = None
    rationale = "\n".join(w for w in why if w) or None
    if rationale is None and first_inline:
        m = _BECAUSE_INLINE_RE.search(re.sub(r"\s*\n\s*", " ", first_inline))
        if m:
            rationale = m.group("clause").strip().rstrip(",;:)").strip() or None
    return examples, rationale


# Labels that describe a part of a rule rather than name one ("**Why:**", "Problem:"): an
# item starting with one belongs to the rule before it.
STRUCTURAL_LABELS = frozenset(
    "example examples problem issue symptom symptoms cause root-cause solution fix workaround "
    "resolution result outcome status context details why how when where impact error lesson "
    "takeaway rule good bad do don't dont correct wrong avoid instead reason rationale because "
    "pros cons before after usage answer question q a".split()
) | {"root cause", "how to apply", "wrong approach", "right approach", "correct approach",
     "bad example", "good example", "do not", "e.g.", "the rule"}
# Labels that only add emphasis ("**Important**:", "NOTE:"): the item is a rule of its own,
# but the label is no name for it.
EMPHASIS_LABELS = frozenset(
    "note notes nb important warning warnings caution tip tips hint info todo fixme update "
    "critical attention reminder remember heads-up".split()
) | {"key insight", "heads up", "pro tip"}


def is_emphasis(label: str) -> bool:
    return label.strip().lower().rstrip(":!") in EMPHASIS_LABELS


def is_structural(label: str | None, first_line: str) -> bool:
    """True when a bullet/paragraph opens with a part-of-a-rule label (Why:, Problem:, ✅ …)
    rather than a name: such items belong to the rule before them."""
    if label is not None and label.strip().lower().rstrip(":") in STRUCTURAL_LABELS:
        return True
    if classify_label_line(first_line) is not None:
        return True
    m = re.match(r"^\s*([A-Za-z][A-Za-z' ]{0,20})\s*[:：]", first_line)
    return bool(m and m.group(1).strip().lower() in STRUCTURAL_LABELS)


# --------------------------------------------------------------------------- tags

_HASHTAG_RE = re.compile(r"(?:(?<=\s)|^)#([A-Za-z][\w-]{1,40})\b")
_INLINE_CODE_RE = re.compile(r"(`+).*?\1", re.DOTALL)


def hashtags(prose: str) -> list[str]:
    """``#tags`` written in prose (not in code spans), lower-cased, in order, unique."""
    text = _INLINE_CODE_RE.sub(" ", prose)
    seen: list[str] = []
    for m in _HASHTAG_RE.finditer(text):
        tag = m.group(1).lower().rstrip("-")
        if tag not in seen:
            seen.append(tag)
    return seen


# --------------------------------------------------------------------------- tables

# Header words → column role. A table is a list of rules when any column names a rule, a
# command, a do/don't pair or a problem; otherwise (Service | Port | URL) it is reference data
# and stays one rule.
_COLUMN_ROLES: tuple[tuple[str, str], ...] = (
    ("command", r"commands?|cmd|scripts?|befehl|comando|命令|コマンド"),
    ("good", r"do'?s?|good|correct|right|prefer(?:red)?|recommended|instead|✅|richtig|correto|正确|良い"),
    ("bad", r"don'?t'?s?|do not|avoid|bad|wrong|incorrect|never|anti-?patterns?|❌|falsch|errado|错误|悪い"),
    ("why", r"why|rationale|reasons?|because|motivation|grund|motivo|原因|理由"),
    ("name", r"rules?|guidelines?|conventions?|patterns?|gotchas?|pitfalls?|issues?|problems?|symptoms?|"
             r"errors?|mistakes?|lessons?|principles?|practices?|policy|policies|standards?|regel|regra|"
             r"regla|规则|ルール"),
    ("desc", r"descriptions?|details?|explanations?|meaning|purpose|what(?: it does)?|does|notes?|"
             r"solutions?|fix(?:es)?|workarounds?|usage|when|how|action|effect|beschreibung|descrição|"
             r"descripción|说明|描述|説明"),
)
_COLUMN_RES = [(role, re.compile(rf"^(?:{rx})$", re.IGNORECASE)) for role, rx in _COLUMN_ROLES]


def table_roles(headers: Sequence[str]) -> list[str] | None:
    """Role of each column ("name", "command", "desc", "good", "bad", "why", "other"), or None
    when the table is reference data rather than a list of rules."""
    roles = []
    for h in headers:
        key = re.sub(r"[^\w'✅❌ ]+", " ", h).strip().lower()
        role = next((r for r, rx in _COLUMN_RES if rx.match(key)), "other")
        roles.append(role)
    if any(r in ("name", "command", "good", "bad") for r in roles):
        return roles
    return None


@dataclass
class TableRow:
    """One row of a rule table, read by its columns' roles."""

    content: str
    label_source: str | None
    good: list[str] = field(default_factory=list)
    bad: list[str] = field(default_factory=list)
    rationale: str | None = None


def table_row(headers: Sequence[str], roles: Sequence[str], cells: Sequence[str]) -> TableRow | None:
    """A row as a rule: ``Header: cell`` lines, Do/Don't cells as examples, Why as rationale,
    named by its rule/name cell, else by a command's purpose, else by the command itself.
    None for an empty row."""
    parts: list[str] = []
    by_role: dict[str, list[str]] = {}
    for k, cell in enumerate(cells):
        if not cell.strip():
            continue
        header = headers[k] if k < len(headers) else ""
        parts.append(f"{header}: {cell}" if header else cell)
        by_role.setdefault(roles[k] if k < len(roles) else "other", []).append(cell)
    if not parts:
        return None
    first = {role: values[0] for role, values in by_role.items()}
    command = first.get("command")
    label = first.get("name") or (first.get("desc") if command else None) or command
    return TableRow(content="\n".join(parts), label_source=label, good=by_role.get("good", []),
                    bad=by_role.get("bad", []), rationale="\n".join(by_role.get("why", [])) or None)


def split_row(line: str) -> list[str]:
    """Cells of a raw table row: ``|`` splits unless escaped (GFM: even inside code spans)."""
    cells: list[str] = []
    buf: list[str] = []
    i = 0
    text = line.strip()
    if text.startswith("|"):
        text = text[1:]
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            buf.append(text[i:i + 2])
            i += 2
            continue
        if ch == "|":
            cells.append("".join(buf).strip())
            buf = []
        else:
            buf.append(ch)
        i += 1
    tail = "".join(buf).strip()
    if tail:
        cells.append(tail)
    return cells
