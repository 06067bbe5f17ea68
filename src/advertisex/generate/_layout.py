"""How a source's events are split into files, and how extra (duplicate, faulty) rows join them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

# The tag of a row that is a valid, first copy of an event; duplicates carry DUPLICATE,
# faulty rows the reject reason they must produce.
VALID = "valid"
DUPLICATE = "duplicate"

# Re-sent copies go after everything else in their file, as a retried batch would.
RESENT_POS = 1e15


@dataclass(frozen=True)
class Parts:
    """The regular files of one source: per day, a few files contiguous in time.

    Arrays are indexed by base row; rows outside the regular files have part -1.
    """

    row_part: NDArray[np.int64]
    row_day: NDArray[np.int64]
    per_day: NDArray[np.int64]  # number of parts of each day
    first_file: NDArray[np.int64]  # file index of part 0 of each day

    @property
    def files(self) -> int:
        return int(self.per_day.sum())

    def row_file(self) -> NDArray[np.int64]:
        """File index per row (regular rows only are meaningful)."""
        return self.first_file[self.row_day] + self.row_part


def split_days(
    day: NDArray[np.int64], regular: NDArray[np.bool_], days: int, max_rows: int, min_parts: int
) -> Parts:
    """Split the regular rows (sorted by time) into per-day parts of at most `max_rows`."""
    rows = np.flatnonzero(regular)
    reg_day = day[rows]
    n_day = np.bincount(reg_day, minlength=days).astype(np.int64)
    per_day = np.minimum(np.maximum(min_parts, -(-n_day // max_rows)), n_day)
    day_start = np.concatenate([[0], np.cumsum(n_day)[:-1]]).astype(np.int64)
    rank = np.arange(len(rows), dtype=np.int64) - day_start[reg_day]
    row_part = np.full(len(day), -1, dtype=np.int64)
    row_part[rows] = rank * per_day[reg_day] // n_day[reg_day]
    first_file = np.concatenate([[0], np.cumsum(per_day)[:-1]]).astype(np.int64)
    return Parts(row_part=row_part, row_day=day, per_day=per_day, first_file=first_file)


@dataclass(frozen=True)
class Copies:
    """Base rows to copy as duplicates, and the file and position each copy goes to."""

    rows: NDArray[np.int64]
    file: NDArray[np.int64]
    pos: NDArray[np.float64]


def pick_duplicates(
    rng: np.random.Generator,
    candidates: NDArray[np.int64],
    parts: Parts,
    row_file: NDArray[np.int64],
    pos: NDArray[np.float64],
    n_exact: int,
    n_resent: int,
) -> Copies:
    """Exact duplicates (same file, a little later) and re-sent events (a later file, same day).

    `candidates` are base rows in regular files; `row_file` and `pos` are per base row.
    """
    exact = rng.choice(candidates, min(n_exact, len(candidates)), replace=False)
    exact_pos = pos[exact] + rng.uniform(0.01, 30.0, len(exact))
    later = candidates[parts.row_part[candidates] < parts.per_day[parts.row_day[candidates]] - 1]
    resent = rng.choice(later, min(n_resent, len(later)), replace=False)
    part = parts.row_part[resent]
    room = parts.per_day[parts.row_day[resent]] - part - 1
    target = part + 1 + (rng.random(len(resent)) * room).astype(np.int64)
    return Copies(
        rows=np.concatenate([exact, resent]).astype(np.int64),
        file=np.concatenate([row_file[exact], parts.first_file[parts.row_day[resent]] + target]),
        pos=np.concatenate([exact_pos, RESENT_POS + pos[resent]]),
    )


def file_slices(frame: pl.DataFrame, files: int) -> list[pl.DataFrame]:
    """`frame` sorted by (file, pos) and cut into one frame per file index 0..files-1."""
    ordered = frame.sort(["file", "pos"], maintain_order=True)
    bounds = np.searchsorted(ordered["file"].to_numpy(), np.arange(files + 1))
    return [ordered.slice(int(bounds[i]), int(bounds[i + 1] - bounds[i])) for i in range(files)]
