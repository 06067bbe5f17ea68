"""Analytics benchmark: attribution + rollups of one day, the 30-day report, attribution quality.

    python bench/analytics_bench.py [--impressions 10000000 --clicks 100000 --conversions 5000]

1. Writes one day of events straight into a fresh DuckDB store with DuckDB SQL (no ingest):
   impressions over a skewed catalogue of users, creatives and sites, clicks drawn from
   impressions (half name their impression, half must be found by lookback), conversions
   drawn from clicks, bid requests for a share of the impressions plus lost auctions.
2. Times `refresh(full=True)`: every attribution and the rollups of the day (wall and CPU
   seconds, all threads, with the load average: on a shared machine CPU seconds say more).
3. Times a refresh after a late batch of impressions of earlier hours, as refresh decides (more
   than rollup_full_share of the hours dirty: everything) and by dirty hours.
4. Copies the day's daily rollups to 30 days and times `campaign_report(--by campaign)` over them.
5. Precision and recall of attribution against the generator's truth
   (`advertisex generate`, truth_attribution.parquet), with and without the click's
   impression_id.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import polars as pl

from advertisex.analytics import campaign_report, refresh
from advertisex.analytics.rollups import BY_TYPE, DAILY_USERS, HOURLY_USERS, ROLLUPS
from advertisex.config import load_settings
from advertisex.enrich import load_creatives
from advertisex.generate import generate
from advertisex.pipeline import Runner
from advertisex.sources.files import expand_paths
from advertisex.store import Store

DAY = "2026-11-01"
WHOLE_DAY = {"first_us": 0, "span_us": 86400 * 10**6}
CATALOGUE = """
CREATE OR REPLACE TEMP MACRO h(a, b) AS (hash(a, b) >> 1)::BIGINT;
INSERT INTO creatives
SELECT 'cr' || i AS creative_id, 'cp' || (i % 200) AS campaign_id,
       'adv' || (i % 200 % 40) AS advertiser_id, NULL AS creative_name, NULL AS campaign_name,
       NULL AS advertiser_name, now()::TIMESTAMP AS loaded_at
FROM range(2000) t(i)
"""
IMPRESSIONS = """
INSERT INTO impressions BY NAME
SELECT 'imp' || i AS event_id,
       TIMESTAMP '{day}' + to_microseconds({first_us} + h(i, 1) % {span_us}) AS event_time,
       'u' || (h(i, 2) % {users}) AS user_id,
       'cr' || floor(2000 * pow((h(i, 3) % 1000000) / 1e6, 2))::INT AS creative_id,
       's' || floor(5000 * pow((h(i, 4) % 1000000) / 1e6, 3))::INT || '.com' AS site,
       'auc' || i AS bid_request_id,
       (500000 + h(i, 5) % 4000000)::BIGINT AS price_micros,
       (['US','GB','DE','FR','ES','IT','NL','BR','IN','JP'])[1 + h(i, 6) % 10] AS country,
       (['desktop','mobile','mobile','tablet','ctv'])[1 + h(i, 7) % 5] AS device_type,
       CASE WHEN h(i, 8) % 50 = 0 THEN 'bot' END AS ivt_reason
FROM range({n}) t(i)
"""
CLICKS = """
INSERT INTO clicks_conversions BY NAME
SELECT 'clk' || k AS event_id, i.event_time + to_seconds(1 + h(k, 9) % 3600) AS event_time,
       i.user_id, c.campaign_id, 'click' AS event_type, i.creative_id,
       CASE WHEN k % 2 = 0 THEN i.event_id END AS impression_id, i.country, i.device_type,
       i.ivt_reason
FROM (SELECT row_number() OVER () AS k, * FROM impressions USING SAMPLE {n} ROWS) i
JOIN creatives c USING (creative_id)
"""
CONVERSIONS = """
INSERT INTO clicks_conversions BY NAME
SELECT 'cv' || k AS event_id, event_time + to_seconds(1 + h(k, 10) % 7200) AS event_time,
       user_id, campaign_id, 'purchase' AS event_type, NULL AS creative_id, NULL AS impression_id,
       (1000000 + h(k, 11) % 90000000)::BIGINT AS value_micros
FROM (SELECT row_number() OVER () AS k, * FROM clicks_conversions USING SAMPLE {n} ROWS)
"""
BIDS = """
INSERT INTO bid_requests BY NAME
SELECT bid_request_id AS event_id, event_time - to_milliseconds(20 + h(i, 12) % 1500) AS event_time,
       user_id, creative_id, site, country, device_type, true AS won,
       (price_micros * 1.3)::BIGINT AS bid_amount_micros, price_micros AS win_price_micros
FROM (SELECT row_number() OVER () AS i, * FROM impressions USING SAMPLE {won} ROWS)
UNION ALL
SELECT 'lost' || i, TIMESTAMP '{day}' + to_microseconds((h(i, 13) % 86400000000)::BIGINT),
       'u' || (h(i, 14) % {users}), 'cr' || (h(i, 15) % 2000), 's' || (h(i, 16) % 5000) || '.com',
       'US', 'mobile', false, 900000, NULL
FROM range({lost}) t(i)
"""


def timed(fn, *args, **kw):  # type: ignore[no-untyped-def]
    """Wall seconds, CPU seconds of the process (all DuckDB threads) and the result."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*args, **kw)
    return time.perf_counter() - t0, time.process_time() - c0, out


def load() -> str:
    return "load average " + " ".join(f"{x:.1f}" for x in os.getloadavg())


def speed(args: argparse.Namespace, folder: Path) -> None:
    settings = load_settings(db=folder / "bench.duckdb")
    with Store.open(settings) as store:
        con = store.con
        users = max(1, args.impressions // 10)
        t0 = time.perf_counter()
        con.execute(CATALOGUE)
        con.execute(IMPRESSIONS.format(day=DAY, users=users, n=args.impressions, **WHOLE_DAY))
        con.execute(CLICKS.format(n=args.clicks))
        con.execute(CONVERSIONS.format(n=args.conversions))
        con.execute(
            BIDS.format(day=DAY, users=users, won=args.bids // 3, lost=args.bids - args.bids // 3)
        )
        counts = store.query(
            "SELECT (SELECT count(*) FROM impressions), "
            "(SELECT count(*) FILTER (event_type = 'click') FROM clicks_conversions), "
            "(SELECT count(*) FILTER (event_type <> 'click') FROM clicks_conversions), "
            "(SELECT count(*) FROM bid_requests)"
        )[0]
        print(
            f"data: {counts[0]:,} impressions, {counts[1]:,} clicks, {counts[2]:,} conversions, "
            f"{counts[3]:,} bid requests written in {time.perf_counter() - t0:.1f} s"
        )
        con.execute("CHECKPOINT")

        runs = []
        for _ in range(args.repeat):
            seconds, cpu, result = timed(refresh, store, settings, full=True)
            runs.append((seconds, cpu))
        rows = store.query(
            "SELECT count(*), sum(impressions), sum(clicks), sum(unattributed_clicks), "
            "sum(conversions), sum(unattributed_conversions), sum(wins) FROM rollup_hourly"
        )[0]
        print(
            f"attribution + rollup of the day (full refresh): {min(runs)[0]:.2f} s wall best of "
            f"{len(runs)} ({', '.join(f'{w:.2f} s / {c:.1f} CPU s' for w, c in runs)}); "
            f"{load()}; {rows[1]:,} impressions, {rows[2]:,} clicks ({rows[3]:,} unattributed), "
            f"{rows[4]:,} conversions ({rows[5]:,} unattributed), {rows[6]:,} wins"
        )
        for table in (*ROLLUPS, BY_TYPE, HOURLY_USERS, DAILY_USERS):
            print(f"  {table}: {store.query(f'SELECT count(*) FROM {table}')[0][0]:,} rows")
        # Unique users per campaign of the day from the rollups against count(DISTINCT).
        got = {
            r["campaign_id"]: r["unique_users"]
            for r in campaign_report(con, ["campaign"], source="rollups", reach=True)
        }
        exact = store.query(
            "SELECT cr.campaign_id, count(DISTINCT user_id) FROM impressions i "
            "JOIN creatives cr USING (creative_id) WHERE ivt_reason IS NULL GROUP BY ALL"
        )
        errors = sorted(abs(got[c] / n - 1) for c, n in exact)
        print(
            f"unique users per campaign ({len(errors)} campaigns, {min(n for _, n in exact):,}-"
            f"{max(n for _, n in exact):,} users): relative error median "
            f"{statistics.median(errors):.2%}, max {errors[-1]:.2%}"
        )

        # A late batch: 1% more impressions, all from two hours of the day (03:00-05:00); twice:
        # as refresh decides (a whole day dirty: everything), and by the dirty hours.
        for batch, share in ((999998, settings.rollup_full_share), (999999, 1e9)):
            con.execute(
                f"INSERT INTO batches VALUES ({batch}, 'impressions', 'late', 0, 0, 0, 0, 0, 0, "
                "now())"
            )
            late = IMPRESSIONS.format(
                day=DAY, users=users, n=args.impressions // 100, first_us=3 * 3600 * 10**6,
                span_us=2 * 3600 * 10**6,
            )  # fmt: skip
            late = late.replace("'imp' || i", f"'late{batch}-' || i")
            late = late.replace("h(i, ", f"h(i + {batch * 1000}, ")
            con.execute(late)
            con.execute(
                f"UPDATE impressions SET batch_id = {batch} WHERE event_id LIKE 'late{batch}-%'"
            )
            cfg = settings.model_copy(update={"rollup_full_share": share})
            seconds, cpu, result = timed(refresh, store, cfg)
            how = "everything" if result.full_rebuild else f"{result.hours} dirty hours"
            print(
                f"refresh after a late batch of {args.impressions // 100:,} impressions "
                f"(rollup_full_share {share:g}): {how} in {seconds:.2f} s wall, {cpu:.1f} CPU s; "
                f"{load()}"
            )

        # 30 days of rollups: the day's daily rows copied to 29 more days (a campaign report
        # over whole days reads rollup_daily).
        con.execute(
            "INSERT INTO rollup_daily SELECT r.* REPLACE (r.day + d::INT AS day) "
            "FROM rollup_daily r, range(1, 30) t(d)"
        )
        con.execute(
            f"INSERT INTO {DAILY_USERS} SELECT r.* REPLACE (r.day + d::INT AS day) "
            f"FROM {DAILY_USERS} r, range(1, 30) t(d)"
        )
        n = store.query("SELECT count(*) FROM rollup_daily")[0][0]
        start = datetime.fromisoformat(DAY)
        end = start + timedelta(days=30)
        asks = ((["campaign"], False), (["campaign", "day"], False), (["campaign"], True))
        for by, reach in asks:
            times, cpus = [], []
            for _ in range(7):
                seconds, cpu, report = timed(
                    campaign_report, con, by, start, end, source="rollups", reach=reach
                )
                times.append(seconds)
                cpus.append(cpu)
            print(
                f"30-day report --by {','.join(by)}{' --reach' if reach else ''} from {n:,} "
                "daily rollup rows: "
                f"{statistics.median(times) * 1000:.0f} ms median of 7, "
                f"{statistics.median(cpus) * 1000:.0f} ms CPU ({len(report):,} rows); {load()}"
            )


def quality(folder: Path) -> None:
    out = folder / "gen"
    generate(out, impressions=300_000, days=3, seed=42, start=date(2026, 11, 1), faults=False)
    truth = pl.read_parquet(out / "truth_attribution.parquet").filter("id_in_data")
    settings = load_settings(db=folder / "quality.duckdb")
    with Store.open(settings) as store:
        load_creatives(store, out / "dims" / "creatives.csv")
        Runner(store, settings).ingest_paths(expand_paths([str(out / "data")]))
        for label, blank in (("as given", False), ("impression_id withheld", True)):
            if blank:
                store.con.execute("UPDATE clicks_conversions SET impression_id = NULL")
            refresh(store, settings, full=True)
            clicks = pl.from_arrow(
                store.con.sql(
                    "SELECT click_id AS event_id, impression_id AS got FROM click_attribution"
                ).to_arrow_table()
            )
            convs = pl.from_arrow(
                store.con.sql(
                    "SELECT a.conversion_id AS event_id, a.touch_id AS got_click, "
                    "coalesce(k.impression_id, CASE WHEN a.touch = 'view' THEN a.touch_id END) "
                    "AS got "
                    "FROM conversion_attribution a LEFT JOIN click_attribution k "
                    "ON a.touch = 'click' AND k.click_id = a.touch_id"
                ).to_arrow_table()
            )
            for name, got, want_col, got_col in (
                ("click -> impression", clicks, "impression_id", "got"),
                ("conversion -> click", convs, "click_event_id", "got_click"),
                ("conversion -> impression", convs, "impression_id", "got"),
            ):
                sample = truth.filter(
                    pl.col("click_event_id").is_null()
                    if name.startswith("click")
                    else pl.col("click_event_id").is_not_null()
                ).join(got, on="event_id", how="inner")
                attributed = sample.filter(pl.col(got_col).is_not_null()).height
                correct = sample.filter(pl.col(got_col) == pl.col(want_col)).height
                print(
                    f"{name} ({label}): {sample.height:,} events, {attributed:,} attributed, "
                    f"precision {correct / max(attributed, 1):.4f}, "
                    f"recall {correct / max(sample.height, 1):.4f}"
                )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--impressions", type=int, default=10_000_000)
    ap.add_argument("--clicks", type=int, default=100_000)
    ap.add_argument("--conversions", type=int, default=5_000)
    ap.add_argument("--bids", type=int, default=3_000_000)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--skip-quality", action="store_true")
    args = ap.parse_args()
    py, db = platform.python_version(), duckdb.__version__
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {py}, DuckDB {db}")
    with tempfile.TemporaryDirectory(dir=".") as tmp:
        speed(args, Path(tmp))
        if not args.skip_quality:
            quality(Path(tmp))


if __name__ == "__main__":
    main()
