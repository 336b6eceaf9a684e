"""Reading a note's clauses: values in them, instruction vs statement, verbs and nouns.

The grammar behind fact questions (``facts.py``), kept apart so the question frames stay
readable. No parser: word lists and a few rules cover how notes are written, and anything
these helpers cannot read cleanly makes the caller ask nothing rather than something wrong.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from memtune.dataset import words
from memtune.dataset.grammar import (
    AMBIGUOUS_VERBS,
    CLEAR_VERBS,
    looks_plural,
    past_participle,
    past_tense,
    starts_with_verb,
    third_person_forms,
)
from memtune.dataset.keywords import PROGRAMS
from memtune.dataset.text import REDACTED_RE, prose, sentences, strip_inline

CODE_RE = re.compile(r"`([^`\n]+)`")
NUM_RE = re.compile(r"(?<![\w.\-/`])\d+(?:\.\d+)?(?:[eE][-+]?\d+)?(?![\w\-/`]|\.\d)")  # 3.11, 1e-3
CLAUSE_SPLIT_RE = re.compile(r";\s+|:\s+|\s+[—–]\s+")
TAIL_CUT_RE = re.compile(r",\s|\s\(|\s+because\b|\s+so\s+|\s+or\s+|\s+[—–]\s|\s+and\s+")
PREPS = frozenset("with in on under to from at into by for via as using inside through onto within over per "
                  "across behind between outside".split())
AUX = frozenset("is are was were".split())
MODALS = frozenset("must should can cannot will may might".split())
DETS = frozenset("the a an".split())
LEAD_ADVERBS = frozenset("always only first also just then".split())
NEGATIONS = frozenset("never don't dont not avoid".split())
NOT_HEADS = PREPS | AUX | MODALS | DETS | LEAD_ADVERBS | NEGATIONS | frozenset(
    "and or but not of than that this these those its their our your every each all any some no like "
    "directly default set called named".split()
)
# Verbs notes use in statements ("The worker listens on …") beyond the instruction verbs.
STATEMENT_VERBS = words.word_list("verbs", "statement")
PARTICIPLES = frozenset(past_participle(v) for v in words.word_list("verbs", "participle"))
# Unions used on every word, built once.
INSTRUCTION_VERBS = CLEAR_VERBS | AMBIGUOUS_VERBS
KNOWN_VERBS = INSTRUCTION_VERBS | STATEMENT_VERBS
PLURAL_VERBS = CLEAR_VERBS | STATEMENT_VERBS
NOT_HEAD_OR_PREP = NOT_HEADS | PREPS
DET_OR_PREP = DETS | PREPS
# Irregular past forms a lesson reports with ("the conversion took 17 seconds"); regular -ed
# forms are left out: "Tests marked slow …" reads the same as a past tense.
PAST_FORMS = {past_tense(v): v for v in sorted(words.word_list("verbs", "past_tense"))}
PRONOUNS = frozenset("it they this that these those he she we you i".split())
SUBORDINATE = frozenset("after before when whenever if unless until so that because while once".split())
RELATIVE = frozenset("that which who".split())
QUANTIFIERS = frozenset("every each all any no".split()) | DETS


# --- clauses -------------------------------------------------------------------------------


def split_clauses(body: str) -> list[tuple[str, str | None]]:
    """(clause, the subject of the clause before it) pairs; "run them with X" borrows that subject."""
    out: list[tuple[str, str | None]] = []
    for sent in sentences(prose(body)):
        sent = strip_markup(sent).strip().rstrip(".!:")  # "… from the repo root:" before a code block
        previous: str | None = None
        for part in CLAUSE_SPLIT_RE.split(sent):
            part = part.strip()
            if len(part.split()) < 2 or REDACTED_RE.search(part):
                continue  # never ask about (or next to) a redacted secret
            for piece in split_coordination(part):
                out.append((piece, previous))
                parsed = parse_clause(piece.split())
                if parsed and parsed[0] == "statement":
                    previous = parsed[1]
    return out


def strip_markup(text: str) -> str:
    """Bold, links and HTML gone; code spans kept verbatim (``gauge.<id>.reading`` is no tag)."""
    spans: list[str] = []

    def keep(m: re.Match[str]) -> str:
        spans.append(m.group(0))
        return f"\x00{len(spans) - 1}\x00"

    out = strip_inline(CODE_RE.sub(keep, text), keep_code=True)
    return re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], out)


def split_coordination(clause: str) -> list[str]:
    """"Migrations live in X and are applied with Y" → both halves, each with the subject."""
    words = clause.split()
    parsed = parse_clause(words)
    if not parsed or parsed[0] != "statement":
        return [clause]
    subject = parsed[1]
    for i in range(parsed[2] + 1, len(words) - 1):
        if words[i] == "and" and is_finite(words[i + 1].lower(), subject.split()):
            return [" ".join(words[:i]), " ".join([*subject.split(), *words[i + 1:]])]
    return [clause]


def find_values(clause: str, keywords: tuple[str, ...] | list[str] = ()) -> list[tuple[str, int, int]]:
    """The values in a clause: code spans, numbers, env vars and plain-word keywords, in order,
    outside parentheses."""
    found: list[tuple[str, int, int]] = []
    for m in CODE_RE.finditer(clause):
        found.append((m.group(1), m.start(), m.end()))
    taken = [(s, e) for _, s, e in found]

    def add(m: re.Match[str] | Span) -> None:
        if not any(s <= m.start() < e or m.start() <= s < m.end() for s, e in taken):
            found.append((m.group(0), m.start(), m.end()))
            taken.append((m.start(), m.end()))

    for m in NUM_RE.finditer(clause):
        add(m)
    for m in re.finditer(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b", clause):  # ENV_VARS written without backticks
        add(m)
    for kw in keywords:
        if (" " in kw or not kw[:1].isalpha() or "`" in kw or kw.lower().endswith(("ed", "ing", "ly"))
                or (kw.isalpha() and kw.isupper())):  # "BOTH", "NOT": emphasis, not a value
            continue
        start = find_word(clause, kw)
        if start >= 0 and standalone(clause, start, start + len(kw)):
            add(Span(kw, start, start + len(kw)))
    found.sort(key=lambda k: k[1])
    return [(k, s, e) for k, s, e in found if clause[:s].count("(") <= clause[:s].count(")")]


@dataclass(frozen=True)
class Span:
    """A keyword found with str.find: the part of re.Match that find_values uses."""

    text: str
    begin: int
    stop: int

    def group(self, _: int = 0) -> str:
        return self.text

    def start(self) -> int:
        return self.begin

    def end(self) -> int:
        return self.stop


def find_word(text: str, word: str) -> int:
    """First position of ``word`` not glued to code or a longer word (a regex per keyword,
    compiled for each note, cost more than the rest of the fact questions together)."""
    pos = text.find(word)
    while pos >= 0:
        before = text[pos - 1] if pos else ""
        after = text[pos + len(word)] if pos + len(word) < len(text) else ""
        if not (before and (before.isalnum() or before in "_`.-")) and not (
                after and (after.isalnum() or after in "_`-")):
            return pos
        pos = text.find(word, pos + 1)
    return -1


def standalone(clause: str, start: int, end: int) -> bool:
    """A plain word is a value only as a noun phrase's head: "in millimetres", "over gRPC",
    not "the gRPC stubs" or "the forecast API" (there it only names a thing)."""
    before = clause[:start].split()[-1:]
    after = clause[end:].split()[:1]
    if after and re.fullmatch(r"[A-Za-z][\w-]*", after[0]) and after[0].lower() not in NOT_HEAD_OR_PREP:
        return False
    word = clause[start:end]
    if before and before[0].lower() in PREPS:
        return True
    named = bool(re.search(r"[A-Z\d]", word))
    return named and not (before and before[0].isalpha() and is_modifier(before[0]))


# --- grammar -------------------------------------------------------------------------------


def verb_base(word: str) -> str | None:
    """listens → listen, publishes → publish, applies → apply (verbs memtune knows only)."""
    w = word.lower()
    known = KNOWN_VERBS
    for cand in (w[:-3] + "y" if w.endswith("ies") else None, w[:-2] if w.endswith("es") else None,
                 w[:-1] if w.endswith("s") else None):
        if cand and cand in known:
            return cand
    return None


def is_finite(word: str, subject: list[str]) -> bool:
    if word in AUX or word in MODALS or word in ("has", "have", "does", "do") or word in PAST_FORMS:
        return True
    if word.endswith("s") and (word in third_person_forms() or verb_base(word)):
        return True
    return bool(subject) and looks_plural(subject[-1]) and word in PLURAL_VERBS


def parse_clause(words: list[str]) -> tuple[str, str, int] | tuple[str, str] | None:
    """("command", verb phrase) | ("statement", subject, verb index) | None."""
    if words and words[0].lower() in LEAD_ADVERBS:
        words = words[1:]
        if starts_with_verb(words) or (words and words[0].lower() in CLEAR_VERBS and len(words) > 1):
            return ("command", " ".join([words[0].lower(), *words[1:]]))
        return None
    if len(words) > 1 and words[0].lower() == "we" and words[1].lower() in PLURAL_VERBS | INSTRUCTION_VERBS:
        return ("statement", "we", 1)  # "We use X now": a team habit, asked as "What do we use?"
    if not words or words[0].lower() in NEGATIONS or words[0].lower() in PRONOUNS or words[0].lower() in SUBORDINATE:
        return None
    if starts_with_verb(words) or (words[0].lower() in CLEAR_VERBS and len(words) > 1):
        return ("command", " ".join([words[0].lower(), *words[1:]]))
    for i in range(1, min(len(words), 10)):
        w = words[i].lower()
        prev = words[i - 1].lower()
        if w in NEGATIONS or "," in words[i - 1] or ("`" in words[i] and prev not in QUANTIFIERS):
            return None  # a code span may only name the subject: "every `MemtuneError` carries …"
        nxt = words[i + 1].lower() if i + 1 < len(words) else ""
        if prev in QUANTIFIERS or prev in PREPS or prev in RELATIVE:
            continue  # "the tests", "for the forecast tests": a noun; "tests that use …": not the main verb
        if w not in AUX and w not in MODALS and (nxt in AUX or nxt in MODALS or verb_base(nxt)
                                                   or nxt in STATEMENT_VERBS
                                                   or (looks_plural(w) and nxt in CLEAR_VERBS)):
            continue  # "Integration tests need …": "tests" is the subject's noun
        if is_finite(w, words[:i]) or statement_verb(words, i):
            return ("statement", " ".join(words[:i]), i)
    return None


def statement_verb(words: list[str], i: int) -> bool:
    """"The simulator replays `x` by default": an unknown -s word after a "the …" subject,
    followed by what starts an object or a place."""
    w, nxt = words[i], words[i + 1] if i + 1 < len(words) else ""
    return (words[0].lower() in ("the", "every", "each", "all") and w.isalpha() and w.islower()
            and w.endswith("s") and not w.endswith("ss") and (not nxt or nxt.startswith("`") or nxt.lower() in DETS
                                                                 or nxt.lower() in PREPS))


def lower_subject(subject: str) -> str:
    first, _, rest = subject.partition(" ")
    if re.search(r"[A-Z\d._/`]", first[1:]) or first.isupper():
        return subject
    return f"{first.lower()} {rest}".strip()


def is_command(key: str) -> bool:
    first = key.split()[0] if key.split() else ""
    return (" " in key and first[:1].islower() and first.replace("-", "").isalnum()) or first in PROGRAMS


UNIT_RE = re.compile(r"(?:[KMGTP]i?B|[kKMG]?Hz|[mµun]s|s|sec|%|px|rem|em|[a-z]+/s|rps|qps|fps|[kKM])")


def is_place(key: str) -> bool:
    if NUM_RE.fullmatch(key.split()[0] if key.split() else key):
        return False  # "3.6 GB", "3.11": a number, not a file name
    return "/" in key or bool(re.search(r"\.\w{1,5}$", key)) or bool(re.fullmatch(r"[A-Z][A-Z0-9]*_[A-Z0-9_]+", key))


def is_noun(word: str) -> bool:
    w = word.lower()
    return (w.isalpha() and w == word and w not in NOT_HEADS and w not in PREPS and w not in SUBORDINATE
            and not w.endswith(("ly", "ed")) and w not in PAST_FORMS
            and len(w) > 2 and w not in CLEAR_VERBS and w not in STATEMENT_VERBS and verb_base(w) is None)


def is_verbish(word: str) -> bool:
    w = word.lower()
    return (w in AUX or w in MODALS or w in CLEAR_VERBS or w in AMBIGUOUS_VERBS or w in STATEMENT_VERBS
            or w in ("has", "have", "does", "do") or w in PAST_FORMS or verb_base(w) is not None or w.endswith("s"))


def is_passive(words: list[str]) -> bool:
    """"… are marked `X`": a participle right after is/are names the value like a verb does."""
    last = words[-1].lower()
    return len(words) >= 2 and words[-2].lower() in AUX and (last.endswith("ed") or last in PARTICIPLES)


def is_relative(words: list[str], i: int) -> bool:
    """"tests that use the real model are …": ``that`` + a verb opens a relative clause, not a side clause."""
    return words[i].lower() in RELATIVE and i + 1 < len(words) and takes_object(words[i + 1])


def takes_object(word: str) -> bool:
    """A verb whose object can be "`X` subclasses" ("raises `MemtuneError` subclasses"), known verbs only."""
    w = word.lower()
    return w in INSTRUCTION_VERBS or w in STATEMENT_VERBS or verb_base(w) is not None


IP_RE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?")
PIN_RE = re.compile(r"([A-Za-z][\w.-]*)(?:==|>=|@)\d[\w.]*")


def value_kind(key: str) -> str | None:
    """What sort of thing a value is, for "Which address …?" / "Which torch version …?" questions."""
    if IP_RE.fullmatch(key):
        return "address"
    if re.fullmatch(r"[A-Z][A-Z0-9]*_[A-Z0-9_]+", key):
        return "environment variable"
    pin = PIN_RE.fullmatch(key)
    if pin:
        return f"{pin.group(1)} version"
    if is_command(key):
        return "command"
    if key.endswith("/") and len(key) > 1:
        return "directory"
    if "/" in key and re.search(r"\.\w{1,5}$", key):
        return "file"
    return None


def is_modifier(word: str) -> bool:
    """A word before a noun that belongs to its name ("PyPI", "forecast"), not a verb or a preposition."""
    w = word.lower()
    return (word.isalpha() and w not in NOT_HEADS and w not in PREPS and w not in CLEAR_VERBS
            and verb_base(w) is None and not w.endswith(("ed", "ly")))


def clean(text: str) -> str:
    return re.sub(r"\s+", " ", CODE_RE.sub(r"\1", text)).strip()
