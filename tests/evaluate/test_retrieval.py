"""Retrieval puts the right guideline into the system prompt, in the training layout."""

from __future__ import annotations

from memtune.dataset.prompts import DEFAULT_SYSTEM_PROMPT, NOTES_HEADER
from memtune.evaluate.retrieval import build_system_prompt, retrieve
from memtune.evaluate.runner import conversation


def test_right_guideline_lands_in_the_system_prompt(store_with_guidelines):
    store, ids = store_with_guidelines
    notes = retrieve(store, "Which database engine backs the store?", k=2)
    assert notes and notes[0].guideline_id == ids["Database Choice"]
    assert len(notes) <= 2 and notes[0].score > 0
    prompt = build_system_prompt(notes)
    assert prompt.startswith(DEFAULT_SYSTEM_PROMPT) and NOTES_HEADER in prompt
    assert "[1] Database Choice" in prompt and "pgvector" in prompt
    msgs = conversation("Which database engine backs the store?", "", prompt)
    assert msgs[0] == {"role": "system", "content": prompt}
    assert msgs[1] == {"role": "user", "content": "Which database engine backs the store?"}


def test_the_adapters_own_system_prompt_is_kept(store_with_guidelines):
    store, _ = store_with_guidelines
    notes = retrieve(store, "Which database engine backs the store?", k=1)
    prompt = build_system_prompt(notes, "Answer from memory.")
    assert prompt.startswith("Answer from memory.\n\n" + NOTES_HEADER)


def test_context_helps_the_search(store_with_guidelines):
    store, ids = store_with_guidelines
    notes = retrieve(store, "What should I run?", "frontend dev server", k=1)
    assert notes[0].guideline_id == ids["Frontend Dev Server"]


def test_no_match_and_long_notes(store_with_guidelines):
    store, _ = store_with_guidelines
    assert retrieve(store, "zzzz qqqq", k=3) == []
    assert build_system_prompt([]) == DEFAULT_SYSTEM_PROMPT
    from memtune.evaluate.retrieval import RetrievedNote

    long = RetrievedNote(1, 1, "Long", "general", "word " * 1000, 1.0)
    assert len(build_system_prompt([long])) < len(DEFAULT_SYSTEM_PROMPT) + len(NOTES_HEADER) + 800


def test_notes_far_behind_the_best_are_left_out(store_with_guidelines):
    from memtune.store import RELEVANCE_RATIO

    store, ids = store_with_guidelines
    q = "Which database engine with pgvector backs the store for the backend?"
    every = retrieve(store, q, k=5, min_ratio=0)
    kept = retrieve(store, q, k=5)  # default: RELEVANCE_RATIO
    assert 0 < RELEVANCE_RATIO < 1
    assert kept[0].guideline_id == every[0].guideline_id == ids["Database Choice"]
    assert all(n.score >= RELEVANCE_RATIO * kept[0].score for n in kept)
    dropped = [n for n in every if n.score < RELEVANCE_RATIO * every[0].score]
    assert dropped and len(kept) == len(every) - len(dropped)
    assert len(retrieve(store, q, k=5, min_ratio=1.0)) == sum(1 for n in every if n.score >= every[0].score)


def test_serve_retriever_uses_the_same_cut(store_with_guidelines):
    from memtune.serve.rag import Retriever

    store, _ = store_with_guidelines
    q = "Which database engine backs the store?"
    assert [h.id for h in Retriever(store, k=5).search(q)] == [n.guideline_id for n in retrieve(store, q, k=5)]
    assert len(Retriever(store, k=5, min_ratio=0).search(q)) == len(retrieve(store, q, k=5, min_ratio=0))


def test_a_question_about_what_the_memory_never_mentions_gets_no_notes(store_with_guidelines):
    """One shared word ("database") does not make the memory an answer to a question about Kafka,
    mirroring and Snowflake: evaluation and the servers show no note, so nothing is there to copy."""
    from memtune.serve.rag import Retriever
    from memtune.store import KNOWN_WORDS_MIN_SHARE

    store, ids = store_with_guidelines
    q = "Which Kafka cluster mirrors the database to Snowflake?"
    assert store.known_share(q) < KNOWN_WORDS_MIN_SHARE
    assert retrieve(store, q, k=3) == [] and Retriever(store, k=3).search(q) == []
    shown = retrieve(store, q, k=3, min_known=0)  # the floor turned off: the best partial match
    assert shown and shown[0].guideline_id == ids["Database Choice"]
    assert [h.id for h in Retriever(store, k=3, min_known=0).search(q)] == [n.guideline_id for n in shown]
    # a question in the memory's own words is untouched by the floor
    real = "Which database engine backs the store?"
    assert retrieve(store, real, k=3) == retrieve(store, real, k=3, min_known=0)
