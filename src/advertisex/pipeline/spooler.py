"""Group commit of tracker hits: one spool write (and fdatasync) for every hit that waited.

Hits are added with tokens; a thread takes every hit waiting, writes each source's lines to
the spool with one `write` (+ `fdatasync`), queues them for the store as one request, and
then reports the tokens (the caller answers those hits). While one group is being written the
next one gathers, so the spool costs one write per group, not per hit, and a hit is never
answered before the write that holds it returned.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from advertisex.pipeline.gauges import SPOOL_HITS, SPOOL_WRITES
from advertisex.pipeline.microbatch import MicroBatcher
from advertisex.schemas.sources import Source

log = logging.getLogger(__name__)

# Called from the spooler's thread with the tokens of hits written (error None) or refused
# (Busy: the queue is full; OSError: the spool cannot be written).
Written = Callable[[list[Any], BaseException | None], None]


class Spooler:
    """One writer thread in front of the batcher's spool; `add` from any thread."""

    def __init__(self, batcher: MicroBatcher, on_written: Written) -> None:
        self.batcher = batcher
        self.on_written = on_written
        self._pending: list[tuple[Source, bytes, Any]] = []
        self._cond = threading.Condition()
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="advx-spooler", daemon=True)
        self._thread.start()

    def add(self, hits: list[tuple[Source, bytes, Any]]) -> None:
        """Hits as (source, NDJSON line, token); each token comes back through `on_written`."""
        with self._cond:
            if not self._pending:
                self._cond.notify()
            self._pending += hits

    def close(self) -> None:
        """Write what waits, then stop."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._stopping:
                    self._cond.wait()
                if not self._pending:
                    return
                hits, self._pending = self._pending, []
            by_source: dict[str, list[tuple[Source, bytes, Any]]] = {}
            for hit in hits:
                by_source.setdefault(hit[0].name, []).append(hit)
            for group in by_source.values():
                try:
                    self._write(group)
                except Exception:  # the thread must go on: a stopped spooler hangs every hit
                    log.exception("the tracker spooler failed on %d hits", len(group))

    def _write(self, group: list[tuple[Source, bytes, Any]]) -> None:
        tokens = [token for _, _, token in group]
        try:
            self.batcher.submit_spooled(
                group[0][0], b"".join(line for _, line, _ in group), len(group)
            )
        except Exception as e:
            if isinstance(e, OSError):
                log.error("cannot write the tracker spool (%s); hits get 503", e)
            self.on_written(tokens, e)
            return
        SPOOL_WRITES.inc()
        SPOOL_HITS.inc(len(group))
        self.on_written(tokens, None)
