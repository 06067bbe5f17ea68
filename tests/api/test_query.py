"""The query API against a real uvicorn server on loopback over a store of generated data.

Campaign figures are compared with what `advertisex report` prints for the same query, run on
the same store before the server opened it (DuckDB lets one process hold a file).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from advertisex.config import load_settings
from advertisex.generate import generate
from tests.api.conftest import HTTP, collector, ndjson
from tests.conftest import Cli

# (API query, the same query as `advertisex report` options)
QUERIES: list[tuple[dict[str, Any], list[str]]] = [
    ({}, []),
    ({"group_by": "day"}, ["--by", "day"]),
    ({"group_by": ["campaign", "day"]}, ["--by", "campaign", "--by", "day"]),
    ({"group_by": "creative,site"}, ["--by", "creative,site"]),
    (
        {"group_by": "hour", "from": "2026-11-01T06:00:00", "to": "2026-11-01T18:00:00"},
        ["--by", "hour", "--from", "2026-11-01T06:00:00", "--to", "2026-11-01T18:00:00"],
    ),
    (
        {"group_by": "advertiser", "from": "2026-11-02"},
        ["--by", "advertiser", "--from", "2026-11-02"],
    ),
    (
        {"group_by": "country,device", "include_ivt": "true"},
        ["--by", "country,device", "--include-ivt"],
    ),
    ({"group_by": "campaign", "source": "events"}, ["--by", "campaign", "--source", "events"]),
    ({"metric": "impressions,ctr,spend"}, ["--metrics", "impressions,ctr,spend"]),
]


class Served:
    def __init__(self, url: str, reports: dict[str, Any], db: Path) -> None:
        self.url = url
        self.reports = reports
        self.db = db

    def get(self, path: str, **params: Any) -> Any:
        return HTTP.get(self.url + path, params=params)

    def json(self, path: str, **params: Any) -> Any:
        r = self.get(path, **params)
        assert r.status_code == 200, r.text
        return r.json()


def _report(cli: Cli, *args: str) -> Any:
    result = cli("report", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    out = tmp_path_factory.mktemp("query")
    generate(out / "in", impressions=6_000, days=2, seed=5, start=dt.date(2026, 11, 1))
    db = out / "store.duckdb"
    cli = Cli(db)
    assert cli("dims", "load", str(out / "in" / "dims" / "creatives.csv")).exit_code == 0
    assert cli("ingest", str(out / "in" / "data"), "--no-progress").exit_code == 3  # faults
    reports = {json.dumps(q, sort_keys=True): _report(cli, *args) for q, args in QUERIES}
    reports["csv"] = cli("report", "--format", "csv", "--by", "campaign").stdout
    reports["by-campaign"] = _report(cli, "--by", "campaign")
    reports["by-hour"] = _report(cli, "--by", "hour")
    reports["by-hour-campaign"] = _report(cli, "--by", "hour,campaign")
    reports["by-day"] = _report(cli, "--by", "day")
    reports["reach"] = _report(cli, "--by", "campaign,day", "--reach")
    with collector(load_settings(db=db)) as (url, _app):
        yield Served(url, reports, db)


@pytest.mark.parametrize("query", [q for q, _ in QUERIES], ids=lambda q: json.dumps(q))
def test_campaign_figures_equal_the_report_command(served: Served, query: dict[str, Any]) -> None:
    expected = served.reports[json.dumps(query, sort_keys=True)]
    assert expected, "the report should not be empty for this query"
    got = served.json("/api/v1/campaigns", **query)
    assert got["rows"] == expected


def test_unique_users_on_request_equal_the_report_command(served: Served) -> None:
    got = served.json(
        "/api/v1/campaigns", group_by="campaign,day", metric="impressions,unique_users"
    )["rows"]
    expected = served.reports["reach"]
    assert got == [
        {k: r[k] for k in ("campaign_id", "day", "impressions", "unique_users")} for r in expected
    ]
    assert all(r["unique_users"] <= r["impressions"] for r in got)
    assert all((r["unique_users"] > 0) == (r["impressions"] > 0) for r in got)
    assert "unique_users" not in served.json("/api/v1/campaigns")["rows"][0]


def test_csv_on_request_equals_the_report_csv(served: Served) -> None:
    by_param = served.get("/api/v1/campaigns", format="csv")
    by_accept = HTTP.get(served.url + "/api/v1/campaigns", headers={"Accept": "text/csv"})
    for r in (by_param, by_accept):
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/csv")
        assert r.text == served.reports["csv"]
    assert len(list(csv.DictReader(io.StringIO(by_param.text)))) == len(
        served.reports["by-campaign"]
    )


def test_a_filter_keeps_the_reports_rows_of_that_group(served: Served) -> None:
    by_campaign = served.reports["by-campaign"]
    first, second = by_campaign[0]["campaign_id"], by_campaign[1]["campaign_id"]
    got = served.json("/api/v1/campaigns", campaign=first)["rows"]
    assert got == [by_campaign[0]]
    both = served.json("/api/v1/campaigns", campaign=f"{first},{second}")["rows"]
    assert both == by_campaign[:2]
    # A filter on a dimension not grouped by: the hourly series of one campaign.
    series = served.json("/api/v1/timeseries", campaign=first, metric="impressions")["rows"]
    expected = sorted(
        (
            {"hour": r["hour"], "campaign_id": first, "impressions": r["impressions"]}
            for r in served.reports["by-hour-campaign"]
            if r["campaign_id"] == first
        ),
        key=lambda r: r["hour"],
    )
    assert series == expected


def test_sort_and_limit(served: Served) -> None:
    rows = served.json("/api/v1/campaigns", sort="-clicks", limit=3)["rows"]
    clicks = sorted((r["clicks"] for r in served.reports["by-campaign"]), reverse=True)[:3]
    assert [r["clicks"] for r in rows] == clicks
    rows = served.json("/api/v1/campaigns", sort="campaign_id")["rows"]
    assert [r["campaign_id"] for r in rows] == sorted(
        r["campaign_id"] for r in served.reports["by-campaign"]
    )


def test_timeseries_is_the_hourly_report_oldest_first(served: Served) -> None:
    got = served.json("/api/v1/timeseries")["rows"]
    assert got == sorted(served.reports["by-hour"], key=lambda r: r["hour"])
    days = served.json("/api/v1/timeseries", interval="day", metric="clicks,ctr")["rows"]
    assert days == sorted(
        (
            {"day": r["day"], "clicks": r["clicks"], "ctr": r["ctr"]}
            for r in served.reports["by-day"]
        ),
        key=lambda r: r["day"],
    )


def test_funnel_counts_are_the_report_totals(served: Served) -> None:
    steps = served.json("/api/v1/funnel")["steps"]
    names = [s["step"] for s in steps]
    assert names == ["bid_requests", "wins", "impressions", "clicks", "conversions"]
    totals = {n: sum(r[n] for r in served.reports["by-day"]) for n in names}
    assert {s["step"]: s["count"] for s in steps} == totals
    assert totals["bid_requests"] > totals["wins"] > 0
    assert totals["impressions"] > totals["clicks"] > totals["conversions"] > 0
    clicks = next(s for s in steps if s["step"] == "clicks")
    assert clicks["rate_from_previous"] == totals["clicks"] / totals["impressions"]


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/api/v1/campaigns", {"group_by": "planet"}, "group_by 'planet' is unknown; choose from"),
        ("/api/v1/campaigns", {"colour": "red"}, "unknown query parameter 'colour'"),
        ("/api/v1/campaigns", {"from": "last tuesday"}, "from 'last tuesday' is not a time"),
        (
            "/api/v1/campaigns",
            {"from": "2026-11-02", "to": "2026-11-01"},
            "from 2026-11-02 is not before to 2026-11-01",
        ),
        ("/api/v1/campaigns", {"format": "xml"}, "format 'xml' is unknown; use json or csv"),
        ("/api/v1/campaigns", {"limit": "0"}, "limit 0 is out of range"),
        ("/api/v1/campaigns", {"sort": "colour"}, "sort 'colour' is not a column"),
        ("/api/v1/timeseries", {"metric": "happiness"}, "metric 'happiness' is unknown"),
        ("/api/v1/campaigns", {"metric": "reach"}, "metric 'reach' is unknown"),
        ("/api/v1/timeseries", {"interval": "minute"}, "interval 'minute' is unknown"),
        ("/api/v1/rejects", {"reason": "bad_vibes"}, "reason 'bad_vibes' is unknown"),
        ("/api/v1/rejects", {"offset": "-1"}, "offset -1 is out of range"),
        ("/api/v1/quality", {"from": "2026-11-01"}, "unknown query parameter 'from'"),
        ("/api/v1/campaigns", {"source": "lake"}, "source 'lake' is unknown"),
        ("/api/v1/funnel", {"include_ivt": "maybe"}, "include_ivt 'maybe' is not true or false"),
    ],
)
def test_bad_queries_get_422_with_one_plain_line(
    served: Served, path: str, params: dict[str, str], message: str
) -> None:
    r = served.get(path, **params)
    assert r.status_code == 422
    error = r.json()["error"]
    assert message in error
    assert "\n" not in error


def test_rejects_paginate_and_filter(served: Served) -> None:
    everything = served.json("/api/v1/rejects", limit=10_000)
    total = everything["total"]
    assert total == len(everything["rows"]) > 10
    ids = [r["reject_id"] for r in everything["rows"]]
    assert ids == sorted(ids, reverse=True)
    pages = [served.json("/api/v1/rejects", limit=7, offset=o)["rows"] for o in range(0, total, 7)]
    assert [r["reject_id"] for page in pages for r in page] == ids
    reasons = {r["reason"] for r in everything["rows"]}
    reason = sorted(reasons)[0]
    only = served.json("/api/v1/rejects", reason=reason, source="impressions", limit=10_000)
    assert only["rows"], "the generator's faults should reject impressions for this reason"
    assert {(r["source"], r["reason"]) for r in only["rows"]} == {("impressions", reason)}
    assert only["total"] == sum(
        1 for r in everything["rows"] if r["reason"] == reason and r["source"] == "impressions"
    )
    first = only["rows"][0]
    assert first["source_uri"] and first["raw"] is not None


def test_quality_reconciles_each_source_and_counts_rejects_by_reason(served: Served) -> None:
    q = served.json("/api/v1/quality")
    sources = {s["source"]: s for s in q["sources"]}
    assert set(sources) == {"impressions", "clicks_conversions", "bid_requests"}
    for s in sources.values():
        assert s["received"] == s["accepted"] + s["rejected"] + s["duplicates"] > 0
        assert s["events"] == s["accepted"]
        assert s["freshness_seconds"] > 0  # the data set is of November 2026's first two days
    # ... ingested just now: every event arrived late, within the panel's window (bid requests
    # of the seed shape carry no time and get their arrival's, so some of those are on time).
    assert q["late_window_hours"] == 24
    for name in ("impressions", "clicks_conversions"):
        assert sources[name]["late_events"] == sources[name]["events"]
    assert 0 < sources["bid_requests"]["late_events"] < sources["bid_requests"]["events"]
    everything = served.json("/api/v1/rejects", limit=10_000)["rows"]
    by_reason = {(r["source"], r["reason"]): r["rejects"] for r in q["rejects_by_reason"]}
    counted: dict[tuple[str, str], int] = {}
    for r in everything:
        counted[(r["source"], r["reason"])] = counted.get((r["source"], r["reason"]), 0) + 1
    assert by_reason == counted
    for name, s in sources.items():
        assert s["rejected"] == sum(n for (src, _), n in counted.items() if src == name)


def test_openapi_lists_the_routes_and_docs_need_no_cdn(served: Served) -> None:
    spec = served.json("/openapi.json")
    for route in ("campaigns", "timeseries", "funnel", "rejects", "quality", "health", "ready"):
        assert f"/api/v1/{route}" in spec["paths"]
    params = {p["name"] for p in spec["paths"]["/api/v1/campaigns"]["get"]["parameters"]}
    assert {"group_by", "from", "to", "campaign", "format"} <= params
    docs = served.get("/docs")
    assert docs.status_code == 200
    assert "cdn" not in docs.text.lower()
    for asset in ("/static/vendor/swagger-ui-bundle.js", "/static/vendor/swagger-ui.css"):
        assert asset in docs.text
        assert served.get(asset).status_code == 200


def test_health_and_readiness(served: Served) -> None:
    assert served.json("/api/v1/health") == {"status": "ok"}
    assert served.json("/api/v1/ready") == {"status": "ready"}


def _by_site(url: str) -> list[tuple[str, int]]:
    rows = HTTP.get(url + "/api/v1/campaigns", params={"group_by": "site"}).json()["rows"]
    return [(r["site"], r["impressions"]) for r in rows]


def test_new_events_show_up_in_the_next_query(tmp_path: Path) -> None:
    settings = load_settings(db=tmp_path / "live.duckdb", query_cache_ms=0)
    with collector(settings) as (url, _app):
        assert _by_site(url) == []
        assert "etag" not in HTTP.get(url + "/api/v1/campaigns").headers  # no cache: computed
        r = HTTP.post(url + "/v1/impressions", content=ndjson([f"i{n}" for n in range(5)]))
        assert r.status_code == 202, r.text
        assert _by_site(url) == [("example.com", 5)]
        r = HTTP.post(url + "/v1/impressions", content=ndjson([f"j{n}" for n in range(2)]))
        assert _by_site(url) == [("example.com", 7)]


def test_read_routes_need_the_token_when_one_is_set(tmp_path: Path) -> None:
    settings = load_settings(db=tmp_path / "t.duckdb", query_token="s3cret")
    with collector(settings) as (url, _app):
        for path in ("/api/v1/campaigns", "/api/v1/rejects", "/api/v1/quality"):
            r = HTTP.get(url + path)
            assert r.status_code == 401
            assert "Authorization: Bearer" in r.json()["error"]
            bad = HTTP.get(url + path, headers={"Authorization": "Bearer guess"})
            assert bad.status_code == 401
            ok = HTTP.get(url + path, headers={"Authorization": "Bearer s3cret"})
            assert ok.status_code == 200, ok.text
        assert HTTP.get(url + "/api/v1/health").status_code == 200
        assert HTTP.get(url + "/").status_code == 200  # the page holds no data itself


def test_checks_are_the_quality_checks_of_now(served: Served) -> None:
    rows = served.json("/api/v1/checks")["rows"]
    assert {r["check"] for r in rows} >= {"freshness", "duplicate_rate", "reject_rate"}
    # The data set ends on 2026-11-02: every source is stale now.
    stale = {r["source"] for r in rows if r["check"] == "freshness" and r["failed"]}
    assert stale == {"impressions", "clicks_conversions", "bid_requests"} - {
        r["source"] for r in rows if r["check"] == "freshness" and not r["failed"]
    }
    assert "impressions" in stale
    failing = served.json("/api/v1/checks", failed="true")["rows"]

    # Asked a moment later: values like freshness move with the clock, which checks fail do not.
    def key(r: dict[str, Any]) -> tuple[str, str, str]:
        return r["check"], r["source"], r["subject"]

    assert all(r["failed"] for r in failing)
    assert sorted(map(key, failing)) == sorted(key(r) for r in rows if r["failed"])
    assert served.get("/api/v1/alerts", state="on_fire").status_code == 422


def test_serve_runs_the_checks_on_its_timer_and_alerts_show(tmp_path: Path) -> None:
    settings = load_settings(db=tmp_path / "jobs.duckdb", serve_jobs_seconds=0.2)
    with collector(settings) as (url, _app):
        assert HTTP.get(url + "/api/v1/alerts").json()["rows"] == []
        # Impressions of 2026-11-01, arriving now: the freshness check fails on the next tick.
        r = HTTP.post(url + "/v1/impressions", content=ndjson([f"old{n}" for n in range(3)]))
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + 20
        alerts: list[dict[str, Any]] = []
        while time.monotonic() < deadline and not alerts:
            alerts = [
                a
                for a in HTTP.get(url + "/api/v1/alerts").json()["rows"]
                if a["labels"].get("check") == "freshness"
                and a["labels"].get("source") == "impressions"
            ]
            time.sleep(0.1)
        assert alerts, "serve's timer should have opened a freshness alert"
        assert alerts[0]["state"] in ("pending", "firing")


def test_serve_kafka_has_no_store_to_query_and_says_so(tmp_path: Path) -> None:
    from confluent_kafka import Producer

    holder = Producer({"test.mock.num.brokers": 1, "log_level": 0})  # librdkafka's mock cluster
    brokers = ",".join(
        f"{b.host}:{b.port}" for b in holder.list_topics(timeout=10).brokers.values()
    )
    settings = load_settings(db=tmp_path / "unused.duckdb")
    try:
        with collector(settings, kafka=brokers) as (url, _app):
            r = HTTP.get(url + "/api/v1/campaigns")
            assert r.status_code == 503
            assert "serve --kafka" in r.json()["error"]
            assert HTTP.get(url + "/api/v1/ready").status_code == 503
            assert HTTP.get(url + "/api/v1/health").status_code == 200
    finally:
        holder.flush(5)
