"""Enrichment overhead: end-to-end NDJSON impression ingest with and without the enrich stage.

    python bench/enrich_bench.py [--rows 1000000 --ips 1000000 --uas 5000 --repeat 2]

Writes one NDJSON file of impressions with about `--ips` distinct IPv4 addresses (most
inside networks MaxMind's test databases know, so most rows get an answer) and `--uas`
distinct user agents, then ingests it into a fresh DuckDB file in its own process, with
enrichment off (`enrich_enabled=false`) and on (geo from GeoIP2-City-Test and
GeoLite2-ASN-Test, user agents, IVT, domains, the creatives dimension). Prints seconds (ingest
and closing the store, whose last checkpoint writes what the ingest left) and CPU seconds for
each and the added share (target: at most 40 %).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import polars as pl

HERE = Path(__file__).resolve().parent
MAXMIND = HERE.parent.parent / "shared" / "testdata" / "maxmind-db" / "test-data"

RUN_ONE = """
import json, sys, time
from pathlib import Path
from advertisex.config import load_settings
from advertisex.enrich import load_creatives
from advertisex.pipeline import Runner
from advertisex.store import Store
db, path, dims, enrich, city, asn = sys.argv[1:7]
settings = load_settings(db=Path(db), enrich_enabled=enrich == "on",
                         geoip_db=city if enrich == "on" else None,
                         geoip_asn_db=asn if enrich == "on" else None)
store = Store.open(settings)
load_creatives(store, Path(dims))
t0, c0 = time.perf_counter(), time.process_time()
report = Runner(store, settings).ingest_paths([Path(path)])
flagged = store.query("SELECT count(ivt_reason), count(country), count(device_type) "
                      "FROM impressions")[0]
# Closing writes the last checkpoint: with it in, both runs pay for all they wrote (without,
# whether the last commit or the close checkpoints decided up to 3 CPU s of the difference).
store.close()
elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
print(json.dumps({"seconds": elapsed, "cpu": cpu,
                  "accepted": report.sources["impressions"].accepted, "ivt": flagged[0],
                  "with_country": flagged[1], "with_device": flagged[2]}))
"""


def user_agents(n: int, rng: np.random.Generator) -> list[str]:
    """`n` distinct, realistic agents: browser templates with many versions, a few bots."""
    templates = [
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/{a}.0.{b}.{c} Safari/537.36",
        "Mozilla/5.0 (Linux; Android {d}; SM-S9{c}B) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/{a}.0.{b}.{c} Mobile Safari/537.36",
        "Mozilla/5.0 (iPhone; CPU iPhone OS {d}_{c} like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/{d}.{c} Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7; rv:{a}.0) Gecko/20100101 Firefox/{a}.0",
        "Mozilla/5.0 (iPad; CPU OS {d}_{c} like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/{d}.{c} Mobile/15E148 Safari/604.1",
        "Mozilla/5.0 (compatible; Googlebot/2.{c}; +http://www.google.com/bot.html) v{b}",
    ]
    seen: set[str] = set()
    while len(seen) < n:
        t = templates[int(rng.integers(0, len(templates)))]
        seen.add(
            t.format(
                a=rng.integers(90, 130),
                b=rng.integers(1000, 7000),
                c=rng.integers(0, 200),
                d=rng.integers(9, 18),
            )
        )
    return sorted(seen)


def write_file(path: Path, rows: int, ips: int, uas: int, seed: int = 1) -> int:
    """Write the file; return how many distinct IPs it has."""
    rng = np.random.default_rng(seed)
    # Most addresses resolve, as with a real database: 80 % inside networks of the ASN test
    # database (15/8 and 16/8 Hewlett-Packard, 18/8 MIT, 1.0.0.0/24 Google: a data centre),
    # 5 % inside the City test database's 81.2.69.0/24, the rest anywhere.
    ip_ints = rng.choice(2**32 - 2**28, ips, replace=False).astype(np.int64) + 2**24
    where = rng.random(ips)
    asn_nets = np.array([15 << 24, 16 << 24, 18 << 24])
    in_asn = where < 0.8
    ip_ints[in_asn] = asn_nets[rng.integers(0, 3, int(in_asn.sum()))] + rng.choice(
        2**24, int(in_asn.sum()), replace=False
    )
    google = (where >= 0.8) & (where < 0.81)
    ip_ints[google] = (1 << 24) | rng.integers(0, 256, int(google.sum()))
    city = (where >= 0.81) & (where < 0.86)
    ip_ints[city] = (81 << 24) | (2 << 16) | (69 << 8) | rng.integers(0, 256, int(city.sum()))
    ip_col = pl.Series(ip_ints[np.arange(rows) % ips])
    ip_text = pl.select(
        pl.concat_str(
            [((ip_col // (1 << s)) % 256).cast(pl.String) for s in (24, 16, 8, 0)], separator="."
        )
    ).to_series()
    agents = pl.Series(user_agents(uas, rng))
    ts = 1_793_000_000 + np.sort(rng.integers(0, 86_400, rows))
    frame = pl.DataFrame(
        {
            "impression_id": [f"imp-{i}" for i in range(rows)],
            "creative_id": rng.integers(20001, 20101, rows),
            "user_id": rng.integers(1, rows // 3 + 2, rows),
            "timestamp": pl.Series(ts * 1000).cast(pl.Datetime("ms")),
            "website": pl.Series(["www.news.example.co.uk", "m.shop.example.com"]).gather(
                rng.integers(0, 2, rows)
            ),
            "ip": ip_text,
            "user_agent": agents.gather(rng.integers(0, uas, rows)),
            "price": np.round(rng.lognormal(0.7, 0.3, rows), 4),
        }
    ).with_columns(pl.col("timestamp").dt.strftime("%Y-%m-%d %H:%M:%S"))
    frame.write_ndjson(path)
    return len(np.unique(ip_ints))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--ips", type=int, default=1_000_000)
    ap.add_argument("--uas", type=int, default=5_000)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="advx-enrich-bench-"))
    data = work / "impressions.ndjson"
    distinct_ips = write_file(data, args.rows, min(args.ips, args.rows), args.uas)
    dims = work / "creatives.csv"
    dims.write_text(
        "creative_id,campaign_id,advertiser_id\n"
        + "".join(f"{c},{1000 + c % 20},{100 + c % 5}\n" for c in range(20001, 20091))
    )
    city, asn = MAXMIND / "GeoIP2-City-Test.mmdb", MAXMIND / "GeoLite2-ASN-Test.mmdb"
    print(f"{args.rows:,} impressions, {distinct_ips:,} distinct IPs, {args.uas:,} agents; "
          f"{data.stat().st_size / 1e6:.0f} MB; {platform.machine()}, Python "
          f"{platform.python_version()}, load average {os.getloadavg()[0]:.1f}")  # fmt: skip
    results: dict[str, list[float]] = {"off": [], "on": []}
    cpu: dict[str, list[float]] = {"off": [], "on": []}
    for run in range(args.repeat):
        for mode in ("off", "on"):
            db = work / f"{mode}-{run}.duckdb"
            out = subprocess.run(
                [sys.executable, "-c", RUN_ONE, str(db), str(data), str(dims), mode, str(city),
                 str(asn)],
                check=True, capture_output=True, text=True,
            )  # fmt: skip
            r = json.loads(out.stdout.strip().splitlines()[-1])
            results[mode].append(r["seconds"])
            cpu[mode].append(r["cpu"])
            print(f"run {run + 1} enrich {mode:>3}: {r['seconds']:6.2f} s ({r['cpu']:.2f} s CPU), "
                  f"{r['accepted'] / r['seconds']:>9,.0f} events/s, ivt {r['ivt']:,}, "
                  f"country {r['with_country']:,}, device {r['with_device']:,}")  # fmt: skip
            db.unlink()
    shutil.rmtree(work)
    off, on = min(results["off"]), min(results["on"])
    print(f"best of {args.repeat}: off {off:.2f} s, on {on:.2f} s, "
          f"enrichment adds {100 * (on - off) / off:.0f} % (target <= 40 %)")  # fmt: skip
    # CPU seconds (all threads) move less than wall time when others share the machine.
    c_off, c_on = min(cpu["off"]), min(cpu["on"])
    print(f"CPU, best of {args.repeat}: off {c_off:.2f} s, on {c_on:.2f} s, "
          f"enrichment adds {100 * (c_on - c_off) / c_off:.0f} %, "
          f"{(c_on - c_off) / args.rows * 1e6:.2f} CPU s per 1 M rows")  # fmt: skip


if __name__ == "__main__":
    main()
