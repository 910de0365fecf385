"""The store kernel: engine construction and the session scope every caller goes through.

SQLite is the embedded default (a file under the data directory, WAL journal, foreign keys on,
``BEGIN IMMEDIATE`` for writers so concurrent appends serialise instead of failing); PostgreSQL is
used when the URL says so. Services never commit: the caller opens one :func:`session_scope`
around an action and everything it wrote, audit entry included, commits or rolls back together.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

__all__ = ["create_store_engine", "is_sqlite", "session_scope"]


def is_sqlite(engine: Engine) -> bool:
    """Return whether the engine talks to SQLite (some statements differ by dialect)."""
    return engine.dialect.name == "sqlite"


def create_store_engine(url: str, *, echo: bool = False) -> Engine:
    """Build the engine for ``url`` with Warden's connection settings.

    Args:
        url: A SQLAlchemy URL; ``sqlite:///path`` or ``postgresql+psycopg://…``.
        echo: Log every statement (debugging only).

    Returns:
        An engine whose SQLite connections use WAL, enforce foreign keys and begin writers
        immediately, so that two writers queue rather than deadlock.
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if not url.startswith("sqlite"):
        return sa.create_engine(url, echo=echo, pool_pre_ping=True, future=True)

    in_memory = url in ("sqlite://", "sqlite:///:memory:")
    kwargs: dict[str, Any] = {"connect_args": {"check_same_thread": False, "timeout": 30}}
    if in_memory:
        kwargs["poolclass"] = StaticPool
    engine = sa.create_engine(url, echo=echo, future=True, **kwargs)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction starts.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        if not in_memory:
            cursor.execute("PRAGMA journal_mode=WAL")
            # WAL + NORMAL never corrupts the file; a power cut may lose the last commits only.
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        connection.exec_driver_sql("BEGIN IMMEDIATE")

    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """Open a session whose work commits on success and rolls back on any exception."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
