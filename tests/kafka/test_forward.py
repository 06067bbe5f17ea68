"""`serve --kafka`: the collector produces to Kafka (mock cluster), `consume` loads the store."""

from __future__ import annotations

from pathlib import Path

import httpx

from advertisex.config import load_settings
from tests.api.conftest import collector, ndjson
from tests.kafka.test_consume import FAST_GROUP, consume_until_idle, rows


def test_collector_produces_to_kafka_and_a_consumer_loads_exactly_those(
    kafka: str, tmp_path: Path
) -> None:
    settings = load_settings(db=tmp_path / "unused.duckdb", kafka_config=FAST_GROUP)
    with collector(settings, kafka=kafka) as (url, _):
        r = httpx.post(url + "/v1/impressions", content=ndjson(["f1", "f2"]) + b"{broken\n\n")
        assert (r.status_code, r.json()) == (
            202,
            {"request_id": r.json()["request_id"], "received": 3, "queued": 3},
        )
        csv = b"timestamp,user_id,campaign_id,conversion_type\n2026-11-01 10:00:00,u1,k1,click\n"
        assert httpx.post(url + "/v1/events", content=csv).status_code == 202
        other = httpx.post(url + "/v1/events", content=b"user_id,timestamp\nu1,2026-11-01\n")
        assert other.status_code == 400
        assert "timestamp,user_id,campaign_id,conversion_type" in other.json()["error"]
        pixel = httpx.get(url + "/t/imp", params={"imp": "f3", "uid": "u", "crid": "c"})
        assert pixel.status_code == 200
    # The collector wrote no store: the events are in Kafka until a consumer loads them.
    assert not (tmp_path / "unused.duckdb").exists()
    db = tmp_path / "s.duckdb"
    consume_until_idle(db, kafka, "impressions,clicks")
    assert rows(db, "SELECT event_id FROM impressions ORDER BY 1") == [("f1",), ("f2",), ("f3",)]
    assert rows(db, "SELECT user_id, event_type FROM clicks_conversions") == [("u1", "click")]
    assert rows(db, "SELECT reason FROM rejects") == [("malformed_json",)]
