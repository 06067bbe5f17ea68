"""Analytics over the store: campaign metrics."""

from advertisex.analytics.report import GROUPS, METRICS, campaign_report

__all__ = ["GROUPS", "METRICS", "campaign_report"]
