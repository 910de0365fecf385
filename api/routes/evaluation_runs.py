"""Evaluation runs and comparisons over REST.

``POST …/evaluation/runs`` queues a run (a dataset version, a prompt version or variant, scorers)
for the worker and answers ``201`` with it; its state, progress and figures are read back with
``GET …/evaluation/runs/{id}``, each record's answer and scores with ``…/results``.
``GET …/evaluation/comparison?runs=a,b`` puts finished runs side by side. Starting a run needs
``model:write`` (it spends tokens on the project's endpoints); reading needs ``model:read``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, status
from pydantic import BaseModel
from sqlmodel import Session

from api.deferred_routes import DeferredAPIRoute
from api.deps import SessionDep
from api.pages import PageDep
from api.security import CurrentProject, require
from governance import act_then_audit
from governance.actors import Actor
from governance.permissions import Permission
from lineage.errors import InvalidInput
from lineage.models import ModelVersion
from lineage.prompts import get_prompt
from lineage.runtime.queue import RuntimeJob
from retrain.eval_comparison import compare_runs
from retrain.eval_datasets import EvalDataset, EvalDatasetVersion
from retrain.eval_runs import (
    EvalRun,
    EvalRunCreate,
    get_eval_run,
    page_eval_runs,
    page_results,
    request_eval_run,
)
from retrain.llm_deployments import LlmDeployment, get_llm_deployment

__all__ = [
    "EvalComparisonPublic",
    "EvalDifferingRecordPublic",
    "EvalResultPublic",
    "EvalRunPublic",
    "router",
]

router = APIRouter(
    route_class=DeferredAPIRoute,
    prefix="/api/v1/projects/{project}/evaluation",
    tags=["evaluation"],
)

_READ = [Depends(require(Permission.MODEL_READ))]


class EvalRunPublic(BaseModel):
    """An evaluation run: what it evaluates, how far it is, and its figures when finished."""

    id: uuid.UUID
    label: str
    state: str
    dataset: str
    dataset_version: int
    prompt: str
    prompt_version: str
    llm_deployment: str
    environment: str
    overrides: dict[str, Any] | None
    scorers: list[dict[str, Any]]
    progress: float | None
    progress_message: str
    figures: dict[str, Any] | None
    error: str
    requested_by_name: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None

    @classmethod
    def of(cls, run: EvalRun, *, session: Session) -> EvalRunPublic:
        """Build the public view of a stored run."""
        version = session.get(ModelVersion, run.model_version_id)
        data_version = session.get(EvalDatasetVersion, run.dataset_version_id)
        binding = session.get(LlmDeployment, run.llm_deployment_id)
        assert version is not None  # foreign keys guarantee all three
        assert data_version is not None
        assert binding is not None
        dataset = session.get(EvalDataset, data_version.dataset_id)
        assert dataset is not None
        job = session.get(RuntimeJob, run.job_id) if run.job_id else None
        return cls(
            id=run.id,
            label=run.label,
            state=run.state,
            dataset=dataset.name,
            dataset_version=data_version.version,
            prompt=version.name,
            prompt_version=version.version,
            llm_deployment=binding.name,
            environment=binding.environment,
            overrides=run.overrides,
            scorers=run.scorers,
            progress=job.progress if job is not None else None,
            progress_message=job.message if job is not None else "",
            figures=run.figures,
            error=run.error,
            requested_by_name=run.requested_by_name,
            created_at=run.created_at,
            started_at=run.started_at,
            finished_at=run.finished_at,
        )


class EvalResultPublic(BaseModel):
    """One record's outcome in a run."""

    position: int
    response: str | None
    error: str | None
    latency_ms: float | None
    input_tokens: int | None
    output_tokens: int | None
    cost_nano_usd: int | None
    trace_id: str | None
    scores: dict[str, Any]


class EvalDifferingRecordPublic(BaseModel):
    """A record some scorer passed in one run and failed in another."""

    position: int
    inputs: dict[str, Any]
    expected_response: str | None
    scorers: list[str]
    responses: list[str | None]
    passed: list[dict[str, bool | None]]


class EvalComparisonPublic(BaseModel):
    """Runs side by side: their figures, and the records where they disagree."""

    runs: list[EvalRunPublic]
    scorers: list[str]
    differing: list[EvalDifferingRecordPublic]


@router.post(
    "/runs", status_code=status.HTTP_201_CREATED, summary="Start an evaluation run (worker)"
)
def post_run(
    body: EvalRunCreate,
    actor: Annotated[Actor, Depends(require(Permission.MODEL_WRITE))],
    project: CurrentProject,
    session: SessionDep,
) -> EvalRunPublic:
    """Freeze the dataset version and queue the run; read its progress with GET."""
    prompt = get_prompt(
        session=session, project_id=project.id, name=body.prompt, version=body.prompt_version
    )
    binding = get_llm_deployment(
        session=session,
        project_id=project.id,
        name=body.llm_deployment,
        environment=body.environment,
    )
    run = act_then_audit(
        lambda: request_eval_run(
            session=session,
            project_id=project.id,
            spec=body,
            model_version_id=prompt.version.id,
            prompt_label=f"{body.prompt} v{body.prompt_version}",
            llm_deployment_id=binding.id,
            requested_by=actor.principal_id,
            requested_by_name=actor.name,
        ),
        session=session,
        actor=actor,
        action="eval_run.request",
        target=lambda r: f"eval_run:{r.id}",
        detail=lambda r: {
            "label": r.label,
            "dataset": body.dataset,
            "prompt": body.prompt,
            "prompt_version": body.prompt_version,
            "scorers": [s.get("name") or s["type"] for s in r.scorers],
        },
        project_id=project.id,
    )
    return EvalRunPublic.of(run, session=session)


@router.get("/runs", dependencies=_READ, summary="List evaluation runs")
def read_runs(
    project: CurrentProject,
    session: SessionDep,
    page: PageDep,
    prompt: Annotated[str | None, Query(max_length=256)] = None,
    prompt_version: Annotated[str | None, Query(max_length=64)] = None,
) -> list[EvalRunPublic]:
    """Return the project's runs, newest first (of one prompt version when both are given)."""
    version_id = None
    if prompt is not None and prompt_version is not None:
        version_id = get_prompt(
            session=session, project_id=project.id, name=prompt, version=prompt_version
        ).version.id
    runs = page_eval_runs(
        session=session,
        project_id=project.id,
        model_version_id=version_id,
        limit=page.limit,
        cursor=page.cursor,
    )
    return [EvalRunPublic.of(r, session=session) for r in page.answer(runs)]


@router.get("/runs/{run_id}", dependencies=_READ, summary="Read an evaluation run")
def read_run(run_id: uuid.UUID, project: CurrentProject, session: SessionDep) -> EvalRunPublic:
    """Return a run with its progress and, once finished, its figures."""
    run = get_eval_run(session=session, project_id=project.id, run_id=run_id)
    return EvalRunPublic.of(run, session=session)


@router.get("/runs/{run_id}/results", dependencies=_READ, summary="Read a run's results")
def read_results(
    run_id: uuid.UUID, project: CurrentProject, session: SessionDep, page: PageDep
) -> list[EvalResultPublic]:
    """Return each record's answer, cost and scores, in record order."""
    run = get_eval_run(session=session, project_id=project.id, run_id=run_id)
    found = page_results(session=session, run=run, limit=page.limit, cursor=page.cursor)
    return [EvalResultPublic.model_validate(r, from_attributes=True) for r in page.answer(found)]


def parse_run_ids(text: str) -> list[uuid.UUID]:
    """Read ``a,b,…`` run ids from a query parameter.

    Raises:
        InvalidInput: A part is not a UUID.
    """
    try:
        return [uuid.UUID(part.strip()) for part in text.split(",") if part.strip()]
    except ValueError:
        raise InvalidInput(
            "runs must be run ids separated by commas (?runs=<id>,<id>)", field="runs"
        ) from None


@router.get("/comparison", dependencies=_READ, summary="Compare finished runs side by side")
def read_comparison(
    project: CurrentProject,
    session: SessionDep,
    runs: Annotated[str, Query(min_length=1, max_length=400, description="<id>,<id>,…")],
) -> EvalComparisonPublic:
    """Return per-run figures and the records where one run passed and another failed."""
    comparison = compare_runs(session=session, project_id=project.id, run_ids=parse_run_ids(runs))
    return EvalComparisonPublic(
        runs=[EvalRunPublic.of(r, session=session) for r in comparison.runs],
        scorers=comparison.scorers,
        differing=[
            EvalDifferingRecordPublic.model_validate(d, from_attributes=True)
            for d in comparison.differing
        ],
    )
