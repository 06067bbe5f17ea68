"""deploy/: Prometheus config and rules, their unit tests, Alertmanager config, the dashboard,
validated by the real binaries of Debian's prometheus and prometheus-alertmanager packages."""

from __future__ import annotations

import json
import os
import re
import stat
import subprocess
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

# Imported for what they register: every metric advertisex exports.
import advertisex.pipeline.gauges
import advertisex.quality.metrics  # noqa: F401
from tests.quality.procs import binary

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
RULES = DEPLOY / "prometheus" / "rules" / "advertisex.rules.yml"


def run(*args: str, env: dict[str, str] | None = None) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


def test_promtool_checks_config_and_rules() -> None:
    out = run(binary("promtool"), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert "SUCCESS: 9 rules found" in out
    assert "SUCCESS: 9 rules found" in run(binary("promtool"), "check", "rules", str(RULES))


def test_promtool_rule_unit_tests() -> None:
    tests = RULES.with_name("advertisex.rules.test.yml")
    assert "SUCCESS" in run(binary("promtool"), "test", "rules", str(tests))


def alertmanager_env(**more: str) -> dict[str, str]:
    return {
        **os.environ,
        "ALERTMANAGER_SMTP_SMARTHOST": "smtp.example.com:587",
        "ALERTMANAGER_SMTP_FROM": "advertisex@example.com",
        "ALERTMANAGER_SMTP_USER": "advertisex",
        "ALERTMANAGER_SMTP_PASSWORD": "s3cret-from-env",
        "ALERTMANAGER_EMAIL_TO": "oncall@example.com",
        "ALERTMANAGER_WEBHOOK_URL": "http://127.0.0.1:9/hook",
        "ALERTMANAGER_DEADMANS_URL": "http://127.0.0.1:9/heartbeat",
        **more,
    }


def render_alertmanager(out: Path, env: dict[str, str]) -> Path:
    run(str(DEPLOY / "alertmanager" / "run-alertmanager"), "--render-only", str(out), env=env)
    return out


def test_alertmanager_config_takes_its_secrets_from_the_environment(tmp_path: Path) -> None:
    template = (DEPLOY / "alertmanager" / "alertmanager.yml.tmpl").read_text()
    assert "s3cret" not in template and "${ALERTMANAGER_SMTP_PASSWORD}" in template
    config = render_alertmanager(tmp_path / "am.yml", alertmanager_env())
    text = config.read_text()
    assert "smtp_auth_password: 's3cret-from-env'" in text and "${" not in text
    assert stat.S_IMODE(config.stat().st_mode) == 0o600  # the rendered file holds a secret
    out = run(binary("amtool"), "check-config", str(config))
    assert "SUCCESS" in out and "3 receivers" in out


def test_alertmanager_start_script_says_what_is_missing(tmp_path: Path) -> None:
    env = alertmanager_env()
    del env["ALERTMANAGER_EMAIL_TO"]
    proc = subprocess.run(
        [str(DEPLOY / "alertmanager" / "run-alertmanager"), "--render-only", str(tmp_path / "x")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert proc.returncode != 0
    assert "set ALERTMANAGER_EMAIL_TO (where critical alerts go)" in proc.stderr


def _exported() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        names.add(family.name)
        names.update(s.name for s in family.samples)
    # families not yet set have no samples: add their suffixed names by type
    for family in REGISTRY.collect():
        if family.type == "counter":
            names.add(family.name + "_total")
        if family.type == "histogram":
            names.update(family.name + s for s in ("_bucket", "_sum", "_count"))
    return names


@pytest.mark.parametrize(
    "path",
    [RULES, DEPLOY / "grafana" / "advertisex-dashboard.json"],
    ids=["rules", "dashboard"],
)
def test_every_metric_used_is_one_advertisex_exports(path: Path) -> None:
    used = set(re.findall(r"\badvx_[a-z_]+", path.read_text()))
    assert used, f"{path} uses no advertisex metric"
    assert used <= _exported(), f"unknown metrics in {path.name}: {used - _exported()}"


def test_dashboard_is_grafana_json_with_queries() -> None:
    dash = json.loads((DEPLOY / "grafana" / "advertisex-dashboard.json").read_text())
    assert dash["uid"] == "advertisex-quality"
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)) >= 10
    assert all(t["expr"] for p in dash["panels"] for t in p["targets"])
