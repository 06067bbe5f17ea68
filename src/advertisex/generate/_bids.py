"""Bid requests: OpenRTB-like auctions, the won ones matching impressions, written as Avro."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fastavro
import numpy as np
import polars as pl
from numpy.typing import NDArray

from advertisex.generate._avro import write_frame
from advertisex.generate._catalog import COUNTRIES, MOBILE, TABLET, Catalog
from advertisex.generate._clock import DAY, Window, draw, draw_times
from advertisex.generate._faults import fault_count
from advertisex.generate._ids import IdKind, uuids
from advertisex.generate._impressions import Impressions
from advertisex.generate._layout import Parts, file_slices, pick_duplicates, split_days
from advertisex.generate._output import Sink, SourceTruth

MAX_RECORDS = 250_000
WIN_SHARE = 0.3
_SECTIONS = ("news", "sport", "tech", "business", "entertainment", "lifestyle", "travel")


def _record(name: str, *fields: dict[str, Any]) -> dict[str, Any]:
    return {"type": "record", "name": name, "fields": list(fields)}


def _field(name: str, kind: Any, **extra: Any) -> dict[str, Any]:
    return {"name": name, "type": kind, **extra}


def _array(items: Any) -> dict[str, Any]:
    return {"type": "array", "items": items}


LEGACY_SCHEMA: dict[str, Any] = {
    "namespace": "advertisex.legacy",
    **_record(
        "BidRequest",
        _field(
            "user_info",
            _record("UserInfo", _field("user_id", "long"), _field("location", "string")),
        ),
        _field(
            "auction_details",
            _record(
                "AuctionDetails", _field("auction_id", "string"), _field("bid_amount", "double")
            ),
        ),
        _field(
            "ad_targeting",
            _record("AdTargeting", _field("creative_id", "long"), _field("website", "string")),
        ),
    ),
}

# The second writer schema: `site.page` (optional) is gone, `cur` is new with a default.
EVOLVED_SCHEMA: dict[str, Any] = {
    "namespace": "advertisex.openrtb",
    **_record(
        "BidRequest",
        _field("id", "string"),
        _field("timestamp", {"type": "long", "logicalType": "timestamp-millis"}),
        _field(
            "imp",
            _array(_record("Imp", _field("id", "string"), _field("bidfloor", "double"))),
        ),
        _field("site", _record("Site", _field("domain", "string"))),
        _field(
            "device",
            _record(
                "Device",
                _field("ua", "string"),
                _field("ip", "string"),
                _field("geo", _record("Geo", _field("country", "string"))),
            ),
        ),
        _field("user", _record("User", _field("id", "string"))),
        _field(
            "seatbid",
            _array(
                _record(
                    "Seatbid",
                    _field(
                        "bid",
                        _array(_record("Bid", _field("price", "double"), _field("crid", "string"))),
                    ),
                )
            ),
        ),
        _field(
            "win",
            _record(
                "Win",
                _field("won", "boolean"),
                _field("price", ["null", "double"], default=None),
            ),
        ),
        _field("cur", _array("string"), default=["USD"]),
    ),
}


@dataclass(frozen=True)
class Bids:
    """Bid requests, all valid, sorted by time, and the file each one is written to."""

    ts_ms: NDArray[np.int64]
    user: NDArray[np.int64]
    creative: NDArray[np.int64]
    host: NDArray[np.int64]
    floor: NDArray[np.float64]
    bid: NDArray[np.float64]
    won: NDArray[np.bool_]
    win_price: NDArray[np.float64]  # NaN when lost
    ids: pl.Series
    parts: Parts
    row_file: NDArray[np.int64]
    names: tuple[str, ...]
    codecs: tuple[str, ...]
    legacy_file: int | None  # the seed shape
    evolved_file: int | None  # the second writer schema

    @property
    def regular(self) -> NDArray[np.bool_]:
        return self.parts.row_part >= 0


def draw_bids(
    rng: np.random.Generator, catalog: Catalog, imps: Impressions, window: Window, count: int
) -> Bids:
    """`count` auctions: some won (each the auction of a real impression), the rest lost."""
    linkable = np.flatnonzero(imps.regular & (imps.ts >= window.start_s + 2))
    n_won = min(round(WIN_SHARE * count), len(linkable))
    won_rows = np.sort(rng.choice(linkable, n_won, replace=False))
    n_lost = count - n_won

    site = draw(rng, catalog.site_weight, n_lost)
    lost_user = draw(rng, catalog.user_weight, n_lost)
    handheld = np.isin(catalog.user_device[lost_user], (MOBILE, TABLET))
    lost_creative = draw(rng, catalog.creative_weight, n_lost)
    lost_floor = catalog.campaign_cpm[catalog.creative_campaign[lost_creative]] * rng.lognormal(
        0.0, 0.3, n_lost
    )
    price = imps.price[won_rows]
    ts_ms = np.concatenate(
        [
            imps.ts[won_rows] * 1000 - rng.integers(20, 1500, n_won),
            draw_times(rng, window, n_lost) * 1000 + rng.integers(0, 1000, n_lost),
        ]
    )
    floor = np.round(np.concatenate([price * rng.uniform(0.3, 0.9, n_won), lost_floor]), 4)
    bid = np.round(
        np.concatenate(
            [price * rng.uniform(1.0, 1.6, n_won), lost_floor * rng.uniform(0.6, 1.4, n_lost)]
        ),
        4,
    )
    ids = pl.concat(
        [imps.auction_ids.gather(won_rows), uuids(rng, IdKind.AUCTION, len(imps.ts), n_lost)]
    )
    user = np.concatenate([imps.user[won_rows], lost_user])
    creative = np.concatenate([imps.creative[won_rows], lost_creative])
    host = np.concatenate(
        [
            imps.host[won_rows],
            site + catalog.site_count * (handheld & catalog.site_has_mobile[site]),
        ]
    )
    won = np.arange(count) < n_won
    win_price = np.where(won, np.concatenate([price, np.zeros(n_lost)]), np.nan)

    order = np.argsort(ts_ms, kind="stable")
    ts_ms, won = ts_ms[order], won[order]
    day = (ts_ms // 1000 - window.start_s) // DAY
    regular = np.ones(count, dtype=np.bool_)
    size = min(1000, max(10, count // 500)) if count >= 20 else 0
    legacy_pool = np.flatnonzero((day == 0) & ~won)
    legacy = np.sort(rng.choice(legacy_pool, min(size, len(legacy_pool)), replace=False))
    regular[legacy] = False
    evolved_pool = np.flatnonzero((day == window.days - 1) & regular)
    evolved = np.sort(rng.choice(evolved_pool, min(2 * size, len(evolved_pool)), replace=False))
    regular[evolved] = False

    parts = split_days(day, regular, window.days, MAX_RECORDS, 2)
    names, codecs = [], []
    for d in range(window.days):
        for k in range(int(parts.per_day[d])):
            names.append(f"bid_requests_{window.date(d)}_part{k:02d}.avro")
            codecs.append("snappy" if k % 2 else "deflate")
    row_file = np.where(regular, parts.row_file(), -1)
    legacy_file = evolved_file = None
    if len(legacy):
        legacy_file = len(names)
        names.append(f"bid_requests_{window.date(0)}_legacy.avro")
        codecs.append("deflate")
        row_file[legacy] = legacy_file
    if len(evolved):
        evolved_file = len(names)
        names.append(f"bid_requests_{window.date(window.days - 1)}_v2.avro")
        codecs.append("snappy")
        row_file[evolved] = evolved_file
    return Bids(
        ts_ms=ts_ms,
        user=user[order],
        creative=creative[order],
        host=host[order],
        floor=floor[order],
        bid=bid[order],
        won=won,
        win_price=win_price[order],
        ids=ids.gather(order),
        parts=parts,
        row_file=row_file,
        names=tuple(names),
        codecs=tuple(codecs),
        legacy_file=legacy_file,
        evolved_file=evolved_file,
    )


def _records(rng: np.random.Generator, bids: Bids, catalog: Catalog) -> pl.DataFrame:
    """The OpenRTB-like records as nested polars columns."""
    n = len(bids.ts_ms)
    country3 = pl.Series([c3 for _, c3, _ in COUNTRIES]).gather(catalog.user_country[bids.user])
    section = pl.Series(_SECTIONS).gather(rng.integers(0, len(_SECTIONS), n))
    frame = pl.DataFrame(
        {
            "id": bids.ids,
            "timestamp": bids.ts_ms,
            "floor": bids.floor,
            "host": catalog.hosts.gather(bids.host),
            "section": section,
            "article": rng.integers(10_000, 1_000_000, n),
            # Avro wants a string: a missing agent or IP (see _ivt.py) is sent empty.
            "ua": catalog.user_ua.gather(bids.user).fill_null(""),
            "ip": catalog.user_ip.gather(bids.user).fill_null(""),
            "country": country3,
            "user_id": catalog.user_ids[bids.user],
            "bid": bids.bid,
            "crid": catalog.creative_ids[bids.creative],
            "won": bids.won,
            "win_price": pl.Series(bids.win_price).fill_nan(None),
        }
    )
    page = pl.concat_str(
        [pl.lit("https://"), "host", pl.lit("/"), "section", pl.lit("/"), "article"]
    )
    return frame.select(
        "id",
        "timestamp",
        imp=pl.concat_list([pl.struct(id=pl.lit("1"), bidfloor="floor")]),
        site=pl.struct(domain="host", page=page),
        device=pl.struct("ua", "ip", geo=pl.struct("country")),
        user=pl.struct(id=pl.col("user_id").cast(pl.String)),
        seatbid=pl.concat_list(
            [
                pl.struct(
                    bid=pl.concat_list(
                        [pl.struct(price="bid", crid=pl.col("crid").cast(pl.String))]
                    )
                )
            ]
        ),
        win=pl.struct(won="won", price="win_price"),
    )


def _legacy_records(bids: Bids, catalog: Catalog, rows: NDArray[np.int64]) -> list[dict[str, Any]]:
    country2 = [c2 for c2, _, _ in COUNTRIES]
    frame = pl.DataFrame(
        {
            "user_id": catalog.user_ids[bids.user[rows]],
            "location": pl.Series(country2).gather(catalog.user_country[bids.user[rows]]),
            "auction_id": bids.ids.gather(rows),
            "bid_amount": bids.bid[rows],
            "creative_id": catalog.creative_ids[bids.creative[rows]],
            "website": catalog.hosts.gather(bids.host[rows]),
        }
    )
    return frame.select(
        user_info=pl.struct("user_id", "location"),
        auction_details=pl.struct("auction_id", "bid_amount"),
        ad_targeting=pl.struct("creative_id", "website"),
    ).to_dicts()


def _evolved_records(records: pl.DataFrame) -> list[dict[str, Any]]:
    evolved = records.with_columns(
        site=pl.struct(pl.col("site").struct.field("domain")), cur=pl.lit(["USD"])
    )
    return evolved.to_dicts()


def _sync(salt: str, name: str) -> bytes:
    """A per-file sync marker that is random-looking but the same on every run."""
    return hashlib.blake2b(f"{salt}/{name}".encode(), digest_size=16).digest()


def write_bids(
    rng: np.random.Generator,
    bids: Bids,
    catalog: Catalog,
    folder: Path,
    faults: bool,
    salt: str,
    sink: Sink,
) -> SourceTruth:
    """Write the bid request Avro files and return their truth."""
    records = _records(rng, bids, catalog)
    n = len(bids.ts_ms)
    pos = np.arange(n, dtype=np.float64)
    frame = records.with_columns(file=pl.Series(bids.row_file), pos=pl.Series(pos))
    truth = SourceTruth(valid=n)
    candidates = np.flatnonzero(bids.regular)
    if faults and len(candidates):
        copies = pick_duplicates(
            rng, candidates, bids.parts, bids.row_file, pos, 0, fault_count(rng, n)
        )
        truth.duplicates = len(copies.rows)
        frame = pl.concat(
            [
                frame,
                records[copies.rows].with_columns(
                    file=pl.Series(copies.file), pos=pl.Series(copies.pos)
                ),
            ]
        )
    slices = file_slices(frame, len(bids.names))
    for index, (name, codec, part) in enumerate(zip(bids.names, bids.codecs, slices, strict=True)):
        path = folder / name
        sync = _sync(salt, name)
        body = part.drop("file", "pos")
        if index == bids.legacy_file:
            rows = np.flatnonzero(bids.row_file == index)
            with path.open("wb") as out:
                fastavro.writer(
                    out,
                    fastavro.parse_schema(LEGACY_SCHEMA),
                    _legacy_records(bids, catalog, rows),
                    codec=codec,
                    sync_marker=sync,
                )
        elif index == bids.evolved_file:
            with path.open("wb") as out:
                fastavro.writer(
                    out,
                    fastavro.parse_schema(EVOLVED_SCHEMA),
                    _evolved_records(body),
                    codec=codec,
                    sync_marker=sync,
                )
        else:
            write_frame(
                sink,
                path,
                body,
                record="BidRequest",
                namespace="advertisex.openrtb",
                codec=codec,
                sync=sync,
                timestamp_fields=frozenset({"timestamp"}),
            )
    return truth
