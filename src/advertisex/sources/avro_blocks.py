"""Avro object container files walked block by block into RawBatches of whole blocks.

A Python step per block, never per record: each batch is a small container of its own
(header + blocks) that a decoder reads in native code, and each block keeps its file offset.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import BinaryIO

from advertisex.errors import InputError
from advertisex.sources.batch import Format, RawBatch

MAGIC = b"Obj\x01"
SYNC_SIZE = 16
_MAX_META = 16 * 1024 * 1024


@dataclass(frozen=True)
class Block:
    offset: int  # in the file
    count: int
    start: int  # in the batch's data
    length: int


def _read_long(f: BinaryIO) -> int | None:
    """A zig-zag varint; None at a clean end of file."""
    shift = 0
    acc = 0
    while True:
        b = f.read(1)
        if not b:
            if shift == 0:
                return None
            raise EOFError("file ends inside a number")
        acc |= (b[0] & 0x7F) << shift
        if not b[0] & 0x80:
            return (acc >> 1) ^ -(acc & 1)
        shift += 7
        if shift > 63:
            raise ValueError("number longer than 64 bits")


def read_header(f: BinaryIO, uri: str) -> tuple[bytes, dict[str, bytes], bytes]:
    """The raw header bytes, its metadata and the sync marker."""
    start = f.tell()
    if f.read(4) != MAGIC:
        f.seek(start)
        head = f.read(4)
        raise InputError(
            f"cannot read bid requests from {uri}: not an Avro container "
            f"(first bytes {head.hex(' ')}); pass --format json if these are JSON",
            path=uri,
        )
    meta: dict[str, bytes] = {}
    try:
        while True:
            count = _read_long(f)
            if count is None:
                raise EOFError("file ends inside the header")
            if count == 0:
                break
            if count < 0:
                count = -count
                _read_long(f)  # byte size of the block of entries
            for _ in range(count):
                klen = _read_long(f) or 0
                key = f.read(klen)
                vlen = _read_long(f) or 0
                if vlen < 0 or vlen > _MAX_META:
                    raise ValueError(f"metadata value of {vlen} bytes")
                meta[key.decode("utf-8", errors="replace")] = f.read(vlen)
        sync = f.read(SYNC_SIZE)
        if len(sync) != SYNC_SIZE:
            raise EOFError("file ends inside the header")
    except (EOFError, ValueError) as e:
        raise InputError(f"cannot read Avro header of {uri}: {e}", path=uri) from None
    if "avro.schema" not in meta:
        raise InputError(f"cannot read {uri}: Avro header has no schema", path=uri)
    end = f.tell()
    f.seek(start)
    header = f.read(end - start)
    return header, meta, sync


def iter_avro_batches(
    f: BinaryIO, uri: str, batch_bytes: int, resume_offset: int = 0, resume_record: int = 0
) -> Iterator[RawBatch]:
    header, _meta, sync = read_header(f, uri)
    offset = len(header)
    record = 0
    if resume_offset > offset:
        f.seek(resume_offset)
        offset, record = resume_offset, resume_record
    blocks: list[Block] = []
    parts: list[bytes] = []
    size = 0
    first_record = record + 1
    batch_start = offset
    problem = ""
    while True:
        block_offset = f.tell()
        try:
            count = _read_long(f)
            if count is None:
                break
            length = _read_long(f)
            if length is None:
                raise EOFError(f"file ends inside the block at byte {block_offset}")
            if count < 0 or length < 0:
                raise ValueError(f"block at byte {block_offset} has a negative size")
            body = f.read(length)
            marker = f.read(SYNC_SIZE)
            if len(body) != length or len(marker) != SYNC_SIZE:
                raise EOFError(f"file ends inside the block at byte {block_offset}")
            if marker != sync:
                raise ValueError(f"block at byte {block_offset} is not followed by the sync marker")
        except (EOFError, ValueError) as e:
            problem = str(e)
            break
        raw = _encode_long(count) + _encode_long(length) + body + marker
        blocks.append(Block(block_offset, count, size, len(raw)))
        parts.append(raw)
        size += len(raw)
        record += count
        offset = f.tell()
        if size >= batch_bytes:
            yield _batch(uri, header, parts, blocks, batch_start, first_record, offset, record)
            parts, blocks, size = [], [], 0
            first_record, batch_start = record + 1, offset
    tail = None
    if problem:
        f.seek(offset)
        tail = f.read(256)
    yield _batch(
        uri,
        header,
        parts,
        blocks,
        batch_start,
        first_record,
        offset,
        record,
        tail=tail,
        detail=problem,
        final=True,
    )


def _batch(
    uri: str,
    header: bytes,
    parts: list[bytes],
    blocks: list[Block],
    start: int,
    first_record: int,
    end: int,
    end_record: int,
    tail: bytes | None = None,
    detail: str = "",
    final: bool = False,
) -> RawBatch:
    return RawBatch(
        uri,
        Format.AVRO,
        b"".join(parts),
        start,
        first_record,
        end,
        end_record,
        header=header,
        truncated_tail=tail,
        truncation_detail=detail,
        final=final,
        blocks=tuple((b.offset, b.count, b.start, b.length) for b in blocks),
    )


def _encode_long(n: int) -> bytes:
    z = (n << 1) ^ (n >> 63)
    out = bytearray()
    while True:
        if z & ~0x7F:
            out.append((z & 0x7F) | 0x80)
            z >>= 7
        else:
            out.append(z)
            return bytes(out)
