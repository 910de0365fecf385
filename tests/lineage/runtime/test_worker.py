"""Queue semantics of the worker, with small handlers written for these tests.

The handlers here (recording, failing, waiting) stand in for real work on purpose: what is
under test is claiming, leases, retries, progress and logs, whatever the kind of work.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lineage import create_project, session_scope, utcnow
from lineage.errors import InvalidInput
from lineage.runtime.handlers import HandlerRegistry, JobContext, Permanent
from lineage.runtime.presence import WORKER_STALE, WorkerBeat, worker_alive
from lineage.runtime.queue import (
    JobState,
    RuntimeJob,
    claim,
    complete,
    enqueue,
    fail,
    heartbeat,
    requeue_expired,
)
from lineage.runtime.worker import Worker

LEASE = timedelta(seconds=30)


@pytest.fixture
def project_id(engine: Engine) -> uuid.UUID:
    with session_scope(engine) as session:
        return create_project(session=session, name="credit").id


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_scope(engine) as session:
        yield session


def _job(engine: Engine, job_id: uuid.UUID) -> RuntimeJob:
    with session_scope(engine) as session:
        job = session.get(RuntimeJob, job_id)
        assert job is not None
        return job


def test_claim_takes_the_oldest_available_job_of_the_kinds_it_handles(
    session: Session, project_id: uuid.UUID
) -> None:
    report = enqueue(session=session, project_id=project_id, kind="report_render", payload={})
    later = enqueue(
        session=session,
        project_id=project_id,
        kind="pipeline_run",
        payload={},
        available_at=utcnow() + timedelta(hours=1),
    )
    first = enqueue(session=session, project_id=project_id, kind="pipeline_run", payload={})
    claimed = claim(session=session, owner="w1", lease=LEASE, kinds=["pipeline_run"])
    assert claimed is not None
    assert claimed.id == first.id
    assert (claimed.state, claimed.attempts, claimed.lease_owner) == ("running", 1, "w1")
    assert claim(session=session, owner="w1", lease=LEASE, kinds=["pipeline_run"]) is None
    assert later.state == "queued"
    assert report.state == "queued"


def test_heartbeat_extends_only_the_owners_lease(session: Session, project_id: uuid.UUID) -> None:
    job = enqueue(session=session, project_id=project_id, kind="pipeline_run", payload={})
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
        kind="pipeline_run",
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
    job = enqueue(session=session, project_id=project_id, kind="pipeline_run", payload={})
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
        kind="pipeline_run",
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


def test_progress_is_visible_while_the_handler_works(engine: Engine, project_id: uuid.UUID) -> None:
    with session_scope(engine) as session:
        job_id = enqueue(session=session, project_id=project_id, kind="work", payload={}).id
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
        registry=HandlerRegistry({"work": waits_after_progress}),
        heartbeat_every=timedelta(seconds=0.05),
    )
    thread = threading.Thread(target=worker.run_once)
    thread.start()
    try:
        assert reported.wait(10)
        working = _job(engine, job_id)
        assert (working.state, working.progress, working.message) == (
            "running",
            0.4,
            "scanning the window",
        )
        assert "first half done" in working.logs
    finally:
        release.set()
        thread.join()
    done = _job(engine, job_id)
    assert (done.state, done.progress, done.result) == ("succeeded", 1.0, {"ok": True})
    assert done.started_at is not None
    assert done.finished_at is not None


def test_progress_from_a_worker_that_lost_its_lease_is_dropped(
    engine: Engine, project_id: uuid.UUID
) -> None:
    with session_scope(engine) as session:
        job_id = enqueue(session=session, project_id=project_id, kind="work", payload={}).id
        claim(session=session, owner="slow", lease=LEASE)
    context = JobContext(
        job_id=job_id,
        kind="work",
        project_id=project_id,
        payload={},
        attempt=1,
        engine=engine,
        owner="someone-else",
    )
    context.progress(0.5, "not mine")
    context.log("not mine either")
    assert context.lease_lost.is_set()
    job = _job(engine, job_id)
    assert (job.progress, job.message) == (0.0, "attempt 1 of 3 started")
    assert "not mine" not in job.logs


def test_a_failing_handler_is_retried_and_its_traceback_logged(
    engine: Engine, project_id: uuid.UUID
) -> None:
    with session_scope(engine) as session:
        job_id = enqueue(session=session, project_id=project_id, kind="work", payload={}).id
    calls: list[int] = []

    def fails_once(context: JobContext) -> dict[str, Any]:
        calls.append(context.attempt)
        if context.attempt == 1:
            raise RuntimeError("store was busy")
        return {"attempt": context.attempt}

    worker = Worker(
        engine=engine,
        registry=HandlerRegistry({"work": fails_once}),
        retry_delay=timedelta(0),
    )
    assert worker.run_once()
    assert _job(engine, job_id).state == "queued"
    assert worker.run_once()
    assert calls == [1, 2]
    finished = _job(engine, job_id)
    assert (finished.state, finished.result, finished.attempts) == (
        "succeeded",
        {"attempt": 2},
        2,
    )
    assert "RuntimeError: store was busy" in finished.logs
    assert "Traceback" in finished.logs


def test_a_permanent_failure_fails_the_job_at_once_with_its_reason(
    engine: Engine, project_id: uuid.UUID
) -> None:
    with session_scope(engine) as session:
        job_id = enqueue(session=session, project_id=project_id, kind="work", payload={}).id
    calls: list[int] = []

    def refuses(context: JobContext) -> None:
        calls.append(context.attempt)
        try:
            raise InvalidInput("column 'zodiac' is not in the window", field="columns")
        except InvalidInput as error:
            raise Permanent(error.detail) from error

    worker = Worker(
        engine=engine, registry=HandlerRegistry({"work": refuses}), retry_delay=timedelta(0)
    )
    assert worker.run_once()
    assert not worker.run_once()
    assert calls == [1]
    job = _job(engine, job_id)
    assert (job.state, job.attempts) == ("failed", 1)
    assert job.error == "InvalidInput: column 'zodiac' is not in the window"
    assert "not retried" in job.logs


def test_two_workers_never_run_the_same_job(engine: Engine, project_id: uuid.UUID) -> None:
    with session_scope(engine) as session:
        ids = {
            enqueue(session=session, project_id=project_id, kind="pipeline_run", payload={}).id
            for _ in range(12)
        }
    seen: list[uuid.UUID] = []
    lock = threading.Lock()

    def records(context: JobContext) -> None:
        with lock:
            seen.append(context.job_id)

    def drain() -> None:
        worker = Worker(engine=engine, registry=HandlerRegistry({"pipeline_run": records}))
        while worker.run_once():
            pass

    threads = [threading.Thread(target=drain) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(seen) == sorted(ids)
    with session_scope(engine) as session:
        states = {job.state for job in session.exec(select(RuntimeJob)).all()}
    assert states == {"succeeded"}


def test_the_registry_names_a_missing_kind() -> None:
    registry = HandlerRegistry({"work": lambda _context: None})
    with pytest.raises(LookupError, match="no handler registered for job kind 'report_render'"):
        registry.handler_for("report_render")
    registry.register("other", lambda _context: None)
    assert registry.kinds() == ["other", "work"]


def test_a_worker_claims_only_the_kinds_it_has_handlers_for(
    engine: Engine, project_id: uuid.UUID
) -> None:
    with session_scope(engine) as session:
        foreign = enqueue(session=session, project_id=project_id, kind="elsewhere", payload={}).id
    worker = Worker(engine=engine, registry=HandlerRegistry({"work": lambda _context: None}))
    assert not worker.run_once()
    assert _job(engine, foreign).state == JobState.QUEUED


def test_a_worker_takes_background_kinds_only_when_nothing_else_waits(
    engine: Engine, project_id: uuid.UUID
) -> None:
    done: list[str] = []
    registry = HandlerRegistry()
    registry.register("page", lambda context: done.append(context.kind), background=True)
    registry.register("work", lambda context: done.append(context.kind))
    assert registry.background_kinds() == ["page"]
    with session_scope(engine) as session:
        enqueue(session=session, project_id=project_id, kind="page", payload={})
        enqueue(session=session, project_id=project_id, kind="work", payload={})
        enqueue(
            session=session,
            project_id=project_id,
            kind="work",
            payload={},
            available_at=utcnow() + timedelta(hours=1),
        )
    worker = Worker(engine=engine, registry=registry)
    while worker.run_once():
        pass
    assert done == ["work", "page"]  # the older page waited for the newer work
    registry.register("page", lambda _context: None)
    assert registry.background_kinds() == []


def test_a_worker_beats_while_it_polls_so_readers_know_it_is_alive(
    engine: Engine, project_id: uuid.UUID
) -> None:
    with session_scope(engine) as session:
        assert worker_alive(session=session) == (False, None)
    worker = Worker(engine=engine, registry=HandlerRegistry({"work": lambda _c: None}))
    assert not worker.run_once()  # an idle poll beats too
    with session_scope(engine) as session:
        alive, last = worker_alive(session=session)
        assert alive
        assert last is not None
        beat = session.exec(select(WorkerBeat)).one()
        assert (beat.owner, beat.kinds) == (worker.owner, ["work"])
        later = last + WORKER_STALE + timedelta(seconds=1)
        assert worker_alive(session=session, now=later) == (False, last)


def test_an_idle_worker_starts_a_job_as_soon_as_it_is_queued(
    engine: Engine, project_id: uuid.UUID
) -> None:
    """Queueing wakes the idle worker: its next look at the queue would be an hour away."""
    ran = threading.Event()
    worker = Worker(
        engine=engine,
        registry=HandlerRegistry({"work": lambda _context: ran.set()}),
        poll_every=timedelta(hours=1),
    )
    stop = threading.Event()
    thread = threading.Thread(target=worker.run, args=(stop,))
    thread.start()
    try:
        for _ in range(300):  # its first look found nothing (it beats as it looks)
            with session_scope(engine) as session:
                if worker_alive(session=session)[0]:
                    break
            time.sleep(0.1)
        else:
            pytest.fail("the worker never looked at the queue")
        with session_scope(engine) as session:
            job_id = enqueue(session=session, project_id=project_id, kind="work", payload={}).id
        assert ran.wait(30)
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()  # stop is noticed within the hour's wait too
    assert _job(engine, job_id).state == "succeeded"
