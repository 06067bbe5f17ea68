"""Campaign metrics from the hourly rollups (or, equally, from the events themselves)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import duckdb

from advertisex.analytics.rollups import build_rollups, caught_up, refreshed, stale
from advertisex.config import Settings
from advertisex.errors import ConfigError

# --by name -> (output key, expression over the rollup table).
GROUPS: dict[str, tuple[str, str]] = {
    "campaign": ("campaign_id", "campaign_id"),
    "advertiser": ("advertiser_id", "advertiser_id"),
    "creative": ("creative_id", "creative_id"),
    "site": ("site", "site"),
    "country": ("country", "country"),
    "device": ("device_type", "device_type"),
    "hour": ("hour", "hour"),
    "day": ("day", "CAST(hour AS DATE)"),
}
# Groups the daily rollups hold: a report by these over whole days reads them.
_DAILY = frozenset({"campaign", "advertiser", "country", "device", "day"})
# Metric -> SQL over the summed rollup columns. Money is in the events' currency units: spend
# is the sum of CPM prices / 1000 (the impression's price, else its winning bid's clearing
# price, else the bid amount), revenue the sum of conversion values.
_METRICS: dict[str, str] = {
    "impressions": "sum(impressions)::BIGINT",
    "clicks": "sum(clicks)::BIGINT",
    "conversions": "sum(conversions)::BIGINT",
    "ctr": "sum(clicks) / nullif(sum(impressions), 0)",
    "cvr": "sum(conversions) / nullif(sum(clicks), 0)",
    "spend": "sum(spend_cpm_micros) / 1e9",
    "cpm": "sum(spend_cpm_micros) / 1e6 / nullif(sum(impressions), 0)",
    "cpc": "sum(spend_cpm_micros) / 1e9 / nullif(sum(clicks), 0)",
    "cpa": "sum(spend_cpm_micros) / 1e9 / nullif(sum(conversions), 0)",
    "revenue": "sum(revenue_micros) / 1e6",
    "roas": "(sum(revenue_micros) / 1e6) / nullif(sum(spend_cpm_micros) / 1e9, 0)",
    "bid_requests": "sum(bid_requests)::BIGINT",
    "bids": "sum(bids)::BIGINT",
    "wins": "sum(wins)::BIGINT",
    "win_rate": "sum(wins) / nullif(sum(bids), 0)",
    "unattributed_clicks": "sum(unattributed_clicks)::BIGINT",
    "unattributed_conversions": "sum(unattributed_conversions)::BIGINT",
}
METRICS = tuple(_METRICS)
RATIOS = frozenset({"ctr", "cvr", "cpm", "cpc", "cpa", "roas", "win_rate", "spend", "revenue"})

Source = Literal["auto", "rollups", "events"]


def _midnight(t: datetime | None) -> bool:
    return t is None or t == datetime(t.year, t.month, t.day)


def campaign_report(
    con: duckdb.DuckDBPyConnection,
    by: list[str],
    start: datetime | None = None,
    end: datetime | None = None,
    *,
    include_ivt: bool = False,
    source: Source = "auto",
    settings: Settings | None = None,
) -> list[dict[str, Any]]:
    """One row per group: the group keys, then METRICS, biggest by impressions first.

    The range is in whole hours of event time: `start` counts from the start of its hour,
    `end` (exclusive) from the start of its own. Groups and ranges in whole days read the daily
    rollups, others the hourly ones (same figures). Invalid traffic is left out unless
    `include_ivt`. `source` "rollups" reads the rollup tables, "events" recomputes the same
    aggregates from the event tables (on a read-only connection too), "auto" takes the rollups
    when they hold every committed batch and otherwise the rollups with the hours that the
    batches they lack can change recomputed from the events (every event if the rollups were
    never made). `settings` gives the attribution windows for "events" and "auto"
    (defaults otherwise).
    """
    unknown = [b for b in by if b not in GROUPS]
    if unknown or not by:
        raise ConfigError(
            f"cannot group by {', '.join(unknown) or 'nothing'}; choose from {', '.join(GROUPS)}"
        )
    keys = list(dict.fromkeys(by))
    table, time_column = "rollup_hourly", "hour"
    settings = settings or Settings.model_construct()
    if source == "auto" and stale(con):
        if refreshed(con):  # the stored rollups, with the hours they lack recomputed
            table = caught_up(con, settings)
        else:
            source = "events"
    if source == "events":
        build_rollups(con, settings, scoped=False)
        table = "_rollup_hourly"
    elif table == "rollup_hourly" and set(keys) <= _DAILY and _midnight(start) and _midnight(end):
        table, time_column = "rollup_daily", "day"
    names = [GROUPS[b][0] for b in keys]
    select = ", ".join(
        f"{'day' if b == 'day' and time_column == 'day' else GROUPS[b][1]} AS {GROUPS[b][0]}"
        for b in keys
    )
    where, params = [], []
    if not include_ivt:
        where.append("NOT ivt")
    if start is not None:
        where.append(f"{time_column} >= date_trunc('{time_column}', ?::TIMESTAMP)")
        params.append(start)
    if end is not None:
        where.append(f"{time_column} < date_trunc('{time_column}', ?::TIMESTAMP)")
        params.append(end)
    metrics = ", ".join(f"{sql} AS {name}" for name, sql in _METRICS.items())
    sql = f"""
    SELECT {select}, {metrics}
    FROM {table}
    {"WHERE " + " AND ".join(where) if where else ""}
    GROUP BY ALL
    ORDER BY impressions DESC, {", ".join(names)}
    """
    cur = con.execute(sql, params)
    columns = [d[0] for d in cur.description or []]
    rows = []
    for values in cur.fetchall():
        row = dict(zip(columns, values, strict=True))
        for k in names:
            if isinstance(row[k], datetime):
                row[k] = row[k].isoformat()
            elif row[k] is not None and not isinstance(row[k], str):
                row[k] = str(row[k])
        for m in RATIOS:
            row[m] = None if row[m] is None else float(row[m])
        rows.append(row)
    return rows
