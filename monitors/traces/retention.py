"""How long a project keeps its traces: content and metrics apart, under a possible legal hold.

Message content (``monitors_trace_content``) and metrics (span and trace rows: tokens, cost,
latency, status) have separate lifetimes, so purging conversations keeps the history people
aggregate on. :func:`purge` deletes, for one project and one instant ``now``:

* content of spans that started before ``now - content_days``;
* whole traces that ended before ``now - metrics_days`` — the trace row, its spans and any
  content left (a trace leaves whole, so no roll-up ever describes spans that are gone).

A project under legal hold loses nothing; the purge still runs and records that it was held.
The purge runs on the worker (:mod:`monitors.traces.jobs`), queued daily per project by the
scheduler; its counts go to the audit log, never a text.
"""

from __future__ import annotations

import uuid
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict, Field, model_validator
from sqlmodel import Session, col, select

from lineage.tables import utcnow
from monitors.traces.controls import RetentionSettings
from monitors.traces.models import Trace, TraceContent, TraceSpan

__all__ = [
    "DEFAULT_CONTENT_DAYS",
    "DEFAULT_METRICS_DAYS",
    "MAX_RETENTION_DAYS",
    "LegalHoldUpdate",
    "PurgeCounts",
    "RetentionPublic",
    "RetentionUpdate",
    "get_retention",
    "purge",
    "record_purge",
    "set_legal_hold",
    "set_retention",
]

DEFAULT_CONTENT_DAYS = 30
"""How long message content is kept when a project has not said (days)."""
DEFAULT_METRICS_DAYS = 400
"""How long span and trace metrics are kept when a project has not said (days)."""
MAX_RETENTION_DAYS = 3650
"""The longest lifetime accepted (ten years)."""
_CHUNK = 400


class RetentionUpdate(BaseModel):
    """New lifetimes; content may not outlive the metrics of its span."""

    model_config = ConfigDict(extra="forbid")

    content_days: int = Field(ge=1, le=MAX_RETENTION_DAYS)
    metrics_days: int = Field(ge=1, le=MAX_RETENTION_DAYS)

    @model_validator(mode="after")
    def _content_within_metrics(self) -> RetentionUpdate:
        if self.content_days > self.metrics_days:
            raise ValueError("content_days may not exceed metrics_days")
        return self


class LegalHoldUpdate(BaseModel):
    """Set or lift a legal hold, saying why."""

    model_config = ConfigDict(extra="forbid")

    hold: bool
    reason: str = Field(min_length=1, max_length=500)


class RetentionPublic(BaseModel):
    """A project's retention as clients and the audit log see it."""

    content_days: int
    metrics_days: int
    legal_hold: bool
    legal_hold_reason: str
    last_purge_at: datetime | None


@dataclass(frozen=True, slots=True)
class PurgeCounts:
    """What one purge removed (or would have, ``held``), for the audit log."""

    contents: int
    spans: int
    traces: int
    held: bool
    content_before: datetime
    metrics_before: datetime

    def to_dict(self) -> dict[str, Any]:
        """Return the counts as JSON-ready values."""
        values = asdict(self)
        values["content_before"] = self.content_before.isoformat()
        values["metrics_before"] = self.metrics_before.isoformat()
        return values


def _row(session: Session, project_id: uuid.UUID) -> RetentionSettings | None:
    return session.exec(
        select(RetentionSettings).where(RetentionSettings.project_id == project_id)
    ).first()


def _view(row: RetentionSettings | None) -> RetentionPublic:
    if row is None:
        return RetentionPublic(
            content_days=DEFAULT_CONTENT_DAYS,
            metrics_days=DEFAULT_METRICS_DAYS,
            legal_hold=False,
            legal_hold_reason="",
            last_purge_at=None,
        )
    return RetentionPublic.model_validate(row, from_attributes=True)


def _ensure(session: Session, project_id: uuid.UUID) -> RetentionSettings:
    return _row(session, project_id) or RetentionSettings(
        project_id=project_id,
        content_days=DEFAULT_CONTENT_DAYS,
        metrics_days=DEFAULT_METRICS_DAYS,
    )


def get_retention(*, session: Session, project_id: uuid.UUID) -> RetentionPublic:
    """Return the project's lifetimes and hold (the defaults if it never set them)."""
    return _view(_row(session, project_id))


def set_retention(
    *, session: Session, project_id: uuid.UUID, spec: RetentionUpdate
) -> tuple[RetentionPublic, RetentionPublic]:
    """Change the project's lifetimes; return them before and after (applied at the next purge)."""
    before = get_retention(session=session, project_id=project_id)
    row = _ensure(session, project_id)
    row.content_days, row.metrics_days = spec.content_days, spec.metrics_days
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return before, _view(row)


def set_legal_hold(
    *, session: Session, project_id: uuid.UUID, spec: LegalHoldUpdate
) -> tuple[RetentionPublic, RetentionPublic]:
    """Set or lift the project's legal hold; while held, purges delete nothing."""
    before = get_retention(session=session, project_id=project_id)
    row = _ensure(session, project_id)
    row.legal_hold, row.legal_hold_reason = spec.hold, spec.reason
    row.updated_at = utcnow()
    session.add(row)
    session.flush()
    return before, _view(row)


def _delete_content_of_spans(session: Session, span_ids: list[uuid.UUID]) -> int:
    removed = 0
    for start in range(0, len(span_ids), _CHUNK):
        chunk = span_ids[start : start + _CHUNK]
        result = session.execute(
            sa.delete(TraceContent).where(col(TraceContent.span_row_id).in_(chunk))
        )
        removed += result.rowcount  # type: ignore[attr-defined]
    return removed


def purge(*, session: Session, project_id: uuid.UUID, now: datetime | None = None) -> PurgeCounts:
    """Delete the project's content and metrics past their lifetimes at ``now``; return counts."""
    now = now or utcnow()
    settings = get_retention(session=session, project_id=project_id)
    content_before = now - timedelta(days=settings.content_days)
    metrics_before = now - timedelta(days=settings.metrics_days)
    if settings.legal_hold:
        return PurgeCounts(0, 0, 0, True, content_before, metrics_before)
    contents = session.execute(
        sa.delete(TraceContent).where(
            col(TraceContent.project_id) == project_id,
            col(TraceContent.span_start_at) < content_before,
        )
    ).rowcount  # type: ignore[attr-defined]
    spans = traces = 0
    old = list(
        session.exec(
            select(Trace.trace_id).where(
                Trace.project_id == project_id, Trace.end_at < metrics_before
            )
        ).all()
    )
    for start in range(0, len(old), _CHUNK):
        chunk = old[start : start + _CHUNK]
        in_chunk = sa.and_(
            col(TraceSpan.project_id) == project_id,
            col(TraceSpan.trace_id).in_(chunk),
        )
        span_ids = list(session.exec(select(TraceSpan.id).where(in_chunk)).all())
        contents += _delete_content_of_spans(session, span_ids)
        spans += session.execute(sa.delete(TraceSpan).where(in_chunk)).rowcount  # type: ignore[attr-defined]
        traces += session.execute(
            sa.delete(Trace).where(
                col(Trace.project_id) == project_id,
                col(Trace.trace_id).in_(chunk),
            )
        ).rowcount  # type: ignore[attr-defined]
    return PurgeCounts(contents, spans, traces, False, content_before, metrics_before)


def record_purge(*, session: Session, project_id: uuid.UUID, at: datetime) -> None:
    """Note when the project's last purge ran (shown with its retention)."""
    row = _ensure(session, project_id)
    row.last_purge_at = at
    session.add(row)
    session.flush()
