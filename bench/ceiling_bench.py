"""Ceiling benchmark: what DuckDB (polars for Avro, confluent-kafka for Kafka) alone achieve on
the files the ingest benchmark reads, next to the advertisex pipeline on the same files.

    python bench/ceiling_bench.py /tmp/bd /tmp/bc     # data sets `advertisex generate` wrote
    python bench/ceiling_bench.py                     # generates bench/out/data (as ingest_bench)
    python bench/ceiling_bench.py /tmp/bd --only ndjson,kafka --kafka-messages 200000

For each format the files are taken from the given data set (its `data/<source>/` folder) with
the most bytes of that format: uncompressed NDJSON impressions (`*.ndjson`), clicks/conversions
CSV with the most common header, and the Avro bid request files polars reads whole. Every case
runs in a fresh child process on a fresh DuckDB file (in a temporary folder), and reports events
stored (or parsed), wall seconds, CPU seconds of the process (all threads, getrusage) and the
database file size after close. What each row includes:

- parse:             the reader alone, into one Arrow table in memory
                     (NDJSON/CSV: DuckDB read_json/read_csv with explicit VARCHAR columns and
                     ignore_errors; Avro: polars read_avro of each whole file, files in
                     parallel on every core).
- raw store:         the same read into a new table of a fresh DuckDB file, raw columns as read
                     (Avro: one table per file, nested structs as decoded, the next file
                     decoded on a thread meanwhile; polars gives one Arrow chunk per file,
                     which DuckDB scans on one thread), CHECKPOINT and close.
- store shape:       the same read inserted into the store's own event table (Store.open: the
                     real schema and macros) with the casts the pipeline's standardize does
                     (event id or md5 of the natural key, advx_ts, advx_domain, advx_micros,
                     upper/lower), no validation, no rejects, no dedupe, no record numbers.
- `pio off`:         the same with `SET preserve_insertion_order = false`; `pio on` with true.
- uncompressed:      raw store, pio off, `SET force_compression = 'uncompressed'`.
- pipeline:          `Runner.ingest_paths` on the same files (decode, validate, standardize,
                     dedupe, rejects with raw text, positions, field profile; enrichment off),
                     as bench/ingest_bench.py runs it.
- kafka consume:     the first --kafka-messages lines of the NDJSON files produced as messages
                     to librdkafka's mock cluster (topics of 4 partitions, 6,000 messages per
                     partition, as it keeps only a few MB per partition), then one
                     confluent-kafka consumer (the consumer loop's settings, the partitions
                     assigned from the beginning: no group join) reading them with consume()
                     in batches of `kafka_batch_messages` (timeout `kafka_batch_ms`), each
                     batch's values joined with newlines (what a RawBatch needs at least): no
                     decode, no store. Timed from the first consume() call to the last
                     message's arrival; `after the first batch`: the messages after the first
                     batch, from its arrival to the last's (the fetch start-up left out). The
                     CPU includes the mock brokers' threads, which run in the same process.
                     `tuned fetch`: the same with TUNED_FETCH added (options `kafka_config`
                     can pass).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent

_TEXT_CASES = [
    "parse",
    "raw store, pio on",
    "raw store, pio off",
    "raw store, pio off, uncompressed",
    "store shape, pio on",
    "store shape, pio off",
    "pipeline",
]
CASES = {
    "ndjson": _TEXT_CASES,
    "csv": _TEXT_CASES,
    "avro": [c for c in _TEXT_CASES if "uncompressed" not in c],
    "kafka": ["kafka consume", "kafka consume, tuned fetch"],
}
# librdkafka options a consumer can be given (`kafka_config`): answer fetches at once and keep
# more messages queued ahead (defaults: 500 ms, 100,000).
TUNED_FETCH = {"fetch.wait.max.ms": 5, "queued.min.messages": 1_000_000}
FOLDERS = {"ndjson": "impressions", "csv": "clicks", "avro": "bid_requests", "kafka": "impressions"}

# The raw columns of each text format, all read as text (the pipeline's extract gives text too).
NDJSON_COLUMNS = (
    "impression_id", "creative_id", "user_id", "timestamp", "website", "campaign_id",
    "page_url", "ip", "user_agent", "bid_request_id", "price", "currency",
)  # fmt: skip

IMPRESSIONS_SHAPE = """
INSERT INTO impressions (event_id, event_time, user_id, creative_id, campaign_id, site,
                         page_url, ip, user_agent, bid_request_id, price_micros, currency,
                         source_uri, batch_id, ingested_at)
SELECT coalesce(impression_id, 'h:' || md5(concat_ws(chr(31), user_id, creative_id,
                advx_ts("timestamp")::VARCHAR, advx_domain(website)))),
       advx_ts("timestamp"), user_id, creative_id, campaign_id, advx_domain(website), page_url,
       ip, user_agent, bid_request_id, advx_micros(try_cast(price AS DOUBLE)),
       upper(coalesce(currency, 'USD')), filename, 1, now()
FROM {reader}"""

CLICKS_SHAPE = """
INSERT INTO clicks_conversions (event_id, event_time, user_id, campaign_id, event_type,
                                creative_id, impression_id, value_micros, currency,
                                source_uri, batch_id, ingested_at)
SELECT coalesce(event_id, 'h:' || md5(concat_ws(chr(31), advx_ts("timestamp")::VARCHAR,
                user_id, campaign_id, lower(conversion_type)))),
       advx_ts("timestamp"), user_id, campaign_id, lower(conversion_type), creative_id,
       impression_id, advx_micros(try_cast("value" AS DOUBLE)), upper(coalesce(currency, 'USD')),
       filename, 1, now()
FROM {reader}"""

BIDS_SHAPE = """
INSERT INTO bid_requests (event_id, event_time, user_id, creative_id, site, country, ip,
                          user_agent, imp_id, bid_floor_micros, bid_amount_micros, won,
                          win_price_micros, currency, source_uri, batch_id, ingested_at)
SELECT c_auction_id, coalesce(advx_ts(c_event_time), now()::TIMESTAMP), c_user_id,
       c_creative_id, advx_domain(c_site), upper(c_country), c_ip, c_user_agent, c_imp_id,
       advx_micros(try_cast(c_bid_floor AS DOUBLE)), advx_micros(try_cast(c_bid_amount AS DOUBLE)),
       try_cast(c_won AS BOOLEAN), advx_micros(try_cast(c_win_price AS DOUBLE)),
       upper(coalesce(c_currency, 'USD')), $uri, 1, now()
FROM ({extract})"""


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def _list(files: list[Path]) -> str:
    return "[" + ", ".join("'" + str(f).replace("'", "''") + "'" for f in files) + "]"


def _reader(fmt: str, files: list[Path]) -> str:
    if fmt == "ndjson":
        cols = ", ".join(f"'{c}': 'VARCHAR'" for c in NDJSON_COLUMNS)
        return (
            f"read_json({_list(files)}, format = 'newline_delimited', ignore_errors = true, "
            f"filename = true, columns = {{{cols}}})"
        )
    header = files[0].open("rb").readline().decode().strip().split(",")
    cols = ", ".join(f"'{c}': 'VARCHAR'" for c in header)
    return (
        f"read_csv({_list(files)}, header = true, delim = ',', quote = '\"', "
        f"ignore_errors = true, filename = true, columns = {{{cols}}})"
    )


def _size(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}.wal")) if p.exists())


def run_case(fmt: str, case: str, files: list[Path], messages: int) -> dict[str, Any]:
    """One case, in this (child) process: events, wall and CPU seconds, database bytes."""
    import duckdb

    if case.startswith("kafka consume"):
        return _kafka(files, messages, tuned="tuned" in case)
    tmp = Path(tempfile.mkdtemp(prefix="advx-ceiling-"))
    db = tmp / "ceiling.duckdb"
    if case == "pipeline":
        return _pipeline(db, files)
    if fmt == "avro":
        return _avro(case, db, files)
    reader = _reader(fmt, files)
    t0, c0 = time.perf_counter(), cpu_seconds()
    if case == "parse":
        con = duckdb.connect()
        events = con.sql(f"SELECT * EXCLUDE (filename) FROM {reader}").to_arrow_table().num_rows
        con.close()
        return {"events": events, "wall": time.perf_counter() - t0, "cpu": cpu_seconds() - c0}
    if case.startswith("raw store"):
        con = duckdb.connect(str(db))
        _pio(con, case)
        if "uncompressed" in case:
            con.execute("SET force_compression = 'uncompressed'")
        con.execute(f"CREATE TABLE events AS SELECT * EXCLUDE (filename) FROM {reader}")
        events = con.execute("SELECT count(*) FROM events").fetchall()[0][0]
    else:
        from advertisex.config import load_settings
        from advertisex.store import Store

        store = Store.open(load_settings(db=db))
        con = store.con
        _pio(con, case)
        shape = IMPRESSIONS_SHAPE if fmt == "ndjson" else CLICKS_SHAPE
        events = con.execute(shape.format(reader=reader)).fetchall()[0][0]
    return _stored(con, db, events, t0, c0)


def _stored(con: Any, db: Path, events: int, t0: float, c0: float) -> dict[str, Any]:
    """The figures of a store case, after its last CHECKPOINT and close."""
    con.execute("CHECKPOINT")
    con.close()
    return {
        "events": events,
        "wall": time.perf_counter() - t0,
        "cpu": cpu_seconds() - c0,
        "bytes": _size(db),
    }


def _pio(con: Any, case: str) -> None:
    con.execute(f"SET preserve_insertion_order = {'false' if 'pio off' in case else 'true'}")


def _avro(case: str, db: Path, files: list[Path]) -> dict[str, Any]:
    import duckdb
    import polars as pl
    import pyarrow as pa

    from advertisex.pipeline.extract import extract_sql
    from advertisex.schemas.sources import BID_REQUESTS

    def read(f: Path) -> pa.Table:
        return pl.read_avro(f).to_arrow()

    t0, c0 = time.perf_counter(), cpu_seconds()
    events = 0
    if case == "parse":  # the files on every core
        with ThreadPoolExecutor(os.cpu_count()) as pool:
            events = sum(t.num_rows for t in pool.map(read, files))
        return {"events": events, "wall": time.perf_counter() - t0, "cpu": cpu_seconds() - c0}
    if case.startswith("raw store"):
        con = duckdb.connect(str(db))
    else:
        from advertisex.config import load_settings
        from advertisex.store import Store

        con = Store.open(load_settings(db=db)).con
    _pio(con, case)
    # The next file is decoded on a thread while DuckDB stores this one (as the runner does).
    with ThreadPoolExecutor(1) as pool:
        ahead = pool.submit(read, files[0])
        for i, f in enumerate(files):
            table = ahead.result()
            if i + 1 < len(files):
                ahead = pool.submit(read, files[i + 1])
            if case.startswith("raw store"):
                con.register("decoded", table)
                con.execute(f"CREATE TABLE events_{i} AS SELECT * FROM decoded")
                events += table.num_rows
            else:
                n = table.num_rows
                table = table.append_column("_offset", pa.nulls(n, pa.int64()))
                table = table.append_column("_record", pa.array(range(n), pa.int64()))
                con.register("decoded", table)
                sql = BIDS_SHAPE.format(
                    extract=extract_sql(BID_REQUESTS, "struct", "decoded", table.schema)
                )
                events += con.execute(sql, {"uri": str(f)}).fetchall()[0][0]
            con.unregister("decoded")
    return _stored(con, db, events, t0, c0)


def _pipeline(db: Path, files: list[Path]) -> dict[str, Any]:
    from advertisex.config import load_settings
    from advertisex.pipeline import Runner
    from advertisex.store import Store

    settings = load_settings(db=db, enrich_enabled=False)
    t0, c0 = time.perf_counter(), cpu_seconds()
    with Store.open(settings) as store:
        report = Runner(store, settings).ingest_paths(files)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    counts = report.to_dict()["sources"]
    return {
        "events": sum(s["received"] for s in counts.values()),
        "accepted": sum(s["accepted"] for s in counts.values()),
        "wall": wall,
        "cpu": cpu,
        "bytes": _size(db),
    }


def _kafka(files: list[Path], messages: int, *, tuned: bool) -> dict[str, Any]:
    from confluent_kafka import OFFSET_BEGINNING, Consumer, Producer, TopicPartition

    from advertisex.config import load_settings

    lines: list[bytes] = []
    for f in files:
        with f.open("rb") as fh:
            lines += [line.rstrip(b"\n") for line in fh if line.strip()]
        if len(lines) >= messages:
            break
    lines = lines[:messages]
    holder = Producer({"test.mock.num.brokers": 1, "log_level": 0})
    brokers = holder.list_topics(timeout=10).brokers.values()
    bootstrap = ",".join(f"{b.host}:{b.port}" for b in brokers)
    # The mock cluster keeps a few MB per partition (older segments go) and makes topics of
    # 4 partitions: enough topics that every message stays.
    tps = [
        (f"impressions-{t}", p) for t in range(max(1, -(-len(lines) // 24_000))) for p in range(4)
    ]
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.num.messages": 100_000}
    )
    for i, line in enumerate(lines):
        while True:
            try:
                topic, partition = tps[i % len(tps)]
                producer.produce(topic, line, partition=partition)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)
    consumer = Consumer(
        {
            "bootstrap.servers": bootstrap,
            "group.id": "ceiling",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "fetch.max.bytes": 64 * 1024 * 1024,
            **(TUNED_FETCH if tuned else {}),
        }
    )
    # Assigned, not subscribed: no group join to leave out of the time.
    consumer.assign([TopicPartition(t, p, OFFSET_BEGINNING) for t, p in tps])
    settings = load_settings()
    per_batch, timeout = settings.kafka_batch_messages, settings.kafka_batch_ms / 1000
    got, first, c0 = 0, time.perf_counter(), cpu_seconds()
    last, c1 = first, c0
    arrived, after_first = 0.0, 0  # the first batch's arrival, messages after it
    while got < len(lines):
        msgs = consumer.consume(per_batch, timeout)
        if not msgs:
            if time.perf_counter() - last > 5:
                break  # idle: the mock cluster may have dropped old segments
            continue
        b"\n".join(map(lambda m: m.value(), msgs))
        after_first += len(msgs) if got else 0
        got += len(msgs)
        last, c1 = time.perf_counter(), cpu_seconds()
        arrived = arrived or last
    consumer.close()
    steady = after_first / (last - arrived) if last > arrived else 0.0
    return {"events": got, "wall": last - first, "cpu": c1 - c0, "steady": steady}


def pick_files(fmt: str, data_sets: list[Path]) -> tuple[list[Path], list[Path]]:
    """The files of one format from the data set with most bytes of it; and those left out."""
    best: list[Path] = []
    for root in data_sets:
        folder = root / "data" / FOLDERS[fmt]
        pattern = {"ndjson": "*.ndjson", "kafka": "*.ndjson", "csv": "*.csv", "avro": "*.avro"}
        found = sorted(folder.glob(pattern[fmt]))
        if sum(f.stat().st_size for f in found) > sum(f.stat().st_size for f in best):
            best = found
    left_out: list[Path] = []
    if fmt == "csv" and best:
        headers = {f: f.open("rb").readline() for f in best}
        common = collections.Counter(headers.values()).most_common(1)[0][0]
        left_out = [f for f in best if headers[f] != common]
    if fmt == "avro":
        import polars as pl

        for f in best:
            try:
                pl.read_avro(f, n_rows=None)
            except Exception:
                left_out.append(f)
    return [f for f in best if f not in left_out], left_out


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawTextHelpFormatter
    )
    ap.add_argument("data", nargs="*", type=Path, help="data sets (advertisex generate OUT)")
    ap.add_argument("--only", default="ndjson,csv,avro,kafka", help="formats, comma-separated")
    ap.add_argument("--kafka-messages", type=int, default=600_000)
    ap.add_argument("--case", help=argparse.SUPPRESS)  # fmt:case, run in a child process
    ap.add_argument("--files", nargs="*", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.case:
        fmt, case = args.case.split(":", 1)
        print(json.dumps(run_case(fmt, case, args.files, args.kafka_messages)))
        return
    data_sets = args.data
    if not data_sets:
        out = HERE / "out" / "data"
        if not (out / "truth.json").exists():
            subprocess.run(
                [sys.executable, "-m", "advertisex", "generate", str(out), "--impressions",
                 "2000000", "--clicks", "500000", "--bid-requests", "1000000", "--days", "3",
                 "--seed", "42"],
                check=True,
            )  # fmt: skip
        data_sets = [out]
    import duckdb
    import polars as pl

    print(
        f"{os.cpu_count()} cores, DuckDB {duckdb.__version__}, polars {pl.__version__}; "
        f"DuckDB's avro extension: not installed here (INSTALL needs the network), so Avro "
        f"is read by polars"
    )
    rows = []
    for fmt in args.only.split(","):
        files, left_out = pick_files(fmt, data_sets)
        if not files:
            print(f"{fmt}: no files found under {[str(d) for d in data_sets]}")
            continue
        mb = sum(f.stat().st_size for f in files) / 1e6
        print(f"{fmt}: {len(files)} files, {mb:,.0f} MB in {files[0].parent}", end="")
        print(f"; left out: {', '.join(f.name for f in left_out)}" if left_out else "")
        for case in CASES[fmt]:
            env = dict(os.environ, ADVX_ENRICH_ENABLED="false")
            proc = subprocess.run(
                [sys.executable, __file__, "--case", f"{fmt}:{case}",
                 "--kafka-messages", str(args.kafka_messages), "--files", *map(str, files)],
                capture_output=True, text=True, env=env,
            )  # fmt: skip
            if proc.returncode != 0:
                print(f"  {case}: failed: {proc.stderr.strip().splitlines()[-1:]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            r.update(format=fmt, case=case, load=os.getloadavg()[0])
            rows.append(r)
            print(
                f"  {case:34s} {r['events']:>10,} events {r['wall']:7.2f} s "
                f"{r['events'] / r['wall']:>11,.0f}/s  CPU {r['cpu']:6.2f} s "
                f"({r['cpu'] / r['events'] * 1e6:5.2f} us/event)"
                + (f"  {r['bytes'] / 1e6:6.0f} MB" if "bytes" in r else "")
                + (f"  after the first batch {r['steady']:,.0f}/s" if "steady" in r else "")
                + f"  load {r['load']:.2f}",
                flush=True,
            )
    print()
    print("| format | case | events | wall s | events/s | CPU s | us CPU/event | DB MB | load |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        size = f"{r['bytes'] / 1e6:,.0f}" if "bytes" in r else ""
        print(
            f"| {r['format']} | {r['case']} | {r['events']:,} | {r['wall']:.2f} | "
            f"{r['events'] / r['wall']:,.0f} | {r['cpu']:.2f} | "
            f"{r['cpu'] / r['events'] * 1e6:.2f} | {size} | {r['load']:.2f} |"
        )


if __name__ == "__main__":
    main()
