"""The home page and a project's overview: models, live deployments, incidents, approvals."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse
from sqlmodel import Session

from api.dashboard.rendering import (
    Viewer,
    _render,
    router,
)
from api.dashboard.summaries import (
    _latest_runs,
    _worst,
    run_label,
)
from api.deps import SessionDep
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.approvals import (
    pending_for,
)
from governance.incidents import list_incidents
from governance.permissions import Permission
from governance.roles import permissions_of
from lineage.deployments import live_deployments
from lineage.model_versions import get_model_versions_by_id, model_summaries
from lineage.models import Deployment
from lineage.projects import Project
from monitors.schedules import list_monitors

# --- pages ----------------------------------------------------------------------------------


@router.get("/")
def home(request: Request, actor: Viewer, session: SessionDep) -> HTMLResponse:
    """List the projects the signed-in person has a role in."""
    return _render(request, "home.html", actor, session)


def _deployment_rows(
    session: Session, project: Project, deployments: list[Deployment]
) -> list[dict[str, Any]]:
    versions = get_model_versions_by_id(
        session=session, project_id=project.id, ids=[d.model_version_id for d in deployments]
    )
    monitors = list_monitors(session=session, project_id=project.id)
    latest = _latest_runs(session, monitors)
    # A monitor watches a slot: promotion records a new deployment row, the monitors stay.
    bound = {m.deployment_id for m in monitors if m.deployment_id is not None}
    slot_of = {
        d.id: (d.name, d.environment)
        for d in (session.get(Deployment, i) for i in bound)
        if d is not None
    }
    rows = []
    for deployment in deployments:
        slot = (deployment.name, deployment.environment)
        watching = [
            m
            for m in monitors
            if m.deployment_id is not None and slot_of.get(m.deployment_id) == slot
        ]
        statuses = [run_label(latest.get(m.id)) for m in watching]
        rows.append(
            {
                "deployment": deployment,
                "version": versions.get(deployment.model_version_id),
                "status": _worst(statuses) if watching else "no monitors",
                "monitors": [(m, latest.get(m.id), run_label(latest.get(m.id))) for m in watching],
            }
        )
    return rows


@router.get("/p/{project}")
def overview(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.PROJECT_READ))],
    project: CurrentProject,
    session: SessionDep,
) -> HTMLResponse:
    """Show a project at a glance: models, live deployments, incidents, my approvals."""
    held = permissions_of(session=session, actor=actor, project_id=project.id)
    live = _deployment_rows(
        session, project, live_deployments(session=session, project_id=project.id)
    )
    incidents = (
        list_incidents(session=session, project_id=project.id, open_only=True, limit=20)
        if Permission.ALERT_READ in held
        else []
    )
    return _render(
        request,
        "overview.html",
        actor,
        session,
        project=project,
        models=model_summaries(session=session, project_id=project.id),
        live=live,
        incidents=incidents,
        mine=pending_for(session=session, actor=actor),
    )
