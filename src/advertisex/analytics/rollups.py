"""Attribution and hourly rollups, kept incrementally: only hours touched by new events change."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Any

import duckdb

from advertisex.config import Settings
from advertisex.errors import StoreError
from advertisex.store import Store, one

# Attribution tables and the temp table the build writes each to, with its time column.
ATTRIBUTION = {
    "click_attribution": ("_click_attr", "click_time"),
    "conversion_attribution": ("_conv_attr", "conversion_time"),
    "impression_bids": ("_imp_bid", "impression_time"),
}
# Rollup tables: each is the SELECT of the .sql file of the same name, over the facts.
ROLLUPS = ("rollup_hourly", "rollup_hourly_conversions")
# Views and attribution steps, in order: each step reads what the ones before it wrote.
_STEPS = (
    "campaigns_view",
    "impressions_view",
    "conversion_attribution",
    "click_attribution",
    "impression_bids",
    "facts",
)


@dataclass(frozen=True)
class RefreshResult:
    """What one refresh did: a full rebuild or the number of hours recomputed."""

    full_rebuild: bool
    hours: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        return {"full_rebuild": self.full_rebuild, "hours": self.hours, "seconds": self.seconds}


@cache
def _sql(name: str) -> str:
    return files("advertisex.analytics").joinpath("sql", f"{name}.sql").read_text()


def _params(settings: Settings) -> dict[str, Any]:
    return {
        "lookback_s": settings.click_lookback_hours * 3600,
        "click_through_s": settings.click_through_days * 86400,
        "view_through_s": settings.view_through_hours * 3600,
        "bid_match_s": settings.bid_match_seconds,
        "model": settings.attribution_model,
    }


def _run(con: duckdb.DuckDBPyConnection, name: str, settings: Settings) -> None:
    sql = _sql(name)
    params = _params(settings)
    used = set(re.findall(r"\$(\w+)", sql))
    con.execute(sql, {k: v for k, v in params.items() if k in used})


def build(con: duckdb.DuckDBPyConnection, settings: Settings, *, scoped: bool) -> None:
    """Attribution into temp tables (ATTRIBUTION's values) and the facts view: for the hours in
    the temp table `_scope` when `scoped`, else for every event. Read-only connections too."""
    if scoped:
        con.execute(
            "CREATE OR REPLACE TEMP MACRO _in_scope(ts) AS "
            "date_trunc('hour', ts) IN (SELECT hour FROM _scope)"
        )
    else:
        con.execute("CREATE OR REPLACE TEMP MACRO _in_scope(ts) AS true")
    for step in _STEPS:
        _run(con, step, settings)


def build_rollups(con: duckdb.DuckDBPyConnection, settings: Settings, *, scoped: bool) -> None:
    """`build`, then each rollup of the facts in scope into a temp table named `_<table>`."""
    build(con, settings, scoped=scoped)
    for table in ROLLUPS:
        con.execute(f"CREATE OR REPLACE TEMP TABLE _{table} AS {_sql(table)}")


def refresh(store: Store, settings: Settings, *, full: bool = False) -> RefreshResult:
    """Fold every batch not yet seen (and any change to the creatives) into the attribution
    and rollup tables, recomputing only the hours they can change; all of it on the first run
    or with `full`. One transaction: readers see the rollups before or after, never between."""
    started = time.perf_counter()
    con = store.con
    try:
        with store.transaction():
            runs = one(con, "SELECT count(*) FROM rollup_runs")
            full = full or runs[0] == 0
            if full:
                build(con, settings, scoped=False)
                for table in (*ATTRIBUTION, *ROLLUPS):
                    con.execute(f"DELETE FROM {table}")
                keep = ""
            else:
                _run(con, "dirty_hours", settings)
                build(con, settings, scoped=True)
                keep = " WHERE date_trunc('hour', {}) IN (SELECT hour FROM _scope)"
                for table, (_, column) in ATTRIBUTION.items():
                    con.execute(f"DELETE FROM {table}{keep.format(column)}")
                for table in ROLLUPS:
                    con.execute(f"DELETE FROM {table}{keep.format('hour')}")
            for table, (temp, column) in ATTRIBUTION.items():
                # Attribution steps also hold rows outside the scope that they had to look at;
                # the table keeps its own rows for those hours.
                con.execute(f"INSERT INTO {table} SELECT * FROM {temp}{keep.format(column)}")
            for table in ROLLUPS:  # straight from the facts: 10 M rows are not copied twice
                con.execute(f"INSERT INTO {table} {_sql(table)}")
            if full:
                hours = one(con, "SELECT count(DISTINCT hour) FROM rollup_hourly")[0]
            else:
                hours = one(con, "SELECT count(*) FROM _scope")[0]
            _daily(con, settings, full=full)
            con.execute(
                "INSERT INTO rollup_batches SELECT batch_id FROM batches "
                "ANTI JOIN rollup_batches USING (batch_id)"
            )
            con.execute("DELETE FROM rollup_creatives")
            con.execute(
                "INSERT INTO rollup_creatives "
                "SELECT creative_id, campaign_id, advertiser_id FROM creatives"
            )
            seconds = time.perf_counter() - started
            con.execute(
                "INSERT INTO rollup_runs VALUES (?, ?, ?, ?)",
                [datetime.now(UTC).replace(tzinfo=None), full, hours, seconds],
            )
    except duckdb.Error as e:
        raise StoreError(f"cannot refresh rollups in {store.path}: {e}", path=store.path) from None
    return RefreshResult(full_rebuild=full, hours=int(hours), seconds=seconds)


def caught_up(con: duckdb.DuckDBPyConnection, settings: Settings) -> str:
    """The hourly rollups as a refresh would make them now, written nowhere: a temp view of the
    stored rows of the hours that no new batch or creative change can touch, and of those hours
    recomputed from the events. What `report --source auto` reads while the rollups lag: it
    costs an incremental refresh (the dirty hours), not a rebuild from every event."""
    _run(con, "dirty_hours", settings)
    build(con, settings, scoped=True)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _rollup_hourly AS {_sql('rollup_hourly')}")
    con.execute(
        "CREATE OR REPLACE TEMP VIEW _rollup_now AS "
        "SELECT * FROM rollup_hourly WHERE hour NOT IN (SELECT hour FROM _scope) "
        "UNION ALL BY NAME SELECT * FROM _rollup_hourly"
    )
    return "_rollup_now"


def _daily(con: duckdb.DuckDBPyConnection, settings: Settings, *, full: bool) -> None:
    """Recompute the daily rollups of the days whose hours changed, from the hourly ones."""
    hours = "rollup_hourly" if full else "_scope"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _days AS SELECT DISTINCT CAST(hour AS DATE) AS day "
        f"FROM {hours}"
    )
    _run(con, "rollup_daily", settings)
    con.execute("DELETE FROM rollup_daily WHERE day IN (SELECT day FROM _days)")
    if full:
        con.execute("DELETE FROM rollup_daily")
    con.execute("INSERT INTO rollup_daily SELECT * FROM _rollup_daily")


def stale(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether committed batches or creatives exist that the rollups have not folded in."""
    made = one(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'rollup_runs'")
    if not made[0]:
        return True  # a store made before rollups existed, opened read-only
    row = one(
        con,
        """
        SELECT EXISTS (SELECT 1 FROM batches ANTI JOIN rollup_batches USING (batch_id))
            OR EXISTS (SELECT creative_id, campaign_id, advertiser_id FROM creatives
                       EXCEPT SELECT creative_id, campaign_id, advertiser_id FROM rollup_creatives)
            OR EXISTS (SELECT creative_id, campaign_id, advertiser_id FROM rollup_creatives
                       EXCEPT SELECT creative_id, campaign_id, advertiser_id FROM creatives)
            OR NOT EXISTS (SELECT 1 FROM rollup_runs)
        """,
    )
    return bool(row[0])


def refreshed(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the rollups were ever made (so that catching up on what they lack is enough)."""
    made = one(con, "SELECT count(*) FROM duckdb_tables() WHERE table_name = 'rollup_runs'")
    return bool(made[0]) and bool(one(con, "SELECT count(*) FROM rollup_runs")[0])
