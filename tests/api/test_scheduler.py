"""The scheduler in-process: leadership, the APScheduler jobs it mirrors, and queueing slots."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from api.scheduler import LEASE_NAME, Scheduler
from api.settings import Settings
from lineage import create_project, session_scope, utcnow
from lineage.runtime.lease import current_leader, try_acquire_lease
from lineage.runtime.queue import RuntimeJob
from monitors.models import Monitor, MonitorCreate, MonitorRun
from monitors.schedules import create_monitor, pause_monitor


@pytest.fixture
def project_id(engine: Engine) -> uuid.UUID:
    with session_scope(engine) as session:
        return create_project(session=session, name="credit").id


@pytest.fixture
def make_scheduler(
    engine: Engine, database_url: str, tmp_path: Path
) -> Iterator[Callable[..., Scheduler]]:
    made: list[Scheduler] = []

    def make(**overrides: object) -> Scheduler:
        settings = Settings.model_validate(
            {"database_url": database_url, "data_dir": tmp_path, **overrides}
        )
        scheduler = Scheduler(engine=engine, settings=settings)
        made.append(scheduler)
        return scheduler

    yield make
    for scheduler in made:
        scheduler.stand_down()


def _monitor(
    engine: Engine, project_id: uuid.UUID, name: str, *, interval: int, created_ago: timedelta
) -> Monitor:
    with session_scope(engine) as session:
        body = MonitorCreate.model_validate(
            {"name": name, "spec": {"kind": "drift"}, "schedule": {"interval_seconds": interval}}
        )
        return create_monitor(
            session=session, project_id=project_id, spec=body, now=utcnow() - created_ago
        )


def _lead(engine: Engine, scheduler: Scheduler) -> None:
    """Hold the lease for ``scheduler`` without starting APScheduler (to call ``fire`` alone)."""
    with session_scope(engine) as session:
        assert try_acquire_lease(
            session=session, name=LEASE_NAME, holder=scheduler.holder, ttl=timedelta(minutes=5)
        )


def _runs(engine: Engine, monitor_id: uuid.UUID) -> list[MonitorRun]:
    with session_scope(engine) as session:
        query = (
            select(MonitorRun)
            .where(MonitorRun.monitor_id == monitor_id)
            .order_by(col(MonitorRun.scheduled_for))
        )
        return list(session.exec(query).all())


def test_only_the_lease_holder_leads_and_a_standby_follows_a_stand_down(
    engine: Engine, make_scheduler: Callable[..., Scheduler]
) -> None:
    first, second = make_scheduler(), make_scheduler()
    assert first.step()
    assert not second.step()
    assert first.leading
    assert not second.leading
    first.stand_down()
    assert not first.leading
    assert second.step()
    with session_scope(engine) as session:
        assert current_leader(session=session, name=LEASE_NAME) == second.holder


def test_fire_queues_each_due_slot_once_and_only_for_the_leader(
    engine: Engine, project_id: uuid.UUID, make_scheduler: Callable[..., Scheduler]
) -> None:
    monitor = _monitor(engine, project_id, "m", interval=3600, created_ago=timedelta(seconds=5))
    standby, leader = make_scheduler(), make_scheduler()
    _lead(engine, leader)
    assert standby.fire(monitor.id) == 0
    assert leader.fire(monitor.id) == 1
    assert leader.fire(monitor.id) == 0
    runs = _runs(engine, monitor.id)
    assert [(r.scheduled_for, r.trigger) for r in runs] == [(monitor.anchor_at, "schedule")]
    with session_scope(engine) as session:
        job = session.get(RuntimeJob, runs[0].job_id)
        assert job is not None
        assert (job.kind, job.state, job.max_attempts) == ("monitor_run", "queued", 3)


def test_downtime_is_caught_up_with_one_coalesced_run(
    engine: Engine, project_id: uuid.UUID, make_scheduler: Callable[..., Scheduler]
) -> None:
    monitor = _monitor(engine, project_id, "m", interval=60, created_ago=timedelta(minutes=30))
    leader = make_scheduler(scheduler_misfire_grace_seconds=1)
    _lead(engine, leader)
    assert leader.fire(monitor.id) == 1
    [run] = _runs(engine, monitor.id)
    assert run.trigger == "catch_up"
    assert run.scheduled_for == monitor.anchor_at + timedelta(minutes=30)


def test_misfire_all_runs_the_missed_slots_up_to_the_cap(
    engine: Engine, project_id: uuid.UUID, make_scheduler: Callable[..., Scheduler]
) -> None:
    monitor = _monitor(engine, project_id, "m", interval=60, created_ago=timedelta(minutes=30))
    leader = make_scheduler(scheduler_misfire="all", scheduler_max_catch_up=5)
    _lead(engine, leader)
    assert leader.fire(monitor.id) == 5
    slots = [r.scheduled_for for r in _runs(engine, monitor.id)]
    assert slots == [monitor.anchor_at + timedelta(minutes=m) for m in range(26, 31)]


def test_the_leader_mirrors_the_monitor_table_into_apscheduler(
    engine: Engine, project_id: uuid.UUID, make_scheduler: Callable[..., Scheduler]
) -> None:
    kept = _monitor(engine, project_id, "kept", interval=3600, created_ago=timedelta(0))
    paused = _monitor(engine, project_id, "paused", interval=3600, created_ago=timedelta(0))
    leader = make_scheduler(scheduler_sync_seconds=3600)
    assert leader.step()
    deadline = time.monotonic() + 10
    while leader.monitor_job_ids() != {str(kept.id), str(paused.id)}:
        assert time.monotonic() < deadline, leader.monitor_job_ids()
        time.sleep(0.05)
    with session_scope(engine) as session:
        pause_monitor(session=session, project_id=project_id, monitor_id=paused.id)
    leader.sync()
    assert leader.monitor_job_ids() == {str(kept.id)}
    assert len(_runs(engine, kept.id)) == 1
    leader.stand_down()
    assert leader.monitor_job_ids() == set()
