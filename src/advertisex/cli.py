"""The command line: parses options, calls the library, turns errors into one plain line.

Exit codes: 0 success, every row accepted (duplicates are fine); 3 the run finished but rows
were quarantined or files could not be read; 2 a usage or configuration mistake; 1 a store
failure.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Callable
from datetime import date, datetime
from functools import wraps
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import typer
from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table

from advertisex.config import Settings, load_settings
from advertisex.errors import AdvertisexError, ConfigError
from advertisex.sources.batch import Format

if TYPE_CHECKING:
    from advertisex.store import Store

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
dims_app = typer.Typer(no_args_is_help=True, help="Dimension tables (creatives -> campaigns).")
rejects_app = typer.Typer(help="Quarantined rows: list them, replay them after a fix.")
app.add_typer(dims_app, name="dims")
app.add_typer(rejects_app, name="rejects")

err = Console(stderr=True)
out = Console(soft_wrap=True)

EXIT_REJECTS = 3
P = ParamSpec("P")
R = TypeVar("R")

DbOption = typer.Option(None, "--db", help="DuckDB database file [env ADVX_DB].")
ConfigOption = typer.Option(None, "--config", help="TOML settings file [env ADVX_CONFIG].")


def plain_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """Our errors become one line on stderr and an exit code, never a traceback."""

    @wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        except ConfigError as e:
            _say(f"error: {e.message}")
            raise typer.Exit(2) from None
        except AdvertisexError as e:
            _say(f"error: {e.message}")
            raise typer.Exit(1) from None

    return wrapper


def _say(line: str) -> None:
    """One unwrapped line on stderr (rich would fold it to the terminal width)."""
    sys.stderr.write(line + "\n")


def _settings(db: Path | None, config: Path | None, **more: Any) -> Settings:
    return load_settings(config, db=db, **more)


def _parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).replace(tzinfo=None)
    except ValueError:
        raise ConfigError(
            f"{name} {value!r} is not a time; use ISO-8601 like 2026-11-01 or 2026-11-01T10:00"
        ) from None


@app.command()
@plain_errors
def generate(
    out_dir: Path = typer.Argument(..., help="Folder to write the data set into."),
    impressions: int = typer.Option(100_000, min=1, help="Impressions to generate."),
    days: int = typer.Option(3, min=1, help="Days of traffic."),
    seed: int = typer.Option(1, help="Random seed: same seed, same files."),
    faults: bool = typer.Option(True, "--faults/--no-faults", help="Inject realistic faults."),
    start: str | None = typer.Option(None, help="First day (YYYY-MM-DD); default: DAYS ago."),
    clicks: int | None = typer.Option(None, min=0, help="Override the click/conversion count."),
    bid_requests: int | None = typer.Option(None, min=0, help="Override the bid request count."),
) -> None:
    """Write a realistic data set with known truth (truth.json)."""
    from advertisex.generate import generate as run

    first = None
    if start:
        try:
            first = date.fromisoformat(start)
        except ValueError:
            raise ConfigError(f"--start {start!r} is not a date; use YYYY-MM-DD") from None
    truth = run(
        out_dir,
        impressions=impressions,
        days=days,
        seed=seed,
        faults=faults,
        start=first,
        clicks=clicks,
        bid_requests=bid_requests,
    )
    for name, s in truth["sources"].items():
        err.print(f"{name}: {s['received']:,} records ({s['valid']:,} valid)")
    err.print(f"wrote {out_dir} (truth in {out_dir / 'truth.json'})")


@app.command()
@plain_errors
def ingest(
    paths: list[str] = typer.Argument(..., help="Files, folders or globs (.gz and .bz2 too)."),
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
    as_json: bool = typer.Option(False, "--json", help="Print the reconciliation as JSON."),
    force: bool = typer.Option(False, help="Read files again even if already ingested."),
    source: str | None = typer.Option(
        None, help="Force the source: impressions, clicks_conversions or bid_requests."
    ),
    fmt: Format | None = typer.Option(None, "--format", help="Force the format."),
    batch_mb: int | None = typer.Option(None, min=1, help="Batch size in MiB of input."),
    progress: bool = typer.Option(True, help="Show a progress bar on a terminal."),
) -> None:
    """Ingest event files into the store, exactly once; print the reconciliation."""
    from advertisex.pipeline import Runner
    from advertisex.schemas.sources import SOURCES
    from advertisex.sources.files import expand_paths
    from advertisex.store import Store

    if source is not None and source not in SOURCES:
        raise ConfigError(f"--source {source!r} is unknown; use one of {', '.join(SOURCES)}")
    settings = _settings(db, config, batch_bytes=batch_mb * 1024 * 1024 if batch_mb else None)
    files = expand_paths(paths)
    with Store.open(settings) as store:
        runner = Runner(store, settings)
        show = progress and err.is_terminal
        with Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rows]:,} rows"),
            TimeElapsedColumn(),
            console=err,
            disable=not show,
            transient=True,
        ) as bar:
            task = bar.add_task("files", total=len(files), rows=0)
            rows = 0
            seen = 0

            def on_file(path: Path) -> None:
                nonlocal seen
                bar.update(task, completed=seen, description=path.name[-40:])
                seen += 1

            def on_batch(_offset: int, n: int) -> None:
                nonlocal rows
                rows += n
                bar.update(task, rows=rows)

            report = runner.ingest_paths(
                files, force=force, source=source, fmt=fmt, on_file=on_file, on_batch=on_batch
            )
        _refresh_rollups(store, settings)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        _print_reconciliation(report)
    if not report.clean:
        raise typer.Exit(EXIT_REJECTS)


def _print_reconciliation(report: Any) -> None:
    table = Table(title="received = accepted + rejected + duplicates")
    for col in ("source", "received", "accepted", "rejected", "duplicates", "rejected by reason"):
        table.add_column(
            col, justify="left" if col in ("source", "rejected by reason") else "right"
        )
    for name, c in report.sources.items():
        reasons = ", ".join(f"{r} {n:,}" for r, n in sorted(c.rejected_by_reason.items()))
        table.add_row(
            name,
            f"{c.received:,}",
            f"{c.accepted:,}",
            f"{c.rejected:,}",
            f"{c.duplicates:,}",
            reasons,
        )
    out.print(table)
    out.print(
        f"files read: {report.files_read}, skipped as already ingested: "
        f"{len(report.files_skipped)}, unreadable: {len(report.files_failed)}"
    )
    for path, message in report.files_failed:
        _say(f"cannot read {path}: {message}")


@app.command()
@plain_errors
def report(
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
    by: list[str] = typer.Option(
        ["campaign"],
        help="campaign, advertiser, creative, site, country, device, hour or day; "
        "repeat or comma-separate for several.",
    ),
    start: str | None = typer.Option(None, "--from", help="From this hour (inclusive)."),
    end: str | None = typer.Option(None, "--to", help="Until this hour (exclusive)."),
    output: str = typer.Option("table", "--format", help="table, json or csv."),
    include_ivt: bool = typer.Option(
        False, "--include-ivt", help="Count invalid traffic too (left out by default)."
    ),
    source: str = typer.Option(
        "auto", help="rollups, events (recompute from the events) or auto (rollups when current)."
    ),
) -> None:
    """Campaign metrics per group: delivery, clicks, conversions, spend, revenue, bidding."""
    from advertisex.analytics import campaign_report
    from advertisex.store import Store

    if output not in ("table", "json", "csv"):
        raise ConfigError(f"--format {output!r} is unknown; use table, json or csv")
    if source not in ("auto", "rollups", "events"):
        raise ConfigError(f"--source {source!r} is unknown; use auto, rollups or events")
    groups = [g.strip() for item in by for g in item.split(",") if g.strip()]
    settings = _settings(db, config)
    with Store.open(settings, read_only=True) as store:
        rows = campaign_report(
            store.con,
            groups,
            _parse_time(start, "--from"),
            _parse_time(end, "--to"),
            include_ivt=include_ivt,
            source=source,  # type: ignore[arg-type]  # checked above
            settings=settings,
        )
    _emit(rows, output)


def _emit(rows: list[dict[str, Any]], output: str, title: str | None = None) -> None:
    if output == "json":
        sys.stdout.write(json.dumps(rows, default=str) + "\n")
        return
    if output == "csv":
        buf = io.StringIO()
        if rows:
            w = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
            w.writeheader()
            w.writerows(rows)
        sys.stdout.write(buf.getvalue())
        return
    table = Table(title=title)
    if not rows:
        out.print("no rows")
        return
    for key in rows[0]:
        table.add_column(key, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(k, v) for k, v in row.items()))
    out.print(table)


def _cell(key: str, value: Any) -> str:
    if value is None:
        return "-"
    if key in ("ctr", "cvr", "win_rate") and isinstance(value, float):
        return f"{value:.2%}"
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


@dims_app.command("load")
@plain_errors
def dims_load(
    file: Path = typer.Argument(..., help="CSV or JSON with creative_id, campaign_id, ..."),
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
) -> None:
    """Load (upsert) the creatives dimension."""
    from advertisex.enrich import load_creatives
    from advertisex.store import Store

    settings = _settings(db, config)
    with Store.open(settings) as store:
        loaded, skipped = load_creatives(store, file)
        _refresh_rollups(store, settings)
    msg = f"loaded {loaded:,} creatives from {file}"
    if skipped:
        msg += f"; skipped {skipped:,} rows without creative_id or campaign_id"
    err.print(msg)


@rejects_app.callback(invoke_without_command=True)
@plain_errors
def rejects(
    ctx: typer.Context,
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
    reason: str | None = typer.Option(None, help="Only this reason code."),
    output: str = typer.Option("table", "--format", help="table or json."),
    limit: int = typer.Option(100, min=0, help="At most this many rows (0: all)."),
) -> None:
    """List quarantined rows with their origin, reason and raw text."""
    if ctx.invoked_subcommand is not None:
        return
    from advertisex.pipeline.replay import list_rejects
    from advertisex.store import Store

    if output not in ("table", "json"):
        raise ConfigError(f"--format {output!r} is unknown; use table or json")
    with Store.open(_settings(db, config), read_only=True) as store:
        rows = list_rejects(store.con, reason=reason, limit=limit or None)
    if output == "table":
        rows = [
            {
                "id": r["reject_id"],
                "source": r["source"],
                "origin": f"{r['source_uri']}:{r['source_record'] or ''}",
                "reason": r["reason"],
                "field": r["field"],
                "detail": _short(r["detail"]),
                "raw": _short(r["raw"]),
            }
            for r in rows
        ]
    _emit(rows, output, title="rejects")


def _short(text: str | None, width: int = 60) -> str | None:
    if text is None or len(text) <= width:
        return text
    return text[: width - 1] + "…"


@rejects_app.command("replay")
@plain_errors
def rejects_replay(
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
    reason: str | None = typer.Option(None, help="Only rows quarantined for this reason."),
    as_json: bool = typer.Option(False, "--json", help="Print the outcome as JSON."),
) -> None:
    """Run quarantined rows through the pipeline again (after loading a dimension, a fix...)."""
    from advertisex.pipeline.replay import replay_rejects
    from advertisex.store import Store

    settings = _settings(db, config)
    with Store.open(settings) as store:
        result = replay_rejects(store, settings, reason=reason)
        _refresh_rollups(store, settings)
    if as_json:
        out.print_json(json.dumps(result.to_dict()))
    else:
        _print_reconciliation(result)
    if not result.clean:
        raise typer.Exit(EXIT_REJECTS)


# -- attribution and rollups (issue 4) ------------------------------------------------------


def _refresh_rollups(store: Store, settings: Settings) -> None:
    """Fold what a command loaded into the attribution and rollup tables."""
    from advertisex.analytics import refresh

    refresh(store, settings)


@app.command()
@plain_errors
def rollup(
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
    full: bool = typer.Option(False, help="Recompute everything, not only the touched hours."),
) -> None:
    """Bring attribution and hourly rollups up to date (ingest, replay and dims load do it)."""
    from advertisex.analytics import refresh
    from advertisex.store import Store

    settings = _settings(db, config)
    with Store.open(settings) as store:
        result = refresh(store, settings, full=full)
    what = "everything" if result.full_rebuild else f"{result.hours:,} hours"
    err.print(f"rollups: recomputed {what} in {result.seconds:.2f} s")


def main() -> None:
    app()
