"""The scheduler process: one leader turns due monitor slots into runs and queued jobs.

``warden scheduler`` (and a thread of ``warden up``) runs :meth:`Scheduler.run`:

1. Every ``scheduler_heartbeat_seconds`` it takes or renews the lease ``"scheduler"``
   (:mod:`lineage.runtime.lease`). Standby processes keep trying; one takes over within
   ``scheduler_lease_seconds`` + one heartbeat after the leader stops renewing.
2. While leading, an APScheduler 3 ``BackgroundScheduler`` with an in-memory job store holds one
   job per unpaused monitor, built from the monitor table with the monitor's own trigger — no
   pickled job store. A sync job re-reads the table every ``scheduler_sync_seconds``, so created,
   changed, paused and resumed monitors take effect, and on each sync every monitor is checked
   for slots that are due (this is also how slots missed during downtime are caught up).
3. Each sync also queues the daily retention purge of every project with traces
   (:func:`monitors.traces.jobs.queue_due_purges`: one a day per project, caught up after
   downtime) and a budget check of every project with budgets
   (:func:`retrain.budget_checks.queue_due_budget_checks`: at most one a minute per project).
4. A fired job (:meth:`Scheduler.fire`) re-checks the lease in the transaction that writes,
   plans the due slots with :func:`monitors.schedules.plan_due_slots` under the configured
   misfire rule, and inserts each slot with :func:`monitors.run_jobs.queue_monitor_run`; a slot
   that exists already (unique violation) is skipped, so a slot runs once even when two
   schedulers overlap.

Losing the lease stops APScheduler at once; a clean stop releases the lease.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from sqlalchemy.exc import SQLAlchemyError

from api.settings import Settings
from lineage import session_scope, utcnow
from lineage.runtime.lease import holds_lease, release_lease, try_acquire_lease
from lineage.runtime.worker import worker_name
from monitors.models import Monitor
from monitors.run_jobs import queue_monitor_run
from monitors.schedules import (
    MisfirePolicy,
    active_monitors,
    mark_scheduled_through,
    plan_due_slots,
    schedule_fingerprint,
    trigger_for,
)
from monitors.traces.jobs import queue_due_purges
from retrain.budget_checks import queue_due_budget_checks

if TYPE_CHECKING:
    from apscheduler.schedulers.background import BackgroundScheduler

__all__ = ["LEASE_NAME", "Scheduler"]

LEASE_NAME = "scheduler"
_SYNC_JOB = "warden-sync"
_log = logging.getLogger("warden.scheduler")


class Scheduler:
    """Lead (or stand by), keep APScheduler's jobs in step with the monitor table, queue slots."""

    def __init__(self, *, engine: Engine, settings: Settings, holder: str | None = None) -> None:
        self.engine = engine
        self.holder = holder or worker_name()
        self.lease = timedelta(seconds=settings.scheduler_lease_seconds)
        self.heartbeat = timedelta(seconds=settings.scheduler_heartbeat_seconds)
        self.sync_every = timedelta(seconds=settings.scheduler_sync_seconds)
        self.misfire = MisfirePolicy(settings.scheduler_misfire)
        self.grace = timedelta(seconds=settings.scheduler_misfire_grace_seconds)
        self.max_catch_up = settings.scheduler_max_catch_up
        self.max_attempts = settings.worker_max_attempts
        self._aps: BackgroundScheduler | None = None
        self._fingerprints: dict[str, tuple[object, ...]] = {}
        self._lock = threading.Lock()

    @property
    def leading(self) -> bool:
        """Return whether this process currently runs the schedule."""
        return self._aps is not None

    def run(self, stop: threading.Event) -> None:
        """Lead or stand by until ``stop`` is set; then step down and release the lease."""
        _log.info("scheduler %s started (standby until it holds the lease)", self.holder)
        try:
            while not stop.is_set():
                self.step()
                stop.wait(self.heartbeat.total_seconds())
        finally:
            self.stand_down()
            _log.info("scheduler %s stopped", self.holder)

    def stand_down(self) -> None:
        """Stop scheduling and release the lease, so a standby takes over at its next try."""
        self._stop_leading()
        try:
            with session_scope(self.engine) as session:
                release_lease(session=session, name=LEASE_NAME, holder=self.holder)
        except SQLAlchemyError:
            _log.exception("could not release the scheduler lease; it will expire")

    def monitor_job_ids(self) -> set[str]:
        """Return the ids of the monitors that have an APScheduler job right now."""
        with self._lock:
            return set(self._fingerprints) if self.leading else set()

    def step(self) -> bool:
        """Take or renew the lease once; start or stop leading accordingly. Return leadership."""
        try:
            with session_scope(self.engine) as session:
                held = try_acquire_lease(
                    session=session, name=LEASE_NAME, holder=self.holder, ttl=self.lease
                )
        except SQLAlchemyError:
            _log.exception("scheduler %s could not reach the store", self.holder)
            held = False
        if held and not self.leading:
            _log.info("scheduler %s is now the leader", self.holder)
            self._start_leading()
        elif not held and self.leading:
            _log.warning("scheduler %s lost the lease; standing by", self.holder)
            self._stop_leading()
        return held

    def _start_leading(self) -> None:
        from apscheduler.schedulers.background import BackgroundScheduler
        from apscheduler.triggers.interval import IntervalTrigger

        aps = BackgroundScheduler(
            timezone="UTC",
            job_defaults={"coalesce": True, "max_instances": 1, "misfire_grace_time": None},
        )
        aps.add_job(
            self.sync,
            IntervalTrigger(seconds=self.sync_every.total_seconds(), timezone="UTC"),
            id=_SYNC_JOB,
            name="re-read the monitor table",
            next_run_time=utcnow(),
        )
        self._fingerprints = {}
        self._aps = aps
        aps.start()

    def _stop_leading(self) -> None:
        aps, self._aps = self._aps, None
        if aps is not None:
            aps.shutdown(wait=True)

    def sync(self) -> None:
        """Rebuild APScheduler's monitor jobs from the table and queue every slot now due."""
        aps = self._aps
        if aps is None:
            return
        with session_scope(self.engine) as session:
            monitors = active_monitors(session=session)
        with self._lock:
            wanted = {str(m.id): m for m in monitors}
            for job_id in set(self._fingerprints) - set(wanted):
                aps.remove_job(job_id)
                del self._fingerprints[job_id]
            for job_id, monitor in wanted.items():
                fingerprint = schedule_fingerprint(monitor)
                if self._fingerprints.get(job_id) == fingerprint:
                    continue
                aps.add_job(
                    self.fire,
                    trigger_for(monitor),
                    args=[monitor.id],
                    id=job_id,
                    name=f"monitor {monitor.name}",
                    replace_existing=True,
                )
                self._fingerprints[job_id] = fingerprint
        for monitor in monitors:
            self.fire(monitor.id)
        self.queue_purges()

    def queue_purges(self) -> list[uuid.UUID]:
        """Queue the daily retention purges and due budget checks, if still leading.

        Returns the projects whose purge was queued.
        """
        now = utcnow()
        try:
            with session_scope(self.engine) as session:
                if not holds_lease(session=session, name=LEASE_NAME, holder=self.holder, now=now):
                    return []
                queued = queue_due_purges(session=session, now=now)
                checks = queue_due_budget_checks(session=session, now=now)
        except SQLAlchemyError:
            _log.exception("could not queue the retention purges")
            return []
        if queued:
            _log.info("queued the retention purge of %d project(s)", len(queued))
        if checks:
            _log.debug("queued the budget check of %d project(s)", len(checks))
        return queued

    def fire(self, monitor_id: uuid.UUID) -> int:
        """Queue the monitor's due slots if this process still leads; return how many."""
        now = utcnow()
        try:
            with session_scope(self.engine) as session:
                if not holds_lease(session=session, name=LEASE_NAME, holder=self.holder, now=now):
                    return 0
                monitor = session.get(Monitor, monitor_id)
                if monitor is None or monitor.paused:
                    return 0
                plan = plan_due_slots(
                    monitor,
                    now=now,
                    misfire=self.misfire,
                    grace=self.grace,
                    max_catch_up=self.max_catch_up,
                )
                queued: list[Any] = []
                for scheduled_for, trigger in plan.runs:
                    run = queue_monitor_run(
                        session=session,
                        monitor=monitor,
                        scheduled_for=scheduled_for,
                        trigger=trigger,
                        max_attempts=self.max_attempts,
                    )
                    if run is not None:
                        queued.append(run.scheduled_for)
                if plan.through is not None:
                    mark_scheduled_through(
                        session=session, monitor_id=monitor.id, through=plan.through
                    )
        except SQLAlchemyError:
            _log.exception("could not queue slots of monitor %s", monitor_id)
            return 0
        if queued or plan.missed:
            _log.info(
                "monitor %s: queued %d run(s) %s, dropped %d missed slot(s)",
                monitor_id,
                len(queued),
                [q.isoformat() for q in queued],
                plan.missed,
            )
        return len(queued)
