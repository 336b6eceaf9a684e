"""Answer forms: the same guideline said several right ways.

If every example of a guideline had the same output the model would learn one string
keyed on one prompt shape. Forms here vary only the framing (a lead-in, the note's title,
command first, with the reason, with an example, "Yes." to a should-question) and never
drop a sentence: a shorter answer that loses a fact teaches the model that the fact is
optional, so every form carries the whole note and every probe keyword. A question after
one value is answered by the sentence holding it first, then the rest of the note
(:func:`value_first`): the value comes in the first tokens instead of after sentences the
model has to recite (and can derail on) before it gets there.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from memtune.dataset.keywords import norm
from memtune.dataset.text import REDACTED_RE, ensure_period, sentences, split_blocks, upper_first
from memtune.dataset.topics import Topic

_LABEL_RE = re.compile(r"^\s*(?:[-*+]\s+)?(?:\*\*|__)([^*_\n]{1,120})(?:\*\*|__)\s*[:—–-]\s*")
_HTML_COMMENT_RE = re.compile(r"<!--.*?-->", re.DOTALL)
_ORDERED_ITEM_RE = re.compile(r"^[ \t]*\d+[.)][ \t]")
_MARKER_ONLY_RE = re.compile(r"^[ \t]*(?:[-*+]|\d+[.)]|>)?[ \t]*$")

# Intent (question family) → the form that answers it most directly.
_PREFERRED = {"command": "code_first", "should": "yes", "why": "rationale", "pattern": "example"}
# With named answers, the intents whose own form still wins: a why-question wants the reason
# first, an example-question the example (docs/recipe.md, named_answers).
_NAMED_KEEPS = ("why", "pattern")
_LEADS = {
    "rule": "The rule here: ",
    "gotcha": "This is a known gotcha here. ",
    "pattern": "In this codebase: ",
    "command": "",
    "lesson": "Lesson learned: ",
    "fact": "",
}


@dataclass(frozen=True)
class GuidelineText:
    """A guideline's answerable parts, cleaned once and reused for every example."""

    name: str
    body: str  # markdown, code fences intact
    rationale: str
    good: tuple[str, ...]
    keywords: tuple[str, ...]


def clean_body(name: str, content: str) -> str:
    """The note as an answer: no HTML comments, no repeated '**Name**:' label, tidy blank lines."""
    text = _HTML_COMMENT_RE.sub("", content or "").strip()
    m = _LABEL_RE.match(text)
    if m and _same(m.group(1), name):
        text = upper_first(text[m.end():])
    text = re.sub(r"\n{3,}", "\n\n", text).strip()
    first = text.split(" ", 1)[0]
    if first.isalpha() and first.islower() and (len(first) >= 3 or first in ("a", "an", "if", "in", "on", "to")):
        return upper_first(text)
    return text


def _same(a: str, b: str) -> bool:
    return norm(a).strip(".:") == norm(b).strip(".:")


def _format_example(ex: str) -> str:
    ex = ex.strip()
    if ex.startswith(("```", "~~~")) or "`" in ex:
        return ex
    if "\n" in ex or re.search(r"[;{}()=]|^\s*(?:\$|npm|yarn|git|docker|python)\b", ex):
        return f"```\n{ex}\n```"
    return ensure_period(upper_first(ex))


def code_first(text: GuidelineText) -> str | None:
    """Commands before the explanation: what a developer asking 'which command' wants first."""
    blocks = split_blocks(text.body)
    code = [b.raw for b in blocks if b.kind == "code"]
    if not code:
        return None
    words = [b.text for b in blocks if b.kind == "text"]
    if blocks[0].kind == "code" or not words:
        lead = "Run:" if len(code) == 1 else "Run these:"
        return "\n\n".join([lead + "\n" + code[0], *code[1:], *words])
    return "\n\n".join([*code, *words])


def forms(text: GuidelineText, topic: Topic, priority: int = 50) -> dict[str, str]:
    """Every available answer form for the guideline (distinct strings only, each the whole note)."""
    body = text.body
    out: dict[str, str] = {"full": body, "memory": prefixed("From the project memory:", body)}
    if priority >= 70:  # the note's priority, as two words rather than a system prompt
        out["priority"] = prefixed("Critical:" if priority >= 90 else "Important:", body)
    cf = code_first(text)
    if cf and cf != body:
        out["code_first"] = cf
    if text.rationale:
        out["rationale"] = f"{ensure_period(upper_first(text.rationale))}\n\n{body}"
        out["with_reason"] = f"{body}\n\nWhy: {ensure_period(text.rationale)}"
    if text.good:
        examples = "\n".join(_format_example(g) for g in text.good[:2])
        out["example"] = f"{body}\n\nFor example:\n{examples}"
    if topic.polarity == "do" and topic.vp:
        out["yes"] = prefixed("Yes.", body)
    lead = _LEADS.get(topic.group, "")
    if lead:
        out["lead"] = prefixed(lead, body)
    name = topic.name.strip()
    if name and len(name.split()) <= 8 and not norm(body).startswith(norm(name)) and not REDACTED_RE.search(name):
        out["named"] = prefixed(f"{upper_first(name)}:", body)
    return out


def prefixed(lead: str, body: str) -> str:
    """'Yes.' + body, with a code block that opens the body kept on its own line."""
    lead = lead.rstrip()
    if body.startswith(("```", "~~~")):
        return f"{lead}\n{body}"
    return f"{lead} {body}"


def pick_form(available: dict[str, str], intent: str, used: dict[str, int], index: int, *,
              named: bool = False) -> str:
    """The form for one example: the intent's natural form, else the least-used one.

    Ties go to a fixed order rotated by ``index`` so consecutive examples differ. ``named``:
    the note's name opens every answer that has that form, except why- and example-questions.
    """
    if named and "named" in available and not (intent in _NAMED_KEEPS and _PREFERRED[intent] in available):
        return "named"
    preferred = _PREFERRED.get(intent)
    if preferred in available and used.get(preferred, 0) <= min(used.get(k, 0) for k in available):
        return preferred
    if intent == "why" and "rationale" in available:
        return "rationale"
    order = ["full", "named", "code_first", "lead", "memory", "with_reason", "priority", "example", "rationale"]
    if intent != "should":
        order = [k for k in order if k != "yes"]
    candidates = [k for k in order if k in available]
    if not candidates:
        return "full"
    rot = candidates[index % len(candidates):] + candidates[: index % len(candidates)]
    return min(rot, key=lambda k: used.get(k, 0))


def value_first(body: str, keys: Sequence[str]) -> str | None:
    """The note with the prose sentence that holds a value of ``keys`` moved to the front.

    Nothing is dropped or repeated. None when no prose sentence holds a value (it sits in a
    code block), when that sentence already opens the note, or when it is the whole note.
    """
    for key in keys:
        k = key.lower()
        for i, sent in enumerate(_prose_sentences(body)):
            if k not in sent.lower():
                continue
            if i == 0 or body.count(sent) != 1 or _in_ordered_list(body, sent):
                return None  # already first, ambiguous, or a numbered step (order matters)
            rest = _without(body, sent)
            return f"{sent}\n\n{rest}" if rest else None
    return None


@lru_cache(maxsize=1024)
def _prose_sentences(body: str) -> tuple[str, ...]:
    """Sentences of the note's prose in order (code blocks hold none)."""
    return tuple(s for b in split_blocks(body) if b.kind == "text" for s in sentences(b.text))


def _in_ordered_list(body: str, sent: str) -> bool:
    start = body.index(sent)
    line = body[body.rfind("\n", 0, start) + 1 : start]
    return bool(_ORDERED_ITEM_RE.match(line))


def _without(body: str, sent: str) -> str:
    """``body`` minus one sentence; a list item or line left empty goes with it."""
    start = body.index(sent)
    line_start = body.rfind("\n", 0, start) + 1
    line_end = body.find("\n", start)
    line_end = len(body) if line_end < 0 else line_end
    line = body[line_start:line_end].replace(sent, "", 1)
    if _MARKER_ONLY_RE.match(line):
        out = body[:line_start] + body[line_end + 1:]
    else:
        out = body[:line_start] + re.sub(r"(?<=\S)[ \t]{2,}", " ", line).rstrip() + body[line_end:]
    return re.sub(r"\n{3,}", "\n\n", out).strip()
