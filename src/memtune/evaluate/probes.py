"""Probes: the questions an evaluation asks, from a bundle or from the user's own files.

A bundle's ``probes.jsonl`` holds held-out phrasings written by ``memtune.dataset``
(``question, expected_keywords, context, guideline_id, guideline_version, category,
name``). Users can add files in seed 000's test-case layout (``question``,
``expected_keywords``, ``context``) as a JSON list or JSON Lines; every bad record is
reported with its file and line, all at once, so a file is fixed in one pass.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from memtune.errors import InputError, NotFoundError

_MAX_ERRORS = 20


@dataclass
class Probe:
    """One question with the keywords a correct answer must contain."""

    question: str
    expected_keywords: list[str]
    context: str = ""
    category: str = "general"
    name: str | None = None
    guideline_id: int | None = None
    guideline_version: int | None = None
    source: str = "bundle"
    """``bundle`` or the user file it came from."""
    id: str = ""
    """Stable within a report (``bundle:3``, ``my_tests.json:12``)."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _line_of(text: str, pos: int) -> int:
    return text.count("\n", 0, pos) + 1


def _iter_json_array(text: str, path: Path) -> Iterable[tuple[int, Any]]:
    """(line, value) for each element of a top-level JSON array, so errors can name lines."""
    dec = json.JSONDecoder()
    i = text.index("[") + 1
    n = len(text)

    def skip(j: int) -> int:
        while j < n and text[j] in " \t\r\n":
            j += 1
        return j

    i = skip(i)
    if i < n and text[i] == "]":
        return
    while True:
        i = skip(i)
        try:
            value, end = dec.raw_decode(text, i)
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}:{_line_of(text, exc.pos)}: not valid JSON ({exc.msg})",
                hint="a probe file is a JSON list of objects or one JSON object per line",
            ) from exc
        yield _line_of(text, i), value
        i = skip(end)
        if i < n and text[i] == ",":
            i += 1
            continue
        if i < n and text[i] == "]":
            return
        raise InputError(f"{path}:{_line_of(text, i)}: expected ',' or ']' in the JSON list")


def _records(path: Path) -> list[tuple[int, Any]]:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{path}: not UTF-8 text ({exc.reason})", hint="save the probe file as UTF-8") from exc
    stripped = text.lstrip()
    if stripped.startswith("["):
        return list(_iter_json_array(text, path))
    if stripped.startswith("{"):
        try:  # a single object: either one probe or a wrapper {"test_cases"|"probes": [...]}
            whole = json.loads(text)
        except json.JSONDecodeError:
            whole = None
        if isinstance(whole, dict):
            for key in ("test_cases", "probes", "tests"):
                if isinstance(whole.get(key), list):
                    off = _line_of(text, text.index("["))
                    return [(off, r) for r in whole[key]]
            if "question" in whole:
                return [(1, whole)]
    out: list[tuple[int, Any]] = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("//"):
            continue
        try:
            out.append((n, json.loads(line)))
        except json.JSONDecodeError as exc:
            raise InputError(
                f"{path}:{n}: not valid JSON ({exc.msg})",
                hint="JSON Lines files hold one complete JSON object per line; or write one JSON list",
            ) from exc
    return out


def _check_record(rec: Any) -> tuple[list[str], dict[str, Any]]:
    """(problems, cleaned fields) for one seed-000 test case."""
    if not isinstance(rec, dict):
        return [f"expected an object with 'question' and 'expected_keywords', got {type(rec).__name__}"], {}
    problems: list[str] = []
    q = rec.get("question", rec.get("instruction"))
    if not isinstance(q, str) or not q.strip():
        problems.append("'question' is missing or empty")
    kws = rec.get("expected_keywords", rec.get("keywords"))
    if kws is None:
        problems.append("'expected_keywords' is missing")
    elif isinstance(kws, str):
        problems.append("'expected_keywords' must be a list of strings, e.g. [\"yarn start\"], not one string")
    elif not isinstance(kws, list) or not all(isinstance(k, str) for k in kws):
        problems.append("'expected_keywords' must be a list of strings")
    else:
        from memtune.evaluate.scoring import usable_keywords

        if not usable_keywords(kws):
            problems.append("'expected_keywords' has no usable keyword (a probe needs at least one to be scored)")
    ctx = rec.get("context", "")
    if ctx is None:
        ctx = ""
    if not isinstance(ctx, str):
        problems.append("'context' must be a string")
    cat = rec.get("category", "general")
    if not isinstance(cat, str) or not cat.strip():
        cat = "general"
    return problems, {
        "question": q.strip() if isinstance(q, str) else "",
        "expected_keywords": list(kws) if isinstance(kws, list) else [],
        "context": ctx if isinstance(ctx, str) else "",
        "category": cat.strip(),
        "name": rec.get("name") if isinstance(rec.get("name"), str) else None,
    }


def load_probe_file(path: str | Path) -> list[Probe]:
    """Read a user probe file (JSON list, wrapper object or JSONL) in seed 000's layout.

    Raises one :class:`InputError` listing every bad record as ``file:line: problem``.
    """
    p = Path(path)
    if not p.is_file():
        raise NotFoundError(f"probe file {p} does not exist", hint="pass an existing .json or .jsonl file to --probes")
    probes: list[Probe] = []
    errors: list[str] = []
    for line, rec in _records(p):
        problems, f = _check_record(rec)
        if problems:
            errors.extend(f"{p}:{line}: {msg}" for msg in problems)
            continue
        probes.append(Probe(**f, source=str(p), id=f"{p.name}:{line}"))
    if errors:
        shown = errors[:_MAX_ERRORS] + ([f"... and {len(errors) - _MAX_ERRORS} more"] if len(errors) > _MAX_ERRORS else [])
        raise InputError(
            f"{len(errors)} bad record(s) in probe file {p}:\n" + "\n".join(f"  {e}" for e in shown),
            hint='each record needs "question" (text) and "expected_keywords" (list of strings); "context" is optional',
        )
    if not probes:
        raise InputError(f"probe file {p} holds no probes", hint="add at least one {\"question\", \"expected_keywords\"} record")
    return probes


def probe_from_dict(rec: dict[str, Any], *, source: str = "bundle", pid: str = "") -> Probe:
    """A record of a bundle's probes.jsonl → Probe; unknown fields are kept in ``extra``."""
    known = {"question", "expected_keywords", "context", "category", "name", "guideline_id", "guideline_version"}
    return Probe(
        question=str(rec.get("question", "")).strip(),
        expected_keywords=[str(k) for k in rec.get("expected_keywords") or []],
        context=str(rec.get("context") or ""),
        category=str(rec.get("category") or "general"),
        name=rec.get("name"),
        guideline_id=rec.get("guideline_id"),
        guideline_version=rec.get("guideline_version"),
        source=source,
        id=pid,
        extra={k: v for k, v in rec.items() if k not in known},
    )


def load_bundle_probes(bundle_dir: str | Path) -> list[Probe]:
    """The bundle's held-out ``probes.jsonl``; a bad line is an error naming the line."""
    p = Path(bundle_dir) / "probes.jsonl"
    if not p.is_file():
        raise NotFoundError(
            f"{Path(bundle_dir)} has no probes.jsonl",
            hint="export the bundle with `memtune export` (it writes held-out probes), or pass --probes FILE",
        )
    out: list[Probe] = []
    for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputError(f"{p}:{n}: not valid JSON ({exc.msg})") from exc
        if not isinstance(rec, dict) or not str(rec.get("question", "")).strip():
            raise InputError(f"{p}:{n}: a probe needs a 'question'")
        out.append(probe_from_dict(rec, source="bundle", pid=f"bundle:{n}"))
    return out


def coerce_probes(items: Sequence[Probe | dict[str, Any]]) -> list[Probe]:
    """Probes given in Python: Probe objects or dicts in either layout."""
    out: list[Probe] = []
    for i, it in enumerate(items, 1):
        if isinstance(it, Probe):
            out.append(it if it.id else Probe(**{**it.to_dict(), "id": f"probe:{i}"}))
        elif isinstance(it, dict):
            problems, _ = _check_record(it)
            if problems:
                raise InputError(f"probe {i}: " + "; ".join(problems))
            out.append(probe_from_dict(it, source="python", pid=f"probe:{i}"))
        else:
            raise InputError(f"probe {i}: expected a Probe or a dict, got {type(it).__name__}")
    return out


def spread_limit(probes: Sequence[Probe], limit: int | None) -> list[Probe]:
    """The first ``limit`` probes taken round-robin over guidelines, so a quick run still
    covers many facts instead of every phrasing of the first few."""
    if limit is None or limit >= len(probes):
        return list(probes)
    groups: dict[Any, list[Probe]] = {}
    for p in probes:
        groups.setdefault(p.guideline_id if p.guideline_id is not None else (p.source, p.name or p.id), []).append(p)
    queues = list(groups.values())
    out: list[Probe] = []
    depth = 0
    while len(out) < limit:
        for q in queues:
            if depth < len(q) and len(out) < limit:
                out.append(q[depth])
        depth += 1
    return out


# --------------------------------------------------------------------------- lineage
def read_lineage(adapter_dir: str | Path) -> dict[str, Any]:
    """The adapter's ``memtune.json`` (empty when absent: a plain PEFT dir still evaluates)."""
    f = Path(adapter_dir) / "memtune.json"
    if not f.is_file():
        return {}
    try:
        data = json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputError(f"{f}: not valid JSON ({exc.msg})", hint="retrain, or fix the file by hand") from exc
    return data if isinstance(data, dict) else {}


def _dig(d: Any, *path: str) -> Any:
    for k in path:
        if not isinstance(d, dict):
            return None
        d = d.get(k)
    return d


def bundle_from_lineage(lineage: dict[str, Any], adapter_dir: str | Path) -> Path | None:
    """The bundle directory the adapter was trained on, if the lineage names one that exists."""
    candidates = [
        _dig(lineage, "bundle"), _dig(lineage, "bundle_dir"), _dig(lineage, "bundle", "path"),
        _dig(lineage, "dataset", "path"), _dig(lineage, "dataset", "bundle"), _dig(lineage, "dataset", "dir"),
        _dig(lineage, "dataset", "bundle_dir"), _dig(lineage, "config", "bundle"),
    ]
    for c in candidates:
        if isinstance(c, str) and c:
            p = Path(c).expanduser()
            if not p.is_absolute() and not p.exists():
                p = Path(adapter_dir) / p
            if (p / "probes.jsonl").is_file():
                return p
    return None
