"""Cost of the schema-drift profile (field_stats) on ingest: the same impressions ingested with
`field_sample_percent` 0 (off), 1 (the default) and 100 (every record), each in a fresh store.

    python bench/profile_cost.py [--impressions 600000]

Prints, per setting, the ingest's wall and CPU seconds (all threads of the process) and the
wall and CPU seconds spent inside `profile_fields` (CPU there is the process's, so it includes
the read-ahead thread's decoding that overlaps it: an upper bound).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import time
from pathlib import Path

import advertisex.pipeline.runner as runner
from advertisex.config import load_settings
from advertisex.generate import generate
from advertisex.pipeline import Runner
from advertisex.pipeline.profile import profile_fields
from advertisex.sources.files import expand_paths
from advertisex.store import Store

HERE = Path(__file__).resolve().parent


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--impressions", type=int, default=600_000)
    ap.add_argument("--out", type=Path, default=HERE / "out" / "profile_cost")
    args = ap.parse_args()
    data = args.out / "input"
    generate(data, impressions=args.impressions, days=1, seed=3, faults=False,
             start=dt.date(2026, 11, 1))  # fmt: skip
    spent = [0.0, 0.0]

    def timed(*a: object, **k: object) -> None:
        wall, cpu = time.perf_counter(), time.process_time()
        profile_fields(*a, **k)  # type: ignore[arg-type]
        spent[0] += time.perf_counter() - wall
        spent[1] += time.process_time() - cpu

    runner.profile_fields = timed  # type: ignore[assignment]
    for percent in (0.0, 1.0, 100.0):
        db = args.out / f"store_{percent:g}.duckdb"
        db.unlink(missing_ok=True)
        settings = load_settings(db=db, field_sample_percent=percent, quality_after_ingest=False)
        spent[:] = [0.0, 0.0]
        with Store.open(settings) as store:
            wall, cpu = time.perf_counter(), time.process_time()
            report = Runner(store, settings).ingest_paths(expand_paths([str(data / "data")]))
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        accepted = sum(c.accepted for c in report.sources.values())
        print(
            f"field_sample_percent={percent:g}: {accepted:,} events; ingest {wall:.1f} s wall, "
            f"{cpu:.1f} s CPU; profile {spent[0]:.2f} s wall, {spent[1]:.2f} s CPU "
            f"({spent[1] / cpu:.1%} of the CPU); load average {os.getloadavg()[0]:.1f}"
        )


if __name__ == "__main__":
    main()
