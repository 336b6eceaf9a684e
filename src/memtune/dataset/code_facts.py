"""Questions from commented commands in a note's code blocks.

Memory files often list commands with a trailing comment that says what each does:

    make test-fast       # skips the slow real-model tests

People ask for the command by what it does ("Which make target skips the slow tests?"), and
the prose parser never sees code blocks, so such a line gets its own questions:
"Which command skips the slow real-model tests?" and "What's the command that skips …?"
(or, for a comment written as an instruction, "What's the command to ingest examples/?").
"""

from __future__ import annotations

import re

from memtune.dataset.grammar import CLEAR_VERBS, third_person, third_person_forms
from memtune.dataset.text import REDACTED_RE, code_blocks

_COMMENTED_RE = re.compile(r"^\s*(?![#/])(?P<cmd>\S.*?\S)\s+(?:#|//)\s+(?P<what>[a-z].*?)\s*$")
_CUT_RE = re.compile(r",\s|;\s|\s+\(|\s+[—–]\s")
MAX_COMMANDS = 4  # commented commands asked about per note


def command_questions(body: str) -> list[tuple[str, tuple[str, ...]]]:
    """(command, its questions) for each ``command  # what it does`` line of the note's code blocks."""
    out: list[tuple[str, tuple[str, ...]]] = []
    seen: set[str] = set()
    for block in code_blocks(body):
        for line in block.text.splitlines():
            m = _COMMENTED_RE.match(line)
            if not m or REDACTED_RE.search(line):
                continue  # never ask about a line with a redacted secret on it
            cmd, what = m.group("cmd"), _CUT_RE.split(m.group("what"), maxsplit=1)[0].rstrip(".")
            words = what.split()
            if len(words) < 2 or cmd in seen:
                continue
            first = words[0]
            if first in third_person_forms():
                rest = " ".join(words)
                asks = (f"Which command {rest}?", f"What's the command that {rest}?")
            elif first in CLEAR_VERBS:
                rest = " ".join(words)
                asks = (f"What's the command to {rest}?", f"Which command {third_person(first)} {' '.join(words[1:])}?")
            else:
                continue
            seen.add(cmd)
            out.append((cmd, asks))
            if len(seen) >= MAX_COMMANDS:
                return out
    return out
