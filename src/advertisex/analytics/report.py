"""Campaign metrics from the event tables: impressions, clicks, conversions, CTR, CVR."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import duckdb

from advertisex.errors import ConfigError

# Group key -> (impressions expression, clicks/conversions expression).
# Impressions find their campaign through the creatives dimension when they carry none; clicks
# that name their impression take its creative and site.
GROUPS: dict[str, tuple[str, str]] = {
    "campaign": ("coalesce(i.campaign_id, d.campaign_id)", "e.campaign_id"),
    "advertiser": ("d.advertiser_id", "dc.advertiser_id"),
    "creative": ("i.creative_id", "coalesce(e.creative_id, li.creative_id)"),
    "site": ("i.site", "li.site"),
    "hour": ("date_trunc('hour', i.event_time)", "date_trunc('hour', e.event_time)"),
    "day": ("CAST(i.event_time AS DATE)", "CAST(e.event_time AS DATE)"),
}
KEY_NAMES = {
    "campaign": "campaign_id",
    "advertiser": "advertiser_id",
    "creative": "creative_id",
    "site": "site",
    "hour": "hour",
    "day": "day",
}
METRICS = ("impressions", "clicks", "conversions", "ctr", "cvr")


def campaign_report(
    con: duckdb.DuckDBPyConnection,
    by: list[str],
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[dict[str, Any]]:
    """One row per group: the group keys, then METRICS. `end` is exclusive."""
    unknown = [b for b in by if b not in GROUPS]
    if unknown or not by:
        raise ConfigError(
            f"cannot group by {', '.join(unknown) or 'nothing'}; choose from {', '.join(GROUPS)}"
        )
    keys = [KEY_NAMES[b] for b in by]
    imp_keys = ", ".join(f"{GROUPS[b][0]} AS {k}" for b, k in zip(by, keys, strict=True))
    ev_keys = ", ".join(f"{GROUPS[b][1]} AS {k}" for b, k in zip(by, keys, strict=True))
    params: list[Any] = []

    def window(alias: str) -> str:
        clauses = []
        if start is not None:
            clauses.append(f"{alias}.event_time >= ?")
            params.append(start)
        if end is not None:
            clauses.append(f"{alias}.event_time < ?")
            params.append(end)
        return ("WHERE " + " AND ".join(clauses)) if clauses else ""

    need_link = any(b in ("creative", "site") for b in by)
    link = "LEFT JOIN impressions li ON li.event_id = e.impression_id" if need_link else ""
    adv = (
        "LEFT JOIN (SELECT DISTINCT campaign_id, advertiser_id FROM creatives) dc "
        "ON dc.campaign_id = e.campaign_id"
        if "advertiser" in by
        else ""
    )
    key_list = ", ".join(keys)
    sql = f"""
    WITH imp AS (
      SELECT {imp_keys}, count(*) AS impressions, 0 AS clicks, 0 AS conversions
      FROM impressions i LEFT JOIN creatives d ON d.creative_id = i.creative_id
      {window("i")}
      GROUP BY ALL
    ), ev AS (
      SELECT {ev_keys}, 0 AS impressions,
             count(*) FILTER (WHERE e.event_type = 'click') AS clicks,
             count(*) FILTER (WHERE e.event_type <> 'click') AS conversions
      FROM clicks_conversions e {link} {adv}
      {window("e")}
      GROUP BY ALL
    )
    SELECT {key_list},
           sum(impressions)::BIGINT AS impressions,
           sum(clicks)::BIGINT AS clicks,
           sum(conversions)::BIGINT AS conversions,
           sum(clicks) / nullif(sum(impressions), 0) AS ctr,
           sum(conversions) / nullif(sum(clicks), 0) AS cvr
    FROM (SELECT * FROM imp UNION ALL BY NAME SELECT * FROM ev)
    GROUP BY {key_list}
    ORDER BY impressions DESC, {key_list}
    """
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description or []]
    rows = []
    for values in cur.fetchall():
        row = dict(zip(names, values, strict=True))
        for k in keys:
            if isinstance(row[k], datetime):
                row[k] = row[k].isoformat()
            elif row[k] is not None and not isinstance(row[k], str):
                row[k] = str(row[k])
        for m in ("ctr", "cvr"):
            row[m] = None if row[m] is None else float(row[m])
        rows.append(row)
    return rows
