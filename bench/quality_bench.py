"""Detection benchmark: labelled incidents in simulated days, replayed through the checks.

    python bench/quality_bench.py [--impressions 400000 --days 7 --seed 11]

Generates a data set with one incident of each kind (`generate(..., incidents=True)`, faults
off so the only anomalies are the labelled ones), ingests it, stamps simulated arrival times
(see advertisex.quality.evaluate), then evaluates every check as of many moments: every
15 minutes from the end of the warm-up to the end of the data, and every 2.5 minutes from
10 minutes before to 30 minutes after each incident's start. Prints, per incident kind,
whether a related check failed and how long after the start (event time), then the failure
episodes outside every incident (false alerts) per scanned day, with wall and CPU seconds
(all threads) and the load average.

The batch profiles (field_stats) cover every record instead of the default 1 %: this data set's
batches are whole files spanning up to a day of event time (~400 impressions per 10 minutes),
while live traffic this thin comes in small batches, of which at least 100 records are profiled.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

from advertisex.config import load_settings
from advertisex.enrich import load_creatives
from advertisex.generate import generate
from advertisex.generate._incidents import WARMUP_DAYS
from advertisex.pipeline import Runner
from advertisex.quality.evaluate import (
    evaluation_times,
    from_epoch,
    replay,
    score,
    stamp_arrivals,
)
from advertisex.sources.files import expand_paths
from advertisex.store import Store

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--impressions", type=int, default=400_000)
    ap.add_argument("--days", type=int, default=7)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "quality")
    args = ap.parse_args()

    start = date(2026, 11, 1)
    db = args.out / "store.duckdb"
    args.out.mkdir(parents=True, exist_ok=True)
    db.unlink(missing_ok=True)
    t0, c0 = time.perf_counter(), time.process_time()
    truth = generate(
        args.out / "input",
        impressions=args.impressions,
        days=args.days,
        seed=args.seed,
        faults=False,
        incidents=True,
        start=start,
        clicks=args.impressions // 5,
    )
    # This generator's bid log covers about a fifth of the impressions: tell the check so,
    # as a deployment with a sampled bid log would.
    settings = load_settings(db=db, impression_without_bid_rate_max=0.95, field_sample_percent=100)
    with Store.open(settings) as store:
        load_creatives(store, args.out / "input" / "dims" / "creatives.csv")
        Runner(store, settings).ingest_paths(expand_paths([str(args.out / "input" / "data")]))
        t1, c1 = time.perf_counter(), time.process_time()
        stamp_arrivals(store.con, truth["incidents"])
        # from the clean day after the warm-up to the end of the data
        scan_from = from_epoch(truth["incidents"][0]["start"]).replace(hour=0) - timedelta(days=1)
        scan_to = scan_from + timedelta(days=args.days - WARMUP_DAYS)
        times = set(evaluation_times(scan_from, scan_to, timedelta(minutes=15)))
        for inc in truth["incidents"]:
            s = from_epoch(inc["start"])
            times |= set(
                evaluation_times(
                    s - timedelta(minutes=10), s + timedelta(minutes=30), timedelta(minutes=2.5)
                )
            )
        timeline = replay(store.con, settings, sorted(times))
        t2, c2 = time.perf_counter(), time.process_time()
    detections, false = score(truth["incidents"], timeline)
    clean_days = args.days - WARMUP_DAYS
    print(
        f"data: {args.impressions:,} impressions over {args.days} days (seed {args.seed}); "
        f"generate+ingest {t1 - t0:.0f} s wall, {c1 - c0:.0f} s CPU; {len(timeline)} "
        f"evaluations in {t2 - t1:.0f} s wall, {c2 - c1:.0f} s CPU "
        f"({(t2 - t1) / len(timeline):.2f} s wall each); load average {os.getloadavg()[0]:.1f}"
    )
    print("\n| incident | detected | related checks failing then | minutes after start |")
    print("|---|---|---|---:|")
    for d in detections:
        minutes = "-" if d.delay_minutes is None else f"{d.delay_minutes:.1f}"
        checks = ", ".join(d.checks) or "-"
        print(f"| {d.kind} | {'yes' if d.detected_at else 'no'} | {checks} | {minutes} |")
    per_day = Counter(t.date() for t, _ in false)
    print(
        f"\nfalse alerts (failure episodes outside every incident and its hour after): "
        f"{len(false)} over {clean_days} scanned days = {len(false) / clean_days:.2f} per day; "
        f"worst day {max(per_day.values(), default=0)}"
    )
    for day in (scan_from.date() + timedelta(days=k) for k in range(clean_days)):
        print(f"  {day}: {per_day.get(day, 0)}")
    for t, f in false:
        print(f"  {t:%Y-%m-%d %H:%M} {f.summary}")


if __name__ == "__main__":
    main()
