"""Incremental rollups equal a full recomputation after any sequence of loads."""

from __future__ import annotations

import itertools
import json
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from advertisex.analytics import refresh
from advertisex.analytics.rollups import (
    ATTRIBUTION,
    BY_TYPE,
    DAILY_USERS,
    HOURLY_USERS,
    ROLLUPS,
    build_rollups,
)
from advertisex.config import Settings, load_settings
from advertisex.enrich import load_creatives
from advertisex.store import Store
from tests.conftest import ingest

T0 = datetime(2026, 11, 1)
USERS = 2
CREATIVES = 4
_n = itertools.count()


def _ts(minute: int) -> str:
    return (T0 + timedelta(minutes=minute)).strftime("%Y-%m-%d %H:%M:%S")


impression = st.fixed_dictionaries(
    {
        "user": st.integers(0, USERS - 1),
        "creative": st.integers(0, CREATIVES - 1),
        "minute": st.integers(0, 6 * 60),
        "site": st.integers(0, 1),
        "auction": st.booleans(),
    }
)
event = st.fixed_dictionaries(
    {
        "user": st.integers(0, USERS - 1),
        "campaign": st.integers(0, 1),
        "minute": st.integers(0, 6 * 60),
        "kind": st.sampled_from(["click", "click", "purchase", "signup"]),
        "creative": st.none() | st.integers(0, CREATIVES - 1),
    }
)
bid = st.fixed_dictionaries(
    {
        "user": st.integers(0, USERS - 1),
        "creative": st.integers(0, CREATIVES - 1),
        "minute": st.integers(0, 6 * 60),
        "site": st.integers(0, 1),
        "won": st.booleans(),
    }
)
load = st.one_of(
    st.tuples(st.just("impressions"), st.lists(impression, min_size=1, max_size=8)),
    st.tuples(st.just("events"), st.lists(event, min_size=1, max_size=6)),
    st.tuples(st.just("bids"), st.lists(bid, min_size=1, max_size=5)),
    st.tuples(st.just("dims"), st.lists(st.integers(0, 1), min_size=CREATIVES, max_size=CREATIVES)),
    st.tuples(st.just("reingest"), st.integers(0, 100)),
)


def write_load(folder: Path, kind: str, rows: list[dict[str, int | None]]) -> Path:
    """One input file of the load, in the shapes ingest reads; ids unique across loads."""
    n = next(_n)
    if kind == "impressions":
        path = folder / f"imp{n}.ndjson"
        lines = [
            {
                "impression_id": f"i{n}-{k}",
                "user_id": r["user"],
                "creative_id": r["creative"],
                "timestamp": _ts(int(r["minute"] or 0)),
                "website": f"site{r['site']}.com",
                "price": 2.5,
                **({"bid_request_id": f"a{n}-{k}"} if r["auction"] else {}),
            }
            for k, r in enumerate(rows)
        ]
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    elif kind == "bids":
        path = folder / f"bids{n}.ndjson"
        lines = [
            {
                "id": f"b{n}-{k}",
                "timestamp": _ts(int(r["minute"] or 0)),
                "imp": [{"id": "1"}],
                "site": {"domain": f"site{r['site']}.com"},
                "user": {"id": str(r["user"])},
                "seatbid": [{"bid": [{"price": 3.0, "crid": str(r["creative"])}]}],
                "win": {"won": bool(r["won"])},
            }
            for k, r in enumerate(rows)
        ]
        path.write_text("".join(json.dumps(line) + "\n" for line in lines))
    elif kind == "events":
        path = folder / f"ev{n}.csv"
        body = "".join(
            f"{_ts(int(r['minute'] or 0))},{r['user']},c{r['campaign']},{r['kind']},e{n}-{k},"
            f"{'' if r['creative'] is None else r['creative']},,9.5,USD\n"
            for k, r in enumerate(rows)
        )
        path.write_text(
            "timestamp,user_id,campaign_id,conversion_type,event_id,creative_id,"
            "impression_id,value,currency\n" + body
        )
    else:
        path = folder / f"dims{n}.csv"
        path.write_text(
            "creative_id,campaign_id,advertiser_id\n"
            + "".join(f"{c},c{camp},adv{camp}\n" for c, camp in enumerate(rows))
        )
    return path


def assert_equal_to_full_recompute(store: Store, cfg: Settings) -> None:
    """Every materialized table equals the same computed from scratch over all events (the
    daily rollups too, summed straight from the events rather than from the hourly ones)."""
    build_rollups(store.con, cfg, scoped=False)
    pairs = [(t, tmp) for t, (tmp, _) in ATTRIBUTION.items()]
    pairs += [(t, f"_{t}") for t in (*ROLLUPS, BY_TYPE, HOURLY_USERS, DAILY_USERS)]
    for table, temp in pairs:
        for a, b in ((table, temp), (temp, table)):
            extra = store.query(f"SELECT * FROM {a} EXCEPT ALL SELECT * FROM {b}")
            assert extra == [], f"{table}: rows in {a} and not in {b}: {extra[:3]}"


def _imp(user: int, creative: int, minute: int, site: int = 0, auction: bool = False) -> dict:
    return {"user": user, "creative": creative, "minute": minute, "site": site, "auction": auction}


def _ev(user: int, campaign: int, minute: int, kind: str = "click") -> dict:
    return {"user": user, "campaign": campaign, "minute": minute, "kind": kind, "creative": None}


def _bid(user: int, creative: int, minute: int, site: int = 0) -> dict:
    return {"user": user, "creative": creative, "minute": minute, "site": site, "won": False}


@settings(
    max_examples=20,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(loads=st.lists(load, min_size=1, max_size=6))
# Late arrivals that move attribution in other hours than their own:
# an impression before a click an hour later,
@example(
    loads=[
        ("impressions", [_imp(1, 0, 10)]),
        ("events", [_ev(1, 0, 90)]),
        ("impressions", [_imp(1, 0, 50, site=1)]),
    ]
)
# a click before a conversion hours later (view-through becomes click-through),
@example(
    loads=[
        ("impressions", [_imp(1, 0, 100)]),
        ("events", [_ev(1, 0, 200, "purchase")]),
        ("events", [_ev(1, 0, 110)]),
    ]
)
# an impression that changes which impression a click's conversion is credited to,
@example(
    loads=[
        ("impressions", [_imp(1, 0, 10)]),
        ("events", [_ev(1, 0, 90)]),
        ("events", [_ev(1, 0, 300, "signup")]),
        ("impressions", [_imp(1, 1, 55, 1)]),
    ]
)
# a bid request arriving after the impression it won, in the hour before,
@example(loads=[("impressions", [_imp(1, 2, 60)]), ("bids", [_bid(1, 2, 59)])])
# a creative moved to the other campaign.
@example(
    loads=[("impressions", [_imp(1, 0, 10)]), ("events", [_ev(1, 1, 90)]), ("dims", [1, 0, 1, 1])]
)
def test_incremental_rollups_equal_a_full_recomputation(
    tmp_path: Path, loads: list[tuple[str, object]]
) -> None:
    folder = tmp_path / f"run{next(_n)}"
    folder.mkdir()
    # rollup_full_share: never a full recompute instead, the incremental path is under test;
    # rollup_exact_users: hours of one impression keep their users exact, the others sketch.
    cfg = load_settings(
        db=folder / "s.duckdb",
        click_lookback_hours=2,
        view_through_hours=3,
        rollup_full_share=1e9,
        rollup_exact_users=1,
    )
    written: list[Path] = []
    with Store.open(cfg) as store:
        load_creatives(store, write_load(folder, "dims", [0, 0, 1, 1]))
        for kind, rows in loads:
            if kind == "dims":
                load_creatives(store, write_load(folder, "dims", rows))
            elif kind == "reingest":
                if written:
                    ingest(store, cfg, written[int(rows) % len(written)], force=True)
            else:
                path = write_load(folder, kind, rows)
                written.append(path)
                report = ingest(store, cfg, path)
                assert report.clean, report.to_dict()
            refresh(store, cfg)
            assert_equal_to_full_recompute(store, cfg)


def test_late_event_recomputes_only_its_hours(tmp_path: Path) -> None:
    cfg = load_settings(db=tmp_path / "s.duckdb")
    with Store.open(cfg) as store:
        load_creatives(store, write_load(tmp_path, "dims", [0, 0, 1, 1]))
        imps = [
            {"user": u, "creative": 0, "minute": 60 * h, "site": 0, "auction": False}
            for u in range(3)
            for h in range(10)
        ]
        ingest(store, cfg, write_load(tmp_path, "impressions", imps))
        first = refresh(store, cfg)
        assert first.full_rebuild and first.hours == 10
        # A click of user 1 at 05:30, late: its own hour only (nothing after it to move).
        late = [{"user": 1, "campaign": 0, "minute": 330, "kind": "click", "creative": None}]
        ingest(store, cfg, write_load(tmp_path, "events", late))
        again = refresh(store, cfg)
        assert (again.full_rebuild, again.hours) == (False, 1)
        row = store.query("SELECT sum(clicks), sum(impressions) FROM rollup_hourly")
        assert row == [(1, 30)]
        # Nothing new: nothing recomputed.
        assert refresh(store, cfg).hours == 0
        assert_equal_to_full_recompute(store, cfg)
        # Another late click, with a lower rollup_full_share: a full recompute is cheaper.
        late[0]["minute"] = 30
        ingest(store, cfg, write_load(tmp_path, "events", late))
        cheaper = cfg.model_copy(update={"rollup_full_share": 0.05})
        assert refresh(store, cheaper).full_rebuild
        assert store.query("SELECT sum(clicks), sum(impressions) FROM rollup_hourly") == [(2, 30)]
        assert_equal_to_full_recompute(store, cfg)


@pytest.mark.parametrize("model", ["last_touch", "first_touch", "linear"])
def test_each_model_stays_exact_incrementally(tmp_path: Path, model: str) -> None:
    cfg = load_settings(db=tmp_path / "s.duckdb", attribution_model=model, rollup_full_share=1e9)
    with Store.open(cfg) as store:
        load_creatives(store, write_load(tmp_path, "dims", [0, 0, 1, 1]))
        clicks = [
            {"user": 1, "campaign": 0, "minute": m, "kind": "click", "creative": None}
            for m in (10, 70, 130)
        ]
        conv = [{"user": 1, "campaign": 0, "minute": 200, "kind": "purchase", "creative": None}]
        for rows in (conv, clicks):
            ingest(store, cfg, write_load(tmp_path, "events", rows))
            refresh(store, cfg)
        got = store.query(
            "SELECT minute(touch_time), weight, primary_touch, lag_seconds "
            "FROM conversion_attribution ORDER BY touch_time"
        )
        expected = {
            "last_touch": [(10, 1.0, True, 70 * 60.0)],
            "first_touch": [(10, 1.0, True, 190 * 60.0)],
            "linear": [
                (10, 1 / 3, False, 190 * 60.0),
                (10, 1 / 3, False, 130 * 60.0),
                (10, 1 / 3, True, 70 * 60.0),
            ],
        }[model]
        assert got == expected
        assert_equal_to_full_recompute(store, cfg)


def _two_impressions_rolled_up(tmp_path: Path) -> tuple[Store, Settings]:
    """A store of two impressions of two users, refreshed: to make into an older store."""
    cfg = load_settings(db=tmp_path / "s.duckdb")
    imps = [_imp(u, 0, 60 * u) for u in (1, 2)]
    store = Store.open(cfg)
    load_creatives(store, write_load(tmp_path, "dims", [0, 0, 1, 1]))
    ingest(store, cfg, write_load(tmp_path, "impressions", imps))
    refresh(store, cfg)
    return store, cfg


def test_a_store_with_the_wide_hourly_rollup_of_before_is_rebuilt(tmp_path: Path) -> None:
    store, cfg = _two_impressions_rolled_up(tmp_path)
    with store:
        # rollup_hourly as it was: every dimension and unique users.
        store.con.execute("DROP TABLE rollup_hourly")
        store.con.execute(
            "CREATE TABLE rollup_hourly (hour TIMESTAMP NOT NULL, campaign_id VARCHAR, "
            "creative_id VARCHAR, site VARCHAR, impressions BIGINT, unique_users BIGINT NOT NULL)"
        )
    with Store.open(cfg) as store:
        columns = store.query(
            "SELECT column_name FROM duckdb_columns() WHERE table_name = 'rollup_hourly'"
        )
        assert ("creative_id",) not in columns and ("country",) in columns
        assert refresh(store, cfg).full_rebuild
        assert store.query("SELECT sum(impressions)::INT FROM rollup_hourly") == [(2,)]
        assert_equal_to_full_recompute(store, cfg)


def test_a_store_made_before_the_users_rollups_gains_them_on_the_next_refresh(
    tmp_path: Path,
) -> None:
    store, cfg = _two_impressions_rolled_up(tmp_path)
    with store:
        store.con.execute(f"DROP TABLE {HOURLY_USERS}")
        store.con.execute(f"DROP TABLE {DAILY_USERS}")
    with Store.open(cfg) as store:
        assert refresh(store, cfg).full_rebuild
        assert store.query(f"SELECT count(*) FROM {HOURLY_USERS}") == [(2,)]
        assert_equal_to_full_recompute(store, cfg)
