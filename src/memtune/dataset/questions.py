"""Question families: how developers actually ask about a rule, per kind of note.

Each family is a set of templates over a :class:`~memtune.dataset.topics.Topic`'s shapes
(``{vp}`` "start the backend", ``{vp3}`` "starts the backend", ``{ger}`` "starting the
backend", ``{np}`` "the Node version", ``{symptom}`` "MUI Lab dependency conflicts").
Training draws from :data:`TRAIN_FAMILIES`; probes use :data:`PROBE_FAMILIES`, whose
wording never appears in training for any guideline, so probe recall measures whether the
adapter learned the fact rather than the phrasing.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from functools import lru_cache

from memtune.dataset.text import question_key, upper_first
from memtune.dataset.topics import Topic

# family -> templates. A template is skipped when a slot it needs is missing.
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
    ),
    "should": (
        "Should I {vp}?",
        "Do I need to {vp}?",
        "Am I supposed to {vp}?",
        "Is it required to {vp}?",
    ),
    "rule": (
        "What's the rule on {subject}?",
        "What's the team's rule for {subject}?",
        "Is there a guideline about {subject}?",
        "What are the rules around {subject}?",
        "What's our policy on {subject}?",
    ),
    "about": (
        "What should I know about {np}?",
        "Tell me about {np}.",
        "What do we do about {np}?",
        "What's important about {np} here?",
        "Explain {np} in this project.",
        "Any advice on {np}?",
    ),
    "describe": (
        "What do I need to know about {np}?",
        "Can you summarize {np} for me?",
        "Give me a quick overview of {np}.",
        "What's the story with {np}?",
    ),
    "situation": (
        "What do I need to do {when} {clause}?",
        "Is there anything I have to do {when} {clause}?",
        "{When} {clause}, what should I keep in mind?",
    ),
    "why": (
        "Why do we {vp}?",
        "Why is {ger} important here?",
        "Why do we care about {np}?",
    ),
    "short": ("{Subject}?",),
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
    "command": ("command", "how", "short", "about", "situation", "rule", "why"),
    "gotcha": ("gotcha", "how", "about", "situation", "should", "rule", "why", "short"),
    "lesson": ("about", "how", "situation", "gotcha", "should", "rule", "why", "short"),
    "pattern": ("pattern", "how", "about", "should", "rule", "situation", "why", "short"),
    "rule": ("rule", "should", "how", "about", "situation", "why", "short"),
    "fact": ("about", "describe", "how", "short", "situation", "should"),
}
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
        "when": when,
        "When": upper_first(when) if when else None,
        "clause": clause,
    }


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
    pools: list[tuple[str, list[str]]] = []
    for fam, templates in PROBE_FAMILIES.items():
        ts = list(templates)
        if topic.polarity == "dont":
            ts = [t for t in ts if "how to {vp}" not in t and "how do we {vp}" not in t]
        else:
            ts = [t for t in ts if "wants to {vp}" not in t]
        rng.shuffle(ts)
        rendered = [q for q in (render(t, values) for t in ts) if q]
        if rendered:
            pools.append((fam, rendered))
    rng.shuffle(pools)
    out: list[Question] = []
    seen: set[str] = set()
    while len(out) < n and any(qs for _, qs in pools):
        for fam, qs in pools:
            if qs and len(out) < n:
                q = qs.pop(0)
                if question_key(q) not in seen:
                    seen.add(question_key(q))
                    out.append(Question(fam, q, "probe"))
    return out
