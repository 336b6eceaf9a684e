"""Writing an :class:`EvalReport` as ``report.json``, ``report.md`` and ``report.html``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from memtune.evaluate.report.html import render_html
from memtune.evaluate.report.markdown import render_markdown
from memtune.evaluate.results import EvalReport

REPORT_FILES = ("report.json", "report.md", "report.html")


def _write(path: Path, text: str) -> None:
    """Write via a temp file + rename so a reader never sees half a report."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def write_reports(report: EvalReport, out_dir: str | os.PathLike[str]) -> dict[str, str]:
    """Render all three files into ``out_dir`` (created if needed); records and returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name: str((out / name).resolve()) for name in REPORT_FILES}
    report.files = {k.split(".")[1]: v for k, v in paths.items()}
    _write(out / "report.md", render_markdown(report))
    _write(out / "report.html", render_html(report))
    _write(out / "report.json", json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n")
    return report.files


def load_report(path: str | os.PathLike[str]) -> EvalReport:
    """Read a ``report.json`` (or the directory holding it) back into an EvalReport."""
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    return EvalReport.from_dict(json.loads(p.read_text(encoding="utf-8")))


__all__ = ["REPORT_FILES", "load_report", "render_html", "render_markdown", "write_reports"]
