"""Bytes → text on the messy files people actually have (fixtures in tests/fixtures/text)."""

from __future__ import annotations

import codecs
import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from memtune.errors import InputError
from memtune.ingest import textio
from memtune.ingest.textio import (
    MAX_FILE_BYTES,
    DecodedText,
    UnreadableFile,
    binary_reason,
    decode_text,
    probe_file,
    read_memory_bytes,
)

TEXT = Path(__file__).resolve().parents[1] / "fixtures" / "text"
BODY = "# Memory\n- **Node**: ALWAYS use Node 22.\n- Café menu → ünïcödé ✓\n"


@pytest.mark.parametrize(
    ("name", "encoding"),
    [
        ("utf8_bom.md", "utf-8-sig"),
        ("utf16le_bom.md", "utf-16-le"),
        ("utf16be_bom.md", "utf-16-be"),
        ("crlf.md", "utf-8"),
        ("lone_cr.md", "utf-8"),
        ("no_final_newline.md", "utf-8"),
    ],
)
def test_boms_and_line_endings_give_the_same_clean_text(name: str, encoding: str) -> None:
    decoded = read_memory_bytes(TEXT / name)
    assert decoded.text == BODY
    assert decoded.encoding == encoding
    assert decoded.warnings == []
    assert "\r" not in decoded.text and "\ufeff" not in decoded.text


def test_fixtures_really_hold_the_bytes_they_claim() -> None:
    # Guards against git normalising the fixtures (tests/fixtures/text/.gitattributes).
    assert (TEXT / "crlf.md").read_bytes().count(b"\r\n") == 3
    assert b"\n" not in (TEXT / "lone_cr.md").read_bytes()
    assert (TEXT / "utf8_bom.md").read_bytes().startswith(codecs.BOM_UTF8)
    assert not (TEXT / "no_final_newline.md").read_bytes().endswith(b"\n")


def test_line_numbers_survive_crlf_and_lone_cr() -> None:
    for name in ("crlf.md", "lone_cr.md"):
        lines = read_memory_bytes(TEXT / name).text.split("\n")
        assert lines[1] == "- **Node**: ALWAYS use Node 22."


def test_latin1_german_is_decoded_with_a_warning() -> None:
    decoded = read_memory_bytes(TEXT / "latin1_german.md")
    assert "Größe der Datenbank prüfen" in decoded.text
    assert "Schlüssel" in decoded.text and "Passwörter gehören" in decoded.text
    assert decoded.encoding == "cp1252"
    assert len(decoded.warnings) == 1
    assert "latin1_german.md" in decoded.warnings[0] and "cp1252" in decoded.warnings[0]


def test_cp1252_portuguese_prefers_western_code_page() -> None:
    # charset-normalizer alone ranks cp1250 first here and turns "Lições" into "Liçőes".
    decoded = read_memory_bytes(TEXT / "cp1252_portuguese.md")
    assert "# Lições aprendidas" in decoded.text
    assert "Não usar a função de migração" in decoded.text
    assert "– sempre verificar a “configuração”" in decoded.text
    assert decoded.encoding == "cp1252"


def test_shift_jis_japanese() -> None:
    decoded = read_memory_bytes(TEXT / "shift_jis.md")
    assert "バックエンドを起動する前に必ず Node 22" in decoded.text
    assert decoded.warnings and "shift_jis.md" in decoded.warnings[0]


@pytest.mark.parametrize("name", ["chinese.md", "japanese.md"])
def test_utf8_cjk_is_untouched(name: str) -> None:
    raw = (TEXT / name).read_text(encoding="utf-8")
    decoded = read_memory_bytes(TEXT / name)
    assert decoded.text == raw
    assert decoded.warnings == []


def test_full_width_characters_are_not_folded() -> None:
    assert "全角文字ＡＢＣ" in read_memory_bytes(TEXT / "japanese.md").text


def test_mojibake_is_repaired_with_a_warning() -> None:
    decoded = read_memory_bytes(TEXT / "mojibake.md")
    assert "café for the résumé review" in decoded.text
    assert "recommended ⭐ for" in decoded.text  # MacRoman mojibake "‚≠ê", as in seed 000
    assert "Ã" not in decoded.text
    assert any("repaired mojibake" in w and "mojibake.md" in w for w in decoded.warnings)


def test_correct_text_is_not_repaired() -> None:
    text = "Curly “quotes”, &amp; entities, ligature ﬁ, em — dash, über café\n"
    decoded = decode_text(text.encode(), "ok.md")
    assert decoded.text == text
    assert decoded.warnings == []


def test_control_characters_dropped_but_tab_kept() -> None:
    decoded = read_memory_bytes(TEXT / "control_chars.md")
    assert decoded.text == "# Notes\n- tab\tkept nul bell esc dropped\n"
    assert any("control character" in w for w in decoded.warnings)


def test_binary_file_is_refused_with_reason() -> None:
    with pytest.raises(UnreadableFile) as err:
        read_memory_bytes(TEXT / "binary.png")
    assert "binary" in err.value.reason
    assert isinstance(err.value, InputError)
    assert "binary.png" in err.value.message


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "big.md"
    p.write_text("- rule\n" * 100)
    with pytest.raises(UnreadableFile) as err:
        read_memory_bytes(p, max_bytes=64)
    assert "too large" in err.value.reason
    assert probe_file(p, max_bytes=64) is not None
    assert MAX_FILE_BYTES == 5 * 1024 * 1024
    assert read_memory_bytes(p).text.count("\n") == 100


def test_unreadable_file_chmod(tmp_path: Path) -> None:
    p = tmp_path / "locked.md"
    p.write_text("- secret rule\n")
    p.chmod(0)
    try:
        if os.access(p, os.R_OK):
            pytest.skip("running as root: chmod 000 does not stop reads")
        with pytest.raises(UnreadableFile) as err:
            read_memory_bytes(p)
        assert "permission denied" in err.value.reason
        assert probe_file(p) == "unreadable (permission denied)"
    finally:
        p.chmod(0o644)


def test_unreadable_file_simulated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "locked.md"
    p.write_text("- rule\n")

    def deny(*args: object, **kwargs: object) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(textio, "open", deny, raising=False)
    with pytest.raises(UnreadableFile) as err:
        read_memory_bytes(p)
    assert err.value.reason == "unreadable (permission denied)"
    assert probe_file(p) == "unreadable (permission denied)"


def test_missing_and_directory(tmp_path: Path) -> None:
    with pytest.raises(UnreadableFile, match="not found"):
        read_memory_bytes(tmp_path / "nope.md")
    with pytest.raises(UnreadableFile, match="not a regular file"):
        read_memory_bytes(tmp_path)


def test_name_is_used_in_messages(tmp_path: Path) -> None:
    p = tmp_path / "x.md"
    p.write_bytes("caf\xe9 cr\xe8me\n".encode("latin-1"))
    decoded = read_memory_bytes(p, name="docs/x.md")
    assert decoded.warnings[0].startswith("docs/x.md: ")


def test_utf16_without_bom_is_not_binary() -> None:
    data = "# Notes\n- Use Node 22 everywhere.\n".encode("utf-16-le")
    assert binary_reason(data) is None
    decoded = decode_text(data, "w.md")
    assert decoded.text == "# Notes\n- Use Node 22 everywhere.\n"
    assert decoded.encoding == "utf-16-le"
    assert "no byte-order mark" in decoded.warnings[0]


def test_stray_nul_in_utf8_text_is_dropped_not_binary() -> None:
    data = b"# Notes\n- keep this rule\x00 please\n" + b"- more text here\n" * 20
    decoded = decode_text(data, "n.md")
    assert "- keep this rule please" in decoded.text


def test_empty_and_whitespace() -> None:
    assert decode_text(b"", "e.md") == DecodedText(text="", encoding="utf-8", warnings=[])
    assert decode_text(b"\xef\xbb\xbf", "bom-only.md").text == ""
    assert decode_text(b"\r\n\r\n", "nl.md").text == "\n\n"


def test_unicode_line_separators_become_newlines() -> None:
    assert decode_text("a\u2028b\u2029c".encode(), "ls.md").text == "a\nb\nc\n"


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000))
def test_arbitrary_bytes_never_crash(data: bytes) -> None:
    try:
        decoded = decode_text(data, "fuzz.md")
    except UnreadableFile as exc:
        assert "binary" in exc.reason
        return
    assert "\r" not in decoded.text
    assert not any(ord(c) < 32 and c not in "\t\n" for c in decoded.text)
    assert decoded.text == "" or decoded.text.endswith("\n")


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=500).filter(str.isprintable))
def test_printable_utf8_text_is_kept_exactly(text: str) -> None:
    decoded = decode_text(text.encode("utf-8"), "t.md")
    if decoded.warnings:  # hypothesis wrote something that looks like mojibake: repaired
        assert all("repaired mojibake" in w for w in decoded.warnings)
        return
    assert decoded.text == (text + "\n" if text else "")


def test_utf32_and_broken_utf16_with_bom() -> None:
    assert decode_text(codecs.BOM_UTF32_LE + "- ok\n".encode("utf-32-le"), "a.md").text == "- ok\n"
    broken = codecs.BOM_UTF16_LE + "- ok\n".encode("utf-16-le") + b"\x00\xd8"  # lone surrogate
    decoded = decode_text(broken, "b.md")
    assert decoded.text.startswith("- ok\n") and "U+FFFD" in decoded.warnings[0]
