"""A deployment's LLM calls in a time window, as one table the LLM monitor kinds read.

One row per *model call* (a span that called a model: a GenAI operation such as ``chat``, or any
span naming a request or response model) and per *tool call* (``execute_tool``), with the span's
metrics and, for model calls, the question (the last ``user`` message it was sent) and the answer
(what the model wrote back; ``""`` when it wrote nothing, ``None`` when the content is not
kept), both as stored: redacted at ingest, so a descriptor never sees a raw
e-mail address, only ``[EMAIL]`` and the span's redaction counts.

A window is placed by span start time, ``start <= start_at < end``, over every deployment row of
the watched slot (a promotion writes a new row; the monitor watches the slot). At most
``max_calls`` rows are read, newest first, so a huge window costs a bounded query.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import pandas as pd
import sqlalchemy as sa
from sqlmodel import Session, col, select

from lineage.models import Deployment
from monitors.traces.models import TraceContent, TraceSpan

__all__ = [
    "CALL_COLUMNS",
    "MAX_CALLS",
    "MODEL_OPERATIONS",
    "TOOL_OPERATIONS",
    "answer_of",
    "question_of",
    "read_calls",
    "slot_deployment_ids",
]

MAX_CALLS = 100_000
"""Most calls one window reads (newest first)."""

MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "completion", "llm"})
"""GenAI operations that are a model answering (``embeddings`` and tools are not)."""
TOOL_OPERATIONS = frozenset({"execute_tool", "tool"})

CALL_COLUMNS = (
    "type",
    "trace_id",
    "span_id",
    "start_at",
    "status",
    "latency_ms",
    "ttft_ms",
    "input_tokens",
    "output_tokens",
    "cost_nano_usd",
    "truncated",
    "prompt_name",
    "prompt_version",
    "model",
    "pii_count",
    "pii_entities",
    "question",
    "answer",
)
"""The columns of :func:`read_calls`' table (``type`` is ``model`` or ``tool``)."""

CallType = Literal["model", "tool"]


def slot_deployment_ids(*, session: Session, deployment: Deployment) -> list[uuid.UUID]:
    """Return the ids of every deployment row of the slot ``deployment`` belongs to."""
    rows = session.exec(
        select(Deployment.id).where(
            Deployment.project_id == deployment.project_id,
            Deployment.name == deployment.name,
            Deployment.environment == deployment.environment,
        )
    ).all()
    return list(rows) or [deployment.id]


def question_of(messages: list[dict[str, Any]]) -> str | None:
    """Return the last ``user`` message's text (what was asked), ``None`` without one."""
    for message in reversed(messages or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return str(message.get("content") or "")
    return None


def answer_of(messages: list[dict[str, Any]]) -> str | None:
    """Return the text the model wrote back (its messages joined), ``None`` without any."""
    texts = [
        str(message.get("content") or "")
        for message in messages or []
        if isinstance(message, dict) and message.get("role") in (None, "assistant", "model")
    ]
    return None if not texts else "\n".join(texts)


def _type_of(span: TraceSpan) -> CallType | None:
    operation = (span.operation or "").lower()
    if operation in TOOL_OPERATIONS:
        return "tool"
    if operation == "embeddings":
        return None
    if operation in MODEL_OPERATIONS or span.request_model or span.response_model:
        return "model"
    return None


EVALUATION_ATTRIBUTE = "warden.evaluation.run_id"
"""Marks a call an evaluation run made (``retrain.eval_runner``): not production traffic."""


def read_calls(
    *,
    session: Session,
    deployment: Deployment,
    start: datetime | None,
    end: datetime | None,
    max_calls: int = MAX_CALLS,
) -> pd.DataFrame:
    """Return the slot's model and tool calls that started in ``[start, end)`` (newest first)."""
    ids = slot_deployment_ids(session=session, deployment=deployment)
    query = (
        select(TraceSpan, TraceContent)
        .join(TraceContent, col(TraceContent.span_row_id) == col(TraceSpan.id), isouter=True)
        .where(
            TraceSpan.project_id == deployment.project_id,
            col(TraceSpan.deployment_id).in_(ids),
            sa.or_(
                col(TraceSpan.operation).is_not(None),
                col(TraceSpan.request_model).is_not(None),
                col(TraceSpan.response_model).is_not(None),
            ),
        )
    )
    if start is not None:
        query = query.where(col(TraceSpan.start_at) >= start)
    if end is not None:
        query = query.where(col(TraceSpan.start_at) < end)
    query = query.order_by(sa.desc(col(TraceSpan.start_at))).limit(max_calls)
    rows: list[dict[str, Any]] = []
    for span, content in session.exec(query):
        kind = _type_of(span)
        if kind is None or EVALUATION_ATTRIBUTE in (span.attributes or {}):
            continue
        redactions = dict(span.redactions or {})
        rows.append(
            {
                "type": kind,
                "trace_id": span.trace_id,
                "span_id": span.span_id,
                "start_at": span.start_at,
                "status": span.status,
                "latency_ms": float(span.latency_ms),
                "ttft_ms": span.ttft_ms,
                "input_tokens": span.input_tokens,
                "output_tokens": span.output_tokens,
                "cost_nano_usd": span.cost_nano_usd,
                "truncated": "length" in (span.finish_reasons or []),
                "prompt_name": span.prompt_name,
                "prompt_version": span.prompt_version,
                "model": span.response_model or span.request_model,
                "pii_count": int(sum(redactions.values())),
                "pii_entities": sorted(name for name, count in redactions.items() if count),
                "question": None if content is None else question_of(content.input_messages),
                "answer": None if content is None else answer_of(content.output_messages) or "",
            }
        )
    frame = pd.DataFrame(rows, columns=list(CALL_COLUMNS))
    for name in ("ttft_ms", "input_tokens", "output_tokens", "cost_nano_usd"):
        frame[name] = pd.to_numeric(frame[name], errors="coerce").astype("float64")
    return frame
