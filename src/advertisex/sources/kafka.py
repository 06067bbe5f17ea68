"""Kafka messages of one partition -> RawBatches whose record numbers are the Kafka offsets.

The messages' values are joined once (`b"\\n".join`) and everything else is numpy over that
buffer: no Python step per message. JSON and CSV messages become lines; a gap in the offsets
(compaction, transaction markers) becomes blank lines, which are not records, so line number
= offset; a newline inside a message becomes a space. Avro messages in the Confluent wire
format become one container per schema (the 5-byte prefixes stripped in bulk), mapped back to
their offsets. A message that fits no batch (cut short, unknown schema) is a `Poison`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

import numpy as np

from advertisex.errors import InputError
from advertisex.schemas.reasons import Reason
from advertisex.schemas.sources import Source
from advertisex.sources.batch import Format, RawBatch
from advertisex.sources.confluent import SchemaRegistry, WireBatch, split_wire, wire_batch

# What a message holds, by its first byte.
_NONE, _JSON, _CSV, _WIRE = 0, 1, 2, 3
_NL, _CR, _SPACE = 10, 13, 32


@dataclass(frozen=True)
class Poison:
    offset: int
    reason: Reason
    detail: str
    raw: str


@dataclass
class PartitionBatches:
    """What one partition's messages became; `next_offset` is where to resume after them."""

    uri: str
    next_offset: int
    lines: list[RawBatch] = field(default_factory=list)
    wire: list[WireBatch] = field(default_factory=list)
    poison: list[Poison] = field(default_factory=list)


def partition_uri(topic: str, partition: int) -> str:
    return f"kafka://{topic}/{partition}"


def distinct(a: np.ndarray) -> list[int]:
    """The distinct values of an int array, sorted (np.unique imports numpy.ma on first use:
    ~0.1 s, which a consumer's first batch would pay)."""
    s = np.sort(a)
    return s[np.flatnonzero(np.diff(s, prepend=s[:1] - 1))].tolist()  # type: ignore[no-any-return]


@dataclass(frozen=True)
class _Joined:
    """The values joined by newlines: message i is data[starts[i] : starts[i] + lens[i]]."""

    raw: bytes
    data: np.ndarray  # uint8, read-only view of raw
    starts: np.ndarray
    lens: np.ndarray

    @classmethod
    def of(cls, values: Sequence[bytes | None]) -> _Joined:
        # Tombstones (None) hold no event: empty lines (rare, so a Python pass is fine).
        vals = cast(Sequence[bytes], values) if None not in values else [v or b"" for v in values]
        lens = np.fromiter(map(len, vals), np.int64, len(vals))
        raw = b"\n".join([*vals, b""])
        return cls(raw, np.frombuffer(raw, np.uint8), np.cumsum(lens + 1) - (lens + 1), lens)


def to_batches(
    topic: str,
    partition: int,
    offsets: Sequence[int] | np.ndarray,
    values: Sequence[bytes | None],
    source: Source,
    registry: SchemaRegistry,
    csv_header: bytes,
) -> PartitionBatches:
    """One partition's messages (in offset order) as batches of each format they hold."""
    offs = np.asarray(offsets, dtype=np.int64)
    uri = partition_uri(topic, partition)
    out = PartitionBatches(uri, int(offs[-1]) + 1)
    j = _Joined.of(values)
    kinds = _kinds(j, source)
    for fmt, kind in ((Format.NDJSON, _JSON), (Format.CSV, _CSV)):
        keep = kinds == kind
        if keep.any():
            header = csv_header if fmt is Format.CSV else b""
            out.lines.append(_lines(uri, fmt, offs, j, keep, header))
    if (kinds == _WIRE).any():
        _wire(out, offs, values, j, kinds == _WIRE, registry)
    return out


def _kinds(j: _Joined, source: Source) -> np.ndarray:
    first = j.data[np.minimum(j.starts, j.data.size - 1)]
    kinds = np.full(j.lens.size, _JSON, dtype=np.int8)
    if source.name == "clicks_conversions":
        kinds[(first != ord("{")) & (first != ord("["))] = _CSV
    kinds[first == 0] = _WIRE
    kinds[j.lens == 0] = _NONE  # a tombstone or empty message holds no event
    return kinds


def _lines(
    uri: str, fmt: Format, offs: np.ndarray, j: _Joined, keep: np.ndarray, header: bytes
) -> RawBatch:
    """The kept messages, one per line, at line number = offset."""
    if keep.all() and not offs[-1] - offs[0] + 1 - offs.size and _one_line_each(j):
        raw = j.raw  # the usual case: as joined, no copy
        return RawBatch(uri, fmt, raw, 0, int(offs[0]), len(raw), int(offs[-1]), header=header)
    data = j.data
    if not _one_line_each(j):
        # A newline or CR inside a message: a space, so the message stays one line.
        data = data.copy()
        inside = np.ones(data.size, dtype=bool)
        inside[j.starts + j.lens] = False
        data[inside & ((data == _NL) | (data == _CR))] = _SPACE
    lens = j.lens
    if not keep.all():  # other formats' messages become blank lines
        lens = np.where(keep, j.lens, 0)
        data = data[np.repeat(keep, j.lens + 1) | (data == _NL)]
    gaps = np.diff(offs) - 1
    if gaps.any():  # offsets with no message become blank lines
        starts = np.cumsum(lens + 1) - (lens + 1)
        data = np.insert(data, np.repeat(starts[1:], gaps), _NL)
    raw = data.tobytes()
    return RawBatch(uri, fmt, raw, 0, int(offs[0]), len(raw), int(offs[-1]), header=header)


def _one_line_each(j: _Joined) -> bool:
    """No message holds a newline or CR of its own."""
    return j.raw.count(b"\n") == j.lens.size and b"\r" not in j.raw


def _wire(
    out: PartitionBatches,
    offs: np.ndarray,
    values: Sequence[bytes | None],
    j: _Joined,
    is_wire: np.ndarray,
    registry: SchemaRegistry,
) -> None:
    picked = np.flatnonzero(is_wire)
    for i in picked[j.lens[picked] < 5].tolist():  # cut short: no schema id
        _poison(out, int(offs[i]), values[i] or b"")
    picked = picked[j.lens[picked] >= 5]
    head = j.data[j.starts[picked, None] + np.arange(1, 5)].astype(np.int64)
    ids = (head[:, 0] << 24) | (head[:, 1] << 16) | (head[:, 2] << 8) | head[:, 3]
    for schema_id in distinct(ids):
        mine = picked[ids == schema_id]
        try:
            schema = registry.schema(schema_id)
        except InputError as e:
            for i in mine.tolist():
                out.poison.append(
                    Poison(int(offs[i]), Reason.BAD_AVRO_BLOCK, e.message, _hex(values[i]))
                )
            continue
        bodies = (j.starts[mine] + 5, j.lens[mine] - 5)
        out.wire.append(wire_batch(out.uri, schema, j.data, *bodies, offs[mine]))


def _poison(out: PartitionBatches, offset: int, value: bytes) -> None:
    try:
        split_wire(value)
        detail = "not a Confluent wire-format Avro message"
    except ValueError as e:
        detail = str(e)
    out.poison.append(Poison(offset, Reason.BAD_AVRO_BLOCK, detail, _hex(value)))


def _hex(value: bytes | None) -> str:
    return (value or b"")[:64].hex(" ")
