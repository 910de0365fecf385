"""The worker loop of ``warden worker``: claim a job, run its handler, record the outcome.

The loop claims only the kinds its :class:`~lineage.runtime.handlers.HandlerRegistry` holds, its
background kinds last
(queue semantics in :mod:`lineage.runtime.queue`, the handler contract in
:mod:`lineage.runtime.handlers`). While a handler works, a thread renews the job's lease; a
handler that raises fails the attempt (retried with backoff; at once for :class:`Permanent`),
with its traceback in the job's log.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import traceback
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from lineage.runtime.handlers import HandlerRegistry, JobContext, Permanent
from lineage.runtime.presence import beat_worker
from lineage.runtime.queue import append_log, claim, complete, fail, heartbeat
from lineage.runtime.wakeup import JobAlarm
from lineage.store import session_scope
from lineage.tables import utcnow

__all__ = ["Worker", "worker_name"]

_log = logging.getLogger("warden.worker")


def worker_name() -> str:
    """Return a name unique to this process, used as lease owner (host:pid:random)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass
class Worker:
    """The loop of ``warden worker``: claim, run with a heartbeat thread, record the outcome.

    Attributes:
        engine: The store.
        registry: The handlers; only their kinds are claimed.
        owner: This worker's lease-owner name.
        lease: How long a claim lasts without a heartbeat.
        heartbeat_every: How often the heartbeat thread renews the lease (well below ``lease``).
        poll_every: How long to sleep when the queue is empty (a job queued meanwhile wakes it).
        retry_delay: Backoff unit after a failed attempt (multiplied by the attempt number).
    """

    engine: Engine
    registry: HandlerRegistry
    owner: str = field(default_factory=worker_name)
    lease: timedelta = timedelta(seconds=30)
    heartbeat_every: timedelta = timedelta(seconds=10)
    poll_every: timedelta = timedelta(seconds=1)
    retry_delay: timedelta = timedelta(seconds=10)
    _last_beat: datetime | None = field(default=None, init=False, repr=False)

    def run_once(self) -> bool:
        """Claim and run one job; return whether there was one (beating first when due)."""
        with session_scope(self.engine) as session:
            now = utcnow()
            if self._last_beat is None or now - self._last_beat >= self.heartbeat_every:
                beat_worker(session=session, owner=self.owner, kinds=self.registry.kinds(), now=now)
                self._last_beat = now
            job = claim(
                session=session,
                owner=self.owner,
                lease=self.lease,
                kinds=self.registry.kinds(),
                background=self.registry.background_kinds(),
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
                append_log(
                    session=session, job_id=context.job_id, owner=self.owner, message=trace.rstrip()
                )
                permanent = isinstance(error, Permanent)
                cause = error.__cause__ if permanent and error.__cause__ is not None else error
                fail(
                    session=session,
                    job_id=context.job_id,
                    owner=self.owner,
                    error=f"{type(cause).__name__}: {error}",
                    retry_delay=self.retry_delay,
                    permanent=permanent,
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
                    beat_worker(session=session, owner=self.owner, kinds=self.registry.kinds())
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
        with JobAlarm(self.engine) as alarm:
            while not stop.is_set():
                alarm.clear()  # a job queued from here on wakes the wait below
                try:
                    worked = self.run_once()
                except sa.exc.SQLAlchemyError:
                    _log.exception("worker %s could not reach the store; retrying", self.owner)
                    worked = False
                if not worked:
                    alarm.wait(stop, self.poll_every)
        _log.info("worker %s stopped", self.owner)
