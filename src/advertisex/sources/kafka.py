"""Kafka messages of one partition -> RawBatches whose record numbers are the Kafka offsets.

JSON and CSV messages become lines; a gap in the offsets (compaction, transaction markers)
becomes blank lines, which are not records, so line number = offset. Avro messages in the
Confluent wire format become one container per schema, mapped back to their offsets. A
message that fits no batch (not wire format, unknown schema) is a `Poison` with its offset.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from advertisex.errors import InputError
from advertisex.schemas.reasons import Reason
from advertisex.schemas.sources import Source
from advertisex.sources.batch import Format, RawBatch
from advertisex.sources.confluent import SchemaRegistry, WireBatch, split_wire, wire_batch


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


def to_batches(
    topic: str,
    partition: int,
    offsets: Sequence[int],
    values: Sequence[bytes | None],
    source: Source,
    registry: SchemaRegistry,
    csv_header: bytes,
) -> PartitionBatches:
    """One partition's messages (in offset order) as batches of each format they hold."""
    uri = partition_uri(topic, partition)
    out = PartitionBatches(uri, offsets[-1] + 1)
    kinds = [_kind(v, source) for v in values]
    if all(k == "json" for k in kinds):
        out.lines.append(_lines(uri, Format.NDJSON, offsets, values))
    else:
        for fmt, kind in ((Format.NDJSON, "json"), (Format.CSV, "csv")):
            if kind in kinds:
                picked = [v if k == kind else None for v, k in zip(values, kinds, strict=True)]
                out.lines.append(_lines(uri, fmt, offsets, picked, csv_header))
        if "wire" in kinds:
            _wire(out, offsets, values, kinds, registry)
    return out


def _kind(value: bytes | None, source: Source) -> str:
    if not value:
        return "none"  # a tombstone or empty message holds no event
    if value[:1] == b"\x00":
        return "wire"
    if source.name == "clicks_conversions" and value[:1] not in (b"{", b"["):
        return "csv"
    return "json"


def _lines(
    uri: str,
    fmt: Format,
    offsets: Sequence[int],
    values: Sequence[bytes | None],
    csv_header: bytes = b"",
) -> RawBatch:
    first, last = offsets[0], offsets[-1]
    vals = [v or b"" for v in values]
    if last - first + 1 == len(vals):
        data = b"\n".join(vals) + b"\n"
        if data.count(b"\n") != len(vals):  # a message with a newline inside: one line each
            data = b"\n".join(v.replace(b"\r", b" ").replace(b"\n", b" ") for v in vals) + b"\n"
    else:
        parts: list[bytes] = []
        expected = first
        for off, v in zip(offsets, vals, strict=True):
            parts.append(b"\n" * (off - expected))
            parts.append(v.replace(b"\r", b" ").replace(b"\n", b" ") + b"\n")
            expected = off + 1
        data = b"".join(parts)
    header = csv_header if fmt is Format.CSV else b""
    return RawBatch(uri, fmt, data, 0, first, len(data), last, header=header)


def _wire(
    out: PartitionBatches,
    offsets: Sequence[int],
    values: Sequence[bytes | None],
    kinds: list[str],
    registry: SchemaRegistry,
) -> None:
    by_schema: dict[int, tuple[list[int], list[memoryview]]] = {}
    for off, v, k in zip(offsets, values, kinds, strict=True):
        if k != "wire" or v is None:
            continue
        try:
            schema_id, body = split_wire(v)
            registry.schema(schema_id)
        except (ValueError, InputError) as e:
            detail = e.message if isinstance(e, InputError) else str(e)
            out.poison.append(Poison(off, Reason.BAD_AVRO_BLOCK, detail, v[:64].hex(" ")))
            continue
        nums, bodies = by_schema.setdefault(schema_id, ([], []))
        nums.append(off)
        bodies.append(body)
    for schema_id, (nums, bodies) in by_schema.items():
        out.wire.append(wire_batch(out.uri, registry.schema(schema_id), bodies, nums))
