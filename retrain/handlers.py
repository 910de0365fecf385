"""The built-in job handlers and the registry a worker starts with.

``monitor_run`` is served by :func:`handle_monitor_run`. Until the monitor computation is wired
in, it is a placeholder: it checks that the run and its monitor exist, reports progress and
returns a summary that says plainly that nothing was computed. Wiring the computation in means
replacing the body of that one function (read the run's window of inferences, run the monitor's
spec, store findings and report, return the summary); the queue, retries and the run's state
are handled by :mod:`retrain.worker` and need no change.
"""

from __future__ import annotations

import uuid
from typing import Any

from lineage.store import session_scope
from monitors.models import Monitor, MonitorRun
from retrain.jobs import JobKind
from retrain.worker import HandlerRegistry, JobContext

__all__ = ["default_registry", "handle_monitor_run"]


def handle_monitor_run(context: JobContext) -> dict[str, Any]:
    """Execute one monitor run (placeholder until the monitor computation is wired in).

    Raises:
        LookupError: The run or its monitor no longer exists (the job then fails and retries).
    """
    run_id = uuid.UUID(str(context.payload["monitor_run_id"]))
    with session_scope(context.engine) as session:
        run = session.get(MonitorRun, run_id)
        if run is None:
            raise LookupError(f"monitor run {run_id} does not exist")
        monitor = session.get(Monitor, run.monitor_id)
        if monitor is None:
            raise LookupError(f"monitor {run.monitor_id} of run {run_id} does not exist")
        window = {
            "start": run.window_start.isoformat() if run.window_start else None,
            "end": run.window_end.isoformat() if run.window_end else None,
        }
        kind = monitor.kind
    context.progress(0.5, f"{kind} monitor: computation not wired in yet")
    return {"computed": False, "kind": kind, "window": window}


def default_registry() -> HandlerRegistry:
    """Return the handlers a plain ``warden worker`` serves."""
    return HandlerRegistry({JobKind.MONITOR_RUN: handle_monitor_run})
