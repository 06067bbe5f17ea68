"""Fixtures for the analytics tests: one small generated data set per session."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from advertisex.generate import generate


@pytest.fixture(scope="session")
def small_generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("gen")
    generate(out, impressions=20_000, days=2, seed=11, start=dt.date(2026, 11, 1), clicks=600)
    return out
