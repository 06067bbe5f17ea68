"""The read-side views behind the dashboard's data-quality panel, on a real DuckDB store."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from advertisex.analytics.overview import source_health
from advertisex.config import Settings
from advertisex.store import Store
from tests.conftest import ingest


def _impressions(path: Path, times: dict[str, datetime]) -> Path:
    lines = (
        json.dumps(
            {
                "impression_id": i,
                "creative_id": 1,
                "user_id": 7,
                "timestamp": t.strftime("%Y-%m-%d %H:%M:%S"),
                "website": "example.com",
            }
        )
        for i, t in times.items()
    )
    path.write_text("\n".join(lines) + "\n")
    return path


def test_late_events_are_counted_among_the_arrivals_of_the_window(
    store: Store, settings: Settings, tmp_path: Path
) -> None:
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    times = {
        **{f"hour-late-{n}": now - timedelta(hours=1) for n in range(3)},
        **{f"on-time-{n}": now - timedelta(seconds=60) for n in range(2)},
        **{f"old-{n}": now - timedelta(days=3) for n in range(4)},
    }
    report = ingest(store, settings, _impressions(tmp_path / "imp.ndjson", times))
    assert report.sources["impressions"].accepted == 9
    # The old ones arrived two days ago (late too, but before a one-day window).
    store.con.execute(
        "UPDATE impressions SET ingested_at = ?::TIMESTAMP - INTERVAL 2 DAY "
        "WHERE event_id LIKE 'old-%'",
        [now],
    )

    def late(window_hours: float) -> dict[str, int]:
        rows = source_health(store.con, now, settings.late_seconds, window_hours * 3600)
        return {r["source"]: r["late_events"] for r in rows}

    assert late(24) == {"impressions": 3, "clicks_conversions": 0, "bid_requests": 0}
    assert late(24 * 4)["impressions"] == 7
    rows = {r["source"]: r for r in source_health(store.con, now, settings.late_seconds, 3600)}
    imp = rows["impressions"]
    assert imp["events"] == imp["accepted"] == imp["received"] == 9
    assert imp["late_events"] == 3
    assert imp["freshness_seconds"] == 60  # the newest event, whenever it arrived
