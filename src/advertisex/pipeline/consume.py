"""The Kafka consumer: micro-batches of messages through the runner, offsets in the store.

Each partition's chunk commits its rows, its rejects and the partition's next offset in one
store transaction; only then is the offset committed to Kafka (a hint for other tools). On
every partition assignment the consumer starts from the store's offsets, so a crash or a
rebalance neither loses nor repeats an event.
"""

from __future__ import annotations

import contextlib
import operator
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import duckdb
import numpy as np
from confluent_kafka import Consumer, KafkaError, KafkaException, Message, Producer, TopicPartition

from advertisex.config import Settings
from advertisex.errors import ConfigError, SourceError
from advertisex.pipeline.gauges import KAFKA_LAG, KAFKA_MESSAGES
from advertisex.pipeline.runner import Origins, Runner, SourceCounts
from advertisex.schemas.sources import SOURCES, Source
from advertisex.sources.confluent import registry_from
from advertisex.sources.kafka import (
    PartitionBatches,
    Poison,
    distinct,
    partition_uri,
    to_batches,
)
from advertisex.store import Store

# Topic names that need no `=source`: the sources' own names and the usual short ones.
_TOPIC_ALIASES = {
    "impressions": "impressions",
    "clicks": "clicks_conversions",
    "conversions": "clicks_conversions",
    "events": "clicks_conversions",
    "clicks_conversions": "clicks_conversions",
    "bid_requests": "bid_requests",
    "bid-requests": "bid_requests",
    "bids": "bid_requests",
}


def parse_topics(spec: str) -> dict[str, Source]:
    """`impressions,clicks,bids=bid_requests` -> topic -> source."""
    topics: dict[str, Source] = {}
    for item in (s.strip() for s in spec.split(",")):
        if not item:
            continue
        topic, _, name = item.partition("=")
        name = name.strip() or _TOPIC_ALIASES.get(topic.strip(), "")
        if name not in SOURCES:
            raise ConfigError(
                f"topic {topic!r}: unknown source {name!r}; write it as TOPIC=SOURCE with "
                f"SOURCE one of {', '.join(SOURCES)}"
            )
        topics[topic.strip()] = SOURCES[name]
    if not topics:
        raise ConfigError("--topics is empty; name at least one topic")
    return topics


@dataclass
class ConsumeReport:
    messages: int = 0
    sources: dict[str, SourceCounts] = field(
        default_factory=lambda: {name: SourceCounts() for name in SOURCES}
    )


class KafkaConsumerLoop:
    """One consumer in a group, writing to one store."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        bootstrap_servers: str,
        group: str,
        topics: dict[str, Source],
    ) -> None:
        self.store = store
        self.settings = settings
        self.runner = Runner(store, settings)
        self.group = group
        self.topics = topics
        self.registry = registry_from(settings.schema_dir, settings.schema_registry_url)
        self.csv_header = settings.kafka_csv_header.encode() + b"\n"
        self.config: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            "group.id": group,
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 64 * 1024 * 1024,
            **settings.kafka_config,
        }
        self.report = ConsumeReport()
        self._next: dict[tuple[str, int], int] = {}
        self._consumer: Consumer | None = None
        self._active = 0.0  # when partitions were assigned or messages last came
        self._dead_letters: Producer | None = None  # while running, with a dead-letter topic

    def run(
        self,
        stop: threading.Event,
        *,
        until_idle: float | None = None,
        on_batch: Callable[[ConsumeReport], None] | None = None,
    ) -> ConsumeReport:
        """Consume until `stop` is set (or nothing came for `until_idle` seconds)."""
        try:
            consumer = Consumer(self.config)
        except KafkaException as e:
            raise ConfigError(f"cannot create the Kafka consumer: {e}") from None
        self._consumer = consumer
        if self.settings.kafka_dead_letter_topic:
            self._dead_letters = Producer(
                {
                    "bootstrap.servers": self.config["bootstrap.servers"],
                    "enable.idempotence": True,
                    "acks": "all",
                    **self.settings.kafka_config,
                }
            )
        consumer.subscribe(list(self.topics), on_assign=self._on_assign)
        timeout = self.settings.kafka_batch_ms / 1000
        last_lag = 0.0
        try:
            while not stop.is_set():
                msgs = _usable(consumer.consume(self.settings.kafka_batch_messages, timeout))
                now = time.monotonic()
                if msgs:
                    self._active = now
                    self._process(msgs)
                    if on_batch:
                        on_batch(self.report)
                elif until_idle is not None and self._active and now - self._active >= until_idle:
                    break  # idle since the last message (or since partitions were assigned)
                if now - last_lag >= 2:
                    self._lag(consumer)
                    last_lag = now
        finally:
            self._lag(consumer)
            consumer.close()
            if self._dead_letters is not None:
                self._dead_letters.flush(30)
                self._dead_letters = None
        return self.report

    # -- assignment: resume from the store -------------------------------------------------

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        stored = {
            (t, p): o
            for t, p, o in self.store.query(
                'SELECT topic, "partition", next_offset FROM kafka_offsets '
                "WHERE consumer_group = ?",
                [self.group],
            )
        }
        for tp in partitions:
            if (tp.topic, tp.partition) in stored:
                tp.offset = stored[(tp.topic, tp.partition)]
        consumer.assign(partitions)
        self._active = time.monotonic()

    # -- one micro-batch ---------------------------------------------------------------------

    def _process(self, msgs: list[Message]) -> None:
        # Two to three C-level passes over the messages (values, partitions, and topics when
        # several are read), then numpy: no Python step per message. Each pass touches every
        # message object, so offsets are read only where a partition's run has gaps.
        n = len(msgs)
        values = list(map(Message.value, msgs))
        key = np.fromiter(map(Message.partition, msgs), np.int64, n)
        names = list(self.topics)
        if len(names) > 1:  # key = topic index, partition
            topics = cast(list[str], list(map(Message.topic, msgs)))  # a message has its topic
            names = sorted(set(topics))
            key += np.searchsorted(names, np.array(topics)).astype(np.int64) << 32
        commits: list[TopicPartition] = []
        for k in distinct(key):
            topic, partition = names[k >> 32], k & 0xFFFFFFFF
            mine = np.flatnonzero(key == k)
            picked = values if mine.size == n else _pick(values, mine)
            offsets = _offsets(msgs, mine)
            source = self.topics[topic]
            batches = to_batches(
                topic, partition, offsets, picked, source, self.registry, self.csv_header
            )
            rejected = self._commit(topic, partition, source, batches)
            if rejected and self._dead_letters is not None:
                self._dead_letter(topic, partition, offsets.tolist(), picked)
            self._next[(topic, partition)] = batches.next_offset
            commits.append(TopicPartition(topic, partition, batches.next_offset))
            KAFKA_MESSAGES.labels(self.group, topic).inc(mine.size)
        self.report.messages += n
        if self._consumer is not None and commits:
            # The store holds the offsets; Kafka's copy is only informative.
            with contextlib.suppress(KafkaException):
                self._consumer.commit(offsets=commits, asynchronous=True)

    def _commit(self, topic: str, partition: int, source: Source, pb: PartitionBatches) -> int:
        """Every batch of the chunk; the last one also writes poison rejects and the offset.

        Returns how many of the chunk's messages were rejected.
        """
        counts = self.report.sources[source.name]
        rejected = len(pb.poison)

        def finish(con: duckdb.DuckDBPyConnection, batch_id: int | None) -> None:
            _write_poison(con, source, pb.uri, pb.poison, batch_id)
            con.execute(
                "INSERT OR REPLACE INTO kafka_offsets VALUES (?, ?, ?, ?, ?)",
                [self.group, topic, partition, pb.next_offset, _now()],
            )

        work: list[tuple[Any, Origins | None]] = [(b, None) for b in pb.lines]
        for wb in pb.wire:
            lines = np.arange(1, len(wb.numbers) + 1, dtype=np.int64)
            nums = np.asarray(wb.numbers, dtype=np.int64)
            work.append((wb.batch, Origins(lines, nums, nums)))
        if not work:
            with self.store.transaction() as con:
                finish(con, None)
        for i, (batch, origins) in enumerate(work):
            last = i == len(work) - 1
            c = self.runner.process_batch(
                batch, source, origins=origins, positions=finish if last else None
            )
            counts.add(c)
            rejected += c.rejected
        counts.received += len(pb.poison)
        counts.rejected += len(pb.poison)
        counts.rejected_by_reason.update(str(p.reason) for p in pb.poison)
        return rejected

    def _dead_letter(
        self, topic: str, partition: int, offsets: list[int], values: list[bytes | None]
    ) -> None:
        """The chunk's rejected messages, as they arrived, to the dead-letter topic.

        After the store commit, so at least once: the store's rejects are the record, the
        topic a copy for other tools.
        """
        assert self._dead_letters is not None
        found = self.store.query(
            "SELECT source_record, reason, detail FROM rejects WHERE source_uri = ? "
            "AND source_record BETWEEN ? AND ? ORDER BY source_record",
            [partition_uri(topic, partition), offsets[0], offsets[-1]],
        )
        at = {off: i for i, off in enumerate(offsets)}
        for offset, reason, detail in found:
            if offset not in at:
                continue
            headers = {
                "advx.topic": topic,
                "advx.partition": str(partition),
                "advx.offset": str(offset),
                "advx.reason": reason,
                "advx.detail": detail or "",
            }
            self._dead_letters.produce(
                self.settings.kafka_dead_letter_topic or "",
                values[at[offset]],
                headers=list(headers.items()),
            )
        self._dead_letters.poll(0)

    def _lag(self, consumer: Consumer) -> None:
        for (topic, partition), next_offset in self._next.items():
            try:
                _, high = consumer.get_watermark_offsets(
                    TopicPartition(topic, partition), timeout=1, cached=True
                )
            except KafkaException:
                continue
            if high >= 0:
                KAFKA_LAG.labels(self.group, topic, str(partition)).set(max(high - next_offset, 0))


def _offsets(msgs: list[Message], at: np.ndarray) -> np.ndarray:
    """The offsets of one partition's messages `msgs[at]` (increasing: first..last if no gap)."""
    first, last = msgs[int(at[0])].offset() or 0, msgs[int(at[-1])].offset() or 0
    if last - first + 1 == at.size:
        return np.arange(first, last + 1, dtype=np.int64)
    mine = msgs if at.size == len(msgs) else operator.itemgetter(*at.tolist())(msgs)
    return np.fromiter(map(Message.offset, mine), np.int64, at.size)


def _pick(values: list[bytes | None], at: np.ndarray) -> list[bytes | None]:
    """values[i] for i in `at`, in C (itemgetter of one index gives the item, not a tuple)."""
    if at.size == 1:
        return [values[int(at[0])]]
    return list(operator.itemgetter(*at.tolist())(values))


def _usable(msgs: list[Message]) -> list[Message]:
    """The messages that are messages, not events (end of partition, transient errors)."""
    errors = list(map(Message.error, msgs))
    if errors.count(None) == len(msgs):
        return msgs
    for err in errors:
        if err is not None and err.code() != KafkaError._PARTITION_EOF and err.fatal():
            raise SourceError(f"Kafka failed: {err.str()}")
    # Transient errors: librdkafka retries by itself.
    return [m for m, err in zip(msgs, errors, strict=True) if err is None]


def _write_poison(
    con: duckdb.DuckDBPyConnection,
    source: Source,
    uri: str,
    poison: list[Poison],
    batch_id: int | None,
) -> None:
    """Messages that fit no batch, to rejects once (a replay finds them there already)."""
    now = _now()
    for p in poison:
        con.execute(
            "INSERT INTO rejects (source, source_uri, source_record, source_offset, reason, "
            "detail, raw, batch_id, rejected_at) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ? "
            "WHERE NOT EXISTS (SELECT 1 FROM rejects WHERE source_uri = ? AND source_record = ?)",
            [
                source.name,
                uri,
                p.offset,
                p.offset,
                str(p.reason),
                p.detail,
                p.raw,
                batch_id,
                now,
                uri,
                p.offset,
            ],
        )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)
