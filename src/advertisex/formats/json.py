"""JSON decoding: NDJSON split into lines without a Python loop; whole documents via DuckDB."""

from __future__ import annotations

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from advertisex.formats.decoded import Decoded, RejectRow, chunked, rejects_table, tail_reject
from advertisex.schemas.reasons import Reason
from advertisex.sources.batch import RawBatch

_BOM = b"\xef\xbb\xbf"
# DuckDB's JSON reader accepts a comma before a closing bracket ({"a": 1,}); JSON does not.
# The cheap pattern finds candidates; the anchored one confirms the comma is outside strings.
_TRAILING_COMMA = r",\s*[}\]]"
_TRAILING_COMMA_OUTSIDE_STRINGS = r'(?s)^(?:[^"]|"(?:[^"\\]|\\.)*")*?,\s*[}\]]'
_TRAILING_COMMA_DETAIL = "a comma before a closing bracket is not valid JSON"


_BLANKS = np.zeros(256, dtype=bool)
_BLANKS[[9, 10, 13, 32]] = True  # JSON's whitespace


def lines_table(data: bytes | memoryview, start_offset: int, first_record: int) -> pa.Table:
    """One row per line: line number, byte offset, text and first non-blank byte (`_lead`),
    zero-copy over `data`.

    Each text keeps its line terminator (JSON ignores it; rejects strip it). Blank lines
    stay in with `_lead` -1: the extract stage drops them, so they are neither received nor
    rejected; `_lead` also tells an object ('{') from other values without a string scan.
    """
    a = np.frombuffer(data, dtype=np.uint8)
    # Newlines found a slice at a time: small reused temporaries instead of a batch-sized
    # mask, whose fresh pages cost more than the search.
    step = 1 << 20
    after_newlines = [
        np.flatnonzero(a[i : i + step] == 10) + (i + 1) for i in range(0, a.size, step)
    ]
    starts = np.concatenate([np.zeros(1, np.int64), *after_newlines]).astype(np.int64)
    if starts[-1] == len(data):
        starts = starts[:-1]
    offsets = np.append(starts, np.int64(len(data)))
    text = pa.Array.from_buffers(
        pa.large_string(), starts.size, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    table = pa.table(
        {
            "_record": pa.array(first_record + np.arange(starts.size, dtype=np.int64)),
            "_offset": pa.array(start_offset + starts),
            "_raw": text,
            "_lead": pa.array(_lead_bytes(a, starts, offsets[1:])),
        }
    )
    return chunked(table)


def _lead_bytes(a: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """The first non-blank byte of each line a[start:end] (-1 when it has none)."""
    pos = starts.copy()
    lead = np.zeros(starts.size, dtype=np.int32)
    has = pos < ends
    lead[has] = a[pos[has]]
    # Lines that start with a blank (rare): step over blanks, all such lines at once.
    todo = np.flatnonzero(has & _BLANKS[lead])
    for _ in range(64):
        if not todo.size:
            break
        pos[todo] += 1
        todo = todo[pos[todo] < ends[todo]]
        lead[todo] = a[pos[todo]]
        todo = todo[_BLANKS[lead[todo]]]
    for i in todo:  # lines indented by more than 64 blanks: one search each
        rest = a[pos[i] : ends[i]]
        nonblank = np.flatnonzero(~_BLANKS[rest])
        pos[i] += nonblank[0] if nonblank.size else rest.size
        lead[i] = a[pos[i]] if pos[i] < ends[i] else 0
    blank = _BLANKS[lead] | (pos >= ends)
    lead[blank] = -1
    return lead


def decode_lines(batch: RawBatch) -> Decoded:
    data: bytes | memoryview = batch.data
    start = batch.start_offset
    if start == 0 and bytes(batch.data[: len(_BOM)]) == _BOM:
        # A byte-order mark opens the file, not its first record.
        data, start = memoryview(batch.data)[len(_BOM) :], len(_BOM)
    records = lines_table(data, start, batch.first_record)
    records = _valid_utf8(records)
    rejects = tail_reject(batch)
    records = _without_trailing_commas(records, rejects)
    return Decoded("json", records, rejects_table(rejects))


def _trailing_comma(t: pa.Table) -> pa.Table:
    """The rows of `t` whose `_raw` JSON text has a comma before a closing bracket."""
    maybe = pc.match_substring_regex(t.column("_raw"), _TRAILING_COMMA)
    if not pc.any(maybe).as_py():
        return t.slice(0, 0)
    candidates = t.filter(maybe)
    return candidates.filter(
        pc.match_substring_regex(candidates.column("_raw"), _TRAILING_COMMA_OUTSIDE_STRINGS)
    )


def _without_trailing_commas(t: pa.Table, rejects: list[RejectRow]) -> pa.Table:
    """Lines with a trailing comma moved to `rejects` as malformed JSON."""
    bad = _trailing_comma(t)
    if bad.num_rows == 0:
        return t
    for row in bad.select(["_record", "_offset", "_raw"]).to_pylist():
        rejects.append(
            (
                row["_record"],
                row["_offset"],
                row["_raw"].rstrip("\r\n"),
                Reason.MALFORMED_JSON,
                None,
                _TRAILING_COMMA_DETAIL,
            )
        )
    gone = bad.column("_record").combine_chunks()
    return t.filter(pc.invert(pc.is_in(t.column("_record"), value_set=gone)))


def _valid_utf8(t: pa.Table) -> pa.Table:
    """Lines with invalid UTF-8 keep their bytes, replaced where broken, so they can be rejected."""
    col = t.column("_raw")
    try:
        col.validate(full=True)
        return t
    except pa.ArrowInvalid:
        fixed = pa.array(
            [b.decode("utf-8", errors="replace") for b in col.cast(pa.large_binary()).to_pylist()],
            pa.large_string(),
        )
        return t.set_column(t.schema.get_field_index("_raw"), "_raw", fixed)


def decode_document(batch: RawBatch, con: duckdb.DuckDBPyConnection) -> Decoded:
    """A whole JSON document: an array gives one record per element, an object one record."""
    rejects = tail_reject(batch)
    if not batch.data:
        return Decoded("json", lines_table(b"", 0, 1), rejects_table(rejects))
    text = bytes(batch.data).decode("utf-8", errors="replace").lstrip("\ufeff")
    doc = pa.table({"doc": pa.array([text], pa.large_string())})
    # A relation has no fetchone() in DuckDB 2, and a half-read execute() result blocks the
    # next register() on the connection: read the one row whole.
    rows = con.sql(
        "SELECT json_valid(doc), CASE WHEN json_valid(doc) THEN json_type(doc) END FROM doc"
    ).fetchall()
    valid, kind = rows[0] if rows else (False, None)
    detail = "not a valid JSON document"
    if valid and _trailing_comma(doc.rename_columns(["_raw"])).num_rows:
        valid, detail = False, _TRAILING_COMMA_DETAIL
    if not valid:
        rejects.append((1, batch.start_offset, text, Reason.MALFORMED_JSON, None, detail))
        return Decoded("json", lines_table(b"", 0, 1), rejects_table(rejects))
    if kind == "ARRAY":
        records = con.sql(
            "SELECT (row_number() OVER ())::BIGINT AS _record, NULL::BIGINT AS _offset, "
            "e::VARCHAR AS _raw FROM (SELECT unnest(json_extract(doc, '$[*]')) AS e FROM doc)"
        ).to_arrow_table()
    else:
        records = con.sql(
            "SELECT 1::BIGINT AS _record, $offset::BIGINT AS _offset, json(doc)::VARCHAR AS _raw "
            "FROM doc",
            params={"offset": batch.start_offset},
        ).to_arrow_table()
    records = records.cast(
        pa.schema([("_record", pa.int64()), ("_offset", pa.int64()), ("_raw", pa.large_string())])
    )
    data = records.column("_raw").combine_chunks().cast(pa.large_binary())
    buffers = data.buffers()
    firsts = np.frombuffer(buffers[1], dtype=np.int64)[data.offset : data.offset + len(data) + 1]
    body = np.frombuffer(buffers[2], dtype=np.uint8) if buffers[2] else np.zeros(0, np.uint8)
    lead = _lead_bytes(body, firsts[:-1], firsts[1:])
    records = records.append_column("_lead", pa.array(lead))
    return Decoded("json", records, rejects_table(rejects))
