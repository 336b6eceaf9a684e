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
that only probes use. Reading the clauses (values, instruction vs statement) is in
``clauses.py``; a clause it cannot read cleanly yields no question rather than a wrong one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from memtune.dataset import clauses as cl
from memtune.dataset.code_facts import command_questions
from memtune.dataset.grammar import inflect, looks_plural
from memtune.dataset.keywords import norm
from memtune.dataset.text import upper_first

MAX_FACTS = 6  # values asked about per note (most notes hold 1-4)

_REASON_RE = re.compile(r",?\s+(?:because|since|so that|so)\s+(.+)$")
_CONDITION_RE = re.compile(r",?\s+(?:when|whenever|if|once)\s+(.+)$")
_QUANT_RE = re.compile(r"\b(?:at least|at most|up to|exactly|about|around|more than|less than|no more than|"
                       r"roughly|over|under)$", re.I)
_EXAMPLE_LEAD = ("like", "e.g.", "e.g.,", "eg", "such as", "example")
_LEAD_CONDITION_RE = re.compile(r"(?i)(if|when|whenever|once|after|before|unless)\s+([^,]+?),\s+(\S.*)$")


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
    for whole, subject_hint in cl.split_clauses(body):
        clause, condition = _lead_condition(whole)
        for key, start, end in cl.find_values(clause, keywords):
            qs = _ask(clause, start, end, key, subject_hint, bool(condition))
            if qs:
                per_key.append([_on(q, condition) for q in qs])
        for extra in (_why(clause, keywords), _when(clause, keywords)):
            if extra:
                per_key.append([_on(extra, condition)])
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


def _lead_condition(clause: str) -> tuple[str, str | None]:
    """"If a conversion was killed, delete X" → ("delete X", "if a conversion was killed").

    The main clause is asked about as usual and the condition is kept on the question ("What
    should I delete if a conversion was killed?"): without it the question would ask for the
    value as if it held always. A condition about "it"/"they" is dropped with its clause,
    since the question could not say what the pronoun stands for.
    """
    m = _LEAD_CONDITION_RE.match(clause)
    if not m:
        return clause, None
    lead, condition, main = m.group(1).lower(), cl.clean(m.group(2)), m.group(3)
    first = condition.split()[0].lower() if condition.split() else ""
    if not first or first in cl.PRONOUNS or len(main.split()) < 2:
        return "", None
    return main, f"{lead} {condition}"


def _on(q: FactQuestion, condition: str | None) -> FactQuestion:
    if not condition:
        return q
    return FactQuestion(f"{q.text[:-1].rstrip()} {condition}?", q.keys, q.frame, q.probe)


# --- questions -----------------------------------------------------------------------------


def _ask(clause: str, start: int, end: int, key: str, subject_hint: str | None,
         conditioned: bool = False) -> list[FactQuestion]:
    """``conditioned``: a lead condition will be added, so a bare verb ("delete X") is enough."""
    left = re.sub(r"\s*\([^)]*\)", "", clause[:start])
    tail = cl.TAIL_CUT_RE.split(clause[end:], maxsplit=1)[0]
    lw, rw = left.split(), tail.split()
    if lw and (lw[-1].lower() in _EXAMPLE_LEAD or " ".join(lw[-2:]).lower() == "such as"):
        return []  # "a tag like v1.8.0": an example, not the fact
    if "," in left or (lw and lw[-1].endswith(("'s", "’s"))):
        return []  # after a comma the clause has lost its subject; "the reading's X" is not a slot
    if any((w.lower() in cl.SUBORDINATE or w.lower() in ("and", "or")) and not cl.is_relative(lw, i)
           for i, w in enumerate(lw) if i):
        return []  # "… after editing anything under X", "A and X": the value belongs to a side clause
    never = _never_verb(lw)
    wh, head, object_noun = "what", None, False
    is_num = bool(cl.NUM_RE.fullmatch(key))
    if is_num:
        quant = _QUANT_RE.search(" ".join(lw[-2:]))
        if quant:
            lw = lw[: len(lw) - len(quant.group(0).split())]
        unit = rw[0].rstrip(".,;:") if rw else ""
        if unit and cl.UNIT_RE.fullmatch(unit):
            key, is_num = f"{key} {unit}", False  # "18 GB", "117 tokens/s": the unit is part of the value
            rw = rw[1:]
            measure = rw[1].rstrip(".,;:") if len(rw) >= 2 and rw[0] == "of" else ""
            if measure and cl.is_noun(measure):
                wh, rw = f"how much {measure}", rw[2:]  # "uses 512 MB of memory" → "How much memory …?"
    after_noun = bool(rw) and (cl.is_noun(rw[0]) or (
        bool(lw) and lw[-1].lower() in cl.DETS and rw[0].isalpha() and rw[0].islower()
        and rw[0] not in cl.NOT_HEAD_OR_PREP | cl.SUBORDINATE))  # "the `sharp` build": a noun after all
    if is_num and after_noun and looks_plural(rw[0]):
        head = rw.pop(0)
        wh = f"how many {head}"
        if len(rw) >= 2 and rw[0] == "of" and cl.is_noun(rw[1]):
            wh += f" of {rw[1]}"
            rw = rw[2:]
    elif (is_num and after_noun and len(lw) >= 2 and lw[-2].lower() in cl.DETS
          and re.fullmatch(r"[A-Za-z][\w.+-]*", lw[-1]) and lw[-1].lower() not in cl.NOT_HEAD_OR_PREP
          and cl.verb_base(lw[-1]) is None):
        key = f"{lw.pop()} {key}"  # "the psycopg 3 driver": a name and its version, asked by the noun
        head = rw.pop(0)
        wh, is_num = f"which {head}", False
    elif is_num and after_noun:
        return []  # "after 1 second", "the first 2 runs": a measure or a count it cannot ask for
    elif is_num and lw and re.fullmatch(r"[A-Z][A-Za-z]+", lw[-1]):
        wh = f"which version of {lw.pop()}"  # "Python 3.11"
    elif wh != "what":
        pass  # "how much memory": asked by its measure already, no noun head to look for
    elif lw and cl.is_noun(lw[-1]) and not never:
        head = lw.pop()
        while lw and len(head.split()) < 3 and cl.is_modifier(lw[-1]):
            head = f"{lw.pop()} {head}"  # "the PyPI package X" → "which PyPI package"
        wh = f"which {head}"
    elif after_noun and (not lw or lw[-1].lower() in cl.DET_OR_PREP or cl.takes_object(lw[-1])):
        object_noun = bool(lw) and lw[-1].lower() not in cl.DET_OR_PREP  # "raises `X` subclasses"
        head = rw.pop(0)  # "the `log` package", "on `typing.Self` imports"
        wh = f"which {head}"
    elif after_noun or (lw and lw[-1].lower() not in cl.DET_OR_PREP and not cl.is_verbish(lw[-1])
                        and not cl.is_passive(lw) and not never):
        return []  # "a randomly initialised X": the value sits inside a noun phrase
    while lw and lw[-1].lower() in cl.DETS:
        lw.pop()
    prep = lw.pop() if lw and lw[-1].lower() in cl.PREPS else None
    rest = cl.clean(" ".join(rw))
    keys = (key,)
    if not lw:  # the value is the subject: "GoReleaser builds the images"
        if rw and cl.is_finite(rw[0].lower(), []) and not head:
            return [FactQuestion(f"{upper_first(wh)} {rest}?", keys, "subject")]
        return []
    if never:
        return _ask_never(never, prep, cl.clean(" ".join(rw)), wh, key, conditioned)
    parsed = cl.parse_clause(lw)
    bare = lw[1:] if len(lw) == 2 and (lw[0].lower() in cl.LEAD_ADVERBS or lw[0] == "MUST") else lw
    if parsed is None and len(bare) == 1 and bare[0].lower() in cl.INSTRUCTION_VERBS:
        parsed = ("command", bare[0].lower())  # "Pass X as …", "ALWAYS install X …": the value is the object
    if parsed is None:
        return []
    where = wh == "what" and cl.is_place(key) and prep in ("in", "under", "inside", "at", "into", "from")
    if parsed[0] == "command":
        return _ask_command(parsed[1], prep, rest, wh, key, where, subject_hint, conditioned)
    subject, vi = parsed[1], parsed[2]
    words = lw[lw.index(subject.split()[-1]) + 1:] if subject.split()[-1] in lw else lw[vi:]
    verb, after = words[0], cl.clean(" ".join(words[1:]))
    subj = cl.clean(cl.lower_subject(subject))
    if where:
        wh2, prep2 = "where", (prep if prep == "from" else None)
    else:
        wh2, prep2 = wh, prep
    end_words = " ".join(x for x in (after, prep2, rest) if x)
    v = verb.lower()
    front = _front(wh2, v, subj)
    if front is None:
        return []
    out = [FactQuestion(upper_first(f"{front} {end_words}".strip()) + "?", keys, "wh_do")]
    kind = cl.value_kind(key) if wh2 == "what" else None
    if kind:
        out.append(FactQuestion(upper_first(f"which {kind}{front[4:]} {end_words}".strip()) + "?", keys, "kind"))
    if v in cl.AUX and prep2 is None and not head and cl.is_passive([v, after]):  # "How are X marked?"
        out.append(FactQuestion(f"How {v} {subj} {after}?", keys, "how"))
    if head and not is_num and not object_noun:
        lead = "What are the" if looks_plural(head.split()[-1]) else "What's the"
        out.append(FactQuestion(f"{lead} {head} for {subj}?", keys, "head"))
    # An embedded question keeps the statement's word order: "… which port the worker listens on".
    embedded = " ".join(x for x in (wh2, subj, v, after, prep2, rest) if x)
    out.append(FactQuestion(f"Do you know {embedded}?", keys, "know"))
    out.append(FactQuestion(f"Can you tell me {embedded}?", keys, "tell"))
    echo = " ".join(x for x in (cl.clean(" ".join([cl.lower_subject(subject), *words])), prep2, wh2, rest) if x)
    out.append(FactQuestion(upper_first(echo) + "?", keys, "echo", probe=True))
    return out


def _ask_command(vp: str, prep: str | None, rest: str, wh: str, key: str, where: bool,
                 subject_hint: str | None, conditioned: bool = False) -> list[FactQuestion]:
    words = vp.split()
    if subject_hint and len(words) >= 2 and words[1] == "them" and looks_plural(subject_hint.split()[-1]):
        words[1] = cl.clean(cl.lower_subject(subject_hint))
    vp = cl.clean(" ".join(words))
    keys = (key,)
    tail = " ".join(x for x in (prep, rest) if x)
    if len(vp.split()) == 1 and not tail and not conditioned:
        return []  # "use X or install Y" → "What do I use?" names nothing the value is for
    out: list[FactQuestion] = []
    if where:
        out.append(FactQuestion(upper_first(f"where do I {vp} {rest}".strip()) + "?", keys, "where"))
    else:
        out.append(FactQuestion(upper_first(f"{wh} do I {vp} {tail}".strip()) + "?", keys, "wh_do"))
        kind = cl.value_kind(key) if wh == "what" else None
        if kind and kind != "command":  # commands get the "Which command …?" frames below
            out.append(FactQuestion(upper_first(f"which {kind} do I {vp} {tail}".strip()) + "?", keys, "kind"))
    if cl.is_command(key) and prep in ("with", "using", "via", "by"):
        action = " ".join(x for x in (vp, rest) if x)
        out.append(FactQuestion(f"Which command {inflect(action, '3rd')}?", keys, "command"))
        out.append(FactQuestion(f"What's the command to {action}?", keys, "command"))
    out.append(FactQuestion(upper_first(f"{wh} should I {vp} {tail}".strip()) + "?", keys, "should"))
    if cl.is_command(key) and prep in ("with", "using", "via", "by"):
        out.append(FactQuestion(f"How do I {' '.join(x for x in (vp, rest) if x)}?", keys, "how"))
    if where:
        out.append(FactQuestion(f"Do you know where to {' '.join(x for x in (vp, rest) if x)}?", keys, "know"))
    else:
        out.append(FactQuestion(f"Do you know {wh} to {vp} {tail}".strip() + "?", keys, "know"))
        out.append(FactQuestion(f"Can you tell me {wh} I should {vp} {tail}".strip() + "?", keys, "tell"))
    out.append(FactQuestion(upper_first(f"{wh} am I supposed to {vp} {tail}".strip()) + "?", keys, "supposed",
                            probe=True))
    return out


def _never_verb(lw: list[str]) -> str | None:
    """"NEVER use", "Don't commit", "Do not edit": the forbidden action's verb, else None."""
    words = [w.lower() for w in lw]
    if len(words) == 2 and words[0] in ("never", "don't", "dont", "don’t"):
        verb = words[1]
    elif len(words) == 3 and words[:2] == ["do", "not"]:
        verb = words[2]
    else:
        return None
    # after "never" comes the imperative, whatever the verb (memtune's verb lists are not complete)
    return verb if re.fullmatch(r"[a-z]+(?:-[a-z]+)?", verb) and verb not in cl.NOT_HEADS else None


def _ask_never(verb: str, prep: str | None, rest: str, wh: str, key: str,
               conditioned: bool = False) -> list[FactQuestion]:
    """"NEVER use `print()` in library code" → "What should I never use in library code?" (never
    "What do I use …?": that would teach the forbidden value as the answer to a how-to)."""
    tail = " ".join(x for x in (prep, rest) if x)
    if not tail and not conditioned:
        return []  # "Never use X" alone: the question would name nothing the rule is about
    keys = (key,)
    return [
        FactQuestion(upper_first(f"{wh} should I never {verb} {tail}") + "?", keys, "never"),
        FactQuestion(upper_first(f"{wh} must I not {verb} {tail}") + "?", keys, "never"),
        FactQuestion(f"Do you know {wh} not to {verb} {tail}?", keys, "know"),
        FactQuestion(upper_first(f"{wh} am I not supposed to {verb} {tail}") + "?", keys, "supposed", probe=True),
    ]


def _when(clause: str, keywords: tuple[str, ...] | list[str] = ()) -> FactQuestion | None:
    """"Split a module when it passes about 600 lines" → "When should I split a module?" (the
    values of the condition are the answer); "CI fails if it takes over 90 minutes" → "When does CI fail?"."""
    m = _CONDITION_RE.search(clause)
    if not m:
        return None
    main, condition = clause[: m.start()], cl.TAIL_CUT_RE.split(m.group(1), maxsplit=1)[0]
    keys = tuple(k for k, _, _ in cl.find_values(condition, keywords))
    words = main.split()
    if not keys or not words or "," in main or words[0].lower() in cl.NEGATIONS:
        return None
    parsed = cl.parse_clause(words)
    if parsed is None:
        return None
    if parsed[0] == "command":
        return FactQuestion(f"When should I {cl.clean(parsed[1])}?", keys, "when")
    q = _ask_statement("When", words, parsed[1], parsed[2])
    return FactQuestion(q, keys, "when") if q else None


def _ask_statement(wh: str, words: list[str], subject: str, vi: int) -> str | None:
    """"CI fails …" → "When does CI fail?"; "IDs are kept as strings" → "Why are IDs kept as strings?"."""
    verb, after = words[vi].lower(), cl.clean(" ".join(words[vi + 1:]))
    front = _front(wh, verb, cl.clean(cl.lower_subject(subject)))
    return re.sub(r"\s+\?", "?", f"{front} {after}?") if front else None


def _front(wh: str, verb: str, subj: str) -> str | None:
    """The question's front for a statement's verb: "which port does the worker listen", "why
    are IDs", "how many seconds did the conversion take"; None for a verb memtune cannot invert."""
    if verb in cl.AUX or verb in cl.MODALS:
        return f"{wh} {verb} {subj}"
    if verb in ("has", "have"):
        return f"{wh} {'does' if verb == 'has' else 'do'} {subj} have"
    if verb.endswith("s") and cl.verb_base(verb):
        return f"{wh} does {subj} {cl.verb_base(verb)}"
    if verb in cl.PLURAL_VERBS:
        return f"{wh} do {subj} {verb}"
    if verb in cl.PAST_FORMS:
        return f"{wh} did {subj} {cl.PAST_FORMS[verb]}"
    return None


def _why(clause: str, keywords: tuple[str, ...] | list[str] = ()) -> FactQuestion | None:
    """"Wrap errors with X so callers can use Y" → "Why should I wrap errors with X?"."""
    m = _REASON_RE.search(clause)
    if not m:
        return None
    main, reason = clause[: m.start()], m.group(1)
    keys = tuple(k for k, _, _ in cl.find_values(reason, keywords))
    if not keys:
        words = [w for w in re.findall(r"[A-Za-z][\w-]{3,}", reason) if w.lower() not in cl.NOT_HEADS]
        keys = tuple(words[-1:])
    if not keys:
        return None
    words = main.split()
    negative = bool(words) and words[0].lower() in ("never", "don't", "dont")
    if negative:
        words = words[1:]
    if "," in main:  # "X are the codes, kept as strings" → "X are kept as strings"
        head, _, last = main.rpartition(", ")
        parsed = cl.parse_clause(head.split())
        first = last.split()[0].lower() if last.split() else ""
        if (parsed and parsed[0] == "statement" and head.split()[parsed[2]].lower() in cl.AUX
                and (first.endswith("ed") or first in cl.PARTICIPLES)):
            words = [*head.split()[: parsed[2] + 1], *last.split()]
        else:
            return None
    parsed = cl.parse_clause(words)
    if parsed is None:
        return None
    if parsed[0] == "command":
        modal = "shouldn't" if negative else "should"
        return FactQuestion(re.sub(r"\s+\?", "?", f"Why {modal} I {cl.clean(parsed[1])}?"), keys, "why")
    q = _ask_statement("Why", words, parsed[1], parsed[2])
    return FactQuestion(q, keys, "why") if q else None
