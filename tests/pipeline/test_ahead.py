"""The read-ahead thread: order kept, errors raised in place, no thread left behind."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from advertisex.pipeline.runner import ahead


def _threads() -> int:
    return sum(t.name == "advx-read-ahead" for t in threading.enumerate())


def test_items_come_in_order() -> None:
    assert list(ahead(iter(range(1000)))) == list(range(1000))


def test_a_producer_error_is_raised_after_the_items_before_it() -> None:
    def items() -> Iterator[int]:
        yield 1
        yield 2
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for x in ahead(items()):
            got.append(x)
    assert got == [1, 2]


def test_stopping_early_ends_the_producer() -> None:
    produced = []

    def items() -> Iterator[int]:
        for i in range(10_000):
            produced.append(i)
            yield i

    before = _threads()
    gen = ahead(items())
    assert next(gen) == 0
    gen.close()
    assert _threads() == before
    assert len(produced) < 10  # it stopped instead of reading the whole input
