"""The worker process: build the handler registry from the settings and run the claim loop.

``warden worker`` (and a thread of ``warden up``) runs :func:`run_worker`. The registry starts
from :func:`retrain.handlers.default_registry` plus the pipeline runner of :mod:`retrain.runner`
(bound to the data directory and MLflow URI of the settings). ``WARDEN_WORKER_HANDLERS`` (JSON,
job kind → ``"module:function"``) adds or replaces handlers — for plug-ins, and for tests that need
a handler with observable timing. Queue semantics and the handler contract are in
:mod:`retrain.worker`.
"""

from __future__ import annotations

import importlib
import signal
import threading
from datetime import timedelta

from sqlalchemy.engine import Engine

from api.settings import Settings
from lineage.errors import InvalidInput
from retrain.handlers import default_registry
from retrain.jobs import JobKind
from retrain.runner import RunnerConfig, pipeline_handler
from retrain.worker import Handler, HandlerRegistry, Worker

__all__ = ["build_registry", "build_worker", "run_worker", "stop_on_signals"]


def _load(path: str, kind: str) -> Handler:
    module_name, _, attribute = path.partition(":")
    if not module_name or not attribute:
        raise InvalidInput(
            f"handler {path!r} for job kind {kind!r} is not 'module:function'",
            field="WARDEN_WORKER_HANDLERS",
        )
    handler = getattr(importlib.import_module(module_name), attribute, None)
    if not callable(handler):
        raise InvalidInput(
            f"{path!r} (job kind {kind!r}) is not a callable handler",
            field="WARDEN_WORKER_HANDLERS",
        )
    return handler  # type: ignore[no-any-return]


def build_registry(settings: Settings) -> HandlerRegistry:
    """Return the built-in handlers (monitor runs, pipeline runs) plus configured ones.

    Handlers named in ``settings.worker_handlers`` are added last, so they may replace a
    built-in one.
    """
    registry = default_registry()
    runner = RunnerConfig(data_dir=settings.data_dir, tracking_uri=settings.resolved_mlflow_uri())
    registry.register(JobKind.PIPELINE_RUN, pipeline_handler(runner))
    for kind, path in sorted(settings.worker_handlers.items()):
        registry.register(kind, _load(path, kind))
    return registry


def build_worker(settings: Settings, engine: Engine) -> Worker:
    """Return a worker configured from the settings."""
    return Worker(
        engine=engine,
        registry=build_registry(settings),
        lease=timedelta(seconds=settings.worker_lease_seconds),
        heartbeat_every=timedelta(seconds=settings.worker_heartbeat_seconds),
        poll_every=timedelta(seconds=settings.worker_poll_seconds),
        retry_delay=timedelta(seconds=settings.worker_retry_delay_seconds),
    )


def run_worker(settings: Settings, engine: Engine, stop: threading.Event) -> None:
    """Claim and run jobs until ``stop`` is set."""
    build_worker(settings, engine).run(stop)


def stop_on_signals() -> threading.Event:
    """Return an event set by SIGTERM or SIGINT, so a process finishes its current job first."""
    stop = threading.Event()

    def _handle(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)
    return stop
