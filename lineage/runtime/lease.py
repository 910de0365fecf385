"""Leader election through a lease row: exactly one scheduler acts, the others stand by.

A lease (``lineage_runtime_lease``, one row per role such as ``"scheduler"``) names its holder and
an expiry. The holder renews it every heartbeat; anyone may take it once it has expired, so a
standby takes over at most ``ttl`` (+ one retry interval) after the leader died. Taking and
renewing are single conditional ``UPDATE`` statements — atomic on PostgreSQL and SQLite alike —
and :func:`holds_lease` lets the leader check, inside the transaction that acts, that it still
holds the lease (fencing a leader that stalled past its expiry). The table is global: a lease
belongs to the installation, not to a project.

Clocks: expiry compares the wall clocks of the processes involved; keep them NTP-synchronised
and the TTL well above the skew.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlmodel import Field, Session, col, select

from lineage.tables import AwareDateTime, Record, utcnow

__all__ = ["LeaderLease", "current_leader", "holds_lease", "release_lease", "try_acquire_lease"]


class LeaderLease(Record, table=True):
    """Who currently leads a role, until when."""

    __tablename__ = "lineage_runtime_lease"

    name: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    holder: str = Field(sa_column=sa.Column(sa.String(200), nullable=False))
    acquired_at: datetime = Field(sa_type=AwareDateTime, nullable=False)
    heartbeat_at: datetime = Field(sa_type=AwareDateTime, nullable=False)
    expires_at: datetime = Field(sa_type=AwareDateTime, nullable=False)


def _table() -> sa.Table:
    table: sa.Table = LeaderLease.__table__  # type: ignore[attr-defined]
    return table


def try_acquire_lease(
    *, session: Session, name: str, holder: str, ttl: timedelta, now: datetime | None = None
) -> bool:
    """Take or renew the lease ``name`` for ``holder``; return whether ``holder`` now holds it.

    Renewal succeeds only while ``holder`` still holds the lease; taking over succeeds only once
    the previous holder's lease has expired.
    """
    now = now or utcnow()
    table = _table()
    renewed = session.execute(
        sa.update(table)
        .where(table.c.name == name, table.c.holder == holder, table.c.expires_at >= now)
        .values(heartbeat_at=now, expires_at=now + ttl)
    )
    if renewed.rowcount:  # type: ignore[attr-defined]
        return True
    taken = session.execute(
        sa.update(table)
        .where(table.c.name == name, table.c.expires_at < now)
        .values(holder=holder, acquired_at=now, heartbeat_at=now, expires_at=now + ttl)
    )
    if taken.rowcount:  # type: ignore[attr-defined]
        return True
    if session.exec(select(LeaderLease.id).where(LeaderLease.name == name)).first() is not None:
        return False
    try:
        with session.begin_nested():
            session.add(
                LeaderLease(
                    name=name,
                    holder=holder,
                    acquired_at=now,
                    heartbeat_at=now,
                    expires_at=now + ttl,
                )
            )
    except IntegrityError:
        return False
    return True


def holds_lease(*, session: Session, name: str, holder: str, now: datetime | None = None) -> bool:
    """Return whether ``holder`` holds the unexpired lease ``name`` (check before acting)."""
    now = now or utcnow()
    query = select(LeaderLease.id).where(
        LeaderLease.name == name, LeaderLease.holder == holder, col(LeaderLease.expires_at) >= now
    )
    return session.exec(query).first() is not None


def current_leader(*, session: Session, name: str, now: datetime | None = None) -> str | None:
    """Return who holds the unexpired lease ``name``, or ``None`` when nobody leads."""
    now = now or utcnow()
    query = select(LeaderLease.holder).where(
        LeaderLease.name == name, col(LeaderLease.expires_at) >= now
    )
    return session.exec(query).first()


def release_lease(*, session: Session, name: str, holder: str, now: datetime | None = None) -> None:
    """Give the lease up on a clean shutdown so a standby takes over at its next attempt."""
    now = now or utcnow()
    table = _table()
    session.execute(
        sa.update(table)
        .where(table.c.name == name, table.c.holder == holder)
        .values(expires_at=now - timedelta(microseconds=1))
    )
