"""Alert states (pending -> firing -> resolved), de-duplication, storage, sinks and commands."""

from __future__ import annotations

import json
import logging
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from advertisex.cli import app
from advertisex.config import Settings, load_settings
from advertisex.quality import Finding, Severity
from advertisex.quality.alerts import Changes, evaluate, list_alerts
from advertisex.quality.cycle import run_cycle
from advertisex.quality.sinks import (
    AlertmanagerSink,
    EmailSink,
    LogSink,
    WebhookSink,
    notify,
    sinks_from,
)
from advertisex.store import Store
from tests.conftest import Cli
from tests.quality.conftest import Events
from tests.quality.receivers import free_port, http_receiver, smtp_receiver

T0 = datetime(2026, 11, 20, 12, 0)


def finding(failed: bool, value: float = 0.4, subject: str = "") -> Finding:
    return Finding(
        check="reject_rate",
        source="impressions",
        subject=subject,
        value=value,
        threshold=0.05,
        severity=Severity.CRITICAL,
        failed=failed,
        summary=f"reject_rate of impressions: {value:.0%}",
        runbook="look at the rejects",
        n=100,
    )


def test_pending_then_firing_then_resolved_once_each(store: Store) -> None:
    first = evaluate(store, [finding(True)], T0, for_seconds=120)
    assert [a.state for a in first.pending] == ["pending"] and not first.fired

    early = evaluate(store, [finding(True)], T0 + timedelta(seconds=60), for_seconds=120)
    assert not early.fired and len(early.pending) == 1

    fired = evaluate(store, [finding(True, 0.5)], T0 + timedelta(seconds=120), 120)
    assert [a.name for a in fired.fired] == ["reject_rate"]
    assert fired.fired[0].fired_at == T0 + timedelta(seconds=120)
    assert fired.fired[0].active_since == T0 and fired.fired[0].value == 0.5

    again = evaluate(store, [finding(True)], T0 + timedelta(seconds=180), 120)
    assert not again.fired and len(again.firing) == 1  # de-duplicated: no second firing

    done = evaluate(store, [finding(False)], T0 + timedelta(seconds=240), 120)
    assert [a.state for a in done.resolved] == ["resolved"]
    assert done.resolved[0].resolved_at == T0 + timedelta(seconds=240)

    stored = list_alerts(store.con)
    assert len(stored) == 1 and stored[0].state == "resolved"

    # a new failure later is a new episode, the old one stays in the history
    evaluate(store, [finding(True)], T0 + timedelta(seconds=600), 0)
    assert [a.state for a in list_alerts(store.con)] == ["firing", "resolved"]


def test_pending_alert_that_clears_leaves_nothing(store: Store) -> None:
    evaluate(store, [finding(True)], T0, 120)
    cleared = evaluate(store, [], T0 + timedelta(seconds=30), 120)
    assert not cleared.resolved and list_alerts(store.con) == []


def test_subjects_are_separate_alerts(store: Store) -> None:
    changes = evaluate(
        store,
        [finding(True, subject="malformed_json"), finding(True, subject="missing_field")],
        T0,
        0,
    )
    assert sorted(a.labels["subject"] for a in changes.fired) == ["malformed_json", "missing_field"]


def _fired(store: Store) -> Changes:
    return evaluate(store, [finding(True)], T0, 0)


def test_webhook_gets_alertmanager_webhook_json(store: Store) -> None:
    with http_receiver() as (url, got):
        sink = WebhookSink(url + "/hook")
        sink.send(_fired(store))
        sink.send(evaluate(store, [], T0 + timedelta(minutes=5), 0))
    (path, firing), (_, resolved) = got.requests
    assert path == "/hook"
    assert firing["version"] == "4" and firing["status"] == "firing"
    alert = firing["alerts"][0]
    assert alert["labels"] == {
        "alertname": "reject_rate",
        "check": "reject_rate",
        "source": "impressions",
        "subject": "",
        "severity": "critical",
    }
    assert alert["annotations"]["summary"] == "reject_rate of impressions: 40%"
    assert alert["startsAt"] == "2026-11-20T12:00:00Z"
    assert firing["commonLabels"]["alertname"] == "reject_rate"
    assert resolved["status"] == "resolved"
    assert resolved["alerts"][0]["endsAt"] == "2026-11-20T12:05:00Z"


def test_alertmanager_api_v2_gets_every_firing_alert(store: Store) -> None:
    with http_receiver() as (url, got):
        AlertmanagerSink(url).send(_fired(store))
    ((path, body),) = got.requests
    assert path == "/api/v2/alerts"
    assert body[0]["labels"]["alertname"] == "reject_rate"
    assert body[0]["startsAt"] == "2026-11-20T12:00:00Z" and "endsAt" not in body[0]


def test_email_over_smtp(store: Store, tmp_path: Path) -> None:
    with smtp_receiver() as (port, box):
        settings = load_settings(
            db=tmp_path / "x.duckdb",
            smtp_host="127.0.0.1",
            smtp_port=port,
            smtp_to=("oncall@example.com", "data@example.com"),
            alert_log=False,
        )
        (sink,) = sinks_from(settings)
        assert isinstance(sink, EmailSink)
        sink.send(_fired(store))
    (msg,) = box.messages
    assert msg["Subject"] == "[advertisex] CRITICAL 1 firing, 0 resolved"
    assert msg["X-Rcpt"] == "oncall@example.com, data@example.com"
    body = msg.get_payload()
    assert "FIRING [critical] reject_rate of impressions: 40%" in body
    assert "runbook: look at the rejects" in body


def test_a_dead_sink_does_not_stop_the_others(
    store: Store, caplog: pytest.LogCaptureFixture
) -> None:
    errors = (
        REGISTRY.get_sample_value(
            "advx_alert_notifications_total", {"sink": "webhook", "outcome": "error"}
        )
        or 0.0
    )
    with http_receiver() as (url, got), caplog.at_level(logging.WARNING, "advertisex.alerts"):
        notify(
            [WebhookSink(f"http://127.0.0.1:{free_port()}/"), LogSink(), WebhookSink(url)],
            _fired(store),
        )
    assert len(got.requests) == 1
    assert "alert sink webhook failed" in caplog.text
    assert "FIRING [critical] reject_rate of impressions: 40%" in caplog.text
    assert (
        REGISTRY.get_sample_value(
            "advx_alert_notifications_total", {"sink": "webhook", "outcome": "error"}
        )
        == errors + 1
    )


def test_cycle_exports_check_metrics_and_stores_alerts(events: Events, settings: Settings) -> None:
    as_of = T0
    events.impressions([as_of - timedelta(minutes=30)])
    events.arrive()
    result = run_cycle(events.store, settings, sinks=[], as_of=as_of)
    assert result.critical_failed
    labels = {"check": "freshness", "source": "impressions", "subject": ""}
    assert REGISTRY.get_sample_value("advx_check_value", labels) == 1800
    assert REGISTRY.get_sample_value("advx_check_failing", {**labels, "severity": "critical"}) == 1
    assert REGISTRY.get_sample_value("advx_check_threshold", labels) == 600
    assert [a.name for a in list_alerts(events.store.con, "pending")] == ["freshness"]


def test_check_command_exit_code_and_json(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "imps.ndjson"
    recent = datetime.now() - timedelta(minutes=20)
    path.write_text(
        json.dumps(
            {
                "creative_id": 1,
                "user_id": 1,
                "website": "a.com",
                "timestamp": recent.isoformat(sep=" ", timespec="seconds"),
            }
        )
        + "\n"
    )
    assert cli("ingest", str(path)).exit_code == 0
    result = cli("check", "--format", "json")
    assert result.exit_code == 4
    stale = [f for f in json.loads(result.stdout) if f["check"] == "freshness"]
    assert stale and stale[0]["failed"] and stale[0]["source"] == "impressions"

    listed = cli("alerts", "--format", "json")
    assert listed.exit_code == 0
    # 20 minutes old on arrival: stale and delayed (one event is too few to judge a late rate)
    pending = {a["alertname"]: a["state"] for a in json.loads(listed.stdout)}
    assert pending == {"freshness": "pending", "delay_p95": "pending"}

    table = cli("check")
    assert table.exit_code == 4 and "FAIL" in table.stdout


def test_check_command_plain_errors(cli: Cli) -> None:
    bad = cli("check", "--format", "xml")
    assert bad.exit_code == 2
    assert bad.stderr.strip() == "error: --format 'xml' is unknown; use table or json"
    at = cli("check", "--at", "noon")
    assert at.exit_code == 2 and "--at 'noon' is not a time" in at.stderr
    state = cli("alerts", "--state", "loud")
    assert state.exit_code == 2 and "--state 'loud' is unknown" in state.stderr


def test_alerts_of_a_store_older_than_alerts(cli: Cli, tmp_path: Path) -> None:
    path = tmp_path / "old.duckdb"
    with Store.open(load_settings(db=path)) as store:
        store.con.execute("DROP TABLE alerts")  # as made by a version before issue 6
    listed = cli.runner.invoke(app, ["alerts", "--db", str(path), "--format", "json"])
    assert listed.exit_code == 0 and json.loads(listed.stdout) == []
