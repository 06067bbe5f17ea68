"""Quarantine: list rejected rows, and replay them through the pipeline after a fix."""

from __future__ import annotations

from typing import Any

import duckdb
import numpy as np

from advertisex.config import Settings
from advertisex.pipeline.runner import IngestReport, Origins, Runner
from advertisex.schemas.reasons import Reason
from advertisex.schemas.sources import SOURCES
from advertisex.sources.batch import Format, RawBatch
from advertisex.store import Store

# Rows whose raw text is not a record: nothing to run again.
_NOT_REPLAYABLE = (Reason.UNREADABLE_FILE, Reason.BAD_AVRO_BLOCK)


def list_rejects(
    con: duckdb.DuckDBPyConnection, *, reason: str | None = None, limit: int | None = None
) -> list[dict[str, Any]]:
    sql = (
        "SELECT reject_id, source, source_uri, source_record, source_offset, reason, field, "
        "detail, raw, rejected_at FROM rejects"
    )
    params: list[Any] = []
    if reason:
        sql += " WHERE reason = ?"
        params.append(reason)
    sql += " ORDER BY reject_id"
    if limit:
        sql += f" LIMIT {int(limit)}"
    cur = con.execute(sql, params)
    names = [d[0] for d in cur.description or []]
    rows = []
    for values in cur.fetchall():
        row = dict(zip(names, values, strict=True))
        row["rejected_at"] = row["rejected_at"].isoformat()
        rows.append(row)
    return rows


def replay_rejects(store: Store, settings: Settings, *, reason: str | None = None) -> IngestReport:
    """Run quarantined rows again; accepted ones leave quarantine, others get their new reason."""
    if reason is not None and reason not in {r.value for r in Reason}:
        from advertisex.errors import ConfigError

        raise ConfigError(
            f"--reason {reason!r} is unknown; use one of {', '.join(r.value for r in Reason)}"
        )
    params: list[Any] = [[str(r) for r in _NOT_REPLAYABLE]]
    where = "raw IS NOT NULL AND NOT list_contains(?, reason)"
    if reason:
        where += " AND reason = ?"
        params.append(reason)
    groups = store.con.execute(
        f"SELECT source, source_uri, context, list(reject_id ORDER BY source_record), "
        f"list(source_record ORDER BY source_record), "
        f"list(coalesce(source_offset, -1) ORDER BY source_record), "
        f"list(raw ORDER BY source_record) FROM rejects WHERE {where} GROUP BY ALL",
        params,
    ).fetchall()
    runner = Runner(store, settings)
    report = IngestReport()
    for source_name, uri, context, ids, records, offsets, raws in groups:
        source = SOURCES[source_name]
        if context is not None:
            header = context.encode()
            first = header.count(b"\n") + 1
            lines, pos = [], first
            for raw in raws:
                lines.append(pos)
                pos += raw.count("\n") + 1
            batch = _batch(uri, Format.CSV, raws, header=header, first=first)
        else:
            flat = [r.replace("\n", " ").replace("\r", " ") for r in raws]
            lines = list(range(1, len(flat) + 1))
            batch = _batch(uri, Format.NDJSON, flat)
        origins = Origins(
            np.array(lines, np.int64), np.array(records, np.int64), np.array(offsets, np.int64)
        )
        counts = runner.process_batch(batch, source, origins=origins, replaces=list(ids))
        report.sources[source_name].add(counts)
    return report


def _batch(
    uri: str, fmt: Format, raws: list[str], *, header: bytes = b"", first: int = 1
) -> RawBatch:
    data = ("\n".join(raws) + "\n").encode()
    return RawBatch(
        uri,
        fmt,
        data,
        0,
        first,
        len(data),
        first + len(raws),
        header=header,
        header_lines=first - 1,
    )
