"""The store kernel: engine construction and the session scope every caller goes through.

SQLite is the embedded default (a file under the data directory, WAL journal, foreign keys on,
``BEGIN IMMEDIATE`` for writers so concurrent appends serialise instead of failing); PostgreSQL is
used when the URL says so. Services never commit: the caller opens one :func:`session_scope`
around an action and everything it wrote, audit entry included, commits or rolls back together.

Durability on SQLite: WAL with ``synchronous=NORMAL``. A committed transaction survives a crash of
the process (it is in the WAL file, which the OS holds); a power cut or kernel crash may lose the
last commits before the next WAL checkpoint, never corrupt the file. ``FULL`` would fsync every
commit; set ``PRAGMA synchronous=FULL`` per deployment if power loss must not lose a commit.
Checkpoints run on a thread of the process shortly after a write commits, not inside the commit
that fills the WAL (:mod:`lineage.sqlite_checkpoints`); that changes none of the above.

Writers on SQLite queue before SQLite's own write lock (``BEGIN IMMEDIATE``, whose waiters poll
with growing sleeps): on a lock of this process per database file, then on a file lock shared
by every process writing to it (:mod:`lineage.sqlite_writers`); each wakes its next waiter the
moment the holder commits. Transactions that only read use
``session_scope(engine, read_only=True)``: a deferred ``BEGIN`` that takes no write lock at all
and reads a consistent snapshot while writers go on (``PRAGMA query_only``: it cannot write).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlalchemy.pool import StaticPool
from sqlmodel import Session

from lineage.sqlite_checkpoints import checkpoint_soon
from lineage.sqlite_writers import Held, WriterQueue, writer_queue

__all__ = ["READ_ONLY", "create_store_engine", "is_sqlite", "session_scope"]

READ_ONLY = "warden_read_only"
"""Execution option: on SQLite, begin with a deferred ``BEGIN`` (reads only, no write lock)."""
_READ_ONLY_TWIN = "_warden_read_only_twin"
_QUERY_ONLY = "warden_query_only"  # connection info: its last transaction was read-only
_LOCK_WAIT_SECONDS = 30.0
_POOL_SIZE = 20


class _QueuedConnection(sqlite3.Connection):
    """A SQLite connection that holds its file's writer queue from ``BEGIN IMMEDIATE`` to the end.

    The queue orders Warden's writers of the file; SQLite's own lock still guards it (a writer
    that waited too long in the queue goes on to SQLite's, as before). Whatever ends the
    transaction (commit, rollback, close, a failed ``BEGIN``) lets the next writer in, once.
    """

    queue: WriterQueue | None = None
    held = Held.NOTHING
    path: str | None = None  # checkpointed off this thread after a write commits
    writing = False

    def begin_write(self) -> None:
        self.writing = True
        if self.queue is not None:
            self.held = self.queue.acquire(_LOCK_WAIT_SECONDS)
        try:
            self.execute("BEGIN IMMEDIATE")
        except BaseException:
            self.writing = False
            self._release()
            raise

    def _release(self) -> None:
        held, self.held = self.held, Held.NOTHING
        if held is not Held.NOTHING and self.queue is not None:
            self.queue.release(held)

    def commit(self) -> None:
        try:
            super().commit()
        finally:
            self._release()
        if self.writing and self.path is not None:
            self.writing = False
            checkpoint_soon(self.path)

    def rollback(self) -> None:
        self.writing = False
        try:
            super().rollback()
        finally:
            self._release()

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._release()


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
        immediately, so that two writers queue rather than deadlock (readers marked
        :data:`READ_ONLY` begin deferred).
    """
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
    if not url.startswith("sqlite"):
        server = sa.create_engine(url, echo=echo, pool_pre_ping=True, future=True)

        @sa.event.listens_for(server, "begin")
        def _read_only_begin(connection: sa.Connection) -> None:
            if connection.get_execution_options().get(READ_ONLY):
                # On the driver's cursor: the transaction's options (a server-side cursor to
                # stream results) apply to its statements, not to this one. As SQLite: no writes.
                cursor = connection.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
                cursor.execute("SET TRANSACTION READ ONLY")
                cursor.close()

        return server

    in_memory = url in ("sqlite://", "sqlite:///:memory:")
    connect_args: dict[str, Any] = {"check_same_thread": False, "timeout": 30}
    if not in_memory:
        connect_args["factory"] = _QueuedConnection
    kwargs: dict[str, Any] = {"connect_args": connect_args}
    if in_memory:
        kwargs["poolclass"] = StaticPool
    else:
        # A request holds two connections for a moment (the gate's read, then its own): past
        # the pool, each would open a fresh connection and run the pragmas again. As many as
        # the threads that run requests (anyio's default 40); an idle one costs a file handle.
        kwargs.update(pool_size=_POOL_SIZE, max_overflow=_POOL_SIZE)
    engine = sa.create_engine(url, echo=echo, future=True, **kwargs)
    queue = None if in_memory else writer_queue(str(engine.url.database))

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
        if isinstance(dbapi_connection, _QueuedConnection):
            dbapi_connection.queue = queue
            # Not in the commit that fills the WAL: on a thread of its own (sqlite_checkpoints).
            dbapi_connection.execute("PRAGMA wal_autocheckpoint=0")
            dbapi_connection.path = str(engine.url.database)

    @sa.event.listens_for(engine, "begin")
    def _on_begin(connection: sa.Connection) -> None:
        # On the driver's connection: through SQLAlchemy each of these statements cost about
        # 0.2 ms of CPU, a tenth of an audited request's SQL (bench.audit).
        raw: Any = connection.connection.dbapi_connection
        info = connection.connection.info
        if connection.get_execution_options().get(READ_ONLY):
            # A write here would be a bug that SQLite lets through while no writer commits in
            # between (and refuses otherwise): refuse it every time.
            if not info.get(_QUERY_ONLY):
                raw.execute("PRAGMA query_only=ON")
                info[_QUERY_ONLY] = True
            raw.execute("BEGIN")
            return
        if info.pop(_QUERY_ONLY, False):
            raw.execute("PRAGMA query_only=OFF")
        if isinstance(raw, _QueuedConnection):
            raw.begin_write()
        else:
            raw.execute("BEGIN IMMEDIATE")

    return engine


def _read_only(engine: Engine) -> Engine:
    """The engine's read-only twin, made once (an options engine per request cost ~30 µs)."""
    twin: Engine | None = engine.__dict__.get(_READ_ONLY_TWIN)
    if twin is None:
        twin = engine.execution_options(**{READ_ONLY: True})
        setattr(engine, _READ_ONLY_TWIN, twin)
    return twin


@contextmanager
def session_scope(engine: Engine, *, read_only: bool = False) -> Iterator[Session]:
    """Open a session whose work commits on success and rolls back on any exception.

    ``read_only`` is for transactions that only read (an authentication, a verification, a
    ``GET``): on SQLite they neither take nor wait for the write lock. A write in one is refused
    on both stores (SQLite's ``query_only``, PostgreSQL's ``READ ONLY`` transaction), so a read
    path that writes fails its tests on either rather than only when a writer interleaves.
    """
    bind = _read_only(engine) if read_only else engine
    with Session(bind, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise
