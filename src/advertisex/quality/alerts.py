"""Alerts: failing checks become pending, then firing once they have failed for `for` seconds,
then resolved when the check passes again. One open episode per alert (name + labels), kept in
the store's `alerts` table, so repeated evaluations never duplicate an alert.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

import duckdb

from advertisex.quality.checks import Finding
from advertisex.store import Store

STATES = ("pending", "firing", "resolved")
_COLUMNS = (
    "fingerprint, alertname, severity, labels, summary, runbook, value, threshold, state, "
    "active_since, fired_at, resolved_at, updated_at"
)


@dataclass(frozen=True)
class Alert:
    fingerprint: str
    name: str
    severity: str
    labels: dict[str, str]
    summary: str
    runbook: str
    value: float | None
    threshold: float | None
    state: str
    active_since: datetime
    fired_at: datetime | None
    resolved_at: datetime | None
    updated_at: datetime

    def to_dict(self) -> dict[str, Any]:
        return {
            "fingerprint": self.fingerprint,
            "alertname": self.name,
            "severity": self.severity,
            "labels": self.labels,
            "summary": self.summary,
            "runbook": self.runbook,
            "value": self.value,
            "threshold": self.threshold,
            "state": self.state,
            "active_since": _iso(self.active_since),
            "fired_at": _iso(self.fired_at),
            "resolved_at": _iso(self.resolved_at),
        }

    def _row(self) -> list[Any]:
        return [
            self.fingerprint,
            self.name,
            self.severity,
            json.dumps(self.labels, sort_keys=True),
            self.summary,
            self.runbook,
            self.value,
            self.threshold,
            self.state,
            self.active_since,
            self.fired_at,
            self.resolved_at,
            self.updated_at,
        ]


@dataclass
class Changes:
    """What one evaluation changed: the sinks send these."""

    fired: list[Alert] = field(default_factory=list)
    resolved: list[Alert] = field(default_factory=list)
    firing: list[Alert] = field(default_factory=list)  # every alert firing after the evaluation
    pending: list[Alert] = field(default_factory=list)


def fingerprint(name: str, labels: dict[str, str]) -> str:
    key = name + "\0" + json.dumps(labels, sort_keys=True)
    return hashlib.md5(key.encode()).hexdigest()[:16]


def _labels(f: Finding) -> dict[str, str]:
    return {**f.labels, "severity": str(f.severity)}


def evaluate(
    store: Store, findings: Iterable[Finding], as_of: datetime, for_seconds: int
) -> Changes:
    """Advance every alert's state with this evaluation's findings, in one transaction."""
    failing = {}
    for f in findings:
        if f.failed:
            labels = _labels(f)
            failing[fingerprint(f.check, labels)] = (f, labels)
    hold = timedelta(seconds=for_seconds)
    changes = Changes()
    with store.transaction() as con:
        open_ = {a.fingerprint: a for a in _select(con, "state IN ('pending', 'firing')", [])}
        for fp, (f, labels) in failing.items():
            was = open_.get(fp)
            now = (
                replace(
                    was,
                    summary=f.summary,
                    value=f.value,
                    threshold=f.threshold,
                    updated_at=as_of,
                )
                if was
                else Alert(
                    fp,
                    f.check,
                    str(f.severity),
                    labels,
                    f.summary,
                    f.runbook,
                    f.value,
                    f.threshold,
                    "pending",
                    as_of,
                    None,
                    None,
                    as_of,
                )
            )
            if now.state == "pending" and as_of - now.active_since >= hold:
                now = replace(now, state="firing", fired_at=as_of)
                changes.fired.append(now)
            (changes.firing if now.state == "firing" else changes.pending).append(now)
            if was:
                _update(con, now)
            else:
                con.execute(f"INSERT INTO alerts ({_COLUMNS}) VALUES ({_marks()})", now._row())
        for fp, was in open_.items():
            if fp in failing:
                continue
            if was.state == "pending":  # never fired: nothing to tell, nothing to keep
                con.execute("DELETE FROM alerts WHERE fingerprint = ? AND state = 'pending'", [fp])
                continue
            done = replace(was, state="resolved", resolved_at=as_of, updated_at=as_of)
            _update(con, done)
            changes.resolved.append(done)
    return changes


def list_alerts(
    con: duckdb.DuckDBPyConnection, state: str | None = None, limit: int | None = None
) -> list[Alert]:
    """Alerts, open ones first, newest first (none in a store made before alerts existed)."""
    if not con.execute("SELECT 1 FROM duckdb_tables() WHERE table_name = 'alerts'").fetchall():
        return []
    where, params = ("state = ?", [state]) if state else ("true", [])
    alerts = _select(con, where, params)
    alerts.sort(key=lambda a: (a.state == "resolved", -a.updated_at.timestamp()))
    return alerts[:limit] if limit else alerts


def _select(con: duckdb.DuckDBPyConnection, where: str, params: list[Any]) -> list[Alert]:
    rows = con.execute(f"SELECT {_COLUMNS} FROM alerts WHERE {where}", params).fetchall()
    return [Alert(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5] or "", *r[6:]) for r in rows]


def _update(con: duckdb.DuckDBPyConnection, a: Alert) -> None:
    con.execute(
        "UPDATE alerts SET summary = ?, value = ?, threshold = ?, state = ?, fired_at = ?, "
        "resolved_at = ?, updated_at = ? WHERE fingerprint = ? AND active_since = ?",
        [
            a.summary,
            a.value,
            a.threshold,
            a.state,
            a.fired_at,
            a.resolved_at,
            a.updated_at,
            a.fingerprint,
            a.active_since,
        ],
    )


def _marks() -> str:
    return ", ".join("?" * len(_COLUMNS.split(",")))


def _iso(t: datetime | None) -> str | None:
    return None if t is None else t.isoformat() + "Z"
