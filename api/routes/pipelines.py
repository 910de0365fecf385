"""Retraining pipelines over REST: define, list, start runs, follow them, read logs, cancel.

Starting a run answers ``201`` with a new run, or ``200`` with the run already queued or
running for the same model (a storm of requests yields one run). Runs execute in the worker;
these routes only queue, read and cancel. Every write is gated and audited in the request's
transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Response, status
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Session

from api.deferred_routes import DeferredAPIRoute
from api.deps import SessionDep, SettingsDep
from api.pages import PageDep
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.permissions import Permission
from retrain.pipelines import (
    Pipeline,
    PipelineRun,
    PipelineSpec,
    Scalar,
    cancel_run,
    create_pipeline,
    get_pipeline,
    get_run,
    list_pipelines,
    page_runs,
    request_run,
)
from retrain.run_files import run_log

__all__ = ["PipelinePublic", "PipelineRunCreate", "PipelineRunPublic", "router"]

router = APIRouter(
    route_class=DeferredAPIRoute, prefix="/api/v1/projects/{project}", tags=["pipelines"]
)

_LOG_LIMIT = 1_000_000


class PipelinePublic(BaseModel):
    """A registered pipeline as clients see it."""

    id: uuid.UUID
    name: str
    model_name: str
    spec: PipelineSpec
    created_by: uuid.UUID | None
    created_at: datetime

    @classmethod
    def of(cls, pipeline: Pipeline) -> PipelinePublic:
        """Build the public view of a stored pipeline."""
        return cls(
            id=pipeline.id,
            name=pipeline.name,
            model_name=pipeline.model_name,
            spec=pipeline.parsed_spec(),
            created_by=pipeline.created_by,
            created_at=pipeline.created_at,
        )


class PipelineRunCreate(BaseModel):
    """Why a run is wanted, and overrides of parameters the pipeline declares."""

    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="", max_length=4000)
    parameters: dict[str, Scalar] = Field(default_factory=dict, max_length=100)


class PipelineRunPublic(BaseModel):
    """A pipeline run: its state, what it produced, and the end of its log."""

    id: uuid.UUID
    pipeline: str
    model_name: str
    state: str
    parameters: dict[str, Any]
    reason: str
    requested_by: uuid.UUID | None
    requested_by_name: str
    cancel_requested: bool
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    exit_code: int | None
    error: str
    mlflow_run_id: str | None
    model_version: str | None
    model_version_id: uuid.UUID | None
    metrics: dict[str, float]
    log_tail: str

    @classmethod
    def of(cls, run: PipelineRun, *, session: Session) -> PipelineRunPublic:
        """Build the public view of a stored run."""
        pipeline = session.get(Pipeline, run.pipeline_id)
        assert pipeline is not None  # a foreign key guarantees it
        return cls(
            id=run.id,
            pipeline=pipeline.name,
            model_name=run.model_name,
            state=run.state,
            parameters=run.parameters,
            reason=run.reason,
            requested_by=run.requested_by,
            requested_by_name=run.requested_by_name,
            cancel_requested=run.cancel_requested,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
            exit_code=run.exit_code,
            error=run.error,
            mlflow_run_id=run.mlflow_run_id,
            model_version=run.model_version,
            model_version_id=run.model_version_id,
            metrics=run.metrics,
            log_tail=run.log_tail,
        )


@router.post("/pipelines", status_code=status.HTTP_201_CREATED, summary="Define a pipeline")
def define_pipeline(
    spec: PipelineSpec,
    actor: Annotated[Actor, Depends(require(Permission.PIPELINE_WRITE))],
    project: CurrentProject,
    session: SessionDep,
) -> PipelinePublic:
    """Register a retraining pipeline: steps, parameters, training data, time limit."""
    pipeline = create_pipeline(session=session, project_id=project.id, spec=spec, actor=actor)
    return PipelinePublic.of(pipeline)


@router.get(
    "/pipelines",
    dependencies=[Depends(require(Permission.PIPELINE_READ))],
    summary="List pipelines",
)
def read_pipelines(
    project: CurrentProject, session: SessionDep, page: PageDep
) -> list[PipelinePublic]:
    """Return the project's pipelines by name."""
    found = list_pipelines(session=session, project_id=project.id)
    return [PipelinePublic.of(p) for p in page.answer_all(found, key_of=lambda p: (p.name, p.id))]


@router.get(
    "/pipelines/{name}",
    dependencies=[Depends(require(Permission.PIPELINE_READ))],
    summary="Read a pipeline",
)
def read_pipeline(name: str, project: CurrentProject, session: SessionDep) -> PipelinePublic:
    """Return one pipeline definition."""
    return PipelinePublic.of(get_pipeline(session=session, project_id=project.id, name=name))


@router.post(
    "/pipelines/{name}/runs",
    status_code=status.HTTP_201_CREATED,
    summary="Start a pipeline run (or get the one already active for its model)",
)
def start_run(
    name: str,
    body: PipelineRunCreate,
    response: Response,
    actor: Annotated[Actor, Depends(require(Permission.PIPELINE_RUN))],
    project: CurrentProject,
    session: SessionDep,
) -> PipelineRunPublic:
    """Queue a run for the worker; 200 with the active run if the model is being trained."""
    pipeline = get_pipeline(session=session, project_id=project.id, name=name)
    requested = request_run(
        session=session,
        pipeline=pipeline,
        actor=actor,
        reason=body.reason,
        parameters=body.parameters,
    )
    if not requested.created:
        response.status_code = status.HTTP_200_OK
    return PipelineRunPublic.of(requested.run, session=session)


@router.get(
    "/pipelines/{name}/runs",
    dependencies=[Depends(require(Permission.PIPELINE_READ))],
    summary="List a pipeline's runs",
)
def read_runs(
    name: str, project: CurrentProject, session: SessionDep, page: PageDep
) -> list[PipelineRunPublic]:
    """Return a pipeline's runs, newest first."""
    pipeline = get_pipeline(session=session, project_id=project.id, name=name)
    found = page_runs(
        session=session,
        project_id=project.id,
        pipeline_id=pipeline.id,
        limit=page.limit,
        cursor=page.cursor,
    )
    return [PipelineRunPublic.of(r, session=session) for r in page.answer(found)]


@router.get(
    "/pipeline-runs/{run_id}",
    dependencies=[Depends(require(Permission.PIPELINE_READ))],
    summary="Read a pipeline run",
)
def read_run(run_id: uuid.UUID, project: CurrentProject, session: SessionDep) -> PipelineRunPublic:
    """Return one run with its state, outcome and the end of its log."""
    run = get_run(session=session, project_id=project.id, run_id=run_id)
    return PipelineRunPublic.of(run, session=session)


@router.get(
    "/pipeline-runs/{run_id}/log",
    dependencies=[Depends(require(Permission.PIPELINE_READ))],
    response_class=PlainTextResponse,
    summary="Read a pipeline run's captured log",
)
def read_run_log(
    run_id: uuid.UUID, project: CurrentProject, session: SessionDep, settings: SettingsDep
) -> PlainTextResponse:
    """Return the run's stdout and stderr as captured so far (the last megabyte)."""
    run = get_run(session=session, project_id=project.id, run_id=run_id)
    log = run_log(
        store=settings.artifact_store(), data_dir=settings.data_dir, run_id=run.id, limit=_LOG_LIMIT
    )
    return PlainTextResponse(run.log_tail if log is None else log)


@router.post("/pipeline-runs/{run_id}/cancel", summary="Cancel a pipeline run")
def cancel(
    run_id: uuid.UUID,
    actor: Annotated[Actor, Depends(require(Permission.PIPELINE_RUN))],
    project: CurrentProject,
    session: SessionDep,
) -> PipelineRunPublic:
    """Cancel a queued run at once, or ask the worker to stop a running one."""
    run = cancel_run(session=session, project_id=project.id, run_id=run_id, actor=actor)
    return PipelineRunPublic.of(run, session=session)
