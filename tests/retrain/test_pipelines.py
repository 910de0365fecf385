from __future__ import annotations

import threading
import uuid
from collections.abc import Callable

import pytest
import sqlalchemy as sa
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import select

from governance.actors import Actor
from governance.audit import AuditEntry
from lineage.errors import Conflict, InvalidInput
from lineage.projects import Project
from lineage.runtime.queue import JobState, RuntimeJob
from lineage.store import session_scope
from retrain.pipelines import (
    PIPELINE_RUN,
    Pipeline,
    PipelineRun,
    PipelineRunState,
    Step,
    cancel_run,
    claim_run,
    finish_run,
    get_run,
    list_runs,
    request_run,
)
from tests.retrain.conftest import adult_spec


def test_a_step_is_an_entry_point_or_a_command_never_both() -> None:
    with pytest.raises(ValidationError, match="exactly one of 'entrypoint'"):
        Step(name="train", entrypoint="api.demo.adult:train", command=["true"])
    with pytest.raises(ValidationError, match="exactly one of 'entrypoint'"):
        Step(name="train")
    with pytest.raises(ValidationError, match="entrypoint"):
        Step(name="train", entrypoint="not a module path")


def test_pipeline_names_are_unique_per_project(
    make_pipeline: Callable[..., Pipeline], engine: Engine
) -> None:
    make_pipeline()
    with pytest.raises(Conflict, match="exists already"):
        make_pipeline()
    with session_scope(engine) as session:
        actions = session.exec(select(AuditEntry.action)).all()
    assert "pipeline.create" in actions


def test_a_request_queues_one_run_and_one_worker_job(
    make_pipeline: Callable[..., Pipeline], engine: Engine, trainer: Actor
) -> None:
    pipeline = make_pipeline()
    with session_scope(engine) as session:
        request = request_run(session=session, pipeline=pipeline, actor=trainer, reason="drift")
    assert request.created
    assert request.run.state == PipelineRunState.QUEUED
    assert request.run.parameters["max_rows"] == 3000
    with session_scope(engine) as session:
        jobs = session.exec(select(RuntimeJob).where(RuntimeJob.kind == PIPELINE_RUN)).all()
    assert [job.payload["run_id"] for job in jobs] == [str(request.run.id)]


def test_a_storm_of_requests_yields_one_run(
    make_pipeline: Callable[..., Pipeline], engine: Engine, trainer: Actor
) -> None:
    pipeline = make_pipeline()
    created: list[bool] = []
    run_ids: set[uuid.UUID] = set()
    lock = threading.Lock()

    def ask() -> None:
        with session_scope(engine) as session:
            request = request_run(session=session, pipeline=pipeline, actor=trainer)
            with lock:
                created.append(request.created)
                run_ids.add(request.run.id)

    threads = [threading.Thread(target=ask) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert created.count(True) == 1
    assert len(run_ids) == 1
    with session_scope(engine) as session:
        assert len(list_runs(session=session, project_id=pipeline.project_id)) == 1


def test_the_database_refuses_a_second_active_run_of_a_model(
    make_pipeline: Callable[..., Pipeline], engine: Engine, trainer: Actor, project: Project
) -> None:
    pipeline = make_pipeline()
    with session_scope(engine) as session:
        request_run(session=session, pipeline=pipeline, actor=trainer)
    sneaky = PipelineRun(
        project_id=project.id,
        pipeline_id=pipeline.id,
        model_name="income",
        active_model="income",
        requested_by_name="sneaky",
    )
    with session_scope(engine) as session:
        session.add(sneaky)
        with pytest.raises(sa.exc.IntegrityError, match=r"(?i)unique"):
            session.flush()
        session.rollback()


def test_a_finished_run_frees_the_model_for_the_next_one(
    make_pipeline: Callable[..., Pipeline], engine: Engine, trainer: Actor
) -> None:
    pipeline = make_pipeline()
    with session_scope(engine) as session:
        first = request_run(session=session, pipeline=pipeline, actor=trainer).run
    with session_scope(engine) as session:
        run = claim_run(session=session, run_id=first.id)
        finish_run(
            session=session, run=run, state=PipelineRunState.FAILED, actor=trainer, error="boom"
        )
    with session_scope(engine) as session:
        second = request_run(session=session, pipeline=pipeline, actor=trainer)
    assert second.created
    assert second.run.id != first.id


def test_only_declared_parameters_can_be_overridden(
    make_pipeline: Callable[..., Pipeline], engine: Engine, trainer: Actor
) -> None:
    pipeline = make_pipeline()
    with (
        pytest.raises(InvalidInput, match=r"\['epochs'\] are not declared") as caught,
        session_scope(engine) as session,
    ):
        request_run(session=session, pipeline=pipeline, actor=trainer, parameters={"epochs": 3})
    assert caught.value.field == "parameters"
    with session_scope(engine) as session:
        run = request_run(
            session=session, pipeline=pipeline, actor=trainer, parameters={"max_rows": 500}
        ).run
    assert run.parameters["max_rows"] == 500


def test_cancelling_a_queued_run_ends_it_and_a_finished_one_is_refused(
    make_pipeline: Callable[..., Pipeline], engine: Engine, trainer: Actor, project: Project
) -> None:
    pipeline = make_pipeline()
    with session_scope(engine) as session:
        run = request_run(session=session, pipeline=pipeline, actor=trainer).run
    with session_scope(engine) as session:
        cancelled = cancel_run(session=session, project_id=project.id, run_id=run.id, actor=trainer)
    assert cancelled.state == PipelineRunState.CANCELLED
    assert cancelled.active_model is None
    with pytest.raises(Conflict, match="cancelled already"), session_scope(engine) as session:
        cancel_run(session=session, project_id=project.id, run_id=run.id, actor=trainer)
    with (
        pytest.raises(Conflict, match="is cancelled; it cannot become running"),
        session_scope(engine) as session,
    ):
        claim_run(session=session, run_id=run.id)


def test_the_state_machine_refuses_illegal_moves(
    make_pipeline: Callable[..., Pipeline], engine: Engine, trainer: Actor
) -> None:
    pipeline = make_pipeline()
    with session_scope(engine) as session:
        run = request_run(session=session, pipeline=pipeline, actor=trainer).run
        with pytest.raises(Conflict, match="is queued; it cannot become succeeded"):
            finish_run(session=session, run=run, state=PipelineRunState.SUCCEEDED, actor=trainer)


def test_spec_round_trips_through_the_table(
    make_pipeline: Callable[..., Pipeline],
) -> None:
    pipeline = make_pipeline(time_limit_seconds=42)
    assert pipeline.parsed_spec() == adult_spec(time_limit_seconds=42)


def _worker_died(engine: Engine, run: PipelineRun) -> None:
    with session_scope(engine) as session:
        job = session.get(RuntimeJob, run.job_id)
        assert job is not None
        job.state = JobState.FAILED
        job.error = "lease expired after 1 attempt"
        session.add(job)


def test_a_run_whose_worker_died_releases_its_model(
    make_pipeline: Callable[..., Pipeline], engine: Engine, trainer: Actor, project: Project
) -> None:
    pipeline = make_pipeline()
    with session_scope(engine) as session:
        stuck = request_run(session=session, pipeline=pipeline, actor=trainer).run
    with session_scope(engine) as session:
        claim_run(session=session, run_id=stuck.id)
    _worker_died(engine, stuck)

    with session_scope(engine) as session:
        fresh = request_run(session=session, pipeline=pipeline, actor=trainer)
    assert fresh.created
    with session_scope(engine) as session:
        old = get_run(session=session, project_id=project.id, run_id=stuck.id)
    assert old.state == PipelineRunState.FAILED
    assert "lease expired after 1 attempt" in old.error

    with session_scope(engine) as session:
        claim_run(session=session, run_id=fresh.run.id)
    _worker_died(engine, fresh.run)
    with session_scope(engine) as session:
        cancelled = cancel_run(
            session=session, project_id=project.id, run_id=fresh.run.id, actor=trainer
        )
    assert cancelled.state == PipelineRunState.CANCELLED
