"""Enrichment data: dimensions (creatives -> campaigns -> advertisers)."""

from advertisex.enrich.dimensions import load_creatives

__all__ = ["load_creatives"]
