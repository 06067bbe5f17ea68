"""The three sources, their canonical columns and the field aliases each accepts.

A canonical column lists the places its value may be found in an input record,
first match wins. Paths are dotted; `[0]` indexes a list. The same paths serve
JSON (as JSON paths) and Avro (as struct field access), so one mapping covers
both the seed shapes of DESIGN.md and the OpenRTB-like shape.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Column:
    """One canonical column: its name, SQL type and where to find it in a record."""

    name: str
    sql_type: str
    paths: tuple[str, ...]
    required: bool = False


@dataclass(frozen=True)
class Source:
    """An event stream: its store table, canonical columns and natural key."""

    name: str
    table: str
    columns: tuple[Column, ...]
    id_column: str
    natural_key: tuple[str, ...] = field(default_factory=tuple)

    def store_columns(self) -> list[str]:
        """The event table's columns: event_id, event_time, then the canonical fields."""
        names = ["event_id", "event_time"]
        for c in self.columns:
            if c.name in (self.id_column, "event_time"):
                continue
            names.append(f"{c.name}_micros" if c.name in MONEY else c.name)
        names += [n for n in ENRICHED if n not in names]
        return names

    def column(self, name: str) -> Column:
        for c in self.columns:
            if c.name == name:
                return c
        raise KeyError(name)


# Columns the enrich stage fills on every event table (NULL until it has an answer). An
# event that carries one of its own (a bid request's country) keeps it. `country`,
# `device_type` and `ivt_reason` are the contract others read; `ip_country` is the IP's own
# answer (it differs from `country` when the event said otherwise); `dim_issue` is
# unknown_creative or unknown_campaign.
ENRICHED = (
    "country", "device_type", "ivt_reason",
    "ip_country", "region", "city", "continent", "asn", "as_org", "os", "browser",
    "advertiser_id", "dim_issue",
)  # fmt: skip
# Their SQL types where not VARCHAR.
ENRICHED_TYPES = {"asn": "BIGINT"}

# Amounts stored as integer micros, under <name>_micros.
MONEY = frozenset({"price", "value", "bid_floor", "bid_amount", "win_price"})

_TS = ("timestamp", "event_time", "ts", "time")

IMPRESSIONS = Source(
    name="impressions",
    table="impressions",
    id_column="impression_id",
    natural_key=("user_id", "creative_id", "event_time", "site"),
    columns=(
        Column("impression_id", "VARCHAR", ("impression_id", "id")),
        Column("event_time", "TIMESTAMP", _TS, required=True),
        Column("user_id", "VARCHAR", ("user_id", "user.id"), required=True),
        Column("creative_id", "VARCHAR", ("creative_id", "crid"), required=True),
        Column("campaign_id", "VARCHAR", ("campaign_id",)),
        Column("site", "VARCHAR", ("website", "site", "domain", "site.domain")),
        Column("page_url", "VARCHAR", ("page_url", "url", "page")),
        Column("ip", "VARCHAR", ("ip", "device.ip")),
        Column("user_agent", "VARCHAR", ("user_agent", "ua", "device.ua")),
        Column("bid_request_id", "VARCHAR", ("bid_request_id", "auction_id")),
        Column("price", "DOUBLE", ("price", "win_price", "clearing_price")),
        Column("currency", "VARCHAR", ("currency", "cur")),
    ),
)

CLICKS_CONVERSIONS = Source(
    name="clicks_conversions",
    table="clicks_conversions",
    id_column="event_id",
    natural_key=("event_time", "user_id", "campaign_id", "event_type"),
    columns=(
        Column("event_id", "VARCHAR", ("event_id", "click_id", "conversion_id", "id")),
        Column("event_time", "TIMESTAMP", _TS, required=True),
        Column("user_id", "VARCHAR", ("user_id",), required=True),
        Column("campaign_id", "VARCHAR", ("campaign_id",), required=True),
        Column("event_type", "VARCHAR", ("conversion_type", "event_type", "type"), required=True),
        Column("creative_id", "VARCHAR", ("creative_id",)),
        Column("impression_id", "VARCHAR", ("impression_id",)),
        Column("value", "DOUBLE", ("value", "revenue", "amount")),
        Column("currency", "VARCHAR", ("currency",)),
    ),
)

BID_REQUESTS = Source(
    name="bid_requests",
    table="bid_requests",
    id_column="auction_id",
    natural_key=(),
    columns=(
        Column("auction_id", "VARCHAR", ("auction_details.auction_id", "id"), required=True),
        Column(
            "event_time", "TIMESTAMP", ("timestamp", "auction_details.timestamp", "ext.timestamp")
        ),
        Column("user_id", "VARCHAR", ("user_info.user_id", "user.id", "user.buyeruid")),
        Column(
            "creative_id",
            "VARCHAR",
            (
                "ad_targeting.creative_id",
                "imp[0].ext.creative_id",
                "seatbid[0].bid[0].crid",
                "crid",
            ),
        ),
        Column(
            "site",
            "VARCHAR",
            ("ad_targeting.website", "site.domain", "site.page", "app.bundle", "app.domain"),
        ),
        Column(
            "country", "VARCHAR", ("user_info.location", "device.geo.country", "user.geo.country")
        ),
        Column("ip", "VARCHAR", ("device.ip", "device.ipv6", "user_info.ip")),
        Column("user_agent", "VARCHAR", ("device.ua", "user_info.user_agent")),
        Column("imp_id", "VARCHAR", ("imp[0].id",)),
        Column("bid_floor", "DOUBLE", ("imp[0].bidfloor",)),
        Column(
            "bid_amount",
            "DOUBLE",
            ("auction_details.bid_amount", "bid.price", "seatbid[0].bid[0].price", "bid_price"),
        ),
        Column("won", "VARCHAR", ("auction_details.won", "won", "win.won")),
        Column("win_price", "DOUBLE", ("auction_details.win_price", "win_price", "win.price")),
        Column("currency", "VARCHAR", ("cur[0]", "currency", "auction_details.currency")),
    ),
)

SOURCES: dict[str, Source] = {s.name: s for s in (IMPRESSIONS, CLICKS_CONVERSIONS, BID_REQUESTS)}
