"""Dashboard and query API speed over 30 days of rollups (>= 50,000,000 impressions).

    python bench/dashboard_bench.py [--impressions 50000000 --days 30 --clients 50 --seconds 20]

The dashboard and the campaign routes read only the rollup tables, so the store is made at
rollup level directly in DuckDB SQL (hourly cells by campaign x creative x site x country x
device, each rollup table summed from them, and a rollup run so the report reads them): no
events are ingested. `advertisex serve` then runs in its own process on loopback and:

- first load: headless Chromium (Debian's, through Playwright) opens `/` in a fresh context
  (no cache) until the page has drawn its first data; also the same requests without a
  browser, in the order the page makes them;
- campaign queries: CLIENTS concurrent connections (wrk) ask for campaign metrics (all time,
  day and hour ranges, by campaign x day, by country, one campaign) for SECONDS; latency
  percentiles, throughput and the server's CPU per request.

Then, on a generated store of events (LAG_IMPRESSIONS over a week, refreshed, plus one new
batch of the last hour that the rollups have not folded in yet): how long `source=auto`
takes while the rollups lag, next to `events` and (stale) `rollups`.

The load generator and the browser run on the same machine as the server.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

OUT = Path(__file__).resolve().parent / "out"
CHROMIUM = "/usr/bin/chromium"
START = "2026-10-01"
ROWS_IMPRESSIONS_MEAN = 24.5  # mean impressions per hourly row below (5 + hash % 40)

CELLS = """
CREATE TEMP TABLE _cells AS
WITH cells AS (
  SELECT h.i AS hi, c.k AS k, TIMESTAMP '{start}' + to_hours(h.i) AS hour,
         5 + hash(h.i, c.k) % 40 AS imps
  FROM range({hours}) h(i), range({cells}) c(k)
)
SELECT hour,
       'c' || (k % 60) AS campaign_id,
       'a' || (k % 60 % 12) AS advertiser_id,
       'cr' || (k % 240) AS creative_id,
       'site' || ((k * 7) % 50) || '.example' AS site,
       ['US', 'GB', 'DE', 'FR', 'IN', 'BR', 'JP', 'CA', 'AU', 'ES'][1 + (k // 240) % 10] AS country,
       ['desktop', 'mobile', 'tablet', 'ctv'][1 + (k // 7) % 4] AS device_type,
       k % 50 = 0 AS ivt,
       imps * 3 AS bid_requests, imps * 2 AS bids, imps AS wins, imps AS impressions,
       imps * (1500000 + hash(k) % 1000000) AS spend_cpm_micros,
       (imps * (hash(hi, k, 1) % 300) // 10000)::BIGINT AS clicks, 0 AS unattributed_clicks,
       (imps * (hash(hi, k, 2) % 300) // 200000)::BIGINT AS conversions,
       0 AS unattributed_conversions,
       (imps * (hash(hi, k, 2) % 300) // 200000) * 25000000 AS revenue_micros
FROM cells
"""

MEASURES = (
    "bid_requests", "bids", "wins", "impressions", "spend_cpm_micros", "clicks",
    "unattributed_clicks", "conversions", "unattributed_conversions", "revenue_micros",
)  # fmt: skip
ROLLUP = "INSERT INTO {table} SELECT {keys}, {sums} FROM {cells} GROUP BY ALL"
# Each rollup table and its keys, summed from the cells (rollup_daily from rollup_hourly).
TABLES = (
    ("rollup_hourly", "hour, campaign_id, advertiser_id, country, device_type, ivt", "_cells"),
    ("rollup_hourly_creative", "hour, campaign_id, advertiser_id, creative_id, ivt", "_cells"),
    ("rollup_daily_site", "CAST(hour AS DATE), campaign_id, advertiser_id, site, ivt", "_cells"),
    (
        "rollup_daily",
        "CAST(hour AS DATE), campaign_id, advertiser_id, country, device_type, ivt",
        "rollup_hourly",
    ),
)


def build(db: Path, impressions: int, days: int) -> None:
    from advertisex.config import load_settings
    from advertisex.store import Store, one

    hours = days * 24
    cells = math.ceil(impressions / (hours * ROWS_IMPRESSIONS_MEAN))
    if db.exists():
        db.unlink()
    t = time.perf_counter()
    with Store.open(load_settings(db=db)) as store:
        with store.transaction() as con:
            con.execute(CELLS.format(start=START, hours=hours, cells=cells))
            sums = ", ".join(f"sum({m})::BIGINT" for m in MEASURES)
            for table, keys, source in TABLES:
                con.execute(ROLLUP.format(table=table, keys=keys, sums=sums, cells=source))
            con.execute("INSERT INTO rollup_runs VALUES (now(), true, ?, 0)", [hours])
        rows, total = one(store.con, "SELECT count(*), sum(impressions) FROM rollup_hourly")
        daily = one(store.con, "SELECT count(*) FROM rollup_daily")[0]
    print(
        f"store: {total:,} impressions over {days} days in {rows:,} hourly and {daily:,} daily "
        f"rollup rows, made in {time.perf_counter() - t:.1f} s ({db.stat().st_size / 1e6:.0f} MB)"
    )
    if total < impressions:
        raise SystemExit("fewer impressions than asked: raise --impressions")


def start_serve(db: Path) -> tuple[subprocess.Popen[str], str]:
    env = {**os.environ, "ADVX_SERVE_JOBS_SECONDS": "0"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "advertisex", "serve", "--db", str(db), "--port", "0"],
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    while True:
        line = proc.stderr.readline()
        if m := re.search(r"serving on (http://\S+)", line):
            url = m.group(1)
            break
        if not line:
            raise SystemExit("serve did not start")
    for _ in range(300):
        try:
            if httpx.get(url + "/api/v1/ready").status_code == 200:
                return proc, url
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise SystemExit("serve is not ready")


def page_requests(url: str) -> float:
    """The page's first load without a browser: its requests in its order (parallel ones too)."""

    async def run() -> float:
        async with httpx.AsyncClient(base_url=url + "/api/v1", timeout=60) as c:
            t = time.perf_counter()
            await c.get("/meta")
            await c.get("/timeseries", params={"interval": "hour"})
            await asyncio.gather(
                c.get("/campaigns", params={"group_by": "campaign"}),
                c.get("/funnel"),
                c.get("/quality"),
                c.get("/campaigns", params={"group_by": "country"}),
            )
            await c.get("/alerts", params={"limit": 50})
            return time.perf_counter() - t

    return asyncio.run(run())


def browser_loads(url: str, runs: int) -> tuple[list[float], list[float]]:
    """Seconds from asking for the page to its first data drawn: as the test harness sees it
    (fresh browser context, navigation included) and as the page does (performance.now())."""
    from playwright.sync_api import sync_playwright

    args = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
    args += ["--disable-component-update", "--no-first-run"]
    times, inside = [], []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=args)
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 1366, "height": 900})
            page = context.new_page()
            t = time.perf_counter()
            page.goto(url + "/")
            page.wait_for_function("document.body.dataset.version === '1'", timeout=60_000)
            times.append(time.perf_counter() - t)
            inside.append(page.evaluate("performance.now()") / 1000)
            rows = page.locator("#campaigns tbody tr[data-key]").count()
            context.close()
        browser.close()
    print(f"  (the campaign table showed {rows} campaigns)")
    return times, inside


QUERIES: list[dict[str, Any]] = [
    {"group_by": "campaign"},
    {"group_by": "campaign", "from": "2026-10-24", "to": "2026-10-31"},
    {"group_by": "campaign", "from": "2026-10-30T06:00", "to": "2026-10-30T18:00"},
    {"group_by": "campaign,day"},
    {"group_by": "country"},
    {"group_by": "campaign", "campaign": "c7"},
]


WRK_SCRIPT = """
local paths = {%s}
local i = 0
request = function()
  i = i + 1
  return wrk.format("GET", paths[(i %% #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("RESULT %%d %%d %%.2f %%.2f %%.2f %%d\\n", summary.requests,
    summary.duration, latency:percentile(50) / 1000, latency:percentile(95) / 1000,
    latency:percentile(99) / 1000, e.status + e.connect + e.read + e.write + e.timeout))
end
"""


def server_cpu(pid: int) -> float:
    """CPU seconds the server process has used so far, all threads (user + system)."""
    import psutil

    t = psutil.Process(pid).cpu_times()
    return t.user + t.system


def concurrent(
    url: str, clients: int, seconds: float, pid: int
) -> tuple[int, float, float, float, int, float]:
    """wrk (C, 2 threads) with `clients` connections cycling through QUERIES: requests, p50,
    p95, p99 in ms, errors, and the server's CPU seconds during the run. A Python load
    generator cost more CPU than the server here."""
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    paths = ", ".join('"/api/v1/campaigns?' + urlencode(q).replace('"', "") + '"' for q in QUERIES)
    script = OUT / "dashboard_bench.lua"
    script.write_text(WRK_SCRIPT % paths)
    cpu = server_cpu(pid)
    out = subprocess.run(
        [
            "wrk",
            "-t2",
            f"-c{clients}",
            f"-d{seconds:.0f}s",
            "--timeout",
            "10s",
            "-s",
            str(script),
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cpu = server_cpu(pid) - cpu
    m = re.search(r"RESULT (\d+) \d+ ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", out)
    if m is None:
        raise SystemExit(f"wrk said: {out}")
    return int(m[1]), float(m[2]), float(m[3]), float(m[4]), int(m[5]), cpu


LAG_IMPRESSIONS = 200_000


def lagging_store(folder: Path) -> Path:
    """A week of generated events, refreshed, then one batch of the last hour not folded in."""
    import datetime as dt
    import json

    from advertisex.analytics import refresh
    from advertisex.config import load_settings
    from advertisex.enrich import load_creatives
    from advertisex.generate import generate
    from advertisex.pipeline import Runner
    from advertisex.sources.files import expand_paths
    from advertisex.store import Store

    db = folder / "store.duckdb"
    for f in (db, Path(f"{db}.wal")):
        f.unlink(missing_ok=True)
    start = dt.date(2026, 10, 1)
    generate(folder / "in", impressions=LAG_IMPRESSIONS, days=7, seed=3, start=start, faults=False)
    late = folder / "late.ndjson"
    last_hour = f"{start + dt.timedelta(days=6)} 23:30:00"
    late.write_text(
        "".join(
            json.dumps(
                {
                    "impression_id": f"late{n}",
                    "creative_id": 1,
                    "user_id": n,
                    "website": "x.com",
                    "timestamp": last_hour,
                }
            )
            + "\n"
            for n in range(500)
        )
    )
    settings = load_settings(db=db)
    with Store.open(settings) as store:
        store.con.execute("SET enable_progress_bar = false")
        load_creatives(store, folder / "in" / "dims" / "creatives.csv")
        runner = Runner(store, settings)
        t = time.perf_counter()
        runner.ingest_paths(expand_paths([str(folder / "in" / "data")]))
        refresh(store, settings)
        runner.ingest_paths(expand_paths([str(late)]))
    print(
        f"lagging rollups: store of {LAG_IMPRESSIONS:,} impressions over 7 days made in "
        f"{time.perf_counter() - t:.0f} s, then one batch of 500 not yet folded in"
    )
    return db


def lagging_auto(out: Path, keep: bool) -> None:
    """campaign_report by campaign with each source while one batch is not in the rollups."""
    from advertisex.analytics import campaign_report
    from advertisex.config import load_settings
    from advertisex.store import Store

    db = out / "lag" / "store.duckdb"
    if not (keep and db.exists()):
        lagging_store(db.parent)
    settings = load_settings(db=db)
    with Store.open(settings) as store:
        store.con.execute("SET enable_progress_bar = false")
        figures = {}
        for source in ("rollups", "events", "auto"):
            runs = []
            for _ in range(3):
                c, w = time.process_time(), time.perf_counter()
                rows = campaign_report(store.con, ["campaign"], source=source, settings=settings)
                runs.append((time.perf_counter() - w, time.process_time() - c))
            wall, cpu = sorted(runs)[1]
            figures[source] = rows
            print(
                f"  source={source}: median {wall * 1000:.0f} ms wall, {cpu * 1000:.0f} ms CPU "
                f"(all threads); {sum(r['impressions'] for r in rows):,} impressions"
            )
        if figures["auto"] != figures["events"]:
            raise SystemExit("auto and events disagree")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--impressions", type=int, default=50_000_000)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--runs", type=int, default=5, help="browser first loads")
    ap.add_argument("--keep", action="store_true", help="reuse the stores in bench/out/")
    ap.add_argument("--skip-lag", action="store_true", help="leave out the lagging-rollups part")
    a = ap.parse_args()
    OUT.mkdir(exist_ok=True)
    db = OUT / "dashboard.duckdb"
    print(f"load average before: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if not (a.keep and db.exists()):
        build(db, a.impressions, a.days)
    proc, url = start_serve(db)
    try:
        page_requests(url)  # the first queries after start read the file into DuckDB's cache
        api = sorted(page_requests(url) for _ in range(5))
        print(f"first load, the page's requests without a browser: median {api[2] * 1000:.0f} ms")
        loads, inside = (sorted(x) for x in browser_loads(url, a.runs))
        mid = len(loads) // 2
        print(
            f"first load in Chromium over {a.runs} loads: fresh context to first data drawn "
            f"median {loads[mid] * 1000:.0f} ms (worst {loads[-1] * 1000:.0f}); "
            f"navigation start to first data drawn median {inside[mid] * 1000:.0f} ms "
            f"(worst {inside[-1] * 1000:.0f})"
        )
        load = os.getloadavg()[0]
        n, p50, p95, p99, errors, cpu = concurrent(url, a.clients, a.seconds, proc.pid)
        print(
            f"campaign queries, {a.clients} concurrent connections for {a.seconds:.0f} s (wrk): "
            f"{n:,} requests ({n / a.seconds:,.0f}/s), p50 {p50:.1f} ms, "
            f"p95 {p95:.1f} ms, p99 {p99:.1f} ms, errors {errors}; server CPU "
            f"{cpu:.2f} s = {cpu / max(n, 1) * 1e6:.0f} us per request; load average "
            f"{load:.1f} before, {os.getloadavg()[0]:.1f} after"
        )
    finally:
        proc.terminate()
        proc.wait(30)
        if proc.stderr is not None:
            proc.stderr.close()
    if not a.skip_lag:
        lagging_auto(OUT, a.keep)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
