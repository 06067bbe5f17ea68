"""Campaign metrics from the narrowest rollup that answers (or, equally, from the events)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

import duckdb

from advertisex.analytics.rollups import (
    DAILY_USERS,
    HOURLY_USERS,
    ROLLUPS,
    USERS_GROUPS,
    caught_up,
    facts_in_range,
    reach_sql,
    refreshed,
    rollup_sql,
    sketch_users,
    stale,
)
from advertisex.config import Settings
from advertisex.errors import ConfigError
from advertisex.store import one

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


def _within(
    grain: str, start: datetime | None, end: datetime | None
) -> tuple[list[str], list[Any]]:
    """The predicates (and their parameters) keeping the rows of whole `grain`s (hour or day,
    a column of that name) from that of `start` to before that of `end`, open where None."""
    where, params = [], []
    for bound, op in ((start, ">="), (end, "<")):
        if bound is not None:
            where.append(f"{grain} {op} date_trunc('{grain}', ?::TIMESTAMP)")
            params.append(bound)
    return where, params


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
    reach: bool = False,
) -> list[dict[str, Any]]:
    """One row per group: the group keys, then METRICS (and `unique_users` with `reach`),
    biggest by impressions first.

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

    `unique_users` counts the distinct user ids of the group's impressions. By campaign,
    advertiser, hour and day it merges the hourly sketches of the users' rollups (or the same
    made from the events): exact where every hour of each campaign in the group had at most
    `rollup_exact_users` impressions, else by HyperLogLog (about 3 % standard error; see
    reach.sql). By any other group it counts the events exactly. Every source gives the same.
    """
    unknown = [b for b in by if b not in GROUPS]
    if unknown or not by:
        raise ConfigError(
            f"cannot group by {', '.join(unknown) or 'nothing'}; choose from {', '.join(GROUPS)}"
        )
    keys = list(dict.fromkeys(by))
    names = [GROUPS[b] for b in keys]
    settings = settings or Settings.model_construct()
    table: str | None = None
    relation = ""
    read: Literal["rollups", "caught_up", "facts"] = "facts"
    if source == "auto" and not stale(con):
        source = "rollups"
    if source == "rollups":
        table = narrowest_rollup(keys, start, end)
        relation = table or ""
        read = "rollups" if table else "facts"
    elif source == "auto":
        # The rollups lag: read an hourly one with the hours that the batches it lacks can
        # change recomputed from the events (what the next refresh will write), if ever made.
        table = narrowest_rollup(keys, start, end, hourly=True) if refreshed(con) else None
        if table is not None:
            relation = caught_up(con, settings, table)
            read = "caught_up"
        source = "events"
    where: list[str] = []
    params: list[Any] = []
    if table is None:
        # From the facts: with the attribution recomputed ("events"), else with the stored one
        # (current when the rollups are).
        facts_in_range(con, settings, start, end, recompute=source == "events")
        relation = f"({rollup_sql([*names, 'ivt'], '_in_facts(event_time)')})"
        select = ", ".join(names)
    else:
        grain = ROLLUPS[table].grain
        select = ", ".join(
            "CAST(hour AS DATE) AS day" if n == "day" and grain == "hour" else n for n in names
        )
        where, params = _within(grain, start, end)
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
    found = cur.fetchall()
    users = _reach(con, settings, names, read, (start, end), include_ivt) if reach else {}
    rows = []
    for values in found:
        row = dict(zip(columns, values, strict=True))
        if reach:
            row["unique_users"] = users.get(tuple(row[k] for k in names), 0)
        for k in names:
            if isinstance(row[k], datetime):
                row[k] = row[k].isoformat()
            elif row[k] is not None and not isinstance(row[k], str):
                row[k] = str(row[k])
        for m in RATIOS:
            row[m] = None if row[m] is None else float(row[m])
        rows.append(row)
    return rows


def _reach(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    names: list[str],
    read: Literal["rollups", "caught_up", "facts"],
    span: tuple[datetime | None, datetime | None],
    include_ivt: bool,
) -> dict[tuple[Any, ...], int]:
    """Unique users by the group columns `names` (their values -> the count) over the range
    `span`, as the report `read` its measures: by campaign, advertiser, hour and day from the
    users' sketches (stored, caught up like the report's, or made from the events alike),
    else counted exactly from the impressions."""
    start, end = span
    where = [] if include_ivt else ["NOT ivt"]
    if not {k for k, v in GROUPS.items() if v in names} <= USERS_GROUPS:
        if read != "facts":
            facts_in_range(con, settings, start, end, recompute=False)
        sql = f"""
        SELECT {", ".join(names)}, count(DISTINCT user_id)
        FROM (SELECT date_trunc('hour', event_time) AS hour, CAST(event_time AS DATE) AS day,
                     ivt_reason IS NOT NULL AS ivt, * FROM _imp WHERE _in_facts(event_time))
        {"WHERE " + " AND ".join(where) if where else ""}
        GROUP BY ALL
        """
        return {tuple(r[:-1]): int(r[-1]) for r in con.execute(sql).fetchall()}
    # (A store made before the users' rollups, opened read-only, has none.)
    stored = bool(
        one(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [HOURLY_USERS])[0]
    )
    daily = stored and read == "rollups" and "hour" not in names
    daily = daily and _midnight(start) and _midnight(end)
    grain = "day" if daily else "hour"
    bounds, params = _within(grain, start, end)
    where += bounds
    if stored and read == "rollups":
        cells = DAILY_USERS if daily else HOURLY_USERS
    elif stored and read == "caught_up":
        # The stored hours that the batches the rollups lack cannot change, and the others
        # sketched again from the events as caught_up left them.
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _users AS "
            + sketch_users(con, "_in_hours(event_time)", settings)
        )
        cells = (
            f"(SELECT * FROM {HOURLY_USERS} WHERE hour NOT IN (SELECT hour FROM _scope) "
            "UNION ALL BY NAME SELECT * FROM _users)"
        )
    else:
        if read != "facts":
            facts_in_range(con, settings, start, end, recompute=False)
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _users AS "
            + sketch_users(con, "_in_facts(event_time)", settings)
        )
        cells = "_users"
    select = ["CAST(hour AS DATE) AS day" if n == "day" and grain == "hour" else n for n in names]
    sql = reach_sql(cells, select, names, "WHERE " + " AND ".join(where) if where else "")
    return {tuple(r[:-1]): int(r[-1]) for r in con.execute(sql, params).fetchall()}
