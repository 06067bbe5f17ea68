"""Data quality: Prometheus metrics, checks over event-time windows, alerts and their sinks."""

from advertisex.quality.alerts import Alert, list_alerts
from advertisex.quality.checks import CHECKS, Finding, Severity, run_checks
from advertisex.quality.cycle import CycleResult, run_cycle, watch

__all__ = [
    "CHECKS",
    "Alert",
    "CycleResult",
    "Finding",
    "Severity",
    "list_alerts",
    "run_checks",
    "run_cycle",
    "watch",
]
