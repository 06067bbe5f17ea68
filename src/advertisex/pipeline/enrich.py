"""Enrich: geo, device, domain, dimensions and row-level invalid-traffic flags for a batch.

The standardized batch is materialized by the runner. Its distinct IPs, user agents and sites
are answered once each (IPv4 by a vectorized range search, the rest in Python, cached across
batches; user agents also in the store's `user_agents`, across runs), the answers registered
as small Arrow tables, and `Enricher.enrich` returns a SELECT of the batch that joins them in
by key, with the creatives dimension, and decides the row-level IVT reason from them. The
runner's INSERT reads that SELECT: the answers are written once, by the insert itself
(measured: cheaper than UPDATEs of the batch, which rewrite its columns first). Rules that
need other events run after the load (`enrich/ivt.py`).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from advertisex.config import Settings
from advertisex.enrich.countries import alpha3_to_alpha2
from advertisex.enrich.domains import Domains
from advertisex.enrich.geoip import GeoIP, say_no_geo_db
from advertisex.enrich.ivt import IvtReason, after_load_statements
from advertisex.enrich.useragent import RULES, UA_SCHEMA, UserAgents
from advertisex.schemas.sources import Source

# The answers of the batch being enriched, registered on the connection under these names
# (each batch replaces the last batch's).
GEO, UA, SITES, COUNTRIES = (
    "_advx_enrich_geo",
    "_advx_enrich_ua",
    "_advx_enrich_sites",
    ("_advx_countries"),
)
_UA_KEYS = "_advx_enrich_ua_keys"


def enriched_sql(
    source: Source,
    relation: str,
    *,
    geo: str | None,
    ua: str | None,
    sites: str | None,
    dims: str | None,
    countries: str | None,
    datacenter_asns: tuple[int, ...],
    flag_missing_ua: bool,
    flag_missing_ip: bool,
) -> str:
    """A SELECT of every column of the batch `relation`, the enrichment columns filled.

    `geo` (ip -> ip_country, region, city, continent, asn, as_org; only IPs with an answer),
    `ua` (user_agent -> device_type, os, browser, is_bot) and `sites` (site -> domain) name
    answer relations unique by key (None: that lookup is off); `dims` is the creatives table
    (None: no dimension loaded, so nothing is unknown); `countries` maps alpha-3 codes an event
    may carry to alpha-2. The flags say whether this batch's rows normally carry a user agent
    / IP. An event's own country is kept; the IVT reason is the first rule that holds.
    """
    names = {c.name for c in source.columns}
    joins: list[str] = []
    cols: dict[str, str] = {}
    if countries and "country" in names:
        joins.append(f"LEFT JOIN {countries} cc ON cc.alpha3 = b.country")
        cols["country"] = "coalesce(cc.alpha2, b.country)"
    if geo and "ip" in names:
        joins.append(f"LEFT JOIN {geo} g ON g.ip = b.ip")
        for c in ("ip_country", "region", "city", "continent", "asn", "as_org"):
            cols[c] = f"g.{c}"
        cols["country"] = f"coalesce({cols.get('country', 'b.country')}, g.ip_country)"
    if ua and "user_agent" in names:
        joins.append(f"LEFT JOIN {ua} u ON u.user_agent = b.user_agent")
        cols.update(device_type="u.device_type", os="u.os", browser="u.browser")
    if sites and "site" in names:
        joins.append(f"LEFT JOIN {sites} s ON s.site = b.site")
        cols["site"] = "coalesce(s.domain, b.site)"

    # Dimensions: creative -> campaign -> advertiser. Unknowns are flagged once a dimension is
    # loaded (`dims` given).
    if dims:
        campaign = "b.campaign_id" if "campaign_id" in names else None
        advertiser = []
        issues = []
        if "creative_id" in names:
            joins.append(f"LEFT JOIN {dims} d ON d.creative_id = b.creative_id")
            advertiser.append("d.advertiser_id")
            issues.append(
                "WHEN b.creative_id IS NOT NULL AND d.creative_id IS NULL THEN 'unknown_creative'"
            )
            if campaign:
                campaign = cols["campaign_id"] = "coalesce(b.campaign_id, d.campaign_id)"
        if campaign:
            joins.append(
                f"LEFT JOIN (SELECT campaign_id, any_value(advertiser_id) AS advertiser_id "
                f"FROM {dims} GROUP BY ALL) cp ON cp.campaign_id = {campaign}"
            )
            advertiser.append("cp.advertiser_id")
            issues.append(
                f"WHEN {campaign} IS NOT NULL AND cp.campaign_id IS NULL THEN 'unknown_campaign'"
            )
        if advertiser:
            cols["advertiser_id"] = f"coalesce({', '.join(advertiser)})"
            cols["dim_issue"] = f"CASE {' '.join(issues)} END"

    ivt: list[tuple[str, IvtReason]] = []
    if ua and "user_agent" in names:
        ivt.append(("u.is_bot", IvtReason.BOT_USER_AGENT))
    if geo and "ip" in names and datacenter_asns:
        asns = ", ".join(str(int(a)) for a in datacenter_asns)
        ivt.append((f"g.asn IN ({asns})", IvtReason.DATACENTER_IP))
    if "user_agent" in names and flag_missing_ua:
        ivt.append(("b.user_agent IS NULL", IvtReason.MISSING_USER_AGENT))
    if "ip" in names and flag_missing_ip:
        ivt.append(("b.ip IS NULL", IvtReason.MISSING_IP))
    if ivt:
        cols["ivt_reason"] = (
            f"CASE {' '.join(f'WHEN {cond} THEN {reason.value!r}' for cond, reason in ivt)} END"
        )
    if not cols:
        return relation
    replace = ", ".join(f"{expr} AS {col}" for col, expr in cols.items())
    return f"(SELECT b.* REPLACE ({replace}) FROM {relation} b {' '.join(joins)})"


class Enricher:
    """Holds the readers and caches; enriches batches, flags IVT after loads."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.enabled = settings.enrich_enabled
        self.geo = GeoIP(settings.geoip_db, settings.geoip_asn_db) if self.enabled else None
        self.uas = UserAgents()
        self.domains = Domains()
        self._on: duckdb.DuckDBPyConnection | None = None  # the connection prepared last

    def close(self) -> None:
        if self.geo is not None:
            self.geo.close()

    def enrich(self, con: duckdb.DuckDBPyConnection, relation: str, source: Source) -> str:
        """The materialized batch `relation` enriched: a relation (SELECT) to read it through.

        It reads answers registered on `con` for this batch: read it before the next call.
        With enrichment off, `relation` itself.
        """
        if not self.enabled:
            return relation
        if self._on is not con:
            self._prepare(con)
        names = {c.name for c in source.columns}
        has_ip, has_ua = "ip" in names, "user_agent" in names
        geo_on = has_ip and self.geo is not None and self.geo.enabled
        if has_ip and not geo_on:
            say_no_geo_db()
        valid = f"FROM {relation} WHERE _reason IS NULL"
        rows, with_ua, with_ip = con.execute(
            f"SELECT count(*), {'count(user_agent)' if has_ua else '0'}, "
            f"{'count(ip)' if has_ip else '0'} {valid}"
        ).fetchall()[0]
        kw: dict[str, Any] = {"geo": None, "ua": None, "sites": None, "countries": None}
        if geo_on and with_ip:
            assert self.geo is not None
            ips = con.sql(
                f"SELECT ip, advx_ipv4(ip) AS v4 FROM (SELECT DISTINCT ip {valid} "
                "AND ip IS NOT NULL)"
            ).to_arrow_table()
            kw["geo"] = self._register(con, GEO, self.geo.answers(ips["ip"], ips["v4"]))
        if has_ua and with_ua:
            kw["ua"] = self._register(con, UA, self._user_agents(con, valid))
        if "site" in names:
            sites = self.domains.lookup(self._distinct(con, "site", valid))
            changed = sites.filter(pc.not_equal(sites["site"], sites["domain"]))
            kw["sites"] = self._register(con, SITES, changed)
        if "country" in names:
            kw["countries"] = COUNTRIES
        loaded = con.execute("SELECT count(*) FROM (SELECT 1 FROM creatives LIMIT 1)").fetchall()
        share = self.settings.ivt_missing_share
        return enriched_sql(
            source,
            relation,
            dims="creatives" if loaded[0][0] else None,
            datacenter_asns=self.settings.ivt_datacenter_asns,
            flag_missing_ua=with_ua / max(rows, 1) >= share,
            flag_missing_ip=with_ip / max(rows, 1) >= share,
            **kw,
        )

    def _prepare(self, con: duckdb.DuckDBPyConnection) -> None:
        """Once per connection: the country codes, and stored agents of other rules dropped."""
        con.register(COUNTRIES, alpha3_to_alpha2())
        con.execute("DELETE FROM user_agents WHERE rules <> ?", [RULES])
        self._on = con

    def _user_agents(self, con: duckdb.DuckDBPyConnection, valid: str) -> pa.Table:
        """Answers for the batch's distinct agents: from this process, else from the store,
        else parsed now (and then kept in the store)."""
        agents = self._distinct(con, "user_agent", valid)
        unseen = self.uas.unseen(agents)
        if len(unseen):
            self._register(con, _UA_KEYS, pa.table({"user_agent": unseen}))
            stored = con.sql(
                f"SELECT {', '.join(UA_SCHEMA.names)} FROM user_agents "
                f"SEMI JOIN {_UA_KEYS} USING (user_agent)"
            ).to_arrow_table()
            self.uas.remember(stored)
            fresh = self.uas.lookup(
                pc.filter(unseen, pc.invert(pc.is_in(unseen, stored["user_agent"])))
            )
            if fresh.num_rows:
                self._register(con, _UA_KEYS, fresh)
                con.execute(
                    f"INSERT OR IGNORE INTO user_agents SELECT *, ? FROM {_UA_KEYS}", [RULES]
                )
        return self.uas.lookup(agents)

    @staticmethod
    def _distinct(con: duckdb.DuckDBPyConnection, col: str, valid: str) -> pa.ChunkedArray:
        table = con.sql(f"SELECT DISTINCT {col} {valid} AND {col} IS NOT NULL").to_arrow_table()
        return table[col]

    @staticmethod
    def _register(con: duckdb.DuckDBPyConnection, name: str, table: pa.Table) -> str:
        con.register(name, table)
        return name

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
