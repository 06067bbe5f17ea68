"""Enrich: geo, device, domain, dimensions and row-level invalid-traffic flags for a batch.

The standardized batch is materialized by the runner; its distinct IPs, user agents and
sites are looked up once each (Python, cached across batches), the answers registered as
small Arrow tables and joined back in one DuckDB query. The creatives dimension is joined
by name. Rules that need other events run after the load (`enrich/ivt.py`).
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


def enrich_sql(
    source: Source,
    relation: str,
    *,
    geo: str | None,
    ua: str | None,
    sites: str | None,
    dims: str,
    countries: str | None = None,
    datacenter_asns: tuple[int, ...],
    flag_missing_ua: bool,
    flag_missing_ip: bool,
) -> str:
    """SELECT with the batch's columns, the enrichment columns filled.

    `geo`, `ua`, `sites` name the lookup relations or subqueries (None: that lookup is off);
    `dims` is the creatives table; `countries` maps alpha-3 codes an event may carry to
    alpha-2. The flags say whether this batch's rows normally carry a user agent / IP.
    """
    names = {c.name for c in source.columns}
    joins: list[str] = []
    rep: dict[str, str] = {}
    ivt: list[tuple[str, IvtReason]] = []
    own = "NULL"
    if "country" in names:
        own = "b.country"
        if countries:
            joins.append(f"LEFT JOIN {countries} cc ON cc.alpha3 = b.country")
            own = rep["country"] = "coalesce(cc.alpha2, b.country)"
    if geo and "ip" in names:
        joins.append(f"LEFT JOIN {geo} g ON g.ip = b.ip")
        rep["country"] = f"coalesce({own}, g.ip_country)"
        for col in ("ip_country", "region", "city", "continent", "asn", "as_org"):
            rep[col] = f"g.{col}"
        if datacenter_asns:
            asns = ", ".join(str(int(a)) for a in datacenter_asns)
            ivt.append((f"g.asn IN ({asns})", IvtReason.DATACENTER_IP))
    if ua and "user_agent" in names:
        joins.append(f"LEFT JOIN {ua} u ON u.user_agent = b.user_agent")
        rep.update(device_type="u.device_type", os="u.os", browser="u.browser")
        ivt.insert(0, ("u.is_bot", IvtReason.BOT_USER_AGENT))
        if flag_missing_ua:
            ivt.append(("b.user_agent IS NULL", IvtReason.MISSING_USER_AGENT))
    if "ip" in names and flag_missing_ip:
        ivt.append(("b.ip IS NULL", IvtReason.MISSING_IP))
    if sites and "site" in names:
        joins.append(f"LEFT JOIN {sites} s ON s.site = b.site")
        rep["site"] = "coalesce(s.domain, b.site)"

    # Dimensions: creative -> campaign -> advertiser. Flags only once a dimension is loaded.
    loaded = f"(SELECT count(*) > 0 FROM {dims})"
    campaign = "b.campaign_id" if "campaign_id" in names else None
    issues: list[str] = []
    if "creative_id" in names:
        joins.append(f"LEFT JOIN {dims} d ON d.creative_id = b.creative_id")
        issues.append(
            f"WHEN b.creative_id IS NOT NULL AND d.creative_id IS NULL AND {loaded} "
            "THEN 'unknown_creative'"
        )
        campaign = f"coalesce({campaign}, d.campaign_id)" if campaign else "d.campaign_id"
        if "campaign_id" in names:
            rep["campaign_id"] = campaign
    if campaign:
        joins.append(
            f"LEFT JOIN (SELECT campaign_id, any_value(advertiser_id) AS advertiser_id "
            f"FROM {dims} GROUP BY ALL) cp ON cp.campaign_id = {campaign}"
        )
        issues.append(
            f"WHEN {campaign} IS NOT NULL AND cp.campaign_id IS NULL AND {loaded} "
            "THEN 'unknown_campaign'"
        )
        rep["advertiser_id"] = (
            "coalesce(d.advertiser_id, cp.advertiser_id)"
            if "creative_id" in names
            else "cp.advertiser_id"
        )
    if issues:
        rep["dim_issue"] = "CASE " + " ".join(issues) + " END"
    if ivt:
        whens = " ".join(f"WHEN {cond} THEN '{reason}'" for cond, reason in ivt)
        rep["ivt_reason"] = f"CASE WHEN b._reason IS NOT NULL THEN NULL {whens} END"
    if not rep:
        return f"SELECT * FROM {relation}"
    replace = ", ".join(f"{expr} AS {col}" for col, expr in rep.items())
    return f"SELECT b.* REPLACE ({replace}) FROM {relation} b {' '.join(joins)}"


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
        """Replace the materialized batch `relation` by its enriched version."""
        if not self.enabled:
            return
        names = {c.name for c in source.columns}
        has_ip, has_ua = "ip" in names, "user_agent" in names
        geo_on = has_ip and self.geo is not None and self.geo.enabled
        if has_ip and not geo_on:
            say_no_geo_db()
        n = next(_uid)
        views: list[str] = []
        kw: dict[str, Any] = {"geo": None, "ua": None, "sites": None}
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
                    ips = (
                        f"(SELECT DISTINCT ip, advx_ipv4(ip) AS v4 {valid} "
                        "AND ip IS NOT NULL AND NOT contains(ip, ':'))"
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
            sql = enrich_sql(
                source,
                relation,
                dims="creatives",
                datacenter_asns=self.settings.ivt_datacenter_asns,
                flag_missing_ua=with_ua / max(rows, 1) >= share,
                flag_missing_ip=with_ip / max(rows, 1) >= share,
                **kw,
            )
            tmp = f"{relation}_enriched"
            con.execute(f"CREATE OR REPLACE TEMP TABLE {tmp} AS {sql}")
            con.execute(f"DROP TABLE {relation}")
            con.execute(f"ALTER TABLE {tmp} RENAME TO {relation}")
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
