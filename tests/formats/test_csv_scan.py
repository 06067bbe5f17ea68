"""The CSV record split, scanned a slice at a time, equals a scan of the whole text at once."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from advertisex.formats.csv import _scan


def _whole(a: np.ndarray, delim: int) -> tuple[list[int], list[int], list[int], bool, bool]:
    inside = np.cumsum(a == 34) % 2 == 1  # quotes up to and including each byte, odd
    nl = np.flatnonzero(a == 10)
    sep = np.flatnonzero(a == delim)
    return (
        nl.tolist(),
        nl[~inside[nl]].tolist(),
        sep[~inside[sep]].tolist(),
        bool(inside[-1]) if a.size else False,
        bool(inside[nl].any()),
    )


@settings(max_examples=200, deadline=None)
@given(
    text=st.lists(st.sampled_from([b"a", b",", b'"', b"\n", b"\r", b";", b'""']), max_size=300),
    step=st.integers(1, 40),
    delim=st.sampled_from([b",", b";"]),
)
def test_sliced_scan_equals_whole_scan(text: list[bytes], step: int, delim: bytes) -> None:
    a = np.frombuffer(b"".join(text), dtype=np.uint8)
    newlines, ends, seps, open_quote, quoted_newline = _scan(a, delim[0], step)
    assert (newlines.tolist(), ends.tolist(), seps.tolist(), open_quote, quoted_newline) == (
        _whole(a, delim[0])
    )
