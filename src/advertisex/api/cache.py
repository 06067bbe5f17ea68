"""Answers of the figures routes, served from memory before FastAPI while the data is the same.

A pure ASGI layer: a GET of a cached route is looked up by its path, its query parameters (in
order per name, whatever the order of the names) and whether it asks for CSV; a hit is answered
with bytes and headers made once, without routing, parameter parsing or a thread. A miss goes
to the app, whose 200 answer is kept; errors are never kept. Each answer carries an ETag (a hash
of its bytes) and `Cache-Control: no-cache`, so a browser revalidates and gets a 304.

The data version (batches, rollup runs, creatives: `analytics.overview.data_version`) is read on
a timer thread every `query_cache_ms`, never on a request. An answer is kept under the version
read before it was computed, so it is served at most `query_cache_ms` (plus one version read)
after a commit that changes it. `query_cache_ms = 0` turns the cache off: every request is
computed.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import logging
import threading
from collections import OrderedDict
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from advertisex.analytics.overview import data_version
from advertisex.config import Settings
from advertisex.store import Store
from advertisex.store.duckdb import configure

log = logging.getLogger("advertisex.serve")

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Key = tuple[str, tuple[tuple[str, str], ...], bool]

ENTRIES = 256  # distinct answers kept


class DataVersion:
    """The store's data version, read every `period` seconds on a thread and a cursor of its
    own; `value` is the last one read."""

    def __init__(self, store: Store, settings: Settings, period: float) -> None:
        self._cursor = store.con.cursor()
        configure(self._cursor, settings)
        self._period = period
        self.value = data_version(self._cursor)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="advx-version", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self._period):
            try:
                self.value = data_version(self._cursor)
            except Exception:  # logged; answers wait for the next read
                log.exception("serve: reading the data version failed")

    def close(self) -> None:
        self._stop.set()
        self._thread.join()
        self._cursor.close()


@dataclass(frozen=True)
class _Answer:
    version: tuple[Any, ...]
    etag: bytes
    start: Message  # http.response.start, headers made once
    body: Message  # http.response.body
    not_modified: Message  # the 304's http.response.start


class AnswerCache:
    """The answers kept and the version they were computed under; `version` is set while the
    store is open (the app's lifespan) and None otherwise (nothing is cached then)."""

    def __init__(self, paths: frozenset[str], settings: Settings) -> None:
        self.paths = paths
        token = settings.query_token
        self.bearer = None if token is None else b"Bearer " + token.get_secret_value().encode()
        self.period = settings.query_cache_ms / 1000
        self.version: DataVersion | None = None
        self.answers: OrderedDict[Key, _Answer] = OrderedDict()
        # One computation per key and version: later askers wait for the first one.
        self.pending: dict[Key, asyncio.Event] = {}

    def open(self, store: Store, settings: Settings) -> None:
        if self.period > 0:
            self.version = DataVersion(store, settings, self.period)

    def close(self) -> None:
        if self.version is not None:
            self.version.close()
            self.version = None
        self.answers.clear()

    def keep(self, key: Key, version: tuple[Any, ...], start: Message, body: bytes) -> _Answer:
        etag = b'"' + hashlib.blake2b(body, digest_size=12).hexdigest().encode() + b'"'
        common = [(b"etag", etag), (b"cache-control", b"no-cache"), (b"vary", b"Accept")]
        headers = [
            (k, v) for k, v in start["headers"] if k.lower() in (b"content-type", b"content-length")
        ]
        answer = _Answer(
            version=version,
            etag=etag,
            start={"type": "http.response.start", "status": 200, "headers": headers + common},
            body={"type": "http.response.body", "body": body, "more_body": False},
            not_modified={"type": "http.response.start", "status": 304, "headers": common},
        )
        self.answers[key] = answer
        self.answers.move_to_end(key)
        while len(self.answers) > ENTRIES:
            self.answers.popitem(last=False)
        return answer


class ServeCached:
    """The ASGI layer in front of the app (see the module's docstring)."""

    def __init__(self, app: ASGIApp, cache: AnswerCache) -> None:
        self.app = app
        self.cache = cache

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        cache = self.cache
        version = cache.version
        if (
            version is None
            or scope["type"] != "http"
            or scope["method"] != "GET"
            or scope["path"] not in cache.paths
        ):
            await self.app(scope, receive, send)
            return
        csv = False
        auth = if_none_match = b""
        for name, value in scope["headers"]:
            if name == b"accept":
                csv = b"text/csv" in value
            elif name == b"authorization":
                auth = value
            elif name == b"if-none-match":
                if_none_match = value
        if cache.bearer is not None and not hmac.compare_digest(auth.strip(), cache.bearer):
            await self.app(scope, receive, send)  # the app answers 401
            return
        # Names sorted, the values of one name kept in their order (group_by=a&group_by=b).
        query = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
        key: Key = (scope["path"], tuple(sorted(query, key=lambda kv: kv[0])), csv)
        now = version.value
        answer = cache.answers.get(key)
        if answer is not None and answer.version == now:
            cache.answers.move_to_end(key)
        else:
            if (pending := cache.pending.get(key)) is not None:
                await pending.wait()
                answer = cache.answers.get(key)
            # Kept under the version read when this request came, or a later one: fresh enough.
            if answer is None or answer.version not in (now, version.value):
                answer = await self._compute(scope, receive, send, key, version.value)
                if answer is None:
                    return  # not a 200: the app has answered itself
        if if_none_match and answer.etag in if_none_match:
            await send(answer.not_modified)
            await send({"type": "http.response.body", "body": b"", "more_body": False})
            return
        await send(answer.start)
        await send(answer.body)

    async def _compute(
        self, scope: Scope, receive: Receive, send: Send, key: Key, version: tuple[Any, ...]
    ) -> _Answer | None:
        """Run the app with its answer held back; keep a 200, pass anything else on."""
        cache = self.cache
        done = cache.pending[key] = asyncio.Event()
        messages: list[Message] = []

        async def hold(message: Message) -> None:
            messages.append(message)

        try:
            await self.app(scope, receive, hold)
        finally:
            if cache.pending.get(key) is done:
                del cache.pending[key]
            done.set()
        bodies = [m for m in messages if m["type"] == "http.response.body"]
        start = messages[0] if messages else {}
        if start.get("status") != 200 or not bodies or bodies[-1].get("more_body", False):
            for m in messages:
                await send(m)
            return None
        return cache.keep(key, version, start, b"".join(m.get("body", b"") for m in bodies))
