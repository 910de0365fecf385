"""A monitor run's stored report: ``GET …/monitor-runs/{id}/report`` (JSON) and ``report.html``.

The worker writes both to the artifact store when the run finishes (:func:`monitors.report_keys`,
keys made of ids); these routes only read them, after checking the run belongs to the project.
A drift run also has Evidently's detailed drift page, ``…/drift.html``, rendered by a background
job of the worker on a sample of the window once the run is recorded (until then, or if it
failed, 404 says so). Reading needs ``report:read``. A run without a report yet (queued,
running, failed) answers 404 saying so.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import HTMLResponse

from api.deferred_routes import DeferredAPIRoute
from api.deps import SessionDep, SettingsDep
from api.security import CurrentProject, require
from governance.permissions import Permission
from lineage.errors import NotFound
from monitors.drift_page_jobs import drift_page_job, drift_page_key
from monitors.report import report_keys
from monitors.run_jobs import get_monitor_run

__all__ = ["router"]

router = APIRouter(
    route_class=DeferredAPIRoute, prefix="/api/v1/projects/{project}", tags=["monitors"]
)
_READ = [Depends(require(Permission.REPORT_READ))]


def _report(
    run_id: uuid.UUID,
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
    index: int,
) -> bytes:
    """Return the run's stored report (0: JSON, 1: HTML) from the artifact store."""
    run = get_monitor_run(session=session, project_id=project.id, run_id=run_id)
    key = report_keys(project_id=project.id, run_id=run.id)[index]
    try:
        return settings.artifact_store().get(key)
    except NotFound:
        raise NotFound(f"monitor run {run_id} has no report yet (it is {run.state})") from None


@router.get("/monitor-runs/{run_id}/report", dependencies=_READ)
def read_report(
    run_id: uuid.UUID, project: CurrentProject, session: SessionDep, settings: SettingsDep
) -> dict[str, Any]:
    """Return the run's report: every metric, threshold and verdict, and the chart data."""
    document: dict[str, Any] = json.loads(_report(run_id, project, session, settings, 0))
    return document


@router.get("/monitor-runs/{run_id}/report.html", dependencies=_READ, response_class=HTMLResponse)
def read_report_html(
    run_id: uuid.UUID, project: CurrentProject, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """Return the run's report as a self-contained HTML page (static SVG charts, no scripts)."""
    return HTMLResponse(_report(run_id, project, session, settings, 1).decode())


@router.get("/monitor-runs/{run_id}/drift.html", dependencies=_READ, response_class=HTMLResponse)
def read_drift_page(
    run_id: uuid.UUID, project: CurrentProject, session: SessionDep, settings: SettingsDep
) -> HTMLResponse:
    """Return Evidently's detailed drift page of a drift run (sampled; rendered by the worker)."""
    run = get_monitor_run(session=session, project_id=project.id, run_id=run_id)
    try:
        page = settings.artifact_store().get(drift_page_key(project_id=project.id, run_id=run.id))
    except NotFound:
        pass
    else:
        return HTMLResponse(page.decode())
    job = drift_page_job(session=session, project_id=project.id, run_id=run.id)
    if job is None:
        raise NotFound(
            f"monitor run {run_id} has no drift page (only finished drift runs whose baseline "
            f"keeps a reference sample have one; it is {run.state})"
        )
    newer = (job.result or {}).get("superseded_by") if job.state == "succeeded" else None
    if newer:
        raise NotFound(
            f"the drift page of monitor run {run_id} was not rendered: the worker reached it "
            f"after a newer run of the same monitor ({newer}) had its page "
            "coming, and renders only the newest when pages fall behind; open that run's page"
        )
    if job.state == "failed":
        raise NotFound(f"the drift page of monitor run {run_id} could not be rendered: {job.error}")
    raise NotFound(
        f"the drift page of monitor run {run_id} is not rendered yet (its job is {job.state}; "
        "a worker renders it when no monitor run waits)"
    )
