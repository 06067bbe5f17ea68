"""Invalid traffic (IVT): the reasons, and the rules that need other events (set-based SQL).

Rules on a row alone (known bots and spiders, data-centre networks, a missing user agent or
IP) are decided by the enrich stage (`pipeline/enrich.py`). The two rules below need other
events: they run as UPDATEs right after a batch's rows are inserted, in the same
transaction, bounded by the batch's event-time window, so they cost a range scan, not a pass
over the store. A row keeps the first reason it was given (fast_click, then click_flood, then
the reason of the impression it names); IVT rows are kept, never deleted.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any


class IvtReason(StrEnum):
    """Why a row is invalid traffic; NULL in `ivt_reason` means valid."""

    BOT_USER_AGENT = "bot_user_agent"  # a known bot, spider or automation tool
    DATACENTER_IP = "datacenter_ip"  # an IP in a hosting / cloud ASN
    MISSING_USER_AGENT = "missing_user_agent"  # none where the batch's source sends one
    MISSING_IP = "missing_ip"
    FAST_CLICK = "fast_click"  # a click less than ivt_fast_click_seconds after its impression
    CLICK_FLOOD = "click_flood"  # more than ivt_click_flood_per_minute clicks by one user in 60 s


def fast_clicks_sql() -> str:
    """Clicks that name an impression and come less than `seconds` after it (or before it).

    Params: seconds, clicks' time range (2), impressions' time range (2). Clicks without an
    impression_id are not judged by this rule.
    """
    return f"""
UPDATE clicks_conversions AS c SET ivt_reason = '{IvtReason.FAST_CLICK}'
FROM impressions AS i
WHERE c.impression_id = i.event_id
  AND c.event_type = 'click' AND c.ivt_reason IS NULL
  AND c.event_time < i.event_time + to_microseconds(CAST(? * 1e6 AS BIGINT))
  AND c.event_time BETWEEN ? AND ?
  AND i.event_time BETWEEN ? AND ?"""


def click_floods_sql() -> str:
    """Every click of a user that lies in some 60-second span holding more than `limit` of
    their clicks (a sliding window, not a calendar minute: a flood split 30 s / 30 s across a
    minute boundary counts).

    Two window functions over the user's clicks by time: how many clicks each one starts
    within 60 s (`starts`: more than the limit), then whether any such start lies in the 60 s
    up to a click. Clicks already stored count: the scan covers 60 s before the batch's first
    click and after its last, so spans that reach across batches are judged when their later
    part arrives, and the earlier clicks of the span are flagged too.
    Params: the window's first and last time, limit.
    """
    span = "INTERVAL 59999999 MICROSECONDS"  # up to, not including, 60 s
    return f"""
UPDATE clicks_conversions AS c SET ivt_reason = '{IvtReason.CLICK_FLOOD}'
FROM (
  SELECT event_id, user_id FROM (
    SELECT event_id, user_id,
      bool_or(starts) OVER (PARTITION BY user_id ORDER BY event_time
                            RANGE BETWEEN {span} PRECEDING AND CURRENT ROW) AS flooded
    FROM (
      SELECT event_id, user_id, event_time,
        count(*) OVER (PARTITION BY user_id ORDER BY event_time
                       RANGE BETWEEN CURRENT ROW AND {span} FOLLOWING) > $limit AS starts
      FROM clicks_conversions
      WHERE event_type = 'click'
        AND event_time BETWEEN $lo::TIMESTAMP - INTERVAL 1 MINUTE
                           AND $hi::TIMESTAMP + INTERVAL 1 MINUTE
    )
  )
  WHERE flooded
) AS f
WHERE c.event_id = f.event_id AND c.user_id = f.user_id
  AND c.event_type = 'click' AND c.ivt_reason IS NULL"""


def from_impressions_sql() -> str:
    """Clicks and conversions that name an impression take its geo and device; a click
    also takes its invalid-traffic reason when it has none of its own (a click on a bot's
    impression is a bot's click).

    Params: clicks' time range (2), impressions' time range (2).
    """
    geo = ("country", "ip_country", "region", "city", "continent", "asn", "as_org",
           "device_type", "os", "browser")  # fmt: skip
    sets = ", ".join(f"{c} = i.{c}" for c in geo)
    return f"""
UPDATE clicks_conversions AS c
SET {sets},
    ivt_reason = coalesce(c.ivt_reason, CASE WHEN c.event_type = 'click' THEN i.ivt_reason END)
FROM impressions AS i
WHERE c.impression_id = i.event_id
  AND c.country IS NULL AND c.device_type IS NULL
  AND c.event_time BETWEEN ? AND ?
  AND i.event_time BETWEEN ? AND ?"""


def after_load_statements(
    source: str,
    lo: datetime,
    hi: datetime,
    *,
    window: timedelta,
    fast_click_seconds: float,
    flood_per_minute: int,
) -> list[tuple[str, list[Any] | dict[str, Any]]]:
    """The set-based IVT statements to run after a batch of `source` with times lo..hi."""
    if source == "clicks_conversions":
        return [
            (fast_clicks_sql(), [fast_click_seconds, lo, hi, lo - window, hi + window]),
            (click_floods_sql(), {"lo": lo, "hi": hi, "limit": flood_per_minute}),
            (from_impressions_sql(), [lo, hi, lo - window, hi + window]),
        ]
    if source == "impressions":
        # Clicks stored before their impression arrived are judged now.
        return [
            (fast_clicks_sql(), [fast_click_seconds, lo - window, hi + window, lo, hi]),
            (from_impressions_sql(), [lo - window, hi + window, lo, hi]),
        ]
    return []
