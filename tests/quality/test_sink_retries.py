"""Alert deliveries survive a receiver that fails for a while: retried with backoff, bounded,
counted and logged, and never holding up the checks (real loopback HTTP and SMTP receivers)."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from advertisex.config import load_settings
from advertisex.quality.alerts import Changes, evaluate
from advertisex.quality.sinks import (
    AlertmanagerSink,
    EmailSink,
    Notifier,
    Retry,
    WebhookSink,
    notify,
    sinks_from,
)
from advertisex.store import Store
from tests.quality.receivers import free_port, http_receiver, smtp_receiver
from tests.quality.test_alerts import T0, finding

FAST = Retry(attempts=3, backoff_s=0.05, timeout_s=5)


def _count(sink: str, outcome: str) -> float:
    labels = {"sink": sink, "outcome": outcome}
    return REGISTRY.get_sample_value("advx_alert_notifications_total", labels) or 0.0


def _fired(store: Store) -> Changes:
    return evaluate(store, [finding(True)], T0, 0)


@pytest.mark.parametrize("kind", ["webhook", "alertmanager"])
def test_a_receiver_failing_at_first_gets_the_alert_once_it_is_back(
    store: Store, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    retries, oks = _count(kind, "retry"), _count(kind, "ok")
    with http_receiver(fail_first=2) as (url, got), caplog.at_level(logging.WARNING):
        sink = WebhookSink(url, FAST) if kind == "webhook" else AlertmanagerSink(url, FAST)
        started = time.monotonic()
        notify([sink], _fired(store))
        took = time.monotonic() - started
    assert len(got.refused) == 2 and len(got.requests) == 1
    assert got.refused[0][1] == got.requests[0][1]  # the same message, sent again
    assert _count(kind, "retry") == retries + 2 and _count(kind, "ok") == oks + 1
    assert 0.05 + 0.1 <= took < 5  # waited backoff, then twice the backoff
    assert f"alert sink {kind}: try 1 of 3 failed (HTTP 503" in caplog.text


def test_retries_are_bounded_then_the_failure_is_logged_and_counted(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    errors, retries = _count("webhook", "error"), _count("webhook", "retry")
    with http_receiver(fail_first=10) as (url, got), caplog.at_level(logging.WARNING):
        notify([WebhookSink(url, FAST)], _fired(store))
    assert len(got.refused) == 3 and not got.requests
    assert _count("webhook", "error") == errors + 1
    assert _count("webhook", "retry") == retries + 2
    assert "alert sink webhook failed: HTTP 503" in caplog.text


def test_a_refusal_for_good_is_not_retried(store: Store) -> None:
    errors = _count("webhook", "error")
    with http_receiver(fail_first=10, status=400) as (url, got):
        notify([WebhookSink(url, FAST)], _fired(store))
    assert len(got.refused) == 1  # a 400 will not change by asking again
    assert _count("webhook", "error") == errors + 1


def test_email_is_retried_after_a_temporary_smtp_failure(store: Store, tmp_path: Path) -> None:
    retries = _count("email", "retry")
    with smtp_receiver(fail_first=1) as (port, box):
        settings = load_settings(
            db=tmp_path / "x.duckdb",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_to=("oncall@example.com",),
            alert_log=False,
            alert_send_attempts=3,
            alert_send_backoff_seconds=0.05,
        )
        (sink,) = sinks_from(settings)
        assert isinstance(sink, EmailSink)
        # exported from the start (at 0 the first time), so a first failure is an increase
        assert (
            REGISTRY.get_sample_value(
                "advx_alert_notifications_total", {"sink": "email", "outcome": "error"}
            )
            is not None
        )
        notify([sink], _fired(store))
    assert box.refused == 1
    (msg,) = box.messages
    assert msg["Subject"] == "[advertisex] CRITICAL 1 firing, 0 resolved"
    assert _count("email", "retry") == retries + 1


def test_the_notifier_never_makes_the_checks_wait(store: Store) -> None:
    dead = WebhookSink(f"http://127.0.0.1:{free_port()}/", Retry(3, backoff_s=0.5, timeout_s=5))
    with http_receiver(fail_first=1) as (url, got):
        notifier = Notifier([dead, WebhookSink(url, FAST)])
        started = time.monotonic()
        notifier.submit(_fired(store))
        notifier.submit(evaluate(store, [], T0 + timedelta(minutes=5), 0))
        assert time.monotonic() - started < 0.5  # the dead receiver's 1.5 s of backoff: later
        assert notifier.flush(timeout_s=10)
        notifier.close()
    # delivered in order, each once, despite the first try failing
    assert [body["status"] for _, body in got.requests] == ["firing", "resolved"]


def test_a_notifier_whose_receivers_are_down_for_long_drops_the_oldest(store: Store) -> None:
    dropped = _count("webhook", "dropped")
    slow = WebhookSink(f"http://127.0.0.1:{free_port()}/", Retry(2, backoff_s=0.5, timeout_s=5))
    notifier = Notifier([slow], max_queued=2)
    changes = _fired(store)
    for _ in range(5):
        notifier.submit(changes)
    assert _count("webhook", "dropped") >= dropped + 2  # bounded memory, counted
    notifier.close(timeout_s=5)
