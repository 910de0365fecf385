"""Monitor services (create, change, pause, resume, list) and the computation of due slots.

Reading runs with their state, and queuing a slot with its job, is :mod:`monitors.run_jobs`.

Slots are points on a grid fixed by the monitor alone — an interval anchored at ``anchor_at`` or
a cron line in a time zone (APScheduler 3 triggers compute both) — so every scheduler process
derives the same ``scheduled_for`` values. :func:`record_run` inserts a slot and treats the unique
``(monitor_id, scheduled_for)`` violation as "already done": that is what makes a slot run at most
once even when two schedulers race.

Misfires (slots that passed while no scheduler ran) follow a :class:`MisfirePolicy`:

* ``coalesce`` (default): all missed slots collapse into one catch-up run for the latest slot;
* ``all``: every missed slot runs, at most ``max_catch_up`` of the most recent ones;
* ``skip``: missed slots are dropped; only a slot still within the grace time runs.

A slot counts as on time while ``now - slot <= grace``. Slots before ``active_since`` (set at
creation, on resume and when the schedule changes) never run, so pausing for a week and resuming
does not unleash a week of catch-up. ``scheduled_through`` is the high-water mark of slots already
planned, so each slot is considered once.
"""

from __future__ import annotations

import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from lineage.deployments import resolve_body_deployment
from lineage.errors import Conflict, InvalidInput, NotFound
from lineage.tables import utcnow
from monitors.models import (
    Monitor,
    MonitorCreate,
    MonitorRun,
    MonitorUpdate,
    RunTrigger,
    Schedule,
    parse_window,
)

if TYPE_CHECKING:
    from apscheduler.triggers.base import BaseTrigger

__all__ = [
    "DuePlan",
    "MisfirePolicy",
    "active_monitors",
    "create_monitor",
    "get_monitor",
    "list_monitors",
    "mark_scheduled_through",
    "pause_monitor",
    "plan_due_slots",
    "record_run",
    "resume_monitor",
    "schedule_fingerprint",
    "trigger_for",
    "update_monitor",
]

_MAX_GRID_STEPS = 10_000


class MisfirePolicy(StrEnum):
    """What to do with slots that passed while no scheduler was running (see module doc)."""

    COALESCE = "coalesce"
    ALL = "all"
    SKIP = "skip"


def _whole_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _apply_schedule(monitor: Monitor, schedule: Schedule | None, now: datetime) -> None:
    """Set the slot grid; ``None`` leaves none (the monitor runs only on request)."""
    monitor.interval_seconds = None if schedule is None else schedule.interval_seconds
    monitor.cron = None if schedule is None else schedule.cron
    monitor.timezone = "UTC" if schedule is None else schedule.timezone
    monitor.anchor_at = _whole_second(now)
    monitor.active_since = _whole_second(now)


def _ensure_unique_name(
    *, session: Session, project_id: uuid.UUID, name: str, monitor_id: uuid.UUID | None = None
) -> None:
    query = select(Monitor.id).where(Monitor.project_id == project_id, Monitor.name == name)
    existing = session.exec(query).first()
    if existing is not None and existing != monitor_id:
        raise Conflict(f"a monitor named {name!r} exists in this project; pick another name")


def create_monitor(
    *,
    session: Session,
    project_id: uuid.UUID,
    spec: MonitorCreate,
    now: datetime | None = None,
    environment: str = "production",
) -> Monitor:
    """Store a new monitor; an interval schedule has its first slot at creation time.

    ``spec.deployment_id`` may name the deployment: the one live in ``environment``'s slot.

    Raises:
        Conflict: The project has a monitor with that name already.
        InvalidInput: No such deployment in the project.
    """
    now = now or utcnow()
    deployment_id = (
        None
        if spec.deployment_id is None
        else resolve_body_deployment(
            session=session, project_id=project_id, ref=spec.deployment_id, environment=environment
        ).id
    )
    _ensure_unique_name(session=session, project_id=project_id, name=spec.name)
    monitor = Monitor(
        project_id=project_id,
        deployment_id=deployment_id,
        name=spec.name,
        kind=spec.spec.kind,
        spec=spec.spec.model_dump(mode="json"),
        window=spec.window,
        paused=spec.paused,
        anchor_at=_whole_second(now),
        active_since=_whole_second(now),
        created_at=now,
        updated_at=now,
    )
    _apply_schedule(monitor, spec.schedule, now)
    session.add(monitor)
    session.flush()
    return monitor


def get_monitor(*, session: Session, project_id: uuid.UUID, monitor_id: uuid.UUID) -> Monitor:
    """Return a monitor of the project, or raise :class:`NotFound` (also for other projects)."""
    monitor = session.get(Monitor, monitor_id)
    if monitor is None or monitor.project_id != project_id:
        raise NotFound(f"no monitor {monitor_id} in this project; list them with GET …/monitors")
    return monitor


def list_monitors(*, session: Session, project_id: uuid.UUID) -> list[Monitor]:
    """Return the project's monitors ordered by name."""
    query = select(Monitor).where(Monitor.project_id == project_id).order_by(col(Monitor.name))
    return list(session.exec(query).all())


def active_monitors(*, session: Session) -> list[Monitor]:
    """Return every unpaused, scheduled monitor of every project (the scheduler's job list)."""
    query = (
        select(Monitor)
        .where(col(Monitor.paused).is_(False))
        .where(col(Monitor.interval_seconds).is_not(None) | col(Monitor.cron).is_not(None))
        .order_by(col(Monitor.id))
    )
    return list(session.exec(query).all())


def update_monitor(
    *,
    session: Session,
    project_id: uuid.UUID,
    monitor_id: uuid.UUID,
    changes: MonitorUpdate,
    now: datetime | None = None,
) -> Monitor:
    """Change a monitor; a new schedule starts afresh from now (no catch-up of the old grid)."""
    now = now or utcnow()
    monitor = get_monitor(session=session, project_id=project_id, monitor_id=monitor_id)
    if changes.name is not None and changes.name != monitor.name:
        _ensure_unique_name(
            session=session, project_id=project_id, name=changes.name, monitor_id=monitor.id
        )
        monitor.name = changes.name
    if changes.spec is not None:
        monitor.kind = changes.spec.kind
        monitor.spec = changes.spec.model_dump(mode="json")
    if changes.window is not None:
        monitor.window = changes.window
    if "schedule" in changes.model_fields_set:
        _apply_schedule(monitor, changes.schedule, now)
    monitor.updated_at = now
    session.add(monitor)
    session.flush()
    return monitor


def pause_monitor(
    *, session: Session, project_id: uuid.UUID, monitor_id: uuid.UUID, now: datetime | None = None
) -> Monitor:
    """Stop scheduling a monitor; runs already queued still run, manual runs stay possible."""
    monitor = get_monitor(session=session, project_id=project_id, monitor_id=monitor_id)
    monitor.paused = True
    monitor.updated_at = now or utcnow()
    session.add(monitor)
    session.flush()
    return monitor


def resume_monitor(
    *, session: Session, project_id: uuid.UUID, monitor_id: uuid.UUID, now: datetime | None = None
) -> Monitor:
    """Schedule a paused monitor again from now on; slots missed while paused never run."""
    now = now or utcnow()
    monitor = get_monitor(session=session, project_id=project_id, monitor_id=monitor_id)
    if monitor.paused:
        monitor.paused = False
        monitor.active_since = _whole_second(now)
    monitor.updated_at = now
    session.add(monitor)
    session.flush()
    return monitor


def trigger_for(monitor: Monitor) -> BaseTrigger:
    """Return the APScheduler trigger that defines the monitor's slot grid.

    Raises:
        InvalidInput: The monitor has no schedule (it runs only on request).
    """
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    if monitor.cron is not None:
        return CronTrigger.from_crontab(monitor.cron, timezone=monitor.timezone)
    if monitor.interval_seconds is None:
        raise InvalidInput(
            f"monitor {monitor.name!r} has no schedule; it runs only on request",
            field="schedule",
        )
    return IntervalTrigger(
        seconds=monitor.interval_seconds, start_date=monitor.anchor_at, timezone=monitor.timezone
    )


def schedule_fingerprint(monitor: Monitor) -> tuple[object, ...]:
    """Return what identifies a monitor's trigger, so a scheduler rebuilds only changed jobs."""
    return (monitor.interval_seconds, monitor.cron, monitor.timezone, monitor.anchor_at)


@dataclass(frozen=True, slots=True)
class DuePlan:
    """The slots to run now and the high-water mark to store afterwards.

    Attributes:
        runs: ``(scheduled_for, trigger)`` pairs to insert, oldest first.
        through: The latest slot considered (run or dropped); ``None`` when nothing was due.
        missed: How many due slots were dropped by the misfire policy.
    """

    runs: list[tuple[datetime, RunTrigger]] = field(default_factory=list)
    through: datetime | None = None
    missed: int = 0


def plan_due_slots(
    monitor: Monitor,
    *,
    now: datetime,
    misfire: MisfirePolicy = MisfirePolicy.COALESCE,
    grace: timedelta = timedelta(seconds=60),
    max_catch_up: int = 100,
) -> DuePlan:
    """Return which of the monitor's slots in ``(scheduled_through, now]`` to run.

    Pure: reads the monitor, writes nothing. See the module docstring for the misfire rule.
    A monitor without a schedule has no slots.
    """
    if monitor.cron is None and monitor.interval_seconds is None:
        return DuePlan()
    trigger = trigger_for(monitor)
    start = monitor.active_since
    if monitor.scheduled_through is not None and monitor.scheduled_through >= start:
        start = monitor.scheduled_through + timedelta(microseconds=1)
    kept: deque[datetime] = deque(maxlen=max(1, max_catch_up))
    total = 0
    jumped = False
    slot = trigger.get_next_fire_time(None, start)
    while slot is not None and slot <= now:
        if total == _MAX_GRID_STEPS and not jumped:
            # Downtime spanning more slots than is worth walking: skip to the last stretch before
            # now that the kept slots can cover; ``missed`` becomes a lower bound.
            jumped = True
            span = kept[-1] - kept[0] + (slot - kept[-1])
            resume = trigger.get_next_fire_time(None, now - span)
            if resume is not None and slot < resume <= now:
                kept.clear()
                slot = resume
        kept.append(slot)
        total += 1
        slot = trigger.get_next_fire_time(slot, slot)
    if not kept:
        return DuePlan()
    latest = kept[-1]
    on_time = now - latest <= grace
    if total == 1 and on_time:
        runs = [(latest, RunTrigger.SCHEDULE)]
    elif misfire is MisfirePolicy.ALL:
        runs = [(moment, RunTrigger.CATCH_UP) for moment in list(kept)[:-1]]
        runs.append((latest, RunTrigger.SCHEDULE if on_time else RunTrigger.CATCH_UP))
    elif misfire is MisfirePolicy.SKIP:
        runs = [(latest, RunTrigger.SCHEDULE)] if on_time else []
    else:
        runs = [(latest, RunTrigger.CATCH_UP)]
    return DuePlan(runs=runs, through=latest, missed=total - len(runs))


def _window(
    *, session: Session, monitor: Monitor, scheduled_for: datetime
) -> tuple[datetime, datetime]:
    length = parse_window(monitor.window)
    if length is not None:
        return scheduled_for - length, scheduled_for
    previous = session.exec(
        select(MonitorRun.window_end)
        .where(
            MonitorRun.monitor_id == monitor.id,
            col(MonitorRun.scheduled_for) < scheduled_for,
        )
        .order_by(col(MonitorRun.scheduled_for).desc())
        .limit(1)
    ).first()
    return previous or monitor.created_at, scheduled_for


def record_run(
    *,
    session: Session,
    monitor: Monitor,
    scheduled_for: datetime,
    trigger: RunTrigger,
) -> MonitorRun | None:
    """Insert the run for one slot; return ``None`` when that slot exists already.

    The insert happens in a savepoint, so a unique violation (another scheduler, or this one
    again after a crash, got there first) leaves the caller's transaction usable.
    """
    window_start, window_end = _window(
        session=session, monitor=monitor, scheduled_for=scheduled_for
    )
    run = MonitorRun(
        project_id=monitor.project_id,
        monitor_id=monitor.id,
        scheduled_for=scheduled_for,
        trigger=trigger,
        window_start=window_start,
        window_end=window_end,
    )
    try:
        with session.begin_nested():
            session.add(run)
    except IntegrityError:
        return None
    return run


def mark_scheduled_through(*, session: Session, monitor_id: uuid.UUID, through: datetime) -> None:
    """Advance the monitor's high-water mark of planned slots (never moves it backwards)."""
    session.execute(
        sa.update(Monitor)
        .where(
            col(Monitor.id) == monitor_id,
            sa.or_(
                col(Monitor.scheduled_through).is_(None), col(Monitor.scheduled_through) < through
            ),
        )
        .values(scheduled_through=through)
    )
