"""Job handlers for the process tests: they stand in for monitor computation on purpose.

What those tests check is queue and scheduling semantics (each slot once, a killed worker's job
retried), so the handler must be slow enough to be killed mid-job and leave evidence of every
start and finish: it appends ``start``/``done`` lines to ``$WARDEN_TEST_MARKER_DIR/markers``.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from lineage.runtime.handlers import JobContext

__all__ = ["slow_marker"]


def _mark(event: str, context: JobContext) -> None:
    line = f"{event} {context.payload['monitor_run_id']} {os.getpid()} {context.attempt}\n"
    path = Path(os.environ["WARDEN_TEST_MARKER_DIR"]) / "markers"
    with path.open("a", encoding="utf-8") as markers:
        markers.write(line)
        markers.flush()
        os.fsync(markers.fileno())


def slow_marker(context: JobContext) -> dict[str, Any]:
    """Record the start, work for a while (reporting progress), record the finish."""
    _mark("start", context)
    seconds = float(os.environ.get("WARDEN_TEST_JOB_SECONDS", "1.0"))
    for step in range(4):
        time.sleep(seconds / 4)
        context.progress((step + 1) / 4, f"step {step + 1} of 4")
    _mark("done", context)
    return {"pid": os.getpid(), "attempt": context.attempt}
