"""Clicks and conversions: drawn from real impressions and clicks, written as CSV with faults."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl
from numpy.typing import NDArray

from advertisex.generate._catalog import CONVERSION_TYPES, Catalog
from advertisex.generate._clock import DAY, Window, draw, utc_text
from advertisex.generate._faults import (
    BAD_VALUES,
    UNKNOWN_TYPES,
    bad_timestamps,
    choose,
    fault_count,
    fault_runs,
    pick,
)
from advertisex.generate._ids import IdKind, uuids
from advertisex.generate._impressions import Impressions
from advertisex.generate._ivt import inject_clicks
from advertisex.generate._layout import (
    DUPLICATE,
    VALID,
    Parts,
    file_slices,
    pick_duplicates,
    split_days,
)
from advertisex.generate._output import Sink, SourceTruth, const, lines_bytes, tally
from advertisex.schemas import Reason

COLUMNS = (
    "timestamp", "user_id", "campaign_id", "conversion_type", "event_id", "creative_id",
    "impression_id", "value", "currency",
)  # fmt: skip
LEGACY_COLUMNS = COLUMNS[:4]
MAX_ROWS = 400_000
CLICK = -1  # event type of a click; conversions index CONVERSION_TYPES
_PURCHASE = CONVERSION_TYPES.index("purchase")


@dataclass(frozen=True)
class Events:
    """Clicks and conversions, all valid, sorted by time, and the file each is written to."""

    ts: NDArray[np.int64]
    campaign: NDArray[np.int64]
    kind: NDArray[np.int64]  # CLICK or an index into CONVERSION_TYPES
    impression: NDArray[np.int64]  # base impression row each event descends from
    click: NDArray[np.int64]  # row of the click a conversion came from, -1 for clicks
    value: NDArray[np.float64]  # NaN where the event carries no value
    currency: NDArray[np.int64]  # index into Catalog.currencies, -1 with no value
    ids: pl.Series
    parts: Parts
    row_file: NDArray[np.int64]
    names: tuple[str, ...]
    legacy_file: int | None  # the seed header: no ids, four columns

    @property
    def regular(self) -> NDArray[np.bool_]:
        return self.parts.row_part >= 0


def _weighted_pick(
    rng: np.random.Generator, pool: NDArray[np.int64], weights: NDArray[np.float64], count: int
) -> NDArray[np.int64]:
    """Exactly `count` of `pool`, favouring high weights; repeats only when the pool is short."""
    if len(pool) == 0 or count == 0:
        return pool[:0]
    if count <= len(pool):
        # Efraimidis-Spirakis: the `count` smallest Exp(1)/w keys are a weighted sample
        # without replacement, in linear time.
        keys = rng.exponential(size=len(pool)) / weights
        return pool[np.sort(np.argpartition(keys, count - 1)[:count])]
    extra = pool[draw(rng, weights, count - len(pool))]
    return np.sort(np.concatenate([pool, extra]))


def _bernoulli(
    rng: np.random.Generator, pool: NDArray[np.int64], chance: NDArray[np.float64]
) -> NDArray[np.int64]:
    """Each of `pool` with its own chance."""
    return pool[rng.random(len(pool)) < chance]


def _unique_sample(
    rng: np.random.Generator, key: pl.DataFrame, candidates: NDArray[np.bool_], size: int
) -> NDArray[np.int64]:
    """Up to `size` candidate rows whose natural key no other row shares."""
    pool = np.flatnonzero(candidates & ~key.is_duplicated().to_numpy())
    return np.sort(rng.choice(pool, min(size, len(pool)), replace=False))


def draw_events(
    rng: np.random.Generator,
    catalog: Catalog,
    imps: Impressions,
    window: Window,
    total: int | None,
    ivt_rng: np.random.Generator | None = None,
    steady: bool = False,
) -> Events:
    """Clicks on real earlier impressions (within 24 h), conversions on real earlier clicks.

    The rows in the seed shape (no ids) come from the last day, or from every day when
    `steady` (labelled incidents: the clean traffic must not change shape mid-run).
    `total` fixes the number of clicks plus conversions; by default each campaign's CTR
    and conversion rate decide.
    """
    end = window.end_s
    eligible = np.flatnonzero(imps.regular & (imps.ts <= end - 2))
    ctr = catalog.campaign_ctr[imps.campaign[eligible]]
    if total is None:
        source = _bernoulli(rng, eligible, ctr)
        if len(source) == 0:
            source = _weighted_pick(rng, eligible, ctr, 1)
    else:
        mean_cvr = float(catalog.campaign_cvr.mean())
        source = _weighted_pick(rng, eligible, ctr, round(total / (1 + mean_cvr)))
    delay = np.rint(rng.lognormal(np.log(25.0), 1.3, len(source))).astype(np.int64)
    click_ts = imps.ts[source] + np.clip(delay, 1, np.minimum(DAY - 1, end - 1 - imps.ts[source]))
    if ivt_rng is not None:
        source, click_ts = inject_clicks(ivt_rng, imps, source, click_ts, end)
    order = np.argsort(click_ts, kind="stable")
    source, click_ts = source[order], click_ts[order]
    click_campaign = imps.campaign[source]
    n_clicks = len(source)

    from_day = 0 if steady else window.days - 1
    last_day = window.day_of(click_ts) >= from_day
    click_key = pl.DataFrame({"t": click_ts, "u": imps.user[source], "c": click_campaign})
    legacy_clicks = (
        _unique_sample(rng, click_key, last_day, min(500, max(2, n_clicks // 50)))
        if n_clicks >= 10
        else np.zeros(0, dtype=np.int64)
    )
    convertible = np.ones(n_clicks, dtype=np.bool_)
    convertible[legacy_clicks] = False
    convertible &= click_ts <= end - 2
    cvr = catalog.campaign_cvr[click_campaign]
    if total is None:
        parent = _bernoulli(rng, np.flatnonzero(convertible), cvr[convertible])
    else:
        pool = np.flatnonzero(convertible)
        parent = _weighted_pick(rng, pool, cvr[pool], total - n_clicks)
    n_conv = len(parent)
    wait = np.rint(rng.lognormal(np.log(7200.0), 1.5, n_conv)).astype(np.int64)
    conv_ts = click_ts[parent] + np.clip(
        wait, 1, np.minimum(7 * DAY - 1, end - 1 - click_ts[parent])
    )
    goal = catalog.campaign_goal[click_campaign[parent]]
    conv_kind = np.where(
        rng.random(n_conv) < 0.7, goal, rng.integers(0, len(CONVERSION_TYPES), n_conv)
    )
    amount = {
        "purchase": rng.lognormal(np.log(45.0), 0.8, n_conv),
        "add_to_cart": rng.lognormal(np.log(30.0), 0.7, n_conv),
        "lead": rng.uniform(5.0, 20.0, n_conv),
    }
    value = np.full(n_conv, np.nan)
    for name, draws in amount.items():
        hit = conv_kind == CONVERSION_TYPES.index(name)
        value[hit] = np.round(draws[hit], 2)
    conv_currency = np.where(np.isnan(value), -1, catalog.campaign_currency[click_campaign[parent]])

    ts = np.concatenate([click_ts, conv_ts])
    kind = np.concatenate([np.full(n_clicks, CLICK), conv_kind])
    campaign = np.concatenate([click_campaign, click_campaign[parent]])
    user = imps.user[np.concatenate([source, source[parent]])]
    conv_last_day = np.zeros(n_clicks + n_conv, dtype=np.bool_)
    conv_last_day[n_clicks:] = window.day_of(conv_ts) >= from_day
    key = pl.DataFrame({"t": ts, "u": user, "c": campaign, "k": kind})
    legacy_convs = _unique_sample(rng, key, conv_last_day, min(100, n_conv // 20))
    legacy = np.zeros(n_clicks + n_conv, dtype=np.bool_)
    legacy[legacy_clicks] = True
    legacy[legacy_convs] = True

    ids = uuids(rng, IdKind.EVENT, 0, n_clicks + n_conv)
    order = np.argsort(ts, kind="stable")
    where = np.empty_like(order)
    where[order] = np.arange(len(order))
    click = np.concatenate([np.full(n_clicks, -1), where[parent]])[order]

    day = window.day_of(ts[order])
    regular = ~legacy[order]
    parts = split_days(day, regular, window.days, MAX_ROWS, 2)
    names = [
        f"clicks_{window.date(d)}_part{k:02d}.csv"
        for d in range(window.days)
        for k in range(int(parts.per_day[d]))
    ]
    row_file = np.where(regular, parts.row_file(), -1)
    legacy_file = None
    if not regular.all():
        legacy_file = len(names)
        names.append(f"clicks_{'all_days' if steady else window.date(from_day)}_legacy.csv")
        row_file[~regular] = legacy_file
    return Events(
        ts=ts[order],
        campaign=campaign[order],
        kind=kind[order],
        impression=np.concatenate([source, source[parent]])[order],
        click=click,
        value=np.concatenate([np.full(n_clicks, np.nan), value])[order],
        currency=np.concatenate([np.full(n_clicks, -1), conv_currency])[order],
        ids=ids.gather(order),
        parts=parts,
        row_file=row_file,
        names=tuple(names),
        legacy_file=legacy_file,
    )


def _fields(events: Events, imps: Impressions, catalog: Catalog) -> pl.DataFrame:
    """Every CSV field of every event, as text ("" for an absent value)."""
    types = pl.Series(["click", *CONVERSION_TYPES]).gather(events.kind + 1)
    currency = pl.Series([None, *catalog.currencies], dtype=pl.String).gather(events.currency + 1)
    value = pl.Series(events.value).fill_nan(None).cast(pl.String)
    frame = pl.DataFrame(
        {
            "ts": events.ts,
            "user_id": catalog.user_ids[imps.user[events.impression]],
            "campaign_id": catalog.campaign_ids[events.campaign],
            "conversion_type": types,
            "event_id": events.ids,
            "creative_id": catalog.creative_ids[imps.creative[events.impression]],
            "impression_id": imps.ids.gather(events.impression),
            "value": value,
            "currency": currency,
        }
    )
    return frame.with_columns(timestamp=utc_text(pl.col("ts"))).select(
        pl.col(c).cast(pl.String).fill_null("") for c in COLUMNS
    )


def _join(fields: pl.DataFrame, columns: tuple[str, ...] = COLUMNS, end: str = "") -> pl.Series:
    """Each row's `columns` as one CSV line (no field needs quoting), followed by `end`."""
    line = pl.concat_str(columns, separator=",")
    return fields.select(pl.concat_str([line, pl.lit(end)]) if end else line).to_series()


def _faulty(
    rng: np.random.Generator, fields: pl.DataFrame, templates: NDArray[np.int64], first_id: int
) -> tuple[pl.Series, list[str], NDArray[np.int64]]:
    """Faulty rows copied from template rows, a run of each reject reason in turn."""
    runs, rows = fault_runs(
        rng,
        fields,
        templates,
        (
            Reason.MISSING_FIELD,
            Reason.MALFORMED_CSV,
            Reason.INVALID_TIMESTAMP,
            Reason.TIMESTAMP_OUT_OF_RANGE,
            Reason.TIMESTAMP_IN_FUTURE,
            Reason.UNKNOWN_CONVERSION_TYPE,
            Reason.INVALID_VALUE,
        ),
        id_column="event_id",
        kind=IdKind.EVENT,
        first_id=first_id,
    )
    lines: list[pl.Series] = []
    tags: list[str] = []
    for reason, chunk in runs:
        k = chunk.height
        tags += [reason.value] * k
        if reason is Reason.MISSING_FIELD:
            blank = pl.Series(rng.random(k) < 0.5)
            chunk = chunk.with_columns(
                user_id=pl.when(pl.lit(blank)).then(pl.lit("")).otherwise("user_id"),
                campaign_id=pl.when(pl.lit(blank)).then("campaign_id").otherwise(pl.lit("")),
            )
            lines.append(_join(chunk))
        elif reason is Reason.MALFORMED_CSV:
            # Too few fields (4, 6 or 8 of 9) or one too many.
            width = np.array([4, 6, 8, 10])[rng.integers(0, 4, k)]
            variants = [_join(chunk, COLUMNS[:w]) for w in (4, 6, 8)]
            variants.append(_join(chunk) + ",0")
            lines.append(choose(pl.Series((width - 4) // 2), variants))
        else:
            if reason is Reason.UNKNOWN_CONVERSION_TYPE:
                chunk = chunk.with_columns(conversion_type=pick(rng, UNKNOWN_TYPES, k))
            elif reason is Reason.INVALID_VALUE:
                chunk = chunk.with_columns(
                    conversion_type=pl.lit("purchase"),
                    value=pick(rng, BAD_VALUES, k),
                    currency=pl.lit("USD"),
                )
            else:
                chunk = chunk.with_columns(timestamp=bad_timestamps(rng, reason, k))
            lines.append(_join(chunk))
    return pl.concat([s.rename("line") for s in lines]) + "\n", tags, rows


def write_events(
    rng: np.random.Generator,
    events: Events,
    imps: Impressions,
    catalog: Catalog,
    folder: Path,
    faults: bool,
    sink: Sink,
) -> SourceTruth:
    """Write the click/conversion CSV files and return their truth."""
    fields = _fields(events, imps, catalog)
    lines = _join(fields, end="\n")
    if events.legacy_file is not None:
        legacy = np.flatnonzero(events.row_file == events.legacy_file)
        lines = lines.scatter(legacy, _join(fields[legacy], LEGACY_COLUMNS, "\n"))
    n = len(events.ts)
    pos = np.arange(n, dtype=np.float64)
    frames = [pl.DataFrame({"file": events.row_file, "pos": pos, "line": lines, "tag": VALID})]
    candidates = np.flatnonzero(events.regular)
    if faults and len(candidates):
        bad, tags, templates = _faulty(rng, fields, candidates, n)
        frames.append(
            pl.DataFrame(
                {
                    "file": events.row_file[templates],
                    "pos": pos[templates] + rng.uniform(0.001, 0.999, len(bad)),
                    "line": bad,
                    "tag": tags,
                }
            )
        )
        copies = pick_duplicates(
            rng, candidates, events.parts, events.row_file, pos, fault_count(rng, n),
            fault_count(rng, n),
        )  # fmt: skip
        frames.append(
            pl.DataFrame(
                {
                    "file": copies.file,
                    "pos": copies.pos,
                    "line": lines.gather(copies.rows),
                    "tag": DUPLICATE,
                }
            )
        )
    everything = pl.concat(frames, how="vertical_relaxed")
    truth = SourceTruth()
    for index, (name, part) in enumerate(
        zip(events.names, file_slices(everything, len(events.names)), strict=True)
    ):
        header = LEGACY_COLUMNS if index == events.legacy_file else COLUMNS
        text = b"".join([(",".join(header) + "\n").encode(), lines_bytes(part["line"])])
        sink.put(folder / name, const(text))
        truth.add(tally(part["tag"]))
    return truth


def attribution(events: Events, imps: Impressions) -> pl.DataFrame:
    """Generator-side truth of which impression (and click) each event came from."""
    click_id = events.ids.gather(np.maximum(events.click, 0))
    return pl.DataFrame(
        {
            "event_id": events.ids,
            "impression_id": imps.ids.gather(events.impression),
            "click_event_id": pl.select(
                pl.when(pl.lit(pl.Series(events.click >= 0))).then(pl.lit(click_id))
            ).to_series(),
            "id_in_data": events.regular,
        }
    )
