"""Data quality: Prometheus metrics, checks over event-time windows, alerts and their sinks."""

from advertisex.quality.checks import CHECKS, Finding, Severity, run_checks

__all__ = ["CHECKS", "Finding", "Severity", "run_checks"]
