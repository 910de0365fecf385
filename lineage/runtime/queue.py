"""The durable job queue: one ``lineage_runtime_job`` row per unit of background work.

A job moves ``queued → running → succeeded | failed`` (or ``queued → cancelled``); a running job
whose worker stops heart-beating goes back to ``queued`` until ``max_attempts`` is spent, then
``failed`` with the reason. A job's ``kind`` is a string its user declares as a constant in its
own package; the queue knows no kind and none of the work it holds. A user that keeps its own row
for the work (a monitor run, a pipeline run) points at the job with a ``job_id`` and reads the
job's state from here: the state is stored once, on the job.

Claiming takes the oldest available job (jobs of ``background`` kinds only when no other job is
available) in one transaction — ``SELECT … FOR UPDATE SKIP LOCKED``
on PostgreSQL; on SQLite the store's ``BEGIN IMMEDIATE`` serialises claimers — and first
re-queues (or fails, once attempts are spent) running jobs whose lease expired. Only the lease
owner may report progress, heartbeat or finish a job, so a worker that stalled past its lease
cannot overwrite its successor's outcome. Queueing wakes idle workers when the transaction
commits (:mod:`lineage.runtime.wakeup`).
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field, Session, col, func, select

from lineage.errors import Conflict, NotFound
from lineage.runtime.wakeup import announce_job
from lineage.tables import AwareDateTime, Record, utcnow

__all__ = [
    "DEFAULT_MAX_ATTEMPTS",
    "JobState",
    "RuntimeJob",
    "append_log",
    "cancel_job",
    "claim",
    "complete",
    "enqueue",
    "fail",
    "get_job",
    "heartbeat",
    "queue_depth",
    "report_progress",
    "requeue_expired",
]

DEFAULT_MAX_ATTEMPTS = 3
_MAX_LOG_CHARS = 1_000_000


class JobState(StrEnum):
    """Where a job is; ``succeeded``, ``failed`` and ``cancelled`` are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RuntimeJob(Record, table=True):
    """One unit of background work, claimed by at most one worker at a time through a lease."""

    __tablename__ = "lineage_runtime_job"
    __table_args__ = (
        sa.Index("ix_lineage_runtime_job_state_available_at", "state", "available_at"),
    )

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


def _line(message: str, now: datetime) -> str:
    return f"{now.isoformat(timespec='seconds')} {message}\n"


def enqueue(
    *,
    session: Session,
    project_id: uuid.UUID,
    kind: str,
    payload: dict[str, Any],
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
    available_at: datetime | None = None,
) -> RuntimeJob:
    """Queue a job; it commits with the caller's transaction, so it exists iff the action does."""
    job = RuntimeJob(
        project_id=project_id,
        kind=kind,
        payload=payload,
        max_attempts=max(1, max_attempts),
        available_at=available_at or utcnow(),
    )
    session.add(job)
    session.flush()
    announce_job(session=session)
    return job


def get_job(
    *, session: Session, job_id: uuid.UUID, project_id: uuid.UUID | None = None
) -> RuntimeJob:
    """Return a job (of ``project_id`` when given), or raise :class:`NotFound`."""
    job = session.get(RuntimeJob, job_id)
    if job is None or (project_id is not None and job.project_id != project_id):
        raise NotFound(f"no job {job_id}")
    return job


def cancel_job(*, session: Session, job_id: uuid.UUID, project_id: uuid.UUID) -> RuntimeJob:
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
    session.flush()
    return job


def queue_depth(*, session: Session) -> dict[str, int]:
    """Return how many jobs wait, per kind (for ``/metrics`` and the dashboard)."""
    rows = session.exec(
        select(RuntimeJob.kind, func.count())
        .where(RuntimeJob.state == JobState.QUEUED)
        .group_by(RuntimeJob.kind)
    ).all()
    return {kind: int(count) for kind, count in rows}


def requeue_expired(*, session: Session, now: datetime | None = None) -> int:
    """Re-queue running jobs whose worker stopped heart-beating; fail those out of attempts.

    Returns:
        How many expired jobs were handled.
    """
    now = now or utcnow()
    query = (
        select(RuntimeJob)
        .where(RuntimeJob.state == JobState.RUNNING, col(RuntimeJob.lease_expires_at) < now)
        .with_for_update(skip_locked=True)
    )
    expired = list(session.exec(query).all())
    for job in expired:
        reason = (
            f"worker {job.lease_owner} stopped heart-beating during attempt {job.attempts} "
            f"(lease expired at {job.lease_expires_at:%Y-%m-%dT%H:%M:%S}Z)"
        )
        if job.attempts >= job.max_attempts:
            job.state = JobState.FAILED
            job.finished_at = now
            job.error = f"{reason}; gave up after {job.attempts} of {job.max_attempts} attempts"
        else:
            job.state = JobState.QUEUED
            job.available_at = now
            job.message = "re-queued: the previous worker was lost"
        job.logs += _line(reason, now)
        job.lease_owner = None
        job.lease_expires_at = None
        session.add(job)
    session.flush()
    return len(expired)


def claim(
    *,
    session: Session,
    owner: str,
    lease: timedelta,
    kinds: Iterable[str] | None = None,
    background: Collection[str] = (),
    job_id: uuid.UUID | None = None,
    now: datetime | None = None,
) -> RuntimeJob | None:
    """Claim the oldest available job of ``kinds`` for ``owner``; ``None`` when nothing waits.

    Jobs of ``background`` kinds come after every other available job, however old they are.
    ``job_id`` claims that one job only (a process running one piece of work in-line).
    """
    now = now or utcnow()
    requeue_expired(session=session, now=now)
    query = select(RuntimeJob).where(
        RuntimeJob.state == JobState.QUEUED, col(RuntimeJob.available_at) <= now
    )
    if kinds is not None:
        query = query.where(col(RuntimeJob.kind).in_(list(kinds)))
    if job_id is not None:
        query = query.where(col(RuntimeJob.id) == job_id)
    order: list[Any] = [col(RuntimeJob.available_at), col(RuntimeJob.created_at)]
    if background:
        order.insert(0, sa.case((col(RuntimeJob.kind).in_(list(background)), 1), else_=0))
    query = query.order_by(*order).limit(1).with_for_update(skip_locked=True)
    job = session.exec(query).first()
    if job is None:
        return None
    job.state = JobState.RUNNING
    job.attempts += 1
    job.lease_owner = owner
    job.lease_expires_at = now + lease
    job.heartbeat_at = now
    job.started_at = now
    job.finished_at = None
    job.error = None
    job.progress = 0.0
    job.message = f"attempt {job.attempts} of {job.max_attempts} started"
    job.logs += _line(f"claimed by {owner} (attempt {job.attempts})", now)
    session.add(job)
    session.flush()
    return job


def _owned(job_id: uuid.UUID, owner: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        col(RuntimeJob.id) == job_id,
        col(RuntimeJob.lease_owner) == owner,
        col(RuntimeJob.state) == JobState.RUNNING,
    )


def _owned_job(session: Session, job_id: uuid.UUID, owner: str) -> RuntimeJob | None:
    return session.exec(select(RuntimeJob).where(_owned(job_id, owner)).with_for_update()).first()


def heartbeat(
    *,
    session: Session,
    job_id: uuid.UUID,
    owner: str,
    lease: timedelta,
    now: datetime | None = None,
) -> bool:
    """Extend ``owner``'s lease on a running job; ``False`` when the lease was lost."""
    now = now or utcnow()
    result = session.execute(
        sa.update(RuntimeJob)
        .where(_owned(job_id, owner))
        .values(heartbeat_at=now, lease_expires_at=now + lease)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def report_progress(
    *, session: Session, job_id: uuid.UUID, owner: str, fraction: float, message: str
) -> bool:
    """Record how far ``owner``'s running job is (0.0 to 1.0); ``False`` when the lease was lost."""
    job = _owned_job(session, job_id, owner)
    if job is None:
        return False
    job.progress = min(1.0, max(0.0, float(fraction)))
    job.message = message
    session.add(job)
    session.flush()
    return True


def append_log(
    *, session: Session, job_id: uuid.UUID, owner: str, message: str, now: datetime | None = None
) -> None:
    """Append a line to ``owner``'s running job's log (capped; nothing when the lease was lost)."""
    line = _line(message, now or utcnow())
    session.execute(
        sa.update(RuntimeJob)
        .where(_owned(job_id, owner), sa.func.length(RuntimeJob.logs) < _MAX_LOG_CHARS)
        .values(logs=col(RuntimeJob.logs) + line)
    )


def complete(
    *,
    session: Session,
    job_id: uuid.UUID,
    owner: str,
    result: dict[str, Any] | None,
    now: datetime | None = None,
) -> bool:
    """Record success; ``False`` (and nothing written) if ``owner`` no longer holds the job."""
    now = now or utcnow()
    job = _owned_job(session, job_id, owner)
    if job is None:
        return False
    job.state = JobState.SUCCEEDED
    job.result = result
    job.progress = 1.0
    job.finished_at = now
    job.lease_owner = None
    job.lease_expires_at = None
    job.logs += _line("succeeded", now)
    session.add(job)
    session.flush()
    return True


def fail(
    *,
    session: Session,
    job_id: uuid.UUID,
    owner: str,
    error: str,
    retry_delay: timedelta,
    permanent: bool = False,
    now: datetime | None = None,
) -> JobState | None:
    """Record a failed attempt: re-queue with backoff, or fail for good.

    A job fails for good when its attempts are spent or the failure is ``permanent``
    (retrying cannot help).

    Returns:
        The job's new state, or ``None`` if ``owner`` no longer holds the job.
    """
    now = now or utcnow()
    job = _owned_job(session, job_id, owner)
    if job is None:
        return None
    job.lease_owner = None
    job.lease_expires_at = None
    if permanent:
        job.state = JobState.FAILED
        job.finished_at = now
        job.error = error
        job.message = "failed; retrying cannot help"
        job.logs += _line(f"failed for good (not retried): {error}", now)
    elif job.attempts >= job.max_attempts:
        job.state = JobState.FAILED
        job.finished_at = now
        job.error = f"{error} (gave up after {job.attempts} of {job.max_attempts} attempts)"
        job.logs += _line(f"failed: {error}", now)
    else:
        job.state = JobState.QUEUED
        job.available_at = now + retry_delay * job.attempts
        job.message = f"attempt {job.attempts} failed; retrying"
        job.error = error
        job.logs += _line(f"attempt {job.attempts} failed, will retry: {error}", now)
    session.add(job)
    session.flush()
    return JobState(job.state)
