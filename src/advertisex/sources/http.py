"""HTTP request bodies -> RawBatch: NDJSON, JSON documents, CSV with a header, Avro.

A body is read whole (the collector bounds its size). NDJSON bodies of many requests are
coalesced into one batch by the micro-batcher; other bodies make batches of their own.
"""

from __future__ import annotations

import io
import zlib
from dataclasses import dataclass

import numpy as np

from advertisex.errors import InputError
from advertisex.sources.avro_blocks import MAGIC, iter_avro_batches
from advertisex.sources.batch import Format, RawBatch
from advertisex.sources.confluent import SchemaRegistry, split_wire, wire_batch
from advertisex.sources.files import _csv_header_end


class TooLarge(InputError):
    """A body (after decompression) over the configured limit."""


@dataclass(frozen=True)
class Body:
    """One request's records: NDJSON `lines` to coalesce, or whole batches of their own."""

    fmt: Format
    data: bytes = b""  # NDJSON, ending in a newline
    records: int = 0  # NDJSON records (non-blank lines), CSV records
    batches: tuple[RawBatch, ...] = ()
    wire: bytes | None = None  # the body, when it is one Confluent wire-format message
    # CSV that may share a batch with other bodies of the same header: UTF-8, quotes balanced.
    coalesce: bool = False


def gunzip(body: bytes, limit: int) -> bytes:
    """A gzip body, refused past `limit` decompressed bytes (a zip bomb stays small)."""
    d = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        out = d.decompress(body, limit + 1)
    except zlib.error as e:
        raise InputError(f"Content-Encoding is gzip but the body is not: {e}") from None
    if len(out) > limit:
        raise TooLarge(f"body is over {limit} bytes once decompressed")
    if not d.eof:
        raise InputError("the gzip body is cut short; send the whole stream")
    return out


def count_records(data: bytes) -> int:
    """Non-blank lines, as the extract stage counts them (a lone CR is blank)."""
    a = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(a == 10)
    if ends.size == 0:
        return 0
    starts = np.concatenate(([0], ends[:-1] + 1))
    length = ends - starts
    length -= (length > 0) & (a[np.maximum(ends - 1, 0)] == 13)
    return int(np.count_nonzero(length > 0))


def json_body(uri: str, body: bytes) -> Body:
    """NDJSON (one record per line) or one JSON document (an array, or a multi-line object)."""
    body = body.removeprefix(b"\xef\xbb\xbf")  # a BOM would break the line it lands in
    s = body.lstrip(b" \t\r\n")
    first = s.split(b"\n", 1)[0].rstrip()
    if s.startswith(b"[") or (s.startswith(b"{") and not first.endswith(b"}")):
        end = len(body)
        return Body(Format.JSON_DOC, batches=(RawBatch(uri, Format.JSON_DOC, body, 0, 1, end, 1),))
    data = body if body.endswith(b"\n") else body + b"\n"
    return Body(Format.NDJSON, data, count_records(data))


def csv_body(uri: str, body: bytes) -> Body:
    """CSV with a header line; the records are numbered by line like a file's."""
    end = _csv_header_end(body)
    if end < 0:
        raise InputError("the CSV body has no header line and no records; send a header first")
    header, data = body[:end], body[end:]
    if data and not data.endswith(b"\n"):
        data += b"\n"
    lines = header.count(b"\n")
    record = lines + data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)
    batch = RawBatch(
        uri,
        Format.CSV,
        data,
        end,
        lines + 1,
        len(body),
        record,
        header=header,
        header_lines=lines,
    )
    records, balanced = csv_records(data)
    return Body(Format.CSV, records=records, batches=(batch,), coalesce=balanced and _utf8(data))


def csv_records(data: bytes) -> tuple[int, bool]:
    """CSV records as the decoder counts them (non-blank, ended by a newline outside quotes),
    and whether the quotes are balanced (else the last record runs to the end of the batch).
    """
    a = np.frombuffer(data, dtype=np.uint8)
    inside = np.bitwise_xor.accumulate((a == 34).view(np.uint8)).view(bool)
    nl = np.flatnonzero(a == 10)
    ends = nl[~inside[nl]]
    starts = np.concatenate(([0], ends + 1))
    if starts[-1] == a.size:
        starts = starts[:-1]
    stops = np.append(ends, a.size)[: starts.size]
    length = stops - starts
    cr = (length > 0) & (a[np.maximum(stops - 1, 0)] == 13) if a.size else length > 0
    return int(np.count_nonzero(length - cr > 0)), not (a.size and inside[-1])


def _utf8(data: bytes) -> bool:
    # The decoder reads a batch that is not UTF-8 as cp1252: one such body must not turn
    # another's UTF-8 text into mojibake.
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def avro_body(uri: str, body: bytes, registry: SchemaRegistry, batch_bytes: int) -> Body:
    """An Avro container file, or one Confluent wire-format message."""
    if body.startswith(MAGIC):
        return Body(
            Format.AVRO, batches=tuple(iter_avro_batches(io.BytesIO(body), uri, batch_bytes))
        )
    try:
        schema_id, avro = split_wire(body)
    except ValueError as e:
        raise InputError(f"{e}; send an Avro container file or one wire-format message") from None
    one = np.ones(1, dtype=np.int64)
    batch = wire_batch(
        uri,
        registry.schema(schema_id),
        np.frombuffer(body, np.uint8),
        one * 5,
        one * len(avro),
        one,
    ).batch
    return Body(Format.AVRO, batches=(batch,))


def parse_body(
    uri: str,
    body: bytes,
    *,
    content_type: str,
    csv_default: bool,
    registry: SchemaRegistry,
    batch_bytes: int,
) -> Body:
    """The records of one body, by its content type (sniffed when it says nothing useful)."""
    ctype = content_type.split(";", 1)[0].strip().lower()
    if ctype in ("avro/binary", "application/avro") or body.startswith((MAGIC, b"\x00")):
        return avro_body(uri, body, registry, batch_bytes)
    if "csv" in ctype or (csv_default and "json" not in ctype):
        return csv_body(uri, body)
    return json_body(uri, body)
