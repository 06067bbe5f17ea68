"""What enrichment found in the store: coverage, invalid traffic, unknown dimensions, mismatches."""

from __future__ import annotations

from typing import Any

import duckdb

from advertisex.schemas.sources import SOURCES


def enrichment_summary(con: duckdb.DuckDBPyConnection) -> list[dict[str, Any]]:
    """Per event table: events, geo/device coverage, IVT by reason, unknown creatives and
    campaigns, and events whose own country differs from their IP's (a quality signal)."""
    out = []
    for source in SOURCES.values():
        rel = con.sql(
            f"""
            SELECT count(*) AS events, count(country) AS with_country,
                   count(device_type) AS with_device_type, count(ivt_reason) AS ivt,
                   count(*) FILTER (dim_issue = 'unknown_creative') AS unknown_creative,
                   count(*) FILTER (dim_issue = 'unknown_campaign') AS unknown_campaign,
                   count(*) FILTER (country <> ip_country) AS country_mismatch
            FROM {source.table}
            """
        )
        names = [d[0] for d in rel.description]
        row = dict(zip(names, rel.fetchall()[0], strict=True))
        reasons = con.execute(
            f"SELECT ivt_reason, count(*) FROM {source.table} WHERE ivt_reason IS NOT NULL "
            "GROUP BY ALL ORDER BY ALL"
        ).fetchall()
        out.append({"source": source.name, **row, "ivt_by_reason": dict(reasons)})
    return out
