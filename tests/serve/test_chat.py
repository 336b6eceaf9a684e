"""The chat REPL, driven by feeding lines into its input stream."""

from __future__ import annotations

import io
import pytest

from memtune.serve.chat import ChatSession, run_repl
from memtune.serve.engine import Completion, GenParams, ask_messages

pytestmark = pytest.mark.timeout(60)


class Echo:
    """Streams back how many messages it saw and the last one, so history is observable."""

    model_id = "echo"

    def __init__(self) -> None:
        self.calls: list[list[dict]] = []

    def generate(self, messages, params, *, on_text=None, cancel=None):
        self.calls.append(list(messages))
        text = f"[{len(messages)}] {messages[-1]['content']}"
        for piece in (text[:3], text[3:]):
            if on_text:
                on_text(piece)
        return Completion(text, 1, 2, "stop")


def _run(session: ChatSession, lines: list[str]) -> str:
    out = io.StringIO()
    run_repl(session, io.StringIO("".join(line + "\n" for line in lines)), out)
    return out.getvalue()


def test_history_reset_and_exit():
    be = Echo()
    out = _run(ChatSession(be), ["first", "second", "/reset", "third", "/exit", "never sent"])
    assert "assistant> [1] first" in out
    assert "assistant> [3] second" in out  # user+assistant of turn 1, then turn 2
    assert "(conversation cleared)" in out
    assert "assistant> [1] third" in out
    assert len(be.calls) == 3  # nothing after /exit
    assert be.calls[1][:2] == [{"role": "user", "content": "first"}, {"role": "assistant", "content": "[1] first"}]


def test_eof_quits_and_help_lists_commands():
    out = _run(ChatSession(Echo()), ["/help"])  # then EOF (Ctrl-D)
    for cmd in ("/reset", "/rag on|off", "/exit", "Ctrl-D"):
        assert cmd in out
    assert out.endswith("\n")


def test_rag_toggle(sqlite_store):
    from memtune.serve.rag import Retriever
    from memtune.store import GuidelineInput

    sqlite_store.add(GuidelineInput(name="Node", content="Use nvm use 22 before yarn start."))
    be = Echo()
    session = ChatSession(be, retriever=Retriever(sqlite_store, k=2))
    out = _run(session, ["/rag", "/rag on", "how to yarn start?", "/rag off", "how to yarn start?", "/rag maybe"])
    assert "(retrieval is off)" in out and "(retrieval on)" in out and "(retrieval off)" in out
    assert "usage: /rag on|off" in out
    with_rag, without = be.calls
    assert with_rag[0]["role"] == "system" and "nvm use 22" in with_rag[0]["content"]
    assert all(m["role"] != "system" for m in without)


def test_rag_on_without_store_explains():
    out = _run(ChatSession(Echo()), ["/rag on", "/nonsense"])
    assert "needs a guideline store" in out
    assert "unknown command /nonsense" in out


def test_streams_real_model_output(tiny_backend):
    assert tiny_backend.system  # the training system prompt, used by default
    msgs = ask_messages("How do I start the backend service?", "", tiny_backend.system)
    expected = tiny_backend.generate(msgs, GenParams(max_new_tokens=10)).text
    pieces: list[str] = []
    session = ChatSession(tiny_backend, params=GenParams(max_new_tokens=10))
    assert session.reply("How do I start the backend service?", pieces.append) == expected
    assert "".join(pieces) == expected and len(pieces) > 1


def test_cli_chat_end_to_end(tiny):
    """`memtune chat ADAPTER` with stdin piped and closed (Ctrl-D), through the real CLI."""
    from typer.testing import CliRunner

    from memtune.cli import app

    r = CliRunner().invoke(app, ["chat", str(tiny["adapter"]), "--max-tokens", "5"], input="hello\n/reset\n")
    assert r.exit_code == 0, r.output
    assert "memtune chat · adapter" in r.stdout
    assert r.stdout.count("assistant> ") == 1 and "(conversation cleared)" in r.stdout


def test_retriever_searches_the_question_before_its_context_line(sqlite_store):
    from memtune.chatformat import CONTEXT_MARKER
    from memtune.serve.rag import Retriever
    from memtune.store import GuidelineInput

    sqlite_store.add(GuidelineInput(name="Acme — Project Memory", content="Notes kept in the acme project repository."))
    sqlite_store.add(GuidelineInput(name="Node", content="Use nvm use 22 before yarn start."))
    r = Retriever(sqlite_store, k=3, min_ratio=0.0)
    turn = "How do I run yarn start?" + CONTEXT_MARKER + "I'm working in the acme project repository."
    assert [h.name for h in r.search(turn)] == ["Node"]
    assert [h.name for h in r.search("What first?" + CONTEXT_MARKER + "nvm")] == ["Node"]  # context as fallback
    assert "Acme — Project Memory" in [h.name for h in r.search(turn.replace(CONTEXT_MARKER, " "))]
    from memtune.chatformat import user_message

    assert user_message("How?", "nvm") == "How?" + CONTEXT_MARKER + "nvm"  # the layout training used
