"""Impressions: base events, their NDJSON files, faulty and duplicate lines, the cut-short gzip."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import polars as pl
from numpy.typing import NDArray

from advertisex.generate._catalog import MOBILE, TABLET, Catalog
from advertisex.generate._clock import Window, draw, draw_times, offset_text, utc_text
from advertisex.generate._faults import (
    NOT_OBJECTS,
    bad_timestamps,
    choose,
    fault_count,
    fault_runs,
    pick,
)
from advertisex.generate._ids import IdKind, uuids
from advertisex.generate._layout import (
    DUPLICATE,
    VALID,
    Parts,
    file_slices,
    pick_duplicates,
    split_days,
)
from advertisex.generate._output import (
    Sink,
    SourceTruth,
    const,
    gzip_bytes,
    lines_bytes,
    tally,
)
from advertisex.schemas import Reason

MAX_LINES = 400_000
FIELDS = (
    "impression_id", "creative_id", "user_id", "timestamp", "website", "ip", "user_agent",
    "bid_request_id", "price", "currency",
)  # fmt: skip
LEGACY_FIELDS = ("creative_id", "user_id", "timestamp", "website")
# Part 0 of each day comes from a server that logs local time with its offset.
_OFFSETS = (("+02:00", 7200), ("-05:00", -18000), ("+05:30", 19800), ("+09:00", 32400),
            ("-03:00", -10800), ("+01:00", 3600))  # fmt: skip
# Share of the compressed bytes kept when a gzip file is cut short.
_KEEP = 0.6


@dataclass(frozen=True)
class Impressions:
    """Base impressions, all valid, sorted by time, and the file each one is written to."""

    ts: NDArray[np.int64]
    user: NDArray[np.int64]
    creative: NDArray[np.int64]
    campaign: NDArray[np.int64]
    host: NDArray[np.int64]
    price: NDArray[np.float64]
    ids: pl.Series
    auction_ids: pl.Series
    parts: Parts
    row_file: NDArray[np.int64]
    names: tuple[str, ...]
    tail_file: int | None  # a gzip of day 0's last minutes, cut short when faults are on
    legacy_file: int | None  # the seed shape: no ids, four fields

    @property
    def regular(self) -> NDArray[np.bool_]:
        """Rows in ordinary files: the ones clicks, bids, faults and duplicates may use."""
        return self.parts.row_part >= 0


def draw_impressions(
    rng: np.random.Generator, catalog: Catalog, window: Window, n: int, steady: bool = False
) -> Impressions:
    """`n` impressions over the window and their file layout.

    The seed-shape rows come from the last day, or from every day when `steady` (labelled
    incidents: the clean traffic must not change shape mid-run).
    """
    ts = draw_times(rng, window, n)
    user = draw(rng, catalog.user_weight, n)
    creative = draw(rng, catalog.creative_weight, n)
    campaign = catalog.creative_campaign[creative]
    site = draw(rng, catalog.site_weight, n)
    handheld = np.isin(catalog.user_device[user], (MOBILE, TABLET))
    host = site + catalog.site_count * (handheld & catalog.site_has_mobile[site])
    price = np.round(catalog.campaign_cpm[campaign] * rng.lognormal(0.0, 0.35, n), 4)
    ids = uuids(rng, IdKind.IMPRESSION, 0, n)
    auction_ids = uuids(rng, IdKind.AUCTION, 0, n)

    day = window.day_of(ts)
    regular = np.ones(n, dtype=np.bool_)
    n_day0 = int(np.count_nonzero(day == 0))
    tail = min(5000, max(10, n_day0 // 50)) if n_day0 >= 20 else 0
    regular[n_day0 - tail : n_day0] = False
    # The seed shape has no id: its rows are told apart by their natural key only.
    key_clash = (
        pl.DataFrame({"u": user, "c": creative, "t": ts, "h": host}).is_duplicated().to_numpy()
    )
    from_day = 0 if steady else window.days - 1
    candidates = np.flatnonzero((day >= from_day) & regular & ~key_clash)
    legacy_size = min(1000, max(10, n // 500), len(candidates)) if n >= 100 else 0
    legacy = np.sort(rng.choice(candidates, legacy_size, replace=False))
    regular[legacy] = False

    parts = split_days(day, regular, window.days, MAX_LINES, 3)
    names = [
        f"impressions_{window.date(d)}_part{k:02d}.ndjson" + (".gz" if k % 2 else "")
        for d in range(window.days)
        for k in range(int(parts.per_day[d]))
    ]
    row_file = np.where(regular, parts.row_file(), -1)
    tail_file = legacy_file = None
    if tail:
        tail_file = len(names)
        names.append(f"impressions_{window.date(0)}_part{int(parts.per_day[0]):02d}.ndjson.gz")
        row_file[n_day0 - tail : n_day0] = tail_file
    if legacy_size:
        legacy_file = len(names)
        names.append(f"impressions_{'all_days' if steady else window.date(from_day)}_legacy.ndjson")
        row_file[legacy] = legacy_file
    return Impressions(
        ts=ts,
        user=user,
        creative=creative,
        campaign=campaign,
        host=host,
        price=price,
        ids=ids,
        auction_ids=auction_ids,
        parts=parts,
        row_file=row_file,
        names=tuple(names),
        tail_file=tail_file,
        legacy_file=legacy_file,
    )


def _records(imps: Impressions, catalog: Catalog, window: Window) -> pl.DataFrame:
    """The JSON fields of every base impression, timestamps formatted as their file wants."""
    day = window.day_of(imps.ts)
    local = imps.parts.row_part == 0
    offsets = pl.Series([o for o, _ in _OFFSETS])
    offset_s = np.where(local, np.array([s for _, s in _OFFSETS])[day % len(_OFFSETS)], 0)
    frame = pl.DataFrame(
        {
            "impression_id": imps.ids,
            "creative_id": catalog.creative_ids[imps.creative],
            "user_id": catalog.user_ids[imps.user],
            "ts": imps.ts,
            "local": local,
            "offset_s": offset_s,
            "offset": offsets.gather(day % len(_OFFSETS)),
            "website": catalog.hosts.gather(imps.host),
            "ip": catalog.user_ip.gather(imps.user),
            "user_agent": catalog.user_ua.gather(imps.user),
            "bid_request_id": imps.auction_ids,
            "price": imps.price,
        }
    )
    timestamp = (
        pl.when("local")
        .then(offset_text(pl.col("ts"), pl.col("offset_s"), pl.col("offset")))
        .otherwise(utc_text(pl.col("ts")))
    )
    return frame.with_columns(timestamp=timestamp, currency=pl.lit("USD")).select(FIELDS)


def _encode(records: pl.DataFrame, fields: tuple[str, ...] = FIELDS, end: str = "") -> pl.Series:
    """Each record as one JSON object, followed by `end`."""
    json = pl.struct(fields).struct.json_encode()
    return records.select(pl.concat_str([json, pl.lit(end)]) if end else json).to_series()


def _faulty(
    rng: np.random.Generator,
    records: pl.DataFrame,
    templates: NDArray[np.int64],
    first_id: int,
) -> tuple[pl.Series, list[str], NDArray[np.int64]]:
    """Faulty lines copied from template rows, a run of each reject reason in turn.

    Returns the lines, their reasons and the template row each was made from.
    """
    runs, rows = fault_runs(
        rng,
        records,
        templates,
        (
            Reason.MALFORMED_JSON,
            Reason.NOT_AN_OBJECT,
            Reason.MISSING_FIELD,
            Reason.INVALID_TIMESTAMP,
            Reason.TIMESTAMP_OUT_OF_RANGE,
            Reason.TIMESTAMP_IN_FUTURE,
        ),
        id_column="impression_id",
        kind=IdKind.IMPRESSION,
        first_id=first_id,
    )
    lines: list[pl.Series] = []
    tags: list[str] = []
    for reason, chunk in runs:
        k = chunk.height
        tags += [reason.value] * k
        if reason is Reason.MALFORMED_JSON:
            # A proper prefix of a JSON object is never valid JSON: a write cut mid-line.
            full = _encode(chunk)
            keep = np.maximum(1, (full.str.len_bytes().to_numpy() * rng.uniform(0.2, 0.9, k)))
            lines.append(full.str.slice(0, pl.Series(keep.astype(np.int64))))
        elif reason is Reason.NOT_AN_OBJECT:
            lines.append(pick(rng, NOT_OBJECTS, k))
        elif reason is Reason.MISSING_FIELD:
            missing = rng.integers(0, 3, k)
            variants = [
                _encode(chunk, tuple(f for f in FIELDS if f != field))
                for field in ("user_id", "creative_id", "timestamp")
            ]
            lines.append(choose(pl.Series(missing), variants))
        else:
            bad = bad_timestamps(rng, reason, k)
            lines.append(_encode(chunk.with_columns(timestamp=bad)))
    return pl.concat([s.rename("line") for s in lines]) + "\n", tags, rows


def _cut_short(raw: bytes, packed: bytes) -> tuple[bytes, int, bool]:
    """Keep ~60 % of a gzip; return the bytes, complete lines a reader recovers, partial or not.

    The cut is moved until the recovered text ends inside a line, so the last piece is
    a proper prefix of a JSON object (invalid, never mistaken for a complete record).
    """
    start = int(len(packed) * _KEEP)
    for cut in [*range(start, 10, -1), *range(start + 1, len(packed))]:
        text = zlib.decompressobj(wbits=31).decompress(packed[:cut])
        if text and not text.endswith(b"\n") and raw[len(text) : len(text) + 1] != b"\n":
            return packed[:cut], text.count(b"\n"), True
    return packed, raw.count(b"\n"), False


def write_impressions(
    rng: np.random.Generator,
    imps: Impressions,
    catalog: Catalog,
    window: Window,
    folder: Path,
    faults: bool,
    sink: Sink,
) -> tuple[SourceTruth, NDArray[np.bool_]]:
    """Write the impression files; return their truth and which base rows a reader can see."""
    records = _records(imps, catalog, window)
    lines = _encode(records, end="\n")
    if imps.legacy_file is not None:
        legacy = np.flatnonzero(imps.row_file == imps.legacy_file)
        lines = lines.scatter(legacy, _encode(records[legacy], LEGACY_FIELDS, "\n"))
    n = len(imps.ts)
    pos = np.arange(n, dtype=np.float64)
    frames = [
        pl.DataFrame(
            {"file": imps.row_file, "pos": pos, "line": lines, "tag": VALID, "row": np.arange(n)}
        )
    ]
    if faults:
        candidates = np.flatnonzero(imps.regular)
        bad, tags, templates = _faulty(rng, records, candidates, n)
        frames.append(
            pl.DataFrame(
                {
                    "file": imps.row_file[templates],
                    "pos": pos[templates] + rng.uniform(0.001, 0.999, len(bad)),
                    "line": bad,
                    "tag": tags,
                    "row": -1,
                }
            )
        )
        copies = pick_duplicates(
            rng,
            candidates,
            imps.parts,
            imps.row_file,
            pos,
            fault_count(rng, n),
            fault_count(rng, n),
        )
        frames.append(
            pl.DataFrame(
                {
                    "file": copies.file,
                    "pos": copies.pos,
                    "line": lines.gather(copies.rows),
                    "tag": DUPLICATE,
                    "row": -1,
                }
            )
        )
    everything = pl.concat(frames, how="vertical_relaxed")
    seen = np.ones(n, dtype=np.bool_)
    truth = SourceTruth()
    for index, (name, part) in enumerate(
        zip(imps.names, file_slices(everything, len(imps.names)), strict=True)
    ):
        raw = lines_bytes(part["line"])
        path = folder / name
        if index == imps.tail_file and faults:
            packed, survivors, torn = _cut_short(bytes(raw), gzip_bytes(raw))
            truth.add(tally(part["tag"].head(survivors)))
            if torn:
                truth.add({Reason.TRUNCATED_FILE.value: 1})
            seen[part["row"].slice(survivors).to_numpy()] = False
            path.write_bytes(packed)
            continue
        truth.add(tally(part["tag"]))
        sink.put(path, partial(gzip_bytes, raw) if name.endswith(".gz") else const(raw))
    return truth, seen
