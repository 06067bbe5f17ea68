"""The embedded DuckDB store: opening, schema, transactions."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from importlib.resources import files
from pathlib import Path
from typing import Any

import duckdb

from advertisex.config import Settings
from advertisex.errors import ConfigError, StoreError
from advertisex.schemas.sources import ENRICHED, ENRICHED_TYPES, SOURCES, Source

SCHEMA_VERSION = 4
_OLD_ROLLUP_HOURLY = (
    "SELECT count(*) FROM duckdb_columns() WHERE database_name = current_database() "
    "AND table_name = 'rollup_hourly' AND column_name = 'creative_id'"
)
_USERS_ROLLUP = (
    "SELECT count(*) FROM duckdb_tables() WHERE database_name = current_database() "
    "AND table_name = 'rollup_hourly_users'"
)

BOOKKEEPING = (  # every event table's columns after its own: where each row came from
    ("source_uri", "VARCHAR"),
    ("source_record", "BIGINT"),
    ("source_offset", "BIGINT"),
    ("batch_id", "BIGINT"),
    ("ingested_at", "TIMESTAMP"),
)


def column_type(name: str) -> str:
    if name == "event_time" or name.endswith("_at"):
        return "TIMESTAMP"
    if name.endswith("_micros"):
        return "BIGINT"
    if name == "won":
        return "BOOLEAN"
    if name in ENRICHED_TYPES:
        return ENRICHED_TYPES[name]
    return "VARCHAR"


def _events_ddl(source: Source) -> str:
    cols = [f"{n} {column_type(n)}" for n in source.store_columns()]
    cols[0] += " NOT NULL"
    cols += [f"{n} {t}" for n, t in BOOKKEEPING]
    return f"CREATE TABLE IF NOT EXISTS {source.table} (\n  " + ",\n  ".join(cols) + "\n)"


class Store:
    """One DuckDB database file (or :memory:) with advertisex's tables."""

    def __init__(self, con: duckdb.DuckDBPyConnection, path: str) -> None:
        self.con = con
        self.path = path

    @classmethod
    def open(cls, settings: Settings, *, read_only: bool = False) -> Store:
        path = str(settings.db)
        if path != ":memory:":
            parent = Path(path).expanduser().resolve().parent
            if not parent.is_dir():
                raise ConfigError(
                    f"database directory {parent} does not exist; create it or pass --db "
                    "with a path in an existing directory"
                )
            if read_only and not Path(path).exists():
                raise ConfigError(
                    f"database {path} does not exist; run `advertisex ingest` first or pass --db"
                )
        try:
            con = duckdb.connect(path, read_only=read_only)
        except duckdb.IOException as e:
            raise StoreError(f"cannot open database {path}: {e}", path=path) from None
        except duckdb.Error as e:
            raise StoreError(f"cannot open database {path}: {e}", path=path) from None
        configure(con, settings)
        store = cls(con, path)
        if not read_only:
            store.migrate()
        return store

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def migrate(self) -> None:
        ddl = files("advertisex.store").joinpath("schema.sql").read_text()
        with self.transaction():
            had_users = one(self.con, _USERS_ROLLUP)[0]
            self.con.execute(ddl)
            # Issue 4 narrowed rollup_hourly (no creative, site, unique users): an older one is
            # made again, and with no rollup run recorded the next refresh rebuilds them all.
            if one(self.con, _OLD_ROLLUP_HOURLY)[0]:
                self.con.execute("DROP TABLE rollup_hourly")
                self.con.execute("DELETE FROM rollup_runs")
                self.con.execute(ddl)
            # Version 4 added the unique users' tables: the next refresh fills them (all of it).
            if not had_users:
                self.con.execute("DELETE FROM rollup_runs")
            for source in SOURCES.values():
                self.con.execute(_events_ddl(source))
                # Versions 2 and 3 added the enrichment columns to older stores.
                for name in ENRICHED:
                    self.con.execute(
                        f"ALTER TABLE {source.table} ADD COLUMN IF NOT EXISTS {name} "
                        f"{column_type(name)}"
                    )
            row = one(self.con, "SELECT max(version) FROM schema_version")
            if row is None or row[0] is None or row[0] < SCHEMA_VERSION:
                self.con.execute("INSERT INTO schema_version VALUES (?, now())", [SCHEMA_VERSION])
            elif row[0] > SCHEMA_VERSION:
                raise StoreError(
                    f"database {self.path} has schema version {row[0]}, newer than this "
                    f"advertisex ({SCHEMA_VERSION}); upgrade advertisex"
                )

    @contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
        except BaseException:
            self.con.execute("ROLLBACK")
            raise
        self.con.execute("COMMIT")

    def query(self, sql: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
        return self.con.execute(sql, params or []).fetchall()


def one(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any] | None = None) -> Any:
    """The first row of a query, reading the result to its end.

    DuckDB 2 refuses new work on a connection whose last result was only partly fetched, so
    `fetchone()` on a query that returns rows would block the next statement.
    """
    rows = con.execute(sql, params or []).fetchall()
    return rows[0] if rows else None


def configure(con: duckdb.DuckDBPyConnection, settings: Settings) -> None:
    """Session settings and the shared SQL macros."""
    options = {
        "TimeZone": ("timezone", settings.timezone),
        "memory_limit": ("duckdb_memory_limit", settings.duckdb_memory_limit),
        "checkpoint_threshold": (
            "duckdb_checkpoint_threshold",
            settings.duckdb_checkpoint_threshold,
        ),
    }
    if settings.duckdb_threads:
        options["threads"] = ("duckdb_threads", str(settings.duckdb_threads))
    for option, (name, value) in options.items():
        try:
            con.execute(f"SET {option} = $value", {"value": value})
        except duckdb.Error as e:
            first = str(e).splitlines()[0]
            raise ConfigError(f"setting {name} = {value!r} is not valid: {first}") from None
    # Rows need no particular order on the way in (queries that care say ORDER BY): without
    # the guarantee DuckDB inserts from its threads as they finish and writes row groups in
    # parallel.
    con.execute("SET preserve_insertion_order = false")
    macros = files("advertisex.pipeline").joinpath("macros.sql").read_text()
    con.execute(macros)
