"""The queue of a SQLite file's writers across processes: the lock file beside the database.

Two :class:`WriterQueue` objects on one file stand for two processes: each opens the lock file
itself, and ``flock`` locks of separate open file descriptions exclude each other as those of
separate processes do. Real processes writing one audit chain: ``tests/governance``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from lineage import create_store_engine, session_scope
from lineage.sqlite_writers import Held, WriterQueue, writer_queue
from lineage.store import is_sqlite

_WRITE = sa.text("INSERT INTO t (n) VALUES (1)")


@pytest.fixture
def database(tmp_path: Path) -> Path:
    path = tmp_path / "store.db"
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE t (n INTEGER)")
    return path


def _other_process_takes(database: Path, *, within: float = 2.0) -> bool:
    """Whether another process gets the file's lock within ``within`` seconds.

    A "no" leaves its helper waiting in the kernel: when the lock comes free, that helper holds
    it for a moment before letting go (its writer gave up), hence a wait for a "yes".
    """
    other = WriterQueue(database)
    held = other.acquire(within)
    other.release(held)
    return held is Held.BOTH


def test_a_second_process_waits_for_the_first_and_gets_the_lock_when_it_lets_go(
    database: Path,
) -> None:
    first, second = WriterQueue(database), WriterQueue(database)
    assert first.acquire(1) is Held.BOTH
    assert first.lock_path == database.with_name("store.db-writer.lock")
    started = time.monotonic()
    assert second.acquire(0.2) is Held.PROCESS  # bounded: it goes on to SQLite's own lock
    assert 0.2 <= time.monotonic() - started < 5
    second.release(Held.PROCESS)

    got: list[Held] = []
    waiter = threading.Thread(target=lambda: got.append(second.acquire(30)))
    waiter.start()
    time.sleep(0.2)
    assert not got, "the second process must wait while the first holds the lock"
    first.release(Held.BOTH)
    waiter.join(timeout=5)
    assert got == [Held.BOTH]
    assert not _other_process_takes(database, within=0.05)
    second.release(Held.BOTH)
    assert _other_process_takes(database)


def test_a_lock_that_came_after_its_writer_gave_up_goes_to_the_next_writer(
    database: Path,
) -> None:
    first, second = WriterQueue(database), WriterQueue(database)
    assert first.acquire(1) is Held.BOTH
    assert second.acquire(0.1) is Held.PROCESS  # gave up; its helper still waits in the kernel
    second.release(Held.PROCESS)
    first.release(Held.BOTH)
    assert second.acquire(5) is Held.BOTH  # the helper's lock, or a fresh one
    assert not _other_process_takes(database, within=0.05)
    second.release(Held.BOTH)
    assert _other_process_takes(database)
    first.release(first.acquire(1))  # and nothing is left holding it in this process


def test_engines_of_one_process_share_its_queue(database: Path) -> None:
    assert writer_queue(str(database)) is writer_queue(str(database.parent / "." / "store.db"))


@pytest.fixture
def store(database: Path) -> Any:
    engine = create_store_engine(f"sqlite:///{database}")
    yield engine
    engine.dispose()


def test_every_end_of_a_write_lets_the_next_writer_in(store: Engine, database: Path) -> None:
    with session_scope(store) as session:
        session.execute(_WRITE)
        assert not _other_process_takes(database, within=0.05)
    assert _other_process_takes(database)  # committed

    def write_then_fail() -> None:
        with session_scope(store) as session:
            session.execute(_WRITE)
            raise RuntimeError

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert _other_process_takes(database)  # rolled back

    with store.connect() as connection:
        raw: Any = connection.connection.dbapi_connection  # the driver's, a _QueuedConnection
        raw.execute("BEGIN")  # so that BEGIN IMMEDIATE fails
        with pytest.raises(sqlite3.OperationalError, match="within a transaction"):
            raw.begin_write()
        assert _other_process_takes(database)
        raw.execute("ROLLBACK")
    with session_scope(store) as session:  # this process's own lock is free again too
        session.execute(_WRITE)
    with sqlite3.connect(database) as check:
        assert check.execute("SELECT count(*) FROM t").fetchone() == (2,)


def test_a_read_only_scope_takes_no_lock(store: Engine, database: Path) -> None:
    other = WriterQueue(database)
    assert other.acquire(1) is Held.BOTH
    try:
        with session_scope(store, read_only=True) as session:
            assert session.execute(sa.text("SELECT count(*) FROM t")).scalar_one() == 0
    finally:
        other.release(Held.BOTH)


def test_only_a_sqlite_file_queues_on_a_lock_file(engine: Engine, tmp_path: Path) -> None:
    """In memory there is no other process to queue with; PostgreSQL has its own locks."""
    memory = create_store_engine("sqlite://")
    with session_scope(memory) as session:
        session.execute(sa.text("CREATE TABLE t (n INTEGER)"))
        session.execute(_WRITE)
    memory.dispose()
    with session_scope(engine) as session:
        session.execute(sa.text("SELECT 1"))
        raw = session.connection().connection.dbapi_connection
        assert (getattr(raw, "queue", None) is not None) == is_sqlite(engine)
    assert len(list(tmp_path.rglob("*-writer.lock"))) == (1 if is_sqlite(engine) else 0)
