"""Contrastive negatives: the user proposes the anti-pattern, the assistant says no and why.

The reference implementation trained on bad examples as if they were answers. Here the
anti-pattern only ever appears in the *user* turn; the assistant's answer always opens
with a refusal and then gives the guideline — the right way — so a model can learn what
not to do without ever being taught to say it.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from memtune.dataset.answers import GuidelineText, _format_example
from memtune.dataset.grammar import is_codeish, starts_with_verb
from memtune.dataset.text import REDACTED_RE, question_key, upper_first
from memtune.dataset.topics import Topic

REFUSALS = ("No.", "No, don't.", "No, that's not how we do it here.", "No, that would break the rule.")


@dataclass(frozen=True)
class Negative:
    family: str
    question: str
    answer: str
    anti_pattern: str  # what the user proposed (never part of the answer)


def _code(s: str) -> str:
    s = s.strip()
    return s if s.startswith("`") or not is_codeish(s.split()[0] if s.split() else s) else f"`{s}`"


def _fix(text: GuidelineText) -> str:
    if text.good:
        good = "\n".join(_format_example(g) for g in text.good[:1])
        return f"Do this instead:\n{good}\n\n{text.body}"
    return text.body


def negatives(topic: Topic, text: GuidelineText, bad: list[str], rng: random.Random, *,
              priority: int = 50) -> list[Negative]:
    """Every contrastive example the guideline supports, interleaved by source."""
    subject = topic.ger or topic.np
    pools: list[list[Negative]] = []

    from_bad: list[Negative] = []
    for b in bad[:4]:
        b = b.strip()
        if not b or REDACTED_RE.search(b) or len(b) > 600:
            continue
        shown = _format_example(b)
        is_block = shown.startswith(("```", "~~~"))
        templates = (
            [f"For {subject}, is this OK?\n\n{shown}", f"I was going to do this for {subject}:\n\n{shown}\n\nIs that fine?",
             f"Can I write it like this?\n\n{shown}"]
            if is_block
            else [f"For {subject}, is it OK to do this: {shown.rstrip('.')}?",
                  f"Can I just do this for {subject}: {shown.rstrip('.')}?"]
        )
        if not is_block and starts_with_verb(b.split()):
            templates.append(f"Can I just {b[0].lower() + b[1:].rstrip('.')}?")
        q = rng.choice(templates)
        answer = f"No, don't do it that way. {_fix(text)}"
        from_bad.append(Negative("negative_bad_example", q, answer, b))
    pools.append(from_bad)

    if topic.vp and topic.polarity == "dont":
        forbidden = [
            "Can I {vp}?", "Is it OK to {vp}?", "Should I {vp}?", "I'm about to {vp}. Any problem with that?",
            "Would it be fine to {vp}?",
        ]
        rng.shuffle(forbidden)
        pools.append([
            Negative("negative_forbidden", upper_first(t.format(vp=topic.vp)),
                     f"{rng.choice(REFUSALS)} {text.body}", topic.vp)
            for t in forbidden
        ])
    elif topic.vp and topic.polarity == "do" and topic.modal_on_vp:
        skip = [
            "Can I skip {ger}?", "Do I really have to {vp}? I'd rather skip it.", "Is it fine if I don't {vp}?",
            "Can I leave out {ger} this once?",
        ]
        rng.shuffle(skip)
        pools.append([
            Negative("negative_skip", upper_first(t.format(vp=topic.vp, ger=topic.ger)),
                     f"No, don't skip it. {text.body}", f"skip {topic.ger}")
            for t in skip
        ])

    also: list[Negative] = []
    for action in topic.forbidden:
        t = rng.choice(["Can I {vp}?", "Is it OK to {vp}?", "Should I {vp}?"])
        also.append(Negative("negative_forbidden", upper_first(t.format(vp=action)),
                             f"{rng.choice(REFUSALS)} {text.body}", action))
    pools.append(also)

    alts: list[Negative] = []
    for alt in topic.alternatives:
        shown = _code(alt)
        if topic.vp and topic.vp.startswith("use ") and topic.polarity == "do":
            t = rng.choice([f"Can I use {shown} instead of {topic.vp[4:]}?", f"Is {shown} OK instead of {topic.vp[4:]}?"])
        else:
            t = rng.choice([f"For {subject}, can I use {shown} instead?", f"Is {shown} fine for {subject}?",
                            f"Can I just use {shown} for {subject}?"])
        alts.append(Negative("negative_alternative", t, f"No, not {shown}. {text.body}", alt))
    pools.append(alts)

    out: list[Negative] = []
    seen: set[str] = set()
    while any(pools):
        for pool in pools:
            if pool:
                n = pool.pop(0)
                if question_key(n.question) not in seen:
                    seen.add(question_key(n.question))
                    out.append(n)
        pools = [p for p in pools if p]
    return out


def is_refusal(answer: str) -> bool:
    """Does an answer open by rejecting the user's proposal? (used by tests and checks)."""
    return bool(re.match(r"^\s*No\b", answer))
