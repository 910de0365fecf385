"""Persisted monitors and their runs: what to check, when, over which window, and what happened.

A :class:`Monitor` is a definition per deployment (a :class:`~monitors.spec.MonitorSpec`, stored
as JSON, with its kind copied into a column for queries), a schedule (a fixed interval
or a cron expression in a time zone) and a window rule (``last:<duration>`` or
``since_previous_run``). A :class:`MonitorRun` is one execution; ``(monitor_id, scheduled_for)``
is unique, so the slot a scheduler computed can be inserted at most once, whoever computes it.
A run's state lives on the runtime job that executes it (:mod:`monitors.run_jobs` reads both).

The request/response models (``MonitorCreate``, ``MonitorUpdate``, ``MonitorPublic``…) follow the
``X(table) / XCreate / XUpdate / XPublic`` family: clients never set ids, owners or timestamps.
"""

from __future__ import annotations

import re
import uuid
import zoneinfo
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

import pydantic
import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, field_validator, model_validator
from sqlmodel import Field

from lineage.deployments import DeploymentRef
from lineage.tables import AwareDateTime, Record
from monitors.spec import MonitorSpec

__all__ = [
    "MONITOR_NAME_PATTERN",
    "Monitor",
    "MonitorCreate",
    "MonitorPublic",
    "MonitorRun",
    "MonitorRunPublic",
    "MonitorRunState",
    "MonitorUpdate",
    "RunTrigger",
    "Schedule",
    "SchedulePublic",
    "parse_window",
]

MONITOR_NAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{0,99}$"
_WINDOW_PART = re.compile(r"(\d+)([smhdw])")
_UNIT_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
SINCE_PREVIOUS_RUN = "since_previous_run"


class MonitorRunState(StrEnum):
    """Where a monitor run is in its life; the last three are final."""

    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class RunTrigger(StrEnum):
    """Why a run exists: an on-time slot, a catch-up after downtime, or a person asking now."""

    SCHEDULE = "schedule"
    CATCH_UP = "catch_up"
    MANUAL = "manual"


def parse_window(rule: str) -> timedelta | None:
    """Parse a window rule; return its length, or ``None`` for ``since_previous_run``.

    Args:
        rule: ``last:<duration>`` where duration is one or more ``<int><unit>`` parts with units
            ``s m h d w`` (``last:24h``, ``last:1h30m``), or ``since_previous_run``.

    Raises:
        ValueError: The rule is neither form, or the duration is zero.
    """
    if rule == SINCE_PREVIOUS_RUN:
        return None
    if not rule.startswith("last:"):
        raise ValueError(
            f"window {rule!r} is not understood; use 'last:<duration>' (e.g. 'last:24h') "
            f"or '{SINCE_PREVIOUS_RUN}'"
        )
    text = rule.removeprefix("last:")
    parts = _WINDOW_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(
            f"window duration {text!r} is not understood; write e.g. '90s', '30m', '24h', '7d' "
            "or '1h30m'"
        )
    seconds = sum(int(n) * _UNIT_SECONDS[u] for n, u in parts)
    if seconds <= 0:
        raise ValueError("window duration must be longer than zero")
    return timedelta(seconds=seconds)


class Monitor(Record, table=True):
    """A monitor definition for one deployment: what to compute, when, and over which window."""

    __tablename__ = "monitors_monitor"
    __table_args__ = (sa.UniqueConstraint("project_id", "name"),)

    project_id: uuid.UUID = Field(foreign_key="lineage_project.id", index=True, nullable=False)
    deployment_id: uuid.UUID | None = Field(
        default=None, foreign_key="lineage_deployment.id", index=True
    )
    name: str = Field(sa_column=sa.Column(sa.String(100), nullable=False))
    kind: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    spec: dict[str, Any] = Field(default_factory=dict, sa_column=sa.Column(sa.JSON, nullable=False))
    interval_seconds: int | None = Field(default=None)
    cron: str | None = Field(default=None, sa_column=sa.Column(sa.String(120), nullable=True))
    timezone: str = Field(default="UTC", sa_column=sa.Column(sa.String(64), nullable=False))
    window: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    paused: bool = Field(default=False, nullable=False)
    anchor_at: datetime = Field(sa_type=AwareDateTime, nullable=False)
    active_since: datetime = Field(sa_type=AwareDateTime, nullable=False)
    scheduled_through: datetime | None = Field(default=None, sa_type=AwareDateTime)
    updated_at: datetime = Field(sa_type=AwareDateTime, nullable=False)


class MonitorRun(Record, table=True):
    """One execution of a monitor for one slot; a slot is inserted at most once.

    Its state (attempts, progress, message, error, timestamps) is its job's
    (:class:`~lineage.runtime.queue.RuntimeJob`, by ``job_id``), read through
    :mod:`monitors.run_jobs`; the run keeps only what is its own, the summary included.
    """

    __tablename__ = "monitors_monitor_run"
    __table_args__ = (sa.UniqueConstraint("monitor_id", "scheduled_for"),)

    project_id: uuid.UUID = Field(foreign_key="lineage_project.id", index=True, nullable=False)
    monitor_id: uuid.UUID = Field(foreign_key="monitors_monitor.id", index=True, nullable=False)
    scheduled_for: datetime = Field(sa_type=AwareDateTime, nullable=False)
    trigger: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    window_start: datetime | None = Field(default=None, sa_type=AwareDateTime)
    window_end: datetime | None = Field(default=None, sa_type=AwareDateTime)
    job_id: uuid.UUID | None = Field(default=None, foreign_key="lineage_runtime_job.id", index=True)
    summary: dict[str, Any] | None = Field(default=None, sa_column=sa.Column(sa.JSON))


class Schedule(BaseModel):
    """When a monitor runs: every ``interval_seconds``, or on a ``cron`` line in ``timezone``."""

    model_config = ConfigDict(extra="forbid")

    interval_seconds: int | None = pydantic.Field(default=None, ge=1, le=366 * 86400)
    cron: str | None = pydantic.Field(default=None, max_length=120)
    timezone: str = pydantic.Field(default="UTC", max_length=64)

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(
                f"unknown time zone {value!r}; use an IANA name like 'UTC' or 'Europe/Berlin'"
            ) from error
        return value

    @model_validator(mode="after")
    def _one_of(self) -> Schedule:
        if (self.interval_seconds is None) == (self.cron is None):
            raise ValueError("give exactly one of 'interval_seconds' or 'cron'")
        if self.cron is not None:
            from apscheduler.triggers.cron import CronTrigger

            try:
                CronTrigger.from_crontab(self.cron, timezone=self.timezone)
            except ValueError as error:
                raise ValueError(
                    f"cron {self.cron!r} is not a 5-field crontab line ({error}); "
                    "write e.g. '0 6 * * *'"
                ) from error
        return self


class SchedulePublic(BaseModel):
    """A monitor's schedule as shown to clients."""

    interval_seconds: int | None
    cron: str | None
    timezone: str


def _check_window(value: str) -> str:
    parse_window(value)
    return value


class MonitorCreate(BaseModel):
    """The body that creates a monitor; without a ``schedule`` it runs only on request."""

    model_config = ConfigDict(extra="forbid")

    name: str = pydantic.Field(pattern=MONITOR_NAME_PATTERN)
    deployment_id: DeploymentRef | None = None
    spec: MonitorSpec
    schedule: Schedule | None = None
    window: str = "last:24h"
    paused: bool = False

    _window = field_validator("window")(_check_window)


class MonitorUpdate(BaseModel):
    """The body that changes a monitor: only the fields given change.

    ``"schedule": null`` makes the monitor run only on request.
    """

    model_config = ConfigDict(extra="forbid")

    name: str | None = pydantic.Field(default=None, pattern=MONITOR_NAME_PATTERN)
    spec: MonitorSpec | None = None
    schedule: Schedule | None = None
    window: str | None = None

    @field_validator("window")
    @classmethod
    def _window_rule(cls, value: str | None) -> str | None:
        return None if value is None else _check_window(value)


class MonitorPublic(BaseModel):
    """A monitor as shown to clients; ``schedule`` is ``None`` for one run only on request."""

    id: uuid.UUID
    project_id: uuid.UUID
    deployment_id: uuid.UUID | None
    name: str
    kind: str
    spec: dict[str, Any]
    schedule: SchedulePublic | None
    window: str
    paused: bool
    created_at: datetime
    updated_at: datetime
    scheduled_through: datetime | None

    @classmethod
    def of(cls, monitor: Monitor) -> MonitorPublic:
        """Return the public view of a stored monitor."""
        return cls(
            id=monitor.id,
            project_id=monitor.project_id,
            deployment_id=monitor.deployment_id,
            name=monitor.name,
            kind=monitor.kind,
            spec=monitor.spec,
            schedule=(
                None
                if monitor.interval_seconds is None and monitor.cron is None
                else SchedulePublic(
                    interval_seconds=monitor.interval_seconds,
                    cron=monitor.cron,
                    timezone=monitor.timezone,
                )
            ),
            window=monitor.window,
            paused=monitor.paused,
            created_at=monitor.created_at,
            updated_at=monitor.updated_at,
            scheduled_through=monitor.scheduled_through,
        )


class MonitorRunPublic(BaseModel):
    """A monitor run as shown to clients, readable while it works (its state from its job)."""

    id: uuid.UUID
    project_id: uuid.UUID
    monitor_id: uuid.UUID
    scheduled_for: datetime
    trigger: RunTrigger
    state: MonitorRunState
    progress: float
    message: str
    window_start: datetime | None
    window_end: datetime | None
    job_id: uuid.UUID | None
    attempts: int
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    error: str | None
    summary: dict[str, Any] | None
