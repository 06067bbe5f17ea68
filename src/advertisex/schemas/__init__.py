"""Canonical schemas, reject reasons and source field aliases."""

from advertisex.schemas.reasons import Reason
from advertisex.schemas.sources import SOURCES, Source

__all__ = ["SOURCES", "Reason", "Source"]
