"""Secret shapes that need context beyond ``key = value``: the second half of memtune's own layer.

:mod:`memtune.secrets.patterns` finds a value by the identifier in front of it. People
also write credentials as prose and in shapes where the name is elsewhere:

* other languages' words for password (``Passwort: x``, ``mot de passe : x``, ``пароль: x``);
* ``login admin / pw`` and ``user:pw`` outside an "Authentication" section;
* shell defaults (``${REDIS_AUTH:-myredissecret}``) and ``*_AUTH=`` variables;
* command-line flags whose meaning depends on the command (``docker login -p``, ``redis-cli -a``,
  ``htpasswd -b file user pw``), where the same flag elsewhere is a port (``docker run -p``);
* markdown tables whose *column* is named Password / Token / API key.

Like the rest, these replace only the value and leave placeholders and references alone.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from memtune.secrets.patterns import (
    _PATH_RE,
    Span,
    _key_type,
    _take_value,
    _word_list,
    credential_like,
    in_markers,
    is_placeholder,
    is_reference,
)

# --- other languages' words for password -----------------------------------------------------

_PW_WORDS_LATIN = (
    r"passwort|kennwort|mot\s+de\s+passe|mdp|contrase[ñn]as?|clave|senha|palavra[-\s]passe"
    r"|parola\s+d['’]ordine|wachtwoord|пароль|парол[ья]|hasło|haslo|heslo|lösenord|losenord|passord"
    r"|adgangskode|salasana|şifre|sifre|jelszó|jelszo|parolă|geslo|lozinka|лозинка|mật\s+khẩu"
    r"|kata\s+sandi|password|passwd"
)
_PW_WORDS_CJK = r"密码|密碼|口令|パスワード|비밀번호|كلمة\s+المرور|סיסמה"
#: Words that name a password, in the languages memory files are written in.
I18N_PW_RE = re.compile(r"(?:\b(?:" + _PW_WORDS_LATIN + r")\b|" + _PW_WORDS_CJK + r")", re.I)
# Trigger words for the cheap line filter (lower case, plain substrings).
I18N_TRIGGERS = tuple(
    "passwort kennwort passe mdp contrase clave senha parola wachtwoord пароль парол hasło haslo heslo "
    "lösenord losenord passord adgangskode salasana şifre sifre jelszó jelszo geslo lozinka лозинка khẩu "
    "sandi 密码 密碼 口令 パスワード 비밀번호 المرور סיסמה".split()
)
# "is" in the languages above: "Das Kennwort ist x", "La contraseña es x", "La password è x".
_IS_WORDS = r"ist|lautet|est|es|é|è|e|is|er|är|on|jest|je|это|є|wynosi|vaut"
_I18N_SEP_RE = re.compile(
    r"(?P<qual>(?:[ \t]+(?!-)[^\s:=：`\"'|]{1,30}){0,5}?)"
    r"(?P<sep>[\"'`*_]*\s*(?::|=|：)\s*|\s+(?:" + _IS_WORDS + r")\s+(?:[:=]\s*)?)",
    re.I,
)
_I18N_SPACE_RE = re.compile(r"(?P<qual>)(?P<sep>[\"'`*_]*\s+)")
# "Clave" is also Spanish for "key" (clave primaria): only values that look generated count.
_WEAK_WORDS = frozenset({"clave", "mdp", "e"})


def _i18n_spans(line: str) -> Iterable[Span]:
    markers = in_markers(line)
    for m in I18N_PW_RE.finditer(line):
        if markers(m.start()) or line[m.start() - 1 : m.start()] in ("-", "_", ".", "$"):
            continue  # a flag or an identifier (--password, DB_PASSWORD): patterns.py's job
        word = re.sub(r"\s+", " ", m.group(0).lower())
        sm = _I18N_SEP_RE.match(line, m.end()) or _I18N_SPACE_RE.match(line, m.end())
        if sm is None:
            continue
        qual, sep = sm.group("qual"), sm.group("sep").strip(" \t\"'`*_")
        if not sep and qual:
            continue  # "Passwort wird nie gespeichert" — no separator after a qualifier
        if qual and re.search(r"[.!?;]\s", qual):
            continue  # the qualifier ran into the next sentence
        got = _take_value(line, sm.end())
        if got is None:
            continue
        start, end, how = got
        value = line[start:end]
        if is_placeholder(value) or value.startswith("-") or (how == "bare" and value.isdigit()):
            continue
        if how != "quoted" and (is_reference(value) or _PATH_RE.match(value)):
            continue
        strong = credential_like(value)
        if word in _WEAK_WORDS or not sep:
            if not strong:
                continue
        elif how == "bare" and not strong:
            if qual:
                continue  # "password hashing: argon2id" — a qualified name needs a chosen-looking value
            rest = line[end:].lstrip(" *`\"'")
            # Prose, not a value: "Passwort: mindestens zwölf Zeichen", "Passwort ist geheim".
            if value.isalpha() and (qual or sep not in (":", "=", "：") or rest[:1].isalpha()):
                continue
            if not any(c.isalpha() for c in value):
                continue
        yield Span(start, end, "password", 42)


# --- "login admin / pw", "user:pw" ------------------------------------------------------------

_LOGIN_RE = re.compile(
    r"\b(?:log-?\s?in|sign-?\s?in|account|creds?|credentials|user(?:name)?|benutzer|utilisateur|usuario)\b"
    r"[^/\n]{0,60}?(?P<user>[\w.+\-@]+)[`'\"*]*\s+/\s+[`'\"*]*(?P<pw>[^\s`'\"*]+)",
    re.I,
)
_CREDS_COLON_RE = re.compile(
    r"\b(?:creds?|credentials|login)\b[^:\n]{0,30}:\s*[`'\"]?[\w.+\-@]+:(?P<pw>[^\s`'\"@/]+)", re.I
)


def _login_spans(line: str) -> Iterable[Span]:
    for rx in (_LOGIN_RE, _CREDS_COLON_RE):
        for m in rx.finditer(line):
            pw = m.group("pw").rstrip(".,;:)]}")
            if pw and credential_like(pw) and not is_placeholder(pw) and not is_reference(pw):
                yield Span(m.start("pw"), m.start("pw") + len(pw), "password", 44)


# --- shell defaults and *_AUTH variables ---------------------------------------------------------

_SHELL_DEFAULT_RE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*):?[-=](?P<val>[^{}\n]*)\}")
_AUTH_VAR_RE = re.compile(r"(?<![\w$])(?P<name>[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*_AUTH)[\"']?\s*[:=]\s*")
_NOT_A_VALUE = frozenset("true false yes no on off none null basic bearer digest required optional enabled disabled".split())


def secret_name(name: str) -> str | None:
    """The secret type a variable name stands for (``DB_PASSWORD``, ``REDIS_AUTH``), else None."""
    t = _key_type(name, False)
    if t is None:
        words = _word_list(name)
        if len(words) > 1 and words[-1] == "auth":
            return "password"
    return t


def _shell_spans(line: str) -> Iterable[Span]:
    if "${" in line:
        for m in _SHELL_DEFAULT_RE.finditer(line):
            stype = secret_name(m.group("name"))
            val = m.group("val")
            s, e = m.start("val"), m.end("val")
            if len(val) >= 2 and val[0] == val[-1] and val[0] in "\"'":
                s, e, val = s + 1, e - 1, val[1:-1]
            if stype is None or not val or "$" in val or is_placeholder(val) or _PATH_RE.match(val):
                continue
            yield Span(s, e, stype, 30)
    if "_AUTH" in line:
        for m in _AUTH_VAR_RE.finditer(line):
            got = _take_value(line, m.end())
            if got is None:
                continue
            s, e, how = got
            val = line[s:e]
            if len(val) < 6 or val.lower() in _NOT_A_VALUE or is_placeholder(val):
                continue
            if how != "quoted" and is_reference(val):
                continue
            yield Span(s, e, "password", 35)


# --- command-line flags whose meaning depends on the command ------------------------------------

_Q = r"(?P<pw>'[^'\n]+'|\"[^\"\n]+\"|[^\s\"'`]+)"
_CLI_RES = (
    re.compile(r"\b(?:docker|podman|nerdctl|buildah|skopeo|oras|helm\s+registry)\s+login\b[^\n|;&]*?"
               r"\s(?:-p|--password)(?:\s+|=)" + _Q),
    re.compile(r"\b(?:mongo|mongosh|mongodump|mongorestore|mongoexport|mongoimport|twine)\b[^\n|;&]*?"
               r"\s(?:-p|--password)(?:\s+|=)" + _Q),
    re.compile(r"\bredis-cli\b[^\n|;&]*?\s-a\s+" + _Q),
    re.compile(r"\bsshpass\s+-p\s*" + _Q),
    re.compile(r"\bmysql(?:dump|admin|sh)?\b[^\n|;&]*?\s-p" + _Q),
    re.compile(r"\bhtpasswd\s+(?:-[A-Za-z]*b[A-Za-z]*\s+)(?:-[A-Za-z]+\s+)*\S+\s+\S+\s+" + _Q),
)
CLI_TRIGGERS = ("login", "mongo", "twine", "redis-cli", "sshpass", "mysql", "htpasswd")


def _cli_spans(line: str) -> Iterable[Span]:
    for rx in _CLI_RES:
        for m in rx.finditer(line):
            s, e = m.start("pw"), m.end("pw")
            if line[s] in "\"'":
                s, e = s + 1, e - 1
            pw = line[s:e]
            if pw.isdigit() or pw.startswith("-") or is_placeholder(pw) or "$" in pw:
                continue
            yield Span(s, e, "password", 25)


# --- XML elements, .pgpass lines, recovery codes -----------------------------------------------------

_XML_RE = re.compile(r"<(?P<tag>[A-Za-z_][\w:.-]{0,40})>(?P<val>[^<>\n]{1,200})</(?P=tag)>")
#: ``host:port:database:user:password`` (.pgpass), the only colon-separated line with a port second.
PGPASS_RE = re.compile(r"^\s*[\w.*-]+:(?:\d{2,5}|\*):[\w.*-]+:[\w.*@-]+:(?P<pw>\S+)\s*$")
_CODES_RE = re.compile(r"\b(?:recovery|backup|2fa|mfa|otp)\s+codes?\b[*_`]*\s*[:=]\s*(?P<val>[^\n]+)", re.I)
_CODE_TOKEN_RE = re.compile(r"(?<![\w-])[A-Za-z0-9]{3,}(?:-[A-Za-z0-9]{3,})*(?![\w-])")


def _structured_spans(line: str) -> Iterable[Span]:
    if "</" in line:
        for m in _XML_RE.finditer(line):
            stype = secret_name(m.group("tag").split(":")[-1])
            val = m.group("val").strip()
            if stype and val and not is_placeholder(val) and not is_reference(val) and "$" not in val:
                s = m.start("val") + m.group("val").index(val)
                yield Span(s, s + len(val), stype, 30)
    if line.count(":") >= 4:
        m = PGPASS_RE.match(line)
        if m and not is_placeholder(m.group("pw")) and not m.group("pw").isdigit():
            yield Span(m.start("pw"), m.end("pw"), "password", 30)
    m = _CODES_RE.search(line)
    if m:
        for t in _CODE_TOKEN_RE.finditer(m.group("val")):
            if any(c.isdigit() for c in t.group(0)):
                yield Span(m.start("val") + t.start(), m.start("val") + t.end(), "recovery-code", 30)


# --- bare hex keys ---------------------------------------------------------------------------------

# detect-secrets only judges quoted strings; a vault unseal key or HMAC secret is often bare.
_HEX_KEY_RE = re.compile(r"(?<![\w/#:@.-])[0-9a-fA-F]{32,128}(?![\w/.-])")
_HEX_HINT_RE = re.compile(r"\b(?:\w*key|secret|token|hmac|salt|unseal|vault|passw\w*|credentials?)\b", re.I)
_HEX_PUBLIC_RE = re.compile(
    r"\b(?:sha\d*|md5|commit|hash|checksum|digest|integrity|rev|revision|trace|span|request|uuid|etag|"
    r"fingerprint|public|pubkey|object|build)\b", re.I)


def _hex_spans(line: str) -> Iterable[Span]:
    if not _HEX_HINT_RE.search(line) or _HEX_PUBLIC_RE.search(line):
        return
    for m in _HEX_KEY_RE.finditer(line):
        v = m.group(0)
        if any(c.isdigit() for c in v) and any(c.isalpha() for c in v):
            yield Span(m.start(), m.end(), "secret", 50)


def context_spans(line: str, low: str) -> Iterable[Span]:
    """All the spans of this module for one line (``low`` is ``line.lower()``)."""
    if I18N_PW_RE.search(line):
        yield from _i18n_spans(line)
    if "/" in line or ":" in line:
        yield from _login_spans(line)
    if "${" in line or "_AUTH" in line:
        yield from _shell_spans(line)
    if any(t in low for t in CLI_TRIGGERS):
        yield from _cli_spans(line)
    yield from _hex_spans(line)
    yield from _structured_spans(line)


# --- markdown tables with a secret column ---------------------------------------------------------

_TABLE_SEP_RE = re.compile(r"^\s*\|?\s*:?-{3,}:?\s*(?:\|\s*:?-{3,}:?\s*)+\|?\s*$|^\s*\|\s*:?-{3,}:?\s*\|\s*$")
_CODE_RE = re.compile(r"`([^`\n]+)`")


def _cells(line: str) -> list[tuple[int, int]]:
    """(start, end) of each cell's text in a markdown table row (outer pipes optional)."""
    bounds = [i for i, c in enumerate(line) if c == "|" and (i == 0 or line[i - 1] != "\\")]
    if not bounds:
        return []
    edges = bounds[:]
    if line[: bounds[0]].strip():
        edges.insert(0, -1)
    if line[bounds[-1] + 1 :].strip():
        edges.append(len(line))
    return [(a + 1, b) for a, b in zip(edges, edges[1:], strict=False)]


def _column_type(header: str) -> str | None:
    text = header.strip().strip("*_`").strip()
    if not text or len(text) > 40:
        return None
    if I18N_PW_RE.fullmatch(text) or re.fullmatch(r"(?:\w+\s+)?(?:" + _PW_WORDS_LATIN + r")", text, re.I):
        return "password"
    joined = re.sub(r"[\s/-]+", "_", text)
    t = secret_name(joined)
    if t is None and joined.lower() in ("pass", "pw", "key"):
        t = "password" if joined.lower() != "key" else "secret"
    return t


def _cell_value(line: str, a: int, b: int) -> Iterable[tuple[int, int]]:
    cell = line[a:b]
    codes = list(_CODE_RE.finditer(cell))
    if codes:
        for m in codes:
            yield a + m.start(1), a + m.end(1)
        return
    stripped = cell.strip()
    if not stripped or " " in stripped:
        return  # prose ("stored in vault") is left to the line scan
    s = a + cell.index(stripped)
    e = s + len(stripped)
    if len(stripped) >= 2 and stripped[0] == stripped[-1] and stripped[0] in "\"'":
        s, e = s + 1, e - 1
    yield s, e


def table_spans(lines: list[str]) -> tuple[dict[int, list[Span]], set[int]]:
    """Spans in the body rows of tables whose header names a secret column, and the header rows
    (which hold column names, not values: the line scan must not read ``| Password | Role |``
    as "password = Role")."""
    spans: dict[int, list[Span]] = {}
    headers: set[int] = set()
    i, n = 0, len(lines)
    while i < n - 1:
        line = lines[i]
        if "|" not in line or not _TABLE_SEP_RE.match(lines[i + 1]):
            i += 1
            continue
        headers.add(i)
        cols = {k: t for k, (a, b) in enumerate(_cells(line)) if (t := _column_type(line[a:b]))}
        i += 2
        while i < n and "|" in lines[i] and lines[i].strip():
            row = lines[i]
            for k, (a, b) in enumerate(_cells(row)):
                if k not in cols:
                    continue
                for s, e in _cell_value(row, a, b):
                    v = row[s:e]
                    if not v or is_placeholder(v) or is_reference(v) or _PATH_RE.match(v) or "[REDACTED" in v:
                        continue
                    if v.strip("-—–/ ").lower() in ("", "n/a", "na", "none", "same", "see above", "tbd"):
                        continue
                    spans.setdefault(i, []).append(Span(s, e, cols[k], 35))
            i += 1
    return spans, headers
