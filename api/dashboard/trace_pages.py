"""LLM trace pages: the filtered trace list, one trace as a waterfall, per-deployment charts.

Read through the same services as ``GET /api/v1/projects/{project}/traces`` (and so filtered by
project and gated by ``trace:read``); ``evaluation_run_id`` narrows the list to one evaluation
run's calls (the run list links here). The filter form submits empty fields as empty strings,
so each filter is parsed here and a bad one answers 422 naming its field. Costs are shown in
dollars from nano-dollars; a cost the price table could not compute is "pricing missing",
never $0.
"""

from __future__ import annotations

import json
import math
import uuid
from collections import defaultdict
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any
from urllib.parse import quote, urlencode

from fastapi import Depends, Path, Request
from fastapi.responses import HTMLResponse
from pydantic import ValidationError

from api.charts import Point, WaterfallRow, line_chart, waterfall_svg
from api.dashboard.rendering import _render, router
from api.deps import SessionDep
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.permissions import Permission
from lineage.deployments import get_deployment, list_deployments
from lineage.errors import InvalidInput
from monitors.traces import (
    MAX_PAGE,
    SpanPublic,
    TraceFilter,
    TracePublic,
    get_trace,
    list_traces,
)

__all__ = ["usd"]

_PAGE = 50
_CHART_TRACES = 2000
"""Charts are drawn from a deployment's latest traces, at most this many."""
_FILTERS = (
    "deployment_id",
    "evaluation_run_id",
    "since",
    "until",
    "status",
    "model",
    "prompt_name",
    "prompt_version",
    "min_cost_usd",
    "max_cost_usd",
    "min_duration_ms",
    "max_duration_ms",
    "q",
)
Reader = Annotated[Actor, Depends(require(Permission.TRACE_READ))]


def usd(nano: int | None) -> str:
    """Format nano-dollars as dollars; ``None`` (no price known) reads "pricing missing"."""
    if nano is None:
        return "pricing missing"
    return f"${Decimal(nano) / Decimal(1_000_000_000):.6f}"


def _time(field: str, text: str) -> datetime:
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{field} is not a date and time like 2026-01-31T14:00", field=field
        ) from None
    return when if when.tzinfo is not None else when.replace(tzinfo=UTC)


def _nano(field: str, text: str) -> int:
    try:
        dollars = Decimal(text)
    except InvalidOperation:
        dollars = Decimal("NaN")
    if not dollars.is_finite() or dollars < 0 or dollars > 9_000_000_000:
        raise InvalidInput(f"{field} is not an amount of dollars like 0.05", field=field)
    return int(dollars * 1_000_000_000)


def _millis(field: str, text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise InvalidInput(f"{field} is not a number of milliseconds", field=field)
    return value


def _parse(given: Mapping[str, str]) -> TraceFilter:
    """Build the filter from the form's fields; empty fields do not filter."""
    raw = {name: given.get(name, "").strip() for name in _FILTERS}
    values: dict[str, Any] = {}
    for name, text in raw.items():
        if not text:
            continue
        if name == "deployment_id":
            try:
                values[name] = uuid.UUID(text)
            except ValueError:
                raise InvalidInput("deployment_id is not a deployment id", field=name) from None
        elif name == "evaluation_run_id":
            try:
                values[name] = uuid.UUID(text)
            except ValueError:
                raise InvalidInput(
                    "evaluation_run_id is not an evaluation run id; follow a run's traces link",
                    field=name,
                ) from None
        elif name in ("since", "until"):
            values[name] = _time(name, text)
        elif name in ("min_cost_usd", "max_cost_usd"):
            values[name.replace("_usd", "_nano_usd")] = _nano(name, text)
        elif name in ("min_duration_ms", "max_duration_ms"):
            values[name] = _millis(name, text)
        else:
            values[name] = text
    try:
        return TraceFilter(**values)
    except ValidationError as error:
        first = error.errors()[0]
        field = str(first["loc"][0]) if first["loc"] else "q"
        raise InvalidInput(f"{field}: {first['msg']}", field=field) from None


@router.get("/p/{project}/traces")
def traces_page(
    request: Request, actor: Reader, project: CurrentProject, session: SessionDep
) -> HTMLResponse:
    """List the project's traces, newest first, narrowed by the filter form."""
    params = request.query_params
    where = _parse(params)
    cursor = params.get("cursor") or None
    page = list_traces(
        session=session, project_id=project.id, where=where, limit=_PAGE, cursor=cursor
    )
    deployments = list_deployments(session=session, project_id=project.id)
    kept = {name: params.get(name, "") for name in _FILTERS if params.get(name)}
    older = (
        f"/p/{quote(project.name)}/traces?{urlencode({**kept, 'cursor': page.next_cursor})}"
        if page.next_cursor
        else None
    )
    return _render(
        request,
        "traces.html",
        actor,
        session,
        project=project,
        page_of=page,
        deployments=deployments,
        names={d.id: d.name for d in deployments},
        given={name: params.get(name, "") for name in _FILTERS},
        without_run=f"/p/{quote(project.name)}/traces?"
        + urlencode({k: v for k, v in kept.items() if k != "evaluation_run_id"}),
        older=older,
        first=f"/p/{quote(project.name)}/traces?{urlencode(kept)}" if cursor else None,
        usd=usd,
    )


def _walk(spans: list[SpanPublic], depth: int = 0) -> Iterator[tuple[int, SpanPublic]]:
    for span in spans:
        yield depth, span
        yield from _walk(span.children, depth + 1)


def _tokens(span: SpanPublic) -> str:
    if span.input_tokens is None and span.output_tokens is None:
        return "—"
    return f"{span.input_tokens or 0:,} in / {span.output_tokens or 0:,} out"


def _messages(raw: list[dict[str, Any]]) -> list[tuple[str, str]]:
    """Each message as (role, text): text parts joined; other parts shown as JSON."""
    shown = []
    for message in raw:
        role = str(message.get("role", "—"))
        parts = message.get("parts")
        if isinstance(parts, list):
            texts = [
                str(part["content"])
                if isinstance(part, dict) and isinstance(part.get("content"), str)
                else json.dumps(part, sort_keys=True)
                for part in parts
            ]
            text = "\n".join(texts)
        elif isinstance(message.get("content"), str):
            text = str(message["content"])
        else:
            text = json.dumps({k: v for k, v in message.items() if k != "role"}, sort_keys=True)
        shown.append((role, text))
    return shown


@router.get("/p/{project}/traces/{trace_id}")
def trace_page(
    request: Request,
    trace_id: Annotated[str, Path(pattern=r"^[0-9a-f]{32}$")],
    actor: Reader,
    project: CurrentProject,
    session: SessionDep,
) -> HTMLResponse:
    """Show one trace as a waterfall, then each span's messages, tokens and cost."""
    tree = get_trace(session=session, project_id=project.id, trace_id=trace_id)
    trace = tree.trace
    total = (trace.end_at - trace.start_at).total_seconds() or 1.0
    ordered = list(_walk(tree.spans))
    rows = []
    for depth, span in ordered:
        start = (span.start_at - trace.start_at).total_seconds() / total
        end = (span.end_at - trace.start_at).total_seconds() / total
        rows.append(
            WaterfallRow(
                label=span.name,
                depth=depth,
                start=start,
                end=end,
                error=span.status == "error",
                href=f"#span-{span.span_id}",
                tooltip=f"{span.latency_ms:,.1f} ms, {_tokens(span)}, {usd(span.cost_nano_usd)}",
            )
        )
    deployment = (
        get_deployment(session=session, project_id=project.id, deployment_id=trace.deployment_id)
        if trace.deployment_id is not None
        else None  # an evaluation run's call
    )
    return _render(
        request,
        "trace.html",
        actor,
        session,
        project=project,
        trace=trace,
        deployment=deployment,
        spans=[
            (
                depth,
                span,
                _tokens(span),
                _messages(span.content.input_messages) if span.content else [],
                _messages(span.content.output_messages) if span.content else [],
            )
            for depth, span in ordered
        ],
        waterfall=waterfall_svg(f"Waterfall of trace {trace.trace_id}", rows),
        usd=usd,
    )


def _latest(
    session: SessionDep, project_id: uuid.UUID, deployment_id: uuid.UUID
) -> list[TracePublic]:
    found: list[TracePublic] = []
    cursor = None
    where = TraceFilter(deployment_id=deployment_id)
    while len(found) < _CHART_TRACES:
        page = list_traces(
            session=session, project_id=project_id, where=where, limit=MAX_PAGE, cursor=cursor
        )
        found.extend(page.traces)
        cursor = page.next_cursor
        if cursor is None:
            break
    return found[:_CHART_TRACES]


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


def _bucket(traces: list[TracePublic]) -> tuple[str, dict[datetime, list[TracePublic]]]:
    """Group traces by hour, or by day when they span more than three days."""
    if not traces:
        return "hour", {}
    spread = max(t.start_at for t in traces) - min(t.start_at for t in traces)
    daily = spread > timedelta(days=3)
    groups: dict[datetime, list[TracePublic]] = defaultdict(list)
    for trace in traces:
        at = trace.start_at.replace(minute=0, second=0, microsecond=0)
        groups[at.replace(hour=0) if daily else at].append(trace)
    return ("day" if daily else "hour"), dict(sorted(groups.items()))


@router.get("/p/{project}/traces/deployments/{deployment_id}")
def trace_charts_page(
    request: Request,
    deployment_id: uuid.UUID,
    actor: Reader,
    project: CurrentProject,
    session: SessionDep,
) -> HTMLResponse:
    """Chart a deployment's trace volume, latency percentiles, tokens and cost over time."""
    deployment = get_deployment(session=session, project_id=project.id, deployment_id=deployment_id)
    traces = _latest(session, project.id, deployment.id)
    unit, groups = _bucket(traces)
    volume: list[Point] = []
    latency: dict[str, list[Point]] = {"p50": [], "p95": [], "p99": []}
    tokens: dict[str, list[Point]] = {"input": [], "output": []}
    cost: list[Point] = []
    table = []
    for at, group in groups.items():
        durations = [t.duration_ms for t in group]
        volume.append((at, float(len(group))))
        for name, share in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
            latency[name].append((at, _percentile(durations, share)))
        tokens["input"].append((at, float(sum(t.input_tokens for t in group))))
        tokens["output"].append((at, float(sum(t.output_tokens for t in group))))
        priced = [t.cost_nano_usd for t in group if t.cost_nano_usd is not None]
        missing = sum(1 for t in group if t.cost_nano_usd is None or t.cost_missing_spans)
        if priced:
            cost.append((at, sum(priced) / 1e9))
        table.append((at, group, latency, priced, missing))
    empty = "no traces yet."
    charts = [
        (f"Traces per {unit}", line_chart(f"Traces per {unit}", {"traces": volume}, empty=empty)),
        ("Latency (ms)", line_chart("Latency (ms)", latency, empty=empty)),
        (f"Tokens per {unit}", line_chart(f"Tokens per {unit}", tokens, empty=empty)),
        (
            f"Cost per {unit} (USD, priced traces only)",
            line_chart("Cost (USD)", {"cost": cost}, empty="no priced traces yet."),
        ),
    ]
    rows = [
        {
            "at": at,
            "count": len(group),
            "p50": _percentile([t.duration_ms for t in group], 0.5),
            "p95": _percentile([t.duration_ms for t in group], 0.95),
            "input": sum(t.input_tokens for t in group),
            "output": sum(t.output_tokens for t in group),
            "cost": usd(sum(priced)) if priced else usd(None),
            "missing": missing,
        }
        for at, group, _lat, priced, missing in table
    ]
    return _render(
        request,
        "trace_charts.html",
        actor,
        session,
        project=project,
        deployment=deployment,
        charts=charts,
        rows=rows,
        unit=unit,
        count=len(traces),
        capped=len(traces) >= _CHART_TRACES,
    )
