"""The HTTP collector against a real uvicorn server on loopback and a real DuckDB file."""

from __future__ import annotations

import gzip
import io
import json
import os
import re
import signal
import struct
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import fastavro
import httpx
import pytest

from advertisex.api.collector import sign_url
from advertisex.api.trackers import PIXEL
from advertisex.config import Settings, load_settings
from advertisex.pipeline.microbatch import MicroBatcher
from tests.api.conftest import HTTP, collector, ndjson, start_serve, wait_ready
from tests.conftest import SEED_BID_SCHEMA, Cli, seed_bid


def rows(db: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_ndjson_post_answers_counts_after_commit(settings: Settings) -> None:
    body = ndjson(["a", "b", "b"]) + b'{"broken\n\n'
    with collector(settings) as (url, _):
        r = HTTP.post(url + "/v1/impressions", content=body, headers={"X-Request-Id": "req-1"})
        assert r.status_code == 202
        assert r.json() == {
            "request_id": "req-1",
            "received": 4,
            "accepted": 2,
            "rejected": 1,
            "duplicates": 1,
            "rejected_by_reason": {"malformed_json": 1},
        }
        # A retried POST adds nothing: all duplicates is still a success.
        again = HTTP.post(url + "/v1/impressions", content=ndjson(["a", "b"]))
        assert again.status_code == 202
        assert again.json()["duplicates"] == 2
    assert rows(settings.db, "SELECT event_id FROM impressions ORDER BY 1") == [("a",), ("b",)]
    # The reject keeps its raw text and traces back to the request that sent it.
    assert rows(
        settings.db,
        "SELECT h.request_id, r.reason, r.raw FROM rejects r JOIN http_requests h "
        "ON r.batch_id = h.batch_id AND r.source_record BETWEEN h.first_record AND h.end_record",
    ) == [("req-1", "malformed_json", '{"broken')]


def test_concurrent_requests_coalesce_and_each_gets_its_own_counts(settings: Settings) -> None:
    with collector(settings) as (url, _):

        def post(i: int) -> dict[str, Any]:
            ids = [f"r{i}-{k}" for k in range(i + 1)]
            body = ndjson(ids) + (b"not json\n" if i % 2 else b"")
            r = HTTP.post(url + "/v1/impressions", content=body, timeout=30)
            assert r.status_code == 202
            return dict(r.json())

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, range(40)))
    for i, a in enumerate(answers):
        assert (a["accepted"], a["rejected"], a["duplicates"]) == (i + 1, i % 2, 0)
    total = sum(i + 1 for i in range(40))
    assert rows(settings.db, "SELECT count(*) FROM impressions") == [(total,)]
    (batches,) = rows(settings.db, "SELECT count(*) FROM batches")[0]
    assert batches < 40  # requests waiting together went to the store as one batch
    assert rows(settings.db, "SELECT count(DISTINCT request_id) FROM http_requests") == [(40,)]


def test_csv_bodies_with_one_header_coalesce_and_each_gets_its_own_counts(
    settings: Settings,
) -> None:
    header = "timestamp,user_id,campaign_id,conversion_type\n"

    def body(i: int) -> str:
        first = f"2026-11-01 10:{i:02d}:00,u{i},k1,click"
        short = "2026-11-01 10:00:00,u1,k1\n" if i % 3 == 0 else ""  # a field short
        quoted = f'2026-11-01 10:{i:02d}:01,"u{i}\nx",k1,signup\r\n'  # a newline in quotes
        return header + first + "\n\n" + quoted + short + first  # the last: a duplicate

    with collector(settings) as (url, _):

        def post(i: int) -> tuple[int, dict[str, Any]]:
            r = HTTP.post(url + "/v1/events", content=body(i), headers={"Content-Type": "text/csv"})
            return r.status_code, dict(r.json())

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(post, range(40)))
            # Quotes left open would swallow the bodies after it: this one goes alone.
            open_quote = pool.submit(
                HTTP.post, url + "/v1/events", content=header + '2026-11-01,"u,k1,click\n'
            )
        alone = open_quote.result()
    for i, (status, a) in enumerate(answers):
        rejected = {"malformed_csv": 1} if i % 3 == 0 else {}
        assert status == 202
        assert (a["received"], a["accepted"], a["duplicates"]) == (3 + len(rejected), 2, 1)
        assert a["rejected_by_reason"] == rejected
    assert (alone.status_code, alone.json()["rejected_by_reason"]) == (400, {"malformed_csv": 1})
    assert rows(
        settings.db, "SELECT count(*), count(DISTINCT user_id) FROM clicks_conversions"
    ) == [(80, 80)]
    (batches,) = rows(
        settings.db,
        "SELECT count(DISTINCT batch_id) FROM http_requests WHERE source = 'clicks_conversions'",
    )[0]
    assert batches < 40  # bodies waiting together went to the store as one batch
    # Each reject is traced to its request and to its line in that request's body (line 5).
    assert rows(
        settings.db,
        "SELECT count(*), count(DISTINCT h.request_id), min(r.source_record - h.first_record) "
        "FROM rejects r JOIN http_requests h ON r.batch_id = h.batch_id "
        "AND r.source_record BETWEEN h.first_record AND h.end_record "
        "WHERE r.raw = '2026-11-01 10:00:00,u1,k1'",
    ) == [(14, 14, 4)]


def test_json_array_gzip_and_csv_events(settings: Settings) -> None:
    array = json.dumps([json.loads(line) for line in ndjson(["x", "y"]).splitlines()])
    csv_body = (
        "timestamp,user_id,campaign_id,conversion_type\n"
        "2026-11-01 10:00:00,7,3,click\n"
        "2026-11-01 10:01:00,7,3,teleport\n"
    )
    with collector(settings) as (url, _):
        r = HTTP.post(
            url + "/v1/impressions",
            content=gzip.compress(array.encode()),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        assert (r.status_code, r.json()["accepted"]) == (202, 2)
        r = HTTP.post(url + "/v1/impressions", content=b"\xef\xbb\xbf" + ndjson(["z"]))
        assert (r.status_code, r.json()["accepted"]) == (202, 1)  # a byte-order mark is no record
        r = HTTP.post(url + "/v1/events", content=csv_body, headers={"Content-Type": "text/csv"})
        assert r.status_code == 202
        assert r.json()["rejected_by_reason"] == {"unknown_conversion_type": 1}
    assert rows(settings.db, "SELECT count(*) FROM impressions") == [(3,)]
    assert rows(settings.db, "SELECT event_type, campaign_id FROM clicks_conversions") == [
        ("click", "3")
    ]
    assert rows(settings.db, "SELECT source_record FROM rejects") == [(3,)]  # its CSV line


def test_bid_requests_avro_container_and_confluent_wire_format(tmp_path: Path) -> None:
    schemas = tmp_path / "schemas"
    schemas.mkdir()
    (schemas / "42.avsc").write_text(json.dumps(SEED_BID_SCHEMA))
    settings = load_settings(db=tmp_path / "s.duckdb", schema_dir=schemas)
    container = io.BytesIO()
    fastavro.writer(
        container, fastavro.parse_schema(SEED_BID_SCHEMA), [seed_bid("a1"), seed_bid("a2")]
    )
    single = io.BytesIO()
    fastavro.schemaless_writer(single, fastavro.parse_schema(SEED_BID_SCHEMA), seed_bid("a3"))
    wire = b"\x00" + struct.pack(">I", 42) + single.getvalue()
    with collector(settings) as (url, _):
        r = HTTP.post(url + "/v1/bid-requests", content=container.getvalue())
        assert (r.status_code, r.json()["accepted"]) == (202, 2)
        r = HTTP.post(url + "/v1/bid-requests", content=wire)
        assert (r.status_code, r.json()["accepted"]) == (202, 1)
        unknown = b"\x00" + struct.pack(">I", 7) + single.getvalue()
        r = HTTP.post(url + "/v1/bid-requests", content=unknown)
        assert r.status_code == 400
        assert r.json()["error"] == "unknown Avro schema id 7"
    assert rows(settings.db, "SELECT event_id, country FROM bid_requests ORDER BY 1") == [
        ("a1", "US"),
        ("a2", "US"),
        ("a3", "US"),
    ]


def test_nothing_acceptable_is_400_with_the_first_rejects(settings: Settings) -> None:
    with collector(settings) as (url, _):
        r = HTTP.post(url + "/v1/impressions", content=b'{"user_id": 1}\n[1]\n')
        empty = HTTP.post(url + "/v1/impressions", content=b"\n\n")
    assert r.status_code == 400
    assert [(x["record"], x["reason"]) for x in r.json()["rejects"]] == [
        (1, "missing_field"),
        (2, "not_an_object"),
    ]
    assert (empty.status_code, empty.json()["error"]) == (400, "the body holds no records")
    assert rows(settings.db, "SELECT count(*) FROM rejects") == [(2,)]  # kept in quarantine


def test_bodies_over_the_limit_get_413_even_when_gzip_hides_the_size(tmp_path: Path) -> None:
    settings = load_settings(db=tmp_path / "s.duckdb", collector_max_body_bytes=4096)
    big = ndjson([f"id{i}" for i in range(100)])
    assert len(big) > 4096
    with collector(settings) as (url, _):
        r = HTTP.post(url + "/v1/impressions", content=big)
        assert r.status_code == 413
        bomb = gzip.compress(big)
        assert len(bomb) < 4096
        r = HTTP.post(url + "/v1/impressions", content=bomb, headers={"Content-Encoding": "gzip"})
        assert r.status_code == 413
        assert "decompressed" in r.json()["error"]
    assert rows(settings.db, "SELECT count(*) FROM impressions") == [(0,)]


def test_api_key_per_source(tmp_path: Path) -> None:
    settings = load_settings(
        db=tmp_path / "s.duckdb", collector_api_keys={"impressions": "imp-key"}
    )
    with collector(settings) as (url, _):
        post = url + "/v1/impressions"
        assert HTTP.post(post, content=ndjson(["k"])).status_code == 401
        wrong = HTTP.post(post, content=ndjson(["k"]), headers={"X-API-Key": "nope"})
        assert wrong.status_code == 401
        # The impressions key does not open the events route (no key configured there).
        other = HTTP.post(
            url + "/v1/events", content=b"a,b\n1,2\n", headers={"X-API-Key": "imp-key"}
        )
        assert other.status_code == 401
        ok = HTTP.post(post, content=ndjson(["k"]), headers={"X-API-Key": "imp-key"})
        assert ok.status_code == 202
    assert rows(settings.db, "SELECT event_id FROM impressions") == [("k",)]


def test_trackers_pixel_and_signed_click_redirect(tmp_path: Path) -> None:
    settings = load_settings(db=tmp_path / "s.duckdb", tracker_secret="s3cret")
    landing = "https://shop.example/p?id=9"
    headers = {"User-Agent": "Mozilla/5.0 test"}
    with collector(settings) as (url, _):
        pixel = HTTP.get(
            url + "/t/imp",
            params={"imp": "i1", "uid": "u9", "crid": "c4", "site": "news.example"},
            headers=headers,
        )
        assert (pixel.status_code, pixel.headers["content-type"], pixel.content) == (
            200,
            "image/gif",
            PIXEL,
        )
        params = {"uid": "u9", "cid": "camp1", "crid": "c4", "imp": "i1", "url": landing}
        click = HTTP.get(url + "/t/click", params={**params, "sig": sign_url("s3cret", landing)})
        assert (click.status_code, click.headers["location"]) == (302, landing)
        # A URL signed with another secret, or altered, is not redirected to (no open redirect).
        forged = HTTP.get(
            url + "/t/click",
            params={**params, "url": "https://evil.example", "sig": sign_url("s3cret", landing)},
        )
        assert (forged.status_code, "location" in forged.headers) == (403, False)
    assert rows(
        settings.db, "SELECT event_id, user_id, creative_id, site, ip, user_agent FROM impressions"
    ) == [("i1", "u9", "c4", "news.example", "127.0.0.1", "Mozilla/5.0 test")]
    assert rows(
        settings.db,
        "SELECT event_type, user_id, campaign_id, impression_id FROM clicks_conversions",
    ) == [("click", "u9", "camp1", "i1")]


def _busy_count(url: str) -> float:
    text = HTTP.get(url + "/metrics/").text
    found = re.search(r'^advx_collector_busy_total\{route="impressions"\} (\S+)$', text, re.M)
    return float(found.group(1)) if found else 0.0


def test_slow_store_gets_503_with_retry_after_and_the_queue_stays_bounded(tmp_path: Path) -> None:
    limit = 64 * 1024
    settings = load_settings(db=tmp_path / "s.duckdb", collector_queue_bytes=limit)
    with collector(settings) as (url, app):
        batcher: MicroBatcher = app.state.batcher
        real = batcher.runner.process_batch

        # A store that takes 0.3 s per batch: simulated, as a real disk cannot be slowed here.
        def slow(*args: Any, **kw: Any) -> Any:
            time.sleep(0.3)
            return real(*args, **kw)

        batcher.runner.process_batch = slow  # type: ignore[method-assign]

        def post(i: int) -> tuple[int, str | None, list[str]]:
            ids = [f"s{i}-{k}" for k in range(100)]  # about 12 KiB
            r = HTTP.post(url + "/v1/impressions", content=ndjson(ids), timeout=60)
            return r.status_code, r.headers.get("retry-after"), ids

        busy_before = _busy_count(url)
        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(post, range(64)))
        high_water = batcher.high_water_bytes
        busy_counted = _busy_count(url) - busy_before
    statuses = [s for s, _, _ in results]
    assert set(statuses) == {202, 503}
    assert all(ra == "1" for s, ra, _ in results if s == 503)
    assert busy_counted == statuses.count(503)  # and /metrics counts them
    assert high_water <= limit
    acked = {i for s, _, ids in results if s == 202 for i in ids}
    stored = {r[0] for r in rows(settings.db, "SELECT event_id FROM impressions")}
    assert stored == acked


@pytest.mark.slow
def test_serve_killed_with_sigkill_loses_no_acknowledged_event(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    proc, url = start_serve(db)
    wait_ready(url)
    acked: list[str] = []
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(timeout=10) as http:
            for k in range(10_000):
                if stop.is_set():
                    return
                ids = [f"c{n}-{k}-{j}" for j in range(50)]
                try:
                    r = http.post(url + "/v1/impressions", content=ndjson(ids))
                except httpx.TransportError:
                    return  # killed mid-request: not acknowledged
                if r.status_code == 202:
                    acked.extend(ids)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(acked) < 2_000 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    stop.set()
    for t in threads:
        t.join(10)
    assert len(acked) >= 2_000
    stored = {r[0] for r in rows(db, "SELECT event_id FROM impressions")}
    assert set(acked) <= stored


@pytest.mark.slow
def test_serve_stops_on_sigterm_after_flushing_and_exits_0(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    proc, url = start_serve(db)
    wait_ready(url)
    with ThreadPoolExecutor(4) as pool:
        answers = list(
            pool.map(
                lambda i: HTTP.post(url + "/v1/impressions", content=ndjson([f"t{i}"])), range(20)
            )
        )
    assert {a.status_code for a in answers} == {202}
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert rows(db, "SELECT count(*) FROM impressions") == [(20,)]


def test_serve_refuses_a_public_address_without_api_keys(tmp_path: Path) -> None:
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "advertisex",
            "serve",
            "--db",
            str(tmp_path / "s.duckdb"),
            "--host",
            "0.0.0.0",
            "--port",
            "0",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert r.stderr.strip() == (
        "error: refusing to listen on 0.0.0.0 with no API keys; set collector_api_keys "
        "(ADVX_COLLECTOR_API_KEYS) or listen on 127.0.0.1"
    )


@pytest.mark.slow
def test_pixel_hits_answered_before_the_commit_survive_sigkill_through_the_spool(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.duckdb"
    # Batches wait 30 s: every hit below is answered while only in the spool.
    slow = {"ADVX_COLLECTOR_FLUSH_MS": "30000"}
    proc, url = start_serve(db, env=slow)
    wait_ready(url)
    ids = [f"px{i}" for i in range(300)]
    with ThreadPoolExecutor(8) as pool:
        answers = list(
            pool.map(
                lambda i: HTTP.get(url + "/t/imp", params={"imp": i, "uid": "u", "crid": "c"}), ids
            )
        )
    assert {(a.status_code, a.content) for a in answers} == {(200, PIXEL)}
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=10)
    assert rows(db, "SELECT count(*) FROM impressions") == [(0,)]  # nothing committed yet
    # The restart loads the spooled hits before serving, and removes the loaded spool file.
    proc, url = start_serve(db)
    wait_ready(url)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    assert rows(db, "SELECT event_id FROM impressions ORDER BY 1") == sorted((i,) for i in ids)
    assert list((tmp_path / "s.duckdb.spool").iterdir()) == []


@pytest.mark.slow
def test_pixel_hits_answered_while_serve_is_killed_mid_stream_are_all_kept(
    tmp_path: Path,
) -> None:
    db = tmp_path / "s.duckdb"
    proc, url = start_serve(db)
    wait_ready(url)
    answered: list[str] = []
    stop = threading.Event()

    def client(n: int) -> None:
        with httpx.Client(timeout=10) as http:
            for k in range(100_000):
                if stop.is_set():
                    return
                imp = f"m{n}-{k}"
                try:
                    r = http.get(url + "/t/imp", params={"imp": imp, "uid": "u", "crid": "c"})
                except httpx.TransportError:
                    return  # killed mid-request: not answered
                if r.status_code == 200:
                    answered.append(imp)

    threads = [threading.Thread(target=client, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    deadline = time.monotonic() + 30
    while len(answered) < 1_500 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)  # hits in flight: some in a group being written
    proc.communicate(timeout=10)
    stop.set()
    for t in threads:
        t.join(10)
    assert len(answered) >= 1_500
    proc, url = start_serve(db)  # loads what the spool holds past its committed position
    wait_ready(url)
    proc.send_signal(signal.SIGTERM)
    proc.communicate(timeout=20)
    stored = {r[0] for r in rows(db, "SELECT event_id FROM impressions")}
    assert set(answered) <= stored
    assert rows(db, "SELECT count(*) = count(DISTINCT event_id) FROM impressions") == [(True,)]


def test_spool_files_rotate_and_go_once_loaded(tmp_path: Path) -> None:
    settings = load_settings(db=tmp_path / "s.duckdb", collector_spool_rotate_bytes=1024)
    spool = tmp_path / "s.duckdb.spool"
    with collector(settings) as (url, _):
        for i in range(40):  # about 200 bytes each: several files of ~1 KiB
            HTTP.get(url + "/t/imp", params={"imp": f"r{i}", "uid": "u", "crid": "c"})
    left = list(spool.iterdir())
    assert 1 <= len(left) < 8  # rotated files went as their lines were committed
    batches = rows(settings.db, "SELECT count(*) FROM batches")
    with collector(settings):
        pass  # a start-up finds the rest loaded already: deletes, loads nothing again
    assert list(spool.iterdir()) == []
    assert rows(settings.db, "SELECT count(*) FROM batches") == batches
    assert rows(settings.db, "SELECT count(DISTINCT event_id), count(*) FROM impressions") == [
        (40, 40)
    ]


def test_concurrent_pixel_hits_share_spool_writes_and_each_is_kept(tmp_path: Path) -> None:
    settings = load_settings(db=tmp_path / "s.duckdb")
    with collector(settings) as (url, app):
        spool = app.state.batcher.spool
        real = spool.append
        writes: list[int] = []

        # A disk that takes 20 ms per write: simulated, as a real disk cannot be slowed here.
        def slow(source: str, lines: bytes, records: int = 1) -> Any:
            time.sleep(0.02)
            writes.append(records)
            return real(source, lines, records)

        spool.append = slow

        def hit(i: int) -> int:
            # No `imp`: each hit is its own impression all the same (the same parameters twice).
            return HTTP.get(url + "/t/imp", params={"uid": f"u{i % 3}", "crid": "c"}).status_code

        with ThreadPoolExecutor(16) as pool:
            statuses = list(pool.map(hit, range(320)))
    assert statuses == [200] * 320
    assert sum(writes) == 320
    assert len(writes) <= 320 / 4  # hits waiting together went out in one write
    assert rows(settings.db, "SELECT count(DISTINCT event_id), count(*) FROM impressions") == [
        (320, 320)
    ]


def test_pixel_answers_503_when_the_queue_is_full_and_keeps_only_answered_hits(
    tmp_path: Path,
) -> None:
    settings = load_settings(
        db=tmp_path / "s.duckdb", collector_queue_bytes=1024, collector_spool_flush_ms=0
    )
    with collector(settings) as (url, app):
        batcher: MicroBatcher = app.state.batcher
        real = batcher.runner.process_batch

        # A store that takes 0.3 s per batch: simulated, as a real disk cannot be slowed here.
        def slow(*args: Any, **kw: Any) -> Any:
            time.sleep(0.3)
            return real(*args, **kw)

        batcher.runner.process_batch = slow  # type: ignore[method-assign]

        def hit(i: int) -> tuple[str, int, str | None]:
            r = HTTP.get(url + "/t/imp", params={"imp": f"q{i}", "uid": "u", "crid": "c"})
            return f"q{i}", r.status_code, r.headers.get("retry-after")

        with ThreadPoolExecutor(16) as pool:
            results = list(pool.map(hit, range(200)))
        high_water = batcher.high_water_bytes
    assert {status for _, status, _ in results} == {200, 503}
    assert all(ra == "1" for _, status, ra in results if status == 503)
    assert high_water <= 1024
    answered = {i for i, status, _ in results if status == 200}
    stored = {r[0] for r in rows(settings.db, "SELECT event_id FROM impressions")}
    assert stored == answered  # a 503 hit was not spooled: the client's retry is its only copy


def test_public_names() -> None:
    import advertisex.api

    assert advertisex.api.__all__ == ["create_app", "serve"]


def test_sign_url_command_builds_a_link_the_click_tracker_follows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cli: Cli
) -> None:
    monkeypatch.setenv("ADVX_TRACKER_SECRET", "k3y")
    landing = "https://shop.example/a?b=1&c=2"
    result = cli("sign-url", landing, db=False)
    assert result.exit_code == 0
    settings = load_settings(db=tmp_path / "s.duckdb")
    with collector(settings) as (url, _):
        r = HTTP.get(f"{url}/t/click?uid=u1&cid=k1&{result.stdout.strip()}")
    assert (r.status_code, r.headers["location"]) == (302, landing)
    monkeypatch.delenv("ADVX_TRACKER_SECRET")
    missing = cli("sign-url", landing, db=False)
    assert missing.exit_code == 2
    assert "set ADVX_TRACKER_SECRET" in missing.stderr


def test_serve_keeps_rollups_and_checks_current_on_its_timer(tmp_path: Path) -> None:
    """What serve loads reaches the rollups and the quality checks without any command."""
    settings = load_settings(db=tmp_path / "jobs.duckdb", serve_jobs_seconds=0.3)
    with collector(settings) as (url, app):
        answer = HTTP.post(f"{url}/v1/impressions", content=ndjson([f"j{i}" for i in range(25)]))
        assert answer.status_code == 202
        deadline = time.monotonic() + 30
        while app.state.jobs.runs < 2:  # one run after the load committed, at least
            assert time.monotonic() < deadline, "the jobs did not run"
            time.sleep(0.1)
        metrics = HTTP.get(f"{url}/metrics/").text
    assert re.search(r"^advx_check_runs_total [1-9]", metrics, re.M)
    con = duckdb.connect(str(settings.db), read_only=True)
    try:
        rolled = con.execute("SELECT sum(impressions) FROM rollup_hourly").fetchall()
    finally:
        con.close()
    assert rolled == [(25,)]
