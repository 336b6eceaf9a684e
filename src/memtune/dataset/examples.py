"""Guideline → distinct training examples (the core of the dataset stage).

Per guideline: questions from several families (never a probe family), answers in
several forms, ~30 % contrastive negatives, some prompts with a context line, some with
retrieved notes (the right one alone or next to one or two distractors, RAFT-style) in the system
prompt. Every example is asked under the one short :data:`DEFAULT_SYSTEM_PROMPT`. All
randomness comes from one ``random.Random`` seeded by (seed, guideline id), so an export
is reproducible and one guideline's examples don't depend on its neighbours.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from memtune.dataset.answers import GuidelineText, clean_body, forms, pick_form, value_first
from memtune.dataset.facts import FactQuestion, fact_questions
from memtune.dataset.grammar import is_codeish
from memtune.dataset.keywords import PROGRAMS, extract_keywords, norm
from memtune.dataset.negatives import negatives
from memtune.dataset.prompts import (
    DEFAULT_SYSTEM_PROMPT,
    context_for,
    context_options,
    system_with_notes,
    user_message,
)
from memtune.dataset.questions import Question, train_questions
from memtune.dataset.text import question_key
from memtune.dataset.topics import Topic, derive_topic

NEGATIVE_SHARE = 0.3
CONTEXT_SHARE = 0.35
NO_GOLD_SHARE = 0.2  # of retrieval examples: only distractors shown, answer from memory
MAX_DISTRACTORS = 2  # notes shown next to the right one (more costs tokens and teaches little more)
MAX_IDENTS = 2
_CODE_CHARS = re.compile(r"[./_=()<>@~*:\\-]|\d")


@dataclass
class Example:
    """One training conversation plus where it came from."""

    guideline_id: int | None  # None for "not in memory" examples
    guideline_version: int | None
    name: str
    category: str
    priority: int
    tags: list[str]
    system: str
    question: str
    context: str | None
    answer: str
    is_negative: bool
    family: str
    answer_form: str
    rag: str = "none"  # none | gold (right note among the notes) | distractors (right note absent)
    note_ids: list[int] = field(default_factory=list)
    kind: str = "memory"  # memory | unknown (a topic the memory does not cover)

    @property
    def user(self) -> str:
        return user_message(self.question, self.context)

    def messages(self) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.user},
            {"role": "assistant", "content": self.answer},
        ]

    def metadata(self) -> dict[str, Any]:
        return {
            "guideline_id": self.guideline_id,
            "guideline_version": self.guideline_version,
            "name": self.name,
            "category": self.category,
            "priority": self.priority,
            "tags": list(self.tags),
            "is_negative": self.is_negative,
            "family": self.family,
            "answer_form": self.answer_form,
            "rag": self.rag,
            "kind": self.kind,
        }


@dataclass
class Prepared:
    """What every example of a guideline shares (computed once per guideline)."""

    topic: Topic
    text: GuidelineText
    bad: list[str]
    facts: list[FactQuestion] = field(default_factory=list)  # value questions; ``probe`` ones never train


def prepare(guideline: Any) -> Prepared:
    examples = guideline.examples or {}
    topic = derive_topic(guideline.name, guideline.content, guideline.category)
    body = clean_body(guideline.name, guideline.content)
    missing = [w for w in topic.name.split() if is_codeish(w) and w.strip("`") not in body]
    if missing:  # "scanBoxId Pattern: Auto-generated on the backend…": the name is part of the fact
        body = f"{topic.name}: {body}"
    text = GuidelineText(
        name=guideline.name,
        body=body,
        rationale=(guideline.rationale or "").strip(),
        good=tuple(g for g in (examples.get("good") or []) if g and g.strip()),
        keywords=tuple(extract_keywords(body)),
    )
    topic.idents = _idents(text.keywords, topic)
    bad = [b for b in (examples.get("bad") or []) if b and b.strip()]
    return Prepared(topic, text, bad, fact_questions(body, text.keywords))


def _idents(keywords: Sequence[str], topic: Topic) -> list[str]:
    """Keywords a developer would type as code (a path, flag, identifier, command), not yet
    in the topic's own wording: questions that name the note by them ("What's `convert.lock`
    about?") tie the identifier to the whole fact."""
    named = norm(f"{topic.name} {topic.np} {topic.vp or ''}")
    out = []
    for k in keywords:
        if len(k) > 40 or "\n" in k or "`" in k or norm(k) in named:
            continue
        command = k.split()[0] in PROGRAMS
        if " " in k and not command:
            continue  # "512 tokens", "Claude Code": a measure or a name, not something typed
        if command or _CODE_CHARS.search(k):
            out.append(f"`{k}`")
        elif is_codeish(k):
            out.append(k)  # CUDA, PyPI, MemtuneError: names, asked about without backticks
        if len(out) == MAX_IDENTS:
            break
    return out


def _negative_count(n: int, available: int, rng: random.Random) -> int:
    if n < 2 or not available:
        return 0
    want = int(n * NEGATIVE_SHARE)
    if rng.random() < n * NEGATIVE_SHARE - want:
        want += 1
    return min(want, available, n - 1)


def generate_examples(
    guideline: Any,
    n: int,
    *,
    seed: int,
    include_negative: bool = True,
    rag_fraction: float = 0.0,
    rag_copies: float = 0.0,
    fact_share: float = 0.0,
    fact_rag_copies: float | None = None,
    min_topic_questions: int = 0,
    named_answers: bool = False,
    rag_gold_first: float = 0.0,
    distractors: Sequence[Any] = (),
    paraphrases: Sequence[str] = (),
    is_train: Callable[[str], bool] | None = None,
    prepared: Prepared | None = None,
) -> list[Example]:
    """Up to ``n`` distinct examples for one guideline (fewer only if it cannot yield more).

    ``distractors``: other notes (objects/dicts with id, name, category, content) that
    retrieval examples may show next to the right one. ``paraphrases``: extra questions
    (e.g. from an LLM) used like a question family. ``is_train``: the split's verdict for
    a question; the questions are arranged so every guideline has a training example.
    ``rag_copies``: the share of positive examples repeated with the right note in the prompt
    (on top of ``n``: closed-book examples are not traded for them). ``fact_share``: the share of
    questions that ask for one value the note holds (see :mod:`memtune.dataset.facts`).
    ``fact_rag_copies``: ``rag_copies`` for those value questions (None = the same share).
    ``min_topic_questions``: at least this many closed-book training questions name the note's topic
    (its title, subject or action) instead of asking for one value, swapped in for value questions.
    """
    rng = random.Random(f"{seed}:{guideline.id}")
    prep = prepared or prepare(guideline)
    topic, text = prep.topic, prep.text
    questions = train_questions(topic, rng, has_rationale=bool(text.rationale), limit=n + 6)
    if fact_share > 0:
        questions = _with_facts(questions, [q for q in prep.facts if not q.probe], fact_share)
    questions = _merge_paraphrases(questions, paraphrases)

    negs = negatives(topic, text, prep.bad, rng, priority=guideline.priority) if include_negative else []
    n_neg = _negative_count(n, len(negs), rng)
    n_pos = n - n_neg
    if is_train is not None and n_pos and not any(is_train(q.text) for q in questions[:n_pos]):
        # Every guideline keeps at least one training phrasing (eval = unseen phrasings of
        # *trained* guidelines); order is otherwise untouched so the eval share stays unbiased.
        for i, q in enumerate(questions[n_pos:], n_pos):
            if is_train(q.text):
                questions.insert(0, questions.pop(i))
                break
    if min_topic_questions and fact_share > 0:
        questions = _topic_floor(questions, n_pos, min_topic_questions, is_train)
    available = forms(text, topic, guideline.priority)
    used: dict[str, int] = {}
    tags = list(guideline.tags or [])
    seen_prompts: set[str] = set()
    out: list[Example] = []

    def add(question: str, context: str | None, answer: str, *, negative: bool, family: str, form: str) -> bool:
        key = question_key(user_message(question, context))
        if key in seen_prompts:
            return False
        seen_prompts.add(key)
        system, rag, note_ids = _system_for(guideline, distractors, rag_fraction, rng, gold_first=rag_gold_first)
        out.append(Example(
            guideline_id=guideline.id, guideline_version=guideline.version, name=guideline.name,
            category=guideline.category, priority=guideline.priority, tags=tags, system=system,
            question=question, context=context, answer=answer, is_negative=negative, family=family,
            answer_form=form, rag=rag, note_ids=note_ids,
        ))
        return True

    options = context_options(guideline.category, tags, guideline.scope_id)

    def ctx(round_: int = 0, i: int = 0) -> str | None:
        if round_:  # repeats cycle through every context so each (question, context) is new
            return options[(round_ - 1 + i) % len(options)]
        if rng.random() < CONTEXT_SHARE:
            return context_for(guideline.category, tags, guideline.scope_id, rng, options)
        return None

    # Positives: every question once, then (only if more are needed) again with contexts.
    plan: list[tuple[Question, int, int]] = [(q, 0, i) for i, q in enumerate(questions)]
    if len(questions) < n:
        plan += [(q, r, i) for r in range(1, len(options) + 1) for i, q in enumerate(questions)]

    def answer(q: Question) -> tuple[str, str]:
        """A value question: the sentence holding its value first; else the intent's form."""
        direct = value_first(text.body, q.keys) if q.keys and q.intent == "fact" else None
        if direct:
            return "value_first", direct
        form = pick_form(available, q.intent, used, len(out), named=named_answers)
        return form, available[form]

    for q, round_, i in plan:
        if len(out) >= n_pos:
            break
        form, reply = answer(q)
        if add(q.text, ctx(round_, i), reply, negative=False, family=q.family, form=form):
            used[form] = used.get(form, 0) + 1
    for neg in negs:
        if len(out) >= n:
            break
        add(neg.question, ctx(), neg.answer, negative=True, family=neg.family, form="refusal")
    # Too few negatives available: top up with positives so the count stays n.
    for q, round_, i in plan:
        if len(out) >= n:
            break
        form, reply = answer(q)
        if add(q.text, ctx(round_ or 1, i), reply, negative=False, family=q.family, form=form):
            used[form] = used.get(form, 0) + 1
    if rag_copies > 0 or fact_rag_copies:
        out += _note_copies(guideline, [e for e in out if not e.is_negative and e.rag == "none"], distractors,
                            rag_copies, rng, fact_share=fact_rag_copies,
                            shown_answer=available.get("memory") if named_answers else None,
                            gold_first=rag_gold_first)
    return out


def _note_copies(guideline: Any, examples: Sequence[Example], distractors: Sequence[Any], share: float,
                 rng: random.Random, *, fact_share: float | None = None,
                 shown_answer: str | None = None, gold_first: float = 0.0) -> list[Example]:
    """Copies of ``share`` of the examples (``fact_share`` of value questions), asked with the
    right note shown (and 0-2 near misses). ``shown_answer``: the reply for copies of title-first
    answers, so that with notes in the prompt the adapter copies the note instead of picking a title.

    Drawn after every closed-book example, so turning copies on leaves those unchanged.
    """
    out = []
    for ex in examples:
        p = fact_share if fact_share is not None and ex.family.startswith("fact_") else share
        if rng.random() >= p:
            continue
        system, _, note_ids = _system_for(guideline, distractors, 1.0, rng, gold=True, gold_first=gold_first)
        if shown_answer and ex.answer_form == "named":
            ex = replace(ex, answer=shown_answer, answer_form="memory")
        out.append(replace(ex, system=system, rag="gold", note_ids=note_ids))
    return out


def _with_facts(topical: list[Question], facts: Sequence[FactQuestion], share: float) -> list[Question]:
    """Topic and value questions interleaved so any prefix holds about ``share`` value questions
    (a value question first: with few examples per note, asking for its facts matters most)."""
    pending = [Question(f"fact_{f.frame}", f.text, f.intent, f.keys) for f in facts]
    out: list[Question] = []
    n_fact = 0
    topical = list(topical)
    while pending or topical:
        if pending and (not topical or n_fact < share * (len(out) + 1)):
            out.append(pending.pop(0))
            n_fact += 1
        else:
            out.append(topical.pop(0))
    return out


def _topic_floor(questions: list[Question], n_pos: int, floor: int,
                 is_train: Callable[[str], bool] | None) -> list[Question]:
    """Swap topic questions into the first ``n_pos`` (the ones asked) for value questions until
    ``floor`` of them train.

    A note rich in values can otherwise fill every slot with value questions and train no question
    that names it: such notes were recalled 0.35 on held-out topic questions, notes with four or
    more topic questions 0.87 (docs/recipe.md, min_topic_questions). At least one value question stays.
    """
    out = list(questions)

    def topical(q: Question) -> bool:
        return not q.family.startswith("fact_")

    def trains(q: Question) -> bool:
        return is_train is None or is_train(q.text)

    have = sum(1 for q in out[:n_pos] if topical(q) and trains(q))
    while have < floor:
        facts = [i for i in range(n_pos) if not topical(out[i])]
        spare = next((i for i in range(n_pos, len(out)) if topical(out[i]) and trains(out[i])), None)
        if len(facts) <= 1 or spare is None:
            break
        # the last value question in the prefix leaves it; it stays among the next in line for top-ups
        i = facts[-1]
        q = out.pop(spare)
        out.insert(n_pos, out.pop(i))
        out.insert(i, q)
        have += 1
    return out


def _merge_paraphrases(questions: list[Question], paraphrases: Sequence[str]) -> list[Question]:
    if not paraphrases:
        return questions
    seen = {question_key(q.text) for q in questions}
    extra = []
    for p in paraphrases:
        k = question_key(p)
        if k and k not in seen:
            seen.add(k)
            extra.append(Question("paraphrase", p, "about"))
    merged: list[Question] = []
    for i, q in enumerate(questions):
        merged.append(q)
        if extra and i % 2 == 0:
            merged.append(extra.pop(0))
    return merged + extra


def _system_for(guideline: Any, distractors: Sequence[Any], rag_fraction: float,
                rng: random.Random, *, gold: bool = False, gold_first: float = 0.0) -> tuple[str, str, list[int]]:
    """The default system prompt, or (with probability rag_fraction) that plus retrieved notes.

    ``gold_first``: the chance the right note heads the list, as retrieval ranks it; drawn only
    when near misses are shown and the share is on, so a share of 0 leaves the data unchanged.
    """
    base = DEFAULT_SYSTEM_PROMPT
    if rag_fraction <= 0 or rng.random() >= rag_fraction:
        return base, "none", []
    pool = [d for d in distractors if _get(d, "id") != guideline.id]
    # 0-2 distractors: retrieval drops notes far behind the best (store.RELEVANCE_RATIO), so the
    # right note often arrives alone, and sometimes next to one or two near misses.
    k = min(len(pool), rng.randint(0, MAX_DISTRACTORS))
    shown = rng.sample(pool, k) if k else []
    rag = "gold"
    if shown and not gold and rng.random() < NO_GOLD_SHARE:
        rag = "distractors"
    elif shown and gold_first > 0 and rng.random() < gold_first:
        shown.insert(0, guideline)
    else:
        shown.insert(rng.randrange(len(shown) + 1), guideline)
    notes = [{"name": _get(s, "name"), "category": _get(s, "category"), "content": _get(s, "content")} for s in shown]
    return system_with_notes(notes, base), rag, [int(_get(s, "id")) for s in shown]


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key)
