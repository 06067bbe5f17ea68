"""Where alerts go: the log, a webhook in Alertmanager's format, Alertmanager's API, e-mail.

A sink that fails (receiver down, SMTP refused) is logged and counted in
`advx_alert_notifications_total{outcome="error"}`; it never stops the checks.
"""

from __future__ import annotations

import json
import logging
import smtplib
import urllib.request
from datetime import timedelta
from email.message import EmailMessage
from typing import Any, Protocol

from advertisex.config import Settings
from advertisex.quality.alerts import Alert, Changes
from advertisex.quality.metrics import NOTIFICATIONS

log = logging.getLogger("advertisex.alerts")

_TIMEOUT_S = 10
# Alertmanager forgets an alert that is not re-sent before its endsAt: re-sent every cycle.
_AM_HOLD = timedelta(minutes=5)


class Sink(Protocol):
    name: str

    def send(self, changes: Changes) -> None: ...


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

    def __init__(self, url: str) -> None:
        self.url = url

    def send(self, changes: Changes) -> None:
        for status, alerts in (("firing", changes.fired), ("resolved", changes.resolved)):
            if alerts:
                _post(self.url, webhook_payload(status, alerts))


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

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/") + "/api/v2/alerts"

    def send(self, changes: Changes) -> None:
        items = [am_alert(a) for a in changes.firing + changes.resolved]
        for item in items:
            del item["status"], item["fingerprint"]
            if item["endsAt"].startswith("0001"):
                del item["endsAt"]
        if items:
            _post(self.url, items)


class EmailSink:
    """One e-mail per evaluation that fired or resolved alerts."""

    name = "email"

    def __init__(self, settings: Settings) -> None:
        assert settings.smtp_host is not None
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
        with smtplib.SMTP(self.host, self.port, timeout=_TIMEOUT_S) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user and self.password:
                smtp.login(self.user, self.password.get_secret_value())
            smtp.send_message(msg)


def sinks_from(settings: Settings) -> list[Sink]:
    """The sinks the settings configure."""
    sinks: list[Sink] = [LogSink()] if settings.alert_log else []
    sinks += [WebhookSink(url) for url in settings.alert_webhook_urls]
    if settings.alertmanager_url:
        sinks.append(AlertmanagerSink(settings.alertmanager_url))
    if settings.smtp_host and settings.smtp_to:
        sinks.append(EmailSink(settings))
    return sinks


def notify(sinks: list[Sink], changes: Changes) -> None:
    """Every sink gets the changes; one failing sink does not keep the others from theirs."""
    for sink in sinks:
        try:
            sink.send(changes)
        except (OSError, smtplib.SMTPException) as e:
            NOTIFICATIONS.labels(sink.name, "error").inc()
            log.error("alert sink %s failed: %s: %s", sink.name, type(e).__name__, e)
        else:
            NOTIFICATIONS.labels(sink.name, "ok").inc()


def _post(url: str, body: Any) -> None:
    req = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(req, timeout=_TIMEOUT_S) as resp:
        resp.read()


def _rfc3339(t: Any) -> str:
    return str(t.isoformat(timespec="seconds")) + "Z"
