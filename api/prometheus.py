"""``/metrics`` in Prometheus text format: request metrics plus what the store says at scrape time.

Nothing is global: :func:`install_metrics` gives each app its own ``CollectorRegistry`` (request
counters and latencies, fed by an ASGI middleware) and each scrape builds the store-derived
series afresh from the database, so several API replicas all report the same truth and a
restart loses nothing that matters:

========================================  ==========================================================
``warden_http_requests_total``            requests by method, route template and status (counter)
``warden_http_request_duration_seconds``  latency by method and route template (histogram)
``warden_queue_depth``                    jobs queued or running, by project, kind and state
``warden_job_duration_seconds``           run time of jobs finished in the last 24 h, by kind
``warden_monitor_last_status``            1 for the status of each monitor's latest finished run
``warden_monitor_drift_share``            share of drifted columns in each monitor's latest run
``warden_monitor_last_run_timestamp``     when each monitor's latest run finished (Unix seconds)
``warden_open_incidents``                 open or acknowledged incidents by project and severity
``warden_deliveries``                     outbound deliveries by project and state
========================================  ==========================================================

Monitor status and drift share are read from the latest finished run's summary
(:class:`monitors.findings.RunSummary`): the status :func:`monitors.findings.run_status` says
(``ok``/``warn``/``alert``/``insufficient``) and its ``drift_share``.

Authentication: like every route, ``/metrics`` needs an API key — ``monitor:read`` in at least
one project (a service account holding ``viewer`` in the projects to watch is enough). Series
labelled by project only cover projects where the caller holds ``monitor:read``; global
administrators see all. Request metrics are process-wide.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from datetime import timedelta
from typing import Annotated, Any

from fastapi import APIRouter, Depends, FastAPI, Request, Response
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlmodel import Session, col, func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.deferred_routes import DeferredAPIRoute
from api.deps import SessionDep
from api.security import require
from governance.actors import Actor
from governance.delivery import Delivery
from governance.incidents import Incident
from governance.permissions import Permission
from governance.roles import permissions_of, visible_project_ids
from lineage.projects import Project
from lineage.runtime.queue import RuntimeJob
from lineage.tables import utcnow
from monitors.findings import RunSummary, Status, run_status
from monitors.models import Monitor, MonitorRunState
from monitors.run_jobs import latest_runs

__all__ = ["JOB_BUCKETS", "AppMetrics", "RequestMetrics", "StoreCollector", "install_metrics"]

JOB_BUCKETS = (1.0, 5.0, 15.0, 60.0, 300.0, 900.0, 3600.0, float("inf"))
_STATUSES = tuple(Status)


class AppMetrics:
    """The per-app registry and the request metrics recorded into it."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "warden_http_requests",
            "HTTP requests answered, by method, route template and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "warden_http_request_duration_seconds",
            "Time to answer HTTP requests, by method and route template.",
            ["method", "route"],
            registry=self.registry,
        )


class RequestMetrics:
    """ASGI middleware counting and timing requests by route *template* (bounded labels)."""

    def __init__(self, app: ASGIApp, *, metrics: AppMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Time the request and record it once the response has started."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def capture(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, capture)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(method, route, str(status)).inc()
            self.metrics.latency.labels(method, route).observe(time.perf_counter() - started)


def _readable_projects(session: Session, actor: Actor) -> set[uuid.UUID] | None:
    visible = visible_project_ids(session=session, actor=actor)
    if visible is None:
        return None
    return {
        project_id
        for project_id in visible
        if Permission.MONITOR_READ
        in permissions_of(session=session, actor=actor, project_id=project_id)
    }


class StoreCollector(Collector):
    """Reads queue, monitor, incident and delivery state from the store at scrape time."""

    def __init__(self, session: Session, projects: set[uuid.UUID] | None) -> None:
        self.session = session
        self.projects = projects

    def _scoped(self, query: Any, column: Any) -> Any:
        if self.projects is None:
            return query
        return query.where(column.in_(self.projects))

    def _names(self) -> dict[uuid.UUID, str]:
        query = self._scoped(select(Project.id, Project.name), col(Project.id))
        return dict(self.session.exec(query).all())

    def collect(self) -> Iterator[Metric]:
        """Yield every store-derived metric family."""
        names = self._names()
        yield from self._queue(names)
        yield from self._jobs()
        yield from self._monitors(names)
        yield from self._incidents(names)
        yield from self._deliveries(names)

    def _queue(self, names: dict[uuid.UUID, str]) -> Iterable[Metric]:
        depth = GaugeMetricFamily(
            "warden_queue_depth",
            "Jobs waiting or running, by project, kind and state.",
            labels=["project", "kind", "state"],
        )
        query = self._scoped(
            select(RuntimeJob.project_id, RuntimeJob.kind, RuntimeJob.state, func.count())
            .where(col(RuntimeJob.state).in_(("queued", "running")))
            .group_by(col(RuntimeJob.project_id), col(RuntimeJob.kind), col(RuntimeJob.state)),
            col(RuntimeJob.project_id),
        )
        for project_id, kind, state, count in self.session.exec(query).all():
            depth.add_metric([names.get(project_id, str(project_id)), kind, state], count)
        yield depth

    def _jobs(self) -> Iterable[Metric]:
        since = utcnow() - timedelta(hours=24)
        query = self._scoped(
            select(RuntimeJob.kind, RuntimeJob.started_at, RuntimeJob.finished_at)
            .where(col(RuntimeJob.finished_at) >= since)
            .where(col(RuntimeJob.started_at).is_not(None)),
            col(RuntimeJob.project_id),
        )
        durations: dict[str, list[float]] = {}
        for kind, started, finished in self.session.exec(query).all():
            durations.setdefault(kind, []).append(max((finished - started).total_seconds(), 0.0))
        family = HistogramMetricFamily(
            "warden_job_duration_seconds",
            "Run time of jobs finished in the last 24 hours, by kind.",
            labels=["kind"],
        )
        for kind, values in sorted(durations.items()):
            buckets = [
                (str(bound) if bound != float("inf") else "+Inf", sum(v <= bound for v in values))
                for bound in JOB_BUCKETS
            ]
            family.add_metric([kind], buckets, sum_value=sum(values))
        yield family

    def _monitors(self, names: dict[uuid.UUID, str]) -> Iterable[Metric]:
        labels = ["project", "monitor", "monitor_id"]
        status = GaugeMetricFamily(
            "warden_monitor_last_status",
            "1 for the status of each monitor's latest finished run, 0 for the others.",
            labels=[*labels, "status"],
        )
        share = GaugeMetricFamily(
            "warden_monitor_drift_share",
            "Share of drifted columns in each monitor's latest finished run.",
            labels=labels,
        )
        finished = GaugeMetricFamily(
            "warden_monitor_last_run_timestamp",
            "When each monitor's latest finished run ended, in Unix seconds.",
            labels=labels,
        )
        monitors = list(self.session.exec(self._scoped(select(Monitor), col(Monitor.project_id))))
        latest = latest_runs(
            session=self.session,
            monitor_ids=[m.id for m in monitors],
            states=set(MonitorRunState) - {MonitorRunState.QUEUED, MonitorRunState.RUNNING},
            newest="finish",
        )
        for monitor in monitors:
            run = latest.get(monitor.id)
            if run is None:
                continue
            values = [names.get(monitor.project_id, str(monitor.project_id)), monitor.name]
            values.append(str(monitor.id))
            summary = RunSummary.from_json(run.summary)
            verdict = run_status(summary)
            if verdict is not None:
                for each in _STATUSES:
                    status.add_metric([*values, each], 1.0 if each == verdict else 0.0)
            if summary is not None and summary.drift_share is not None:
                share.add_metric(values, summary.drift_share)
            if run.finished_at is not None:
                finished.add_metric(values, run.finished_at.timestamp())
        yield status
        yield share
        yield finished

    def _incidents(self, names: dict[uuid.UUID, str]) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "warden_open_incidents",
            "Incidents open or acknowledged, by project and severity.",
            labels=["project", "severity"],
        )
        query = self._scoped(
            select(Incident.project_id, Incident.severity, func.count())
            .where(col(Incident.open_key).is_not(None))
            .group_by(col(Incident.project_id), col(Incident.severity)),
            col(Incident.project_id),
        )
        counts = {(p, s): n for p, s, n in self.session.exec(query).all()}
        for project_id, name in sorted(names.items(), key=lambda item: item[1]):
            for severity in ("warn", "alert"):
                family.add_metric([name, severity], counts.get((project_id, severity), 0))
        yield family

    def _deliveries(self, names: dict[uuid.UUID, str]) -> Iterable[Metric]:
        family = GaugeMetricFamily(
            "warden_deliveries",
            "Outbound deliveries by project and state (pending ones are being retried).",
            labels=["project", "state"],
        )
        query = self._scoped(
            select(Delivery.project_id, Delivery.state, func.count()).group_by(
                col(Delivery.project_id), col(Delivery.state)
            ),
            col(Delivery.project_id),
        )
        for project_id, state, count in self.session.exec(query).all():
            family.add_metric([names.get(project_id, str(project_id)), state], count)
        yield family


router = APIRouter(route_class=DeferredAPIRoute, tags=["metrics"])


@router.get(
    "/metrics",
    response_class=Response,
    summary="Prometheus metrics",
    responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}},
)
def metrics(
    request: Request,
    actor: Annotated[Actor, Depends(require(Permission.MONITOR_READ))],
    session: SessionDep,
) -> Response:
    """Return request metrics and the store's state in Prometheus text format."""
    app_metrics: AppMetrics = request.app.state.metrics
    scrape = CollectorRegistry(auto_describe=False)
    scrape.register(StoreCollector(session, _readable_projects(session, actor)))
    body = generate_latest(app_metrics.registry) + generate_latest(scrape)
    return Response(content=body, media_type=CONTENT_TYPE_LATEST)


def install_metrics(app: FastAPI) -> None:
    """Give ``app`` its own registry, the request middleware and the ``/metrics`` route."""
    app_metrics = AppMetrics()
    app.state.metrics = app_metrics
    app.add_middleware(RequestMetrics, metrics=app_metrics)
    app.include_router(router)
