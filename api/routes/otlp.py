"""``POST /v1/traces``: OTLP/HTTP trace ingest, where exporters send it (outside ``/api/v1``).

Point any OpenTelemetry exporter at Warden::

    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://warden:8000/v1/traces
    OTEL_EXPORTER_OTLP_TRACES_HEADERS=Authorization=Bearer%20wdn_…

Bodies are ``application/x-protobuf`` (the SDKs' default) or ``application/json`` (OTLP/JSON),
optionally ``Content-Encoding: gzip`` (inflated within ``max_body_bytes``). Each resource's
spans go to a project and a deployment named by resource attributes (``warden.project``;
``warden.deployment``, else ``service.name``; ``deployment.environment.name`` when the name is
live in several environments) or by the headers ``X-Warden-Project`` / ``X-Warden-Deployment``;
without either, the caller's only project. The caller needs ``trace:write`` in that project.

Answers: 200 with an ``ExportTraceServiceResponse`` in the request's encoding, whose
``partial_success`` counts the spans refused and says why (a bad id, an unknown deployment, a
project the caller cannot write); 400 for a body that is not a request, 413 for one too large
(compressed or not), 415 for another media type or encoding, and nothing is written. When no
span of the request can be routed at all, the routing problem itself is the answer (404/422),
so a misconfigured exporter fails loudly. Each accepted batch is audited once per deployment,
with counts.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from dataclasses import dataclass
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from sqlalchemy.engine import Engine
from starlette.concurrency import run_in_threadpool

from api.deferred_routes import DeferredAPIRoute
from api.deps import EngineDep, SettingsDep
from api.limits import gunzip
from api.problems import problem_response
from api.routes.llm_governance import request_box
from api.security import require
from governance.actors import Actor
from governance.audit import Outcome, act_then_audit, append_in_own_transaction
from governance.permissions import Permission
from governance.roles import authorize, visible_project_ids
from lineage.errors import InvalidInput, NotFound, PayloadTooLarge, PermissionDenied, WardenError
from lineage.projects import Project, get_project, list_projects
from lineage.store import session_scope
from monitors.traces import (
    Encoding,
    IngestOutcome,
    Rejected,
    ResourceSpans,
    decode_request,
    encode_response,
    find_deployment,
    ingest_spans,
)
from monitors.traces.redaction_rules import Sealer

__all__ = ["DEPLOYMENT_HEADER", "PROJECT_HEADER", "router"]

router = APIRouter(route_class=DeferredAPIRoute, tags=["traces"])

PROJECT_HEADER = "X-Warden-Project"
DEPLOYMENT_HEADER = "X-Warden-Deployment"
_MEDIA = {
    "application/x-protobuf": "protobuf",
    "application/protobuf": "protobuf",
    "application/json": "json",
}
_RESPONSE_MEDIA = {"protobuf": "application/x-protobuf", "json": "application/json"}
_MESSAGE_LIMIT = 1024

Writer = Annotated[Actor, Depends(require(Permission.TRACE_WRITE))]


@dataclass(slots=True)
class _Route:
    """Where one resource's spans go, or why they go nowhere."""

    resource: ResourceSpans
    project_id: uuid.UUID | None = None
    deployment_id: uuid.UUID | None = None
    error: WardenError | None = None


def _encoding(request: Request) -> Encoding | Response:
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    encoding = _MEDIA.get(media)
    if encoding is None:
        return problem_response(
            status=415,
            title="Unsupported media type",
            detail=f"Content-Type {media or 'missing'!r} is not OTLP; send "
            "application/x-protobuf or application/json",
            field="Content-Type",
        )
    return "protobuf" if encoding == "protobuf" else "json"


def _text(value: object) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _resolve(
    *, engine: Engine, actor: Actor, request: Request, batches: list[ResourceSpans]
) -> tuple[list[_Route], list[str]]:
    """Find each resource's project and deployment in one short read transaction.

    Returns the routes and the names of projects the caller was refused (to audit).
    """
    header_project = _text(request.headers.get(PROJECT_HEADER))
    header_deployment = _text(request.headers.get(DEPLOYMENT_HEADER))
    routes: list[_Route] = []
    projects: dict[str | None, Project | WardenError] = {}
    denied: list[str] = []
    with session_scope(engine) as session:

        def project_named(name: str | None) -> Project | WardenError:
            if name in projects:
                return projects[name]
            try:
                if name is None:
                    visible = visible_project_ids(session=session, actor=actor)
                    mine = list_projects(session=session, ids=visible)
                    if len(mine) != 1:
                        raise InvalidInput(
                            f"you may use {len(mine)} projects; name one with the resource "
                            f"attribute warden.project or the header {PROJECT_HEADER}",
                            field="warden.project",
                        )
                    found = mine[0]
                else:
                    found = get_project(session=session, name=name)
                authorize(
                    session=session,
                    actor=actor,
                    project_id=found.id,
                    permission=Permission.TRACE_WRITE,
                )
                projects[name] = found
            except (NotFound, PermissionDenied):
                denied.append(name or "")
                projects[name] = NotFound(
                    "no such project, or you may not write traces to it; list yours with "
                    "GET /api/v1/projects"
                )
            except WardenError as error:
                projects[name] = error
            return projects[name]

        for batch in batches:
            route = _Route(batch)
            routes.append(route)
            if not batch.spans:
                continue
            resource = batch.resource
            project = project_named(_text(resource.get("warden.project")) or header_project)
            if isinstance(project, WardenError):
                route.error = project
                continue
            route.project_id = project.id
            name = (
                _text(resource.get("warden.deployment"))
                or _text(resource.get("warden.deployment.id"))
                or header_deployment
                or _text(resource.get("service.name"))
            )
            if name is None:
                route.error = InvalidInput(
                    "the spans name no deployment; set the resource attribute warden.deployment "
                    f"(or service.name), or the header {DEPLOYMENT_HEADER}",
                    field="warden.deployment",
                )
                continue
            environment = _text(resource.get("deployment.environment.name")) or _text(
                resource.get("deployment.environment")
            )
            try:
                deployment = find_deployment(
                    session=session, project_id=project.id, name=name, environment=environment
                )
            except WardenError as error:
                route.error = error
                continue
            route.deployment_id = deployment.id
    return routes, denied


def _store(*, engine: Engine, actor: Actor, routes: list[_Route], sealer: Sealer) -> list[Rejected]:
    """Store every routed resource; audit each (project, deployment) batch once, with counts."""
    rejected: list[Rejected] = []
    groups: dict[tuple[uuid.UUID, uuid.UUID], list[ResourceSpans]] = defaultdict(list)
    for route in routes:
        if route.error is not None or route.project_id is None or route.deployment_id is None:
            reason = route.error.detail if route.error else "no project"
            rejected.extend(Rejected(s.trace_id, s.span_id, reason) for s in route.resource.spans)
        else:
            groups[(route.project_id, route.deployment_id)].append(route.resource)
    with session_scope(engine) as session:
        for (project_id, deployment_id), batches in groups.items():

            def ingest(
                project_id: uuid.UUID = project_id,
                deployment_id: uuid.UUID = deployment_id,
                batches: list[ResourceSpans] = batches,
            ) -> IngestOutcome:
                outcomes = [
                    ingest_spans(
                        session=session,
                        project_id=project_id,
                        deployment_id=deployment_id,
                        spans=batch.spans,
                        resource=batch.resource,
                        sealer=sealer,
                    )
                    for batch in batches
                ]
                redactions: dict[str, int] = defaultdict(int)
                for outcome in outcomes:
                    for kind, count in outcome.redactions.items():
                        redactions[kind] += count
                return IngestOutcome(
                    accepted=sum(o.accepted for o in outcomes),
                    duplicates=sum(o.duplicates for o in outcomes),
                    rejected=[r for o in outcomes for r in o.rejected],
                    traces=sum(o.traces for o in outcomes),
                    redactions=dict(redactions),
                )

            outcome = act_then_audit(
                ingest,
                session=session,
                actor=actor.in_project(project_id),
                action="trace.ingest",
                target=f"deployment:{deployment_id}",
                detail=lambda o: {"after": o.to_dict()},
            )
            rejected.extend(outcome.rejected)
    return rejected


def _message(rejected: list[Rejected]) -> str:
    if not rejected:
        return ""
    reasons: dict[str, int] = defaultdict(int)
    for item in rejected:
        reasons[item.reason] += 1
    text = f"{len(rejected)} span(s) rejected: " + "; ".join(
        f"{reason} ({count})" for reason, count in reasons.items()
    )
    return text[:_MESSAGE_LIMIT]


@router.post(
    "/v1/traces",
    summary="Ingest OTLP/HTTP traces (protobuf or JSON, optionally gzip)",
    response_class=Response,
    responses={
        200: {
            "description": "An ExportTraceServiceResponse in the request's encoding; "
            "partial_success counts the spans refused and says why.",
            "content": {"application/x-protobuf": {}, "application/json": {}},
        }
    },
    openapi_extra={
        "requestBody": {
            "required": True,
            "description": "An OTLP ExportTraceServiceRequest.",
            "content": {
                "application/x-protobuf": {"schema": {"type": "string", "format": "binary"}},
                "application/json": {"schema": {"type": "object"}},
            },
        }
    },
)
async def post_traces(
    request: Request, actor: Writer, engine: EngineDep, settings: SettingsDep
) -> Response:
    """Store the spans of an OTLP export as inference records of their deployments."""
    encoding = _encoding(request)
    if isinstance(encoding, Response):
        return encoding
    content_encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if content_encoding not in ("", "identity", "gzip"):
        return problem_response(
            status=415,
            title="Unsupported media type",
            detail=f"Content-Encoding {content_encoding!r} is not supported; send gzip or none",
            field="Content-Encoding",
        )
    body = await request.body()
    try:
        if content_encoding == "gzip":
            body = gunzip(body, limit=settings.max_body_bytes)
        batches = await run_in_threadpool(decode_request, body, encoding=encoding)
    except PayloadTooLarge:
        raise
    except InvalidInput as error:
        return problem_response(
            status=400, title="Bad request", detail=error.detail, field=error.field
        )
    routes, denied = await run_in_threadpool(
        _resolve, engine=engine, actor=actor, request=request, batches=batches
    )
    for name in denied:
        await run_in_threadpool(
            append_in_own_transaction,
            engine=engine,
            actor=actor,
            action="access.denied",
            target=f"project:{name}",
            outcome=Outcome.DENIED,
            reason=f"POST /v1/traces: {Permission.TRACE_WRITE} refused",
        )
    routed = [route for route in routes if route.resource.spans]
    if routed and all(route.error is not None for route in routed):
        refusal = routed[0].error
        assert refusal is not None
        raise refusal
    rejected = await run_in_threadpool(
        _store, engine=engine, actor=actor, routes=routes, sealer=request_box(request)
    )
    return Response(
        content=encode_response(
            rejected=len(rejected), message=_message(rejected), encoding=encoding
        ),
        media_type=_RESPONSE_MEDIA[encoding],
    )
