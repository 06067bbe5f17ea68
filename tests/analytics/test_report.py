"""Campaign metrics: values a campaign analyst checks by hand, rollups equal to events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from advertisex.analytics import METRICS, campaign_report, refresh
from advertisex.analytics.report import GROUPS, narrowest_rollup
from advertisex.config import Settings, load_settings
from advertisex.enrich import load_creatives
from advertisex.store import Store
from tests.conftest import Cli, ingest

IMPRESSIONS = [
    # id, user, creative, time, site, price (CPM), bid_request_id
    ("i1", "u1", "cr1", "10:00:00", "s1.com", 2.0, "a1"),
    ("i2", "u2", "cr1", "10:30:00", "s1.com", 4.0, None),
    ("i3", "u1", "cr2", "11:00:00", "s2.com", None, "a3"),
    ("i4", "u3", "cr1", "11:15:00", "s1.com", 6.0, None),  # made invalid traffic below
]
BIDS = [
    # id, user, creative, time, site, bid (CPM), won, clearing price, country
    ("a1", "u1", "cr1", "09:59:59", "s1.com", 3.0, True, 2.0, "DE"),
    ("a3", "u1", "cr2", "10:59:59", "s2.com", 5.0, True, 4.5, "FR"),
    ("a9", "u9", "cr2", "10:10:00", "s2.com", 1.0, False, None, "FR"),
]
EVENTS = """timestamp,user_id,campaign_id,conversion_type,value,currency
2026-11-01 10:05:00,u1,c1,click,,
2026-11-01 10:40:00,u2,c1,click,,
2026-11-01 12:00:00,u7,c1,click,,
2026-11-01 11:20:00,u3,c1,click,,
2026-11-01 11:00:00,u1,c1,purchase,30.00,USD
"""


def write_scenario(folder: Path) -> list[Path]:
    imp = folder / "imp.ndjson"
    imp.write_text(
        "".join(
            json.dumps(
                {
                    "impression_id": i,
                    "user_id": u,
                    "creative_id": c,
                    "timestamp": f"2026-11-01 {t}",
                    "website": s,
                    **({"price": p} if p is not None else {}),
                    **({"bid_request_id": b} if b else {}),
                }
            )
            + "\n"
            for i, u, c, t, s, p, b in IMPRESSIONS
        )
    )
    bids = folder / "bids.ndjson"
    bids.write_text(
        "".join(
            json.dumps(
                {
                    "id": a,
                    "timestamp": f"2026-11-01 {t}",
                    "imp": [{"id": "1"}],
                    "site": {"domain": s},
                    "device": {"geo": {"country": country}},
                    "user": {"id": u},
                    "seatbid": [{"bid": [{"price": bid, "crid": c}]}],
                    "win": {"won": won, **({"price": clearing} if clearing else {})},
                }
            )
            + "\n"
            for a, u, c, t, s, bid, won, clearing, country in BIDS
        )
    )
    events = folder / "events.csv"
    events.write_text(EVENTS)
    dims = folder / "dims.csv"
    dims.write_text("creative_id,campaign_id,advertiser_id\ncr1,c1,A\ncr2,c2,B\n")
    return [dims, imp, bids, events]


@pytest.fixture
def scenario(tmp_path: Path) -> Iterator[tuple[Store, Settings]]:
    cfg = load_settings(db=tmp_path / "s.duckdb")
    store = Store.open(cfg)
    dims, *data = write_scenario(tmp_path)
    load_creatives(store, dims)
    assert ingest(store, cfg, *data).clean
    # What the enrich stage (issue 3) does for a data-centre IP; it runs before the load.
    store.con.execute("UPDATE impressions SET ivt_reason = 'datacenter_ip' WHERE event_id = 'i4'")
    refresh(store, cfg)
    yield store, cfg
    store.close()


def test_campaign_metrics_by_hand(scenario: tuple[Store, Settings]) -> None:
    store, _ = scenario
    rows = {r["campaign_id"]: r for r in campaign_report(store.con, ["campaign"], source="rollups")}
    c1, c2 = rows["c1"], rows["c2"]
    assert list(c1) == ["campaign_id", *METRICS]
    assert (c1["impressions"], c1["clicks"], c1["conversions"]) == (2, 3, 1)
    assert c1["unattributed_clicks"] == 1  # u7 saw nothing
    assert c1["spend"] == pytest.approx((2.0 + 4.0) / 1000)
    assert c1["cpm"] == pytest.approx(3.0)
    assert c1["cpc"] == pytest.approx(0.006 / 3)
    assert c1["cpa"] == pytest.approx(0.006)
    assert c1["revenue"] == pytest.approx(30.0)
    assert c1["roas"] == pytest.approx(30.0 / 0.006)
    assert c1["ctr"] == pytest.approx(3 / 2) and c1["cvr"] == pytest.approx(1 / 3)
    assert (c1["bid_requests"], c1["bids"], c1["wins"], c1["win_rate"]) == (1, 1, 1, 1.0)
    # i3 has no price of its own: its winning bid's clearing price is the spend.
    assert c2["spend"] == pytest.approx(4.5 / 1000)
    assert (c2["impressions"], c2["clicks"], c2["conversions"]) == (1, 0, 0)
    assert c2["cpc"] is None and c2["roas"] == 0.0
    assert (c2["bid_requests"], c2["wins"], c2["win_rate"]) == (2, 1, 0.5)

    with_ivt = {
        r["campaign_id"]: r
        for r in campaign_report(store.con, ["campaign"], include_ivt=True, source="rollups")
    }
    assert (with_ivt["c1"]["impressions"], with_ivt["c1"]["clicks"]) == (3, 4)
    assert with_ivt["c1"]["spend"] == pytest.approx(0.012)


def test_unique_users_by_hand(scenario: tuple[Store, Settings], cli: Cli) -> None:
    store, cfg = scenario
    for source in ("rollups", "events", "auto"):
        rows = campaign_report(store.con, ["campaign"], source=source, settings=cfg, reach=True)
        assert list(rows[0]) == ["campaign_id", *METRICS, "unique_users"]
        assert {r["campaign_id"]: r["unique_users"] for r in rows} == {"c1": 2, "c2": 1}, source
        # u3 saw c1 only as invalid traffic; by hour, u1 is in both hours (c1 then c2).
        rows = campaign_report(
            store.con, ["campaign"], include_ivt=True, source=source, settings=cfg, reach=True
        )
        assert {r["campaign_id"]: r["unique_users"] for r in rows} == {"c1": 3, "c2": 1}
        rows = campaign_report(store.con, ["hour"], source=source, settings=cfg, reach=True)
        assert {r["hour"]: r["unique_users"] for r in rows} == {
            "2026-11-01T09:00:00": 0,  # a bid request, no impression
            "2026-11-01T10:00:00": 2,
            "2026-11-01T11:00:00": 1,
            "2026-11-01T12:00:00": 0,  # a click, no impression
        }
        rows = campaign_report(store.con, ["advertiser", "site"], source=source, reach=True)
        assert {(r["advertiser_id"], r["site"]): r["unique_users"] for r in rows} == {
            ("A", "s1.com"): 2,
            ("B", "s2.com"): 1,
            ("A", None): 0,
        }
    # Unique users are asked for: they are not in the report otherwise.
    assert "unique_users" not in campaign_report(store.con, ["campaign"])[0]


def test_attribution_rows_record_touch_and_lag(scenario: tuple[Store, Settings]) -> None:
    store, _ = scenario
    clicks = dict(
        ((r[0], r[1]), r[2:])
        for r in store.query(
            "SELECT c.user_id, strftime(c.event_time, '%H:%M'), a.impression_id, a.method, "
            "a.lag_seconds FROM click_attribution a "
            "JOIN clicks_conversions c ON c.event_id = a.click_id"
        )
    )
    assert clicks == {
        ("u1", "10:05"): ("i1", "lookback", 300.0),
        ("u2", "10:40"): ("i2", "lookback", 600.0),
        ("u3", "11:20"): ("i4", "lookback", 300.0),
        ("u7", "12:00"): (None, None, None),
    }
    assert store.query(
        "SELECT model, touch, strftime(touch_time, '%H:%M'), weight, lag_seconds "
        "FROM conversion_attribution"
    ) == [("last_touch", "click", "10:05", 1.0, 3300.0)]
    assert sorted(store.query("SELECT impression_id, auction_id, method FROM impression_bids")) == [
        ("i1", "a1", "bid_request_id"),
        ("i3", "a3", "bid_request_id"),
    ]


def test_several_groups_time_range_and_bid_country(scenario: tuple[Store, Settings]) -> None:
    store, _ = scenario
    rows = campaign_report(store.con, ["advertiser", "hour"], source="rollups")
    got = {(r["advertiser_id"], r["hour"]): (r["impressions"], r["clicks"]) for r in rows}
    assert got == {
        ("A", "2026-11-01T09:00:00"): (0, 0),  # the bid request for i1 came at 09:59:59
        ("A", "2026-11-01T10:00:00"): (2, 2),
        ("A", "2026-11-01T12:00:00"): (0, 1),
        ("A", "2026-11-01T11:00:00"): (0, 0),  # the purchase; i4 and its click are IVT
        ("B", "2026-11-01T10:00:00"): (0, 0),
        ("B", "2026-11-01T11:00:00"): (1, 0),
    }
    ranged = campaign_report(
        store.con,
        ["campaign"],
        start=datetime(2026, 11, 1, 10, 30),
        end=datetime(2026, 11, 1, 11, 0),
        source="rollups",
    )
    assert [(r["campaign_id"], r["impressions"], r["clicks"]) for r in ranged] == [
        ("c1", 2, 2),  # whole hour 10:00
        ("c2", 0, 0),
    ]
    by_country = {r["country"]: r["bid_requests"] for r in campaign_report(store.con, ["country"])}
    assert by_country == {"DE": 1, "FR": 2, None: 0}


def test_rollups_and_events_agree_exactly(tmp_path: Path, small_generated: Path) -> None:
    # Hours of a campaign with at most 10 impressions count their users exactly, the others
    # by HyperLogLog: both kinds, and groups that mix them.
    cfg = load_settings(db=tmp_path / "s.duckdb", rollup_exact_users=10)
    with Store.open(cfg) as store:
        load_creatives(store, small_generated / "dims" / "creatives.csv")
        ingest(store, cfg, small_generated / "data")
        refresh(store, cfg)
        # Each rollup serves some (see test_each_group_reads_the_narrowest_rollup), the facts
        # with the stored attribution the rest; "events" recomputes all.
        combos = [["campaign", "day"], ["advertiser", "country", "device"], ["creative", "site"]]
        combos += [["hour", "campaign"], ["creative", "day"], ["campaign", "site", "day"]]
        combos += [["site", "hour"], ["creative", "country"], *([g] for g in GROUPS)]
        start, end = datetime(2026, 11, 1), datetime(2026, 11, 2, 6)
        windows = (
            (False, (None, None)),
            (True, (start, end)),
            (False, (start, start.replace(day=2))),
        )
        for by in combos:
            for ivt, window in windows:
                a, b = (
                    campaign_report(
                        store.con,
                        by,
                        *window,
                        include_ivt=ivt,
                        source=source,
                        settings=cfg,
                        reach=True,
                    )
                    for source in ("rollups", "events")
                )
                assert a == b, by
        assert sum(r["clicks"] for r in campaign_report(store.con, ["campaign"])) > 0


@pytest.mark.parametrize(
    ("by", "whole_days", "table"),
    [
        (["campaign"], True, "rollup_daily"),
        (["campaign"], False, "rollup_hourly_creative"),
        (["advertiser", "day", "country", "device"], True, "rollup_daily"),
        (["country", "hour"], True, "rollup_hourly"),
        (["creative", "day"], True, "rollup_hourly_creative"),
        (["campaign", "site", "day"], True, "rollup_daily_site"),
        (["site"], False, None),  # site by day only: the facts
        (["creative", "site"], True, None),
        (["creative", "country"], True, None),
    ],
)
def test_each_group_reads_the_narrowest_rollup(
    by: list[str], whole_days: bool, table: str | None
) -> None:
    end = datetime(2026, 11, 3) if whole_days else datetime(2026, 11, 2, 18)
    assert narrowest_rollup(by, datetime(2026, 11, 1), end) == table


def test_report_cli_groups_and_reads_stale_stores_from_events(tmp_path: Path, cli: Cli) -> None:
    dims, *data = write_scenario(tmp_path)
    assert cli("dims", "load", str(dims)).exit_code == 0
    assert cli("ingest", *map(str, data)).exit_code == 0
    rows = cli.json("report", "--by", "campaign,device", "--by", "day", "--format", "json")
    assert {(r["campaign_id"], r["device_type"], r["day"]) for r in rows} == {
        ("c1", None, "2026-11-01"),
        ("c2", None, "2026-11-01"),
    }
    assert cli("report", "--source", "cache").exit_code == 2
    reach = cli.json("report", "--by", "campaign", "--reach", "--format", "json")
    assert {r["campaign_id"]: r["unique_users"] for r in reach} == {"c1": 3, "c2": 1}  # u1-3
    only = cli.json("report", "--metrics", "impressions,unique_users", "--format", "json")
    assert [list(r) for r in only] == [["campaign_id", "impressions", "unique_users"]] * 2
    assert cli("rollup", "--full").exit_code == 0
    # A store the rollups have not caught up with: auto reads the events, same figures.
    with Store.open(load_settings(db=cli.db)) as store:
        store.con.execute("DELETE FROM rollup_batches")
        store.con.execute("DELETE FROM rollup_hourly")
    again = cli.json("report", "--by", "campaign,device", "--by", "day", "--format", "json")
    assert again == rows


def test_auto_catches_up_exactly_while_the_rollups_lag(
    tmp_path: Path, small_generated: Path
) -> None:
    """auto recomputes only what the rollups lack; its figures are those of the events."""
    cfg = load_settings(db=tmp_path / "lag.duckdb")
    data = small_generated / "data"
    held_back = [
        data / "impressions" / "impressions_2026-11-01_part02.ndjson",
        data / "clicks" / "clicks_2026-11-02_part01.csv",
        data / "bid_requests" / "bid_requests_2026-11-01_part01.avro",
    ]
    first = [p for p in sorted(data.rglob("*.*")) if p not in held_back]
    # The finest grain (every hourly cell) and one the daily rollups would serve.
    combos = [["hour", "creative", "site", "country", "device"], ["campaign", "day"]]

    def agree(store: Store) -> None:
        for by in combos:
            auto = campaign_report(store.con, by, source="auto", settings=cfg, reach=True)
            events = campaign_report(store.con, by, source="events", settings=cfg, reach=True)
            assert auto == events, by

    with Store.open(cfg) as store:
        load_creatives(store, small_generated / "dims" / "creatives.csv")
        ingest(store, cfg, *first)
        refresh(store, cfg)
        stored = campaign_report(store.con, ["campaign"], source="rollups")
        # Late impressions of an early hour, clicks of the next day, bids that won some of the
        # impressions already folded in.
        ingest(store, cfg, *held_back)
        assert campaign_report(store.con, ["campaign"], source="rollups") == stored
        assert campaign_report(store.con, ["campaign"], source="events", settings=cfg) != stored
        agree(store)
        # A creative moved to another campaign: every hour of both campaigns changes.
        dims = (small_generated / "dims" / "creatives.csv").read_text().splitlines()
        creative, campaign, *rest = dims[1].split(",")
        other = next(line.split(",")[1] for line in dims[2:] if line.split(",")[1] != campaign)
        moved = tmp_path / "creatives.csv"
        moved.write_text("\n".join([dims[0], ",".join([creative, other, *rest]), *dims[2:]]))
        load_creatives(store, moved)
        agree(store)
        expected = campaign_report(store.con, ["campaign", "day"], source="auto", settings=cfg)
        refresh(store, cfg)
        assert campaign_report(store.con, ["campaign", "day"], source="rollups") == expected


def test_unique_users_exact_for_small_sets_close_by_hyperloglog(
    tmp_path: Path, small_generated: Path
) -> None:
    """Against count(DISTINCT user_id) of the events: equal while every hour of a campaign
    keeps its users (rollup_exact_users), within 3 standard errors of HyperLogLog (1.04 /
    sqrt(1024) = 3.25 %) when none does."""
    exact_sql = """
        SELECT coalesce(i.campaign_id, cr.campaign_id), CAST(i.event_time AS DATE),
               count(DISTINCT i.user_id)
        FROM impressions i LEFT JOIN creatives cr USING (creative_id)
        WHERE i.ivt_reason IS NULL GROUP BY ALL
    """
    for n, exact_users in enumerate((10**6, 0)):
        cfg = load_settings(db=tmp_path / f"s{n}.duckdb", rollup_exact_users=exact_users)
        with Store.open(cfg) as store:
            load_creatives(store, small_generated / "dims" / "creatives.csv")
            ingest(store, cfg, small_generated / "data")
            refresh(store, cfg)
            truth = {(c, str(d)): u for c, d, u in store.query(exact_sql)}
            for source in ("rollups", "events"):
                rows = campaign_report(
                    store.con, ["campaign", "day"], source=source, settings=cfg, reach=True
                )
                got = {(r["campaign_id"], r["day"]): r["unique_users"] for r in rows}
                assert set(got) >= set(truth)
                if exact_users:
                    assert {k: got[k] for k in truth} == truth
                else:
                    large = {k: u for k, u in truth.items() if u >= 300}
                    assert len(large) >= 3
                    for k, u in large.items():
                        assert abs(got[k] / u - 1) <= 3 * 0.0325, (k, got[k], u)
                    assert sum(got[k] != u for k, u in large.items()) > 0  # not exact now
