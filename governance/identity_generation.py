"""The identity generation: a counter the database moves whenever who-may-do-what changes.

The permission gate caches what an API key and a project name resolved to (see
``api/gate_cache.py``). That answer is read from four tables, :data:`IDENTITY_TABLES`; database
triggers on each of them (migration ``identity_0006``, SQLite and PostgreSQL alike) add one to
the single row of ``governance_identity_generation`` in the same transaction as any INSERT,
UPDATE or DELETE (and TRUNCATE on PostgreSQL). Triggers rather than service code, so that no
write path, present or future, ORM or raw SQL, this process or another replica, can change an
answer without moving the counter. A cached answer is used only while the counter still holds
the value read *before* the answer was read.

A later migration that rebuilds one of these tables (SQLite batch mode drops its triggers with
the old table) must create the triggers again; ``tests/governance/test_identity_generation.py``
fails at head when any table lost them.
"""

from __future__ import annotations

import sqlite3
import threading
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Field, SQLModel

import lineage.tables  # noqa: F401  (the naming convention, before the table is declared)

__all__ = ["IDENTITY_TABLES", "IdentityGeneration", "LoopGenerationReader", "read_generation"]

IDENTITY_TABLES = (
    "governance_api_key",
    "governance_principal",
    "governance_role_grant",
    "lineage_project",
)
"""Every table the gate's API-key answer is read from: keys, principals, role grants, projects."""

_READ = "SELECT value FROM governance_identity_generation WHERE id = 1"


class IdentityGeneration(SQLModel, table=True):
    """The one row whose ``value`` the triggers on :data:`IDENTITY_TABLES` move."""

    __tablename__ = "governance_identity_generation"

    id: int = Field(sa_column=sa.Column(sa.Integer, primary_key=True, autoincrement=False))
    value: int = Field(sa_column=sa.Column(sa.BigInteger, nullable=False))


def read_generation(engine: Engine) -> int | None:
    """Return the current identity generation, or ``None`` when it cannot be read.

    One statement on a pooled driver connection, outside any ORM session: on SQLite it runs in
    autocommit and sees every committed change; on PostgreSQL the pool's reset on return ends
    its implicit transaction. ``None`` (a store without the table, a failing connection) makes
    the caller skip its cache, never serve from it.
    """
    connection: Any = engine.raw_connection()
    try:
        cursor = connection.cursor()
        try:
            cursor.execute(_READ)
            row = cursor.fetchone()
        finally:
            cursor.close()
    except engine.dialect.loaded_dbapi.Error:
        return None
    finally:
        connection.close()
    return None if row is None else int(row[0])


class LoopGenerationReader:
    """Reads the generation on the event loop's thread, from a SQLite file, never waiting.

    The gate answers most requests from its cache, and the one read it then needs is about
    20 microseconds of SQLite: sending it to a worker thread and back cost more than the read
    (about 85 microseconds of CPU per request, ``bench.audit``). This reader keeps one
    connection of its own (not the pool's, which a busy server may have lent out in full: taking
    one could block the loop), in autocommit and ``query_only``, so each read sees every
    committed change. It never waits: not for SQLite's locks (``timeout=0``), nor for another
    thread using the connection. When the read cannot be made at once it answers ``None`` and
    the caller goes to a worker thread. SQLite files only: :meth:`for_engine` returns ``None``
    for other stores, whose read is a network round trip.
    """

    def __init__(self, path: str) -> None:
        self._path = path
        self._connection: sqlite3.Connection | None = None
        self._in_use = threading.Lock()

    @classmethod
    def for_engine(cls, engine: Engine) -> LoopGenerationReader | None:
        """Return a reader for the engine's SQLite file, or ``None`` (another store, memory)."""
        database = engine.url.database
        if engine.dialect.name != "sqlite" or not database or database == ":memory:":
            return None
        return cls(database)

    def read(self) -> int | None:
        """Return the generation, or ``None`` when it cannot be read at once."""
        if not self._in_use.acquire(blocking=False):
            return None
        try:
            if self._connection is None:
                connection = sqlite3.connect(
                    self._path, timeout=0, isolation_level=None, check_same_thread=False
                )
                connection.execute("PRAGMA query_only = 1")
                self._connection = connection
            row = self._connection.execute(_READ).fetchone()
        except sqlite3.Error:
            return None
        finally:
            self._in_use.release()
        return None if row is None else int(row[0])

    def close(self) -> None:
        """Close the connection (the app's shutdown)."""
        with self._in_use:
            if self._connection is not None:
                self._connection.close()
                self._connection = None
