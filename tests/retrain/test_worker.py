"""Queue semantics of the worker, with small handlers written for these tests.

The handlers here (recording, failing, waiting) stand in for real work on purpose: what is
under test is claiming, leases, retries, progress and the mirroring onto monitor runs.
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
from sqlmodel import Session, select

from lineage import create_project, session_scope, utcnow
from monitors.models import Monitor, MonitorCreate, MonitorRun, RunTrigger
from monitors.schedules import create_monitor
from retrain.handlers import default_registry
from retrain.jobs import Job, JobKind, JobState, enqueue, queue_monitor_run
from retrain.worker import (
    HandlerRegistry,
    JobContext,
    Worker,
    claim,
    complete,
    fail,
    heartbeat,
    requeue_expired,
)

LEASE = timedelta(seconds=30)


@pytest.fixture
def project_id(engine: Engine) -> uuid.UUID:
    with session_scope(engine) as session:
        return create_project(session=session, name="credit").id


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_scope(engine) as session:
        yield session


def _monitor_run(engine: Engine, project_id: uuid.UUID) -> MonitorRun:
    with session_scope(engine) as session:
        body = MonitorCreate.model_validate(
            {"name": "drift", "spec": {"kind": "drift"}, "schedule": {"interval_seconds": 60}}
        )
        monitor = create_monitor(session=session, project_id=project_id, spec=body)
        run = queue_monitor_run(
            session=session,
            monitor=monitor,
            scheduled_for=monitor.anchor_at,
            trigger=RunTrigger.MANUAL,
        )
        assert run is not None
        return run


def _job(engine: Engine, job_id: uuid.UUID) -> Job:
    with session_scope(engine) as session:
        job = session.get(Job, job_id)
        assert job is not None
        return job


def _run(engine: Engine, run_id: uuid.UUID) -> MonitorRun:
    with session_scope(engine) as session:
        run = session.get(MonitorRun, run_id)
        assert run is not None
        return run


def test_claim_takes_the_oldest_available_job_of_the_kinds_it_handles(
    session: Session, project_id: uuid.UUID
) -> None:
    report = enqueue(session=session, project_id=project_id, kind=JobKind.REPORT_RENDER, payload={})
    later = enqueue(
        session=session,
        project_id=project_id,
        kind=JobKind.PIPELINE_RUN,
        payload={},
        available_at=utcnow() + timedelta(hours=1),
    )
    first = enqueue(session=session, project_id=project_id, kind=JobKind.PIPELINE_RUN, payload={})
    claimed = claim(session=session, owner="w1", lease=LEASE, kinds=["pipeline_run"])
    assert claimed is not None
    assert claimed.id == first.id
    assert (claimed.state, claimed.attempts, claimed.lease_owner) == ("running", 1, "w1")
    assert claim(session=session, owner="w1", lease=LEASE, kinds=["pipeline_run"]) is None
    assert later.state == "queued"
    assert report.state == "queued"


def test_heartbeat_extends_only_the_owners_lease(session: Session, project_id: uuid.UUID) -> None:
    job = enqueue(session=session, project_id=project_id, kind=JobKind.PIPELINE_RUN, payload={})
    now = utcnow()
    claim(session=session, owner="w1", lease=LEASE, now=now)
    assert heartbeat(session=session, job_id=job.id, owner="w1", lease=LEASE, now=now + LEASE)
    session.refresh(job)
    assert job.lease_expires_at == now + 2 * LEASE
    assert not heartbeat(session=session, job_id=job.id, owner="w2", lease=LEASE)


def test_an_expired_lease_requeues_the_job_then_fails_it_with_the_reason(
    session: Session, project_id: uuid.UUID
) -> None:
    job = enqueue(
        session=session,
        project_id=project_id,
        kind=JobKind.PIPELINE_RUN,
        payload={},
        max_attempts=2,
    )
    now = utcnow()
    claim(session=session, owner="lost-1", lease=LEASE, now=now)
    assert requeue_expired(session=session, now=now + LEASE / 2) == 0
    assert requeue_expired(session=session, now=now + 2 * LEASE) == 1
    session.refresh(job)
    assert (job.state, job.lease_owner) == ("queued", None)
    assert "lost-1 stopped heart-beating" in job.logs

    retried = claim(session=session, owner="lost-2", lease=LEASE, now=now + 3 * LEASE)
    assert retried is not None
    assert retried.attempts == 2
    assert claim(session=session, owner="w3", lease=LEASE, now=now + 5 * LEASE) is None
    session.refresh(job)
    assert job.state == "failed"
    assert job.error is not None
    assert "lost-2 stopped heart-beating during attempt 2" in job.error
    assert "gave up after 2 of 2 attempts" in job.error


def test_a_lost_owner_cannot_complete_a_job_someone_else_holds(
    session: Session, project_id: uuid.UUID
) -> None:
    job = enqueue(session=session, project_id=project_id, kind=JobKind.PIPELINE_RUN, payload={})
    now = utcnow()
    claim(session=session, owner="slow", lease=LEASE, now=now)
    claim(session=session, owner="fast", lease=LEASE, now=now + 2 * LEASE)
    assert not complete(session=session, job_id=job.id, owner="slow", result={"x": 1})
    assert complete(session=session, job_id=job.id, owner="fast", result={"x": 2})
    session.refresh(job)
    assert (job.state, job.result, job.attempts) == ("succeeded", {"x": 2}, 2)


def test_fail_backs_off_then_gives_up(session: Session, project_id: uuid.UUID) -> None:
    job = enqueue(
        session=session,
        project_id=project_id,
        kind=JobKind.PIPELINE_RUN,
        payload={},
        max_attempts=2,
    )
    now = utcnow()
    claim(session=session, owner="w", lease=LEASE, now=now)
    delay = timedelta(seconds=10)
    state = fail(
        session=session, job_id=job.id, owner="w", error="boom", retry_delay=delay, now=now
    )
    assert state == JobState.QUEUED
    session.refresh(job)
    assert job.available_at == now + delay
    assert claim(session=session, owner="w", lease=LEASE, now=now + delay / 2) is None
    claim(session=session, owner="w", lease=LEASE, now=now + delay)
    state = fail(session=session, job_id=job.id, owner="w", error="boom", retry_delay=delay)
    assert state == JobState.FAILED
    session.refresh(job)
    assert job.error == "boom (gave up after 2 of 2 attempts)"


def test_the_worker_runs_a_monitor_run_and_mirrors_its_outcome(
    engine: Engine, project_id: uuid.UUID, tmp_path: Path
) -> None:
    run = _monitor_run(engine, project_id)
    worker = Worker(engine=engine, registry=default_registry(data_dir=tmp_path), owner="w1")
    assert worker.run_once()
    assert not worker.run_once()
    done = _run(engine, run.id)
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


def test_progress_is_visible_while_the_handler_works(engine: Engine, project_id: uuid.UUID) -> None:
    run = _monitor_run(engine, project_id)
    reported = threading.Event()
    release = threading.Event()

    def waits_after_progress(context: JobContext) -> dict[str, Any]:
        context.progress(0.4, "scanning the window")
        context.log("first half done")
        reported.set()
        assert release.wait(10)
        return {"ok": True}

    worker = Worker(
        engine=engine,
        registry=HandlerRegistry({JobKind.MONITOR_RUN: waits_after_progress}),
        heartbeat_every=timedelta(seconds=0.05),
    )
    thread = threading.Thread(target=worker.run_once)
    thread.start()
    try:
        assert reported.wait(10)
        working = _run(engine, run.id)
        assert (working.state, working.progress, working.message) == (
            "running",
            0.4,
            "scanning the window",
        )
        assert run.job_id is not None
        assert "first half done" in _job(engine, run.job_id).logs
    finally:
        release.set()
        thread.join()
    assert _run(engine, run.id).summary == {"ok": True}


def test_a_failing_handler_is_retried_and_its_traceback_logged(
    engine: Engine, project_id: uuid.UUID
) -> None:
    run = _monitor_run(engine, project_id)
    calls: list[int] = []

    def fails_once(context: JobContext) -> dict[str, Any]:
        calls.append(context.attempt)
        if context.attempt == 1:
            raise RuntimeError("store was busy")
        return {"attempt": context.attempt}

    worker = Worker(
        engine=engine,
        registry=HandlerRegistry({JobKind.MONITOR_RUN: fails_once}),
        retry_delay=timedelta(0),
    )
    assert worker.run_once()
    assert _run(engine, run.id).state == "queued"
    assert worker.run_once()
    assert calls == [1, 2]
    finished = _run(engine, run.id)
    assert (finished.state, finished.summary) == ("succeeded", {"attempt": 2})
    assert run.job_id is not None
    logs = _job(engine, run.job_id).logs
    assert "RuntimeError: store was busy" in logs
    assert "Traceback" in logs


def test_two_workers_never_run_the_same_job(engine: Engine, project_id: uuid.UUID) -> None:
    with session_scope(engine) as session:
        ids = {
            enqueue(
                session=session, project_id=project_id, kind=JobKind.PIPELINE_RUN, payload={}
            ).id
            for _ in range(12)
        }
    seen: list[uuid.UUID] = []
    lock = threading.Lock()

    def records(context: JobContext) -> None:
        with lock:
            seen.append(context.job_id)

    def drain() -> None:
        worker = Worker(engine=engine, registry=HandlerRegistry({JobKind.PIPELINE_RUN: records}))
        while worker.run_once():
            pass

    threads = [threading.Thread(target=drain) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == sorted(ids)
    with session_scope(engine) as session:
        states = {job.state for job in session.exec(select(Job)).all()}
    assert states == {"succeeded"}


def test_the_registry_names_a_missing_kind() -> None:
    with pytest.raises(LookupError, match="no handler registered for job kind 'report_render'"):
        default_registry().handler_for("report_render")
    assert default_registry().kinds() == ["explanation", "monitor_run"]


def test_requeue_mirrors_onto_the_monitor_run(engine: Engine, project_id: uuid.UUID) -> None:
    run = _monitor_run(engine, project_id)
    now = datetime.now(UTC)
    with session_scope(engine) as session:
        claim(session=session, owner="gone", lease=LEASE, now=now)
    assert _run(engine, run.id).state == "running"
    with session_scope(engine) as session:
        requeue_expired(session=session, now=now + 2 * LEASE)
    requeued = _run(engine, run.id)
    assert requeued.state == "queued"
    assert requeued.message == "re-queued: the previous worker was lost"
    with session_scope(engine) as session:
        monitors = session.exec(select(Monitor)).all()
    assert len(monitors) == 1
