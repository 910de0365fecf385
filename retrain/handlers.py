"""The built-in job handlers and the registry a worker starts with.

``monitor_run`` is served by a :class:`MonitorRunHandler`: it executes the run end to end with
:func:`monitors.execute.execute_run` (window from the inference log, stored baseline, the
computation library, the stored report, lineage) and returns the run's summary, which the
worker stores on the run when it completes the job. The composition root (``api.worker``) gives
it the data directory, the model loader (:class:`retrain.deployers.ModelLoader`: hash-checked
registered versions only) and the findings callback (alert routing, later policies). The queue,
retries and the run's state are handled by :mod:`retrain.worker`. ``explanation`` jobs (one
logged inference explained with the same loader) are served by
:class:`retrain.explanation_jobs.ExplanationHandler`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monitors.execute import FindingsCallback, ModelLoader, execute_run
from retrain.explanation_jobs import ExplanationHandler
from retrain.jobs import JobKind
from retrain.worker import HandlerRegistry, JobContext

__all__ = ["MonitorRunHandler", "default_registry"]


@dataclass(frozen=True, slots=True)
class MonitorRunHandler:
    """Execute ``monitor_run`` jobs: one persisted monitor run each.

    Attributes:
        data_dir: The artifact store (inference logs, baselines, reports).
        loader: Loads registered, hash-checked model versions for kinds that need the model.
        on_findings: Receives each run's findings in the transaction that records the run.
    """

    data_dir: Path
    loader: ModelLoader | None = None
    on_findings: FindingsCallback | None = None

    def __call__(self, context: JobContext) -> dict[str, Any]:
        """Run the job's monitor run and return its summary.

        Raises:
            LookupError: The run or its monitor no longer exists (the job then fails and retries).
        """
        return execute_run(
            engine=context.engine,
            data_dir=self.data_dir,
            run_id=uuid.UUID(str(context.payload["monitor_run_id"])),
            loader=self.loader,
            on_findings=self.on_findings,
            progress=context.progress,
        )


def default_registry(
    *,
    data_dir: Path = Path(".warden"),
    loader: ModelLoader | None = None,
    on_findings: FindingsCallback | None = None,
) -> HandlerRegistry:
    """Return the handlers a plain ``warden worker`` serves (monitor runs, local explanations)."""
    handler = MonitorRunHandler(data_dir=data_dir, loader=loader, on_findings=on_findings)
    return HandlerRegistry(
        {
            JobKind.EXPLANATION: ExplanationHandler(data_dir=data_dir, loader=loader),
            JobKind.MONITOR_RUN: handler,
        }
    )
