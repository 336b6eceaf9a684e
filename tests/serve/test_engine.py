"""The generation engine's own rules: fitting the context, stop strings, streaming = final text."""

from __future__ import annotations

import threading

import pytest

from memtune.serve.engine import GenParams, PromptTooLong, _TextStream, ask_messages

pytestmark = pytest.mark.timeout(60)


def test_old_turns_are_dropped_to_fit_but_system_and_question_stay(tiny_backend):
    system = {"role": "system", "content": "SYSTEM"}
    turns = []
    for i in range(40):
        turns += [{"role": "user", "content": f"old question {i} " * 5}, {"role": "assistant", "content": "answer " * 5}]
    msgs = [system, *turns, {"role": "user", "content": "the real question"}]
    ids = tiny_backend.prompt_ids(msgs, 100)
    text = tiny_backend.tok.decode(ids)
    assert len(ids) <= tiny_backend.context_length - 100
    assert "SYSTEM" in text and "the real question" in text
    assert "old question 0 " not in text and "old question 39" in text  # oldest go first
    with pytest.raises(PromptTooLong, match="must be at most"):
        tiny_backend.prompt_ids(msgs, 100, drop_old_turns=False)


def test_a_single_question_too_long_is_refused(tiny_backend):
    with pytest.raises(PromptTooLong):
        tiny_backend.generate(ask_messages("word " * 800), GenParams(max_new_tokens=8))


def test_streamed_pieces_equal_the_final_text_and_cancel_stops_early(tiny_backend):
    pieces: list[str] = []
    c = tiny_backend.generate(ask_messages("How do I start?"), GenParams(max_new_tokens=24), on_text=pieces.append)
    assert "".join(pieces) == c.text and c.completion_tokens >= 1
    assert c.finish_reason in ("stop", "length")

    cancel = threading.Event()
    seen: list[str] = []

    def on_text(piece: str) -> None:
        seen.append(piece)
        cancel.set()  # the client went away after the first piece

    stopped = tiny_backend.generate(
        ask_messages("How do I start?"), GenParams(max_new_tokens=200), on_text=on_text, cancel=cancel
    )
    assert stopped.finish_reason == "cancelled" and stopped.completion_tokens < 200


class _CharTok:
    """Each id is one character: lets the stop-string logic be checked exactly."""

    def decode(self, ids, skip_special_tokens=True):
        return "".join(chr(i) for i in ids)


def _feed(text: str, stop: list[str]) -> tuple[list[str], str]:
    pieces: list[str] = []
    s = _TextStream(_CharTok(), stop, pieces.append)
    for ch in text:
        s.add(ord(ch))
    return pieces, s.finish()


def test_stop_string_is_held_back_until_it_cannot_match():
    pieces, final = _feed("abc<EN-x<END>tail", ["<END>"])
    assert final == "abc<EN-x" and "".join(pieces) == final
    assert all("<END>" not in p for p in pieces)
    pieces, final = _feed("no stop here <EN", ["<END>"])
    assert final == "no stop here <EN" and "".join(pieces) == final  # released at the end
    pieces, final = _feed("x STOP y", ["STOP", "y"])
    assert final == "x "
