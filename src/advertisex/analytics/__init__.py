"""Analytics over the store: attribution, hourly rollups, campaign metrics."""

from advertisex.analytics.report import GROUPS, METRICS, campaign_report
from advertisex.analytics.rollups import RefreshResult, refresh

__all__ = ["GROUPS", "METRICS", "RefreshResult", "campaign_report", "refresh"]
