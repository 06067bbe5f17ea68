"""Each check fails on the fault it is for and passes on clean traffic."""

from __future__ import annotations

from datetime import timedelta

import pytest

from advertisex.config import Settings
from advertisex.quality import Finding, run_checks
from tests.quality.conftest import AS_OF, WINDOW, WINDOW_START, Events, daily, spread


def _find(findings: list[Finding], check: str, source: str = "", subject: str = "") -> Finding:
    hits = [f for f in findings if (f.check, f.source, f.subject) == (check, source, subject)]
    assert len(hits) == 1, f"{check}/{source}/{subject}: {hits}"
    return hits[0]


def test_freshness_fails_when_a_source_has_gone_quiet(events: Events, settings: Settings) -> None:
    events.impressions(spread(AS_OF - timedelta(hours=2), timedelta(minutes=100), 50))
    events.arrive()
    stale = _find(run_checks(events.store.con, settings, AS_OF), "freshness", "impressions")
    assert stale.failed and stale.severity == "critical"
    assert 1200 <= stale.value <= 1330  # the newest event is ~20 minutes old
    assert stale.threshold == settings.freshness_max_seconds

    events.impressions([AS_OF - timedelta(minutes=1)])
    events.arrive()
    fresh = _find(run_checks(events.store.con, settings, AS_OF), "freshness", "impressions")
    assert not fresh.failed and fresh.value < 120


@pytest.mark.parametrize(("usual", "judged"), [(2, False), (20, True)])
def test_freshness_is_not_judged_where_silence_is_usual(
    events: Events, settings: Settings, usual: int, judged: bool
) -> None:
    span = timedelta(seconds=settings.freshness_max_seconds)
    history = []
    for d in range(4, 0, -1):
        history += spread(AS_OF - span - timedelta(days=d), span, usual)
    events.impressions([*history, AS_OF - timedelta(minutes=20)])
    events.arrive()
    stale = _find(run_checks(events.store.con, settings, AS_OF), "freshness", "impressions")
    assert stale.value is not None and stale.value >= 1200
    assert stale.failed is judged


def test_checks_see_only_what_had_arrived(events: Events, settings: Settings) -> None:
    events.impressions(spread(AS_OF - timedelta(minutes=2), timedelta(minutes=1), 60))
    events.arrive(timedelta(minutes=30))  # it arrives 29 minutes after AS_OF
    findings = run_checks(events.store.con, settings, AS_OF)
    assert not [f for f in findings if f.source == "impressions" and f.check == "freshness"]
    later = run_checks(events.store.con, settings, AS_OF + timedelta(minutes=31))
    assert _find(later, "late_rate", "impressions").failed
    assert _find(later, "delay_p95", "impressions").failed


def test_volume_drop_against_the_seasonal_baseline(events: Events, settings: Settings) -> None:
    events.impressions(daily(100, 5, today=15))
    events.arrive()
    volume = _find(run_checks(events.store.con, settings, AS_OF), "volume", "impressions")
    assert volume.failed
    assert volume.value == 15 and volume.baseline == 100
    assert volume.threshold is not None and 15 < volume.threshold < 100


def test_volume_spike_fails_and_normal_noise_passes(events: Events, settings: Settings) -> None:
    history = []
    for d, n in zip(range(5, 0, -1), (95, 104, 99, 108, 97), strict=True):
        history += spread(WINDOW_START - timedelta(days=d), WINDOW, n)
    events.impressions(history + spread(WINDOW_START, WINDOW, 110))
    events.arrive()
    assert not _find(run_checks(events.store.con, settings, AS_OF), "volume", "impressions").failed
    events.impressions(spread(WINDOW_START, WINDOW, 300))
    events.arrive()
    assert _find(run_checks(events.store.con, settings, AS_OF), "volume", "impressions").failed


def test_band_checks_wait_for_the_warm_up(events: Events, settings: Settings) -> None:
    events.impressions(daily(100, 2, today=0))  # two days of history: warm-up is three
    events.arrive()
    volume = _find(run_checks(events.store.con, settings, AS_OF), "volume", "impressions")
    assert not volume.failed and volume.value == 0 and volume.threshold is None


def test_campaign_volume_drop(events: Events, settings: Settings) -> None:
    events.impressions(daily(60, 4), campaign="steady")
    events.impressions(daily(60, 4, today=10), campaign="dropping")
    events.arrive()
    findings = run_checks(events.store.con, settings, AS_OF)
    assert _find(findings, "campaign_volume", subject="dropping").failed
    assert not _find(findings, "campaign_volume", subject="steady").failed
    assert not _find(findings, "volume", "impressions").failed  # the total moved too little


def test_ctr_tripling(events: Events, settings: Settings) -> None:
    for d in range(4, -1, -1):
        start = WINDOW_START - timedelta(days=d)
        ids = events.impressions(spread(start, WINDOW, 200), campaign="c9")
        k = 30 if d == 0 else 10  # 5 % CTR, then 15 %
        events.clicks([(start + timedelta(seconds=5 + i), "c9", ids[i]) for i in range(k)])
    events.arrive()
    ctr = _find(run_checks(events.store.con, settings, AS_OF), "ctr", subject="c9")
    assert ctr.failed
    assert ctr.value == 30 / 200 and ctr.baseline == 10 / 200


def test_reject_burst_by_reason(events: Events, settings: Settings) -> None:
    events.impressions(spread(WINDOW_START + timedelta(seconds=45), WINDOW, 40))
    good = '{"creative_id": 1, "user_id": 2, "timestamp": "2026-11-20 11:55:00", "website": "a.b"}'
    events.raw_lines([good] + ['{"impression_id": "x1", "user_id": 1,'] * 20)
    events.arrive()
    findings = run_checks(events.store.con, settings, AS_OF)
    burst = _find(findings, "reject_rate", "impressions", "malformed_json")
    assert burst.failed and burst.value == 20 / 61 and burst.n == 61  # 40 + 1 good, 20 bad
    assert _find(findings, "reject_rate", "impressions").failed


def test_a_required_field_going_missing_is_named(events: Events, settings: Settings) -> None:
    events.impressions(spread(WINDOW_START + timedelta(seconds=45), WINDOW, 40))
    events.impressions(spread(WINDOW_START + timedelta(minutes=5), timedelta(minutes=4), 20),
                       drop=("user_id",))  # fmt: skip
    events.arrive()
    findings = run_checks(events.store.con, settings, AS_OF)
    missing = _find(findings, "reject_rate", "impressions", "missing_field:user_id")
    assert missing.failed and missing.value == 20 / 60


def test_schema_drift_raises_a_null_rate(events: Events, settings: Settings) -> None:
    events.impressions(daily(50, 4)[: 50 * 4])
    # today the producer renamed `website` to `domain_name`: site is missing from every event
    events.impressions(spread(WINDOW_START, WINDOW, 50), drop=("website",))
    events.arrive()
    findings = run_checks(events.store.con, settings, AS_OF)
    site = _find(findings, "null_rate", "impressions", "site")
    assert site.failed and site.value == 1.0 and site.baseline == 0.0
    assert not _find(findings, "null_rate", "impressions", "ip").failed


def test_clicks_without_their_impression(events: Events, settings: Settings) -> None:
    ids = events.impressions(spread(WINDOW_START, WINDOW, 60))
    events.clicks([(WINDOW_START + timedelta(seconds=60 + i), "c1", ids[i]) for i in range(30)])
    events.arrive()
    clean = run_checks(events.store.con, settings, AS_OF)
    assert not _find(clean, "click_without_impression").failed
    events.clicks(
        [(WINDOW_START + timedelta(seconds=90 + i), "c1", f"nowhere-{i}") for i in range(30)]
    )
    events.arrive()
    orphans = _find(run_checks(events.store.con, settings, AS_OF), "click_without_impression")
    assert orphans.failed and orphans.value == 0.5


def test_rates_over_too_few_events_are_not_judged(events: Events, settings: Settings) -> None:
    events.impressions([WINDOW_START + timedelta(minutes=5)])
    events.clicks([(WINDOW_START + timedelta(minutes=6), "c1", "nowhere")])
    events.arrive()
    orphans = _find(run_checks(events.store.con, settings, AS_OF), "click_without_impression")
    assert orphans.value == 1.0 and orphans.n == 1 and not orphans.failed


def test_only_runs_the_named_checks(events: Events, settings: Settings) -> None:
    events.impressions([AS_OF - timedelta(minutes=2)])
    events.arrive()
    findings = run_checks(events.store.con, settings, AS_OF, only=("freshness",))
    assert {f.check for f in findings} == {"freshness"}
