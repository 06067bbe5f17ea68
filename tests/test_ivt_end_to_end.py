"""Generated traffic with injected invalid traffic: each kind is found, clean traffic is not."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from advertisex.config import load_settings
from advertisex.enrich import load_creatives
from advertisex.generate import generate
from advertisex.store import Store
from tests.conftest import ingest


@pytest.mark.slow
def test_every_ivt_kind_is_found_and_clean_traffic_is_not_flagged(
    tmp_path: Path, testdata: Path
) -> None:
    out = tmp_path / "gen"
    truth: dict[str, Any] = generate(out, impressions=20_000, days=2, seed=11)
    mm = testdata / "maxmind-db" / "test-data"
    settings = load_settings(
        db=tmp_path / "ivt.duckdb",
        batch_bytes=1024 * 1024,
        geoip_db=mm / "GeoIP2-City-Test.mmdb",
        geoip_asn_db=mm / "GeoLite2-ASN-Test.mmdb",
    )
    with Store.open(settings) as store:
        load_creatives(store, out / "dims" / "creatives.csv")
        ingest(store, settings, out / "data")
        assert set(truth["ivt"]) == {"impressions", "clicks_conversions", "bid_requests"}
        for table, expected in truth["ivt"].items():
            # clicks are injected by timing; a click's other reasons come from its impression
            injected = [r for r in expected if table != "clicks_conversions" or "click" in r]
            assert all(expected[r] > 0 for r in injected), (table, expected)
            found = dict(
                store.con.execute(
                    f"SELECT ivt_reason, count(*) FROM {table} WHERE ivt_reason IS NOT NULL "
                    "GROUP BY ALL"
                ).fetchall()
            )
            total = store.con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0]
            for reason, n in expected.items():
                assert found.get(reason, 0) >= 0.99 * n, (table, reason, found, expected)  # recall
            false_positives = sum(found.values()) - sum(expected.values())
            clean = total - sum(expected.values())
            assert false_positives / clean < 0.005, (table, found, expected)
            assert set(found) <= set(expected), (table, found)
        # geo and device answers are there for the IPs MaxMind's test database knows
        cities, devices = store.con.execute(
            "SELECT count(city), count(DISTINCT device_type) FROM impressions"
        ).fetchall()[0]
        assert cities > 0.05 * total and devices == 4  # desktop, mobile, tablet, bot
