"""advertisex: ad-tech event data in, clean deduplicated analytics out."""

from advertisex._version import __version__
from advertisex.errors import (
    AdvertisexError,
    ConfigError,
    InputError,
    SourceError,
    StoreError,
)

__all__ = [
    "AdvertisexError",
    "ConfigError",
    "InputError",
    "SourceError",
    "StoreError",
    "__version__",
]
