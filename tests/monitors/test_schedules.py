from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from lineage import Conflict, NotFound, create_project, session_scope
from monitors.models import (
    Monitor,
    MonitorCreate,
    MonitorRun,
    MonitorUpdate,
    RunTrigger,
    Schedule,
    parse_window,
)
from monitors.schedules import (
    MisfirePolicy,
    create_monitor,
    get_monitor,
    list_monitors,
    mark_scheduled_through,
    pause_monitor,
    plan_due_slots,
    record_run,
    resume_monitor,
    update_monitor,
)

T0 = datetime(2026, 11, 30, 12, 0, 0, tzinfo=UTC)


@pytest.fixture
def session(engine: Engine) -> Iterator[Session]:
    with session_scope(engine) as session:
        yield session


@pytest.fixture
def project_id(session: Session) -> uuid.UUID:
    return create_project(session=session, name="credit").id


def _create(
    session: Session,
    project_id: uuid.UUID,
    *,
    name: str = "drift-hourly",
    schedule: dict[str, object] | None = None,
    window: str = "last:1h",
    now: datetime = T0,
) -> Monitor:
    body = MonitorCreate.model_validate(
        {
            "name": name,
            "spec": {"kind": "drift"},
            "schedule": schedule or {"interval_seconds": 600},
            "window": window,
        }
    )
    return create_monitor(session=session, project_id=project_id, spec=body, now=now)


def _slots(plan_runs: list[tuple[datetime, RunTrigger]]) -> list[tuple[datetime, str]]:
    return [(moment.astimezone(UTC), str(trigger)) for moment, trigger in plan_runs]


def test_parse_window_reads_durations_and_since_previous_run() -> None:
    assert parse_window("last:24h") == timedelta(hours=24)
    assert parse_window("last:1h30m") == timedelta(minutes=90)
    assert parse_window("since_previous_run") is None
    with pytest.raises(ValueError, match="last:<duration>"):
        parse_window("yesterday")
    with pytest.raises(ValueError, match="not understood"):
        parse_window("last:24 hours")
    with pytest.raises(ValueError, match="longer than zero"):
        parse_window("last:0s")


def test_schedule_needs_exactly_one_of_interval_or_cron_and_a_real_zone() -> None:
    with pytest.raises(ValidationError, match="exactly one"):
        Schedule(interval_seconds=60, cron="* * * * *")
    with pytest.raises(ValidationError, match="exactly one"):
        Schedule()
    with pytest.raises(ValidationError, match="unknown time zone"):
        Schedule(cron="0 6 * * *", timezone="Mars/Olympus")
    with pytest.raises(ValidationError, match="5-field crontab"):
        Schedule(cron="every day")
    assert Schedule(cron="0 6 * * *", timezone="Europe/Berlin").timezone == "Europe/Berlin"


def test_create_stores_the_spec_and_refuses_a_duplicate_name(
    session: Session, project_id: uuid.UUID
) -> None:
    monitor = _create(session, project_id)
    assert monitor.kind == "drift"
    assert monitor.spec["kind"] == "drift"
    assert monitor.anchor_at == T0
    with pytest.raises(Conflict, match="exists in this project"):
        _create(session, project_id)
    assert [m.name for m in list_monitors(session=session, project_id=project_id)] == [
        "drift-hourly"
    ]


def test_monitors_of_another_project_are_not_found(session: Session, project_id: uuid.UUID) -> None:
    monitor = _create(session, project_id)
    other = create_project(session=session, name="other").id
    with pytest.raises(NotFound, match="no monitor"):
        get_monitor(session=session, project_id=other, monitor_id=monitor.id)


def test_interval_slots_start_at_creation_and_follow_the_grid(
    session: Session, project_id: uuid.UUID
) -> None:
    monitor = _create(session, project_id)
    assert _slots(plan_due_slots(monitor, now=T0 + timedelta(seconds=1)).runs) == [(T0, "schedule")]
    monitor.scheduled_through = T0
    assert plan_due_slots(monitor, now=T0 + timedelta(minutes=9)).runs == []
    plan = plan_due_slots(monitor, now=T0 + timedelta(minutes=10, seconds=2))
    assert _slots(plan.runs) == [(T0 + timedelta(minutes=10), "schedule")]


def test_missed_slots_coalesce_into_one_catch_up_run_by_default(
    session: Session, project_id: uuid.UUID
) -> None:
    monitor = _create(session, project_id)
    monitor.scheduled_through = T0
    now = T0 + timedelta(minutes=55)
    plan = plan_due_slots(monitor, now=now)
    assert _slots(plan.runs) == [(T0 + timedelta(minutes=50), "catch_up")]
    assert plan.missed == 4
    assert plan.through == T0 + timedelta(minutes=50)


def test_misfire_all_runs_every_missed_slot_up_to_the_cap(
    session: Session, project_id: uuid.UUID
) -> None:
    monitor = _create(session, project_id)
    monitor.scheduled_through = T0
    now = T0 + timedelta(minutes=50, seconds=5)
    plan = plan_due_slots(monitor, now=now, misfire=MisfirePolicy.ALL, max_catch_up=3)
    assert _slots(plan.runs) == [
        (T0 + timedelta(minutes=30), "catch_up"),
        (T0 + timedelta(minutes=40), "catch_up"),
        (T0 + timedelta(minutes=50), "schedule"),
    ]
    assert plan.missed == 2


def test_misfire_skip_drops_late_slots_and_keeps_an_on_time_one(
    session: Session, project_id: uuid.UUID
) -> None:
    monitor = _create(session, project_id)
    monitor.scheduled_through = T0
    late = plan_due_slots(monitor, now=T0 + timedelta(minutes=55), misfire=MisfirePolicy.SKIP)
    assert late.runs == []
    assert late.missed == 5
    assert late.through == T0 + timedelta(minutes=50)
    on_time = plan_due_slots(
        monitor, now=T0 + timedelta(minutes=50, seconds=3), misfire=MisfirePolicy.SKIP
    )
    assert _slots(on_time.runs) == [(T0 + timedelta(minutes=50), "schedule")]


def test_cron_slots_follow_the_time_zone(session: Session, project_id: uuid.UUID) -> None:
    monitor = _create(
        session,
        project_id,
        schedule={"cron": "0 6 * * *", "timezone": "Europe/Berlin"},
    )
    plan = plan_due_slots(monitor, now=datetime(2026, 12, 1, 5, 0, 30, tzinfo=UTC))
    # 06:00 in Berlin is 05:00 UTC in winter.
    assert _slots(plan.runs) == [(datetime(2026, 12, 1, 5, 0, tzinfo=UTC), "schedule")]


def test_resume_does_not_catch_up_slots_missed_while_paused(
    session: Session, project_id: uuid.UUID
) -> None:
    monitor = _create(session, project_id)
    pause_monitor(session=session, project_id=project_id, monitor_id=monitor.id)
    later = T0 + timedelta(hours=5, minutes=3)
    resume_monitor(session=session, project_id=project_id, monitor_id=monitor.id, now=later)
    assert not monitor.paused
    assert plan_due_slots(monitor, now=later + timedelta(minutes=5)).runs == []
    plan = plan_due_slots(monitor, now=T0 + timedelta(hours=5, minutes=10, seconds=1))
    assert _slots(plan.runs) == [(T0 + timedelta(hours=5, minutes=10), "schedule")]


def test_a_new_schedule_restarts_the_grid(session: Session, project_id: uuid.UUID) -> None:
    monitor = _create(session, project_id)
    changed_at = T0 + timedelta(minutes=3, seconds=30)
    update_monitor(
        session=session,
        project_id=project_id,
        monitor_id=monitor.id,
        changes=MonitorUpdate.model_validate({"schedule": {"interval_seconds": 60}}),
        now=changed_at,
    )
    assert monitor.interval_seconds == 60
    plan = plan_due_slots(monitor, now=changed_at + timedelta(seconds=61))
    assert _slots(plan.runs) == [(changed_at + timedelta(seconds=60), "catch_up")]


def test_record_run_inserts_a_slot_once_and_sets_the_window(
    session: Session, project_id: uuid.UUID
) -> None:
    monitor = _create(session, project_id)
    first = record_run(
        session=session, monitor=monitor, scheduled_for=T0, trigger=RunTrigger.SCHEDULE
    )
    assert first is not None
    assert (first.window_start, first.window_end) == (T0 - timedelta(hours=1), T0)
    again = record_run(
        session=session, monitor=monitor, scheduled_for=T0, trigger=RunTrigger.SCHEDULE
    )
    assert again is None
    runs = session.exec(select(MonitorRun).where(MonitorRun.monitor_id == monitor.id)).all()
    assert len(runs) == 1


def test_since_previous_run_windows_chain(session: Session, project_id: uuid.UUID) -> None:
    monitor = _create(session, project_id, window="since_previous_run")
    first = record_run(
        session=session, monitor=monitor, scheduled_for=T0, trigger=RunTrigger.SCHEDULE
    )
    second_at = T0 + timedelta(minutes=10)
    second = record_run(
        session=session, monitor=monitor, scheduled_for=second_at, trigger=RunTrigger.SCHEDULE
    )
    assert first is not None
    assert second is not None
    assert first.window_start == monitor.created_at
    assert (second.window_start, second.window_end) == (T0, second_at)


def test_scheduled_through_never_moves_backwards(session: Session, project_id: uuid.UUID) -> None:
    monitor = _create(session, project_id)
    later = T0 + timedelta(minutes=20)
    mark_scheduled_through(session=session, monitor_id=monitor.id, through=later)
    mark_scheduled_through(session=session, monitor_id=monitor.id, through=T0)
    session.refresh(monitor)
    assert monitor.scheduled_through == later


@pytest.mark.parametrize(
    ("misfire", "cap", "expected"),
    [
        (MisfirePolicy.COALESCE, 1, [0]),
        (MisfirePolicy.COALESCE, 3, [0]),
        (MisfirePolicy.ALL, 3, [2, 1, 0]),
        (MisfirePolicy.ALL, 1, [0]),
    ],
)
def test_a_very_long_downtime_plans_the_slots_just_before_now(
    session: Session,
    project_id: uuid.UUID,
    misfire: MisfirePolicy,
    cap: int,
    expected: list[int],
) -> None:
    monitor = _create(session, project_id, schedule={"interval_seconds": 1})
    now = T0 + timedelta(days=1, seconds=0.5)  # 86,400 missed one-second slots
    plan = plan_due_slots(monitor, now=now, misfire=misfire, max_catch_up=cap)
    latest = T0 + timedelta(days=1)
    assert [moment.astimezone(UTC) for moment, _ in plan.runs] == [
        latest - timedelta(seconds=back) for back in expected
    ]
    assert plan.through == latest
    assert plan.missed >= 10_000 - cap
