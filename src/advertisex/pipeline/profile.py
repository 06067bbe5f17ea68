"""Profile: which fields, of which types, a sample of a batch's records carried, by minute.

The event tables keep the canonical columns only, so a field the contract does not know (a
renamed or added field) or a field whose type changed leaves no trace there. Each batch
therefore writes a small profile to `field_stats`, inside its transaction: for a reservoir
sample of its accepted records, the count per event-time minute of each field path and JSON
type, plus the count of sampled records (field ''). The schema-drift checks (quality/) read it.

Paths are dotted with `[0]` for any array element, as the aliases of `schemas/sources.py`; the
profile descends only into containers the contract knows, so an unknown object is one field.
JSON gives each record's own fields and types; CSV its header's columns (type text) and Avro
its writer schema's fields (types under the JSON names), on every sampled record.
"""

from __future__ import annotations

import math
from datetime import datetime

import duckdb
import pyarrow as pa

from advertisex.schemas.fields import known_paths
from advertisex.schemas.sources import Source
from advertisex.store import one

# Small batches (the collector's, a Kafka partition's) are profiled up to this many records,
# so that low traffic still gives the checks enough to judge.
MIN_SAMPLE = 100

# JSON types as DuckDB's json_tree names them -> the profile's names
_JSON_TYPES = (
    "CASE WHEN t.type IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN 'number' ELSE lower(t.type) END"
)


def profile_fields(
    con: duckdb.DuckDBPyConnection,
    batch_id: int,
    source: Source,
    kind: str,
    relation: str,
    schema: pa.Schema,
    batch: str,
    now: datetime,
    percent: float,
) -> None:
    """Insert the batch's profile into field_stats: `percent` % of the records of `relation`
    (the decoded input), at least MIN_SAMPLE of them, joined to the accepted rows of `batch` (the
    transformed batch: `_record`, `event_time`, `_reason`)."""
    if percent <= 0:
        return
    row = one(con, f"SELECT count(*) FROM {relation}")
    records = int(row[0]) if row else 0
    sample_rows = max(min(records, MIN_SAMPLE), math.ceil(records * percent / 100))
    if sample_rows == 0:
        return
    sampled = f"""
      SELECT i.*, date_trunc('minute', b.event_time) AS minute
      FROM (SELECT * FROM {relation} USING SAMPLE reservoir({int(sample_rows)} ROWS)
            REPEATABLE (7)) i
      JOIN {batch} b USING (_record)
      WHERE b._reason IS NULL"""
    if kind == "json":
        fields = f"""
          SELECT s.minute, regexp_replace(substr(t.fullkey, 3), '\\[\\d+\\]', '[0]', 'g') AS field,
                 {_JSON_TYPES} AS json_type
          FROM s, json_tree(s._raw) t
          WHERE t.fullkey <> '$'
            AND (t.path = '$' OR list_contains($known,
                 regexp_replace(substr(t.path, 3), '\\[\\d+\\]', '[0]', 'g')))"""
    else:
        paths = _columns(schema) if kind == "columns" else _struct_paths(schema, source)
        values = ", ".join(f"({_lit(p)}, {_lit(t)})" for p, t in paths) or "(NULL, NULL)"
        fields = f"""
          SELECT s.minute, f.field, f.json_type
          FROM s, (VALUES {values}) f(field, json_type) WHERE f.field IS NOT NULL"""
    con.execute(
        f"""
        INSERT INTO field_stats (batch_id, source, minute, field, json_type, n, ingested_at)
        WITH s AS ({sampled})
        SELECT $batch_id, $source, minute, field, json_type, count(*), $now
        FROM ({fields}) GROUP BY ALL
        UNION ALL
        SELECT $batch_id, $source, minute, '', '', count(*), $now FROM s GROUP BY ALL
        """,
        {
            "batch_id": batch_id,
            "source": source.name,
            "now": now,
            **({"known": list(known_paths(source))} if kind == "json" else {}),
        },
    )


def _columns(schema: pa.Schema) -> list[tuple[str, str]]:
    """CSV: the header's columns (cells are text)."""
    return [(n, "text") for n in schema.names if not n.startswith("_")]


def _struct_paths(schema: pa.Schema, source: Source) -> list[tuple[str, str]]:
    """Avro: the writer schema's field paths, descending into the structs the contract knows."""
    known = set(known_paths(source))
    out: list[tuple[str, str]] = []

    def walk(prefix: str, typ: pa.DataType) -> None:
        if prefix and prefix not in known:
            return
        if pa.types.is_struct(typ):
            for i in range(typ.num_fields):
                f = typ.field(i)
                path = f"{prefix}.{f.name}" if prefix else f.name
                out.append((path, _kind(f.type)))
                walk(path, f.type)
        elif pa.types.is_list(typ) or pa.types.is_large_list(typ):
            path = f"{prefix}[0]"
            out.append((path, _kind(typ.value_type)))
            walk(path, typ.value_type)

    walk("", pa.struct([f for f in schema if not f.name.startswith("_")]))
    return out


def _kind(typ: pa.DataType) -> str:
    """An Arrow type under the profile's JSON-like names (string and large_string alike)."""
    if pa.types.is_struct(typ):
        return "object"
    if pa.types.is_list(typ) or pa.types.is_large_list(typ):
        return "array"
    if pa.types.is_string(typ) or pa.types.is_large_string(typ):
        return "varchar"
    if pa.types.is_integer(typ) or pa.types.is_floating(typ) or pa.types.is_decimal(typ):
        return "number"
    if pa.types.is_boolean(typ):
        return "boolean"
    if pa.types.is_timestamp(typ) or pa.types.is_date(typ):
        return "timestamp"
    return str(typ)


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"
