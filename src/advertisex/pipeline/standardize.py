"""Standardize: canonical values (UTC time, host names, micros, ids) for the store columns."""

from __future__ import annotations

from advertisex.schemas.sources import ENRICHED, ENRICHED_TYPES, MONEY, Source


def _key_part(expr: str) -> str:
    return f"coalesce({expr}::VARCHAR, '')"


def event_id_sql(source: Source) -> str:
    """The record's own id, else a deterministic hash of its natural key."""
    own = f"c_{source.id_column}"
    if not source.natural_key:
        return own
    parts = " || chr(31) || ".join(_key_part(_canonical(source, k)) for k in source.natural_key)
    return f"coalesce({own}, 'h:' || md5({parts}))"


def _canonical(source: Source, name: str) -> str:
    return {
        "event_time": "t_event_time",
        "site": "advx_domain(c_site)",
        "event_type": "lower(c_event_type)",
    }.get(name, f"c_{name}")


def standardize_sql(source: Source, relation: str, ingest_time_sql: str) -> str:
    """SELECT with the store table's columns (plus the bookkeeping ones)."""
    cols = [f"{event_id_sql(source)} AS event_id"]
    if source.name == "bid_requests":
        # Bid requests often carry no time of their own: they are stamped on arrival.
        cols.append(f"coalesce(t_event_time, {ingest_time_sql}) AS event_time")
    else:
        cols.append("t_event_time AS event_time")
    for col in source.columns:
        n = col.name
        if n in (source.id_column, "event_time"):
            continue  # event_id and event_time come first, above
        if n == "site":
            cols.append("advx_domain(c_site) AS site")
        elif n in MONEY:
            cols.append(f"advx_micros(t_{n}) AS {n}_micros")
        elif n == "currency":
            cols.append("upper(coalesce(c_currency, 'USD')) AS currency")
        elif n == "event_type":
            cols.append("lower(c_event_type) AS event_type")
        elif n == "country":
            cols.append("upper(c_country) AS country")
        elif n == "won":
            cols.append("try_cast(c_won AS BOOLEAN) AS won")
        else:
            cols.append(f"c_{n} AS {n}")
    own = {c.name for c in source.columns}
    cols += [f"NULL::{ENRICHED_TYPES.get(n, 'VARCHAR')} AS {n}" for n in ENRICHED if n not in own]
    return f"""
SELECT _record, _offset, _reason, _field, _detail, {", ".join(cols)}
FROM {relation}"""
