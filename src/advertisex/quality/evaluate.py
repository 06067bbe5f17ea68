"""Proving the checks: replay a labelled data set (`generate(..., incidents=True)`) in event
time and measure, per incident kind, whether and how soon a related check failed, and how many
failures there were outside every incident (false alerts).

The store is filled by one ordinary ingest; arrival is then simulated by stamping each row's
`ingested_at` (and each reject's `rejected_at`) with its event time plus a small delay, plus
the incident's own delay for late events. Used by tests/quality/test_detection.py and
bench/quality_bench.py.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb

from advertisex.config import Settings
from advertisex.quality.checks import Finding, run_checks
from advertisex.schemas.sources import SOURCES

# Which failing checks count as detecting each kind: (check, source, subject) where None
# matches anything and "campaign" the incident's campaign.
RELATED: dict[str, tuple[tuple[str, str | None, str | None], ...]] = {
    "silent_source": (("freshness", "impressions", None), ("volume", "impressions", None)),
    "volume_drop": (("campaign_volume", None, "campaign"),),
    "ctr_triple": (("ctr", None, "campaign"),),
    "late_clicks": (
        ("freshness", "clicks_conversions", None),
        ("late_rate", "clicks_conversions", None),
        ("delay_p95", "clicks_conversions", None),
        ("volume", "clicks_conversions", None),
    ),
    "malformed_burst": (("reject_rate", "impressions", None),),
    "schema_change": (
        ("unknown_field", "impressions", "site_domain"),
        ("null_rate", "impressions", "site"),
    ),
    "bot_burst": (("volume", "impressions", None), ("ivt_rate", "impressions", None)),
}
# After an incident ends, failures for this long are its after-effects, not false alerts.
AFTERMATH = timedelta(hours=1)


def stamp_arrivals(
    con: duckdb.DuckDBPyConnection, incidents: list[dict[str, Any]], delay_s: int = 30
) -> None:
    """Simulated arrival: every event `delay_s` after its event time, an incident's late
    events `arrival_delay` after it; a reject arrives with the record before it in its file."""
    for source in SOURCES.values():
        con.execute(
            f"UPDATE {source.table} SET ingested_at = event_time + to_seconds(?)", [delay_s]
        )
    # the batch profiles (field_stats) are by minute: they arrive with the minute's last event
    con.execute("UPDATE field_stats SET ingested_at = minute + to_seconds(?)", [delay_s + 60])
    for inc in incidents:
        if inc["arrival_delay"]:
            con.execute(
                f"UPDATE {SOURCES[inc['source']].table} SET ingested_at = event_time + "
                "to_seconds(?) WHERE event_time >= make_timestamp(?::BIGINT * 1000000) "
                "AND event_time < make_timestamp(?::BIGINT * 1000000)",
                [inc["arrival_delay"], inc["start"], inc["end"]],
            )
            con.execute(
                "UPDATE field_stats SET ingested_at = minute + to_seconds(?) WHERE source = ? "
                "AND minute >= make_timestamp(?::BIGINT * 1000000) "
                "AND minute < make_timestamp(?::BIGINT * 1000000)",
                [inc["arrival_delay"] + 60, inc["source"], inc["start"], inc["end"]],
            )
    for name, source in SOURCES.items():
        con.execute(
            f"""
            UPDATE rejects SET rejected_at = a.arrived FROM (
              SELECT r.reject_id, e.ingested_at AS arrived
              FROM (SELECT * FROM rejects WHERE source = ?) r
              ASOF JOIN (SELECT source_uri, source_record, ingested_at FROM {source.table}) e
                ON r.source_uri = e.source_uri AND r.source_record >= e.source_record
            ) a WHERE rejects.reject_id = a.reject_id
            """,
            [name],
        )
    # Batches hold whole files, which arrive over days in this replay: keep them out of it.
    con.execute("UPDATE batches SET committed_at = TIMESTAMP '2100-01-01'")


def replay(
    con: duckdb.DuckDBPyConnection, settings: Settings, times: Iterable[datetime]
) -> dict[datetime, list[Finding]]:
    """The failing findings at each evaluation time."""
    return {t: [f for f in run_checks(con, settings, t) if f.failed] for t in times}


@dataclass(frozen=True)
class Detection:
    kind: str
    start: datetime
    detected_at: datetime | None
    checks: tuple[str, ...]  # the related checks failing then, as "check (subject)"

    @property
    def delay_minutes(self) -> float | None:
        if self.detected_at is None:
            return None
        return (self.detected_at - self.start).total_seconds() / 60


def _matches(f: Finding, rule: tuple[str, str | None, str | None], campaign: str | None) -> bool:
    check, source, subject = rule
    if f.check != check or (source is not None and f.source != source):
        return False
    if subject == "campaign":
        return f.subject == campaign
    return subject is None or f.subject == subject


def score(
    incidents: list[dict[str, Any]], timeline: dict[datetime, list[Finding]]
) -> tuple[list[Detection], list[tuple[datetime, Finding]]]:
    """Per incident, the first evaluation at or after its start where a related check failed;
    and the false alerts: failure episodes (a check and subject failing at consecutive
    evaluations count once) that start outside every incident and its aftermath."""
    detections = []
    times = sorted(timeline)
    for inc in incidents:
        start = from_epoch(inc["start"])
        end = from_epoch(inc["end"]) + AFTERMATH
        rules = RELATED[inc["kind"]]
        detected_at, found = None, []
        for t in (t for t in times if start <= t <= end):
            found = [f for f in timeline[t] if any(_matches(f, r, inc["campaign"]) for r in rules)]
            if found:
                detected_at = t
                break
        named = tuple(f"{f.check} ({f.subject or f.source})" for f in found)
        detections.append(Detection(inc["kind"], start, detected_at, named))
    spans = [(from_epoch(i["start"]), from_epoch(i["end"]) + AFTERMATH) for i in incidents]
    false: list[tuple[datetime, Finding]] = []
    before: set[tuple[str, str, str]] = set()
    for t in times:
        now = {(f.check, f.source, f.subject): f for f in timeline[t]}
        for key, f in now.items():
            if key not in before and not any(a <= t <= b for a, b in spans):
                false.append((t, f))
        before = set(now)
    return detections, false


def from_epoch(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, UTC).replace(tzinfo=None)


def evaluation_times(start: datetime, end: datetime, step: timedelta) -> list[datetime]:
    out, t = [], start
    while t < end:
        out.append(t)
        t += step
    return out
