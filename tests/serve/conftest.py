"""Fixtures for the serving tests: a tiny adapter on disk and a real uvicorn server on loopback."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> dict[str, Path]:
    from tests.serve.tiny import build

    return build(tmp_path_factory.mktemp("tiny"))


@pytest.fixture(scope="session")
def tiny_backend(tiny):
    from memtune.serve.loader import load_backend

    return load_backend(tiny["adapter"])


@contextmanager
def live_server(app) -> Iterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1:<free port> in a thread; yield its base URL."""
    import uvicorn

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on", backlog=512))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@pytest.fixture
def serve(tiny_backend):
    """``serve(config=None, retriever=None, backend=None)`` → context manager yielding the base URL."""
    from memtune.serve.app import create_app

    def start(config=None, retriever=None, backend=None):
        return live_server(create_app(backend or tiny_backend, config, retriever))

    return start


@pytest.fixture(scope="package", autouse=True)
def _one_torch_thread():
    """The tiny model gains nothing from threads, and on a shared 2-core box they thrash."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
