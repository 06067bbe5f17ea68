"""Kafka messages -> batches: record numbers are offsets, through gaps and mixed formats."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import fastavro

from advertisex.config import Settings
from advertisex.pipeline.runner import Runner
from advertisex.schemas.sources import SOURCES
from advertisex.sources.confluent import SchemaRegistry
from advertisex.sources.kafka import to_batches
from advertisex.store import Store
from tests.conftest import SEED_BID_SCHEMA, seed_bid

HEADER = b"timestamp,user_id,campaign_id,conversion_type\n"


def test_offsets_survive_gaps_newlines_and_a_mix_of_csv_and_json(
    store: Store, settings: Settings
) -> None:
    offsets = [10, 11, 14, 15, 40]  # gaps: compaction, transaction markers
    values: list[bytes | None] = [
        b"2026-11-01 10:00:00,u1,k1,click",
        b'{"timestamp": "2026-11-01 10:00:01",\n "user_id": "u2", "campaign_id": "k1", '
        b'"conversion_type": "signup"}',  # pretty-printed over two lines
        None,  # a tombstone: no event
        b"2026-11-01 10:00:02,u3,k1",  # a field short
        b'{"timestamp": "2026-11-01 10:00:03", "user_id": "u4", "campaign_id": "k1", '
        b'"conversion_type": "nonsense"}',
    ]
    source = SOURCES["clicks_conversions"]
    pb = to_batches("clicks", 3, offsets, values, source, SchemaRegistry(), HEADER)
    assert pb.next_offset == 41
    runner = Runner(store, settings)
    for batch in pb.lines:
        runner.process_batch(batch, source)
    assert store.query(
        "SELECT source_uri, source_record, user_id FROM clicks_conversions ORDER BY 2"
    ) == [("kafka://clicks/3", 10, "u1"), ("kafka://clicks/3", 11, "u2")]
    assert store.query("SELECT source_record, reason FROM rejects ORDER BY 1") == [
        (15, "malformed_csv"),
        (40, "unknown_conversion_type"),
    ]


def _wire(schema_id: int, record: dict[str, object]) -> bytes:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, fastavro.parse_schema(SEED_BID_SCHEMA), record)
    return b"\x00" + struct.pack(">I", schema_id) + buf.getvalue()


def test_wire_messages_become_a_container_per_schema_that_avro_reads_back(
    tmp_path: Path,
) -> None:
    (tmp_path / "5.avsc").write_text(json.dumps(SEED_BID_SCHEMA))
    (tmp_path / "6.avsc").write_text(json.dumps(SEED_BID_SCHEMA))
    # Bodies of 1, 2 and 3 varint bytes of length: auction ids of 0, 200 and 20,000 chars.
    records = [seed_bid("a" * n, user=n) for n in (0, 200, 20_000, 5, 70)]
    values: list[bytes | None] = [
        _wire(5, records[0]),
        _wire(6, records[1]),
        b"\x00\x00\x00",  # cut short: no schema id
        _wire(5, records[2]),
        _wire(9, records[3]),  # no such schema
        None,  # a tombstone
        _wire(5, records[4]),
    ]
    offsets = [100, 101, 102, 103, 105, 106, 107]
    pb = to_batches(
        "bids", 0, offsets, values, SOURCES["bid_requests"], SchemaRegistry(tmp_path), b""
    )
    assert pb.next_offset == 108
    got = {}
    for wb in pb.wire:
        batch = wb.batch
        got[tuple(wb.numbers.tolist())] = list(
            fastavro.reader(io.BytesIO(batch.header + batch.data))
        )
        # Each block is where the batch says, so a bad one is isolated by its origin.
        assert [b[0] for b in batch.blocks] == wb.numbers.tolist()
        assert sum(b[3] for b in batch.blocks) == len(batch.data)
    assert got == {(100, 103, 107): [records[0], records[2], records[4]], (101,): [records[1]]}
    assert [(p.offset, p.reason, p.detail) for p in pb.poison] == [
        (102, "bad_avro_block", "not a Confluent wire-format Avro message (first bytes 00 00 00)"),
        (105, "bad_avro_block", "unknown Avro schema id 9"),
    ]
    assert pb.lines == []


def test_json_lines_keep_offsets_through_gaps_tombstones_and_carriage_returns() -> None:
    values: list[bytes | None] = [b'{"a": 1}', None, b'{"a":\r 2}', b'{"a": 3}', b"", b'{"a":\n4}']
    offsets = [7, 8, 9, 12, 13, 20]
    pb = to_batches("imps", 1, offsets, values, SOURCES["impressions"], SchemaRegistry(), b"")
    (batch,) = pb.lines
    lines = batch.data.split(b"\n")[:-1]
    assert (batch.first_record, batch.end_record, len(lines)) == (7, 20, 14)
    by_offset = {7 + i: line for i, line in enumerate(lines) if line}
    assert by_offset == {7: b'{"a": 1}', 9: b'{"a":  2}', 12: b'{"a": 3}', 20: b'{"a": 4}'}
