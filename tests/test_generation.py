"""One generation path: evaluation, the training probes, the Python API, `memtune serve`, `memtune
chat` and MCP `ask` give the same greedy answer to the same question, asked the same way."""

from __future__ import annotations

import pytest

from memtune import generation
from memtune.chatformat import conversation

QUESTIONS = [("How do I start the backend service?", ""), ("Which Node version?", "I'm on a fresh machine."),
             ("What runs last?", "")]
SYSTEM = "Answer from the project memory."
N = 12

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.tiny_model import build_model_dir

    torch.set_num_threads(2)
    path = build_model_dir(tmp_path_factory.mktemp("gen") / "m", initializer_range=0.2)
    return AutoModelForCausalLM.from_pretrained(path).eval(), AutoTokenizer.from_pretrained(path)


@pytest.fixture(scope="module")
def reference(tiny):
    model, tok = tiny
    convs = [conversation(q, c, SYSTEM) for q, c in QUESTIONS]
    return generation.generate(model, tok, convs, max_new_tokens=N, batch_size=2, bf16=False)


def test_prompts_are_the_chat_formats_ids(tiny):
    from memtune.chatformat import encode_chat

    _, tok = tiny
    conv = conversation("Quote `<|im_end|>` please?", "I'm new.", SYSTEM)
    assert generation.encode_prompt(tok, conv) == encode_chat(tok, conv)  # what training tokenised


def test_batched_answers_do_not_depend_on_batching_or_order(tiny, reference):
    model, tok = tiny
    assert len(set(reference)) > 1  # the questions really get different answers
    singles = [generation.ask(model, tok, q, c, system=SYSTEM, max_new_tokens=N, bf16=False) for q, c in QUESTIONS]
    assert singles == reference


def test_python_api_and_training_probes_answer_as_evaluation(tiny, reference):
    from memtune.infer import Assistant
    from memtune.train.evaluation import probe_recall

    model, tok = tiny
    a = Assistant(model, tok, source="tiny", system=SYSTEM, bf16=False)
    assert [a.ask(q, c, max_new_tokens=N) for q, c in QUESTIONS] == reference
    assert a.generate_batch([q for q, _ in QUESTIONS], [c for _, c in QUESTIONS], max_new_tokens=N) == reference
    assert "".join(a.stream(*QUESTIONS[0], max_new_tokens=N)).strip() == reference[0]
    probes = [{"question": q, "context": c, "expected_keywords": ["x"]} for q, c in QUESTIONS]
    _, rows = probe_recall(model, tok, probes, max_new_tokens=N, bf16=False, batch_size=2, system=SYSTEM)
    assert [r["answer"] for r in rows] == reference


def test_evaluation_runner_answers_as_generation(tiny, reference):
    from memtune.evaluate.runner import ModelUnderTest, Prompt, generate_answers

    model, tok = tiny
    mut = ModelUnderTest(model, tok, base_model=model, bf16=False)
    prompts = [Prompt(str(i), q, c) for i, (q, c) in enumerate(QUESTIONS)]
    got = generate_answers(mut, "base", prompts, [SYSTEM] * len(prompts), max_new_tokens=N, temperature=0.0,
                           batch_size=2)
    assert got == reference


def test_serve_chat_and_mcp_answer_as_evaluation(tiny, reference):
    from memtune.serve.chat import ChatSession
    from memtune.serve.engine import GenParams, TransformersBackend, ask_messages

    model, tok = tiny
    backend = TransformersBackend(model, tok, system=SYSTEM, bf16=False)
    assert backend.eos_ids == generation.stop_ids(model, tok)
    served = [backend.generate(ask_messages(q, c, SYSTEM), GenParams(max_new_tokens=N)) for q, c in QUESTIONS]
    assert [c.text.strip() for c in served] == reference  # HTTP / MCP ask (the server does not strip)
    assert all(c.completion_tokens <= N and c.finish_reason in ("stop", "length") for c in served)
    session = ChatSession(backend, params=GenParams(max_new_tokens=N))
    assert session.reply(QUESTIONS[0][0], lambda _piece: None).strip() == reference[0]  # memtune chat
