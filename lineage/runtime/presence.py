"""Worker presence: each worker process beats a row, so readers can tell whether any is alive.

A queued job says nothing about whether anything will ever claim it; this table does. A worker
upserts its row (``lineage_runtime_worker``, keyed by its lease-owner name) when it starts and
every heartbeat while it polls or works; :func:`last_worker_beat` returns the newest beat, and
a beat older than :data:`WORKER_STALE` means no worker has been seen. Rows of stopped workers
are kept (their last beat is the answer to "when did a worker last run?") and pruned after a day.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, col, func, select

from lineage.tables import AwareDateTime, Record, utcnow

__all__ = ["WORKER_STALE", "WorkerBeat", "beat_worker", "last_worker_beat", "worker_alive"]

WORKER_STALE = timedelta(seconds=60)
"""A worker whose last beat is older than this is not counted as alive."""
_PRUNE_AFTER = timedelta(days=1)


class WorkerBeat(Record, table=True):
    """One worker process and when it last beat."""

    __tablename__ = "lineage_runtime_worker"

    owner: str = Field(sa_column=sa.Column(sa.String(200), nullable=False, unique=True))
    kinds: list[str] = Field(default_factory=list, sa_column=sa.Column(sa.JSON, nullable=False))
    started_at: datetime = Field(sa_type=AwareDateTime, nullable=False)
    last_seen_at: datetime = Field(sa_type=AwareDateTime, nullable=False, index=True)


def beat_worker(
    *, session: Session, owner: str, kinds: list[str], now: datetime | None = None
) -> None:
    """Record that worker ``owner`` (handling ``kinds``) is alive now."""
    now = now or utcnow()
    table: sa.Table = WorkerBeat.__table__  # type: ignore[attr-defined]
    updated = session.execute(
        sa.update(table).where(table.c.owner == owner).values(last_seen_at=now, kinds=kinds)
    )
    if not updated.rowcount:  # type: ignore[attr-defined]
        try:
            with session.begin_nested():
                session.add(WorkerBeat(owner=owner, kinds=kinds, started_at=now, last_seen_at=now))
                session.flush()
        except IntegrityError:  # pragma: no cover - the same owner beat twice at once
            pass
    session.execute(sa.delete(table).where(table.c.last_seen_at < now - _PRUNE_AFTER))


def last_worker_beat(*, session: Session) -> datetime | None:
    """Return the newest beat of any worker, or ``None`` if no worker ever ran."""
    latest: datetime | None = session.exec(select(func.max(col(WorkerBeat.last_seen_at)))).one()
    if latest is not None and latest.tzinfo is None:  # an aggregate may lose the zone
        latest = latest.replace(tzinfo=UTC)
    return latest


def worker_alive(
    *, session: Session, now: datetime | None = None, stale: timedelta = WORKER_STALE
) -> tuple[bool, datetime | None]:
    """Return whether a worker beat within ``stale``, and the newest beat."""
    latest = last_worker_beat(session=session)
    now = now or utcnow()
    return latest is not None and now - latest <= stale, latest
