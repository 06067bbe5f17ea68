"""`consume` against librdkafka's mock cluster (real Kafka protocol over TCP), real DuckDB."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import fastavro
import httpx
import pytest
from confluent_kafka import Consumer, TopicPartition

from advertisex.config import load_settings
from advertisex.pipeline.consume import KafkaConsumerLoop, parse_topics
from advertisex.store import Store
from tests.api.conftest import HTTP
from tests.conftest import SEED_BID_SCHEMA, seed_bid
from tests.kafka.conftest import produce

IMP = (
    '{{"impression_id": "k{i}", "creative_id": {c}, "user_id": {u}, '
    '"timestamp": "2026-11-01 10:{m:02d}:00", "website": "site{s}.example"}}'
)


def impressions(start: int, n: int) -> list[bytes]:
    return [
        IMP.format(i=i, c=i % 5, u=i % 97, m=i % 60, s=i % 7).encode()
        for i in range(start, start + n)
    ]


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


# A member that died is noticed after 6 s instead of Kafka's default 45 s.
FAST_GROUP = {"session.timeout.ms": "6000", "heartbeat.interval.ms": "500"}
FAST_ENV = {**os.environ, "ADVX_KAFKA_CONFIG": json.dumps(FAST_GROUP)}


def consume_until_idle(db: Path, bootstrap: str, topics: str, **settings: Any) -> Any:
    s = load_settings(db=db, kafka_config=FAST_GROUP, **settings)
    with Store.open(s) as store:
        loop = KafkaConsumerLoop(
            store, s, bootstrap_servers=bootstrap, group="g1", topics=parse_topics(topics)
        )
        return loop.run(threading.Event(), until_idle=3)


def test_poison_and_malformed_messages_are_quarantined_and_the_partition_moves_on(
    kafka: str, tmp_path: Path
) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "5.avsc").write_text(json.dumps(SEED_BID_SCHEMA))
    parsed = fastavro.parse_schema(SEED_BID_SCHEMA)

    def wire(schema_id: int, record: dict[str, Any]) -> bytes:
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, parsed, record)
        return b"\x00" + struct.pack(">I", schema_id) + buf.getvalue()

    bids = [
        wire(5, seed_bid("b0")),
        b"not avro at all",  # offset 1: JSON-looking? no: malformed JSON
        wire(9, seed_bid("b2")),  # offset 2: unknown schema id
        b"\x00\x00\x00\x00\x05\xff\xff\xff",  # offset 3: known schema, body cut short
        wire(5, seed_bid("b4")),
    ]
    produce(kafka, "bid_requests", bids, partition=0)
    produce(kafka, "impressions", [*impressions(0, 2), b'{"oops"', *impressions(2, 2)], partition=1)
    report = consume_until_idle(
        tmp_path / "s.duckdb",
        kafka,
        "impressions,bid_requests",
        schema_dir=schemas,
        kafka_dead_letter_topic="advx-dlq",
    )
    db = tmp_path / "s.duckdb"
    assert report.messages == 10
    assert rows(db, "SELECT event_id FROM bid_requests ORDER BY 1") == [("b0",), ("b4",)]
    assert rows(db, "SELECT count(*) FROM impressions") == [(4,)]
    assert rows(
        db, "SELECT source_uri, source_record, reason FROM rejects ORDER BY source_uri, 2"
    ) == [
        ("kafka://bid_requests/0", 1, "malformed_json"),
        ("kafka://bid_requests/0", 2, "bad_avro_block"),
        ("kafka://bid_requests/0", 3, "bad_avro_block"),
        ("kafka://impressions/1", 2, "malformed_json"),
    ]
    assert rows(db, 'SELECT topic, "partition", next_offset FROM kafka_offsets ORDER BY 1') == [
        ("bid_requests", 0, 5),
        ("impressions", 1, 5),
    ]
    # Kafka has the same offsets, committed after the store's.
    group = Consumer({"bootstrap.servers": kafka, "group.id": "g1", "log_level": 0})
    committed = group.committed([TopicPartition("bid_requests", 0)], timeout=10)
    group.close()
    assert [tp.offset for tp in committed] == [5]
    # The dead-letter topic has each rejected message as it arrived, with where and why.
    dlq = Consumer({"bootstrap.servers": kafka, "group.id": "reader", "log_level": 0})
    dlq.assign([TopicPartition("advx-dlq", p, 0) for p in range(4)])
    got: list[tuple[Any, ...]] = []
    deadline = time.monotonic() + 30
    while len(got) < 4 and time.monotonic() < deadline:
        for m in dlq.consume(10, 0.5):
            if m.error() is None:
                h = {k: v.decode() for k, v in m.headers() or []}
                got.append((h["advx.topic"], int(h["advx.offset"]), h["advx.reason"], m.value()))
    dlq.close()
    assert sorted(got) == [
        ("bid_requests", 1, "malformed_json", bids[1]),
        ("bid_requests", 2, "bad_avro_block", bids[2]),
        ("bid_requests", 3, "bad_avro_block", bids[3]),
        ("impressions", 2, "malformed_json", b'{"oops"'),
    ]
    # A second run resumes from the store's offsets: nothing read twice, nothing new.
    again = consume_until_idle(db, kafka, "impressions,bid_requests", schema_dir=schemas)
    assert again.messages == 0
    assert rows(db, "SELECT count(*) FROM rejects") == [(4,)]


def test_clicks_as_headerless_csv_lines_and_json(kafka: str, tmp_path: Path) -> None:
    produce(
        kafka,
        "clicks",
        [
            b"2026-11-01 10:00:00,u1,camp1,click",
            b'{"timestamp": "2026-11-01 10:00:05", "user_id": "u2", "campaign_id": "camp1", '
            b'"conversion_type": "purchase", "value": 9.5}',
            b"2026-11-01 10:00:09,u3,camp2",
        ],
        partition=0,
    )
    db = tmp_path / "s.duckdb"
    consume_until_idle(db, kafka, "clicks")
    assert rows(
        db, "SELECT user_id, event_type, value_micros FROM clicks_conversions ORDER BY 1"
    ) == [
        ("u1", "click", None),
        ("u2", "purchase", 9_500_000),
    ]
    assert rows(db, "SELECT source_record, reason FROM rejects") == [(2, "malformed_csv")]


def _metric(url: str, name: str) -> float:
    text = HTTP.get(url, timeout=5).text
    return sum(float(m) for m in re.findall(rf"^{name}{{[^}}]*}} (\S+)$", text, re.M))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.slow
def test_consumer_killed_with_sigkill_and_restarted_ends_with_each_event_once(
    kafka: str, tmp_path: Path
) -> None:
    n = 20_000
    produce(kafka, "impressions", impressions(0, n))
    db = tmp_path / "s.duckdb"
    env = {**FAST_ENV, "ADVX_KAFKA_BATCH_MESSAGES": "500"}
    port = _free_port()
    cmd = [
        sys.executable,
        "-m",
        "advertisex",
        "consume",
        "--bootstrap-servers",
        kafka,
        "--group",
        "g1",
        "--topics",
        "impressions",
        "--db",
        str(db),
    ]
    proc = subprocess.Popen([*cmd, "--metrics-port", str(port)], env=env, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/metrics"
    done = 0.0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            done = _metric(url, "advx_kafka_messages_total")
        except httpx.TransportError:
            done = 0
        if done >= 3_000:
            break
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait(10)
    assert 3_000 <= done < n  # killed mid-stream
    # Restarted, it resumes after the last committed batch and stops when caught up.
    rerun = subprocess.run(
        [*cmd, "--until-idle", "3"], env=env, capture_output=True, text=True, timeout=120
    )
    assert rerun.returncode == 0, rerun.stderr
    assert rows(db, "SELECT count(*), count(DISTINCT event_id) FROM impressions") == [(n, n)]
    assert rows(db, "SELECT sum(next_offset) FROM kafka_offsets") == [(n,)]
    assert rows(db, "SELECT count(*) FROM rejects") == [(0,)]


@pytest.mark.slow
def test_consume_stops_on_sigterm_with_exit_0_and_reports_lag(kafka: str, tmp_path: Path) -> None:
    produce(kafka, "impressions", impressions(0, 1000), partition=0)
    db = tmp_path / "s.duckdb"
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "advertisex",
            "consume",
            "--bootstrap-servers",
            kafka,
            "--group",
            "g1",
            "--topics",
            "impressions",
            "--db",
            str(db),
            "--metrics-port",
            str(port),
        ],
        stderr=subprocess.PIPE,
        text=True,
        env=FAST_ENV,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if _metric(url, "advx_kafka_messages_total") >= 1000:
                break
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    produce(kafka, "impressions", impressions(1000, 10), partition=1)
    time.sleep(3)
    text = HTTP.get(url, timeout=5).text
    assert 'advx_kafka_consumer_lag{group="g1",partition="0",topic="impressions"} 0.0' in text
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    assert "stopped after 1,010 messages" in err
    assert rows(db, "SELECT count(*) FROM impressions") == [(1010,)]
