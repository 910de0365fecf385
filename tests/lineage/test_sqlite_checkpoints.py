"""WAL checkpoints of a SQLite store run on a thread of the process, not in the committing one."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path

import sqlalchemy as sa

from lineage import create_store_engine, session_scope
from lineage.sqlite_checkpoints import INTERVAL_SECONDS, checkpoint_soon

_BLOB = 2 * 2**20  # 512 pages: under SQLite's automatic threshold, so only this thread copies it


def _until(done: object, *, within: float = 10.0) -> bool:
    """Poll ``done()`` until it holds or ``within`` seconds pass (a wait, not a timing)."""
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if done():  # type: ignore[operator]
            return True
        time.sleep(INTERVAL_SECONDS / 5)
    return False


def test_a_write_reaches_the_database_file_after_its_commit_without_the_commit_copying_it(
    tmp_path: Path,
) -> None:
    path = tmp_path / "store.db"
    engine = create_store_engine(f"sqlite:///{path}")
    try:
        with session_scope(engine) as session:
            session.execute(sa.text("CREATE TABLE t (b BLOB)"))
        with session_scope(engine) as session:
            assert session.execute(sa.text("PRAGMA wal_autocheckpoint")).scalar_one() == 0
            session.execute(sa.text("INSERT INTO t (b) VALUES (zeroblob(:n))"), {"n": _BLOB})
        # Committed: in the WAL now, in the database file once the checkpointer has run.
        assert _until(lambda: path.stat().st_size > _BLOB)
        with sqlite3.connect(path) as reader:
            assert reader.execute("SELECT length(b) FROM t").fetchall() == [(_BLOB,)]
    finally:
        engine.dispose()


def test_the_checkpointer_never_creates_a_file_that_is_gone(tmp_path: Path) -> None:
    gone, there = tmp_path / "gone.db", tmp_path / "there.db"
    connection = sqlite3.connect(there, isolation_level=None)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA wal_autocheckpoint=0")
        connection.execute("CREATE TABLE t (b BLOB)")
        for rows, asked in ((1, [gone, there]), (2, [there])):
            connection.execute("INSERT INTO t (b) VALUES (zeroblob(?))", (_BLOB,))
            for path in asked:
                checkpoint_soon(str(path))
            # One thread, one round at a time: the second round starts after the first ended.
            assert _until(lambda rows=rows: there.stat().st_size > rows * _BLOB)
    finally:
        connection.close()
    assert not gone.exists()
