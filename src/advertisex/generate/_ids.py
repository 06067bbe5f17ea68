"""Vectorized, collision-free UUID-shaped identifiers for generated events."""

from __future__ import annotations

from enum import IntEnum
from typing import cast

import numpy as np
import polars as pl
import pyarrow as pa
from numpy.typing import NDArray

# The two ASCII hex digits of every byte value, as one 2-byte cell each.
_HEX_PAIRS = np.frombuffer(b"".join(f"{b:02x}".encode() for b in range(256)), dtype="<u2")
_DASH = ord("-")
# Runs of hex digits in "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx".
_GROUPS = ((0, 8), (8, 12), (12, 16), (16, 20), (20, 32))


class IdKind(IntEnum):
    """Id namespaces: the same counter in two kinds never gives the same id."""

    IMPRESSION = 1
    AUCTION = 2
    EVENT = 3


def mix64(x: NDArray[np.uint64]) -> NDArray[np.uint64]:
    """splitmix64's finaliser: a bijection on 64 bits that makes counters look random."""
    z = x.astype(np.uint64, copy=True)
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


def uuids(rng: np.random.Generator, kind: IdKind, first: int, n: int) -> pl.Series:
    """`n` UUID-shaped strings for counters first..first+n-1 of `kind`.

    The low 64 bits are a bijection of (kind, counter), so ids are unique by
    construction rather than by luck; the high 64 bits are random (version 4 nibble).
    """
    counters = np.arange(first, first + n, dtype=np.uint64) | np.uint64(int(kind) << 56)
    lo = mix64(counters)
    hi = rng.integers(0, np.iinfo(np.uint64).max, size=n, dtype=np.uint64, endpoint=True)
    hi = (hi & ~np.uint64(0xF000)) | np.uint64(0x4000)
    raw = np.empty((n, 16), dtype=np.uint8)
    raw[:, :8] = hi.astype(">u8").view(np.uint8).reshape(n, 8)
    raw[:, 8:] = lo.astype(">u8").view(np.uint8).reshape(n, 8)
    digits = _HEX_PAIRS[raw].view(np.uint8).reshape(n, 32)
    text = np.full((n, 36), _DASH, dtype=np.uint8)
    for (src, stop), dst in zip(_GROUPS, (0, 9, 14, 19, 24), strict=True):
        text[:, dst : dst + stop - src] = digits[:, src:stop]
    offsets = np.arange(0, 36 * (n + 1), 36, dtype=np.int64)
    array = pa.LargeStringArray.from_buffers(
        n, pa.py_buffer(offsets.tobytes()), pa.py_buffer(text.tobytes())
    )
    return cast(pl.Series, pl.from_arrow(array)).cast(pl.String)
