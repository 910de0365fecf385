"""Waking an idle worker when a job is queued, rather than at its next look at the queue.

An idle worker looks at the queue every ``poll_every`` (a second by default): alone, that put up
to a second between queueing a monitor run and a worker starting it (issue #19 times a run from
queued to findings stored). :func:`announce_job` is called by :func:`~lineage.runtime.queue.
enqueue` inside the queueing transaction; :class:`JobAlarm` is what an idle worker waits on.

* PostgreSQL: ``NOTIFY`` in the queueing transaction, delivered when it commits (never for a
  rollback), to every worker listening on its own connection, in any process or machine.
* SQLite: one event per database file in this process, set after the queueing transaction
  commits — ``warden up`` runs its API, scheduler and worker in one process. A worker in another
  process still finds the job at its next look.

A wake-up is only a hint: the worker then claims as always, and finding nothing is harmless.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import Session

if TYPE_CHECKING:
    import psycopg

__all__ = ["JobAlarm", "announce_job"]

_log = logging.getLogger("warden.worker")

CHANNEL = "warden_jobs"
_SLICE_SECONDS = 0.25  # how soon a waiting worker notices that it should stop
_ANNOUNCED = "warden_job_announced"
_EVENTS: dict[str, threading.Event] = {}
_EVENTS_LOCK = threading.Lock()


def _event(engine: Engine) -> threading.Event:
    key = engine.url.render_as_string(hide_password=True)
    with _EVENTS_LOCK:
        return _EVENTS.setdefault(key, threading.Event())


def announce_job(*, session: Session) -> None:
    """Wake idle workers once the session's transaction commits (queued jobs only exist then)."""
    bind = session.get_bind()
    engine = bind if isinstance(bind, Engine) else bind.engine
    if engine.dialect.name == "postgresql":
        # Delivered when the transaction commits, dropped if it rolls back.
        session.connection().exec_driver_sql(f"NOTIFY {CHANNEL}")
        return
    if session.info.get(_ANNOUNCED):
        return
    session.info[_ANNOUNCED] = True
    event = _event(engine)

    def _after_commit(committed: Session) -> None:
        committed.info.pop(_ANNOUNCED, None)
        event.set()

    sa.event.listen(session, "after_commit", _after_commit, once=True)


class JobAlarm:
    """What an idle worker waits on: a queued job, ``stop``, or ``poll_every`` gone by.

    Use as a context manager (on PostgreSQL it holds a listening connection).
    """

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._event = _event(engine)
        self._listener: psycopg.Connection[Any] | None = None

    def __enter__(self) -> JobAlarm:
        if self._engine.dialect.name == "postgresql":
            self._listen()
        return self

    def __exit__(self, *_: object) -> None:
        if self._listener is not None:
            self._listener.close()
            self._listener = None

    def _listen(self) -> None:
        import psycopg

        url = self._engine.url.set(drivername="postgresql")
        try:
            self._listener = psycopg.connect(
                url.render_as_string(hide_password=False), autocommit=True
            )
            self._listener.execute(f"LISTEN {CHANNEL}")
        except psycopg.Error:
            _log.warning("cannot listen for queued jobs; looking at the queue by polling")
            self._listener = None

    def clear(self) -> None:
        """Forget wake-ups so far: call before looking at the queue."""
        self._event.clear()

    def wait(self, stop: threading.Event, poll_every: timedelta) -> None:
        """Return when a job is announced, ``stop`` is set, or ``poll_every`` has passed."""
        deadline = time.monotonic() + poll_every.total_seconds()
        while not stop.is_set():
            left = deadline - time.monotonic()
            if left <= 0:
                return
            if self._listener is not None:
                if self._notified(min(left, _SLICE_SECONDS)):
                    return
            elif self._event.wait(min(left, _SLICE_SECONDS)):
                return

    def _notified(self, seconds: float) -> bool:
        import psycopg

        assert self._listener is not None
        try:
            return any(True for _ in self._listener.notifies(timeout=seconds, stop_after=1))
        except psycopg.Error:
            _log.warning("lost the connection listening for queued jobs; polling instead")
            self._listener.close()
            self._listener = None
            return False
