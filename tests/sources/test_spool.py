"""The trackers' spool: one write and one fdatasync per group, no half line after a failure."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from advertisex.sources import spool as spool_module
from advertisex.sources.spool import Spool, spool_batch


def test_a_group_is_one_write_and_one_fdatasync(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    synced: list[int] = []
    monkeypatch.setattr(spool_module.os, "fdatasync", lambda fd: synced.append(fd))
    spool = Spool(tmp_path, 1 << 20, fsync=True)
    mark = spool.append("impressions", b'{"a":1}\n{"a":2}\n{"a":3}\n', 3)
    assert (mark.offset, mark.record, len(synced)) == (24, 3, 1)
    mark = spool.append("impressions", b'{"a":4}\n', 1)
    assert (mark.offset, mark.record, len(synced)) == (32, 4, 2)
    spool.close()
    unsynced = Spool(tmp_path / "off", 1 << 20, fsync=False)
    unsynced.append("impressions", b'{"a":1}\n', 1)
    unsynced.close()
    assert len(synced) == 2


def test_a_failed_group_leaves_no_half_line_for_the_next(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spool = Spool(tmp_path, 1 << 20, fsync=True)
    spool.append("clicks_conversions", b'{"a":1}\n', 1)

    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    real = os.fdatasync
    monkeypatch.setattr(spool_module.os, "fdatasync", full)
    with pytest.raises(OSError):
        spool.append("clicks_conversions", b'{"a":2}\n{"a":3}\n', 2)  # written, not synced
    monkeypatch.setattr(spool_module.os, "fdatasync", real)
    mark = spool.append("clicks_conversions", b'{"a":4}\n', 1)
    spool.close()
    (path,) = spool.existing()
    # The refused group is gone (its hits were answered 503); the next one follows line 1.
    assert path.read_bytes() == b'{"a":1}\n{"a":4}\n'
    assert (mark.offset, mark.record) == (16, 2)
    batch = spool_batch(path, 0, 0)
    assert batch is not None and (batch.first_record, batch.end_record) == (1, 2)
