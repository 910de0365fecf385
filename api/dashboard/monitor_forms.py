"""Monitor authoring: create and edit a monitor, and queue a preview run of it.

The form's fields become the REST body (:class:`monitors.models.MonitorCreate` or
``MonitorUpdate``) handed to the REST handlers of :mod:`api.routes.monitors`. Editing keeps the
spec's fields the form does not show (per-column methods, slices, options). A preview run is
the REST "run now": the worker runs the monitor on its window at once and the run's page
shows the verdict and findings as they arrive.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlmodel import Session

from api.dashboard.forms import errors_of, form_fields, form_gate, lines, pairs, status_of
from api.dashboard.rendering import _render, router
from api.deps import SessionDep, SettingsDep
from api.routes import monitors as monitor_routes
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.permissions import Permission
from governance.roles import authorize
from lineage.deployments import live_deployments
from lineage.errors import InvalidInput, WardenError
from lineage.projects import Project
from monitors.models import Monitor, MonitorCreate, MonitorUpdate
from monitors.schedules import get_monitor
from monitors.spec import Kind

_FIELDS = {
    "name": "name",
    "deployment_id": "deployment_id",
    "spec.kind": "kind",
    "spec.columns": "columns",
    "spec.thresholds": "thresholds",
    "spec.label_column": "label_column",
    "spec.prediction_column": "prediction_column",
    "spec.score_column": "score_column",
    "spec.sensitive_features": "sensitive_features",
    "spec.min_rows": "min_rows",
    "spec": "kind",
    "schedule.interval_seconds": "interval_seconds",
    "schedule.cron": "cron",
    "schedule.timezone": "timezone",
    "schedule": "schedule",
    "window": "window",
    "thresholds": "thresholds",
}
"""Body paths → the form field that shows their errors."""

_NAMES = (
    "name",
    "deployment_id",
    "kind",
    "columns",
    "thresholds",
    "label_column",
    "prediction_column",
    "score_column",
    "sensitive_features",
    "min_rows",
    "schedule",
    "interval_seconds",
    "cron",
    "timezone",
    "window",
)

Writer = Annotated[Actor, Depends(form_gate(Permission.MONITOR_WRITE))]
Runner = Annotated[Actor, Depends(form_gate(Permission.MONITOR_RUN))]


def _values(monitor: Monitor | None) -> dict[str, str]:
    """The form's fields for an existing monitor (or the defaults of a new one)."""
    if monitor is None:
        return {
            "kind": "drift",
            "window": "last:24h",
            "schedule": "interval",
            "interval_seconds": "3600",
            "timezone": "UTC",
            "min_rows": "100",
        }
    spec = monitor.spec
    schedule = "cron" if monitor.cron else ("interval" if monitor.interval_seconds else "none")
    return {
        "name": monitor.name,
        "deployment_id": str(monitor.deployment_id or ""),
        "kind": monitor.kind,
        "columns": ", ".join(spec.get("columns") or []),
        "thresholds": "\n".join(f"{k} = {v}" for k, v in spec.get("thresholds", {}).items()),
        "label_column": spec.get("label_column") or "",
        "prediction_column": spec.get("prediction_column") or "",
        "score_column": spec.get("score_column") or "",
        "sensitive_features": ", ".join(spec.get("sensitive_features", [])),
        "min_rows": str(spec.get("min_rows", 100)),
        "schedule": schedule,
        "interval_seconds": str(monitor.interval_seconds or ""),
        "cron": monitor.cron or "",
        "timezone": monitor.timezone,
        "window": monitor.window,
    }


def _thresholds(text: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for key, value in pairs(text, field="thresholds").items():
        try:
            found[key] = float(value)
        except ValueError:
            raise InvalidInput(
                f"threshold {key!r} must be a number, not {value!r}", field="thresholds"
            ) from None
    return found


def _body(form: dict[str, str], base_spec: dict[str, Any]) -> dict[str, Any]:
    """Turn the form's fields into the REST body's ``spec``, ``schedule`` and ``window``."""
    spec = dict(base_spec)
    spec.update(
        kind=form["kind"],
        columns=lines(form["columns"]) or None,
        thresholds=_thresholds(form["thresholds"]),
        label_column=form["label_column"].strip() or None,
        prediction_column=form["prediction_column"].strip() or None,
        score_column=form["score_column"].strip() or None,
        sensitive_features=lines(form["sensitive_features"]),
        min_rows=form["min_rows"].strip() or 100,
    )
    schedule: dict[str, Any] | None = None
    if form["schedule"] == "interval":
        schedule = {"interval_seconds": form["interval_seconds"].strip() or None}
    elif form["schedule"] == "cron":
        schedule = {"cron": form["cron"].strip() or None}
    if schedule is not None:
        schedule["timezone"] = form["timezone"].strip() or "UTC"
    return {"spec": spec, "schedule": schedule, "window": form["window"].strip()}


def _page(
    request: Request,
    actor: Actor,
    session: Session,
    project: Project,
    *,
    monitor: Monitor | None,
    values: dict[str, str],
    errors: dict[str, str] | None = None,
    status_code: int = 200,
) -> HTMLResponse:
    return _render(
        request,
        "monitor_form.html",
        actor,
        session,
        status_code=status_code,
        project=project,
        monitor=monitor,
        values=values,
        errors=errors or {},
        kinds=[(k.value, k.value) for k in Kind],
        deployments=[("", "— none: data sent with each run —")]
        + [
            (str(d.id), f"{d.name} ({d.environment})")
            for d in live_deployments(session=session, project_id=project.id)
        ],
    )


MonitorForm = Annotated[dict[str, str], Depends(form_fields(*_NAMES))]
"""The monitor form's fields, as posted."""


def _then(project: Project, monitor_id: uuid.UUID, saved: str) -> RedirectResponse:
    return RedirectResponse(
        f"/p/{quote(project.name)}/monitors/{monitor_id}?saved={saved}", status_code=303
    )


def _preview(
    request: Request, actor: Actor, project: Project, session: Session, monitor_id: uuid.UUID
) -> RedirectResponse:
    """Queue a run now (the REST handler) and send the browser to the run's page."""
    authorize(
        session=session, actor=actor, project_id=project.id, permission=Permission.MONITOR_RUN
    )
    run = monitor_routes.run_now(
        monitor_id=monitor_id,
        actor=actor,
        project=project,
        session=session,
        settings=request.app.state.settings,
        response=Response(),
    )
    return RedirectResponse(f"/p/{quote(project.name)}/monitor-runs/{run.id}", status_code=303)


@router.get("/p/{project}/monitors/new")
def new_monitor_form(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.MONITOR_WRITE))],
    project: CurrentProject,
    session: SessionDep,
) -> HTMLResponse:
    """Show an empty monitor form."""
    return _page(request, actor, session, project, monitor=None, values=_values(None))


@router.post("/p/{project}/monitors/new", response_model=None)
def create_monitor_form(
    request: Request,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
    form: MonitorForm,
    then: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Create the monitor (the REST handler); ``then=preview`` also queues a run at once."""
    try:
        body = MonitorCreate.model_validate(
            {
                "name": form["name"].strip(),
                "deployment_id": form["deployment_id"] or None,
                **_body(form, {}),
            }
        )
        made = monitor_routes.create(body=body, actor=actor, project=project, session=session)
        if then == "preview":
            return _preview(request, actor, project, session, made.id)
    except (ValidationError, WardenError) as error:
        session.rollback()
        return _page(
            request,
            actor,
            session,
            project,
            monitor=None,
            values=form,
            errors=errors_of(error, _FIELDS),
            status_code=status_of(error),
        )
    return _then(project, made.id, "created")


@router.get("/p/{project}/monitors/{monitor_id}/edit")
def edit_monitor_form(
    request: Request,
    monitor_id: uuid.UUID,
    actor: Annotated[Actor, Depends(require(Permission.MONITOR_WRITE))],
    project: CurrentProject,
    session: SessionDep,
) -> HTMLResponse:
    """Show the monitor's form, filled in."""
    monitor = get_monitor(session=session, project_id=project.id, monitor_id=monitor_id)
    return _page(request, actor, session, project, monitor=monitor, values=_values(monitor))


@router.post("/p/{project}/monitors/{monitor_id}/edit", response_model=None)
def change_monitor_form(
    request: Request,
    monitor_id: uuid.UUID,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
    form: MonitorForm,
    then: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    """Change the monitor (the REST handler); ``then=preview`` also queues a run at once."""
    monitor = get_monitor(session=session, project_id=project.id, monitor_id=monitor_id)
    try:
        body = MonitorUpdate.model_validate(
            {"name": form["name"].strip(), **_body(form, dict(monitor.spec))}
        )
        monitor_routes.change(
            monitor_id=monitor_id, body=body, actor=actor, project=project, session=session
        )
        if then == "preview":
            return _preview(request, actor, project, session, monitor_id)
    except (ValidationError, WardenError) as error:
        session.rollback()
        errors = errors_of(error, _FIELDS)
        return _page(
            request,
            actor,
            session,
            project,
            monitor=get_monitor(session=session, project_id=project.id, monitor_id=monitor_id),
            values=form,
            errors=errors,
            status_code=status_of(error),
        )
    return _then(project, monitor_id, "changed")


@router.post("/p/{project}/monitors/{monitor_id}/preview", response_model=None)
def preview_monitor(
    request: Request,
    monitor_id: uuid.UUID,
    actor: Runner,
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
) -> Response:
    """Queue a run of the monitor now (the REST "run now") and open the run's page."""
    run = monitor_routes.run_now(
        monitor_id=monitor_id,
        actor=actor,
        project=project,
        session=session,
        settings=settings,
        response=Response(),
    )
    return RedirectResponse(f"/p/{quote(project.name)}/monitor-runs/{run.id}", status_code=303)
