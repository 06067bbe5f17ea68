"""The collector's micro-batcher: requests queue (bounded), coalesce, commit, then answer.

NDJSON bodies of one source waiting together become one batch (CSV bodies of one source and
header too), flushed when `collector_flush_events` records wait or `collector_flush_ms` after
the first arrived (tracker hits, already safe in the spool, wait up to
`collector_spool_flush_ms`). A request is answered only after its batch committed, so a 202
means the events are in the store. The queue is bounded in bytes (waiting plus in the store):
past the bound `submit` raises `Busy` and the collector answers 503 instead of growing memory.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import duckdb
import numpy as np
import pyarrow as pa

from advertisex.config import Settings
from advertisex.errors import AdvertisexError
from advertisex.pipeline.runner import Runner
from advertisex.schemas.sources import SOURCES, Source
from advertisex.sources.batch import Format, RawBatch
from advertisex.sources.http import Body
from advertisex.sources.spool import Spool, SpoolMark, spool_batch, spool_source
from advertisex.store import Store, one

log = logging.getLogger(__name__)


class Busy(AdvertisexError):
    """The queue is full: try again later."""

    transient = True


@dataclass
class RequestCounts:
    """What happened to one request's records: received = accepted + rejected + duplicates."""

    request_id: str
    received: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)
    first_rejects: list[dict[str, Any]] = field(default_factory=list)
    queued: int = 0  # produced to Kafka (serve --kafka): consumers load and count them

    @property
    def rejected(self) -> int:
        return sum(self.rejected_by_reason.values())

    def to_dict(self) -> dict[str, Any]:
        if self.queued:
            return {"request_id": self.request_id, "received": self.received, "queued": self.queued}
        out: dict[str, Any] = {
            "request_id": self.request_id,
            "received": self.received,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
        }
        if self.first_rejects:
            out["rejects"] = self.first_rejects
        return out


@dataclass
class _Request:
    source: Source
    body: Body
    request_id: str
    remote: str | None
    size: int
    future: Future[RequestCounts]
    due: float  # when its batch must flush at the latest
    mark: SpoolMark | None = None


_FIRST_REJECTS = 10


class MicroBatcher:
    """One writer thread in front of the store; `submit` from any thread."""

    def __init__(
        self,
        store: Store,
        settings: Settings,
        *,
        on_depth: Callable[[int, int], None] | None = None,
        spool: Spool | None = None,
    ) -> None:
        self.runner = Runner(store, settings)
        self.spool = spool
        self._spool_ok = True  # False after a batch with spooled lines failed: replay at start
        self.con = store.con
        self.max_bytes = settings.collector_queue_bytes
        self.flush_events = settings.collector_flush_events
        self.flush_s = settings.collector_flush_ms / 1000
        self.spool_flush_s = settings.collector_spool_flush_ms / 1000
        self.on_depth = on_depth  # (requests, bytes) waiting or in the store
        self._queue: deque[_Request] = deque()
        self._bytes = 0  # queued and in-flight
        self._events = 0  # NDJSON records queued
        self._due = float("inf")  # the earliest `due` in the queue
        self._cond = threading.Condition()
        self._stopping = False
        self.high_water_bytes = 0
        if spool is not None:
            self._replay(spool)
        self._thread = threading.Thread(target=self._run, name="advx-microbatch", daemon=True)
        self._thread.start()

    def _replay(self, spool: Spool) -> None:
        """Spooled lines an earlier run did not commit, loaded before anything new."""
        for path in spool.existing():
            uri = f"spool:{path}"
            pos = one(
                self.con,
                'SELECT "offset", record FROM source_positions WHERE source_uri = ?',
                [uri],
            )
            batch = spool_batch(path, *(pos or (0, 0)))
            if batch is not None:
                source = spool_source(path)
                marks = {uri: SpoolMark(uri, batch.end_offset, batch.end_record)}

                def write(con: duckdb.DuckDBPyConnection, _batch_id: int) -> None:
                    _write_marks(con, marks, source)  # noqa: B023 (called before the loop goes on)

                self.runner.process_batch(batch, SOURCES[source], positions=write)
            path.unlink()

    # -- producers ---------------------------------------------------------------------------

    def submit(
        self, source: Source, body: Body, request_id: str, remote: str | None = None
    ) -> Future[RequestCounts]:
        """Queue a body; its future is answered once its batch committed (Busy: queue full)."""
        size = len(body.data) + sum(len(b.data) + len(b.header) for b in body.batches)
        fut: Future[RequestCounts] = Future()
        with self._cond:
            self._admit(size)
            due = time.monotonic() + self.flush_s
            self._enqueue(_Request(source, body, request_id, remote, size, fut, due))
        return fut

    def submit_spooled(self, source: Source, lines: bytes, records: int) -> None:
        """Tracker hits: written to the spool (outside the lock: it may fdatasync), then queued.

        Returns once the lines are in the spool, so they may be answered; Busy when the queue is
        full, OSError when the spool cannot be written: then nothing was kept. One thread calls
        this (the Spooler), so queue order is spool order.
        """
        assert self.spool is not None
        size = len(lines)
        with self._cond:
            self._admit(size)
            self._bytes += size  # room held while the spool is written
        try:
            mark = self.spool.append(source.name, lines, records)
        except BaseException:
            with self._cond:
                self._bytes -= size
            raise
        body = Body(Format.NDJSON, lines, records)
        due = time.monotonic() + self.spool_flush_s
        r = _Request(source, body, f"{mark.uri}#{mark.record}", None, size, Future(), due, mark)
        with self._cond:
            self._bytes -= size
            self._enqueue(r)

    def _admit(self, size: int) -> None:
        if self._stopping:
            raise Busy("the collector is shutting down")
        # An empty queue takes any body the size limit let through.
        if self._bytes and self._bytes + size > self.max_bytes:
            raise Busy(f"queue full ({self._bytes} bytes waiting for the store)")

    def _enqueue(self, r: _Request) -> None:
        self._queue.append(r)
        self._bytes += r.size
        self._events += r.body.records
        self.high_water_bytes = max(self.high_water_bytes, self._bytes)
        self._depth()
        # Wake the writer only when it has something to do: an earlier deadline, or a full
        # batch. (A wake-up per request costs GIL hand-offs.)
        if r.due < self._due or self._events >= self.flush_events:
            self._due = min(self._due, r.due)
            self._cond.notify()

    def close(self) -> None:
        """Flush what is queued, then stop the writer."""
        with self._cond:
            self._stopping = True
            self._cond.notify()
        self._thread.join()

    def _depth(self) -> None:
        if self.on_depth is not None:
            self.on_depth(len(self._queue), self._bytes)

    # -- the writer --------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                while (
                    not self._stopping
                    and self._events < self.flush_events
                    and (wait := self._due - time.monotonic()) > 0
                ):
                    self._cond.wait(wait)  # `_due` comes nearer when a request needs it
                taken: list[_Request] = []
                events = 0
                while self._queue and (not taken or events < self.flush_events):
                    r = self._queue.popleft()
                    events += r.body.records
                    taken.append(r)
                self._events -= events
                self._due = min((r.due for r in self._queue), default=float("inf"))
            try:
                self._flush(taken)
            finally:
                with self._cond:
                    self._bytes -= sum(r.size for r in taken)
                    self._depth()

    def _flush(self, taken: list[_Request]) -> None:
        # NDJSON bodies of a source go together; CSV bodies of a source and header too.
        groups: dict[tuple[str, Format, bytes], list[_Request]] = {}
        for r in taken:
            if r.body.fmt is Format.NDJSON:
                groups.setdefault((r.source.name, Format.NDJSON, b""), []).append(r)
            elif r.body.fmt is Format.CSV and r.body.coalesce:
                header = r.body.batches[0].header
                groups.setdefault((r.source.name, Format.CSV, header), []).append(r)
            else:
                self._guard([r], self._alone, r)
        for group in groups.values():
            self._guard(group, self._coalesced, group)

    def _guard(self, reqs: list[_Request], fn: Callable[..., None], arg: Any) -> None:
        """A failure fails its requests (answered 503), never the writer."""
        try:
            fn(arg)
        except Exception as e:
            # Trackers do not wait for their batch: this line is their only report.
            log.exception("a batch of %d requests failed; their clients get 503", len(reqs))
            for r in reqs:
                if not r.future.done():
                    r.future.set_exception(e)

    def _alone(self, r: _Request) -> None:
        """A body of its own format: its batches, counted together."""
        counts = RequestCounts(r.request_id)
        for batch in r.body.batches:
            ranges = _Ranges(batch.uri, [r], [batch.first_record], [batch.end_record])
            c = self.runner.process_batch(batch, r.source, positions=ranges.write)
            counts.received += c.received
            counts.accepted += c.accepted
            counts.duplicates += c.duplicates
            counts.rejected_by_reason.update(c.rejected_by_reason)
            if c.accepted == 0 and c.rejected and len(counts.first_rejects) < _FIRST_REJECTS:
                counts.first_rejects += _first_rejects(self.con, ranges.batch_id, None, None)
        r.future.set_result(counts)

    def _coalesced(self, group: list[_Request]) -> None:
        """Bodies of one source and format (CSV: and header) as one batch; counts split back
        by line range."""
        source, fmt = group[0].source, group[0].body.fmt
        if fmt is Format.CSV:
            header = group[0].body.batches[0].header
            # bytes(): a batch may hold a memoryview (no copy when it is bytes already)
            bodies = [bytes(r.body.batches[0].data) for r in group]  # each ends in a newline
        else:
            header, bodies = b"", [r.body.data for r in group]
        data = b"".join(bodies)
        h = header.count(b"\n")  # lines before the first record
        nlines = np.array([b.count(b"\n") for b in bodies], dtype=np.int64)
        ends = h + np.cumsum(nlines)
        firsts = ends - nlines + 1
        uri = f"http:{uuid.uuid4().hex}"
        batch = RawBatch(
            uri,
            fmt,
            data,
            len(header),
            h + 1,
            len(header) + len(data),
            int(ends[-1]),
            header=header,
            header_lines=h,
        )
        ranges = _Ranges(uri, group, firsts.tolist(), ends.tolist())
        marks: dict[str, SpoolMark] = {}
        for r in group:
            if r.mark is not None:
                marks[r.mark.uri] = r.mark  # queue order is spool order: the last is furthest
        write = ranges.write
        if marks and self._spool_ok:

            def write(con: duckdb.DuckDBPyConnection, batch_id: int) -> None:
                ranges.write(con, batch_id)
                _write_marks(con, marks, source.name)

        try:
            total = self.runner.process_batch(batch, source, positions=write)
        except Exception:
            if marks:
                self._spool_ok = False  # later marks would skip these lines: keep them
            raise
        if self.spool is not None:
            for m in marks.values():
                self.spool.release(m.uri, m.offset)
        if len(group) == 1:
            c = RequestCounts(group[0].request_id, total.received, total.accepted, total.duplicates)
            c.rejected_by_reason.update(total.rejected_by_reason)
            if c.accepted == 0 and c.rejected:
                c.first_rejects = _first_rejects(self.con, ranges.batch_id, None, None)
            group[0].future.set_result(c)
            return
        accepted = _per_range(self.con, source.table, ranges.batch_id, firsts)
        rejected = self.con.execute(
            "SELECT source_record, reason FROM rejects WHERE batch_id = ?", [ranges.batch_id]
        ).fetchall()
        by_req: list[Counter[str]] = [Counter() for _ in group]
        if rejected:
            at = np.searchsorted(firsts, [rec for rec, _ in rejected], side="right") - 1
            for i, (_, reason) in zip(at.tolist(), rejected, strict=True):
                by_req[i][reason] += 1
        for i, r in enumerate(group):
            c = RequestCounts(r.request_id, r.body.records, int(accepted[i]))
            c.rejected_by_reason = by_req[i]
            c.duplicates = c.received - c.accepted - c.rejected
            if c.accepted == 0 and c.rejected:
                c.first_rejects = _first_rejects(
                    self.con, ranges.batch_id, int(firsts[i]), int(ends[i])
                )
            r.future.set_result(c)


class _Ranges:
    """Writes which records of a batch came from which request (in the batch's transaction)."""

    def __init__(self, uri: str, reqs: list[_Request], firsts: list[int], ends: list[int]) -> None:
        self.uri, self.reqs, self.firsts, self.ends = uri, reqs, firsts, ends
        self.batch_id = -1

    def write(self, con: duckdb.DuckDBPyConnection, batch_id: int) -> None:
        self.batch_id = batch_id
        now = datetime.now(UTC).replace(tzinfo=None)
        t = pa.table(
            {
                "request_id": [r.request_id for r in self.reqs],
                "source": [r.source.name for r in self.reqs],
                "first_record": pa.array(self.firsts, pa.int64()),
                "end_record": pa.array(self.ends, pa.int64()),
                "remote": [r.remote for r in self.reqs],
            }
        )
        con.register("_advx_http_requests", t)
        try:
            con.execute(
                "INSERT INTO http_requests SELECT request_id, source, ?, ?, first_record, "
                "end_record, remote, ? FROM _advx_http_requests",
                [self.uri, batch_id, now],
            )
        finally:
            con.unregister("_advx_http_requests")


def _write_marks(con: duckdb.DuckDBPyConnection, marks: dict[str, SpoolMark], source: str) -> None:
    """How far each spool file is loaded, in the batch's transaction."""
    now = datetime.now(UTC).replace(tzinfo=None)
    for m in marks.values():
        con.execute(
            "INSERT OR REPLACE INTO source_positions VALUES (?, ?, NULL, NULL, ?, ?, false, ?)",
            [m.uri, source, m.offset, m.record, now],
        )


def _per_range(
    con: duckdb.DuckDBPyConnection, table: str, batch_id: int, firsts: np.ndarray
) -> np.ndarray:
    """Accepted rows of a batch per request (by the line range each request covers)."""
    got = con.execute(f"SELECT source_record FROM {table} WHERE batch_id = ?", [batch_id])
    records = got.fetchnumpy()["source_record"]
    at = np.searchsorted(firsts, np.asarray(records, dtype=np.int64), side="right") - 1
    return np.bincount(at, minlength=firsts.size)


def _first_rejects(
    con: duckdb.DuckDBPyConnection, batch_id: int, first: int | None, end: int | None
) -> list[dict[str, Any]]:
    rows = con.execute(
        "SELECT source_record, reason, field, detail FROM rejects WHERE batch_id = ? "
        "AND (? IS NULL OR source_record BETWEEN ? AND ?) ORDER BY source_record LIMIT ?",
        [batch_id, first, first, end, _FIRST_REJECTS],
    ).fetchall()
    return [{"record": r[0], "reason": r[1], "field": r[2], "detail": r[3]} for r in rows]
