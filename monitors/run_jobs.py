"""Monitor runs as runtime jobs: queue a slot with its job, execute it, read it with its state.

A :class:`~monitors.models.MonitorRun` holds what is the run's own — its slot, trigger, window
and summary — and points at the :class:`~lineage.runtime.queue.RuntimeJob` that executes it. The job
holds the state (``queued → running → succeeded | failed | cancelled``), attempts, progress,
message, error and timestamps, once; readers get both as one :class:`MonitorRunPublic` through
:func:`read_runs` (and :func:`get_monitor_run`, :func:`list_monitor_runs`, :func:`latest_runs`,
built on the same join).

:func:`queue_monitor_run` is the one place a slot becomes a run row plus its job, in the
caller's transaction, so a slot never exists without the work that executes it.
:class:`MonitorRunHandler` serves the :data:`MONITOR_RUN` kind: it executes the run end to end
with :func:`monitors.execute.execute_monitor_run`, which writes the run's summary on the run itself.
:func:`register_monitor_handlers` registers the monitors' kinds (monitor runs, local
explanations and, in the background, drift pages) on a worker's registry; the composition root
(``api.worker_process``) gives them the data directory, the model loader and the findings
callback.
"""

from __future__ import annotations

import uuid
from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Literal

import sqlalchemy as sa
from sqlmodel import Session, col, func, select

from lineage.errors import InvalidInput, NotFound
from lineage.pages import DEFAULT_PAGE_SIZE, Page, SortKey, keyset_page
from lineage.runtime.handlers import HandlerRegistry, JobContext, Permanent
from lineage.runtime.presence import worker_alive
from lineage.runtime.queue import DEFAULT_MAX_ATTEMPTS, RuntimeJob, enqueue
from lineage.storage import ObjectStore
from monitors.drift_page_jobs import DRIFT_PAGE, DriftPageHandler
from monitors.engine import SummaryEngine
from monitors.explanation_jobs import EXPLANATION, ExplanationHandler
from monitors.models import Monitor, MonitorRun, MonitorRunPublic, MonitorRunState, RunTrigger
from monitors.schedules import get_monitor, record_run

if TYPE_CHECKING:
    from monitors.execute import ChatFactory, FindingsCallback, ModelLoader

__all__ = [
    "FINISHED_STATES",
    "MONITOR_RUN",
    "MonitorRunHandler",
    "get_monitor_run",
    "latest_runs",
    "list_monitor_runs",
    "page_monitor_runs",
    "queue_monitor_run",
    "read_runs",
    "register_monitor_handlers",
    "run_view",
    "waiting_message",
    "worker_waiting",
]

MONITOR_RUN = "monitor_run"
"""The job kind of a monitor run."""

FINISHED_STATES: frozenset[MonitorRunState] = frozenset(
    {MonitorRunState.SUCCEEDED, MonitorRunState.FAILED}
)
"""A run in one of these states has an outcome to show (a cancelled run has none)."""


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
        kind=MONITOR_RUN,
        payload={"monitor_run_id": str(run.id), "monitor_id": str(monitor.id)},
        max_attempts=max_attempts,
    )
    run.job_id = job.id
    session.add(run)
    session.flush()
    return run


def waiting_message(*, alive: bool, last_beat: datetime | None) -> str | None:
    """Return what a queued run says while no worker is alive (``None`` while one is)."""
    if alive:
        return None
    if last_beat is None:
        return "waiting for a worker (no worker has run yet; start one with `warden worker`)"
    return f"waiting for a worker (last heartbeat {last_beat.isoformat()})"


def run_view(
    run: MonitorRun, job: RuntimeJob | None, *, waiting: str | None = None
) -> MonitorRunPublic:
    """Return a run as readers see it: its own columns, and its state from its job.

    ``run`` and ``job`` may also be one row of :data:`_VIEW_COLUMNS` (``job`` ``None`` when its
    ``state`` is). ``waiting`` (from :func:`waiting_message`) replaces a queued run's message
    while no worker is alive, so a reader knows nothing will pick the run up.
    """
    state = MonitorRunState(job.state) if job is not None else MonitorRunState.QUEUED
    message = job.message if job is not None else ""
    if waiting is not None and state == MonitorRunState.QUEUED:
        message = f"{message}; {waiting}" if message else waiting
    return MonitorRunPublic(
        id=run.id,
        project_id=run.project_id,
        monitor_id=run.monitor_id,
        scheduled_for=run.scheduled_for,
        trigger=RunTrigger(run.trigger),
        state=state,
        progress=job.progress if job is not None else 0.0,
        message=message,
        window_start=run.window_start,
        window_end=run.window_end,
        job_id=run.job_id,
        attempts=job.attempts if job is not None else 0,
        created_at=run.created_at,
        started_at=None if job is None else job.started_at,
        finished_at=None if job is None else job.finished_at,
        error=None if job is None else job.error,
        summary=run.summary,
    )


# What run_view reads, as plain columns (their names do not clash): a page of runs builds no ORM
# objects (reading 101 runs with their jobs as entities took 4.5 ms of CPU, as columns 1.7 ms)
# and never reads a job's logs (up to 1 MB each).
_VIEW_COLUMNS: tuple[Any, ...] = (
    MonitorRun.id,
    MonitorRun.project_id,
    MonitorRun.monitor_id,
    MonitorRun.scheduled_for,
    MonitorRun.trigger,
    MonitorRun.window_start,
    MonitorRun.window_end,
    MonitorRun.job_id,
    MonitorRun.created_at,
    MonitorRun.summary,
    RuntimeJob.state,
    RuntimeJob.progress,
    RuntimeJob.message,
    RuntimeJob.attempts,
    RuntimeJob.started_at,
    RuntimeJob.finished_at,
    RuntimeJob.error,
)


def _with_jobs() -> Any:
    return select(*_VIEW_COLUMNS).outerjoin(
        RuntimeJob, col(RuntimeJob.id) == col(MonitorRun.job_id)
    )


def _row_view(row: Any, waiting: str | None) -> MonitorRunPublic:
    return run_view(row, None if row.state is None else row, waiting=waiting)


def worker_waiting(*, session: Session) -> str | None:
    """Return the message of a queued run while no worker is alive, else ``None``."""
    alive, last_beat = worker_alive(session=session)
    return waiting_message(alive=alive, last_beat=last_beat)


def _views(session: Session, query: Any) -> list[MonitorRunPublic]:
    rows = session.exec(query).all()
    waiting = worker_waiting(session=session) if rows else None
    return [_row_view(row, waiting) for row in rows]


def get_monitor_run(
    *, session: Session, project_id: uuid.UUID, run_id: uuid.UUID
) -> MonitorRunPublic:
    """Return a monitor run of the project with its state, or raise :class:`NotFound`."""
    found = _views(
        session,
        _with_jobs().where(col(MonitorRun.id) == run_id, col(MonitorRun.project_id) == project_id),
    )
    if not found:
        raise NotFound(f"no monitor run {run_id} in this project")
    return found[0]


def read_runs(
    *,
    session: Session,
    monitor_ids: Iterable[uuid.UUID],
    newest_first: bool = True,
    limit: int | None = None,
) -> list[MonitorRunPublic]:
    """Return the runs of ``monitor_ids`` with their state, ordered by slot."""
    order = col(MonitorRun.scheduled_for)
    query = (
        _with_jobs()
        .where(col(MonitorRun.monitor_id).in_(list(monitor_ids)))
        .order_by(order.desc() if newest_first else order.asc())
    )
    if limit is not None:
        query = query.limit(limit)
    return _views(session, query)


def list_monitor_runs(
    *, session: Session, project_id: uuid.UUID, monitor_id: uuid.UUID, limit: int | None = 100
) -> list[MonitorRunPublic]:
    """Return a monitor's most recent runs with their state, newest slot first.

    Raises:
        NotFound: The project has no such monitor.
    """
    get_monitor(session=session, project_id=project_id, monitor_id=monitor_id)
    return read_runs(session=session, monitor_ids=[monitor_id], limit=limit)


def page_monitor_runs(
    *,
    session: Session,
    project_id: uuid.UUID,
    monitor_id: uuid.UUID,
    limit: int = DEFAULT_PAGE_SIZE,
    cursor: str | None = None,
) -> Page[MonitorRunPublic]:
    """Return a page of a monitor's runs with their state, newest slot first.

    A slot is unique per monitor, so the slot alone is the page's key.

    Raises:
        NotFound: The project has no such monitor.
        InvalidInput: A cursor this API did not return.
    """
    get_monitor(session=session, project_id=project_id, monitor_id=monitor_id)
    found = keyset_page(
        session=session,
        query=_with_jobs().where(col(MonitorRun.monitor_id) == monitor_id),
        keys=[SortKey(col(MonitorRun.scheduled_for), "desc")],
        key_of=lambda row: (row.scheduled_for,),
        limit=limit,
        cursor=cursor,
    )
    waiting = worker_waiting(session=session) if found.items else None
    return found.map(lambda row: _row_view(row, waiting))


def latest_runs(
    *,
    session: Session,
    monitor_ids: Iterable[uuid.UUID],
    states: Collection[MonitorRunState] = FINISHED_STATES,
    newest: Literal["slot", "finish"] = "slot",
) -> dict[uuid.UUID, MonitorRunPublic]:
    """Return each monitor's newest run in one of ``states``, by slot or by finishing time."""
    ids = list(monitor_ids)
    if not ids:
        return {}
    key = col(MonitorRun.scheduled_for) if newest == "slot" else col(RuntimeJob.finished_at)
    chosen = [
        col(MonitorRun.monitor_id).in_(ids),
        col(RuntimeJob.state).in_([str(s) for s in states]),
    ]
    if newest == "finish":
        chosen.append(col(RuntimeJob.finished_at).is_not(None))
    newest_of = (
        select(MonitorRun.monitor_id, func.max(key).label("at"))
        .join(RuntimeJob, col(RuntimeJob.id) == col(MonitorRun.job_id))
        .where(*chosen)
        .group_by(col(MonitorRun.monitor_id))
        .subquery()
    )
    query = (
        select(*_VIEW_COLUMNS)
        .join(RuntimeJob, col(RuntimeJob.id) == col(MonitorRun.job_id))
        .join(
            newest_of,
            sa.and_(newest_of.c.monitor_id == col(MonitorRun.monitor_id), newest_of.c.at == key),
        )
        .where(*chosen)
        .order_by(col(MonitorRun.scheduled_for))
    )
    return {view.monitor_id: view for view in _views(session, query)}


@dataclass(frozen=True, slots=True)
class MonitorRunHandler:
    """Execute ``monitor_run`` jobs: one persisted monitor run each.

    Attributes:
        store: The artifact store (inference logs, baselines, reports).
        loader: Loads registered, hash-checked model versions for kinds that need the model.
        on_findings: Receives each run's findings in the transaction that records the run.
        chat_for: Gives judge runs the project's guarded chat sender.
        summary_engine: Which engine summarises windows (local or Spark, by size/deployment).
    """

    store: ObjectStore
    loader: ModelLoader | None = None
    on_findings: FindingsCallback | None = None
    chat_for: ChatFactory | None = None
    summary_engine: SummaryEngine | None = None

    def __call__(self, context: JobContext) -> None:
        """Run the job's monitor run; its summary is written on the run, not the job.

        Raises:
            LookupError: The run or its monitor no longer exists (the job then fails and retries).
            Permanent: The spec cannot apply or the model is missing (``InvalidInput``,
                ``NotFound``): the run fails at once with that reason, never retried.
        """
        from monitors.execute import execute_monitor_run

        try:
            execute_monitor_run(
                engine=context.engine,
                store=self.store,
                run_id=uuid.UUID(str(context.payload["monitor_run_id"])),
                loader=self.loader,
                on_findings=self.on_findings,
                progress=context.progress,
                chat_for=self.chat_for,
                summary_engine=self.summary_engine,
            )
        except (InvalidInput, NotFound) as error:
            raise Permanent(error.detail) from error


def register_monitor_handlers(
    registry: HandlerRegistry,
    *,
    store: ObjectStore,
    loader: ModelLoader | None = None,
    on_findings: FindingsCallback | None = None,
    chat_for: ChatFactory | None = None,
    summary_engine: SummaryEngine | None = None,
) -> HandlerRegistry:
    """Register the monitors' job kinds (monitor runs, local explanations, drift pages).

    Drift pages are a background kind: rendered only when no other job waits. ``store`` is
    the artifact store (inference logs, baselines, reports).

    Returns:
        ``registry``.
    """
    registry.register(
        MONITOR_RUN,
        MonitorRunHandler(
            store=store,
            loader=loader,
            on_findings=on_findings,
            chat_for=chat_for,
            summary_engine=summary_engine,
        ),
    )
    registry.register(EXPLANATION, ExplanationHandler(store=store, loader=loader))
    registry.register(DRIFT_PAGE, DriftPageHandler(store=store), background=True)
    return registry
