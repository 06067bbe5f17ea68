"""The command line: parses options, calls the library, turns errors into one plain line.

Exit codes: 0 success, every row accepted (duplicates are fine); 3 the run finished but rows
were quarantined or files could not be read; 2 a usage or configuration mistake; 1 a store
failure.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import sys
import time
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
    incidents: bool = typer.Option(
        False, help="Inject one labelled incident of each kind (listed in truth.json)."
    ),
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
        incidents=incidents,
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
    metrics_file: Path | None = typer.Option(
        None, help="Write Prometheus metrics here (textfile collector) [env ADVX_METRICS_FILE]."
    ),
    pushgateway: str | None = typer.Option(
        None, help="Push Prometheus metrics to this Pushgateway URL [env ADVX_PUSHGATEWAY_URL]."
    ),
) -> None:
    """Ingest event files into the store, exactly once; print the reconciliation."""
    from advertisex.pipeline import Runner
    from advertisex.schemas.sources import SOURCES
    from advertisex.sources.files import expand_paths
    from advertisex.store import Store

    if source is not None and source not in SOURCES:
        raise ConfigError(f"--source {source!r} is unknown; use one of {', '.join(SOURCES)}")
    settings = _settings(
        db,
        config,
        batch_bytes=batch_mb * 1024 * 1024 if batch_mb else None,
        metrics_file=metrics_file,
        pushgateway_url=pushgateway,
    )
    files = expand_paths(paths)
    with Store.open(settings) as store:
        exporting = settings.metrics_file is not None or settings.pushgateway_url is not None
        started, last_batch = time.monotonic(), _last_batch(store) if exporting else 0
        batch_clock = started
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
                nonlocal rows, batch_clock
                rows += n
                bar.update(task, rows=rows)
                if exporting:
                    now = time.monotonic()
                    _batch_seconds(now - batch_clock)
                    batch_clock = now

            report = runner.ingest_paths(
                files, force=force, source=source, fmt=fmt, on_file=on_file, on_batch=on_batch
            )
        _refresh_rollups(store, settings)
        if settings.quality_after_ingest:
            _check_after_load(store, settings)
        if exporting:
            _export_metrics(settings, store, report, last_batch, time.monotonic() - started)
    if as_json:
        out.print_json(json.dumps(report.to_dict()))
    else:
        _print_reconciliation(report)
    if not report.clean:
        raise typer.Exit(EXIT_REJECTS)


def _check_after_load(store: Any, settings: Settings) -> None:
    """The quality checks after a load: alerts advance and reach the sinks; one summary line."""
    from advertisex.quality import run_cycle

    try:
        result = run_cycle(store, settings)
    except Exception as e:  # a check never fails the load it follows
        _say(f"warning: the quality checks did not run: {type(e).__name__}: {e}")
        return
    failing = [f for f in result.findings if f.failed]
    if failing:
        critical = sum(f.severity == "critical" for f in failing)
        _say(
            f"quality: {len(failing)} checks failing ({critical} critical) as of now; "
            "`advertisex check` lists them"
        )


def _last_batch(store: Any) -> int:
    from advertisex.store import one

    return int(one(store.con, "SELECT coalesce(max(batch_id), 0) FROM batches")[0])


def _batch_seconds(seconds: float) -> None:
    from advertisex.quality.metrics import BATCH_SECONDS

    BATCH_SECONDS.observe(seconds)


def _export_metrics(
    settings: Settings, store: Any, report: Any, last_batch: int, seconds: float
) -> None:
    """Ingest metrics to a textfile-collector file and/or a Pushgateway (a failed push warns)."""
    from advertisex.quality import metrics

    metrics.record_ingest(report, store, last_batch, seconds, settings.late_seconds)
    if settings.metrics_file is not None:
        try:
            metrics.write_textfile(settings.metrics_file)
        except OSError as e:
            raise ConfigError(f"cannot write metrics to {settings.metrics_file}: {e}") from None
    if settings.pushgateway_url:
        try:
            metrics.push(settings.pushgateway_url)
        except OSError as e:
            _say(f"warning: cannot push metrics to {settings.pushgateway_url}: {e}")


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
    metrics: str | None = typer.Option(
        None,
        help="Only these metrics, comma-separated (e.g. impressions,clicks,ctr); all if unset.",
    ),
    reach: bool = typer.Option(
        False,
        "--reach",
        help="Add unique_users: distinct users reached (exact for small sets, else "
        "HyperLogLog, about 3 %% error). Also asked by --metrics unique_users.",
    ),
) -> None:
    """Campaign metrics per group: delivery, clicks, conversions, spend, revenue, bidding."""
    from advertisex.analytics import METRICS, campaign_report
    from advertisex.store import Store

    known = (*METRICS, "unique_users")
    shown = [m.strip() for m in metrics.split(",") if m.strip()] if metrics else list(METRICS)
    unknown = [m for m in shown if m not in known]
    if unknown:
        raise ConfigError(f"--metrics {unknown[0]!r} is unknown; use some of {', '.join(known)}")
    if reach and "unique_users" not in shown:
        shown.append("unique_users")

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
            reach="unique_users" in shown,
        )
    hidden = set(known) - set(shown)
    _emit([{k: v for k, v in r.items() if k not in hidden} for r in rows], output)


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
    cells = [[_cell(k, v) for k, v in row.items()] for row in rows]
    for row_cells in cells:
        table.add_row(*row_cells)
    if out.is_terminal:
        out.print(table)
        return
    # Piped or redirected: as wide as the table needs, instead of folding it into 80 columns.
    widths = [max(len(k), *(len(c[i]) for c in cells)) for i, k in enumerate(rows[0])]
    Console(width=sum(widths) + 3 * len(widths) + 1).print(table)


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


# -- real time: serve (HTTP collector) and consume (Kafka) ----------------------------------


@app.command()
@plain_errors
def serve(
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8080, min=0, max=65535, help="Port (0: any free port)."),
    kafka: str | None = typer.Option(
        None, help="Produce events to these Kafka bootstrap servers instead of the store."
    ),
) -> None:
    """Run the HTTP collector (and /metrics) until SIGTERM; every 202 is durable."""
    from advertisex.api import serve as run

    run(_settings(db, config), host, port, say=_say, kafka=kafka)


@app.command("sign-url")
@plain_errors
def sign_url(
    url: str = typer.Argument(..., help="The landing URL a click should redirect to."),
    config: Path | None = ConfigOption,
) -> None:
    """Print the click tracker's query for URL: url=...&sig=... (HMAC with tracker_secret)."""
    from urllib.parse import urlencode

    from advertisex.api.collector import sign_url as sign

    settings = _settings(None, config)
    if settings.tracker_secret is None:
        raise ConfigError("tracker_secret is not set; set ADVX_TRACKER_SECRET to sign URLs")
    if not url.startswith(("https://", "http://")):
        raise ConfigError(f"{url!r} is not an http(s) URL; the click tracker redirects only there")
    sig = sign(settings.tracker_secret.get_secret_value(), url)
    sys.stdout.write(urlencode({"url": url, "sig": sig}) + "\n")


@app.command()
@plain_errors
def consume(
    bootstrap_servers: str = typer.Option(..., help="Kafka bootstrap servers (host:port,...)."),
    group: str = typer.Option(..., help="Consumer group id."),
    topics: str = typer.Option(
        "impressions,clicks,bid_requests",
        help="Topics, comma-separated; TOPIC=SOURCE for names that do not say their source.",
    ),
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
    metrics_port: int | None = typer.Option(
        None, min=0, max=65535, help="Serve /metrics (lag, messages) on this loopback port."
    ),
    until_idle: float | None = typer.Option(
        None, min=0, help="Stop once no message came for this many seconds (catch-up runs)."
    ),
) -> None:
    """Consume Kafka topics into the store, exactly once (offsets live in the store)."""
    import signal
    import threading

    from prometheus_client import start_http_server

    from advertisex.pipeline.consume import KafkaConsumerLoop, parse_topics
    from advertisex.store import Store

    settings = _settings(db, config)
    by_topic = parse_topics(topics)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    if metrics_port is not None:
        start_http_server(metrics_port, addr="127.0.0.1")
    with Store.open(settings) as store:
        loop = KafkaConsumerLoop(
            store, settings, bootstrap_servers=bootstrap_servers, group=group, topics=by_topic
        )
        _say(f"consuming {', '.join(by_topic)} as group {group} into {settings.db}")
        report = loop.run(stop, until_idle=until_idle)
    _say(f"stopped after {report.messages:,} messages")
    for name, c in report.sources.items():
        if c.received:
            _say(f"{name}: " + json.dumps(c.to_dict()))


# -- quality: checks and alerts (issue 6) -------------------------------------------------------

EXIT_CRITICAL = 4


@app.command()
@plain_errors
def check(
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
    output: str = typer.Option("table", "--format", help="table or json."),
    at: str | None = typer.Option(
        None, help="Evaluate as of this time (checks only: alerts are not touched)."
    ),
    show_all: bool = typer.Option(
        False, "--all", help="Table: list passing per-campaign/column findings too."
    ),
    watch: bool = typer.Option(False, help="Run on a timer until interrupted."),
    interval: float = typer.Option(30.0, min=1, help="Seconds between runs with --watch."),
    metrics_port: int | None = typer.Option(
        None, help="With --watch: serve Prometheus /metrics on this port."
    ),
    metrics_host: str = typer.Option("127.0.0.1", help="Address for --metrics-port."),
) -> None:
    """Run the data-quality checks now, advance the alerts and notify the sinks.

    Exit code 4 when a critical check fails.
    """
    from advertisex.quality.checks import run_checks
    from advertisex.quality.cycle import run_cycle
    from advertisex.quality.cycle import watch as run_watch
    from advertisex.store import Store

    if output not in ("table", "json"):
        raise ConfigError(f"--format {output!r} is unknown; use table or json")
    settings = _settings(db, config)
    if watch:
        logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
        try:
            run_watch(settings, interval, metrics_port, metrics_host)
        except KeyboardInterrupt:
            return
        return
    with Store.open(settings) as store:
        if at is not None:
            findings = run_checks(store.con, settings, _parse_time(at, "--at"))
        else:
            logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(message)s")
            findings = run_cycle(store, settings).findings
    if output == "json":
        sys.stdout.write(json.dumps([f.to_dict() for f in findings], default=str) + "\n")
    else:
        shown = [f for f in findings if show_all or f.failed or not f.subject]
        _emit(
            [
                {
                    "status": "FAIL" if f.failed else "ok",
                    "severity": str(f.severity),
                    "check": f.check,
                    "source": f.source,
                    "subject": f.subject,
                    "value": f.show(f.value),
                    "limit": f.show(f.threshold),
                    "baseline": f.show(f.baseline),
                    "events": f.n,
                }
                for f in shown
            ],
            "table",
            title="quality checks",
        )
    if any(f.failed and f.severity == "critical" for f in findings):
        raise typer.Exit(EXIT_CRITICAL)


@app.command()
@plain_errors
def alerts(
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
    state: str | None = typer.Option(None, help="pending, firing or resolved."),
    output: str = typer.Option("table", "--format", help="table or json."),
    limit: int = typer.Option(100, min=0, help="At most this many (0: all)."),
) -> None:
    """List alerts: open ones first, then resolved, newest first."""
    from advertisex.quality.alerts import STATES, list_alerts
    from advertisex.store import Store

    if output not in ("table", "json"):
        raise ConfigError(f"--format {output!r} is unknown; use table or json")
    if state is not None and state not in STATES:
        raise ConfigError(f"--state {state!r} is unknown; use one of {', '.join(STATES)}")
    with Store.open(_settings(db, config), read_only=True) as store:
        found = list_alerts(store.con, state, limit or None)
    rows = [a.to_dict() for a in found]
    if output == "table":
        rows = [
            {
                "state": r["state"],
                "severity": r["severity"],
                "alert": r["alertname"],
                "labels": " ".join(f"{k}={v}" for k, v in r["labels"].items() if v),
                "since": r["active_since"],
                "value": r["value"],
            }
            for r in rows
        ]
    _emit(rows, output, title="alerts")


# -- enrichment (issue 3) -----------------------------------------------------------------


@app.command()
@plain_errors
def enrichment(
    db: Path | None = DbOption,
    config: Path | None = ConfigOption,
    output: str = typer.Option("table", "--format", help="table or json."),
) -> None:
    """What enrichment found: geo/device coverage, invalid traffic by reason, unknown
    creatives and campaigns, events whose country disagrees with their IP's."""
    from advertisex.enrich.summary import enrichment_summary
    from advertisex.store import Store

    if output not in ("table", "json"):
        raise ConfigError(f"--format {output!r} is unknown; use table or json")
    with Store.open(_settings(db, config), read_only=True) as store:
        rows = enrichment_summary(store.con)
    if output == "table":
        for row in rows:
            row["ivt_by_reason"] = (
                ", ".join(f"{k} {v:,}" for k, v in row["ivt_by_reason"].items()) or "-"
            )
    _emit(rows, output, title="enrichment")


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
