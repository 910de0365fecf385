"""Which prompt version produced a span: named by the span, or live in its slot at the time.

A span names its version with the attributes ``warden.prompt.name`` and
``warden.prompt.version`` (or a dialect's equivalent, read into ``prompt_name`` and
``prompt_version`` at ingest). A span that names none is linked through Warden's history: the
version live in its deployment's slot ``(name, environment)`` at the span's start. The span row's
``deployment_id`` is whatever was live when it was *ingested*, so the slot and the time decide,
never that id alone.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlmodel import Session, col, select

from lineage.errors import NotFound
from lineage.models import Deployment
from lineage.prompts import Prompt, get_prompt, prompt_at
from monitors.traces.models import TraceSpan

__all__ = ["PromptLink", "SpanLink", "prompt_of_span", "spans_of_prompt"]

LinkedBy = Literal["attribute", "deployment"]


@dataclass(frozen=True, slots=True)
class PromptLink:
    """The prompt version behind a span, and how it was found."""

    prompt: Prompt
    linked_by: LinkedBy


@dataclass(frozen=True, slots=True)
class SpanLink:
    """A span a prompt version produced."""

    trace_id: str
    span_id: str
    start_at: datetime
    linked_by: LinkedBy


def prompt_of_span(*, session: Session, span: TraceSpan) -> PromptLink | None:
    """Return the prompt version that produced ``span``, or ``None`` when none is known."""
    if span.prompt_name and span.prompt_version:
        try:
            named = get_prompt(
                session=session,
                project_id=span.project_id,
                name=span.prompt_name,
                version=span.prompt_version,
            )
        except NotFound:
            named = None
        if named is not None:
            return PromptLink(prompt=named, linked_by="attribute")
    row = session.get(Deployment, span.deployment_id) if span.deployment_id else None
    if row is None:
        return None
    live = prompt_at(
        session=session,
        project_id=span.project_id,
        deployment=row.name,
        environment=row.environment,
        at=span.start_at,
    )
    return PromptLink(prompt=live, linked_by="deployment") if live is not None else None


def spans_of_prompt(
    *, session: Session, project_id: uuid.UUID, prompt: Prompt, limit: int = 100
) -> list[SpanLink]:
    """Return the spans a prompt version produced, newest first.

    Those naming it, and those naming no prompt that started in a slot while it was live there.
    """
    named = session.exec(
        select(TraceSpan.trace_id, TraceSpan.span_id, TraceSpan.start_at).where(
            TraceSpan.project_id == project_id,
            TraceSpan.prompt_name == prompt.name,
            TraceSpan.prompt_version == prompt.number,
        )
    ).all()
    links = [SpanLink(t, s, at, "attribute") for t, s, at in named]
    served = session.exec(
        select(Deployment).where(
            Deployment.project_id == project_id,
            Deployment.model_version_id == prompt.version.id,
        )
    ).all()
    for interval in served:
        slot = select(Deployment.id).where(
            Deployment.project_id == project_id,
            Deployment.name == interval.name,
            Deployment.environment == interval.environment,
        )
        query = select(TraceSpan.trace_id, TraceSpan.span_id, TraceSpan.start_at).where(
            TraceSpan.project_id == project_id,
            col(TraceSpan.deployment_id).in_(slot),
            col(TraceSpan.prompt_name).is_(None),
            col(TraceSpan.start_at) >= interval.live_from,
        )
        if interval.live_until is not None:
            query = query.where(col(TraceSpan.start_at) < interval.live_until)
        links.extend(SpanLink(t, s, at, "deployment") for t, s, at in session.exec(query).all())
    links.sort(key=lambda link: (link.start_at, link.trace_id, link.span_id), reverse=True)
    return links[:limit]
