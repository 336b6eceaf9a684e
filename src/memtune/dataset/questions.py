"""Question families: how developers actually ask about a rule, per kind of note.

Each family is a set of templates over a :class:`~memtune.dataset.topics.Topic`'s shapes
(``{vp}`` "start the backend", ``{vp3}`` "starts the backend", ``{ger}`` "starting the
backend", ``{np}`` "the Node version", ``{symptom}`` "MUI Lab dependency conflicts").
Training draws from :data:`TRAIN_FAMILIES`; probes use :data:`PROBE_FAMILIES`, whose
wording never appears in training for any guideline, so probe recall measures whether the
adapter learned the fact rather than the phrasing.
"""

from __future__ import annotations

from collections.abc import Iterator
import random
import re
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

from memtune.dataset.text import question_key, upper_first
from memtune.dataset.topics import Topic

# family -> templates. A template is skipped when a slot it needs is missing. Families
# name the topic in different ways (verb phrase, noun phrase, the note's title, a label
# like "the lesson about …", a key identifier) so a new phrasing still points at the fact.
TRAIN_FAMILIES: dict[str, tuple[str, ...]] = {
    "how": (
        "How do I {vp}?",
        "How do I {vp} in this project?",
        "What's the right way to {vp}?",
        "How should I {vp}?",
        "What's the correct way to {vp} here?",
        "Can you tell me how to {vp}?",
        "What are the steps to {vp}?",
        "How can I {vp}?",
        "I need to {vp}. How?",
        "How does one {vp} in this repo?",
        "How do we deal with {plain_np}?",
    ),
    "command": (
        "What's the command to {vp}?",
        "Which command {vp3}?",
        "What do I run to {vp}?",
        "What's the exact command for {ger}?",
        "Give me the command to {vp}.",
        "What should I type to {vp}?",
        "What's the command for {np}?",
        "Which command do I use for {np}?",
        "What do I run for {np}?",
        "What are the commands for {np}?",
        "Command for {ger}?",
        "What's the shell command for {ger}?",
    ),
    "gotcha": (
        "I'm getting {symptom}. What's wrong?",
        "Why am I seeing {symptom}?",
        "How do I fix {symptom}?",
        "I keep hitting {symptom}. What's going on?",
        "I'm running into problems with {np}. What's going on?",
        "What's the gotcha with {np}?",
        "Is there anything tricky about {np}?",
        "What should I watch out for with {np}?",
        "What trips people up with {np}?",
        "Any pitfalls with {np}?",
        "What can go wrong with {np}?",
    ),
    "pattern": (
        "How should I implement {named}?",
        "What is {named}?",
        "When should I use {named}?",
        "How does {named} work in this codebase?",
        "What's the pattern for {ger}?",
        "How is {ger} done in this codebase?",
        "What's the convention for {ger}?",
        "What's the pattern for {plain_np}?",
        "How do we handle {plain_np} in this codebase?",
        "What's the convention for {plain_np}?",
        "How is {plain_np} set up in this codebase?",
    ),
    "should": (
        "Should I {vp}?",
        "Do I need to {vp}?",
        "Am I supposed to {vp}?",
        "Is it required to {vp}?",
        "Do we {vp} here?",
    ),
    "rule": (
        "What's the rule on {subject}?",
        "What's the team's rule for {subject}?",
        "Is there a guideline about {subject}?",
        "What are the rules around {subject}?",
        "What's our policy on {subject}?",
        "What does the project memory say about {subject}?",
        "Is there a convention for {subject}?",
    ),
    "about": (
        "What should I know about {np}?",
        "Tell me about {np}.",
        "What do we do about {np}?",
        "What's important about {np} here?",
        "Explain {np} in this project.",
        "Any advice on {np}?",
        "What's the deal with {np}?",
        "Fill me in on {np}.",
        "I have a question about {np}.",
        "What's worth knowing about {np}?",
    ),
    "describe": (
        "What do I need to know about {np}?",
        "Can you summarize {np} for me?",
        "Give me a quick overview of {np}.",
        "What's the story with {np}?",
        "Walk me through {np}.",
        "Briefly, what about {np}?",
        "Quick summary of {np}, please.",
    ),
    "situation": (
        "What do I need to do {when} {clause}?",
        "Is there anything I have to do {when} {clause}?",
        "{When} {clause}, what should I keep in mind?",
        "What's the procedure {when} {clause}?",
    ),
    "why": (
        "Why do we {vp}?",
        "Why is {ger} important here?",
        "Why do we care about {np}?",
        "What's the reason behind {np}?",
    ),
    "short": (
        "{Subject}?",
        "{Subject}: what's the rule?",
        "Question on {subject}.",
    ),
    "titled": (
        "What does the \"{title}\" note say?",
        "What's in the note called \"{title}\"?",
        "Summarize the \"{title}\" note.",
        "What is \"{title}\" about?",
        "What's {labelled}?",
        "What does {labelled} say?",
        "Can you explain {labelled}?",
    ),
    "ident": (
        "What's {ident} about?",
        "What do I need to know about {ident}?",
        "Where does {ident} come in?",
        "What's the deal with {ident} here?",
        "Tell me about {ident} in this project.",
        "When does {ident} matter?",
        "What is {ident} for here?",
        "What's the note that mentions {ident2}?",
        "How does {ident2} fit in here?",
    ),
}
# Held out from training for every guideline (see module docstring).
PROBE_FAMILIES: dict[str, tuple[str, ...]] = {
    "remind": (
        "Remind me, how do we {vp} here?",
        "Remind me what the rule is for {subject}.",
        "Can you remind me what we decided about {np}?",
    ),
    "teammate": (
        "A teammate asked me how to {vp}. What should I tell them?",
        "A new teammate is asking about {np}. What should I tell them?",
        "A teammate is seeing {symptom}. What should I tell them?",
        "A teammate wants to {vp}. Is that OK?",
    ),
    "forgot": (
        "I forgot our approach to {subject}. What was it?",
        "I forgot what to do {when} {clause}. What was it?",
    ),
}
PROBE_MARKERS = ("remind", "teammate", "i forgot")

# Which families fit each kind of note, most natural first.
_GROUP_FAMILIES = {
    "command": ("command", "how", "titled", "short", "about", "ident", "situation", "rule", "describe", "why"),
    "gotcha": ("gotcha", "how", "about", "titled", "ident", "situation", "should", "rule", "why", "short",
               "describe"),
    "lesson": ("about", "how", "titled", "situation", "ident", "gotcha", "should", "rule", "why", "short",
               "describe"),
    "pattern": ("pattern", "how", "titled", "about", "ident", "should", "rule", "situation", "why", "short",
                "describe"),
    "rule": ("rule", "should", "how", "titled", "about", "ident", "situation", "why", "short", "describe"),
    "fact": ("about", "describe", "titled", "how", "ident", "short", "situation", "should", "rule"),
}
# How "labelled" names a note of each group: "the lesson about the learning rate".
_GROUP_NOUNS = {"command": "the command for", "gotcha": "the gotcha about", "lesson": "the lesson about",
                "pattern": "the pattern for", "rule": "the rule about", "fact": "the note about"}
# Templates that presuppose doing the action: wrong for a NEVER rule's forbidden action.
_DO_ONLY = {"how", "command", "should"}
_NAMED_SUFFIXES = ("pattern", "convention", "approach", "strategy", "architecture", "flow", "model", "layer",
                   "principle", "workflow")
_STATE_WORDS = re.compile(r"\b(in use|not|n't|cannot|fails?|failed|missing|undefined|denied|refused)\b", re.I)
_SLOT_RE = re.compile(r"\{(\w+)\}")
_THE_THE_RE = re.compile(r"\bthe the\b")


@dataclass(frozen=True)
class Question:
    family: str
    text: str
    intent: str  # which answer form suits it: how | command | gotcha | pattern | should | rule | …
    keys: tuple[str, ...] = ()  # a value question's values (answered value first)


def slots(topic: Topic) -> dict[str, str | None]:
    """The values templates can use for this topic; None = this template does not fit."""
    cached = topic.__dict__.get("_slots")
    if cached is None:
        cached = topic.__dict__["_slots"] = _slots(topic)
    return cached


def _slots(topic: Topic) -> dict[str, str | None]:
    named = topic.np if topic.bare_np.split()[-1].lower() in _NAMED_SUFFIXES else None
    is_gerund_np = topic.ger is not None and topic.np == topic.ger
    subject = topic.ger if (topic.ger and topic.vp_from_name) else topic.np
    symptom = topic.symptom
    if symptom and _STATE_WORDS.search(symptom):
        symptom = f'"{symptom}"'
    when = clause = None
    if topic.situations:
        when, clause = topic.situations[0]
    return {
        "vp": topic.vp,
        "vp3": topic.vp3,
        "ger": topic.ger,
        "np": topic.np,
        "plain_np": None if (named or is_gerund_np) else topic.np,
        "named": named,
        "symptom": symptom,
        "subject": subject,
        "Subject": upper_first(subject) if subject else None,
        "title": _title(topic),
        "labelled": _labelled(topic, subject),
        "ident": topic.idents[0] if topic.idents else None,
        "ident2": topic.idents[1] if len(topic.idents) > 1 else None,
        "when": when,
        "When": upper_first(when) if when else None,
        "clause": clause,
    }


def _title(topic: Topic) -> str | None:
    """The note's own short title ("Torch Pin"), when it reads as a name and not a sentence."""
    name = topic.name.strip()
    words = name.split()
    if not 1 <= len(words) <= 6 or '"' in name or name.lower() == topic.np.lower():
        return None
    return name


def _labelled(topic: Topic, subject: str | None) -> str | None:
    """"the gotcha about the torch pin": the subject named together with the kind of note."""
    if not subject or subject.startswith('"'):
        return None
    if topic.group == "pattern" and topic.bare_np.split()[-1].lower() in _NAMED_SUFFIXES:
        return None
    return f"{_GROUP_NOUNS.get(topic.group, 'the note about')} {subject}"


@lru_cache(maxsize=512)
def _needed(template: str) -> tuple[str, ...]:
    return tuple(_SLOT_RE.findall(template))


def render(template: str, values: dict[str, str | None]) -> str | None:
    needed = _needed(template)
    if any(not values.get(k) for k in needed):
        return None
    text = template.format(**{k: values[k] for k in needed})
    if "the the " in text:
        text = _THE_THE_RE.sub("the", text)
    return upper_first(text)


def _should_fits(topic: Topic) -> bool:
    """"Should I …?" reads naturally for a rule ("Should I use pathlib?"), not for a how-to
    ("Should I start the backend?") unless the note itself says ALWAYS / MUST."""
    if not topic.vp or topic.polarity != "do":
        return False
    return topic.modal_on_vp or (topic.group in ("rule", "pattern") and not topic.code_only)


def families_for(topic: Topic) -> list[str]:
    fams = list(_GROUP_FAMILIES.get(topic.group, _GROUP_FAMILIES["fact"]))
    if topic.polarity == "dont" and topic.vp:
        fams = [f for f in fams if f not in _DO_ONLY]
    if "should" in fams and not _should_fits(topic):
        fams.remove("should")
    elif "should" not in fams and _should_fits(topic):
        fams.insert(2, "should")
    if topic.symptom:  # "I'm getting … what's wrong?" is how people ask about an error
        if topic.np.startswith('"'):  # an error message is not a rule, a policy or a pattern
            fams = [f for f in fams if f in ("how", "about", "situation", "should", "why")]
        elif "gotcha" in fams:
            fams.remove("gotcha")
        fams.insert(0, "gotcha")
    return fams


def train_questions(topic: Topic, rng: random.Random, *, has_rationale: bool = False,
                    limit: int | None = None) -> list[Question]:
    """Distinct training questions for a topic (up to ``limit``), interleaved across families.

    Round-robin over the families that fit (most natural first), templates shuffled
    within a family: the first few questions already cover different phrasings. Rendering
    is lazy, and the order does not depend on ``limit`` (a shorter list is a prefix).
    """
    values = slots(topic)
    per_family: list[tuple[str, list[str]]] = []
    for fam in families_for(topic):
        if fam == "why" and not has_rationale:
            continue
        templates = list(TRAIN_FAMILIES[fam])
        if fam == "why" and topic.polarity == "dont":
            templates = ["Why shouldn't I {vp}?", "Why is {ger} a problem here?"]
        rng.shuffle(templates)
        per_family.append((fam, templates))
    out: list[Question] = []
    seen: set[str] = set()
    while per_family and (limit is None or len(out) < limit):
        for fam, templates in per_family:
            while templates:
                q = render(templates.pop(), values)
                if q is None:
                    continue
                key = question_key(q)
                if key not in seen:
                    seen.add(key)
                    out.append(Question(fam, q, fam))
                break
            if limit is not None and len(out) >= limit:
                break
        per_family = [(f, t) for f, t in per_family if t]
    return out


def probe_questions(topic: Topic, rng: random.Random, n: int = 3) -> list[Question]:
    """Up to ``n`` held-out questions (different families first)."""
    values = slots(topic)
    pools: list[tuple[str, Iterator[str]]] = []
    for fam, templates in PROBE_FAMILIES.items():
        ts = list(templates)
        if topic.polarity == "dont":
            ts = [t for t in ts if "how to {vp}" not in t and "how do we {vp}" not in t]
        else:
            ts = [t for t in ts if "wants to {vp}" not in t]
        rng.shuffle(ts)
        rendered = (q for q in (render(t, values) for t in ts) if q)  # lazy: most probes need 1-2 of them
        first = next(rendered, None)
        if first:
            pools.append((fam, chain([first], rendered)))
    rng.shuffle(pools)
    out: list[Question] = []
    seen: set[str] = set()
    live = list(pools)
    while len(out) < n and live:
        for pool in list(live):
            if len(out) >= n:
                break
            q = next(pool[1], None)
            if q is None:
                live.remove(pool)
            elif question_key(q) not in seen:
                seen.add(question_key(q))
                out.append(Question(pool[0], q, "probe"))
    return out
