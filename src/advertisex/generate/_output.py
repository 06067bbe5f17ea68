"""Bytes on disk and the truth kept about them: line files, gzip, per-source counts."""

from __future__ import annotations

import zlib
from collections import Counter
from collections.abc import Callable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from advertisex.generate._layout import DUPLICATE, VALID

# Fast compression: generation time is dominated by deflate, and readers do not care.
GZIP_LEVEL = 1
Blob = bytes | memoryview


@dataclass
class SourceTruth:
    """What a reader of one source must find: valid events, extra copies, rejects by reason."""

    valid: int = 0
    duplicates: int = 0
    rejected: Counter[str] = field(default_factory=Counter)

    def add(self, tags: Mapping[str, int]) -> None:
        """Count rows by tag: VALID, DUPLICATE or a reject reason."""
        for tag, count in tags.items():
            if tag == VALID:
                self.valid += count
            elif tag == DUPLICATE:
                self.duplicates += count
            else:
                self.rejected[tag] += count

    def as_dict(self) -> dict[str, Any]:
        rejected = {reason: n for reason, n in sorted(self.rejected.items()) if n}
        return {
            "received": self.valid + self.duplicates + sum(rejected.values()),
            "valid": self.valid,
            "duplicates": self.duplicates,
            "rejected_by_reason": rejected,
        }


def tally(tags: pl.Series) -> dict[str, int]:
    """Rows per tag."""
    counts = tags.value_counts()
    return dict(zip(counts[tags.name].to_list(), counts["count"].to_list(), strict=True))


def lines_bytes(lines: pl.Series) -> Blob:
    """The concatenated text of `lines` (each ends in a newline), without a Python copy.

    An Arrow string array keeps its strings back to back in one buffer: that buffer is
    the file.
    """
    array = lines.to_arrow(compat_level=pl.CompatLevel.oldest())
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    if len(array) == 0:
        return b""
    offsets = np.frombuffer(array.buffers()[1], dtype=np.int64)
    first, last = offsets[array.offset], offsets[array.offset + len(array)]
    return memoryview(array.buffers()[2])[first:last]


def gzip_bytes(raw: Blob) -> bytes:
    """A gzip member with no name and mtime 0, so equal input gives equal bytes."""
    deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    return deflate.compress(raw) + deflate.flush()


def const(data: Blob) -> Callable[[], Blob]:
    """A maker for bytes that are already there."""
    return lambda: data


def _finish(path: Path, make: Callable[[], Blob]) -> None:
    path.write_bytes(make())


class Sink:
    """Finishes files on worker threads (zlib, snappy and file writes release the GIL)."""

    def __init__(self, workers: int = 2) -> None:
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="advx-generate")
        self._pending: list[Future[None]] = []

    def put(self, path: Path, make: Callable[[], Blob]) -> None:
        """Write the bytes `make` returns to `path`, soon."""
        self._pending.append(self._pool.submit(_finish, path, make))

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if exc_type is None:
                for job in self._pending:
                    job.result()
        finally:
            self._pool.shutdown(wait=True, cancel_futures=True)
