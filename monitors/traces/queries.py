"""Reading traces back: a filtered, paged list of trace roll-ups, and one trace as its span tree.

Filters combine with AND: deployment, evaluation run, start time window, status, model
(request or response model of any span), prompt name and version (of any span), cost and
duration bounds, and a text search over the trace's *redacted* content (what was stored; a raw
e-mail address finds nothing, ``[EMAIL]`` finds every trace that had one). Traces come newest
first; a page ends with a cursor for the next.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlmodel import Session, col, func, select

from lineage.errors import InvalidInput, NotFound
from monitors.traces.models import Trace, TraceContent, TraceSpan

__all__ = [
    "MAX_PAGE",
    "SpanContentPublic",
    "SpanPublic",
    "TraceFilter",
    "TracePagePublic",
    "TracePublic",
    "TraceTreePublic",
    "count_run_traces",
    "get_trace",
    "list_traces",
]

MAX_PAGE = 500


class TraceFilter(BaseModel):
    """What to list: every field narrows the result; unset fields do not filter."""

    model_config = ConfigDict(extra="forbid")

    deployment_id: uuid.UUID | None = None
    evaluation_run_id: uuid.UUID | None = None
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    status: Literal["ok", "error"] | None = None
    model: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    prompt_name: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    prompt_version: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    min_cost_nano_usd: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    max_cost_nano_usd: Annotated[int, Field(ge=0, le=2**63 - 1)] | None = None
    min_duration_ms: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    max_duration_ms: Annotated[float, Field(ge=0, allow_inf_nan=False)] | None = None
    q: Annotated[str, Field(min_length=1, max_length=200)] | None = None


class TracePublic(BaseModel):
    """One trace rolled up: time, status, tokens and cost (``None`` is "pricing missing").

    It belongs to a deployment, or (``deployment_id`` ``None``) to the evaluation run that made it.
    """

    trace_id: str
    deployment_id: uuid.UUID | None
    evaluation_run_id: uuid.UUID | None
    root_span_id: str | None
    name: str
    start_at: datetime
    end_at: datetime
    duration_ms: float
    status: str
    span_count: int
    error_count: int
    input_tokens: int
    output_tokens: int
    cost_nano_usd: int | None
    cost_missing_spans: int
    session_id: str | None
    user_id: str | None
    updated_at: datetime


class TracePagePublic(BaseModel):
    """A page of traces, newest first, and the cursor of the next page (``None`` at the end)."""

    traces: list[TracePublic]
    next_cursor: str | None


class SpanContentPublic(BaseModel):
    """A span's messages as stored (redacted), and any other content attributes."""

    input_messages: list[dict[str, Any]]
    output_messages: list[dict[str, Any]]
    other: dict[str, Any]


class SpanPublic(BaseModel):
    """One span with its columns, attributes, content (if kept) and child spans."""

    span_id: str
    parent_span_id: str | None
    deployment_id: uuid.UUID | None
    evaluation_run_id: uuid.UUID | None
    name: str
    kind: str
    operation: str | None
    provider: str | None
    request_model: str | None
    response_model: str | None
    finish_reasons: list[str]
    input_tokens: int | None
    output_tokens: int | None
    cache_read_tokens: int | None
    cache_creation_tokens: int | None
    reasoning_tokens: int | None
    start_at: datetime
    end_at: datetime
    latency_ms: float
    ttft_ms: float | None
    status: str
    status_message: str | None
    error_type: str | None
    prompt_name: str | None
    prompt_version: str | None
    session_id: str | None
    user_id: str | None
    cost_nano_usd: int | None
    cost_source: str | None
    dialect: str | None
    attributes: dict[str, Any]
    events: list[dict[str, Any]]
    redactions: dict[str, int]
    content: SpanContentPublic | None
    children: list[SpanPublic] = Field(default_factory=list)


class TraceTreePublic(BaseModel):
    """One trace: its roll-up and its spans as a tree (spans whose parent is missing are roots)."""

    trace: TracePublic
    spans: list[SpanPublic]


def _cursor_of(trace: Trace) -> str:
    return f"{trace.start_at.isoformat()}~{trace.trace_id}"


def _parse_cursor(cursor: str) -> tuple[datetime, str]:
    at, _, trace_id = cursor.partition("~")
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        when = None
    if when is None or when.tzinfo is None or len(trace_id) != 32:
        raise InvalidInput(
            "cursor is not one this API returned; pass next_cursor as given", field="cursor"
        )
    return when, trace_id


def _span_exists(project_id: uuid.UUID, *conditions: Any) -> Any:
    s = TraceSpan.__table__.c  # type: ignore[attr-defined]
    t = Trace.__table__.c  # type: ignore[attr-defined]
    return sa.exists().where(s.project_id == project_id, s.trace_id == t.trace_id, *conditions)


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def list_traces(
    *,
    session: Session,
    project_id: uuid.UUID,
    where: TraceFilter,
    limit: int = 50,
    cursor: str | None = None,
) -> TracePagePublic:
    """Return a page of the project's traces matching ``where``, newest first.

    Raises:
        InvalidInput: A cursor this API did not return, or ``since`` after ``until``.
    """
    if where.since and where.until and where.since > where.until:
        raise InvalidInput("since is after until; swap them", field="since")
    limit = max(1, min(limit, MAX_PAGE))
    s = TraceSpan.__table__.c  # type: ignore[attr-defined]
    c = TraceContent.__table__.c  # type: ignore[attr-defined]
    t = Trace.__table__.c  # type: ignore[attr-defined]
    query = select(Trace).where(Trace.project_id == project_id)
    if where.deployment_id is not None:
        query = query.where(Trace.deployment_id == where.deployment_id)
    if where.evaluation_run_id is not None:
        query = query.where(Trace.evaluation_run_id == where.evaluation_run_id)
    if where.since is not None:
        query = query.where(col(Trace.start_at) >= where.since)
    if where.until is not None:
        query = query.where(col(Trace.start_at) < where.until)
    if where.status is not None:
        query = query.where(Trace.status == where.status)
    if where.min_cost_nano_usd is not None:
        query = query.where(col(Trace.cost_nano_usd) >= where.min_cost_nano_usd)
    if where.max_cost_nano_usd is not None:
        query = query.where(col(Trace.cost_nano_usd) <= where.max_cost_nano_usd)
    if where.min_duration_ms is not None:
        query = query.where(col(Trace.duration_ms) >= where.min_duration_ms)
    if where.max_duration_ms is not None:
        query = query.where(col(Trace.duration_ms) <= where.max_duration_ms)
    if where.model is not None:
        query = query.where(
            _span_exists(
                project_id, sa.or_(s.request_model == where.model, s.response_model == where.model)
            )
        )
    if where.prompt_name is not None:
        query = query.where(_span_exists(project_id, s.prompt_name == where.prompt_name))
    if where.prompt_version is not None:
        query = query.where(_span_exists(project_id, s.prompt_version == where.prompt_version))
    if where.q is not None:
        pattern = f"%{_escape_like(where.q)}%"
        query = query.where(
            sa.exists().where(
                c.project_id == project_id,
                c.trace_id == t.trace_id,
                c.text.ilike(pattern, escape="\\"),
            )
        )
    if cursor is not None:
        at, trace_id = _parse_cursor(cursor)
        query = query.where(
            sa.or_(
                col(Trace.start_at) < at,
                sa.and_(col(Trace.start_at) == at, col(Trace.trace_id) < trace_id),
            )
        )
    rows = session.exec(
        query.order_by(sa.desc(col(Trace.start_at)), sa.desc(col(Trace.trace_id))).limit(limit + 1)
    ).all()
    page = rows[:limit]
    return TracePagePublic(
        traces=[TracePublic.model_validate(row, from_attributes=True) for row in page],
        next_cursor=_cursor_of(page[-1]) if len(rows) > limit else None,
    )


def count_run_traces(
    *, session: Session, project_id: uuid.UUID, run_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, int]:
    """Return how many traces each of the project's evaluation runs stored (absent: none).

    One grouped count over the indexed column, so a page listing runs can show it cheaply.
    """
    if not run_ids:
        return {}
    rows = session.exec(
        select(Trace.evaluation_run_id, func.count())
        .where(Trace.project_id == project_id, col(Trace.evaluation_run_id).in_(list(run_ids)))
        .group_by(col(Trace.evaluation_run_id))
    ).all()
    return {run_id: int(count) for run_id, count in rows if run_id is not None}


def _tree(spans: Sequence[SpanPublic]) -> list[SpanPublic]:
    by_id = {span.span_id: span for span in spans}
    roots: list[SpanPublic] = []
    for span in spans:  # already in start order, so children come out in start order too
        parent = by_id.get(span.parent_span_id or "")
        if parent is None or parent is span:
            roots.append(span)
        else:
            parent.children.append(span)
    return roots


def get_trace(*, session: Session, project_id: uuid.UUID, trace_id: str) -> TraceTreePublic:
    """Return one trace of the project with its spans as a tree, content included where kept.

    Raises:
        NotFound: No such trace in the project.
    """
    trace = session.exec(
        select(Trace).where(Trace.project_id == project_id, Trace.trace_id == trace_id)
    ).first()
    if trace is None:
        raise NotFound(f"no trace {trace_id} in this project; list them with GET …/traces")
    rows = session.exec(
        select(TraceSpan)
        .where(TraceSpan.project_id == project_id, TraceSpan.trace_id == trace_id)
        .order_by(col(TraceSpan.start_at), col(TraceSpan.span_id))
    ).all()
    contents = {
        content.span_row_id: content
        for content in session.exec(
            select(TraceContent).where(
                TraceContent.project_id == project_id, TraceContent.trace_id == trace_id
            )
        )
    }
    spans = []
    for row in rows:
        content = contents.get(row.id)
        data = row.model_dump()
        data["content"] = (
            SpanContentPublic(
                input_messages=content.input_messages,
                output_messages=content.output_messages,
                other=content.other,
            )
            if content is not None
            else None
        )
        spans.append(SpanPublic.model_validate(data))
    return TraceTreePublic(
        trace=TracePublic.model_validate(trace, from_attributes=True), spans=_tree(spans)
    )
