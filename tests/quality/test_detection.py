"""Proven detection: the generator's labelled incidents, replayed in event time, are each caught
by a related check within 15 minutes of their start, and a clean day raises at most one false
alert. (bench/quality_bench.py measures the same over every moment of a larger data set.)"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from advertisex.config import load_settings
from advertisex.enrich import load_creatives
from advertisex.generate import generate
from advertisex.generate._incidents import KINDS
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
from tests.conftest import Cli

IMPRESSIONS = 400_000  # as bench/quality_bench.py; a campaign's 80 % drop needs the volume
STEP = timedelta(minutes=5)


@pytest.fixture(scope="module")
def replayed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Store, Any]]:
    out = tmp_path_factory.mktemp("incidents")
    truth = generate(
        out / "input",
        impressions=IMPRESSIONS,
        days=7,
        seed=11,
        faults=False,
        incidents=True,
        start=date(2026, 11, 1),
        clicks=IMPRESSIONS // 5,
    )
    # the generator's bid log covers about a fifth of the impressions; its batches are whole
    # files spanning up to a day: every record is profiled, as live traffic this thin would be
    # (its batches would be small, and at least 100 records of each are profiled)
    settings = load_settings(
        db=out / "store.duckdb", impression_without_bid_rate_max=0.95, field_sample_percent=100
    )
    with Store.open(settings) as store:
        load_creatives(store, out / "input" / "dims" / "creatives.csv")
        Runner(store, settings).ingest_paths(expand_paths([str(out / "input" / "data")]))
        stamp_arrivals(store.con, truth["incidents"])
        yield truth, store, settings


@pytest.mark.slow
def test_every_incident_kind_is_detected_within_15_minutes(replayed: Any) -> None:
    truth, store, settings = replayed
    assert [i["kind"] for i in truth["incidents"]] == list(KINDS)
    times = []
    for inc in truth["incidents"]:
        start = from_epoch(inc["start"])
        times += evaluation_times(start + STEP, start + timedelta(minutes=15) + STEP, STEP)
    detections, _ = score(truth["incidents"], replay(store.con, settings, times))
    late = {
        d.kind: d.delay_minutes for d in detections if not d.delay_minutes or d.delay_minutes > 15
    }
    assert not late, f"not detected within 15 minutes: {late}"


@pytest.mark.slow
def test_each_day_after_the_warm_up_raises_at_most_one_false_alert(replayed: Any) -> None:
    truth, store, settings = replayed
    clean = from_epoch(truth["incidents"][0]["start"]).replace(hour=0) - timedelta(days=1)
    times = evaluation_times(clean, clean + timedelta(days=4), timedelta(hours=3))
    _, false = score(truth["incidents"], replay(store.con, settings, times))
    per_day = Counter(t.date() for t, _ in false)
    assert max(per_day.values(), default=0) <= 1, [f.summary for _, f in false]


def test_generate_incidents_from_the_command_line(cli: Cli, tmp_path: Path) -> None:
    too_short = cli("generate", str(tmp_path / "a"), "--days", "3", "--incidents", db=False)
    assert too_short.exit_code == 2
    assert too_short.stderr.strip() == "error: incidents need at least 7 days, got 3"
    ok = cli(
        "generate", str(tmp_path / "b"), "--days", "7", "--impressions", "5000", "--incidents",
        db=False,
    )  # fmt: skip
    assert ok.exit_code == 0
    truth = json.loads((tmp_path / "b" / "truth.json").read_text())
    assert [i["kind"] for i in truth["incidents"]] == list(KINDS)
    assert all(i["start"] < i["end"] for i in truth["incidents"])
    written = sorted(p.name for p in (tmp_path / "b" / "data").rglob("*incident*"))
    assert written == [
        "clicks_incident_ctr.csv",
        "impressions_incident_bots.ndjson",
        "impressions_incident_malformed.ndjson",
        "impressions_incident_schema.ndjson",
    ]
    # the clean traffic keeps one mix of shapes: the seed-shape rows come from every day, not
    # from the last day only (a change of shape that no incident labels)
    data = tmp_path / "b" / "data"
    assert (data / "clicks" / "clicks_all_days_legacy.csv").is_file()
    legacy = (data / "impressions" / "impressions_all_days_legacy.ndjson").read_text()
    assert len({json.loads(line)["timestamp"][:10] for line in legacy.splitlines()}) >= 4
    # the truth still reconciles with what is written
    for s in truth["sources"].values():
        assert s["received"] == s["valid"] + s["duplicates"] + sum(s["rejected_by_reason"].values())
