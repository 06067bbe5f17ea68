"""The runner: RawBatches through decode -> extract -> validate -> standardize -> dedupe -> load.

Only the runner knows about batch ids, positions and transactions. Each batch commits its
accepted rows, its rejects, its batch record and the source position in one transaction, so
a crash at any point leaves all of a batch or none of it, and a re-run resumes after the last
committed batch.
"""

from __future__ import annotations

import contextlib
import itertools
import queue
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import duckdb
import numpy as np
import pyarrow as pa

from advertisex.config import Settings
from advertisex.errors import InputError
from advertisex.formats import Decoded, decode
from advertisex.pipeline.enrich import Enricher
from advertisex.pipeline.extract import extract_sql, raw_sql
from advertisex.pipeline.profile import profile_fields
from advertisex.pipeline.route import route
from advertisex.pipeline.standardize import standardize_sql
from advertisex.pipeline.validate import Rules, validate_sql
from advertisex.quality.metrics import STAGE_SECONDS, timed
from advertisex.schemas.reasons import Reason
from advertisex.schemas.sources import SOURCES, Source
from advertisex.sources.batch import Format, RawBatch
from advertisex.sources.files import FileInput, read_file_batches, sniff_file
from advertisex.store import BOOKKEEPING, Store, one

_uid = itertools.count()
# Named in the INSERT: a migrated store has its newer columns after these.
_BOOKKEEPING_COLUMNS = ", ".join(name for name, _ in BOOKKEEPING)


@dataclass(frozen=True)
class Origins:
    """Where replayed rows first came from, by their line number in the replay batch."""

    lines: np.ndarray  # sorted line numbers in the replay batch
    records: np.ndarray  # original record numbers
    offsets: np.ndarray  # original byte offsets (-1: unknown)

    def apply(self, decoded: Decoded) -> Decoded:
        return Decoded(decoded.kind, self._remap(decoded.records), self._remap(decoded.rejects))

    def _remap(self, t: pa.Table) -> pa.Table:
        if t.num_rows == 0:
            return t
        at = np.searchsorted(self.lines, t.column("_record").to_numpy(zero_copy_only=False))
        at = np.minimum(at, self.lines.size - 1)
        offsets = self.offsets[at]
        t = t.set_column(
            t.schema.get_field_index("_record"), "_record", pa.array(self.records[at], pa.int64())
        )
        return t.set_column(
            t.schema.get_field_index("_offset"),
            "_offset",
            pa.array(offsets, pa.int64(), mask=offsets < 0),
        )


@dataclass
class SourceCounts:
    """received = accepted + rejected + duplicates, for one source."""

    received: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    rejected_by_reason: Counter[str] = field(default_factory=Counter)

    def add(self, other: SourceCounts) -> None:
        self.received += other.received
        self.accepted += other.accepted
        self.rejected += other.rejected
        self.duplicates += other.duplicates
        self.rejected_by_reason.update(other.rejected_by_reason)

    def to_dict(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "accepted": self.accepted,
            "rejected": self.rejected,
            "duplicates": self.duplicates,
            "rejected_by_reason": dict(sorted(self.rejected_by_reason.items())),
        }


@dataclass
class IngestReport:
    sources: dict[str, SourceCounts] = field(
        default_factory=lambda: {name: SourceCounts() for name in SOURCES}
    )
    files_read: int = 0
    files_skipped: list[str] = field(default_factory=list)  # already ingested, unchanged
    files_failed: list[tuple[str, str]] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.files_failed and all(c.rejected == 0 for c in self.sources.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "sources": {name: c.to_dict() for name, c in self.sources.items()},
            "files": {
                "read": self.files_read,
                "skipped_already_ingested": self.files_skipped,
                "failed": [{"path": p, "error": e} for p, e in self.files_failed],
            },
        }


Progress = Callable[[int, int], None]  # (bytes done in the current file, rows in the batch)
# Writes a real-time source's positions inside the batch's transaction: (connection, batch id).
Positions = Callable[[duckdb.DuckDBPyConnection, int], None]


@dataclass(frozen=True)
class _Job:
    """One batch on its way into the store: what the load steps share."""

    batch: RawBatch
    source: Source
    fi: FileInput | None
    kind: str  # of the decoded records: json, columns or struct
    rel_in: str  # the decoded records, registered on the connection
    rel_rej: str  # the decoder's own rejects, registered too
    now: datetime
    schema: pa.Schema
    positions: Positions | None


@dataclass(frozen=True)
class _FileFailed:
    path: Path
    message: str
    source: str | None


@dataclass(frozen=True)
class _FileRead:
    fi: FileInput
    skipped: bool  # already ingested, unchanged


@dataclass(frozen=True)
class _Decoded:
    fi: FileInput
    source: Source
    batch: RawBatch
    decoded: Decoded


def _failure(path: Path, e: Exception) -> str:
    """What a file's failure says: an input error its own line, anything else its type."""
    if isinstance(e, InputError):
        return e.message
    return f"cannot process {path}: {type(e).__name__}: {e}"


def _resume_at(
    cur: duckdb.DuckDBPyConnection, fi: FileInput, force: bool
) -> tuple[int, int] | None:
    """Where to start reading a file (byte offset, records before); None: already ingested."""
    pos = one(
        cur,
        'SELECT size, mtime_ns, "offset", record, complete FROM source_positions '
        "WHERE source_uri = ?",
        [fi.uri],
    )
    if pos is None or force:
        return 0, 0
    size, mtime_ns, offset, record, complete = pos
    if complete and size == fi.size and mtime_ns == fi.mtime_ns:
        return None
    if fi.size >= offset and fi.fmt is not Format.JSON_DOC:
        # Unfinished, or grown since (an appended log): go on from the last commit.
        return offset, record
    return 0, 0


class Runner:
    """Runs inputs through the pipeline into one store."""

    def __init__(self, store: Store, settings: Settings) -> None:
        self.store = store
        self.settings = settings
        self.con = store.con
        self.enricher = Enricher(settings)

    # -- files -----------------------------------------------------------------------------

    def ingest_paths(
        self,
        paths: Iterable[Path],
        *,
        force: bool = False,
        source: str | None = None,
        fmt: Format | None = None,
        on_file: Callable[[Path], None] | None = None,
        on_batch: Progress | None = None,
    ) -> IngestReport:
        report = IngestReport()
        failed: set[str] = set()  # files whose batch failed: their later batches are skipped
        # Reading and decoding run one batch ahead on a thread of their own (their native
        # parts release the GIL), across files too, overlapping the store's work on the batch
        # before: a file of one batch (most CSV and Avro files) is decoded while the last one
        # is stored. That thread reads positions and decodes JSON documents on a cursor of
        # its own, as a connection serves one thread at a time.
        reader = self.con.cursor()
        try:
            items = self._read_files(dict.fromkeys(paths), reader, force, source, fmt)
            for item in ahead(items):
                if isinstance(item, Path):
                    if on_file:
                        on_file(item)
                elif isinstance(item, _FileFailed):
                    if str(item.path) not in failed:
                        self._file_failed(report, item.path, item.message, item.source)
                elif isinstance(item, _FileRead):
                    if item.skipped:
                        report.files_skipped.append(item.fi.uri)
                    else:
                        report.files_read += 1
                elif item.fi.uri not in failed:
                    batch, src, fi = item.batch, item.source, item.fi
                    try:
                        counts = self.process_batch(batch, src, fi, decoded=item.decoded)
                    except Exception as e:
                        failed.add(fi.uri)
                        self._file_failed(report, fi.path, _failure(fi.path, e), src.name)
                        continue
                    report.sources[src.name].add(counts)
                    if on_batch:
                        on_batch(batch.end_offset, counts.received)
        finally:
            reader.close()
        return report

    def _read_files(
        self,
        paths: Iterable[Path],
        cur: duckdb.DuckDBPyConnection,
        force: bool,
        source: str | None,
        fmt: Format | None,
    ) -> Iterator[Path | _FileFailed | _FileRead | _Decoded]:
        """Each path, then what became of it: failed, skipped or read, and its decoded
        batches. Errors are items too, at their place: the files after go on."""
        for path in paths:
            yield path
            try:
                fi = sniff_file(path, fmt)
                src = SOURCES[source] if source else route(fi)
            except InputError as e:
                yield _FileFailed(path, e.message, None)
                continue
            start = _resume_at(cur, fi, force)
            yield _FileRead(fi, start is None)
            if start is None:
                continue
            try:
                for batch in read_file_batches(fi, self.settings.batch_bytes, *start):
                    with timed("decode", src.name):
                        decoded = decode(batch, cur)
                    yield _Decoded(fi, src, batch, decoded)
            except Exception as e:
                yield _FileFailed(fi.path, _failure(fi.path, e), src.name)

    def _file_failed(
        self, report: IngestReport, path: Path, message: str, source: str | None = None
    ) -> None:
        """A file that cannot be read: reported, and recorded in rejects so it is not lost."""
        report.files_failed.append((str(path), message))
        with self.store.transaction() as con:
            con.execute(
                "INSERT INTO rejects (source, source_uri, reason, detail, rejected_at) "
                "VALUES (?, ?, ?, ?, ?)",
                [
                    source or _source_by_name(path),
                    str(path),
                    str(Reason.UNREADABLE_FILE),
                    message,
                    _now(),
                ],
            )

    # -- batches ---------------------------------------------------------------------------

    def process_batch(
        self,
        batch: RawBatch,
        source: Source,
        fi: FileInput | None = None,
        *,
        origins: Origins | None = None,
        replaces: list[int] | None = None,
        positions: Positions | None = None,
        decoded: Decoded | None = None,
    ) -> SourceCounts:
        """One batch through every stage, committed in one transaction with its position.

        Replay passes `origins` (the rows' first places, which they keep) and `replaces` (the
        reject ids the outcome takes the place of, deleted in the same transaction). Real-time
        sources pass `positions`, called with the connection and the batch id inside the
        transaction to write their own positions (Kafka offsets, HTTP request ranges).
        `decoded` is the batch already decoded, when that was done ahead.
        """
        if decoded is None:
            with timed("decode", source.name):
                decoded = decode(batch, self.con)
        if origins is not None:
            decoded = origins.apply(decoded)
        now = _now()
        rules = Rules(
            now=now,
            min_event_time=self.settings.min_event_time,
            max_future_seconds=self.settings.max_future_seconds,
            conversion_types=self.settings.conversion_types,
        )
        n = next(_uid)
        rel_in, rel_rej = f"_advx_in_{n}", f"_advx_drej_{n}"
        con = self.con
        con.register(rel_in, decoded.records)
        con.register(rel_rej, decoded.rejects)
        try:
            sql = batch_sql(source, decoded.kind, rel_in, decoded.records.schema, rules, now)
            with self.store.transaction():
                if replaces:
                    con.execute(
                        "DELETE FROM rejects WHERE reject_id IN (SELECT unnest(?))", [replaces]
                    )
                job = _Job(
                    batch, source, fi, decoded.kind, rel_in, rel_rej, now,
                    decoded.records.schema, positions,
                )  # fmt: skip
                counts = self._load(job, sql)
                committing = time.perf_counter()
            STAGE_SECONDS.labels(source.name, "commit").observe(time.perf_counter() - committing)
            return counts
        finally:
            con.unregister(rel_in)
            con.unregister(rel_rej)

    def _load(self, job: _Job, sql: str) -> SourceCounts:
        con, source = self.con, job.source
        row = one(con, "SELECT nextval('batch_ids')")
        assert row is not None
        batch_id = int(row[0])
        with timed("transform", source.name):
            con.execute(f"CREATE OR REPLACE TEMP TABLE _advx_batch AS {sql}")
        with timed("enrich", source.name):
            enriched = self.enricher.enrich(con, "_advx_batch", source)
        profile_fields(
            con, batch_id, source, job.kind, job.rel_in, job.schema, "_advx_batch", job.now,
            self.settings.field_sample_percent,
        )  # fmt: skip
        with timed("load", source.name):
            return self._store(job, batch_id, enriched)

    def _store(self, job: _Job, batch_id: int, enriched: str) -> SourceCounts:
        """The enriched batch into the event table (deduplicated), its rejects, its batch
        record and its position: everything but the commit."""
        con = self.con
        batch, source, fi, kind, now = job.batch, job.source, job.fi, job.kind, job.now
        rel_in, rel_rej, schema, positions = job.rel_in, job.rel_rej, job.schema, job.positions
        lo, hi = one(
            con, "SELECT min(event_time), max(event_time) FROM _advx_batch WHERE _reason IS NULL"
        ) or (None, None)
        cols = source.store_columns()
        col_list = ", ".join(cols)
        counts = SourceCounts()
        if lo is not None and hi is not None:
            window = timedelta(days=self.settings.dedupe_window_days)
            # Copies of one event inside the batch: all but the first. (A separate query: a
            # window function in the INSERT below makes DuckDB's plan about 2x slower.)
            con.execute(
                "CREATE OR REPLACE TEMP TABLE _advx_dups AS SELECT _record FROM _advx_batch "
                "WHERE _reason IS NULL "
                "QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY _record) > 1"
            )
            inserted = one(
                con,
                f"""
                INSERT INTO {source.table} ({col_list}, {_BOOKKEEPING_COLUMNS})
                SELECT {col_list}, ?, _record, _offset, ?, ?
                FROM {enriched} b
                ANTI JOIN (SELECT event_id FROM {source.table}
                           WHERE event_time BETWEEN ? AND ?) s USING (event_id)
                ANTI JOIN _advx_dups USING (_record)
                WHERE _reason IS NULL
                """,
                [batch.uri, batch_id, now, lo - window, hi + window],
            )
            con.execute("DROP TABLE _advx_dups")
            self.enricher.after_load(con, source, lo, hi)
            counts.accepted = int(inserted[0]) if inserted else 0
        by_reason = con.execute(
            f"""
            SELECT _reason, count(*) FROM (
              SELECT _reason FROM _advx_batch UNION ALL SELECT _reason FROM {rel_rej})
            GROUP BY ALL
            """
        ).fetchall()
        for reason, count in by_reason:
            if reason is None:
                counts.received += count
                continue
            counts.rejected_by_reason[reason] = count
            counts.rejected += count
            counts.received += count
        counts.duplicates = counts.received - counts.rejected - counts.accepted

        # Raw text is fetched for the rejected rows only, from the batch's input.
        con.execute(
            "CREATE OR REPLACE TEMP TABLE _advx_rej AS SELECT _record, _offset, _reason, _field, "
            "_detail FROM _advx_batch WHERE _reason IS NOT NULL"
        )
        context = batch.header.decode("utf-8", "replace") if batch.fmt is Format.CSV else None
        con.execute(
            f"""
            INSERT INTO rejects (source, source_uri, source_record, source_offset, reason, field,
                                 detail, raw, context, batch_id, rejected_at)
            SELECT ?, ?, _record, _offset, _reason, _field, _detail, raw, ?, ?, ?
            FROM (
              SELECT b._record, b._offset, b._reason, b._field, b._detail, r._raw AS raw
              FROM _advx_rej b
              LEFT JOIN ({raw_sql(kind, rel_in, schema, "_advx_rej")}) r USING (_record)
              UNION ALL
              SELECT _record, _offset, _reason, _field, _detail, _raw FROM {rel_rej}
            ) x
            WHERE NOT EXISTS (SELECT 1 FROM rejects r WHERE r.source_uri = ?
                              AND r.source_record = x._record AND r.reason <> 'unreadable_file')
            """,
            [source.name, batch.uri, context, batch_id, now, batch.uri],
        )
        con.execute("DROP TABLE _advx_rej")
        con.execute(
            "INSERT INTO batches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [
                batch_id,
                source.name,
                batch.uri,
                batch.first_record,
                batch.end_record,
                counts.received,
                counts.accepted,
                counts.rejected,
                counts.duplicates,
                now,
            ],
        )
        if fi is not None:
            con.execute(
                "INSERT OR REPLACE INTO source_positions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    batch.uri,
                    source.name,
                    fi.size,
                    fi.mtime_ns,
                    batch.end_offset,
                    batch.end_record,
                    batch.final,
                    now,
                ],
            )
        if positions is not None:
            positions(con, batch_id)
        con.execute("DROP TABLE _advx_batch")
        return counts


_T = TypeVar("_T")


def ahead(items: Iterator[_T], depth: int = 1) -> Iterator[_T]:
    """`items`, produced on a thread of their own up to `depth` items ahead of the consumer.

    An exception in the producer is raised in the consumer, at its place in the sequence.
    Memory stays bounded: at most depth + 2 items exist at once.
    """
    q: queue.Queue[tuple[bool, Any]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                q.put((True, item))
        except BaseException as e:  # handed to the consumer, raised there
            q.put((False, e))
            return
        q.put((False, None))

    worker = threading.Thread(target=produce, name="advx-read-ahead", daemon=True)
    worker.start()
    try:
        while True:
            ok, value = q.get()
            if not ok:
                if value is not None:
                    raise value
                return
            yield value
    finally:
        stop.set()
        while worker.is_alive():  # let a producer blocked on a full queue see `stop`
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.05)
        worker.join()


def batch_sql(
    source: Source, kind: str, relation: str, schema: Any, rules: Rules, now: datetime
) -> str:
    """The whole per-batch transformation as one query (DuckDB pipelines the stages)."""
    ingest_time = f"TIMESTAMP '{now.isoformat(sep=' ')}'"
    extracted = extract_sql(source, kind, relation, schema)
    validated = validate_sql(source, "extracted", rules)
    standardized = standardize_sql(source, "validated", ingest_time)
    return (
        f"WITH extracted AS ({extracted}), validated AS ({validated}) "
        f"SELECT * FROM ({standardized})"
    )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def _source_by_name(path: Path) -> str:
    name = path.name.lower()
    if ".avro" in name:
        return "bid_requests"
    if ".csv" in name or ".tsv" in name:
        return "clicks_conversions"
    return "impressions"
