"""Ingest metrics: the textfile-collector file and a real Pushgateway, from the reconciliation."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from advertisex.config import Settings, load_settings
from advertisex.quality.metrics import FRESHNESS, STAGES, record_store, timed
from advertisex.store import Store
from tests.conftest import Cli, ingest
from tests.quality.procs import binary, get, process, wait_http
from tests.quality.receivers import free_port


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def _inputs(folder: Path) -> list[str]:
    now = datetime.now().replace(microsecond=0)
    lines = [
        json.dumps(
            {
                "impression_id": f"i{k}",
                "creative_id": 1,
                "user_id": k,
                "website": "a.com",
                "timestamp": (now - timedelta(minutes=k, seconds=30)).isoformat(sep=" "),
            }
        )
        for k in range(10)
    ]
    lines.insert(3, '{"impression_id": "broken"')
    lines.append(lines[0])  # a duplicate
    path = folder / "imps.ndjson"
    path.write_text("\n".join(lines) + "\n")
    return [str(path)]


def test_ingest_writes_a_textfile_collector_file(cli: Cli, tmp_path: Path) -> None:
    out = tmp_path / "advertisex.prom"
    before = _samples(generate_latest(REGISTRY).decode())  # counters are per process
    result = cli("ingest", *_inputs(tmp_path), "--metrics-file", str(out), "--json")
    assert result.exit_code == 3  # one line quarantined
    counts = json.loads(result.stdout)["sources"]["impressions"]
    got = _samples(out.read_text())

    def delta(name: str, **labels: str) -> float:
        key = (name, tuple(sorted(labels.items())))
        return got.get(key, 0.0) - before.get(key, 0.0)

    src = {"source": "impressions"}
    assert delta("advx_events_received_total", **src) == counts["received"] == 12
    assert delta("advx_events_accepted_total", **src) == 10
    assert delta("advx_events_duplicate_total", **src) == 1
    assert delta("advx_events_rejected_total", **src, reason="malformed_json") == 1
    # events were 0.5-9.5 minutes old on arrival: late_seconds (300) makes 5 of them late
    assert delta("advx_events_late_total", **src) == 5
    p50 = got[("advx_event_delay_seconds", (("quantile", "0.5"), ("source", "impressions")))]
    assert 4.5 * 60 <= p50 <= 6 * 60
    assert got[("advx_freshness_seconds", (("source", "impressions"),))] < 120
    assert got[("advx_store_size_bytes", ())] > 0
    assert got[("advx_ingest_duration_seconds_count", ())] >= 1
    # bounded labels: no user, event or IP ids anywhere
    labels = {v for (_, ls) in got for _, v in ls}
    assert not any(v.startswith("i") and v[1:].isdigit() for v in labels)


def test_ingest_pushes_to_a_real_pushgateway(cli: Cli, tmp_path: Path) -> None:
    port = free_port()
    args = [
        binary("prometheus-pushgateway"),
        f"--web.listen-address=127.0.0.1:{port}",
        "--persistence.file=",
    ]
    with process(args, tmp_path / "pushgateway.log"):
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/-/ready")
        result = cli("ingest", *_inputs(tmp_path), "--pushgateway", url)
        assert result.exit_code == 3
        text = get(url + "/metrics")
    pushed = [
        s
        for f in text_string_to_metric_families(text)
        for s in f.samples
        if s.name == "advx_events_received_total" and s.labels.get("source") == "impressions"
    ]
    assert len(pushed) == 1 and pushed[0].labels["job"] == "advertisex_ingest"
    assert pushed[0].value >= 12


def test_a_dead_pushgateway_only_warns(cli: Cli, tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    result = cli("ingest", *_inputs(tmp_path), "--pushgateway", url)
    assert result.exit_code == 3  # the ingest's own outcome, unchanged
    assert f"warning: cannot push metrics to {url}:" in result.stderr


def test_freshness_metric_is_in_utc_whatever_the_session_zone(tmp_path: Path) -> None:
    settings = load_settings(db=tmp_path / "ny.duckdb", timezone="America/New_York")
    with Store.open(settings) as store:
        recent = datetime.now(UTC) - timedelta(seconds=30)
        line = {"creative_id": 1, "user_id": 1, "timestamp": recent.isoformat(timespec="seconds")}
        (tmp_path / "utc.ndjson").write_text(json.dumps(line) + "\n")
        ingest(store, settings, tmp_path / "utc.ndjson")
        FRESHNESS.clear()  # the registry is per process: forget earlier tests' values
        record_store(store)
    age = REGISTRY.get_sample_value("advx_freshness_seconds", {"source": "impressions"})
    assert age is not None and 0 <= age < 120  # the newest event is 30 s old, not 5 h


def test_stage_timer_observes_each_stage_of_a_batch() -> None:
    def seen(stage: str) -> tuple[float, float]:
        got = _samples(generate_latest(REGISTRY).decode())
        labels = (("source", "clicks_conversions"), ("stage", stage))
        return (
            got.get(("advx_stage_duration_seconds_count", labels), 0.0),
            got.get(("advx_stage_duration_seconds_sum", labels), 0.0),
        )

    count0, sum0 = seen("enrich")
    with timed("enrich", "clicks_conversions"):
        time.sleep(0.05)
    count1, sum1 = seen("enrich")
    assert count1 - count0 == 1
    assert 0.05 <= sum1 - sum0 < 1.0
    # a stage that fails took its time too
    with pytest.raises(RuntimeError), timed("commit", "clicks_conversions"):
        raise RuntimeError("store gone")
    assert seen("commit")[0] >= 1
    unknown = "unknown stage 'dedupe'; one of decode, transform"
    with pytest.raises(ValueError, match=unknown), timed("dedupe", "clicks_conversions"):
        pass


def test_ingest_observes_every_stage_of_each_batch(
    tmp_path: Path, store: Store, settings: Settings
) -> None:
    def counts() -> dict[str, float]:
        got = _samples(generate_latest(REGISTRY).decode())
        return {
            stage: got.get(
                (
                    "advx_stage_duration_seconds_count",
                    (("source", "impressions"), ("stage", stage)),
                ),
                0.0,
            )
            for stage in STAGES
        }

    path = tmp_path / "imp.ndjson"
    path.write_text(
        "".join(
            f'{{"impression_id": "i{i}", "creative_id": 1, "user_id": 2, '
            '"timestamp": "2023-11-01 10:00:00"}\n'
            for i in range(50)
        )
    )
    before = counts()
    ingest(store, settings, path)
    after = counts()
    assert {stage: after[stage] - before[stage] for stage in STAGES} == dict.fromkeys(STAGES, 1.0)
