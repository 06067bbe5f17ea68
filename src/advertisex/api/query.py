"""Query routes: campaign metrics, time series, funnel, rejects, quality, alerts, health.

Thin: each route checks its parameters (422 with one plain message for an unknown parameter,
group, metric or a bad range), calls the analytics or quality library on a read cursor of the
store and answers JSON, or CSV with `format=csv` (or `Accept: text/csv`). Campaign figures
come from `advertisex.analytics.campaign_report`, the function behind `advertisex report`, so
both always agree. No SQL is built from user input here.
"""

from __future__ import annotations

import csv
import hmac
import io
import json
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Any

import duckdb
from fastapi import APIRouter, Depends, Query, Request, Response

from advertisex.analytics import GROUPS, METRICS, campaign_report
from advertisex.analytics.overview import (
    rejects_by_reason,
    rejects_page,
    source_health,
)
from advertisex.analytics.report import Source
from advertisex.config import Settings
from advertisex.errors import ConfigError
from advertisex.quality import list_alerts, run_checks
from advertisex.quality.alerts import STATES
from advertisex.schemas.reasons import Reason
from advertisex.schemas.sources import SOURCES
from advertisex.store import Store
from advertisex.store.duckdb import configure

# Filters: a query parameter per dimension; its values keep only those groups.
FILTERS = tuple(
    g for g in ("campaign", "advertiser", "creative", "site", "country", "device") if g in GROUPS
)
FUNNEL = tuple(
    m for m in ("bid_requests", "wins", "impressions", "clicks", "conversions") if m in METRICS
)
_COMMON = frozenset({"format"})
# What the campaign figures are read from, as `advertisex report --source` takes it.
SOURCES_OF_FIGURES: dict[str, Source] = {"auto": "auto", "rollups": "rollups", "events": "events"}
_SCOPE = {"from", "to", "include_ivt", "source", *FILTERS}
# The figures routes: their answers depend only on the request and the data version, so the
# app serves them from `api.cache` while the data is the same.
CACHED = frozenset({"/api/v1/campaigns", "/api/v1/timeseries", "/api/v1/funnel"})


class Unprocessable(Exception):
    """A request the routes cannot answer as asked: 422 and the message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Unavailable(Exception):
    """The store cannot be read now: 503 and the message."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Reader:
    """Read cursors on the serving store, one per worker thread (a DuckDB connection is not
    shared between threads); each sees the latest committed data."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self._store = store
        self._settings = settings
        self._local = threading.local()
        self._lock = threading.Lock()
        self._cursors: list[duckdb.DuckDBPyConnection] = []
        self._closed = False

    def cursor(self) -> duckdb.DuckDBPyConnection:
        cur: duckdb.DuckDBPyConnection | None = getattr(self._local, "cursor", None)
        if cur is None:
            with self._lock:
                if self._closed:
                    raise Unavailable("the server is shutting down")
                cur = self._store.con.cursor()
                configure(cur, self._settings)
                self._cursors.append(cur)
            self._local.cursor = cur
        return cur

    def close(self) -> None:
        with self._lock:
            self._closed = True
            for cur in self._cursors:
                cur.close()
            self._cursors.clear()


def _require_token(request: Request) -> None:
    settings: Settings = request.app.state.settings
    if settings.query_token is None:
        return
    expected = settings.query_token.get_secret_value()
    given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
    if not hmac.compare_digest(given.encode(), expected.encode()):
        raise _Forbidden()


class _Forbidden(Exception):
    pass


router = APIRouter(prefix="/api/v1", tags=["query"], dependencies=[Depends(_require_token)])
health = APIRouter(prefix="/api/v1", tags=["health"])

Text = Annotated[str | None, Query()]
Many = Annotated[list[str] | None, Query()]
From = Annotated[
    str | None,
    Query(alias="from", description="From this time, inclusive (ISO-8601, UTC unless an offset)."),
]
To = Annotated[str | None, Query(alias="to", description="Until this time, exclusive.")]
Ivt = Annotated[str | None, Query(description="true: count invalid traffic too.")]
FiguresFrom = Annotated[
    str | None, Query(alias="source", description="auto (default), rollups or events.")
]
Fmt = Annotated[str | None, Query(description="json (default) or csv.")]


@dataclass
class Scope:
    """The range, traffic and filter parameters every figures route takes.

    Declared once for the OpenAPI document; `_report` reads and checks them from the request.
    """

    start: From = None
    end: To = None
    include_ivt: Ivt = None
    figures_from: FiguresFrom = None
    campaign: Many = None
    advertiser: Many = None
    creative: Many = None
    site: Many = None
    country: Many = None
    device: Many = None


ScopeQuery = Annotated[Scope | None, Depends(Scope)]


def _reader(request: Request) -> Reader:
    reader: Reader | None = getattr(request.app.state, "reader", None)
    if reader is None:
        raise Unavailable(
            "no store to query: `serve --kafka` writes to Kafka; query the consumers' store"
        )
    return reader


def _known(request: Request, allowed: set[str]) -> None:
    allowed |= _COMMON
    for name in request.query_params:
        if name not in allowed:
            raise Unprocessable(
                f"unknown query parameter {name!r}; use {', '.join(sorted(allowed))}"
            )


def _values(items: list[str] | None) -> list[str]:
    return [v.strip() for item in items or [] for v in item.split(",") if v.strip()]


def _choose(name: str, given: list[str], choices: tuple[str, ...] | list[str]) -> list[str]:
    for v in given:
        if v not in choices:
            raise Unprocessable(f"{name} {v!r} is unknown; choose from {', '.join(choices)}")
    return given


def _time(value: str | None, name: str) -> datetime | None:
    if value is None or value == "":
        return None
    try:
        t = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise Unprocessable(
            f"{name} {value!r} is not a time; use ISO-8601 like 2026-11-01 or 2026-11-01T10:00"
        ) from None
    return t.astimezone(UTC).replace(tzinfo=None) if t.tzinfo else t


def _range(start: str | None, end: str | None) -> tuple[datetime | None, datetime | None]:
    s, e = _time(start, "from"), _time(end, "to")
    if s is not None and e is not None and s >= e:
        raise Unprocessable(f"from {start} is not before to {end}; give an earlier from")
    return s, e


def _flag(value: str | None, name: str) -> bool:
    if value is None or value.lower() in ("", "0", "false", "no"):
        return False
    if value.lower() in ("1", "true", "yes"):
        return True
    raise Unprocessable(f"{name} {value!r} is not true or false")


def _int(value: str | None, name: str, default: int, low: int, high: int) -> int:
    if value is None or value == "":
        return default
    try:
        n = int(value)
    except ValueError:
        raise Unprocessable(f"{name} {value!r} is not a whole number") from None
    if not low <= n <= high:
        raise Unprocessable(f"{name} {n} is out of range; use {low} to {high}")
    return n


def _filters(request: Request) -> dict[str, set[str]]:
    return {
        g: set(_values(request.query_params.getlist(g)))
        for g in FILTERS
        if request.query_params.getlist(g)
    }


def _report(
    request: Request, by: list[str], *, reach: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """campaign_report by `by` plus each filtered dimension, keeping the groups the filters name;
    and the query as understood (range, invalid traffic, source, filters).

    Grouping by a filtered dimension too and keeping its values gives the filtered figures
    (ratios included) without another query language: the report stays the only source.
    """
    q = request.query_params
    start, end = _range(q.get("from"), q.get("to"))
    include_ivt = _flag(q.get("include_ivt"), "include_ivt")
    source = _choose("source", [q.get("source") or "auto"], list(SOURCES_OF_FIGURES))[0]
    filters = _filters(request)
    groups = by + [g for g in filters if g not in by]
    try:
        rows = campaign_report(
            _reader(request).cursor(),
            groups,
            start,
            end,
            include_ivt=include_ivt,
            source=SOURCES_OF_FIGURES[source],
            settings=request.app.state.settings,
            reach=reach,
        )
    except ConfigError as e:
        raise Unprocessable(e.message) from None
    except duckdb.Error as e:
        raise Unavailable(f"the store cannot answer now: {e}") from None
    query = {
        "from": start,
        "to": end,
        "include_ivt": include_ivt,
        "source": source,
        "filters": {g: sorted(v) for g, v in filters.items()},
    }
    if rows and filters:
        # The report's rows start with one key column per group, in the order asked.
        key_of = dict(zip(groups, list(rows[0])[: len(groups)], strict=True))
        rows = [
            r for r in rows if all(str(r[key_of[g]]) in wanted for g, wanted in filters.items())
        ]
    return rows, query


def _answer(request: Request, fmt: str | None, body: dict[str, Any], rows_key: str) -> Response:
    want = (fmt or "").lower()
    if not want:
        want = "csv" if "text/csv" in request.headers.get("accept", "") else "json"
    if want == "csv":
        buf = io.StringIO()
        rows = body[rows_key]
        if rows:
            w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        return Response(buf.getvalue(), media_type="text/csv; charset=utf-8")
    if want != "json":
        raise Unprocessable(f"format {fmt!r} is unknown; use json or csv")
    return Response(json.dumps(body, default=str), media_type="application/json")


def _sort(rows: list[dict[str, Any]], sort: str | None) -> list[dict[str, Any]]:
    if not sort or not rows:
        return rows
    desc = sort.startswith("-")
    key = sort.lstrip("-")
    if key not in rows[0]:
        raise Unprocessable(f"sort {key!r} is not a column; use one of {', '.join(rows[0])}")
    present = [r for r in rows if r[key] is not None]
    missing = [r for r in rows if r[key] is None]
    return sorted(present, key=lambda r: r[key], reverse=desc) + missing


@health.get("/health", summary="Liveness: the process answers.")
def get_health() -> dict[str, str]:
    return {"status": "ok"}


@health.get("/ready", summary="Readiness: the store answers a query.")
def get_ready(request: Request) -> Response:
    try:
        _reader(request).cursor().execute("SELECT 1").fetchall()
    except (Unavailable, duckdb.Error) as e:
        msg = e.message if isinstance(e, Unavailable) else str(e)
        return Response(
            json.dumps({"status": "unavailable", "error": msg}),
            status_code=503,
            media_type="application/json",
        )
    return Response(json.dumps({"status": "ready"}), media_type="application/json")


@router.get("/meta", summary="What the dashboard may ask for: groups, metrics, refresh period.")
def get_meta(request: Request) -> dict[str, Any]:
    settings: Settings = request.app.state.settings
    return {
        "groups": list(GROUPS),
        "metrics": list(METRICS),
        "filters": list(FILTERS),
        "funnel": list(FUNNEL),
        "refresh_seconds": settings.dashboard_refresh_seconds,
    }


@router.get("/campaigns", summary="Campaign metrics per group (the figures of `report`).")
def get_campaigns(
    request: Request,
    group_by: Annotated[
        list[str] | None,
        Query(description=f"One or more of {', '.join(GROUPS)} (default campaign)."),
    ] = None,
    metric: Annotated[
        list[str] | None,
        Query(
            description=f"Only these of {', '.join(METRICS)} (default all); unique_users too "
            "(distinct users reached: exact for small sets, else HyperLogLog, about 3 %)."
        ),
    ] = None,
    sort: Annotated[
        str | None, Query(description="A column; prefix - for descending (default: report order).")
    ] = None,
    limit: Text = None,
    format: Fmt = None,
    _scope: ScopeQuery = None,
) -> Response:
    _known(request, {"group_by", "metric", "sort", "limit", *_SCOPE})
    by = _choose("group_by", _values(group_by) or ["campaign"], list(GROUPS))
    known = [*METRICS, "unique_users"]
    shown = _choose("metric", _values(metric), known) or list(METRICS)
    hidden = set(known) - set(shown)
    settings: Settings = request.app.state.settings
    n = _int(limit, "limit", settings.query_max_rows, 1, settings.query_max_rows)
    rows, query = _report(request, by, reach="unique_users" in shown)
    rows = [{k: v for k, v in r.items() if k not in hidden} for r in _sort(rows, sort)[:n]]
    body = {"query": {"group_by": by, **query}, "rows": rows}
    return _answer(request, format, body, "rows")


@router.get("/timeseries", summary="Metrics per hour or day, oldest first.")
def get_timeseries(
    request: Request,
    metric: Annotated[
        list[str] | None, Query(description=f"One or more of {', '.join(METRICS)} (default all).")
    ] = None,
    interval: Annotated[str | None, Query(description="hour (default) or day.")] = None,
    format: Fmt = None,
    _scope: ScopeQuery = None,
) -> Response:
    _known(request, {"metric", "interval", *_SCOPE})
    metrics = _choose("metric", _values(metric) or list(METRICS), list(METRICS))
    step = _choose("interval", [interval or "hour"], ["hour", "day"])[0]
    rows, scope = _report(request, [step])
    if rows:
        time_key = next(iter(rows[0]))
        keep = [time_key, *(k for k in list(rows[0])[1:] if k not in METRICS), *metrics]
        rows = sorted(({k: r[k] for k in keep} for r in rows), key=lambda r: str(r[time_key]))
    query = {"metric": metrics, "interval": step, **scope}
    return _answer(request, format, {"query": query, "rows": rows}, "rows")


@router.get("/funnel", summary="Bid requests -> wins -> impressions -> clicks -> conversions.")
def get_funnel(
    request: Request,
    format: Fmt = None,
    _scope: ScopeQuery = None,
) -> Response:
    _known(request, _SCOPE)
    rows, query = _report(request, ["day"])
    steps = []
    previous: int | None = None
    for name in FUNNEL:
        count = sum(int(r[name] or 0) for r in rows)
        rate = None if not previous else count / previous
        steps.append({"step": name, "count": count, "rate_from_previous": rate})
        previous = count
    return _answer(request, format, {"query": query, "steps": steps}, "steps")


@router.get("/rejects", summary="Quarantined rows, newest first, a page at a time.")
def get_rejects(
    request: Request,
    source: Annotated[str | None, Query(description=", ".join(SOURCES))] = None,
    reason: Annotated[str | None, Query(description="A reason code.")] = None,
    limit: Annotated[str | None, Query(description="Rows per page (default 100).")] = None,
    offset: Text = None,
    format: Fmt = None,
) -> Response:
    _known(request, {"source", "reason", "limit", "offset"})
    if source is not None:
        _choose("source", [source], list(SOURCES))
    if reason is not None:
        _choose("reason", [reason], [r.value for r in Reason])
    settings: Settings = request.app.state.settings
    n = _int(limit, "limit", 100, 1, settings.query_max_rows)
    skip = _int(offset, "offset", 0, 0, 2**62)
    total, rows = rejects_page(
        _reader(request).cursor(), source=source, reason=reason, limit=n, offset=skip
    )
    body = {"total": total, "limit": n, "offset": skip, "rows": rows}
    return _answer(request, format, body, "rows")


@router.get(
    "/quality",
    summary="Per source: reconciliation, freshness, late events (of the last "
    "dashboard_late_window_hours); rejects by reason.",
)
def get_quality(request: Request, format: Fmt = None) -> Response:
    _known(request, set())
    settings: Settings = request.app.state.settings
    con = _reader(request).cursor()
    now = datetime.now(UTC).replace(tzinfo=None)
    body = {
        "now": now,
        "late_seconds": settings.late_seconds,
        "late_window_hours": settings.dashboard_late_window_hours,
        "sources": source_health(
            con, now, settings.late_seconds, settings.dashboard_late_window_hours * 3600
        ),
        "rejects_by_reason": rejects_by_reason(con),
    }
    return _answer(request, format, body, "sources")


@router.get("/checks", summary="Every data-quality check now (as `advertisex check --at now`).")
def get_checks(
    request: Request,
    failed: Annotated[str | None, Query(description="true: only the failing ones.")] = None,
    format: Fmt = None,
) -> Response:
    _known(request, {"failed"})
    only_failed = _flag(failed, "failed")
    settings: Settings = request.app.state.settings
    try:
        findings = run_checks(_reader(request).cursor(), settings)
    except duckdb.Error as e:
        raise Unavailable(f"the store cannot answer now: {e}") from None
    rows = [
        {**f.to_dict(), "shown_value": f.show(f.value), "shown_threshold": f.show(f.threshold)}
        for f in findings
        if f.failed or not only_failed
    ]
    return _answer(request, format, {"rows": rows}, "rows")


@router.get("/alerts", summary="Alerts: open ones first, then resolved, newest first.")
def get_alerts(
    request: Request,
    state: Annotated[str | None, Query(description=", ".join(STATES))] = None,
    limit: Annotated[str | None, Query(description="At most this many (default 100).")] = None,
    format: Fmt = None,
) -> Response:
    _known(request, {"state", "limit"})
    if state is not None:
        _choose("state", [state], STATES)
    settings: Settings = request.app.state.settings
    n = _int(limit, "limit", 100, 1, settings.query_max_rows)
    alerts = list_alerts(_reader(request).cursor(), state, n)
    return _answer(request, format, {"rows": [a.to_dict() for a in alerts]}, "rows")


def install_errors(app: Any) -> None:
    """Our exceptions as answers: 422, 503, 401 with a plain message."""

    def plain(status: int, message: str) -> Response:
        return Response(
            json.dumps({"error": message}), status_code=status, media_type="application/json"
        )

    async def unprocessable(_request: Request, e: Exception) -> Response:
        return plain(422, getattr(e, "message", str(e)))

    async def unavailable(_request: Request, e: Exception) -> Response:
        return plain(503, getattr(e, "message", str(e)))

    async def forbidden(_request: Request, _e: Exception) -> Response:
        r = plain(401, "this route needs the query token: send Authorization: Bearer <token>")
        r.headers["WWW-Authenticate"] = "Bearer"
        return r

    app.add_exception_handler(Unprocessable, unprocessable)
    app.add_exception_handler(Unavailable, unavailable)
    app.add_exception_handler(_Forbidden, forbidden)
