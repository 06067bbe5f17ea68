"""Enrich: geo, device, domain, dimensions and row-level invalid-traffic flags for a batch.

The standardized batch is materialized by the runner; its distinct IPs, user agents and
sites are looked up once each (Python, cached across batches; IPv4 by a range join in
DuckDB once that is cheaper), the answers registered as small Arrow tables and written
into the batch by a few UPDATEs. The creatives dimension is joined by name. Rules that
need other events run after the load (`enrich/ivt.py`).
"""

from __future__ import annotations

import itertools
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

from advertisex.config import Settings
from advertisex.enrich.countries import alpha3_to_alpha2
from advertisex.enrich.domains import Domains
from advertisex.enrich.geoip import GeoIP, ranges_sql, say_no_geo_db
from advertisex.enrich.ivt import IvtReason, after_load_statements
from advertisex.enrich.useragent import UserAgents
from advertisex.schemas.sources import Source

_uid = itertools.count()


def enrich_statements(
    source: Source,
    relation: str,
    *,
    geo: str | None,
    ua: str | None,
    sites: str | None,
    dims: str,
    countries: str | None,
    datacenter_asns: tuple[int, ...],
    flag_missing_ua: bool,
    flag_missing_ip: bool,
) -> list[str]:
    """UPDATEs that fill the enrichment columns of the materialized batch `relation`.

    `geo`, `ua`, `sites` name the lookup relations or subqueries (None: that lookup is off);
    `dims` is the creatives table; `countries` maps alpha-3 codes an event may carry to
    alpha-2. The flags say whether this batch's rows normally carry a user agent / IP.
    Each UPDATE writes only its own columns of the rows it has an answer for (measured
    cheaper than re-materializing the batch with joins); the IVT reason comes last, from the
    columns the others filled.
    """
    names = {c.name for c in source.columns}
    t = f"UPDATE {relation} AS b"
    out = []
    if countries and "country" in names:
        out.append(f"{t} SET country = cc.alpha2 FROM {countries} cc WHERE cc.alpha3 = b.country")
    if geo and "ip" in names:
        cols = ("ip_country", "region", "city", "continent", "asn", "as_org")
        sets = ", ".join(f"{c} = g.{c}" for c in cols)
        out.append(
            f"{t} SET {sets}, country = coalesce(b.country, g.ip_country) FROM {geo} g "
            "WHERE g.ip = b.ip AND (g.ip_country IS NOT NULL OR g.asn IS NOT NULL)"
        )
    if ua and "user_agent" in names:
        out.append(
            f"{t} SET device_type = u.device_type, os = u.os, browser = u.browser "
            f"FROM {ua} u WHERE u.user_agent = b.user_agent"
        )
    if sites and "site" in names:
        out.append(
            f"{t} SET site = s.domain FROM {sites} s WHERE s.site = b.site AND s.domain <> b.site"
        )

    # Dimensions: creative -> campaign -> advertiser. Flags only once a dimension is loaded.
    has_campaign = "campaign_id" in names
    loaded = f"EXISTS (SELECT 1 FROM {dims})"
    if "creative_id" in names:
        campaign = "campaign_id = coalesce(b.campaign_id, d.campaign_id), " if has_campaign else ""
        out.append(
            f"{t} SET {campaign}advertiser_id = d.advertiser_id "
            f"FROM {dims} d WHERE d.creative_id = b.creative_id"
        )
        out.append(
            f"{t} SET dim_issue = 'unknown_creative' WHERE b._reason IS NULL "
            f"AND b.creative_id IS NOT NULL AND {loaded} "
            f"AND NOT EXISTS (SELECT 1 FROM {dims} d WHERE d.creative_id = b.creative_id)"
        )
    if has_campaign:
        campaigns = (
            f"(SELECT campaign_id, any_value(advertiser_id) AS advertiser_id FROM {dims} "
            "GROUP BY ALL)"
        )
        out.append(
            f"{t} SET advertiser_id = cp.advertiser_id FROM {campaigns} cp "
            "WHERE cp.campaign_id = b.campaign_id AND b.advertiser_id IS NULL"
        )
        out.append(
            f"{t} SET dim_issue = 'unknown_campaign' WHERE b._reason IS NULL "
            f"AND b.dim_issue IS NULL AND b.campaign_id IS NOT NULL AND {loaded} "
            f"AND NOT EXISTS (SELECT 1 FROM {dims} d WHERE d.campaign_id = b.campaign_id)"
        )

    ivt: list[tuple[str, IvtReason]] = []
    if ua and "user_agent" in names:
        ivt.append(("b.device_type = 'bot'", IvtReason.BOT_USER_AGENT))
    if geo and "ip" in names and datacenter_asns:
        asns = ", ".join(str(int(a)) for a in datacenter_asns)
        ivt.append((f"b.asn IN ({asns})", IvtReason.DATACENTER_IP))
    if "user_agent" in names and flag_missing_ua:
        ivt.append(("b.user_agent IS NULL", IvtReason.MISSING_USER_AGENT))
    if "ip" in names and flag_missing_ip:
        ivt.append(("b.ip IS NULL", IvtReason.MISSING_IP))
    if ivt:
        whens = " ".join(f"WHEN {cond} THEN '{reason}'" for cond, reason in ivt)
        any_of = " OR ".join(cond for cond, _ in ivt)
        out.append(f"{t} SET ivt_reason = CASE {whens} END WHERE b._reason IS NULL AND ({any_of})")
    return out


class Enricher:
    """Holds the readers and caches; enriches batches in place, flags IVT after loads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.enabled = settings.enrich_enabled
        self.geo = GeoIP(settings.geoip_db, settings.geoip_asn_db) if self.enabled else None
        self.uas = UserAgents()
        self.domains = Domains()
        self._ranges_on: duckdb.DuckDBPyConnection | None = None
        self._countries_on: duckdb.DuckDBPyConnection | None = None

    def close(self) -> None:
        if self.geo is not None:
            self.geo.close()

    def enrich(self, con: duckdb.DuckDBPyConnection, relation: str, source: Source) -> None:
        """Fill the enrichment columns of the materialized batch `relation`, in place."""
        if not self.enabled:
            return
        names = {c.name for c in source.columns}
        has_ip, has_ua = "ip" in names, "user_agent" in names
        geo_on = has_ip and self.geo is not None and self.geo.enabled
        if has_ip and not geo_on:
            say_no_geo_db()
        n = next(_uid)
        views: list[str] = []
        kw: dict[str, Any] = {"geo": None, "ua": None, "sites": None, "countries": None}
        valid = f"FROM {relation} WHERE _reason IS NULL"

        def distinct(col: str) -> Any:
            return con.sql(f"SELECT DISTINCT {col} {valid} AND {col} IS NOT NULL").to_arrow_table()[
                col
            ]

        def view(name: str, table: Any) -> str:
            con.register(name, table)
            views.append(name)
            return name

        # One pass: what the missing-agent/IP rules need, and the IPv6 addresses (the range
        # tables answer IPv4; anything else is no address).
        rows, with_ua, with_ip, n_ips, ipv6 = con.execute(
            f"SELECT count(*), {'count(user_agent)' if has_ua else '0'}, "
            + (
                "count(ip), approx_count_distinct(ip), "
                "list(DISTINCT ip) FILTER (contains(ip, ':')) "
                if has_ip
                else "0, 0, []::VARCHAR[] "
            )
            + valid
        ).fetchall()[0]
        try:
            if geo_on and n_ips:
                assert self.geo is not None
                parts = []
                if self.geo.prefer_ranges(int(n_ips)):
                    # IPv4 by range join over the distinct addresses, IPv6 one by one.
                    # Parsed after DISTINCT: once per address, not per row.
                    ips = (
                        f"(SELECT ip, advx_ipv4(ip) AS v4 FROM (SELECT DISTINCT ip {valid} "
                        "AND ip IS NOT NULL AND NOT contains(ip, ':')))"
                    )
                    parts.append(ranges_sql(ips, *self._range_views(con)))
                    each = pa.array(ipv6 or [], pa.string())
                else:
                    each = distinct("ip")
                if len(each):
                    parts.append(f"SELECT * FROM {view(f'_advx_geo_{n}', self.geo.lookup(each))}")
                kw["geo"] = "(" + " UNION ALL BY NAME ".join(parts) + ")"
            if has_ua:
                kw["ua"] = view(f"_advx_ua_{n}", self.uas.lookup(distinct("user_agent")))
            if "site" in names:
                kw["sites"] = view(f"_advx_sites_{n}", self.domains.lookup(distinct("site")))
            share = self.settings.ivt_missing_share
            if "country" in names:
                kw["countries"] = "_advx_countries"
                if self._countries_on is not con:
                    con.register("_advx_countries", alpha3_to_alpha2())
                    self._countries_on = con
            for sql in enrich_statements(
                source,
                relation,
                dims="creatives",
                datacenter_asns=self.settings.ivt_datacenter_asns,
                flag_missing_ua=with_ua / max(rows, 1) >= share,
                flag_missing_ip=with_ip / max(rows, 1) >= share,
                **kw,
            ):
                con.execute(sql)
        finally:
            for name in views:
                con.unregister(name)

    def _range_views(self, con: duckdb.DuckDBPyConnection) -> tuple[str | None, str | None]:
        """The flattened databases as views on `con`, registered once per connection."""
        assert self.geo is not None
        geo, asn = self.geo.ranges()
        if self._ranges_on is not con:
            if geo is not None:
                con.register("_advx_geo_ranges", geo)
            if asn is not None:
                con.register("_advx_asn_ranges", asn)
            self._ranges_on = con
        return (
            "_advx_geo_ranges" if geo is not None else None,
            "_advx_asn_ranges" if asn is not None else None,
        )

    def after_load(
        self, con: duckdb.DuckDBPyConnection, source: Source, lo: datetime, hi: datetime
    ) -> None:
        """The IVT rules that need other events, over the batch's event-time window."""
        if not self.enabled:
            return
        s = self.settings
        for sql, params in after_load_statements(
            source.name,
            lo,
            hi,
            window=timedelta(days=s.dedupe_window_days),
            fast_click_seconds=s.ivt_fast_click_seconds,
            flood_per_minute=s.ivt_click_flood_per_minute,
        ):
            con.execute(sql, params)
