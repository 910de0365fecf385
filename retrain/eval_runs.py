"""Evaluation runs: a dataset version, a candidate and scorers, executed on the worker.

A candidate is a prompt version, or a *variant* of it: the same version with model-config
overrides (another model, temperature, max tokens, response format). The endpoint comes from an
LLM deployment (its base URL and credential reference); the model is the prompt version's own
unless the variant overrides it. A run moves::

    queued ──► running ──► succeeded   every call answered and every scorer judged
                  ├──────► partial     some calls or scores are errors (a judge was down)
                  └──────► failed      no call answered, or the run could not start

Requesting a run freezes its dataset version (:func:`retrain.eval_datasets.freeze_version`),
so the figures always refer to the records scored. Each record's outcome is one
:class:`EvalResult`; the run's figures (:mod:`retrain.eval_figures`) are stored on the run when
it finishes. Starting needs ``model:write`` on the route; services never commit, and the request
is audited by its caller (``act_then_audit``), the outcome by the runner as Warden.

Each run is also an OpenLineage run (:func:`record_eval_lineage`): job
``warden:evaluation/<prompt>``, its input the dataset version ``warden:evaluation/<dataset>``
at version ``<n>``, and a ``run_evaluates`` edge to the prompt version it judged. It is recorded
when the run is *requested*, in the request's transaction — that is when the dataset version
freezes, so the link is a fact from then on and a refused request leaves no trace of it — and
the run's state is updated when it finishes.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import Field as Column
from sqlmodel import Session, col, select

from lineage.edges import link
from lineage.errors import InvalidInput, NotFound
from lineage.models import EdgeKind, ModelVersion, Run
from lineage.openlineage_events import DatasetRef, EventType, emit, run_event
from lineage.pages import (
    DEFAULT_PAGE_SIZE,
    Page,
    SortKey,
    keyset_page,
    newest_first,
    newest_first_page,
)
from lineage.runtime.queue import enqueue
from lineage.tables import AwareDateTime, Record, utcnow
from monitors.scoring import parse_scorers
from monitors.scoring.scorers import ScorerSpec
from retrain.eval_datasets import (
    EvalDataset,
    EvalDatasetVersion,
    freeze_version,
    get_dataset,
    get_version,
    list_versions,
)
from retrain.eval_figures import RunFigures

__all__ = [
    "EVAL_RUN",
    "FINISHED_STATES",
    "EvalResult",
    "EvalRun",
    "EvalRunCreate",
    "EvalRunState",
    "ModelOverrides",
    "get_eval_run",
    "list_eval_runs",
    "page_eval_runs",
    "page_results",
    "record_eval_lineage",
    "request_eval_run",
    "results_of",
    "run_figures",
    "stored_scorers",
]

EVAL_RUN = "eval_run"
"""The job kind of an evaluation run."""

_PROJECT_FK = "lineage_project.id"
_LINEAGE_NAMESPACE = "warden"


class EvalRunState(StrEnum):
    """Where an evaluation run is in its life."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    PARTIAL = "partial"
    FAILED = "failed"


FINISHED_STATES = frozenset({EvalRunState.SUCCEEDED, EvalRunState.PARTIAL, EvalRunState.FAILED})


class ModelOverrides(BaseModel):
    """What a variant changes in the prompt version's model configuration."""

    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(default=None, min_length=1, max_length=256, description="Model.")
    temperature: float | None = Field(default=None, ge=0, le=2)
    max_tokens: int | None = Field(default=None, gt=0, le=1_000_000)
    response_format: Literal["text", "json_object"] | None = None


_PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
"""Names that can be looked up: no control characters (PostgreSQL refuses NUL in text: a 500)."""
_MAX_VERSION = 2**31 - 1
"""Dataset versions are SQL ``INTEGER`` columns (32-bit on PostgreSQL)."""


class EvalRunCreate(BaseModel):
    """What to evaluate: a prompt version (or a variant) on a dataset version with scorers."""

    model_config = ConfigDict(extra="forbid")

    dataset: str = Field(min_length=1, max_length=64, pattern=_PRINTABLE)
    dataset_version: int | None = Field(
        default=None, ge=1, le=_MAX_VERSION, description="Default: the latest."
    )
    prompt: str = Field(min_length=1, max_length=256, pattern=_PRINTABLE)
    prompt_version: str = Field(min_length=1, max_length=64, pattern=_PRINTABLE)
    llm_deployment: str = Field(
        min_length=1,
        max_length=64,
        pattern=_PRINTABLE,
        description="Whose endpoint (base URL, credential) to call.",
    )
    environment: str = Field(default="production", min_length=1, max_length=64, pattern=_PRINTABLE)
    overrides: ModelOverrides | None = Field(
        default=None, description="Make the candidate a variant of the prompt version."
    )
    label: str | None = Field(
        default=None, max_length=128, pattern=_PRINTABLE, description="Shown in comparisons."
    )
    scorers: list[dict[str, Any]] = Field(min_length=1, max_length=20)


class EvalRun(Record, table=True):
    """One evaluation run: what it evaluates, with which scorers, and how it went."""

    __tablename__ = "retrain_eval_run"

    project_id: uuid.UUID = Column(foreign_key=_PROJECT_FK, index=True)
    dataset_version_id: uuid.UUID = Column(
        foreign_key="retrain_eval_dataset_version.id", index=True
    )
    model_version_id: uuid.UUID = Column(foreign_key="lineage_model_version.id", index=True)
    llm_deployment_id: uuid.UUID = Column(foreign_key="retrain_llm_deployment.id")
    label: str = Column(sa_column=sa.Column(sa.String(128), nullable=False))
    overrides: dict[str, Any] | None = Column(
        default=None, sa_column=sa.Column(sa.JSON(none_as_null=True))
    )
    scorers: list[dict[str, Any]] = Column(sa_column=sa.Column(sa.JSON(), nullable=False))
    state: str = Column(
        default=EvalRunState.QUEUED, sa_column=sa.Column(sa.String(16), nullable=False)
    )
    job_id: uuid.UUID | None = Column(default=None, foreign_key="lineage_runtime_job.id")
    figures: dict[str, Any] | None = Column(
        default=None, sa_column=sa.Column(sa.JSON(none_as_null=True))
    )
    error: str = Column(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    requested_by: uuid.UUID | None = Column(default=None)
    requested_by_name: str = Column(default="", sa_column=sa.Column(sa.String(200), nullable=False))
    started_at: datetime | None = Column(default=None, sa_column=sa.Column(AwareDateTime()))
    finished_at: datetime | None = Column(default=None, sa_column=sa.Column(AwareDateTime()))

    @property
    def run_state(self) -> EvalRunState:
        """Return the state as its enum."""
        return EvalRunState(self.state)


class EvalResult(Record, table=True):
    """One record's outcome in a run: the answer, what it cost, and each scorer's verdict."""

    __tablename__ = "retrain_eval_result"
    __table_args__ = (sa.UniqueConstraint("run_id", "position"),)

    project_id: uuid.UUID = Column(foreign_key=_PROJECT_FK, index=True)
    run_id: uuid.UUID = Column(foreign_key="retrain_eval_run.id", index=True)
    record_id: uuid.UUID = Column(foreign_key="retrain_eval_record.id")
    position: int = Column(sa_column=sa.Column(sa.Integer(), nullable=False))
    response: str | None = Column(default=None, sa_column=sa.Column(sa.Text()))
    error: str | None = Column(default=None, sa_column=sa.Column(sa.Text()))
    latency_ms: float | None = Column(default=None, sa_column=sa.Column(sa.Float()))
    input_tokens: int | None = Column(default=None, sa_column=sa.Column(sa.BigInteger()))
    output_tokens: int | None = Column(default=None, sa_column=sa.Column(sa.BigInteger()))
    cost_nano_usd: int | None = Column(default=None, sa_column=sa.Column(sa.BigInteger()))
    trace_id: str | None = Column(default=None, sa_column=sa.Column(sa.String(32)))
    scores: dict[str, Any] = Column(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False)
    )


def stored_scorers(run: EvalRun) -> list[ScorerSpec]:
    """Return the run's scorer specs, parsed (they were validated when the run was requested)."""
    return parse_scorers(run.scorers)


def run_figures(run: EvalRun) -> RunFigures | None:
    """Return the run's stored figures, or ``None`` before it finished."""
    return None if run.figures is None else RunFigures.from_dict(run.figures)


def _dataset_version(
    session: Session, dataset: EvalDataset, number: int | None
) -> EvalDatasetVersion:
    if number is not None:
        return get_version(session=session, dataset=dataset, version=number)
    versions = list_versions(session=session, dataset=dataset)
    if not versions:
        raise InvalidInput(
            f"dataset {dataset.name!r} has no version yet; add records first",
            field="dataset_version",
        )
    return versions[0]


def request_eval_run(
    *,
    session: Session,
    project_id: uuid.UUID,
    spec: EvalRunCreate,
    model_version_id: uuid.UUID,
    prompt_label: str,
    llm_deployment_id: uuid.UUID,
    requested_by: uuid.UUID | None,
    requested_by_name: str,
) -> EvalRun:
    """Freeze the dataset version, store the run and queue it for the worker.

    The caller resolves the prompt version and the LLM deployment in the project first.

    Raises:
        NotFound: The dataset or its version does not exist.
        InvalidInput: A scorer spec is invalid (``scorers[i]…``), or the version is empty.
    """
    scorers = parse_scorers(spec.scorers)
    dataset = get_dataset(session=session, project_id=project_id, name=spec.dataset)
    version = _dataset_version(session, dataset, spec.dataset_version)
    freeze_version(session=session, version=version)
    overrides = spec.overrides.model_dump(exclude_none=True) if spec.overrides is not None else None
    label = spec.label or (
        prompt_label
        if not overrides
        else f"{prompt_label} ({', '.join(f'{k}={v}' for k, v in sorted(overrides.items()))})"
    )
    run = EvalRun(
        project_id=project_id,
        dataset_version_id=version.id,
        model_version_id=model_version_id,
        llm_deployment_id=llm_deployment_id,
        label=label[:128],
        overrides=overrides or None,
        scorers=[s.model_dump(mode="json", exclude_none=True) for s in scorers],
        requested_by=requested_by,
        requested_by_name=requested_by_name,
    )
    session.add(run)
    session.flush()
    job = enqueue(
        session=session,
        project_id=project_id,
        kind=EVAL_RUN,
        payload={"run_id": str(run.id)},
        max_attempts=2,
    )
    run.job_id = job.id
    session.add(run)
    session.flush()
    record_eval_lineage(session=session, run=run, event_type="START")
    return run


def record_eval_lineage(*, session: Session, run: EvalRun, event_type: EventType) -> Run:
    """Record ``run`` in lineage: dataset version → run (in ``event_type``) → prompt version.

    Replaying it changes nothing but the run's state (events and edges are idempotent).
    """
    version = session.get(EvalDatasetVersion, run.dataset_version_id)
    dataset = session.get(EvalDataset, version.dataset_id) if version is not None else None
    prompt = session.get(ModelVersion, run.model_version_id)
    if version is None or dataset is None or prompt is None:
        raise LookupError(f"evaluation run {run.id} lost its dataset version or prompt version")
    emit(
        session=session,
        project_id=run.project_id,
        event=run_event(
            event_type=event_type,
            event_time=utcnow(),
            run_id=run.id,
            job_namespace=_LINEAGE_NAMESPACE,
            job_name=f"evaluation/{prompt.name}",
            inputs=[
                DatasetRef(
                    _LINEAGE_NAMESPACE, f"evaluation/{dataset.name}", version=str(version.version)
                )
            ],
        ),
    )
    lineage_run = session.exec(
        select(Run).where(Run.project_id == run.project_id, Run.run_id == run.id)
    ).one()
    link(
        session=session,
        project_id=run.project_id,
        kind=EdgeKind.RUN_EVALUATES,
        source_id=lineage_run.id,
        target_id=prompt.id,
    )
    session.flush()
    return lineage_run


def get_eval_run(*, session: Session, project_id: uuid.UUID, run_id: uuid.UUID) -> EvalRun:
    """Return a run of the project, or raise :class:`NotFound`."""
    run = session.get(EvalRun, run_id)
    if run is None or run.project_id != project_id:
        raise NotFound(f"no evaluation run {run_id} in this project")
    return run


def list_eval_runs(
    *,
    session: Session,
    project_id: uuid.UUID,
    model_version_id: uuid.UUID | None = None,
    limit: int = 100,
) -> list[EvalRun]:
    """Return a project's runs, newest first (optionally of one prompt version)."""
    query = _runs_of(project_id, model_version_id)
    query = newest_first(query, EvalRun).limit(limit)
    return list(session.exec(query).all())


def _runs_of(project_id: uuid.UUID, model_version_id: uuid.UUID | None) -> Any:
    query = select(EvalRun).where(EvalRun.project_id == project_id)
    if model_version_id is not None:
        query = query.where(EvalRun.model_version_id == model_version_id)
    return query


def page_eval_runs(
    *,
    session: Session,
    project_id: uuid.UUID,
    model_version_id: uuid.UUID | None = None,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[EvalRun]:
    """Return a page of a project's runs (of one prompt version), newest first.

    Raises:
        InvalidInput: ``limit`` outside 1..1000, or a cursor this API did not return.
    """
    return newest_first_page(
        session=session,
        query=_runs_of(project_id, model_version_id),
        record=EvalRun,
        limit=limit,
        cursor=cursor,
    )


def results_of(*, session: Session, run: EvalRun) -> list[EvalResult]:
    """Return a run's results in record order."""
    return list(
        session.exec(
            select(EvalResult).where(EvalResult.run_id == run.id).order_by(col(EvalResult.position))
        ).all()
    )


def page_results(
    *, session: Session, run: EvalRun, limit: int = DEFAULT_PAGE_SIZE, cursor: str | None = None
) -> Page[EvalResult]:
    """Return a page of a run's results in record order (one per record of its dataset).

    Raises:
        InvalidInput: ``limit`` outside 1..1000, or a cursor this API did not return.
    """
    return keyset_page(
        session=session,
        query=select(EvalResult).where(EvalResult.run_id == run.id),
        keys=[SortKey(col(EvalResult.position))],
        key_of=lambda r: (r.position,),
        limit=limit,
        cursor=cursor,
    )
