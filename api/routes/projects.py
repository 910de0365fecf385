"""Projects and the role grants inside them.

Global administrators create projects; everyone lists only the projects they hold a role in.
Project admins grant and revoke roles (``project:admin``); no one grants a role to themselves.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, status
from pydantic import BaseModel, ConfigDict, Field

from api.deferred_routes import DeferredAPIRoute
from api.deps import EngineDep, SessionDep
from api.pages import PageDep
from api.security import CurrentProject, require, require_admin, require_authenticated
from governance.actors import Actor
from governance.audit import act_then_audit, append_in_own_transaction
from governance.identity import get_principal
from governance.permissions import Permission
from governance.roles import (
    Role,
    RoleGrant,
    grant_role,
    list_grants,
    revoke_role,
    visible_project_ids,
)
from lineage.errors import NotFound, SeparationOfDuties
from lineage.projects import PROJECT_NAME_PATTERN, Project, create_project, list_projects

__all__ = ["GrantCreate", "GrantPublic", "ProjectCreate", "ProjectPublic", "router"]

router = APIRouter(route_class=DeferredAPIRoute, prefix="/api/v1/projects", tags=["projects"])


class ProjectCreate(BaseModel):
    """A new project: a URL-safe name and an optional description."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=PROJECT_NAME_PATTERN, max_length=63)
    description: str = Field(default="", max_length=2000)


class ProjectPublic(BaseModel):
    """A project as clients see it."""

    id: uuid.UUID
    name: str
    description: str
    created_at: datetime

    @classmethod
    def of(cls, project: Project) -> ProjectPublic:
        """Build the public view of a stored project."""
        return cls(
            id=project.id,
            name=project.name,
            description=project.description,
            created_at=project.created_at,
        )


class GrantCreate(BaseModel):
    """Give a principal a role in this project."""

    model_config = ConfigDict(extra="forbid")

    principal_id: uuid.UUID
    role: Role


class GrantPublic(BaseModel):
    """A role held by a principal in a project."""

    id: uuid.UUID
    principal_id: uuid.UUID
    role: Role
    granted_by_id: uuid.UUID | None
    created_at: datetime

    @classmethod
    def of(cls, grant: RoleGrant) -> GrantPublic:
        """Build the public view of a stored grant."""
        return cls(
            id=grant.id,
            principal_id=grant.principal_id,
            role=Role(grant.role),
            granted_by_id=grant.granted_by_id,
            created_at=grant.created_at,
        )


@router.post("", status_code=status.HTTP_201_CREATED)
def create(
    body: ProjectCreate,
    actor: Annotated[Actor, Depends(require_admin())],
    session: SessionDep,
) -> ProjectPublic:
    """Create a project (global administrators only)."""
    project = act_then_audit(
        lambda: create_project(session=session, name=body.name, description=body.description),
        session=session,
        actor=actor,
        action="project.create",
        target=lambda made: f"project:{made.id}",
        detail=lambda made: {"after": {"name": made.name}},
        project_id=lambda made: made.id,
    )
    return ProjectPublic.of(project)


@router.get("")
def list_visible(
    actor: Annotated[Actor, Depends(require_authenticated())], session: SessionDep, page: PageDep
) -> list[ProjectPublic]:
    """List the projects the caller holds a role in (all of them for global administrators)."""
    ids = visible_project_ids(session=session, actor=actor)
    found = list_projects(session=session, ids=ids)
    return [ProjectPublic.of(p) for p in page.answer_all(found, key_of=lambda p: (p.name, p.id))]


@router.get("/{project}", dependencies=[Depends(require(Permission.PROJECT_READ))])
def read(project: CurrentProject) -> ProjectPublic:
    """Return one project."""
    return ProjectPublic.of(project)


@router.get("/{project}/grants", dependencies=[Depends(require(Permission.PROJECT_ADMIN))])
def grants(project: CurrentProject, session: SessionDep, page: PageDep) -> list[GrantPublic]:
    """List who holds which role in the project, oldest grant first."""
    found = list_grants(session=session, project_id=project.id)
    return [
        GrantPublic.of(g) for g in page.answer_all(found, key_of=lambda g: (g.created_at, g.id))
    ]


@router.post("/{project}/grants", status_code=status.HTTP_201_CREATED)
def grant(
    body: GrantCreate,
    actor: Annotated[Actor, Depends(require(Permission.PROJECT_ADMIN))],
    project: CurrentProject,
    engine: EngineDep,
    session: SessionDep,
) -> GrantPublic:
    """Grant a role in the project to a principal (never to oneself)."""
    get_principal(session=session, principal_id=body.principal_id)
    try:
        created = grant_role(
            session=session,
            actor=actor,
            project_id=project.id,
            principal_id=body.principal_id,
            role=body.role,
        )
    except SeparationOfDuties as error:
        session.rollback()  # release the request's transaction (SQLite's write lock) first
        append_in_own_transaction(
            engine=engine,
            actor=actor,
            action="role.grant",
            target=f"principal:{body.principal_id}",
            reason=error.detail,
        )
        raise
    return GrantPublic.of(created)


@router.delete("/{project}/grants/{grant_id}", status_code=status.HTTP_204_NO_CONTENT)
def revoke(
    grant_id: uuid.UUID,
    actor: Annotated[Actor, Depends(require(Permission.PROJECT_ADMIN))],
    project: CurrentProject,
    session: SessionDep,
) -> None:
    """Withdraw a role grant of this project."""
    found = session.get(RoleGrant, grant_id)
    if found is None or found.project_id != project.id:
        raise NotFound("no such grant in this project; list them with GET …/grants")
    revoke_role(
        session=session,
        actor=actor,
        project_id=project.id,
        principal_id=found.principal_id,
        role=Role(found.role),
    )
