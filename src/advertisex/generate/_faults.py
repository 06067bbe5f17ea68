"""The faults injected into generated sources: how many, and the bad values they carry."""

from __future__ import annotations

import numpy as np
import polars as pl
from numpy.typing import NDArray

from advertisex.generate._clock import utc_text
from advertisex.generate._ids import IdKind, uuids
from advertisex.schemas import Reason

# Not parseable by any reasonable timestamp parser, and free of commas and quotes so
# they stay a single CSV field.
BAD_TIMESTAMPS = (
    "not-a-date",
    "2026-13-45 25:61:00",
    "yesterday",
    "2026-11-19 24:61:99",
    "2026-02-30 10:00:00",
)
NOT_OBJECTS = ("[1, 2, 3]", '"impression"', "42", "true", '["a", "b"]', "3.14")
UNKNOWN_TYPES = ("refund", "pageview", "subscribe_trial", "video_view")
BAD_VALUES = ("abc", "12.3.4", "ten", "1e5x", "$-")

_Y1990 = 631_152_000  # 1990-01-01
_Y2000 = 946_684_800  # 2000-01-01
_Y2099 = 4_070_908_800  # 2099-01-01
_Y2100 = 4_102_444_800  # 2100-01-01


def fault_count(rng: np.random.Generator, n: int) -> int:
    """How many rows of one fault kind a source of `n` events gets: 0.1-0.5 %, at least one."""
    return max(1, round(n * rng.uniform(0.001, 0.005)))


def fault_runs(
    rng: np.random.Generator,
    frame: pl.DataFrame,
    templates: NDArray[np.int64],
    reasons: tuple[Reason, ...],
    *,
    id_column: str,
    kind: IdKind,
    first_id: int,
) -> tuple[list[tuple[Reason, pl.DataFrame]], NDArray[np.int64]]:
    """Template rows copied with fresh ids, cut into one run per reason.

    Returns the runs and the template row each faulty row was made from.
    """
    counts = {reason: fault_count(rng, frame.height) for reason in reasons}
    rows = rng.choice(templates, sum(counts.values()))
    fresh = uuids(rng, kind, first_id, len(rows))
    base = frame[rows].with_columns(pl.Series(id_column, fresh))
    runs = []
    start = 0
    for reason, k in counts.items():
        runs.append((reason, base.slice(start, k)))
        start += k
    return runs, rows


def choose(which: pl.Series, variants: list[pl.Series]) -> pl.Series:
    """Row i of variants[which[i]]: one of several renderings of the same rows."""
    expr = pl.lit(variants[-1])
    for i in range(len(variants) - 2, -1, -1):
        expr = pl.when(pl.lit(which) == i).then(pl.lit(variants[i])).otherwise(expr)
    return pl.select(expr).to_series()


def pick(rng: np.random.Generator, values: tuple[str, ...], n: int) -> pl.Series:
    """`n` values drawn uniformly from `values`."""
    return pl.Series(values).gather(rng.integers(0, len(values), n))


def _dates(rng: np.random.Generator, low: int, high: int, n: int) -> pl.Series:
    ts = pl.Series(rng.integers(low, high, n))
    return pl.select(utc_text(pl.lit(ts))).to_series()


def before_2000(rng: np.random.Generator, n: int) -> pl.Series:
    """Well-formed timestamps in the 1990s."""
    return _dates(rng, _Y1990, _Y2000, n)


def in_2099(rng: np.random.Generator, n: int) -> pl.Series:
    """Well-formed timestamps in 2099."""
    return _dates(rng, _Y2099, _Y2100, n)


def bad_timestamps(rng: np.random.Generator, reason: Reason, n: int) -> pl.Series:
    """`n` timestamps that must be rejected with `reason`."""
    if reason is Reason.INVALID_TIMESTAMP:
        return pick(rng, BAD_TIMESTAMPS, n)
    if reason is Reason.TIMESTAMP_OUT_OF_RANGE:
        return before_2000(rng, n)
    if reason is Reason.TIMESTAMP_IN_FUTURE:
        return in_2099(rng, n)
    raise ValueError(f"{reason} is not a timestamp fault")
