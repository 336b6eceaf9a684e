"""Find and redact secrets in memory text before anything stores, logs or prints it.

Agent memory files are where people paste "the staging password", a connection string or
a token "for later". memtune trains on this text, so a secret that slips through ends up
in a store, a dataset and model weights. Detection therefore errs towards redacting
concrete values, while leaving placeholders (``<your-token>``, ``${TOKEN}``, ``$PASSWORD``,
``****``) alone so that rules about *how* to pass credentials survive.

Two layers run on each line:

1. memtune's own high-signal patterns (:mod:`memtune.secrets.patterns`): ``key = value``
   assignments and "Password: x" prose, ``Authorization:`` headers, URLs with credentials, well-known token formats and
   multi-line private key blocks. These replace only the value, so
   ``postgres://admin:[REDACTED:connection-string-password]@db:5432/app`` still teaches
   the rule.
2. detect-secrets' plugins, called in-process (no settings singletons, no network
   verification), with entropy limits and filters that keep UUIDs, git hashes and
   ordinary words out.

Only lines that could hold a secret (cheap trigger regex) go through the costly layers.
Line count never changes, and redacting twice is a no-op.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from memtune.secrets.context import CLI_TRIGGERS, I18N_TRIGGERS, PGPASS_RE, context_spans, table_spans
from memtune.secrets.patterns import (
    AUTH_HEADING_RE,
    DS_GATE_RE,
    HEADING_RE,
    KEY_BODY_RE,
    KW_RE,
    MARKER,
    MARKER_RE,
    PRIVATE_BEGIN_RE,
    PRIVATE_END_RE,
    PRIVATE_INLINE_RE,
    TRIGGER_WORDS,
    Span,
    is_placeholder,
    is_reference,
    keyword_spans,
    pattern_spans,
)
__all__ = ["MARKER", "SecretFinding", "is_placeholder", "redact_secrets"]


@dataclass
class SecretFinding:
    """A redacted secret: where and what kind. Never holds the value."""

    file: str
    line: int
    type: str


#: Longest private-key block looked for (a 16k RSA key is ~200 lines of PEM).
_MAX_KEY_LINES = 400


# --- detect-secrets -----------------------------------------------------------------------

# detect-secrets' type names → the same slugs memtune's own patterns use.
_DS_TYPES = {
    "AWS Access Key": "aws-access-key", "Basic Auth Credentials": "connection-string-password",
    "GitHub Token": "github-token", "GitLab Token": "gitlab-token", "JSON Web Token": "jwt",
    "OpenAI Token": "openai-api-key", "Secret Keyword": "secret", "Slack Token": "slack-token",
    "Stripe Access Key": "stripe-key", "Base64 High Entropy String": "high-entropy-string",
    "Hex High Entropy String": "high-entropy-string",
}  # fmt: skip
_DS_SKIP = {"Public IP (ipv4)", "Private Key"}  # IPs are not secrets; keys are handled as blocks
_HEX_RE = re.compile(r"^[0-9a-fA-F]+$")
_HEX_HINT_RE = re.compile(r"key|secret|token|sig|hmac|salt|pass|auth|cred|unseal|vault", re.I)
# A digest right before the value: "sha512-…" (npm integrity), "sha256:…", "h1:…" (go.sum).
_DIGEST_PREFIX_RE = re.compile(r"(?:sha(?:1|224|256|384|512)|md5|h1)[-:=]$", re.I)
_DIGEST_LINE_RE = re.compile(r"\b(?:integrity|checksum|digest|sha\d*sum|--hash)\b", re.I)
_TRIGGERS = TRIGGER_WORDS + I18N_TRIGGERS + CLI_TRIGGERS + ("${", "_auth", "codes")
# One C-level scan instead of ~90 substring tests per line (the store redacts every field it writes).
_TRIGGER_RE = re.compile("|".join(re.escape(w) for w in sorted(set(_TRIGGERS), key=len, reverse=True)))


def _slug(secret_type: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", secret_type.lower()).strip("-")
    return _DS_TYPES.get(secret_type, slug)


@lru_cache(maxsize=1)
def _ds_plugins() -> tuple[Any, ...]:
    """detect-secrets plugin instances, created once. Used via ``analyze_string`` only, so
    no global settings are touched and no verification request is ever sent."""
    from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
    from detect_secrets.plugins.high_entropy_strings import (
        Base64HighEntropyString,
        HexHighEntropyString,
    )

    plugins: list[Any] = []
    for secret_type, cls in sorted(get_mapping_from_secret_type_to_class().items()):
        if secret_type in _DS_SKIP:
            continue
        if cls is Base64HighEntropyString:
            plugins.append(cls(limit=4.5))
        elif cls is HexHighEntropyString:
            plugins.append(cls(limit=3.0))
        else:
            plugins.append(cls())
    return tuple(plugins)


def _ds_spans(line: str) -> Iterable[Span]:
    from detect_secrets.filters import heuristic
    from detect_secrets.plugins.high_entropy_strings import HighEntropyStringsPlugin
    from detect_secrets.plugins.keyword import KeywordDetector

    quoted = '"' in line or "'" in line
    for plugin in _ds_plugins():
        if isinstance(plugin, KeywordDetector) and not quoted:
            continue  # it only looks at quoted values; unquoted ones are keyword_spans' job
        try:
            values = set(plugin.analyze_string(line))
        except Exception:  # a third-party regex must never break ingestion  # noqa: BLE001
            continue
        for value in values:
            if not isinstance(value, str):
                continue
            value = value.strip(" \t=:\"'`")  # some plugins capture the delimiter too
            if len(value) < 6 or is_placeholder(value):
                continue
            if heuristic.is_sequential_string(value) or heuristic.is_potential_uuid(value):
                continue
            if heuristic.is_templated_secret(value) or heuristic.is_prefixed_with_dollar_sign(value):
                continue
            if isinstance(plugin, HighEntropyStringsPlugin):
                pos = line.find(value)
                if _DIGEST_PREFIX_RE.search(line[max(0, pos - 8) : pos]) or (
                    _DIGEST_LINE_RE.search(line) and not KW_RE.search(line)
                ):
                    continue  # lockfile / checksum digests are public
                if len(value) < 20 or plugin.calculate_shannon_entropy(value) <= plugin.entropy_limit:
                    continue
                is_hex = bool(_HEX_RE.match(value))
                hex_plugin = plugin.secret_type.startswith("Hex")
                if is_hex != hex_plugin:
                    continue  # each string judged by the plugin for its alphabet only
                if is_hex and (len(value) < 32 or not _HEX_HINT_RE.search(line)):
                    continue  # git/sha hashes in prose and code
                if heuristic.is_likely_id_string(value, line, plugin):
                    continue
            elif isinstance(plugin, KeywordDetector):
                if heuristic.is_indirect_reference(line) or is_reference(value):
                    continue
            elif plugin.secret_type != "Basic Auth Credentials":
                if len(value) < 16 or not any(c.isdigit() for c in value):
                    continue
            stype = _slug(plugin.secret_type)
            pos = line.find(value)
            while pos != -1:
                yield Span(pos, pos + len(value), stype, 60)
                pos = line.find(value, pos + len(value))


# --- assembling -----------------------------------------------------------------------------


def _choose(spans: Iterable[Span], blocked: list[tuple[int, int]]) -> list[Span]:
    """Non-overlapping spans, best rank first, never touching an existing marker."""
    taken: list[Span] = []
    occupied = list(blocked)
    for sp in sorted(spans, key=lambda s: (s.rank, s.start, -(s.end - s.start))):
        if sp.end <= sp.start:
            continue
        if any(sp.start < e and s < sp.end for s, e in occupied):
            continue
        taken.append(sp)
        occupied.append((sp.start, sp.end))
    return sorted(taken, key=lambda s: s.start)


def _scan_line(line: str, in_auth: bool, extra: list[Span], header: bool) -> list[Span]:
    spans: list[Span] = list(pattern_spans(line, in_auth)) + extra
    if not header:  # a table's header row names columns: "| Password | Role |" holds no value
        spans.extend(keyword_spans(line, in_auth))
        spans.extend(context_spans(line, line.lower()))
    if DS_GATE_RE.search(line) or (("'" in line or '"' in line) and KW_RE.search(line)):
        spans.extend(_ds_spans(line))
    if not spans:
        return []
    return _choose(spans, [(m.start(), m.end()) for m in MARKER_RE.finditer(line)])


def _redact_line(line: str, in_auth: bool, extra: list[Span] | None = None,
                 header: bool = False) -> tuple[str, list[str]]:
    if not in_auth and not extra:
        low = line.lower()
        if not _TRIGGER_RE.search(low) and not DS_GATE_RE.search(line) and not PGPASS_RE.match(line):
            return line, []
    types: list[str] = []
    # A marker can change word boundaries around it ("…EXAMPLEAuthorization:" becomes
    # "…]Authorization:"), so rescan until nothing changes: redacting twice is a no-op.
    # Table-cell spans (``extra``) hold positions in the line as given: first pass only.
    for k in range(4):
        chosen = _scan_line(line, in_auth, (extra or []) if k == 0 else [], header)
        if not chosen:
            break
        for sp in reversed(chosen):
            line = line[: sp.start] + MARKER.format(sp.type) + line[sp.end :]
        types.extend(sp.type for sp in chosen)
    return line, types


def _redact_key_blocks(lines: list[str], file: str, findings: list[SecretFinding]) -> None:
    """Replace PEM/OpenSSH private keys, single-line or spanning lines, keeping line count."""
    marker = MARKER.format("private-key")
    for i, line in enumerate(lines):
        if "PRIVATE KEY" not in line:
            continue
        if PRIVATE_INLINE_RE.search(line):
            lines[i], n = PRIVATE_INLINE_RE.subn(marker, line)
            findings.extend(SecretFinding(file, i + 1, "private-key") for _ in range(n))
            continue
        m = PRIVATE_BEGIN_RE.search(line)
        if not m:
            continue
        end = None
        last_body = i
        for k in range(i + 1, min(len(lines), i + 1 + _MAX_KEY_LINES)):
            if PRIVATE_END_RE.search(lines[k]):
                end = k
                break
            if not KEY_BODY_RE.match(lines[k]) or not lines[k].strip():
                if not lines[k].strip() and k + 1 < len(lines) and KEY_BODY_RE.match(lines[k + 1]):
                    continue  # a blank line inside the block (after PEM headers)
                break
            last_body = k
        if end is None and last_body == i:
            continue  # "-----BEGIN ... PRIVATE KEY-----" mentioned in prose, no key material
        stop = end if end is not None else last_body
        lines[i] = line[: m.start()] + marker
        for k in range(i + 1, stop):
            lines[k] = ""
        if end is not None:
            tail = lines[end][PRIVATE_END_RE.search(lines[end]).end() :]  # type: ignore[union-attr]
            lines[end] = tail if tail.strip() else ""
        elif stop > i:
            lines[stop] = ""
        findings.append(SecretFinding(file, i + 1, "private-key"))


def _pgpass_anywhere(text: str) -> bool:
    return text.count(":") >= 4 and any(PGPASS_RE.match(line) for line in text.split("\n"))


def redact_secrets(text: str, file: str) -> tuple[str, list[SecretFinding]]:
    """Replace every secret value in ``text`` with ``[REDACTED:<type>]``.

    Returns the redacted text (same number of lines) and one finding per redaction with
    the file, 1-based line and type; never the value. Idempotent.
    """
    if not text:
        return text, []
    low = text.lower()
    if not _TRIGGER_RE.search(low) and not DS_GATE_RE.search(text) and not _pgpass_anywhere(text):
        return text, []  # the common case (most rules): no line could hold a secret
    lines = text.split("\n")
    findings: list[SecretFinding] = []
    if "PRIVATE KEY" in text:
        _redact_key_blocks(lines, file, findings)
    cells, headers = table_spans(lines) if "|" in text else ({}, set())
    auth_level = 0  # heading level of the enclosing Authentication-like section, 0 = none
    fence = False
    for i, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            fence = not fence
        elif not fence and stripped.startswith("#"):
            hm = HEADING_RE.match(line)
            if hm:
                level = len(hm.group(1))
                if AUTH_HEADING_RE.match(line):
                    auth_level = level
                elif auth_level and level <= auth_level:
                    auth_level = 0
        new, types = _redact_line(line, auth_level > 0, cells.get(i), i in headers)
        if types:
            lines[i] = new
            findings.extend(SecretFinding(file, i + 1, t) for t in types)
    findings.sort(key=lambda f: f.line)
    return "\n".join(lines), findings
