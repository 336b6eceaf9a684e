"""Fact questions: one question per value a note holds, in frames people use."""

from __future__ import annotations

import pytest

from memtune.dataset.examples import _with_facts, generate_examples
from memtune.dataset.facts import fact_questions
from memtune.dataset.probes import generate_probes
from memtune.dataset.questions import Question
from memtune.dataset.text import question_key


def asked(body: str, keywords: tuple[str, ...] = ()) -> dict[str, tuple[str, ...]]:
    return {q.text: q.keys for q in fact_questions(body, keywords) if not q.probe}


def probes(body: str) -> dict[str, tuple[str, ...]]:
    return {q.text: q.keys for q in fact_questions(body) if q.probe}


def test_a_statement_turns_each_value_into_a_which_question():
    body = "The ingest worker listens on port 7420; the forecast API listens on port 7421."
    qs = asked(body)
    assert qs["Which port does the ingest worker listen on?"] == ("7420",)
    assert qs["Which port does the forecast API listen on?"] == ("7421",)
    assert qs["Do you know which port the ingest worker listens on?"] == ("7420",)  # embedded: statement order
    assert probes(body)["The ingest worker listens on which port?"] == ("7420",)


def test_an_instruction_with_a_command_gets_command_questions():
    qs = asked("Run the unit tests with `go test -race ./...`.")
    for q in ("What do I run the unit tests with?", "Which command runs the unit tests?",
              "What's the command to run the unit tests?", "How do I run the unit tests?",
              "Do you know what to run the unit tests with?"):
        assert qs[q] == ("go test -race ./...",)
    assert "What am I supposed to run the unit tests with?" in probes("Run the unit tests with `go test -race ./...`.")


def test_places_counts_versions_and_objects():
    qs = asked("Migrations live in `db/migrations` and are applied with `goose up`.")
    assert qs["Where do migrations live?"] == ("db/migrations",)
    assert qs["What are migrations applied with?"] == ("goose up",)
    qs = asked("The harmonic forecast model needs at least 29 days of readings for a station.")
    assert qs["How many days of readings does the harmonic forecast model need for a station?"] == ("29",)
    assert asked("Memtune needs Python 3.11 or newer.")["Which version of Python does memtune need?"] == ("3.11",)
    assert asked("Use `slog` for logging.")["What do I use for logging?"] == ("slog",)
    assert asked("Pass a `context.Context` as the first argument.")[
        "What do I pass as the first argument?"] == ("context.Context",)
    assert asked("Heights are stored in millimetres as integers.", ("millimetres",))[
        "What are heights stored in as integers?"] == ("millimetres",)


def test_them_borrows_the_subject_of_the_clause_before():
    qs = asked("Integration tests need the local stack and are tagged: run them with "
               "`go test -tags integration ./internal/...`.")
    assert "Which command runs integration tests?" in qs


def test_a_reason_becomes_a_why_question():
    qs = asked("Station identifiers are the five-digit national codes, kept as strings because some start "
               "with a zero.")
    assert qs["Why are station identifiers kept as strings?"] == ("zero",)
    qs = asked("Never call `go build` directly, because the mage target injects the version with `-ldflags`.")
    assert qs["Why shouldn't I call go build directly?"] == ("-ldflags",)


def test_a_colon_before_a_code_block_stays_out_of_the_question():
    qs = asked("Start the worker with `cargo run dev` from the repo root:\n\n```bash\ncargo run dev\n```")
    assert qs["Which command starts the worker from the repo root?"] == ("cargo run dev",)


def test_a_condition_becomes_a_when_question():
    assert asked("Split a module by responsibility when it passes about 600 lines.")[
        "When should I split a module by responsibility?"] == ("600",)
    assert asked("CI fails if it takes over 90 minutes.")["When does CI fail?"] == ("90",)
    # a value after a comma in the condition belongs to another clause
    assert not [q for q in fact_questions("Copy all three files when you move a store, or run `memtune dump` first.")
                if q.frame == "when"]


def test_the_kind_of_value_gives_a_which_question():
    assert asked("The HTTP server binds to `127.0.0.1` by default.")[
        "Which address does the HTTP server bind to by default?"] == ("127.0.0.1",)
    assert asked("ALWAYS install `torch==2.13.0` before anything else.")[
        "Which torch version do I install before anything else?"] == ("torch==2.13.0",)
    assert asked("Set `SIM_STATION_FILE` to use another station.")[
        "Which environment variable do I set to use another station?"] == ("SIM_STATION_FILE",)


def test_subjects_with_code_or_a_relative_clause_and_objects_before_a_noun():
    assert asked("Every `MemtuneError` carries a `hint`.")["What does every MemtuneError carry?"] == ("hint",)
    qs = asked("Tests that use the real model are marked `@pytest.mark.slow`.")
    assert qs["How are tests that use the real model marked?"] == ("@pytest.mark.slow",)
    assert asked("Library code raises `MemtuneError` subclasses instead.")[
        "Which subclasses does library code raise instead?"] == ("MemtuneError",)


def test_commented_commands_in_code_blocks_are_asked_for_by_what_they_do():
    body = ("Set up:\n\n```bash\nmake test            # creates .venv, installs pinned deps\n"
            "make test-fast       # skips the slow real-model tests\nmake demo  # ingest examples/ and list them\n"
            "deploy --token [REDACTED:api-key]  # pushes the release\n```")
    qs = asked(body)
    assert qs["Which command skips the slow real-model tests?"] == ("make test-fast",)
    assert qs["What's the command that creates .venv?"] == ("make test",)
    assert not [q for q in qs if "pushes" in q or "release" in q]  # a line with a redacted secret is skipped


@pytest.mark.parametrize("body", [
    "Releases are cut by pushing a tag like `v1.8.0`.",  # an example, not the fact
    "Log in to staging as `admin@example.com` with password [REDACTED:password].",  # next to a secret
    "Add the logic to BOTH resolvers.",  # emphasis, not a value
    "Unit tests build a randomly initialised `LlamaForCausalLM` in code.",  # inside a noun phrase
    "Use `postgresql+psycopg://h/db` or install `memtune[postgres]`.",  # "What do I use?" asks nothing
    "If the billing service fails with EADDRINUSE on port 3002, kill the stale process.",  # a side clause
])
def test_no_question_where_the_clause_does_not_read_cleanly(body):
    assert not [q for q in fact_questions(body, ("BOTH", "password")) if "v1.8.0" in q.keys
                or "REDACTED" in q.text or "BOTH" in q.keys or "LlamaForCausalLM" in q.keys
                or q.text == "What do I use?" or q.text.lower().startswith(("which port does if", "do you know which port if"))]


def test_values_are_interleaved_and_probe_frames_are_separate():
    body = ("Build every binary with `mage build`; the ingest worker listens on port 7420. "
            "Golden files live in `testdata/golden`.")
    qs = fact_questions(body)
    first_keys = [q.keys[0] for q in qs[:3]]
    assert first_keys == ["mage build", "7420", "testdata/golden"]  # every value once before any repeats
    train = {question_key(q.text) for q in qs if not q.probe}
    assert all(question_key(q.text) not in train for q in qs if q.probe)
    assert {q.frame for q in qs if q.probe} <= {"echo", "supposed"}


def test_fact_share_interleaves_value_and_topic_questions():
    topical = [Question("how", f"topic {i}?", "how") for i in range(6)]
    facts = fact_questions("Use `slog` for logging; the worker listens on port 7420.")
    mixed = _with_facts(topical, [f for f in facts if not f.probe], 0.5)
    assert [q.family.startswith("fact_") for q in mixed[:4]] == [True, False, True, False]
    assert len(mixed) == len(topical) + len([f for f in facts if not f.probe])


def test_generated_examples_ask_for_values_and_probes_expect_them(guidelines):
    g = next(x for x in guidelines if "ALWAYS run `nvm use 22`" in x.content)
    with_facts = generate_examples(g, 10, seed=3, fact_share=0.5)
    assert any(e.family.startswith("fact_") for e in with_facts)
    assert not any(e.family.startswith("fact_") for e in generate_examples(g, 10, seed=3, fact_share=0.0))
    fact_probes = [p for p in generate_probes(g, seed=3) if p["family"] == "fact"]
    assert len(fact_probes) == 1
    p = fact_probes[0]
    assert p["expected_keywords"] and all(k.lower() not in p["question"].lower() for k in p["expected_keywords"])
    trained = {question_key(e.question) for e in generate_examples(g, 50, seed=3, fact_share=1.0)}
    assert question_key(p["question"]) not in trained


def test_fact_share_is_validated():
    from memtune.dataset import ExportConfig
    from memtune.errors import ConfigError

    with pytest.raises(ConfigError, match="fact share 1.5 must be a number in 0..1"):
        ExportConfig(output_path="x", fact_share=1.5)


def test_value_first_moves_the_sentence_holding_the_value_to_the_front():
    from memtune.dataset.answers import value_first

    body = ("The HTTP server listens on `127.0.0.1` by default. Binding to `0.0.0.0` requires "
            "`MEMTUNE_API_TOKEN`. It logs to stderr.")
    out = value_first(body, ("MEMTUNE_API_TOKEN",))
    assert out == ("Binding to `0.0.0.0` requires `MEMTUNE_API_TOKEN`.\n\n"
                   "The HTTP server listens on `127.0.0.1` by default. It logs to stderr.")
    assert sorted(out.split()) == sorted(body.split())  # moved, nothing dropped or repeated
    listed = "Test rules:\n\n- Build a tiny model.\n- Slow tests are marked `@pytest.mark.slow`.\n- Keep it fast."
    assert value_first(listed, ("@pytest.mark.slow",)) == (
        "Slow tests are marked `@pytest.mark.slow`.\n\nTest rules:\n\n- Build a tiny model.\n- Keep it fast.")
    assert value_first(body, ("127.0.0.1",)) is None  # already first
    assert value_first("Steps:\n\n1. Write the test.\n2. Run `make test-fast`.", ("make test-fast",)) is None
    assert value_first("Run this:\n\n```bash\nmake test-fast\n```", ("make test-fast",)) is None  # code only


def test_value_questions_are_answered_value_first(guidelines):
    from types import SimpleNamespace

    g = SimpleNamespace(**{**vars(guidelines[0]), "name": "Ports",
                           "content": "Services need fixed ports. The ingest worker listens on port 7420."})
    facts = [e for e in generate_examples(g, 12, seed=3, fact_share=1.0) if e.family.startswith("fact_")]
    port = [e for e in facts if "port" in e.question.lower() and "7420" not in e.question]
    assert port and all(e.answer.startswith("The ingest worker listens on port 7420.") for e in port)
    assert all(e.answer_form == "value_first" and "Services need fixed ports." in e.answer for e in port)


def test_fact_rag_copies_repeat_value_questions_with_the_note_shown(guidelines):
    from memtune.dataset import ExportConfig
    from memtune.errors import ConfigError

    g = next(x for x in guidelines if "ALWAYS run `nvm use 22`" in x.content)
    out = generate_examples(g, 12, seed=3, fact_share=0.5, fact_rag_copies=1.0, distractors=guidelines)
    closed = [e for e in out if e.rag == "none" and not e.is_negative]
    copies = [e for e in out if e.rag == "gold"]
    assert copies and [e.question for e in copies] == [e.question for e in closed if e.family.startswith("fact_")]
    assert all("nvm use 22" in e.system for e in copies)
    # None = the rag_copies share for every question: the same examples as before the option existed
    assert generate_examples(g, 12, seed=3, fact_share=0.5, rag_copies=0.5, distractors=guidelines) == \
        generate_examples(g, 12, seed=3, fact_share=0.5, rag_copies=0.5, fact_rag_copies=None, distractors=guidelines)
    with pytest.raises(ConfigError, match="fact rag copies 2 must be a number in 0..1"):
        ExportConfig(output_path="x", fact_rag_copies=2)


def test_a_never_rule_asks_what_not_to_do_and_never_what_to_do():
    qs = asked("NEVER use `print()` in library code; return data instead.")
    assert qs["What should I never use in library code?"] == ("print()",)
    assert qs["Do you know what not to use in library code?"] == ("print()",)
    assert not any(q.startswith(("What do I use", "What should I use")) for q in qs)
    assert probes("Do not edit `uv.lock` by hand.") == {"What am I not supposed to edit by hand?": ("uv.lock",)}
    assert asked("Don't call `typer.Exit` outside the CLI layer.")["What must I not call outside the CLI layer?"] == \
        ("typer.Exit",)
    assert "Which files should I never commit to git?" in asked("Never commit `.env` files to git.")
    assert asked("Never use `os.path`.") == {}  # names nothing the rule is about


def test_numbers_in_scientific_notation_are_values():
    assert asked("Set weight decay to 1e-4 for LoRA runs.")["What do I set weight decay to for LoRA runs?"] == ("1e-4",)


def test_a_lesson_in_the_past_tense_and_values_with_units():
    assert asked("The first conversion took about 17 seconds.")["How many seconds did the first conversion take?"] == \
        ("17",)
    qs = asked("Dynamic padding gave about 117 tokens/s at 3.6 GB.")
    assert qs["What did dynamic padding give at 3.6 GB?"] == ("117 tokens/s",)  # the unit is part of the value
    assert not any(q.startswith("Where") for q in qs)  # a number is never a place
    assert asked("The service uses 512 MB of memory.")["How much memory does the service use?"] == ("512 MB",)
    assert "What are the lines for the splitter?" in asked("The splitter broke on `#` lines inside code fences.")


def test_a_lead_condition_stays_on_the_question():
    qs = asked("If a conversion was killed, delete `models/x.tmp` and retry.")
    assert qs["What should I delete if a conversion was killed?"] == ("models/x.tmp",)
    assert qs["Do you know what to delete if a conversion was killed?"] == ("models/x.tmp",)
    assert not any(q.startswith("What do I delete?") for q in qs)  # never asked as if it held always
    assert asked("When the build fails on CI, run `make clean` first.")["What do I run first when the build fails on CI?"] \
        == ("make clean",)
    assert "What should I never use when a deploy fails?" in asked("When a deploy fails, never use `--force`.")
    assert asked("If it is interrupted, run `make x` again.") == {}  # "it" could not be said in the question


def test_a_name_and_its_version_before_a_noun_are_asked_for_by_the_noun():
    qs = asked("PostgreSQL URLs need the psycopg 3 driver.")
    assert qs["Which driver do PostgreSQL URLs need?"] == ("psycopg 3",)
    assert asked("Use the Node 20 runtime for the worker.")["Which runtime do I use for the worker?"] == ("Node 20",)
    assert asked("Wait after the first 2 retries.") == {}  # a count, not a version


def test_why_and_when_questions_invert_the_same_verbs_as_value_questions():
    assert asked("Tests have a 30 s timeout because CI machines are slow.")["Why do tests have a 30 s timeout?"] == \
        ("slow",)
    assert asked("Integration tests need `pg` when the suite runs in CI.")[
        "What do integration tests need when the suite runs in CI?"] == ("pg",)


def test_topic_floor_swaps_topic_questions_in_for_value_questions():
    from memtune.dataset.examples import _topic_floor

    facts = [Question(f"fact_know_{i}", f"value {i}?", "fact") for i in range(5)]
    topical = [Question("how", f"topic {i}?", "how") for i in range(4)]
    qs = facts + topical
    out = _topic_floor(qs, 5, 3, None)
    assert sorted(q.text for q in out) == sorted(q.text for q in qs)  # reordered, nothing lost
    asked = out[:5]
    assert sum(not q.family.startswith("fact_") for q in asked) == 3
    assert [q.text for q in asked if q.family.startswith("fact_")] == ["value 0?", "value 1?"]
    assert out[5].text == "value 4?"  # the last value question swapped out is next in line
    # held-out phrasings do not count toward the floor, and one value question always stays
    held_out = {"topic 0?"}
    out = _topic_floor(qs, 5, 3, lambda q: q not in held_out)
    assert "topic 0?" not in [q.text for q in out[:5]]
    assert sum(not q.family.startswith("fact_") for q in out[:5]) == 3
    out = _topic_floor(qs, 5, 9, None)
    assert sum(q.family.startswith("fact_") for q in out[:5]) == 1
    assert _topic_floor(qs, 5, 0, None) == qs


def test_min_topic_questions_keeps_value_rich_notes_askable_by_name(guidelines):
    from types import SimpleNamespace

    from memtune.dataset import ExportConfig
    from memtune.errors import ConfigError

    g = SimpleNamespace(**{**vars(guidelines[0]), "name": "Cache lock",
                           "content": "Two processes converting at once used to corrupt the cache; conversion now "
                                      "holds `convert.lock`. If a conversion was killed, delete "
                                      "`~/.cache/memtune/models/tmp*` and retry on port 7420."})

    def topic_count(floor: int) -> int:
        out = generate_examples(g, 6, seed=3, fact_share=1.0, include_negative=False, min_topic_questions=floor)
        assert len(out) == 6
        return sum(not e.family.startswith("fact_") for e in out)

    assert topic_count(0) == 0
    assert topic_count(4) == 4
    with pytest.raises(ConfigError, match="min topic questions -1 must be a whole number in 0..50"):
        ExportConfig(output_path="x", min_topic_questions=-1)


def test_min_topic_questions_reads_its_environment_variable(monkeypatch):
    from memtune.dataset import ExportConfig
    from memtune.errors import ConfigError

    monkeypatch.setenv("MEMTUNE_EXPORT_MIN_TOPIC_QUESTIONS", "3")
    assert ExportConfig.from_sources(output_path="x").min_topic_questions == 3
    monkeypatch.setenv("MEMTUNE_EXPORT_MIN_TOPIC_QUESTIONS", "three")
    with pytest.raises(ConfigError, match="MEMTUNE_EXPORT_MIN_TOPIC_QUESTIONS"):
        ExportConfig.from_sources(output_path="x")
