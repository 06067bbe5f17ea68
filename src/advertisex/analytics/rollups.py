"""Attribution and rollups, kept incrementally: only hours touched by new events change."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from importlib.resources import files
from typing import Any, Literal

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


@dataclass(frozen=True)
class Rollup:
    """A rollup table: the measures of rollup.sql summed by `keys` over whole `grain`s."""

    keys: tuple[str, ...]  # columns of the facts, the time column (hour or day) first
    grain: Literal["hour", "day"]
    groups: frozenset[str]  # the report's --by groups it answers (day is a whole number of hours)
    of: str | None = None  # summed from this finer rollup rather than from the facts


# Narrow rollups, one per question the report and the dashboard ask, each summed straight from
# the facts (a grain of every dimension at once would hold about one row per event). Listed
# from the fewest rows per day to the most: a report reads the first that answers it.
ROLLUPS: dict[str, Rollup] = {
    "rollup_daily": Rollup(
        ("day", "campaign_id", "advertiser_id", "country", "device_type", "ivt"),
        "day",
        frozenset({"day", "campaign", "advertiser", "country", "device"}),
        of="rollup_hourly",
    ),
    "rollup_hourly_creative": Rollup(
        ("hour", "campaign_id", "advertiser_id", "creative_id", "ivt"),
        "hour",
        frozenset({"hour", "day", "campaign", "advertiser", "creative"}),
    ),
    "rollup_hourly": Rollup(
        ("hour", "campaign_id", "advertiser_id", "country", "device_type", "ivt"),
        "hour",
        frozenset({"hour", "day", "campaign", "advertiser", "country", "device"}),
    ),
    "rollup_daily_site": Rollup(
        ("day", "campaign_id", "advertiser_id", "site", "ivt"),
        "day",
        frozenset({"day", "campaign", "advertiser", "site"}),
    ),
}
# Conversions by type: its own SELECT (conversions are few, so every dimension is kept).
BY_TYPE = "rollup_hourly_conversions"
# Unique users: sketches by hour x campaign (users.sql), and by day from the hours (users_of.sql).
HOURLY_USERS, DAILY_USERS = "rollup_hourly_users", "rollup_daily_users"
USERS_KEYS = ("campaign_id", "advertiser_id", "ivt")
USERS_GROUPS = frozenset({"hour", "day", "campaign", "advertiser"})
# Views and attribution steps, in order: each step reads what the ones before it wrote.
_VIEWS = ("campaigns_view", "impressions_view")
_STEPS = (
    *_VIEWS,
    "users_impressions",
    "conversion_attribution",
    "click_attribution",
    "impression_bids",
)
Attribution = Literal["temp", "stored"]


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


def rollup_sql(keys: tuple[str, ...] | list[str], scope: str) -> str:
    """The SELECT of rollup.sql: the measures by `keys` of the facts `scope` keeps (a predicate
    over their event_time); `facts` must have made the facts first."""
    pairs = {}
    for a, b in (("i", "b"), ("c", "v"), ("d", "r")):
        pairs[f"keys_{a}_{b}"] = ", ".join(f"coalesce({a}.{k}, {b}.{k}) AS {k}" for k in keys)
        pairs[f"same_{a}_{b}"] = " AND ".join(f"{a}.{k} IS NOT DISTINCT FROM {b}.{k}" for k in keys)
    return _sql("rollup").format(keys=", ".join(keys), scope=scope, **pairs)


def sketch_users(con: duckdb.DuckDBPyConnection, scope: str, settings: Settings) -> str:
    """users.sql: sketch the unique users of the impressions `scope` keeps by hour x
    USERS_KEYS into its temp table; returns the SELECT of their rows. The impressions' view
    (`_VIEWS`) must exist."""
    keys = ("hour", *USERS_KEYS)
    con.execute(
        _sql("users").format(
            keys=", ".join(keys),
            s_keys=", ".join(f"s.{k}" for k in keys),
            same=" AND ".join(f"s.{k} IS NOT DISTINCT FROM u.{k}" for k in keys),
            scope=scope,
            exact=settings.rollup_exact_users,
        )
    )
    return "SELECT * EXCLUDE (state) FROM _user_rows"


def _users_daily_sql() -> str:
    return _sql("users_daily").format(keys=", ".join(("day", *USERS_KEYS)))


def reach_sql(cells: str, select: list[str], names: list[str], where: str) -> str:
    """The SELECT of reach.sql: unique users by `names` over the sketches `cells` (`select`
    projects the names from its columns) that `where` keeps (a WHERE clause or "")."""
    return _sql("reach").format(
        cells=cells, select=", ".join(select), names=", ".join(names), where=where
    )


def _scope(con: duckdb.DuckDBPyConnection, *, scoped: bool) -> None:
    """The macros that keep events in scope: of the hours in the temp table `_scope` (and of
    their days) when `scoped`, else every event."""
    if scoped:
        con.execute(
            "CREATE OR REPLACE TEMP MACRO _in_scope(ts) AS "
            "date_trunc('hour', ts) IN (SELECT hour FROM _scope)"
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _days AS "
            "SELECT DISTINCT CAST(hour AS DATE) AS day FROM _scope"
        )
        con.execute(
            "CREATE OR REPLACE TEMP MACRO _in_days(ts) AS "
            "CAST(ts AS DATE) IN (SELECT day FROM _days)"
        )
    else:
        con.execute("CREATE OR REPLACE TEMP MACRO _in_scope(ts) AS true")
        con.execute("CREATE OR REPLACE TEMP MACRO _in_days(ts) AS true")
    con.execute("CREATE OR REPLACE TEMP MACRO _in_hours(ts) AS _in_scope(ts)")
    con.execute("CREATE OR REPLACE TEMP MACRO _in_facts(ts) AS _in_days(ts)")


def build(con: duckdb.DuckDBPyConnection, settings: Settings, *, scoped: bool) -> None:
    """Attribution into temp tables (ATTRIBUTION's values): for the hours in the temp table
    `_scope` when `scoped`, else for every event. Read-only connections too."""
    _scope(con, scoped=scoped)
    if scoped:
        _run(con, "impressions_to_match", settings)
    columns = "event_id, event_time, user_id, creative_id, site, bid_request_id"
    also = f" UNION ALL SELECT {columns} FROM _imp_also" if scoped else ""
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW _imp_todo AS "
        f"SELECT {columns} FROM impressions WHERE _in_scope(event_time){also}"
    )
    for step in _STEPS:
        _run(con, step, settings)


def facts_in_range(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    start: datetime | None,
    end: datetime | None,
    *,
    recompute: bool,
) -> None:
    """The facts of the events from the hour of `start` to that of `end` (open where None), over
    the attribution recomputed for every event when `recompute`, else over the stored one."""
    if recompute:
        build(con, settings, scoped=False)
    else:
        _scope(con, scoped=False)
        for view in _VIEWS:
            con.execute(_sql(view))
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _range AS SELECT date_trunc('hour', ?::TIMESTAMP) AS lo, "
        "date_trunc('hour', ?::TIMESTAMP) AS hi",
        [start, end],
    )
    con.execute(
        "CREATE OR REPLACE TEMP MACRO _in_facts(ts) AS "
        "coalesce(ts >= (SELECT lo FROM _range), true) "
        "AND coalesce(ts < (SELECT hi FROM _range), true)"
    )
    facts(con, settings, "temp" if recompute else "stored")


def facts(con: duckdb.DuckDBPyConnection, settings: Settings, attribution: Attribution) -> None:
    """The facts of facts.sql over the attribution `build` left in its temp tables, or over the
    stored attribution tables (current after a refresh)."""
    for view, (table, (temp, _)) in zip(
        ("_attr_clicks", "_attr_conversions", "_attr_bids"), ATTRIBUTION.items(), strict=True
    ):
        source = temp if attribution == "temp" else table
        con.execute(f"CREATE OR REPLACE TEMP VIEW {view} AS SELECT * FROM {source}")
    _run(con, "facts", settings)


def build_rollups(con: duckdb.DuckDBPyConnection, settings: Settings, *, scoped: bool) -> None:
    """`build` and `facts`, then each rollup of the facts in scope into a temp table named
    `_<table>` (the daily ones of whole days, straight from the facts)."""
    build(con, settings, scoped=scoped)
    facts(con, settings, "temp")
    for table, rollup in ROLLUPS.items():  # the daily ones too, straight from the facts
        sql = rollup_sql(rollup.keys, f"_in_{rollup.grain}s(event_time)")
        con.execute(f"CREATE OR REPLACE TEMP TABLE _{table} AS {sql}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _{BY_TYPE} AS {_sql(BY_TYPE)}")
    sql = sketch_users(con, "_in_days(event_time)", settings)
    con.execute(f"CREATE OR REPLACE TEMP TABLE _{HOURLY_USERS} AS {sql}")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _{DAILY_USERS} AS {_users_daily_sql()}")


def refresh(store: Store, settings: Settings, *, full: bool = False) -> RefreshResult:
    """Fold every batch not yet seen (and any change to the creatives) into the attribution
    and rollup tables, recomputing only the hours they can change (and, for the daily rollups,
    their days); all of it on the first run, with `full`, or when those hours are more than
    `rollup_full_share` of the hours rolled up. One transaction: readers see the
    rollups before or after, never between."""
    started = time.perf_counter()
    con = store.con
    try:
        with store.transaction():
            runs = one(con, "SELECT count(*) FROM rollup_runs")
            full = full or runs[0] == 0
            if not full:
                _run(con, "dirty_hours", settings)
                dirty, rolled = one(
                    con,
                    "SELECT (SELECT count(*) FROM _scope), "
                    "(SELECT count(DISTINCT hour) FROM rollup_hourly)",
                )
                full = dirty > settings.rollup_full_share * rolled
            build(con, settings, scoped=not full)
            keep = "" if full else " WHERE date_trunc('hour', {}) IN (SELECT hour FROM _scope)"
            for table, (temp, column) in ATTRIBUTION.items():
                con.execute(f"DELETE FROM {table}{keep.format(column)}")
                # Attribution steps also hold rows outside the scope that they had to look at;
                # the table keeps its own rows for those hours.
                con.execute(f"INSERT INTO {table} SELECT * FROM {temp}{keep.format(column)}")
            # A scoped run reads the stored attribution, now current: the daily rollups of a
            # touched day need the hours around the touched ones too.
            facts(con, settings, "temp" if full else "stored")
            _rollups(con, settings, full=full)
            if full:
                hours = one(con, "SELECT count(DISTINCT hour) FROM rollup_hourly")[0]
            else:
                hours = one(con, "SELECT count(*) FROM _scope")[0]
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


def _rollups(con: duckdb.DuckDBPyConnection, settings: Settings, *, full: bool) -> None:
    """Each rollup's rows of the hours (or days) in scope, replaced by the facts' sums."""
    # Those summed from another rollup come after it.
    for table, rollup in sorted(ROLLUPS.items(), key=lambda item: item[1].of is not None):
        macro = f"_in_{rollup.grain}s"
        con.execute(f"DELETE FROM {table}" + ("" if full else f" WHERE {macro}({rollup.grain})"))
        if rollup.of is None:
            sql = rollup_sql(rollup.keys, f"{macro}(event_time)")
        else:
            sql = _sql("rollup_of").format(
                keys=", ".join(rollup.keys), of=rollup.of, scope=f"{macro}(day)"
            )
        con.execute(f"INSERT INTO {table} BY NAME {sql}")
    con.execute(f"DELETE FROM {BY_TYPE}" + ("" if full else " WHERE _in_hours(hour)"))
    con.execute(f"INSERT INTO {BY_TYPE} BY NAME {_sql(BY_TYPE)}")
    # Unique users of whole days (a day's sketch combines its hours'), hours and days alike.
    sql = sketch_users(con, "_in_days(event_time)", settings)
    con.execute(f"DELETE FROM {HOURLY_USERS}" + ("" if full else " WHERE _in_days(hour)"))
    con.execute(f"INSERT INTO {HOURLY_USERS} BY NAME {sql}")
    con.execute(f"DELETE FROM {DAILY_USERS}" + ("" if full else " WHERE _in_days(day)"))
    con.execute(f"INSERT INTO {DAILY_USERS} BY NAME {_users_daily_sql()}")


def caught_up(con: duckdb.DuckDBPyConnection, settings: Settings, table: str) -> str:
    """The hourly rollup `table` as a refresh would make it now, written nowhere: a temp view
    of its stored rows of the hours no new batch or creative change can touch, and of those
    hours recomputed from the events. What `report --source auto` reads while the rollups lag:
    it costs an incremental refresh's work (the dirty hours), not a rebuild from every event."""
    rollup = ROLLUPS[table]
    assert rollup.grain == "hour" and rollup.of is None, table
    _run(con, "dirty_hours", settings)
    build(con, settings, scoped=True)
    facts(con, settings, "temp")
    sql = rollup_sql(rollup.keys, "_in_hours(event_time)")
    con.execute(f"CREATE OR REPLACE TEMP TABLE _caught_up AS {sql}")
    con.execute(
        f"CREATE OR REPLACE TEMP VIEW _rollup_now AS SELECT * FROM {table} "
        "WHERE hour NOT IN (SELECT hour FROM _scope) UNION ALL BY NAME SELECT * FROM _caught_up"
    )
    return "_rollup_now"


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
