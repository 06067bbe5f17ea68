"""The dashboard at `/` and the API's documentation at `/docs`, with assets in the package.

The chart library (uPlot) and Swagger UI come from the npm registry at build time (`make
assets`), so a server on a closed network needs no CDN.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

STATIC = Path(str(files("advertisex.api").joinpath("static")))


def mount_dashboard(app: FastAPI) -> None:
    """`/` serves the page, `/docs` the OpenAPI browser, `/static/` their assets."""

    @app.get("/", include_in_schema=False)
    def index() -> Response:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url="/openapi.json",
            title="advertisex API",
            swagger_js_url="/static/vendor/swagger-ui-bundle.js",
            swagger_css_url="/static/vendor/swagger-ui.css",
            swagger_favicon_url="/static/favicon.svg",
        )

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
