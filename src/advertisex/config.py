"""Settings: one frozen, typed object built at the edge from flags, ADVX_* env and a TOML file."""

from __future__ import annotations

import os
import tomllib
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, field_validator
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


class Settings(BaseSettings):
    """Everything configurable. Built once by `load_settings`, then passed down."""

    model_config = SettingsConfigDict(env_prefix="ADVX_", frozen=True, extra="forbid")

    db: Path = Path("advertisex.duckdb")
    # Bytes of decoded input per batch: bounds memory independently of file size.
    batch_bytes: int = Field(default=64 * 1024 * 1024, ge=64 * 1024)
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

    # Attribution and rollups (analytics/): windows are inclusive at both ends.
    click_lookback_hours: float = Field(default=24.0, gt=0)  # click -> impression
    click_through_days: float = Field(default=7.0, ge=0)  # conversion -> click
    view_through_hours: float = Field(default=24.0, ge=0)  # conversion -> impression, no click
    attribution_model: Literal["last_touch", "first_touch", "linear"] = "last_touch"
    bid_match_seconds: float = Field(default=60.0, ge=0)  # bid -> impression without an id

    @field_validator("conversion_types", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return tuple(s.strip().lower() for s in v.split(",") if s.strip())
        return tuple(str(s).strip().lower() for s in v)


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
