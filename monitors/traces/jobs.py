"""Trace work on the worker: the retention purge and the cost recompute, each audited.

Two job kinds (handler contract in :mod:`lineage.runtime.handlers`):

* :data:`TRACE_PURGE` — :func:`monitors.traces.retention.purge` for the job's project at the
  job's instant (``payload["now"]``, else the time it runs); queued once a day per project with
  traces by :func:`queue_due_purges` (the scheduler calls it), or on request.
* :data:`COST_RECOMPUTE` — :func:`monitors.traces.pricing.recompute_costs` after a price change;
  queued only on an admin's explicit request.

Each handler does its work and writes its audit entry (counts only) in one transaction through
the :class:`AuditHook` the composition root gives it (monitors cannot import governance): both
land, or neither. Both are idempotent: running again finds nothing more to change.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlmodel import Session, col, select

from lineage.runtime.handlers import HandlerRegistry, JobContext
from lineage.runtime.queue import DEFAULT_MAX_ATTEMPTS, RuntimeJob, enqueue
from lineage.store import session_scope
from lineage.tables import utcnow
from monitors.traces.models import Trace
from monitors.traces.pricing import recompute_costs
from monitors.traces.retention import purge, record_purge

__all__ = [
    "COST_RECOMPUTE",
    "PURGE_EVERY",
    "TRACE_PURGE",
    "AuditHook",
    "CostRecomputeHandler",
    "TracePurgeHandler",
    "queue_due_purges",
    "queue_purge",
    "queue_recompute",
    "register_trace_handlers",
]

TRACE_PURGE = "trace_purge"
"""The job kind of a retention purge of one project."""
COST_RECOMPUTE = "trace_cost_recompute"
"""The job kind of re-pricing one project's spans."""
PURGE_EVERY = timedelta(days=1)
"""How often each project with traces is purged."""


class AuditHook(Protocol):
    """Writes one audit entry in the given session, as Warden itself (``governance.append``)."""

    def __call__(
        self,
        *,
        session: Session,
        action: str,
        target: str,
        detail: Mapping[str, Any],
        project_id: uuid.UUID,
    ) -> None:
        """Append the entry; never commits."""
        ...


def queue_purge(
    *, session: Session, project_id: uuid.UUID, now: datetime | None = None
) -> RuntimeJob:
    """Queue a purge of the project (at ``now`` if given: tests and catch-up use a fixed clock)."""
    payload = {} if now is None else {"now": now.isoformat()}
    return enqueue(session=session, project_id=project_id, kind=TRACE_PURGE, payload=payload)


def queue_recompute(
    *,
    session: Session,
    project_id: uuid.UUID,
    requested_by: str,
    since: datetime | None = None,
    max_attempts: int = DEFAULT_MAX_ATTEMPTS,
) -> RuntimeJob:
    """Queue re-pricing the project's spans (those started since ``since``, else all)."""
    payload: dict[str, Any] = {"requested_by": requested_by}
    if since is not None:
        payload["since"] = since.isoformat()
    return enqueue(
        session=session,
        project_id=project_id,
        kind=COST_RECOMPUTE,
        payload=payload,
        max_attempts=max_attempts,
    )


def queue_due_purges(*, session: Session, now: datetime | None = None) -> list[uuid.UUID]:
    """Queue a purge for each project with traces and no purge queued in the last day.

    Returns the projects queued. Called by the scheduler's leader on every sync, so a day
    missed while it was down is caught up at its next start.
    """
    now = now or utcnow()
    with_traces = set(session.exec(select(Trace.project_id).distinct()).all())
    recent = set(
        session.exec(
            select(RuntimeJob.project_id).where(
                RuntimeJob.kind == TRACE_PURGE, col(RuntimeJob.created_at) > now - PURGE_EVERY
            )
        ).all()
    )
    due = sorted(with_traces - recent)
    for project_id in due:
        queue_purge(session=session, project_id=project_id)
    return due


@dataclass(frozen=True)
class TracePurgeHandler:
    """Run ``trace_purge`` jobs: purge one project, record it, audit the counts."""

    audit: AuditHook

    def __call__(self, context: JobContext) -> dict[str, Any]:
        """Purge the job's project and return the counts (also the job's result)."""
        raw = context.payload.get("now")
        now = datetime.fromisoformat(raw) if isinstance(raw, str) else utcnow()
        with session_scope(context.engine) as session:
            counts = purge(session=session, project_id=context.project_id, now=now)
            record_purge(session=session, project_id=context.project_id, at=now)
            detail = {"after": counts.to_dict(), "job_id": str(context.job_id)}
            self.audit(
                session=session,
                action="trace.purge",
                target=f"project:{context.project_id}",
                detail=detail,
                project_id=context.project_id,
            )
        return counts.to_dict()


@dataclass(frozen=True)
class CostRecomputeHandler:
    """Run ``trace_cost_recompute`` jobs: re-price one project's spans, audit the counts."""

    audit: AuditHook

    def __call__(self, context: JobContext) -> dict[str, Any]:
        """Re-price the job's project and return the counts (also the job's result)."""
        raw = context.payload.get("since")
        since = datetime.fromisoformat(raw) if isinstance(raw, str) else None
        with session_scope(context.engine) as session:
            counts = recompute_costs(session=session, project_id=context.project_id, since=since)
            self.audit(
                session=session,
                action="trace.cost_recompute",
                target=f"project:{context.project_id}",
                detail={
                    "after": counts.to_dict(),
                    "since": raw,
                    "requested_by": context.payload.get("requested_by"),
                    "job_id": str(context.job_id),
                },
                project_id=context.project_id,
            )
        return counts.to_dict()


def register_trace_handlers(registry: HandlerRegistry, *, audit: AuditHook) -> HandlerRegistry:
    """Register the purge and recompute handlers on ``registry``; return it."""
    registry.register(TRACE_PURGE, TracePurgeHandler(audit))
    registry.register(COST_RECOMPUTE, CostRecomputeHandler(audit))
    return registry
