"""The trackers' on-disk spool: events appended before the pixel or redirect is answered.

A tracker cannot wait for a store commit per hit, so its event is first appended to a spool
file (one NDJSON line) and loaded by the micro-batcher with the rest. Hits are written in
groups (one `write`, then one `fdatasync` when `fsync` is on) and each hit is answered after
the write that holds it returned: with `fsync` an answered hit survives a power loss, without
it the process being killed (the bytes are in the OS page cache). Each committed batch records how
far each spool file is loaded, in `source_positions`, in the same transaction; at start-up the
lines past that point are loaded again (dedupe makes a line loaded twice count once) and
files that are fully loaded are deleted. Files rotate at `rotate_bytes`.
"""

from __future__ import annotations

import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from advertisex.sources.batch import Format, RawBatch

_NAME = re.compile(r"^(?P<source>\w+)-(?P<gen>\d+)\.ndjson$")


@dataclass(frozen=True)
class SpoolMark:
    """How far one spool file reaches after an append: byte offset and line count."""

    uri: str
    offset: int
    record: int


class _File:
    def __init__(self, path: Path, fsync: bool) -> None:
        self.path = path
        self.uri = f"spool:{path}"
        self.f: BinaryIO = open(path, "ab", buffering=0)  # noqa: SIM115 (kept open)
        self.offset = self.f.tell()
        self.record = 0
        if fsync:  # the new file's name must survive a power loss too
            fd = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


class Spool:
    """Append-only spool files per source in one folder."""

    def __init__(self, folder: Path, rotate_bytes: int, *, fsync: bool = True) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.folder = folder
        self.rotate_bytes = rotate_bytes
        self.fsync = fsync
        self._lock = threading.Lock()
        self._current: dict[str, _File] = {}
        gens = [int(m["gen"]) for p in folder.iterdir() if (m := _NAME.match(p.name))]
        self._gen = max(gens, default=0)

    def existing(self) -> list[Path]:
        """Spool files left by earlier runs (before this one appended), oldest first."""
        found = [(int(m["gen"]), p) for p in self.folder.iterdir() if (m := _NAME.match(p.name))]
        return [p for _, p in sorted(found)]

    def append(self, source: str, lines: bytes, records: int = 1) -> SpoolMark:
        """Write whole NDJSON `lines` (one write; fdatasync with `fsync`); where they end."""
        with self._lock:
            f = self._current.get(source)
            if f is None or f.offset >= self.rotate_bytes:
                if f is not None:
                    f.f.close()
                self._gen += 1
                path = self.folder / f"{source}-{self._gen}.ndjson"
                f = self._current[source] = _File(path, self.fsync)
            try:
                view = memoryview(lines)
                while view:  # a regular file takes it all at once; a full disk raises OSError
                    view = view[f.f.write(view) :]
                if self.fsync:
                    os.fdatasync(f.f.fileno())
            except OSError:
                os.ftruncate(f.f.fileno(), f.offset)  # no half line for the next group to follow
                raise
            f.offset += len(lines)
            f.record += records
            return SpoolMark(f.uri, f.offset, f.record)

    def release(self, uri: str, offset: int) -> None:
        """A file loaded up to `offset`: delete it if it is full and no longer written."""
        with self._lock:
            if any(f.uri == uri for f in self._current.values()):
                return
        path = Path(uri.removeprefix("spool:"))
        if path.exists() and path.stat().st_size <= offset:
            path.unlink()

    def close(self) -> None:
        with self._lock:
            for f in self._current.values():
                f.f.close()
            self._current.clear()


def spool_source(path: Path) -> str:
    """The source a spool file holds (its name starts with it)."""
    m = _NAME.match(path.name)
    assert m is not None
    return m["source"]


def spool_batch(path: Path, offset: int, record: int) -> RawBatch | None:
    """The lines of a spool file past `offset` (a last line cut by a crash is left out)."""
    data = path.read_bytes()[offset:]
    data = data[: data.rfind(b"\n") + 1]
    if not data:
        return None
    lines = data.count(b"\n")
    return RawBatch(
        f"spool:{path}",
        Format.NDJSON,
        data,
        offset,
        record + 1,
        offset + len(data),
        record + lines,
    )
