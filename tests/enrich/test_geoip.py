"""Geo lookups against MaxMind's own test databases and the answers they were built from."""

from __future__ import annotations

import ipaddress
import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest

from advertisex.config import load_settings
from advertisex.enrich.geoip import GeoIP
from advertisex.errors import ConfigError


def _first_address(network: str) -> str:
    net = ipaddress.ip_network(network, strict=False)
    return str(net.network_address)


def _expected_city(record: dict[str, Any]) -> tuple[Any, ...]:
    subs = record.get("subdivisions") or [{}]
    return (
        (record.get("country") or {}).get("iso_code"),
        subs[0].get("iso_code"),
        ((record.get("city") or {}).get("names") or {}).get("en"),
        (record.get("continent") or {}).get("code"),
    )


@pytest.mark.parametrize("db", ["GeoIP2-City-Test", "GeoLite2-City-Test", "GeoIP2-Country-Test"])
def test_every_network_of_the_source_json_resolves_as_expected(testdata: Path, db: str) -> None:
    mm = testdata / "maxmind-db"
    source = json.loads((mm / "source-data" / f"{db}.json").read_text())
    expected = {}
    for entry in source:
        for network, record in entry.items():
            expected[_first_address(network)] = _expected_city(record)
    geo = GeoIP(mm / "test-data" / f"{db}.mmdb", None)
    got = geo.lookup(pa.array(list(expected))).to_pylist()
    assert len(got) == len(expected) > 200
    v6 = sum(":" in ip for ip in expected)
    assert 0 < v6 < len(expected)  # IPv4 and IPv6 alike
    mismatches = [
        (r["ip"], expected[r["ip"]])
        for r in got
        if (r["ip_country"], r["region"], r["city"], r["continent"]) != expected[r["ip"]]
    ]
    assert mismatches == []


def test_readme_examples_asn_and_ipv4_forms(testdata: Path) -> None:
    mm = testdata / "maxmind-db" / "test-data"
    geo = GeoIP(mm / "GeoIP2-City-Test.mmdb", mm / "GeoLite2-ASN-Test.mmdb")
    ips = [
        "2.125.160.216",
        "216.160.83.56",
        "::ffff:81.2.69.142",
        "2002:5102:458e::",
        "1.128.0.0",
        "8.8.8.8",
        "10.0.0.1",
        "::1",
        "123.145.167.1.3.2",
        "",
    ]
    rows = {r["ip"]: r for r in geo.lookup(pa.array(ips)).to_pylist()}
    assert (rows["2.125.160.216"]["ip_country"], rows["2.125.160.216"]["city"]) == ("GB", "Boxford")
    assert rows["216.160.83.56"]["region"] == "WA"
    assert rows["::ffff:81.2.69.142"]["city"] == rows["2002:5102:458e::"]["city"] == "London"
    assert (rows["1.128.0.0"]["asn"], rows["1.128.0.0"]["as_org"]) == (1221, "Telstra Pty Ltd")
    for unknown in ("8.8.8.8", "10.0.0.1", "::1", "123.145.167.1.3.2", ""):
        assert rows[unknown]["ip_country"] is None and rows[unknown]["asn"] is None


def _bad_files(testdata: Path) -> list[Path]:
    mm = testdata / "maxmind-db"
    return (
        sorted((mm / "bad-data").rglob("*.mmdb"))
        + sorted((mm / "test-data").glob("*Broken*.mmdb"))
        + sorted((mm / "test-data").glob("*Invalid*.mmdb"))
    )


def test_corrupt_databases_fail_with_a_config_error_never_a_crash(testdata: Path) -> None:
    bad = _bad_files(testdata)
    assert len(bad) >= 5
    ips = pa.array(["2.125.160.216", "81.2.69.142", "2001:218::", "1.1.1.1"])
    outcomes = []
    for path in bad:
        try:
            GeoIP(path, None).lookup(ips)
            outcomes.append("read")
        except ConfigError as e:
            assert str(path) in e.message or path.name in e.message
            assert "\n" not in e.message
            outcomes.append("refused")
    assert "refused" in outcomes


def test_a_missing_database_is_a_config_error_naming_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="geoip_db"):
        GeoIP(tmp_path / "nope.mmdb", None)


def test_range_search_answers_like_the_per_ip_lookup(testdata: Path) -> None:
    import duckdb

    from advertisex.store.duckdb import configure

    mm = testdata / "maxmind-db"
    ips = ["1.2.3", "1.2.3.4.5", "256.0.0.1", "::ffff:81.2.69.142", "2001:218::1", "x"]
    for db in ("GeoIP2-City-Test", "GeoLite2-ASN-Test"):
        for entry in json.loads((mm / "source-data" / f"{db}.json").read_text()):
            for network in entry:
                net = ipaddress.ip_network(network, strict=False)
                if net.version == 4:
                    ips += [str(net.network_address), str(net.broadcast_address)]
                    ips.append(str(net.network_address - 1))  # just outside
    ips = sorted(set(ips))
    per_ip = GeoIP(
        mm / "test-data" / "GeoIP2-City-Test.mmdb", mm / "test-data" / "GeoLite2-ASN-Test.mmdb"
    )
    by_range = GeoIP(
        mm / "test-data" / "GeoIP2-City-Test.mmdb", mm / "test-data" / "GeoLite2-ASN-Test.mmdb"
    )
    # a few IPs are looked up one by one; a million pay for flattening the databases
    assert not by_range.prefer_ranges(10) and by_range.prefer_ranges(1_000_000)
    by_range.ranges()
    con = duckdb.connect()
    configure(con, load_settings())  # the stage's SQL macros: advx_ipv4 makes the numbers
    con.register("ips", pa.table({"ip": ips}))
    numbered = con.sql("SELECT ip, advx_ipv4(ip) AS v4 FROM ips").to_arrow_table()
    assert numbered["v4"].null_count == 6  # what is not a dotted IPv4 address goes one by one
    got = {r["ip"]: r for r in by_range.answers(numbered["ip"], numbered["v4"]).to_pylist()}
    expected = {
        r["ip"]: r
        for r in per_ip.lookup(pa.array(ips)).to_pylist()
        if r["ip_country"] is not None or r["asn"] is not None
    }
    assert len(ips) > 1000 and len(expected) > 500
    assert sum(v["asn"] is not None for v in expected.values()) > 500
    assert "::ffff:81.2.69.142" in expected and "2001:218::1" in expected
    assert got == expected
