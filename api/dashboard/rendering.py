"""The dashboard's shared parts: its router, templates, formatting and the page renderer."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates
from sqlmodel import Session

from api.deferred_routes import DeferredAPIRoute
from api.security import require_authenticated
from api.web_session import (
    CSRF_FIELD,
    codec_of,
    read_session,
)
from governance.actors import Actor
from governance.permissions import Permission
from governance.roles import permissions_of, visible_project_ids
from lineage.projects import Project, list_projects
from monitors.run_jobs import worker_waiting

PUBLIC_PATHS = frozenset({"/login", "/login/oidc", "/login/oidc/callback"})
"""Dashboard paths open without signing in (the route sweep exempts them)."""

_HERE = Path(__file__).parent.parent
_AUDIT_PAGE = 50
_CHART_RUNS = 60

router = APIRouter(
    route_class=DeferredAPIRoute, include_in_schema=False, default_response_class=HTMLResponse
)

Viewer = Annotated[Actor, Depends(require_authenticated())]


# --- rendering -----------------------------------------------------------------------------


def _templates(request: Request) -> Jinja2Templates:
    templates = getattr(request.app.state, "dashboard_templates", None)
    if not isinstance(templates, Jinja2Templates):
        templates = Jinja2Templates(directory=_HERE / "templates")
        templates.env.filters["when"] = _when
        templates.env.filters["num"] = _num
        request.app.state.dashboard_templates = templates
    return templates


def _when(value: datetime | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    return value.strftime("%Y-%m-%d %H:%M:%S UTC")


def _num(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    if float(value).is_integer() and abs(value) < 1e15:
        return f"{int(value):,}"  # counts read as counts, not 2.605e+04
    return f"{value:.4g}"


def _csrf(request: Request) -> str:
    found = read_session(request)
    return codec_of(request).csrf_token(found.nonce) if found else ""


def _render(
    request: Request,
    template: str,
    actor: Actor | None,
    session: Session | None,
    *,
    status_code: int = 200,
    project: Project | None = None,
    **context: Any,
) -> HTMLResponse:
    """Render a page; ``session`` is the request's own (SQLite allows one writer at a time)."""
    held: frozenset[Permission] = frozenset()
    projects: list[Project] = []
    worker_notice: str | None = None
    if actor is not None and session is not None:
        projects = list_projects(
            session=session, ids=visible_project_ids(session=session, actor=actor)
        )
        worker_notice = worker_waiting(session=session)
        if project is not None:
            held = permissions_of(session=session, actor=actor, project_id=project.id)
    response = _templates(request).TemplateResponse(
        request,
        template,
        {
            "me": actor,
            "project": project,
            "projects": projects,
            "can": {p.value for p in held},
            "csrf": _csrf(request) if actor is not None else "",
            "csrf_field": CSRF_FIELD,
            "worker_notice": worker_notice,
            **context,
        },
        status_code=status_code,
    )
    response.headers["Cache-Control"] = "no-store"
    return response
