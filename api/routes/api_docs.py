"""The API's own description (``/openapi.json``) and its viewers (``/docs``, ``/redoc``).

They need sign-in like every other route (only ``/healthz`` and ``/readyz`` are public): an
API client sends its key, and a person signed in to the dashboard reads them with the session
cookie (the viewers fetch ``/openapi.json`` from the same origin, so the cookie goes along).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import (
    get_redoc_html,
    get_swagger_ui_html,
    get_swagger_ui_oauth2_redirect_html,
)
from fastapi.responses import HTMLResponse, JSONResponse

from api.deferred_routes import DeferredAPIRoute
from api.security import require_authenticated

__all__ = ["OPENAPI_URL", "router"]

OPENAPI_URL = "/openapi.json"

router = APIRouter(
    route_class=DeferredAPIRoute,
    include_in_schema=False,
    dependencies=[Depends(require_authenticated())],
)


@router.get(OPENAPI_URL)
def openapi_document(request: Request) -> JSONResponse:
    """Return the OpenAPI document of this Warden."""
    document: dict[str, Any] = request.app.openapi()
    return JSONResponse(document)


@router.get("/docs")
def swagger_ui(request: Request) -> HTMLResponse:
    """Show the API in Swagger UI."""
    return get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=f"{request.app.title} - API",
        oauth2_redirect_url="/docs/oauth2-redirect",
    )


@router.get("/docs/oauth2-redirect")
def swagger_ui_redirect() -> HTMLResponse:
    """Complete Swagger UI's OAuth2 flow (part of the viewer)."""
    return get_swagger_ui_oauth2_redirect_html()


@router.get("/redoc")
def redoc(request: Request) -> HTMLResponse:
    """Show the API in ReDoc."""
    return get_redoc_html(openapi_url=OPENAPI_URL, title=f"{request.app.title} - API")
