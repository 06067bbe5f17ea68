"""Enrich: geo, device, domain, dimensions and row-level invalid-traffic flags for a batch.

The standardized batch is materialized by the runner; its distinct IPs, user agents and
sites are looked up once each (Python, cached across batches), the answers registered as
small Arrow tables and joined back in one DuckDB query. The creatives dimension is joined
by name. Rules that need other events run after the load (`enrich/ivt.py`).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import duckdb

from advertisex.config import Settings
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
    datacenter_asns: tuple[int, ...],
    flag_missing_ua: bool,
    flag_missing_ip: bool,
) -> str:
    """SELECT with the batch's columns, the enrichment columns filled.

    `geo`, `ua`, `sites` name the lookup relations (None: that lookup is off); `dims` is the
    creatives table. The flags say whether this batch's rows normally carry a user agent / IP.
    """
    names = {c.name for c in source.columns}
    joins: list[str] = []
    rep: dict[str, str] = {}
    ivt: list[tuple[str, IvtReason]] = []
    if geo and "ip" in names:
        joins.append(f"LEFT JOIN {geo} g ON g.ip = b.ip")
        own = "b.country" if "country" in names else "NULL"
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

    def close(self) -> None:
        if self.geo is not None:
            self.geo.close()

    def enrich(self, con: duckdb.DuckDBPyConnection, relation: str, source: Source) -> None:
        """Replace the materialized batch `relation` by its enriched version."""
        if not self.enabled:
            return
        names = {c.name for c in source.columns}
        n = next(_uid)
        views: list[str] = []
        tables: list[str] = []
        kw: dict[str, Any] = {"geo": None, "ua": None, "sites": None}

        def distinct(col: str) -> Any:
            return con.sql(
                f"SELECT DISTINCT {col} FROM {relation} WHERE {col} IS NOT NULL AND _reason IS NULL"
            ).to_arrow_table()[col]

        def view(name: str, table: Any) -> str:
            con.register(name, table)
            views.append(name)
            return name

        try:
            if "ip" in names and self.geo is not None and not self.geo.enabled:
                say_no_geo_db()
            elif "ip" in names and self.geo is not None:
                kw["geo"] = self._geo(con, relation, n, view, tables)
            if "user_agent" in names:
                kw["ua"] = view(f"_advx_ua_{n}", self.uas.lookup(distinct("user_agent")))
            if "site" in names:
                kw["sites"] = view(f"_advx_sites_{n}", self.domains.lookup(distinct("site")))
            share = self.settings.ivt_missing_share
            has = con.execute(
                f"SELECT count(*), {'count(user_agent)' if 'user_agent' in names else '0'}, "
                f"{'count(ip)' if 'ip' in names else '0'} FROM {relation} WHERE _reason IS NULL"
            ).fetchall()[0]
            rows = max(int(has[0]), 1)
            sql = enrich_sql(
                source,
                relation,
                dims="creatives",
                datacenter_asns=self.settings.ivt_datacenter_asns,
                flag_missing_ua=has[1] / rows >= share,
                flag_missing_ip=has[2] / rows >= share,
                **kw,
            )
            tmp = f"{relation}_enriched"
            con.execute(f"CREATE OR REPLACE TEMP TABLE {tmp} AS {sql}")
            con.execute(f"DROP TABLE {relation}")
            con.execute(f"ALTER TABLE {tmp} RENAME TO {relation}")
        finally:
            for name in views:
                con.unregister(name)
            for name in tables:
                con.execute(f"DROP TABLE IF EXISTS {name}")

    def _geo(
        self,
        con: duckdb.DuckDBPyConnection,
        relation: str,
        n: int,
        view: Callable[[str, Any], str],
        tables: list[str],
    ) -> str:
        """A temp table of the batch's distinct IPs and their geo answers; returns its name."""
        assert self.geo is not None
        ips = f"_advx_ips_{n}"
        tables.append(ips)
        con.execute(
            f"CREATE TEMP TABLE {ips} AS SELECT DISTINCT ip, advx_ipv4(ip) AS v4 "
            f"FROM {relation} WHERE ip IS NOT NULL AND _reason IS NULL"
        )
        n_v4 = con.execute(f"SELECT count(v4) FROM {ips}").fetchall()[0][0]
        parts = []
        rest = f"SELECT ip FROM {ips}"
        if n_v4 and self.geo.prefer_ranges(int(n_v4)):
            geo_ranges, asn_ranges = self.geo.ranges()
            parts.append(
                ranges_sql(
                    ips,
                    view(f"_advx_geo_ranges_{n}", geo_ranges) if geo_ranges else None,
                    view(f"_advx_asn_ranges_{n}", asn_ranges) if asn_ranges else None,
                )
            )
            rest += " WHERE v4 IS NULL"
        others = con.sql(rest).to_arrow_table()["ip"]
        parts.append(f"SELECT * FROM {view(f'_advx_geo_each_{n}', self.geo.lookup(others))}")
        geo = f"_advx_geo_{n}"
        tables.append(geo)
        con.execute(f"CREATE TEMP TABLE {geo} AS " + " UNION ALL BY NAME ".join(parts))
        return geo

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
