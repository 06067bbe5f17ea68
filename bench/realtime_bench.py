"""Real-time benchmarks: HTTP NDJSON ingest, pixel tracker, event-to-queryable latency, Kafka.

    python bench/realtime_bench.py http    [--seconds 20 --connections 8]
    python bench/realtime_bench.py pixel   [--seconds 10 --connections 32]   # needs wrk
                                           # ADVX_COLLECTOR_SPOOL_FSYNC=0: without fdatasync
    python bench/realtime_bench.py latency [--seconds 20 --rate 20000]
    python bench/realtime_bench.py kafka   [--messages 120000] [--no-runner]

The collector runs as `advertisex serve` in its own process on loopback with a fresh DuckDB
file; the load generator runs on the same machine. A 202 is sent after the batch committed,
so the time from sending a request to its 202 is the event-to-queryable latency: the events
are queryable in the store when the answer arrives. The Kafka run produces to librdkafka's
mock cluster, then times one consumer (in this process) from its first commit to its last.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import duckdb
import httpx
import numpy as np

IMP = (
    '{{"impression_id": "{p}-{i}", "creative_id": {c}, "user_id": {u}, '
    '"timestamp": "2026-11-01 10:{m:02d}:00", "website": "site{s}.example"}}'
)


def body(prefix: str, n: int = 1000) -> bytes:
    return (
        "\n".join(
            IMP.format(p=prefix, i=i, c=i % 50, u=i % 9973, m=i % 60, s=i % 40) for i in range(n)
        )
        + "\n"
    ).encode()


def start_serve(db: Path, *extra: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "advertisex", "serve", "--db", str(db), "--port", "0", *extra],
        stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stderr is not None
    while line := proc.stderr.readline():
        if m := re.search(r"serving on (http://\S+)", line):
            url = m.group(1)
            for _ in range(600):
                try:
                    httpx.get(url + "/metrics/", timeout=2)
                    return proc, url
                except httpx.TransportError:
                    time.sleep(0.05)
    raise SystemExit("serve did not start")


def stop(proc: subprocess.Popen[str]) -> None:
    proc.terminate()
    proc.communicate(timeout=60)


async def _post_loop(
    url: str, seconds: float, connections: int, rate: float | None
) -> tuple[int, list[float], int]:
    """POST 1,000-event bodies; returns (events acknowledged, latencies, 503s)."""
    latencies: list[float] = []
    accepted = busy = 0
    deadline = time.monotonic() + seconds
    interval = connections * 1000 / rate if rate else 0.0

    async def worker(n: int) -> None:
        nonlocal accepted, busy
        k = 0
        async with httpx.AsyncClient(timeout=60) as client:
            next_at = time.monotonic()
            while time.monotonic() < deadline:
                payload = body(f"w{n}-{k}")
                k += 1
                t0 = time.monotonic()
                r = await client.post(url + "/v1/impressions", content=payload)
                latencies.append(time.monotonic() - t0)
                if r.status_code == 202:
                    accepted += r.json()["accepted"]
                elif r.status_code == 503:
                    busy += 1
                if interval:
                    next_at += interval
                    await asyncio.sleep(max(0.0, next_at - time.monotonic()))

    await asyncio.gather(*(worker(n) for n in range(connections)))
    return accepted, latencies, busy


def bench_http(args: argparse.Namespace, rate: float | None = None) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        proc, url = start_serve(Path(tmp) / "bench.duckdb")
        try:
            t0 = time.monotonic()
            accepted, lat, busy = asyncio.run(_post_loop(url, args.seconds, args.connections, rate))
            elapsed = time.monotonic() - t0
        finally:
            stop(proc)
    ms = np.array(lat) * 1000
    print(
        f"{'latency' if rate else 'http'}: {accepted:,} events in {elapsed:.1f} s = "
        f"{accepted / elapsed:,.0f} events/s accepted; {len(lat):,} requests, {busy} answered 503; "
        f"request (= event-to-queryable) latency p50 {np.percentile(ms, 50):.0f} ms, "
        f"p99 {np.percentile(ms, 99):.0f} ms"
    )


def _cpu_seconds(pid: int) -> float:
    """User + system CPU of a process, all its threads (from /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_pixel(args: argparse.Namespace) -> None:
    if shutil.which("wrk") is None:
        raise SystemExit("wrk is not installed (apt-get install wrk)")
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        proc, url = start_serve(db)
        try:
            cpu = _cpu_seconds(proc.pid)
            out = subprocess.run(
                [
                    "wrk",
                    "-t1",
                    f"-c{args.connections}",
                    f"-d{int(args.seconds)}s",
                    "--latency",
                    url + "/t/imp?uid=u1&crid=c1&site=news.example&cid=k1",
                ],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            cpu = _cpu_seconds(proc.pid) - cpu
            load = os.getloadavg()[0]
            metrics = httpx.get(url + "/metrics/").text
        finally:
            stop(proc)
        con = duckdb.connect(str(db), read_only=True)
        (stored,) = con.execute("SELECT count(*) FROM impressions").fetchall()[0]
        con.close()
    print(out)
    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    rate = float(re.search(r"Requests/sec:\s+(\S+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1)  # type: ignore[union-attr]
    busy = sum(
        float(v)
        for v in re.findall(r'^advx_collector_busy_total\{route="t/imp"\} (\S+)$', metrics, re.M)
    )
    writes, hits = (
        float(re.search(rf"^advx_tracker_spool_{name}_total (\S+)$", metrics, re.M).group(1))  # type: ignore[union-attr]
        for name in ("writes", "hits")
    )
    print(
        f"pixel: {rate:,.0f} requests/s, p50 {p50}, p99 {p99}; {hits / writes:.1f} hits per "
        f"spool write (fsync {os.environ.get('ADVX_COLLECTOR_SPOOL_FSYNC', '1')}); server CPU "
        f"{cpu / requests * 1e6:.0f} us per request ({cpu:.1f} s for {requests:,}); "
        f"{busy:.0f} answered 503, {stored:,} impressions stored; load average {load:.2f}"
    )


def bench_kafka(args: argparse.Namespace) -> None:
    from confluent_kafka import Producer

    import advertisex.formats.avro  # noqa: F401 (its polars import is a one-time start-up cost)
    from advertisex.config import load_settings
    from advertisex.pipeline.consume import KafkaConsumerLoop, parse_topics
    from advertisex.pipeline.runner import SourceCounts
    from advertisex.store import Store

    holder = Producer({"test.mock.num.brokers": 1, "log_level": 0})
    brokers = holder.list_topics(timeout=10).brokers.values()
    bootstrap = ",".join(f"{b.host}:{b.port}" for b in brokers)
    producer = Producer(
        {"bootstrap.servers": bootstrap, "linger.ms": 50, "batch.num.messages": 100_000}
    )
    t0 = time.monotonic()
    for chunk in range(args.messages // 1000):
        for i, line in enumerate(body(f"k{chunk}").splitlines()):
            while True:
                try:
                    producer.produce("impressions", line, partition=i % 4)
                    break
                except BufferError:
                    producer.poll(0.05)
        producer.poll(0)
    producer.flush(120)
    print(f"produced {args.messages:,} in {time.monotonic() - t0:.1f} s")
    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(db=Path(tmp) / "bench.duckdb")
        with Store.open(settings) as store:
            loop = KafkaConsumerLoop(
                store,
                settings,
                bootstrap_servers=bootstrap,
                group="bench",
                topics=parse_topics("impressions"),
            )
            spans: list[float] = []
            # The consumer thread's CPU inside process_batch, and inside _process (which
            # holds it): _process minus process_batch is the per-message work on a batch.
            in_batches, in_process = [0.0], [0.0]
            process = loop._process
            real_batch = loop.runner.process_batch

            def timed(msgs: list[Any]) -> None:
                t, c = time.monotonic(), time.thread_time()
                process(msgs)
                in_process[0] += time.thread_time() - c
                spans.extend([t, time.monotonic()])

            def batch(*a: Any, **kw: Any) -> Any:
                c = time.thread_time()
                try:
                    return SourceCounts() if args.no_runner else real_batch(*a, **kw)
                finally:
                    in_batches[0] += time.thread_time() - c

            loop._process = timed  # type: ignore[method-assign]
            loop.runner.process_batch = batch  # type: ignore[method-assign]
            cpu, main = time.process_time(), time.thread_time()
            report = loop.run(threading.Event(), until_idle=3)
            cpu, main = time.process_time() - cpu, time.thread_time() - main
            (stored,) = store.query("SELECT count(*) FROM impressions")[0]
    # From the first micro-batch's arrival to the last one's commit (the group join left out).
    elapsed = spans[-1] - spans[0]
    n = report.messages
    print(
        f"kafka{' (no runner)' if args.no_runner else ''}: {n:,} messages, {stored:,} stored in "
        f"{len(spans) // 2} batches in {elapsed:.2f} s = {n / elapsed:,.0f} impressions/s; "
        f"consumer thread's CPU outside process_batch {(main - in_batches[0]) / n * 1e6:.2f} us "
        f"per message (consume(), grouping, batch building, offsets), of which "
        f"{(in_process[0] - in_batches[0]) / n * 1e6:.2f} us from a batch of messages to "
        f"RawBatches and offsets; process CPU "
        f"{cpu / n * 1e6:.1f} us per message (all threads, group join and idle wait included); "
        f"load average {os.getloadavg()[0]:.2f}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("what", choices=["http", "pixel", "latency", "kafka"])
    ap.add_argument("--seconds", type=float, default=20)
    ap.add_argument("--connections", type=int, default=8)
    ap.add_argument("--rate", type=float, default=20_000, help="latency: events/s offered")
    # The mock cluster keeps about 35,000 messages of this size per partition (older segments
    # go, as retention would): 4 partitions x 30,000 stay within it.
    ap.add_argument("--messages", type=int, default=120_000)
    ap.add_argument("--no-runner", action="store_true", help="kafka: skip process_batch")
    args = ap.parse_args()
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f}")
    if args.what == "http":
        bench_http(args)
    elif args.what == "latency":
        bench_http(args, rate=args.rate)
    elif args.what == "pixel":
        bench_pixel(args)
    else:
        bench_kafka(args)


if __name__ == "__main__":
    main()
