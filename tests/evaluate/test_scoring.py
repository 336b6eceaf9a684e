"""Keyword scoring: forgiving about form (case, spaces, backticks, markdown), strict about content."""

from __future__ import annotations

import pytest

from memtune.evaluate.scoring import (
    KeywordScore,
    keyword_recall,
    keyword_spans,
    normalize,
    score_answer,
    summarize_by,
    summarize_scores,
)


@pytest.mark.parametrize(
    ("answer", "keyword"),
    [
        ("Run `yarn start` in the background", "yarn start"),
        ("Run YARN START", "yarn start"),
        ("run yarn\n   start", "yarn start"),
        ("switch with nvm use 22", "`nvm use 22`"),
        ("Use **Node 22** first", "Node 22"),
        ("Use __Node 22__ first", "node 22"),
        ("it is ~~not~~ **`pgvector`**", "pgvector"),
        ("Node22 is required", "Node 22"),
        ("install with npm install \\-\\-legacy-peer-deps", "--legacy-peer-deps"),
        ("install with npm install \u2014legacy-peer-deps", "-legacy-peer-deps"),
        ("the \u201cstrict\u201d flag", '"strict"'),
        ("Stra\u00dfe", "STRASSE"),
    ],
)
def test_keyword_found_despite_form(answer, keyword):
    s = score_answer(answer, [keyword])
    assert s.hits == [keyword] and s.missed == [] and s.recall == 1.0 and s.full is True


def test_different_content_is_not_a_hit():
    s = score_answer("Run npm run dev", ["yarn start", "npm run dev", "nvm use 22"])
    assert s.hits == ["npm run dev"]
    assert s.missed == ["yarn start", "nvm use 22"]
    assert s.recall == pytest.approx(1 / 3)
    assert s.full is False


def test_empty_and_markup_only_keywords_are_ignored():
    s = score_answer("anything", ["", "   ", "``", "**"])
    assert s.total == 0 and s.recall is None and s.full is None
    assert keyword_recall("anything", []) is None
    assert keyword_recall("anything", None) is None
    # usable ones still count, duplicates (after normalisation) count once
    s = score_answer("uses pgvector", ["", "pgvector", "PGVector", "redis"])
    assert s.hits == ["pgvector"] and s.missed == ["redis"]


def test_empty_answer_misses_everything():
    s = score_answer("", ["yarn start"])
    assert s.recall == 0.0 and s.full is False


def test_normalize_drops_form_only():
    assert normalize("  **`Yarn  Start`**\n") == "yarnstart"
    assert normalize("a_b-c") == "a_b-c"


def test_spans_point_at_original_text():
    answer = "First **`nvm use 22`**, then run Yarn\nStart."
    spans = keyword_spans(answer, ["nvm use 22", "yarn start", "missing"])
    assert [answer[s:e] for s, e, _ in spans] == ["nvm use 22", "Yarn\nStart"]
    assert [k for _, _, k in spans] == ["nvm use 22", "yarn start"]


def test_spans_do_not_overlap_and_mark_every_occurrence():
    spans = keyword_spans("yarn start, yarn start", ["yarn", "yarn start"])
    assert [(s, e) for s, e, _ in spans] == [(0, 10), (12, 22)]


def test_summaries_skip_unscored_and_group():
    scores = [KeywordScore(["a"], []), KeywordScore(["a"], ["b"]), KeywordScore([], [])]
    s = summarize_scores(scores)
    assert s.n == 2 and s.unscored == 1
    assert s.recall == pytest.approx(0.75) and s.full_rate == pytest.approx(0.5)
    assert summarize_scores([]).recall is None
    by = summarize_by([("cmd", scores[0]), ("arch", scores[1]), ("cmd", scores[1])])
    assert list(by) == ["arch", "cmd"]
    assert by["cmd"].recall == pytest.approx(0.75) and by["arch"].full_rate == 0.0
