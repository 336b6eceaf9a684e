"""YAML frontmatter: split it off, survive it being broken, and turn it into tags/metadata.

Agent rule files carry their scoping in frontmatter: Cursor ``.mdc`` (``description``,
``globs``, ``alwaysApply``), Copilot ``applyTo``, Windsurf ``trigger`` + ``globs``, Claude
``paths`` and Claude memory ``name``/``description``/``type``. Real files get this wrong
often (``globs: *.ts`` is not valid YAML, a forgotten closing ``---``), and a broken header
must never cost the rules below it, so every failure mode has a defined fallback and a
warning that names the file and line.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from typing import Any

import yaml

#: Largest frontmatter we hand to the YAML parser; bigger "frontmatter" is treated as text.
MAX_FRONTMATTER_CHARS = 64_000
#: Cap on values copied into metadata, so alias bombs cannot blow up JSON output.
_MAX_NODES = 2_000

_DELIM_OPEN = re.compile(r"^---[ \t]*$")
_DELIM_CLOSE = re.compile(r"^(?:---|\.\.\.)[ \t]*$")
_SIMPLE_KEY = re.compile(r"^([A-Za-z_][\w.-]*)[ \t]*:(?:[ \t]+(.*))?[ \t]*$")
_LIST_ITEM = re.compile(r"^[ \t]*-[ \t]+(.*)$")


@dataclass
class Frontmatter:
    """Result of :func:`split_frontmatter`.

    ``body`` is the markdown to parse; its line 1 is line ``line_offset + 1`` of the file.
    ``present`` is True when a usable frontmatter block was found (``data`` may still be
    empty when the block was empty).
    """

    data: dict[str, Any] = field(default_factory=dict)
    body: str = ""
    line_offset: int = 0
    present: bool = False
    warnings: list[str] = field(default_factory=list)
    raw: str | None = None  # the block's text when it could not be read as keys


def _strip_quotes(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _plausible(value: str) -> bool:
    """A scalar a person could have meant: quotes and brackets balanced, no nested mapping."""
    v = value.strip()
    if v[:1] in "\"'" and (len(v) < 2 or v[-1] != v[0]):
        return False
    if v[:1] in "[{" and v[-1:] != {"[": "]", "{": "}"}[v[0]]:
        return False
    return ": " not in v


def _lenient(lines: list[str]) -> tuple[dict[str, Any], list[int]]:
    """Read ``key: value`` lines and ``- item`` lists the way people meant them.

    Returns the mapping and the 0-based indexes of lines it could not interpret.
    """
    data: dict[str, Any] = {}
    bad: list[int] = []
    last_key: str | None = None
    for i, raw in enumerate(lines):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        m = _SIMPLE_KEY.match(raw)
        if m and m.group(2) and not _plausible(m.group(2)):
            bad.append(i)
            continue
        if m and not raw[:1].isspace():
            last_key = m.group(1)
            value = (m.group(2) or "").strip()
            if value.startswith("[") and value.endswith("]"):
                data[last_key] = [_strip_quotes(v) for v in value[1:-1].split(",") if v.strip()]
            else:
                data[last_key] = _strip_quotes(value) if value else None
            continue
        item = _LIST_ITEM.match(raw)
        if item and last_key is not None and _plausible(item.group(1)):
            current = data.get(last_key)
            if not isinstance(current, list):
                current = [] if current in (None, "") else [current]
            current.append(_strip_quotes(item.group(1)))
            data[last_key] = current
            continue
        if raw[:1].isspace() and last_key is not None and isinstance(data.get(last_key), str):
            data[last_key] = f"{data[last_key]} {raw.strip()}"
            continue
        bad.append(i)
    return data, bad


def _jsonable(value: Any, budget: list[int]) -> Any:
    """A JSON-safe copy of a YAML value (dates → ISO strings), bounded in size."""
    budget[0] -= 1
    if budget[0] < 0:
        return "…"
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (_dt.date, _dt.datetime, _dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, dict):
        return {str(k): _jsonable(v, budget) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [_jsonable(v, budget) for v in value]
    return str(value)


def split_frontmatter(text: str, rel: str) -> Frontmatter:
    """Split leading ``---`` YAML frontmatter from ``text``; never raises.

    * no opening ``---`` on line 1 → no frontmatter, the whole text is the body;
    * opened but never closed → the whole text is parsed as markdown (warning);
    * empty block → empty data (warning), body after the closing line;
    * invalid YAML → read as simple ``key: value`` lines when every line fits that shape
      (covers the common ``globs: *.ts``); otherwise no keys, the raw block is returned in
      ``raw`` for metadata, and the body after the closing line is parsed (warning);
    * valid YAML that is not a mapping (a list of bullets, a sentence) → the block's lines
      are parsed as markdown with the ``---`` lines blanked so line numbers still match
      (warning).
    """
    lines = text.split("\n")
    if not lines or not _DELIM_OPEN.match(lines[0]):
        return Frontmatter(body=text)
    close = next((i for i in range(1, len(lines)) if _DELIM_CLOSE.match(lines[i])), None)
    if close is None:
        return Frontmatter(
            body=text,
            warnings=[f"{rel}:1: frontmatter opened with '---' is never closed; "
                      "read the whole file as markdown"],
        )
    inner = lines[1:close]
    body = "\n".join(lines[close + 1:])
    offset = close + 1
    raw = "\n".join(inner)

    def as_markdown(reason: str) -> Frontmatter:
        # Keep every line (delimiters blanked) so nothing the author wrote disappears.
        kept = [""] + inner + [""] + lines[close + 1:]
        return Frontmatter(
            body="\n".join(kept),
            warnings=[f"{rel}:{reason}; read the block as markdown instead"],
        )

    if not raw.strip():
        return Frontmatter(body=body, line_offset=offset, present=True,
                           warnings=[f"{rel}:1: frontmatter is empty"])
    if len(raw) > MAX_FRONTMATTER_CHARS:
        return as_markdown(f"1: frontmatter is larger than {MAX_FRONTMATTER_CHARS} characters")
    try:
        loaded = yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = (mark.line + 2) if mark is not None else 2
        problem = getattr(exc, "problem", None) or "invalid YAML"
        data, bad = _lenient(inner)
        if data and not bad:
            return Frontmatter(
                data=_jsonable(data, [_MAX_NODES]), body=body, line_offset=offset, present=True,
                warnings=[f"{rel}:{line}: frontmatter is not valid YAML ({problem}); "
                          "read it as plain 'key: value' lines"],
            )
        return Frontmatter(
            body=body, line_offset=offset, present=True, raw=raw,
            warnings=[f"{rel}:{line}: frontmatter is not valid YAML ({problem}); its keys were "
                      "ignored (the raw text is kept in metadata)"],
        )
    except Exception as exc:  # noqa: BLE001 - YAML can fail in ways beyond YAMLError
        return as_markdown(f"1: frontmatter could not be read ({type(exc).__name__})")
    if loaded is None:
        return Frontmatter(body=body, line_offset=offset, present=True,
                           warnings=[f"{rel}:1: frontmatter is empty"])
    if not isinstance(loaded, dict):
        return as_markdown(f"1: frontmatter is a {type(loaded).__name__}, not a mapping of keys")
    return Frontmatter(data=_jsonable(loaded, [_MAX_NODES]), body=body, line_offset=offset,
                       present=True)


# --------------------------------------------------------------------------- interpretation


@dataclass
class FrontmatterInfo:
    """What the readers take from frontmatter for every rule of the file."""

    tags: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    priority_base: int | None = None
    priority_bonus: int = 0
    name: str | None = None
    description: str | None = None
    type: str | None = None


def _as_list(value: Any) -> list[str]:
    """Globs arrive as a list, a comma-separated string or a single string."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        out: list[str] = []
        for v in value:
            out.extend(_as_list(v))
        return out
    text = str(value).strip()
    if not text:
        return []
    return [p.strip().strip("\"'") for p in text.split(",") if p.strip().strip("\"'")]


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "yes", "on", "1")


def _clean_tag(value: str) -> str:
    return re.sub(r"\s+", "-", value.strip().lower())


def interpret(data: dict[str, Any], kind: str) -> FrontmatterInfo:
    """Map known frontmatter keys to tags, metadata and priority signals.

    Tags: ``glob:<pattern>`` (``globs``, ``applyTo``, ``paths``), ``trigger:<mode>``
    (Windsurf), ``apply:always|auto|agent|manual`` (Cursor rule type), ``type:<t>`` (Claude
    memory), plus any ``tags:`` list as written. The full frontmatter is kept under
    ``metadata["frontmatter"]``.
    """
    info = FrontmatterInfo()
    if not data:
        return info
    info.metadata["frontmatter"] = data
    lowered = {str(k).lower(): v for k, v in data.items()}
    tags: list[str] = []

    globs = _as_list(lowered.get("globs")) + _as_list(lowered.get("applyto")) + _as_list(lowered.get("paths"))
    tags.extend(f"glob:{g}" for g in globs)

    desc = lowered.get("description")
    if isinstance(desc, str) and desc.strip():
        info.description = desc.strip()
        info.metadata["description"] = info.description

    if "alwaysapply" in lowered:
        always = _truthy(lowered["alwaysapply"])
        info.metadata["alwaysApply"] = always
        if always:
            info.priority_bonus += 10
        if kind == "cursor-rule":
            mode = "always" if always else "auto" if globs else "agent" if info.description else "manual"
            tags.append(f"apply:{mode}")

    trigger = lowered.get("trigger")
    if isinstance(trigger, str) and trigger.strip():
        mode = _clean_tag(trigger)
        tags.append(f"trigger:{mode}")
        info.metadata["trigger"] = mode
        if mode in ("always_on", "always"):
            info.priority_bonus += 10
        elif mode == "manual":
            info.priority_bonus -= 10

    name = lowered.get("name")
    if isinstance(name, (str, int, float)) and str(name).strip():
        info.name = str(name).strip()
        info.metadata["name"] = info.name
    mtype = lowered.get("type")
    if isinstance(mtype, str) and mtype.strip():
        info.type = mtype.strip().lower()
        tags.append(f"type:{_clean_tag(mtype)}")

    for t in _as_list(lowered.get("tags")):
        tags.append(_clean_tag(t))

    prio = lowered.get("priority")
    if isinstance(prio, (int, float)) and not isinstance(prio, bool) and 0 <= prio <= 100:
        info.priority_base = int(prio)
    elif isinstance(prio, str):
        named = {"critical": 90, "high": 75, "medium": 50, "normal": 50, "low": 25}
        info.priority_base = named.get(prio.strip().lower())

    seen: set[str] = set()
    info.tags = [t for t in tags if t and not (t in seen or seen.add(t))]
    return info
