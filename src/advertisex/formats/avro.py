"""Avro decoding: a batch of whole blocks decoded by polars, bad blocks isolated.

polars decodes a batch's small container in native code; a batch it cannot read is retried
block by block, and a block that still fails is quarantined as `bad_avro_block` while the
rest of the file goes on.
"""

from __future__ import annotations

import io

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
            (batch.end_record + 1, batch.end_offset, batch.truncated_tail.hex(" "),
             Reason.BAD_AVRO_BLOCK, None, batch.truncation_detail)
        )
    if not batch.blocks:
        return Decoded("struct", pa.table({"_record": pa.array([], pa.int64()),
                                           "_offset": pa.array([], pa.int64())}),
                       rejects_table(rejects))
    tables: list[pa.Table] = []
    try:
        tables.append(_read(batch.header + batch.data))
        good = list(batch.blocks)
    except Exception:  # noqa: BLE001 - any decoder failure: isolate the bad block(s)
        good = []
        record = batch.first_record
        for block in batch.blocks:
            offset, count, start, length = block
            try:
                tables.append(_read(batch.header + batch.data[start : start + length]))
                good.append(block)
            except Exception as e:  # noqa: BLE001
                rejects.append((record, offset, batch.data[start : start + 64].hex(" "),
                                Reason.BAD_AVRO_BLOCK, None,
                                f"block of {count} records at byte {offset}: {e}"[:500]))
            record += count
    table = pa.concat_tables(tables, promote_options="permissive") if tables else pa.table({})
    numbers, offsets = _origins(batch, good)
    table = table.append_column("_offset", pa.array(offsets)) if table.num_columns else table
    table = table.append_column("_record", pa.array(numbers)) if table.num_columns else table
    return Decoded("struct", table, rejects_table(rejects))


def _origins(batch: RawBatch, good: list[tuple[int, int, int, int]]) -> tuple[np.ndarray, np.ndarray]:
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
    except Exception:  # noqa: BLE001 - polars lacks some Avro types (maps, enums in unions)
        import fastavro

        records = list(fastavro.reader(io.BytesIO(container)))
        return pa.Table.from_pylist(records)
