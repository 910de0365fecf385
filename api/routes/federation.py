"""Group → role mappings for the identity provider's groups, and sealing the client secret.

Global administrators only: a mapping grants roles to everyone in a group, including possibly
the person creating it, so it is not a project admin's to make (no one grants themselves a
role). Mappings take effect at each member's next sign-in or token use; every change is audited.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response, status
from pydantic import BaseModel, ConfigDict, Field
from sqlmodel import select

from api.deferred_routes import DeferredAPIRoute
from api.deps import SessionDep
from api.oidc import SEALED_PREFIX, box_of
from api.pages import PageDep
from api.security import require_admin
from governance.actors import Actor
from governance.audit import act_then_audit
from governance.federation import (
    MAX_GROUP_LENGTH,
    GroupMapping,
    create_group_mapping,
    delete_group_mapping,
    list_group_mappings,
)
from governance.roles import Role
from lineage.errors import InvalidInput, NotFound
from lineage.projects import Project

__all__ = [
    "GroupMappingCreate",
    "GroupMappingPublic",
    "SealedSecretCreate",
    "SealedSecretPublic",
    "router",
]

router = APIRouter(route_class=DeferredAPIRoute, prefix="/api/v1", tags=["identity provider"])

Admin = Annotated[Actor, Depends(require_admin())]


class GroupMappingCreate(BaseModel):
    """Map a group to a role in a project, or (``admin: true``, alone) to global administrator."""

    model_config = ConfigDict(extra="forbid")

    group: str = Field(min_length=1, max_length=MAX_GROUP_LENGTH)
    project: str | None = Field(default=None, max_length=64)
    role: Role | None = None
    admin: bool = False


class GroupMappingPublic(BaseModel):
    """A mapping as clients read it."""

    id: uuid.UUID
    group: str
    project: str | None
    role: Role | None
    admin: bool
    created_at: datetime

    @classmethod
    def of(cls, mapping: GroupMapping, project: str | None) -> GroupMappingPublic:
        """Build the public view of a stored mapping."""
        return cls(
            id=mapping.id,
            group=mapping.group_name,
            project=project,
            role=Role(mapping.role) if mapping.role is not None else None,
            admin=mapping.project_id is None,
            created_at=mapping.created_at,
        )


class SealedSecretCreate(BaseModel):
    """A secret to seal for a setting (``WARDEN_OIDC_CLIENT_SECRET``)."""

    model_config = ConfigDict(extra="forbid")

    secret: str = Field(min_length=1, max_length=4096)


class SealedSecretPublic(BaseModel):
    """The sealed form: put it in the setting as is; only this installation's key opens it."""

    sealed: str


@router.get("/group-mappings")
def list_mappings(actor: Admin, session: SessionDep, page: PageDep) -> list[GroupMappingPublic]:
    """List the group mappings, oldest first (global administrators only)."""
    found = page.answer_all(
        list_group_mappings(session=session), key_of=lambda pair: (pair[0].created_at, pair[0].id)
    )
    return [GroupMappingPublic.of(m, name) for m, name in found]


@router.post("/group-mappings", status_code=status.HTTP_201_CREATED)
def create_mapping(
    body: GroupMappingCreate, actor: Admin, session: SessionDep
) -> GroupMappingPublic:
    """Map a provider group to a project role or to global administrator; audited."""
    project_id: uuid.UUID | None = None
    if body.admin and (body.project is not None or body.role is not None):
        raise InvalidInput(
            "an administrator mapping names no project and no role; drop them or 'admin'",
            field="admin",
        )
    if not body.admin and (body.project is None or body.role is None):
        raise InvalidInput(
            "name a project and a role for the group, or set 'admin': true",
            field="role" if body.role is None else "project",
        )
    if body.project is not None:
        project = session.exec(select(Project).where(Project.name == body.project)).first()
        if project is None:
            raise NotFound(f"no project named {body.project!r}; create it first", field="project")
        project_id = project.id
    mapping = create_group_mapping(
        session=session, actor=actor, group=body.group, project_id=project_id, role=body.role
    )
    return GroupMappingPublic.of(mapping, body.project if project_id else None)


@router.delete("/group-mappings/{mapping_id}", status_code=status.HTTP_204_NO_CONTENT)
def delete_mapping(mapping_id: uuid.UUID, actor: Admin, session: SessionDep) -> Response:
    """Remove a mapping; members lose what it gave at their next sign-in or token use."""
    delete_group_mapping(session=session, actor=actor, mapping_id=mapping_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/sealed-secrets", status_code=status.HTTP_201_CREATED)
def seal_secret(
    body: SealedSecretCreate, request: Request, actor: Admin, session: SessionDep
) -> SealedSecretPublic:
    """Seal a secret with this installation's outbound key, for ``WARDEN_OIDC_CLIENT_SECRET``.

    The audit entry records that a secret was sealed, never the secret.
    """
    box = box_of(request.app)
    sealed = act_then_audit(
        lambda: SEALED_PREFIX + box.seal({"secret": body.secret}),
        session=session,
        actor=actor,
        action="secret.seal",
        target="setting:oidc_client_secret",
    )
    return SealedSecretPublic(sealed=sealed)
