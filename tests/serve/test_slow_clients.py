"""Slow clients against the real HTTP server under a low descriptor limit: /health keeps answering.

The server runs in a subprocess with RLIMIT_NOFILE=256 and is attacked by more slow
clients than that limit allows, each sending a partial request a byte at a time and
reconnecting as soon as it is dropped. Before the connection guard, this exhausted
the descriptors, made /health unreachable and wrote tracebacks by the megabyte.
The backend is a stub (no torch import) so the whole file stays within seconds; the
flags that reach serve_http are checked in test_cli.
"""

from __future__ import annotations

import asyncio
import os
import resource
import socket
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import httpx
import pytest

pytestmark = pytest.mark.timeout(60)

NOFILE = 256
SLOW_CLIENTS = 300  # more than NOFILE
ATTACK_SECONDS = 4.0
HEADER_TIMEOUT = 1.0

SERVER = r"""
import os, sys
from memtune.serve.app import create_app
from memtune.serve.connections import ConnectionLimits, serve_http
from memtune.serve.engine import Completion

class Stub:
    model_id = "stub"
    def generate(self, messages, params, *, on_text=None, cancel=None):
        return Completion("ok", 1, 1, "stop")

port, header_timeout, hog = int(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])
held_elsewhere = [open(os.devnull) for _ in range(hog)]  # descriptors the guard does not know about
serve_http(create_app(Stub()), host="127.0.0.1", port=port, log_level="info",
           limits=ConnectionLimits(header_timeout=header_timeout, max_connections=1000))
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _low_nofile() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))


def _start(tmp_path: Path, hog: int = 0):
    port = _free_port()
    log = tmp_path / "server.log"
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    with open(log, "wb") as fh:
        proc = subprocess.Popen(
            [sys.executable, "-c", SERVER, str(port), str(HEADER_TIMEOUT), str(hog)],
            stdout=fh, stderr=subprocess.STDOUT, preexec_fn=_low_nofile, env=env,
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return proc, url, port, log
        except httpx.HTTPError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise RuntimeError("server did not start:\n" + log.read_text(errors="replace")[-3000:])
        time.sleep(0.1)


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _slow_client(port: int, stop: float, drops: list[float]) -> None:
    """A partial request line, then one header byte every 0.2 s; reconnect when dropped."""
    while time.monotonic() < stop:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        t0 = time.monotonic()
        try:
            writer.write(b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            while time.monotonic() < stop:
                writer.write(b"a")
                await writer.drain()
                try:
                    await asyncio.wait_for(reader.read(4096), 0.2)
                    drops.append(time.monotonic() - t0)  # answered (408) or closed by the server
                    break
                except TimeoutError:
                    pass
        except OSError:
            drops.append(time.monotonic() - t0)
        finally:
            writer.close()
        await asyncio.sleep(0.02)


async def _probe(url: str, stop: float, seen: list[tuple[object, float]]) -> None:
    """/health (a fresh connection each time) and, now and then, a real POST /ask."""
    async with httpx.AsyncClient(timeout=5, limits=httpx.Limits(max_keepalive_connections=0)) as client:
        i = 0
        while time.monotonic() < stop:
            t0 = time.monotonic()
            try:
                if i % 4 == 3:
                    r = await client.post(f"{url}/ask", json={"question": "still there?", "max_tokens": 2})
                else:
                    r = await client.get(f"{url}/health")
                seen.append((r.status_code, time.monotonic() - t0))
            except httpx.HTTPError as exc:
                seen.append((type(exc).__name__, time.monotonic() - t0))
            i += 1
            await asyncio.sleep(0.2)


async def _keep_alive(url: str, stop: float, seen: list[object]) -> None:
    """One client reusing a single connection with pauses shorter than the header timeout."""
    async with httpx.AsyncClient(timeout=5, limits=httpx.Limits(max_connections=1)) as client:
        while time.monotonic() < stop:
            try:
                seen.append((await client.get(f"{url}/health")).status_code)
            except httpx.HTTPError as exc:
                seen.append(type(exc).__name__)
            await asyncio.sleep(0.5)


def _attack(url: str, port: int):
    async def main():
        stop = time.monotonic() + ATTACK_SECONDS
        drops: list[float] = []
        probes: list[tuple[object, float]] = []
        kept: list[object] = []
        slow = [_slow_client(port, stop, drops) for _ in range(SLOW_CLIENTS)]
        await asyncio.sleep(0)  # let the slow clients connect first
        await asyncio.wait_for(asyncio.gather(*slow, _probe(url, stop, probes), _keep_alive(url, stop, kept)), 30)
        return drops, probes, kept

    return asyncio.run(main())


async def _one_slow(port: int, payload: bytes) -> tuple[float, bytes]:
    """Send ``payload`` (an unfinished request) and wait: how long until the server ends it, and what it said."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    t0 = time.monotonic()
    writer.write(payload)
    await writer.drain()
    try:
        said = await asyncio.wait_for(reader.read(), 10)
    except OSError:
        said = b""
    writer.close()
    return time.monotonic() - t0, said


def _unfinished_requests(port: int):
    async def main():
        partial = [b"GET /health HTTP/1.1\r\nHost: x\r\n"] * 5
        no_body = [b"POST /ask HTTP/1.1\r\nHost: x\r\nContent-Length: 50\r\n\r\n{"] * 3  # the body never comes
        silent = [b""] * 2
        return await asyncio.gather(*(_one_slow(port, p) for p in partial + no_body + silent))

    return asyncio.run(main())


def _stop(proc) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _assert_health_throughout(probes, kept) -> None:
    statuses = Counter(s for s, _ in probes)
    assert len(probes) >= ATTACK_SECONDS, probes  # it kept answering, not one slow answer at the end
    assert set(statuses) == {200}, statuses
    assert max(t for _, t in probes) < 4.0
    assert kept and set(kept) == {200}, kept


def test_slow_clients_cannot_make_health_unreachable(tmp_path, capsys):
    proc, url, port, log = _start(tmp_path)
    try:
        drops, probes, kept = _attack(url, port)
        after = httpx.get(f"{url}/health", timeout=5)
        cpu0 = _cpu_seconds(proc.pid)
        time.sleep(1.0)
        idle_cpu = _cpu_seconds(proc.pid) - cpu0
        unfinished = _unfinished_requests(port)
        assert proc.poll() is None
    finally:
        _stop(proc)
    text = log.read_text(errors="replace")
    with capsys.disabled():
        print(f"\nslow clients: {SLOW_CLIENTS} for {ATTACK_SECONDS}s -> {len(drops)} dropped by the server; "
              f"{len(probes)} probes {dict(Counter(s for s, _ in probes))}, slowest {max(t for _, t in probes):.2f}s; "
              f"log {len(text.encode())} bytes")

    _assert_health_throughout(probes, kept)
    assert after.status_code == 200
    assert len(drops) >= SLOW_CLIENTS  # the slow ones were closed, again and again, not kept
    assert idle_cpu < 0.5  # nothing spins once the attack is over
    for took, said in unfinished:  # under the cap: each one is closed by the deadline, not before
        assert HEADER_TIMEOUT * 0.9 <= took <= HEADER_TIMEOUT + 3, unfinished
    assert [said.split(b"\r\n")[0] for _, said in unfinished[:8]] == [b"HTTP/1.1 408 Request Timeout"] * 8
    assert [said for _, said in unfinished[8:]] == [b"", b""]  # a client that sent nothing is just closed
    assert len(text.encode()) < 200_000
    assert "Traceback" not in text
    assert "max-connections lowered from 1000 to 192: the open-file limit is 256" in text
    warnings = [ln for ln in text.splitlines() if "connection limit (192) reached" in ln]
    assert 1 <= len(warnings) <= 3, warnings  # one notice per 10 s, not one per connection


def test_descriptors_used_elsewhere_run_out_without_spinning_or_tracebacks(tmp_path):
    """Descriptors the guard does not count (files held elsewhere) make accept() fail: the cap adapts."""
    proc, url, port, log = _start(tmp_path, hog=150)
    try:
        _drops, probes, kept = _attack(url, port)
        cpu0 = _cpu_seconds(proc.pid)
        time.sleep(1.0)
        idle_cpu = _cpu_seconds(proc.pid) - cpu0
        after = httpx.get(f"{url}/health", timeout=5)
    finally:
        _stop(proc)
    text = log.read_text(errors="replace")
    _assert_health_throughout(probes, kept)
    assert after.status_code == 200
    assert idle_cpu < 0.5
    assert "accept() failure(s) for lack of descriptors" in text
    assert "Traceback" not in text and "Too many open files" not in text
    assert len(text.encode()) < 200_000


@pytest.mark.parametrize("cmd", [["serve", "ADAPTER"], ["mcp", "--http"]])
def test_invalid_connection_limits_are_refused_before_loading(tmp_path, cmd):
    from typer.testing import CliRunner

    from memtune.cli import app

    cmd = [str(tmp_path / "missing") if c == "ADAPTER" else c for c in cmd]
    r = CliRunner().invoke(app, [*cmd, "--header-timeout", "0", "--max-connections", "0"])
    assert r.exit_code == 2, r.output
    assert "header-timeout must be more than 0 seconds (got 0.0)" in r.output
    assert "max-connections must be at least 1 (got 0)" in r.output
