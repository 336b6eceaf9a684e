"""Fact questions: ask for each value a note holds, not only about the note's topic.

Topic questions ("What's the rule on the ingest worker?") teach the model to recall a note
when its title words come up. People ask for one value: "Which port does the ingest
worker listen on?", "What do I use for logging?", "Where do migrations live?". Measured on
a held-out memory, an adapter trained on topic questions alone answered 0.95 of templated
probes but 0.25 of such hand-written ones, and refused many of them: the only fact-shaped
questions it had seen were the "not in memory" ones.

So each clause of a note is read as a tiny sentence (imperative "Build every binary with
X", or "subject verb … X"), each value in it (a code span, a number, a named keyword) is
replaced by a wh-phrase, and the clause is turned into a question: "What do I build every
binary with?", "Which command builds every binary?", "Which port does the ingest worker
listen on?". Training uses the fronted frames; each fact also gets one held-out frame
("What am I supposed to …?", or the echo form "The ingest worker listens on which port?")
that only probes use. No parser: a verb list and a few rules cover how notes are written,
and a clause that does not read cleanly yields no question rather than a wrong one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from memtune.dataset.code_facts import command_questions
from memtune.dataset.grammar import (
    AMBIGUOUS_VERBS,
    CLEAR_VERBS,
    inflect,
    looks_plural,
    starts_with_verb,
    third_person_forms,
)
from memtune.dataset.keywords import PROGRAMS, norm
from memtune.dataset.text import REDACTED_RE, prose, sentences, strip_inline, upper_first

MAX_FACTS = 6  # values asked about per note (most notes hold 1-4)

_CODE_RE = re.compile(r"`([^`\n]+)`")
_NUM_RE = re.compile(r"(?<![\w.\-/`])\d+(?:\.\d+)?(?![\w\-/`]|\.\d)")
_CLAUSE_SPLIT_RE = re.compile(r";\s+|:\s+|\s+[—–]\s+")
_TAIL_CUT_RE = re.compile(r",\s|\s\(|\s+because\b|\s+so\s+|\s+or\s+|\s+[—–]\s|\s+and\s+")
_REASON_RE = re.compile(r",?\s+(?:because|since|so that|so)\s+(.+)$")
_CONDITION_RE = re.compile(r",?\s+(?:when|whenever|if|once)\s+(.+)$")
_QUANT_RE = re.compile(r"\b(?:at least|at most|up to|exactly|about|around|more than|less than|no more than|"
                       r"roughly|over|under)$", re.I)
_EXAMPLE_LEAD = ("like", "e.g.", "e.g.,", "eg", "such as", "example")

PREPS = frozenset("with in on under to from at into by for via as using inside through onto within over per "
                  "across behind between".split())
_AUX = frozenset("is are was were".split())
_MODALS = frozenset("must should can cannot will may might".split())
_DETS = frozenset("the a an".split())
_LEAD_ADVERBS = frozenset("always only first also just then".split())
_NEGATIONS = frozenset("never don't dont not avoid".split())
_NOT_HEADS = PREPS | _AUX | _MODALS | _DETS | _LEAD_ADVERBS | _NEGATIONS | frozenset(
    "and or but not of than that this these those its their our your every each all any some no like "
    "directly default set called named".split()
)
# Verbs notes use in statements ("The worker listens on …") beyond the instruction verbs.
_STATEMENT_VERBS = frozenset(
    """
    listen live need contain hold accept expect own depend belong point return read write take keep
    reject default run use publish inject receive serve store mean require produce show live sit
    come go expose fail break call send cover handle support wrap trigger prune win replay become
    carry bind raise merge
    """.split()
)
_PARTICIPLES = frozenset("kept built run set put read written made done held sent split found known shown given "
                         "taken".split())
# Unions used on every word, built once.
_INSTRUCTION_VERBS = CLEAR_VERBS | AMBIGUOUS_VERBS
_KNOWN_VERBS = _INSTRUCTION_VERBS | _STATEMENT_VERBS
_PLURAL_VERBS = CLEAR_VERBS | _STATEMENT_VERBS
_NOT_HEAD_OR_PREP = _NOT_HEADS | PREPS
_DET_OR_PREP = _DETS | PREPS
_PRONOUNS = frozenset("it they this that these those he she we you i".split())
_SUBORDINATE = frozenset("after before when whenever if unless until so that because while once".split())
_RELATIVE = frozenset("that which who".split())
_QUANTIFIERS = frozenset("every each all any no".split()) | _DETS


@dataclass(frozen=True)
class FactQuestion:
    """A question after one value of a note. ``probe`` phrasings are never trained on."""

    text: str
    keys: tuple[str, ...]  # the values a right answer must contain
    frame: str  # which way it was asked (wh_do, command, should, head, where, why, echo, supposed)
    probe: bool = False

    @property
    def intent(self) -> str:
        return {"command": "command", "why": "why"}.get(self.frame, "fact")


def fact_questions(body: str, keywords: tuple[str, ...] | list[str] = ()) -> list[FactQuestion]:
    """Every fact question the note yields, interleaved over its values (first value first).

    ``keywords``: the note's probe keywords; those written as plain words ("millimetres",
    "GoReleaser") count as values too. Training frames come before held-out ones per value;
    callers take ``probe`` ones apart.
    """
    per_key: list[list[FactQuestion]] = []
    for clause, subject_hint in _clauses(body):
        for key, start, end in _keys(clause, keywords):
            qs = _ask(clause, start, end, key, subject_hint)
            if qs:
                per_key.append(qs)
        for extra in (_why(clause, keywords), _when(clause, keywords)):
            if extra:
                per_key.append([extra])
        if len(per_key) >= MAX_FACTS:
            break
    for cmd, asks in command_questions(body):
        per_key.append([FactQuestion(q, (cmd,), "command") for q in asks])
    out: list[FactQuestion] = []
    seen: set[str] = set()
    depth = max((len(q) for q in per_key), default=0)
    for i in range(depth):
        for qs in per_key:
            if i < len(qs) and norm(qs[i].text) not in seen:
                seen.add(norm(qs[i].text))
                out.append(qs[i])
    return out


# --- clauses -------------------------------------------------------------------------------


def _clauses(body: str) -> list[tuple[str, str | None]]:
    """(clause, the subject of the clause before it) pairs; "run them with X" borrows that subject."""
    out: list[tuple[str, str | None]] = []
    for sent in sentences(prose(body)):
        sent = _strip_markup(sent).strip().rstrip(".!")
        previous: str | None = None
        for part in _CLAUSE_SPLIT_RE.split(sent):
            part = part.strip()
            if len(part.split()) < 2 or REDACTED_RE.search(part):
                continue  # never ask about (or next to) a redacted secret
            for piece in _split_coordination(part):
                out.append((piece, previous))
                parsed = _parse(piece.split())
                if parsed and parsed[0] == "statement":
                    previous = parsed[1]
    return out


def _strip_markup(text: str) -> str:
    """Bold, links and HTML gone; code spans kept verbatim (``gauge.<id>.reading`` is no tag)."""
    spans: list[str] = []

    def keep(m: re.Match[str]) -> str:
        spans.append(m.group(0))
        return f"\x00{len(spans) - 1}\x00"

    out = strip_inline(_CODE_RE.sub(keep, text), keep_code=True)
    return re.sub(r"\x00(\d+)\x00", lambda m: spans[int(m.group(1))], out)


def _split_coordination(clause: str) -> list[str]:
    """"Migrations live in X and are applied with Y" → both halves, each with the subject."""
    words = clause.split()
    parsed = _parse(words)
    if not parsed or parsed[0] != "statement":
        return [clause]
    subject = parsed[1]
    for i in range(parsed[2] + 1, len(words) - 1):
        if words[i] == "and" and _finite(words[i + 1].lower(), subject.split()):
            return [" ".join(words[:i]), " ".join([*subject.split(), *words[i + 1:]])]
    return [clause]


def _keys(clause: str, keywords: tuple[str, ...] | list[str] = ()) -> list[tuple[str, int, int]]:
    """The values in a clause: code spans, numbers, env vars and plain-word keywords, in order,
    outside parentheses."""
    found: list[tuple[str, int, int]] = []
    for m in _CODE_RE.finditer(clause):
        found.append((m.group(1), m.start(), m.end()))
    taken = [(s, e) for _, s, e in found]

    def add(m: re.Match[str] | _Span) -> None:
        if not any(s <= m.start() < e or m.start() <= s < m.end() for s, e in taken):
            found.append((m.group(0), m.start(), m.end()))
            taken.append((m.start(), m.end()))

    for m in _NUM_RE.finditer(clause):
        add(m)
    for m in re.finditer(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b", clause):  # ENV_VARS written without backticks
        add(m)
    for kw in keywords:
        if (" " in kw or not kw[:1].isalpha() or "`" in kw or kw.lower().endswith(("ed", "ing", "ly"))
                or (kw.isalpha() and kw.isupper())):  # "BOTH", "NOT": emphasis, not a value
            continue
        start = _find_word(clause, kw)
        if start >= 0 and _standalone(clause, start, start + len(kw)):
            add(_Span(kw, start, start + len(kw)))
    found.sort(key=lambda k: k[1])
    return [(k, s, e) for k, s, e in found if clause[:s].count("(") <= clause[:s].count(")")]


@dataclass(frozen=True)
class _Span:
    """A keyword found with str.find: the part of re.Match that _keys uses."""

    text: str
    begin: int
    stop: int

    def group(self, _: int = 0) -> str:
        return self.text

    def start(self) -> int:
        return self.begin

    def end(self) -> int:
        return self.stop


def _find_word(text: str, word: str) -> int:
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


def _standalone(clause: str, start: int, end: int) -> bool:
    """A plain word is a value only as a noun phrase's head: "in millimetres", "over gRPC",
    not "the gRPC stubs" or "the forecast API" (there it only names a thing)."""
    before = clause[:start].split()[-1:]
    after = clause[end:].split()[:1]
    if after and re.fullmatch(r"[A-Za-z][\w-]*", after[0]) and after[0].lower() not in _NOT_HEAD_OR_PREP:
        return False
    word = clause[start:end]
    if before and before[0].lower() in PREPS:
        return True
    named = bool(re.search(r"[A-Z\d]", word))
    return named and not (before and before[0].isalpha() and _modifier(before[0]))


# --- grammar -------------------------------------------------------------------------------


def _base(word: str) -> str | None:
    """listens → listen, publishes → publish, applies → apply (verbs memtune knows only)."""
    w = word.lower()
    known = _KNOWN_VERBS
    for cand in (w[:-3] + "y" if w.endswith("ies") else None, w[:-2] if w.endswith("es") else None,
                 w[:-1] if w.endswith("s") else None):
        if cand and cand in known:
            return cand
    return None


def _finite(word: str, subject: list[str]) -> bool:
    if word in _AUX or word in _MODALS or word in ("has", "have", "does", "do"):
        return True
    if word.endswith("s") and (word in third_person_forms() or _base(word)):
        return True
    return bool(subject) and looks_plural(subject[-1]) and word in _PLURAL_VERBS


def _parse(words: list[str]) -> tuple[str, str, int] | tuple[str, str] | None:
    """("command", verb phrase) | ("statement", subject, verb index) | None."""
    if words and words[0].lower() in _LEAD_ADVERBS:
        words = words[1:]
        if starts_with_verb(words) or (words and words[0].lower() in CLEAR_VERBS and len(words) > 1):
            return ("command", " ".join([words[0].lower(), *words[1:]]))
        return None
    if len(words) > 1 and words[0].lower() == "we" and words[1].lower() in _PLURAL_VERBS | _INSTRUCTION_VERBS:
        return ("statement", "we", 1)  # "We use X now": a team habit, asked as "What do we use?"
    if not words or words[0].lower() in _NEGATIONS or words[0].lower() in _PRONOUNS:
        return None
    if starts_with_verb(words) or (words[0].lower() in CLEAR_VERBS and len(words) > 1):
        return ("command", " ".join([words[0].lower(), *words[1:]]))
    for i in range(1, min(len(words), 10)):
        w = words[i].lower()
        prev = words[i - 1].lower()
        if w in _NEGATIONS or "," in words[i - 1] or ("`" in words[i] and prev not in _QUANTIFIERS):
            return None  # a code span may only name the subject: "every `MemtuneError` carries …"
        nxt = words[i + 1].lower() if i + 1 < len(words) else ""
        if prev in _QUANTIFIERS or prev in PREPS or prev in _RELATIVE:
            continue  # "the tests", "for the forecast tests": a noun; "tests that use …": not the main verb
        if w not in _AUX and w not in _MODALS and (nxt in _AUX or nxt in _MODALS or _base(nxt)
                                                   or nxt in _STATEMENT_VERBS
                                                   or (looks_plural(w) and nxt in CLEAR_VERBS)):
            continue  # "Integration tests need …": "tests" is the subject's noun
        if _finite(w, words[:i]) or _statement_verb(words, i):
            return ("statement", " ".join(words[:i]), i)
    return None


def _statement_verb(words: list[str], i: int) -> bool:
    """"The simulator replays `x` by default": an unknown -s word after a "the …" subject,
    followed by what starts an object or a place."""
    w, nxt = words[i], words[i + 1] if i + 1 < len(words) else ""
    return (words[0].lower() in ("the", "every", "each", "all") and w.isalpha() and w.islower()
            and w.endswith("s") and not w.endswith("ss") and (not nxt or nxt.startswith("`") or nxt.lower() in _DETS
                                                                 or nxt.lower() in PREPS))


def _lower_subject(subject: str) -> str:
    first, _, rest = subject.partition(" ")
    if re.search(r"[A-Z\d._/`]", first[1:]) or first.isupper():
        return subject
    return f"{first.lower()} {rest}".strip()


def _is_command(key: str) -> bool:
    first = key.split()[0] if key.split() else ""
    return (" " in key and first[:1].islower() and first.replace("-", "").isalnum()) or first in PROGRAMS


def _is_place(key: str) -> bool:
    return "/" in key or bool(re.search(r"\.\w{1,5}$", key)) or bool(re.fullmatch(r"[A-Z][A-Z0-9]*_[A-Z0-9_]+", key))


def _noun(word: str) -> bool:
    w = word.lower()
    return (w.isalpha() and w == word and w not in _NOT_HEADS and w not in PREPS and w not in _SUBORDINATE
            and not w.endswith(("ly", "ed"))
            and len(w) > 2 and w not in CLEAR_VERBS and w not in _STATEMENT_VERBS and _base(w) is None)


def _verbish(word: str) -> bool:
    w = word.lower()
    return (w in _AUX or w in _MODALS or w in CLEAR_VERBS or w in AMBIGUOUS_VERBS or w in _STATEMENT_VERBS
            or w in ("has", "have", "does", "do") or _base(w) is not None or w.endswith("s"))


def _passive(words: list[str]) -> bool:
    """"… are marked `X`": a participle right after is/are names the value like a verb does."""
    last = words[-1].lower()
    return len(words) >= 2 and words[-2].lower() in _AUX and (last.endswith("ed") or last in _PARTICIPLES)


def _relative(words: list[str], i: int) -> bool:
    """"tests that use the real model are …": ``that`` + a verb opens a relative clause, not a side clause."""
    return words[i].lower() in _RELATIVE and i + 1 < len(words) and _takes_object(words[i + 1])


def _takes_object(word: str) -> bool:
    """A verb whose object can be "`X` subclasses" ("raises `MemtuneError` subclasses"), known verbs only."""
    w = word.lower()
    return w in _INSTRUCTION_VERBS or w in _STATEMENT_VERBS or _base(w) is not None


_IP_RE = re.compile(r"\d{1,3}(?:\.\d{1,3}){3}(?::\d+)?")
_PIN_RE = re.compile(r"([A-Za-z][\w.-]*)(?:==|>=|@)\d[\w.]*")


def value_kind(key: str) -> str | None:
    """What sort of thing a value is, for "Which address …?" / "Which torch version …?" questions."""
    if _IP_RE.fullmatch(key):
        return "address"
    if re.fullmatch(r"[A-Z][A-Z0-9]*_[A-Z0-9_]+", key):
        return "environment variable"
    pin = _PIN_RE.fullmatch(key)
    if pin:
        return f"{pin.group(1)} version"
    if _is_command(key):
        return "command"
    if key.endswith("/") and len(key) > 1:
        return "directory"
    if "/" in key and re.search(r"\.\w{1,5}$", key):
        return "file"
    return None


def _modifier(word: str) -> bool:
    """A word before a noun that belongs to its name ("PyPI", "forecast"), not a verb or a preposition."""
    w = word.lower()
    return (word.isalpha() and w not in _NOT_HEADS and w not in PREPS and w not in CLEAR_VERBS
            and _base(w) is None and not w.endswith(("ed", "ly")))


def _clean(text: str) -> str:
    return re.sub(r"\s+", " ", _CODE_RE.sub(r"\1", text)).strip()


# --- questions -----------------------------------------------------------------------------


def _ask(clause: str, start: int, end: int, key: str, subject_hint: str | None) -> list[FactQuestion]:
    left = re.sub(r"\s*\([^)]*\)", "", clause[:start])
    tail = _TAIL_CUT_RE.split(clause[end:], maxsplit=1)[0]
    lw, rw = left.split(), tail.split()
    if lw and (lw[-1].lower() in _EXAMPLE_LEAD or " ".join(lw[-2:]).lower() == "such as"):
        return []  # "a tag like v1.8.0": an example, not the fact
    if "," in left or (lw and lw[-1].endswith(("'s", "’s"))):
        return []  # after a comma the clause has lost its subject; "the reading's X" is not a slot
    if any((w.lower() in _SUBORDINATE or w.lower() in ("and", "or")) and not _relative(lw, i)
           for i, w in enumerate(lw) if i):
        return []  # "… after editing anything under X", "A and X": the value belongs to a side clause
    is_num = bool(_NUM_RE.fullmatch(key))
    if is_num:
        quant = _QUANT_RE.search(" ".join(lw[-2:]))
        if quant:
            lw = lw[: len(lw) - len(quant.group(0).split())]
    wh, head, object_noun = "what", None, False
    after_noun = bool(rw) and (_noun(rw[0]) or (
        bool(lw) and lw[-1].lower() in _DETS and rw[0].isalpha() and rw[0].islower()
        and rw[0] not in _NOT_HEAD_OR_PREP | _SUBORDINATE))  # "the `sharp` build": a noun after all
    if is_num and after_noun and looks_plural(rw[0]):
        head = rw.pop(0)
        wh = f"how many {head}"
        if len(rw) >= 2 and rw[0] == "of" and _noun(rw[1]):
            wh += f" of {rw[1]}"
            rw = rw[2:]
    elif is_num and after_noun:
        return []  # "psycopg 3 driver", "1 second": part of a name or a measure it cannot ask for
    elif is_num and lw and re.fullmatch(r"[A-Z][A-Za-z]+", lw[-1]):
        wh = f"which version of {lw.pop()}"  # "Python 3.11"
    elif lw and _noun(lw[-1]):
        head = lw.pop()
        while lw and len(head.split()) < 3 and _modifier(lw[-1]):
            head = f"{lw.pop()} {head}"  # "the PyPI package X" → "which PyPI package"
        wh = f"which {head}"
    elif after_noun and (not lw or lw[-1].lower() in _DET_OR_PREP or _takes_object(lw[-1])):
        object_noun = bool(lw) and lw[-1].lower() not in _DET_OR_PREP  # "raises `X` subclasses"
        head = rw.pop(0)  # "the `log` package", "on `typing.Self` imports"
        wh = f"which {head}"
    elif after_noun or (lw and lw[-1].lower() not in _DET_OR_PREP and not _verbish(lw[-1])
                        and not _passive(lw)):
        return []  # "a randomly initialised X": the value sits inside a noun phrase
    while lw and lw[-1].lower() in _DETS:
        lw.pop()
    prep = lw.pop() if lw and lw[-1].lower() in PREPS else None
    rest = _clean(" ".join(rw))
    keys = (key,)
    if not lw:  # the value is the subject: "GoReleaser builds the images"
        if rw and _finite(rw[0].lower(), []) and not head:
            return [FactQuestion(f"{upper_first(wh)} {rest}?", keys, "subject")]
        return []
    parsed = _parse(lw)
    bare = lw[1:] if len(lw) == 2 and (lw[0].lower() in _LEAD_ADVERBS or lw[0] == "MUST") else lw
    if parsed is None and len(bare) == 1 and bare[0].lower() in _INSTRUCTION_VERBS:
        parsed = ("command", bare[0].lower())  # "Pass X as …", "ALWAYS install X …": the value is the object
    if parsed is None:
        return []
    where = wh == "what" and _is_place(key) and prep in ("in", "under", "inside", "at", "into", "from")
    if parsed[0] == "command":
        return _ask_command(parsed[1], prep, rest, wh, key, where, subject_hint)
    subject, vi = parsed[1], parsed[2]
    words = lw[lw.index(subject.split()[-1]) + 1:] if subject.split()[-1] in lw else lw[vi:]
    verb, after = words[0], _clean(" ".join(words[1:]))
    subj = _clean(_lower_subject(subject))
    if where:
        wh2, prep2 = "where", (prep if prep == "from" else None)
    else:
        wh2, prep2 = wh, prep
    end_words = " ".join(x for x in (after, prep2, rest) if x)
    v = verb.lower()
    if v in _AUX or v in _MODALS:
        front = f"{wh2} {v} {subj}"
    elif v in ("has", "have"):
        front = f"{wh2} {'does' if v == 'has' else 'do'} {subj} have"
    elif v.endswith("s") and _base(v):
        front = f"{wh2} does {subj} {_base(v)}"
    elif v in _PLURAL_VERBS:
        front = f"{wh2} do {subj} {v}"
    else:
        return []
    out = [FactQuestion(upper_first(f"{front} {end_words}".strip()) + "?", keys, "wh_do")]
    kind = value_kind(key) if wh2 == "what" else None
    if kind:
        out.append(FactQuestion(upper_first(f"which {kind}{front[4:]} {end_words}".strip()) + "?", keys, "kind"))
    if v in _AUX and prep2 is None and not head and _passive([v, after]):  # "How are X marked?"
        out.append(FactQuestion(f"How {v} {subj} {after}?", keys, "how"))
    if head and not is_num and not object_noun:
        out.append(FactQuestion(f"What's the {head} for {subj}?", keys, "head"))
    # An embedded question keeps the statement's word order: "… which port the worker listens on".
    embedded = " ".join(x for x in (wh2, subj, v, after, prep2, rest) if x)
    out.append(FactQuestion(f"Do you know {embedded}?", keys, "know"))
    out.append(FactQuestion(f"Can you tell me {embedded}?", keys, "tell"))
    echo = " ".join(x for x in (_clean(" ".join([_lower_subject(subject), *words])), prep2, wh2, rest) if x)
    out.append(FactQuestion(upper_first(echo) + "?", keys, "echo", probe=True))
    return out


def _ask_command(vp: str, prep: str | None, rest: str, wh: str, key: str, where: bool,
                 subject_hint: str | None) -> list[FactQuestion]:
    words = vp.split()
    if subject_hint and len(words) >= 2 and words[1] == "them" and looks_plural(subject_hint.split()[-1]):
        words[1] = _clean(_lower_subject(subject_hint))
    vp = _clean(" ".join(words))
    keys = (key,)
    tail = " ".join(x for x in (prep, rest) if x)
    if len(vp.split()) == 1 and not tail:
        return []  # "use X or install Y" → "What do I use?" names nothing the value is for
    out: list[FactQuestion] = []
    if where:
        out.append(FactQuestion(upper_first(f"where do I {vp} {rest}".strip()) + "?", keys, "where"))
    else:
        out.append(FactQuestion(upper_first(f"{wh} do I {vp} {tail}".strip()) + "?", keys, "wh_do"))
        kind = value_kind(key) if wh == "what" else None
        if kind and kind != "command":  # commands get the "Which command …?" frames below
            out.append(FactQuestion(upper_first(f"which {kind} do I {vp} {tail}".strip()) + "?", keys, "kind"))
    if _is_command(key) and prep in ("with", "using", "via", "by"):
        action = " ".join(x for x in (vp, rest) if x)
        out.append(FactQuestion(f"Which command {inflect(action, '3rd')}?", keys, "command"))
        out.append(FactQuestion(f"What's the command to {action}?", keys, "command"))
    out.append(FactQuestion(upper_first(f"{wh} should I {vp} {tail}".strip()) + "?", keys, "should"))
    if _is_command(key) and prep in ("with", "using", "via", "by"):
        out.append(FactQuestion(f"How do I {' '.join(x for x in (vp, rest) if x)}?", keys, "how"))
    if where:
        out.append(FactQuestion(f"Do you know where to {' '.join(x for x in (vp, rest) if x)}?", keys, "know"))
    else:
        out.append(FactQuestion(f"Do you know {wh} to {vp} {tail}".strip() + "?", keys, "know"))
        out.append(FactQuestion(f"Can you tell me {wh} I should {vp} {tail}".strip() + "?", keys, "tell"))
    out.append(FactQuestion(upper_first(f"{wh} am I supposed to {vp} {tail}".strip()) + "?", keys, "supposed",
                            probe=True))
    return out


def _when(clause: str, keywords: tuple[str, ...] | list[str] = ()) -> FactQuestion | None:
    """"Split a module when it passes about 600 lines" → "When should I split a module?" (the
    values of the condition are the answer); "CI fails if it takes over 90 minutes" → "When does CI fail?"."""
    m = _CONDITION_RE.search(clause)
    if not m:
        return None
    main, condition = clause[: m.start()], _TAIL_CUT_RE.split(m.group(1), maxsplit=1)[0]
    keys = tuple(k for k, _, _ in _keys(condition, keywords))
    words = main.split()
    if not keys or not words or "," in main or words[0].lower() in _NEGATIONS:
        return None
    parsed = _parse(words)
    if parsed is None:
        return None
    if parsed[0] == "command":
        return FactQuestion(f"When should I {_clean(parsed[1])}?", keys, "when")
    subject, vi = parsed[1], parsed[2]
    verb, after = words[vi].lower(), _clean(" ".join(words[vi + 1:]))
    subj = _clean(_lower_subject(subject))
    if verb in _AUX or verb in _MODALS:
        q = f"When {verb} {subj} {after}?"
    elif _base(verb):
        q = f"When does {subj} {_base(verb)} {after}?"
    else:
        return None
    return FactQuestion(re.sub(r"\s+\?", "?", q), keys, "when")


def _why(clause: str, keywords: tuple[str, ...] | list[str] = ()) -> FactQuestion | None:
    """"Wrap errors with X so callers can use Y" → "Why should I wrap errors with X?"."""
    m = _REASON_RE.search(clause)
    if not m:
        return None
    main, reason = clause[: m.start()], m.group(1)
    keys = tuple(k for k, _, _ in _keys(reason, keywords))
    if not keys:
        words = [w for w in re.findall(r"[A-Za-z][\w-]{3,}", reason) if w.lower() not in _NOT_HEADS]
        keys = tuple(words[-1:])
    if not keys:
        return None
    words = main.split()
    negative = bool(words) and words[0].lower() in ("never", "don't", "dont")
    if negative:
        words = words[1:]
    if "," in main:  # "X are the codes, kept as strings" → "X are kept as strings"
        head, _, last = main.rpartition(", ")
        parsed = _parse(head.split())
        first = last.split()[0].lower() if last.split() else ""
        if (parsed and parsed[0] == "statement" and head.split()[parsed[2]].lower() in _AUX
                and (first.endswith("ed") or first in _PARTICIPLES)):
            words = [*head.split()[: parsed[2] + 1], *last.split()]
        else:
            return None
    parsed = _parse(words)
    if parsed is None:
        return None
    if parsed[0] == "command":
        modal = "shouldn't" if negative else "should"
        q = f"Why {modal} I {_clean(parsed[1])}?"
    else:
        subject, vi = parsed[1], parsed[2]
        verb = words[vi].lower()
        after = _clean(" ".join(words[vi + 1:]))
        subj = _clean(_lower_subject(subject))
        if verb in _AUX or verb in _MODALS:
            q = f"Why {verb} {subj} {after}?"
        elif _base(verb):
            q = f"Why does {subj} {_base(verb)} {after}?"
        else:
            return None
    return FactQuestion(re.sub(r"\s+\?", "?", q), keys, "why")
