"""Swagger UI for ``/admin/docs``, served from the installed package instead of a CDN.

FastAPI's default page loads Swagger UI's script and style sheet from a CDN, so it is blank on a network
without one. The ``swagger-ui-bundle-v2`` package ships swagger-ui's own dist files (docs/decisions.md
says why this one); the page below references them under ``/admin/docs/static/`` and nothing else.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse
from starlette.requests import Request
from starlette.staticfiles import StaticFiles
from swagger_ui_bundle import swagger_ui_path

__all__ = ["DOCS_STATIC", "serve_swagger_ui"]

DOCS_STATIC = "/admin/docs/static"


def serve_swagger_ui(app: FastAPI, *, docs_url: str, openapi_url: str, title: str) -> None:
    """Add ``docs_url`` (the page) and the Swagger UI files under ``DOCS_STATIC`` to ``app``, which must be
    built with ``docs_url=None``."""
    app.mount(DOCS_STATIC, StaticFiles(directory=Path(str(swagger_ui_path))), name="swagger-ui")

    async def docs(request: Request) -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=openapi_url,
            title=f"{title} - Swagger UI",
            swagger_js_url=f"{DOCS_STATIC}/swagger-ui-bundle.js",
            swagger_css_url=f"{DOCS_STATIC}/swagger-ui.css",
            swagger_favicon_url=f"{DOCS_STATIC}/favicon-32x32.png",
        )

    app.add_route(docs_url, docs, include_in_schema=False)
