"""librdkafka's built-in mock cluster: the Kafka protocol over TCP on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from confluent_kafka import Producer


@pytest.fixture
def kafka() -> Iterator[str]:
    """Bootstrap servers of a fresh mock cluster (alive while the creating client is)."""
    holder = Producer({"test.mock.num.brokers": 1, "log_level": 0})
    brokers = holder.list_topics(timeout=10).brokers.values()
    yield ",".join(f"{b.host}:{b.port}" for b in brokers)
    holder.flush(5)


def produce(bootstrap: str, topic: str, values: list[bytes], partition: int | None = None) -> None:
    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "log_level": 0})
    for v in values:
        if partition is None:
            p.produce(topic, v)
        else:
            p.produce(topic, v, partition=partition)
        p.poll(0)
    assert p.flush(30) == 0
