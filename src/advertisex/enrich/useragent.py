"""Device, OS and browser from the user agent: ua-parser with the uap-core rules, cached."""

from __future__ import annotations

import re
from dataclasses import dataclass
from importlib.metadata import version

import pyarrow as pa
import pyarrow.compute as pc
import ua_parser

UA_SCHEMA = pa.schema(
    [
        ("user_agent", pa.string()),
        ("device_type", pa.string()),
        ("os", pa.string()),
        ("browser", pa.string()),
        ("is_bot", pa.bool_()),
    ]
)
DEVICE_TYPES = ("desktop", "mobile", "tablet", "ctv", "bot", "other")
# What an answer depends on: the uap-core snapshot and the rules of `classify_many` below (bump
# the second part when they change). Answers kept in a store carry it.
RULES = f"uap-core {version('ua-parser-builtins')}; advertisex 1"

# Automation that uap-core names as a browser rather than a spider.
_BOT_FAMILIES = frozenset(
    {
        "HeadlessChrome",
        "PhantomJS",
        "Python Requests",
        "Python-urllib",
        "curl",
        "Wget",
        "Go-http-client",
        "Apache-HttpClient",
        "Java",
        "Scrapy",
        "Puppeteer",
        "Selenium",
    }
)
_BOT = re.compile(r"bot\b|crawl|spider|slurp|headless|scrape|python-|curl/|wget/", re.I)
_CTV = re.compile(
    r"smart-?tv|hbbtv|appletv|apple tv|roku|crkey|\bAFT[A-Z]|bravia|web0s|netcast|"
    r"tizen.*\btv\b|googletv|android ?tv|playstation|xbox|nintendo|firetv|tvos",
    re.I,
)
_TABLET = re.compile(r"ipad|tablet|kindle|silk/|playbook|\bSM-[TPX]\d|\bTB-|nexus (7|9|10)", re.I)
_DESKTOP_OS = frozenset(
    {
        "Windows",
        "Mac OS X",
        "Linux",
        "Ubuntu",
        "Chrome OS",
        "Fedora",
        "Debian",
        "FreeBSD",
        "OpenBSD",
        "NetBSD",
        "Solaris",
        "Mint",
        "Arch Linux",
        "Gentoo",
        "Red Hat",
        "SUSE",
    }
)
_MOBILE_OS = frozenset(
    {"iOS", "Android", "Windows Phone", "BlackBerry OS", "KaiOS", "Symbian OS", "Firefox OS"}
)


@dataclass(frozen=True)
class Parsed:
    """ua-parser's answer for one user agent (None where it has none)."""

    browser: str | None
    browser_major: str | None
    browser_minor: str | None
    browser_patch: str | None
    os: str | None
    os_major: str | None
    os_minor: str | None
    os_patch: str | None
    os_patch_minor: str | None
    device: str | None
    brand: str | None
    model: str | None


def parse(ua: str) -> Parsed:
    """The full parse of one user agent (uap-core's fields)."""
    r = ua_parser.parse(ua)
    b, o, d = r.user_agent, r.os, r.device
    return Parsed(
        browser=b.family if b else "Other",
        browser_major=b.major if b else None,
        browser_minor=b.minor if b else None,
        browser_patch=b.patch if b else None,
        os=o.family if o else "Other",
        os_major=o.major if o else None,
        os_minor=o.minor if o else None,
        os_patch=o.patch if o else None,
        os_patch_minor=o.patch_minor if o else None,
        device=d.family if d else "Other",
        brand=d.brand if d else None,
        model=d.model if d else None,
    )


def classify(ua: str) -> tuple[str, str | None, str | None, bool]:
    """(device_type, os family, browser family, is_bot) for one user agent."""
    return classify_many(pa.array([ua], pa.string()))[0]


def classify_many(uas: pa.Array) -> list[tuple[str, str | None, str | None, bool]]:
    """(device_type, os family, browser family, is_bot) for each user agent of `uas` (text).

    uap-core's rules run once per agent (ua-parser); our own patterns run over all of them at
    once (Arrow's RE2, linear time; Python's backtracking `re` cost more than the parse).
    """

    def matches(rx: re.Pattern[str]) -> list[bool]:
        found = pc.match_substring_regex(uas, rx.pattern, ignore_case=True)
        return [bool(m) for m in found.to_pylist()]

    bots, ctvs, tablets = matches(_BOT), matches(_CTV), matches(_TABLET)
    mobile_word = [bool(m) for m in pc.match_substring(uas, "mobile", ignore_case=True).to_pylist()]
    out = []
    for ua, bot_word, ctv, tablet_word, mobile in zip(
        uas.to_pylist(), bots, ctvs, tablets, mobile_word, strict=True
    ):
        p = parse(ua)
        os = p.os if p.os != "Other" else None
        browser = p.browser if p.browser != "Other" else None
        bot = p.device == "Spider" or p.browser in _BOT_FAMILIES or bot_word
        if bot:
            kind = "bot"
        elif ctv:
            kind = "ctv"
        elif (
            p.device in ("iPad", "Kindle", "Generic Tablet")
            or (p.brand or "").endswith("Tablet")
            or tablet_word
            or (os == "Android" and not mobile and p.device != "Other")
        ):
            kind = "tablet"
        elif os in _MOBILE_OS or p.device in ("iPhone", "iPod", "Generic Smartphone"):
            kind = "mobile"
        elif os in _DESKTOP_OS or (os and os.startswith("Windows")):
            kind = "desktop"
        else:
            kind = "other"
        out.append((kind, os, browser, bot))
    return out


class UserAgents:
    """Classifies user agents, each distinct one parsed once per process."""

    def __init__(self, cache_limit: int = 200_000) -> None:
        self._cache: dict[str, tuple[str, str | None, str | None, bool]] = {}
        self._limit = cache_limit

    def unseen(self, uas: pa.Array | pa.ChunkedArray) -> pa.Array:
        """The agents of `uas` this process has no answer for yet."""
        cache = self._cache
        return pa.array([ua for ua in uas.to_pylist() if ua not in cache], pa.string())

    def remember(self, answers: pa.Table) -> None:
        """Take answers (UA_SCHEMA) made before, by another process."""
        rows = zip(*(answers[f.name].to_pylist() for f in UA_SCHEMA), strict=True)
        self._cache.update((ua, tuple(rest)) for ua, *rest in rows)

    def lookup(self, uas: pa.Array | pa.ChunkedArray) -> pa.Table:
        """One row per distinct user agent in `uas`: its device type, OS, browser, bot flag."""
        values = uas.to_pylist()
        cache = self._cache
        if len(cache) + len(values) > self._limit:
            cache.clear()
        new = [ua for ua in values if ua not in cache]
        if new:
            cache.update(zip(new, classify_many(pa.array(new, pa.string())), strict=True))
        rows = [cache[ua] for ua in values]
        cols = list(zip(*rows, strict=True)) if rows else [()] * 4
        return pa.Table.from_arrays(
            [pa.array(values, pa.string())]
            + [pa.array(c, f.type) for c, f in zip(cols, list(UA_SCHEMA)[1:], strict=True)],
            schema=UA_SCHEMA,
        )
