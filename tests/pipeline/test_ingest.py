"""Batch ingest through the real runner into a real DuckDB file."""

from __future__ import annotations

import gzip
import io
import json
from pathlib import Path
from typing import Any

import duckdb
import fastavro
import pytest

from advertisex.config import Settings, load_settings
from advertisex.pipeline import Runner, SourceCounts
from advertisex.sources.batch import RawBatch
from advertisex.store import Store
from tests.conftest import SEED_BID_SCHEMA, ingest, reconciled, seed_bid

SEED_IMPRESSION = (
    '{"creative_id": 1, "user_id": 101, "timestamp": "2023-11-01 10:00:00", '
    '"website": "example.com"}'
)
SEED_CLICKS = "timestamp,user_id,campaign_id,conversion_type\n2023-11-01 10:05:00,101,7,click\n"


def write_bids(path: Path, records: list[dict[str, object]], codec: str = "deflate") -> Path:
    with path.open("wb") as f:
        fastavro.writer(f, fastavro.parse_schema(SEED_BID_SCHEMA), records, codec=codec)
    return path


def rows(store: Store, sql: str) -> list[tuple[object, ...]]:
    return store.con.execute(sql).fetchall()


def test_seed_examples_are_accepted_exactly_as_written(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    (tmp_path / "imp.json").write_text(SEED_IMPRESSION + "\n")
    (tmp_path / "clicks.csv").write_text(SEED_CLICKS)
    write_bids(tmp_path / "bids.avro", [seed_bid("a-1")])

    report = ingest(
        store, settings, tmp_path / "imp.json", tmp_path / "clicks.csv", tmp_path / "bids.avro"
    )

    for name in ("impressions", "clicks_conversions", "bid_requests"):
        c = report.sources[name]
        assert (c.received, c.accepted, c.rejected, c.duplicates) == (1, 1, 0, 0), name
    assert rows(
        store, "SELECT user_id, creative_id, site, event_time::VARCHAR FROM impressions"
    ) == [("101", "1", "example.com", "2023-11-01 10:00:00")]
    assert rows(store, "SELECT user_id, campaign_id, event_type FROM clicks_conversions") == [
        ("101", "7", "click")
    ]
    assert rows(
        store,
        "SELECT event_id, user_id, creative_id, site, country, bid_amount_micros FROM bid_requests",
    ) == [("a-1", "101", "1", "example.com", "US", 1_250_000)]


def test_timestamps_in_every_accepted_shape_become_utc(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    shapes = [
        "2023-11-01 10:00:00",
        "2023-11-01T10:00:00Z",
        "2023-11-01T12:00:00+02:00",
        "2023-11-01T10:00:00",
        "1698832800",
        "1698832800000",
    ]
    lines = [
        json.dumps({"impression_id": f"i{n}", "creative_id": 1, "user_id": 1, "timestamp": ts})
        for n, ts in enumerate(shapes)
    ]
    (tmp_path / "imp.ndjson").write_text("\n".join(lines) + "\n")
    report = ingest(store, settings, tmp_path / "imp.ndjson")
    assert report.sources["impressions"].accepted == len(shapes)
    assert rows(store, "SELECT DISTINCT event_time::VARCHAR FROM impressions") == [
        ("2023-11-01 10:00:00",)
    ]


def test_every_bad_row_is_quarantined_with_reason_origin_and_raw_text(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    good = {
        "impression_id": "ok",
        "creative_id": 1,
        "user_id": 1,
        "timestamp": "2023-11-01 10:00:00",
    }
    bad = [
        ("{not json", "malformed_json", None),
        ("[1, 2]", "not_an_object", None),
        (json.dumps({**good, "impression_id": "x1", "user_id": None}), "missing_field", "user_id"),
        (
            json.dumps({**good, "impression_id": "x2", "timestamp": "soon"}),
            "invalid_timestamp",
            "event_time",
        ),
        (
            json.dumps({**good, "impression_id": "x3", "timestamp": "1999-12-31 23:59:59"}),
            "timestamp_out_of_range",
            "event_time",
        ),
        (
            json.dumps({**good, "impression_id": "x4", "timestamp": "2099-01-01 00:00:00"}),
            "timestamp_in_future",
            "event_time",
        ),
        (json.dumps({**good, "impression_id": "x5", "price": "free"}), "invalid_value", "price"),
    ]
    text = json.dumps(good) + "\n\n" + "\n".join(line for line, _, _ in bad) + "\n"
    (tmp_path / "imp.ndjson").write_text(text)

    c = ingest(store, settings, tmp_path / "imp.ndjson").sources["impressions"]

    assert (c.received, c.accepted, c.rejected, c.duplicates) == (8, 1, 7, 0)
    got = rows(
        store, "SELECT source_record, reason, field, raw FROM rejects ORDER BY source_record"
    )
    # Line 2 is blank: neither received nor rejected; the bad rows start on line 3.
    assert got == [(n + 3, reason, field, line) for n, (line, reason, field) in enumerate(bad)]
    offsets = rows(store, "SELECT source_offset FROM rejects ORDER BY source_record")
    assert [o for (o,) in offsets] == [text.encode().index(line.encode()) for line, _, _ in bad]


def test_clicks_csv_contract(tmp_path: Path, store: Store, settings: Settings) -> None:
    (tmp_path / "events.csv").write_text(
        "timestamp,user_id,campaign_id,conversion_type,value\n"
        "2023-11-01 10:05:00,101,7,click,\n"
        "2023-11-01 10:06:00,101,7,Purchase,12.5\n"
        "2023-11-01 10:07:00,101,7,refund,\n"
        "2023-11-01 10:08:00,101,,click,\n"
        "2023-11-01 10:09:00,101,7\n"
        "2023-11-01 10:10:00,101,7,signup,abc\n"
    )
    c = ingest(store, settings, tmp_path / "events.csv").sources["clicks_conversions"]
    assert (c.received, c.accepted, c.rejected) == (6, 2, 4)
    assert dict(c.rejected_by_reason) == {
        "unknown_conversion_type": 1,
        "missing_field": 1,
        "malformed_csv": 1,
        "invalid_value": 1,
    }
    assert rows(
        store, "SELECT event_type, value_micros FROM clicks_conversions ORDER BY event_time"
    ) == [("click", None), ("purchase", 12_500_000)]
    assert rows(store, "SELECT source_record, reason FROM rejects ORDER BY source_record") == [
        (4, "unknown_conversion_type"),
        (5, "missing_field"),
        (6, "malformed_csv"),
        (7, "invalid_value"),
    ]


def test_reingesting_adds_nothing_and_overlap_adds_only_new(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    def imp(i: int) -> str:
        return json.dumps(
            {
                "impression_id": f"i{i}",
                "creative_id": 1,
                "user_id": i,
                "timestamp": "2023-11-01 10:00:00",
            }
        )

    (tmp_path / "a.ndjson").write_text("\n".join(imp(i) for i in range(10)) + "\n")
    (tmp_path / "b.ndjson").write_text("\n".join(imp(i) for i in range(5, 15)) + "\n")

    first = ingest(store, settings, tmp_path / "a.ndjson")
    again = ingest(store, settings, tmp_path / "a.ndjson")
    forced = ingest(store, settings, tmp_path / "a.ndjson", force=True)
    overlap = ingest(store, settings, tmp_path / "b.ndjson")

    assert first.sources["impressions"].accepted == 10
    assert again.files_skipped == [str((tmp_path / "a.ndjson").resolve())]
    assert again.sources["impressions"].received == 0
    assert forced.sources["impressions"].duplicates == 10
    assert (overlap.sources["impressions"].accepted, overlap.sources["impressions"].duplicates) == (
        5,
        5,
    )
    assert rows(store, "SELECT count(*), count(DISTINCT event_id) FROM impressions") == [(15, 15)]


def test_duplicates_within_a_batch_and_without_ids(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    (tmp_path / "seed.json").write_text((SEED_IMPRESSION + "\n") * 3)
    (tmp_path / "clicks.csv").write_text(SEED_CLICKS + SEED_CLICKS.splitlines()[1] + "\n")
    write_bids(tmp_path / "bids.avro", [seed_bid("a-1"), seed_bid("a-2"), seed_bid("a-1")])
    report = ingest(store, settings, tmp_path)
    assert {n: (c.accepted, c.duplicates) for n, c in report.sources.items()} == {
        "impressions": (1, 2),
        "clicks_conversions": (1, 1),
        "bid_requests": (2, 1),
    }


def test_dedupe_window_bounds_the_lookup(tmp_path: Path) -> None:
    """An id seen again outside the event-time window is a new event: the window is the contract."""
    settings = load_settings(db=tmp_path / "w.duckdb", dedupe_window_days=1)
    (tmp_path / "a.ndjson").write_text(
        json.dumps(
            {
                "impression_id": "same",
                "creative_id": 1,
                "user_id": 1,
                "timestamp": "2023-11-01 10:00:00",
            }
        )
        + "\n"
    )
    (tmp_path / "b.ndjson").write_text(
        json.dumps(
            {
                "impression_id": "same",
                "creative_id": 1,
                "user_id": 1,
                "timestamp": "2023-11-01 20:00:00",
            }
        )
        + "\n"
    )
    (tmp_path / "c.ndjson").write_text(
        json.dumps(
            {
                "impression_id": "same",
                "creative_id": 1,
                "user_id": 1,
                "timestamp": "2023-11-05 10:00:00",
            }
        )
        + "\n"
    )
    with Store.open(settings) as store:
        assert ingest(store, settings, tmp_path / "a.ndjson").sources["impressions"].accepted == 1
        assert ingest(store, settings, tmp_path / "b.ndjson").sources["impressions"].duplicates == 1
        assert ingest(store, settings, tmp_path / "c.ndjson").sources["impressions"].accepted == 1


def test_small_batches_keep_line_numbers_and_counts(tmp_path: Path) -> None:
    settings = load_settings(db=tmp_path / "b.duckdb", batch_bytes=64 * 1024)
    lines = []
    for i in range(5000):
        if i % 997 == 0:
            lines.append("{broken")
        else:
            lines.append(
                json.dumps(
                    {
                        "impression_id": f"i{i}",
                        "creative_id": 1,
                        "user_id": i,
                        "timestamp": "2023-11-01 10:00:00",
                    }
                )
            )
    (tmp_path / "imp.ndjson.gz").write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    with Store.open(settings) as store:
        c = ingest(store, settings, tmp_path / "imp.ndjson.gz").sources["impressions"]
        batches = rows(store, "SELECT count(*) FROM batches")[0][0]
        bad = [r for (r,) in rows(store, "SELECT source_record FROM rejects ORDER BY 1")]
    assert batches > 5
    assert (c.received, c.accepted, c.rejected) == (5000, 4994, 6)
    assert bad == [i + 1 for i in range(0, 5000, 997)]


def test_a_batch_that_fails_stops_its_file_only_and_a_rerun_resumes_it(tmp_path: Path) -> None:
    """Files are read and decoded ahead, across file boundaries: a batch the store fails
    mid-file must end that file (its later batches, already decoded, are not stored) and
    leave the files after it to go on; the next run resumes after the last committed batch.
    A store that fails at one chosen batch cannot be had for real here: the failure is
    raised by process_batch for the second batch of b.ndjson."""
    settings = load_settings(db=tmp_path / "f.duckdb", batch_bytes=64 * 1024)
    names = ("a.ndjson", "b.ndjson", "c.ndjson")
    for name in names:
        (tmp_path / name).write_text(
            "".join(
                json.dumps(
                    {
                        "impression_id": f"{name}-{i}",
                        "creative_id": 1,
                        "user_id": i,
                        "timestamp": "2023-11-01 10:00:00",
                    }
                )
                + "\n"
                for i in range(3000)
            )
        )
    seen: list[str] = []

    class FailingStore(Runner):
        def process_batch(self, batch: RawBatch, *a: Any, **kw: Any) -> SourceCounts:
            seen.append(Path(batch.uri).name)
            if seen.count("b.ndjson") == 2 and Path(batch.uri).name == "b.ndjson":
                raise duckdb.IOException("disk failed")
            return super().process_batch(batch, *a, **kw)

    paths = [tmp_path / n for n in names]
    with Store.open(settings) as store:
        report = FailingStore(store, settings).ingest_paths(paths)
        stored = dict(rows(store, "SELECT source_uri[-8:], count(*) FROM impressions GROUP BY 1"))
    assert seen.count("b.ndjson") == 2  # nothing of b after the failure
    assert [(Path(p).name, m) for p, m in report.files_failed] == [
        ("b.ndjson", f"cannot process {tmp_path / 'b.ndjson'}: IOException: disk failed")
    ]
    assert stored["a.ndjson"] == stored["c.ndjson"] == 3000
    assert 0 < stored["b.ndjson"] < 3000
    with Store.open(settings) as store:
        again = Runner(store, settings).ingest_paths(paths)
        stored = dict(rows(store, "SELECT source_uri[-8:], count(*) FROM impressions GROUP BY 1"))
        failed = rows(store, "SELECT source_uri[-8:], reason FROM rejects")
    assert again.files_skipped == [str(tmp_path / "a.ndjson"), str(tmp_path / "c.ndjson")]
    assert again.sources["impressions"].duplicates == 0
    assert stored == {n: 3000 for n in names}
    assert failed == [("b.ndjson", "unreadable_file")]


def test_truncated_gzip_keeps_whole_lines_and_quarantines_the_cut_one(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    lines = [
        json.dumps(
            {
                "impression_id": f"i{i}",
                "creative_id": 1,
                "user_id": i,
                "timestamp": "2023-11-01 10:00:00",
                "pad": "x" * (i % 50),
            }
        )
        for i in range(20000)
    ]
    full = gzip.compress(("\n".join(lines) + "\n").encode())
    cut = full[: len(full) // 2]
    (tmp_path / "cut.ndjson.gz").write_bytes(cut)
    c = ingest(store, settings, tmp_path / "cut.ndjson.gz").sources["impressions"]
    assert c.rejected_by_reason == {"truncated_file": 1}
    assert 0 < c.accepted < 20000
    assert c.received == c.accepted + 1
    (raw,) = rows(store, "SELECT raw FROM rejects")[0]
    assert lines[c.accepted].startswith(raw) and raw != lines[c.accepted]


def test_unreadable_file_is_reported_and_the_run_goes_on(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    (tmp_path / "bad.avro").write_bytes(b'{"user_info": {}}\n')
    (tmp_path / "imp.json").write_text(SEED_IMPRESSION + "\n")
    report = ingest(store, settings, tmp_path)
    assert report.sources["impressions"].accepted == 1
    assert len(report.files_failed) == 1
    path, message = report.files_failed[0]
    assert path.endswith("bad.avro")
    assert "not an Avro container (first bytes 7b 22 75 73)" in message
    assert rows(store, "SELECT reason FROM rejects") == [("unreadable_file",)]


def test_avro_schema_evolution_and_codecs(tmp_path: Path, store: Store, settings: Settings) -> None:
    write_bids(tmp_path / "v1.avro", [seed_bid("a-1")], codec="snappy")
    evolved = json.loads(json.dumps(SEED_BID_SCHEMA))
    evolved["fields"][0]["type"]["fields"] = [{"name": "user_id", "type": "int"}]  # no location
    evolved["fields"].append(
        {
            "name": "timestamp",
            "type": {"type": "long", "logicalType": "timestamp-millis"},
            "default": 0,
        }
    )
    buf = io.BytesIO()
    fastavro.writer(
        buf,
        fastavro.parse_schema(evolved),
        [{**seed_bid("a-2"), "user_info": {"user_id": 7}, "timestamp": 1698832800000}],
        codec="deflate",
    )
    (tmp_path / "v2.avro").write_bytes(buf.getvalue())
    report = ingest(store, settings, tmp_path)
    assert report.sources["bid_requests"].accepted == 2
    assert rows(
        store,
        "SELECT event_id, country, event_time::VARCHAR FROM bid_requests WHERE event_id = 'a-2'",
    ) == [("a-2", None, "2023-11-01 10:00:00")]


def test_replay_accepts_rows_after_a_fix_and_keeps_failures(
    tmp_path: Path, settings: Settings
) -> None:
    (tmp_path / "events.csv").write_text(
        "timestamp,user_id,campaign_id,conversion_type\n"
        "2023-11-01 10:05:00,101,7,refund\n"
        "2023-11-01 10:06:00,101,7,chargeback\n"
    )
    from advertisex.pipeline.replay import replay_rejects

    with Store.open(settings) as store:
        ingest(store, settings, tmp_path / "events.csv")
        assert rows(store, "SELECT count(*) FROM rejects") == [(2,)]
    fixed = load_settings(db=settings.db, conversion_types="click,refund")
    with Store.open(fixed) as store:
        result = replay_rejects(store, fixed)
        c = result.sources["clicks_conversions"]
        assert (c.received, c.accepted, c.rejected) == (2, 1, 1)
        assert rows(store, "SELECT event_type, source_record FROM clicks_conversions") == [
            ("refund", 2)
        ]
        assert rows(store, "SELECT reason, source_record, raw FROM rejects") == [
            ("unknown_conversion_type", 3, "2023-11-01 10:06:00,101,7,chargeback")
        ]


@pytest.mark.parametrize("name", ["data.json", "data.ndjson.gz", "data.jsonl.bz2"])
def test_compressed_and_named_formats(
    tmp_path: Path, store: Store, settings: Settings, name: str
) -> None:
    body = (SEED_IMPRESSION + "\n").encode()
    if name.endswith(".gz"):
        body = gzip.compress(body)
    elif name.endswith(".bz2"):
        import bz2

        body = bz2.compress(body)
    (tmp_path / name).write_bytes(body)
    assert ingest(store, settings, tmp_path / name).sources["impressions"].accepted == 1


def test_large_avro_file_with_a_corrupt_block_keeps_every_other_record(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    """Blocks are decoded in groups; a bad block costs its records only, origins stay exact."""
    n = 70_000
    path = tmp_path / "bids.avro"
    with path.open("wb") as f:
        fastavro.writer(
            f,
            fastavro.parse_schema(SEED_BID_SCHEMA),
            (seed_bid(f"a-{i}", user=i) for i in range(n)),
            codec="deflate",
            sync_interval=16_000,
        )
    data = bytearray(path.read_bytes())
    sync = bytes(data[-16:])  # every block ends with the file's sync marker
    marks = [i for i in range(len(data)) if data.startswith(sync, i)]
    middle = marks[len(marks) // 2]
    data[middle + 40 : middle + 60] = b"\xff" * 20  # inside the compressed data of a block
    path.write_bytes(bytes(data))

    report = ingest(store, settings, path)

    c = reconciled(report, "bid_requests")
    (first, detail), *_ = rows(
        store, "SELECT source_record, detail FROM rejects WHERE reason = 'bad_avro_block'"
    )
    lost = int(str(detail).split()[2])  # "block of N records at byte ..."
    # the bad block is quarantined whole, as one reject that names its record count
    assert (c.received, c.accepted, c.rejected) == (n - lost + 1, n - lost, 1)
    kept = {r for (r,) in rows(store, "SELECT source_record FROM bid_requests")}
    assert kept == set(range(1, n + 1)) - set(range(int(first), int(first) + lost))
    # each stored record is the one written at its number
    assert rows(
        store, "SELECT count(*) FROM bid_requests WHERE event_id <> 'a-' || (source_record - 1)"
    ) == [(0,)]
