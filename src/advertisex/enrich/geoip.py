"""Geo from IP: MaxMind .mmdb databases read with `maxminddb`.

Two ways to answer, same answers. A batch's distinct IPs are looked up one by one (C
extension, cached across batches) until the lookups made would have paid for flattening the
database: then its IPv4 networks become sorted arrays of ranges, cached for the process, and
IPv4 addresses (as numbers) are matched by a binary search over them (numpy, vectorized). IPv6
and anything that is not a dotted IPv4 address always take the per-IP path (which also
knows MaxMind's IPv4-mapped, IPv4-compatible and 6to4 aliases).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import maxminddb
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from advertisex.errors import ConfigError

log = logging.getLogger(__name__)

_FIELDS = [
    ("ip_country", pa.string()),
    ("region", pa.string()),
    ("city", pa.string()),
    ("continent", pa.string()),
    ("asn", pa.int64()),
    ("as_org", pa.string()),
]
GEO_SCHEMA = pa.schema([("ip", pa.string()), *_FIELDS])
_RANGE = [("lo", pa.int64()), ("hi", pa.int64())]
GEO_RANGES = pa.schema(_RANGE + _FIELDS)
ASN_RANGES = pa.schema(_RANGE + _FIELDS[4:])
# Distinct IPs remembered between batches; beyond this the cache starts again.
_CACHE_LIMIT = 500_000  # about 150 MB of answers
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


def _geo_fields(rec: Any) -> tuple[Any, ...]:
    """(country, region, city, continent, asn, as_org) of a City/Country/Enterprise record."""
    if not isinstance(rec, dict):
        return (None,) * 6
    subs = rec.get("subdivisions") or [{}]
    return (
        (rec.get("country") or {}).get("iso_code"),
        subs[0].get("iso_code"),
        ((rec.get("city") or {}).get("names") or {}).get("en"),
        (rec.get("continent") or {}).get("code"),
        rec.get("autonomous_system_number"),  # Enterprise / ISP databases have them too
        rec.get("autonomous_system_organization"),
    )


def _asn_fields(rec: Any) -> tuple[Any, ...]:
    if not isinstance(rec, dict):
        return (None, None)
    return (rec.get("autonomous_system_number"), rec.get("autonomous_system_organization"))


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
        self._looked_up = 0
        self._ranges: tuple[pa.Table | None, pa.Table | None] | None = None

    @property
    def enabled(self) -> bool:
        return self._geo is not None or self._asn is not None

    def close(self) -> None:
        for reader in (self._geo, self._asn):
            if reader is not None:
                reader.close()

    # -- one IP at a time ------------------------------------------------------------------

    def lookup(self, ips: pa.Array | pa.ChunkedArray) -> pa.Table:
        """One row per distinct IP in `ips` (text): the IP and what the databases know."""
        if not self.enabled:
            say_no_geo_db()
            return GEO_SCHEMA.empty_table()
        values = ips.to_pylist()
        cache = self._cache
        if len(cache) + len(values) > _CACHE_LIMIT:
            cache.clear()
        self._looked_up += len(values)
        rows = []
        for ip in values:
            hit = cache.get(ip)
            if hit is None:
                hit = cache[ip] = self._one(ip)
            rows.append(hit)
        cols = list(zip(*rows, strict=True)) if rows else [()] * 6
        return pa.Table.from_arrays(
            [pa.array(values, pa.string())]
            + [pa.array(c, t) for c, (_, t) in zip(cols, _FIELDS, strict=True)],
            schema=GEO_SCHEMA,
        )

    def _one(self, ip: str) -> tuple[Any, ...]:
        geo = _geo_fields(self._get(0, ip))
        asn = _asn_fields(self._get(1, ip))
        return (*geo[:4], asn[0] if asn[0] is not None else geo[4], asn[1] or geo[5])

    def _get(self, which: int, ip: str) -> Any:
        reader = (self._geo, self._asn)[which]
        if reader is None:
            return None
        try:
            return reader.get(ip)
        except ValueError:
            return None  # not an address ("123.145.167.1.3.2"), or IPv6 in an IPv4-only DB
        except maxminddb.InvalidDatabaseError as e:
            raise ConfigError(
                f"GeoIP database {self._paths[which]} is corrupt ({e}); replace the .mmdb file"
            ) from None

    def answers(self, ips: pa.Array | pa.ChunkedArray, v4: pa.Array | pa.ChunkedArray) -> pa.Table:
        """What the databases know about each distinct IP of `ips` (text; `v4` its IPv4 number,
        NULL when it is not a dotted IPv4 address), as GEO_SCHEMA rows for the IPs with an
        answer. IPv4 goes by range search once that pays, the rest one by one."""
        if not self.enabled:
            say_no_geo_db()
            return GEO_SCHEMA.empty_table()
        if self.prefer_ranges(len(ips) - v4.null_count):
            found = [self._by_ranges(ips, v4)]
            if v4.null_count:
                found.append(_answered(self.lookup(pc.filter(ips, pc.is_null(v4)))))
            return pa.concat_tables(found)
        return _answered(self.lookup(ips))

    # -- IPv4 as ranges --------------------------------------------------------------------

    def _by_ranges(
        self, ips: pa.Array | pa.ChunkedArray, v4: pa.Array | pa.ChunkedArray
    ) -> pa.Table:
        """Answers for the IPv4 addresses among `ips` that have one (numpy: only the rows
        kept are gathered)."""
        numbers = np.asarray(pc.fill_null(v4, -1).to_numpy(zero_copy_only=False), np.int64)
        hits = [(table, *_locate(table, numbers)) for table in self.ranges() if table is not None]
        keep = np.zeros(len(numbers), dtype=np.bool_)
        for _, _, _, says in hits:
            keep |= says
        rows = np.flatnonzero(keep)
        cols = {name: pa.nulls(len(rows), t) for name, t in _FIELDS}
        for table, at, inside, _ in hits:  # City/Country first, then ASN
            got = table.drop_columns(["lo", "hi"]).take(
                pa.array(at[rows], pa.int64(), mask=~inside[rows])
            )
            first = "ip_country" in got.column_names
            for name in got.column_names:  # the ASN database's before an Enterprise DB's
                cols[name] = got[name] if first else pc.coalesce(got[name], cols[name])
        return pa.Table.from_arrays([ips.take(rows), *cols.values()], schema=GEO_SCHEMA)

    def prefer_ranges(self, distinct_ipv4: int) -> bool:
        """Whether to answer this batch's IPv4 addresses by range join (flattening if needed).

        Flattening walks every network once; it is chosen when the per-IP lookups made so
        far plus this batch's would cost as much, so neither path costs more than twice
        the better one.
        """
        if self._ranges is not None:
            return True
        nodes = sum(r.metadata().node_count for r in (self._geo, self._asn) if r is not None)
        return self._looked_up + distinct_ipv4 >= nodes

    def ranges(self) -> tuple[pa.Table | None, pa.Table | None]:
        """The IPv4 networks of each database as (lo, hi, fields...), sorted by lo."""
        if self._ranges is None:
            geo = self._flatten(0, _geo_fields, GEO_RANGES) if self._geo else None
            asn = self._flatten(1, _asn_fields, ASN_RANGES) if self._asn else None
            self._ranges = (geo, asn)
        return self._ranges

    def _flatten(self, which: int, fields: Any, schema: pa.Schema) -> pa.Table:
        rows = [(lo, hi, *fields(rec)) for lo, hi, rec in self._networks(which) if rec is not None]
        cols = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
        table = pa.Table.from_arrays(
            [pa.array(c, f.type) for c, f in zip(cols, schema, strict=True)], schema=schema
        )
        # Combined so that _search's take() gathers from one chunk.
        return table.sort_by("lo").combine_chunks()

    def _networks(self, which: int) -> Iterator[tuple[int, int, Any]]:
        reader = (self._geo, self._asn)[which]
        assert reader is not None
        try:
            for network, record in reader:
                if network.version == 4:
                    yield int(network.network_address), int(network.broadcast_address), record
        except maxminddb.InvalidDatabaseError as e:
            raise ConfigError(
                f"GeoIP database {self._paths[which]} is corrupt ({e}); replace the .mmdb file"
            ) from None


def _locate(ranges: pa.Table, numbers: np.ndarray) -> tuple[np.ndarray, ...]:
    """For each number: the row of the range (lo, hi: sorted by lo, not overlapping) that may
    hold it, whether it does, and whether it does and says something (a country or an ASN)."""
    lo, hi = ranges["lo"].to_numpy(), ranges["hi"].to_numpy()
    answers = np.zeros(len(lo), dtype=np.bool_)
    for name in ("ip_country", "asn"):
        if name in ranges.column_names:
            answers |= pc.is_valid(ranges[name]).to_numpy(zero_copy_only=False)
    at = np.maximum(np.searchsorted(lo, numbers, side="right") - 1, 0)
    inside = (numbers >= lo[at]) & (numbers <= hi[at])
    return at, inside, inside & answers[at]


def _answered(found: pa.Table) -> pa.Table:
    """The rows of GEO_SCHEMA answers that say something (a country or an ASN)."""
    return found.filter(pc.or_(pc.is_valid(found["ip_country"]), pc.is_valid(found["asn"])))


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
