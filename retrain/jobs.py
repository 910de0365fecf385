"""The work queue: one ``retrain_job`` row per unit of background work, and how work is queued.

Jobs are monitor runs, pipeline runs, report renders and local explanations. A job moves
``queued → running → succeeded | failed`` (or ``queued → cancelled``); a running job whose worker
stops heart-beating goes back to ``queued`` until ``max_attempts`` is spent, then ``failed`` with
the reason. Claiming, heart-beating and finishing live in :mod:`retrain.worker`.

:func:`queue_monitor_run` is the one place a monitor slot becomes a run row plus its job, in the
caller's transaction, so a slot never exists without the work that executes it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, Session, col, func, select

from lineage.errors import Conflict, NotFound
from lineage.tables import AwareDateTime, Record, utcnow
from monitors.models import Monitor, MonitorRun, RunTrigger
from monitors.schedules import record_run

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "Job",
    "JobKind",
    "JobState",
    "cancel_job",
    "enqueue",
    "get_job",
    "queue_depth",
    "queue_monitor_run",
]

DEFAULT_MAX_ATTEMPTS = 3


class JobKind(StrEnum):
    """The kinds of background work; each has one handler in the worker's registry."""

    EXPLANATION = "explanation"
    MONITOR_RUN = "monitor_run"
    PIPELINE_RUN = "pipeline_run"
    REPORT_RENDER = "report_render"


class JobState(StrEnum):
    """Where a job is; ``succeeded``, ``failed`` and ``cancelled`` are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Job(Record, table=True):
    """One unit of background work, claimed by at most one worker at a time through a lease."""

    __tablename__ = "retrain_job"
    __table_args__ = (sa.Index("ix_retrain_job_state_available_at", "state", "available_at"),)

    project_id: uuid.UUID = Field(foreign_key="lineage_project.id", index=True, nullable=False)
    kind: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    payload: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False)
    )
    state: str = Field(default=JobState.QUEUED, sa_column=sa.Column(sa.String(16), nullable=False))
    attempts: int = Field(default=0, nullable=False)
    max_attempts: int = Field(default=DEFAULT_MAX_ATTEMPTS, nullable=False)
    available_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime, nullable=False)
    lease_owner: str | None = Field(default=None, sa_column=sa.Column(sa.String(200)))
    lease_expires_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    heartbeat_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    started_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    finished_at: datetime | None = Field(default=None, sa_type=AwareDateTime)
    progress: float = Field(default=0.0, nullable=False)
    message: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    logs: str = Field(default="", sa_column=sa.Column(sa.Text, nullable=False))
    result: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))
    error: str | None = Field(default=None, sa_column=sa.Column(sa.Text))


def enqueue(
    *,
    session: Session,
    project_id: uuid.UUID,
    kind: JobKind,
    payload: dict[str, Any],
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    available_at: datetime | None = None,
) -> Job:
    """Queue a job; it commits with the caller's transaction, so it exists iff the action does."""
    job = Job(
        project_id=project_id,
        kind=kind,
        payload=payload,
        max_attempts=max(1, max_attempts),
        available_at=available_at or utcnow(),
    )
    session.add(job)
    session.flush()
    return job


def get_job(*, session: Session, job_id: uuid.UUID, project_id: uuid.UUID | None = None) -> Job:
    """Return a job (of ``project_id`` when given), or raise :class:`NotFound`."""
    job = session.get(Job, job_id)
    if job is None or (project_id is not None and job.project_id != project_id):
        raise NotFound(f"no job {job_id}")
    return job


def cancel_job(*, session: Session, job_id: uuid.UUID, project_id: uuid.UUID) -> Job:
    """Cancel a job that no worker has claimed yet.

    Raises:
        Conflict: The job is running or finished; running work is not interrupted.
    """
    job = get_job(session=session, job_id=job_id, project_id=project_id)
    if job.state != JobState.QUEUED:
        raise Conflict(f"job {job_id} is {job.state}; only queued jobs can be cancelled")
    job.state = JobState.CANCELLED
    job.finished_at = utcnow()
    session.add(job)
    if job.kind == JobKind.MONITOR_RUN:
        session.execute(
            sa.update(MonitorRun)
            .where(col(MonitorRun.job_id) == job.id)
            .values(state=JobState.CANCELLED, finished_at=job.finished_at)
        )
    session.flush()
    return job


def queue_depth(*, session: Session) -> dict[str, int]:
    """Return how many jobs wait, per kind (for ``/metrics`` and the dashboard)."""
    rows = session.exec(
        select(Job.kind, func.count()).where(Job.state == JobState.QUEUED).group_by(Job.kind)
    ).all()
    return {kind: int(count) for kind, count in rows}


def queue_monitor_run(
    *,
    session: Session,
    monitor: Monitor,
    scheduled_for: datetime,
    trigger: RunTrigger,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> MonitorRun | None:
    """Insert the run for a slot and queue its job; return ``None`` if the slot exists already."""
    run = record_run(session=session, monitor=monitor, scheduled_for=scheduled_for, trigger=trigger)
    if run is None:
        return None
    job = enqueue(
        session=session,
        project_id=monitor.project_id,
        kind=JobKind.MONITOR_RUN,
        payload={"monitor_run_id": str(run.id), "monitor_id": str(monitor.id)},
        max_attempts=max_attempts,
    )
    run.job_id = job.id
    session.add(run)
    session.flush()
    return run
