"""Bytes → clean text for agent-memory files.

Real memory files arrive with BOMs, CRLF, Windows code pages, mojibake and stray control
characters. Everything downstream (markdown parser, secret scanner, line numbers in the
store) wants one thing: a ``str`` with ``\\n`` line ends whose line numbers match what the
user sees in an editor. This module is the only place that turns bytes into that text, and
it never crashes on odd input: the only error it raises is :class:`UnreadableFile`
(an :class:`~memtune.errors.InputError`) for files that are binary, too large or cannot be
opened — discovery turns those into "skipped, because …" entries.
"""

from __future__ import annotations

import codecs
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from memtune.errors import InputError

#: Files larger than this are skipped: agent memory is prose, and a 5 MB "memory" is
#: almost always a log or a dump that would flood the store.
MAX_FILE_BYTES = 5 * 1024 * 1024

#: How much of a file discovery reads to decide "binary or not" without reading it all.
SNIFF_BYTES = 8192

# Preferred code pages when charset-normalizer ranks several as equally plausible:
# short Western-European text often decodes identically "well" as cp1250/cp1257 and the
# detector picks one at random-ish; cp1252 is by far the likeliest source of such files.
_PREFERRED_LEGACY = ("cp1252", "latin_1", "iso8859_15")

# Cc characters other than tab and newline, plus U+FEFF (a BOM in the middle of text,
# left behind when files were concatenated). CR is handled before this runs.
_CONTROL_RE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ufeff]")
_NEWLINE_RE = re.compile("\r\n?|[\u2028\u2029]")

# (byte-order mark, codec for the bytes after it, name reported as the encoding)
_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32-le", "utf-32-le"),  # before UTF-16 LE: same first bytes
    (codecs.BOM_UTF32_BE, "utf-32-be", "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8", "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16-le", "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be", "utf-16-be"),
)


class UnreadableFile(InputError):
    """A file that cannot be turned into text. ``reason`` is the short form shown in skip lists."""

    def __init__(self, name: str, reason: str, *, hint: str | None = None) -> None:
        super().__init__(f"{name}: {reason}", hint=hint)
        self.name = name
        self.reason = reason


@dataclass
class DecodedText:
    """Clean text plus how it was obtained; ``warnings`` name the file so they can be shown as is."""

    text: str
    encoding: str
    warnings: list[str] = field(default_factory=list)


def _fmt_size(n: int) -> str:
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.1f} MB"
    if n >= 1024:
        return f"{n / 1024:.1f} KB"
    return f"{n} bytes"


def _utf16_without_bom(data: bytes) -> str | None:
    """Name the UTF-16 byte order of BOM-less text (every other byte NUL), else None.

    Windows tools write UTF-16 without a BOM now and then; the NULs would otherwise make
    it look binary.
    """
    sample = data[:SNIFF_BYTES]
    if len(sample) < 4 or len(sample) % 2:
        sample = sample[: len(sample) - len(sample) % 2]
    if len(sample) < 4:
        return None
    even_nuls = sample[0::2].count(0)
    odd_nuls = sample[1::2].count(0)
    half = len(sample) // 2
    if odd_nuls >= 0.6 * half and even_nuls <= 0.05 * half:
        return "utf-16-le"
    if even_nuls >= 0.6 * half and odd_nuls <= 0.05 * half:
        return "utf-16-be"
    return None


def binary_reason(sample: bytes) -> str | None:
    """Why ``sample`` (the start of a file) looks binary, or None if it may be text.

    Cheap enough for discovery to call on the first few KB of every candidate file.
    A NUL byte is the classic signal (git uses it too), unless the bytes are UTF-16.
    """
    if not sample or b"\x00" not in sample:
        return None
    if any(sample.startswith(bom) for bom, _, _ in _BOMS) or _utf16_without_bom(sample):
        return None
    # A stray NUL or two in otherwise valid UTF-8 text is damage, not a binary format.
    nuls = sample.count(0)
    if nuls <= max(4, len(sample) // 100):
        try:
            sample.decode("utf-8")
            return None
        except UnicodeDecodeError as exc:
            # A multi-byte character cut off at the end of the sample is still fine.
            if exc.start < len(sample) - 4:
                return "binary file (contains NUL bytes)"
            return None
    return "binary file (contains NUL bytes)"


def _decode_legacy(data: bytes) -> tuple[str, str] | None:
    """Best-guess decode of non-UTF-8 bytes with charset-normalizer; None when hopeless."""
    from charset_normalizer import from_bytes

    matches = list(from_bytes(data))
    if not matches:
        return None
    best = matches[0]
    for preferred in _PREFERRED_LEGACY:
        alt = next((m for m in matches if m.encoding == preferred and m.chaos <= best.chaos + 0.01), None)
        if alt is not None:
            best = alt
            break
    text = str(best)
    if best.encoding not in _PREFERRED_LEGACY:
        try:  # same characters either way (German in cp1250): name the likelier code page
            if data.decode("cp1252") == text:
                return text, "cp1252"
        except UnicodeDecodeError:
            pass
    return text, best.encoding


def _fix_mojibake(text: str) -> str:
    """Repair UTF-8-read-as-cp1252/MacRoman text ("cafÃ©" → "café") and nothing else.

    ftfy's defaults also uncurl quotes, unescape HTML and fold full-width CJK
    characters; all of that would change rules the user wrote on purpose.
    """
    import ftfy
    from ftfy.badness import BADNESS_RE

    # One scan for tell-tale sequences, then ftfy (≈1 µs per character) on those lines only.
    bad_lines: set[int] = set()
    line, pos = 0, 0
    for m in BADNESS_RE.finditer(text):
        line += text.count("\n", pos, m.start())
        pos = m.start()
        bad_lines.add(line)
    if not bad_lines:
        return text
    config = ftfy.TextFixerConfig(
        unescape_html=False,
        remove_terminal_escapes=False,
        fix_latin_ligatures=False,
        fix_character_width=False,
        uncurl_quotes=False,
        fix_line_breaks=False,
        remove_control_chars=False,
        normalization=None,
        explain=False,
    )
    lines = text.split("\n")
    for i in sorted(bad_lines):
        lines[i] = ftfy.fix_text(lines[i], config)
    return "\n".join(lines)


def decode_text(data: bytes, name: str) -> DecodedText:
    """Decode the bytes of a memory file named ``name`` (used in warnings and errors).

    Order: BOM (UTF-8/16/32) → strict UTF-8 → BOM-less UTF-16 → charset-normalizer's best
    guess (with a warning). Then mojibake repair, newline normalisation and removal of
    control characters. Raises :class:`UnreadableFile` only for binary data.
    """
    warnings: list[str] = []
    text: str | None = None
    encoding = "utf-8"

    for bom, codec, label in _BOMS:
        if data.startswith(bom):
            encoding = label
            try:
                text = data[len(bom) :].decode(codec)
            except UnicodeDecodeError:
                text = data[len(bom) :].decode(codec, errors="replace")
                warnings.append(f"{name}: invalid {label} bytes were replaced with U+FFFD")
            break

    if text is None:
        reason = binary_reason(data[:SNIFF_BYTES]) or binary_reason(data)
        if reason:
            raise UnreadableFile(name, reason)
        # ASCII in UTF-16 is valid UTF-8 full of NULs, so this check comes first.
        utf16 = _utf16_without_bom(data) if b"\x00" in data[:SNIFF_BYTES] else None
        if utf16:
            text = data.decode(utf16, errors="replace")
            encoding = utf16
            warnings.append(f"{name}: no byte-order mark; decoded as {utf16}")
        else:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                guess = _decode_legacy(data)
                if guess is None:
                    raise UnreadableFile(name, "binary file (not text in any known encoding)") from None
                text, encoding = guess
                warnings.append(f"{name}: not valid UTF-8; decoded as {encoding} (best guess)")

    text = text.lstrip("\ufeff")  # a second BOM, or one that a legacy guess decoded
    text = _NEWLINE_RE.sub("\n", text)

    if text and not text.isascii():
        fixed = _fix_mojibake(text)
        if fixed != text:
            warnings.append(f"{name}: repaired mojibake (text that was decoded with the wrong encoding)")
            text = fixed

    cleaned, removed = _CONTROL_RE.subn("", text)
    if removed:
        # A control character per line on average means this is not prose after all.
        if removed > max(16, text.count("\n") + 1) and removed * 10 > len(text):
            raise UnreadableFile(name, "binary file (mostly control characters)")
        warnings.append(f"{name}: removed {removed} control character(s)")
        text = cleaned

    if text and not text.endswith("\n"):
        text += "\n"
    return DecodedText(text=text, encoding=encoding, warnings=warnings)


def read_memory_bytes(
    path: Path, *, max_bytes: int = MAX_FILE_BYTES, name: str | None = None
) -> DecodedText:
    """Read and decode one memory file; ``name`` (default: the path) is used in messages.

    Raises :class:`UnreadableFile` (an InputError) with a short ``reason`` when the file
    is not a regular file, larger than ``max_bytes``, unreadable or binary.
    """
    path = Path(path)
    name = name or str(path)
    try:
        st = path.stat()
    except FileNotFoundError:
        raise UnreadableFile(name, "file not found") from None
    except PermissionError:
        raise UnreadableFile(name, "unreadable (permission denied)") from None
    except OSError as exc:
        raise UnreadableFile(name, f"unreadable ({exc.strerror or exc})") from None
    if not stat.S_ISREG(st.st_mode):
        raise UnreadableFile(name, "not a regular file")
    if st.st_size > max_bytes:
        raise UnreadableFile(
            name,
            f"too large ({_fmt_size(st.st_size)}; the limit is {_fmt_size(max_bytes)})",
            hint="memory files are prose; raise the size limit if this one really is memory",
        )
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except PermissionError:
        raise UnreadableFile(name, "unreadable (permission denied)") from None
    except IsADirectoryError:
        raise UnreadableFile(name, "not a regular file") from None
    except OSError as exc:
        raise UnreadableFile(name, f"unreadable ({exc.strerror or exc})") from None
    if len(data) > max_bytes:  # grew between stat and read
        raise UnreadableFile(name, f"too large (over the {_fmt_size(max_bytes)} limit)")
    return decode_text(data, name)


def probe_file(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> str | None:
    """Cheap pre-check for discovery: the reason a file would be skipped, or None.

    Reads at most :data:`SNIFF_BYTES`, so walking a large tree stays fast.
    """
    try:
        st = os.stat(path)
    except PermissionError:
        return "unreadable (permission denied)"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    if not stat.S_ISREG(st.st_mode):
        return "not a regular file"
    if st.st_size > max_bytes:
        return f"too large ({_fmt_size(st.st_size)}; the limit is {_fmt_size(max_bytes)})"
    try:
        with open(path, "rb") as fh:
            sample = fh.read(SNIFF_BYTES)
    except PermissionError:
        return "unreadable (permission denied)"
    except OSError as exc:
        return f"unreadable ({exc.strerror or exc})"
    return binary_reason(sample)
