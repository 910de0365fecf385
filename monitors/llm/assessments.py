"""Assessments: what a judge said about one traced call, kept beside the trace.

A sampled-judge monitor run (``llm_judge``) grades some of a window's model calls; each verdict
(or the error that stopped it) is stored as a :class:`TraceAssessment` row pointing at the span,
keyed by the monitor run, so a retried run replaces its own rows and never doubles them. The
kind computes the verdicts; :func:`record_assessments` stores them in the transaction that
records the run (kinds never write). Retention purges them with nothing else: they hold the
judge's rationale, not the conversation.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel
from sqlmodel import Field, Session, col, delete, select

from lineage.tables import Record

__all__ = ["TraceAssessment", "TraceAssessmentPublic", "list_assessments", "record_assessments"]


class TraceAssessment(Record, table=True):
    """One judge's verdict on one traced model call."""

    __tablename__ = "monitors_trace_assessment"
    __table_args__ = (sa.Index("ix_monitors_trace_assessment_trace", "project_id", "trace_id"),)

    project_id: uuid.UUID = Field(foreign_key="lineage_project.id", nullable=False)
    trace_id: str = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    span_id: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    name: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    monitor_run_id: uuid.UUID = Field(
        foreign_key="monitors_monitor_run.id", index=True, nullable=False
    )
    status: str = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    value: float | None = Field(default=None)
    passed: bool | None = Field(default=None)
    rationale: str = Field(default="", sa_column=sa.Column(sa.Text(), nullable=False))
    detail: dict[str, Any] = Field(
        default_factory=dict, sa_column=sa.Column(sa.JSON(), nullable=False)
    )


class TraceAssessmentPublic(BaseModel):
    """An assessment as clients read it."""

    trace_id: str
    span_id: str
    name: str
    monitor_run_id: uuid.UUID
    status: str
    value: float | None
    passed: bool | None
    rationale: str
    detail: dict[str, Any]
    created_at: datetime


def record_assessments(
    *,
    session: Session,
    project_id: uuid.UUID,
    run_id: uuid.UUID,
    assessments: Sequence[Mapping[str, Any]],
) -> int:
    """Store a judge run's assessments (replacing the run's earlier ones); return how many."""
    session.exec(delete(TraceAssessment).where(col(TraceAssessment.monitor_run_id) == run_id))
    for item in assessments:
        session.add(
            TraceAssessment(
                project_id=project_id,
                trace_id=str(item["trace_id"]),
                span_id=str(item["span_id"]),
                name=str(item["name"])[:64],
                monitor_run_id=run_id,
                status=str(item["status"]),
                value=item.get("value"),
                passed=item.get("passed"),
                rationale=str(item.get("rationale") or "")[:4000],
                detail=dict(item.get("detail") or {}),
            )
        )
    session.flush()
    return len(assessments)


def list_assessments(
    *, session: Session, project_id: uuid.UUID, trace_id: str
) -> list[TraceAssessmentPublic]:
    """Return the assessments of one trace of the project, oldest first."""
    rows = session.exec(
        select(TraceAssessment)
        .where(TraceAssessment.project_id == project_id, TraceAssessment.trace_id == trace_id)
        .order_by(col(TraceAssessment.created_at))
    ).all()
    return [TraceAssessmentPublic.model_validate(row, from_attributes=True) for row in rows]
