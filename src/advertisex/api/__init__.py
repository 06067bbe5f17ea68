"""The ASGI app: collector routes and trackers (query routes and dashboard join later)."""

from advertisex.api.app import create_app, serve

__all__ = ["create_app", "serve"]
