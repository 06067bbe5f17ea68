"""Avro decoding: a batch of whole blocks decoded by polars, bad blocks isolated.

polars decodes a batch's small container in native code; a batch it cannot read is retried
block by block, and a block that still fails is quarantined as `bad_avro_block` while the
rest of the file goes on.
"""

from __future__ import annotations

import io
import json
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from advertisex.formats.decoded import Decoded, rejects_table
from advertisex.schemas.reasons import Reason
from advertisex.sources.batch import RawBatch


def decode_avro(batch: RawBatch) -> Decoded:
    rejects: list[tuple[int | None, int | None, str, Reason, str | None, str]] = []
    if batch.truncated_tail is not None:
        rejects.append(
            (
                batch.end_record + 1,
                batch.end_offset,
                batch.truncated_tail.hex(" "),
                Reason.BAD_AVRO_BLOCK,
                None,
                batch.truncation_detail,
            )
        )
    if not batch.blocks:
        return Decoded("struct", _no_records(), rejects_table(rejects))
    tables: list[pa.Table] = []
    good: list[tuple[int, int, int, int]] = []
    record = batch.first_record
    # Blocks are read in groups of about _GROUP_RECORDS: each group becomes one Arrow chunk,
    # and DuckDB scans chunks in parallel. (Slicing one big table instead would leave nested
    # columns with offsets, which DuckDB refuses.)
    for group in _groups(batch.blocks):
        try:
            first, last = group[0], group[-1]
            tables.append(_read(batch.header + batch.data[first[2] : last[2] + last[3]]))
            good += group
            record += sum(b[1] for b in group)
            continue
        except Exception:  # any decoder failure: isolate the bad block(s)
            pass
        for block in group:
            offset, count, start, length = block
            try:
                tables.append(_read(batch.header + batch.data[start : start + length]))
                good.append(block)
            except Exception as e:
                rejects.append(
                    (
                        record,
                        offset,
                        batch.data[start : start + 64].hex(" "),
                        Reason.BAD_AVRO_BLOCK,
                        None,
                        f"block of {count} records at byte {offset}: {e}"[:500],
                    )
                )
            record += count
    if not tables:  # every block was bad
        return Decoded("struct", _no_records(), rejects_table(rejects))
    table = pa.concat_tables(tables, promote_options="permissive")
    numbers, offsets = _origins(batch, good)
    table = table.append_column("_offset", pa.array(offsets))
    table = table.append_column("_record", pa.array(numbers))
    return Decoded("struct", table, rejects_table(rejects))


_GROUP_RECORDS = 32_768


def _groups(blocks: Sequence[tuple[int, int, int, int]]) -> list[list[tuple[int, int, int, int]]]:
    """Consecutive blocks in groups of at least _GROUP_RECORDS records (the last may be less)."""
    groups: list[list[tuple[int, int, int, int]]] = [[]]
    count = 0
    for block in blocks:
        if count >= _GROUP_RECORDS:
            groups.append([])
            count = 0
        groups[-1].append(block)
        count += block[1]
    return groups


def _no_records() -> pa.Table:
    return pa.table({"_record": pa.array([], pa.int64()), "_offset": pa.array([], pa.int64())})


def _origins(
    batch: RawBatch, good: list[tuple[int, int, int, int]]
) -> tuple[np.ndarray, np.ndarray]:
    """Record numbers and block offsets of the records in the good blocks."""
    all_counts = np.array([b[1] for b in batch.blocks], dtype=np.int64)
    firsts = batch.first_record + np.concatenate(([0], np.cumsum(all_counts)[:-1]))
    index = {b[0]: i for i, b in enumerate(batch.blocks)}
    pick = np.array([index[b[0]] for b in good], dtype=np.int64)
    counts = all_counts[pick]
    numbers = np.repeat(firsts[pick], counts) + (
        np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)
    )
    offsets = np.repeat(np.array([b[0] for b in good], dtype=np.int64), counts)
    return numbers.astype(np.int64), offsets


def _read(container: bytes) -> pa.Table:
    """One small container as Arrow: polars first, fastavro for what polars cannot read."""
    try:
        return pl.read_avro(io.BytesIO(container)).to_arrow()
    except Exception:  # polars lacks some Avro types (maps, enums in unions, mixed unions)
        import fastavro

        return _from_records(list(fastavro.reader(io.BytesIO(container))))


def _from_records(records: list[Any]) -> pa.Table:
    """fastavro's records as Arrow.

    A schema that is not a record ("int", a union) gives one column, `value`; a field Arrow
    cannot give one type (a union of string and int) is kept as text.
    """
    if not all(isinstance(r, dict) for r in records):
        records = [{"value": r} for r in records]
    try:
        return pa.Table.from_pylist(records)
    except pa.ArrowException:
        pass
    columns: dict[str, pa.Array] = {}
    for name in dict.fromkeys(k for r in records for k in r):
        values = [r.get(name) for r in records]
        try:
            columns[name] = pa.array(values)
        except pa.ArrowException:
            columns[name] = pa.array(
                [
                    v if v is None or isinstance(v, str) else json.dumps(v, default=str)
                    for v in values
                ],
                pa.large_string(),
            )
    return pa.table(columns)
