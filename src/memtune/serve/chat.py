"""``memtune chat``: a terminal conversation with the adapter.

The loop takes its input and output streams as arguments so tests drive it with
``io.StringIO``; the CLI passes the terminal. History lives only in memory for the
session (oldest turns are dropped by the engine when the context fills up).
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TextIO

from memtune.serve.engine import ChatBackend, GenParams, Message, PromptTooLong, default_system_prompt
from memtune.serve.rag import Retriever, with_guidelines

HELP = """Commands:
  /reset         forget the conversation so far
  /rag on|off    add the store's best-matching guidelines to each question (needs a known store)
  /help          this help
  /exit          quit (Ctrl-D works too)"""


class ChatSession:
    """History + settings of one REPL session, independent of any terminal."""

    def __init__(
        self,
        backend: ChatBackend,
        *,
        retriever: Retriever | None = None,
        rag: bool = False,
        system: str | None = None,
        params: GenParams | None = None,
    ) -> None:
        self.backend = backend
        self.retriever = retriever
        self.rag = rag and retriever is not None
        self.system = (system or None) if system is not None else getattr(backend, "system", None)
        self.params = params or GenParams()
        self.history: list[Message] = []

    def messages_for(self, text: str) -> tuple[list[Message], list[str]]:
        msgs: list[Message] = [{"role": "system", "content": self.system}] if self.system else []
        msgs += self.history + [{"role": "user", "content": text}]
        used: list[str] = []
        if self.rag and self.retriever is not None:
            hits = self.retriever.search(text)
            msgs = with_guidelines(msgs, hits, self.system or default_system_prompt())
            used = [h.name for h in hits]
        return msgs, used

    def reply(self, text: str, on_text: Callable[[str], None], cancel: threading.Event | None = None) -> str:
        msgs, _ = self.messages_for(text)
        c = self.backend.generate(msgs, self.params, on_text=on_text, cancel=cancel)
        self.history += [{"role": "user", "content": text}, {"role": "assistant", "content": c.text}]
        return c.text


def run_repl(session: ChatSession, stdin: TextIO, stdout: TextIO, *, prompt: str = "you> ") -> int:
    """Read lines until EOF or /exit; returns the number of questions answered."""
    interactive = stdin is sys.stdin and stdin.isatty()

    def out(s: str) -> None:
        stdout.write(s)
        stdout.flush()

    out(f"memtune chat · {session.backend.model_id} · /help for commands, Ctrl-D to quit\n")
    answered = 0
    while True:
        try:
            if interactive:
                line = input(prompt)
            else:
                out(prompt)
                line = stdin.readline()
                if line == "":
                    raise EOFError
        except EOFError:
            out("\n")
            break
        except KeyboardInterrupt:
            out("\n(use /exit or Ctrl-D to quit)\n")
            continue
        text = line.strip()
        if not text:
            continue
        if text.startswith("/"):
            if not _command(session, text, out):
                break
            continue
        out("assistant> ")
        try:
            session.reply(text, out)
            answered += 1
        except PromptTooLong as exc:
            out(f"\n[error] {exc.message}; try /reset\n")
            continue
        except KeyboardInterrupt:  # stop this answer, keep the session
            out("\n[interrupted]\n")
            continue
        out("\n")
    return answered


def _command(session: ChatSession, text: str, out: Callable[[str], None]) -> bool:
    """Handle a /command; False means quit."""
    cmd, _, arg = text.partition(" ")
    cmd, arg = cmd.lower(), arg.strip().lower()
    if cmd in ("/exit", "/quit"):
        return False
    if cmd == "/reset":
        session.history.clear()
        out("(conversation cleared)\n")
    elif cmd == "/rag":
        if arg not in ("on", "off", ""):
            out("usage: /rag on|off\n")
        elif arg == "":
            out(f"(retrieval is {'on' if session.rag else 'off'})\n")
        elif arg == "on" and session.retriever is None:
            out("(retrieval needs a guideline store: restart with --db PATH)\n")
        else:
            session.rag = arg == "on"
            out(f"(retrieval {arg})\n")
    elif cmd == "/help":
        out(HELP + "\n")
    else:
        out(f"unknown command {cmd}; /help lists them\n")
    return True
