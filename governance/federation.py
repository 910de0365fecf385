"""Federated identity: people and services known by their identity provider, roles from its groups.

A principal who signs in through OpenID Connect is found by its stable subject identifier, the
pair (issuer, ``sub``) in :class:`ExternalIdentity`, never by a name: the Warden name chosen at
the first sign-in (just in time) may differ from the provider's display name, which may change,
and separation of duties is keyed on the principal id the pair resolves to.

Roles come from groups. A :class:`GroupMapping` says "members of group G hold role R in project
P" (or, with no project, "are global administrators"). At every sign-in and every use of an
access token, :func:`sign_in_federated` recomputes the principal's group-derived grants from the
groups the provider just vouched for: grants made by a mapping (``RoleGrant.source ==
"group"``) are added or withdrawn to match, grants made by hand are left alone. So removing
someone from a group at the provider removes the role at their next sign-in or token use, with
no one touching Warden. Every change is audited, by the system actor (no one grants themselves
a role), with the groups as the reason.

A sign-in in progress (:class:`OidcLogin`) is kept server-side by a digest of its ``state``,
with its ``nonce`` and PKCE verifier sealed, bound to the browser that started it, and consumed
once before it expires.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlmodel import JSON, Field, Session, col, select

from governance.actors import Actor, PrincipalKind
from governance.audit import act_then_audit, append
from governance.identity import Principal, create_person, create_service_account
from governance.roles import Role, RoleGrant
from lineage.errors import Conflict, InvalidInput, NotFound, Unauthenticated
from lineage.projects import Project
from lineage.tables import AwareDateTime, Record, utcnow

__all__ = [
    "MAX_GROUP_LENGTH",
    "ExternalIdentity",
    "FederatedClaims",
    "GroupMapping",
    "OidcLogin",
    "begin_login",
    "consume_login",
    "create_group_mapping",
    "delete_group_mapping",
    "federated_ids",
    "identity_of",
    "list_group_mappings",
    "sign_in_federated",
    "state_digest",
]

MAX_GROUP_LENGTH = 256
_SLUG_DROP = re.compile(r"[^a-z0-9._-]+")
_EXPIRED_LOGIN = (
    "this sign-in was already used, has expired or was started in another browser; "
    "start again from the sign-in page"
)


class ExternalIdentity(Record, table=True):
    """The link from a provider's stable subject (issuer, ``sub``) to one Warden principal."""

    __tablename__ = "governance_external_identity"
    __table_args__ = (sa.UniqueConstraint("issuer", "subject"),)

    principal_id: uuid.UUID = Field(
        sa_column=sa.Column(
            sa.Uuid(), sa.ForeignKey("governance_principal.id"), nullable=False, unique=True
        )
    )
    issuer: str = Field(sa_column=sa.Column(sa.String(512), nullable=False))
    subject: str = Field(sa_column=sa.Column(sa.String(255), nullable=False))
    display_name: str = Field(default="", sa_column=sa.Column(sa.String(200), nullable=False))
    email: str = Field(default="", sa_column=sa.Column(sa.String(320), nullable=False))
    groups: list[str] = Field(default_factory=list, sa_column=sa.Column(JSON, nullable=False))
    last_seen_at: datetime = Field(default_factory=utcnow, sa_type=AwareDateTime, nullable=False)


class GroupMapping(Record, table=True):
    """Members of ``group_name`` hold ``role`` in ``project_id``, or are global administrators.

    ``project_id`` and ``role`` are both set (a project role) or both ``None`` (administrator).
    """

    __tablename__ = "governance_group_mapping"

    group_name: str = Field(sa_column=sa.Column(sa.String(MAX_GROUP_LENGTH), nullable=False))
    project_id: uuid.UUID | None = Field(
        default=None, foreign_key="lineage_project.id", index=True, nullable=True
    )
    role: Role | None = Field(default=None, sa_column=sa.Column(sa.String(32), nullable=True))
    created_by_id: uuid.UUID | None = Field(default=None)


class OidcLogin(Record, table=True):
    """One sign-in in progress: found by a digest of ``state``, usable once, until it expires."""

    __tablename__ = "governance_oidc_login"

    state_digest: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    binder_digest: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    sealed: str = Field(sa_column=sa.Column(sa.Text(), nullable=False))
    next_url: str = Field(default="/", sa_column=sa.Column(sa.String(2000), nullable=False))
    expires_at: datetime = Field(sa_type=AwareDateTime, nullable=False)
    used_at: datetime | None = Field(default=None, sa_type=AwareDateTime, nullable=True)


@dataclass(frozen=True, slots=True)
class FederatedClaims:
    """What a validated token says about its holder, as Warden uses it.

    Attributes:
        issuer: The token's ``iss``.
        subject: The token's ``sub``: stable and unique at that issuer.
        kind: A person (ID token) or a service (client-credentials access token).
        preferred_name: A hint for the Warden name made at first sign-in.
        display_name: Shown in listings; never used to decide anything.
        email: The ``email`` claim when present.
        groups: The groups the provider put in the token (the configured claim).
    """

    issuer: str
    subject: str
    kind: PrincipalKind
    preferred_name: str
    display_name: str = ""
    email: str = ""
    groups: tuple[str, ...] = ()


def state_digest(text: str) -> str:
    """Return the digest under which a one-time value (``state``, a browser binder) is kept."""
    return hashlib.sha256(text.encode()).hexdigest()


# --- sign-ins in progress ------------------------------------------------------------------


def begin_login(
    *,
    session: Session,
    state: str,
    binder: str,
    sealed: str,
    next_url: str,
    expires_at: datetime,
    now: datetime | None = None,
) -> OidcLogin:
    """Record a sign-in being started (and drop those that expired)."""
    now = now or utcnow()
    session.execute(sa.delete(OidcLogin).where(col(OidcLogin.expires_at) <= now))
    row = OidcLogin(
        state_digest=state_digest(state),
        binder_digest=state_digest(binder),
        sealed=sealed,
        next_url=next_url,
        expires_at=expires_at,
    )
    session.add(row)
    session.flush()
    return row


def consume_login(
    *, session: Session, state: str, binder: str | None, now: datetime | None = None
) -> OidcLogin:
    """Return the sign-in ``state`` names and mark it used; each ``state`` works once.

    Raises:
        Unauthenticated: ``state`` is unknown, used, expired, or the browser is not the one that
            started the sign-in (a login-CSRF attempt).
    """
    now = now or utcnow()
    row = session.exec(
        select(OidcLogin).where(OidcLogin.state_digest == state_digest(state)).with_for_update()
    ).first()
    if row is None or row.used_at is not None or row.expires_at <= now:
        raise Unauthenticated(_EXPIRED_LOGIN)
    if binder is None or row.binder_digest != state_digest(binder):
        raise Unauthenticated(_EXPIRED_LOGIN)
    row.used_at = now
    session.add(row)
    session.flush()
    return row


# --- federated principals ------------------------------------------------------------------


def federated_ids(*, session: Session) -> set[uuid.UUID]:
    """Return the ids of every principal linked to the identity provider."""
    return set(session.exec(select(ExternalIdentity.principal_id)).all())


def identity_of(*, session: Session, principal_id: uuid.UUID) -> ExternalIdentity | None:
    """Return the provider identity linked to ``principal_id``, or ``None`` for local ones."""
    return session.exec(
        select(ExternalIdentity).where(ExternalIdentity.principal_id == principal_id)
    ).first()


def _free_name(session: Session, hint: str) -> str:
    base = _SLUG_DROP.sub("-", hint.lower()).strip("-._")[:56] or "user"
    if not base[0].isalnum():
        base = f"u{base}"[:56]
    taken = set(
        session.exec(select(Principal.name).where(col(Principal.name).startswith(base))).all()
    )
    if base not in taken:
        return base
    for n in range(2, 10_000):
        if (candidate := f"{base}-{n}") not in taken:
            return candidate
    raise Conflict("no free principal name for this identity; ask an administrator")


def _link(session: Session, claims: FederatedClaims) -> ExternalIdentity | None:
    return session.exec(
        select(ExternalIdentity).where(
            ExternalIdentity.issuer == claims.issuer, ExternalIdentity.subject == claims.subject
        )
    ).first()


def _create(session: Session, claims: FederatedClaims) -> None:
    """Create the principal and its link (flushed), so a concurrent twin fails on the link."""
    system = Actor.system()
    name = _free_name(session, claims.preferred_name or claims.subject)
    if claims.kind == PrincipalKind.SERVICE:
        principal = create_service_account(session=session, actor=system, name=name)
    else:
        principal = create_person(session=session, actor=system, name=name)
    session.add(
        ExternalIdentity(principal_id=principal.id, issuer=claims.issuer, subject=claims.subject)
    )
    session.flush()


def sign_in_federated(*, session: Session, claims: FederatedClaims, jit: bool) -> Principal:
    """Return the principal behind validated ``claims``, creating it on first sign-in if ``jit``.

    Refreshes the link's display data and groups, then reconciles group-derived roles and the
    global-administrator flag with the mappings (see the module docstring).

    Raises:
        Unauthenticated: The identity is unknown and ``jit`` is off, its principal is disabled,
            or it is linked to a principal of the other kind.
    """
    link = _link(session, claims)
    if link is None:
        if not jit:
            raise Unauthenticated(
                "you have no Warden account yet; ask an administrator to create one"
            )
        try:
            with session.begin_nested():
                _create(session, claims)
        except sa.exc.IntegrityError:
            pass  # a concurrent first request created it (or took the name): look again
        link = _link(session, claims)
        if link is None:
            raise Unauthenticated("your account is being set up; sign in again in a moment")
    principal = session.get(Principal, link.principal_id)
    if principal is None or principal.disabled_at is not None:
        raise Unauthenticated("your Warden account is disabled; ask an administrator to enable it")
    if principal.kind != claims.kind.value:
        raise Unauthenticated("this identity belongs to another kind of Warden account")
    link.display_name = claims.display_name[:200]
    link.email = claims.email[:320]
    link.groups = sorted({g for g in claims.groups if g})
    link.last_seen_at = utcnow()
    session.add(link)
    session.flush()
    _reconcile(session=session, principal=principal, groups=set(link.groups))
    return principal


def _reconcile(*, session: Session, principal: Principal, groups: set[str]) -> None:
    """Make the principal's group-derived grants and admin flag match ``groups``."""
    mappings = (
        list(
            session.exec(
                select(GroupMapping).where(col(GroupMapping.group_name).in_(sorted(groups)))
            ).all()
        )
        if groups
        else []
    )
    wanted: dict[tuple[uuid.UUID, Role], str] = {}
    admin_groups = sorted(
        {m.group_name for m in mappings if m.project_id is None and m.role is None}
    )
    for m in mappings:
        if m.project_id is not None and m.role is not None:
            wanted.setdefault((m.project_id, Role(m.role)), m.group_name)
    held = list(session.exec(select(RoleGrant).where(RoleGrant.principal_id == principal.id)).all())
    by_key = {(g.project_id, Role(g.role)): g for g in held}
    system = Actor.system()
    target = f"principal:{principal.id}"
    for key, grant in by_key.items():
        if grant.source == "group" and key not in wanted:
            session.delete(grant)
            session.flush()
            append(
                session=session,
                actor=system,
                action="role.revoke",
                target=target,
                detail={"before": {"role": key[1].value, "source": "group"}},
                reason="no longer in a group mapped to this role",
                project_id=key[0],
            )
    for key, group in sorted(wanted.items(), key=lambda item: (str(item[0][0]), item[0][1])):
        if key in by_key:
            continue
        session.add(
            RoleGrant(project_id=key[0], principal_id=principal.id, role=key[1], source="group")
        )
        session.flush()
        append(
            session=session,
            actor=system,
            action="role.grant",
            target=target,
            detail={"after": {"role": key[1].value, "source": "group", "group": group}},
            reason=f"member of group {group!r}",
            project_id=key[0],
        )
    should_be_admin = bool(admin_groups) and principal.kind == PrincipalKind.PERSON
    if principal.is_admin != should_be_admin:
        before = principal.is_admin
        principal.is_admin = should_be_admin
        session.add(principal)
        session.flush()
        append(
            session=session,
            actor=system,
            action="principal.admin",
            target=target,
            detail={"before": {"is_admin": before}, "after": {"is_admin": should_be_admin}},
            reason=(
                f"member of group {admin_groups[0]!r}"
                if should_be_admin
                else "no longer in a group mapped to global administrator"
            ),
        )


# --- group mappings -------------------------------------------------------------------------


def _check_group(group: str) -> str:
    group = group.strip()
    if not group or len(group) > MAX_GROUP_LENGTH:
        raise InvalidInput(
            f"give the group as the provider writes it in tokens (1-{MAX_GROUP_LENGTH} "
            "characters): a name, or an object id for Entra ID",
            field="group",
        )
    return group


def create_group_mapping(
    *,
    session: Session,
    actor: Actor,
    group: str,
    project_id: uuid.UUID | None,
    role: Role | None,
) -> GroupMapping:
    """Map a provider group to a role in a project, or (no project, no role) to administrator.

    Takes effect at each member's next sign-in or token use.

    Raises:
        InvalidInput: The group is empty or too long, or only one of project and role is given.
        Conflict: The same mapping exists.
    """
    group = _check_group(group)
    if (project_id is None) != (role is None):
        raise InvalidInput(
            "give both a project and a role, or neither (a global-administrator mapping)",
            field="role" if role is None else "project",
        )
    same = session.exec(
        select(GroupMapping.id).where(
            GroupMapping.group_name == group,
            col(GroupMapping.project_id).is_(None)
            if project_id is None
            else GroupMapping.project_id == project_id,
            col(GroupMapping.role).is_(None) if role is None else GroupMapping.role == role,
        )
    ).first()
    if same is not None:
        raise Conflict(f"group {group!r} is mapped to that already", field="group")

    def _add() -> GroupMapping:
        mapping = GroupMapping(
            group_name=group, project_id=project_id, role=role, created_by_id=actor.principal_id
        )
        session.add(mapping)
        return mapping

    return act_then_audit(
        _add,
        session=session,
        actor=actor,
        action="group_mapping.create",
        target=lambda m: f"group_mapping:{m.id}",
        detail=lambda m: {"after": _describe(m)},
        project_id=project_id,
    )


def _describe(mapping: GroupMapping) -> dict[str, Any]:
    return {
        "group": mapping.group_name,
        "role": Role(mapping.role).value if mapping.role is not None else "global administrator",
        "project_id": str(mapping.project_id) if mapping.project_id else None,
    }


def delete_group_mapping(*, session: Session, actor: Actor, mapping_id: uuid.UUID) -> None:
    """Remove a mapping; members lose what it gave at their next sign-in or token use.

    Raises:
        NotFound: No such mapping.
    """
    mapping = session.get(GroupMapping, mapping_id)
    if mapping is None:
        raise NotFound("no such group mapping; list them with GET /api/v1/group-mappings")
    before = _describe(mapping)

    def _delete() -> uuid.UUID:
        session.delete(mapping)
        return mapping_id

    act_then_audit(
        _delete,
        session=session,
        actor=actor,
        action="group_mapping.delete",
        target=f"group_mapping:{mapping_id}",
        detail={"before": before},
        project_id=mapping.project_id,
    )


def list_group_mappings(*, session: Session) -> Sequence[tuple[GroupMapping, str | None]]:
    """Return every mapping with its project's name (``None`` for administrator mappings)."""
    rows = session.exec(
        select(GroupMapping, Project.name)
        .join(Project, col(Project.id) == col(GroupMapping.project_id), isouter=True)
        .order_by(col(GroupMapping.group_name), col(GroupMapping.created_at))
    ).all()
    return [(mapping, name) for mapping, name in rows]
