"""A real collector on loopback: uvicorn in a thread, or `advertisex serve` in a process."""

from __future__ import annotations

import atexit
import os
import re
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from advertisex.api import create_app
from advertisex.api.trackers import Trackers
from advertisex.config import Settings

IMP = (
    '{{"impression_id": "{id}", "creative_id": 1, "user_id": 7, '
    '"timestamp": "2026-11-01 10:00:00", "website": "example.com"}}'
)


# One client for the whole run: httpx.get() makes a client (and an SSL context, ~0.1 s) per call.
HTTP = httpx.Client(timeout=60)
atexit.register(HTTP.close)


def ndjson(ids: list[str]) -> bytes:
    return ("\n".join(IMP.format(id=i) for i in ids) + "\n").encode()


@contextmanager
def collector(settings: Settings, kafka: str | None = None) -> Iterator[tuple[str, Trackers]]:
    """The app served by uvicorn on a loopback port; stopped (flushed, store closed) on exit."""
    app = create_app(settings, kafka=kafka)
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the collector did not start"
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", app
    finally:
        server.should_exit = True
        thread.join(30)
        sock.close()


def start_serve(db: Path, *args: str, env: dict[str, str] | None = None) -> tuple[Any, str]:
    """`advertisex serve --port 0` as a process; its base URL from the line it prints."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "advertisex", "serve", "--db", str(db), "--port", "0", *args],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert proc.stderr is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        line = proc.stderr.readline()
        if m := re.search(r"serving on (http://\S+)", line):
            return proc, m.group(1)
        if not line and proc.poll() is not None:
            break
    proc.kill()
    raise AssertionError(f"serve did not start: {proc.stderr.read()}")


def wait_ready(url: str) -> None:
    """The process printed its address before uvicorn's lifespan finished: wait for it."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            httpx.get(url + "/metrics/", timeout=2)
            return
        except httpx.TransportError:
            time.sleep(0.05)
    raise AssertionError("serve did not answer")
