"""Cached figures (api/cache.py) on a real uvicorn server over a real DuckDB file: answers are
served from memory only while the data is the same; a new batch or a rollup refresh shows up
within `query_cache_ms`; revalidation by ETag; the token still guards cached answers."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

import advertisex.api.query
from advertisex.config import load_settings
from tests.api.conftest import HTTP, collector, ndjson

CAMPAIGNS = "/api/v1/campaigns"


def _post(url: str, ids: list[str]) -> None:
    r = HTTP.post(url + "/v1/impressions", content=ndjson(ids))
    assert r.status_code == 202, r.text


def _impressions(r: httpx.Response) -> int:
    assert r.status_code == 200, r.text
    return sum(row["impressions"] for row in r.json()["rows"])


def _within(seconds: float, ask: Callable[[], int], want: int) -> float:
    """How long until `ask()` gives `want`; fails after `seconds`."""
    started = time.monotonic()
    while (got := ask()) != want:
        assert time.monotonic() - started < seconds, f"still {got}, not {want}, after {seconds} s"
        time.sleep(0.02)
    return time.monotonic() - started


def test_an_answer_revalidates_by_etag_until_a_new_batch_changes_it(tmp_path: Path) -> None:
    settings = load_settings(db=tmp_path / "etag.duckdb", query_cache_ms=200)
    with collector(settings) as (url, _app):
        _post(url, ["a1", "a2"])
        time.sleep(0.3)
        first = HTTP.get(url + CAMPAIGNS, params={"group_by": "site"})
        assert _impressions(first) == 2
        etag = first.headers["etag"]
        assert first.headers["cache-control"] == "no-cache"
        again = HTTP.get(url + CAMPAIGNS, params={"group_by": "site"})
        assert again.content == first.content
        assert again.headers["etag"] == etag
        assert again.headers["content-type"] == "application/json"
        same = HTTP.get(
            url + CAMPAIGNS, params={"group_by": "site"}, headers={"If-None-Match": etag}
        )
        assert same.status_code == 304
        assert same.content == b""
        assert same.headers["etag"] == etag

        _post(url, ["b1"])
        # The version is read every 200 ms; 1.5 s leaves room for a loaded machine.
        _within(
            1.5, lambda: _impressions(HTTP.get(url + CAMPAIGNS, params={"group_by": "site"})), 3
        )
        changed = HTTP.get(
            url + CAMPAIGNS, params={"group_by": "site"}, headers={"If-None-Match": etag}
        )
        assert changed.status_code == 200
        assert changed.headers["etag"] != etag
        assert _impressions(changed) == 3


def test_a_rollup_refresh_shows_up_in_cached_rollup_figures(tmp_path: Path) -> None:
    # A long jobs period: the test runs the refresh itself, when it wants.
    settings = load_settings(
        db=tmp_path / "rollups.duckdb", query_cache_ms=200, serve_jobs_seconds=3600
    )
    with collector(settings) as (url, app):

        def from_rollups() -> int:
            return _impressions(HTTP.get(url + CAMPAIGNS, params={"source": "rollups"}))

        _post(url, ["r1", "r2"])
        app.state.jobs.run_once()
        _within(1.5, from_rollups, 2)
        _post(url, ["r3"])
        time.sleep(0.5)
        assert from_rollups() == 2  # the rollups do not hold the new batch yet
        app.state.jobs.run_once()
        _within(1.5, from_rollups, 3)


def test_the_order_of_names_does_not_matter_the_order_of_one_names_values_does(
    tmp_path: Path,
) -> None:
    settings = load_settings(db=tmp_path / "keys.duckdb", query_cache_ms=60_000)
    with collector(settings) as (url, _app):
        _post(url, ["k1"])
        campaign_day = HTTP.get(url + CAMPAIGNS + "?group_by=campaign&group_by=day&source=events")
        day_campaign = HTTP.get(url + CAMPAIGNS + "?group_by=day&group_by=campaign&source=events")
        assert list(campaign_day.json()["rows"][0])[:2] == ["campaign_id", "day"]
        assert list(day_campaign.json()["rows"][0])[:2] == ["day", "campaign_id"]
        names_swapped = HTTP.get(url + CAMPAIGNS + "?source=events&group_by=campaign&group_by=day")
        assert names_swapped.content == campaign_day.content
        as_csv = HTTP.get(url + CAMPAIGNS, headers={"Accept": "text/csv"})
        as_json = HTTP.get(url + CAMPAIGNS)
        assert as_csv.headers["content-type"].startswith("text/csv")
        assert as_json.headers["content-type"] == "application/json"


def test_many_askers_of_a_new_query_cost_one_computation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A spy on the report function the route calls (the real one runs, slowed down, so that
    # the askers overlap).
    calls: list[Any] = []
    real = advertisex.api.query.campaign_report

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls.append(args[1])
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(advertisex.api.query, "campaign_report", counted)
    settings = load_settings(db=tmp_path / "flight.duckdb", query_cache_ms=60_000)
    with collector(settings) as (url, _app):
        _post(url, ["f1", "f2", "f3"])
        with ThreadPoolExecutor(12) as pool:
            answers = list(
                pool.map(
                    lambda _: HTTP.get(url + CAMPAIGNS, params={"group_by": "site"}), range(12)
                )
            )
        assert [_impressions(r) for r in answers] == [3] * 12
        assert len({r.content for r in answers}) == 1
        assert calls == [["site"]]
        # A bad query is not kept: it is checked (and refused) each time.
        for _ in range(2):
            bad = HTTP.get(url + CAMPAIGNS, params={"group_by": "planet"})
            assert bad.status_code == 422
            assert "etag" not in bad.headers


def test_cached_answers_still_need_the_token(tmp_path: Path) -> None:
    settings = load_settings(db=tmp_path / "token.duckdb", query_token="s3cret")
    with collector(settings) as (url, _app):
        ok = HTTP.get(url + CAMPAIGNS, headers={"Authorization": "Bearer s3cret"})
        assert ok.status_code == 200
        assert ok.headers["etag"]
        for headers in (
            {},
            {"Authorization": "Bearer guess"},
            {"If-None-Match": ok.headers["etag"]},
        ):
            r = HTTP.get(url + CAMPAIGNS, headers=headers)
            assert r.status_code == 401
            assert "Authorization: Bearer" in r.json()["error"]
