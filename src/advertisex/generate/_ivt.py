"""Invalid traffic injected into generated data, and its truth.

Each kind the enrich stage must find is put in on purpose, by users or by clicks, so that
truth.json can say how many stored events of each kind there are:

- bot_user_agent: the catalog's bot users (known crawlers and automation tools);
- datacenter_ip: users whose IP is in 1.0.0.0/24, AS15169 (Google) in MaxMind's test ASN DB;
- missing_user_agent / missing_ip: users whose impressions and bid requests omit them;
- fast_click: clicks in the same second as their impression;
- click_flood: a dozen clicks by one user inside one calendar minute (truth: any 60 s holding
  more than the limit, as the enrich stage judges);
- and clicks on any of the impressions above carry that impression's reason.

Some people get IPs that MaxMind's test City database knows, so geo has answers to find.
Clicks are re-timed or re-pointed, never added: the counts the other truth keys hold stay
as they were drawn.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import polars as pl
from numpy.typing import NDArray

from advertisex.generate._catalog import BOT, Catalog
from advertisex.generate._impressions import Impressions

# Networks in MaxMind's GeoIP2-City-Test database: (first address as int or text, size).
_CITY_V4 = (("81.2.69.142", 2), ("2.125.160.216", 8), ("89.160.20.112", 16),
            ("216.160.83.56", 8), ("175.16.199.0", 256))  # fmt: skip
_CITY_V6 = ("2001:218::", "2001:220::", "2001:230::")
_SHARE = {"geo": 0.10, "datacenter": 0.01, "missing_ua": 0.005, "missing_ip": 0.005}
FLOOD_CLICKS = 12  # more than the default limit of 10 per user per minute


def _v4(first: str, k: NDArray[np.int64]) -> list[str]:
    a, b, c, d = (int(x) for x in first.split("."))
    base = (a << 24) | (b << 16) | (c << 8) | d
    return [f"{v >> 24}.{(v >> 16) & 255}.{(v >> 8) & 255}.{v & 255}" for v in base + k]


def adjust_users(rng: np.random.Generator, catalog: Catalog) -> tuple[Catalog, dict[str, Any]]:
    """The catalog with IVT and geo-resolvable users; returns it and each kind's user mask."""
    n = len(catalog.user_ids)
    human = catalog.user_device != BOT
    kind = np.where(human, rng.choice(5, n, p=_kind_weights()), -1)
    ip = catalog.user_ip.to_list()
    ua: list[str | None] = list(catalog.user_ua.to_list())
    for u in np.flatnonzero(kind == 1):  # geo-resolvable
        if rng.random() < 0.8:
            first, size = _CITY_V4[rng.integers(0, len(_CITY_V4))]
            ip[u] = _v4(first, np.array([rng.integers(0, size)]))[0]
        else:
            ip[u] = _CITY_V6[rng.integers(0, len(_CITY_V6))] + f"{rng.integers(1, 65535):x}"
    dc = np.flatnonzero(kind == 2)
    for u, host in zip(dc, rng.integers(1, 255, len(dc)), strict=True):
        ip[u] = f"1.0.0.{host}"
    for u in np.flatnonzero(kind == 3):
        ua[u] = None
    for u in np.flatnonzero(kind == 4):
        ip[u] = None
    adjusted = dataclasses.replace(
        catalog, user_ip=pl.Series(ip, dtype=pl.String), user_ua=pl.Series(ua, dtype=pl.String)
    )
    masks = {
        "bot_user_agent": ~human,
        "datacenter_ip": kind == 2,
        "missing_user_agent": kind == 3,
        "missing_ip": kind == 4,
    }
    return adjusted, masks


def _kind_weights() -> NDArray[np.float64]:
    w = np.array([0.0, _SHARE["geo"], _SHARE["datacenter"], _SHARE["missing_ua"],
                  _SHARE["missing_ip"]])  # fmt: skip
    w[0] = 1.0 - w.sum()
    return w


def inject_clicks(
    rng: np.random.Generator,
    imps: Impressions,
    source: NDArray[np.int64],
    click_ts: NDArray[np.int64],
    end: int,
) -> tuple[NDArray[np.int64], NDArray[np.int64]]:
    """Fast clicks and click floods among drawn clicks (same count; new times and sources)."""
    source, click_ts = source.copy(), click_ts.copy()
    n = len(source)
    if n < 20:
        return source, click_ts
    picked = rng.permutation(n)
    n_fast = max(3, n // 50)
    fast = picked[:n_fast]
    click_ts[fast] = imps.ts[source[fast]]  # the same second as the impression
    n_floods = n // 500 + (1 if n >= 60 else 0)
    spare = picked[n_fast:]
    for f in range(n_floods):
        group = spare[f * FLOOD_CLICKS : (f + 1) * FLOOD_CLICKS]
        if len(group) < FLOOD_CLICKS:
            break
        # One impression clicked a dozen times, starting on the next whole minute.
        row = source[group[0]]
        minute = (int(imps.ts[row]) // 60 + 1) * 60
        if minute + 59 >= end:
            continue
        source[group] = row
        click_ts[group] = minute + 4 * np.arange(FLOOD_CLICKS)
    return source, click_ts


def in_floods(
    user: NDArray[np.int64], ts: NDArray[np.int64], is_click: NDArray[np.bool_], limit: int
) -> NDArray[np.bool_]:
    """Clicks (of `is_click`) that lie in some 60 s (whole seconds) holding more than `limit`
    clicks of the same user: the sliding window the enrich stage applies."""
    rows = np.flatnonzero(is_click)
    rows = rows[np.lexsort((ts[rows], user[rows]))]
    key = user[rows] * (1 << 40) + ts[rows]  # by user, then time
    at = np.arange(len(key))
    starts = np.searchsorted(key, key + 60, side="left") - at > limit  # opens a flood
    before = np.concatenate([[0], np.cumsum(starts)])
    # a flood opened at most 59 s before (or at the same second)
    hit = before[np.searchsorted(key, key, side="right")] > before[np.searchsorted(key, key - 59)]
    out = np.zeros(len(ts), dtype=np.bool_)
    out[rows] = hit
    return out


def by_user(
    masks: dict[str, NDArray[np.bool_]], user: NDArray[np.int64], judged: NDArray[np.bool_]
) -> dict[str, int]:
    """Events (of `judged`, each by `user`) of each kind decided by who sent them; the first
    reason wins, in the order of `masks` (the enrich stage's order)."""
    counts = {}
    taken = np.zeros(len(user), dtype=np.bool_)
    for reason, users in masks.items():
        hit = judged & users[user] & ~taken
        taken |= hit
        counts[reason] = int(hit.sum())
    return counts


def ivt_truth(
    masks: dict[str, NDArray[np.bool_]],
    imps: Impressions,
    seen: NDArray[np.bool_],
    events: Any,
    click_kind: int,
    flood_limit: int = 10,
) -> dict[str, dict[str, int]]:
    """Stored events of each IVT kind: impressions by user, clicks by timing."""
    stored = seen & imps.regular  # the seed-shape file carries no agent or IP: not judged
    if imps.tail_file is not None:
        stored |= seen & (imps.row_file == imps.tail_file)
    imp_counts = by_user(masks, imps.user, stored)

    clicks = (events.kind == click_kind) & events.regular
    is_click = events.kind == click_kind
    fast = clicks & (events.ts < imps.ts[events.impression] + 1)
    flooded = in_floods(imps.user[events.impression], events.ts, is_click, flood_limit)
    flood = is_click & ~fast & flooded
    click_counts = {"fast_click": int(fast.sum()), "click_flood": int(flood.sum())}
    # A click names its impression (legacy rows do not) and takes that impression's reason.
    taken = fast | flood
    for reason, users in masks.items():
        hit = clicks & ~taken & users[imps.user[events.impression]]
        taken |= hit
        click_counts[reason] = int(hit.sum())
    return {"impressions": imp_counts, "clicks_conversions": click_counts}
