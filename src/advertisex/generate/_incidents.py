"""Labelled incidents injected into otherwise clean traffic, for proving the quality checks.

One incident of each kind, at busy hours from day `WARMUP_DAYS + 1` on (the checks' seasonal
baselines need the days before), none overlapping. Rows an incident removes are taken out of
the generator's own files; rows it changes or adds go to files of its own
(`*_incident_<kind>.*`). `truth.json` lists every incident with its kind, source, campaign and
event-time span; `late_clicks` does not change any file: its clicks arrive 30 minutes late,
which a replay of the data set applies when it stamps arrival times.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from advertisex.generate._catalog import Catalog
from advertisex.generate._clicks import CLICK, Events
from advertisex.generate._clock import DAY, Window, utc_text
from advertisex.generate._ids import IdKind, uuids
from advertisex.generate._impressions import Impressions, _encode, _records

WARMUP_DAYS = 3
# Start hours (UTC) of the incidents of a day, and the kinds in the order they are placed.
_HOURS = (9, 14, 19)
KINDS = (
    "silent_source",
    "volume_drop",
    "ctr_triple",
    "late_clicks",
    "malformed_burst",
    "schema_change",
    "bot_burst",
)
_SPAN = {
    "silent_source": 3600,
    "volume_drop": 7200,
    "ctr_triple": 7200,
    "late_clicks": 3600,
    "malformed_burst": 600,
    "schema_change": 3600,
    "bot_burst": 1800,
}
LATE_CLICKS_DELAY = 1800
_BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
_ID_BASE = 900_000_000  # incident ids start here, far from the generator's own


@dataclass(frozen=True)
class Incident:
    kind: str
    source: str
    start: int  # epoch seconds, event time
    end: int
    campaign: str | None = None
    arrival_delay: int = 0  # seconds its events arrive after their event time

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def min_days() -> int:
    """Days a data set needs to hold every incident after the warm-up and a clean day."""
    return WARMUP_DAYS + 1 + -(-len(KINDS) // len(_HOURS))


def plan(window: Window, imps: Impressions, catalog: Catalog) -> list[Incident]:
    """When and on what each incident happens."""
    by_campaign = np.bincount(imps.campaign, minlength=len(catalog.campaign_ids))
    top = np.argsort(-by_campaign)
    busiest, second = (str(catalog.campaign_ids[c]) for c in top[:2])
    out = []
    for i, kind in enumerate(KINDS):
        day = WARMUP_DAYS + 1 + i // len(_HOURS)
        start = window.start_s + day * DAY + _HOURS[i % len(_HOURS)] * 3600
        source = {"late_clicks": "clicks_conversions", "ctr_triple": "clicks_conversions"}.get(
            kind, "impressions"
        )
        campaign = {"volume_drop": second, "ctr_triple": busiest}.get(kind)
        delay = LATE_CLICKS_DELAY if kind == "late_clicks" else 0
        out.append(Incident(kind, source, start, start + _SPAN[kind], campaign, delay))
    return out


def _during(ts: NDArray[np.int64], inc: Incident) -> NDArray[np.bool_]:
    return (ts >= inc.start) & (ts < inc.end)


def _of(campaigns: NDArray[np.int64], catalog: Catalog, campaign: str | None) -> NDArray[np.bool_]:
    ids: NDArray[np.str_] = catalog.campaign_ids[campaigns].astype(str)
    return np.asarray(ids == campaign, dtype=np.bool_)


def take_out(
    rng: np.random.Generator, imps: Impressions, catalog: Catalog, incidents: list[Incident]
) -> tuple[Impressions, dict[str, NDArray[np.int64]]]:
    """The impressions without the rows incidents remove or rewrite; the rewritten rows by kind."""
    row_file = imps.row_file.copy()
    taken: dict[str, NDArray[np.int64]] = {}
    regular = imps.regular
    for inc in incidents:
        rows = _during(imps.ts, inc) & regular
        if inc.kind == "silent_source":  # every producer, the seed-shape one too
            row_file[_during(imps.ts, inc)] = -1
        elif inc.kind == "volume_drop":
            mine = rows & _of(imps.campaign, catalog, inc.campaign)
            row_file[mine & (rng.random(len(rows)) < 0.8)] = -1
        elif inc.kind in ("malformed_burst", "schema_change"):
            taken[inc.kind] = np.flatnonzero(rows)
            row_file[rows] = -1
    return replace(imps, row_file=row_file), taken


def write(
    rng: np.random.Generator,
    incidents: list[Incident],
    imps: Impressions,
    events: Events,
    catalog: Catalog,
    window: Window,
    taken: dict[str, NDArray[np.int64]],
    folders: dict[str, Path],
) -> dict[str, dict[str, int]]:
    """Write the incidents' own files; return what each adds to its source, by tag."""
    records = _records(imps, catalog, window)
    added: dict[str, dict[str, int]] = {"impressions": {}, "clicks_conversions": {}}
    for inc in incidents:
        if inc.kind == "malformed_burst":
            rows = taken[inc.kind]
            good = _encode(records[rows])
            bad = pl.Series(
                [s[: max(3, len(s) // 2)] for s in good.sample(len(rows) // 2, seed=1).to_list()]
            )
            order = np.argsort(
                np.concatenate([np.arange(len(rows)), rng.uniform(0, len(rows), len(bad))])
            )
            lines = pl.concat([good, bad]).gather(order)
            _lines(folders["impressions"] / "impressions_incident_malformed.ndjson", lines)
            _add(added["impressions"], {"valid": len(rows), "malformed_json": len(bad)})
        elif inc.kind == "schema_change":
            rows = taken[inc.kind]
            renamed = records[rows].rename({"website": "site_domain"})
            fields = tuple("site_domain" if f == "website" else f for f in records.columns)
            _lines(
                folders["impressions"] / "impressions_incident_schema.ndjson",
                _encode(renamed, fields),
            )
            _add(added["impressions"], {"valid": len(rows)})
        elif inc.kind == "bot_burst":
            normal = int(np.count_nonzero(_during(imps.ts, inc)))
            n = 3 * max(normal, 10)
            bots = records.sample(n, with_replacement=True, seed=2).with_columns(
                impression_id=uuids(rng, IdKind.IMPRESSION, _ID_BASE, n),
                user_agent=pl.lit(_BOT_UA),
                ip=pl.lit("66.249.66.1"),
                timestamp=utc_text(pl.lit(np.sort(rng.integers(inc.start, inc.end, n)))),
            )
            _lines(folders["impressions"] / "impressions_incident_bots.ndjson", _encode(bots))
            _add(added["impressions"], {"valid": n})
        elif inc.kind == "ctr_triple":
            rows = np.flatnonzero(
                _during(imps.ts, inc) & imps.regular & _of(imps.campaign, catalog, inc.campaign)
            )
            clicks = _during(events.ts, inc) & (events.kind == CLICK)
            mine = clicks & _of(events.campaign, catalog, inc.campaign)
            n = 2 * max(int(np.count_nonzero(mine)), 5)
            picked = rng.choice(rows, n) if len(rows) else np.array([], dtype=np.int64)
            frame = pl.DataFrame(
                {
                    "timestamp": pl.select(
                        utc_text(pl.lit(imps.ts[picked] + rng.integers(1, 60, len(picked))))
                    ).to_series(),
                    "user_id": catalog.user_ids[imps.user[picked]],
                    "campaign_id": catalog.campaign_ids[imps.campaign[picked]],
                    "conversion_type": "click",
                    "event_id": uuids(rng, IdKind.EVENT, _ID_BASE, len(picked)),
                    "creative_id": catalog.creative_ids[imps.creative[picked]],
                    "impression_id": imps.ids.gather(picked),
                }
            )
            frame.write_csv(folders["clicks"] / "clicks_incident_ctr.csv")
            _add(added["clicks_conversions"], {"valid": len(picked)})
    return added


def _lines(path: Path, lines: pl.Series) -> None:
    path.write_text("\n".join(lines.to_list()) + "\n")


def _add(into: dict[str, int], tags: dict[str, int]) -> None:
    for k, v in tags.items():
        into[k] = into.get(k, 0) + v
