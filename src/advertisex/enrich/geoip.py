"""Geo from IP: MaxMind .mmdb databases read with `maxminddb`, one lookup per distinct IP."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import maxminddb
import pyarrow as pa

from advertisex.errors import ConfigError

log = logging.getLogger(__name__)

GEO_SCHEMA = pa.schema(
    [
        ("ip", pa.string()),
        ("ip_country", pa.string()),
        ("region", pa.string()),
        ("city", pa.string()),
        ("continent", pa.string()),
        ("asn", pa.int64()),
        ("as_org", pa.string()),
    ]
)
# Distinct IPs remembered between batches; beyond this the cache starts again.
_CACHE_LIMIT = 2_000_000
_told_no_db = False


def _open(path: Path, setting: str) -> maxminddb.Reader:
    try:
        return maxminddb.open_database(str(path), maxminddb.MODE_AUTO)
    except FileNotFoundError:
        raise ConfigError(
            f"GeoIP database {path} does not exist; fix {setting} (ADVX_{setting.upper()})"
        ) from None
    except (maxminddb.InvalidDatabaseError, ValueError, OSError) as e:
        raise ConfigError(
            f"cannot read GeoIP database {path}: {e}; point {setting} at a MaxMind .mmdb file"
        ) from None


class GeoIP:
    """Country, region, city, continent (City or Country database) and ASN (ASN database).

    Either database may be absent; with neither, every answer is empty and one log line
    says how to add one. A corrupt database fails as a ConfigError, never a crash.
    """

    def __init__(self, geo_db: Path | None, asn_db: Path | None) -> None:
        self._geo = _open(geo_db, "geoip_db") if geo_db else None
        self._asn = _open(asn_db, "geoip_asn_db") if asn_db else None
        self._paths = (geo_db, asn_db)
        self._cache: dict[str, tuple[Any, ...]] = {}

    @property
    def enabled(self) -> bool:
        return self._geo is not None or self._asn is not None

    def close(self) -> None:
        for reader in (self._geo, self._asn):
            if reader is not None:
                reader.close()

    def lookup(self, ips: pa.Array | pa.ChunkedArray) -> pa.Table:
        """One row per distinct IP in `ips` (text): the IP and what the databases know."""
        if not self.enabled:
            say_no_geo_db()
            return GEO_SCHEMA.empty_table()
        values = ips.to_pylist()
        cache = self._cache
        if len(cache) + len(values) > _CACHE_LIMIT:
            cache.clear()
        rows = []
        for ip in values:
            hit = cache.get(ip)
            if hit is None:
                hit = cache[ip] = self._one(ip)
            rows.append(hit)
        cols = list(zip(*rows, strict=True)) if rows else [()] * 6
        return pa.Table.from_arrays(
            [pa.array(values, pa.string())]
            + [pa.array(c, f.type) for c, f in zip(cols, list(GEO_SCHEMA)[1:], strict=True)],
            schema=GEO_SCHEMA,
        )

    def _one(self, ip: str) -> tuple[Any, ...]:
        country = region = city = continent = asn = org = None
        rec = _get(self._geo, self._paths[0], ip)
        if isinstance(rec, dict):
            country = (rec.get("country") or {}).get("iso_code")
            subs = rec.get("subdivisions") or [{}]
            region = subs[0].get("iso_code")
            city = ((rec.get("city") or {}).get("names") or {}).get("en")
            continent = (rec.get("continent") or {}).get("code")
            asn = rec.get("autonomous_system_number")  # Enterprise/ISP databases
            org = rec.get("autonomous_system_organization")
        rec = _get(self._asn, self._paths[1], ip)
        if isinstance(rec, dict):
            asn = rec.get("autonomous_system_number", asn)
            org = rec.get("autonomous_system_organization", org)
        return (country, region, city, continent, asn, org)


def _get(reader: maxminddb.Reader | None, path: Path | None, ip: str) -> Any:
    if reader is None:
        return None
    try:
        return reader.get(ip)
    except ValueError:
        return None  # not an address ("123.145.167.1.3.2"), or IPv6 in an IPv4-only database
    except maxminddb.InvalidDatabaseError as e:
        raise ConfigError(
            f"GeoIP database {path} is corrupt ({e}); replace the .mmdb file"
        ) from None


def say_no_geo_db() -> None:
    """Once per process: geo is off, and how to turn it on."""
    global _told_no_db
    if not _told_no_db:
        _told_no_db = True
        log.warning(
            "geo enrichment is off: no GeoIP database configured; set ADVX_GEOIP_DB (geoip_db in "
            "advertisex.toml) to a GeoLite2-City or -Country .mmdb file, and ADVX_GEOIP_ASN_DB "
            "to a GeoLite2-ASN .mmdb for data-centre detection"
        )
