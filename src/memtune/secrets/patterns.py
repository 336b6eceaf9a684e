"""memtune's own secret patterns: the first, high-signal layer of :mod:`memtune.secrets.detect`.

Each function looks at one line and yields :class:`Span` s (where a value starts and ends,
its type, and a rank that decides overlaps). They replace only the value, never the key
or the prose around it, so a redacted line still teaches the rule it states. Placeholders
and references (``<your-token>``, ``${TOKEN}``, ``settings.api_key``) are never spans.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from functools import lru_cache

MARKER = "[REDACTED:{}]"
MARKER_RE = re.compile(r"\[REDACTED:[a-z0-9-]+\]")


@dataclass(frozen=True)
class Span:
    start: int
    end: int
    type: str
    rank: int  # lower wins when spans overlap


# --- placeholders and references ------------------------------------------------------

_PLACEHOLDER_WORDS = frozenset(
    """none null nil undefined true false string str number int integer bool boolean any
    unknown object bytes text char varchar required optional empty n/a na tbd todo fixme
    redacted hidden masked omitted unset placeholder example sample dummy env secret-here
    pass password passwd pwd pw username user
    ...""".split()
)  # fmt: skip
_TEMPLATE_RE = re.compile(
    r"""^(?:
        <[^<>]*> | \{\{.*\}\} | \$\{.*\} | \{[^{}]*\} | \$\([^()]*\) | %\([^()]*\)[sd] | %[sd]
      | \$[A-Za-z_][A-Za-z0-9_]* | %[A-Za-z_][A-Za-z0-9_]*% | \[[A-Za-z _-]*\]
    )$""",
    re.X,
)
_MASK_RE = re.compile(r"^[*xX•·.…#_\-]{3,}$")
_YOUR_RE = re.compile(r"^(?:your[-_ ]?|(?:my|insert|enter|replace|put)[-_ ])[A-Za-z_\-]*$", re.I)
_KNOWN_OBJECTS = frozenset(
    "self this os process env config settings cfg conf ctx context request req app secrets "
    "vars params props options opts args kwargs tokenizer credentials auth user creds".split()
)
_DOTTED_RE = re.compile(r"^[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)+$")
_ENV_NAME_RE = re.compile(r"^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$")
_SNAKE_RE = re.compile(r"^[a-z]+(?:_[a-z]+)+$")
_PATH_RE = re.compile(r"^(?:~?/|\.\.?/)[^\s]*$")


def is_placeholder(value: str) -> bool:
    """True for values that stand for a secret rather than being one."""
    v = value.strip().strip("\"'`")
    if len(v) < 1 or "[REDACTED" in v:
        return True
    if v.lower() in _PLACEHOLDER_WORDS:
        return True
    return bool(_TEMPLATE_RE.match(v) or _MASK_RE.match(v) or _YOUR_RE.match(v))


def is_reference(value: str) -> bool:
    """True for code that *looks up* a secret (``os.environ["X"]``, ``self.token``, ``DB_PASS``)."""
    v = value
    if any(c in v for c in "([{"):
        return True
    if v[:1] in ("!", "&", "*") and v[1:].replace("_", "").isalpha():
        return True  # YAML tag / anchor / alias: !vault, &defaults, *defaults
    if _DOTTED_RE.match(v):
        first = v.split(".", 1)[0]
        return first in _KNOWN_OBJECTS or not any(c.isdigit() for c in v)
    return bool(_ENV_NAME_RE.match(v) or _SNAKE_RE.match(v))


# --- key = value ------------------------------------------------------------------------

# A word that may be part of a secret's name; the whole identifier around it is then
# classified by its last word in _key_type().
KW_RE = re.compile(r"pass|pwd|pw\b|secret|token|key|cred", re.I)
_IDENT_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
_MAX_IDENT = 64
_WORD_SPLIT_RE = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+")
_KEY_KINDS = {
    "api": "api-key", "app": "api-key", "subscription": "api-key", "license": "api-key",
    "service": "api-key", "access": "access-key", "private": "private-key", "ssh": "private-key",
    "gpg": "private-key", "pgp": "private-key",
}  # fmt: skip
_SECRET_KEY_PREFIXES = frozenset(
    "api app subscription license service access private ssh gpg pgp secret signing "
    "encryption master auth client account storage admin webhook sas db database "
    "unseal recovery vault hmac jwt deploy wpa psk shared".split()
)
_PASSWORD_WORDS = frozenset({"password", "passwd", "passphrase", "passcode", "pwd"})
# After the key: closing quote/bracket/markdown, then the separator; or a qualifier
# first ("Password for staging: x", "API key (prod) = x").
_CLOSE = r"""(?P<close>["'`\]*_]{0,4})"""
_SEP_EXPLICIT = r"\s*(?::=|=>|===?|=|:|\|)\s*|\s+(?:is|was|are)\s+(?:set\s+to\s+|now\s+)?"
_SEP_RE = re.compile(_CLOSE + r"(?P<sep>" + _SEP_EXPLICIT + r"|\s+)")
_QUAL_SEP_RE = re.compile(
    _CLOSE
    + r"(?:\s+(?:for|of|on|to|in|at)\s+[^:=\n`\"'|]{1,40}?|\s*\([^()\n]{1,30}\))[\"'`*_]{0,4}"
    + r"(?P<sep>"
    + _SEP_EXPLICIT
    + r")"
)
_VALUE_STOP = " \t\r\"'`<>|,;"
_TRAILING_PUNCT = ".,;:)]}*"  # not "!"/"?": passwords end with them
_PROSE_STOPWORDS = frozenset(
    """the a an is are was be must should will can may not no yes and or if to for in on of
    with from by via stored hashed encrypted required optional needed used set see same
    below above here there from in env environment variable vault file""".split()
)  # fmt: skip


def _word_list(ident: str) -> list[str]:
    """``DB_PASSWORD`` / ``apiKey`` / ``db.password`` → lower-case words."""
    return [w.lower() for seg in re.split(r"[._\-]+", ident) for w in _WORD_SPLIT_RE.findall(seg)]


@lru_cache(maxsize=8192)
def _key_type(ident: str, in_auth: bool) -> str | None:
    """Secret type named by ``DB_PASSWORD`` / ``apiKey`` / …; None if the name is not a secret's."""
    words = _word_list(ident)
    if not words:
        return None
    if len(words) > 1 and words[-1] in ("base", "value"):  # secret_key_base, token_value
        words = words[:-1]
    last, prev = words[-1], (words[-2] if len(words) > 1 else "")
    if last in _PASSWORD_WORDS or last.endswith(("password", "passwd")):
        return "password"
    if last in ("pass", "pw") and (prev or in_auth):
        return "password"
    if last == "secret":
        return "client-secret" if prev == "client" else "secret"
    if last == "token":
        return "token"
    if last in ("apikey", "api_key"):
        return "api-key"
    if last in ("secretkey", "authkey"):
        return "secret"
    if last == "accesskey":
        return "access-key"
    if last == "key" and words[0] == "aws" and "secret" in words:
        return "aws-secret-key"
    if last == "key" and prev in _SECRET_KEY_PREFIXES:
        return _KEY_KINDS.get(prev, "secret")
    if last in ("credential", "credentials", "creds"):
        return "credential"
    return None


def _take_value(line: str, j: int) -> tuple[int, int, str] | None:
    """The value starting at ``line[j]``: ``(start, end, how)`` with how in quoted/code/bare."""
    n = len(line)
    while j < n and line[j] in " \t*":
        j += 1
    if j >= n:
        return None
    c = line[j]
    if c in "\"'":
        k = line.find(c, j + 1)
        if k > j + 1:
            return j + 1, k, "quoted"
        return None
    if c == "`":
        k = line.find("`", j + 1)
        if k > j + 1:
            return j + 1, k, "code"
        return None
    if c == "<":
        return None  # <placeholder>
    k = j
    while k < n and line[k] not in _VALUE_STOP:
        k += 1
    while k > j and line[k - 1] in _TRAILING_PUNCT:
        k -= 1
    return (j, k, "bare") if k > j else None


def _mixed(value: str) -> bool:
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


# Terms that mix letters and digits but name an algorithm or a standard, not a credential.
_TECH_TERMS = frozenset(
    """oauth1 oauth2 pbkdf2 sha1 sha-1 sha256 sha-256 sha512 sha-512 argon2 argon2i argon2id scrypt bcrypt
    hs256 rs256 es256 md5 base64 utf-8 x509 x.509 pkcs8 pkcs12 wpa2 wpa3 wpa2-psk ntlmv2 kerberos5 2fa
    http/2 http/1.1 tls1.2 tls1.3 aes-256 aes-128 aes-256-gcm chacha20 ed25519 rsa-4096 p-256""".split()
)  # fmt: skip
_CODE_LIKE_RE = re.compile(r"^(?:[A-Za-z_][\w.-]*=\S|[\w.]+\(.*\)?$)")
_VERSION_RE = re.compile(r"^[vV]?\d+(?:\.\d+)+")


def credential_like(value: str) -> bool:
    """Looks like a chosen password or a generated key, not a word: at least 6 characters, no
    spaces, and three of upper case, lower case, digits and symbols (``Harbor!Sail2024``,
    ``qa-pass-77``); never a version, path, URL, flag or algorithm name (``argon2id``)."""
    v = value
    if not 6 <= len(v) <= 200 or any(c.isspace() for c in v) or v.startswith("-"):
        return False
    if v.lower().rstrip(".") in _TECH_TERMS or "://" in v or _PATH_RE.match(v) or _VERSION_RE.match(v):
        return False
    if _CODE_LIKE_RE.match(v):
        return False  # parse_all=True, run(), obj.method, --flag
    classes = (
        any(c.isupper() for c in v) + any(c.islower() for c in v) + any(c.isdigit() for c in v)
        + any(not c.isalnum() for c in v)
    )
    return classes >= 3 and any(c.isalpha() for c in v)


def _strong(value: str) -> bool:
    """Looks like a generated credential: long, mixing letters with digits."""
    return len(value) >= 16 and _mixed(value) and " " not in value


def _identifiers(line: str) -> Iterable[tuple[int, int]]:
    """Spans of identifiers (``DB_PASSWORD``, ``spring.datasource.password``) holding a key word.

    Expanding around a cheap keyword match, bounded, keeps this linear on huge lines.
    """
    last_end = -1
    for m in KW_RE.finditer(line):
        if m.start() < last_end:
            continue
        a, b = m.start(), m.end()
        while a > 0 and line[a - 1] in _IDENT_CHARS and m.start() - a < _MAX_IDENT:
            a -= 1
        while b < len(line) and line[b] in _IDENT_CHARS and b - m.end() < _MAX_IDENT:
            b += 1
        while b > a and line[b - 1] in ".-":
            b -= 1
        last_end = b
        yield a, b


def in_markers(line: str) -> Callable[[int], bool]:
    """Whether a position lies inside a ``[REDACTED:…]`` marker (whose type names a key word)."""
    if "[REDACTED:" not in line:
        return lambda _pos: False
    spans = [(m.start(), m.end()) for m in MARKER_RE.finditer(line)]
    return lambda pos: any(s <= pos < e for s, e in spans)


def _prev_word(line: str, pos: int) -> str:
    m = re.search(r"([A-Za-z]+)[\s*_`]*$", line[max(0, pos - 40) : pos])
    return m.group(1).lower() if m else ""


def keyword_spans(line: str, in_auth: bool) -> Iterable[Span]:
    markers = in_markers(line)
    for a, b in _identifiers(line):
        if markers(a) or line[max(0, a - 2) : a].endswith(("$", "${", "%")):
            continue  # $DB_PASSWORD / ${DB_PASSWORD:-x} is a reference (defaults: secrets.context)
        ident = line[a:b]
        flag = ident.startswith("-")
        ident = ident.lstrip("-")
        ktype = _key_type(ident, in_auth)
        # A bare "pw" / "pass" ("admin pw X", 'pass "X"') is a password only before a value
        # that looks chosen or generated: "tests pass: 412", "pass --verbose" are not.
        weak = ktype is None and ident.lower() in ("pw", "pass")
        if weak:
            ktype = "password"
        if ktype is None and ident.lower() == "key":  # "API key: …", "Secret Key = …"
            prev = _prev_word(line, a)
            if prev in _SECRET_KEY_PREFIXES:
                ktype = _KEY_KINDS.get(prev, "secret")
        if ktype is None:
            continue
        sm = _SEP_RE.match(line, b)
        if sm is None or not sm.group("sep").strip():
            qm = _QUAL_SEP_RE.match(line, b)
            if qm is not None:
                sm = qm
        if sm is None:
            continue
        sep = sm.group("sep").strip()
        if sep == "|" and not line.lstrip().startswith("|"):
            continue
        got = _take_value(line, sm.end())
        if got is None:
            continue
        start, end, how = got
        value = line[start:end]
        if is_placeholder(value) or MARKER_RE.search(value):
            continue
        if how != "quoted" and (is_reference(value) or _PATH_RE.match(value)):
            continue
        rest = line[end:].lstrip(" *`\"'")
        followed_by_word = bool(rest[:1].isalpha())
        prose_sep = sep in (":", "|") or sep.split(" ", 1)[0] in ("is", "was", "are")
        if weak and not credential_like(value):
            continue
        if not sep:  # whitespace only: CLI flags, or an unmistakable credential
            cred = ktype == "password" and credential_like(value)  # "with password Harbor!Sail2024"
            if not (flag or cred or _strong(value)) or value.startswith("-"):
                continue
        elif how == "bare" and value.isalpha():
            # Prose, not a credential: "password: hashed with bcrypt", "the token is opaque".
            # A bare word only counts as a password after ":"/"=" with nothing following.
            if ktype != "password" or sep.split(" ", 1)[0] in ("is", "was", "are"):
                continue
            if prose_sep and (value.lower() in _PROSE_STOPWORDS or followed_by_word):
                continue
        if ktype != "password" and how != "quoted" and len(value) < 8:
            continue  # "secret: 42", "token: abc"
        if ktype == "password" and how == "bare" and len(value) < 3:
            continue
        yield Span(start, end, ktype, 40)


# --- other high-signal patterns ---------------------------------------------------------

# (literal needles, pattern, type). The needles are plain substring checks, far cheaper
# than running every regex on every line; a pattern runs only when one is present.
_TOKEN_PATTERNS: tuple[tuple[tuple[str, ...], re.Pattern[str], str], ...] = tuple(
    (needles, re.compile(p), t)
    for needles, p, t in (
        (("sk-ant-",), r"\bsk-ant-[A-Za-z0-9_\-]{20,}", "anthropic-api-key"),
        (("sk-",), r"\bsk-(?!ant-)(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{20,}", "openai-api-key"),
        (("ghp_", "gho_", "ghu_", "ghs_", "ghr_"), r"\bgh[pousr]_[A-Za-z0-9]{30,255}\b", "github-token"),
        (("github_pat_",), r"\bgithub_pat_[A-Za-z0-9_]{22,255}", "github-token"),
        (("glpat-",), r"\bglpat-[A-Za-z0-9_\-]{20,}", "gitlab-token"),
        (("xox",), r"\bxox[abposre]-[A-Za-z0-9\-]{10,}", "slack-token"),
        (("hooks.slack.com",), r"https://hooks\.slack\.com/services/[A-Za-z0-9/_\-]{20,}", "slack-webhook"),
        (("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
         r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b", "aws-access-key"),
        (("AIza",), r"\bAIza[0-9A-Za-z_\-]{35}\b", "google-api-key"),
        (("hf_",), r"\bhf_[A-Za-z0-9]{30,}\b", "huggingface-token"),
        (("_live_", "_test_"), r"\b(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}\b", "stripe-key"),
        (("npm_",), r"\bnpm_[A-Za-z0-9]{36}\b", "npm-token"),
        (("SG.",), r"\bSG\.[A-Za-z0-9_\-]{16,}\.[A-Za-z0-9_\-]{16,}", "sendgrid-key"),
        (("eyJ",), r"\beyJ[A-Za-z0-9_\-]{8,}\.eyJ[A-Za-z0-9_\-]{8,}\.[A-Za-z0-9_\-]*", "jwt"),
    )
)
_RANDOM_ONLY = frozenset({"openai-api-key", "anthropic-api-key"})
_URL_CRED_RE = re.compile(
    r"\b[a-zA-Z][a-zA-Z0-9+.\-]{1,30}://(?P<user>[^\s:/?#@'\"`<>]{0,128})"
    r":(?P<pw>[^\s/?#'\"`<>]{1,256})@[^\s/?#@'\"`<>]{1,256}"
)
_AUTH_HEADER_RE = re.compile(
    r"\bauthorization\b[\"'`*]*\s*[:=]\s*[\"'`]?(?:(?P<scheme>bearer|basic|token|bot|digest|apikey)\s+)?",
    re.I,
)
_AUTH_SCHEMES = {"bearer": "bearer-token", "basic": "basic-auth", "token": "token"}
_BEARER_RE = re.compile(r"\bBearer\s+(?=[A-Za-z0-9._~+/=\-]{16,})", re.I)
_CURL_USER_RE = re.compile(r"(?:^|\s)(?:-u|--user)\s*[\"']?[^\s:\"']+:(?P<pw>[^\s\"']+)")
_MYSQL_RE = re.compile(r"\bmysql(?:dump|admin|sh)?\b[^\n]*?\s-p(?P<pw>[^\s\"']+)")
_SSHPASS_RE = re.compile(r"\bsshpass\s+-p\s*(?P<pw>[^\s\"']+)")
AUTH_HEADING_RE = re.compile(
    r"^\s{0,3}(#{1,6})\s+.*\b(?:auth\w*|credentials?|logins?|accounts?|passwords?|secrets?"
    r"|(?:test|demo|admin|qa)\s+users?)\b",
    re.I,
)
HEADING_RE = re.compile(r"^\s{0,3}(#{1,6})\s")
_USER_SLASH_PW_RE = re.compile(
    r"(?P<user>[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+|\b[A-Za-z][\w.\-]*)[`'\"*]*"
    r"\s+/\s+[`'\"*]*(?P<pw>[^\s`'\"*]+)"
)
_CODE_USER_PW_RE = re.compile(r"`[\w.@+\-]+:(?P<pw>[^\s`]+)`")
_PEM = r"(?:[A-Z0-9]+ )*PRIVATE KEY(?: BLOCK)?-----"
PRIVATE_INLINE_RE = re.compile(r"-----BEGIN " + _PEM + ".*?-----END " + _PEM)
PRIVATE_BEGIN_RE = re.compile(r"-----BEGIN " + _PEM)
PRIVATE_END_RE = re.compile(r"-----END " + _PEM)
KEY_BODY_RE = re.compile(
    r"^\s*[>#/\"']*\s*(?:[A-Za-z0-9+/=]{16,}(?:\\n)?[\"',]?|(?:Proc-Type|DEK-Info|Comment): .*)?\s*$"
)

# Lines worth a closer look. Everything else (most prose) is skipped after one search.
TRIGGER_WORDS = tuple(
    "pass pwd pw secret token key cred auth bearer :// -----begin sk- sk_ rk_ ghp_ gho_ ghu_ "
    "ghs_ ghr_ github_pat xox eyj akia asia abia acca a3t aiza hf_ glpat npm_ sg. sshpass".split()
)
# detect-secrets' formats are all 20+ characters long (or a URL with credentials).
DS_GATE_RE = re.compile(r"[A-Za-z0-9+/=_\-]{20,}|://")


def _value_span(line: str, start: int, vtype: str, rank: int) -> Span | None:
    got = _take_value(line, start)
    if got is None:
        return None
    s, e, _ = got
    if is_placeholder(line[s:e]):
        return None
    return Span(s, e, vtype, rank)


def pattern_spans(line: str, in_auth: bool) -> Iterable[Span]:
    for needles, rx, t in _TOKEN_PATTERNS:
        for n in needles:
            if n in line:
                for m in rx.finditer(line):
                    if t in _RANDOM_ONLY and not _mixed(m.group(0)):
                        continue  # "sk-some-long-kebab-case-name" is not a key
                    yield Span(m.start(), m.end(), t, 10)
                break
    if "://" in line:
        for m in _URL_CRED_RE.finditer(line):
            if not is_placeholder(m.group("pw")):
                yield Span(m.start("pw"), m.end("pw"), "connection-string-password", 20)
    low = line.lower()
    for m in _AUTH_HEADER_RE.finditer(line) if "authorization" in low else ():
        scheme = (m.group("scheme") or "").lower()
        vtype = _AUTH_SCHEMES.get(scheme, "authorization")
        span = _value_span(line, m.end(), vtype, 15)
        if span and len(line[span.start : span.end]) >= 6:
            yield span
    for m in _BEARER_RE.finditer(line) if "bearer" in low else ():
        span = _value_span(line, m.end(), "bearer-token", 16)
        if span:
            yield span
    # "-u user:pw" only next to curl/wget/http: "docker run -u 1000:1000" is a uid:gid.
    curl = "-u" in line and ("curl" in low or "wget" in low or "http" in low)
    for found, rx in ((curl, _CURL_USER_RE), ("mysql" in line, _MYSQL_RE), ("sshpass" in line, _SSHPASS_RE)):
        if not found:
            continue
        for m in rx.finditer(line):
            if not is_placeholder(m.group("pw")) and not m.group("pw").isdigit():
                yield Span(m.start("pw"), m.end("pw"), "password", 25)
    if in_auth:
        for rx in (_USER_SLASH_PW_RE, _CODE_USER_PW_RE):
            for m in rx.finditer(line):
                pw = m.group("pw").rstrip(_TRAILING_PUNCT)
                user = m.groupdict().get("user") or "@"
                looks_secret = "@" in user or any(not c.isalpha() for c in pw)
                if pw.isdigit():
                    continue  # `host:5432` is a port
                if pw and looks_secret and not is_placeholder(pw) and not is_reference(pw):
                    yield Span(m.start("pw"), m.start("pw") + len(pw), "password", 45)
