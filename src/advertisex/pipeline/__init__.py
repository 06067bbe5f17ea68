"""Pipeline stages (extract, validate, standardize, dedupe) and the runner that chains them."""

from advertisex.pipeline.runner import IngestReport, Runner, SourceCounts

__all__ = ["IngestReport", "Runner", "SourceCounts"]
