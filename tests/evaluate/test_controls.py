"""Control questions: chosen so the memory cannot answer them, and answers classified."""

from __future__ import annotations

import pytest

from memtune.evaluate.controls import (
    CONTROL_TOPICS,
    ControlTopic,
    classify_control,
    memory_texts_from_store,
    select_controls,
    summarize_controls,
)
from memtune.evaluate.leaks import check_output

Q = "Which Kafka topic stores invoices?"


@pytest.mark.parametrize(
    "answer",
    [
        "I don't know which topic that is.",
        "I'm not sure; the project notes don't say.",
        "There is no information about Kafka topics in the notes.",
        "That isn't in my notes.",
        "The invoice topic is not documented.",
        "I do not have that information.",
        "Sorry, I can't find anything about Kafka topics that store invoices.",
    ],
)
def test_admissions(answer):
    v = classify_control(answer, Q)
    assert v.label == "admits" and not v.invented and v.admission


@pytest.mark.parametrize(
    "answer",
    [
        "Invoices go to the `billing.invoices.v2` topic.",
        "Use kubectl apply -f deploy/staging.yaml",
        "The topic is invoices_events and it lives on the main cluster.",
        "It is stored in INVOICE_TOPIC_NAME.",
        "It is invoice-events-2 on broker kafka1.internal.",
        "Run this:\n$ kafka-topics --list",
        "It has 12 partitions.",
        'The Kafka topic "Booking and Payment" stores them.',  # seen from SmolLM2-135M
    ],
)
def test_confident_specifics_are_inventions(answer):
    v = classify_control(answer, Q)
    assert v.label == "invents" and v.invented and v.specifics


def test_hedged_specifics_count_as_invented():
    v = classify_control("I'm not sure, but it is probably `invoices-topic`.", Q)
    assert v.label == "hedges" and v.invented


def test_vague_and_empty_answers():
    assert classify_control("You should ask the team that owns billing.", Q).label == "vague"
    # capitalised product names in prose are not command lines
    assert classify_control("It is a Kafka-based system on the AWS Cloud.", Q).label == "vague"
    assert classify_control("", Q).label == "vague"


def test_echoing_the_question_is_not_a_specific():
    q = "What is the p99 latency SLA of the public REST API?"
    assert classify_control("The p99 latency SLA of the REST API is not documented.", q).label == "admits"
    assert classify_control("The p99 SLA is 250 ms.", q).label == "invents"


def test_numbered_lists_are_not_specifics():
    assert classify_control("1. Ask your lead.\n2. Check the wiki.", Q).label == "vague"


def test_summary_rates():
    vs = [classify_control(a, Q) for a in ("I don't know.", "It is `x_topic`.", "I'm not sure, maybe `y_topic`.", "Ask around.")]
    s = summarize_controls(vs)
    assert s.n == 4 and s.counts == {"admits": 1, "hedges": 1, "invents": 1, "vague": 1}
    assert s.invented_rate == 0.5 and s.admits_rate == 0.25
    assert summarize_controls([]).invented_rate is None


def test_topics_the_memory_mentions_are_dropped():
    memory = ["We deploy with kubectl to the K8s cluster.", "Invoices are published on Kafka."]
    kept, dropped = select_controls(memory, n=100)
    dropped_q = {t.question for t in dropped}
    assert "What's the command to deploy to Kubernetes staging?" in dropped_q
    assert "Which Kafka topic stores invoices?" in dropped_q
    assert len(kept) == len(CONTROL_TOPICS) - len(dropped)
    kept2, _ = select_controls(memory, n=3)
    assert kept2 == kept[:3]
    # multi-word terms match as phrases, not as loose words
    t = ControlTopic("q?", ("feature flag",))
    assert select_controls(["a flag for every feature"], topics=[t])[0] == [t]
    assert select_controls(["add a Feature Flag"], topics=[t])[1] == [t]


def test_controls_filtered_against_a_real_store(store_with_guidelines):
    from memtune.store import GuidelineInput

    store, _ = store_with_guidelines
    store.add(GuidelineInput(name="Deploys", content="Deploy to staging with the deploy script.", scope_id="demo"))
    kept, dropped = select_controls(memory_texts_from_store(store), n=100)
    assert any("Kubernetes staging" in t.question for t in dropped)
    assert all("staging" not in t.question.lower() for t in kept)


def test_leak_check_redacts_and_reports_types():
    clean = check_output("Run `yarn start` after nvm use 22.")
    assert not clean.leaked and clean.text == "Run `yarn start` after nvm use 22."
    key = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    leak = check_output(f"Use the token {key} to push.")
    assert leak.leaked and key not in leak.text and "[REDACTED:" in leak.text
    known = check_output("the password is hunter2hunter2", known_secrets=["hunter2hunter2"])
    assert known.types[0] == "known-secret" and "hunter2hunter2" not in known.text
    # the redaction marker itself is not a leak
    assert not check_output("The key is [REDACTED:github-token].").leaked
