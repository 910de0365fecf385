"""The queue of one SQLite file's writers: a lock per process, then a file lock across processes.

SQLite lets one writer at a time into a file and makes the others poll for it with growing
sleeps (its busy handler): alone, it left the slowest of eight concurrent writers waiting many
times the median; with two API processes on one file (bench.audit, 8 writers, a prototype of
this module on 2026-12-07) the p99 of an audited action was 765 ms without the file lock and
48 ms with it. So a writer first takes its process's lock
of the file (the threads of one process wake the moment the holder commits), then an exclusive
``flock`` on ``<database>-writer.lock`` beside the file (processes queue in the kernel, which
wakes a waiter when the holder lets go and drops the lock of a holder that died), and only then
SQLite's own lock, free by then unless something outside Warden writes to the file.

The process's lock stays first: an ``flock`` belongs to the open file description, which every
thread of a process shares (one per process and file here), so only the thread holding the
process's lock may take or drop it, and a process's threads do not all block in the kernel.
Each wait is bounded (the caller's timeout): a writer still waiting then goes on to SQLite's
busy handler, as before these locks existed, so a stuck holder makes writers fail, not hang.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import functools
import logging
import os
import stat
import threading
import time
import weakref
from collections.abc import Callable
from enum import IntEnum
from pathlib import Path

__all__ = ["Held", "WriterQueue", "writer_queue"]

_log = logging.getLogger(__name__)
_HELPER_IDLE_SECONDS = 5.0
_QUEUES: weakref.WeakValueDictionary[Path, WriterQueue] = weakref.WeakValueDictionary()
_QUEUES_GUARD = threading.Lock()


class Held(IntEnum):
    """What a writer got from :meth:`WriterQueue.acquire`, to hand back to ``release``."""

    NOTHING = 0
    PROCESS = 1  # this process's lock only (the file lock timed out or is unavailable)
    BOTH = 2


@functools.cache
def _libc_flock() -> Callable[[int, int], int]:
    """Return libc's ``flock`` called with the GIL held (``ctypes.PyDLL``), for calls not waiting.

    ``fcntl.flock`` lets go of the GIL around the call, and in a process whose threads compete
    for it, getting it back took about 0.3 ms (three busy threads), twice per write, while the
    writer holds the database. bench.audit, one API process, under load: 4.45 and 4.62 ms of
    server CPU an action through ``fcntl``, 3.79 and 4.29 without the file lock; through this,
    3.92 and 4.26 against 3.73 and 4.39 (within the noise).
    """
    flock = ctypes.PyDLL(None, use_errno=True).flock
    flock.argtypes = (ctypes.c_int, ctypes.c_int)
    flock.restype = ctypes.c_int
    return flock


def _flock_at_once(fd: int, operation: int) -> bool:
    """Lock (``LOCK_NB``) or unlock without waiting; return False when another holds the lock."""
    if _libc_flock()(fd, operation) == 0:
        return True
    error = ctypes.get_errno()
    if error in (errno.EWOULDBLOCK, errno.EAGAIN):
        return False
    raise OSError(error, os.strerror(error))


class _FileLock:
    """An exclusive ``flock`` on the lock file beside one database, taken with a bounded wait.

    ``flock`` cannot time out, so a contended wait blocks in a helper thread while the writer
    waits on a condition for at most its timeout; a lock the helper gets after its writer gave
    up goes to the next writer waiting by then, or is let go. Only one writer of the process
    asks at a time (it holds the process's lock), so one helper suffices; it ends when idle.
    """

    _fd: int | None
    _wanted: bool  # a writer waits for the helper's lock
    _pending: bool  # the helper is (about to be) blocked in flock
    _held: bool
    _helper: bool  # the helper thread runs

    def __init__(self, database: Path) -> None:
        self.database = database
        self.path = database.with_name(f"{database.name}-writer.lock")
        self._start_fresh()

    def _start_fresh(self) -> None:
        self._changed = threading.Condition()
        self._pid = os.getpid()
        self._fd = None
        self._failed = self._closed = False
        self._wanted = self._pending = self._held = self._helper = False

    def _descriptor(self) -> int | None:
        """This process's descriptor of the lock file (opened once; None if it cannot be)."""
        if self._pid != os.getpid():
            # A forked child shares its parent's open file description, hence its lock: it
            # opens its own, and keeps none of the parent's waiting state.
            if self._fd is not None:
                os.close(self._fd)
            self._start_fresh()
        if self._fd is None and not self._failed:
            try:
                mode = stat.S_IMODE(self.database.stat().st_mode) & 0o666
                # Read-only suffices for flock: a process that may not write here still queues.
                self._fd = os.open(self.path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, mode)
            except OSError as error:
                self._failed = True
                _log.warning(
                    "cannot open %s (%s): this process's SQLite writers queue on SQLite's busy "
                    "handler only; let it create and read that file",
                    self.path,
                    error,
                )
        return None if self._failed else self._fd

    def acquire(self, timeout: float) -> bool:
        """Take the lock within ``timeout`` seconds; return whether it is held."""
        fd = self._descriptor()
        if fd is None:
            return False
        with self._changed:
            if not self._pending:
                if _flock_at_once(fd, fcntl.LOCK_EX | fcntl.LOCK_NB):
                    self._held = True
                    return True
                self._pending = True
                if not self._helper:
                    self._helper = True
                    threading.Thread(
                        target=self._wait_in_kernel, name="warden-writer-lock", daemon=True
                    ).start()
            self._wanted = True
            self._changed.notify_all()
            # The helper clears ``pending`` once it got the lock (and set ``held``) or failed.
            self._changed.wait_for(lambda: not self._pending, max(0.0, timeout))
            self._wanted = False
            return self._held

    def release(self) -> None:
        """Let the next writer (of any process) in."""
        with self._changed:
            self._held = False
            if self._fd is not None:
                _flock_at_once(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        """Close the descriptor (no engine of this process uses the file any more)."""
        with self._changed:
            self._closed = True
            if self._fd is not None and not self._pending:  # else the helper closes it
                os.close(self._fd)
                self._fd = None

    def _wait_in_kernel(self) -> None:
        while True:
            with self._changed:
                if not self._changed.wait_for(lambda: self._pending, _HELPER_IDLE_SECONDS):
                    self._helper = False
                    return
                fd = self._fd
            assert fd is not None  # pending implies an open descriptor
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # lets go of the GIL while it waits
            except OSError as error:
                with self._changed:
                    self._failed, self._pending, self._helper = True, False, False
                    self._changed.notify_all()
                _log.warning("cannot lock %s (%s): writers queue on SQLite only", self.path, error)
                return
            with self._changed:
                self._pending = False
                if self._wanted:
                    self._held = True
                    self._changed.notify_all()
                else:  # its writer gave up meanwhile
                    _flock_at_once(fd, fcntl.LOCK_UN)
                if self._closed:
                    os.close(fd)
                    self._fd, self._helper = None, False
                    return


class WriterQueue:
    """The writers of one SQLite file in this process: the process's lock, then the file lock."""

    def __init__(self, database: Path) -> None:
        self._process = threading.Lock()
        self._file = _FileLock(database)
        # Engines come and go (a test suite makes thousands): the descriptor goes with the last.
        weakref.finalize(self, self._file.close)

    @property
    def lock_path(self) -> Path:
        """The lock file writers of every process queue on."""
        return self._file.path

    def acquire(self, timeout: float) -> Held:
        """Queue for the file within ``timeout`` seconds in all; return what was taken."""
        deadline = time.monotonic() + timeout
        if not self._process.acquire(timeout=timeout):
            return Held.NOTHING
        try:
            got = self._file.acquire(deadline - time.monotonic())
        except BaseException:
            self._process.release()
            raise
        return Held.BOTH if got else Held.PROCESS

    def release(self, held: Held) -> None:
        """Hand back what :meth:`acquire` returned: the file lock first, then the process's."""
        if held is Held.BOTH:
            self._file.release()
        if held is not Held.NOTHING:
            self._process.release()


def writer_queue(database: str) -> WriterQueue:
    """Return this process's queue of one SQLite file (every engine on the file shares it)."""
    path = Path(database).resolve()
    with _QUEUES_GUARD:
        queue = _QUEUES.get(path)
        if queue is None:
            queue = WriterQueue(path)
            _QUEUES[path] = queue
        return queue
