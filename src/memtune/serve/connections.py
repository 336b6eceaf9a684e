"""Connection hygiene for the HTTP servers: a request deadline and a connection cap.

uvicorn keeps a connection whose request headers never finish for as long as the
client likes, and accepts connections until the process runs out of descriptors;
a few hundred slow clients ("slowloris") then make every route, ``/health``
included, unreachable, and asyncio logs a traceback for every failed accept.

Here every connection must deliver its request (headers, and the body if any) within
``header_timeout`` seconds of opening or of its previous response, and at most
``max_connections`` are open at once (never more than the descriptor limit leaves
room for). At the cap a new connection takes the place of the one that has waited
longest for its request (a slow client loses its slot, a quick ``/health`` probe gets
one); while nothing can make room, new clients wait in the kernel's listen queue.
These events and failed accepts are logged as one rate-limited warning line, never
a traceback per connection.
"""

from __future__ import annotations

import asyncio
import errno
import logging
import socket
import time
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("memtune.serve")

DEFAULT_HEADER_TIMEOUT = 10.0
DEFAULT_MAX_CONNECTIONS = 512
# Descriptors kept free for everything that is not a client connection: the listening
# socket, the event loop, the store, log files, model files opened on demand.
FD_RESERVE = 64
WARN_INTERVAL = 10.0
ACCEPT_BATCH = 64  # connections accepted per wake-up of the listening socket
RECHECK_DELAY = 0.05  # seconds the listening socket rests while no connection fits
SHORTAGE_DELAY = 0.25  # ... and after accept() found no descriptor left

_BUSY_BODY = (
    b'{"error": {"message": "too many open connections, try again shortly", "type": "server_error", '
    b'"param": null, "code": "server_busy"}}'
)
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\nretry-after: 1\r\n"
    b"connection: close\r\ncontent-length: " + str(len(_BUSY_BODY)).encode() + b"\r\n\r\n" + _BUSY_BODY
)
_LATE = b"HTTP/1.1 408 Request Timeout\r\nconnection: close\r\ncontent-length: 0\r\n\r\n"


@dataclass
class ConnectionLimits:
    """``--header-timeout`` and ``--max-connections``."""

    header_timeout: float = DEFAULT_HEADER_TIMEOUT
    max_connections: int = DEFAULT_MAX_CONNECTIONS

    def problems(self) -> list[str]:
        out = []
        if not self.header_timeout > 0:
            out.append(f"header-timeout must be more than 0 seconds (got {self.header_timeout})")
        if self.max_connections < 1:
            out.append(f"max-connections must be at least 1 (got {self.max_connections})")
        return out


def descriptor_budget(wanted: int, reserve: int = FD_RESERVE) -> tuple[int, str | None]:
    """How many connections the descriptor limit allows, raising the soft limit if it may.

    Returns the cap to use and, when it is below ``wanted``, a note saying why.
    """
    try:
        import resource
    except ImportError:  # pragma: no cover - Windows has no RLIMIT_NOFILE
        return wanted, None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    needed = wanted + reserve
    if soft != resource.RLIM_INFINITY and soft < needed:
        target = needed if hard == resource.RLIM_INFINITY else min(needed, hard)
        if target > soft:
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
                soft = target
            except (ValueError, OSError):
                pass
    if soft == resource.RLIM_INFINITY or soft >= needed:
        return wanted, None
    cap = soft - reserve if soft > 2 * reserve else max(1, soft // 2)
    return cap, (
        f"max-connections lowered from {wanted} to {cap}: the open-file limit is {soft} and "
        f"{soft - cap} descriptors stay free for the server itself (raise the limit with ulimit -n)"
    )


class ConnectionGuard:
    """Counts open connections, times their requests, and decides who is dropped at the cap.

    ``held`` is every connection whose socket is still open (those being closed included),
    ``waiting`` the live ones still owing a request, oldest first, and ``unconfirmed``
    the sockets accepted but not yet handed to a protocol (a batch is accepted before any
    protocol runs), which the accept gate counts too.

    A connection may be dropped for a newcomer only after ``grace`` seconds, so a quick
    client always has time to send its request; newcomers for whom there is no room
    wait in the kernel's listen queue (first come, first served) instead of being
    accepted and thrown out.
    """

    def __init__(self, limits: ConnectionLimits, *, slack: int = FD_RESERVE // 2,
                 warn_interval: float = WARN_INTERVAL) -> None:
        self.limits = limits
        self.max_connections = limits.max_connections
        self.slack = max(1, slack)
        self.grace = min(1.0, limits.header_timeout / 4)
        self.held: set[Any] = set()
        self.closing: set[Any] = set()
        self.waiting: dict[Any, float] = {}
        self.unconfirmed: dict[int, tuple[float, bool]] = {}
        self.totals = {"evicted": 0, "refused": 0, "header_timeouts": 0, "accept_failures": 0}
        self._pending = dict.fromkeys(self.totals, 0)
        self._restore_at = 0.0
        self._warn_interval = warn_interval
        self._last_warn = -1e9
        self._flush: asyncio.TimerHandle | None = None

    # ------------------------------------------------------------- accepting
    def may_accept(self) -> bool:
        """Whether one more connection fits: a free slot, or one that may be dropped for it.

        Also False while the descriptors in use or in transit (being closed, being handed
        to a protocol) reach the cap plus a little slack.
        """
        now = time.monotonic()
        if self._restore_at and now > self._restore_at:
            self._restore_at = 0.0
            self.max_connections = self.limits.max_connections
        if self.unconfirmed:  # a socket asyncio failed to hand over must not hold its place forever
            for fd in [fd for fd, (t, _) in self.unconfirmed.items() if now - t > 5.0]:
                del self.unconfirmed[fd]
        if len(self.held) + len(self.unconfirmed) >= self.max_connections + self.slack:
            return False
        short = len(self.held) - len(self.closing) + len(self.unconfirmed) + 1 - self.max_connections
        return short <= 0 or self._droppable(short, now) >= short

    def _droppable(self, enough: int, now: float) -> int:
        """How many waiting connections are past their grace (counting stops at ``enough``)."""
        n = 0
        for t in self.waiting.values():
            if now - t < self.grace or n >= enough:
                break
            n += 1
        return n

    def accepted(self, fd: int, headers_in: bool) -> None:
        """``headers_in``: the whole header block had already arrived when the socket was accepted."""
        self.unconfirmed[fd] = (time.monotonic(), headers_in)

    def accept_failed(self) -> None:
        """Out of descriptors anyway (files opened elsewhere, a system-wide limit).

        Lower the cap to what the process really has room for, dropping the connections
        that wait longest for their requests, so that a quick request gets a descriptor
        when accepting resumes. The configured cap comes back after a quiet minute.
        """
        self.note("accept_failures")
        self._restore_at = time.monotonic() + 60.0
        room = len(self.held) + len(self.unconfirmed) - self.slack  # every descriptor we hold, less the slack
        self.max_connections = max(1, min(self.max_connections, room))
        while self.waiting and len(self.held) - len(self.closing) > self.max_connections:
            next(iter(self.waiting)).close_quietly()
            self.note("evicted")

    # ------------------------------------------------------------ bookkeeping
    def admit(self, proto: Any, fd: int | None) -> tuple[bool, bool]:
        """Make room for ``proto``: (admitted, its headers had arrived by the time it was accepted).

        Not admitted when every slot holds a request being served.
        """
        _, headers_in = self.unconfirmed.pop(fd, (0.0, False)) if fd is not None else (0.0, False)
        self.held.add(proto)
        if len(self.held) - len(self.closing) > self.max_connections:
            if not self._droppable(1, time.monotonic()):  # they sent their requests meanwhile
                self.closing.add(proto)
                self.note("refused")
                return False, headers_in
            next(iter(self.waiting)).close_quietly()
            self.note("evicted")
        return True, headers_in

    def arm(self, proto: Any) -> None:
        """``proto`` owes a request: it may be dropped to make room (the longest-waiting first)."""
        self.waiting.pop(proto, None)
        self.waiting[proto] = time.monotonic()

    def disarm(self, proto: Any) -> None:
        self.waiting.pop(proto, None)

    def closing_now(self, proto: Any) -> None:
        self.waiting.pop(proto, None)
        self.closing.add(proto)

    def lost(self, proto: Any) -> None:
        self.held.discard(proto)
        self.closing.discard(proto)
        self.waiting.pop(proto, None)

    # ---------------------------------------------------------------- logging
    def note(self, event: str) -> None:
        """Count an event; warn at once, then at most every ``warn_interval`` seconds."""
        self.totals[event] += 1
        self._pending[event] += 1
        if not self._worth_warning():
            return  # slow or idle clients timing out on their own are routine
        now = time.monotonic()
        if now - self._last_warn >= self._warn_interval:
            self._warn(now)
        elif self._flush is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                return
            self._flush = loop.call_later(self._last_warn + self._warn_interval - now, self._flush_now)

    def _worth_warning(self) -> bool:
        return any(n for k, n in self._pending.items() if k != "header_timeouts")

    def _flush_now(self) -> None:
        self._flush = None
        if self._worth_warning():
            self._warn(time.monotonic())

    def _warn(self, now: float) -> None:
        p = self._pending
        parts = []
        if p["evicted"]:
            parts.append(f"{p['evicted']} still waiting for their request closed to make room")
        if p["refused"]:
            parts.append(f"{p['refused']} refused with 503 (every slot busy with a request)")
        if p["accept_failures"]:
            parts.append(f"{p['accept_failures']} accept() failure(s) for lack of descriptors")
        if p["header_timeouts"]:
            late = p["header_timeouts"]
            parts.append(f"{late} closed after {self.limits.header_timeout:g}s without a complete request")
        logger.warning(
            "connection limit (%d) reached: %s; next notice in %gs at the earliest",
            self.max_connections, "; ".join(parts), self._warn_interval,
        )
        self._pending = dict.fromkeys(self.totals, 0)
        self._last_warn = now


_OUT_OF_DESCRIPTORS = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class Acceptor:
    """Accepts connections on a listening socket for as long as the guard says they fit.

    It replaces asyncio's own accept loop (``loop.create_server``), which accepts up to
    ``backlog`` sockets per wake-up whatever the process can hold, and on CPython 3.11
    answers a descriptor shortage by logging a traceback and scheduling one more retry
    for every further failed call of the same batch: that is how 1,100 slow clients
    wrote 50 MB of log in seconds. Here, when the guard has no room, the listening socket
    is left alone for a moment (clients wait in the kernel's listen queue, first come,
    first served) and a shortage is one counted notice. Only public asyncio API is used.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, sock: socket.socket, factory: Any, guard: ConnectionGuard,
                 backlog: int) -> None:
        self.loop, self.sock, self.factory, self.guard = loop, sock, factory, guard
        self._fd = sock.fileno()
        self._timer: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Task[Any]] = set()
        self._closed = False
        sock.setblocking(False)
        sock.listen(backlog)
        loop.add_reader(self._fd, self._on_readable)

    def _on_readable(self) -> None:
        for _ in range(ACCEPT_BATCH):
            if not self.guard.may_accept():
                self._pause(RECHECK_DELAY)
                return
            try:
                conn, _addr = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:
                if exc.errno in _OUT_OF_DESCRIPTORS:
                    self.guard.accept_failed()
                else:
                    logger.warning("accept() failed: %s", exc)
                self._pause(SHORTAGE_DELAY)
                return
            conn.setblocking(False)
            self.guard.accepted(conn.fileno(), _headers_arrived(conn))
            task = self.loop.create_task(self._hand_over(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _hand_over(self, conn: socket.socket) -> None:
        fd = conn.fileno()
        try:
            await self.loop.connect_accepted_socket(self.factory, conn)
        except Exception as exc:  # noqa: BLE001 - one bad socket must not stop the server
            self.guard.unconfirmed.pop(fd, None)
            conn.close()
            logger.debug("dropped a connection before it started: %r", exc)

    def _pause(self, delay: float) -> None:
        self.loop.remove_reader(self._fd)
        self._timer = self.loop.call_later(delay, self._resume)

    def _resume(self) -> None:
        self._timer = None
        if not self._closed:
            self.loop.add_reader(self._fd, self._on_readable)

    # the part of asyncio.Server that uvicorn's shutdown uses
    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._timer is not None:
            self._timer.cancel()
        self.loop.remove_reader(self._fd)

    async def wait_closed(self) -> None:
        if self._tasks:
            await asyncio.wait(list(self._tasks), timeout=5)


def _headers_arrived(conn: socket.socket) -> bool:
    """Whether a complete header block is already waiting on ``conn`` (a quick client, not a slow one)."""
    flags = socket.MSG_PEEK | getattr(socket, "MSG_DONTWAIT", 0)
    if not flags & ~socket.MSG_PEEK:
        return False  # no non-blocking peek on this platform
    try:
        return b"\r\n\r\n" in conn.recv(8192, flags)
    except OSError:
        return False


def guarded_protocol(guard: ConnectionGuard) -> type:
    """uvicorn's h11 protocol with the header deadline and the connection cap of ``guard``."""
    from uvicorn.protocols.http.h11_impl import H11Protocol

    timeout = guard.limits.header_timeout

    class GuardedH11Protocol(H11Protocol):
        _refused = False
        _deadline: asyncio.TimerHandle | None = None
        _got_bytes = False

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            sock = transport.get_extra_info("socket")
            admitted, headers_in = guard.admit(self, sock.fileno() if sock is not None else None)
            if not admitted:
                self._refused = True
                self.transport = transport
                transport.write(_BUSY)
                transport.close()
                return
            super().connection_made(transport)
            self._arm(evictable=not headers_in)

        def connection_lost(self, exc: Exception | None) -> None:
            self._disarm()
            guard.lost(self)
            if self._refused:
                return
            super().connection_lost(exc)

        def data_received(self, data: bytes) -> None:
            if self._refused:
                return
            self._got_bytes = True
            super().data_received(data)

        def handle_events(self) -> None:
            super().handle_events()
            c = self.cycle
            if c is not None and not c.more_body and not c.response_complete and not self.transport.is_closing():
                self._disarm()  # the whole request is in: the app owns the connection now

        def on_response_complete(self) -> None:
            super().on_response_complete()
            if not self.transport.is_closing() and (self.cycle is None or self.cycle.response_complete):
                self._arm()  # the next request on this keep-alive connection gets a fresh deadline

        # --------------------------------------------------------------- guard
        def _arm(self, evictable: bool = True) -> None:
            self._disarm()
            self._got_bytes = False
            if evictable:
                guard.arm(self)
            self._deadline = self.loop.call_later(timeout, self._request_late)

        def _disarm(self) -> None:
            guard.disarm(self)
            if self._deadline is not None:
                self._deadline.cancel()
                self._deadline = None

        def _request_late(self) -> None:
            self._deadline = None
            if self.transport is None or self.transport.is_closing():
                return
            guard.note("header_timeouts")
            c = self.cycle
            started = c is not None and c.response_started and not c.response_complete
            if self._got_bytes and not started:  # a request had begun: say why it is cut off
                self._disarm()
                guard.closing_now(self)
                self.transport.write(_LATE)
                self.transport.close()
            else:
                self.close_quietly()

        def close_quietly(self) -> None:
            """Drop the connection at once (no goodbye, no h11 bookkeeping): it frees its descriptor next turn."""
            self._disarm()
            guard.closing_now(self)
            if self.transport is not None and not self.transport.is_closing():
                self.transport.abort()

    return GuardedH11Protocol


def make_server(app: Any, *, host: str, port: int, log_level: str, limits: ConnectionLimits, **config: Any):
    """A uvicorn Server for ``app`` that enforces ``limits``, and its listening socket.

    Run it with ``server.run(sockets=[sock])``.
    """
    import uvicorn

    cap, note = descriptor_budget(limits.max_connections)
    if note:
        logger.warning(note)
    guard = ConnectionGuard(ConnectionLimits(limits.header_timeout, cap))
    # loop="asyncio": the acceptor relies on add_reader over a plain listening socket.
    cfg = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, http=guarded_protocol(guard), loop="asyncio", **config
    )

    class GuardedServer(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            """uvicorn's startup, with the :class:`Acceptor` in place of ``loop.create_server``."""
            await self.lifespan.startup()
            if self.lifespan.should_exit:
                self.should_exit = True
                return
            loop = asyncio.get_running_loop()

            def factory() -> asyncio.Protocol:
                return cfg.http_protocol_class(  # type: ignore[call-arg]
                    config=cfg, server_state=self.server_state, app_state=self.lifespan.state, _loop=loop
                )

            self.servers = [Acceptor(loop, s, factory, guard, cfg.backlog) for s in sockets or []]
            self.started = True

    server = GuardedServer(cfg)
    server.guard = guard  # type: ignore[attr-defined]
    sock = cfg.bind_socket()  # logs "Uvicorn running on ..." as uvicorn.run would
    return server, sock


def serve_http(app: Any, *, host: str, port: int, log_level: str, limits: ConnectionLimits) -> None:
    """Run ``app`` until interrupted (what ``memtune serve`` and ``memtune mcp --http`` call)."""
    _log_to_stderr(log_level)
    server, sock = make_server(app, host=host, port=port, log_level=log_level, limits=limits)
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()


def _log_to_stderr(log_level: str) -> None:
    """memtune's own server notices go to stderr like uvicorn's, at the same level."""
    if logger.handlers:
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s:     %(message)s"))
    logger.addHandler(handler)
    level = logging.getLevelName(log_level.upper())
    logger.setLevel(level if isinstance(level, int) else logging.INFO)
    logger.propagate = False
