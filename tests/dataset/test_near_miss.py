"""Near-miss "not in memory" examples: the memory's own names, asked for a detail no note gives."""

from __future__ import annotations

import json

import pytest

from memtune.dataset import ExportConfig, export_guidelines_as_lora
from memtune.dataset.near_miss import near_miss_questions
from memtune.errors import ConfigError
from memtune.evaluate.controls import classify_control
from memtune.store import GuidelineInput

NOTES = [
    "Build the CLI with Go and Kotlin; run `make build` from the repo root.",
    "The sync server listens on port 7420 and reads its token from SYNC_TOKEN.",
    "Tests use Kotlin 2.0 and the Gradle wrapper; never call a system Gradle.",
    "The upload worker retries three times before it gives up.",
    "Write commit messages in the imperative mood, like Git itself does.",
]


def _by_thing(qs):
    out: dict[str, set[str]] = {}
    for q in qs:
        out.setdefault(q.thing, set()).add(q.kind)
    return out


def test_asks_only_for_details_no_note_naming_the_thing_gives():
    qs = near_miss_questions(NOTES, 200, seed=0)
    kinds = _by_thing(qs)
    assert "version" in kinds["Go"], "no note gives Go a version"
    assert "Kotlin" not in kinds, "Kotlin 2.0 is given: its version is in the memory"
    assert "Gradle" not in kinds, "only versions are asked of tools, and Gradle's note has a number in it"
    server = kinds["the sync server"]
    assert not server & {"port", "env", "credentials"}, "port 7420 and SYNC_TOKEN are in its note"
    assert {"release", "owner"} <= server
    assert "timeout" not in kinds["the upload worker"], "its note says when it gives up"
    assert "commit" not in " ".join(kinds).lower(), "ordinary words are not names"
    assert "Git" in kinds, "a capitalised word the prose never writes in lower case is a name"


def test_questions_are_distinct_deterministic_and_answered_by_an_admission():
    a = near_miss_questions(NOTES, 200, seed=3)
    assert a == near_miss_questions(NOTES, 200, seed=3)
    assert len({q.question for q in a}) == len(a)
    assert near_miss_questions(NOTES, 5, seed=3) != [] and len(near_miss_questions(NOTES, 5, seed=3)) == 5
    assert near_miss_questions(NOTES, 0, seed=3) == [] and near_miss_questions([], 5, seed=3) == []
    for q in a:
        assert q.question.endswith("?") and q.question[0].isupper()
        assert q.thing.lower().removeprefix("the ") in q.question.lower()
        assert classify_control(q.answer, q.question).label == "admits", (q.question, q.answer)
    assert not any(q.question.startswith("Which port does the") and q.thing.endswith("s") for q in a)


def test_export_replaces_that_share_of_the_generic_unknown_examples(store, tmp_path):
    """With ``near_miss_share`` the "not in memory" count stays the same; that share asks about the
    memory's own names, most of them with the notes retrieval shows, and every answer admits the gap."""
    store.add(GuidelineInput(name="Sync server", content=NOTES[1], category="architecture"))
    store.add(GuidelineInput(name="Upload worker", content=NOTES[3], category="architecture"))

    def unknown_rows(name, share):
        export_guidelines_as_lora(store, ExportConfig(output_path=tmp_path / name, control_fraction=0.2,
                                                      near_miss_share=share))
        rows = [json.loads(line) for f in ("train.jsonl", "eval.jsonl")
                for line in (tmp_path / name / f).read_text(encoding="utf-8").splitlines()]
        meta = json.loads((tmp_path / name / "metadata.json").read_text(encoding="utf-8"))
        return [r for r in rows if r["metadata"]["kind"] == "unknown"], meta

    generic, meta0 = unknown_rows("off", 0.0)
    mixed, meta = unknown_rows("half", 0.5)
    assert len(mixed) == len(generic) > 4
    near = [r for r in mixed if r["metadata"]["answer_form"].startswith("near_miss")]
    assert abs(len(near) - round(len(mixed) * 0.5)) <= 1
    assert any(r["metadata"]["rag"] == "distractors" for r in near), "most are asked with the notes shown"
    assert all(classify_control(r["messages"][-1]["content"], r["messages"][-2]["content"]).label == "admits"
               for r in near)
    assert meta["config"]["near_miss_share"] == 0.5 and "near_miss_share" in meta0["config"]
    with pytest.raises(ConfigError, match="near miss share"):
        ExportConfig(output_path=tmp_path / "x", near_miss_share=2)
