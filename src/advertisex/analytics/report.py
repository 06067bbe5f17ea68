"""Campaign metrics from the narrowest rollup that answers (or, equally, from the events)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import duckdb

from advertisex.analytics.rollups import (
    ROLLUPS,
    caught_up,
    facts_in_range,
    refreshed,
    rollup_sql,
    stale,
)
from advertisex.config import Settings
from advertisex.errors import ConfigError

# --by name -> the column of the rollups and facts it groups by (also the output key).
GROUPS: dict[str, str] = {
    "campaign": "campaign_id",
    "advertiser": "advertiser_id",
    "creative": "creative_id",
    "site": "site",
    "country": "country",
    "device": "device_type",
    "hour": "hour",
    "day": "day",
}
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


def narrowest_rollup(
    keys: list[str], start: datetime | None, end: datetime | None, *, hourly: bool = False
) -> str | None:
    """The rollup with the fewest rows that holds the groups `keys` over the range (a daily one
    when the range is in whole days, unless `hourly`), or None: then the report sums the facts."""
    for table, rollup in ROLLUPS.items():
        if set(keys) <= rollup.groups and (
            rollup.grain == "hour" or (not hourly and _midnight(start) and _midnight(end))
        ):
            return table
    return None


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
    `end` (exclusive) from the start of its own. `source` "rollups" reads the narrowest rollup
    that holds the groups (ROLLUPS, in order; a daily one only for a range in whole days) and,
    for groups no rollup holds together (creative with site, country or device; site with
    hour, country or device; site over a range not in whole days), sums the events with the
    stored attribution instead; "events" recomputes the attribution and sums the events (on a
    read-only connection too); "auto" takes "rollups" when they hold every committed batch and
    otherwise an hourly rollup with the hours the batches it lacks can change recomputed from
    the events (an incremental refresh's work, written nowhere), or "events" where no hourly
    rollup holds the groups or none was ever made. The figures are the same every way. Invalid
    traffic is left out unless `include_ivt`. `settings` gives the attribution windows for
    "events" and "auto" (defaults otherwise).
    """
    unknown = [b for b in by if b not in GROUPS]
    if unknown or not by:
        raise ConfigError(
            f"cannot group by {', '.join(unknown) or 'nothing'}; choose from {', '.join(GROUPS)}"
        )
    keys = list(dict.fromkeys(by))
    names = [GROUPS[b] for b in keys]
    table: str | None = None
    relation = ""
    if source == "auto" and not stale(con):
        source = "rollups"
    if source == "rollups":
        table = narrowest_rollup(keys, start, end)
        relation = table or ""
    elif source == "auto":
        # The rollups lag: read an hourly one with the hours that the batches it lacks can
        # change recomputed from the events (what the next refresh will write), if ever made.
        table = narrowest_rollup(keys, start, end, hourly=True) if refreshed(con) else None
        if table is not None:
            relation = caught_up(con, settings or Settings.model_construct(), table)
        source = "events"
    where, params = [], []
    if table is None:
        # From the facts: with the attribution recomputed ("events"), else with the stored one
        # (current when the rollups are).
        facts_in_range(
            con, settings or Settings.model_construct(), start, end, recompute=source == "events"
        )
        relation = f"({rollup_sql([*names, 'ivt'], '_in_facts(event_time)')})"
        select = ", ".join(names)
    else:
        grain = ROLLUPS[table].grain
        select = ", ".join(
            "CAST(hour AS DATE) AS day" if n == "day" and grain == "hour" else n for n in names
        )
        for bound, op in ((start, ">="), (end, "<")):
            if bound is not None:
                where.append(f"{grain} {op} date_trunc('{grain}', ?::TIMESTAMP)")
                params.append(bound)
    if not include_ivt:
        where.append("NOT ivt")
    metrics = ", ".join(f"{sql} AS {name}" for name, sql in _METRICS.items())
    sql = f"""
    SELECT {select}, {metrics}
    FROM {relation}
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
