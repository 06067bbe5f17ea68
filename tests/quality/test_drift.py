"""Schema drift: fields the contract does not know appearing, a field changing type, and a
steady mix of shapes (the seed shape beside the full one) left alone. Real ingests: the runner
profiles each batch into field_stats; the checks read it."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import duckdb
import pyarrow as pa
import pytest

from advertisex.config import Settings, load_settings
from advertisex.pipeline.profile import profile_fields
from advertisex.quality import Finding, run_checks, run_cycle
from advertisex.schemas.fields import known_paths
from advertisex.schemas.sources import SOURCES
from advertisex.store import Store
from tests.conftest import ingest
from tests.quality.conftest import AS_OF, WINDOW, WINDOW_START, Events, daily, spread


def _failing(findings: list[Finding], check: str) -> dict[str, Finding]:
    return {f.subject: f for f in findings if f.check == check and f.failed}


def test_a_renamed_field_is_an_unknown_field(events: Events, settings: Settings) -> None:
    events.impressions(daily(60, 4)[: 60 * 4])
    # today the producer sends `website` as `site_domain`
    events.impressions(
        spread(WINDOW_START, WINDOW, 60), fields={"site_domain": "news.example.com"},
        drop=("website",),
    )  # fmt: skip
    events.arrive()
    findings = run_checks(events.store.con, settings, AS_OF)
    unknown = _failing(findings, "unknown_field")
    assert set(unknown) == {"site_domain"}
    assert unknown["site_domain"].value == 1.0 and unknown["site_domain"].baseline == 0.0
    assert unknown["site_domain"].source == "impressions"
    assert "site_domain" in unknown["site_domain"].summary


def test_an_unknown_field_that_was_always_there_is_not_news(
    events: Events, settings: Settings
) -> None:
    # a producer has always sent `tracking` (not in the contract): its seasonal share is 1
    events.impressions(daily(60, 4), fields={"tracking": {"v": 2}})
    events.arrive()
    findings = run_checks(events.store.con, settings, AS_OF)
    tracking = [f for f in findings if f.check == "unknown_field" and f.subject == "tracking"]
    assert len(tracking) == 1 and tracking[0].value == 1.0 and not tracking[0].failed
    assert not _failing(findings, "field_type")


def test_a_field_changing_type(events: Events, settings: Settings) -> None:
    events.impressions(daily(60, 4)[: 60 * 4])  # user_id a number
    today = spread(WINDOW_START, WINDOW, 60)
    events.impressions(today, fields={"user_id": "u-7"})  # user_id now sent as text
    events.arrive()
    typed = _failing(run_checks(events.store.con, settings, AS_OF), "field_type")
    assert set(typed) == {"user_id:varchar", "user_id:number"}
    assert typed["user_id:varchar"].value == 1.0 and typed["user_id:varchar"].baseline == 0.0
    assert typed["user_id:number"].value == 0.0 and typed["user_id:number"].baseline == 1.0


@pytest.mark.parametrize("steady", [True, False])
def test_a_steady_mix_of_shapes_raises_nothing(
    events: Events, settings: Settings, steady: bool
) -> None:
    # a quarter of the impressions come in a sparser shape (the seed shape's fields and an id):
    # every day (steady: no drift), or only today (a producer changed: the null rates jump)
    history = daily(60, 5)
    sparse = [t for i, t in enumerate(history) if not i % 4 and (steady or t >= WINDOW_START)]
    events.impressions([t for t in history if t not in sparse])
    events.impressions(sparse, drop=("campaign_id", "ip", "bid_request_id"))
    events.arrive()
    findings = run_checks(events.store.con, settings, AS_OF)
    drift = {f.subject for f in findings if f.failed and f.check == "null_rate"}
    assert drift == (set() if steady else {"campaign_id", "ip", "bid_request_id"})
    assert not _failing(findings, "unknown_field") and not _failing(findings, "field_type")


def test_the_profile_of_csv_and_avro_inputs() -> None:
    con = duckdb.connect()
    con.execute("CREATE TABLE field_stats (batch_id BIGINT, source VARCHAR, minute TIMESTAMP, "
                "field VARCHAR, json_type VARCHAR, n BIGINT, ingested_at TIMESTAMP)")  # fmt: skip
    batch = pa.table({"_record": [1, 2], "event_time": [WINDOW_START] * 2, "_reason": [None] * 2})
    con.register("b", batch)
    csv = pa.table({"_record": [1, 2], "_offset": [0, 9], "_raw": ["a", "b"],
                    "user_id": ["1", "2"], "coupon": ["x", "y"]})  # fmt: skip
    con.register("c", csv)
    profile_fields(con, 1, SOURCES["clicks_conversions"], "columns", "c", csv.schema, "b",
                   WINDOW_START, 100)  # fmt: skip
    avro = pa.table({"_record": [1, 2], "_offset": [0, 0],
                     "user": [{"id": "u", "segment": 3}, {"id": "v", "segment": 4}],
                     "extra": [{"deep": 1}, {"deep": 2}]})  # fmt: skip
    con.register("a", avro)
    profile_fields(con, 2, SOURCES["bid_requests"], "struct", "a", avro.schema, "b",
                   WINDOW_START, 100)  # fmt: skip
    rows = con.sql("SELECT batch_id, field, json_type, n FROM field_stats ORDER BY ALL").fetchall()
    assert rows == [
        (1, "", "", 2), (1, "coupon", "text", 2), (1, "user_id", "text", 2),
        # Avro: known structs are walked, an unknown one is one field
        (2, "", "", 2), (2, "extra", "object", 2), (2, "user", "object", 2),
        (2, "user.id", "varchar", 2), (2, "user.segment", "number", 2),
    ]  # fmt: skip
    assert "user.id" in known_paths(SOURCES["bid_requests"])
    assert "user.segment" not in known_paths(SOURCES["bid_requests"])


def test_the_profile_is_written_with_each_batch_and_can_be_turned_off(tmp_path: Path) -> None:
    record = {"creative_id": 1, "timestamp": "2026-11-20 10:00:00", "website": "a.com",
              "device": {"ua": "x", "model": "y"}, "tags": [1]}  # fmt: skip
    path = tmp_path / "imps.ndjson"
    path.write_text("".join(json.dumps({**record, "user_id": k}) + "\n" for k in range(300)))
    # 1 % of 300 is 3, but at least 100 records are profiled; 50 % is 150; 0 turns it off
    for percent, expected in ((1.0, 100), (50.0, 150), (0.0, None)):
        settings = load_settings(db=tmp_path / f"s{percent}.duckdb", field_sample_percent=percent)
        with Store.open(settings) as store:
            ingest(store, settings, path)
            got = dict(store.query("SELECT field, sum(n) FROM field_stats GROUP BY ALL"))
        if expected is None:
            assert got == {}
            continue
        assert got[""] == expected
        assert got["device.model"] == expected and got["tags"] == expected
        assert "tags[0]" not in got  # inside an unknown field: not walked


def test_the_check_cycle_drops_profiles_no_check_can_read(
    events: Events, settings: Settings
) -> None:
    old = AS_OF - timedelta(days=settings.quality_baseline_days + 3)
    events.impressions([old, WINDOW_START])
    events.arrive()
    run_cycle(events.store, settings, sinks=[], as_of=AS_OF)
    minutes = events.store.query("SELECT DISTINCT minute FROM field_stats ORDER BY 1")
    assert minutes == [(WINDOW_START.replace(second=0),)]
