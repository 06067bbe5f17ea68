"""The advertising world traffic is drawn from: advertisers, campaigns, creatives, users, sites."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl
from numpy.typing import NDArray

from advertisex.generate._clock import draw

_WIN = "Mozilla/5.0 (Windows NT 10.0; Win64; x64)"
_MAC = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)"
_BLINK = "AppleWebKit/537.36 (KHTML, like Gecko)"
_WEBKIT = "AppleWebKit/605.1.15 (KHTML, like Gecko)"
_IPHONE = "Mozilla/5.0 (iPhone; CPU iPhone OS"
_IPAD = "Mozilla/5.0 (iPad; CPU OS"
_ANDROID = "Mozilla/5.0 (Linux; Android"
DESKTOP_UAS = (
    f"{_WIN} {_BLINK} Chrome/124.0.0.0 Safari/537.36",
    f"{_WIN} {_BLINK} Chrome/123.0.0.0 Safari/537.36 Edg/123.0.2420.81",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    f"{_MAC} {_WEBKIT} Version/17.4.1 Safari/605.1.15",
    f"{_MAC} {_BLINK} Chrome/124.0.0.0 Safari/537.36",
    f"Mozilla/5.0 (X11; Linux x86_64) {_BLINK} Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:125.0) Gecko/20100101 Firefox/125.0",
    f"{_WIN} {_BLINK} Chrome/122.0.0.0 Safari/537.36 OPR/108.0.0.0",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14.4; rv:125.0) Gecko/20100101 Firefox/125.0",
    f"{_WIN} {_BLINK} Chrome/120.0.0.0 Safari/537.36",
)
MOBILE_UAS = (
    f"{_IPHONE} 17_4_1 like Mac OS X) {_WEBKIT} Version/17.4.1 Mobile/15E148 Safari/604.1",
    f"{_IPHONE} 16_6 like Mac OS X) {_WEBKIT} Version/16.6 Mobile/15E148 Safari/604.1",
    f"{_IPHONE} 17_4 like Mac OS X) {_WEBKIT} CriOS/124.0.6367.88 Mobile/15E148 Safari/604.1",
    f"{_ANDROID} 14; SM-S918B) {_BLINK} Chrome/124.0.6367.82 Mobile Safari/537.36",
    f"{_ANDROID} 14; Pixel 8) {_BLINK} Chrome/124.0.6367.82 Mobile Safari/537.36",
    f"{_ANDROID} 13; SM-A536B) {_BLINK} Chrome/123.0.6312.118 Mobile Safari/537.36",
    f"{_ANDROID} 10; K) {_BLINK} Chrome/124.0.0.0 Mobile Safari/537.36",
    f"{_ANDROID} 13; SAMSUNG SM-G991B) {_BLINK} SamsungBrowser/24.0 Chrome/117.0.0.0 "
    "Mobile Safari/537.36",
    "Mozilla/5.0 (Android 14; Mobile; rv:125.0) Gecko/125.0 Firefox/125.0",
    f"{_ANDROID} 12; Redmi Note 11) {_BLINK} Chrome/123.0.0.0 Mobile Safari/537.36",
    f"{_IPHONE} 17_3_1 like Mac OS X) {_WEBKIT} Mobile/15E148 [FBAN/FBIOS;FBAV/458.0.0.40.95]",
)
TABLET_UAS = (
    f"{_IPAD} 17_4 like Mac OS X) {_WEBKIT} Version/17.4 Mobile/15E148 Safari/604.1",
    f"{_IPAD} 16_7 like Mac OS X) {_WEBKIT} Version/16.6 Mobile/15E148 Safari/604.1",
    f"{_ANDROID} 13; SM-X200) {_BLINK} Chrome/124.0.0.0 Safari/537.36",
    f"{_ANDROID} 11; Lenovo TB-J606F) {_BLINK} Chrome/122.0.0.0 Safari/537.36",
    f"{_ANDROID} 9; KFTRWI) {_BLINK} Silk/124.2.1 like Chrome/124.0.6367.82 Safari/537.36",
)
BOT_UAS = (
    "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
    "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
    "Mozilla/5.0 (compatible; AhrefsBot/7.0; +http://ahrefs.com/robot/)",
    "Mozilla/5.0 (compatible; SemrushBot/7~bl; +http://www.semrush.com/bot.html)",
    "Mozilla/5.0 (compatible; YandexBot/3.0; +http://yandex.com/bots)",
    f"Mozilla/5.0 (X11; Linux x86_64) {_BLINK} HeadlessChrome/124.0.6367.60 Safari/537.36",
    "python-requests/2.31.0",
    "curl/8.5.0",
)

# Device classes, in the order of the UA lists above.
DESKTOP, MOBILE, TABLET, BOT = 0, 1, 2, 3
_DEVICE_SHARE = np.array([0.40, 0.50, 0.08, 0.02])
_UA_LISTS = (DESKTOP_UAS, MOBILE_UAS, TABLET_UAS, BOT_UAS)

# (alpha-2, alpha-3, share of users)
COUNTRIES = (
    ("US", "USA", 0.35), ("GB", "GBR", 0.12), ("DE", "DEU", 0.10), ("FR", "FRA", 0.08),
    ("CA", "CAN", 0.06), ("ES", "ESP", 0.05), ("IT", "ITA", 0.05), ("NL", "NLD", 0.04),
    ("AU", "AUS", 0.04), ("BR", "BRA", 0.04), ("IN", "IND", 0.04), ("JP", "JPN", 0.03),
)  # fmt: skip

# First octets of public ranges: consumer ISPs for people, cloud providers for bots
# (so data-centre detection has something true to find).
_ISP_OCTETS = np.array([24, 31, 37, 46, 50, 62, 66, 67, 68, 71, 73, 76, 77, 78, 79, 80, 81,
                        82, 83, 84, 85, 86, 87, 88, 89, 90, 91, 92, 93, 94, 95, 98, 99, 108,
                        109, 151, 173, 174, 176, 178, 185, 188, 193, 194, 195, 212, 213,
                        217])  # fmt: skip
_CLOUD_OCTETS = np.array([3, 13, 18, 20, 34, 35, 52, 54])

_SITE_HEADS = ("daily", "metro", "tech", "sport", "city", "global", "family", "money", "travel",
               "food", "auto", "style", "health", "game", "movie", "science", "home", "weather",
               "music", "pet")  # fmt: skip
_SITE_TAILS = ("news", "times", "hub", "post", "review", "world", "planet", "insider", "guide",
               "today")  # fmt: skip
_TLDS = (("com", 0.60), ("co.uk", 0.12), ("net", 0.08), ("de", 0.08), ("fr", 0.06), ("io", 0.06))

_BRAND_HEADS = ("Acme", "Blue", "North", "Bright", "Urban", "Green", "Silver", "Nova", "Peak",
                "Swift", "Lumen", "Orbit", "Cedar", "Harbor", "Atlas")  # fmt: skip
_BRAND_TAILS = ("Shoes", "Bank", "Motors", "Travel", "Foods", "Telecom", "Games", "Fitness",
                "Home", "Beauty")  # fmt: skip
_THEMES = ("Winter Sale", "Brand Awareness", "Retargeting", "Black Friday", "App Install",
           "Spring Launch", "Holiday Promo", "Lead Gen", "Summer Deals",
           "Back to School")  # fmt: skip
_FORMATS = ("300x250", "728x90", "160x600", "320x50", "300x600", "970x250", "video 15s")

CONVERSION_TYPES = ("signup", "purchase", "install", "lead", "add_to_cart")
_CURRENCIES = (("USD", 0.7), ("EUR", 0.2), ("GBP", 0.1))


@dataclass(frozen=True)
class Catalog:
    """Everything an event is drawn from; arrays are indexed by position, not by id."""

    creatives: pl.DataFrame
    creative_ids: NDArray[np.int64]
    creative_campaign: NDArray[np.int64]
    creative_weight: NDArray[np.float64]
    campaign_ids: NDArray[np.int64]
    campaign_ctr: NDArray[np.float64]
    campaign_cvr: NDArray[np.float64]
    campaign_cpm: NDArray[np.float64]
    campaign_goal: NDArray[np.int64]
    campaign_currency: NDArray[np.int64]
    user_ids: NDArray[np.int64]
    user_weight: NDArray[np.float64]
    user_device: NDArray[np.int64]
    user_country: NDArray[np.int64]
    user_ua: pl.Series
    user_ip: pl.Series
    hosts: pl.Series
    site_count: int
    site_weight: NDArray[np.float64]
    site_has_mobile: NDArray[np.bool_]

    @property
    def currencies(self) -> tuple[str, ...]:
        return tuple(c for c, _ in _CURRENCIES)


def zipf(rng: np.random.Generator, n: int, exponent: float) -> NDArray[np.float64]:
    """Zipf-like popularity over `n` items, shuffled so the favourite is not always item 0."""
    weights = 1.0 / np.arange(1, n + 1, dtype=np.float64) ** exponent
    return rng.permutation(weights / weights.sum())


def _clamp(value: float, low: int, high: int) -> int:
    return max(low, min(high, round(value)))


def build_catalog(rng: np.random.Generator, impressions: int, year: int) -> Catalog:
    """A world sized for `impressions`: full size (50/200/1000) from a million up."""
    scale = min(1.0, math.sqrt(impressions / 1_000_000))
    n_adv = _clamp(50 * scale, 5, 50)
    n_camp = _clamp(200 * scale, 20, 200)
    n_crea = min(1000, max(3 * n_camp, round(1000 * scale)))
    n_users = max(100, impressions // 4)
    n_sites = _clamp(200 * scale, 25, 200)

    adv_of_camp = np.concatenate(
        [rng.permutation(n_adv), draw(rng, zipf(rng, n_adv, 1.0), n_camp - n_adv)]
    )
    camp_of_crea = np.concatenate([np.arange(n_camp), rng.integers(0, n_camp, n_crea - n_camp)])
    camp_weight = zipf(rng, n_camp, 1.1)
    # Within a campaign one creative usually carries most of the delivery.
    order = np.argsort(camp_of_crea, kind="stable")
    first = np.searchsorted(camp_of_crea[order], camp_of_crea[order])
    rank = np.empty(n_crea, dtype=np.int64)
    rank[order] = np.arange(n_crea) - first
    inner = 1.0 / (rank + 1.0)
    inner /= np.bincount(camp_of_crea, inner)[camp_of_crea]
    crea_weight = camp_weight[camp_of_crea] * inner

    adv_ids = np.arange(101, 101 + n_adv, dtype=np.int64)
    camp_ids = np.arange(1001, 1001 + n_camp, dtype=np.int64)
    crea_ids = np.arange(20001, 20001 + n_crea, dtype=np.int64)
    brands = rng.choice(len(_BRAND_HEADS) * len(_BRAND_TAILS), n_adv, replace=False)
    adv_names = [
        f"{_BRAND_HEADS[b // len(_BRAND_TAILS)]} {_BRAND_TAILS[b % len(_BRAND_TAILS)]}"
        for b in brands
    ]
    themes = rng.integers(0, len(_THEMES), n_camp)
    camp_names = [
        f"{adv_names[adv_of_camp[c]]} - {_THEMES[themes[c]]} {year} #{c + 1}" for c in range(n_camp)
    ]
    formats = rng.integers(0, len(_FORMATS), n_crea)
    crea_names = [
        f"{_THEMES[themes[camp_of_crea[k]]]} {_FORMATS[formats[k]]} v{rank[k] + 1}"
        for k in range(n_crea)
    ]
    creatives = pl.DataFrame(
        {
            "creative_id": crea_ids,
            "campaign_id": camp_ids[camp_of_crea],
            "advertiser_id": adv_ids[adv_of_camp[camp_of_crea]],
            "creative_name": crea_names,
            "campaign_name": [camp_names[c] for c in camp_of_crea],
            "advertiser_name": [adv_names[a] for a in adv_of_camp[camp_of_crea]],
        }
    )

    adv_currency = draw(rng, np.array([w for _, w in _CURRENCIES]), n_adv)
    user_device = draw(rng, _DEVICE_SHARE, n_users)
    ua_counts = np.array([len(u) for u in _UA_LISTS])
    ua_first = np.concatenate([[0], np.cumsum(ua_counts)[:-1]])
    ua_index = ua_first[user_device] + (rng.random(n_users) * ua_counts[user_device]).astype(
        np.int64
    )
    all_uas = pl.Series([ua for uas in _UA_LISTS for ua in uas])
    first_octet = np.where(
        user_device == BOT,
        _CLOUD_OCTETS[rng.integers(0, len(_CLOUD_OCTETS), n_users)],
        _ISP_OCTETS[rng.integers(0, len(_ISP_OCTETS), n_users)],
    )
    octets = pl.DataFrame(
        {
            "a": first_octet,
            "b": rng.integers(0, 256, n_users),
            "c": rng.integers(0, 256, n_users),
            "d": rng.integers(1, 255, n_users),
        }
    )
    user_ip = octets.select(
        pl.concat_str([pl.col(c).cast(pl.String) for c in "abcd"], separator=".")
    ).to_series()

    combos = rng.choice(len(_SITE_HEADS) * len(_SITE_TAILS), n_sites, replace=False)
    hyphen = rng.random(n_sites) < 0.3
    tlds = draw(rng, np.array([w for _, w in _TLDS]), n_sites)
    names = [
        f"{_SITE_HEADS[c // len(_SITE_TAILS)]}{'-' if h else ''}{_SITE_TAILS[c % len(_SITE_TAILS)]}"
        f".{_TLDS[t][0]}"
        for c, h, t in zip(combos, hyphen, tlds, strict=True)
    ]
    has_mobile = rng.random(n_sites) < 0.6
    hosts = pl.Series(
        [f"www.{n}" for n in names]
        + [f"m.{n}" if m else f"www.{n}" for n, m in zip(names, has_mobile, strict=True)]
    )

    return Catalog(
        creatives=creatives,
        creative_ids=crea_ids,
        creative_campaign=camp_of_crea,
        creative_weight=crea_weight,
        campaign_ids=camp_ids,
        campaign_ctr=np.exp(rng.uniform(np.log(0.002), np.log(0.012), n_camp)),
        campaign_cvr=rng.uniform(0.02, 0.06, n_camp),
        campaign_cpm=np.exp(rng.normal(np.log(2.0), 0.4, n_camp)).round(2),
        campaign_goal=rng.integers(0, len(CONVERSION_TYPES), n_camp),
        campaign_currency=adv_currency[adv_of_camp],
        user_ids=100_001 + rng.permutation(n_users).astype(np.int64),
        user_weight=1.0 / np.arange(1, n_users + 1, dtype=np.float64) ** 0.7,
        user_device=user_device,
        user_country=draw(rng, np.array([w for _, _, w in COUNTRIES]), n_users),
        user_ua=all_uas.gather(ua_index),
        user_ip=user_ip,
        hosts=hosts,
        site_count=n_sites,
        site_weight=zipf(rng, n_sites, 1.0),
        site_has_mobile=has_mobile,
    )
