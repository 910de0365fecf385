"""The worker process: build the handler registry from the settings and run the claim loop.

``warden worker`` (and a thread of ``warden up``) runs :func:`run_worker`. Each package that owns
work offers the handlers of its kinds and this module registers them: the monitors' kinds
(:func:`monitors.run_jobs.register_monitor_handlers`: monitor runs and local explanations, bound
to the data directory, the hash-checking :class:`retrain.deployers.VerifiedModelLoader` and
:func:`retrain.loop.handle_run_findings` — the one place a run's findings go: alert rules, then
policies), the pipeline runner of :mod:`retrain.runner` (bound to the data directory and
MLflow URI of the settings), evaluation runs (:mod:`retrain.eval_runner`, bound to the key box
that opens LLM deployments' keys), the report renderer and the trace jobs of
:mod:`monitors.traces.jobs` (retention purge, cost recompute; audited as Warden). Beside the
claim loop, a thread sends due alert deliveries every ``DELIVERY_EVERY_SECONDS``
(:func:`governance.delivery.deliver_due_now`), outside any job's transaction.
``WARDEN_WORKER_HANDLERS`` (JSON, job kind → ``"module:function"``) adds or replaces handlers —
for plug-ins, and for tests that need a handler with observable timing. Queue semantics are in
:mod:`lineage.runtime.queue`, the handler contract in :mod:`lineage.runtime.handlers`.
"""

from __future__ import annotations

import importlib
import logging
import signal
import threading
import uuid
from collections.abc import Callable, Mapping
from datetime import timedelta
from functools import partial
from pathlib import Path
from typing import Any

from sqlalchemy.engine import Engine
from sqlmodel import Session

from api.routes.alerts import secret_box
from api.settings import Settings
from governance.actors import Actor
from governance.audit import append
from governance.delivery import deliver_due_now
from governance.outbound import guard_for_project
from governance.signing import load_or_create_signer
from lineage.errors import InvalidInput
from lineage.runtime.handlers import Handler, HandlerRegistry
from lineage.runtime.worker import Worker
from monitors.run_jobs import register_monitor_handlers
from monitors.scoring.openai_chat import ChatReply, chat
from monitors.traces.jobs import register_trace_handlers
from reports import REPORT_RENDER, ReportRenderHandler
from retrain.budget_checks import register_budget_handler
from retrain.deployers import EmbeddedDeployer, VerifiedModelLoader
from retrain.eval_runner import EvalRunHandler
from retrain.eval_runs import EVAL_RUN
from retrain.loop import handle_run_findings
from retrain.mlflow_registry import Registry
from retrain.pipelines import PIPELINE_RUN
from retrain.runner import pipeline_handler
from retrain.runner_config import RunnerConfig
from retrain.sandbox import executor_for

__all__ = [
    "DELIVERY_EVERY_SECONDS",
    "audit_as_warden",
    "build_model_loader",
    "build_registry",
    "build_worker",
    "guarded_chat",
    "run_worker",
    "send_due_deliveries",
    "stop_on_signals",
]

DELIVERY_EVERY_SECONDS = 5.0
"""How often the worker process sends alert deliveries that are due."""
_log = logging.getLogger("warden.worker")


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


def audit_as_warden(
    *,
    session: Session,
    action: str,
    target: str,
    detail: Mapping[str, Any],
    project_id: uuid.UUID,
) -> None:
    """Write a job's audit entry as Warden itself, in the job's transaction (trace jobs)."""
    append(
        session=session,
        actor=Actor.system(),
        action=action,
        target=target,
        detail=detail,
        project_id=project_id,
    )


def build_model_loader(settings: Settings) -> VerifiedModelLoader:
    """Return the loader monitors use: registered versions only, after their hash check."""
    return VerifiedModelLoader(
        registry=Registry(
            tracking_uri=settings.resolved_mlflow_uri(),
            artifact_root=settings.mlflow_artifact_root(),
        ),
        cache_dir=settings.data_dir / "models",
    )


def runner_config(settings: Settings) -> RunnerConfig:
    """Return how pipeline runs execute: the sandbox, what steps may read, who gets network.

    Raises:
        InvalidInput: ``WARDEN_SANDBOX`` names no executor, or a read root overlaps the data
            directory or a key.
    """
    protected = [
        settings.resolved_audit_key_path(),
        settings.outbound_key_path or settings.data_dir / "keys" / "outbound.key",
    ]
    database = settings.resolved_database_url()
    if database.startswith("sqlite:///"):
        protected.append(Path(database.removeprefix("sqlite:///")))
    return RunnerConfig(
        data_dir=settings.data_dir,
        tracking_uri=settings.resolved_mlflow_uri(),
        executor=executor_for(settings.sandbox),
        readable_roots=tuple(settings.sandbox_read_roots),
        protected=tuple(protected),
        network_projects=frozenset(settings.sandbox_network_projects),
        store=settings.artifact_store(),
        mlflow_artifact_root=settings.mlflow_artifact_root(),
    )


def guarded_chat(*, session: Session, project_id: uuid.UUID) -> Callable[..., ChatReply]:
    """Return the chat sender of a project's judge runs, checked by its outbound guard."""
    return partial(chat, guard=guard_for_project(session=session, project_id=project_id))


def build_registry(settings: Settings) -> HandlerRegistry:
    """Return the built-in handlers (monitor and pipeline runs, report renders) plus plug-ins.

    Handlers named in ``settings.worker_handlers`` are added last, so they may replace a
    built-in one.
    """
    loader = VerifiedModelLoader(
        registry=Registry(
            tracking_uri=settings.resolved_mlflow_uri(),
            artifact_root=settings.mlflow_artifact_root(),
        ),
        cache_dir=settings.data_dir / "models",
    )
    registry = register_monitor_handlers(
        HandlerRegistry(),
        store=settings.artifact_store(),
        loader=loader,
        on_findings=partial(
            handle_run_findings,
            registry=loader.registry,
            deployer=EmbeddedDeployer(loader=loader),
        ),
        chat_for=guarded_chat,
        summary_engine=settings.summary_engine(),
    )
    register_trace_handlers(registry, audit=audit_as_warden)
    register_budget_handler(
        registry, model_registry=loader.registry, deployer=EmbeddedDeployer(loader=loader)
    )
    registry.register(PIPELINE_RUN, pipeline_handler(runner_config(settings)))
    registry.register(EVAL_RUN, EvalRunHandler(box=secret_box(settings)))
    signer = load_or_create_signer(settings.resolved_audit_key_path())
    registry.register(
        REPORT_RENDER,
        ReportRenderHandler(store=settings.artifact_store(), public_key=signer.public_key),
    )
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


def send_due_deliveries(settings: Settings, engine: Engine) -> int:
    """Send the alert deliveries due now with the settings' key, CA bundle and timeout."""
    return deliver_due_now(
        engine=engine,
        key_file=settings.resolved_outbound_key_path(),
        timeout_seconds=settings.outbound_timeout_seconds,
        ca_file=settings.outbound_ca_file,
    )


def _deliver(settings: Settings, engine: Engine, stop: threading.Event) -> None:
    """Send due deliveries every few seconds until ``stop`` is set (never inside a job)."""
    while not stop.is_set():
        try:
            send_due_deliveries(settings, engine)
        except Exception:
            _log.exception("sending due deliveries failed; will retry")
        stop.wait(DELIVERY_EVERY_SECONDS)


def _either(first: threading.Event, second: threading.Event) -> threading.Event:
    """Return an event set as soon as ``first`` is set or ``second`` is, polled each second."""
    both = threading.Event()

    def watch() -> None:
        while not (first.wait(1.0) or second.is_set()):
            pass
        both.set()

    threading.Thread(target=watch, name="stop-watch", daemon=True).start()
    return both


def run_worker(settings: Settings, engine: Engine, stop: threading.Event) -> None:
    """Claim and run jobs until ``stop`` is set; send due alert deliveries alongside."""
    finished = threading.Event()
    sender = threading.Thread(
        target=_deliver,
        args=(settings, engine, _either(stop, finished)),
        name="deliveries",
        daemon=True,
    )
    sender.start()
    try:
        build_worker(settings, engine).run(stop)
    finally:
        finished.set()
        sender.join(timeout=DELIVERY_EVERY_SECONDS * 2)


def stop_on_signals() -> threading.Event:
    """Return an event set by SIGTERM or SIGINT, so a process finishes its current job first."""
    stop = threading.Event()

    def _handle(_signum: int, _frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, _handle)
    signal.signal(signal.SIGINT, _handle)
    return stop
