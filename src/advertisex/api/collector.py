"""Collector routes: POST bodies of events (the trackers are in trackers.py).

Thin: each route checks access and size, turns the body into records (sources/http.py) and
waits for the micro-batcher to commit them; the answer reports what became of them.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import itertools
import secrets
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from advertisex.config import Settings
from advertisex.errors import InputError
from advertisex.pipeline.forward import KafkaForwarder
from advertisex.pipeline.gauges import REJECTED_BUSY
from advertisex.pipeline.microbatch import Busy, MicroBatcher, RequestCounts
from advertisex.schemas.sources import SOURCES, Source
from advertisex.sources.batch import Format
from advertisex.sources.http import Body, TooLarge, gunzip, parse_body

router = APIRouter()

# Ids for requests and clicks: random per process, then a counter (os.urandom per hit cost
# ~180 us here, a third of a pixel's time).
_PROCESS = secrets.token_hex(8)
_SEQ = itertools.count()


def new_id() -> str:
    return f"{_PROCESS}-{next(_SEQ)}"


def sign_url(secret: str, url: str) -> str:
    """The click tracker's signature of a landing URL: hex HMAC-SHA256."""
    return hmac.new(secret.encode(), url.encode(), hashlib.sha256).hexdigest()


def verify_url(secret: str, url: str, sig: str) -> bool:
    """A landing URL the click tracker may redirect to: http(s) and signed with `secret`."""
    return url.startswith(("https://", "http://")) and hmac.compare_digest(
        sig, sign_url(secret, url)
    )


def busy_message() -> str:
    return "the collector is busy; retry after the delay in Retry-After"


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message, **extra}, status_code=status)


def _busy(route: str) -> JSONResponse:
    REJECTED_BUSY.labels(route).inc()
    return JSONResponse(
        {"error": busy_message()},
        status_code=503,
        headers={"Retry-After": "1"},
    )


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"body of {declared} bytes is over the limit of {limit}")
    parts: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge(f"body is over the limit of {limit} bytes")
        parts.append(chunk)
    return b"".join(parts)


def _authorized(settings: Settings, request: Request, source: str) -> bool:
    keys = settings.collector_api_keys
    if not keys:
        return True  # no keys: `serve` listens on loopback only
    expected = keys.get(source)
    given = request.headers.get("x-api-key", "")
    return expected is not None and hmac.compare_digest(
        given.encode(), expected.get_secret_value().encode()
    )


async def submit(
    batcher: MicroBatcher | KafkaForwarder,
    source: Source,
    body: Body,
    request_id: str,
    remote: str | None,
) -> RequestCounts:
    """Queue a body and wait for its commit (or the brokers); Busy when the queue is full."""
    return await asyncio.wrap_future(batcher.submit(source, body, request_id, remote))


async def _commit(
    request: Request, route: str, source: str, body: Body, request_id: str
) -> RequestCounts | JSONResponse:
    batcher: MicroBatcher | KafkaForwarder = request.app.state.batcher
    remote = request.client.host if request.client else None
    try:
        return await submit(batcher, SOURCES[source], body, request_id, remote)
    except Busy:
        return _busy(route)
    except InputError as e:  # a body this sink cannot take (serve --kafka)
        return _error(400, e.message, request_id=request_id)
    except Exception as e:  # the store failed: nothing was committed, the client may retry
        return JSONResponse(
            {"error": f"the store failed: {e}", "request_id": request_id},
            status_code=503,
            headers={"Retry-After": "5"},
        )


async def _ingest(request: Request, route: str, source: str, *, csv_default: bool) -> Response:
    settings: Settings = request.app.state.settings
    if not _authorized(settings, request, source):
        return _error(401, f"missing or wrong X-API-Key for {source}")
    request_id = request.headers.get("x-request-id") or new_id()
    limit = settings.collector_max_body_bytes
    try:
        body = await _read_body(request, limit)
        if request.headers.get("content-encoding", "").lower() == "gzip":
            body = gunzip(body, limit)
        records = parse_body(
            f"http:{request_id}",
            body,
            content_type=request.headers.get("content-type", ""),
            csv_default=csv_default,
            registry=request.app.state.registry,
            batch_bytes=settings.batch_bytes,
        )
    except TooLarge as e:
        return _error(413, e.message)
    except InputError as e:
        return _error(400, e.message, request_id=request_id)
    if records.fmt is Format.NDJSON and records.records == 0:
        return _error(400, "the body holds no records", request_id=request_id)
    result = await _commit(request, route, source, records, request_id)
    if isinstance(result, JSONResponse):
        return result
    nothing = result.accepted == 0 and result.duplicates == 0 and result.queued == 0
    status = 400 if nothing else 202
    return JSONResponse(result.to_dict(), status_code=status)


@router.post("/v1/impressions", status_code=202)
async def post_impressions(request: Request) -> Response:
    """Impressions: a JSON object, a JSON array or NDJSON (gzip accepted)."""
    return await _ingest(request, "impressions", "impressions", csv_default=False)


@router.post("/v1/events", status_code=202)
async def post_events(request: Request) -> Response:
    """Clicks and conversions: CSV with a header (or JSON)."""
    return await _ingest(request, "events", "clicks_conversions", csv_default=True)


@router.post("/v1/bid-requests", status_code=202)
async def post_bid_requests(request: Request) -> Response:
    """Bid requests: an Avro container file or one Confluent wire-format message (or JSON)."""
    return await _ingest(request, "bid-requests", "bid_requests", csv_default=False)
