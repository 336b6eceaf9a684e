"""Word forms come from lemminflect and the word lists from the one data file (memtune/data/words.yaml)."""

from __future__ import annotations

import random

import pytest

from memtune.dataset import grammar, words
from memtune.dataset.clauses import PARTICIPLES, PAST_FORMS, STATEMENT_VERBS
from memtune.dataset.keywords import PROGRAMS
from memtune.dataset.questions import train_questions
from memtune.dataset.topics import derive_topic


@pytest.mark.parametrize(("verb", "ing", "third"), [
    # the bugs of the hand-written tables: a doubled "d", a missing "k", doubling where English doesn't
    ("rebuild", "rebuilding", "rebuilds"), ("panic", "panicking", "panics"), ("format", "formatting", "formats"),
    ("split", "splitting", "splits"), ("emit", "emitting", "emits"), ("forbid", "forbidding", "forbids"),
    ("win", "winning", "wins"), ("debug", "debugging", "debugs"),
    # irregular and spelling-rule verbs that must keep reading right
    ("run", "running", "runs"), ("make", "making", "makes"), ("see", "seeing", "sees"), ("go", "going", "goes"),
    ("be", "being", "is"), ("have", "having", "has"), ("do", "doing", "does"), ("lie", "lying", "lies"),
    ("tie", "tying", "ties"), ("visit", "visiting", "visits"), ("limit", "limiting", "limits"),
    ("refer", "referring", "refers"), ("begin", "beginning", "begins"), ("open", "opening", "opens"),
    ("fix", "fixing", "fixes"), ("apply", "applying", "applies"), ("deploy", "deploying", "deploys"),
    ("cancel", "canceling", "cancels"), ("agree", "agreeing", "agrees"), ("dye", "dyeing", "dyes"),
])
def test_verb_forms(verb, ing, third):
    assert grammar.gerund(verb) == ing
    assert grammar.third_person(verb) == third


@pytest.mark.parametrize(("verb", "past", "participle"), [
    ("go", "went", "gone"), ("take", "took", "taken"), ("run", "ran", "run"), ("write", "wrote", "written"),
    ("keep", "kept", "kept"), ("index", "indexed", "indexed"),
])
def test_past_forms(verb, past, participle):
    assert grammar.past_tense(verb) == past
    assert grammar.past_participle(verb) == participle


def test_forms_of_words_the_dictionary_lacks_follow_the_spelling_rules():
    assert grammar.gerund("dockerize") == "dockerizing"
    assert grammar.third_person("memoize") == "memoizes"


def test_a_name_with_a_fixed_verb_asks_in_the_right_form():
    """The generator's own output, not only the helper: "rebuild" used to become "rebuildding"."""
    topic = derive_topic("Rebuild the index", "Rebuild the search index after a schema change.", "command")
    assert topic.ger == "rebuilding the index" and topic.vp3 == "rebuilds the index"
    asked = " ".join(q.text for q in train_questions(topic, random.Random(0)))
    assert "rebuilding the index" in asked and "rebuildding" not in asked


def test_word_lists_come_from_the_data_file():
    assert {"npm", "git", "./gradlew"} <= PROGRAMS and "docker" in words.names_with("name")
    assert {"data", "python"} <= grammar.MASS_WORDS
    assert {"run", "rebuild"} <= grammar.CLEAR_VERBS and "test" in grammar.AMBIGUOUS_VERBS
    assert "listen" in STATEMENT_VERBS
    assert PAST_FORMS["took"] == "take" and PAST_FORMS["hung"] == "hang"
    assert {"written", "kept", "taken"} <= PARTICIPLES
    # one table of names: each word once, every role a known one
    assert set().union(*(words.names_with(r) for r in words.ROLES)) == set(words.data()["names"])


def test_the_exception_table_overrides_the_library(monkeypatch):
    monkeypatch.setattr(grammar, "_GERUND_EXCEPTIONS", {"mimic": "mimicking"})
    monkeypatch.setattr(grammar, "_THIRD_EXCEPTIONS", {"mimic": "mimics"})
    assert grammar.gerund("mimic") == "mimicking" and grammar.third_person("Mimic") == "mimics"


def test_a_broken_data_file_names_the_file_and_key(monkeypatch):
    monkeypatch.setattr(words.yaml, "safe_load", lambda _text: {"verbs": {}, "names": {"npm": ["tool"]},
                                                                "mass_suffixes": "", "exceptions": {}})
    words.data.cache_clear()
    try:
        with pytest.raises(ValueError, match=r"memtune/data/words.yaml: names.'npm' must list roles"):
            words.data()
    finally:
        monkeypatch.undo()
        words.data.cache_clear()
    assert "npm" in words.names_with("program")


def test_the_data_file_ships_in_the_wheel():
    """pyproject's package-data globs take memtune/data/*: the file must sit there to be packaged."""
    from importlib import resources

    assert resources.files("memtune").joinpath("data/words.yaml").is_file()
