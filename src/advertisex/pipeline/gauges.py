"""Real-time gauges (collector queue, Kafka lag) on prometheus_client's default registry."""

from __future__ import annotations

from prometheus_client import Counter, Gauge

QUEUE_REQUESTS = Gauge(
    "advx_collector_queue_requests", "HTTP requests waiting for the store or being written"
)
QUEUE_BYTES = Gauge(
    "advx_collector_queue_bytes", "Request bytes waiting for the store or being written"
)
REJECTED_BUSY = Counter(
    "advx_collector_busy_total", "Requests answered 503 because the queue was full", ["route"]
)
SPOOL_WRITES = Counter(
    "advx_tracker_spool_writes", "Group writes of tracker hits to the spool (one fdatasync each)"
)
SPOOL_HITS = Counter("advx_tracker_spool_hits", "Tracker hits written to the spool")
KAFKA_LAG = Gauge(
    "advx_kafka_consumer_lag",
    "Messages in a partition not yet committed to the store",
    ["group", "topic", "partition"],
)


def set_queue_depth(requests: int, nbytes: int) -> None:
    QUEUE_REQUESTS.set(requests)
    QUEUE_BYTES.set(nbytes)


KAFKA_MESSAGES = Counter(
    "advx_kafka_messages", "Kafka messages committed to the store", ["group", "topic"]
)
