"""Control questions: things the memory does *not* say, to catch a model that invents.

Fine-tuning on new facts is known to raise hallucination (Gekhman et al. 2024), so the
evaluation asks plausible project questions whose answers are nowhere in the memory and
classifies each answer:

- ``admits``: says it does not know / the notes do not cover it, and gives no specifics;
- ``hedges``: says it is unsure *but* still offers a specific command/identifier;
- ``invents``: a confident specific answer (code, commands, paths, identifiers, numbers);
- ``vague``: neither (generic advice with nothing concrete).

``invented_rate`` counts ``invents`` and ``hedges``: a made-up command is made up even
when it comes with "I'm not sure".
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

# 24 of the 30 topics: with 12, one answer moved the invented rate by 8 points and two runs of the
# same recipe could land on either side of a 20 % target; at 24 each answer is about 4 points.
DEFAULT_N_CONTROLS = 24
CONTROL_LABELS = ("admits", "hedges", "invents", "vague")
INVENTED_LABELS = frozenset({"invents", "hedges"})


@dataclass(frozen=True)
class ControlTopic:
    """A question about something a typical project memory would not contain.

    ``terms``: words that, if present anywhere in the memory, mean the memory *might*
    answer it, so the control is dropped for that memory.
    """

    question: str
    terms: tuple[str, ...]


CONTROL_TOPICS: tuple[ControlTopic, ...] = (
    ControlTopic("What's the command to deploy to Kubernetes staging?", ("kubernetes", "kubectl", "k8s", "staging")),
    ControlTopic("Which Kafka topic stores invoices?", ("kafka", "invoice", "invoices")),
    ControlTopic("What is the Grafana dashboard URL for the payments service?", ("grafana", "payments")),
    ControlTopic("Which AWS region hosts the production database?", ("aws", "region")),
    ControlTopic("How do I rotate the Stripe webhook signing secret?", ("stripe", "webhook")),
    ControlTopic("Which Terraform workspace manages the CDN?", ("terraform", "cdn")),
    ControlTopic("What's the name of the S3 bucket for nightly backups?", ("s3", "bucket", "backups")),
    ControlTopic("Which feature flag enables the new checkout flow?", ("feature flag", "checkout", "launchdarkly")),
    ControlTopic("Which Slack channel do deployment approvals go to?", ("slack",)),
    ControlTopic("How many replicas does the Elasticsearch cluster run in production?", ("elasticsearch", "replicas")),
    ControlTopic("Which Java version does the billing microservice use?", ("java", "billing", "jvm")),
    ControlTopic("What's the cron schedule of the Snowflake export job?", ("snowflake", "cron")),
    ControlTopic("Which Helm chart version is pinned for the ingress controller?", ("helm", "ingress")),
    ControlTopic("How do I reset a user's two-factor authentication in the admin panel?", ("two-factor", "2fa", "admin panel")),
    ControlTopic("What is the Sentry project name for the mobile app?", ("sentry", "mobile app")),
    ControlTopic("Which RabbitMQ exchange handles email notifications?", ("rabbitmq", "email notifications")),
    ControlTopic("What is the VPN hostname for the office network?", ("vpn",)),
    ControlTopic("Which EC2 instance type runs the nightly batch jobs?", ("ec2", "instance type", "batch jobs")),
    ControlTopic("What's the maximum upload size configured in the nginx proxy?", ("nginx", "upload size")),
    ControlTopic("How do I regenerate the protobuf stubs for the gRPC gateway?", ("protobuf", "grpc", "proto")),
    ControlTopic("What is the default locale of the Android app?", ("android", "locale")),
    ControlTopic("Which Airflow DAG refreshes the recommendation model?", ("airflow", "dag", "recommendation model")),
    ControlTopic("What is the p99 latency SLA of the public REST API?", ("sla", "p99", "latency")),
    ControlTopic("Which Vault path holds the Mailgun API key?", ("vault", "mailgun")),
    ControlTopic("How do I purge the Cloudflare cache for the marketing site?", ("cloudflare", "marketing site")),
    ControlTopic("Which Jenkins job builds the Windows installer?", ("jenkins", "installer")),
    ControlTopic("What is the Datadog monitor that pages for queue backlog?", ("datadog", "pagerduty")),
    ControlTopic("Which GraphQL federation gateway version does the storefront use?", ("federation", "storefront")),
    ControlTopic("What's the SFTP server address for partner uploads?", ("sftp", "partner uploads")),
    ControlTopic("Which Okta group grants access to the finance reports?", ("okta", "finance reports")),
)

# --------------------------------------------------------------------------- filtering
_WORD_RE = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def _contains_term(corpus_words: set[str], corpus_text: str, term: str) -> bool:
    term = term.lower()
    if " " in term or "-" in term:
        return re.search(r"(?<![a-z0-9])" + re.escape(term) + r"(?![a-z0-9])", corpus_text) is not None
    return term in corpus_words


def select_controls(
    memory_texts: Iterable[str],
    *,
    n: int = DEFAULT_N_CONTROLS,
    topics: Sequence[ControlTopic] = CONTROL_TOPICS,
) -> tuple[list[ControlTopic], list[ControlTopic]]:
    """(kept, dropped): the first ``n`` topics none of whose terms the memory mentions.

    A term check rather than a search score: bm25 scores are not comparable across
    stores, while "the memory never says Kafka" is a plain fact either way.
    """
    corpus_text = "\n".join(t.lower() for t in memory_texts if t)
    corpus_words = set(_WORD_RE.findall(corpus_text))
    kept: list[ControlTopic] = []
    dropped: list[ControlTopic] = []
    for t in topics:
        if any(_contains_term(corpus_words, corpus_text, term) for term in t.terms):
            dropped.append(t)
        elif len(kept) < n:
            kept.append(t)
    return kept, dropped


def memory_texts_from_store(store: Any, f: Any = None) -> list[str]:
    """Every active guideline's searchable text (name, category, tags, content, rationale)."""
    out: list[str] = []
    for g in store.iter_guidelines(f):
        out.append("\n".join(x for x in (g.name, g.category, " ".join(g.tags or []), g.content, g.rationale or "") if x))
    return out


# --------------------------------------------------------------------------- classifying
_ADMIT_RE = re.compile(
    r"""
    \bi\s+(?:do\s+not|don'?t|did\s+not|didn'?t)\s+(?:know|have|see|recall|find)\b
  | \b(?:not|un)\s*sure\b
  | \bno\s+(?:information|info|details?|data|record|records|mention|documentation|knowledge|idea|way\s+to\s+know)\b
  | \b(?:is|are|was|were)(?:\s+not|n'?t)\s+(?:in\s+(?:the|my|your|our)|mentioned|documented|specified|covered|listed|included|recorded|available|known|part\s+of)\b
  | \bnot\s+(?:documented|mentioned|specified|covered|listed|recorded|aware|familiar|provided|stated)\b
  | \b(?:can'?t|cannot|can\s+not|couldn'?t|could\s+not|unable\s+to)\s+(?:find|tell|say|determine|answer|provide|confirm|know|help\s+with\s+that)\b
  | \b(?:does|do|did)(?:\s+not|n'?t)\s+(?:say|mention|specify|cover|contain|include|tell)\b
  | \bi\s+(?:have|had)\s+no\b
  | \b(?:beyond|outside)\s+(?:my|the)\s+(?:knowledge|notes|memory)\b
  | \bunknown\s+to\s+me\b
  | \bi'?m\s+afraid\s+i\b
  """,
    re.I | re.X,
)

# Lower case only: "AWS Cloud" or "Kafka-based" in prose is not a command line.
_CLI = (
    r"kubectl|helm|docker|npm|npx|yarn|pnpm|pip3?|terraform|gcloud|aws|az|curl|wget|psql|mysql|redis-cli|"
    r"kafka-(?:topics|configs|console-\w+|consumer-groups)|systemctl|sudo|ssh|scp|rsync|make|"
    r"git\s+(?:clone|push|pull|checkout|commit|merge|rebase|tag)"
)
_SPECIFIC_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("code", re.compile(r"`[^`\n]+`|```")),
    ("command", re.compile(r"(?<![\w-])(?:" + _CLI + r")\s+[-\w./:=@]+")),
    ("shell prompt", re.compile(r"(?m)^\s*\$\s+\S")),
    ("flag", re.compile(r"(?<![\w-])--[a-z][\w-]+|(?<![\w-])-[a-zA-Z](?=\s|$)")),
    ("url", re.compile(r"\bhttps?://\S+|\b[\w-]+(?:\.[\w-]+)*\.(?:com|io|net|org|internal|local|dev|cloud)\b", re.I)),
    ("path", re.compile(r"(?:^|\s)(?:~|\.{1,2})?/[\w.@-]+(?:/[\w.@-]*)*")),
    ("file", re.compile(r"\b[\w-]+\.(?:ya?ml|json|toml|ini|cfg|conf|env|sh|py|js|ts|tf|sql|xml|properties|gradle)\b", re.I)),
    ("env var", re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b")),
    ("identifier", re.compile(r"\b[a-z][a-z0-9]*_[a-z0-9_]+\b|\b[a-z]+[A-Z][a-zA-Z0-9]*\b")),
    ("name with digits", re.compile(r"\b(?=[\w-]*\d)[A-Za-z][\w]*(?:[-.][\w]+)+\b")),
    ("quoted name", re.compile(r"[\"'\u201c\u2018][\w./:@-]{3,}[\"'\u201d\u2019]"
                               r"|[\"\u201c][A-Z][\w.-]*(?:\s[\w.-]+){1,3}[\"\u201d]")),
    ("number", re.compile(r"\d+(?:[.,:]\d+)*")),
)
_LIST_NUMBER_RE = re.compile(r"(?m)^\s*\d+[.)]\s")


@dataclass
class ControlVerdict:
    """How one answer to a control question was classified, and why."""

    label: str
    admission: str | None = None
    specifics: tuple[str, ...] = ()

    @property
    def invented(self) -> bool:
        return self.label in INVENTED_LABELS

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "invented": self.invented, "admission": self.admission, "specifics": list(self.specifics)}


def find_specifics(answer: str, limit: int = 3, *, question: str = "") -> list[str]:
    """Up to ``limit`` concrete things (``kind: text``) an answer commits to.

    Text that merely repeats the question ("the p99 SLA is not documented") is not a
    specific the model made up, so anything found in ``question`` is ignored.
    """
    text = _LIST_NUMBER_RE.sub(" ", answer.replace("\u2019", "'"))
    asked = question.replace("\u2019", "'").lower()
    out: list[str] = []
    for kind, rx in _SPECIFIC_PATTERNS:
        for m in rx.finditer(text):
            found = m.group(0).strip()
            if not found or found.lower().strip("\"'`") in asked:
                continue
            out.append(f"{kind}: {found[:60]}")
            break
        if len(out) >= limit:
            break
    return out


def classify_control(answer: str, question: str = "") -> ControlVerdict:
    """Does an answer to an unanswerable question admit not knowing, or make something up?"""
    text = (answer or "").replace("\u2019", "'").strip()
    if not text:
        return ControlVerdict("vague")
    m = _ADMIT_RE.search(text)
    specifics = tuple(find_specifics(text, question=question))
    if m and not specifics:
        return ControlVerdict("admits", admission=m.group(0))
    if m:
        return ControlVerdict("hedges", admission=m.group(0), specifics=specifics)
    if specifics:
        return ControlVerdict("invents", specifics=specifics)
    return ControlVerdict("vague")


@dataclass
class ControlSummary:
    """Per condition: how many control answers fell under each label."""

    n: int
    counts: dict[str, int]

    @property
    def invented_rate(self) -> float | None:
        return sum(self.counts.get(k, 0) for k in INVENTED_LABELS) / self.n if self.n else None

    @property
    def admits_rate(self) -> float | None:
        return self.counts.get("admits", 0) / self.n if self.n else None

    def to_dict(self) -> dict[str, Any]:
        return {"n": self.n, "counts": self.counts, "invented_rate": self.invented_rate, "admits_rate": self.admits_rate}


def summarize_controls(verdicts: Iterable[ControlVerdict]) -> ControlSummary:
    counts = {k: 0 for k in CONTROL_LABELS}
    n = 0
    for v in verdicts:
        counts[v.label] = counts.get(v.label, 0) + 1
        n += 1
    return ControlSummary(n=n, counts=counts)
