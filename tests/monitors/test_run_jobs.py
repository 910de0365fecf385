"""Monitor runs as runtime jobs: a slot and its job are written together; a run reads its job.

The stand-in handlers here replace the monitor computation on purpose: what is under test is
that a run's state, attempts, progress, message and error are its job's, read through one view.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select, update

from lineage import Conflict, create_project, session_scope
from lineage.runtime.handlers import HandlerRegistry, JobContext
from lineage.runtime.presence import WORKER_STALE, WorkerBeat, worker_alive
from lineage.runtime.queue import RuntimeJob, cancel_job, claim, get_job, requeue_expired
from lineage.runtime.worker import Worker
from lineage.storage import LocalStore
from monitors.models import Monitor, MonitorCreate, MonitorRun, MonitorRunPublic, RunTrigger
from monitors.run_jobs import (
    MONITOR_RUN,
    MonitorRunHandler,
    get_monitor_run,
    latest_runs,
    list_monitor_runs,
    queue_monitor_run,
    register_monitor_handlers,
)
from monitors.schedules import create_monitor

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
LEASE = timedelta(seconds=30)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_scope(engine) as session:
        yield session


@pytest.fixture
def project_id(engine: Engine) -> uuid.UUID:
    with session_scope(engine) as session:
        return create_project(session=session, name="credit").id


def _create(session: Session, project_id: uuid.UUID, name: str = "drift") -> Monitor:
    body = MonitorCreate.model_validate(
        {"name": name, "spec": {"kind": "drift"}, "schedule": {"interval_seconds": 60}}
    )
    return create_monitor(session=session, project_id=project_id, spec=body, now=T0)


@pytest.fixture
def monitor(session: Session, project_id: uuid.UUID) -> Monitor:
    return _create(session, project_id)


def _queued(engine: Engine, project_id: uuid.UUID) -> MonitorRun:
    with session_scope(engine) as session:
        monitor = _create(session, project_id)
        run = queue_monitor_run(
            session=session, monitor=monitor, scheduled_for=T0, trigger=RunTrigger.MANUAL
        )
        assert run is not None
        return run


def _view(engine: Engine, run: MonitorRun) -> MonitorRunPublic:
    with session_scope(engine) as session:
        return get_monitor_run(session=session, project_id=run.project_id, run_id=run.id)


def test_queue_monitor_run_writes_the_run_and_its_job_together(
    session: Session, monitor: Monitor
) -> None:
    run = queue_monitor_run(
        session=session, monitor=monitor, scheduled_for=T0, trigger=RunTrigger.SCHEDULE
    )
    assert run is not None
    assert run.job_id is not None
    job = get_job(session=session, job_id=run.job_id)
    assert job.kind == MONITOR_RUN
    assert job.state == "queued"
    assert job.payload == {"monitor_run_id": str(run.id), "monitor_id": str(monitor.id)}
    view = get_monitor_run(session=session, project_id=monitor.project_id, run_id=run.id)
    assert (view.state, view.attempts, view.progress, view.job_id) == ("queued", 0, 0.0, job.id)


def test_a_slot_queued_twice_yields_one_run_and_one_job(session: Session, monitor: Monitor) -> None:
    first = queue_monitor_run(
        session=session, monitor=monitor, scheduled_for=T0, trigger=RunTrigger.SCHEDULE
    )
    second = queue_monitor_run(
        session=session, monitor=monitor, scheduled_for=T0, trigger=RunTrigger.CATCH_UP
    )
    assert first is not None
    assert second is None
    assert len(session.exec(select(MonitorRun)).all()) == 1
    assert len(session.exec(select(RuntimeJob)).all()) == 1


def test_a_second_transaction_racing_for_the_same_slot_finds_it_done(
    engine: Engine, session: Session, monitor: Monitor
) -> None:
    session.commit()
    with session_scope(engine) as other:
        theirs = other.get(Monitor, monitor.id)
        assert theirs is not None
        assert queue_monitor_run(
            session=other, monitor=theirs, scheduled_for=T0, trigger=RunTrigger.SCHEDULE
        )
    assert (
        queue_monitor_run(
            session=session, monitor=monitor, scheduled_for=T0, trigger=RunTrigger.SCHEDULE
        )
        is None
    )


def test_cancelling_the_job_cancels_the_run(session: Session, monitor: Monitor) -> None:
    run = queue_monitor_run(
        session=session, monitor=monitor, scheduled_for=T0, trigger=RunTrigger.MANUAL
    )
    assert run is not None
    assert run.job_id is not None
    cancel_job(session=session, job_id=run.job_id, project_id=monitor.project_id)
    view = get_monitor_run(session=session, project_id=monitor.project_id, run_id=run.id)
    assert view.state == "cancelled"
    assert view.finished_at is not None
    with pytest.raises(Conflict, match="only queued jobs can be cancelled"):
        cancel_job(session=session, job_id=run.job_id, project_id=monitor.project_id)


def test_the_worker_runs_a_monitor_run_and_the_run_shows_its_outcome(
    engine: Engine, project_id: uuid.UUID, tmp_path: Path
) -> None:
    run = _queued(engine, project_id)
    registry = register_monitor_handlers(HandlerRegistry(), store=LocalStore(tmp_path))
    worker = Worker(engine=engine, registry=registry, owner="w1")
    assert worker.run_once()
    assert not worker.run_once()
    done = _view(engine, run)
    assert done.state == "succeeded"
    assert done.attempts == 1
    assert done.progress == 1.0
    assert done.started_at is not None
    assert done.finished_at is not None
    assert done.summary is not None
    # No inferences were logged, so the run succeeds and says why nothing was judged.
    assert done.summary["kind"] == "drift"
    assert done.summary["computed"] is False
    assert done.summary["reason"]


def test_a_run_shows_its_jobs_progress_while_it_works(
    engine: Engine, project_id: uuid.UUID
) -> None:
    run = _queued(engine, project_id)
    reported = threading.Event()
    release = threading.Event()

    def waits_after_progress(context: JobContext) -> None:
        context.progress(0.4, "scanning the window")
        reported.set()
        assert release.wait(10)

    worker = Worker(
        engine=engine,
        registry=HandlerRegistry({MONITOR_RUN: waits_after_progress}),
        heartbeat_every=timedelta(seconds=0.05),
    )
    thread = threading.Thread(target=worker.run_once)
    thread.start()
    try:
        assert reported.wait(10)
        working = _view(engine, run)
        assert (working.state, working.progress, working.message) == (
            "running",
            0.4,
            "scanning the window",
        )
    finally:
        release.set()
        thread.join()
    assert _view(engine, run).state == "succeeded"


def test_a_failed_run_shows_its_jobs_error_and_attempts(
    engine: Engine, project_id: uuid.UUID
) -> None:
    run = _queued(engine, project_id)

    def always_fails(_context: JobContext) -> dict[str, Any]:
        raise RuntimeError("store was busy")

    worker = Worker(
        engine=engine,
        registry=HandlerRegistry({MONITOR_RUN: always_fails}),
        retry_delay=timedelta(0),
    )
    assert worker.run_once()
    retrying = _view(engine, run)
    assert (retrying.state, retrying.attempts) == ("queued", 1)
    while worker.run_once():
        pass
    failed = _view(engine, run)
    assert (failed.state, failed.attempts) == ("failed", 3)
    assert failed.error is not None
    assert "RuntimeError: store was busy" in failed.error
    assert failed.summary is None


def test_a_requeued_job_shows_on_its_run(engine: Engine, project_id: uuid.UUID) -> None:
    run = _queued(engine, project_id)
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        claim(session=session, owner="gone", lease=LEASE, now=now)
    assert _view(engine, run).state == "running"
    with session_scope(engine) as session:
        requeue_expired(session=session, now=now + 2 * LEASE)
    requeued = _view(engine, run)
    assert requeued.state == "queued"
    assert requeued.message.startswith("re-queued: the previous worker was lost; ")
    assert "waiting for a worker" in requeued.message


def test_a_queued_run_says_when_no_worker_is_alive(engine: Engine, project_id: uuid.UUID) -> None:
    run = _queued(engine, project_id)
    first = _view(engine, run)
    assert first.message.startswith("waiting for a worker (no worker has run yet")
    # A worker that handles other kinds polls (and beats) without claiming the run.
    worker = Worker(engine=engine, registry=HandlerRegistry({"other": lambda _c: None}))
    assert not worker.run_once()
    assert "waiting for a worker" not in _view(engine, run).message
    with session_scope(engine) as session:
        alive, last = worker_alive(session=session)
        assert alive
        assert last is not None
        stale = last - WORKER_STALE - timedelta(seconds=1)
        session.exec(update(WorkerBeat).values(last_seen_at=stale))
    later = _view(engine, run)
    assert later.message.endswith(f"waiting for a worker (last heartbeat {stale.isoformat()})")


def test_latest_runs_picks_each_monitors_newest_finished_run(
    engine: Engine, project_id: uuid.UUID
) -> None:
    with session_scope(engine) as session:
        watched, idle = (
            _create(session, project_id, "watched"),
            _create(session, project_id, "idle"),
        )
        runs = [
            queue_monitor_run(
                session=session,
                monitor=watched,
                scheduled_for=T0 + timedelta(minutes=minute),
                trigger=RunTrigger.SCHEDULE,
            )
            for minute in range(3)
        ]
        queue_monitor_run(
            session=session, monitor=idle, scheduled_for=T0, trigger=RunTrigger.MANUAL
        )
        finished, newest_finished, still_queued = runs
        assert finished is not None
        assert newest_finished is not None
        assert still_queued is not None
        for run in (finished, newest_finished):
            assert run.job_id is not None
            job = get_job(session=session, job_id=run.job_id)
            job.state = "succeeded"
            job.finished_at = T0
            session.add(job)
        ids = (watched.id, idle.id)
    with session_scope(engine) as session:
        latest = latest_runs(session=session, monitor_ids=ids)
        assert list(latest) == [watched.id]
        assert latest[watched.id].id == newest_finished.id
        everything = list_monitor_runs(
            session=session, project_id=project_id, monitor_id=watched.id
        )
        assert [r.id for r in everything] == [still_queued.id, newest_finished.id, finished.id]
        assert [r.state for r in everything] == ["queued", "succeeded", "succeeded"]


def test_the_monitors_register_their_kinds(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    registry = register_monitor_handlers(HandlerRegistry(), store=store)
    assert registry.kinds() == ["drift_page", "explanation", "monitor_run"]
    assert registry.background_kinds() == ["drift_page"]  # Evidently's page never goes first
    handler = registry.handler_for(MONITOR_RUN)
    assert isinstance(handler, MonitorRunHandler)
    assert handler.store is store
