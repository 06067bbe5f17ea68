"""Validate: each source's contract, with a reason code and the field for every failing row.

Produces typed values (t_<name>) next to the text ones, and _reason/_field/_detail: the first
broken rule wins, decode problems first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from advertisex.schemas.reasons import Reason
from advertisex.schemas.sources import Source


@dataclass(frozen=True)
class Rules:
    """What the contract checks against: everything that is not in the record itself."""

    now: datetime  # naive UTC
    min_event_time: datetime
    max_future_seconds: int
    conversion_types: tuple[str, ...]


def _lit(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


def _typed(sql_type: str, c: str) -> str:
    if sql_type == "TIMESTAMP":
        return f"advx_ts({c})"
    if sql_type == "DOUBLE":
        return f"try_cast({c} AS DOUBLE)"
    return c


def validate_sql(source: Source, relation: str, rules: Rules) -> str:
    typed = [f"{_typed(col.sql_type, 'c_' + col.name)} AS t_{col.name}" for col in source.columns]
    checks: list[tuple[str, str, str, str]] = []  # condition, reason, field, detail SQL
    for col in source.columns:
        if col.required:
            checks.append(
                (
                    f"c_{col.name} IS NULL",
                    Reason.MISSING_FIELD,
                    col.name,
                    _lit(f"{col.name} is required"),
                )
            )
    for col in source.columns:
        c, t = f"c_{col.name}", f"t_{col.name}"
        if col.sql_type == "TIMESTAMP":
            checks.append(
                (
                    f"{c} IS NOT NULL AND {t} IS NULL",
                    Reason.INVALID_TIMESTAMP,
                    col.name,
                    f"'cannot read ' || {c} || ' as a timestamp'",
                )
            )
            lo = rules.min_event_time.strftime("%Y-%m-%d %H:%M:%S")
            checks.append(
                (
                    f"{t} < TIMESTAMP '{lo}'",
                    Reason.TIMESTAMP_OUT_OF_RANGE,
                    col.name,
                    f"{t}::VARCHAR || ' is before {lo}'",
                )
            )
            hi = rules.now.strftime("%Y-%m-%d %H:%M:%S")
            checks.append(
                (
                    f"{t} > TIMESTAMP '{hi}' + INTERVAL {rules.max_future_seconds} SECOND",
                    Reason.TIMESTAMP_IN_FUTURE,
                    col.name,
                    f"{t}::VARCHAR || ' is in the future (now {hi} UTC)'",
                )
            )
        elif col.sql_type == "DOUBLE":
            checks.append(
                (
                    f"{c} IS NOT NULL AND ({t} IS NULL OR isnan({t}) OR isinf({t}) OR {t} < 0 "
                    f"OR {t} >= 9e12)",
                    Reason.INVALID_VALUE,
                    col.name,
                    f"{_lit(col.name + ' must be a non-negative number below 9e12, not ')} || {c}",
                )
            )
    if source.name == "clicks_conversions":
        known = ", ".join(_lit(t) for t in rules.conversion_types)
        checks.append(
            (
                f"lower(c_event_type) NOT IN ({known})",
                Reason.UNKNOWN_CONVERSION_TYPE,
                "event_type",
                "'unknown conversion type ' || c_event_type",
            )
        )
    reason = " ".join(f"WHEN {cond} THEN '{r}'" for cond, r, _, _ in checks)
    field = " ".join(f"WHEN {cond} THEN '{f}'" for cond, _, f, _ in checks)
    detail = " ".join(f"WHEN {cond} THEN {d}" for cond, _, _, d in checks)
    return f"""
SELECT *,
  CASE WHEN _dreason IS NOT NULL THEN _dreason {reason} END AS _reason,
  CASE WHEN _dreason IS NOT NULL THEN _dfield {field} END AS _field,
  CASE WHEN _dreason IS NOT NULL THEN _ddetail {detail} END AS _detail
FROM (SELECT *, {", ".join(typed)} FROM {relation})"""
