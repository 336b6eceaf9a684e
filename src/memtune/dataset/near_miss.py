"""Near-miss "not in memory" examples: the memory's own names, asked for a detail it never gives.

The generic "not in memory" topics (``unknown.py``) are about things the memory never names
(Redis, Storybook), so retrieval shows nothing and the adapter learns to admit the gap. The
questions that still draw invented answers are the near misses people ask: "Which Go version do we
need?" in a memory that names Go but no version, "Which port does the sync server listen on?"
when no note gives a port. Retrieval shows the notes about Go or the sync server, and the adapter
copies a value from them (RAFT; Gekhman et al. 2024 on answering what was never learned).

So the memory's own names (proper nouns written mid-sentence: "Go", "Node.js"; and service-like
phrases: "the sync server") are asked for one kind of detail (a version, a port, an environment
variable, a URL, an owner, credentials, a timeout, release steps) that no note naming them gives,
judged conservatively: a note naming the thing and holding anything like that kind of detail rules
the question out. Answers say the memory names the thing but not the detail, and name nothing else.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from memtune.dataset.text import question_key


@dataclass(frozen=True)
class DetailKind:
    """One kind of detail: questions asking for it, what an answer says is missing, and the text
    that, in a note naming the thing, means the memory might give it."""

    name: str
    questions: tuple[str, ...]  # "{e}": the thing as written in the memory
    missing: str  # "which version it needs"
    given: re.Pattern[str]
    services_only: bool = False  # asked only of service-like things ("the sync server"), not of "Go"


_NUMBER_WITH_UNIT = r"\d+\s?(?:ms|s|sec|secs|seconds?|minutes?|mins?|hours?|h)\b"
# "{e}": the thing as the memory writes it ("the sync server", "Go"); "{bare}": without its article.
# A template ending in "!" reads right only for a singular thing ("Which port does the workers listen on?").
DETAIL_KINDS: tuple[DetailKind, ...] = (
    DetailKind("version", ("Which version of {e} does the project need?", "What's the minimum {bare} version we support?",
                           "Which {bare} version should I have installed?"),
               "which version is needed", re.compile(r"\d|\bversions?\b|\bpinned\b|\blatest\b|\blts\b", re.I)),
    DetailKind("env", ("Which environment variable configures {e}?", "Is there an env var I set to point at {e}?"),
               "which environment variable configures it",
               re.compile(r"\b[A-Z][A-Z0-9]*_[A-Z0-9_]+\b|\benv\b|\.env\b|environment|variables?\b"),
               services_only=True),
    DetailKind("owner", ("Who on the team owns {e}?", "Who should review a change to {e}?"),
               "who owns it or reviews changes to it",
               re.compile(r"\bowners?\b|\bowned\b|maintainers?|codeowners|reviews?\b|reviewers?|approv|@\w", re.I),
               services_only=True),
    DetailKind("port", ("Which port does {e} listen on!", "What port do I open to reach {e} locally?"),
               "which port it uses", re.compile(r"\bports?\b|:\d{2,5}\b|\b\d{4,5}\b|localhost", re.I),
               services_only=True),
    DetailKind("url", ("What's the URL for {e}?", "Where is {e} hosted!"), "its URL or where it is hosted",
               re.compile(r"://|\bwww\.|\.(?:com|io|dev|org|net|app|cloud)\b|\burls?\b|\bhost(?:ed|name)?s?\b|"
                          r"\bdomain", re.I), services_only=True),
    DetailKind("credentials", ("Where do I get the credentials for {e}?", "Which password does {e} expect locally!"),
               "which credentials it takes",
               re.compile(r"credential|token|secret|password|passwd|api[ _-]?keys?|\bkeys?\b|\bauth", re.I),
               services_only=True),
    DetailKind("timeout", ("What's the default timeout for {e}?", "How long does {e} wait before it gives up!"),
               "its timeout",
               re.compile(r"timeout|time out|timed out|\bwait|retr(?:y|ies)|attempts|gives? up|" + _NUMBER_WITH_UNIT,
                          re.I),
               services_only=True),
    DetailKind("release", ("How do I publish a new release of {e}?", "What are the steps to ship a new version of {e}?"),
               "how it is released", re.compile(r"releas|publish|deploy|\bship|version", re.I), services_only=True),
)

ANSWERS = (
    "The project memory mentions {e} but does not say {missing}. I don't know, so I won't guess: check the "
    "project's docs or ask the team.",
    "I don't know: the notes talk about {e}, but they do not say {missing}. The project's documentation or a "
    "maintainer would know.",
    "The notes about {e} do not mention {missing}, so I can't tell you. Please ask the people who work on it "
    "or look in the project's docs.",
)

# Proper names written mid-sentence or in a list ("... built with Go and Node.js", "(Go, Node, Python)"):
# a capital after a lower-case word, a comma or a bracket, so sentence starts and headings are not taken.
_PROPER_RE = re.compile(r"(?:(?<=[a-z,;] )|(?<=\())([A-Z][a-zA-Z0-9+#]*(?:\.[a-zA-Z][a-zA-Z0-9]*)?)(?![\w.-])")
_SERVICE_HEADS = ("server|service|proxy|daemon|worker|dashboard|database|gateway|backend|frontend|cluster|queue|bot|"
                  "registry|cache|api|cli|sdk|emulator|container|engine|extension|app|client|plugin|tests|pipeline")
_SERVICE_RE = re.compile(r"\b(?:the|a|our|your)\s+((?:[A-Za-z][\w.-]{1,}\s+){0,2}?(?:" + _SERVICE_HEADS + r"))\b",
                         re.I)
_COMMON_CAPS = frozenset(
    "I A An The This That These Those It If When Then Also Use Do Don't Never Always Only Note See Run For "
    "Each All Any Some No Not And Or But With Without Before After Make Keep Add Set Check Prefer Avoid Ensure "
    "You We They Our Your Yes OK True False None Null Example Examples Important TODO JSON YAML TOML XML HTML CSS "
    "CSV Markdown PR PRs MR README Unicode ASCII UTF UI UX ID IDs URL URLs API APIs Latest Still Standard "
    "January February March April May June July August September October November December Monday Friday".split())
_NOT_A_MODIFIER = frozenset("new same other single different first last main each every any all this that".split())
NEAR_MISS_RAG_SHARE = 0.75
"""Of the near-miss examples, the share asked with the notes retrieval shows for them: the invented
answers left are the ones given with notes shown (docs/experiments.md)."""
MAX_THINGS = 60  # names asked about, the most often mentioned first


@dataclass(frozen=True)
class Thing:
    """A name the memory uses: as written with its article ("the sync server"), and whether it is a
    service-like thing (asked about ports, URLs, credentials …) or a tool or language (versions)."""

    text: str
    service: bool

    @property
    def bare(self) -> str:
        return self.text[4:] if self.text.startswith("the ") else self.text

    @property
    def plural(self) -> bool:
        return self.bare.endswith("s") and not self.bare.endswith(("ss", "us", "is"))


_CODE_RE = re.compile(r"`[^`\n]*`|```.*?```", re.S)


def _candidates(texts: Iterable[str]) -> Counter[Thing]:
    """Each thing → how many notes name it. ``texts``: the notes' own words (not their titles).

    A capitalised word counts as a name when it could not be an ordinary word: it has an inner
    capital, a digit or a "." ("TypeScript", "SDL2", "Node.js"), or the memory's prose never writes
    it in lower case ("Kotlin" yes, "Delivery" no).
    """
    texts = list(texts)
    prose_words = {w for t in texts for w in re.findall(r"\b[a-z][\w+#-]*", _CODE_RE.sub(" ", t))}
    seen: Counter[Thing] = Counter()
    for text in texts:
        found: set[Thing] = set()
        for m in _PROPER_RE.finditer(_CODE_RE.sub(" ", text)):
            name = m.group(1)
            if name in _COMMON_CAPS or len(name) < 2 or name.isupper() and not any(c.isdigit() for c in name) \
                    or "." in name[1:-1] \
                    and name.rsplit(".", 1)[1] in {"md", "txt", "json", "yaml", "yml", "toml", "py", "ts", "js", "kt"}:
                continue
            odd = any(c.isupper() or c.isdigit() or c in ".+#" for c in name[1:])
            if not odd and name.lower() in prose_words:
                continue
            found.add(Thing(name, False))
        for m in _SERVICE_RE.finditer(text):
            words = m.group(1).split()
            words = [w for w in words if w.lower() not in _NOT_A_MODIFIER] or words
            found.add(Thing("the " + " ".join(words), True))
        seen.update(found)
    return seen


def _mention_re(thing: Thing) -> re.Pattern[str]:
    return re.compile(r"(?<![\w.-])" + re.escape(thing.bare) + r"(?![\w-])", re.I)


@dataclass(frozen=True)
class NearMiss:
    thing: str
    kind: str
    question: str
    answer: str
    form: str


def near_miss_questions(texts: list[str], n: int, *, seed: int, bodies: list[str] | None = None) -> list[NearMiss]:
    """Up to ``n`` near-miss questions about the names in ``bodies`` (the notes' own words; default
    ``texts``), each asking for one kind of detail that none of ``texts`` (the notes' whole searchable
    text) gives near the name; spread over things first, deterministic per seed."""
    if n <= 0 or not texts:
        return []
    counts = _candidates(bodies if bodies is not None else texts)
    things = sorted(counts, key=lambda k: (-counts[k], k.text))[:MAX_THINGS]
    rng = random.Random(f"{seed}:near-miss")
    pools: list[list[tuple[Thing, DetailKind, str]]] = []
    for thing in things:
        rx = _mention_re(thing)
        naming = [t for t in texts if rx.search(t)]
        kinds = [k for k in DETAIL_KINDS if (thing.service or not k.services_only)
                 and not any(k.given.search(_window(t, rx)) for t in naming)]
        pool = [(thing, k, q) for k in kinds for q in k.questions if not (thing.plural and q.endswith("!"))]
        rng.shuffle(pool)
        if pool:
            pools.append(pool)
    rng.shuffle(pools)
    out: list[NearMiss] = []
    seen: set[str] = set()
    while len(out) < n and any(pools):
        for pool in pools:
            if len(out) >= n:
                break
            while pool:
                thing, kind, template = pool.pop()
                question = template.format(e=thing.text, bare=thing.bare).rstrip("!?") + "?"
                question = question[:1].upper() + question[1:]
                if question_key(question) in seen:
                    continue
                seen.add(question_key(question))
                k = rng.randrange(len(ANSWERS))
                answer = ANSWERS[k].format(e=thing.text, missing=kind.missing)
                out.append(NearMiss(thing.text, kind.name, question, answer[:1].upper() + answer[1:], f"near_miss_{k}"))
                break
    return out


def _window(text: str, rx: re.Pattern[str]) -> str:
    """The note's text around each mention of the thing: a note about many things ("Go", ports, CI)
    rules out only the details written near the name (the same paragraph, up to 400 characters)."""
    parts = []
    for m in rx.finditer(text):
        start = max(text.rfind("\n\n", 0, m.start()) + 1, m.start() - 400)
        end = text.find("\n\n", m.end())
        parts.append(text[start: min(end if end >= 0 else len(text), m.end() + 400)])
    return "\n".join(parts)


__all__ = ["ANSWERS", "NEAR_MISS_RAG_SHARE", "DETAIL_KINDS", "DetailKind", "NearMiss", "Thing", "near_miss_questions"]
