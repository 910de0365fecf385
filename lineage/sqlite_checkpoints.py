"""WAL checkpoints of SQLite files on one thread of the process, not in the committing request.

SQLite's automatic checkpoint (``wal_autocheckpoint``, 1,000 pages) runs inside the commit that
crosses it, on the committing thread: an inference upload writes a run of its request ids
(up to 4.8 MB with random UUIDs) and so crossed it on every commit, copying the WAL into the
database file and syncing both before its answer (strace of the API process, 2026-12-07: one
``fdatasync`` of the database and two of the WAL per upload; the COMMIT of such a transaction
took 12 ms of wall time and 7 ms of CPU against 1.4 and 0 without the checkpoint). Connections
of :func:`lineage.store.create_store_engine` turn that off and call :func:`checkpoint_soon`
after each write commits; this thread then runs a ``PASSIVE`` checkpoint of the file (what the
automatic one runs: it never waits for readers or writers), at most every
:data:`INTERVAL_SECONDS`, coalescing the commits in between.

Durability is unchanged: a commit is in the WAL when it returns, and a crash of the process
loses nothing; a power cut may lose the commits since the last checkpoint, as before. A process
that exits before its checkpoint leaves the commits in the WAL, which the next connection to
the file reads (and the last connection to close checkpoints it).
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from contextlib import closing
from urllib.parse import quote

__all__ = ["INTERVAL_SECONDS", "checkpoint_soon"]

INTERVAL_SECONDS = 0.25
"""The longest a commit waits for its checkpoint (the commits in between share one)."""

_log = logging.getLogger(__name__)
_PENDING: set[str] = set()
_WAKE = threading.Condition()
_THREAD: list[threading.Thread] = []
_FORK_HOOK: list[bool] = []


def checkpoint_soon(path: str) -> None:
    """Have the WAL of the SQLite file ``path`` copied into it within :data:`INTERVAL_SECONDS`."""
    with _WAKE:
        if path in _PENDING:
            return
        _PENDING.add(path)
        if not _THREAD:
            if not _FORK_HOOK:
                _FORK_HOOK.append(True)
                os.register_at_fork(after_in_child=_forget_in_child)
            thread = threading.Thread(target=_run, name="warden-sqlite-checkpoints", daemon=True)
            _THREAD.append(thread)
            thread.start()
        _WAKE.notify()


def _forget_in_child() -> None:
    """A forked child has no checkpoint thread: its first write commit starts its own."""
    global _WAKE
    _WAKE = threading.Condition()
    _PENDING.clear()
    _THREAD.clear()


def _run() -> None:
    while True:
        with _WAKE:
            while not _PENDING:
                _WAKE.wait()
        time.sleep(INTERVAL_SECONDS)  # outside the lock: the commits meanwhile join this round
        with _WAKE:
            paths = list(_PENDING)
            _PENDING.clear()
        for path in paths:
            _checkpoint(path)


def _checkpoint(path: str) -> None:
    """Run a passive checkpoint of ``path`` on a connection of its own (never create the file)."""
    try:
        # mode=rw: a file removed meanwhile (a test's store) is not created again.
        uri = f"file:{quote(path)}?mode=rw"
        with closing(sqlite3.connect(uri, uri=True, timeout=0, check_same_thread=False)) as db:
            db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as error:  # busy, or the file is gone: the next commit asks again
        _log.debug("checkpoint of %s skipped: %s", path, error)
