"""Avro object container files: bulk records encoded by polars, blocked and compressed here.

polars encodes records fast but writes one block per call, a random-order header, an
empty record name and `local-timestamp-millis`; so each slice is encoded uncompressed,
its block taken out, and the file assembled with a stable header, a proper schema and
our own deflate/snappy blocks (snappy with the CRC-32 the Avro spec asks for).
"""

from __future__ import annotations

import io
import json
import struct
import zlib
from pathlib import Path
from typing import Any

import cramjam
import polars as pl

from advertisex.generate._output import Sink

_MAGIC = b"Obj\x01"
BLOCK_ROWS = 20_000
DEFLATE_LEVEL = 1


def _long(n: int) -> bytes:
    """An Avro long: zig-zag, then base-128 varint."""
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while z & ~0x7F:
        out.append((z & 0x7F) | 0x80)
        z >>= 7
    out.append(z)
    return bytes(out)


def _read_long(buf: bytes, pos: int) -> tuple[int, int]:
    shift = result = 0
    while True:
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (result >> 1) ^ -(result & 1), pos
        shift += 7


def _read_bytes(buf: bytes, pos: int) -> tuple[bytes, int]:
    size, pos = _read_long(buf, pos)
    return buf[pos : pos + size], pos + size


def _split(container: bytes) -> tuple[dict[str, Any], list[tuple[int, bytes]]]:
    """Schema and (record count, raw data) blocks of an uncompressed container."""
    pos = len(_MAGIC)
    meta: dict[str, bytes] = {}
    while True:
        count, pos = _read_long(container, pos)
        if count == 0:
            break
        if count < 0:
            count = -count
            _, pos = _read_long(container, pos)
        for _ in range(count):
            key, pos = _read_bytes(container, pos)
            meta[key.decode()], pos = _read_bytes(container, pos)
    pos += 16
    blocks = []
    while pos < len(container):
        count, pos = _read_long(container, pos)
        data, pos = _read_bytes(container, pos)
        blocks.append((count, data))
        pos += 16
    schema: dict[str, Any] = json.loads(meta["avro.schema"])
    return schema, blocks


def _polish(node: Any, field: str, timestamp_fields: frozenset[str]) -> Any:
    """Name records after their field and mark epoch-millisecond fields as timestamp-millis."""
    if isinstance(node, list):
        return [_polish(branch, field, timestamp_fields) for branch in node]
    if isinstance(node, dict) and node.get("type") == "record":
        fields = [
            {**f, "type": _polish(f["type"], f["name"], timestamp_fields)} for f in node["fields"]
        ]
        return {"type": "record", "name": field[:1].upper() + field[1:], "fields": fields}
    if isinstance(node, dict) and node.get("type") == "array":
        return {**node, "items": _polish(node["items"], field, timestamp_fields)}
    if node == "long" and field in timestamp_fields:
        return {"type": "long", "logicalType": "timestamp-millis"}
    return node


def _compress(codec: str, data: bytes) -> bytes:
    if codec == "deflate":
        deflate = zlib.compressobj(DEFLATE_LEVEL, zlib.DEFLATED, -15)
        return deflate.compress(data) + deflate.flush()
    if codec == "snappy":
        return bytes(cramjam.snappy.compress_raw(data)) + struct.pack(">I", zlib.crc32(data))
    return data


def _header(schema: dict[str, Any], codec: str, sync: bytes) -> bytes:
    meta = {"avro.codec": codec.encode(), "avro.schema": json.dumps(schema).encode()}
    out = bytearray(_MAGIC) + _long(len(meta))
    for key, value in meta.items():
        out += _long(len(key)) + key.encode() + _long(len(value)) + value
    return bytes(out + _long(0) + sync)


def _assemble(header: bytes, codec: str, sync: bytes, blocks: list[tuple[int, bytes]]) -> bytes:
    out = [header]
    for count, data in blocks:
        payload = _compress(codec, data)
        out += [_long(count), _long(len(payload)), payload, sync]
    return b"".join(out)


def write_frame(
    sink: Sink,
    path: Path,
    frame: pl.DataFrame,
    *,
    record: str,
    namespace: str,
    codec: str,
    sync: bytes,
    timestamp_fields: frozenset[str] = frozenset(),
) -> None:
    """Write `frame` as an Avro container with `codec` ("deflate"/"snappy"/"null")."""
    schema: dict[str, Any] | None = None
    blocks: list[tuple[int, bytes]] = []
    for offset in range(0, max(frame.height, 1), BLOCK_ROWS):
        buf = io.BytesIO()
        frame.slice(offset, BLOCK_ROWS).write_avro(buf, compression="uncompressed")
        slice_schema, slice_blocks = _split(buf.getvalue())
        schema = schema or slice_schema
        blocks += [b for b in slice_blocks if b[0]]
    assert schema is not None
    fields = _polish(schema, record, timestamp_fields)["fields"]
    polished = {"type": "record", "name": record, "namespace": namespace, "fields": fields}
    header = _header(polished, codec, sync)
    sink.put(path, lambda: _assemble(header, codec, sync, blocks))
