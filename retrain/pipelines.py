"""Retraining pipelines: registered definitions, their runs, and the run state machine.

A :class:`Pipeline` is a definition a data scientist registers once: its steps (Python entry
points ``module:function`` run by :mod:`retrain.step`, or commands given as an argument list,
never through a shell), its parameters, the data it trains on (dataset versions recorded in
lineage, or a query over logged inferences with labels), advisory resources and a time limit.

A :class:`PipelineRun` moves through a small state machine::

    queued ──► running ──► succeeded
       │          ├──────► failed
       └──────────┴──────► cancelled

The same model is never trained twice at once: while a run is queued or running its
``active_model`` column holds the model's name, and a unique constraint on
``(project_id, active_model)`` refuses a second one — so a storm of requests (a policy firing on
every monitor run) yields one run, and :func:`request_run` hands the existing one back.
Finished runs set ``active_model`` to NULL, which never collides.

Defining a pipeline is code execution by design (its steps run on the worker's machine, in a
sandbox: :mod:`retrain.sandbox`): it needs ``pipeline:write``; starting one needs
``pipeline:run``. Services here never commit.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)
from sqlmodel import Field as SQLField
from sqlmodel import Session, col, select

from governance import Actor, append
from lineage.errors import Conflict, InvalidInput, NotFound
from lineage.pages import (
    DEFAULT_PAGE_SIZE,
    Page,
    newest_first,
    newest_first_page,
)
from lineage.runtime.queue import JobState, RuntimeJob, enqueue
from lineage.tables import AwareDateTime, Record, utcnow

__all__ = [
    "ACTIVE_STATES",
    "ENTRYPOINT_PATTERN",
    "PIPELINE_RUN",
    "EvaluationSpec",
    "InferenceQuery",
    "Pipeline",
    "PipelineRun",
    "PipelineRunState",
    "PipelineSpec",
    "Resources",
    "RunRequest",
    "Scalar",
    "Step",
    "TrainingData",
    "cancel_run",
    "claim_run",
    "create_pipeline",
    "finish_run",
    "get_pipeline",
    "get_run",
    "list_pipelines",
    "list_runs",
    "page_runs",
    "request_run",
]

PIPELINE_RUN = "pipeline_run"
"""The job kind of a pipeline run."""

ENTRYPOINT_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*:[A-Za-z_][A-Za-z0-9_]*$"
_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
_MODEL_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$"
_LOG_TAIL_CHARS = 20_000


class PipelineRunState(StrEnum):
    """Where a pipeline run is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_STATES = frozenset({PipelineRunState.QUEUED, PipelineRunState.RUNNING})

_TRANSITIONS: dict[PipelineRunState, frozenset[PipelineRunState]] = {
    PipelineRunState.QUEUED: frozenset({PipelineRunState.RUNNING, PipelineRunState.CANCELLED}),
    PipelineRunState.RUNNING: frozenset(
        {PipelineRunState.SUCCEEDED, PipelineRunState.FAILED, PipelineRunState.CANCELLED}
    ),
    PipelineRunState.SUCCEEDED: frozenset(),
    PipelineRunState.FAILED: frozenset(),
    PipelineRunState.CANCELLED: frozenset(),
}


class Step(BaseModel):
    """One step: a Python entry point called in a fresh interpreter, or a command."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME_PATTERN, description="Shown in the run's log.")
    entrypoint: str | None = Field(
        default=None,
        pattern=ENTRYPOINT_PATTERN,
        description="`module:function`, called with a `retrain.step.StepContext`.",
    )
    command: list[str] | None = Field(
        default=None,
        min_length=1,
        max_length=100,
        description="An argument vector (no shell); reads its context from WARDEN_* variables.",
    )

    @model_validator(mode="after")
    def _exactly_one_action(self) -> Step:
        if (self.entrypoint is None) == (self.command is None):
            raise ValueError("give exactly one of 'entrypoint' (module:function) or 'command'")
        return self


class InferenceQuery(BaseModel):
    """Train on inferences logged for a deployment (with their labels) in a time window."""

    model_config = ConfigDict(extra="forbid")

    deployment: str = Field(min_length=1, max_length=256)
    environment: str = Field(default="production", min_length=1, max_length=64)
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    labelled_only: bool = True
    label_column: str = Field(
        default="label",
        pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
        description="The column the labels are given in the training file (the step's target).",
    )


class TrainingData(BaseModel):
    """What a run trains on: dataset versions from lineage and/or logged inferences."""

    model_config = ConfigDict(extra="forbid")

    dataset_version_ids: list[uuid.UUID] = Field(default_factory=list, max_length=50)
    inferences: InferenceQuery | None = None


class Resources(BaseModel):
    """What a run may use; recorded and passed to steps, enforced by the deployment's limits."""

    model_config = ConfigDict(extra="forbid")

    cpus: float | None = Field(default=None, gt=0, le=256)
    memory_mb: int | None = Field(default=None, gt=0, le=4_194_304)


Scalar = str | int | float | bool | None


class EvaluationSpec(BaseModel):
    """Held-out data every new version is scored on, beside the champion, after a run succeeds."""

    model_config = ConfigDict(extra="forbid")

    holdout_uri: str | None = Field(
        default=None, min_length=1, max_length=2048, description="A file the reader can read."
    )
    holdout_dataset_version_id: uuid.UUID | None = None
    reader: str = Field(
        pattern=ENTRYPOINT_PATTERN,
        description=(
            "`module:function` taking the URI and returning a pandas DataFrame (required: only "
            "you know your file's format; e.g. `pandas:read_csv` or `pandas:read_parquet`)."
        ),
    )
    target: str = Field(min_length=1, max_length=256)
    sensitive_features: list[str] = Field(default_factory=list, max_length=10)
    max_rows: int = Field(default=5000, ge=10, le=1_000_000)

    @model_validator(mode="after")
    def _exactly_one_source(self) -> EvaluationSpec:
        if (self.holdout_uri is None) == (self.holdout_dataset_version_id is None):
            raise ValueError("give exactly one of 'holdout_uri' or 'holdout_dataset_version_id'")
        return self


class PipelineSpec(BaseModel):
    """A pipeline definition as a client sends it."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=_NAME_PATTERN)
    model_name: str = Field(
        pattern=_MODEL_NAME_PATTERN, description="The registered model the run produces."
    )
    description: str = Field(default="", max_length=4000)
    steps: list[Step] = Field(min_length=1, max_length=20)
    parameters: dict[str, Scalar] = Field(default_factory=dict, max_length=100)
    training_data: TrainingData = Field(default_factory=TrainingData)
    resources: Resources = Field(default_factory=Resources)
    time_limit_seconds: int = Field(default=3600, ge=1, le=7 * 24 * 3600)
    evaluation: EvaluationSpec | None = Field(
        default=None, description="Score each new version against the champion when set."
    )

    @field_validator("parameters")
    @classmethod
    def _parameter_names(cls, value: dict[str, Scalar]) -> dict[str, Scalar]:
        for key in value:
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_.-]{0,99}$", key):
                raise ValueError(f"parameter name {key!r} must be an identifier-like string")
        return value


class Pipeline(Record, table=True):
    """A registered retraining pipeline of a project."""

    __tablename__ = "retrain_pipeline"
    __table_args__ = (sa.UniqueConstraint("project_id", "name"),)

    project_id: uuid.UUID = SQLField(foreign_key="lineage_project.id", index=True)
    name: str = SQLField(sa_column=sa.Column(sa.String(63), nullable=False))
    model_name: str = SQLField(sa_column=sa.Column(sa.String(128), nullable=False))
    spec: dict[str, Any] = SQLField(sa_column=sa.Column(sa.JSON(), nullable=False))
    created_by: uuid.UUID | None = SQLField(default=None)

    def parsed_spec(self) -> PipelineSpec:
        """Return the stored definition as a validated :class:`PipelineSpec`."""
        return PipelineSpec.model_validate(self.spec)


class PipelineRun(Record, table=True):
    """One execution of a pipeline, with its state, logs and what it produced."""

    __tablename__ = "retrain_pipeline_run"
    __table_args__ = (sa.UniqueConstraint("project_id", "active_model"),)

    project_id: uuid.UUID = SQLField(foreign_key="lineage_project.id", index=True)
    pipeline_id: uuid.UUID = SQLField(foreign_key="retrain_pipeline.id", index=True)
    model_name: str = SQLField(sa_column=sa.Column(sa.String(128), nullable=False))
    state: str = SQLField(
        default=PipelineRunState.QUEUED.value, sa_column=sa.Column(sa.String(16), nullable=False)
    )
    active_model: str | None = SQLField(default=None, sa_column=sa.Column(sa.String(128)))
    parameters: dict[str, Any] = SQLField(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    reason: str = SQLField(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    requested_by: uuid.UUID | None = SQLField(default=None)
    requested_by_name: str = SQLField(sa_column=sa.Column(sa.String(256), nullable=False))
    cancel_requested: bool = SQLField(
        default=False, sa_column=sa.Column(sa.Boolean(), nullable=False)
    )
    started_at: datetime | None = SQLField(default=None, sa_type=AwareDateTime)
    finished_at: datetime | None = SQLField(default=None, sa_type=AwareDateTime)
    exit_code: int | None = SQLField(default=None)
    error: str = SQLField(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    log_tail: str = SQLField(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    mlflow_run_id: str | None = SQLField(default=None, sa_column=sa.Column(sa.String(64)))
    model_version: str | None = SQLField(default=None, sa_column=sa.Column(sa.String(64)))
    model_version_id: uuid.UUID | None = SQLField(
        default=None, foreign_key="lineage_model_version.id"
    )
    job_id: uuid.UUID | None = SQLField(default=None, foreign_key="lineage_runtime_job.id")
    metrics: dict[str, float] = SQLField(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False)
    )

    @property
    def run_state(self) -> PipelineRunState:
        """Return :attr:`state` as the enum."""
        return PipelineRunState(self.state)


@dataclass(frozen=True, slots=True)
class RunRequest:
    """The answer to :func:`request_run`: the run, and whether this request created it."""

    run: PipelineRun
    created: bool


def _target(run: PipelineRun) -> str:
    return f"pipeline_run:{run.id}"


def create_pipeline(
    *, session: Session, project_id: uuid.UUID, spec: PipelineSpec, actor: Actor
) -> Pipeline:
    """Register a pipeline definition in a project (audited as ``pipeline.create``)."""
    existing = session.exec(
        select(Pipeline).where(Pipeline.project_id == project_id, Pipeline.name == spec.name)
    ).first()
    if existing is not None:
        raise Conflict(f"pipeline {spec.name!r} exists already; pick another name", field="name")
    pipeline = Pipeline(
        project_id=project_id,
        name=spec.name,
        model_name=spec.model_name,
        spec=spec.model_dump(mode="json"),
        created_by=actor.principal_id,
    )
    session.add(pipeline)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="pipeline.create",
        target=f"pipeline:{pipeline.id}",
        detail={"name": spec.name, "model_name": spec.model_name, "steps": len(spec.steps)},
        project_id=project_id,
    )
    return pipeline


def get_pipeline(*, session: Session, project_id: uuid.UUID, name: str) -> Pipeline:
    """Return the pipeline ``name`` of a project, or raise :class:`NotFound`."""
    pipeline = session.exec(
        select(Pipeline).where(Pipeline.project_id == project_id, Pipeline.name == name)
    ).first()
    if pipeline is None:
        raise NotFound(f"no pipeline named {name!r} in this project; list them first")
    return pipeline


def list_pipelines(*, session: Session, project_id: uuid.UUID) -> list[Pipeline]:
    """Return a project's pipelines ordered by name."""
    query = (
        select(Pipeline)
        .where(Pipeline.project_id == project_id)
        .order_by(sa.asc(col(Pipeline.name)))
    )
    return list(session.exec(query).all())


_FINAL_JOB_STATES = frozenset({JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED})


def _orphaned(session: Session, run: PipelineRun) -> RuntimeJob | None:
    """Return the run's job if it ended while the run is still active (its worker died)."""
    if run.job_id is None:
        return None
    job = session.get(RuntimeJob, run.job_id)
    return job if job is not None and job.state in _FINAL_JOB_STATES else None


def _active_run(session: Session, project_id: uuid.UUID, model_name: str) -> PipelineRun | None:
    run = session.exec(
        select(PipelineRun).where(
            PipelineRun.project_id == project_id, PipelineRun.active_model == model_name
        )
    ).first()
    job = None if run is None else _orphaned(session, run)
    if run is not None and job is not None:
        # Its worker stopped (crash, lost machine) and the job will not be retried: the run can
        # never finish, so it must not hold the model any longer.
        _move(run, PipelineRunState.FAILED)
        run.error = (
            f"its worker job ended ({job.state}: {job.error or 'no reason given'}) before the "
            "run finished; start a new run"
        )
        session.add(run)
        session.flush()
        append(
            session=session,
            actor=Actor.system(),
            action="pipeline_run.failed",
            target=_target(run),
            outcome="failure",
            reason=run.error,
            project_id=run.project_id,
        )
        return None
    return run


def request_run(
    *,
    session: Session,
    pipeline: Pipeline,
    actor: Actor,
    reason: str = "",
    parameters: dict[str, Scalar] | None = None,
) -> RunRequest:
    """Queue a run of ``pipeline`` unless its model is already being trained.

    Returns the new run (``created=True``) or the queued/running one for the same model
    (``created=False``), so callers — people and policies alike — can ask freely. Parameters
    given here override the pipeline's defaults, but only names the pipeline declares.
    """
    spec = pipeline.parsed_spec()
    overrides = dict(parameters or {})
    unknown = sorted(set(overrides) - set(spec.parameters))
    if unknown:
        raise InvalidInput(
            f"parameters {unknown} are not declared by pipeline {pipeline.name!r}; "
            f"declared: {sorted(spec.parameters)}",
            field="parameters",
        )
    existing = _active_run(session, pipeline.project_id, pipeline.model_name)
    if existing is not None:
        return RunRequest(run=existing, created=False)
    run = PipelineRun(
        project_id=pipeline.project_id,
        pipeline_id=pipeline.id,
        model_name=pipeline.model_name,
        active_model=pipeline.model_name,
        parameters={**spec.parameters, **overrides},
        reason=reason[:4000],
        requested_by=actor.principal_id,
        requested_by_name=actor.name,
    )
    try:
        with session.begin_nested():
            session.add(run)
            session.flush()
    except sa.exc.IntegrityError:
        # Another transaction queued a run for this model between our read and our insert.
        existing = _active_run(session, pipeline.project_id, pipeline.model_name)
        if existing is None:
            raise
        return RunRequest(run=existing, created=False)
    # Two attempts, one training: when the first worker dies, the second attempt finds the run
    # still running and fails it with the reason (retrain.runner), never training it twice.
    job = enqueue(
        session=session,
        project_id=pipeline.project_id,
        kind=PIPELINE_RUN,
        payload={"run_id": str(run.id)},
        max_attempts=2,
    )
    run.job_id = job.id
    session.add(run)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="pipeline_run.request",
        target=_target(run),
        reason=reason[:4000],
        detail={"pipeline": pipeline.name, "model_name": pipeline.model_name},
        project_id=pipeline.project_id,
    )
    return RunRequest(run=run, created=True)


def get_run(*, session: Session, project_id: uuid.UUID, run_id: uuid.UUID) -> PipelineRun:
    """Return a run of the project, or raise :class:`NotFound`."""
    run = session.get(PipelineRun, run_id)
    if run is None or run.project_id != project_id:
        raise NotFound(f"no pipeline run {run_id} in this project")
    return run


def list_runs(
    *, session: Session, project_id: uuid.UUID, pipeline_id: uuid.UUID | None = None
) -> list[PipelineRun]:
    """Return a project's runs, newest first (optionally of one pipeline)."""
    query = _runs_of(project_id, pipeline_id)
    return list(session.exec(newest_first(query, PipelineRun)).all())


def _runs_of(project_id: uuid.UUID, pipeline_id: uuid.UUID | None) -> Any:
    query = select(PipelineRun).where(PipelineRun.project_id == project_id)
    return query if pipeline_id is None else query.where(PipelineRun.pipeline_id == pipeline_id)


def page_runs(
    *,
    session: Session,
    project_id: uuid.UUID,
    pipeline_id: uuid.UUID | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[PipelineRun]:
    """Return a page of a project's runs (of one pipeline), newest first.

    Raises:
        InvalidInput: ``limit`` outside 1..1000, or a cursor this API did not return.
    """
    return newest_first_page(
        session=session,
        query=_runs_of(project_id, pipeline_id),
        record=PipelineRun,
        limit=limit,
        cursor=cursor,
    )


def _move(run: PipelineRun, to: PipelineRunState) -> None:
    current = run.run_state
    if to not in _TRANSITIONS[current]:
        raise Conflict(f"pipeline run {run.id} is {current.value}; it cannot become {to.value}")
    run.state = to.value
    if to not in ACTIVE_STATES:
        run.active_model = None
        run.finished_at = utcnow()


def claim_run(*, session: Session, run_id: uuid.UUID) -> PipelineRun:
    """Move a queued run to running (the runner calls this before starting the steps)."""
    run = session.get(PipelineRun, run_id)
    if run is None:
        raise NotFound(f"no pipeline run {run_id}")
    _move(run, PipelineRunState.RUNNING)
    run.started_at = utcnow()
    session.add(run)
    session.flush()
    return run


def finish_run(
    *,
    session: Session,
    run: PipelineRun,
    state: PipelineRunState,
    actor: Actor,
    error: str = "",
    exit_code: int | None = None,
    log_tail: str = "",
) -> PipelineRun:
    """Move a running run to a final state, free its model, and audit the outcome."""
    _move(run, state)
    run.error = error[:4000]
    run.exit_code = exit_code
    run.log_tail = log_tail[-_LOG_TAIL_CHARS:]
    session.add(run)
    session.flush()
    append(
        session=session,
        actor=actor,
        action=f"pipeline_run.{state.value}",
        target=_target(run),
        outcome="success" if state is PipelineRunState.SUCCEEDED else "failure",
        reason=error[:4000],
        detail={"model_name": run.model_name, "model_version": run.model_version},
        project_id=run.project_id,
    )
    return run


def cancel_run(
    *, session: Session, project_id: uuid.UUID, run_id: uuid.UUID, actor: Actor
) -> PipelineRun:
    """Cancel a run: a queued one at once, a running one by asking its runner to stop it.

    Raises:
        Conflict: The run has finished already.
    """
    run = get_run(session=session, project_id=project_id, run_id=run_id)
    if run.run_state not in ACTIVE_STATES:
        raise Conflict(f"pipeline run {run_id} is {run.state} already; nothing to cancel")
    run.cancel_requested = True
    if run.run_state is PipelineRunState.QUEUED or _orphaned(session, run) is not None:
        _move(run, PipelineRunState.CANCELLED)
        run.error = f"cancelled by {actor.name} before it could finish"
    session.add(run)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="pipeline_run.cancel",
        target=_target(run),
        detail={"state": run.state},
        project_id=project_id,
    )
    return run
