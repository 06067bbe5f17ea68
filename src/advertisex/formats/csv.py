"""CSV decoding: quote-aware record split in numpy, field parsing by pyarrow's CSV reader.

The split gives every record its line number, byte offset, raw text and field count without
a Python loop, so records with the wrong number of fields are quarantined exactly and the rest
are parsed in one vectorized call.
"""

from __future__ import annotations

import csv
import io

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv

from advertisex.formats.decoded import Decoded, chunked, rejects_table, tail_reject
from advertisex.schemas.reasons import Reason
from advertisex.sources.batch import RawBatch

_DELIMITERS = (",", "\t", ";", "|")


def header_names(header: bytes) -> tuple[list[str], str]:
    """Column names (trimmed, lower-case, unique) and the delimiter, from the header line."""
    text = _text(header).lstrip("\ufeff").strip("\r\n").replace("\x00", "")
    delim = max(_DELIMITERS, key=text.count) if text else ","
    try:
        row = next(csv.reader(io.StringIO(text, newline=""), delimiter=delim), [])
    except csv.Error:
        row = text.split(delim)
    names: list[str] = []
    for raw in row:
        name = raw.strip().lower() or f"column_{len(names) + 1}"
        while name in names:
            name += "_"
        names.append(name)
    return names, delim


def _text(b: bytes) -> str:
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return b.decode("cp1252", errors="replace")


def decode_csv(batch: RawBatch) -> Decoded:
    names, delim = header_names(batch.header)
    data = batch.data
    if not _is_utf8(data):
        # Not UTF-8: read as Windows-1252 (a superset of Latin-1), the usual culprit.
        data = bytes(data).decode("cp1252", errors="replace").encode("utf-8")
    a = np.frombuffer(data, dtype=np.uint8)
    nl_at, ends, sep_at, open_quote, quoted_newlines = _scan(a, ord(delim))
    starts = np.concatenate(([0], ends + 1)).astype(np.int64)
    if starts[-1] == len(data):
        starts = starts[:-1]
    stops = np.append(ends, np.int64(len(data)))[: starts.size]  # exclusive, before the \n
    n = starts.size
    # Lines before each record: numbers every record by the line it starts on.
    line_no = batch.first_record + np.searchsorted(nl_at, starts).astype(np.int64)
    # Fields = delimiters outside quotes + 1.
    fields = np.searchsorted(sep_at, stops) - np.searchsorted(sep_at, starts) + 1
    length = stops - starts
    last_cr = (length > 0) & (a[np.maximum(stops - 1, 0)] == 13) if n else np.zeros(0, bool)
    blank = (length - last_cr) <= 0
    unterminated = np.zeros(n, dtype=bool)
    if n and open_quote:
        unterminated[-1] = True
    good = (fields == len(names)) & ~blank & ~unterminated
    bad = ~good & ~blank

    offsets = np.append(starts, np.int64(len(data)))
    raw = pa.Array.from_buffers(
        pa.large_string(), n, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    )
    reject_rows = tail_reject(batch)
    for i in np.flatnonzero(bad):
        text = bytes(data[starts[i] : stops[i]]).decode("utf-8", errors="replace").rstrip("\r")
        detail = (
            "unterminated quoted field"
            if unterminated[i]
            else f"expected {len(names)} fields, found {int(fields[i])}"
        )
        reject_rows.append(
            (
                int(line_no[i]),
                batch.start_offset + int(starts[i]),
                text,
                Reason.MALFORMED_CSV,
                None,
                detail,
            )
        )

    keep = np.flatnonzero(good)
    if keep.size == n:
        body: bytes | memoryview = data
    else:
        # The kept records' bytes, run by run (a run ends at each dropped record), and their
        # text over the new buffer: no per-byte mask, no gather of strings.
        dropped = np.flatnonzero(~good)
        run_starts = np.concatenate(([0], offsets[dropped + 1]))
        run_stops = np.append(offsets[dropped], offsets[-1])
        body = b"".join(data[lo:hi] for lo, hi in zip(run_starts, run_stops, strict=True))
        sizes = offsets[keep + 1] - offsets[keep]
        kept_offsets = np.concatenate(([0], np.cumsum(sizes))).astype(np.int64)
        raw = pa.Array.from_buffers(
            pa.large_string(), keep.size, [None, pa.py_buffer(kept_offsets), pa.py_buffer(body)]
        )
    parsed = _parse(body, names, delim, int(keep.size), quoted_newlines)
    cols = {
        "_record": pa.array(line_no[keep]),
        "_offset": pa.array(batch.start_offset + starts[keep]),
        "_raw": raw,
    }
    for name in names:
        cols[name] = parsed.column(name)
    return Decoded("columns", chunked(pa.table(cols)), rejects_table(reject_rows))


def _scan(
    a: np.ndarray, delim: int, step: int = 1 << 20
) -> tuple[np.ndarray, np.ndarray, np.ndarray, bool, bool]:
    """Newlines, record ends (newlines outside quotes) and delimiters outside quotes, whether
    the text ends inside quotes and whether any newline is quoted.

    Quote parity (RFC 4180 doubles a quote inside a field, so parity alone tells inside from
    outside) is carried from slice to slice: the temporaries stay small and reused, where
    whole-batch ones cost a fresh page fault per 4 KiB.
    """
    parity = np.uint8(0)
    newlines, ends, seps = [], [], []
    quoted_newline = False
    for i in range(0, a.size, step):
        c = a[i : i + step]
        inside = np.bitwise_xor.accumulate((c == 34).view(np.uint8)) ^ parity
        nl = np.flatnonzero(c == 10)
        outside = inside[nl] == 0
        quoted_newline = quoted_newline or not bool(outside.all())
        newlines.append(nl + i)
        ends.append(nl[outside] + i)
        sep = np.flatnonzero(c == delim)
        seps.append(sep[inside[sep] == 0] + i)
        parity = inside[-1]
    empty = np.zeros(0, np.int64)
    return (
        np.concatenate(newlines) if newlines else empty,
        np.concatenate(ends) if ends else empty,
        np.concatenate(seps) if seps else empty,
        bool(parity),
        quoted_newline,
    )


def _is_utf8(data: bytes | memoryview) -> bool:
    arr = pa.Array.from_buffers(
        pa.large_string(),
        1,
        [None, pa.py_buffer(np.array([0, len(data)], np.int64)), pa.py_buffer(data)],
    )
    try:
        arr.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _parse(
    body: bytes | memoryview, names: list[str], delim: str, expected: int, quoted_newlines: bool
) -> pa.Table:
    """Fields of well-formed records as strings; empty fields stay empty strings."""
    string_types = {name: pa.large_string() for name in names}
    if expected == 0:
        return pa.table({n: pa.array([], pa.large_string()) for n in names})
    try:
        table = pacsv.read_csv(
            pa.BufferReader(pa.py_buffer(body)),
            read_options=pacsv.ReadOptions(column_names=names, block_size=8 << 20),
            parse_options=pacsv.ParseOptions(
                delimiter=delim, newlines_in_values=quoted_newlines, ignore_empty_lines=True
            ),
            convert_options=pacsv.ConvertOptions(
                column_types=string_types,
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except pa.ArrowInvalid:
        return _parse_each(body, names, delim)
    if table.num_rows != expected:
        # pyarrow read a quote differently from the split (a bare quote inside a field):
        # parse each record on its own so rows and origins stay aligned.
        return _parse_each(body, names, delim)
    return table


def _parse_each(body: bytes | memoryview, names: list[str], delim: str) -> pa.Table:
    text = bytes(body).decode("utf-8", errors="replace")
    rows = [r for r in csv.reader(io.StringIO(text, newline=""), delimiter=delim) if r]
    return pa.table(
        {
            n: pa.array([r[i] if i < len(r) else "" for r in rows], pa.large_string())
            for i, n in enumerate(names)
        }
    )
