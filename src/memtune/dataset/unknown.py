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

# Questions after one specific value (a name, a number, a path): the shape a user asks when a
# confident small model is most tempted to make something up. Memory-style templates alone
# taught the model to refuse "how do we ..." but still answer "which ... ?" with an invention.
DETAIL_QUESTIONS: dict[str, tuple[str, ...]] = {
    "the Redis session store": ("Which Redis database number holds the user sessions?",
                                "How long do sessions live in the Redis session store?"),
    "the Docker Compose setup": ("Which port does the Docker Compose setup expose for the web app?",
                                 "What's the name of the Docker Compose file for local services?"),
    "the release versioning scheme": ("What is the current release version number?",
                                      "Who approves a new release tag?"),
    "the on-call rotation": ("Who is on call this week?", "How long is one on-call shift?"),
    "the OAuth login flow": ("What's the OAuth callback URL?", "Which scopes does the OAuth login request?"),
    "the translation workflow": ("Which tool manages the translation strings?",
                                 "What is the default fallback language for translations?"),
    "the load tests": ("How many virtual users do the load tests simulate?",
                       "Which script runs the load tests?"),
    "the API rate limits": ("How many requests per minute does the API allow per client?",
                            "Which header reports the remaining API rate limit?"),
    "the Storybook setup": ("Which port does Storybook run on?", "Where are the Storybook stories kept?"),
    "push notifications": ("Which service sends the push notifications?",
                           "What's the payload size limit for push notifications?"),
    "the CSS naming convention": ("What prefix do our CSS class names use?",),
    "the MongoDB indexes": ("Which fields does the orders collection index in MongoDB?",
                            "What is the MongoDB connection string for local development?"),
    "the GDPR data deletion process": ("How many days do we have to delete a user's personal data?",
                                       "Which script deletes a user's personal data?"),
    "the branch naming scheme": ("What prefix do feature branches use?",),
    "the Celery worker queues": ("How many Celery worker queues are there?",
                                 "Which Celery queue handles the email jobs?"),
    "the frontend bundle size budget": ("What is the maximum size of the main frontend bundle?",),
    "the code review rules": ("How many approvals does a pull request need?",
                              "Who has to review changes to the login code?"),
    "the accessibility checks": ("Which WCAG level do the accessibility checks enforce?",),
    "PDF report generation": ("Which library generates the PDF reports?",
                              "Where are generated PDF reports stored?"),
    "the websocket reconnect logic": ("How many seconds does the websocket wait before reconnecting?",),
    "SSL certificate renewal": ("When do the SSL certificates expire?",
                                "Which tool renews the SSL certificates?"),
    "the design tokens": ("Where is the design tokens file?", "What is the primary brand colour token?"),
    "iOS build signing": ("Which Apple team ID signs the iOS build?",),
    "analytics event naming": ("Which analytics provider receives our events?",
                               "What case do analytics event names use?"),
    "the dark theme colours": ("What is the background colour of the dark theme?",),
    "the log retention period": ("How many days are logs kept?",),
    "timezone handling": ("Which timezone do we store timestamps in?",),
    "currency rounding": ("How many decimal places do we round currency amounts to?",),
    "the A/B testing setup": ("Which tool runs our A/B tests?",),
    "the support escalation process": ("Who handles a support ticket escalated to level two?",),
    "the licence check for dependencies": ("Which dependency licences are not allowed?",),
    "the Jupyter notebook policy": ("Where do the Jupyter notebooks live?",),
    "the browser support matrix": ("What is the oldest browser version we support?",),
    "password hashing": ("Which algorithm hashes user passwords?", "How many hashing rounds do passwords use?"),
    "the CSV customer import": ("Which columns does the customer import CSV need?",),
    "the retry policy for failed jobs": ("How many times is a failed job retried?",),
    "the HTTP caching headers": ("What max-age do static assets get?",),
    "maintenance mode": ("Which environment variable turns on maintenance mode?",),
    "the dependency update bot": ("How often does the dependency update bot open pull requests?",),
    "the status page": ("What is the URL of the status page?",),
    "the web font loading": ("Which web fonts does the site load?",),
    "the Redux store layout": ("Which slices does the Redux store have?",),
    "the image thumbnail service": ("What sizes does the image thumbnail service generate?",),
    "the search ranking tweaks": ("Which field gets the highest boost in search ranking?",),
    "the seed data for demos": ("Which command loads the demo seed data?",),
}

_DETAILS = frozenset(q for qs in DETAIL_QUESTIONS.values() for q in qs)

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


@cache
def _matcher() -> tuple[re.Pattern[str], dict[str, tuple[int, ...]]]:
    """One regex for every term (one pass over a note), and term → the topics it rules out."""
    owners: dict[str, list[int]] = {}
    for i, t in enumerate(UNKNOWN_TOPICS):
        for term in t.terms:
            owners.setdefault(term.lower(), []).append(i)
    terms = sorted(owners, key=len, reverse=True)
    # Word boundaries sit outside the alternation: per-alternative lookarounds made the engine try
    # every term at every position (30x slower on a 100k export).
    rx = re.compile(r"(?<![a-z0-9])(?:" + "|".join(re.escape(t) for t in terms) + r")(?![a-z0-9])")
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
        # Questions are popped from the end: a topic's specific-value questions come first and
        # third, so every topic is asked both ways once it has been asked three times.
        details = list(DETAIL_QUESTIONS.get(t.np, ()))
        rng.shuffle(details)
        if details:
            ts.append(details.pop())
        if details:
            ts.insert(len(ts) - 2, details.pop())
        pools.append((t, ts))
    out: list[UnknownQuestion] = []
    seen: set[str] = set()
    while len(out) < n and any(ts for _, ts in pools):
        for topic, ts in pools:
            if len(out) >= n:
                break
            while ts:
                t = ts.pop()
                q = t if t in _DETAILS else render(t, _slots(topic))
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


__all__ = ["ANSWERS", "DETAIL_QUESTIONS", "UNKNOWN_TOPICS", "UnknownQuestion", "UnknownTopic", "answer_for", "mentioned_topics",
           "note_text", "unknown_count", "unknown_questions"]
