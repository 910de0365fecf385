"""Principals (people and service accounts) and their API keys.

Global administrators create principals. Every principal manages its own keys; administrators
manage anyone's. A key's secret appears once, in the response that creates it; listings show
the public prefix only. Someone else's principal answers 404 to non-admins, as if absent.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, status
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field
from sqlmodel import Session

from api.deferred_routes import DeferredAPIRoute
from api.deps import SessionDep, SettingsDep
from api.pages import PageDep
from api.security import require_admin, require_authenticated
from governance.actors import Actor, PrincipalKind
from governance.federation import federated_ids, identity_of
from governance.identity import (
    MIN_PASSWORD_LENGTH,
    PRINCIPAL_NAME_PATTERN,
    ApiKey,
    Principal,
    create_person,
    create_service_account,
    disable_principal,
    get_principal,
    issue_api_key,
    list_api_keys,
    list_principals,
    revoke_api_key,
)
from governance.roles import Role, roles_held
from lineage.errors import InvalidInput, NotFound

__all__ = [
    "ApiKeyCreate",
    "ApiKeyCreatedPublic",
    "ApiKeyPublic",
    "PrincipalCreate",
    "PrincipalPublic",
    "RoleHeldPublic",
    "WhoAmIPublic",
    "router",
]

router = APIRouter(route_class=DeferredAPIRoute, prefix="/api/v1/principals", tags=["principals"])

Admin = Annotated[Actor, Depends(require_admin())]
Authenticated = Annotated[Actor, Depends(require_authenticated())]


class PrincipalCreate(BaseModel):
    """A new person or service account; service accounts have neither password nor admin flag."""

    model_config = ConfigDict(extra="forbid")

    name: str = Field(pattern=PRINCIPAL_NAME_PATTERN, max_length=64)
    kind: Literal["person", "service"] = "person"
    password: str | None = Field(default=None, min_length=MIN_PASSWORD_LENGTH, max_length=1024)
    is_admin: bool = False


class PrincipalPublic(BaseModel):
    """A principal as clients see it (never its password hash)."""

    id: uuid.UUID
    name: str
    kind: PrincipalKind
    is_admin: bool
    can_sign_in: bool
    federated: bool = Field(
        description="Known by the identity provider (issuer and subject); signs in there."
    )
    disabled: bool
    created_at: datetime

    @classmethod
    def of(cls, principal: Principal, *, federated: bool = False) -> PrincipalPublic:
        """Build the public view of a stored principal (``federated``: linked to the provider)."""
        return cls(
            id=principal.id,
            name=principal.name,
            kind=PrincipalKind(principal.kind),
            is_admin=principal.is_admin,
            can_sign_in=principal.password_hash is not None
            or (federated and principal.kind == PrincipalKind.PERSON),
            federated=federated,
            disabled=principal.disabled_at is not None,
            created_at=principal.created_at,
        )


class RoleHeldPublic(BaseModel):
    """One role the caller holds, and where."""

    project: str
    role: Role


class WhoAmIPublic(BaseModel):
    """The caller and the roles it holds."""

    principal: PrincipalPublic
    roles: list[RoleHeldPublic]


class ApiKeyCreate(BaseModel):
    """A new API key: a label to recognise it by and an optional expiry."""

    model_config = ConfigDict(extra="forbid")

    label: str = Field(default="", max_length=100)
    expires_at: AwareDatetime | None = None


class ApiKeyPublic(BaseModel):
    """An API key as listings show it: prefix, label and state, never the secret."""

    id: uuid.UUID
    prefix: str
    label: str
    created_at: datetime
    expires_at: datetime | None
    revoked_at: datetime | None

    @classmethod
    def of(cls, key: ApiKey) -> ApiKeyPublic:
        """Build the public view of a stored key."""
        return cls(
            id=key.id,
            prefix=key.display_prefix,
            label=key.label,
            created_at=key.created_at,
            expires_at=key.expires_at,
            revoked_at=key.revoked_at,
        )


class ApiKeyCreatedPublic(ApiKeyPublic):
    """A key just created: the only response that ever carries its secret."""

    key: str = Field(description="The secret key. Store it now: Warden shows it only once.")


def _public(session: Session, principal: Principal) -> PrincipalPublic:
    linked = identity_of(session=session, principal_id=principal.id) is not None
    return PrincipalPublic.of(principal, federated=linked)


def _own_or_admin(actor: Actor, principal_id: uuid.UUID) -> None:
    if not actor.is_admin and actor.principal_id != principal_id:
        raise NotFound("no such principal; list principals with GET /api/v1/principals")


@router.post("", status_code=status.HTTP_201_CREATED)
def create(
    body: PrincipalCreate, actor: Admin, session: SessionDep, settings: SettingsDep
) -> PrincipalPublic:
    """Create a person or a service account (global administrators only)."""
    if body.password is not None and not settings.local_passwords:
        raise InvalidInput(
            "local passwords are switched off on this installation (WARDEN_LOCAL_PASSWORDS); "
            "people sign in through the identity provider: omit the password",
            field="password",
        )
    if body.kind == "service":
        if body.password is not None or body.is_admin:
            raise InvalidInput(
                "service accounts use API keys only and cannot be administrators; "
                "remove password and is_admin",
                field="kind",
            )
        principal = create_service_account(session=session, actor=actor, name=body.name)
    else:
        principal = create_person(
            session=session,
            actor=actor,
            name=body.name,
            password=body.password,
            is_admin=body.is_admin,
        )
    return PrincipalPublic.of(principal)


@router.get("")
def list_all(actor: Admin, session: SessionDep, page: PageDep) -> list[PrincipalPublic]:
    """List the principals by name (global administrators only)."""
    linked = federated_ids(session=session)
    found = page.answer_all(list_principals(session=session), key_of=lambda p: (p.name, p.id))
    return [PrincipalPublic.of(p, federated=p.id in linked) for p in found]


@router.get("/me")
def me(actor: Authenticated, session: SessionDep) -> WhoAmIPublic:
    """Return the caller and the roles it holds in each project."""
    assert actor.principal_id is not None
    principal = get_principal(session=session, principal_id=actor.principal_id)
    held = roles_held(session=session, principal_id=actor.principal_id)
    return WhoAmIPublic(
        principal=_public(session, principal),
        roles=[RoleHeldPublic(project=name, role=role) for name, role in held],
    )


@router.get("/{principal_id}")
def read(principal_id: uuid.UUID, actor: Authenticated, session: SessionDep) -> PrincipalPublic:
    """Return one principal (oneself, or anyone for global administrators)."""
    _own_or_admin(actor, principal_id)
    return _public(session, get_principal(session=session, principal_id=principal_id))


@router.post("/{principal_id}/disable")
def disable(principal_id: uuid.UUID, actor: Admin, session: SessionDep) -> PrincipalPublic:
    """Disable a principal (global administrators only); its keys stop working at once."""
    return _public(
        session, disable_principal(session=session, actor=actor, principal_id=principal_id)
    )


@router.post("/{principal_id}/keys", status_code=status.HTTP_201_CREATED)
def create_key(
    principal_id: uuid.UUID, body: ApiKeyCreate, actor: Authenticated, session: SessionDep
) -> ApiKeyCreatedPublic:
    """Create an API key for oneself (or anyone, for administrators); the secret shows once."""
    _own_or_admin(actor, principal_id)
    issued = issue_api_key(
        session=session,
        actor=actor,
        principal_id=principal_id,
        label=body.label,
        expires_at=body.expires_at,
    )
    return ApiKeyCreatedPublic(**ApiKeyPublic.of(issued.key).model_dump(), key=issued.secret)


@router.get("/{principal_id}/keys")
def keys(
    principal_id: uuid.UUID, actor: Authenticated, session: SessionDep, page: PageDep
) -> list[ApiKeyPublic]:
    """List a principal's keys, oldest first (secrets are never stored, so never shown)."""
    _own_or_admin(actor, principal_id)
    get_principal(session=session, principal_id=principal_id)
    found = list_api_keys(session=session, principal_id=principal_id)
    return [
        ApiKeyPublic.of(k) for k in page.answer_all(found, key_of=lambda k: (k.created_at, k.id))
    ]


@router.delete("/{principal_id}/keys/{key_id}")
def revoke_key(
    principal_id: uuid.UUID, key_id: uuid.UUID, actor: Authenticated, session: SessionDep
) -> ApiKeyPublic:
    """Revoke a key at once; requests with it fail from now on."""
    _own_or_admin(actor, principal_id)
    key = revoke_api_key(session=session, actor=actor, principal_id=principal_id, key_id=key_id)
    return ApiKeyPublic.of(key)
