"""What a guideline is *about*, in the grammatical shapes question templates need.

A developer asks "How do I start the backend?" (verb phrase), "What's the rule on
committing .env files?" (gerund), "Which command starts the backend?" (3rd person) or
"Any gotchas with the Node version?" (noun phrase). ``derive_topic`` reads the name first
(ingestion makes it from a bold label or heading) and the content's first sentence second,
and records the rule's polarity (ALWAYS / NEVER) and any named alternative ("NOT yarn
start") for the contrastive negatives.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property, lru_cache

from memtune.dataset import words
from memtune.dataset.grammar import (
    AMBIGUOUS_VERBS,
    CLEAR_VERBS,
    DETERMINERS,
    base_from_gerund,
    inflect,
    third_person_forms,
    is_codeish,
    starts_with_verb,
    with_article,
)
from memtune.dataset.keywords import PROGRAMS
from memtune.dataset.text import REDACTED_RE, plain, prose, sentences

CATEGORY_GROUPS = {
    "command": "command",
    "commands": "command",
    "gotcha": "gotcha",
    "environment": "gotcha",
    "lesson": "lesson",
    "pattern": "pattern",
    "architecture": "pattern",
    "api": "pattern",
    "database": "pattern",
    "code_style": "rule",
    "testing": "rule",
    "security": "rule",
    "workflow": "rule",
    "deployment": "rule",
    "context": "fact",
    "general": "fact",
}
CATEGORY_LABELS = {
    "architecture": "architecture",
    "pattern": "code pattern",
    "environment": "environment",
    "gotcha": "gotcha",
    "command": "command",
    "lesson": "lesson learned",
    "code_style": "code style",
    "testing": "testing",
    "security": "security",
    "workflow": "workflow",
    "context": "project context",
    "api": "API",
    "database": "database",
    "deployment": "deployment",
    "general": "general",
}

_MODAL_RE = re.compile(
    r"^(?:(?:important|critical|note|rule|tip|warning|gotcha)\s*[:!-]\s*)?"
    r"(always|never|must not|mustn't|must|do not|don't|dont|avoid|prefer|you must not|you must|"
    r"you should never|you should not|you should|should never|should not|shouldn't|should|"
    r"make sure to|make sure you|make sure|be sure to|remember to|ensure you|only ever|only)\b[\s,:]*",
    re.I,
)
_NEGATIVE_MODALS = ("never", "must not", "mustn't", "do not", "don't", "dont", "avoid", "you must not",
                    "you should never", "you should not", "should never", "should not", "shouldn't")
_GENERIC_NAMES = frozenset(
    "note notes rule rules tip tips important general misc other todo info reminder gotcha gotchas lesson "
    "lessons warning caveat caveats pattern patterns command commands context untitled summary overview "
    "critical guideline guidelines memory item example examples misc details".split()
)
_CUT_RE = re.compile(
    r"\s*(?::\s|;|\s[—–-]\s|\s\(|\.\s|,\s(?:so|and then|because|which|otherwise|or else)\b|"
    r"\s(?:because|so that|otherwise)\s)"
)
_SYMPTOM_RE = re.compile(
    r"\b(errors|fail(?:s|ed|ing|ure|ures)?|crash(?:es|ing)?|conflicts?|time(?:s|d)? ?out|timeouts?|not found|"
    r"undefined|denied|refused|mismatch(?:es)?|missing|broken|exceptions|hangs?|hanging|stale|"
    r"leaks?|flaky|in use|out of date|won't|doesn't|can't|cannot|not working|EADDRINUSE|ENOENT|ECONNREFUSED|"
    r"\d{3} (?:error|response))\b",
    re.I,
)
_TRAILING_RE = re.compile(r"[\s\d#:]+$")
_SITUATION_CUT_RE = re.compile(r"\s(?:before|after|when|whenever|unless|until|once|if)\s", re.I)
_TRUNCATED_RE = re.compile(r"(\.\.\.|…)\s*$")
_DANGLING_RE = re.compile(r"(\s+(?:the|a|an|in|of|to|and|or|for|with|on|at|by|from|into|is|are))+\s*$", re.I)
_EXPLICIT_RE = re.compile(r"\b(ALWAYS|NEVER|MUST|DO NOT|DON'T)\b")
_NEGATIVE_RE = re.compile(r"\b(NEVER|DO NOT|DON'T|MUST NOT)\b")
_FORBID_RE = re.compile(r"\b(?:NEVER|[Nn]ever|DON'T|[Dd]on't|DO NOT|[Dd]o not|MUST NOT|must not)\s+(.+)")
_STATE_RE = re.compile(r"\b(in use|not|n't|cannot|fails?|failed|missing|undefined|denied|refused)\b", re.I)
_NOT_SYMPTOM_SUFFIX = ("pattern", "handling", "convention", "strategy", "policy", "rule", "rules", "hint", "hints")
_SITUATION_RE = re.compile(
    r"\b(before|after|when|whenever|once|if)\s+((?:`[^`]+`|[\w/@'-]+(?:\.[\w/@'-]+)*)"
    r"(?:\s+(?:`[^`]+`|[\w/@'-]+(?:\.[\w/@'-]+)*)){1,7})",
    re.I,
)
_VAGUE_CLAUSE = frozenset("anything everything something that this it doing so then now ever possible needed "
                          "necessary any you we they".split())
_CLAUSE_VERBS = frozenset("say says matter matters is are need needs must should go goes live lives win wins "
                          "beat beats come comes belong belongs stay stays break breaks fail fails".split())
_PROPER = words.names_with("name")  # product names a Title Case heading keeps capitalised
_CODE_ALT_RE = re.compile(r"`[^`]+`|[\w.@/:+-]*[._/@:+-][\w.@/:+-]*")
_ALT_PATTERNS = (
    re.compile(r"\(\s*not\s+([^)]{2,60})\)", re.I),
    re.compile(r"\binstead of\s+(`[^`]+`|[\w.@/:+-]+)", re.I),
    re.compile(r"\brather than\s+(`[^`]+`|[\w.@/:+-]+)", re.I),
    re.compile(r"\b(?:never|don't|do not|avoid)\s+(?:use|using|run|running|call|calling)\s+(`[^`]+`)", re.I),
    re.compile(r"\bnot\s+(`[^`]+`)"),
    re.compile(r"\bprefer\b[^;\n]{0,80}?\bover\s+(`[^`]+`|[\w.@/:+-]+)", re.I),
)


@dataclass
class Topic:
    """A guideline's subject in the shapes the question templates use."""

    name: str  # cleaned name, as the note calls itself
    np: str  # noun phrase: "the Node version", "committing .env files"
    vp: str | None = None  # base verb phrase: "start the backend"
    polarity: str | None = None  # "do" (ALWAYS/MUST/imperative) | "dont" (NEVER/AVOID) | None
    explicit_modal: bool = False  # the text says ALWAYS/NEVER/MUST outright
    modal_on_vp: bool = False  # …about ``vp`` itself ("ALWAYS run nvm use 22 …")
    vp_from_name: bool = False  # the name is the instruction (else ``np`` is the name)
    symptom: str | None = None  # error-like phrase for "I'm getting … what's wrong?"
    situations: list[tuple[str, str]] = field(default_factory=list)  # ("before", "pushing to main")
    alternatives: list[str] = field(default_factory=list)  # "yarn start" from "(NOT yarn start)"
    forbidden: list[str] = field(default_factory=list)  # other NEVER'd actions: "run the backend in the foreground"
    code_only: bool = False  # the note is just a code block
    idents: list[str] = field(default_factory=list)  # key identifiers/commands, set by dataset.examples.prepare
    group: str = "fact"  # command | gotcha | lesson | pattern | rule | fact
    category_label: str = "general"

    @cached_property
    def ger(self) -> str | None:
        return inflect(self.vp, "ing") if self.vp else None

    @cached_property
    def vp3(self) -> str | None:
        return inflect(self.vp, "3rd") if self.vp else None

    @property
    def bare_np(self) -> str:
        """The noun phrase without a leading 'the' (for "What's our pattern for …")."""
        return self.np[4:] if self.np.startswith("the ") else self.np


def category_group(category: str | None) -> str:
    return CATEGORY_GROUPS.get((category or "general").lower(), "fact")


def category_label(category: str | None) -> str:
    return CATEGORY_LABELS.get((category or "general").lower(), "general")


@lru_cache(maxsize=4096)
def clean_name(name: str) -> str:
    """A stored name → the phrase a developer would use: no heading path, file hint or section prefix."""
    n = plain(REDACTED_RE.sub("", name or ""), keep_code=False)
    if " > " in n:
        n = n.rsplit(" > ", 1)[-1]
    n = re.sub(r"\s*\([^()]*[/\\.][^()]*\)\s*$", "", n)  # "(memtune/CLAUDE.md)"
    n = re.sub(r"(\.\.\.|…)\s*$", "", n).strip()
    m = re.match(r"^([^:]{2,40}):\s+(.{8,})$", n)
    if m and len(m.group(1).split()) <= 4:
        n = m.group(2)  # "Python Style: NEVER use print() …"
    m = re.match(r"^(?:IMPORTANT|NOTE|WARNING|CRITICAL|TIP):\s+(.{8,})$", n)
    if m:
        n = m.group(1)  # "Gotchas: IMPORTANT: memtune ingest is …"
    return n.strip(" \"'“”‘’:;,.-–—")


def _first_clause(text: str, max_words: int = 12) -> str:
    clause = _CUT_RE.split(text, maxsplit=1)[0].strip().rstrip(".!?,;:")
    return clause if len(clause.split()) <= max_words else ""


def _strip_modal(phrase: str) -> tuple[str, str | None, str]:
    """('Never commit .env files') → ('commit .env files', 'dont', 'never')."""
    m = _MODAL_RE.match(phrase)
    if not m:
        return phrase, None, ""
    modal = m.group(1).lower()
    rest = phrase[m.end():].strip()
    pol = "dont" if modal in _NEGATIVE_MODALS else "do"
    return rest, pol, modal


def _to_vp(phrase: str, *, after_modal: bool = False) -> str | None:
    """A phrase → base verb phrase with a lowercase verb, or None if it is not an instruction.

    After ALWAYS / NEVER / MUST the next word is a verb by grammar ("NEVER commit …");
    after AVOID it is a gerund ("avoid using var" → "use var").
    """
    words = phrase.split()
    if not words:
        return None
    first = words[0].strip("`'\"")
    if first.lower().endswith("ing"):
        base = base_from_gerund(first)
        if base:
            words = [base, *words[1:]]
        elif after_modal:
            return None
    ok = starts_with_verb(words) or (
        after_modal and words[0].isalpha() and words[0].lower() not in DETERMINERS | {"be", "i", "we", "you"}
    )
    if not ok:
        return None
    return " ".join([words[0].lower(), *words[1:]]).rstrip(".!?,;:")


def _has_proper_use(word: str, text: str) -> bool:
    """``word`` appears capitalised mid-sentence in ``text`` (evidence it is a name: Prisma, Estate)."""
    start = text.find(word)
    while start != -1:
        end = start + len(word)
        before = text[:start].rstrip(" \t")
        if (before and before[-1] not in ".!?\n" and (start > len(before) or text[start - 1] in "`'\"(")
                and (end == len(text) or not text[end].isalnum())):
            return True
        start = text.find(word, end)
    return False


def _casing(phrase: str, text: str) -> str:
    """Heading-style Title Case → natural case, keeping names, acronyms and code."""
    words = phrase.split()
    alpha = [w for w in words if w[:1].isalpha() and not is_codeish(w)]
    title_case = len(alpha) >= 2 and all(w[:1].isupper() for w in alpha if len(w) > 3)
    out = []
    for i, w in enumerate(words):
        if is_codeish(w) or not w[:1].isupper() or not w[1:].islower():
            out.append(w)  # code, already lowercase, ACRONYM or CamelCase
            continue
        proper = w.lower() in _PROPER or _has_proper_use(w, text)
        out.append(w if proper or not (title_case or i == 0) else w.lower())
    return " ".join(out)


def derive_topic(name: str, content: str, category: str | None) -> Topic:
    """Read a guideline's name and content into a :class:`Topic` (pure, deterministic)."""
    group = category_group(category)
    text = prose(content)
    flat = plain(text, keep_code=True)
    sents = [plain(s) for s in sentences(text)] if flat else []

    cname = clean_name(name)
    if _TRUNCATED_RE.search(name or "") and sents:
        # "Always check whether … exists in the…": the stored name was cut; the content has it whole
        head = " ".join(cname.split()[:4]).lower()
        for sent in sents[:2]:
            if head and clean_name(sent).lower().startswith(head):
                cname = _first_clause(clean_name(sent), 16) or cname
                break
        cname = _DANGLING_RE.sub("", cname)
    clause = _first_clause(cname, 14)
    if len(clause.split()) >= 2:
        cname = clause  # "Keep constraints.txt in sync: after adding …" → its first clause
    low = _TRAILING_RE.sub("", cname.lower())
    generic = len(cname) < 3 or low in _GENERIC_NAMES or low.rstrip("s") in _GENERIC_NAMES
    if generic and sents:
        cname = _first_clause(clean_name(sents[0]), 10) or cname
    if len(cname.split()) > 9:  # a long name is usually the rule's first sentence
        short = _first_clause(_SITUATION_CUT_RE.split(cname, maxsplit=1)[0], 12)
        cname = short if len(short.split()) >= 2 else _DANGLING_RE.sub("", " ".join(cname.split()[:9]))

    subject, polarity, modal = _strip_modal(cname)
    subject = _casing(subject, flat)
    sentence_like = len(subject.split()) >= 4 and plain(content).lower().startswith(subject.lower()[:24])
    if modal == "prefer":
        vp = f"prefer {subject}"
    else:
        vp = _to_vp(subject, after_modal=bool(modal) and modal != "only")
        if vp is None and sentence_like and subject.split()[0].lower() in AMBIGUOUS_VERBS:
            vp = _to_vp(subject, after_modal=True)
    vp_from_name = vp is not None
    if vp is None and polarity is None and sents:
        # The name is a noun phrase; the content's first sentence may say what to do.
        rest, pol0, modal0 = _strip_modal(_first_clause(sents[0], 10))
        vp0 = _to_vp(rest, after_modal=bool(modal0) and modal0 != "only")
        short_cmd = group == "command" and vp0 is not None and len(vp0.split()) <= 8 and "," not in vp0
        if vp0 and (pol0 or short_cmd):
            vp, polarity, modal = vp0, pol0 or "do", modal0
    elif polarity is None and vp is not None:
        polarity = "do"  # an imperative name: "Use pnpm", "Run migrations after pulling"
    modal_on_vp = bool(modal) and modal not in ("prefer", "only") and vp is not None
    explicit = modal_on_vp or bool(_EXPLICIT_RE.search(text))
    if polarity is None and explicit:
        polarity = "dont" if _NEGATIVE_RE.search(text) else "do"

    alternatives = _alternatives(flat, vp)
    if vp and modal == "prefer":
        vp, alt = _prefer_to_use(vp)
        if alt and alt not in alternatives:
            alternatives.insert(0, alt)
    if vp and polarity and vp_from_name:
        np = gerund_phrase(vp)
    else:  # a noun-phrase name stays the subject ("the Node version"), even when content gave a vp
        np = with_article(_noun_phrase(subject))
    symptom = None
    if group in ("gotcha", "lesson", "fact") and _SYMPTOM_RE.search(cname) and not vp_from_name:
        if not cname.lower().endswith(_NOT_SYMPTOM_SUFFIX):
            symptom = _casing(cname, flat)
            if _STATE_RE.search(symptom):  # an error message, not a thing: no article, quoted
                np = f'"{symptom}"'
    return Topic(
        name=cname or name,
        np=np,
        vp=vp,
        polarity=polarity,
        explicit_modal=explicit,
        modal_on_vp=modal_on_vp,
        vp_from_name=vp_from_name,
        symptom=symptom,
        situations=_situations(sents),
        alternatives=alternatives[:3],
        forbidden=_forbidden(sents, vp if polarity == "dont" else None, vp),
        code_only=not flat.strip(),
        group=group,
        category_label=category_label(category),
    )


def _forbidden(sents: list[str], own: str | None, vp: str | None) -> list[str]:
    """Actions a NEVER / DON'T sentence forbids ("NEVER run it in the foreground" →
    "run the backend in the foreground", the pronoun resolved to the topic's object)."""
    obj = vp.split(" ", 1)[1] if vp and " " in vp else None
    out: list[str] = []
    for s in sents:
        for m in _FORBID_RE.finditer(s):
            action = _to_vp(_first_clause(m.group(1), 10), after_modal=True)
            if not action or len(action.split()) < 2 or action.split()[0] not in CLEAR_VERBS | AMBIGUOUS_VERBS:
                continue
            words = action.split()
            if any(w.lower() in ("it", "them", "this", "that") for w in words[1:]):
                if not obj:
                    continue
                words = [obj if w.lower() in ("it", "them", "this", "that") else w for w in words]
                action = " ".join(words)
            if action != own and action not in out:
                out.append(action)
    return out[:2]


def _noun_phrase(subject: str) -> str:
    """'No Timed Assertions' → 'timed assertions'; 'Docstrings Say Why' → 'docstrings';
    'The HTTP server binds to 127.0.0.1' → 'the HTTP server'."""
    words = subject.split()
    if len(words) >= 2 and words[0].lower() == "no":
        words = words[1:]
    verbs3 = third_person_forms() if len(words) >= 4 else frozenset()
    for i in range(1, len(words)):
        low = words[i].lower()
        if low in _CLAUSE_VERBS or (i >= 2 and low in verbs3 and words[i - 1].lower() not in DETERMINERS):
            words = words[:i]
            break
    return " ".join(words) if words else "this"


def gerund_phrase(vp: str) -> str:
    return inflect(vp, "ing")


def _prefer_to_use(vp: str) -> tuple[str, str | None]:
    """'prefer pathlib.Path over os.path for file paths' → ('use pathlib.Path for file paths', 'os.path')."""
    m = re.match(r"prefer\s+(.+?)\s+(?:over|to|instead of|rather than)\s+(`[^`]+`|\S+)(.*)$", vp, re.I)
    if not m:
        obj = vp.split(" ", 1)[1] if " " in vp else vp
        return (obj if _to_vp(obj) else f"use {obj}"), None
    obj, alt, rest = m.group(1), m.group(2), m.group(3)
    use = obj if _to_vp(obj) else f"use {obj}"
    return f"{use}{rest}".strip(), alt


def _situations(sents: list[str]) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for s in sents:
        for m in _SITUATION_RE.finditer(s):
            word, clause = m.group(1).lower(), m.group(2).strip(" .,;:")
            clause = re.split(r"\s(?:and|or|then|so|but|because|to)\s", clause)[0].strip(" .,;:")
            first = clause.split()[0].lower() if clause.split() else ""
            if len(clause.split()) < 2 or first in _VAGUE_CLAUSE or REDACTED_RE.search(clause):
                continue
            out.append((word, clause))
            if len(out) == 3:
                return out
    return out


def _alternatives(flat: str, vp: str | None) -> list[str]:
    """Named wrong choices ('(NOT yarn start)', 'instead of `npm`'), for contrastive questions."""
    out: list[str] = []
    for pat in _ALT_PATTERNS:
        for m in pat.finditer(flat):
            alt = m.group(1).strip(" .,;:")
            if not alt or REDACTED_RE.search(alt) or len(alt.split()) > 6:
                continue
            if pat is not _ALT_PATTERNS[0] and not (_CODE_ALT_RE.fullmatch(alt) or alt.lower() in PROGRAMS):
                continue  # only code-like alternatives outside "(NOT …)"
            if vp and alt.strip("`").lower() in vp.lower():
                continue
            if alt not in out:
                out.append(alt)
    return out
