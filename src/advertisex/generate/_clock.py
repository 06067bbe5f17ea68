"""The generated time window and how traffic spreads over it (daily cycle, weekly rhythm)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

DAY = 86_400

# Share of traffic by UTC hour: quiet small hours, a lunch bump, an evening peak.
_HOURLY = np.array(
    [0.55, 0.40, 0.30, 0.25, 0.22, 0.25, 0.35, 0.55, 0.75, 0.85, 0.90, 0.95,
     1.00, 1.00, 0.95, 0.95, 1.00, 1.10, 1.25, 1.45, 1.60, 1.55, 1.25, 0.85]
)  # fmt: skip
# Monday first; weekends are a little quieter.
_WEEKDAY = np.array([1.00, 1.00, 1.02, 1.03, 1.05, 0.92, 0.88])


@dataclass(frozen=True)
class Window:
    """The days a data set covers: [start, start + days) in UTC."""

    start: dt.date
    days: int

    @property
    def start_s(self) -> int:
        return int(dt.datetime.combine(self.start, dt.time(), dt.UTC).timestamp())

    @property
    def end_s(self) -> int:
        return self.start_s + self.days * DAY

    def date(self, day: int) -> str:
        return (self.start + dt.timedelta(days=day)).isoformat()

    def day_of(self, ts: NDArray[np.int64]) -> NDArray[np.int64]:
        """Day index (0-based) of epoch seconds."""
        return (ts - self.start_s) // DAY


def draw(rng: np.random.Generator, weights: NDArray[np.float64], n: int) -> NDArray[np.int64]:
    """`n` indices drawn with probability proportional to `weights`."""
    cdf = np.cumsum(weights)
    picks: NDArray[np.int64] = np.searchsorted(cdf, rng.random(n) * cdf[-1], side="right")
    return np.minimum(picks, len(weights) - 1).astype(np.int64)


def draw_times(rng: np.random.Generator, window: Window, n: int) -> NDArray[np.int64]:
    """`n` sorted epoch seconds inside the window, following the daily and weekly cycle."""
    weekday = np.array(
        [_WEEKDAY[(window.start + dt.timedelta(days=d)).weekday()] for d in range(window.days)]
    )
    day = draw(rng, weekday, n)
    hour = draw(rng, _HOURLY, n)
    second = rng.integers(0, 3600, size=n)
    ts = window.start_s + day * DAY + hour * 3600 + second
    ts.sort()
    return ts


def utc_text(ts: pl.Expr) -> pl.Expr:
    """Epoch seconds as "YYYY-MM-DD HH:MM:SS"."""
    return pl.from_epoch(ts, time_unit="s").dt.strftime("%Y-%m-%d %H:%M:%S")


def offset_text(ts: pl.Expr, offset_s: pl.Expr, offset: pl.Expr) -> pl.Expr:
    """Epoch seconds as local ISO-8601 with an explicit offset, e.g. "...T12:00:00+02:00"."""
    local = pl.from_epoch(ts + offset_s, time_unit="s").dt.strftime("%Y-%m-%dT%H:%M:%S")
    return pl.concat_str([local, offset])
