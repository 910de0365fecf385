"""What a project decides about its LLM traces, over HTTP: prices, redaction rules, retention.

Recomputing costs after a price change and purging now are worker jobs: the routes queue them
(``202`` with the job) and the worker audits what each changed.

Reading needs ``project:read``; every change needs ``project:admin`` and is written to the audit
log in the request's transaction (``act_then_audit``: the change, then its entry). The redaction
preview is admin-only too: in ``hash`` mode it would let anyone test whether a value occurs in
stored traces. The preview stores nothing and its text never reaches a log line or a problem.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, status
from pydantic import BaseModel, ConfigDict, Field

from api.deferred_routes import DeferredAPIRoute
from api.deps import SessionDep, SettingsDep
from api.pages import PageDep
from api.routes.alerts import secret_box
from api.security import CurrentProject, require
from governance import SecretBox, act_then_audit
from governance.actors import Actor
from governance.permissions import Permission
from lineage.runtime.queue import RuntimeJob
from monitors.traces.jobs import queue_purge, queue_recompute
from monitors.traces.pricing import (
    PriceCreate,
    PricePublic,
    add_price,
    close_price,
    list_prices,
)
from monitors.traces.redaction_rules import (
    RedactionRulesPublic,
    RedactionRulesUpdate,
    get_rules,
    project_redactor,
    set_rules,
)
from monitors.traces.retention import (
    LegalHoldUpdate,
    RetentionPublic,
    RetentionUpdate,
    get_retention,
    set_legal_hold,
    set_retention,
)

__all__ = [
    "MAX_PREVIEW_CHARS",
    "PreviewPublic",
    "PreviewRequest",
    "PriceCloseRequest",
    "QueuedJobPublic",
    "RecomputeRequest",
    "request_box",
    "router",
]

MAX_PREVIEW_CHARS = 100_000
"""The longest text the redaction preview accepts."""

router = APIRouter(
    route_class=DeferredAPIRoute, prefix="/api/v1/projects/{project}/llm", tags=["llm governance"]
)

Admin = Annotated[Actor, Depends(require(Permission.PROJECT_ADMIN))]
_READ = [Depends(require(Permission.PROJECT_READ))]


def request_box(request: Request) -> SecretBox:
    """Return the app's box sealing secrets (the redaction hash keys among them), loaded once."""
    box = getattr(request.app.state, "secret_box", None)
    if not isinstance(box, SecretBox):
        box = secret_box(request.app.state.settings)
        request.app.state.secret_box = box
    return box


Box = Annotated[SecretBox, Depends(request_box)]


# --- prices -----------------------------------------------------------------------------------


class PriceCloseRequest(BaseModel):
    """When a price ends (default: now)."""

    model_config = ConfigDict(extra="forbid")

    valid_to: datetime | None = None


@router.get("/prices", dependencies=_READ)
def prices(
    project: CurrentProject,
    session: SessionDep,
    page: PageDep,
    at: Annotated[datetime | None, Query(description="only prices valid at this instant")] = None,
) -> list[PricePublic]:
    """List the project's prices (nano-dollars per million tokens), by provider and pattern."""
    rows = page.answer_all(
        list_prices(session=session, project_id=project.id, at=at),
        key_of=lambda p: (p.provider, p.model_pattern, p.valid_from, p.id),
    )
    return [PricePublic.of(row) for row in rows]


@router.post("/prices", status_code=status.HTTP_201_CREATED)
def create_price(
    body: PriceCreate, actor: Admin, project: CurrentProject, session: SessionDep
) -> PricePublic:
    """Add a price; the open price of the same provider and pattern closes where it starts."""
    row, _closed = act_then_audit(
        lambda: add_price(session=session, project_id=project.id, spec=body, created_by=actor.name),
        session=session,
        actor=actor,
        action="price.create",
        target=lambda result: f"price:{result[0].id}",
        detail=lambda result: {
            "after": PricePublic.of(result[0]).model_dump(mode="json"),
            "closed": None if result[1] is None else str(result[1].id),
        },
        project_id=project.id,
    )
    return PricePublic.of(row)


@router.post("/prices/{price_id}/close")
def end_price(
    price_id: uuid.UUID,
    body: PriceCloseRequest,
    actor: Admin,
    project: CurrentProject,
    session: SessionDep,
) -> PricePublic:
    """End a price; spans it no longer covers show "pricing missing" until another applies."""
    row = act_then_audit(
        lambda: close_price(
            session=session, project_id=project.id, price_id=price_id, at=body.valid_to
        ),
        session=session,
        actor=actor,
        action="price.close",
        target=f"price:{price_id}",
        detail=lambda closed: {"after": {"valid_to": closed.valid_to}},
        project_id=project.id,
    )
    return PricePublic.of(row)


# --- redaction --------------------------------------------------------------------------------


class PreviewRequest(BaseModel):
    """A sample text to redact with the project's rules (nothing is stored)."""

    model_config = ConfigDict(extra="forbid")

    text: str = Field(max_length=MAX_PREVIEW_CHARS)


class PreviewPublic(BaseModel):
    """The sample as it would be stored, and what was replaced."""

    text: str
    counts: dict[str, int]


@router.get("/redaction", dependencies=_READ)
def redaction_rules(project: CurrentProject, session: SessionDep) -> RedactionRulesPublic:
    """Return the project's redaction rules (every detector on, typed tokens, by default)."""
    return get_rules(session=session, project_id=project.id)


@router.put("/redaction")
def change_redaction_rules(
    body: RedactionRulesUpdate,
    actor: Admin,
    project: CurrentProject,
    session: SessionDep,
    box: Box,
) -> RedactionRulesPublic:
    """Replace the project's rules; they apply to everything stored from now on."""
    _, after = act_then_audit(
        lambda: set_rules(session=session, project_id=project.id, spec=body, sealer=box),
        session=session,
        actor=actor,
        action="redaction.change",
        target=f"project:{project.id}",
        detail=lambda result: {
            "before": result[0].audit_view(),
            "after": result[1].audit_view(),
        },
        project_id=project.id,
    )
    return after


@router.post("/redaction/preview")
def preview_redaction(
    body: PreviewRequest, _actor: Admin, project: CurrentProject, session: SessionDep, box: Box
) -> PreviewPublic:
    """Redact a sample text with the project's rules and return it; nothing is stored."""
    result = project_redactor(session=session, project_id=project.id, sealer=box)(body.text)
    return PreviewPublic(text=result.text, counts=dict(result.counts))


# --- jobs: recompute and purge ------------------------------------------------------------------


class QueuedJobPublic(BaseModel):
    """A queued job: the worker runs it and audits what it changed."""

    id: uuid.UUID
    kind: str
    state: str

    @classmethod
    def of(cls, job: RuntimeJob) -> QueuedJobPublic:
        """Return the public view of a queued job."""
        return cls(id=job.id, kind=job.kind, state=str(job.state))


class RecomputeRequest(BaseModel):
    """Which spans to price again: those started since ``since`` (default: all)."""

    model_config = ConfigDict(extra="forbid")

    since: datetime | None = None


@router.post("/prices/recompute", status_code=status.HTTP_202_ACCEPTED)
def recompute(
    body: RecomputeRequest,
    actor: Admin,
    project: CurrentProject,
    session: SessionDep,
    settings: SettingsDep,
) -> QueuedJobPublic:
    """Queue re-pricing past spans with today's price table (ingested costs are kept)."""
    job = act_then_audit(
        lambda: queue_recompute(
            session=session,
            project_id=project.id,
            requested_by=actor.name,
            since=body.since,
            max_attempts=settings.worker_max_attempts,
        ),
        session=session,
        actor=actor,
        action="price.recompute",
        target=lambda queued: f"job:{queued.id}",
        detail={"after": {"since": body.since}},
        project_id=project.id,
    )
    return QueuedJobPublic.of(job)


# --- retention --------------------------------------------------------------------------------


@router.get("/retention", dependencies=_READ)
def retention(project: CurrentProject, session: SessionDep) -> RetentionPublic:
    """Return the project's content and metrics lifetimes, its legal hold and last purge."""
    return get_retention(session=session, project_id=project.id)


@router.put("/retention")
def change_retention(
    body: RetentionUpdate, actor: Admin, project: CurrentProject, session: SessionDep
) -> RetentionPublic:
    """Change the lifetimes; the next purge applies them."""
    _, after = act_then_audit(
        lambda: set_retention(session=session, project_id=project.id, spec=body),
        session=session,
        actor=actor,
        action="retention.change",
        target=f"project:{project.id}",
        detail=lambda result: {
            "before": result[0].model_dump(mode="json", exclude={"last_purge_at"}),
            "after": result[1].model_dump(mode="json", exclude={"last_purge_at"}),
        },
        project_id=project.id,
    )
    return after


@router.put("/retention/legal-hold")
def change_legal_hold(
    body: LegalHoldUpdate, actor: Admin, project: CurrentProject, session: SessionDep
) -> RetentionPublic:
    """Set or lift the legal hold; while held, purges delete nothing."""
    _, after = act_then_audit(
        lambda: set_legal_hold(session=session, project_id=project.id, spec=body),
        session=session,
        actor=actor,
        action="retention.legal_hold" if body.hold else "retention.legal_hold_lift",
        target=f"project:{project.id}",
        detail=lambda result: {
            "before": {"legal_hold": result[0].legal_hold},
            "after": {"legal_hold": result[1].legal_hold},
        },
        reason=body.reason,
        project_id=project.id,
    )
    return after


@router.post("/retention/purge", status_code=status.HTTP_202_ACCEPTED)
def purge_now(actor: Admin, project: CurrentProject, session: SessionDep) -> QueuedJobPublic:
    """Queue a purge of the project now (the scheduler also queues one daily)."""
    job = act_then_audit(
        lambda: queue_purge(session=session, project_id=project.id),
        session=session,
        actor=actor,
        action="trace.purge_request",
        target=lambda queued: f"job:{queued.id}",
        project_id=project.id,
    )
    return QueuedJobPublic.of(job)
