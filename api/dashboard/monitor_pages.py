"""Monitor and monitor-run pages, and the stored report downloads."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlmodel import Session

from api.charts import line_chart
from api.dashboard.rendering import (
    _CHART_RUNS,
    _render,
    router,
)
from api.dashboard.summaries import (
    _latest_runs,
    _results,
    _series,
    _stored_report,
    _summary_sections,
    _urgency,
    run_label,
)
from api.deps import SessionDep, SettingsDep
from api.security import CurrentProject, require
from api.settings import Settings
from governance.actors import Actor
from governance.permissions import Permission
from lineage.deployments import get_deployment, list_deployments
from lineage.errors import NotFound
from lineage.models import Deployment
from lineage.projects import Project
from monitors.findings import RunSummary
from monitors.models import Monitor, MonitorRunPublic
from monitors.report import report_keys
from monitors.run_jobs import get_monitor_run, list_monitor_runs
from monitors.schedules import get_monitor, list_monitors


@router.get("/p/{project}/monitors")
def monitors_page(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.MONITOR_READ))],
    project: CurrentProject,
    session: SessionDep,
) -> HTMLResponse:
    """List every monitor with its deployment and latest status."""
    monitors = list_monitors(session=session, project_id=project.id)
    latest = _latest_runs(session, monitors)
    deployments = {d.id: d for d in list_deployments(session=session, project_id=project.id)}
    rows = [
        (m, deployments.get(m.deployment_id) if m.deployment_id else None, latest.get(m.id))
        for m in monitors
    ]
    return _render(
        request, "monitors.html", actor, session, project=project, rows=rows, status_of=run_label
    )


@router.get("/p/{project}/monitors/{monitor_id}")
def monitor_page(
    request: Request,
    monitor_id: uuid.UUID,
    actor: Annotated[Actor, Depends(require(Permission.MONITOR_READ))],
    project: CurrentProject,
    session: SessionDep,
    saved: Annotated[str | None, Query(max_length=16)] = None,
) -> HTMLResponse:
    """Show a monitor's status over time as charts and its run history."""
    monitor = get_monitor(session=session, project_id=project.id, monitor_id=monitor_id)
    runs = list_monitor_runs(
        session=session, project_id=project.id, monitor_id=monitor.id, limit=_CHART_RUNS
    )
    charts = [
        (title, line_chart(title, series, threshold=threshold))
        for title, series, threshold in _series(list(reversed(runs)))
    ]
    deployment = (
        get_deployment(session=session, project_id=project.id, deployment_id=monitor.deployment_id)
        if monitor.deployment_id
        else None
    )
    return _render(
        request,
        "monitor.html",
        actor,
        session,
        project=project,
        monitor=monitor,
        deployment=deployment,
        runs=runs,
        charts=charts,
        status_of=run_label,
        saved=saved if saved in ("created", "changed") else None,
    )


def _run_context(
    session: Session, project: Project, run_id: uuid.UUID
) -> tuple[MonitorRunPublic, Monitor, Deployment | None]:
    run = get_monitor_run(session=session, project_id=project.id, run_id=run_id)
    monitor = get_monitor(session=session, project_id=project.id, monitor_id=run.monitor_id)
    deployment = (
        get_deployment(session=session, project_id=project.id, deployment_id=monitor.deployment_id)
        if monitor.deployment_id
        else None
    )
    return run, monitor, deployment


@router.get("/p/{project}/monitor-runs/{run_id}")
def run_page(
    request: Request,
    run_id: uuid.UUID,
    actor: Annotated[Actor, Depends(require(Permission.MONITOR_READ))],
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
) -> HTMLResponse:
    """Show one run's report: verdict and findings (worst first), then the stored report.

    The stored report page (charts drawn by the worker) is embedded, not redrawn: drawing
    charts here would hold the request's transaction (SQLite's one writer) for seconds.
    """
    run, monitor, deployment = _run_context(session, project, run_id)
    document = _stored_report(settings, run)
    sections = []
    results = _results(document) or _summary_sections(RunSummary.from_json(run.summary))
    for result in results:
        findings = sorted(result.get("findings", []), key=lambda f: _urgency(f.get("status")))
        sections.append({**result, "findings": findings})
    return _render(
        request,
        "run.html",
        actor,
        session,
        project=project,
        run=run,
        monitor=monitor,
        deployment=deployment,
        status=run_label(run),
        sections=sections,
        has_report=document is not None,
    )


def _download(
    session: Session, settings: Settings, project: Project, run_id: uuid.UUID, index: int
) -> tuple[MonitorRunPublic, bytes]:
    run = get_monitor_run(session=session, project_id=project.id, run_id=run_id)
    key = report_keys(project_id=project.id, run_id=run.id)[index]
    try:
        return run, settings.artifact_store().get(key)
    except NotFound:
        raise NotFound(f"monitor run {run_id} has no report yet (it is {run.state})") from None


@router.get("/p/{project}/monitor-runs/{run_id}/report.json", response_model=None)
def run_report_json(
    run_id: uuid.UUID,
    _actor: Annotated[Actor, Depends(require(Permission.REPORT_READ))],
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Download a run's stored report document (JSON)."""
    run, content = _download(session, settings, project, run_id, 0)
    return Response(
        content,
        media_type="application/json",
        headers={"Content-Disposition": f'attachment; filename="warden-run-{run.id}.json"'},
    )


@router.get("/p/{project}/monitor-runs/{run_id}/report.html", response_model=None)
def run_report_html(
    run_id: uuid.UUID,
    _actor: Annotated[Actor, Depends(require(Permission.REPORT_READ))],
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
    download: bool = False,
) -> Response:
    """Show or download a run's stored report: a self-contained HTML page (prints to PDF).

    Served with a policy allowing no scripts and no requests out, framed only by Warden's own
    pages (the run page embeds it).
    """
    run, content = _download(session, settings, project, run_id, 1)
    disposition = "attachment" if download else "inline"
    return Response(
        content,
        media_type="text/html",
        headers={
            "Content-Disposition": f'{disposition}; filename="warden-run-{run.id}.html"',
            "Content-Security-Policy": (
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; "
                "frame-ancestors 'self'"
            ),
        },
    )
