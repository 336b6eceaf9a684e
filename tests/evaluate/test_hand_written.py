"""Hand-written probes (no guideline id) and control questions written for one memory."""

from __future__ import annotations

from memtune.evaluate import evaluate
from tests.evaluate.test_evaluate import scripted  # noqa: F401 - the scripted-generation fixture
from tests.evaluate.tiny import GUIDELINES


def test_hand_written_probes_get_a_right_note_rate_and_memory_controls_are_asked(tiny_env, scripted):  # noqa: F811
    """Probes without a guideline id: the right note is one holding every expected keyword; control
    questions written for this memory are asked and classified like the built-in ones."""
    probes = [{"question": q, "expected_keywords": k} for _n, _c, _t, q, k in GUIDELINES]
    probes.append({"question": "Which port does the ingest worker listen on?", "expected_keywords": ["7420"]})
    mine = ["Which team owns the billing dashboard?", "What is the staging cluster called?"]
    r = evaluate(tiny_env["adapter"], db=tiny_env["db"], probes=probes, n_controls=1, control_questions=mine,
                 rag_k=1, forgetting=False, bf16=False, conditions="adapter,adapter+rag")
    assert [c.question for c in r.controls][-2:] == mine and len(r.controls) == 3
    assert r.invented_rate("adapter") == 1.0  # the script invents for every control
    hits = [p.answers["adapter+rag"].retrieval_hit for p in r.probes]
    assert hits[-1] is False  # no stored note holds "7420"
    # the rate counts only what the shown note covers, so it is below 1 and not None
    rate = r.summaries["adapter+rag"].retrieval_hit_rate
    assert rate is not None and rate == sum(hits) / len(hits) and rate < 1.0


def test_right_note_counts_facts_across_notes_and_not_the_yes_or_no():
    """A yes/no question's "no" is the answer, not a fact of the note; a two-fact question may need two notes."""
    from memtune.evaluate.api import right_note_shown
    from memtune.evaluate.probes import Probe
    from memtune.evaluate.retrieval import RetrievedNote

    def note(i, text):
        return RetrievedNote(i, 1, f"n{i}", "general", text, 1.0)

    logging = note(1, "Never use console.log in TUI code; use LogService instead.")
    port = note(2, "The ingest worker listens on 7420.")
    yes_no = Probe(question="Can I drop a console.log in a TUI component?", expected_keywords=["no", "LogService"])
    assert right_note_shown(yes_no, [logging]) is True
    assert right_note_shown(yes_no, [port]) is False
    two = Probe(question="Which logger, and which port for ingest?", expected_keywords=["LogService", "7420"])
    assert right_note_shown(two, [logging]) is False and right_note_shown(two, [port, logging]) is True
    assert right_note_shown(Probe(question="Is it allowed?", expected_keywords=["yes"]), [logging]) is None
