"""Enrichment through the real runner into a real DuckDB file, with MaxMind's test databases."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest

from advertisex.config import Settings, load_settings
from advertisex.enrich import geoip, load_creatives
from advertisex.store import Store
from advertisex.store.duckdb import SCHEMA_VERSION
from tests.conftest import ingest

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/124.0.0.0 Safari/537.36"
)
IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.4.1 Mobile/15E148 Safari/604.1"
)
GOOGLEBOT = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
DIMS = "creative_id,campaign_id,advertiser_id\n1,c1,a1\n2,c2,a2\n"


@pytest.fixture
def geo_settings(tmp_path: Path, testdata: Path) -> Settings:
    mm = testdata / "maxmind-db" / "test-data"
    return load_settings(
        db=tmp_path / "geo.duckdb",
        geoip_db=mm / "GeoIP2-City-Test.mmdb",
        geoip_asn_db=mm / "GeoLite2-ASN-Test.mmdb",
        ivt_click_flood_per_minute=3,
    )


def imp(n: int, **fields: Any) -> str:
    base = {
        "impression_id": f"i{n}",
        "creative_id": 1,
        "user_id": f"u{n}",
        "timestamp": "2026-11-01 10:00:00",
        "website": "www.example.co.uk",
        "ip": "81.2.69.142",
        "user_agent": CHROME,
    }
    base.update(fields)
    return json.dumps({k: v for k, v in base.items() if v is not None})


def write(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n")
    return path


def by_id(store: Store, table: str, cols: str) -> dict[str, tuple[Any, ...]]:
    rows = store.con.execute(f"SELECT event_id, {cols} FROM {table}").fetchall()
    return {r[0]: tuple(r[1:]) for r in rows}


def test_impressions_get_geo_device_domain_dimensions_and_ivt(
    tmp_path: Path, geo_settings: Settings
) -> None:
    lines = [
        imp(1),  # London, desktop, valid
        imp(2, ip="2001:218::1", user_agent=IPHONE, website="m.example.co.uk", creative_id=2),
        imp(3, user_agent=GOOGLEBOT),
        imp(4, ip="1.0.0.7"),  # AS15169 (Google): a data centre
        imp(5, user_agent=None),
        imp(6, ip=None),
        imp(7, creative_id=99),  # unknown creative: kept and flagged
        imp(8, ip="not-an-ip"),
    ]
    with Store.open(geo_settings) as store:
        (tmp_path / "dims.csv").write_text(DIMS)
        load_creatives(store, tmp_path / "dims.csv")
        report = ingest(store, geo_settings, write(tmp_path / "imp.ndjson", lines))
        assert report.sources["impressions"].accepted == 8
        got = by_id(
            store,
            "impressions",
            "country, region, city, continent, asn, device_type, os, browser, site, "
            "campaign_id, advertiser_id, dim_issue, ivt_reason",
        )
    assert got["i1"] == ("GB", "ENG", "London", "EU", None, "desktop", "Windows", "Chrome",
                         "example.co.uk", "c1", "a1", None, None)  # fmt: skip
    assert got["i2"][0] == "JP" and got["i2"][5:9] == ("mobile", "iOS", "Mobile Safari",
                                                       "example.co.uk")  # fmt: skip
    assert got["i2"][9:11] == ("c2", "a2")
    assert (got["i3"][5], got["i3"][-1]) == ("bot", "bot_user_agent")
    assert (got["i4"][4], got["i4"][-1]) == (15169, "datacenter_ip")
    assert (got["i5"][5], got["i5"][-1]) == (None, "missing_user_agent")
    assert (got["i6"][0], got["i6"][-1]) == (None, "missing_ip")
    assert got["i7"][9:] == (None, None, "unknown_creative", None)
    assert got["i8"][0] is None and got["i8"][-1] is None


def test_seed_shape_without_ip_or_agent_is_not_invalid_traffic(
    tmp_path: Path, geo_settings: Settings
) -> None:
    seed = '{"creative_id": 1, "user_id": 101, "timestamp": "2023-11-01 10:00:00", "website": "example.com"}'  # noqa: E501
    with Store.open(geo_settings) as store:
        ingest(store, geo_settings, write(tmp_path / "seed.ndjson", [seed]))
        assert store.con.execute(
            "SELECT ivt_reason, country, device_type, site FROM impressions"
        ).fetchall() == [(None, None, None, "example.com")]


def click_csv(path: Path, rows: list[tuple[str, str, str, str, str]], first: int = 0) -> Path:
    lines = ["event_id,timestamp,user_id,campaign_id,conversion_type,impression_id"]
    lines += [",".join((f"k{n}", *r)) for n, r in enumerate(rows, first)]
    return write(path, lines)


@pytest.mark.parametrize("clicks_first", [False, True])
def test_fast_clicks_are_flagged_whichever_file_comes_first(
    tmp_path: Path, geo_settings: Settings, clicks_first: bool
) -> None:
    imps = write(
        tmp_path / "imp.ndjson",
        [imp(1, timestamp="2026-11-01 10:00:00"), imp(2, timestamp="2026-11-01 10:00:00")],
    )
    clicks = click_csv(
        tmp_path / "clicks.csv",
        [
            ("2026-11-01 10:00:00.400", "u1", "c1", "click", "i1"),  # 0.4 s: too fast
            ("2026-11-01 10:00:09", "u2", "c1", "click", "i2"),  # 9 s: human
            ("2026-11-01 10:00:00.2", "u2", "c1", "purchase", "i2"),  # not a click
        ],
    )
    order = [clicks, imps] if clicks_first else [imps, clicks]
    with Store.open(geo_settings) as store:
        for path in order:
            ingest(store, geo_settings, path)
        got = by_id(store, "clicks_conversions", "ivt_reason")
    assert got == {"k0": ("fast_click",), "k1": (None,), "k2": (None,)}


def test_click_floods_flag_every_click_of_that_user_minute(
    tmp_path: Path, geo_settings: Settings
) -> None:
    flood = [(f"2026-11-01 10:07:{s:02d}", "u9", "c1", "click", "") for s in (1, 5, 9, 30)]
    calm = [(f"2026-11-01 10:{m:02d}:10", "u9", "c1", "click", "") for m in (8, 9, 10)]
    other = [(f"2026-11-01 10:07:{s:02d}", "u8", "c1", "click", "") for s in (2, 3, 4)]
    with Store.open(geo_settings) as store:
        # the flood arrives in two files: the second tips it over the limit of 3
        ingest(store, geo_settings, click_csv(tmp_path / "a.csv", flood[:2] + calm + other))
        ingest(store, geo_settings, click_csv(tmp_path / "b.csv", flood[2:], 100))
        rows = store.con.execute(
            "SELECT user_id, strftime(event_time, '%H:%M'), ivt_reason, count(*) "
            "FROM clicks_conversions GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    assert rows == [
        ("u8", "10:07", None, 3),
        ("u9", "10:07", "click_flood", 4),
        ("u9", "10:08", None, 1),
        ("u9", "10:09", None, 1),
        ("u9", "10:10", None, 1),
    ]


@pytest.mark.parametrize("split", [False, True])
def test_a_click_flood_across_a_minute_boundary_is_found_in_any_60_seconds(
    tmp_path: Path, geo_settings: Settings, split: bool
) -> None:
    # Limit 3: five clicks in 30 s, half before 10:08:00 and half after, are a flood though no
    # calendar minute holds more than three; four clicks exactly 20 s apart are not (no 60 s
    # holds more than three), nor is another user's click in the middle of the flood.
    flood = [(f"2026-11-01 10:{t}", "u9", "c1", "click", "") for t in
             ("07:40", "07:47", "07:55", "08:02", "08:10")]  # fmt: skip
    paced = [(f"2026-11-01 10:{t}", "u7", "c1", "click", "") for t in
             ("07:40", "08:00", "08:20", "08:40")]  # fmt: skip
    other = [("2026-11-01 10:07:58", "u8", "c1", "click", "")]
    with Store.open(geo_settings) as store:
        if split:  # the flood's first half is stored before its second half arrives
            ingest(store, geo_settings, click_csv(tmp_path / "a.csv", flood[:3] + paced[:2]))
            ingest(
                store,
                geo_settings,
                click_csv(tmp_path / "b.csv", flood[3:] + paced[2:] + other, 100),
            )
        else:
            ingest(store, geo_settings, click_csv(tmp_path / "a.csv", flood + paced + other))
        rows = store.con.execute(
            "SELECT user_id, ivt_reason, count(*) FROM clicks_conversions GROUP BY ALL ORDER BY ALL"
        ).fetchall()
    assert rows == [("u7", None, 4), ("u8", None, 1), ("u9", "click_flood", 5)]


def test_clicks_get_advertiser_and_unknown_campaign(tmp_path: Path, geo_settings: Settings) -> None:
    with Store.open(geo_settings) as store:
        (tmp_path / "dims.csv").write_text(DIMS)
        load_creatives(store, tmp_path / "dims.csv")
        ingest(
            store,
            geo_settings,
            click_csv(
                tmp_path / "c.csv",
                [
                    ("2026-11-01 10:00:00", "u1", "c2", "click", ""),
                    ("2026-11-01 10:00:00", "u1", "zz", "click", ""),
                ],
            ),
        )
        got = by_id(store, "clicks_conversions", "advertiser_id, dim_issue")
    assert got == {"k0": ("a2", None), "k1": (None, "unknown_campaign")}


def test_bid_requests_keep_their_own_country_and_the_ip_country_beside_it(
    tmp_path: Path, geo_settings: Settings
) -> None:
    def rtb(n: int, ip: str, country: str | None) -> str:
        device: dict[str, Any] = {"ip": ip, "ua": IPHONE}
        if country:
            device["geo"] = {"country": country}
        return json.dumps(
            {"id": f"a{n}", "imp": [{"id": "1"}], "site": {"domain": "www.news.example.com"},
             "device": device, "user": {"id": f"u{n}"}}
        )  # fmt: skip

    path = write(
        tmp_path / "bids.ndjson",
        [rtb(1, "81.2.69.142", "USA"), rtb(2, "81.2.69.142", None), rtb(3, "81.2.69.142", "GB")],
    )
    with Store.open(geo_settings) as store:
        report = ingest(store, geo_settings, path, source="bid_requests")
        assert report.sources["bid_requests"].accepted == 3
        got = by_id(store, "bid_requests", "country, ip_country, device_type, site")
        mismatches = store.con.execute(
            "SELECT count(*) FROM bid_requests WHERE country <> ip_country"
        ).fetchall()[0][0]
    assert got == {  # OpenRTB's alpha-3 becomes alpha-2
        "a1": ("US", "GB", "mobile", "example.com"),
        "a2": ("GB", "GB", "mobile", "example.com"),
        "a3": ("GB", "GB", "mobile", "example.com"),
    }
    assert mismatches == 1


def test_without_a_database_geo_is_empty_and_one_line_says_how_to_add_one(
    tmp_path: Path,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(geoip, "_told_no_db", False)
    with caplog.at_level(logging.WARNING), Store.open(settings) as store:
        ingest(store, settings, write(tmp_path / "a.ndjson", [imp(1), imp(2)]))
        ingest(store, settings, write(tmp_path / "b.ndjson", [imp(3)]))
        rows = store.con.execute("SELECT country, device_type FROM impressions").fetchall()
    assert rows == [(None, "desktop")] * 3
    told = [r.getMessage() for r in caplog.records if "GeoIP" in r.getMessage()]
    assert len(told) == 1
    assert "ADVX_GEOIP_DB" in told[0] and "\n" not in told[0]


def test_enrichment_off_leaves_the_columns_empty(tmp_path: Path) -> None:
    settings = load_settings(db=tmp_path / "off.duckdb", enrich_enabled=False)
    with Store.open(settings) as store:
        ingest(store, settings, write(tmp_path / "a.ndjson", [imp(1, user_agent=GOOGLEBOT)]))
        assert store.con.execute(
            "SELECT device_type, ivt_reason, site FROM impressions"
        ).fetchall() == [(None, None, "example.co.uk")]


def test_a_version_2_store_gains_the_columns_and_takes_enriched_rows(
    tmp_path: Path, geo_settings: Settings
) -> None:
    with Store.open(geo_settings) as store:
        for col in ("ip_country", "region", "city", "continent", "asn", "as_org", "os",
                    "browser", "advertiser_id", "dim_issue"):  # fmt: skip
            store.con.execute(f"ALTER TABLE impressions DROP COLUMN {col}")
        store.con.execute("DELETE FROM schema_version WHERE version > 2")
    with Store.open(geo_settings) as store:
        ingest(store, geo_settings, write(tmp_path / "a.ndjson", [imp(1)]))
        assert store.con.execute(
            "SELECT city, source_record, max(version) OVER () FROM impressions, schema_version"
        ).fetchall() == [("London", 1, SCHEMA_VERSION)]


def test_dimensions_are_versioned_by_load_time(tmp_path: Path, geo_settings: Settings) -> None:
    with Store.open(geo_settings) as store:
        (tmp_path / "v1.csv").write_text(
            "creative_id,campaign_id,advertiser_id\n1,c1,a1\n1,cX,aX\n"
        )
        (tmp_path / "v2.csv").write_text("creative_id,campaign_id,advertiser_id\n1,c9,a9\n")
        assert load_creatives(store, tmp_path / "v1.csv") == (2, 0)
        ingest(store, geo_settings, write(tmp_path / "a.ndjson", [imp(1)]))
        load_creatives(store, tmp_path / "v2.csv")
        load_creatives(store, tmp_path / "v2.csv")  # the same again: no new version
        ingest(store, geo_settings, write(tmp_path / "b.ndjson", [imp(2)]))
        got = by_id(store, "impressions", "campaign_id, advertiser_id")
        versions = store.con.execute(
            "SELECT campaign_id, advertiser_id FROM creative_versions ORDER BY loaded_at"
        ).fetchall()
        current = store.con.execute("SELECT campaign_id FROM creatives").fetchall()
    assert got == {"i1": ("c1", "a1"), "i2": ("c9", "a9")}  # each kept the version of its time
    assert versions == [("c1", "a1"), ("c9", "a9")]
    assert current == [("c9",)]


def test_enrichment_command_counts_ivt_unknowns_and_mismatches(
    tmp_path: Path, geo_settings: Settings
) -> None:
    from typer.testing import CliRunner

    from advertisex.cli import app

    with Store.open(geo_settings) as store:
        (tmp_path / "dims.csv").write_text(DIMS)
        load_creatives(store, tmp_path / "dims.csv")
        lines = [imp(1), imp(2, user_agent=GOOGLEBOT), imp(3, creative_id=77), imp(4, ip="1.0.0.1")]
        ingest(store, geo_settings, write(tmp_path / "a.ndjson", lines))
        store.con.execute("UPDATE impressions SET country = 'US' WHERE event_id = 'i1'")
    result = CliRunner().invoke(
        app, ["enrichment", "--db", str(geo_settings.db), "--format", "json"]
    )
    assert result.exit_code == 0, result.output
    rows = {r["source"]: r for r in json.loads(result.stdout)}
    assert rows["impressions"] == {
        "source": "impressions",
        "events": 4,
        "with_country": 3,
        "with_device_type": 4,
        "ivt": 2,
        "unknown_creative": 1,
        "unknown_campaign": 0,
        "country_mismatch": 1,
        "ivt_by_reason": {"bot_user_agent": 1, "datacenter_ip": 1},
    }
    assert rows["bid_requests"]["events"] == 0
    table = CliRunner().invoke(app, ["enrichment", "--db", str(geo_settings.db)])
    assert table.exit_code == 0 and "enrichment" in table.stdout


@pytest.mark.parametrize("clicks_first", [False, True])
def test_clicks_take_geo_device_and_ivt_from_their_impression(
    tmp_path: Path, geo_settings: Settings, clicks_first: bool
) -> None:
    imps = write(tmp_path / "imp.ndjson", [imp(1), imp(2, user_agent=GOOGLEBOT)])
    clicks = click_csv(
        tmp_path / "clicks.csv",
        [
            ("2026-11-01 10:00:30", "u1", "c1", "click", "i1"),
            ("2026-11-01 10:00:30", "u2", "c1", "click", "i2"),  # on a bot's impression
            ("2026-11-01 11:00:00", "u2", "c1", "purchase", "i2"),  # geo yes, IVT only clicks
            ("2026-11-01 10:00:30", "u3", "c1", "click", ""),  # names no impression
        ],
    )
    with Store.open(geo_settings) as store:
        for path in [clicks, imps] if clicks_first else [imps, clicks]:
            ingest(store, geo_settings, path)
        got = by_id(store, "clicks_conversions", "country, city, device_type, ivt_reason")
    assert got == {
        "k0": ("GB", "London", "desktop", None),
        "k1": ("GB", "London", "bot", "bot_user_agent"),
        "k2": ("GB", "London", "bot", None),
        "k3": (None, None, None, None),
    }


def test_a_wrong_database_path_is_one_plain_line_and_exit_2(
    tmp_path: Path, testdata: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from advertisex.cli import app

    data = write(tmp_path / "a.ndjson", [imp(1)])
    monkeypatch.setenv("ADVX_GEOIP_DB", str(tmp_path / "GeoLite2-City.mmdb"))
    result = CliRunner().invoke(app, ["ingest", str(data), "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 2
    assert result.stderr.count("\n") == 1 and "geoip_db" in result.stderr
    broken = testdata / "maxmind-db" / "test-data" / "GeoIP2-City-Test-Invalid-Node-Count.mmdb"
    monkeypatch.setenv("ADVX_GEOIP_DB", str(broken))
    result = CliRunner().invoke(app, ["ingest", str(data), "--db", str(tmp_path / "s.duckdb")])
    assert result.exit_code == 2 and "cannot read GeoIP database" in result.stderr


def test_datacenter_asns_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ADVX_IVT_DATACENTER_ASNS", "AS15169, 16509")
    assert load_settings().ivt_datacenter_asns == (15169, 16509)


def test_real_openrtb_requests_get_device_from_their_agent(
    tmp_path: Path, geo_settings: Settings, testdata: Path
) -> None:
    from advertisex.enrich.useragent import classify

    rtb = testdata / "iab-openrtb"
    paths = sorted((rtb / "openrtb-2.6-spec-examples/request").glob("*.json")) + sorted(
        (rtb / "openrtb3-converter/master/request").glob("*_25.json")
    )
    first: dict[str, str | None] = {}
    for p in paths:
        doc = json.loads(p.read_bytes())
        first.setdefault(doc["id"], (doc.get("device") or {}).get("ua"))
    with Store.open(geo_settings) as store:
        report = ingest(store, geo_settings, *paths, source="bid_requests")
        assert report.files_failed == []
        got = by_id(store, "bid_requests", "user_agent, device_type, browser, ip_country")
    assert set(got) == set(first)
    with_agent = 0
    for event_id, ua in first.items():
        stored_ua, device_type, browser, _ = got[event_id]
        assert stored_ua == ua
        if ua:
            with_agent += 1
            assert (device_type, browser) == classify(ua)[0:3:2], ua
    assert with_agent >= 2


def test_agents_are_parsed_once_per_store_and_again_under_new_rules(
    tmp_path: Path, geo_settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    from advertisex.enrich import useragent

    parsed: list[str] = []
    real = useragent.parse

    def counting(ua: str) -> Any:
        parsed.append(ua)
        return real(ua)

    monkeypatch.setattr(useragent, "parse", counting)
    # Each ingest() is a new Runner (a new process's caches); the store remembers.
    with Store.open(geo_settings) as store:
        ingest(
            store, geo_settings, write(tmp_path / "a.ndjson", [imp(1), imp(2, user_agent=IPHONE)])
        )
    assert sorted(parsed) == sorted([CHROME, IPHONE])
    with Store.open(geo_settings) as store:
        ingest(
            store, geo_settings, write(tmp_path / "b.ndjson", [imp(3), imp(4, user_agent=IPHONE)])
        )
        assert len(parsed) == 2  # none parsed again
        assert store.con.execute(
            "SELECT event_id, device_type FROM impressions ORDER BY event_id"
        ).fetchall() == [("i1", "desktop"), ("i2", "mobile"), ("i3", "desktop"), ("i4", "mobile")]
    monkeypatch.setattr(useragent, "RULES", "uap-core 0; advertisex 0")  # a new snapshot
    monkeypatch.setattr("advertisex.pipeline.enrich.RULES", "uap-core 0; advertisex 0")
    with Store.open(geo_settings) as store:
        ingest(store, geo_settings, write(tmp_path / "c.ndjson", [imp(5, user_agent=GOOGLEBOT)]))
        kept = store.con.execute("SELECT user_agent, rules FROM user_agents").fetchall()
    assert parsed[2:] == [GOOGLEBOT]
    assert kept == [(GOOGLEBOT, "uap-core 0; advertisex 0")]  # answers of the old rules dropped
