"""Examples per guideline: distinct, varied, right — and negatives that never teach the anti-pattern."""

from __future__ import annotations

import re

import pytest

from memtune.dataset import generate_examples, generate_probes
from memtune.dataset.examples import prepare
from memtune.dataset.keywords import norm
from memtune.dataset.negatives import is_refusal
from memtune.dataset.prompts import DEFAULT_SYSTEM_PROMPT, NOTES_HEADER
from memtune.dataset.questions import PROBE_MARKERS
from memtune.dataset.text import question_key


def by_name(guidelines, name):
    return next(g for g in guidelines if g.name == name)


@pytest.mark.parametrize("n", [1, 2, 5, 12, 50])
def test_examples_are_distinct_and_answers_vary(guidelines, n):
    for g in guidelines:
        exs = generate_examples(g, n, seed=7, include_negative=True, rag_fraction=0.3, distractors=guidelines)
        assert len(exs) == n, g.name
        prompts = [question_key(e.user) for e in exs]
        assert len(set(prompts)) == len(prompts), f"duplicate prompt for {g.name}"
        if n >= 2:
            assert len({e.answer for e in exs}) >= 2, f"every answer identical for {g.name}"
        assert all(e.answer.strip() and e.question.strip() for e in exs)
        assert all(e.guideline_id == g.id and e.guideline_version == g.version for e in exs)


def test_deterministic_for_a_seed_and_different_across_seeds(guidelines):
    g = by_name(guidelines, "Start the backend")
    a = generate_examples(g, 8, seed=1, distractors=guidelines, rag_fraction=0.5)
    b = generate_examples(g, 8, seed=1, distractors=guidelines, rag_fraction=0.5)
    c = generate_examples(g, 8, seed=2, distractors=guidelines, rag_fraction=0.5)
    assert [(e.system, e.user, e.answer) for e in a] == [(e.system, e.user, e.answer) for e in b]
    assert [e.user for e in a] != [e.user for e in c]


def test_positive_answers_contain_every_probe_keyword(guidelines):
    for g in guidelines:
        keywords = prepare(g).text.keywords
        for e in generate_examples(g, 12, seed=3, include_negative=True):
            for kw in keywords:
                assert norm(kw) in norm(e.answer), (g.name, kw, e.answer_form, e.answer)


def test_code_blocks_survive_intact(guidelines):
    g = by_name(guidelines, "Start the backend")
    block = "```bash\nnvm use 22\nyarn start &\n```"
    exs = generate_examples(g, 10, seed=5, include_negative=False)
    assert all(block in e.answer for e in exs)
    assert any(e.answer.startswith("```") for e in exs if e.family == "command"), "command answers lead with code"


def test_command_questions_read_naturally(guidelines):
    g = by_name(guidelines, "Start the backend")
    qs = {e.question for e in generate_examples(g, 50, seed=0, include_negative=False)}
    assert {"How do I start the backend?", "Which command starts the backend?",
            "What's the command to start the backend?"} & qs
    for q in qs:
        assert q[0].isupper() and q.rstrip().endswith(("?", ".")), q
        assert "  " not in q and "the the" not in q


def test_gotcha_and_rule_families(guidelines):
    gotcha = by_name(guidelines, "MUI Lab dependency conflicts")
    qs = [e.question for e in generate_examples(gotcha, 40, seed=0, include_negative=False)]
    assert any(q.startswith(("I'm getting", "Why am I seeing", "How do I fix")) for q in qs), qs
    rule = by_name(guidelines, "Prefer pathlib")
    qs = [e.question for e in generate_examples(rule, 40, seed=0, include_negative=False)]
    assert any(q.startswith(("Should I", "Am I supposed to", "Do I need to", "Is it required to")) for q in qs), qs


def test_negatives_refuse_and_never_present_the_anti_pattern_as_correct(guidelines):
    seen = 0
    for g in guidelines:
        bad = [b for b in g.examples.get("bad", []) if b]
        for e in generate_examples(g, 20, seed=11, include_negative=True):
            for b in bad:  # a bad example may be quoted by the user, never given by the assistant
                assert b not in e.answer, (g.name, e.answer)
            if e.is_negative:
                seen += 1
                assert is_refusal(e.answer), e.answer
                assert not e.answer.lower().startswith("yes")
                assert g.content.strip()[:30] in e.answer or prepare(g).text.body[:30] in e.answer
            else:
                assert not is_refusal(e.answer), (g.name, e.answer)
    assert seen >= 5


def test_negative_sources(guidelines):
    def negs(name):
        return [e for e in generate_examples(by_name(guidelines, name), 20, seed=2) if e.is_negative]

    env = negs("Never commit .env files")
    assert any("commit .env files" in e.question for e in env)
    pattern = negs("Estate Email Pattern")
    assert any("EstateContact" in e.question for e in pattern), "bad example proposed by the user"
    assert all("Do this instead" in e.answer for e in pattern if "EstateContact" in e.question)
    node = negs("Node Version")
    assert any("skip" in e.question.lower() for e in node), "the opposite of an ALWAYS rule"
    mui = negs("MUI Lab dependency conflicts")
    assert any("yarn start" in e.question for e in mui), "the (NOT …) alternative"


def test_negative_share_is_about_thirty_percent(guidelines):
    g = by_name(guidelines, "Never commit .env files")  # plenty of anti-patterns to draw from
    for n in (10, 20):
        share = sum(e.is_negative for e in generate_examples(g, n, seed=4)) / n
        assert 0.25 <= share <= 0.35
    overall = [e for x in guidelines for e in generate_examples(x, 10, seed=4)]
    assert 0.05 <= sum(e.is_negative for e in overall) / len(overall) <= 0.35
    assert not any(e.is_negative for x in guidelines for e in generate_examples(x, 10, seed=4, include_negative=False))


def test_training_never_uses_probe_phrasings(guidelines):
    for g in guidelines:
        trained = {question_key(e.question) for e in generate_examples(g, 50, seed=9, rag_fraction=0.5,
                                                                       fact_share=0.5, distractors=guidelines)}
        assert not any(m in q for q in trained for m in PROBE_MARKERS)
        for p in generate_probes(g, seed=9):
            if p["family"] == "fact":  # a value probe: a frame training never uses, for a value it trains on
                assert question_key(p["question"]) not in trained, p["question"]
            else:
                assert any(m in p["question"].lower() for m in PROBE_MARKERS)


def test_retrieval_examples_carry_the_note_and_distractors(guidelines):
    g = by_name(guidelines, "Resolver Order")
    exs = generate_examples(g, 30, seed=1, rag_fraction=1.0, distractors=guidelines)
    assert all(e.system.startswith(DEFAULT_SYSTEM_PROMPT) and NOTES_HEADER in e.system for e in exs)
    gold = [e for e in exs if e.rag == "gold"]
    assert gold and all("EstateCrudResolver" in e.system and g.id in e.note_ids for e in gold)
    assert any(len(e.note_ids) >= 2 for e in gold), "distractors next to the right note"
    assert any(e.note_ids == [g.id] for e in gold), "the right note alone, as retrieval's relevance cut often leaves it"
    assert all(len(e.note_ids) <= 3 for e in gold) and all(len(e.note_ids) <= 2 for e in exs if e.rag != "gold")
    assert len({e.note_ids.index(g.id) for e in gold}) >= 2, "the right note is not always in the same place"
    assert all(g.id not in e.note_ids for e in exs if e.rag == "distractors")
    plain = generate_examples(g, 10, seed=1, rag_fraction=0.0, distractors=guidelines)
    assert all(NOTES_HEADER not in e.system for e in plain)


def test_note_copies_are_added_on_top_of_the_closed_book_examples(guidelines):
    g = by_name(guidelines, "Resolver Order")
    plain = generate_examples(g, 12, seed=4, distractors=guidelines)
    both = generate_examples(g, 12, seed=4, distractors=guidelines, rag_copies=0.5)
    assert both[: len(plain)] == plain, "turning copies on leaves the closed-book examples as they were"
    copies = both[len(plain):]
    assert 2 <= len(copies) <= 10
    for c in copies:
        original = next(e for e in plain if e.question == c.question and e.context == c.context)
        assert c.answer == original.answer and not c.is_negative and original.rag == "none"
        assert c.rag == "gold" and g.id in c.note_ids and "EstateCrudResolver" in c.system
    assert len(generate_examples(g, 12, seed=4, distractors=guidelines, rag_copies=1.0)) == len(plain) + sum(
        not e.is_negative for e in plain)


def test_every_example_is_asked_under_the_one_short_system_prompt(guidelines):
    assert len(DEFAULT_SYSTEM_PROMPT.split()) <= 20, "the system prompt is in every example: keep it short"
    for g in guidelines:
        for e in generate_examples(g, 20, seed=3, rag_fraction=0.3, distractors=guidelines):
            if e.rag == "none":
                assert e.system == DEFAULT_SYSTEM_PROMPT, (g.name, e.system)
            else:
                assert e.system.startswith(DEFAULT_SYSTEM_PROMPT + "\n\n" + NOTES_HEADER)
    g = by_name(guidelines, "Never commit .env files")  # priority shows as a word in some answers instead
    assert any(e.answer.startswith("Critical:") for e in generate_examples(g, 30, seed=3, include_negative=False))


def test_answer_forms_vary_the_framing_never_the_facts(guidelines):
    from memtune.dataset.answers import forms
    from memtune.dataset.text import split_blocks

    for g in guidelines:
        prep = prepare(g)
        available = forms(prep.text, prep.topic, g.priority)
        assert len(available) >= 3, g.name
        blocks = [b.raw.strip() for b in split_blocks(prep.text.body)]
        for name, answer in available.items():
            for b in blocks:  # every sentence and code block of the note, in every form
                assert b in answer, (g.name, name, b, answer)


def test_context_is_optional_and_in_seed_style(guidelines):
    g = by_name(guidelines, "Reset the Local Database")
    exs = generate_examples(g, 20, seed=3)
    with_ctx = [e for e in exs if e.context]
    assert with_ctx and len(with_ctx) < len(exs)
    assert all(e.user.endswith("Context: " + e.context) for e in with_ctx)
    assert all(re.match(r"^I('m| just|'ve)|^Something|^It |^CI |^The ", e.context) for e in with_ctx)


def test_redactions_are_kept_as_placeholders_and_never_keywords(guidelines):
    g = by_name(guidelines, "Staging Admin Login")
    for e in generate_examples(g, 8, seed=1):
        assert "[REDACTED:password]" in e.answer
    for p in generate_probes(g):
        assert p["expected_keywords"]
        assert all("REDACTED" not in k.upper() for k in p["expected_keywords"])
