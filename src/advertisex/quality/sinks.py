"""Where alerts go: the log, a webhook in Alertmanager's format, Alertmanager's API, e-mail.

Each delivery (one HTTP request, one e-mail) that fails for a reason that may pass (receiver
down or restarting, timeout, HTTP 5xx/408/429, SMTP 4xx) is tried again with exponential
backoff, a bounded number of times (`Retry`); each new try is counted in
`advx_alert_notifications_total{outcome="retry"}`. A sink that still fails, or fails for good
(HTTP 4xx, SMTP 5xx), is logged and counted with outcome "error"; it never stops the checks
nor the other sinks. `Notifier` delivers on a thread of its own, so that a slow or dead
receiver never holds up the process that runs the checks (serve, `check --watch`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import queue
import smtplib
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from email.message import EmailMessage
from functools import partial
from typing import Any, Protocol

from advertisex.config import Settings
from advertisex.quality.alerts import Alert, Changes
from advertisex.quality.metrics import NOTIFICATIONS

log = logging.getLogger("advertisex.alerts")

# Alertmanager forgets an alert that is not re-sent before its endsAt: re-sent every cycle.
_AM_HOLD = timedelta(minutes=5)


class Sink(Protocol):
    name: str

    def send(self, changes: Changes) -> None: ...


class DeliveryError(Exception):
    """A delivery that failed; `transient` when trying again later may succeed."""

    def __init__(self, message: str, transient: bool) -> None:
        super().__init__(message)
        self.transient = transient


@dataclass(frozen=True)
class Retry:
    """How one delivery is tried: up to `attempts` tries, waiting `backoff_s`, then twice as
    long, and so on, between them; each try gives up after `timeout_s`."""

    attempts: int = 1
    backoff_s: float = 1.0
    timeout_s: float = 10.0

    @classmethod
    def of(cls, settings: Settings) -> Retry:
        return cls(
            settings.alert_send_attempts,
            settings.alert_send_backoff_seconds,
            settings.alert_send_timeout_seconds,
        )

    def run(self, sink: str, deliver: Callable[[], None]) -> None:
        """`deliver()`, tried again after transient failures; raises the last failure."""
        for attempt in range(1, self.attempts + 1):
            try:
                deliver()
                return
            except DeliveryError as e:
                if not e.transient or attempt == self.attempts:
                    raise
                wait = self.backoff_s * 2 ** (attempt - 1)
                NOTIFICATIONS.labels(sink, "retry").inc()
                log.warning(
                    "alert sink %s: try %d of %d failed (%s); trying again in %.1f s",
                    sink, attempt, self.attempts, e, wait,
                )  # fmt: skip
                time.sleep(wait)


def am_alert(a: Alert, status: str | None = None) -> dict[str, Any]:
    """One alert in Alertmanager's shape (labels, annotations, startsAt, endsAt)."""
    status = status or ("resolved" if a.state == "resolved" else "firing")
    ends = a.resolved_at if a.resolved_at else a.updated_at + _AM_HOLD
    return {
        "status": status,
        "labels": {"alertname": a.name, **a.labels},
        "annotations": {"summary": a.summary, "runbook": a.runbook},
        "startsAt": _rfc3339(a.fired_at or a.active_since),
        "endsAt": _rfc3339(ends) if status == "resolved" else "0001-01-01T00:00:00Z",
        "generatorURL": "",
        "fingerprint": a.fingerprint,
    }


class LogSink:
    name = "log"

    def send(self, changes: Changes) -> None:
        for a in changes.fired:
            log.warning("FIRING [%s] %s; runbook: %s", a.severity, a.summary, a.runbook)
        for a in changes.resolved:
            log.warning("RESOLVED [%s] %s", a.severity, a.summary)


class WebhookSink:
    """POSTs Alertmanager's webhook JSON (version 4): one message per status with news."""

    name = "webhook"

    def __init__(self, url: str, retry: Retry | None = None) -> None:
        self.url = url
        self.retry = retry or Retry()

    def send(self, changes: Changes) -> None:
        for status, alerts in (("firing", changes.fired), ("resolved", changes.resolved)):
            if alerts:
                body = webhook_payload(status, alerts)
                self.retry.run(self.name, partial(_post, self.url, body, self.retry.timeout_s))


def webhook_payload(status: str, alerts: list[Alert]) -> dict[str, Any]:
    items = [am_alert(a, status) for a in alerts]
    common = {
        k: v for k, v in items[0]["labels"].items() if all(i["labels"].get(k) == v for i in items)
    }
    return {
        "version": "4",
        "groupKey": "{}:" + json.dumps(common, sort_keys=True),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "advertisex",
        "groupLabels": {},
        "commonLabels": common,
        "commonAnnotations": {},
        "externalURL": "",
        "alerts": items,
    }


class AlertmanagerSink:
    """POSTs to Alertmanager's API v2: every firing alert each cycle, resolutions once."""

    name = "alertmanager"

    def __init__(self, url: str, retry: Retry | None = None) -> None:
        self.url = url.rstrip("/") + "/api/v2/alerts"
        self.retry = retry or Retry()

    def send(self, changes: Changes) -> None:
        items = [am_alert(a) for a in changes.firing + changes.resolved]
        for item in items:
            del item["status"], item["fingerprint"]
            if item["endsAt"].startswith("0001"):
                del item["endsAt"]
        if items:
            self.retry.run(self.name, partial(_post, self.url, items, self.retry.timeout_s))


class EmailSink:
    """One e-mail per evaluation that fired or resolved alerts."""

    name = "email"

    def __init__(self, settings: Settings, retry: Retry | None = None) -> None:
        assert settings.smtp_host is not None
        self.retry = retry or Retry(timeout_s=settings.alert_send_timeout_seconds)
        self.host = settings.smtp_host
        self.port = settings.smtp_port
        self.starttls = settings.smtp_starttls
        self.user = settings.smtp_user
        self.password = settings.smtp_password
        self.sender = settings.smtp_from
        self.to = settings.smtp_to

    def send(self, changes: Changes) -> None:
        if not (changes.fired or changes.resolved):
            return
        msg = EmailMessage()
        crit = any(a.severity == "critical" for a in changes.fired)
        msg["Subject"] = (
            f"[advertisex]{' CRITICAL' if crit else ''} {len(changes.fired)} firing, "
            f"{len(changes.resolved)} resolved"
        )
        msg["From"] = self.sender
        msg["To"] = ", ".join(self.to)
        lines = [
            f"FIRING [{a.severity}] {a.summary}\n  runbook: {a.runbook}" for a in changes.fired
        ]
        lines += [f"RESOLVED [{a.severity}] {a.summary}" for a in changes.resolved]
        msg.set_content("\n".join(lines) + "\n")
        self.retry.run(self.name, partial(self._deliver, msg))

    def _deliver(self, msg: EmailMessage) -> None:
        try:
            with smtplib.SMTP(self.host, self.port, timeout=self.retry.timeout_s) as smtp:
                if self.starttls:
                    smtp.starttls()
                if self.user and self.password:
                    smtp.login(self.user, self.password.get_secret_value())
                smtp.send_message(msg)
        except smtplib.SMTPResponseException as e:  # 4xx: try later; 5xx: refused for good
            raise DeliveryError(f"SMTP {e.smtp_code} {e.smtp_error!r}", e.smtp_code < 500) from e
        except smtplib.SMTPRecipientsRefused as e:
            codes = [code for code, _ in e.recipients.values()]
            raise DeliveryError(f"SMTP recipients refused: {e.recipients}", min(codes) < 500) from e
        except smtplib.SMTPException as e:
            raise DeliveryError(f"{type(e).__name__}: {e}", False) from e
        except OSError as e:  # refused, unreachable, timed out, cut off
            raise DeliveryError(f"{type(e).__name__}: {e}", True) from e


def sinks_from(settings: Settings) -> list[Sink]:
    """The sinks the settings configure."""
    retry = Retry.of(settings)
    sinks: list[Sink] = [LogSink()] if settings.alert_log else []
    sinks += [WebhookSink(url, retry) for url in settings.alert_webhook_urls]
    if settings.alertmanager_url:
        sinks.append(AlertmanagerSink(settings.alertmanager_url, retry))
    if settings.smtp_host and settings.smtp_to:
        sinks.append(EmailSink(settings, retry))
    for sink in sinks:  # exported at 0 from the start, so that a first failure is an increase
        for outcome in ("ok", "retry", "error", "dropped"):
            NOTIFICATIONS.labels(sink.name, outcome)
    return sinks


def notify(sinks: list[Sink], changes: Changes) -> None:
    """Every sink gets the changes; one failing sink does not keep the others from theirs."""
    for sink in sinks:
        try:
            sink.send(changes)
        except DeliveryError as e:
            NOTIFICATIONS.labels(sink.name, "error").inc()
            log.error("alert sink %s failed: %s", sink.name, e)
        else:
            NOTIFICATIONS.labels(sink.name, "ok").inc()


class Notifier:
    """Delivers each evaluation's changes to the sinks on a thread of its own, in the order
    they were submitted, so that retries and slow receivers never hold up the caller.

    The queue is bounded: when `max_queued` evaluations wait (a receiver down for long), the
    oldest waiting one is dropped, logged and counted (outcome "dropped"); alerts that are still
    firing are sent again with the next evaluations anyway.
    """

    def __init__(self, sinks: list[Sink], max_queued: int = 100) -> None:
        self.sinks = sinks
        self._queue: queue.Queue[Changes | None] = queue.Queue(maxsize=max_queued)
        self._thread = threading.Thread(target=self._run, name="advx-alert-sinks", daemon=True)
        self._thread.start()

    def submit(self, changes: Changes) -> None:
        """Queue one evaluation's changes; returns at once."""
        while True:
            try:
                self._queue.put_nowait(changes)
                return
            except queue.Full:
                try:
                    self._queue.get_nowait()
                    self._queue.task_done()
                except queue.Empty:
                    continue
                for sink in self.sinks:
                    NOTIFICATIONS.labels(sink.name, "dropped").inc()
                log.error("alert sinks are behind: dropped the oldest waiting notification")

    def flush(self, timeout_s: float) -> bool:
        """Wait until everything submitted was delivered (or given up); False on timeout."""
        deadline = time.monotonic() + timeout_s
        while self._queue.unfinished_tasks:
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.01)
        return True

    def close(self, timeout_s: float = 5.0) -> None:
        """Deliver what is waiting (for at most `timeout_s`), then stop the thread."""
        self.flush(timeout_s)
        with contextlib.suppress(queue.Full):
            self._queue.put(None, timeout=timeout_s)
        self._thread.join(timeout_s)

    def _run(self) -> None:
        while (changes := self._queue.get()) is not None:
            try:
                notify(self.sinks, changes)
            except Exception:  # a bug in a sink must not end the deliveries
                log.exception("alert delivery failed")
            finally:
                self._queue.task_done()
        self._queue.task_done()


def _post(url: str, body: Any, timeout_s: float) -> None:
    """One POST of JSON; DeliveryError saying whether trying again may help."""
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            resp.read()
    except urllib.error.HTTPError as e:
        transient = e.code >= 500 or e.code in (408, 429)
        raise DeliveryError(f"HTTP {e.code} {e.reason} from {url}", transient) from e
    except OSError as e:  # URLError (refused, unreachable, DNS), timeouts, resets
        raise DeliveryError(f"{url}: {type(e).__name__}: {e}", True) from e


def _rfc3339(t: Any) -> str:
    return str(t.isoformat(timespec="seconds")) + "Z"
