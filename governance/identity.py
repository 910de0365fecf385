"""Identity: principals (people and service accounts), API keys, passwords, failed-auth throttling.

There are no default credentials. The first administrator is made by :func:`bootstrap_admin`
(``warden admin bootstrap``) on an empty store and its key is printed once.

API keys look like ``wdn_<prefix>_<secret>``. The prefix is public: it identifies the key in
listings and audit entries and is the lookup index. Only a SHA-256 digest of the whole key is
stored. A slow password hash (Argon2) is not needed for these: the secret carries 256 bits of
randomness, so a stolen digest cannot be brute-forced, and a fast hash keeps per-request
verification cheap (a slow hash on every request would hand attackers a denial of service).
Passwords, chosen by people and guessable, are hashed with Argon2 via pwdlib.

Failed authentication is counted per *failing credential* in the store, so every API replica sees
the same count: the caller names the bucket (a sign-in name's keyed digest, or the address that
sent a bad API key), and past the limit that bucket is refused for the rest of the window. A
valid credential is never refused because someone else failed from the same address.

Dashboard sign-ins are recorded server-side (:class:`DashboardSession`, by a digest of the
cookie's nonce), so signing out, disabling a person or changing a password ends a session at
once, on every replica, even though the cookie itself is still validly signed.
"""

from __future__ import annotations

import hashlib
import hmac
import math
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlmodel import Field, Session, col, select

from governance.actors import Actor, PrincipalKind
from governance.audit import append
from lineage.errors import Conflict, InvalidInput, NotFound, RateLimited, Unauthenticated
from lineage.tables import AwareDateTime, Record, utcnow

if TYPE_CHECKING:
    from pwdlib import PasswordHash

__all__ = [
    "KEY_PREFIX",
    "MIN_PASSWORD_LENGTH",
    "PRINCIPAL_NAME_PATTERN",
    "ApiKey",
    "AuthFailure",
    "AuthThrottle",
    "DashboardSession",
    "IssuedKey",
    "Principal",
    "actor_for",
    "admin_exists",
    "authenticate_api_key",
    "bootstrap_admin",
    "check_throttle",
    "create_person",
    "create_service_account",
    "dashboard_session_active",
    "disable_principal",
    "end_dashboard_session",
    "get_principal",
    "get_principal_by_name",
    "issue_api_key",
    "list_api_keys",
    "list_principals",
    "may_sign_in",
    "open_dashboard_session",
    "record_auth_failure",
    "revoke_api_key",
    "verify_password",
]

KEY_PREFIX = "wdn"
MIN_PASSWORD_LENGTH = 12
PRINCIPAL_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_NAME_RE = re.compile(PRINCIPAL_NAME_PATTERN)
_UNKNOWN_KEY = "the API key is unknown, expired or revoked; create a new key and retry"


class Principal(Record, table=True):
    """Someone or something that acts: a person (may sign in) or a service account (automates)."""

    __tablename__ = "governance_principal"

    name: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    kind: PrincipalKind = Field(sa_column=sa.Column(sa.String(16), nullable=False))
    password_hash: str | None = Field(default=None, sa_column=sa.Column(sa.Text, nullable=True))
    is_admin: bool = Field(default=False, nullable=False)
    disabled_at: datetime | None = Field(default=None, sa_type=AwareDateTime, nullable=True)


class ApiKey(Record, table=True):
    """An API key of a principal; only its public prefix and a digest of the secret are kept."""

    __tablename__ = "governance_api_key"

    principal_id: uuid.UUID = Field(foreign_key="governance_principal.id", index=True)
    prefix: str = Field(sa_column=sa.Column(sa.String(32), nullable=False, unique=True))
    secret_hash: str = Field(sa_column=sa.Column(sa.String(64), nullable=False))
    label: str = Field(default="", sa_column=sa.Column(sa.String(100), nullable=False))
    expires_at: datetime | None = Field(default=None, sa_type=AwareDateTime, nullable=True)
    revoked_at: datetime | None = Field(default=None, sa_type=AwareDateTime, nullable=True)

    @property
    def display_prefix(self) -> str:
        """Return the part of the key that is safe to show: ``wdn_<prefix>``."""
        return f"{KEY_PREFIX}_{self.prefix}"


class AuthFailure(Record, table=True):
    """One failed authentication in one throttle bucket, kept for the length of the window.

    ``source`` is the bucket the caller chose: never a typed secret or name in clear.
    """

    __tablename__ = "governance_auth_failure"

    source: str = Field(sa_column=sa.Column(sa.String(128), nullable=False, index=True))


class DashboardSession(Record, table=True):
    """One dashboard sign-in; the cookie is honoured only while its row is open.

    Only a digest of the cookie's random nonce is kept, so the table cannot be turned back into
    cookies (which also need the signing key).
    """

    __tablename__ = "governance_dashboard_session"

    principal_id: uuid.UUID = Field(foreign_key="governance_principal.id", index=True)
    nonce_digest: str = Field(sa_column=sa.Column(sa.String(64), nullable=False, unique=True))
    expires_at: datetime = Field(sa_type=AwareDateTime, nullable=False)
    ended_at: datetime | None = Field(default=None, sa_type=AwareDateTime, nullable=True)


@dataclass(frozen=True, slots=True)
class IssuedKey:
    """A freshly created key: the stored row and the secret, which is never available again."""

    key: ApiKey
    secret: str


@dataclass(frozen=True, slots=True)
class AuthThrottle:
    """How many failed authentications a source may make per window before it is refused."""

    max_failures: int = 10
    window: timedelta = timedelta(minutes=1)


@cache
def _hasher() -> PasswordHash:
    from pwdlib import PasswordHash
    from pwdlib.hashers.argon2 import Argon2Hasher

    return PasswordHash((Argon2Hasher(),))


def _check_name(name: str) -> None:
    if not _NAME_RE.match(name):
        raise InvalidInput(
            f"name {name!r} is not valid: use 1-64 lowercase letters, digits, '.', '_' or '-', "
            "starting with a letter or digit",
            field="name",
        )


def _new_principal(
    *,
    session: Session,
    actor: Actor,
    name: str,
    kind: PrincipalKind,
    is_admin: bool,
    password_hash: str | None,
) -> Principal:
    _check_name(name)
    if session.exec(select(Principal).where(Principal.name == name)).first() is not None:
        raise Conflict(
            f"a principal named {name!r} exists already; pick another name", field="name"
        )
    principal = Principal(name=name, kind=kind, is_admin=is_admin, password_hash=password_hash)
    session.add(principal)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="principal.create",
        target=f"principal:{principal.id}",
        detail={"after": {"name": name, "kind": kind.value, "is_admin": is_admin}},
    )
    return principal


def create_person(
    *,
    session: Session,
    actor: Actor,
    name: str,
    password: str | None = None,
    is_admin: bool = False,
) -> Principal:
    """Create a person; with a password they can sign in to the dashboard, else use API keys.

    Raises:
        InvalidInput: The name is not a valid slug or the password is shorter than
            :data:`MIN_PASSWORD_LENGTH`.
        Conflict: The name is taken.
    """
    password_hash = None
    if password is not None:
        if len(password) < MIN_PASSWORD_LENGTH:
            raise InvalidInput(
                f"the password is too short; use at least {MIN_PASSWORD_LENGTH} characters",
                field="password",
            )
        password_hash = _hasher().hash(password)
    return _new_principal(
        session=session,
        actor=actor,
        name=name,
        kind=PrincipalKind.PERSON,
        is_admin=is_admin,
        password_hash=password_hash,
    )


def create_service_account(*, session: Session, actor: Actor, name: str) -> Principal:
    """Create a service account for automation; it authenticates with API keys only.

    Service accounts are never global administrators, and the approval rules bar them from
    approving anything: automation may request, people decide.
    """
    return _new_principal(
        session=session,
        actor=actor,
        name=name,
        kind=PrincipalKind.SERVICE,
        is_admin=False,
        password_hash=None,
    )


def get_principal(*, session: Session, principal_id: uuid.UUID) -> Principal:
    """Return a principal or raise :class:`NotFound`."""
    principal = session.get(Principal, principal_id)
    if principal is None:
        raise NotFound("no such principal; list principals with GET /api/v1/principals")
    return principal


def get_principal_by_name(*, session: Session, name: str) -> Principal:
    """Return the principal called ``name`` or raise :class:`NotFound`."""
    principal = session.exec(select(Principal).where(Principal.name == name)).first()
    if principal is None:
        raise NotFound(f"no principal named {name!r}; list principals first")
    return principal


def list_principals(*, session: Session) -> list[Principal]:
    """Return every principal ordered by name."""
    return list(session.exec(select(Principal).order_by(sa.asc(col(Principal.name)))).all())


def disable_principal(*, session: Session, actor: Actor, principal_id: uuid.UUID) -> Principal:
    """Disable a principal at once: its keys and password stop working; its history stays.

    Raises:
        NotFound: No such principal.
        Conflict: It is the last active global administrator (that would lock everyone out).
    """
    principal = get_principal(session=session, principal_id=principal_id)
    if principal.disabled_at is not None:
        return principal
    if principal.is_admin:
        others = session.exec(
            select(Principal.id).where(
                Principal.is_admin == sa.true(),
                col(Principal.disabled_at).is_(None),
                Principal.id != principal_id,
            )
        ).first()
        if others is None:
            raise Conflict("this is the last active administrator; create another one first")
    principal.disabled_at = utcnow()
    session.add(principal)
    session.execute(
        sa.update(DashboardSession)
        .where(
            col(DashboardSession.principal_id) == principal_id,
            col(DashboardSession.ended_at).is_(None),
        )
        .values(ended_at=principal.disabled_at)
    )
    session.flush()
    append(
        session=session,
        actor=actor,
        action="principal.disable",
        target=f"principal:{principal.id}",
        detail={"before": {"disabled": False}, "after": {"disabled": True}},
    )
    return principal


def may_sign_in(principal: Principal) -> bool:
    """Return whether ``principal`` may hold a dashboard session: an active person with a password.

    Service accounts and people without a password (the bootstrap administrator) use API keys
    only, so no session cookie may ever stand for them.
    """
    return (
        principal.kind == PrincipalKind.PERSON
        and bool(principal.password_hash)
        and principal.disabled_at is None
    )


def verify_password(*, session: Session, name: str, password: str) -> Principal | None:
    """Return the active person ``name`` if ``password`` is theirs, else ``None``.

    A hash is computed even for unknown names so that timing does not reveal which exist.
    """
    principal = session.exec(select(Principal).where(Principal.name == name)).first()
    if principal is None or principal.password_hash is None or principal.disabled_at is not None:
        _hasher().verify(password, _dummy_hash())
        return None
    return principal if _hasher().verify(password, principal.password_hash) else None


@cache
def _dummy_hash() -> str:
    return _hasher().hash(secrets.token_urlsafe(16))


def _digest(raw_key: str) -> str:
    return hashlib.sha256(raw_key.encode()).hexdigest()


_NO_KEY_DIGEST = "0" * 64
# Built once, so SQLAlchemy computes its cache key once, not per request.
_KEY_WITH_PRINCIPAL = (
    select(ApiKey, Principal)
    .join(Principal, col(Principal.id) == col(ApiKey.principal_id))
    .where(ApiKey.prefix == sa.bindparam("prefix"))
)


def issue_api_key(
    *,
    session: Session,
    actor: Actor,
    principal_id: uuid.UUID,
    label: str = "",
    expires_at: datetime | None = None,
) -> IssuedKey:
    """Create an API key for a principal and return its secret, which is shown only this once.

    Raises:
        NotFound: The principal does not exist.
        InvalidInput: ``expires_at`` is in the past.
    """
    get_principal(session=session, principal_id=principal_id)
    if expires_at is not None and expires_at <= utcnow():
        raise InvalidInput("expires_at is in the past; give a future time", field="expires_at")
    prefix = secrets.token_hex(6)
    secret = f"{KEY_PREFIX}_{prefix}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        principal_id=principal_id,
        prefix=prefix,
        secret_hash=_digest(secret),
        label=label,
        expires_at=expires_at,
    )
    session.add(key)
    session.flush()
    append(
        session=session,
        actor=actor,
        action="api_key.create",
        target=f"principal:{principal_id}",
        detail={"after": {"prefix": key.display_prefix, "label": label, "expires_at": expires_at}},
    )
    return IssuedKey(key=key, secret=secret)


def authenticate_api_key(
    *, session: Session, raw_key: str, now: datetime | None = None
) -> tuple[Principal, ApiKey]:
    """Return the principal and key behind ``raw_key``.

    Raises:
        Unauthenticated: The key is malformed, unknown, expired, revoked, or its principal
            is disabled (one message for all, so probing learns nothing).
    """
    parts = raw_key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX:
        raise Unauthenticated(f"the credential is not a Warden API key ({KEY_PREFIX}_…)")
    # The key and its principal in one indexed read: every API request makes it.
    found = session.exec(_KEY_WITH_PRINCIPAL, params={"prefix": parts[1]}).first()
    digest = _digest(raw_key)
    if found is None:
        hmac.compare_digest(_NO_KEY_DIGEST, digest)  # the same work as for a known prefix
        raise Unauthenticated(_UNKNOWN_KEY)
    key, principal = found
    if not hmac.compare_digest(key.secret_hash, digest):
        raise Unauthenticated(_UNKNOWN_KEY)
    now = now or utcnow()
    if key.revoked_at is not None or (key.expires_at is not None and key.expires_at <= now):
        raise Unauthenticated(_UNKNOWN_KEY)
    if principal.disabled_at is not None:
        raise Unauthenticated(_UNKNOWN_KEY)
    return principal, key


def list_api_keys(*, session: Session, principal_id: uuid.UUID) -> list[ApiKey]:
    """Return a principal's keys, newest first (prefixes only; secrets are never stored)."""
    query = (
        select(ApiKey)
        .where(ApiKey.principal_id == principal_id)
        .order_by(sa.desc(col(ApiKey.created_at)))
    )
    return list(session.exec(query).all())


def revoke_api_key(
    *, session: Session, actor: Actor, principal_id: uuid.UUID, key_id: uuid.UUID
) -> ApiKey:
    """Revoke a key of ``principal_id`` at once; revoking twice keeps the first time.

    Raises:
        NotFound: The principal has no such key.
    """
    key = session.get(ApiKey, key_id)
    if key is None or key.principal_id != principal_id:
        raise NotFound("the principal has no such key; list its keys first")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        session.add(key)
        session.flush()
        append(
            session=session,
            actor=actor,
            action="api_key.revoke",
            target=f"principal:{principal_id}",
            detail={"before": {"prefix": key.display_prefix}},
        )
    return key


def admin_exists(*, session: Session) -> bool:
    """Return whether any global administrator exists (bootstrap refuses then)."""
    query = select(Principal.id).where(Principal.is_admin == sa.true())
    return session.exec(query).first() is not None


def bootstrap_admin(*, session: Session, name: str) -> IssuedKey:
    """Create the first global administrator and an API key for it, on a store without one.

    Raises:
        Conflict: An administrator exists already; use their key to create more.
    """
    if admin_exists(session=session):
        raise Conflict(
            "an administrator exists already; bootstrap runs once. Use an admin's key "
            "(or `warden admin` commands) to create more principals"
        )
    actor = Actor.system()
    principal = create_person(session=session, actor=actor, name=name, is_admin=True)
    return issue_api_key(session=session, actor=actor, principal_id=principal.id, label="bootstrap")


def actor_for(
    principal: Principal, *, project_id: uuid.UUID | None = None, request_id: str | None = None
) -> Actor:
    """Return the :class:`Actor` that services and audit entries carry for ``principal``."""
    return Actor(
        principal_id=principal.id,
        name=principal.name,
        kind=PrincipalKind(principal.kind),
        is_admin=principal.is_admin,
        project_id=project_id,
        request_id=request_id,
    )


def check_throttle(
    *, session: Session, source: str, throttle: AuthThrottle, now: datetime | None = None
) -> None:
    """Refuse the bucket ``source`` while it holds too many failures in the current window.

    Raises:
        RateLimited: With the seconds until the oldest counted failure leaves the window.
    """
    now = now or utcnow()
    recent = session.exec(
        select(AuthFailure.created_at)
        .where(AuthFailure.source == source, AuthFailure.created_at > now - throttle.window)
        .order_by(sa.desc(col(AuthFailure.created_at)))
        .limit(throttle.max_failures)
    ).all()
    if len(recent) < throttle.max_failures:
        return
    retry = max(1, math.ceil((recent[-1] + throttle.window - now).total_seconds()))
    raise RateLimited(
        f"too many failed attempts with this credential; retry in {retry} s",
        retry_after_seconds=retry,
    )


def record_auth_failure(
    *, session: Session, source: str, throttle: AuthThrottle, now: datetime | None = None
) -> None:
    """Count one failure in the bucket ``source`` and forget failures older than a window."""
    now = now or utcnow()
    session.execute(
        sa.delete(AuthFailure).where(col(AuthFailure.created_at) <= now - throttle.window)
    )
    session.add(AuthFailure(source=source[:128], created_at=now))
    session.flush()


def open_dashboard_session(
    *,
    session: Session,
    principal: Principal,
    nonce_digest: str,
    expires_at: datetime,
    federated: bool = False,
    now: datetime | None = None,
) -> DashboardSession:
    """Record a dashboard sign-in (and drop sessions that expired long enough ago).

    ``federated`` marks a sign-in vouched for by the identity provider: any active person may
    then hold a session; otherwise only those :func:`may_sign_in` allows (a password).

    Raises:
        Unauthenticated: ``principal`` may not sign in.
    """
    allowed = (
        principal.kind == PrincipalKind.PERSON and principal.disabled_at is None
        if federated
        else may_sign_in(principal)
    )
    if not allowed:
        raise Unauthenticated("this principal cannot sign in to the dashboard; use an API key")
    now = now or utcnow()
    session.execute(sa.delete(DashboardSession).where(col(DashboardSession.expires_at) <= now))
    row = DashboardSession(
        principal_id=principal.id, nonce_digest=nonce_digest, expires_at=expires_at
    )
    session.add(row)
    session.flush()
    return row


def dashboard_session_active(
    *, session: Session, principal_id: uuid.UUID, nonce_digest: str, now: datetime | None = None
) -> bool:
    """Return whether the sign-in ``nonce_digest`` of ``principal_id`` is open and unexpired."""
    row = session.exec(
        select(DashboardSession).where(DashboardSession.nonce_digest == nonce_digest)
    ).first()
    return (
        row is not None
        and row.principal_id == principal_id
        and row.ended_at is None
        and row.expires_at > (now or utcnow())
    )


def end_dashboard_session(
    *, session: Session, nonce_digest: str, now: datetime | None = None
) -> DashboardSession | None:
    """End the sign-in ``nonce_digest`` (sign-out); a replayed cookie is refused from now on."""
    row = session.exec(
        select(DashboardSession).where(DashboardSession.nonce_digest == nonce_digest)
    ).first()
    if row is not None and row.ended_at is None:
        row.ended_at = now or utcnow()
        session.add(row)
        session.flush()
    return row
