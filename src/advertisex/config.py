"""Settings: one frozen, typed object built at the edge from flags, ADVX_* env and a TOML file."""

from __future__ import annotations

import os
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from pydantic_settings.exceptions import SettingsError

from advertisex.errors import ConfigError

DEFAULT_CONVERSION_TYPES = (
    "click",
    "signup",
    "purchase",
    "install",
    "lead",
    "add_to_cart",
    "subscribe",
    "download",
)

# Cloud and hosting providers: Google, Google Cloud, Amazon (2), Microsoft, DigitalOcean,
# OVH, Hetzner, Linode, Vultr, Oracle, Alibaba, Tencent, Choopa, Leaseweb, Scaleway.
DEFAULT_DATACENTER_ASNS = (
    15169, 396982, 16509, 14618, 8075, 14061, 16276, 24940, 63949, 20473, 31898, 45102, 132203,
    46407, 60781, 12876,
)  # fmt: skip


class Settings(BaseSettings):
    """Everything configurable. Built once by `load_settings`, then passed down."""

    model_config = SettingsConfigDict(env_prefix="ADVX_", frozen=True, extra="forbid")

    db: Path = Path("advertisex.duckdb")
    # Bytes of decoded input per batch: bounds memory independently of file size. 128 MiB
    # (~330 k impressions, 2.7 row groups of 122,880) rather than 64: DuckDB then writes a
    # batch's rows compressed straight into the database file at commit, where 64 MiB batches
    # went to the write-ahead log (and memory) to be compressed at the next checkpoint
    # (measured on two 93 MB files: 56 MB of log against 3 MB). On 2 M impressions: 15.5 ->
    # 13.3 us of CPU per event, peak RSS 1,591 -> 924 MB, database 245 -> 199 MB.
    batch_bytes: int = Field(default=128 * 1024 * 1024, ge=64 * 1024)
    # Duplicates are looked for among stored events this close in event time.
    dedupe_window_days: float = Field(default=7.0, gt=0)
    # Naive timestamps ("2023-11-01 10:00:00") are read in this zone.
    timezone: str = "UTC"
    min_event_time: datetime = datetime(2000, 1, 1)
    # How far in the future an event may claim to be (clock skew between hosts).
    max_future_seconds: int = Field(default=3600, ge=0)
    conversion_types: Annotated[tuple[str, ...], NoDecode] = DEFAULT_CONVERSION_TYPES
    # Memory DuckDB may use; it spills to disk beyond it.
    duckdb_memory_limit: str = "4GB"
    duckdb_threads: int = Field(default=0, ge=0)  # 0: DuckDB's own choice
    # Write-ahead log size at which DuckDB folds committed rows into the database file. Small
    # commits (live batches) at DuckDB's 16 MB compressed the same trailing row group again at
    # every fold; at 256 MB most row groups are compressed once. Rows waiting in the log are
    # held in memory, and a restart replays the log: both stay bounded by this size.
    duckdb_checkpoint_threshold: str = "256MB"

    # Real time: HTTP collector (`serve`) and Kafka consumer (`consume`).
    # Seconds between serve's runs of the rollup refresh and the quality checks (0: never).
    serve_jobs_seconds: float = Field(default=30.0, ge=0)
    # API key per source for the write routes, sent in the X-API-Key header; none: loopback only.
    collector_api_keys: dict[str, SecretStr] = Field(default_factory=dict)
    collector_max_body_bytes: int = Field(default=16 * 1024 * 1024, ge=1024)  # beyond: 413
    # Request bytes waiting for (or in) the store; beyond it the collector answers 503.
    collector_queue_bytes: int = Field(default=128 * 1024 * 1024, ge=1024)
    collector_flush_events: int = Field(default=50_000, ge=1)  # a micro-batch flushes at this
    collector_flush_ms: int = Field(default=50, ge=0)  # ... or this long after its first event
    # Trackers append events here before answering (default: <db>.spool beside the store).
    collector_spool_dir: Path | None = None
    collector_spool_rotate_bytes: int = Field(default=64 * 1024 * 1024, ge=1024)
    # fdatasync each group write before the hits are answered: they survive a power loss, not
    # only the process being killed (costs ~0.1 ms CPU and 1-4 ms of latency per group).
    collector_spool_fsync: bool = True
    # Spooled hits wait for the store at most this long (no client waits for their commit, and
    # a batch costs the store ~10-30 ms whatever its size: bigger batches, less CPU per hit).
    collector_spool_flush_ms: int = Field(default=500, ge=0)
    # HMAC key signing the click tracker's landing URLs; unset: /t/click is off.
    tracker_secret: SecretStr | None = None
    # Avro schemas for the Confluent wire format: a folder of <schema id>.avsc, or a registry.
    schema_dir: Path | None = None
    schema_registry_url: str | None = None
    kafka_batch_messages: int = Field(default=100_000, ge=1)  # per micro-batch
    kafka_batch_ms: int = Field(default=200, ge=1)  # longest wait to fill one
    # Rejected messages are also produced here, as they arrived, with advx.* headers saying why.
    kafka_dead_letter_topic: str | None = None
    # Extra librdkafka settings for consumers and producers (security.protocol, ...).
    kafka_config: dict[str, str] = Field(default_factory=dict)
    # Clicks and conversions that arrive as CSV lines without a header on Kafka.
    kafka_csv_header: str = "timestamp,user_id,campaign_id,conversion_type"

    # Query API and dashboard (`serve`): read routes need this bearer token when set.
    query_token: SecretStr | None = None
    query_max_rows: int = Field(default=10_000, ge=1)  # a page of results is at most this long
    # Campaign, series and funnel answers are served from memory until the data changes; the
    # data version is read this often, so an answer lags a commit by at most this (0: no cache).
    query_cache_ms: float = Field(default=100.0, ge=0)
    dashboard_refresh_seconds: float = Field(default=10.0, ge=1)  # the page reloads its data
    # The quality panel counts late events among those ingested in this many last hours.
    dashboard_late_window_hours: float = Field(default=24.0, gt=0)

    @field_validator("collector_api_keys")
    @classmethod
    def _known_sources(cls, v: dict[str, SecretStr]) -> dict[str, SecretStr]:
        from advertisex.schemas.sources import SOURCES

        unknown = sorted(set(v) - set(SOURCES))
        if unknown:
            raise ValueError(f"unknown source {unknown[0]!r}; use {', '.join(SOURCES)}")
        return v

    # -- quality: checks, alerts, sinks and metrics export (issue 6) -------------------------
    # `ingest` runs the checks (and advances the alerts) after it loads, as serve on its timer.
    quality_after_ingest: bool = True
    # Checks look at the event-time window [as_of - grace - window, as_of - grace).
    quality_window_seconds: int = Field(default=600, ge=60)
    # Events of the last moments may still be on their way; windows end this much earlier.
    quality_grace_seconds: int = Field(default=60, ge=0)
    # Seasonal baseline: the same window on each of this many previous days (median/MAD) ...
    quality_baseline_days: int = Field(default=7, ge=1)
    # ... and band checks stay silent until this many previous days are in the store.
    quality_warmup_days: int = Field(default=3, ge=1)
    # A band check fails when |value - median| >= z * scale and >= min_change * median.
    quality_band_z: float = Field(default=5.0, gt=0)
    quality_band_min_change: float = Field(default=0.5, ge=0)
    # Band checks on counts ignore subjects whose baseline is below this, and checks of a rate
    # ignore windows with fewer events than quality_min_events (too few to judge).
    quality_min_baseline: float = Field(default=20.0, ge=0)
    quality_min_events: int = Field(default=50, ge=1)
    freshness_max_seconds: int = Field(default=600, ge=1)
    # Freshness is judged only where that span on previous days usually held at least this many
    # events (a quiet night is not an outage); a source without history is always judged.
    freshness_min_expected: float = Field(default=5.0, ge=0)
    delay_max_seconds: int = Field(default=900, ge=1)
    # An event is late when it arrives more than this after its event time.
    late_seconds: int = Field(default=300, ge=1)
    late_rate_max: float = Field(default=0.05, ge=0, le=1)
    reject_rate_max: float = Field(default=0.05, ge=0, le=1)
    duplicate_rate_max: float = Field(default=0.1, ge=0, le=1)
    ivt_rate_max: float = Field(default=0.3, ge=0, le=1)
    unknown_creative_rate_max: float = Field(default=0.01, ge=0, le=1)
    orphan_rate_max: float = Field(default=0.05, ge=0, le=1)
    # Bid logs are often sampled: set this to the share of impressions your bid log misses.
    impression_without_bid_rate_max: float = Field(default=0.9, ge=0, le=1)
    country_mismatch_rate_max: float = Field(default=0.05, ge=0, le=1)
    # An alert is pending while its check fails, and fires once it has failed this long.
    alert_for_seconds: int = Field(default=120, ge=0)
    alert_log: bool = True
    alert_webhook_urls: Annotated[tuple[str, ...], NoDecode] = ()
    alertmanager_url: str | None = None  # base URL; alerts go to <url>/api/v2/alerts
    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    smtp_from: str = "advertisex@localhost"
    smtp_to: Annotated[tuple[str, ...], NoDecode] = ()
    # A delivery that fails for a reason that may pass (connection refused, timeout, HTTP 5xx,
    # 408 or 429, SMTP 4xx) is tried again, up to alert_send_attempts tries in all, after
    # backoff, 2 x backoff, 4 x backoff ... seconds; then it is logged and counted as failed.
    # serve and `check --watch` deliver on a thread of their own: the checks never wait.
    alert_send_attempts: int = Field(default=4, ge=1, le=10)
    alert_send_backoff_seconds: float = Field(default=1.0, ge=0, le=60)
    alert_send_timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    # Schema drift: the share of each batch's records (at least 100 of them) whose fields and
    # types are profiled (field_stats) for the unknown_field and field_type checks; 0: off.
    field_sample_percent: float = Field(default=1.0, ge=0, le=100)
    # Batch ingest: write a node_exporter textfile-collector file and/or push to a Pushgateway.
    metrics_file: Path | None = None
    pushgateway_url: str | None = None

    # -- enrichment (issue 3): geo, device, invalid traffic, dimensions ------------------------
    enrich_enabled: bool = True  # off: the enrichment columns stay NULL (benchmark baseline)
    # MaxMind GeoLite2/GeoIP2 City or Country database; none: geo stays empty.
    geoip_db: Path | None = None
    # MaxMind GeoLite2-ASN (or ISP) database: ASN and organisation, data-centre detection.
    geoip_asn_db: Path | None = None
    # Hosting / cloud networks whose traffic is not human (Google, Amazon, Microsoft, ...).
    ivt_datacenter_asns: Annotated[tuple[int, ...], NoDecode] = DEFAULT_DATACENTER_ASNS
    # A click less than this many seconds after its impression is flagged fast_click.
    ivt_fast_click_seconds: float = Field(default=1.0, ge=0)
    # More clicks than this by one user within any 60 s (sliding): those clicks are a flood.
    ivt_click_flood_per_minute: int = Field(default=10, ge=1)
    # A batch where at least this share of rows has a user agent (IP) expects one on every
    # row: rows without are flagged missing_user_agent (missing_ip).
    ivt_missing_share: float = Field(default=0.5, gt=0, le=1)

    @field_validator("ivt_datacenter_asns", mode="before")
    @classmethod
    def _split_asns(cls, v: Any) -> Any:
        if isinstance(v, str):
            return tuple(
                int(s.strip().upper().removeprefix("AS")) for s in v.split(",") if s.strip()
            )
        return v

    # Attribution and rollups (analytics/): windows are inclusive at both ends.
    click_lookback_hours: float = Field(default=24.0, gt=0)  # click -> impression
    click_through_days: float = Field(default=7.0, ge=0)  # conversion -> click
    view_through_hours: float = Field(default=24.0, ge=0)  # conversion -> impression, no click
    attribution_model: Literal["last_touch", "first_touch", "linear"] = "last_touch"
    bid_match_seconds: float = Field(default=60.0, ge=0)  # bid -> impression without an id
    # A refresh whose dirty hours are more than this share of the hours rolled up recomputes
    # everything instead: cheaper than by hours then (a late batch can dirty a whole day).
    rollup_full_share: float = Field(default=0.5, ge=0)
    # Unique users: an hour x campaign of at most this many impressions keeps its users' hashes,
    # so that counts over such hours are exact; larger ones count by HyperLogLog (~3 % error).
    rollup_exact_users: int = Field(default=256, ge=0)

    @field_validator("conversion_types", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return tuple(s.strip().lower() for s in v.split(",") if s.strip())
        return tuple(str(s).strip().lower() for s in v)

    @field_validator("alert_webhook_urls", "smtp_to", mode="before")
    @classmethod
    def _split_list(cls, v: Any) -> Any:
        if isinstance(v, str):
            return tuple(s.strip() for s in v.split(",") if s.strip())
        return tuple(str(s).strip() for s in v)


def load_settings(config_file: Path | None = None, **overrides: Any) -> Settings:
    """Settings from (lowest first) defaults, a TOML file, ADVX_* environment, explicit flags.

    The TOML file is `config_file`, else $ADVX_CONFIG, else ./advertisex.toml when present;
    its keys are the setting names, at the top level or under [advertisex].
    """
    file_values: dict[str, Any] = {}
    path = config_file or (Path(os.environ["ADVX_CONFIG"]) if "ADVX_CONFIG" in os.environ else None)
    if path is None and Path("advertisex.toml").is_file():
        path = Path("advertisex.toml")
    if path is not None:
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist; fix the path") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"config file {path} is not valid TOML: {e}") from None
        file_values = dict(data.get("advertisex", data))
    env_names = {k[len("ADVX_") :].lower() for k in os.environ if k.startswith("ADVX_")}
    # Environment beats the file: drop file keys that the environment sets.
    values = {k: v for k, v in file_values.items() if k not in env_names}
    values.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return Settings(**values)
    except SettingsError as e:
        raise ConfigError(f"{e}; fix the ADVX_* environment variable") from None
    except ValidationError as e:
        first = e.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "settings"
        raise ConfigError(f"setting {loc}: {first['msg']} (got {first.get('input')!r})") from None
