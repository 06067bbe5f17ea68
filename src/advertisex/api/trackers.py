"""The ad-server trackers (impression pixel, signed click redirect) as a pure ASGI layer.

A pixel is the hottest route and the simplest: it answers before FastAPI's routing and
dependency solving, with precomputed headers, from the query string, the client's address and
User-Agent. Its event is appended to the on-disk spool by the group-commit `Spooler` and the
hit is answered once the write that holds it returned; without a spool (an in-memory store)
or with `serve --kafka`, it waits for the store commit or the brokers instead.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

from fastapi import FastAPI
from starlette.datastructures import State
from starlette.types import Receive, Scope, Send

from advertisex.api.collector import busy_message, new_id, submit, verify_url
from advertisex.config import Settings
from advertisex.pipeline.gauges import REJECTED_BUSY
from advertisex.pipeline.microbatch import Busy, MicroBatcher
from advertisex.pipeline.spooler import Spooler
from advertisex.schemas.sources import SOURCES, Source
from advertisex.sources.batch import Format
from advertisex.sources.http import Body

# A transparent 1x1 GIF.
PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c000000000100010000020144003b"
)
_NO_STORE = [(b"cache-control", b"no-store, no-cache, must-revalidate"), (b"pragma", b"no-cache")]
_PIXEL_START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"image/gif"),
        (b"content-length", str(len(PIXEL)).encode()),
        *_NO_STORE,
    ],
}
_PIXEL_BODY = {"type": "http.response.body", "body": PIXEL}

_IMP_PARAMS = {
    "imp": "impression_id",
    "uid": "user_id",
    "crid": "creative_id",
    "cid": "campaign_id",
    "site": "site",
    "url": "page_url",
    "bid": "bid_request_id",
    "price": "price",
    "cur": "currency",
}
_CLICK_PARAMS = {
    "click": "event_id",
    "uid": "user_id",
    "cid": "campaign_id",
    "crid": "creative_id",
    "imp": "impression_id",
}


class Trackers:
    """The served ASGI app: `GET /t/imp` and `/t/click` here, everything else to `app`.

    In front of FastAPI rather than inside it: its telemetry, error and body-limit layers
    cost a pixel more than the pixel itself.
    """

    def __init__(self, app: FastAPI) -> None:
        self.app = app
        self.state = app.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            path = scope["path"]
            if path == "/t/imp":
                return await _pixel(self.state, scope, send)
            if path == "/t/click":
                return await _click(self.state, scope, send)
        await self.app(scope, receive, send)


class TrackerSpool:
    """The event loop's side of the spooler: the hits of one loop turn go over together.

    One hand-off (a thread wake-up) per turn rather than per hit, and one wake-up of the loop
    per group written.
    """

    def __init__(self, batcher: MicroBatcher) -> None:
        self._loop = asyncio.get_running_loop()
        self._waiting: list[tuple[Source, bytes, asyncio.Future[None]]] = []
        self.spooler = Spooler(batcher, self._written)

    def add(self, source: Source, line: bytes) -> asyncio.Future[None]:
        """One hit's NDJSON line; the future is done once it is in the spool."""
        fut = self._loop.create_future()
        if not self._waiting:
            self._loop.call_soon(self._hand_off)
        self._waiting.append((source, line, fut))
        return fut

    def close(self) -> None:
        self._hand_off()
        self.spooler.close()

    def _hand_off(self) -> None:
        waiting, self._waiting = self._waiting, []
        if waiting:
            self.spooler.add(waiting)

    def _written(self, tokens: list[Any], error: BaseException | None) -> None:
        self._loop.call_soon_threadsafe(_settle, tokens, error)


def _settle(tokens: list[asyncio.Future[None]], error: BaseException | None) -> None:
    """The spooler's report, on the event loop: each waiting hit goes on (or fails)."""
    for fut in tokens:
        if not fut.done():
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(error)


async def _pixel(state: State, scope: Scope, send: Send) -> None:
    params = parse_qsl(scope["query_string"].decode("latin-1"))
    event = _event(scope, params, _IMP_PARAMS)
    if "impression_id" not in event:  # no impression id from the ad server: one per hit
        event["impression_id"] = new_id()
    failed = await _record(state, scope, "t/imp", SOURCES["impressions"], event)
    if failed is None:
        await send(_PIXEL_START)
        await send(_PIXEL_BODY)
    else:
        await _json(send, *failed)


async def _click(state: State, scope: Scope, send: Send) -> None:
    settings: Settings = state.settings
    if settings.tracker_secret is None:
        msg = "the click tracker is off; set tracker_secret to sign landing URLs"
        return await _json(send, 404, {"error": msg})
    params = parse_qsl(scope["query_string"].decode("latin-1"))
    q = dict(params)
    url = q.get("url", "")
    if not verify_url(settings.tracker_secret.get_secret_value(), url, q.get("sig", "")):
        return await _json(send, 403, {"error": "the landing URL's signature is missing or wrong"})
    event = _event(scope, params, _CLICK_PARAMS)
    event["event_type"] = "click"
    if "click" not in q:  # no click id from the ad server: one per click
        event["event_id"] = new_id()
    failed = await _record(state, scope, "t/click", SOURCES["clicks_conversions"], event)
    if failed is not None:
        return await _json(send, *failed)
    headers = [(b"location", url.encode()), (b"content-length", b"0"), *_NO_STORE]
    await send({"type": "http.response.start", "status": 302, "headers": headers})
    await send({"type": "http.response.body", "body": b""})


def _event(scope: Scope, params: list[tuple[str, str]], names: dict[str, str]) -> dict[str, str]:
    """One event from the query parameters, the client's address and User-Agent."""
    event = {names[k]: v for k, v in params if k in names}
    event["timestamp"] = datetime.now(UTC).isoformat(timespec="milliseconds")
    if client := scope.get("client"):
        event["ip"] = client[0]
    for name, value in scope["headers"]:
        if name == b"user-agent":
            event["user_agent"] = value.decode("latin-1")
            break
    return event


async def _record(
    state: State, scope: Scope, route: str, source: Source, event: dict[str, str]
) -> tuple[int, dict[str, Any], list[tuple[bytes, bytes]]] | None:
    """Keep the event durably; None when done, else the error answer (status, body, headers)."""
    line = json.dumps(event, separators=(",", ":")).encode() + b"\n"
    spool: TrackerSpool | None = state.spool
    try:
        if spool is not None:
            await spool.add(source, line)
            return None
        client = scope.get("client")
        await submit(
            state.batcher, source, Body(Format.NDJSON, line, 1), new_id(), client and client[0]
        )
    except Busy:
        REJECTED_BUSY.labels(route).inc()
        return 503, {"error": busy_message()}, [(b"retry-after", b"1")]
    except Exception as e:  # the spool or the store failed: nothing kept, the client may retry
        return 503, {"error": f"the event could not be kept: {e}"}, [(b"retry-after", b"5")]
    return None


async def _json(
    send: Send,
    status: int,
    body: dict[str, Any],
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    data = json.dumps(body).encode()
    head = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": head + (headers or [])})
    await send({"type": "http.response.body", "body": data})
