"""Ingest benchmark: events/s and peak memory per format, against a row-at-a-time ORM baseline.

    python bench/ingest_bench.py [--impressions 2000000 --clicks 500000 --bids 1000000]

Generates the data set with `advertisex generate`, then ingests each source end to end
(decode, validate, standardize, dedupe, store) into a fresh DuckDB file in its own process,
so peak memory (max RSS) is per run. Then: the same ingest of one file and of a file 4x
larger (memory must not grow 4x), and SQLAlchemy `session.add` per row into SQLite on a
subset, for the ratio.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from sqlalchemy import BigInteger, DateTime, String, create_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

HERE = Path(__file__).resolve().parent


class Base(DeclarativeBase):
    pass


class Impression(Base):
    """The ORM row of the baseline: one object per impression."""

    __tablename__ = "impressions"
    event_id: Mapped[str] = mapped_column(String, primary_key=True)
    event_time: Mapped[datetime] = mapped_column(DateTime)
    user_id: Mapped[str] = mapped_column(String)
    creative_id: Mapped[str] = mapped_column(String)
    site: Mapped[str | None] = mapped_column(String, nullable=True)
    price_micros: Mapped[int | None] = mapped_column(BigInteger, nullable=True)


RUN_ONE = """
import json, resource, sys, time
from pathlib import Path
from advertisex.config import load_settings
from advertisex.pipeline import Runner
from advertisex.sources.files import expand_paths
from advertisex.store import Store
settings = load_settings(db=Path(sys.argv[1]))
files = expand_paths(sys.argv[2:])
def cpu():
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime
t0, c0 = time.perf_counter(), cpu()
with Store.open(settings) as store:  # closing (the last checkpoint) is part of the time
    report = Runner(store, settings).ingest_paths(files)
elapsed, cpu_s = time.perf_counter() - t0, cpu() - c0
print(json.dumps({"elapsed": elapsed, "cpu": cpu_s, "report": report.to_dict()}))
"""


def run_ingest(db: Path, paths: list[Path]) -> dict[str, object]:
    """One ingest in a child process; returns its report, seconds and peak RSS."""
    for p in (db, Path(str(db) + ".wal")):
        p.unlink(missing_ok=True)
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_ONE, str(db), *map(str, paths)],
        stdout=subprocess.PIPE,
        text=True,
    )
    out = proc.stdout.read() if proc.stdout else ""
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"ingest of {paths} failed with status {status}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024
    return result


def orm_baseline(lines: list[bytes], db: Path) -> float:
    """Row at a time: json.loads, an ORM object, session.add per row, one commit (SQLite)."""
    db.unlink(missing_ok=True)
    engine = create_engine(f"sqlite:///{db}")
    Base.metadata.create_all(engine)
    t0 = time.perf_counter()
    with Session(engine) as session:
        for line in lines:
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    continue
                ts = datetime.fromisoformat(str(rec["timestamp"]))
                user_id, creative_id = str(rec["user_id"]), str(rec["creative_id"])
            except (ValueError, KeyError, TypeError):
                continue
            price = rec.get("price")
            session.add(
                Impression(
                    event_id=str(rec.get("impression_id")),
                    event_time=ts,
                    user_id=user_id,
                    creative_id=creative_id,
                    site=rec.get("website"),
                    price_micros=round(price * 1e6) if isinstance(price, float) else None,
                )
            )
        session.commit()
    elapsed = time.perf_counter() - t0
    engine.dispose()
    return len(lines) / elapsed


def read_lines(files: list[Path], limit: int) -> list[bytes]:
    out: list[bytes] = []
    seen: set[bytes] = set()
    for f in files:
        opener = gzip.open if f.suffix == ".gz" else open
        try:
            with opener(f, "rb") as fh:
                for line in fh:
                    if line.strip() and line not in seen:
                        seen.add(line)
                        out.append(line)
                    if len(out) >= limit:
                        return out
        except EOFError:
            continue
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--impressions", type=int, default=2_000_000)
    ap.add_argument("--clicks", type=int, default=500_000)
    ap.add_argument("--bids", type=int, default=1_000_000)
    ap.add_argument("--orm-rows", type=int, default=50_000)
    ap.add_argument("--out", type=Path, default=HERE / "out")
    ap.add_argument("--orm-only", action="store_true", help="only the ORM baseline")
    args = ap.parse_args()

    out: Path = args.out
    data = out / "data"
    if not (data / "truth.json").exists():
        shutil.rmtree(data, ignore_errors=True)
        t0 = time.perf_counter()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "advertisex",
                "generate",
                str(data),
                "--impressions",
                str(args.impressions),
                "--clicks",
                str(args.clicks),
                "--bid-requests",
                str(args.bids),
                "--days",
                "3",
                "--seed",
                "42",
            ],
            check=True,
        )
        print(f"generated in {time.perf_counter() - t0:.1f} s")

    if args.orm_only:
        files = sorted((data / "data" / "impressions").glob("*.ndjson*"))
        rate = orm_baseline(read_lines(files, args.orm_rows), out / "orm.sqlite")
        print(f"row-at-a-time ORM (SQLAlchemy session.add, SQLite): {rate:,.0f} events/s")
        return
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    results = {}
    for name, folder in (
        ("impressions (NDJSON)", "impressions"),
        ("clicks/conversions (CSV)", "clicks"),
        ("bid requests (Avro)", "bid_requests"),
    ):
        r = run_ingest(out / f"{folder}.duckdb", [data / "data" / folder])
        report = r["report"]["sources"]  # type: ignore[index]
        received = sum(s["received"] for s in report.values())
        rate = received / r["elapsed"]  # type: ignore[operator]
        results[folder] = rate
        cpu = float(r["cpu"])  # type: ignore[arg-type]
        print(
            f"{name:26s} {received:>10,} events in {r['elapsed']:6.2f} s = "
            f"{rate:>10,.0f} events/s, peak RSS {r['peak_rss_mb']:,.0f} MB; "
            f"CPU {cpu:6.2f} s = {received / cpu:>9,.0f} events per CPU-second"
        )

    # Memory bounded by the batch, not the file: one file, then the same content 4x.
    imp_files = sorted((data / "data" / "impressions").glob("*.ndjson*"))
    base = read_lines(imp_files, 500_000)
    one = out / "mem1x.ndjson"
    four = out / "mem4x.ndjson"
    one.write_bytes(b"".join(base))
    with four.open("wb") as f:
        for k in range(4):
            # distinct ids per copy, so the 4x file is 4x the work, not 3x duplicates
            f.write(
                b"".join(
                    line.replace(b'"impression_id":"', f'"impression_id":"{k}-'.encode())
                    for line in base
                )
            )
    m1 = run_ingest(out / "mem1x.duckdb", [one])
    m4 = run_ingest(out / "mem4x.duckdb", [four])
    print(
        f"peak RSS, {one.stat().st_size / 1e6:,.0f} MB file: {m1['peak_rss_mb']:,.0f} MB; "
        f"4x file: {m4['peak_rss_mb']:,.0f} MB "
        f"(ratio {m4['peak_rss_mb'] / m1['peak_rss_mb']:.2f})"
    )  # type: ignore[operator]

    orm_rate = orm_baseline(base[: args.orm_rows], out / "orm.sqlite")
    print(
        f"row-at-a-time ORM (SQLAlchemy session.add, SQLite), {args.orm_rows:,} impressions: "
        f"{orm_rate:,.0f} events/s; advertisex NDJSON is {results['impressions'] / orm_rate:.0f}x"
    )


if __name__ == "__main__":
    main()
