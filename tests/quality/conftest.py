"""Quality fixtures: small event files with chosen event times, ingested through the runner."""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from advertisex.config import Settings
from advertisex.store import Store
from tests.conftest import ingest

AS_OF = datetime(2026, 11, 20, 12, 0)
WINDOW = timedelta(seconds=600)
GRACE = timedelta(seconds=60)
# The window the checks look at when evaluated at AS_OF with the default settings.
WINDOW_START = AS_OF - GRACE - WINDOW


@dataclass
class Events:
    """Writes small event files into a folder and ingests them through the real runner."""

    store: Store
    settings: Settings
    folder: Path
    n: int = 0

    def _file(self, suffix: str) -> Path:
        self.n += 1
        return self.folder / f"part{self.n:04d}{suffix}"

    def impressions(
        self,
        times: Iterable[datetime],
        *,
        campaign: str = "c1",
        fields: dict[str, object] | None = None,
        drop: tuple[str, ...] = (),
    ) -> list[str]:
        """One impression per time; returns their ids."""
        lines, ids = [], []
        for t in times:
            self.n += 1
            rec: dict[str, object] = {
                "impression_id": f"imp-{self.n}",
                "creative_id": 7,
                "campaign_id": campaign,
                "user_id": self.n % 50,
                "timestamp": t.isoformat(sep=" "),
                "website": "news.example.com",
                "ip": "192.0.2.1",
                "bid_request_id": f"bid-{self.n}",
                **(fields or {}),
            }
            for key in drop:
                rec.pop(key, None)
            ids.append(str(rec["impression_id"]))
            lines.append(json.dumps(rec))
        path = self._file(".ndjson")
        path.write_text("\n".join(lines) + "\n")
        ingest(self.store, self.settings, path)
        return ids

    def clicks(self, rows: Iterable[tuple[datetime, str, str | None]]) -> None:
        """Clicks as (time, campaign, impression id)."""
        out = ["timestamp,user_id,campaign_id,conversion_type,event_id,impression_id"]
        for t, campaign, imp in rows:
            self.n += 1
            when = t.isoformat(sep=" ")
            out.append(f"{when},{self.n % 50},{campaign},click,clk-{self.n},{imp or ''}")
        path = self._file(".csv")
        path.write_text("\n".join(out) + "\n")
        ingest(self.store, self.settings, path)

    def raw_lines(self, lines: list[str]) -> None:
        path = self._file(".ndjson")
        path.write_text("\n".join(lines) + "\n")
        ingest(self.store, self.settings, path)

    def arrive(self, delay: timedelta = timedelta(seconds=30)) -> None:
        """Simulated arrival: every stored row arrived `delay` after its event time (the runner
        stamps the wall clock; checks evaluated at a past AS_OF need the history's arrival),
        and the rejects and batches at AS_OF minus a minute."""
        con = self.store.con
        for table in ("impressions", "clicks_conversions", "bid_requests"):
            con.execute(
                f"UPDATE {table} SET ingested_at = event_time + to_seconds(?)",
                [delay.total_seconds()],
            )
        con.execute(
            "UPDATE field_stats SET ingested_at = minute + to_seconds(?)",
            [delay.total_seconds() + 60],  # the profile is by minute: its last event
        )
        con.execute("UPDATE rejects SET rejected_at = ?", [AS_OF - timedelta(minutes=1)])
        con.execute("UPDATE batches SET committed_at = ?", [AS_OF - timedelta(minutes=1)])


def spread(start: datetime, span: timedelta, n: int) -> list[datetime]:
    """`n` times spread evenly over [start, start + span)."""
    return [start + span * i / n for i in range(n)]


def daily(n: int, days: int, *, today: int | None = None) -> list[datetime]:
    """`n` events in the checked window on each of `days` previous days, and `today` (default
    `n`) in the checked window itself."""
    out = []
    for d in range(days, 0, -1):
        out += spread(WINDOW_START - timedelta(days=d), WINDOW, n)
    return out + spread(WINDOW_START, WINDOW, n if today is None else today)


@pytest.fixture
def events(store: Store, settings: Settings, tmp_path: Path) -> Events:
    folder = tmp_path / "in"
    folder.mkdir()
    return Events(store, settings, folder)
