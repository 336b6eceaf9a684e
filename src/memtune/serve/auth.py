"""Bearer-token auth and the "never expose an open model to the network" rule."""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
import socket
from collections.abc import Iterable

from memtune.errors import ConfigError

ENV_API_TOKEN = "MEMTUNE_API_TOKEN"
ENV_ADMIN_KEY = "MEMTUNE_ADMIN_KEY"


def token_from_env() -> str | None:
    tok = os.environ.get(ENV_API_TOKEN, "").strip()
    return tok or None


def tokens_match(given: str | None, expected: str) -> bool:
    """Constant-time comparison, so response timing does not reveal a prefix of the token."""
    if given is None:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def is_loopback(host: str) -> bool:
    """True when every address ``host`` resolves to is a loopback address."""
    h = host.strip().strip("[]")
    if h in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(h).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(h, None)
    except OSError:
        return False
    addrs = {i[4][0] for i in infos}
    return bool(addrs) and all(ipaddress.ip_address(a.split("%")[0]).is_loopback for a in addrs)


def check_bind(host: str, token: str | None, *, what: str = "memtune serve") -> None:
    """Refuse to listen beyond this machine without a token (fail before loading any model)."""
    if token or is_loopback(host):
        return
    raise ConfigError(
        f"{what} refuses to listen on {host!r} without authentication: anyone who can reach this "
        "address could use the model",
        hint=f"export {ENV_API_TOKEN}=<a long random secret> (clients send 'Authorization: Bearer <it>'), "
        "or bind to 127.0.0.1",
    )


class BearerAuthMiddleware:
    """ASGI middleware: every HTTP path except ``open_paths`` needs ``Authorization: Bearer <token>``.

    Middleware (not a route dependency) so the check runs before the body is even read
    and also covers /docs and /openapi.json.
    """

    def __init__(self, app, token: str | None, open_paths: Iterable[str] = ("/health",)) -> None:
        self.app = app
        self.token = token
        self.open_paths = set(open_paths)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or self.token is None or scope.get("path") in self.open_paths:
            await self.app(scope, receive, send)
            return
        given = None
        for name, value in scope.get("headers") or []:
            if name == b"authorization":
                v = value.decode("latin-1")
                if v[:7].lower() == "bearer ":
                    given = v[7:].strip()
                break
        if tokens_match(given, self.token):
            await self.app(scope, receive, send)
            return
        msg = "missing bearer token" if given is None else "invalid bearer token"
        await send_json_error(
            send,
            401,
            f"{msg}: send 'Authorization: Bearer <token>' with the server's {ENV_API_TOKEN}",
            "authentication_error",
            "invalid_api_key",
            extra_headers=[(b"www-authenticate", b"Bearer")],
        )


async def send_json_error(
    send,
    status: int,
    message: str,
    type_: str,
    code: str | None = None,
    extra_headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    """An OpenAI-style ``{"error": {...}}`` response from raw ASGI (before FastAPI runs)."""
    body = json.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers + (extra_headers or [])})
    await send({"type": "http.response.body", "body": body})
