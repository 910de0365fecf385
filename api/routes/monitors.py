"""Monitors over HTTP: create, change, pause, resume, list; queue a run now; watch a run.

Every change is permission-checked (``monitor:write``, ``monitor:run``, ``monitor:read``) and
written to the audit log in the request's transaction. Running happens in a worker: ``POST
…/monitors/{id}/runs`` only queues the run and answers ``202`` with its id; ``GET
…/monitor-runs/{id}`` shows its state and progress while it works.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Response, status
from fastapi.responses import PlainTextResponse

from api.deferred_routes import DeferredAPIRoute
from api.deps import SessionDep, SettingsDep
from api.pages import PageDep
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.audit import act_then_audit
from governance.permissions import Permission
from lineage import utcnow
from lineage.errors import Conflict, InvalidInput
from lineage.runtime.queue import get_job
from monitors.models import (
    Monitor,
    MonitorCreate,
    MonitorPublic,
    MonitorRun,
    MonitorRunPublic,
    MonitorUpdate,
    RunTrigger,
)
from monitors.run_jobs import (
    get_monitor_run,
    page_monitor_runs,
    queue_monitor_run,
    run_view,
    worker_waiting,
)
from monitors.schedules import (
    create_monitor,
    get_monitor,
    list_monitors,
    pause_monitor,
    resume_monitor,
    update_monitor,
)

__all__ = ["router"]

router = APIRouter(
    route_class=DeferredAPIRoute, prefix="/api/v1/projects/{project}", tags=["monitors"]
)

Writer = Annotated[Actor, Depends(require(Permission.MONITOR_WRITE))]
Runner = Annotated[Actor, Depends(require(Permission.MONITOR_RUN))]
_READ = [Depends(require(Permission.MONITOR_READ))]


def _snapshot(monitor: Monitor) -> dict[str, Any]:
    return MonitorPublic.of(monitor).model_dump(
        mode="json", exclude={"created_at", "updated_at", "scheduled_through"}
    )


def _audited(
    act: Callable[[], Monitor],
    session: SessionDep,
    actor: Actor,
    action: str,
    detail: Callable[[Monitor], dict[str, Any]] | None = None,
) -> Monitor:
    """Do a monitor action and record it (monitors may not import governance: the route does)."""
    return act_then_audit(
        act,
        session=session,
        actor=actor,
        action=action,
        target=lambda monitor: f"monitor:{monitor.id}",
        detail=detail,
        project_id=lambda monitor: monitor.project_id,
    )


@router.post("/monitors", status_code=status.HTTP_201_CREATED)
def create(
    body: MonitorCreate,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
    environment: Annotated[
        str,
        Query(max_length=64, description="The slot's environment when deployment_id is a name."),
    ] = "production",
) -> MonitorPublic:
    """Create a monitor; an interval schedule runs first at once, then every interval.

    ``deployment_id`` is the deployment's id or its name (the one live in ``environment``).
    """
    monitor = _audited(
        lambda: create_monitor(
            session=session, project_id=project.id, spec=body, environment=environment
        ),
        session,
        actor,
        "monitor.create",
        lambda made: {"after": _snapshot(made)},
    )
    return MonitorPublic.of(monitor)


@router.get("/monitors", dependencies=_READ)
def list_all(project: CurrentProject, session: SessionDep, page: PageDep) -> list[MonitorPublic]:
    """List the project's monitors by name."""
    found = list_monitors(session=session, project_id=project.id)
    return [MonitorPublic.of(m) for m in page.answer_all(found, key_of=lambda m: (m.name, m.id))]


@router.get("/monitors/{monitor_id}", dependencies=_READ)
def read(monitor_id: uuid.UUID, project: CurrentProject, session: SessionDep) -> MonitorPublic:
    """Return one monitor."""
    return MonitorPublic.of(
        get_monitor(session=session, project_id=project.id, monitor_id=monitor_id)
    )


@router.patch("/monitors/{monitor_id}")
def change(
    monitor_id: uuid.UUID,
    body: MonitorUpdate,
    actor: Writer,
    project: CurrentProject,
    session: SessionDep,
) -> MonitorPublic:
    """Change name, spec, schedule or window; a new schedule starts afresh from now."""
    if not body.model_fields_set:
        raise InvalidInput(
            "nothing to change: send one or more of name, spec, schedule, window", field="body"
        )
    monitor = get_monitor(session=session, project_id=project.id, monitor_id=monitor_id)
    before = _snapshot(monitor)

    def change_it() -> Monitor:
        update_monitor(session=session, project_id=project.id, monitor_id=monitor_id, changes=body)
        return monitor

    _audited(
        change_it,
        session,
        actor,
        "monitor.change",
        lambda changed: {"before": before, "after": _snapshot(changed)},
    )
    return MonitorPublic.of(monitor)


@router.post("/monitors/{monitor_id}/pause")
def pause(
    monitor_id: uuid.UUID, actor: Writer, project: CurrentProject, session: SessionDep
) -> MonitorPublic:
    """Stop scheduling the monitor (queued runs still run; manual runs stay possible)."""
    monitor = _audited(
        lambda: pause_monitor(session=session, project_id=project.id, monitor_id=monitor_id),
        session,
        actor,
        "monitor.pause",
    )
    return MonitorPublic.of(monitor)


@router.post("/monitors/{monitor_id}/resume")
def resume(
    monitor_id: uuid.UUID, actor: Writer, project: CurrentProject, session: SessionDep
) -> MonitorPublic:
    """Schedule the monitor again from now on; slots missed while paused are not run."""
    monitor = _audited(
        lambda: resume_monitor(session=session, project_id=project.id, monitor_id=monitor_id),
        session,
        actor,
        "monitor.resume",
    )
    return MonitorPublic.of(monitor)


@router.post("/monitors/{monitor_id}/runs", status_code=status.HTTP_202_ACCEPTED)
def run_now(
    monitor_id: uuid.UUID,
    actor: Runner,
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
    response: Response,
) -> MonitorRunPublic:
    """Queue a run of the monitor now; a worker executes it. Answers 202 with the run."""
    monitor = get_monitor(session=session, project_id=project.id, monitor_id=monitor_id)

    def queue_run() -> MonitorRun:
        queued = queue_monitor_run(
            session=session,
            monitor=monitor,
            scheduled_for=utcnow(),
            trigger=RunTrigger.MANUAL,
            max_attempts=settings.worker_max_attempts,
        )
        if queued is None:
            raise Conflict("a run of this monitor was queued at this very instant; retry")
        return queued

    run = act_then_audit(
        queue_run,
        session=session,
        actor=actor,
        action="monitor.run",
        target=f"monitor:{monitor.id}",
        detail=lambda queued: {"after": {"run_id": str(queued.id)}},
        project_id=monitor.project_id,
    )
    response.headers["Location"] = f"/api/v1/projects/{project.name}/monitor-runs/{run.id}"
    job = None if run.job_id is None else get_job(session=session, job_id=run.job_id)
    return run_view(run, job, waiting=worker_waiting(session=session))


@router.get("/monitors/{monitor_id}/runs", dependencies=_READ)
def runs(
    monitor_id: uuid.UUID,
    project: CurrentProject,
    session: SessionDep,
    page: PageDep,
) -> list[MonitorRunPublic]:
    """List the monitor's runs, newest slot first."""
    return page.answer(
        page_monitor_runs(
            session=session,
            project_id=project.id,
            monitor_id=monitor_id,
            limit=page.limit,
            cursor=page.cursor,
        )
    )


@router.get("/monitor-runs/{run_id}", dependencies=_READ)
def read_run(run_id: uuid.UUID, project: CurrentProject, session: SessionDep) -> MonitorRunPublic:
    """Return a run's state, progress and (when finished) its summary or error."""
    return get_monitor_run(session=session, project_id=project.id, run_id=run_id)


@router.get("/monitor-runs/{run_id}/logs", dependencies=_READ, response_class=PlainTextResponse)
def run_logs(run_id: uuid.UUID, project: CurrentProject, session: SessionDep) -> str:
    """Return the log lines its worker(s) wrote for the run, every attempt included."""
    run = get_monitor_run(session=session, project_id=project.id, run_id=run_id)
    if run.job_id is None:
        return ""
    return get_job(session=session, job_id=run.job_id, project_id=project.id).logs
