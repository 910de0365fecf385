from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lineage import Conflict, NotFound, create_project, session_scope
from monitors.models import Monitor, MonitorCreate, MonitorRun, RunTrigger
from monitors.schedules import create_monitor
from retrain.jobs import (
    Job,
    JobKind,
    JobState,
    cancel_job,
    enqueue,
    get_job,
    queue_depth,
    queue_monitor_run,
)
from retrain.worker import claim

T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_scope(engine) as session:
        yield session


@pytest.fixture
def project_id(session: Session) -> uuid.UUID:
    return create_project(session=session, name="credit").id


@pytest.fixture
def monitor(session: Session, project_id: uuid.UUID) -> Monitor:
    body = MonitorCreate.model_validate(
        {"name": "drift", "spec": {"kind": "drift"}, "schedule": {"interval_seconds": 60}}
    )
    return create_monitor(session=session, project_id=project_id, spec=body, now=T0)


def test_queue_monitor_run_writes_the_run_and_its_job_together(
    session: Session, monitor: Monitor
) -> None:
    run = queue_monitor_run(
        session=session, monitor=monitor, scheduled_for=T0, trigger=RunTrigger.SCHEDULE
    )
    assert run is not None
    assert run.job_id is not None
    job = get_job(session=session, job_id=run.job_id)
    assert job.kind == JobKind.MONITOR_RUN
    assert job.state == JobState.QUEUED
    assert job.payload == {"monitor_run_id": str(run.id), "monitor_id": str(monitor.id)}


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
    assert len(session.exec(select(Job)).all()) == 1


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


def test_cancel_stops_a_queued_job_and_its_run(session: Session, monitor: Monitor) -> None:
    run = queue_monitor_run(
        session=session, monitor=monitor, scheduled_for=T0, trigger=RunTrigger.MANUAL
    )
    assert run is not None
    assert run.job_id is not None
    cancel_job(session=session, job_id=run.job_id, project_id=monitor.project_id)
    session.refresh(run)
    assert run.state == "cancelled"
    assert run.finished_at is not None
    with pytest.raises(Conflict, match="only queued jobs can be cancelled"):
        cancel_job(session=session, job_id=run.job_id, project_id=monitor.project_id)


def test_cancel_refuses_a_running_job(session: Session, project_id: uuid.UUID) -> None:
    job = enqueue(session=session, project_id=project_id, kind=JobKind.REPORT_RENDER, payload={})
    claimed = claim(session=session, owner="w1", lease=timedelta(seconds=30))
    assert claimed is not None
    assert claimed.id == job.id
    with pytest.raises(Conflict, match="is running"):
        cancel_job(session=session, job_id=job.id, project_id=project_id)


def test_jobs_of_another_project_are_not_found(session: Session, project_id: uuid.UUID) -> None:
    job = enqueue(session=session, project_id=project_id, kind=JobKind.PIPELINE_RUN, payload={})
    other = create_project(session=session, name="other").id
    with pytest.raises(NotFound, match="no job"):
        get_job(session=session, job_id=job.id, project_id=other)


def test_queue_depth_counts_waiting_jobs_per_kind(session: Session, project_id: uuid.UUID) -> None:
    for kind in (JobKind.PIPELINE_RUN, JobKind.PIPELINE_RUN, JobKind.REPORT_RENDER):
        enqueue(session=session, project_id=project_id, kind=kind, payload={})
    assert queue_depth(session=session) == {"pipeline_run": 2, "report_render": 1}
