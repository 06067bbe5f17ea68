"""The generator: deterministic bytes, exact truth, realistic traffic, every promised fault."""

from __future__ import annotations

import csv
import datetime as dt
import gzip
import json
import zlib
from collections import Counter
from pathlib import Path
from typing import Any, cast

import fastavro
import pyarrow.parquet as pq
import pytest

import advertisex.generate
from advertisex.errors import ConfigError
from advertisex.generate import generate

START = dt.date(2026, 3, 2)
DAYS = 3
TYPES = {"click", "signup", "purchase", "install", "lead", "add_to_cart"}
IMPRESSION_REASONS = {
    "malformed_json",
    "not_an_object",
    "missing_field",
    "invalid_timestamp",
    "timestamp_out_of_range",
    "timestamp_in_future",
    "truncated_file",
}
CLICK_REASONS = {
    "missing_field",
    "malformed_csv",
    "invalid_timestamp",
    "timestamp_out_of_range",
    "timestamp_in_future",
    "unknown_conversion_type",
    "invalid_value",
}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("generated")
    return out, generate(out, impressions=5_000, days=DAYS, seed=7, start=START)


# --- independent readers: the standard library and fastavro, not the generator's code ---


def _parse_ts(text: Any) -> dt.datetime | None:
    if not isinstance(text, str):
        return None
    try:
        ts = dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    return ts.replace(tzinfo=dt.UTC) if ts.tzinfo is None else ts.astimezone(dt.UTC)


def _ts_reason(text: Any) -> str | None:
    ts = _parse_ts(text)
    if ts is None:
        return "invalid_timestamp"
    if ts.year < 2000:
        return "timestamp_out_of_range"
    if ts.year >= 2099:
        return "timestamp_in_future"
    return None


def _gzip_lines(path: Path) -> tuple[list[bytes], bool]:
    """Complete lines of a gzip file that may be cut short, and whether a partial one remains."""
    text = zlib.decompressobj(wbits=31).decompress(path.read_bytes())
    lines = text.split(b"\n")
    return lines[:-1], lines[-1] != b""


class Reading:
    """What a careful reader of one source finds."""

    def __init__(self) -> None:
        self.received = 0
        self.valid: list[dict[str, Any]] = []
        self.duplicates = 0
        self.rejected: Counter[str] = Counter()
        self.seen: set[Any] = set()

    def reject(self, reason: str) -> None:
        self.received += 1
        self.rejected[reason] += 1

    def accept(self, key: Any, record: dict[str, Any]) -> None:
        self.received += 1
        if key in self.seen:
            self.duplicates += 1
        else:
            self.seen.add(key)
            self.valid.append(record)

    def as_truth(self) -> dict[str, Any]:
        return {
            "received": self.received,
            "valid": len(self.valid),
            "duplicates": self.duplicates,
            "rejected_by_reason": dict(sorted(self.rejected.items())),
        }


def read_impressions(out: Path) -> Reading:
    reading = Reading()
    for path in sorted((out / "data" / "impressions").iterdir()):
        if path.suffix == ".gz":
            lines, partial = _gzip_lines(path)
        else:
            lines, partial = path.read_bytes().split(b"\n")[:-1], False
        for line in lines:
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                reading.reject("malformed_json")
                continue
            if not isinstance(record, dict):
                reading.reject("not_an_object")
            elif not {"user_id", "creative_id", "timestamp"} <= record.keys():
                reading.reject("missing_field")
            elif reason := _ts_reason(record["timestamp"]):
                reading.reject(reason)
            else:
                key = record.get("impression_id") or (
                    record["user_id"],
                    record["creative_id"],
                    _parse_ts(record["timestamp"]),
                    record["website"],
                )
                reading.accept(key, record)
        if partial:
            reading.reject("truncated_file")
    return reading


def read_clicks(out: Path) -> Reading:
    reading = Reading()
    for path in sorted((out / "data" / "clicks").iterdir()):
        with path.open(newline="") as f:
            rows = csv.reader(f)
            header = next(rows)
            for row in rows:
                if len(row) != len(header):
                    reading.reject("malformed_csv")
                    continue
                record = dict(zip(header, row, strict=True))
                value = record.get("value", "")
                if not all(record[c] for c in ("user_id", "campaign_id", "conversion_type")):
                    reading.reject("missing_field")
                elif reason := _ts_reason(record["timestamp"]):
                    reading.reject(reason)
                elif record["conversion_type"] not in TYPES:
                    reading.reject("unknown_conversion_type")
                elif value and not _is_number(value):
                    reading.reject("invalid_value")
                else:
                    key = record.get("event_id") or (
                        _parse_ts(record["timestamp"]),
                        record["user_id"],
                        record["campaign_id"],
                        record["conversion_type"],
                    )
                    reading.accept(key, record)
    return reading


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_bids(out: Path) -> tuple[Reading, dict[str, dict[str, Any]]]:
    """The bid requests, and per file its codec and writer schema."""
    reading = Reading()
    files = {}
    for path in sorted((out / "data" / "bid_requests").iterdir()):
        with path.open("rb") as f:
            reader = fastavro.reader(f)
            files[path.name] = {"codec": reader.codec, "schema": reader.writer_schema}
            for raw in reader:
                record = cast(dict[str, Any], raw)
                auction = record.get("id") or record["auction_details"]["auction_id"]
                reading.accept(auction, record)
    return reading, files


def _creative_campaign(out: Path) -> dict[int, int]:
    with (out / "dims" / "creatives.csv").open(newline="") as f:
        return {int(r["creative_id"]): int(r["campaign_id"]) for r in csv.DictReader(f)}


# --- the tests ---


def test_public_names_are_the_intended_ones() -> None:
    assert advertisex.generate.__all__ == ["generate"]


def test_same_seed_gives_the_same_bytes_and_another_seed_does_not(tmp_path: Path) -> None:
    def files(out: Path) -> dict[str, bytes]:
        return {str(p.relative_to(out)): p.read_bytes() for p in out.rglob("*") if p.is_file()}

    first = generate(tmp_path / "a", impressions=3_000, days=2, seed=11, start=START)
    second = generate(tmp_path / "b", impressions=3_000, days=2, seed=11, start=START)
    other = generate(tmp_path / "c", impressions=3_000, days=2, seed=12, start=START)
    assert first == second
    a, b, c = files(tmp_path / "a"), files(tmp_path / "b"), files(tmp_path / "c")
    assert len(a) > 15
    assert a.keys() == b.keys()
    assert [name for name in a if a[name] != b[name]] == []
    assert a["truth.json"] != c["truth.json"]
    assert first != other


def test_truth_file_is_the_returned_truth(dataset: tuple[Path, dict[str, Any]]) -> None:
    out, truth = dataset
    text = (out / "truth.json").read_text()
    assert json.loads(text) == truth
    assert text == json.dumps(truth, indent=2, sort_keys=True) + "\n"
    assert (truth["seed"], truth["start"], truth["days"]) == (7, START.isoformat(), DAYS)


def test_received_is_valid_plus_duplicates_plus_rejects(
    dataset: tuple[Path, dict[str, Any]],
) -> None:
    _, truth = dataset
    for source in truth["sources"].values():
        rejected = sum(source["rejected_by_reason"].values())
        assert source["received"] == source["valid"] + source["duplicates"] + rejected
        assert source["duplicates"] >= 1


def test_every_fault_kind_is_present(dataset: tuple[Path, dict[str, Any]]) -> None:
    _, truth = dataset
    sources = truth["sources"]
    assert set(sources["impressions"]["rejected_by_reason"]) == IMPRESSION_REASONS
    assert set(sources["clicks_conversions"]["rejected_by_reason"]) == CLICK_REASONS
    assert sources["bid_requests"]["rejected_by_reason"] == {}
    assert sources["impressions"]["rejected_by_reason"]["truncated_file"] == 1
    for source in ("impressions", "clicks_conversions"):
        counts = sources[source]["rejected_by_reason"].values()
        assert all(n >= 1 for n in counts)
    # Small rates: a few tenths of a percent per kind.
    assert sum(sources["impressions"]["rejected_by_reason"].values()) < 0.05 * 5_000


def test_independent_readers_agree_with_the_truth(dataset: tuple[Path, dict[str, Any]]) -> None:
    out, truth = dataset
    sources = truth["sources"]
    assert read_impressions(out).as_truth() == sources["impressions"]
    assert read_clicks(out).as_truth() == sources["clicks_conversions"]
    assert read_bids(out)[0].as_truth() == sources["bid_requests"]


def test_campaign_counts_are_over_valid_deduplicated_events(
    dataset: tuple[Path, dict[str, Any]],
) -> None:
    out, truth = dataset
    campaign_of = _creative_campaign(out)
    found: dict[str, Counter[str]] = {c: Counter() for c in truth["campaigns"]}
    for record in read_impressions(out).valid:
        found[str(campaign_of[record["creative_id"]])]["impressions"] += 1
    for record in read_clicks(out).valid:
        kind = "clicks" if record["conversion_type"] == "click" else "conversions"
        found[record["campaign_id"]][kind] += 1
    for campaign, counts in truth["campaigns"].items():
        assert {k: v for k, v in counts.items() if v} == dict(found[campaign]), campaign
    assert (
        sum(c["impressions"] for c in truth["campaigns"].values())
        == (truth["sources"]["impressions"]["valid"])
    )


def test_valid_timestamps_are_inside_the_window_some_with_an_offset(
    dataset: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = dataset
    low = dt.datetime.combine(START, dt.time(), dt.UTC)
    high = low + dt.timedelta(days=DAYS)
    stamps = [r["timestamp"] for r in read_impressions(out).valid]
    stamps += [r["timestamp"] for r in read_clicks(out).valid]
    assert all(low <= ts < high for ts in map(_parse_ts, stamps) if ts)
    offsets = [s for s in stamps if s[-6] in "+-" and "T" in s]
    assert offsets, "some impressions carry ISO-8601 timestamps with an offset"
    assert any(s.endswith("+02:00") for s in offsets)
    bids, _ = read_bids(out)
    bid_times = [r["timestamp"] for r in bids.valid if "timestamp" in r]
    assert bid_times and all(low <= ts < high for ts in bid_times)


def test_clicks_and_conversions_point_at_real_earlier_events(
    dataset: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = dataset
    campaign_of = _creative_campaign(out)
    impressions = {
        r["impression_id"]: r for r in read_impressions(out).valid if "impression_id" in r
    }
    events = [r for r in read_clicks(out).valid if r.get("event_id")]
    clicks = {r["event_id"]: r for r in events if r["conversion_type"] == "click"}
    attribution = pq.read_table(out / "truth_attribution.parquet").to_pylist()
    click_of = {a["event_id"]: a["click_event_id"] for a in attribution}
    assert len(attribution) == len(read_clicks(out).valid)
    for event in events:
        impression = impressions[event["impression_id"]]
        assert int(event["user_id"]) == impression["user_id"]
        assert int(event["campaign_id"]) == campaign_of[impression["creative_id"]]
        assert int(event["creative_id"]) == impression["creative_id"]
        event_ts, impression_ts = _parse_ts(event["timestamp"]), _parse_ts(impression["timestamp"])
        assert event_ts and impression_ts
        if event["conversion_type"] == "click":
            assert click_of[event["event_id"]] is None
            # <=: the injected fast clicks (invalid traffic) come in their impression's second
            assert dt.timedelta(0) <= event_ts - impression_ts < dt.timedelta(hours=24)
        else:
            click = clicks[click_of[event["event_id"]]]
            assert click["impression_id"] == event["impression_id"]
            click_ts = _parse_ts(click["timestamp"])
            assert click_ts and dt.timedelta(0) < event_ts - click_ts < dt.timedelta(days=7)


def test_seed_shapes_are_present(dataset: tuple[Path, dict[str, Any]]) -> None:
    out, _ = dataset
    legacy = [
        json.loads(line)
        for p in (out / "data" / "impressions").glob("*.ndjson")
        for line in p.read_text().splitlines()
        if '"impression_id"' not in line and line.startswith('{"creative_id"')
    ]
    assert legacy and all(
        list(r) == ["creative_id", "user_id", "timestamp", "website"] for r in legacy
    )
    headers = {p.read_text().split("\n", 1)[0] for p in (out / "data" / "clicks").glob("*.csv")}
    assert "timestamp,user_id,campaign_id,conversion_type" in headers
    _, files = read_bids(out)
    shapes = {tuple(f["name"] for f in info["schema"]["fields"]) for info in files.values()}
    assert ("user_info", "auction_details", "ad_targeting") in shapes


def test_avro_codecs_and_a_second_writer_schema(dataset: tuple[Path, dict[str, Any]]) -> None:
    out, _ = dataset
    _, files = read_bids(out)
    assert {info["codec"] for info in files.values()} == {"deflate", "snappy"}
    openrtb = [
        info["schema"] for info in files.values() if info["schema"]["fields"][0]["name"] == "id"
    ]
    distinct = {json.dumps(s, sort_keys=True) for s in openrtb}
    assert len(distinct) == 2
    evolved = [s for s in openrtb if any("default" in f for f in s["fields"])]
    assert len(evolved) == 1
    site = next(f for f in evolved[0]["fields"] if f["name"] == "site")["type"]
    assert [f["name"] for f in site["fields"]] == ["domain"]
    first = next(s for s in openrtb if s not in evolved)
    assert first["fields"][1]["type"][1]["logicalType"] == "timestamp-millis"


def test_gzip_files_and_the_cut_short_one(dataset: tuple[Path, dict[str, Any]]) -> None:
    out, _ = dataset
    packed = sorted((out / "data" / "impressions").glob("*.gz"))
    broken = []
    for path in packed:
        try:
            gzip.decompress(path.read_bytes())
        except EOFError:
            broken.append(path)
    assert len(packed) >= 2
    assert len(broken) == 1
    lines, partial = _gzip_lines(broken[0])
    assert lines and partial


def test_without_faults_everything_is_valid_once(tmp_path: Path) -> None:
    truth = generate(tmp_path, impressions=4_000, days=2, seed=3, start=START, faults=False)
    for name, source in truth["sources"].items():
        assert source["received"] == source["valid"], name
        assert source["duplicates"] == 0
        assert source["rejected_by_reason"] == {}
    assert truth["sources"]["impressions"]["valid"] == 4_000
    assert read_impressions(tmp_path).as_truth() == truth["sources"]["impressions"]
    assert read_clicks(tmp_path).as_truth() == truth["sources"]["clicks_conversions"]
    assert read_bids(tmp_path)[0].as_truth() == truth["sources"]["bid_requests"]


def test_counts_can_be_fixed(tmp_path: Path) -> None:
    truth = generate(
        tmp_path, impressions=4_000, days=2, seed=5, clicks=400, bid_requests=1_234, faults=False
    )
    campaigns = truth["campaigns"].values()
    assert sum(c["clicks"] + c["conversions"] for c in campaigns) == 400
    assert 0 < sum(c["conversions"] for c in campaigns) < 40
    assert truth["sources"]["clicks_conversions"]["valid"] == 400
    assert truth["sources"]["bid_requests"]["valid"] == 1_234
    today = dt.datetime.now(dt.UTC).date()
    assert truth["start"] == (today - dt.timedelta(days=2)).isoformat()


def test_traffic_looks_real(tmp_path: Path) -> None:
    truth = generate(tmp_path, impressions=60_000, days=2, seed=9, start=START, faults=False)
    campaigns = truth["campaigns"].values()
    impressions = sum(c["impressions"] for c in campaigns)
    clicks = sum(c["clicks"] for c in campaigns)
    conversions = sum(c["conversions"] for c in campaigns)
    assert 0.001 <= clicks / impressions <= 0.02
    assert 0.01 <= conversions / clicks <= 0.1
    by_campaign = sorted(c["impressions"] for c in campaigns)
    assert by_campaign[-1] >= 5 * by_campaign[len(by_campaign) // 2]
    hours = Counter(
        ts.hour for r in read_impressions(tmp_path).valid if (ts := _parse_ts(r["timestamp"]))
    )
    assert max(hours.values()) >= 2 * min(hours.values())
    valid = read_impressions(tmp_path).valid
    users = Counter(r["user_id"] for r in valid)
    assert users.most_common(1)[0][1] >= 20 * (len(valid) / len(users))
    agents = {r["user_agent"] for r in valid if r.get("user_agent")}  # some lack one (IVT)
    assert len(agents) >= 25 and any("bot" in a for a in agents)
    hosts = {r["website"] for r in valid}
    assert any(h.startswith("m.") for h in hosts) and any(h.endswith(".co.uk") for h in hosts)


@pytest.mark.parametrize(
    ("argument", "value"), [("impressions", 0), ("days", 0), ("seed", -1), ("clicks", -5)]
)
def test_bad_arguments_are_refused(tmp_path: Path, argument: str, value: int) -> None:
    kwargs: dict[str, Any] = {"impressions": 100, "days": 1, "seed": 1, argument: value}
    with pytest.raises(ConfigError, match=argument):
        generate(tmp_path, **kwargs)
