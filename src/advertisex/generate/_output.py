"""Bytes on disk and the truth kept about them: line files, gzip, per-source counts."""

from __future__ import annotations

import io
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import polars as pl

from advertisex.generate._layout import DUPLICATE, VALID

GZIP_LEVEL = 6


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


def lines_bytes(lines: pl.Series) -> bytes:
    """Lines joined by newlines, each line terminated, written by polars (no quoting)."""
    buf = io.BytesIO()
    pl.DataFrame({"line": lines}).write_csv(buf, include_header=False, quote_style="never")
    return buf.getvalue()


def gzip_bytes(raw: bytes) -> bytes:
    """A gzip member with no name and mtime 0, so equal input gives equal bytes."""
    deflate = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
    return deflate.compress(raw) + deflate.flush()
