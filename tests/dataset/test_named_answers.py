"""``named_answers``: every answer about a note opens with the note's name."""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

import memtune.cli.export  # noqa: F401  (registers the command)
from memtune.cli.app import app
from memtune.dataset.answers import pick_form
from memtune.dataset.examples import generate_examples

runner = CliRunner()


@pytest.fixture
def db(store):
    return str(store.path)

AVAILABLE = {"full": "Body.", "memory": "From the project memory: Body.", "named": "Cache lock: Body.",
             "rationale": "Because. Body.", "example": "Body. For example: x.", "code_first": "Run: x"}


def test_named_opens_every_answer_except_why_and_example_questions():
    used: dict[str, int] = {}
    for i, intent in enumerate(["topic", "remind", "command", "should", "fact", "topic"]):
        form = pick_form(AVAILABLE, intent, used, i, named=True)
        assert form == "named", intent
        used[form] = used.get(form, 0) + 1
    assert pick_form(AVAILABLE, "why", used, 0, named=True) == "rationale"  # the reason first, as asked
    assert pick_form(AVAILABLE, "pattern", used, 0, named=True) == "example"
    # a note without a usable name falls back to the rotation
    no_name = {k: v for k, v in AVAILABLE.items() if k != "named"}
    assert pick_form(no_name, "topic", {}, 0, named=True) in no_name
    # off: the openings rotate (least used first)
    forms = set()
    used = {}
    for i in range(4):
        f = pick_form(AVAILABLE, "topic", used, i)
        used[f] = used.get(f, 0) + 1
        forms.add(f)
    assert len(forms) == 4


def test_generated_topic_answers_start_with_the_name(guidelines):
    g = SimpleNamespace(**{**vars(guidelines[0]), "name": "Cache lock",
                           "content": "Two processes converting at once used to corrupt the cache; conversion now "
                                      "holds `convert.lock`. Never delete the lock file by hand."})
    named = generate_examples(g, 8, seed=3, include_negative=False, named_answers=True)
    varied = generate_examples(g, 8, seed=3, include_negative=False)
    assert len(named) == len(varied) == 8
    # the questions are the same; only the answers' openings change
    assert [e.question for e in named] == [e.question for e in varied]
    opened = [e for e in named if e.answer.startswith("Cache lock: ")]
    assert len(opened) >= 6, [e.answer[:30] for e in named]
    assert all(e.answer_form == "named" for e in opened)
    assert sum(e.answer.startswith("Cache lock: ") for e in varied) < len(opened)
    # nothing of the note is lost: every named answer carries the whole note
    assert all(g.content.split(";")[0] in e.answer for e in opened)


def test_named_answers_option_env_var_and_validation(db, tmp_path, monkeypatch):
    from memtune.dataset import ExportConfig
    from memtune.errors import ConfigError

    def forms(*flags: str) -> dict[str, int]:
        out = tmp_path / f"b{len(list(tmp_path.iterdir()))}"
        r = runner.invoke(app, ["export", "--db", db, "--out", str(out), "-n", "6", "--json", *flags])
        assert r.exit_code == 0, r.output
        counts: dict[str, int] = {}
        for line in (out / "train.jsonl").read_text().splitlines():
            f = json.loads(line)["metadata"]["answer_form"]
            counts[f] = counts.get(f, 0) + 1
        cfg = json.loads((out / "metadata.json").read_text())["config"]
        assert cfg["named_answers"] is ("--named-answers" in flags)
        return counts

    named, varied = forms("--named-answers"), forms("--varied-answers")
    assert named.get("named", 0) > 2 * varied.get("named", 0)
    assert sum(named.values()) == sum(varied.values())  # the same examples, other openings
    monkeypatch.setenv("MEMTUNE_EXPORT_NAMED_ANSWERS", "true")
    assert ExportConfig.from_sources(output_path="x").named_answers is True
    monkeypatch.setenv("MEMTUNE_EXPORT_NAMED_ANSWERS", "maybe")
    with pytest.raises(ConfigError, match="MEMTUNE_EXPORT_NAMED_ANSWERS"):
        ExportConfig.from_sources(output_path="x")
    with pytest.raises(ConfigError, match="named answers 'yes' must be true or false"):
        ExportConfig(output_path="x", named_answers="yes")


def test_with_the_note_shown_the_answer_copies_it_instead_of_opening_with_a_title(guidelines):
    g = SimpleNamespace(**{**vars(guidelines[0]), "name": "Cache lock",
                           "content": "Two processes converting at once used to corrupt the cache; conversion now "
                                      "holds `convert.lock`. Never delete the lock file by hand."})
    out = generate_examples(g, 6, seed=3, include_negative=False, named_answers=True, rag_copies=1.0)
    closed = [e for e in out if e.rag == "none"]
    shown = [e for e in out if e.rag == "gold"]
    assert closed and shown
    assert all(e.answer.startswith("Cache lock: ") for e in closed if e.answer_form == "named")
    # each copy is asked with the note in the prompt and answers from it, not with a title
    for e in shown:
        assert "convert.lock" in e.system
        assert not e.answer.startswith("Cache lock: ")
    assert sum(e.answer.startswith("From the project memory: Two processes") for e in shown) >= len(shown) - 1
    # the closed-book examples are the same as without copies
    alone = generate_examples(g, 6, seed=3, include_negative=False, named_answers=True)
    assert [(e.question, e.answer) for e in alone] == [(e.question, e.answer) for e in closed]
