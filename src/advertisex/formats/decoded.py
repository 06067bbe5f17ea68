"""What every decoder returns, and the dispatch from a RawBatch's format to its decoder."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from advertisex.schemas.reasons import Reason
from advertisex.sources.batch import Format, RawBatch

REJECT_SCHEMA = pa.schema(
    [
        ("_record", pa.int64()),
        ("_offset", pa.int64()),
        ("_raw", pa.large_string()),
        ("_reason", pa.string()),
        ("_field", pa.string()),
        ("_detail", pa.string()),
    ]
)


@dataclass(frozen=True)
class Decoded:
    """Records of one batch, in one of three shapes the extract stage knows.

    kind "json": columns _record, _offset, _raw (one JSON text per record).
    kind "columns": _record, _offset, _raw and one string column per input field.
    kind "struct": _record, _offset and the (possibly nested) Avro fields.
    """

    kind: str
    records: pa.Table
    rejects: pa.Table


RejectRow = tuple[int | None, int | None, str, Reason, str | None, str]


def rejects_table(rows: list[RejectRow]) -> pa.Table:
    """A small reject table from a few Python rows (decode rejects are rare)."""
    cols: list[Any] = list(zip(*rows, strict=True)) if rows else [() for _ in range(6)]
    return pa.table(
        [
            pa.array(cols[0], pa.int64()),
            pa.array(cols[1], pa.int64()),
            pa.array(cols[2], pa.large_string()),
            pa.array([str(r) for r in cols[3]], pa.string()),
            pa.array(cols[4], pa.string()),
            pa.array(cols[5], pa.string()),
        ],
        schema=REJECT_SCHEMA,
    )


def decode(batch: RawBatch, con: duckdb.DuckDBPyConnection) -> Decoded:
    """Decode a batch with the decoder of its format."""
    from advertisex.formats import avro, csv, json

    if batch.fmt is Format.NDJSON:
        return json.decode_lines(batch)
    if batch.fmt is Format.JSON_DOC:
        return json.decode_document(batch, con)
    if batch.fmt is Format.CSV:
        return csv.decode_csv(batch)
    return avro.decode_avro(batch)


def chunked(table: pa.Table, rows: int = 32_768) -> pa.Table:
    """The same rows in zero-copy slices: DuckDB scans an Arrow table one thread per chunk."""
    return pa.Table.from_batches(table.to_batches(max_chunksize=rows), table.schema)


def tail_reject(batch: RawBatch) -> list[RejectRow]:
    """The partial last record of a cut-short stream, as a reject row."""
    if batch.truncated_tail is None:
        return []
    text = batch.truncated_tail.decode("utf-8", errors="replace")
    return [
        (
            batch.end_record + 1,
            batch.end_offset,
            text,
            Reason.TRUNCATED_FILE,
            None,
            batch.truncation_detail or "the file ends inside a record",
        )
    ]
