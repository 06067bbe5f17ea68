"""Attribution in SQL against a small, obviously-correct pure-Python reference."""

from __future__ import annotations

import json
import random
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from advertisex.analytics import refresh
from advertisex.config import Settings, load_settings
from advertisex.enrich import load_creatives
from advertisex.store import Store
from tests.conftest import ingest

T0 = datetime(2026, 11, 1)


def reference(store: Store, cfg: Settings) -> dict[str, Any]:
    """Click, conversion and bid attribution by brute force over Python lists."""
    campaign_of = dict(store.query("SELECT creative_id, campaign_id FROM creatives"))
    imps = [
        {"id": i, "t": t, "user": u, "creative": c, "campaign": camp or campaign_of.get(c),
         "site": s, "bid": b}
        for i, t, u, c, camp, s, b in store.query(
            "SELECT event_id, event_time, user_id, creative_id, campaign_id, site, bid_request_id "
            "FROM impressions"
        )
    ]  # fmt: skip
    by_id = {i["id"]: i for i in imps}
    of_user = defaultdict(list)  # only to keep the brute force quick: same user first
    for i in imps:
        of_user[i["user"]].append(i)
    events = store.query(
        "SELECT event_id, event_time, user_id, campaign_id, event_type, creative_id, "
        "impression_id FROM clicks_conversions"
    )
    clicks = [e for e in events if e[4] == "click"]
    lookback = timedelta(hours=cfg.click_lookback_hours)
    click_out = {}
    for cid, t, user, campaign, _, creative, named in clicks:
        if named in by_id:
            click_out[cid] = (named, "impression_id")
            continue
        found = [
            i for i in of_user[user]
            if i["user"] == user and i["campaign"] == campaign and t - lookback <= i["t"] <= t
            and (creative is None or i["creative"] == creative)
        ]  # fmt: skip
        best = max(found, key=lambda i: (i["t"], i["id"]), default=None)
        click_out[cid] = (best["id"], "lookback") if best else (None, None)

    ct, vt = timedelta(days=cfg.click_through_days), timedelta(hours=cfg.view_through_hours)
    conv_out = {}
    for vid, t, user, campaign, _, _, _ in (e for e in events if e[4] != "click"):
        touches = [
            ("click", k[0], k[1]) for k in clicks
            if k[2] == user and k[3] == campaign and t - ct <= k[1] <= t
        ] or [
            ("view", i["id"], i["t"]) for i in of_user[user]
            if i["user"] == user and i["campaign"] == campaign and t - vt <= i["t"] <= t
        ]  # fmt: skip
        touches.sort(key=lambda x: (x[2], x[1]))
        if not touches:
            conv_out[vid] = [(None, None, 1.0)]
        elif cfg.attribution_model == "last_touch":
            conv_out[vid] = [(touches[-1][0], touches[-1][1], 1.0)]
        elif cfg.attribution_model == "first_touch":
            conv_out[vid] = [(touches[0][0], touches[0][1], 1.0)]
        else:
            conv_out[vid] = sorted((k, i, 1.0 / len(touches)) for k, i, _ in touches)

    bids = store.query("SELECT event_id, event_time, user_id, creative_id, site FROM bid_requests")
    bid_ids = {b[0] for b in bids}
    bids_of_user = defaultdict(list)
    for b in bids:
        bids_of_user[b[2]].append(b)
    window = timedelta(seconds=cfg.bid_match_seconds)
    bid_out = {}
    for i in imps:
        if i["bid"] is not None:  # an impression naming its auction is matched by id only
            if i["bid"] in bid_ids:
                bid_out[i["id"]] = i["bid"]
            continue
        found = [
            b for b in bids_of_user[i["user"]]
            if (b[2], b[3], b[4]) == (i["user"], i["creative"], i["site"])
            and i["t"] - window <= b[1] <= i["t"]
        ]  # fmt: skip
        if found:
            bid_out[i["id"]] = max(found, key=lambda b: (b[1], b[0]))[0]
    return {"clicks": click_out, "conversions": conv_out, "bids": bid_out}


def from_sql(store: Store) -> dict[str, Any]:
    conv: dict[str, list[tuple[Any, ...]]] = defaultdict(list)
    for vid, touch, tid, w in store.query(
        "SELECT conversion_id, touch, touch_id, weight FROM conversion_attribution"
    ):
        conv[vid].append((touch, tid, w))
    return {
        "clicks": {
            c: (i, m)
            for c, i, m in store.query(
                "SELECT click_id, impression_id, method FROM click_attribution"
            )
        },
        "conversions": {
            k: sorted(v, key=lambda x: (x[0] or "", x[1] or "")) for k, v in conv.items()
        },
        "bids": dict(store.query("SELECT impression_id, auction_id FROM impression_bids")),
    }


def _ts(seconds: int) -> str:
    return (T0 + timedelta(seconds=seconds)).strftime("%Y-%m-%d %H:%M:%S")


def write_edge_cases(folder: Path, seed: int) -> list[Path]:
    """Few users with many impressions each, on a coarse clock so that times tie; clicks and
    conversions exactly at and just past the window edges; conversions days after the click."""
    rng = random.Random(seed)
    day = 86400
    imps, events, bids = [], [], []
    for n in range(400):
        t = rng.randrange(0, 3 * day, 600)  # every 10 minutes: ties are common
        user, creative = rng.randrange(4), rng.randrange(4)
        imps.append({"impression_id": f"i{n:03d}", "user_id": user, "creative_id": creative,
                     "timestamp": _ts(t), "website": f"s{creative % 2}.com"})  # fmt: skip
        if n % 7 == 0:  # a click at exactly the lookback edge, or one second past it
            edge = day + (n % 2)
            events.append((t + edge, user, f"c{creative // 2}", "click", ""))
        if n % 5 == 0:
            events.append((t + rng.choice([0, 60, 3600]), user, f"c{creative // 2}", "click",
                           str(creative) if n % 10 == 0 else ""))  # fmt: skip
        if n % 17 == 0:  # a viewer who never clicks: view-through, at or past the window edge
            viewer = 100 + n
            imps.append({"impression_id": f"v{n:03d}", "user_id": viewer, "creative_id": 0,
                         "timestamp": _ts(t), "website": "s0.com"})  # fmt: skip
            events.append((t + rng.choice([0, day, day + 1]), viewer, "c0", "lead", ""))
        if n % 13 == 0:  # someone who saw no impression
            events.append((t, 99, "c0", "click", ""))
            events.append((t + 60, 98, "c1", "purchase", ""))
        if n % 11 == 0:
            bid = {"price": 1.0, "crid": str(creative)}
            bids.append({"id": f"b{n}", "timestamp": _ts(t - rng.choice([0, 30, 60, 61])),
                         "imp": [{"id": "1"}], "site": {"domain": f"s{creative % 2}.com"},
                         "user": {"id": str(user)}, "seatbid": [{"bid": [bid]}]})  # fmt: skip
    for imp in imps[::19]:  # some name their auction: one in the store, or one it lacks
        n = int(imp["impression_id"][1:])
        imp["bid_request_id"] = f"b{n}" if n % 11 == 0 else f"missing{n}"
    for k, (t, user, campaign, _, _) in enumerate(list(events)):
        if k % 3 == 0:  # late conversions: up to 8 days after, past the 7-day window too
            lag = rng.choice([0, 3600, 2 * day, 7 * day, 7 * day + 1, 8 * day])
            events.append((t + lag, user, campaign, rng.choice(["purchase", "signup"]), ""))
        if k % 4 == 0:  # view-through: no click, an impression within a day
            events.append((t + rng.choice([0, 600, day, day + 1]), user, f"c{(k % 2)}", "lead", ""))
    (folder / "imp.ndjson").write_text("".join(json.dumps(i) + "\n" for i in imps))
    (folder / "bids.ndjson").write_text("".join(json.dumps(b) + "\n" for b in bids))
    (folder / "events.csv").write_text(
        "timestamp,user_id,campaign_id,conversion_type,creative_id\n"
        + "".join(f"{_ts(t)},{u},{c},{k},{cr}\n" for t, u, c, k, cr in events)
    )
    (folder / "dims.csv").write_text("creative_id,campaign_id\n0,c0\n1,c0\n2,c1\n3,c1\n")
    return [folder / n for n in ("imp.ndjson", "bids.ndjson", "events.csv")]


@pytest.mark.parametrize("model", ["last_touch", "first_touch", "linear"])
def test_edge_cases_match_the_reference(tmp_path: Path, model: str) -> None:
    cfg = load_settings(db=tmp_path / "s.duckdb", attribution_model=model)
    files = write_edge_cases(tmp_path, seed=5)
    with Store.open(cfg) as store:
        load_creatives(store, tmp_path / "dims.csv")
        report = ingest(store, cfg, *files)
        assert report.clean, report.to_dict()
        refresh(store, cfg)
        want, got = reference(store, cfg), from_sql(store)
        for part in ("clicks", "conversions", "bids"):
            assert got[part] == want[part], part
        # The data set really exercises what it claims to.
        methods = {m for _, m in got["clicks"].values()}
        assert {None, "lookback"} <= methods
        touches = {t for v in got["conversions"].values() for t, _, _ in v}
        assert {None, "click", "view"} <= touches
        methods = store.query("SELECT DISTINCT method FROM impression_bids")
        assert sorted(methods) == [("bid_request_id",), ("window",)]
        assert store.query(
            "SELECT count(*) > 0 FROM impressions WHERE bid_request_id LIKE 'missing%'"
        ) == [(True,)]


def test_generated_data_matches_the_reference_and_the_truth(
    tmp_path: Path, small_generated: Path
) -> None:
    cfg = load_settings(db=tmp_path / "s.duckdb")
    with Store.open(cfg) as store:
        load_creatives(store, small_generated / "dims" / "creatives.csv")
        ingest(store, cfg, small_generated / "data")
        refresh(store, cfg)
        got = from_sql(store)
        assert got == reference(store, cfg)
    truth = pl.read_parquet(small_generated / "truth_attribution.parquet").filter("id_in_data")
    clicks = truth.filter(pl.col("click_event_id").is_null())
    # Every click whose id is in the data finds the impression it came from.
    assert all(
        got["clicks"][e][0] == i for e, i in clicks.select("event_id", "impression_id").iter_rows()
    )
    # Conversions carry no click id: last touch finds the generator's click for nearly all
    # (another click of the same user and campaign in between is legitimately preferred).
    convs = truth.filter(pl.col("click_event_id").is_not_null())
    right = sum(
        got["conversions"][e] == [("click", k, 1.0)]
        for e, k in convs.select("event_id", "click_event_id").iter_rows()
    )
    assert convs.height > 20 and right >= 0.95 * convs.height
