"""Generate a data set with known truth, ingest it, and check every count against truth.json."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from advertisex.analytics import campaign_report
from advertisex.config import load_settings
from advertisex.enrich import load_creatives
from advertisex.generate import generate
from advertisex.store import Store
from tests.conftest import ingest


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    out = tmp_path_factory.mktemp("gen")
    truth = generate(out, impressions=20_000, days=2, seed=11)
    return out, truth


@pytest.mark.slow
def test_ingest_reconciles_with_truth_and_is_idempotent(
    dataset: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, truth = dataset
    assert json.loads((out / "truth.json").read_text()) == truth
    settings = load_settings(db=tmp_path / "e2e.duckdb", batch_bytes=256 * 1024)
    with Store.open(settings) as store:
        load_creatives(store, out / "dims" / "creatives.csv")
        report = ingest(store, settings, out / "data")
        assert report.files_failed == []
        for name, expected in truth["sources"].items():
            got = report.sources[name]
            assert got.received == expected["received"], name
            assert got.accepted == expected["valid"], name
            assert got.duplicates == expected["duplicates"], name
            assert dict(got.rejected_by_reason) == expected["rejected_by_reason"], name

        # truth counts every valid event; injected invalid traffic is flagged, not dropped
        campaigns = {
            r["campaign_id"]: r
            for r in campaign_report(store.con, ["campaign"], include_ivt=True, settings=settings)
        }
        for campaign_id, expected in truth["campaigns"].items():
            row = campaigns.get(campaign_id, {"impressions": 0, "clicks": 0, "conversions": 0})
            assert (row["impressions"], row["clicks"], row["conversions"]) == (
                expected["impressions"],
                expected["clicks"],
                expected["conversions"],
            ), campaign_id
        billable = campaign_report(store.con, ["campaign"], settings=settings)
        valid_impressions, flagged = store.con.execute(
            "SELECT count(*) FILTER (ivt_reason IS NULL), count(ivt_reason) FROM impressions"
        ).fetchall()[0]
        assert flagged > 0  # the generator injects invalid traffic: the two counts differ
        assert 0 < sum(r["impressions"] for r in billable) == valid_impressions

        stored = {
            t: store.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("impressions", "clicks_conversions", "bid_requests", "rejects")
        }
        again = ingest(store, settings, out / "data", force=True)
        assert all(c.accepted == 0 for c in again.sources.values())
        assert stored == {
            t: store.con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0] for t in stored
        }
