"""Claim, heartbeat and finish jobs; the handler registry; the worker loop.

Handler contract
----------------
A handler is a callable ``handler(context: JobContext) -> dict | None`` registered for one
:class:`~retrain.jobs.JobKind` in a :class:`HandlerRegistry`. It:

* reads its input from ``context.payload`` (JSON, written by whoever queued the job) and opens
  its own sessions on ``context.engine`` when it needs the store — the job row is not locked
  while it works;
* reports progress with ``context.progress(fraction, message)`` (``0.0`` to ``1.0``; committed at
  once so ``GET …/monitor-runs/{id}`` shows it) and writes log lines with ``context.log(text)``;
* returns a small JSON-serialisable dict (the job's ``result``; for a monitor run, its
  ``summary``) or ``None``;
* raises to fail: the job is retried after ``retry_delay * attempt`` until ``max_attempts`` is
  spent, then marked ``failed`` with the exception as the reason;
* must be idempotent per job: after a crash (``SIGKILL``, lost machine) the lease expires and the
  job runs again from the start, possibly on another worker.

Queue semantics
---------------
:func:`claim` takes the oldest available job in one transaction — ``SELECT … FOR UPDATE SKIP
LOCKED`` on PostgreSQL; on SQLite the store's ``BEGIN IMMEDIATE`` serialises claimers — and
first re-queues (or fails, once attempts are spent) running jobs whose lease expired. A worker
only claims kinds it has handlers for. Every state change of a ``monitor_run`` job is mirrored on
its :class:`~monitors.models.MonitorRun` in the same transaction.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.models import MonitorRun
from retrain.jobs import Job, JobKind, JobState

__all__ = [
    "Handler",
    "HandlerRegistry",
    "JobContext",
    "Worker",
    "claim",
    "complete",
    "fail",
    "heartbeat",
    "requeue_expired",
    "worker_name",
]

_log = logging.getLogger("warden.worker")
_MAX_LOG_CHARS = 1_000_000


def worker_name() -> str:
    """Return a name unique to this process, used as lease owner (host:pid:random)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def _line(message: str, now: datetime) -> str:
    return f"{now.isoformat(timespec='seconds')} {message}\n"


def _mirror(session: Session, job: Job) -> None:
    """Copy a monitor-run job's state onto its run row (same transaction)."""
    if job.kind != JobKind.MONITOR_RUN:
        return
    values: dict[str, Any] = {
        "state": job.state,
        "attempts": job.attempts,
        "progress": job.progress,
        "message": job.message,
        "error": job.error,
        "finished_at": job.finished_at,
    }
    if job.state == JobState.SUCCEEDED:
        values["summary"] = job.result
    if job.started_at is not None:
        values["started_at"] = job.started_at
    session.execute(sa.update(MonitorRun).where(col(MonitorRun.job_id) == job.id).values(**values))


def requeue_expired(*, session: Session, now: datetime | None = None) -> int:
    """Re-queue running jobs whose worker stopped heart-beating; fail those out of attempts.

    Returns:
        How many expired jobs were handled.
    """
    now = now or utcnow()
    query = (
        select(Job)
        .where(Job.state == JobState.RUNNING, col(Job.lease_expires_at) < now)
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
        _mirror(session, job)
    return len(expired)


def claim(
    *,
    session: Session,
    owner: str,
    lease: timedelta,
    kinds: Iterable[str] | None = None,
    now: datetime | None = None,
) -> Job | None:
    """Claim the oldest available job of ``kinds`` for ``owner``; ``None`` when nothing waits."""
    now = now or utcnow()
    requeue_expired(session=session, now=now)
    query = select(Job).where(Job.state == JobState.QUEUED, col(Job.available_at) <= now)
    if kinds is not None:
        query = query.where(col(Job.kind).in_(list(kinds)))
    query = (
        query.order_by(col(Job.available_at), col(Job.created_at))
        .limit(1)
        .with_for_update(skip_locked=True)
    )
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
    _mirror(session, job)
    return job


def _owned(job_id: uuid.UUID, owner: str) -> sa.ColumnElement[bool]:
    return sa.and_(
        col(Job.id) == job_id, col(Job.lease_owner) == owner, col(Job.state) == JobState.RUNNING
    )


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
        sa.update(Job)
        .where(_owned(job_id, owner))
        .values(heartbeat_at=now, lease_expires_at=now + lease)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _owned_job(session: Session, job_id: uuid.UUID, owner: str) -> Job | None:
    return session.exec(select(Job).where(_owned(job_id, owner)).with_for_update()).first()


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
    _mirror(session, job)
    return True


def fail(
    *,
    session: Session,
    job_id: uuid.UUID,
    owner: str,
    error: str,
    retry_delay: timedelta,
    now: datetime | None = None,
) -> JobState | None:
    """Record a failed attempt: re-queue with backoff, or fail for good when attempts are spent.

    Returns:
        The job's new state, or ``None`` if ``owner`` no longer holds the job.
    """
    now = now or utcnow()
    job = _owned_job(session, job_id, owner)
    if job is None:
        return None
    job.lease_owner = None
    job.lease_expires_at = None
    if job.attempts >= job.max_attempts:
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
    _mirror(session, job)
    return JobState(job.state)


@dataclass
class JobContext:
    """What a handler gets: the job's input and the means to report progress and logs.

    Attributes:
        job_id: The job being worked on.
        kind: Its kind.
        project_id: The project it belongs to.
        payload: Its input, as queued.
        attempt: Which attempt this is (1-based).
        engine: The store, for the handler's own sessions.
        owner: The lease owner (this worker).
        lease_lost: Set when another worker took the job over (this one stalled past its
            lease); a long handler may check it and stop early, its outcome is dropped anyway.
    """

    job_id: uuid.UUID
    kind: str
    project_id: uuid.UUID
    payload: dict[str, Any]
    attempt: int
    engine: Engine
    owner: str
    lease_lost: threading.Event = field(default_factory=threading.Event)

    def progress(self, fraction: float, message: str = "") -> None:
        """Record how far the work is (0.0 to 1.0) and what it is doing; visible at once."""
        fraction = min(1.0, max(0.0, float(fraction)))
        with session_scope(self.engine) as session:
            job = _owned_job(session, self.job_id, self.owner)
            if job is None:
                self.lease_lost.set()
                return
            job.progress = fraction
            job.message = message
            session.add(job)
            session.flush()
            _mirror(session, job)

    def log(self, message: str) -> None:
        """Append a line to the job's log (kept with the job, readable through the API)."""
        line = _line(message, utcnow())
        with session_scope(self.engine) as session:
            session.execute(
                sa.update(Job)
                .where(_owned(self.job_id, self.owner), sa.func.length(Job.logs) < _MAX_LOG_CHARS)
                .values(logs=col(Job.logs) + line)
            )


Handler = Callable[[JobContext], dict[str, Any] | None]


class HandlerRegistry:
    """Job kind → handler; a worker claims only the kinds registered here."""

    def __init__(self, handlers: dict[str, Handler] | None = None) -> None:
        self._handlers: dict[str, Handler] = dict(handlers or {})

    def register(self, kind: str, handler: Handler) -> None:
        """Handle jobs of ``kind`` with ``handler`` (replacing any earlier one)."""
        self._handlers[kind] = handler

    def handler_for(self, kind: str) -> Handler:
        """Return the handler of ``kind``.

        Raises:
            LookupError: No handler is registered for ``kind``.
        """
        try:
            return self._handlers[kind]
        except KeyError:
            raise LookupError(f"no handler registered for job kind {kind!r}") from None

    def kinds(self) -> list[str]:
        """Return the registered kinds, sorted."""
        return sorted(self._handlers)


@dataclass
class Worker:
    """The loop of ``warden worker``: claim, run with a heartbeat thread, record the outcome.

    Attributes:
        engine: The store.
        registry: The handlers; only their kinds are claimed.
        owner: This worker's lease-owner name.
        lease: How long a claim lasts without a heartbeat.
        heartbeat_every: How often the heartbeat thread renews the lease (well below ``lease``).
        poll_every: How long to sleep when the queue is empty.
        retry_delay: Backoff unit after a failed attempt (multiplied by the attempt number).
    """

    engine: Engine
    registry: HandlerRegistry
    owner: str = field(default_factory=worker_name)
    lease: timedelta = timedelta(seconds=30)
    heartbeat_every: timedelta = timedelta(seconds=10)
    poll_every: timedelta = timedelta(seconds=1)
    retry_delay: timedelta = timedelta(seconds=10)

    def run_once(self) -> bool:
        """Claim and run one job; return whether there was one."""
        with session_scope(self.engine) as session:
            job = claim(
                session=session, owner=self.owner, lease=self.lease, kinds=self.registry.kinds()
            )
            if job is None:
                return False
            context = JobContext(
                job_id=job.id,
                kind=job.kind,
                project_id=job.project_id,
                payload=dict(job.payload),
                attempt=job.attempts,
                engine=self.engine,
                owner=self.owner,
            )
        _log.info("job %s (%s) attempt %d started", context.job_id, context.kind, context.attempt)
        done = threading.Event()
        beat = threading.Thread(
            target=self._beat, args=(context, done), name=f"heartbeat-{job.id}", daemon=True
        )
        beat.start()
        try:
            result = self.registry.handler_for(context.kind)(context)
        except Exception as error:
            done.set()
            beat.join()
            trace = traceback.format_exc(limit=20)
            _log.warning("job %s attempt %d failed: %s", context.job_id, context.attempt, error)
            with session_scope(self.engine) as session:
                context_log = _line(trace.rstrip(), utcnow())
                session.execute(
                    sa.update(Job)
                    .where(_owned(context.job_id, self.owner))
                    .values(logs=col(Job.logs) + context_log)
                )
                fail(
                    session=session,
                    job_id=context.job_id,
                    owner=self.owner,
                    error=f"{type(error).__name__}: {error}",
                    retry_delay=self.retry_delay,
                )
            return True
        done.set()
        beat.join()
        with session_scope(self.engine) as session:
            if not complete(
                session=session, job_id=context.job_id, owner=self.owner, result=result
            ):
                _log.warning("job %s finished after its lease was lost; outcome dropped", job.id)
        return True

    def _beat(self, context: JobContext, done: threading.Event) -> None:
        while not done.wait(self.heartbeat_every.total_seconds()):
            try:
                with session_scope(self.engine) as session:
                    alive = heartbeat(
                        session=session, job_id=context.job_id, owner=self.owner, lease=self.lease
                    )
            except sa.exc.SQLAlchemyError:
                _log.exception("heartbeat for job %s failed; will retry", context.job_id)
                continue
            if not alive:
                context.lease_lost.set()
                _log.warning("lease on job %s was lost", context.job_id)
                return

    def run(self, stop: threading.Event) -> None:
        """Work until ``stop`` is set; a job in progress is finished first."""
        _log.info("worker %s started; handles %s", self.owner, ", ".join(self.registry.kinds()))
        while not stop.is_set():
            try:
                worked = self.run_once()
            except sa.exc.SQLAlchemyError:
                _log.exception("worker %s could not reach the store; retrying", self.owner)
                worked = False
            if not worked:
                stop.wait(self.poll_every.total_seconds())
        _log.info("worker %s stopped", self.owner)
