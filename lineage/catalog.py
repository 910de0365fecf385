"""Browsing the lineage store: datasets and their versions, jobs and their runs, one run's I/O.

Read-only lists for the dashboard, reports and the API, always scoped to one project and
ordered the same way every time (newest first for versions and runs, by name otherwise).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlmodel import Session, col, select

from lineage.errors import NotFound
from lineage.models import Dataset, DatasetVersion, Edge, EdgeKind, Job, ModelVersion, Run
from lineage.pages import (
    DEFAULT_PAGE_SIZE,
    Page,
    newest_first,
    newest_first_page,
)

__all__ = [
    "DatasetSummary",
    "JobSummary",
    "RunDetail",
    "get_run",
    "list_dataset_versions",
    "list_datasets",
    "list_jobs",
    "list_runs",
    "page_dataset_versions",
]


@dataclass(frozen=True, slots=True)
class DatasetSummary:
    """A dataset with its newest version and how many versions it has."""

    dataset: Dataset
    latest: DatasetVersion | None
    versions: int


@dataclass(frozen=True, slots=True)
class JobSummary:
    """A job with its most recent run (by creation) and how many runs it has."""

    job: Job
    latest_run: Run | None
    runs: int


@dataclass(frozen=True, slots=True)
class RunDetail:
    """One run, its job, the dataset versions it read and wrote and the model versions it made.

    Attributes:
        run: The run.
        job: Its job.
        inputs: ``(dataset, version)`` pairs the run consumed.
        outputs: ``(dataset, version)`` pairs the run produced.
        model_versions: Model versions registered with this run as their source.
    """

    run: Run
    job: Job
    inputs: list[tuple[Dataset, DatasetVersion]]
    outputs: list[tuple[Dataset, DatasetVersion]]
    model_versions: list[ModelVersion]


def list_datasets(*, session: Session, project_id: uuid.UUID) -> list[DatasetSummary]:
    """Return every dataset of the project by namespace and name, with its newest version."""
    datasets = session.exec(
        select(Dataset)
        .where(Dataset.project_id == project_id)
        .order_by(sa.asc(col(Dataset.namespace)), sa.asc(col(Dataset.name)))
    ).all()
    versions = session.exec(
        select(DatasetVersion)
        .where(DatasetVersion.project_id == project_id)
        .order_by(sa.asc(col(DatasetVersion.created_at)))
    ).all()
    latest: dict[uuid.UUID, DatasetVersion] = {}
    counts: dict[uuid.UUID, int] = {}
    for version in versions:
        latest[version.dataset_id] = version
        counts[version.dataset_id] = counts.get(version.dataset_id, 0) + 1
    return [DatasetSummary(d, latest.get(d.id), counts.get(d.id, 0)) for d in datasets]


def list_dataset_versions(
    *, session: Session, project_id: uuid.UUID, namespace: str, name: str
) -> list[DatasetVersion]:
    """Return the versions of one dataset, newest first.

    Raises:
        NotFound: No such dataset in the project.
    """
    dataset = _dataset(session, project_id, namespace, name)
    query = select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id)
    return list(session.exec(newest_first(query, DatasetVersion)).all())


def _dataset(session: Session, project_id: uuid.UUID, namespace: str, name: str) -> Dataset:
    dataset = session.exec(
        select(Dataset).where(
            Dataset.project_id == project_id, Dataset.namespace == namespace, Dataset.name == name
        )
    ).first()
    if dataset is None:
        raise NotFound(f"no dataset {name!r} in namespace {namespace!r} in this project")
    return dataset


def page_dataset_versions(
    *,
    session: Session,
    project_id: uuid.UUID,
    namespace: str,
    name: str,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> tuple[Dataset, Page[DatasetVersion]]:
    """Return a dataset and a page of its versions, newest first (one per run that wrote it).

    Raises:
        NotFound: No such dataset in the project.
        InvalidInput: ``limit`` outside 1..1000, or a cursor this API did not return.
    """
    dataset = _dataset(session, project_id, namespace, name)
    return dataset, newest_first_page(
        session=session,
        query=select(DatasetVersion).where(DatasetVersion.dataset_id == dataset.id),
        record=DatasetVersion,
        limit=limit,
        cursor=cursor,
    )


def list_jobs(*, session: Session, project_id: uuid.UUID) -> list[JobSummary]:
    """Return every job of the project by namespace and name, with its most recent run."""
    jobs = session.exec(
        select(Job)
        .where(Job.project_id == project_id)
        .order_by(sa.asc(col(Job.namespace)), sa.asc(col(Job.name)))
    ).all()
    runs = session.exec(
        select(Run).where(Run.project_id == project_id).order_by(sa.asc(col(Run.created_at)))
    ).all()
    latest: dict[uuid.UUID, Run] = {}
    counts: dict[uuid.UUID, int] = {}
    for run in runs:
        latest[run.job_id] = run
        counts[run.job_id] = counts.get(run.job_id, 0) + 1
    return [JobSummary(j, latest.get(j.id), counts.get(j.id, 0)) for j in jobs]


def list_runs(
    *, session: Session, project_id: uuid.UUID, job_id: uuid.UUID | None = None, limit: int = 100
) -> list[Run]:
    """Return the project's runs (of one job when given), newest first, at most ``limit``."""
    query = select(Run).where(Run.project_id == project_id)
    if job_id is not None:
        query = query.where(Run.job_id == job_id)
    query = query.order_by(sa.desc(col(Run.created_at))).limit(limit)
    return list(session.exec(query).all())


def _io(session: Session, run: Run, kind: EdgeKind) -> list[tuple[Dataset, DatasetVersion]]:
    consumed = kind is EdgeKind.RUN_INPUT
    run_end, version_end = (
        (col(Edge.target_id), col(Edge.source_id))
        if consumed
        else (col(Edge.source_id), col(Edge.target_id))
    )
    rows = session.exec(
        select(Dataset, DatasetVersion)
        .join(DatasetVersion, col(DatasetVersion.dataset_id) == col(Dataset.id))
        .join(Edge, version_end == col(DatasetVersion.id))
        .where(Edge.kind == kind, run_end == run.id)
        .order_by(sa.asc(col(Dataset.namespace)), sa.asc(col(Dataset.name)))
    ).all()
    return [(dataset, version) for dataset, version in rows]


def get_run(*, session: Session, project_id: uuid.UUID, run_id: uuid.UUID) -> RunDetail:
    """Return a run by its OpenLineage ``runId``, with what it read, wrote and trained.

    Raises:
        NotFound: No such run in the project.
    """
    run = session.exec(
        select(Run).where(Run.project_id == project_id, Run.run_id == run_id)
    ).first()
    if run is None:
        raise NotFound(f"no run {run_id} in this project; runs appear when events report them")
    job = session.get(Job, run.job_id)
    assert job is not None  # a foreign key guarantees it
    models = session.exec(
        select(ModelVersion)
        .where(ModelVersion.source_run_id == run.id)
        .order_by(sa.asc(col(ModelVersion.created_at)))
    ).all()
    return RunDetail(
        run=run,
        job=job,
        inputs=_io(session, run, EdgeKind.RUN_INPUT),
        outputs=_io(session, run, EdgeKind.RUN_OUTPUT),
        model_versions=list(models),
    )
