"""Shared fixtures: a fresh store per test, the CLI, the shared real-world test vectors."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from advertisex.cli import app
from advertisex.config import Settings, load_settings
from advertisex.pipeline import IngestReport, Runner, SourceCounts
from advertisex.sources.files import expand_paths
from advertisex.store import Store

TESTDATA = Path(__file__).resolve().parents[1].parent / "shared" / "testdata"


@pytest.fixture
def testdata() -> Path:
    if not TESTDATA.is_dir():
        pytest.fail(f"shared test vectors missing at {TESTDATA}; check out shared/ beside the repo")
    return TESTDATA


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return load_settings(db=tmp_path / "store.duckdb")


@pytest.fixture
def store(settings: Settings) -> Iterator[Store]:
    with Store.open(settings) as s:
        yield s


def ingest(store: Store, settings: Settings, *paths: Path, **kw: Any) -> IngestReport:
    return Runner(store, settings).ingest_paths(expand_paths([str(p) for p in paths]), **kw)


class Cli:
    def __init__(self, db: Path) -> None:
        self.db = db
        self.runner = CliRunner()

    def __call__(self, *args: str, db: bool = True, env: dict[str, str] | None = None) -> Any:
        argv = list(args) + (["--db", str(self.db)] if db else [])
        return self.runner.invoke(app, argv, catch_exceptions=False, env=env)

    def json(self, *args: str) -> Any:
        result = self(*args)
        return json.loads(result.stdout)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "cli.duckdb")


def reconciled(report: IngestReport, source: str) -> SourceCounts:
    """One source's counts, after checking that they reconcile."""
    c = report.sources[source]
    assert c.received == c.accepted + c.rejected + c.duplicates, c.to_dict()
    return c


# The seed bid request shape of DESIGN.md, as Avro.
SEED_BID_SCHEMA = {
    "type": "record",
    "name": "BidRequest",
    "fields": [
        {
            "name": "user_info",
            "type": {
                "type": "record",
                "name": "UserInfo",
                "fields": [
                    {"name": "user_id", "type": "int"},
                    {"name": "location", "type": "string"},
                ],
            },
        },
        {
            "name": "auction_details",
            "type": {
                "type": "record",
                "name": "AuctionDetails",
                "fields": [
                    {"name": "auction_id", "type": "string"},
                    {"name": "bid_amount", "type": "double"},
                ],
            },
        },
        {
            "name": "ad_targeting",
            "type": {
                "type": "record",
                "name": "AdTargeting",
                "fields": [
                    {"name": "creative_id", "type": "int"},
                    {"name": "website", "type": "string"},
                ],
            },
        },
    ],
}


def seed_bid(auction: str, user: int = 101) -> dict[str, object]:
    return {
        "user_info": {"user_id": user, "location": "US"},
        "auction_details": {"auction_id": auction, "bid_amount": 1.25},
        "ad_targeting": {"creative_id": 1, "website": "example.com"},
    }
