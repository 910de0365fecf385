"""The handler registry: job kind → the callable that does that kind of work.

Handler contract
----------------
A handler is a callable ``handler(context: JobContext) -> dict | None`` registered for one job
kind in a :class:`HandlerRegistry`. The kind is a string constant declared by the package that
owns the work (``monitors.run_jobs.MONITOR_RUN``, ``retrain.pipelines.PIPELINE_RUN``…); that
package also offers the handler, and the composition root registers it. A handler:

* reads its input from ``context.payload`` (JSON, written by whoever queued the job) and opens
  its own sessions on ``context.engine`` when it needs the store — the job row is not locked
  while it works;
* reports progress with ``context.progress(fraction, message)`` (``0.0`` to ``1.0``; committed at
  once, so readers of the job see it) and writes log lines with ``context.log(text)``;
* returns a small JSON-serialisable dict (the job's ``result``) or ``None``; work that keeps its
  own row (a monitor run's summary) writes it there itself;
* raises to fail: the job is retried after ``retry_delay * attempt`` until ``max_attempts`` is
  spent, then marked ``failed`` with the exception as the reason; raises :class:`Permanent`
  when retrying cannot help (bad input, a missing model): the job fails at once with that
  reason;
* must be idempotent per job: after a crash (``SIGKILL``, lost machine) the lease expires and the
  job runs again from the start, possibly on another worker.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from lineage.runtime.queue import append_log, report_progress
from lineage.store import session_scope

__all__ = ["Handler", "HandlerRegistry", "JobContext", "Permanent"]


class Permanent(Exception):
    """Raised by a handler whose job cannot succeed on retry: the job fails at once.

    The message is the reason the job's readers see; chain the cause (``raise … from error``).
    """


@dataclass
class JobContext:
    """What a handler gets: the job's input and the means to report progress and logs.

    Attributes:
        job_id: The job being worked on.
        kind: Its kind.
        project_id: The project it belongs to.
        payload: Its input, as queued.
        attempt: Which attempt this is (1-based).
        engine: The store, for the handler's own sessions.
        owner: The lease owner (this worker).
        lease_lost: Set when another worker took the job over (this one stalled past its
            lease); a long handler may check it and stop early, its outcome is dropped anyway.
    """

    job_id: uuid.UUID
    kind: str
    project_id: uuid.UUID
    payload: dict[str, Any]
    attempt: int
    engine: Engine
    owner: str
    lease_lost: threading.Event = field(default_factory=threading.Event)

    def progress(self, fraction: float, message: str = "") -> None:
        """Record how far the work is (0.0 to 1.0) and what it is doing; visible at once."""
        with session_scope(self.engine) as session:
            held = report_progress(
                session=session,
                job_id=self.job_id,
                owner=self.owner,
                fraction=fraction,
                message=message,
            )
        if not held:
            self.lease_lost.set()

    def log(self, message: str) -> None:
        """Append a line to the job's log (kept with the job, readable through the API)."""
        with session_scope(self.engine) as session:
            append_log(session=session, job_id=self.job_id, owner=self.owner, message=message)


Handler = Callable[[JobContext], dict[str, Any] | None]


class HandlerRegistry:
    """Job kind → handler; a worker claims only the kinds registered here."""

    def __init__(self, handlers: dict[str, Handler] | None = None) -> None:
        self._handlers: dict[str, Handler] = dict(handlers or {})
        self._background: set[str] = set()

    def register(self, kind: str, handler: Handler, *, background: bool = False) -> None:
        """Handle jobs of ``kind`` with ``handler`` (replacing any earlier one).

        A ``background`` kind (a page that only illustrates finished work) is claimed only
        when no job of another kind is available, so it never delays findings.
        """
        self._handlers[kind] = handler
        if background:
            self._background.add(kind)
        else:
            self._background.discard(kind)

    def handler_for(self, kind: str) -> Handler:
        """Return the handler of ``kind``.

        Raises:
            LookupError: No handler is registered for ``kind``.
        """
        try:
            return self._handlers[kind]
        except KeyError:
            raise LookupError(f"no handler registered for job kind {kind!r}") from None

    def kinds(self) -> list[str]:
        """Return the registered kinds, sorted."""
        return sorted(self._handlers)

    def background_kinds(self) -> list[str]:
        """Return the registered kinds claimed only when nothing else waits, sorted."""
        return sorted(self._background)
