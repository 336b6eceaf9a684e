""""Not in memory" examples: questions the memory cannot answer, answered by saying so.

Fine-tuning a small model on facts teaches it to answer *every* project question in the
memory's confident voice, inventing commands for topics the memory never mentions
(Gekhman et al. 2024). A small share of examples about plausible project topics the memory
does not cover, answered "the project memory has nothing on that" with no specifics,
teaches where its knowledge ends (RAFT-style negatives).

The topics are disjoint from evaluation's control questions (``memtune.evaluate.controls``)
so the controls still measure generalisation; a topic whose terms the memory mentions is
skipped, because the memory might answer it. Questions use the same templates as memory
questions, so the model has to tell the topics apart, not the phrasings.
"""

from __future__ import annotations

import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from memtune.dataset.grammar import inflect
from memtune.dataset.questions import TRAIN_FAMILIES, render
from memtune.dataset.text import question_key


@dataclass(frozen=True)
class UnknownTopic:
    """A plausible project topic: its noun phrase, an action on it, and the words that,
    found anywhere in the memory, mean the memory might cover it."""

    np: str
    vp: str | None
    terms: tuple[str, ...]


UNKNOWN_TOPICS: tuple[UnknownTopic, ...] = (
    UnknownTopic("the Redis session store", "clear the Redis session store", ("redis",)),
    UnknownTopic("the Docker Compose setup", "start the local services with Docker Compose",
                 ("docker compose", "docker-compose", "compose")),
    UnknownTopic("the release versioning scheme", "tag a new release", ("release", "releases", "semver", "changelog")),
    UnknownTopic("the on-call rotation", None, ("on-call", "oncall", "rotation", "pager")),
    UnknownTopic("the OAuth login flow", "add a new OAuth provider", ("oauth", "sso", "login")),
    UnknownTopic("the translation workflow", "add a new translation string", ("i18n", "translation", "translations")),
    UnknownTopic("the load tests", "run the load tests", ("load test", "load tests", "load-test", "locust", "k6")),
    UnknownTopic("the API rate limits", "raise the rate limit for a client", ("rate limit", "rate limits", "rate-limit")),
    UnknownTopic("the Storybook setup", "run Storybook locally", ("storybook",)),
    UnknownTopic("push notifications", "send a test push notification", ("push notification", "push notifications")),
    UnknownTopic("the CSS naming convention", None, ("css", "bem", "tailwind")),
    UnknownTopic("the MongoDB indexes", "add an index to a MongoDB collection", ("mongodb", "mongo")),
    UnknownTopic("the GDPR data deletion process", "delete a user's personal data", ("gdpr", "personal data")),
    UnknownTopic("the branch naming scheme", "name a new branch", ("branch name", "branch names", "branch naming")),
    UnknownTopic("the Celery worker queues", "restart the Celery workers", ("celery",)),
    UnknownTopic("the frontend bundle size budget", "check the frontend bundle size", ("bundle size", "webpack")),
    UnknownTopic("the code review rules", "get a pull request approved", ("code review", "reviewer", "reviewers")),
    UnknownTopic("the accessibility checks", "run the accessibility checks", ("accessibility", "a11y")),
    UnknownTopic("PDF report generation", "generate the monthly PDF report", ("pdf",)),
    UnknownTopic("the websocket reconnect logic", None, ("websocket", "websockets")),
    UnknownTopic("SSL certificate renewal", "renew the SSL certificates", ("ssl", "tls", "certificate", "certificates")),
    UnknownTopic("the design tokens", "sync the design tokens from Figma", ("figma", "design token", "design tokens")),
    UnknownTopic("iOS build signing", "sign the iOS build", ("ios", "xcode", "provisioning")),
    UnknownTopic("analytics event naming", "add a new analytics event", ("analytics",)),
    UnknownTopic("the dark theme colours", "add a colour to the dark theme", ("dark mode", "dark theme", "theme")),
    UnknownTopic("the log retention period", None, ("log retention", "retention")),
    UnknownTopic("timezone handling", "store timestamps with a timezone", ("timezone", "time zone", "timezones")),
    UnknownTopic("currency rounding", "round currency amounts", ("currency", "rounding")),
    UnknownTopic("the A/B testing setup", "set up an A/B test", ("a/b", "ab test", "experiment", "experiments")),
    UnknownTopic("the support escalation process", "escalate a customer ticket", ("escalation", "support ticket",
                                                                                  "zendesk")),
    UnknownTopic("the licence check for dependencies", "check a dependency's licence", ("license", "licence",
                                                                                         "licenses", "licences")),
    UnknownTopic("the Jupyter notebook policy", None, ("jupyter", "notebook", "notebooks")),
    UnknownTopic("the browser support matrix", None, ("browser support", "browserslist", "safari")),
    UnknownTopic("password hashing", "hash user passwords", ("bcrypt", "argon2", "password hashing")),
    UnknownTopic("the CSV customer import", "import customers from a CSV file", ("csv",)),
    UnknownTopic("the retry policy for failed jobs", "retry a failed background job", ("dead letter", "dead-letter",
                                                                                        "background job")),
    UnknownTopic("the HTTP caching headers", "set the cache headers on a response", ("cache-control", "etag",
                                                                                      "caching headers")),
    UnknownTopic("maintenance mode", "turn on maintenance mode", ("maintenance mode",)),
    UnknownTopic("the dependency update bot", "merge the dependency update PRs", ("dependabot", "renovate")),
    UnknownTopic("the status page", "post an incident on the status page", ("status page", "statuspage",
                                                                             "incident")),
    UnknownTopic("the web font loading", "add a new web font", ("font", "fonts")),
    UnknownTopic("the Redux store layout", "add a slice to the Redux store", ("redux",)),
    UnknownTopic("the image thumbnail service", "regenerate the image thumbnails", ("thumbnail", "thumbnails")),
    UnknownTopic("the search ranking tweaks", "boost a field in search ranking", ("ranking", "boost")),
    UnknownTopic("the seed data for demos", "load the demo seed data", ("seed data", "fixtures")),
)

# Every answer admits the gap in words evaluation's control classifier reads as "admits"
# (no information / does not cover / I don't know) and names no command, path or value.
ANSWERS = (
    ("I don't know: the project memory has no information about {topic}. Check the project's docs or ask "
     "the people who work on it."),
    ("The project memory does not cover {topic}, so I can't tell you how it's done here. The project's "
     "documentation or the team would know."),
    ("There is no mention of {topic} in the project memory. I'd rather not guess; ask a maintainer or look "
     "in the project's docs."),
    ("Nothing in the project memory is about {topic}, so I don't know the specifics. Please check with the "
     "team or the project's documentation."),
)
# Memory-question families whose templates read naturally for any topic.
_FAMILIES = ("how", "command", "about", "describe", "rule", "short")
_SLOTS = frozenset({"vp", "vp3", "ger", "np", "plain_np", "subject", "Subject"})


def _term_pattern(term: str) -> str:
    return r"(?<![a-z0-9])" + re.escape(term.lower()) + r"(?![a-z0-9])"


@cache
def _matcher() -> tuple[re.Pattern[str], dict[str, tuple[int, ...]]]:
    """One regex for every term (one pass over a note), and term → the topics it rules out."""
    owners: dict[str, list[int]] = {}
    for i, t in enumerate(UNKNOWN_TOPICS):
        for term in t.terms:
            owners.setdefault(term.lower(), []).append(i)
    terms = sorted(owners, key=len, reverse=True)
    rx = re.compile("|".join(_term_pattern(t) for t in terms))
    return rx, {k: tuple(v) for k, v in owners.items()}


def mentioned_topics(text: str) -> frozenset[int]:
    """Indices of the unknown topics whose terms ``text`` (one note) mentions."""
    rx, owners = _matcher()
    out: set[int] = set()
    for m in rx.finditer((text or "").lower()):
        out.update(owners.get(m.group(0), ()))
    return frozenset(out)


def note_text(g: Any) -> str:
    """What of a guideline counts as "the memory mentions it" (the same fields evaluation checks)."""
    get = g.get if isinstance(g, dict) else lambda k: getattr(g, k, None)
    tags = " ".join(get("tags") or [])
    return "\n".join(x for x in (get("name"), get("category"), tags, get("content"), get("rationale")) if x)


def _templates() -> list[str]:
    out = []
    for fam in _FAMILIES:
        for t in TRAIN_FAMILIES[fam]:
            slots = set(re.findall(r"\{(\w+)\}", t))
            if slots and slots <= _SLOTS:
                out.append(t)
    return out


@dataclass(frozen=True)
class UnknownQuestion:
    topic: UnknownTopic
    question: str
    answer: str
    form: str


def unknown_questions(n: int, *, seed: int, excluded: Iterable[int] = ()) -> list[UnknownQuestion]:
    """``n`` distinct (question, answer) pairs about topics not in ``excluded`` (deterministic per seed).

    Topics are spread first (one question each, in a seeded order), then reused with other
    templates; fewer than ``n`` only when every topic is excluded or exhausted.
    """
    skip = set(excluded)
    rng = random.Random(f"{seed}:unknown")
    topics = [t for i, t in enumerate(UNKNOWN_TOPICS) if i not in skip]
    rng.shuffle(topics)
    pools: list[tuple[UnknownTopic, list[str]]] = []
    base = _templates()
    for t in topics:
        ts = list(base)
        rng.shuffle(ts)
        pools.append((t, ts))
    out: list[UnknownQuestion] = []
    seen: set[str] = set()
    while len(out) < n and any(ts for _, ts in pools):
        for topic, ts in pools:
            if len(out) >= n:
                break
            while ts:
                q = render(ts.pop(), _slots(topic))
                if q is None or question_key(q) in seen:
                    continue
                seen.add(question_key(q))
                k = rng.randrange(len(ANSWERS))
                out.append(UnknownQuestion(topic, q, answer_for(topic, q, k), f"unknown_{k}"))
                break
    return out


def answer_for(topic: UnknownTopic, question: str, k: int = 0) -> str:
    """The admission; it names the topic only in the words the question used (nothing new)."""
    named = topic.np if topic.np.lower() in question.lower() else "that"
    return ANSWERS[k % len(ANSWERS)].format(topic=named)


def _slots(topic: UnknownTopic) -> dict[str, str | None]:
    np = topic.np
    return {
        "vp": topic.vp,
        "vp3": inflect(topic.vp, "3rd") if topic.vp else None,
        "ger": inflect(topic.vp, "ing") if topic.vp else None,
        "np": np,
        "plain_np": np,
        "subject": np,
        "Subject": np[:1].upper() + np[1:],
    }


def unknown_count(memory_examples: int, fraction: float) -> int:
    """How many unknown examples make ``fraction`` of the whole set (memory examples + these)."""
    if fraction <= 0 or memory_examples <= 0:
        return 0
    return max(1, round(memory_examples * fraction / (1 - fraction)))


def distractor_notes(notes: Sequence[Any], rng: random.Random, k_max: int = 2) -> list[Any]:
    """1..k_max of ``notes`` (the retrieval a real question about the topic would bring up)."""
    if not notes:
        return []
    return rng.sample(list(notes), min(len(notes), rng.randint(1, k_max)))


__all__ = ["ANSWERS", "UNKNOWN_TOPICS", "UnknownQuestion", "UnknownTopic", "answer_for", "mentioned_topics",
           "note_text", "unknown_count", "unknown_questions"]
