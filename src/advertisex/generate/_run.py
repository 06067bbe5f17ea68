"""`generate`: write a realistic data set with injected faults and return its exact truth."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import numpy as np

from advertisex.errors import ConfigError
from advertisex.generate import _incidents
from advertisex.generate._bids import draw_bids, write_bids
from advertisex.generate._catalog import build_catalog
from advertisex.generate._clicks import CLICK, attribution, draw_events, write_events
from advertisex.generate._clock import Window
from advertisex.generate._impressions import draw_impressions, write_impressions
from advertisex.generate._ivt import adjust_users, by_user, ivt_truth
from advertisex.generate._output import Sink

# Folders under data/ and the prefix of the files this generator owns in each.
_SOURCES = {"impressions": "impressions_", "clicks": "clicks_", "bid_requests": "bid_requests_"}


def _check(name: str, value: int | None, low: int) -> None:
    if value is not None and value < low:
        raise ConfigError(f"{name} must be at least {low}, got {value}", **{name: value})


def _prepare(out: Path) -> dict[str, Path]:
    """Create the folders, removing files a previous run of the generator left there."""
    (out / "dims").mkdir(parents=True, exist_ok=True)
    folders = {}
    for folder, prefix in _SOURCES.items():
        path = out / "data" / folder
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob(f"{prefix}*"):
            stale.unlink()
        folders[folder] = path
    return folders


def generate(
    out_dir: Path,
    *,
    impressions: int,
    days: int,
    seed: int,
    faults: bool = True,
    start: dt.date | None = None,
    clicks: int | None = None,
    bid_requests: int | None = None,
    incidents: bool = False,
) -> dict[str, Any]:
    """Write a data set under `out_dir` (see docs/generator-contract.md) and return its truth.

    `impressions` distinct impressions are drawn over `days` days from `start` (default:
    `days` days before today, UTC). `clicks` fixes the number of distinct clicks plus
    conversions (default: each campaign's CTR and conversion rate decide) and
    `bid_requests` the number of distinct auctions (default: impressions // 2). Faults,
    duplicates and the cut-short gzip come on top. The same arguments give the same bytes;
    files a previous run left under `out_dir/data` are replaced. `incidents` injects one
    labelled incident of each kind of `_incidents.KINDS` (listed in the truth's "incidents").
    """
    _check("impressions", impressions, 1)
    _check("days", days, 1)
    _check("seed", seed, 0)
    _check("clicks", clicks, 0)
    _check("bid_requests", bid_requests, 0)
    if start is None:
        start = dt.datetime.now(dt.UTC).date() - dt.timedelta(days=days)
    out = Path(out_dir)
    folders = _prepare(out)
    window = Window(start, days)

    def stream(part: int) -> np.random.Generator:
        # One stream per part, so turning faults off leaves the clean data unchanged.
        return np.random.default_rng([seed, part])

    catalog, ivt_users = adjust_users(stream(8), build_catalog(stream(1), impressions, start.year))
    imps = draw_impressions(stream(2), catalog, window, impressions, steady=incidents)
    events = draw_events(stream(3), catalog, imps, window, clicks, stream(9), steady=incidents)
    auctions = impressions // 2 if bid_requests is None else bid_requests
    bids = draw_bids(stream(4), catalog, imps, window, auctions)
    planned: list[_incidents.Incident] = []
    if incidents:
        if days < _incidents.min_days():
            raise ConfigError(f"incidents need at least {_incidents.min_days()} days, got {days}")
        planned = _incidents.plan(window, imps, catalog)
        imps, taken = _incidents.take_out(stream(8), imps, catalog, planned)

    catalog.creatives.write_csv(out / "dims" / "creatives.csv")
    with Sink() as sink:
        imp_truth, seen = write_impressions(
            stream(5), imps, catalog, window, folders["impressions"], faults, sink
        )
        event_truth = write_events(
            stream(6), events, imps, catalog, folders["clicks"], faults, sink
        )
        bid_truth = write_bids(
            stream(7), bids, catalog, folders["bid_requests"], faults, f"{seed}/{start}", sink
        )
    if planned:
        added = _incidents.write(stream(9), planned, imps, events, catalog, window, taken, folders)
        imp_truth.add(added["impressions"])
        event_truth.add(added["clicks_conversions"])
        seen &= imps.row_file >= 0
    attribution(events, imps).write_parquet(out / "truth_attribution.parquet")
    legacy = [] if bids.legacy_file is None else [bids.legacy_file]

    n_campaigns = len(catalog.campaign_ids)
    per_campaign = {
        "impressions": np.bincount(imps.campaign[seen], minlength=n_campaigns),
        "clicks": np.bincount(events.campaign[events.kind == CLICK], minlength=n_campaigns),
        "conversions": np.bincount(events.campaign[events.kind != CLICK], minlength=n_campaigns),
    }
    truth: dict[str, Any] = {
        "seed": seed,
        "start": start.isoformat(),
        "days": days,
        "sources": {
            "impressions": imp_truth.as_dict(),
            "clicks_conversions": event_truth.as_dict(),
            "bid_requests": bid_truth.as_dict(),
        },
        "incidents": [i.as_dict() for i in planned],
        "campaigns": {
            str(campaign_id): {metric: int(counts[c]) for metric, counts in per_campaign.items()}
            for c, campaign_id in enumerate(catalog.campaign_ids)
        },
        # Stored events of each invalid-traffic kind the generator put in (see _ivt.py).
        "ivt": {
            **ivt_truth(ivt_users, imps, seen, events, CLICK),
            # Every bid request is stored (copies aside); the seed-shape file carries no agent
            # or IP, so it is not judged.
            "bid_requests": by_user(ivt_users, bids.user, ~np.isin(bids.row_file, legacy)),
        },
    }
    (out / "truth.json").write_text(json.dumps(truth, indent=2, sort_keys=True) + "\n")
    return truth
