"""Where LLM traces are kept: spans with their metrics, their content apart, and trace roll-ups.

* ``monitors_trace_span`` — one row per span, unique on ``(project_id, trace_id, span_id)``
  (a re-sent span is stored once). What people filter and aggregate on is a column (operation,
  provider, models, tokens, latency, status, prompt, session, user, cost); the rest of the
  attributes, already redacted and without message content, is one JSON bag.
* ``monitors_trace_content`` — the messages of a span (redacted) and its flattened text for
  search; the span row keeps the redaction counts. Content lives apart so retention can purge
  conversations and keep token, cost and latency history.
* ``monitors_trace`` — one row per trace: its time span, status and sums over its spans,
  recomputed whenever spans of the trace arrive (late spans included).

A span and its trace belong to a deployment (production traffic) or to an evaluation run (a call
``retrain.eval_runner`` made; ``deployment_id`` is then ``None``), so an evaluation is traced
whether or not its slot has a live version, and never counts as the slot's traffic. The run id
is a plain column, not a foreign key: retrain sits above monitors.

Cost is integer nano-dollars (``None`` is "pricing missing", never $0); ``cost_source`` says
whether Warden computed it from a price or the application sent it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from sqlmodel import Field

from lineage.tables import AwareDateTime, Record, utcnow

__all__ = ["CostSource", "Trace", "TraceContent", "TraceSpan"]

_PROJECT_FK = "lineage_project.id"
_DEPLOYMENT_FK = "lineage_deployment.id"


class CostSource(StrEnum):
    """Where a span's cost came from."""

    COMPUTED = "computed"
    INGESTED = "ingested"


def _text(length: int, *, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=sa.Column(sa.String(length), nullable=nullable))


def _count() -> Any:
    return Field(default=None, sa_column=sa.Column(sa.BigInteger(), nullable=True))


class TraceSpan(Record, table=True):
    """One span of an LLM application, an inference record of its deployment."""

    __tablename__ = "monitors_trace_span"
    __table_args__ = (
        sa.UniqueConstraint("project_id", "trace_id", "span_id"),
        sa.Index("ix_monitors_trace_span_deployment_start", "deployment_id", "start_at"),
        sa.Index("ix_monitors_trace_span_evaluation_run", "evaluation_run_id"),
    )

    project_id: uuid.UUID = Field(foreign_key=_PROJECT_FK, index=True, nullable=False)
    deployment_id: uuid.UUID | None = Field(default=None, foreign_key=_DEPLOYMENT_FK, nullable=True)
    evaluation_run_id: uuid.UUID | None = Field(default=None, nullable=True)
    """The evaluation run that made the call; ``None`` for a deployment's traffic."""
    trace_id: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    span_id: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    parent_span_id: str | None = _text(16)
    name: str = Field(sa_column=sa.Column(sa.String(512), nullable=False))
    kind: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    operation: str | None = _text(64)
    provider: str | None = _text(128)
    request_model: str | None = _text(256)
    response_model: str | None = _text(256)
    finish_reasons: list[str] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    input_tokens: int | None = _count()
    output_tokens: int | None = _count()
    cache_read_tokens: int | None = _count()
    cache_creation_tokens: int | None = _count()
    reasoning_tokens: int | None = _count()
    start_at: datetime = Field(sa_column=sa.Column(AwareDateTime(), nullable=False))
    end_at: datetime = Field(sa_column=sa.Column(AwareDateTime(), nullable=False))
    latency_ms: float = Field(sa_column=sa.Column(sa.Float(), nullable=False))
    ttft_ms: float | None = Field(default=None, sa_column=sa.Column(sa.Float(), nullable=True))
    status: str = Field(sa_column=sa.Column(sa.String(8), nullable=False))
    status_message: str | None = Field(default=None, sa_column=sa.Column(sa.Text()))
    error_type: str | None = _text(256)
    prompt_name: str | None = _text(256)
    prompt_version: str | None = _text(64)
    session_id: str | None = _text(256)
    user_id: str | None = _text(256)
    cost_nano_usd: int | None = _count()
    cost_source: str | None = _text(16)
    """A :class:`CostSource` value, or ``None`` when there is no cost."""
    dialect: str | None = _text(32)
    scope: str | None = _text(256)
    attributes: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    resource: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    events: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    redactions: dict[str, int] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False)
    )


class TraceContent(Record, table=True):
    """The (redacted) messages of one span; purged by retention before the span's metrics."""

    __tablename__ = "monitors_trace_content"
    __table_args__ = (sa.Index("ix_monitors_trace_content_trace", "project_id", "trace_id"),)

    span_row_id: uuid.UUID = Field(
        foreign_key="monitors_trace_span.id", unique=True, nullable=False
    )
    project_id: uuid.UUID = Field(foreign_key=_PROJECT_FK, nullable=False)
    trace_id: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    span_start_at: datetime = Field(
        sa_column=sa.Column(AwareDateTime(), nullable=False, index=True)
    )
    input_messages: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    output_messages: list[dict[str, Any]] = Field(
        default_factory=list, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    other: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False)
    )
    text: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))


class Trace(Record, table=True):
    """One trace rolled up from its spans: recomputed whenever spans of it arrive."""

    __tablename__ = "monitors_trace"
    __table_args__ = (
        sa.UniqueConstraint("project_id", "trace_id"),
        sa.Index("ix_monitors_trace_deployment_start", "deployment_id", "start_at"),
        sa.Index("ix_monitors_trace_project_start", "project_id", "start_at"),
        sa.Index("ix_monitors_trace_evaluation_run", "evaluation_run_id"),
    )

    project_id: uuid.UUID = Field(foreign_key=_PROJECT_FK, nullable=False)
    deployment_id: uuid.UUID | None = Field(default=None, foreign_key=_DEPLOYMENT_FK, nullable=True)
    evaluation_run_id: uuid.UUID | None = Field(default=None, nullable=True)
    trace_id: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    root_span_id: str | None = _text(16)
    name: str = Field(sa_column=sa.Column(sa.String(512), nullable=False))
    start_at: datetime = Field(sa_column=sa.Column(AwareDateTime(), nullable=False))
    end_at: datetime = Field(sa_column=sa.Column(AwareDateTime(), nullable=False))
    duration_ms: float = Field(sa_column=sa.Column(sa.Float(), nullable=False))
    status: str = Field(sa_column=sa.Column(sa.String(8), nullable=False))
    span_count: int = Field(sa_column=sa.Column(sa.Integer(), nullable=False))
    error_count: int = Field(sa_column=sa.Column(sa.Integer(), nullable=False))
    input_tokens: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    output_tokens: int = Field(sa_column=sa.Column(sa.BigInteger(), nullable=False))
    cost_nano_usd: int | None = _count()
    cost_missing_spans: int = Field(sa_column=sa.Column(sa.Integer(), nullable=False))
    session_id: str | None = _text(256)
    user_id: str | None = _text(256)
    updated_at: datetime = Field(
        default_factory=utcnow, sa_column=sa.Column(AwareDateTime(), nullable=False)
    )
