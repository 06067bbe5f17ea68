"""Data-quality checks: each a named SQL query over an event-time window, a threshold, a severity.

Two kinds of rule:
- `max`: the value (a delay, an age, a rate) fails above a fixed threshold from the settings;
- `band`: the value is compared with the same window on each of the previous days (a seasonal
  baseline: median and median absolute deviation), and fails when it leaves the band in either
  direction. Band checks stay silent until `quality_warmup_days` previous days are stored.

Every query sees only the rows that had arrived by `as_of` (`ingested_at <= as_of`), so the
checks can be evaluated as of any moment of a replayed history, and `as_of = now` is the live
case. Windows end `quality_grace_seconds` before `as_of`, for events still on their way.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from functools import cache
from importlib.resources import files
from typing import Any, Literal

import duckdb

from advertisex.config import Settings
from advertisex.schemas.fields import known_paths
from advertisex.schemas.sources import MONEY, SOURCES
from advertisex.store import one

DAY_S = 86_400


class Severity(StrEnum):
    CRITICAL = "critical"
    WARNING = "warning"


@dataclass(frozen=True)
class Finding:
    """The outcome of one check on one subject (a source, a campaign, a reason, a column)."""

    check: str
    source: str  # a source name, or "" for checks across sources
    subject: str  # campaign id, reject reason, column name, or "" for the whole source
    value: float | None
    threshold: float | None  # the limit crossed (band: the bound on the value's side)
    severity: Severity
    failed: bool
    summary: str
    runbook: str
    baseline: float | None = None
    n: int = 0  # events the value is computed over
    unit: str = "ratio"  # s, ratio or events

    def show(self, value: float | None) -> str:
        """A value of this finding in its unit, for people."""
        return _fmt(value, self.unit)

    @property
    def labels(self) -> dict[str, str]:
        return {"check": self.check, "source": self.source, "subject": self.subject}

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Check:
    name: str
    sql: str  # file under quality/sql/ (band checks: the series)
    severity: Severity
    rule: Literal["max", "band"]
    sources: tuple[str, ...]  # one run per source ({table}, {source} in the SQL); () = once
    unit: Literal["s", "ratio", "events"]
    what: str  # what the value measures, for the summary
    runbook: str
    limit: Callable[[Settings], float] = lambda s: math.inf
    # band: what a day with no row counts as ("0" for counts, "NULL" for rates) and the
    # smallest scale of the band (noise floor), given the baseline and the count behind it
    fill: str = "0"
    floor: Callable[[float, int], float] = lambda baseline, n: 0.0
    min_baseline: bool = False  # band on counts: skip subjects with a tiny baseline


ALL = tuple(SOURCES)
# Band checks on the share of records with some shape (null rate, unknown field, field type):
# the smallest scale of their band, i.e. with quality_band_z = 5 a share must move by more
# than 10 points from its seasonal median before it fails.
_SHARE_FLOOR = 0.02


def _poisson(baseline: float, n: int) -> float:
    return math.sqrt(max(baseline, 1.0))


def _binomial(baseline: float, n: int) -> float:
    p = min(max(baseline, 1e-3), 1 - 1e-3)
    return math.sqrt(p * (1 - p) / max(n, 1))


CHECKS: tuple[Check, ...] = (
    Check(
        "freshness",
        "freshness",
        Severity.CRITICAL,
        "max",
        ALL,
        "s",
        "age of the newest event",
        "Is the source still sending? Look at the collector, the Kafka consumer lag and the "
        "upstream exporter; `advertisex rejects` for a file that could not be read.",
        limit=lambda s: s.freshness_max_seconds,
    ),
    Check(
        "delay_p95",
        "delay",
        Severity.WARNING,
        "max",
        ALL,
        "s",
        "95th percentile of arrival minus event time",
        "Events arrive late: check the upstream batching, Kafka lag and the ingest schedule.",
        limit=lambda s: s.delay_max_seconds,
    ),
    Check(
        "late_rate",
        "late_rate",
        Severity.WARNING,
        "max",
        ALL,
        "ratio",
        "share of arrivals later than late_seconds",
        "A share of events arrives late: find the slow producer (by source_uri) and its clock.",
        limit=lambda s: s.late_rate_max,
    ),
    Check(
        "reject_rate",
        "reject_rate",
        Severity.CRITICAL,
        "max",
        ALL,
        "ratio",
        "share of arriving records quarantined (subject: reason:field)",
        "`advertisex rejects --reason <reason>` shows the rows; fix the producer or the "
        "contract, then `advertisex rejects replay`.",
        limit=lambda s: s.reject_rate_max,
    ),
    Check(
        "duplicate_rate",
        "duplicate_rate",
        Severity.WARNING,
        "max",
        ALL,
        "ratio",
        "share of received records that were duplicates",
        "A producer is re-sending: look for retries or a replayed file or partition.",
        limit=lambda s: s.duplicate_rate_max,
    ),
    Check(
        "volume",
        "series_volume",
        Severity.CRITICAL,
        "band",
        ALL,
        "events",
        "events in the window against the same window on previous days",
        "A drop: a producer or route is down or filtering; a spike: a replay, a bot, a bug. "
        "Compare by campaign and site with `advertisex report --by hour`.",
        floor=_poisson,
        min_baseline=True,
    ),
    Check(
        "campaign_volume",
        "series_campaign_volume",
        Severity.WARNING,
        "band",
        (),
        "events",
        "impressions of the campaign against the same window on previous days",
        "Check the campaign's budget, pacing and targeting changes, and its creatives' tags.",
        floor=_poisson,
        min_baseline=True,
    ),
    Check(
        "ctr",
        "series_ctr",
        Severity.WARNING,
        "band",
        (),
        "ratio",
        "click-through rate of the campaign against its own history",
        "A CTR far off its band: click fraud, a broken click tracker or a lost impression feed.",
        fill="NULL",
        floor=_binomial,
    ),
    Check(
        "null_rate",
        "series_null_rate",
        Severity.WARNING,
        "band",
        ALL,
        "ratio",
        "share of events where the optional field (subject) is missing",
        "Schema drift: a producer renamed or dropped the field; compare a recent raw record "
        "with the source's aliases in schemas/sources.py.",
        fill="NULL",
        floor=lambda baseline, n: _SHARE_FLOOR,
    ),
    Check(
        "unknown_field",
        "series_unknown_field",
        Severity.WARNING,
        "band",
        ALL,
        "ratio",
        "share of sampled records carrying a field the contract does not know (subject)",
        "Schema drift: a producer renamed or added a field, and its values are not stored. "
        "Compare a recent raw record with the source's aliases in schemas/sources.py; if it "
        "is a known field under a new name, add the alias (or fix the producer).",
        floor=lambda baseline, n: _SHARE_FLOOR,
    ),
    Check(
        "field_type",
        "series_field_type",
        Severity.WARNING,
        "band",
        ALL,
        "ratio",
        "share of the records carrying the field whose value has the type (subject field:type)",
        "Schema drift: a producer changed a field's type (a number sent as text, an object "
        "for a string). `advertisex rejects --reason invalid_value` shows values that failed; "
        "values that passed may be stored differently: fix the producer.",
        fill="NULL",
        floor=lambda baseline, n: _SHARE_FLOOR,
    ),
    Check(
        "ivt_rate",
        "ivt_rate",
        Severity.WARNING,
        "max",
        ALL,
        "ratio",
        "share of events flagged as invalid traffic",
        "A bot burst: look at the ivt_reason, user agents and IP ranges of the window.",
        limit=lambda s: s.ivt_rate_max,
    ),
    Check(
        "unknown_creative_rate",
        "unknown_creative_rate",
        Severity.WARNING,
        "max",
        (),
        "ratio",
        "share of impressions whose creative is not in the dimension",
        "Load the current creatives (`advertisex dims load`), then replay if needed.",
        limit=lambda s: s.unknown_creative_rate_max,
    ),
    Check(
        "click_without_impression",
        "click_without_impression",
        Severity.WARNING,
        "max",
        (),
        "ratio",
        "share of clicks whose impression is not stored",
        "The impression feed is late or losing events, or click ids are forged.",
        limit=lambda s: s.orphan_rate_max,
    ),
    Check(
        "conversion_without_click",
        "conversion_without_click",
        Severity.WARNING,
        "max",
        (),
        "ratio",
        "share of conversions with no click or impression of the user and campaign",
        "The click or impression feed is late or losing events, or conversions are misattributed.",
        limit=lambda s: s.orphan_rate_max,
    ),
    Check(
        "win_without_impression",
        "win_without_impression",
        Severity.WARNING,
        "max",
        (),
        "ratio",
        "share of won auctions with no impression",
        "Impressions are not rendering or their feed is late; check the ad server's logs.",
        limit=lambda s: s.orphan_rate_max,
    ),
    Check(
        "impression_without_bid",
        "impression_without_bid",
        Severity.WARNING,
        "max",
        (),
        "ratio",
        "share of impressions whose bid request is not stored",
        "The bid request feed is late or sampled; check the bidder's export.",
        limit=lambda s: s.impression_without_bid_rate_max,
    ),
    Check(
        "country_mismatch",
        "country_mismatch",
        Severity.WARNING,
        "max",
        (),
        "ratio",
        "share of impressions whose IP country differs from their bid request's",
        "Proxy traffic or a stale GeoIP database: check the enrich settings.",
        limit=lambda s: s.country_mismatch_rate_max,
    ),
)

# The optional columns whose null rate is watched, per source (the enrich columns are not
# the producer's, and required ones are rejected when missing: see reject_rate).
_NULLABLE = {
    name: tuple(
        f"{c.name}_micros" if c.name in MONEY else c.name
        for c in src.columns
        if not c.required and c.name not in (src.id_column, "event_time")
    )
    for name, src in SOURCES.items()
}


@cache
def _sql(name: str) -> str:
    return files("advertisex.quality").joinpath("sql", f"{name}.sql").read_text()


def _query(check: Check, source: str) -> str:
    sql = _sql(check.sql)
    if check.sql == "series_null_rate":
        cols = _NULLABLE[source]
        sql = sql.replace("{columns}", ", ".join(cols)).replace(
            "{null_rates}", ", ".join(f"avg(({c} IS NULL)::DOUBLE) AS {c}" for c in cols)
        )
    if check.rule == "band":
        sql = _sql("band").replace("{series}", sql).replace("{fill}", check.fill)
    table = SOURCES[source].table if source else "impressions"
    return sql.replace("{table}", table).replace("{source}", source)


def run_checks(
    con: duckdb.DuckDBPyConnection,
    settings: Settings,
    as_of: datetime | None = None,
    only: tuple[str, ...] = (),
) -> list[Finding]:
    """Every check (or those named in `only`) as of `as_of` (default: now, UTC)."""
    as_of = as_of or datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    end = as_of - timedelta(seconds=settings.quality_grace_seconds)
    params: dict[str, Any] = {
        "as_of": as_of,
        "end": end,
        "window": settings.quality_window_seconds,
        "grace": settings.quality_grace_seconds,
        "late": settings.late_seconds,
        "days": settings.quality_baseline_days,
    }
    findings: list[Finding] = []
    for check in CHECKS:
        if only and check.name not in only:
            continue
        for source in check.sources or ("",):
            sql = _query(check, source)
            used = {k: v for k, v in params.items() if f"${k}" in sql}
            if "$known" in sql:
                used["known"] = list(known_paths(SOURCES[source]))
            if check.rule == "band":
                used["covered"] = _covered_days(
                    con, source or "impressions", end, settings, settings.quality_window_seconds
                )
                used = {k: v for k, v in used.items() if f"${k}" in sql}
            rows = con.execute(sql, used).fetchall()
            if check.name == "freshness" and _quiet(con, source, as_of, settings):
                rows = [(subject, value, n, "quiet") for subject, value, n in rows]
            findings += [_judge(check, source, row, settings) for row in rows]
    return [f for f in findings if f.value is not None]


def _quiet(
    con: duckdb.DuckDBPyConnection, source: str, as_of: datetime, settings: Settings
) -> bool:
    """Whether the span a freshness check looks at usually holds too few events to judge: the
    median count of the same span on the previous days, when there are any."""
    window = settings.freshness_max_seconds
    covered = _covered_days(con, source, as_of, settings, window)
    if covered == 0:
        return False
    sql = _sql("band").replace("{series}", _sql("series_volume")).replace("{fill}", "0")
    sql = sql.replace("{table}", SOURCES[source].table)
    params = {"as_of": as_of, "end": as_of, "window": window, "days": covered, "covered": covered}
    rows = con.execute(sql, params).fetchall()
    return bool(rows) and (rows[0][3] or 0.0) < settings.freshness_min_expected


def _covered_days(
    con: duckdb.DuckDBPyConnection, source: str, end: datetime, settings: Settings, window: int
) -> int:
    """Previous days whose whole window lies after the source's first stored event."""
    row = one(con, f"SELECT min(event_time) FROM {SOURCES[source].table}")
    if row is None or row[0] is None:
        return 0
    span = (end - row[0]).total_seconds() - window
    return max(0, min(settings.quality_baseline_days, int(span // DAY_S)))


def _judge(check: Check, source: str, row: tuple[Any, ...], settings: Settings) -> Finding:
    few = check.unit == "ratio" and (row[2] or 0) < settings.quality_min_events
    if check.rule == "max":
        subject, value, n, *quiet = row  # freshness: "quiet" when too few events are usual
        limit = float(check.limit(settings))
        failed = value is not None and value > limit and not few and not quiet
        return _finding(check, source, subject, value, limit, failed, int(n or 0), None)
    subject, value, n, baseline, spread, days = row
    if value is None or baseline is None or days < settings.quality_warmup_days or few:
        return _finding(check, source, subject, value, None, False, int(n or 0), baseline)
    scale = max(1.4826 * (spread or 0.0), check.floor(baseline, int(n or 0)))
    low = max(0.0, baseline - settings.quality_band_z * scale)
    high = baseline + settings.quality_band_z * scale
    change = abs(value - baseline)
    failed = (
        (value < low or value > high)
        and change >= settings.quality_band_min_change * baseline
        and not (check.min_baseline and baseline < settings.quality_min_baseline)
    )
    bound = low if value < baseline else high
    return _finding(check, source, subject, value, bound, failed, int(n or 0), baseline)


def _finding(
    check: Check,
    source: str,
    subject: str | None,
    value: float | None,
    threshold: float | None,
    failed: bool,
    n: int,
    baseline: float | None,
) -> Finding:
    subject = subject or ""
    where = " ".join(p for p in (source, subject) if p) or "all sources"
    text = f"{check.name} of {where}: {_fmt(value, check.unit)} ({check.what}"
    if baseline is not None:
        text += f"; baseline {_fmt(baseline, check.unit)}"
    if threshold is not None:
        side = "limit" if check.rule == "max" else "band edge"
        text += f"; {side} {_fmt(threshold, check.unit)}"
    text += f"; over {n:,} events)"
    return Finding(
        check=check.name,
        source=source,
        subject=subject,
        value=None if value is None else float(value),
        threshold=threshold,
        severity=check.severity,
        failed=bool(failed),
        summary=text,
        runbook=check.runbook,
        baseline=None if baseline is None else float(baseline),
        n=n,
        unit=check.unit,
    )


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:,.0f} s"
    if unit == "ratio":
        return f"{value:.2%}"
    return f"{value:,.1f}"
