"""The job queue on its own: enqueue, cancel, find, count; kinds are plain strings."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from lineage import Conflict, NotFound, create_project, session_scope
from lineage.runtime.queue import JobState, cancel_job, claim, enqueue, get_job, queue_depth


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_scope(engine) as session:
        yield session


@pytest.fixture
def project_id(session: Session) -> uuid.UUID:
    return create_project(session=session, name="credit").id


def test_cancel_stops_a_queued_job_once(session: Session, project_id: uuid.UUID) -> None:
    job = enqueue(session=session, project_id=project_id, kind="report_render", payload={})
    cancelled = cancel_job(session=session, job_id=job.id, project_id=project_id)
    assert cancelled.state == JobState.CANCELLED
    assert cancelled.finished_at is not None
    assert claim(session=session, owner="w1", lease=timedelta(seconds=30)) is None
    with pytest.raises(Conflict, match="only queued jobs can be cancelled"):
        cancel_job(session=session, job_id=job.id, project_id=project_id)


def test_cancel_refuses_a_running_job(session: Session, project_id: uuid.UUID) -> None:
    job = enqueue(session=session, project_id=project_id, kind="report_render", payload={})
    claimed = claim(session=session, owner="w1", lease=timedelta(seconds=30))
    assert claimed is not None
    assert claimed.id == job.id
    with pytest.raises(Conflict, match="is running"):
        cancel_job(session=session, job_id=job.id, project_id=project_id)


def test_jobs_of_another_project_are_not_found(session: Session, project_id: uuid.UUID) -> None:
    job = enqueue(session=session, project_id=project_id, kind="pipeline_run", payload={})
    other = create_project(session=session, name="other").id
    with pytest.raises(NotFound, match="no job"):
        get_job(session=session, job_id=job.id, project_id=other)
    assert get_job(session=session, job_id=job.id).id == job.id


def test_claim_of_one_job_takes_that_job_only(session: Session, project_id: uuid.UUID) -> None:
    older = enqueue(session=session, project_id=project_id, kind="pipeline_run", payload={})
    wanted = enqueue(session=session, project_id=project_id, kind="pipeline_run", payload={})
    claimed = claim(session=session, owner="cli", lease=timedelta(seconds=30), job_id=wanted.id)
    assert claimed is not None
    assert claimed.id == wanted.id
    assert older.state == JobState.QUEUED
    assert (
        claim(session=session, owner="cli", lease=timedelta(seconds=30), job_id=wanted.id) is None
    )


def test_queue_depth_counts_waiting_jobs_per_kind(session: Session, project_id: uuid.UUID) -> None:
    for kind in ("pipeline_run", "pipeline_run", "report_render"):
        enqueue(session=session, project_id=project_id, kind=kind, payload={})
    assert queue_depth(session=session) == {"pipeline_run": 2, "report_render": 1}
