"""Enrichment: geo (MaxMind), user agents (ua-parser), domains, invalid traffic, dimensions."""

from advertisex.enrich.dimensions import load_creatives
from advertisex.enrich.domains import Domains
from advertisex.enrich.geoip import GeoIP
from advertisex.enrich.ivt import IvtReason
from advertisex.enrich.summary import enrichment_summary
from advertisex.enrich.useragent import DEVICE_TYPES, UserAgents

__all__ = [
    "DEVICE_TYPES",
    "Domains",
    "GeoIP",
    "IvtReason",
    "UserAgents",
    "enrichment_summary",
    "load_creatives",
]
