"""Real local receivers for alert sinks: an HTTP server and an SMTP server on loopback."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from aiosmtpd.controller import Controller


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Received:
    requests: list[tuple[str, Any]] = field(default_factory=list)  # (path, JSON body) accepted
    refused: list[tuple[str, Any]] = field(default_factory=list)  # answered with an error
    event: threading.Event = field(default_factory=threading.Event)


@contextmanager
def http_receiver(fail_first: int = 0, status: int = 503) -> Iterator[tuple[str, Received]]:
    """An HTTP server on 127.0.0.1 that records every POSTed JSON body; yields its base URL.
    The first `fail_first` requests are answered `status` (a receiver restarting) instead."""
    got = Received()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if len(got.refused) < fail_first:
                got.refused.append((self.path, json.loads(body)))
                self.send_response(status)
                self.end_headers()
                return
            got.requests.append((self.path, json.loads(body)))
            got.event.set()
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", got
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    fail_first: int = 0  # answer the first messages with this many temporary failures
    refused: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.refused < self.fail_first:
            self.refused += 1
            return "451 4.3.0 mailbox busy, try again later"
        msg = message_from_bytes(envelope.content)
        msg["X-Rcpt"] = ", ".join(envelope.rcpt_tos)
        self.messages.append(msg)
        return "250 OK"


@contextmanager
def smtp_receiver(fail_first: int = 0) -> Iterator[tuple[int, Mailbox]]:
    """aiosmtpd on 127.0.0.1; yields its port and the messages it received. The first
    `fail_first` messages get a temporary failure (451) instead."""
    box = Mailbox(fail_first=fail_first)
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        yield controller.port, box
    finally:
        controller.stop()
