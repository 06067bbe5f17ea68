"""End to end on loopback: `advertisex check --watch` exports metrics, a real Prometheus scrapes
them and evaluates deploy/'s rules, a real Alertmanager (deploy/'s config, rendered from the
environment) routes the alerts to a webhook receiver and an SMTP server. A fault is injected
(the only source goes silent), then the exporter is killed.

The only changes to deploy/ for the test: loopback ports, 1 s scrape, evaluation and re-send
intervals and `for:` shortened to 2 s, so the test takes seconds instead of minutes.
"""

from __future__ import annotations

import json
import os
import re
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import Cli
from tests.deploy.test_deploy_files import DEPLOY, alertmanager_env, render_alertmanager
from tests.quality.procs import binary, process, wait_http
from tests.quality.receivers import Received, free_port, http_receiver, smtp_receiver


def wait_for(what: str, found: Callable[[], Any], timeout: float = 60.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        hit = found()
        if hit:
            return hit
        time.sleep(0.25)
    raise AssertionError(f"timed out waiting for {what}; see the logs in the test's tmp_path")


def alerts_at(got: Received, path: str, **labels: str) -> list[dict[str, Any]]:
    return [
        a
        for p, body in list(got.requests)
        if p == path
        for a in body["alerts"]
        if a["status"] == "firing" and all(a["labels"].get(k) == v for k, v in labels.items())
    ]


def prometheus_config(folder: Path, check_port: int, am_port: int) -> Path:
    text = (DEPLOY / "prometheus" / "prometheus.yml").read_text()
    text = text.replace("localhost:9108", f"127.0.0.1:{check_port}")
    text = text.replace("localhost:9093", f"127.0.0.1:{am_port}")
    text = re.sub(r"(scrape_interval|evaluation_interval): 10s", r"\1: 1s", text)
    text = text.replace("scrape_timeout: 5s", "scrape_timeout: 1s")
    rules = (DEPLOY / "prometheus" / "rules" / "advertisex.rules.yml").read_text()
    rules = re.sub(r"for: \d+[sm]", "for: 2s", rules).replace("interval: 10s", "interval: 1s")
    (folder / "rules").mkdir(parents=True)
    (folder / "rules" / "advertisex.rules.yml").write_text(rules)
    (folder / "prometheus.yml").write_text(text)
    return folder / "prometheus.yml"


@pytest.mark.slow
def test_a_silent_source_and_a_dead_exporter_reach_the_receivers(cli: Cli, tmp_path: Path) -> None:
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    data = tmp_path / "imps.ndjson"
    data.write_text(
        "\n".join(
            json.dumps(
                {
                    "impression_id": f"i{k}",
                    "creative_id": 1,
                    "user_id": k,
                    "website": "a.com",
                    "timestamp": (now - timedelta(seconds=k)).isoformat(sep=" "),
                }
            )
            for k in range(5)
        )
        + "\n"
    )
    assert cli("ingest", str(data)).exit_code == 0
    check_port, am_port, prom_port = free_port(), free_port(), free_port()

    with http_receiver() as (hook, got), smtp_receiver() as (smtp_port, mailbox):
        am_config = render_alertmanager(
            tmp_path / "alertmanager.yml",
            alertmanager_env(
                ALERTMANAGER_SMTP_SMARTHOST=f"127.0.0.1:{smtp_port}",
                ALERTMANAGER_SMTP_REQUIRE_TLS="false",
                ALERTMANAGER_WEBHOOK_URL=hook + "/team",
                ALERTMANAGER_DEADMANS_URL=hook + "/heartbeat",
            ),
        )
        am = [
            binary("prometheus-alertmanager"),
            f"--config.file={am_config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ]
        prom = [
            binary("prometheus"),
            f"--config.file={prometheus_config(tmp_path / 'prom', check_port, am_port)}",
            f"--storage.tsdb.path={tmp_path / 'prom-data'}",
            f"--web.listen-address=127.0.0.1:{prom_port}",
            # alerts that fire before Alertmanager is discovered are re-sent after this
            "--rules.alert.resend-delay=1s",
        ]
        env = {
            **os.environ,
            "ADVX_DB": str(cli.db),
            "ADVX_FRESHNESS_MAX_SECONDS": "20",  # the fault: no new events from now on
            "ADVX_QUALITY_GRACE_SECONDS": "0",
            "ADVX_ALERT_FOR_SECONDS": "0",
            "ADVX_ALERTMANAGER_URL": f"http://127.0.0.1:{am_port}",
        }
        check = [sys.executable, "-m", "advertisex", "check", "--watch", "--interval", "1",
                 "--metrics-port", str(check_port)]  # fmt: skip
        with (
            process(am, tmp_path / "am.log"),
            process(prom, tmp_path / "prom.log"),
            process(check, tmp_path / "check.log", env) as watcher,
        ):
            wait_http(f"http://127.0.0.1:{am_port}/-/ready")
            wait_http(f"http://127.0.0.1:{prom_port}/-/ready")
            # the dead man's switch heartbeat comes through on its own route
            wait_for(
                "the Watchdog heartbeat", lambda: alerts_at(got, "/heartbeat", alertname="Watchdog")
            )

            # the source has gone silent: Prometheus's rule over advx_check_failing fires ...
            rule = wait_for(
                "AdvxCriticalCheckFailing at the webhook",
                lambda: alerts_at(got, "/team", alertname="AdvxCriticalCheckFailing",
                                  check="freshness", source="impressions"),
            )  # fmt: skip
            started = datetime.fromisoformat(rule[0]["startsAt"].replace("Z", "+00:00"))
            assert started >= now.replace(tzinfo=UTC) + timedelta(seconds=19)
            # ... advertisex's own alert came through Alertmanager's API too ...
            wait_for("advertisex's freshness alert", lambda: alerts_at(
                got, "/team", alertname="freshness", source="impressions"))  # fmt: skip
            # ... and the critical route mailed on-call
            mail = wait_for("the e-mail", lambda: mailbox.messages)
            assert mail[0]["X-Rcpt"] == "oncall@example.com"

            assert not alerts_at(got, "/team", alertname="AdvxExporterDown", job="advertisex-check")
            watcher.terminate()  # the exporter dies
            watcher.wait(10)
            wait_for(
                "AdvxExporterDown",
                lambda: alerts_at(
                    got, "/team", alertname="AdvxExporterDown", job="advertisex-check"
                ),
            )
