"""One check-and-alert cycle (checks -> metrics -> alert states -> sinks), and a timer for it."""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from prometheus_client import start_http_server

from advertisex.config import Settings
from advertisex.errors import StoreError
from advertisex.quality import metrics
from advertisex.quality.alerts import Changes, evaluate, list_alerts
from advertisex.quality.checks import Finding, run_checks
from advertisex.quality.sinks import Notifier, Sink, notify, sinks_from
from advertisex.store import Store

log = logging.getLogger("advertisex.quality")


@dataclass(frozen=True)
class CycleResult:
    as_of: datetime
    findings: list[Finding]
    changes: Changes

    @property
    def critical_failed(self) -> bool:
        return any(f.failed and f.severity == "critical" for f in self.findings)


def run_cycle(
    store: Store,
    settings: Settings,
    sinks: list[Sink] | Notifier | None = None,
    as_of: datetime | None = None,
) -> CycleResult:
    """Run every check, export the values as metrics, advance the alerts, notify the sinks.

    This is what `serve` calls on its timer (its /metrics serves the same default REGISTRY).
    `sinks` default to the ones the settings configure, delivered before this returns (with
    their bounded retries); a long-running caller passes a `Notifier`, which delivers on its
    own thread while this returns at once.
    """
    as_of = as_of or datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    findings = run_checks(store.con, settings, as_of)
    prune_profiles(store, as_of, settings)
    changes = evaluate(store, findings, as_of, settings.alert_for_seconds)
    metrics.record_findings(findings)
    metrics.record_store(store)
    metrics.record_alerts(list_alerts(store.con, "firing") + list_alerts(store.con, "pending"))
    metrics.CHECK_RUNS.inc()
    metrics.CHECK_LAST_RUN.set(time.time())
    if isinstance(sinks, Notifier):
        sinks.submit(changes)
    else:
        notify(sinks_from(settings) if sinks is None else sinks, changes)
    return CycleResult(as_of, findings, changes)


def prune_profiles(store: Store, as_of: datetime, settings: Settings) -> None:
    """Drop the batch profiles (field_stats) that no check can read any more: event time before
    the oldest baseline window (quality_baseline_days + 1 days before `as_of`, and a day more)."""
    horizon = as_of - timedelta(days=settings.quality_baseline_days + 2)
    store.con.execute("DELETE FROM field_stats WHERE minute < ?", [horizon])


def watch(
    settings: Settings,
    interval_s: float,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
    stop: threading.Event | None = None,
) -> None:
    """Run a cycle every `interval_s` seconds until `stop` is set, serving /metrics meanwhile.

    The store is opened for each cycle and closed after it, so `advertisex ingest` can write
    to the same DuckDB file between cycles.
    """
    stop = stop or threading.Event()
    if metrics_port is not None:
        start_http_server(metrics_port, addr=metrics_host)
    notifier = Notifier(sinks_from(settings))
    try:
        while not stop.is_set():
            started = time.monotonic()
            try:
                with Store.open(settings) as store:
                    run_cycle(store, settings, notifier)
            except StoreError as e:  # e.g. an ingest holds the file: try again next time
                log.error("check cycle skipped: %s", e.message)
            stop.wait(max(0.0, interval_s - (time.monotonic() - started)))
    finally:
        notifier.close()
