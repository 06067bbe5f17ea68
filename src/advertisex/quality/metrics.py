"""Prometheus metrics of advertisex, on prometheus_client's default REGISTRY.

Labels stay bounded: source, reject reason, check name, check subject (a campaign id, a
reason or a column name), severity, state, sink. Never a user, IP or event id.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, Counter, Gauge, Histogram
from prometheus_client import push_to_gateway as _push
from prometheus_client import write_to_textfile as _write

from advertisex.schemas.sources import SOURCES

if TYPE_CHECKING:
    from advertisex.pipeline import IngestReport
    from advertisex.quality.alerts import Alert
    from advertisex.quality.checks import Finding
    from advertisex.store import Store

EVENTS_RECEIVED = Counter("advx_events_received", "Records received.", ["source"])
EVENTS_ACCEPTED = Counter("advx_events_accepted", "Records stored as events.", ["source"])
EVENTS_REJECTED = Counter(
    "advx_events_rejected", "Records quarantined, by reason.", ["source", "reason"]
)
EVENTS_DUPLICATE = Counter("advx_events_duplicate", "Records dropped as duplicates.", ["source"])
EVENTS_LATE = Counter(
    "advx_events_late", "Events stored more than late_seconds after their event time.", ["source"]
)
FILES_FAILED = Counter("advx_files_failed", "Input files that could not be read.")
BATCH_SECONDS = Histogram(
    "advx_batch_duration_seconds",
    "Wall time of one ingested batch, decode to commit.",
    buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
)
# The stages of one batch, in pipeline order: decode (bytes -> Arrow), transform (extract,
# validate, standardize: one DuckDB query), enrich, load (dedupe, insert rows and rejects,
# the batch record and position) and commit.
STAGES = ("decode", "transform", "enrich", "load", "commit")
STAGE_SECONDS = Histogram(
    "advx_stage_duration_seconds",
    "Wall time of one pipeline stage of one batch.",
    ["source", "stage"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
INGEST_SECONDS = Histogram(
    "advx_ingest_duration_seconds",
    "Wall time of one ingest run.",
    buckets=(0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600),
)
EVENT_DELAY = Gauge(
    "advx_event_delay_seconds",
    "Ingest time minus event time of the events of the last run, by quantile.",
    ["source", "quantile"],
)
NEWEST_EVENT = Gauge(
    "advx_newest_event_timestamp_seconds",
    "Event time of the newest stored event (Unix seconds); alert on time() minus it.",
    ["source"],
)
FRESHNESS = Gauge("advx_freshness_seconds", "Age of the newest stored event.", ["source"])
STORE_BYTES = Gauge("advx_store_size_bytes", "Size of the store's database file.")
CHECK_VALUE = Gauge(
    "advx_check_value", "Current value of a quality check.", ["check", "source", "subject"]
)
CHECK_THRESHOLD = Gauge(
    "advx_check_threshold",
    "The limit (or band edge) the check's value is held to.",
    ["check", "source", "subject"],
)
CHECK_FAILING = Gauge(
    "advx_check_failing",
    "1 while a quality check fails.",
    ["check", "source", "subject", "severity"],
)
CHECK_RUNS = Counter("advx_check_runs", "Check-and-alert cycles run.")
CHECK_LAST_RUN = Gauge(
    "advx_check_last_run_timestamp_seconds", "When the checks last ran (Unix seconds)."
)
ALERTS = Gauge("advx_alerts", "Open alerts by state.", ["alertname", "severity", "state"])
NOTIFICATIONS = Counter(
    "advx_alert_notifications",
    "Alert notifications sent, by sink and outcome.",
    ["sink", "outcome"],
)

_QUANTILES = (0.5, 0.95, 0.99)


@contextmanager
def timed(stage: str, source: str) -> Iterator[None]:
    """Observe the wall time of the block as one `stage` of a batch of `source` (also when the
    block raises: a failed stage took its time too)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; one of {', '.join(STAGES)}")
    started = time.perf_counter()
    try:
        yield
    finally:
        STAGE_SECONDS.labels(source, stage).observe(time.perf_counter() - started)


def record_ingest(
    report: IngestReport,
    store: Store,
    after_batch: int,
    seconds: float,
    late_seconds: int,
) -> None:
    """Count one ingest run: the report's reconciliation, and the delays of the batches it
    committed (batch ids above `after_batch`) read back from the store."""
    for name, c in report.sources.items():
        EVENTS_RECEIVED.labels(name).inc(c.received)
        EVENTS_ACCEPTED.labels(name).inc(c.accepted)
        EVENTS_DUPLICATE.labels(name).inc(c.duplicates)
        for reason, k in c.rejected_by_reason.items():
            EVENTS_REJECTED.labels(name, reason).inc(k)
    FILES_FAILED.inc(len(report.files_failed))
    INGEST_SECONDS.observe(seconds)
    con = store.con
    for name, source in SOURCES.items():
        rows = con.execute(
            f"""
            SELECT quantile_cont(d, [{", ".join(map(str, _QUANTILES))}]),
                   count(*) FILTER (WHERE d > ?)
            FROM (SELECT date_diff('second', event_time, ingested_at) AS d
                  FROM {source.table} WHERE batch_id > ?)
            """,
            [late_seconds, after_batch],
        ).fetchall()
        quantiles, late = rows[0]
        if quantiles is not None:
            for q, v in zip(_QUANTILES, quantiles, strict=True):
                EVENT_DELAY.labels(name, str(q)).set(v)
        EVENTS_LATE.labels(name).inc(late)
    record_store(store)


def record_store(store: Store) -> None:
    """Newest event and freshness per source (as of now), and the store file's size."""
    con, path = store.con, store.path
    # Stored times are naive UTC; DuckDB's now() would be in the session's time zone.
    now = datetime.now(UTC).replace(tzinfo=None)
    for name, source in SOURCES.items():
        rows = con.execute(
            f"SELECT epoch(max(event_time)), epoch($now) - epoch(max(event_time)) "
            f"FROM {source.table} WHERE event_time <= $now",
            {"now": now},
        ).fetchall()
        newest, age = rows[0]
        if newest is not None:
            NEWEST_EVENT.labels(name).set(newest)
            FRESHNESS.labels(name).set(age)
    if path and path != ":memory:" and Path(path).is_file():
        STORE_BYTES.set(Path(path).stat().st_size)


def record_findings(findings: Iterable[Finding]) -> None:
    """The current value of every check; series of subjects no longer reported disappear."""
    for gauge in (CHECK_VALUE, CHECK_THRESHOLD, CHECK_FAILING):
        gauge.clear()
    for f in findings:
        if f.value is not None:
            CHECK_VALUE.labels(f.check, f.source, f.subject).set(f.value)
        if f.threshold is not None:
            CHECK_THRESHOLD.labels(f.check, f.source, f.subject).set(f.threshold)
        CHECK_FAILING.labels(f.check, f.source, f.subject, f.severity).set(int(f.failed))


def record_alerts(alerts: Iterable[Alert]) -> None:
    ALERTS.clear()
    for a in alerts:
        ALERTS.labels(a.name, a.severity, a.state).inc()


def write_textfile(path: Path) -> None:
    """The whole registry in the text format, for node_exporter's textfile collector (atomic)."""
    _write(str(path), REGISTRY)


def push(url: str, job: str = "advertisex_ingest") -> None:
    """The whole registry to a Pushgateway, replacing the job's previous push."""
    _push(url, job=job, registry=REGISTRY)
