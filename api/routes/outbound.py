"""The outbound allow-list over HTTP: destinations exempted from the SSRF guard, per project.

Changing it switches the guard off for a destination, so every route needs ``project:admin``
(reading needs ``alert:read``) and every change is audited in the request's transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel, ConfigDict, Field

from api.deferred_routes import DeferredAPIRoute
from api.deps import SessionDep
from api.pages import PageDep
from api.security import CurrentProject, require
from governance.actors import Actor
from governance.audit import act_then_audit
from governance.outbound import (
    AllowEntry,
    add_allow_entry,
    list_allow_entries,
    remove_allow_entry,
)
from governance.permissions import Permission

__all__ = ["AllowEntryCreate", "AllowEntryPublic", "router"]

router = APIRouter(
    route_class=DeferredAPIRoute, prefix="/api/v1/projects/{project}", tags=["alerts"]
)

Reader = Annotated[Actor, Depends(require(Permission.ALERT_READ))]
Admin = Annotated[Actor, Depends(require(Permission.PROJECT_ADMIN))]


class AllowEntryCreate(BaseModel):
    """A destination to exempt from the outbound guard: a host name or an IP network."""

    model_config = ConfigDict(extra="forbid")

    target: str = Field(min_length=1, max_length=255, examples=["10.0.0.0/24", "hooks.internal"])
    note: str = Field(default="", max_length=500, description="Why it is safe to allow.")


class AllowEntryPublic(BaseModel):
    """An outbound allow-list entry."""

    id: uuid.UUID
    target: str
    note: str
    created_by: str
    created_at: datetime


def _entry(entry: AllowEntry) -> AllowEntryPublic:
    return AllowEntryPublic(
        id=entry.id,
        target=entry.target,
        note=entry.note,
        created_by=entry.created_by,
        created_at=entry.created_at,
    )


@router.get("/outbound-allowlist", summary="List the outbound allow-list")
def list_outbound_allowlist(
    _actor: Reader, project: CurrentProject, session: SessionDep, page: PageDep
) -> list[AllowEntryPublic]:
    """Return the destinations exempted from the outbound guard in this project."""
    found = list_allow_entries(session=session, project_id=project.id)
    return [_entry(e) for e in page.answer_all(found, key_of=lambda e: (e.target, e.id))]


@router.post(
    "/outbound-allowlist",
    status_code=status.HTTP_201_CREATED,
    summary="Allow a destination despite the outbound guard",
)
def add_outbound_allowlist(
    spec: AllowEntryCreate, actor: Admin, project: CurrentProject, session: SessionDep
) -> AllowEntryPublic:
    """Exempt a host name or network from the SSRF guard (project admins only; audited)."""
    entry = act_then_audit(
        lambda: add_allow_entry(
            session=session,
            project_id=project.id,
            target=spec.target,
            note=spec.note,
            created_by=actor.name,
        ),
        session=session,
        actor=actor,
        action="outbound_allow.add",
        target=lambda added: f"outbound_allow:{added.id}",
        reason=spec.note,
        detail=lambda added: {"target": added.target},
    )
    return _entry(entry)


@router.delete(
    "/outbound-allowlist/{entry_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    summary="Remove an allow-list entry",
)
def remove_outbound_allowlist(
    entry_id: uuid.UUID, actor: Admin, project: CurrentProject, session: SessionDep
) -> Response:
    """Make the guard refuse the destination again (project admins only; audited)."""
    act_then_audit(
        lambda: remove_allow_entry(session=session, project_id=project.id, entry_id=entry_id),
        session=session,
        actor=actor,
        action="outbound_allow.remove",
        target=f"outbound_allow:{entry_id}",
        detail=lambda removed: {"target": removed.target},
    )
    return Response(status_code=status.HTTP_204_NO_CONTENT)
