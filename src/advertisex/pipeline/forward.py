"""`serve --kafka`: the collector produces accepted raw events to Kafka instead of loading them.

One message per record (an NDJSON line, a CSV line under the consumers' `kafka_csv_header`, a
wire-format Avro message), with an idempotent producer and acks=all; a request is answered
once every one of its messages is acknowledged by the brokers, so a 202 is durable in Kafka.
`consume` workers load them, so collectors and consumers scale separately.
"""

from __future__ import annotations

import json
import threading
from concurrent.futures import Future
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from advertisex.config import Settings
from advertisex.errors import ConfigError, InputError, SourceError
from advertisex.pipeline.microbatch import Busy, RequestCounts
from advertisex.schemas.sources import Source
from advertisex.sources.batch import Format
from advertisex.sources.http import Body

# Where each source's events go: the names `consume` reads by default.
TOPICS = {
    "impressions": "impressions",
    "clicks_conversions": "clicks",
    "bid_requests": "bid_requests",
}


_MAX_QUEUED = 100_000  # messages waiting for the brokers; beyond: 503


class KafkaForwarder:
    """Same interface as the MicroBatcher: submit a parsed body, get a future of its counts."""

    def __init__(self, settings: Settings, bootstrap_servers: str) -> None:
        config: dict[str, Any] = {
            "bootstrap.servers": bootstrap_servers,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 5,
            # Above our own bound, so one request the size limit let through always fits.
            "queue.buffering.max.messages": 10 * _MAX_QUEUED,
            **settings.kafka_config,
        }
        try:
            self.producer = Producer(config)
        except KafkaException as e:
            raise ConfigError(f"cannot create the Kafka producer: {e}") from None
        self.csv_header = settings.kafka_csv_header.strip().encode()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, name="advx-kafka-poll", daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            self.producer.poll(0.05)

    def close(self) -> None:
        self.producer.flush(30)
        self._stop.set()
        self._thread.join()

    def submit(
        self, source: Source, body: Body, request_id: str, remote: str | None = None
    ) -> Future[RequestCounts]:
        messages = self._messages(body)
        fut: Future[RequestCounts] = Future()
        counts = RequestCounts(request_id, received=len(messages))
        pending = [len(messages)]
        lock = threading.Lock()

        def delivered(err: KafkaError | None, _msg: Message) -> None:
            with lock:
                if fut.done():
                    return
                if err is not None:
                    fut.set_exception(SourceError(f"Kafka did not take the events: {err.str()}"))
                    return
                counts.queued += 1
                pending[0] -= 1
                if pending[0] == 0:
                    fut.set_result(counts)

        # Room for the whole request, or none of it is sent (no half-produced requests).
        waiting = len(self.producer)
        if waiting and waiting + len(messages) > _MAX_QUEUED:
            raise Busy("the Kafka producer's queue is full")
        topic = TOPICS[source.name]
        for value in messages:
            self.producer.produce(topic, value, on_delivery=delivered)
        if not messages:
            fut.set_result(counts)
        return fut

    def _messages(self, body: Body) -> list[bytes]:
        if body.fmt is Format.NDJSON:
            return [line for line in body.data.split(b"\n") if line.strip()]
        if body.wire is not None:
            return [body.wire]
        batch = body.batches[0]
        if body.fmt is Format.CSV:
            if batch.header.strip().replace(b" ", b"") != self.csv_header.replace(b" ", b""):
                raise InputError(
                    f"with --kafka, send CSV with the header {self.csv_header.decode()} "
                    "(what consumers expect) or JSON"
                )
            return [line for line in bytes(batch.data).split(b"\n") if line.strip()]
        if body.fmt is Format.JSON_DOC:
            try:
                doc = json.loads(bytes(batch.data))
            except ValueError as e:
                raise InputError(f"the JSON body is not valid JSON: {e}") from None
            docs = doc if isinstance(doc, list) else [doc]
            return [json.dumps(d, separators=(",", ":")).encode() for d in docs]
        raise InputError(
            "with --kafka, send bid requests as one Confluent wire-format message per request"
        )
