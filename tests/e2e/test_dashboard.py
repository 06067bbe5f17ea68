"""The dashboard as a person uses it: `advertisex serve` on loopback, headless Chromium.

Debian's chromium, driven by Playwright with its executable path pointed at it (no browser
download). The numbers the page shows are checked against the query API's answers.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from advertisex.generate import generate
from tests.api.conftest import HTTP, ndjson, start_serve, wait_ready
from tests.conftest import Cli

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
ROOT = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():  # the test setup installs it from Debian's packages
        subprocess.run([str(ROOT / "deploy" / "install-system-packages")], check=False)
    if not CHROMIUM.exists():
        pytest.fail("chromium is missing; run ./deploy/install-system-packages (needs root)")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    out = tmp_path_factory.mktemp("dash")
    generate(out / "in", impressions=5_000, days=3, seed=9, start=dt.date(2026, 11, 1))
    db = out / "store.duckdb"
    cli = Cli(db)
    assert cli("dims", "load", str(out / "in" / "dims" / "creatives.csv")).exit_code == 0
    assert cli("ingest", str(out / "in" / "data"), "--no-progress").exit_code == 3  # faults
    proc, base = start_serve(
        db, env={"ADVX_DASHBOARD_REFRESH_SECONDS": "1", "ADVX_SERVE_JOBS_SECONDS": "1"}
    )
    try:
        wait_ready(base)
        yield base
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stderr is not None:
            proc.stderr.close()


def api(url: str, path: str, **params: Any) -> Any:
    r = HTTP.get(url + "/api/v1/" + path, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def table(page: Page, selector: str) -> list[dict[str, Any]]:
    """Each row's cells: column -> (shown text, data-value)."""
    return page.eval_on_selector_all(  # type: ignore[no-any-return]
        f"{selector} tbody tr[data-key]",
        """rows => rows.map(r => Object.fromEntries([...r.cells].map(
             c => [c.dataset.col, [c.textContent, c.dataset.value ?? null]])))""",
    )


def loaded(page: Page, after: int = 0) -> int:
    page.wait_for_function(f"Number(document.body.dataset.version || 0) > {after}")
    return int(page.evaluate("document.body.dataset.version"))


def shown_int(n: int) -> str:
    return f"{n:,}"


def shown_pct(x: float | None) -> str:
    return "\u2013" if x is None else f"{x * 100:.2f}%"


def check_campaigns(page: Page, expected: list[dict[str, Any]]) -> None:
    rows = table(page, "#campaigns")
    assert len(rows) == len(expected) > 1
    by_key = {r["campaign_id"]: r for r in expected}
    for row in rows:
        want = by_key[row["campaign_id"][0]]
        for col in ("impressions", "clicks", "conversions"):
            assert row[col] == [shown_int(want[col]), str(want[col])], (col, row, want)
        for col in ("ctr", "cvr"):
            assert row[col][0] == shown_pct(want[col])
            assert (None if row[col][1] is None else float(row[col][1])) == want[col]


def test_dashboard_shows_the_apis_numbers_sorts_and_filters_by_time(
    browser: Browser, url: str, tmp_path: Path
) -> None:
    page = browser.new_page(viewport={"width": 1366, "height": 900})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto(url + "/")
    version = loaded(page)

    everything = api(url, "campaigns")["rows"]
    check_campaigns(page, everything)
    total = sum(r["impressions"] for r in everything)
    assert page.text_content("[data-kpi=impressions] .value") == shown_int(total)
    funnel = {s["step"]: s["count"] for s in api(url, "funnel")["steps"]}
    shown_funnel = page.eval_on_selector_all(
        "#funnel li", "items => items.map(i => [i.dataset.step, Number(i.dataset.value)])"
    )
    assert dict(shown_funnel) == funnel
    quality = {s["source"]: s for s in api(url, "quality")["sources"]}
    for row in table(page, "#sources"):
        want = quality[row["source"][0]]
        for col in ("received", "accepted", "rejected", "duplicates"):
            assert row[col][0] == shown_int(want[col])
    countries = {r["country"]: r for r in api(url, "campaigns", group_by="country")["rows"]}
    shown_countries = table(page, "#countries")
    assert len(shown_countries) == len(countries) > 1  # issue 3's geo filled the countries
    for row in shown_countries:
        want = countries[None if row["country"][1] is None else row["country"][0]]
        assert row["impressions"][0] == shown_int(want["impressions"])
    assert page.locator("#charts .uplot").count() >= 2  # the vendored chart library drew
    assert page.locator("#reasons tbody tr[data-key]").count() > 0

    # Sort by clicks: biggest first, then a second click turns it round.
    page.click("#campaigns th[data-col=clicks]")
    keys = page.eval_on_selector_all("#campaigns tbody tr", "rs => rs.map(r => r.dataset.key)")
    assert keys == [
        r["campaign_id"] for r in sorted(everything, key=lambda r: r["clicks"], reverse=True)
    ]
    page.click("#campaigns th[data-col=clicks]")
    assert page.get_attribute("body", "data-sort") == "clicks"
    clicks = [
        int(v)
        for v in page.eval_on_selector_all(
            "#campaigns td[data-col=clicks]", "cs => cs.map(c => c.dataset.value)"
        )
    ]
    assert clicks == sorted(clicks) and clicks[0] < clicks[-1]

    # The last 24 hours: the page asks for a range and shows what the API gives for it.
    page.click("#ranges button[data-range='24']")
    page.wait_for_function("document.body.dataset.range === '24'")
    version = loaded(page, version)
    start, end = page.get_attribute("body", "data-from"), page.get_attribute("body", "data-to")
    assert start and end
    assert dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start) == dt.timedelta(
        hours=24
    )
    last_day = api(url, "campaigns", **{"from": start, "to": end})["rows"]
    check_campaigns(page, last_day)
    day_total = sum(r["impressions"] for r in last_day)
    assert 0 < day_total < total
    assert page.text_content("[data-kpi=impressions] .value") == shown_int(day_total)

    # serve's timer ran the checks: the data set is weeks old, so freshness alerts open, and
    # the page lists the API's alerts and the failing checks.
    page.wait_for_selector("#alerts tbody tr[data-key]", timeout=20_000)
    page.wait_for_selector("#checks tbody tr[data-key]", timeout=20_000)
    shown_alerts = {(r["alertname"][0], r["labels"][0]) for r in table(page, "#alerts")}
    api_alerts = {
        (a["alertname"], " ".join(f"{k}={v}" for k, v in a["labels"].items() if v))
        for a in api(url, "alerts")["rows"]
    }
    assert ("freshness", "check=freshness severity=critical source=impressions") in shown_alerts
    assert shown_alerts <= api_alerts  # alerts only accrue while the page is open
    failing = {
        (r["check"][0], r["source"][0]) for r in table(page, "#checks") if r["status"][0] == "FAIL"
    }
    assert ("freshness", "impressions") in failing
    page.screenshot(path=str(tmp_path / "dashboard.png"), full_page=True)
    assert (tmp_path / "dashboard.png").stat().st_size > 10_000
    assert errors == []
    page.close()


def test_dashboard_refreshes_itself_while_serve_ingests(browser: Browser, url: str) -> None:
    page = browser.new_page()
    page.goto(url + "/")
    loaded(page)
    before = api(url, "funnel")["steps"]
    shown = page.text_content("[data-kpi=impressions] .value")
    impressions = next(s["count"] for s in before if s["step"] == "impressions")
    assert shown == shown_int(impressions)
    r = HTTP.post(url + "/v1/impressions", content=ndjson(["fresh-1", "fresh-2", "fresh-3"]))
    assert r.status_code == 202, r.text
    # Answers may lag a commit by query_cache_ms plus one version read (documented).
    deadline = time.monotonic() + 5
    grown = impressions
    while grown == impressions and time.monotonic() < deadline:
        time.sleep(0.05)
        now = api(url, "funnel")["steps"]
        grown = next(s["count"] for s in now if s["step"] == "impressions")
    assert grown > impressions
    # No reload: the page's own timer fetches again (refresh every second here).
    page.wait_for_function(
        f"document.querySelector('[data-kpi=impressions] .value').textContent === "
        f"'{shown_int(grown)}'",
        timeout=15_000,
    )
    page.close()


def test_dashboard_reads_on_a_phone(browser: Browser, url: str, tmp_path: Path) -> None:
    context = browser.new_context(viewport={"width": 390, "height": 844}, device_scale_factor=2)
    page = context.new_page()
    page.goto(url + "/")
    loaded(page)
    # Nothing wider than the screen: wide tables scroll inside their panel.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    box = page.locator("#campaigns").bounding_box()
    assert box is not None
    panel = page.locator("#campaigns").locator("xpath=../..").bounding_box()
    assert panel is not None and panel["width"] <= 390
    page.screenshot(path=str(tmp_path / "dashboard-phone.png"), full_page=True)
    assert (tmp_path / "dashboard-phone.png").stat().st_size > 10_000
    context.close()
