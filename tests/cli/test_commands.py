"""The command line as a user runs it: exit codes, plain errors, JSON shapes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from advertisex.analytics import METRICS
from tests.conftest import Cli

IMP = (
    '{{"impression_id": "i{i}", "creative_id": {c}, "user_id": {u}, '
    '"timestamp": "2023-11-01 {h:02d}:00:00", "website": "www.site{s}.com"}}'
)


def write_impressions(path: Path, n: int, start: int = 0) -> Path:
    path.write_text(
        "\n".join(
            IMP.format(i=i, c=i % 3, u=i % 50, h=i % 24, s=i % 4) for i in range(start, start + n)
        )
        + "\n"
    )
    return path


def test_ingest_json_reconciliation_shape_and_exit_codes(tmp_path: Path, cli: Cli) -> None:
    write_impressions(tmp_path / "imp.ndjson", 10)
    result = cli("ingest", str(tmp_path / "imp.ndjson"), "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert set(doc["sources"]) == {"impressions", "clicks_conversions", "bid_requests"}
    for counts in doc["sources"].values():
        assert set(counts) >= {
            "received",
            "accepted",
            "rejected",
            "duplicates",
            "rejected_by_reason",
        }
    assert doc["sources"]["impressions"]["accepted"] == 10

    (tmp_path / "bad.ndjson").write_text("{oops\n")
    result = cli("ingest", str(tmp_path / "bad.ndjson"), "--json")
    assert result.exit_code == 3
    assert json.loads(result.stdout)["sources"]["impressions"]["rejected_by_reason"] == {
        "malformed_json": 1
    }


def test_user_mistakes_get_one_plain_line(tmp_path: Path, cli: Cli) -> None:
    missing_dir = cli.runner.invoke(
        __import__("advertisex.cli", fromlist=["app"]).app,
        ["ingest", str(tmp_path), "--db", str(tmp_path / "nope" / "x.duckdb")],
    )
    assert missing_dir.exit_code == 2
    assert missing_dir.stderr.strip().count("\n") == 0
    assert "database directory" in missing_dir.stderr and "does not exist" in missing_dir.stderr

    missing_file = cli("ingest", str(tmp_path / "absent.json"))
    assert missing_file.exit_code == 2
    assert (
        missing_file.stderr.strip()
        == f"error: {tmp_path / 'absent.json'} does not exist; check the path"
    )

    bad_source = cli("ingest", str(tmp_path), "--source", "pixels")
    assert bad_source.exit_code == 2
    assert "--source 'pixels' is unknown" in bad_source.stderr

    bad_group = cli("report", "--by", "planet")
    assert bad_group.exit_code == 2

    bad_size = cli("ingest", str(tmp_path), env={"ADVX_DUCKDB_MEMORY_LIMIT": "lots"})
    assert bad_size.exit_code == 2
    assert bad_size.stderr.startswith("error: setting duckdb_memory_limit = 'lots' is not valid")
    assert bad_size.stderr.strip().count("\n") == 0


def test_report_json_keys_and_dimension_join(tmp_path: Path, cli: Cli) -> None:
    write_impressions(tmp_path / "imp.ndjson", 60)
    (tmp_path / "clicks.csv").write_text(
        "timestamp,user_id,campaign_id,conversion_type\n"
        "2023-11-01 10:00:05,1,c-A,click\n2023-11-01 10:00:06,2,c-A,click\n"
        "2023-11-01 10:00:07,2,c-A,purchase\n"
    )
    (tmp_path / "dims.csv").write_text(
        "creative_id,campaign_id,advertiser_id\n0,c-A,adv\n1,c-A,adv\n2,c-B,adv\n"
    )
    assert cli("dims", "load", str(tmp_path / "dims.csv")).exit_code == 0
    assert cli("ingest", str(tmp_path / "imp.ndjson"), str(tmp_path / "clicks.csv")).exit_code == 0

    rows = cli.json("report", "--by", "campaign", "--format", "json")
    assert all(set(r) == {"campaign_id", *METRICS} for r in rows)
    by = {r["campaign_id"]: r for r in rows}
    assert by["c-A"]["impressions"] == 40 and by["c-B"]["impressions"] == 20
    assert (by["c-A"]["clicks"], by["c-A"]["conversions"]) == (2, 1)
    assert by["c-A"]["ctr"] == pytest.approx(2 / 40) and by["c-A"]["cvr"] == pytest.approx(0.5)

    hours = cli.json(
        "report",
        "--by",
        "hour",
        "--from",
        "2023-11-01T10:00",
        "--to",
        "2023-11-01T12:00",
        "--format",
        "json",
    )
    assert [(r["hour"], r["impressions"]) for r in hours] == [
        ("2023-11-01T10:00:00", 3),
        ("2023-11-01T11:00:00", 3),
    ]
    csv_out = cli("report", "--by", "site", "--format", "csv").stdout.splitlines()
    assert csv_out[0] == ",".join(["site", *METRICS])
    # Clicks without an impression_id take the site of the impression they are attributed to.
    sites = {line.split(",")[0]: line.split(",") for line in csv_out[1:]}
    assert sorted(sites) == ["site0.com", "site1.com", "site2.com", "site3.com"]
    assert sum(int(row[2]) for row in sites.values()) == 2

    picked = cli.json("report", "--metrics", "impressions, ctr", "--format", "json")
    assert {r["campaign_id"]: (r["impressions"], r["ctr"]) for r in picked} == {
        c: (by[c]["impressions"], by[c]["ctr"]) for c in by
    }
    assert all(list(r) == ["campaign_id", "impressions", "ctr"] for r in picked)
    wrong = cli("report", "--metrics", "impresions")
    assert wrong.exit_code == 2 and "--metrics 'impresions' is unknown" in wrong.stderr


def test_rejects_listing_and_replay_from_the_cli(tmp_path: Path, cli: Cli) -> None:
    (tmp_path / "e.csv").write_text(
        "timestamp,user_id,campaign_id,conversion_type\n2023-11-01 10:00:05,1,c,refund\n"
    )
    assert cli("ingest", str(tmp_path / "e.csv")).exit_code == 3
    listed = cli.json("rejects", "--format", "json", "--reason", "unknown_conversion_type")
    assert [(r["source_record"], r["raw"]) for r in listed] == [
        (2, "2023-11-01 10:00:05,1,c,refund")
    ]
    still = cli("rejects", "replay")
    assert still.exit_code == 3
    os.environ["ADVX_CONVERSION_TYPES"] = "click,refund"
    try:
        fixed = cli("rejects", "replay", "--json")
    finally:
        del os.environ["ADVX_CONVERSION_TYPES"]
    assert fixed.exit_code == 0
    assert json.loads(fixed.stdout)["sources"]["clicks_conversions"]["accepted"] == 1
    assert cli.json("rejects", "--format", "json") == []


def _table_contents(db: Path) -> dict[str, list[tuple[object, ...]]]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        out = {}
        for table in ("impressions", "rejects"):
            cols = (
                "event_id, event_time, user_id, source_uri, source_record"
                if table == "impressions"
                else "source_uri, source_record, reason, raw"
            )
            out[table] = con.execute(f"SELECT {cols} FROM {table} ORDER BY ALL").fetchall()
        return out
    finally:
        con.close()


@pytest.mark.slow
def test_sigkill_mid_ingest_then_rerun_equals_an_uninterrupted_run(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    for f in range(4):
        lines = [
            IMP.format(i=f * 100_000 + i, c=i % 3, u=i % 500, h=i % 24, s=i % 7)
            for i in range(100_000)
        ]
        lines[500] = "{broken"
        (data / f"imp{f}.ndjson").write_text("\n".join(lines) + "\n")
    cmd = [
        sys.executable,
        "-m",
        "advertisex",
        "ingest",
        str(data),
        "--batch-mb",
        "1",
        "--no-progress",
        "--json",
    ]

    clean = tmp_path / "clean.duckdb"
    subprocess.run([*cmd, "--db", str(clean)], check=False, capture_output=True, timeout=300)

    # DuckDB locks the file against readers while the writer runs, so progress is read from
    # its write-ahead log: kill as soon as a batch has been committed to it.
    killed = tmp_path / "killed.duckdb"
    wal = Path(str(killed) + ".wal")
    proc = subprocess.Popen(
        [*cmd, "--db", str(killed)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if wal.exists() and wal.stat().st_size > 3_000_000:
            break
        time.sleep(0.005)
    proc.send_signal(signal.SIGKILL)
    assert proc.wait() == -signal.SIGKILL
    partial = _table_contents(killed)
    assert len(partial["impressions"]) < 399_996  # killed before the end (maybe mid-commit)

    rerun = subprocess.run(
        [*cmd, "--db", str(killed)], check=False, capture_output=True, timeout=300
    )
    assert rerun.returncode == 3  # the broken lines are rejects
    assert _table_contents(killed) == _table_contents(clean)
    assert len(_table_contents(clean)["rejects"]) == 4


def test_progress_bar_on_a_terminal_shows_files_and_rows(tmp_path: Path) -> None:
    """On a real terminal (a pty) the bar counts files and rows; piped output has none."""
    import pty

    data = tmp_path / "data"
    data.mkdir()
    for i in range(4):
        write_impressions(data / f"imp{i}.ndjson", 20_000, start=i * 20_000)
    cmd = [sys.executable, "-m", "advertisex", "ingest", str(data), "--batch-mb", "1"]

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [*cmd, "--db", str(tmp_path / "tty.duckdb")],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "120"},
    )
    os.close(slave)
    chunks = []
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # the pty closes when the process ends
            break
        if not chunk:
            break
        chunks.append(chunk)
    assert proc.wait(timeout=120) == 0
    os.close(master)
    shown = b"".join(chunks).decode("utf-8", "replace")

    assert re.search(r"\d/4", shown), "files done out of files to read"
    counts = [int(n.replace(",", "")) for n in re.findall(r"([\d,]+) rows", shown)]
    assert counts and max(counts) > 0 and counts == sorted(counts)

    piped = subprocess.run(
        [*cmd, "--db", str(tmp_path / "pipe.duckdb")], capture_output=True, text=True, check=True
    )
    assert " rows" not in piped.stderr


def test_ingest_runs_the_quality_checks_after_it_loads(tmp_path: Path, cli: Cli) -> None:
    """Events from 2023 arriving now: stale sources, said in one line; alerts become pending."""
    write_impressions(tmp_path / "imp.ndjson", 200)

    result = cli("ingest", str(tmp_path / "imp.ndjson"))

    assert result.exit_code == 0
    assert re.search(r"quality: \d+ checks failing \(\d+ critical\)", result.stderr)
    pending = cli.json("alerts", "--format", "json")
    assert any(a["state"] == "pending" for a in pending)
    assert any("freshness" in a["alertname"] for a in pending)

    quiet = cli("ingest", str(tmp_path / "imp.ndjson"), env={"ADVX_QUALITY_AFTER_INGEST": "0"})
    assert quiet.exit_code == 0 and "quality:" not in quiet.stderr
