"""The ASGI app: collector routes and trackers, query API, dashboard, /metrics."""

from advertisex.api.app import create_app, serve

__all__ = ["create_app", "serve"]
