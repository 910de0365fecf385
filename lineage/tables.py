"""Table conventions shared by every package: constraint names, UUID keys, aware timestamps.

Importing this module sets the constraint naming convention on ``SQLModel.metadata`` before any
table is declared, so that Alembic migrations get stable, reviewable constraint names on SQLite
and PostgreSQL alike. Every table module imports :class:`Record` from here, which guarantees the
order.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

__all__ = ["NAMING_CONVENTION", "AwareDateTime", "Record", "new_id", "utcnow"]

NAMING_CONVENTION: dict[str, str] = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

SQLModel.metadata.naming_convention = NAMING_CONVENTION


def utcnow() -> datetime:
    """Return the current time, timezone-aware in UTC (naive datetimes are refused everywhere)."""
    return datetime.now(UTC)


def new_id() -> uuid.UUID:
    """Return a fresh random UUID for a primary key."""
    return uuid.uuid4()


class AwareDateTime(TypeDecorator[datetime]):
    """A timestamp column that always reads back timezone-aware in UTC.

    SQLite stores no offset, so a value read back would otherwise be naive; PostgreSQL keeps it.
    Naive values are refused on the way in, because their meaning depends on the writer's clock.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        """Refuse naive datetimes and normalise to UTC."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use datetime.now(UTC) or an aware value")
        return value.astimezone(UTC)

    def process_result_value(self, value: Any, dialect: sa.Dialect) -> datetime | None:
        """Attach UTC to values that the database returned without an offset."""
        if value is None:
            return None
        assert isinstance(value, datetime)
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Record(SQLModel):
    """Mixin for tables: a UUID primary key and the time the row was created."""

    id: uuid.UUID = Field(default_factory=new_id, primary_key=True)
    created_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime, nullable=False)
