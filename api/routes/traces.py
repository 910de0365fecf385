"""Reading LLM traces: ``GET /api/v1/projects/{project}/traces`` and ``…/traces/{trace_id}``.

The list filters by deployment, evaluation run (whose calls are traced apart from any
deployment's traffic), start time, status, model, prompt name and version, cost
(nano-dollars) and duration bounds, and a text search over the redacted content; it is paged
newest first (``cursor`` = the previous page's ``next_cursor``). One trace comes back as its
span tree, each span with its columns, attributes and, while retention keeps it, its messages;
``…/traces/{trace_id}/assessments`` lists what sampled judges said about its calls. All need
``trace:read``; spans arrive through ``POST /v1/traces`` (:mod:`api.routes.otlp`).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Query
from pydantic import AwareDatetime

from api.deferred_routes import DeferredAPIRoute
from api.deps import SessionDep
from api.pages import PageDep
from api.security import CurrentProject, require
from governance.permissions import Permission
from monitors.llm.assessments import TraceAssessmentPublic, list_assessments
from monitors.traces import (
    MAX_PAGE,
    TraceFilter,
    TracePagePublic,
    TraceTreePublic,
    get_trace,
    list_traces,
)

__all__ = ["router"]

router = APIRouter(
    route_class=DeferredAPIRoute,
    prefix="/api/v1/projects/{project}/traces",
    tags=["traces"],
    dependencies=[Depends(require(Permission.TRACE_READ))],
)

_Text = Annotated[str | None, Query(min_length=1, max_length=256)]
_Nano = Annotated[int | None, Query(ge=0, le=2**63 - 1)]
_Millis = Annotated[float | None, Query(ge=0, allow_inf_nan=False)]


@router.get("")
def get_traces(
    project: CurrentProject,
    session: SessionDep,
    deployment_id: uuid.UUID | None = None,
    evaluation_run_id: uuid.UUID | None = None,
    since: AwareDatetime | None = None,
    until: AwareDatetime | None = None,
    status: Literal["ok", "error"] | None = None,
    model: _Text = None,
    prompt_name: _Text = None,
    prompt_version: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    min_cost_nano_usd: _Nano = None,
    max_cost_nano_usd: _Nano = None,
    min_duration_ms: _Millis = None,
    max_duration_ms: _Millis = None,
    q: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="Text in the redacted content."),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_PAGE)] = 50,
    cursor: Annotated[str | None, Query(max_length=128)] = None,
) -> TracePagePublic:
    """List the project's traces matching every filter given, newest first."""
    where = TraceFilter(
        deployment_id=deployment_id,
        evaluation_run_id=evaluation_run_id,
        since=since,
        until=until,
        status=status,
        model=model,
        prompt_name=prompt_name,
        prompt_version=prompt_version,
        min_cost_nano_usd=min_cost_nano_usd,
        max_cost_nano_usd=max_cost_nano_usd,
        min_duration_ms=min_duration_ms,
        max_duration_ms=max_duration_ms,
        q=q,
    )
    return list_traces(
        session=session, project_id=project.id, where=where, limit=limit, cursor=cursor
    )


@router.get("/{trace_id}")
def get_one_trace(
    trace_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="32 lowercase hex.")],
    project: CurrentProject,
    session: SessionDep,
) -> TraceTreePublic:
    """Return one trace with its spans as a tree."""
    return get_trace(session=session, project_id=project.id, trace_id=trace_id)


@router.get("/{trace_id}/assessments")
def get_assessments(
    trace_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$", description="32 lowercase hex.")],
    project: CurrentProject,
    session: SessionDep,
    page: PageDep,
) -> list[TraceAssessmentPublic]:
    """Return what sampled judges said about the trace's calls (``llm_judge`` monitors)."""
    get_trace(session=session, project_id=project.id, trace_id=trace_id)  # 404 if not ours
    found = list_assessments(session=session, project_id=project.id, trace_id=trace_id)
    return page.answer_all(
        found, key_of=lambda a: (a.created_at, a.span_id, a.name, a.monitor_run_id)
    )
