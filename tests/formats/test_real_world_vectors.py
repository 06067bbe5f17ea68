"""Real-world vectors from shared/testdata through the real ingest path.

JSONTestSuite, Apache Avro's interop files, the OpenRTB spec examples and the csv-spectrum and
csvkit CSVs. What a user relies on: no vector crashes a run, every record is accepted or
rejected with a reason (received = accepted + rejected + duplicates), and the good records come
out with the right values, ids and line numbers.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path
from typing import Any

import fastavro
import pytest

from advertisex.config import Settings
from advertisex.formats import decode
from advertisex.pipeline.route import route
from advertisex.sources.batch import Format, RawBatch
from advertisex.sources.files import read_file_batches, sniff_file
from advertisex.store import Store
from tests.conftest import ingest, reconciled

PARSING = "json-test-suite/test_parsing"
AVRO = "apache-avro"
RTB = "iab-openrtb"
DECODE_REASONS = {"malformed_json", "not_an_object", "truncated_file"}
# DuckDB reads NaN and Infinity as numbers, as Python's json does (see testdata/README.md).
# They are not objects, so these vectors end as not_an_object; as an amount they are an
# invalid_value (test_json_nan_and_infinity_amounts_are_invalid_values).
NAN_INFINITY = {
    "n_number_NaN.json",
    "n_number_-NaN.json",
    "n_number_Inf.json",
    "n_number_infinity.json",
    "n_number_minus_infinity.json",
}


# -- helpers ---------------------------------------------------------------------------------


def rejects_by_line(store: Store, path: Path) -> dict[int, str]:
    return dict(
        store.con.execute(
            "SELECT source_record, reason FROM rejects WHERE source_uri = ? ORDER BY 1",
            [str(path.resolve())],
        ).fetchall()
    )


def per_file(store: Store) -> dict[str, tuple[int, int, int, int]]:
    """(received, accepted, rejected, duplicates) by file name, from the committed batches."""
    rows = store.con.execute(
        "SELECT source_uri, sum(received), sum(accepted), sum(rejected), sum(duplicates) "
        "FROM batches GROUP BY 1"
    ).fetchall()
    return {Path(uri).name: (int(r), int(a), int(j), int(d)) for uri, r, a, j, d in rows}


def decoded(
    path: Path, settings: Settings, store: Store
) -> tuple[list[RawBatch], list[dict[str, Any]], list[dict[str, Any]]]:
    """The file's batches and what the decoder makes of them: records and decode rejects."""
    batches = list(read_file_batches(sniff_file(path), settings.batch_bytes))
    records: list[dict[str, Any]] = []
    rejects: list[dict[str, Any]] = []
    for batch in batches:
        d = decode(batch, store.con)
        records += d.records.to_pylist()
        rejects += d.rejects.to_pylist()
    return batches, records, rejects


def fields(record: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if not k.startswith("_")}


def copy_as(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


def impression(n: int, **extra: str) -> str:
    """A valid impression line; `extra` values are JSON text, spliced in as written."""
    body = (
        f'"impression_id": "imp-{n}", "timestamp": "2024-05-01T10:00:00Z", '
        f'"user_id": "u{n}", "creative_id": "cr-1", "website": "example.com"'
    )
    for key, value in extra.items():
        body += f', "{key}": {value}'
    return "{" + body + "}"


# -- JSONTestSuite ---------------------------------------------------------------------------


def vectors(testdata: Path, prefix: str) -> list[Path]:
    return sorted((testdata / PARSING).glob(f"{prefix}_*.json"))


def one_line(path: Path) -> bytes | None:
    """The vector as one NDJSON line, or None if it spans lines."""
    body = path.read_bytes()
    body = body[:-1] if body.endswith(b"\n") else body
    return None if b"\n" in body else body


def lines_file(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def test_json_suite_is_complete(testdata: Path) -> None:
    counts = {p: len(vectors(testdata, p)) for p in ("y", "n", "i")}
    assert counts == {"y": 95, "n": 188, "i": 35}


def test_json_suite_n_lines_are_quarantined_and_their_neighbours_kept(
    tmp_path: Path, store: Store, settings: Settings, testdata: Path
) -> None:
    lines: list[bytes] = []
    bad: dict[int, str] = {}  # line number -> vector
    for path in vectors(testdata, "n"):
        body = one_line(path)
        if body is None or not body.strip():
            continue  # multi-line and blank vectors: see the whole-file tests
        lines.append(body)
        bad[len(lines)] = path.name
        lines.append(impression(len(lines)).encode())
    assert len(bad) == 183
    f = lines_file(tmp_path / "n.ndjson", lines)

    report = ingest(store, settings, f, source="impressions")

    assert report.files_failed == []
    c = reconciled(report, "impressions")
    assert (c.received, c.accepted, c.rejected, c.duplicates) == (366, 183, 183, 0)
    got = {bad.get(line, f"good line {line}"): r for line, r in rejects_by_line(store, f).items()}
    expected = {
        name: "not_an_object" if name in NAN_INFINITY else "malformed_json" for name in bad.values()
    }
    assert got == expected


def test_json_suite_y_lines_are_read_as_json(
    tmp_path: Path, store: Store, settings: Settings, testdata: Path
) -> None:
    lines: list[bytes] = []
    expected: dict[int, str] = {}
    for path in vectors(testdata, "y"):
        body = one_line(path)
        if body is None:
            continue
        lines.append(body)
        # Valid JSON is never malformed: objects reach the contract, other values are no record.
        kind = "missing_field" if isinstance(json.loads(body), dict) else "not_an_object"
        expected[len(lines)] = kind
    assert len(lines) == 93
    f = lines_file(tmp_path / "y.ndjson", lines)

    report = ingest(store, settings, f, source="impressions")

    assert report.files_failed == []
    c = reconciled(report, "impressions")
    assert (c.received, c.accepted, c.rejected) == (93, 0, 93)
    assert rejects_by_line(store, f) == expected


def test_json_suite_i_lines_never_crash_and_reconcile(
    tmp_path: Path, store: Store, settings: Settings, testdata: Path
) -> None:
    lines = [one_line(p) for p in vectors(testdata, "i")]
    assert None not in lines
    f = lines_file(tmp_path / "i.ndjson", [b for b in lines if b is not None])

    report = ingest(store, settings, f, source="impressions")

    assert report.files_failed == []
    c = reconciled(report, "impressions")
    assert (c.received, c.accepted, c.rejected) == (35, 0, 35)
    assert set(rejects_by_line(store, f)) == set(range(1, 36))
    assert set(c.rejected_by_reason) <= DECODE_REASONS | {"missing_field"}


def test_json_suite_documents_decode_as_one_document(
    tmp_path: Path, store: Store, settings: Settings, testdata: Path
) -> None:
    """Every vector that is a document (`[...]` or over many lines), decoded as a whole file."""
    checked = 0
    for path in vectors(testdata, "y") + vectors(testdata, "n") + vectors(testdata, "i"):
        text = path.read_bytes()
        if not (text.lstrip().startswith(b"[") or one_line(path) is None):
            continue
        if path.name == "n_string_unescaped_newline.json":
            continue  # a raw newline cuts it into two broken lines: see the runner test
        f = copy_as(path, tmp_path / (path.name + ".ndjson"))
        batches, records, rejects = decoded(f, settings, store)
        assert [b.fmt for b in batches] == [Format.JSON_DOC], path.name
        reasons = [r["_reason"] for r in rejects]
        if path.name.startswith("y_"):
            value = json.loads(text)
            assert reasons == [], path.name
            elements = value if isinstance(value, list) else [value]
            assert [json.loads(r["_raw"]) for r in records] == elements, path.name
        elif path.name.startswith("n_") and path.name not in NAN_INFINITY:
            assert (reasons, records) == (["malformed_json"], []), path.name
        elif path.name.startswith("n_"):
            assert reasons == [], path.name
            assert [r["_raw"].lstrip("-").lower()[:3] for r in records] in (["nan"], ["inf"])
        else:  # i_: implementation-defined: one bad document, or its one element
            assert (reasons, len(records)) in ((["malformed_json"], 0), ([], 1)), path.name
        checked += 1
    assert checked == 76 + 129 + 31


@pytest.mark.parametrize(
    ("name", "received", "reasons"),
    [
        ("n_array_newlines_unclosed.json", 1, {"malformed_json": 1}),
        ("n_string_unescaped_newline.json", 2, {"malformed_json": 2}),
        ("n_object_trailing_comma.json", 1, {"malformed_json": 1}),
        ("n_array_extra_comma.json", 1, {"malformed_json": 1}),
        ("n_structure_object_with_trailing_garbage.json", 1, {"malformed_json": 1}),
        ("n_number_NaN.json", 1, {"not_an_object": 1}),
        ("y_object_with_newlines.json", 1, {"missing_field": 1}),
        ("y_array_with_1_and_newline.json", 1, {"not_an_object": 1}),
        ("y_array_heterogeneous.json", 4, {"not_an_object": 3, "missing_field": 1}),
        # A byte-order mark opens the file; the object after it is read.
        ("i_structure_UTF-8_BOM_empty_object.json", 1, {"missing_field": 1}),
        # An empty file, or one of blanks, holds no record: nothing received, nothing failed.
        ("n_single_space.json", 0, {}),
        ("n_structure_no_data.json", 0, {}),
        ("n_structure_UTF8_BOM_no_data.json", 0, {}),
    ],
)
def test_json_suite_files_through_the_runner(
    tmp_path: Path,
    store: Store,
    settings: Settings,
    testdata: Path,
    name: str,
    received: int,
    reasons: dict[str, int],
) -> None:
    f = copy_as(testdata / PARSING / name, tmp_path / (name + ".ndjson"))

    report = ingest(store, settings, f, source="impressions")

    assert report.files_failed == []
    c = reconciled(report, "impressions")
    assert (c.received, c.accepted, dict(c.rejected_by_reason)) == (received, 0, reasons)


def test_json_suite_utf16_file_fails_with_a_plain_message(
    tmp_path: Path, store: Store, settings: Settings, testdata: Path
) -> None:
    name = "i_string_UTF-16LE_with_BOM.json"
    f = copy_as(testdata / PARSING / name, tmp_path / (name + ".ndjson"))

    report = ingest(store, settings, f, source="impressions")

    assert [(Path(p).name, m.split(": ", 1)[1]) for p, m in report.files_failed] == [
        (f.name, "it is UTF-16 text (byte-order mark ff fe); save it as UTF-8 and ingest it again")
    ]
    assert report.sources["impressions"].received == 0
    rows = store.con.execute("SELECT source, source_record, reason FROM rejects").fetchall()
    assert rows == [("impressions", None, "unreadable_file")]


def test_json_bom_and_trailing_commas(tmp_path: Path, store: Store, settings: Settings) -> None:
    f = tmp_path / "policy.ndjson"
    f.write_text(
        "\ufeff"
        + impression(1)
        + "\n"  # a BOM opens the file, not the first record
        + impression(2)[:-1]
        + ",}\n"  # a trailing comma: not JSON, though DuckDB reads it
        + impression(3, page_url='"https://example.com/?q=a,}"')
        + "\n"  # ",}" in a string
        + impression(4, tags='["a",]')
        + "\n",  # a trailing comma in a nested array
        encoding="utf-8",
    )

    report = ingest(store, settings, f)

    c = reconciled(report, "impressions")
    assert (c.received, c.accepted, c.rejected) == (4, 2, 2)
    accepted = store.con.execute("SELECT event_id FROM impressions ORDER BY 1").fetchall()
    assert accepted == [("imp-1",), ("imp-3",)]
    comma = "a comma before a closing bracket is not valid JSON"
    assert store.con.execute(
        "SELECT source_record, reason, detail FROM rejects ORDER BY 1"
    ).fetchall() == [(2, "malformed_json", comma), (4, "malformed_json", comma)]


def test_json_nan_and_infinity_amounts_are_invalid_values(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    f = tmp_path / "amounts.ndjson"
    f.write_text(
        impression(1, price="NaN")
        + "\n"
        + impression(2, price="-Infinity")
        + "\n"
        + impression(3, price="0.25")
        + "\n",
        encoding="utf-8",
    )

    report = ingest(store, settings, f)

    assert report.files_failed == []
    c = reconciled(report, "impressions")
    assert (c.accepted, dict(c.rejected_by_reason)) == (1, {"invalid_value": 2})


def test_amount_beyond_micros_is_an_invalid_value(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    f = tmp_path / "huge.ndjson"
    f.write_text(impression(1, price="1e300") + "\n", encoding="utf-8")

    report = ingest(store, settings, f)

    c = reconciled(report, "impressions")
    assert (c.accepted, dict(c.rejected_by_reason)) == (0, {"invalid_value": 1})


# -- Apache Avro -----------------------------------------------------------------------------


def weather(testdata: Path) -> list[dict[str, Any]]:
    text = (testdata / AVRO / "share/test/data/weather.json").read_text()
    return [json.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("name", ["weather.avro", "weather-deflate.avro", "weather-snappy.avro"])
def test_avro_weather_codecs_decode_the_reference_records(
    store: Store, settings: Settings, testdata: Path, name: str
) -> None:
    path = testdata / AVRO / "share/test/data" / name

    _, records, rejects = decoded(path, settings, store)
    report = ingest(store, settings, path, source="bid_requests")

    assert [fields(r) for r in records] == weather(testdata)
    assert [r["_record"] for r in records] == [1, 2, 3, 4, 5]
    assert rejects == []
    # Not bid requests: every record decodes, then fails the contract for its missing id.
    c = reconciled(report, "bid_requests")
    assert (c.received, c.accepted, dict(c.rejected_by_reason)) == (5, 0, {"missing_field": 5})


def test_avro_weather_sorted_holds_the_same_records(
    store: Store, settings: Settings, testdata: Path
) -> None:
    _, records, _ = decoded(
        testdata / AVRO / "share/test/data/weather-sorted.avro", settings, store
    )

    # Sorted by the schema's sort order (weather.avsc): the 012650 station's records first.
    w = weather(testdata)
    assert [fields(r) for r in records] == [w[3], w[4], w[0], w[1], w[2]]


def test_avro_zstd_decodes_or_is_quarantined_cleanly(
    store: Store, settings: Settings, testdata: Path
) -> None:
    path = testdata / AVRO / "share/test/data/weather-zstd.avro"

    _, records, rejects = decoded(path, settings, store)
    report = ingest(store, settings, path, source="bid_requests")

    assert report.files_failed == []
    c = reconciled(report, "bid_requests")
    if records:  # a zstandard library is installed
        assert [fields(r) for r in records] == weather(testdata)
        assert dict(c.rejected_by_reason) == {"missing_field": 5}
    else:  # one block of 5 records, kept whole in quarantine for a later replay
        assert [(r["_reason"], r["_record"]) for r in rejects] == [("bad_avro_block", 1)]
        assert "zstandard" in rejects[0]["_detail"]
        assert (c.received, dict(c.rejected_by_reason)) == (1, {"bad_avro_block": 1})


@pytest.mark.parametrize(
    ("path", "count"),
    [
        ("lang/js/test/dat/person-10.avro", 10),
        ("lang/c/tests/avro-1237-good.avro", 2),
        ("lang/c/tests/avro-1238-good.avro", 2),
        ("lang/c/tests/avro-1279-codec.avro", 3),
        ("lang/c/tests/avro-1279-no-codec.avro", 3),
        ("share/test/data/schemas/simple/data.avro", 3),
        ("share/test/data/schemas/withUnion/data.avro", 3),
        ("share/test/data/syncInMeta.avro", 6001),
    ],
)
def test_avro_good_files_decode_fully(
    store: Store, settings: Settings, testdata: Path, path: str, count: int
) -> None:
    f = testdata / AVRO / path

    _, records, rejects = decoded(f, settings, store)
    report = ingest(store, settings, f, source="bid_requests")

    assert rejects == []
    assert [r["_record"] for r in records] == list(range(1, count + 1))
    assert report.files_failed == []
    c = reconciled(report, "bid_requests")
    assert (c.received, c.accepted, dict(c.rejected_by_reason)) == (
        count,
        0,
        {"missing_field": count},
    )


def test_avro_values_match_a_reference_reader(
    store: Store, settings: Settings, testdata: Path
) -> None:
    """fastavro as the reference, where it can read the file at all."""
    base = testdata / AVRO
    person = base / "lang/js/test/dat/person-10.avro"
    with person.open("rb") as f:
        expected = list(fastavro.reader(f))
    _, records, _ = decoded(person, settings, store)
    assert [fields(r) for r in records] == expected

    # A schema that is not a record (a union of null and int) decodes to one column, `value`.
    _, records, _ = decoded(base / "lang/c/tests/avro-1237-good.avro", settings, store)
    assert [fields(r) for r in records] == [{"value": None}, {"value": 100}]

    # A field whose union mixes types Arrow cannot hold in one column is kept as text.
    _, records, _ = decoded(base / "share/test/data/schemas/withUnion/data.avro", settings, store)
    assert [fields(r) for r in records] == [
        {"data1": "textValue", "data2": None},
        {"data1": "123", "data2": '{"d1": false}'},
        {"data1": "3", "data2": '{"d1": "text value"}'},
    ]

    # Binary (non-UTF-8) header metadata, on which fastavro itself fails: consecutive IDs.
    _, records, _ = decoded(base / "share/test/data/syncInMeta.avro", settings, store)
    assert [r["ID"] for r in records] == list(range(1, 6002))
    assert fields(records[0]) == {
        "ID": 1,
        "First": "Dante",
        "Last": "Hicks",
        "Phone": "(0)",
        "Age": 32,
    }


@pytest.mark.parametrize(
    ("path", "received", "rejects"),
    [
        # The file ends inside its only block.
        (
            "lang/c/tests/avro-1238-truncated.avro",
            1,
            [(1, "file ends inside the block at byte 83")],
        ),
        # The block's union index is out of range; one stray byte follows the last block.
        (
            "lang/c/tests/avro-1237-bad-union-discriminant.avro",
            2,
            [(1, "block of 2 records at byte 83"), (3, "file ends inside the block at byte 105")],
        ),
        # A newline after the last sync marker; the 10 records before it decode.
        (
            "lang/js/test/dat/person-10.no-codec.avro",
            11,
            [(11, "file ends inside the block at byte 494")],
        ),
    ],
)
def test_avro_broken_files_quarantine_bad_blocks(
    store: Store,
    settings: Settings,
    testdata: Path,
    path: str,
    received: int,
    rejects: list[tuple[int, str]],
) -> None:
    f = testdata / AVRO / path

    report = ingest(store, settings, f, source="bid_requests")

    assert report.files_failed == []
    c = reconciled(report, "bid_requests")
    assert (c.received, c.accepted, c.rejected_by_reason["bad_avro_block"]) == (
        received,
        0,
        len(rejects),
    )
    rows = store.con.execute(
        "SELECT source_record, detail FROM rejects WHERE reason = 'bad_avro_block' ORDER BY 1"
    ).fetchall()
    assert [(n, d[: len(want)]) for (n, d), (_, want) in zip(rows, rejects, strict=True)] == rejects


def test_avro_1_2_container_fails_with_a_plain_message(
    store: Store, settings: Settings, testdata: Path
) -> None:
    f = testdata / AVRO / "share/test/data/test.avro12"

    report = ingest(store, settings, f, source="bid_requests")

    assert len(report.files_failed) == 1
    path, message = report.files_failed[0]
    assert path == str(f)
    assert message == (
        f"cannot read {f}: an Avro container of an old version (magic 4f 62 6a 00); only "
        "Avro 1.3+ containers (4f 62 6a 01) can be read, rewrite it with a current Avro library"
    )
    assert report.sources["bid_requests"].received == 0
    reasons = store.con.execute("SELECT source, reason FROM rejects").fetchall()
    assert reasons == [("bid_requests", "unreadable_file")]


# -- OpenRTB ---------------------------------------------------------------------------------


def rtb_requests(testdata: Path) -> list[Path]:
    spec = sorted((testdata / RTB / "openrtb-2.6-spec-examples/request").glob("*.json"))
    converter = sorted((testdata / RTB / "openrtb3-converter/master/request").glob("*_25.json"))
    return spec + converter


def test_openrtb_requests_are_routed_decoded_and_accepted_by_id(
    store: Store, settings: Settings, testdata: Path
) -> None:
    paths = rtb_requests(testdata)
    assert len(paths) == 7 + 15
    ids = {p.name: json.loads(p.read_bytes())["id"] for p in paths}
    for p in paths:
        fi = sniff_file(p)
        assert route(fi).name == "bid_requests", p.name
        batches, records, rejects = decoded(p, settings, store)
        assert ([b.fmt for b in batches], len(records), rejects) == ([Format.JSON_DOC], 1, [])

    report = ingest(store, settings, *paths)  # no source forced

    assert report.files_failed == []
    c = reconciled(report, "bid_requests")
    assert (c.received, c.rejected) == (22, 0)
    # Many converter payloads reuse the spec's request id: the first is kept, the rest are
    # duplicates, file by file in ingest order.
    seen: set[str] = set()
    expected: dict[str, tuple[int, int, int, int]] = {}
    for p in paths:
        first = ids[p.name] not in seen
        seen.add(ids[p.name])
        expected[p.name] = (1, int(first), 0, int(not first))
    assert per_file(store) == expected
    stored = store.con.execute("SELECT event_id FROM bid_requests").fetchall()
    assert sorted(e for (e,) in stored) == sorted(seen)
    assert (c.accepted, c.duplicates) == (len(seen), 22 - len(seen))


def test_openrtb_invalid_json_is_quarantined_as_one_document(
    store: Store, settings: Settings, testdata: Path
) -> None:
    paths = [
        testdata
        / RTB
        / "openrtb-2.6-spec-examples/invalid-as-published"
        / "7-9-6-4-dooh-video-bid-response.json",
        testdata / RTB / "openrtb3-converter/master/request/INV_JSON_BANNER_SITE_30.json",
        testdata / RTB / "openrtb3-converter/master/request/BANNER_SITE_25_mandatory_.json",
    ]
    for p in paths:
        with pytest.raises(ValueError):
            json.loads(p.read_bytes())

    report = ingest(store, settings, *paths)

    assert report.files_failed == []
    c = reconciled(report, "bid_requests")
    assert (c.received, c.accepted, dict(c.rejected_by_reason)) == (3, 0, {"malformed_json": 3})
    rows = store.con.execute(
        "SELECT source_uri, source_record, source, length(raw) FROM rejects ORDER BY 1"
    ).fetchall()
    assert [(Path(u).name, n, s) for u, n, s, _ in rows] == sorted(
        (p.name, 1, "bid_requests") for p in paths
    )
    # The whole document is kept, so a fixed copy can be replayed.
    assert [size for *_, size in rows] == [
        len(p.read_text()) for p in sorted(paths, key=lambda p: str(p))
    ]


def test_openrtb_same_request_twice_is_one_event(
    tmp_path: Path, store: Store, settings: Settings, testdata: Path
) -> None:
    src = testdata / RTB / "openrtb-2.6-spec-examples/request/6-2-1-example-1-simple-banner.json"
    a = copy_as(src, tmp_path / "a.json")
    b = copy_as(src, tmp_path / "b.json")

    report = ingest(store, settings, a, b)
    again = ingest(store, settings, a)

    c = reconciled(report, "bid_requests")
    assert (c.received, c.accepted, c.duplicates) == (2, 1, 1)
    assert store.con.execute("SELECT event_id FROM bid_requests").fetchall() == [
        ("80ce30c53c16e6ede735f123ef6e32361bfc7b22",)
    ]
    assert again.files_skipped == [str(a.resolve())]


# -- CSV -------------------------------------------------------------------------------------


def spectrum(testdata: Path) -> list[Path]:
    csvs = sorted((testdata / "csv-spectrum/csvs").glob("*.csv"))
    return [p for p in csvs if p.stem != "location_coordinates"]  # its JSON is wrong upstream


def record_lines(path: Path) -> list[int]:
    """The line each data record starts on, by Python's csv module."""
    reader = csv.reader(io.StringIO(path.read_text(encoding="utf-8"), newline=""))
    starts, end = [], 0
    for _ in reader:
        starts.append(end + 1)
        end = reader.line_num
    return starts[1:]


def test_csv_spectrum_values_and_counts(store: Store, settings: Settings, testdata: Path) -> None:
    paths = spectrum(testdata)
    assert len(paths) == 11
    expected_rows = {
        p.name: json.loads((testdata / "csv-spectrum/json" / f"{p.stem}.json").read_text())
        for p in paths
    }
    for p in paths:
        _, records, rejects = decoded(p, settings, store)
        assert rejects == [], p.name
        assert [fields(r) for r in records] == expected_rows[p.name], p.name

    report = ingest(store, settings, *paths, source="clicks_conversions")

    assert report.files_failed == []
    c = reconciled(report, "clicks_conversions")
    assert c.accepted == 0  # none has a timestamp or user: rejected, every one, with a reason
    assert {name: counts[0] for name, counts in per_file(store).items()} == {
        name: len(rows) for name, rows in expected_rows.items()
    }
    for p in paths:
        assert sorted(rejects_by_line(store, p)) == record_lines(p), p.name


# Per file: (received, rejected by reason, line of each reject) or the failure message's end.
CSVKIT: dict[str, tuple[int, dict[str, int], list[int]] | str] = {
    "bad.csv": (3, {"malformed_csv": 2, "missing_field": 1}, [2, 3, 4]),
    "bad_skip_lines.csv": (3, {"malformed_csv": 2, "missing_field": 1}, [5, 6, 7]),
    "blanks.csv": (1, {"missing_field": 1}, [2]),
    "blanks_converted.csv": (1, {"missing_field": 1}, [2]),
    "date_like_number.csv": (1, {"missing_field": 1}, [2]),
    "dummy.csv": (1, {"missing_field": 1}, [2]),
    "dummy.csv.bz2": (1, {"missing_field": 1}, [2]),
    "dummy.csv.gz": (1, {"missing_field": 1}, [2]),
    "dummy.tsv": (1, {"missing_field": 1}, [2]),
    "dummy_col_shuffled_ragged.csv": (1, {"missing_field": 1}, [2]),
    "empty.csv": (0, {}, []),
    "mac_newlines.csv": (2, {"missing_field": 2}, [2, 3]),
    "no_header_row.csv": (0, {}, []),  # its one line is read as the header
    "null_byte.csv": (1, {"missing_field": 1}, [2]),
    "optional_quote_characters.csv": (1, {"missing_field": 1}, [2]),
    "sniff_limit.csv": (1, {"missing_field": 1}, [2]),
    "sort_ints_nulls.csv": (3, {"missing_field": 3}, [2, 3, 4]),
    "test_date_format.csv": (2, {"missing_field": 2}, [2, 3]),
    "test_empty_columns.csv": (3, {"malformed_csv": 1, "missing_field": 2}, [2, 3, 4]),
    "test_empty_columns_long_row.csv": (1, {"malformed_csv": 1}, [2]),
    "test_empty_columns_short_row.csv": (1, {"malformed_csv": 1}, [2]),
    "test_extra_header.csv": (1, {"malformed_csv": 1}, [2]),
    "test_header_newline.csv": (1, {"missing_field": 1}, [5]),
    "test_latin1.csv": (2, {"missing_field": 2}, [2, 3]),
    "test_locale.csv": (1, {"missing_field": 1}, [2]),
    "test_no_leading_zeroes.csv": (1, {"missing_field": 1}, [2]),
    "test_numeric_date_format.csv": (2, {"missing_field": 2}, [2, 3]),
    "test_precision.csv": (1, {"missing_field": 1}, [2]),
    "test_skip_lines.csv": (1, {"missing_field": 1}, [5]),
    "test_utf16_big.csv": "it is UTF-16 text (byte-order mark fe ff); save it as UTF-8 and ingest "
    "it again",
    "test_utf16_little.csv": "it is UTF-16 text (byte-order mark ff fe); save it as UTF-8 and "
    "ingest it again",
    "test_utf8.csv": (2, {"missing_field": 2}, [2, 3]),
    "test_utf8_bom.csv": (2, {"missing_field": 2}, [2, 3]),
    "testjson_multiline.json": (2, {"missing_field": 2}, [1, 2]),
    "testjson_multiline_converted.csv": (2, {"missing_field": 2}, [2, 3]),
    "testjson_nested.json": (2, {"missing_field": 2}, [1, 2]),
    "testjson_nested_converted.csv": (2, {"missing_field": 2}, [2, 3]),
}


def test_csvkit_files_load_or_are_quarantined_or_fail_plainly(
    store: Store, settings: Settings, testdata: Path
) -> None:
    folder = testdata / "csvkit-examples"

    report = ingest(store, settings, folder, source="clicks_conversions")

    failed = {Path(p).name: m for p, m in report.files_failed}
    for name, message in failed.items():
        assert message == f"cannot read {folder / name}: {CSVKIT[name]}"
    loaded = {}
    for name, (received, *_rest) in per_file(store).items():
        reasons = dict(
            store.con.execute(
                "SELECT reason, count(*) FROM rejects WHERE source_uri = ? GROUP BY 1",
                [str(folder / name)],
            ).fetchall()
        )
        loaded[name] = (received, reasons, sorted(rejects_by_line(store, folder / name)))
    assert {**loaded, **{n: CSVKIT[n] for n in failed}} == CSVKIT
    c = reconciled(report, "clicks_conversions")
    assert c.accepted == 0


def test_csvkit_encodings_decode_to_the_same_text(
    store: Store, settings: Settings, testdata: Path
) -> None:
    folder = testdata / "csvkit-examples"
    want = [{"foo": "1", "bar": "2", "baz": "3"}, {"foo": "4", "bar": "5", "baz": "ʤ"}]
    for name in ("test_utf8.csv", "test_utf8_bom.csv"):  # the BOM is not part of "foo"
        _, records, _ = decoded(folder / name, settings, store)
        assert [fields(r) for r in records] == want, name
    _, records, _ = decoded(folder / "test_latin1.csv", settings, store)
    assert [fields(r) for r in records] == [
        {"a": "1", "b": "2", "c": "3"},
        {"a": "4", "b": "5", "c": "©"},
    ]
    _, records, _ = decoded(folder / "mac_newlines.csv", settings, store)
    assert [fields(r) for r in records] == [
        {"a": "1", "b": "2", "c": "3"},
        {"a": "Once upon\na time", "b": "5", "c": "6"},
    ]


def test_clicks_csv_with_crlf_bom_multiline_quotes_and_latin1(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    rows = [
        "event_id,timestamp,user_id,campaign_id,conversion_type,value,currency",
        'c-1,2024-05-01 10:00:00,jos\xe9,"Summer, 2024\r\nEU",purchase,12.50,EUR',
        "c-2,2024-05-01 10:05:00,u2,camp-7,click,,",
        "c-3,2024-05-01 10:06:00,u3,camp-7,click",  # one field short
        "c-4,2024-05-01 10:07:00,u4,camp-7,teleport,,",
        '"c-5",2024-05-01 10:08:00,"M\xfcller, Anna",camp-7,signup,0,EUR',
    ]
    f = tmp_path / "clicks.csv"
    f.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(rows).encode("latin-1") + b"\r\n")

    report = ingest(store, settings, f)

    c = reconciled(report, "clicks_conversions")
    assert (c.received, c.accepted, c.rejected) == (5, 3, 2)
    stored = store.con.execute(
        "SELECT event_id, event_time::VARCHAR, user_id, campaign_id, event_type, value_micros, "
        "currency FROM clicks_conversions ORDER BY event_id"
    ).fetchall()
    assert stored == [
        ("c-1", "2024-05-01 10:00:00", "josé", "Summer, 2024\r\nEU", "purchase", 12_500_000, "EUR"),
        ("c-2", "2024-05-01 10:05:00", "u2", "camp-7", "click", None, "USD"),
        ("c-5", "2024-05-01 10:08:00", "Müller, Anna", "camp-7", "signup", 0, "EUR"),
    ]
    # The quoted value spans lines 2-3, so the bad rows sit on lines 5 and 6.
    rejects = store.con.execute(
        "SELECT source_record, reason, raw FROM rejects ORDER BY 1"
    ).fetchall()
    assert rejects == [
        (5, "malformed_csv", "c-3,2024-05-01 10:06:00,u3,camp-7,click"),
        (6, "unknown_conversion_type", "c-4,2024-05-01 10:07:00,u4,camp-7,teleport,,"),
    ]
