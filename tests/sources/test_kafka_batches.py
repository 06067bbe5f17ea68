"""Kafka messages -> batches: record numbers are offsets, through gaps and mixed formats."""

from __future__ import annotations

from advertisex.config import Settings
from advertisex.pipeline.runner import Runner
from advertisex.schemas.sources import SOURCES
from advertisex.sources.confluent import SchemaRegistry
from advertisex.sources.kafka import to_batches
from advertisex.store import Store

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
