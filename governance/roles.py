"""Roles per project and the one role → permissions table that decides who may do what.

The table :data:`ROLE_PERMISSIONS` is data: the permission gate in ``api`` reads it, the docs
render it as a matrix (``docs/security.md``, checked by a test), and changing a role means
changing one line here. A principal may hold several roles in a project (permissions are the
union); a global administrator (``Principal.is_admin``) holds every permission everywhere.

Object-level rule: a principal with no role in a project cannot see that project at all, so
callers turn "no role" into :class:`~lineage.errors.NotFound`, never into a 403 that would
confirm the project exists.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from enum import StrEnum

import sqlalchemy as sa
from sqlmodel import Field, Session, col, select

from governance.actors import Actor
from governance.audit import append
from governance.identity import Principal
from governance.permissions import Permission
from lineage.errors import Conflict, InvalidInput, NotFound, PermissionDenied, SeparationOfDuties
from lineage.projects import Project
from lineage.tables import Record

__all__ = [
    "ROLE_PERMISSIONS",
    "Role",
    "RoleGrant",
    "authorize",
    "grant_role",
    "holds_anywhere",
    "list_grants",
    "permissions_anywhere",
    "permissions_of",
    "project_permissions",
    "render_matrix",
    "revoke_role",
    "roles_held",
    "roles_of",
    "visible_project_ids",
]


class Role(StrEnum):
    """The closed set of roles a principal can hold in a project."""

    VIEWER = "viewer"
    DATA_SCIENTIST = "data_scientist"
    APPROVER = "approver"
    AUDITOR = "auditor"
    ADMIN = "admin"


_READ = frozenset(
    {
        Permission.PROJECT_READ,
        Permission.LINEAGE_READ,
        Permission.MODEL_READ,
        Permission.MONITOR_READ,
        Permission.POLICY_READ,
        Permission.PIPELINE_READ,
        Permission.ALERT_READ,
        Permission.REPORT_READ,
        Permission.TRACE_READ,
    }
)

ROLE_PERMISSIONS: Mapping[Role, frozenset[Permission]] = {
    Role.VIEWER: _READ,
    Role.DATA_SCIENTIST: _READ
    | {
        Permission.LINEAGE_WRITE,
        Permission.MODEL_WRITE,
        Permission.MODEL_PROMOTE,
        Permission.DEPLOYMENT_WRITE,
        Permission.INFERENCE_WRITE,
        Permission.MONITOR_WRITE,
        Permission.MONITOR_RUN,
        Permission.PIPELINE_WRITE,
        Permission.PIPELINE_RUN,
        Permission.APPROVAL_REQUEST,
        Permission.ALERT_WRITE,
        Permission.INCIDENT_ACK,
        Permission.TRACE_WRITE,
    },
    Role.APPROVER: _READ | {Permission.APPROVAL_DECIDE},
    Role.AUDITOR: _READ | {Permission.AUDIT_READ},
    Role.ADMIN: frozenset(Permission),
}
"""Role → permissions. Promotions and policy changes still pass an approval with separation of
duties, so holding ``model:promote`` lets a data scientist *carry out* an approved promotion,
not approve it."""


class RoleGrant(Record, table=True):
    """One role held by one principal in one project, and who (or which group) granted it."""

    __tablename__ = "governance_role_grant"
    __table_args__ = (sa.UniqueConstraint("project_id", "principal_id", "role"),)

    project_id: uuid.UUID = Field(foreign_key="lineage_project.id", index=True)
    principal_id: uuid.UUID = Field(foreign_key="governance_principal.id", index=True)
    role: Role = Field(sa_column=sa.Column(sa.String(32), nullable=False))
    granted_by_id: uuid.UUID | None = Field(default=None)
    source: str = Field(
        default="direct",
        sa_column=sa.Column(sa.String(16), nullable=False, server_default="direct"),
    )
    """``direct`` (granted by someone) or ``group`` (kept in step with the identity provider's
    groups by :mod:`governance.federation`)."""


def roles_of(*, session: Session, principal_id: uuid.UUID, project_id: uuid.UUID) -> set[Role]:
    """Return the roles ``principal_id`` holds in ``project_id`` (empty when none)."""
    rows = session.exec(
        select(RoleGrant.role).where(
            RoleGrant.principal_id == principal_id, RoleGrant.project_id == project_id
        )
    ).all()
    return {Role(r) for r in rows}


def roles_held(*, session: Session, principal_id: uuid.UUID) -> list[tuple[str, Role]]:
    """Return ``(project name, role)`` for every role the principal holds, by project name."""
    rows = session.exec(
        select(Project.name, RoleGrant.role)
        .join(RoleGrant, col(RoleGrant.project_id) == col(Project.id))
        .where(RoleGrant.principal_id == principal_id)
        .order_by(col(Project.name), col(RoleGrant.role))
    ).all()
    return [(name, Role(role)) for name, role in rows]


def permissions_of(
    *, session: Session, actor: Actor, project_id: uuid.UUID
) -> frozenset[Permission]:
    """Return every permission ``actor`` holds in ``project_id``; all of them for global admins."""
    if actor.is_admin:
        return frozenset(Permission)
    if actor.principal_id is None:
        return frozenset()
    held: frozenset[Permission] = frozenset()
    for role in roles_of(session=session, principal_id=actor.principal_id, project_id=project_id):
        held |= ROLE_PERMISSIONS[role]
    return held


_PROJECT_WITH_ROLES = (
    select(Project, RoleGrant.role)
    .outerjoin(
        RoleGrant,
        sa.and_(
            col(RoleGrant.project_id) == col(Project.id),
            col(RoleGrant.principal_id) == sa.bindparam("principal_id", type_=sa.Uuid),
        ),
    )
    .where(Project.name == sa.bindparam("name"))
)


def project_permissions(
    *, session: Session, actor: Actor, name: str
) -> tuple[Project | None, frozenset[Permission]]:
    """Return the project called ``name`` and what ``actor`` may do there, in one read.

    What :func:`permissions_of` answers, with the project looked up by name in the same query
    (the permission gate does it on every request). ``(None, ∅)`` when there is no such project.
    """
    rows = session.exec(
        _PROJECT_WITH_ROLES, params={"principal_id": actor.principal_id, "name": name}
    ).all()
    if not rows:
        return None, frozenset()
    project = rows[0][0]
    if actor.is_admin:
        return project, frozenset(Permission)
    held: frozenset[Permission] = frozenset()
    for _project, role in rows:
        if role is not None:
            held |= ROLE_PERMISSIONS[Role(role)]
    return project, held


def authorize(
    *, session: Session, actor: Actor, project_id: uuid.UUID, permission: Permission
) -> None:
    """Check that ``actor`` holds ``permission`` in ``project_id`` (object-level check).

    Use it where the project is known only from the body or the object (routes without a
    ``{project}`` path parameter, workers acting for a principal).

    Raises:
        NotFound: The actor has no role in the project (its existence is not revealed).
        PermissionDenied: The actor's roles there lack ``permission``.
    """
    held = permissions_of(session=session, actor=actor, project_id=project_id)
    if not held:
        raise NotFound("no such project, or you have no role in it; ask a project admin")
    if permission not in held:
        raise PermissionDenied(
            f"your roles in this project lack {permission.value!r}; ask a project admin "
            "for a role that grants it (see docs/security.md)"
        )


def holds_anywhere(*, session: Session, actor: Actor, permission: Permission) -> bool:
    """Return whether ``actor`` holds ``permission`` in at least one project."""
    return permission in permissions_anywhere(session=session, actor=actor)


def permissions_anywhere(*, session: Session, actor: Actor) -> frozenset[Permission]:
    """Return every permission ``actor`` holds in at least one project (all for global admins)."""
    if actor.is_admin:
        return frozenset(Permission)
    if actor.principal_id is None:
        return frozenset()
    held: frozenset[Permission] = frozenset()
    for role in set(
        session.exec(
            select(RoleGrant.role).where(RoleGrant.principal_id == actor.principal_id)
        ).all()
    ):
        held |= ROLE_PERMISSIONS[Role(role)]
    return held


def visible_project_ids(*, session: Session, actor: Actor) -> set[uuid.UUID] | None:
    """Return the ids of projects ``actor`` may see, or ``None`` meaning all (global admins)."""
    if actor.is_admin:
        return None
    if actor.principal_id is None:
        return set()
    return set(
        session.exec(
            select(RoleGrant.project_id).where(RoleGrant.principal_id == actor.principal_id)
        ).all()
    )


def grant_role(
    *,
    session: Session,
    actor: Actor,
    project_id: uuid.UUID,
    principal_id: uuid.UUID,
    role: Role | str,
) -> RoleGrant:
    """Grant ``role`` in ``project_id`` to ``principal_id`` on behalf of ``actor``.

    The caller has checked ``project:admin`` already; this function enforces the duty rule
    that no one grants a role to themselves, so an admin cannot quietly widen their own reach.

    Raises:
        SeparationOfDuties: ``actor`` is ``principal_id``.
        InvalidInput: ``role`` is not a known role.
        NotFound: The principal does not exist.
        Conflict: The principal holds that role there already.
    """
    if actor.principal_id is not None and actor.principal_id == principal_id:
        raise SeparationOfDuties(
            "a principal cannot grant itself a role; ask another project admin", field="principal"
        )
    try:
        role = Role(role)
    except ValueError:
        known = ", ".join(r.value for r in Role)
        raise InvalidInput(f"unknown role {role!r}; use one of: {known}", field="role") from None
    if session.get(Principal, principal_id) is None:
        raise NotFound("no such principal; list principals with GET /api/v1/principals")
    existing = session.exec(
        select(RoleGrant).where(
            RoleGrant.project_id == project_id,
            RoleGrant.principal_id == principal_id,
            RoleGrant.role == role,
        )
    ).first()
    if existing is not None:
        raise Conflict(f"the principal holds role {role.value!r} in this project already")
    grant = RoleGrant(
        project_id=project_id,
        principal_id=principal_id,
        role=role,
        granted_by_id=actor.principal_id,
    )
    session.add(grant)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="role.grant",
        target=f"principal:{principal_id}",
        detail={"after": {"role": role.value}},
        project_id=project_id,
    )
    return grant


def revoke_role(
    *, session: Session, actor: Actor, project_id: uuid.UUID, principal_id: uuid.UUID, role: Role
) -> None:
    """Withdraw ``role`` in ``project_id`` from ``principal_id``.

    Raises:
        NotFound: The principal does not hold that role there.
    """
    grant = session.exec(
        select(RoleGrant).where(
            RoleGrant.project_id == project_id,
            RoleGrant.principal_id == principal_id,
            RoleGrant.role == role,
        )
    ).first()
    if grant is None:
        raise NotFound(f"the principal does not hold role {role.value!r} in this project")
    session.delete(grant)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="role.revoke",
        target=f"principal:{principal_id}",
        detail={"before": {"role": role.value}},
        project_id=project_id,
    )


def list_grants(*, session: Session, project_id: uuid.UUID) -> list[RoleGrant]:
    """Return the role grants of one project, oldest first."""
    query = (
        select(RoleGrant)
        .where(RoleGrant.project_id == project_id)
        .order_by(sa.asc(col(RoleGrant.created_at)))
    )
    return list(session.exec(query).all())


def render_matrix() -> str:
    """Render :data:`ROLE_PERMISSIONS` as the Markdown table shown in ``docs/security.md``."""
    roles = list(Role)
    lines = [
        "| permission | " + " | ".join(r.value for r in roles) + " |",
        "|---|" + "---|" * len(roles),
    ]
    for permission in Permission:
        marks = ["✓" if permission in ROLE_PERMISSIONS[r] else "" for r in roles]
        lines.append(f"| `{permission.value}` | " + " | ".join(marks) + " |")
    return "\n".join(lines) + "\n"
