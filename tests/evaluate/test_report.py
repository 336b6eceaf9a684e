"""Report rendering: JSON round trip, markdown, self-contained HTML, and a real browser screenshot."""

from __future__ import annotations

import os
import re
import shutil
import struct
import subprocess
import zlib
from pathlib import Path

import pytest

from memtune.evaluate.report import load_report, render_html, render_markdown, write_reports
from memtune.evaluate.report.common import parse_curves
from memtune.evaluate.report.svg import bar_chart, line_chart
from tests.evaluate.sample import sample_report


def test_write_and_reload(tmp_path):
    r = sample_report()
    files = write_reports(r, tmp_path / "out")
    assert set(files) == {"json", "md", "html"}
    back = load_report(tmp_path / "out")
    assert back.to_dict()["headline"] == r.to_dict()["headline"]
    assert back.probes[0].answers["adapter"].score.hits == ["yarn start", "nvm use 22"]
    assert back.controls[0].answers["adapter"].verdict.label == "invents"
    # rendering the reloaded report gives the same page
    assert render_html(back) == render_html(r)
    assert not list((tmp_path / "out").glob(".*tmp*"))


def test_markdown_has_every_section_and_escapes_tables():
    md = render_markdown(sample_report())
    for heading in ("## Headline", "## Conditions", "## Recall per category", "## Forgetting",
                    "## Control questions", "## Probes", "## Warnings"):
        assert heading in md
    assert "| Adapter + retrieval |" in md and "+2.40%" in md
    row = next(line for line in md.splitlines() if "nvm use 22 && yarn start" in line)
    assert row.count("|") >= 8


def test_html_is_self_contained_and_complete():
    page = render_html(sample_report())
    for banned in (r"<script", r"<link", r"<img", r"\bsrc=", r"\bhref=", r"@import", r"url\("):
        assert not re.search(banned, page, re.I), banned
    assert page.count("<svg") == 5  # recall, per category, controls, loss curve, probe recall
    assert "How is the &lt;frontend&gt; launched?" in page and "Frontend &amp; tooling" in page
    assert '<mark class="hit">nvm use 22</mark>' in page
    assert '<span class="kw miss">yarn start</span>' in page
    assert "+2.40%" in page and "invents" in page and "admits" in page


def test_charts_and_curves_edge_cases():
    assert parse_curves(None) == {"train_loss": [], "eval_loss": [], "probe_recall": []}
    c = parse_curves({"train": [3.0, 2.0, "x"], "epochs": [{"epoch": 1, "eval_loss": 1.5}]})
    assert c["train_loss"] == [(1.0, 3.0), (2.0, 2.0)] and c["eval_loss"] == [(1.0, 1.5)]
    assert line_chart([("empty", [])]) == ""
    svg = bar_chart([("a", [None, 0.5])], ["x", "y"], title="t")
    assert svg.count("<rect") == 1 + 2  # one bar + two legend swatches


# --------------------------------------------------------------------------- browser
CHROMIUM = os.environ.get("MEMTUNE_CHROMIUM") or shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)


def read_png(path: Path) -> tuple[int, int, int, bytes]:
    """(width, height, channels, raw pixel bytes) of an 8-bit RGB/RGBA PNG: a tiny decoder
    (zlib + the five scanline filters) so the test needs no imaging library."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, width = 8, [], 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        pos += 12 + length
        if kind == b"IHDR":
            width, height, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and color in (2, 6) and interlace == 0, (depth, color, interlace)
            ch = 3 if color == 2 else 4
        elif kind == b"IDAT":
            idat.append(body)
        elif kind == b"IEND":
            break
    raw = zlib.decompress(b"".join(idat))
    stride = width * ch
    out = bytearray(stride * height)
    prev = bytearray(stride)
    for y in range(height):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        if f == 1:
            for i in range(ch, stride):
                line[i] = (line[i] + line[i - ch]) & 255
        elif f == 2:
            line = bytearray((a + b) & 255 for a, b in zip(line, prev))
        elif f == 3:
            for i in range(stride):
                left = line[i - ch] if i >= ch else 0
                line[i] = (line[i] + ((left + prev[i]) >> 1)) & 255
        elif f == 4:
            for i in range(stride):
                a = line[i - ch] if i >= ch else 0
                b, c = prev[i], prev[i - ch] if i >= ch else 0
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        out[y * stride : (y + 1) * stride] = line
        prev = line
    return width, height, ch, bytes(out)


def test_png_reader_on_a_known_image(tmp_path):
    w, h = 3, 2
    rows = [bytes([255, 0, 0, 0, 255, 0, 0, 0, 255]), bytes([10, 20, 30, 40, 50, 60, 70, 80, 90])]
    raw = b"".join(bytes([f]) + r for f, r in zip((0, 0), rows))

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + \
        chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")
    (tmp_path / "t.png").write_bytes(png)
    assert read_png(tmp_path / "t.png") == (3, 2, 3, rows[0] + rows[1])


def test_html_renders_in_headless_chromium(tmp_path):
    if CHROMIUM is None:
        if os.environ.get("MEMTUNE_REQUIRE_CHROMIUM"):
            pytest.fail("MEMTUNE_REQUIRE_CHROMIUM is set but no chromium binary was found")
        pytest.skip("chromium is not installed (Debian: apt-get install chromium); CI installs it")
    files = write_reports(sample_report(), tmp_path / "report")
    png = tmp_path / "shot.png"
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}",
           "--window-size=1200,900", "--hide-scrollbars", Path(files["html"]).as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert png.is_file(), f"chromium wrote no screenshot (rc {proc.returncode}):\n{proc.stderr[-2000:]}"
    w, h, ch, px = read_png(png)
    assert (w, h) == (1200, 900)
    step = 7  # sample every 7th pixel: plenty for colour statistics, fast in pure Python
    colors, non_white, n = set(), 0, 0
    for i in range(0, w * h, step):
        r, g, b = px[i * ch : i * ch + 3]
        colors.add((r, g, b))
        non_white += (r + g + b) < 720
        n += 1
    assert non_white / n > 0.05, f"screenshot looks blank: {non_white / n:.1%} non-white pixels"
    assert len(colors) > 50, f"screenshot has only {len(colors)} distinct colours"
    # the headline cards and the recall chart use their colours: the chart bars are there
    assert any(abs(r - 0x1A) < 12 and abs(g - 0x73) < 12 and abs(b - 0xE8) < 12 for r, g, b in colors)
