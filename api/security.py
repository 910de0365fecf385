"""The permission gate: every route declares what it needs, and the default is deny.

Use it on a route as data::

    @router.post("/api/v1/projects/{project}/monitors",
                 dependencies=[Depends(require(Permission.MONITOR_WRITE))])

or, when the handler needs the caller::

    def handler(actor: Annotated[Actor, Depends(require(Permission.MONITOR_WRITE))],
                project: CurrentProject, session: SessionDep) -> ...

What the gate does, in order:

1. Gives the request an id (``X-Request-ID`` if the client sent a sane one, else a fresh one),
   echoed in the response and carried in :attr:`Actor.request_id`.
2. Authenticates ``Authorization: Bearer <API key>`` (401 when missing or bad; a bad key is
   counted for throttling and audited), or, when ``WARDEN_OIDC_API_AUDIENCE`` is set, a bearer
   JWT access token from the identity provider (:mod:`api.oidc`), mapped to a service account.
   Other credential readers (the dashboard's session cookie) plug in per app through
   ``app.state.credential_readers`` (see :data:`CredentialReader`).
3. Throttles *failing* credentials only: once an address has sent too many bad credentials in
   the window, further bad ones get 429 with ``Retry-After`` (and are no longer audited, so a
   flood cannot grow the log), while valid keys from the same address keep working. API keys
   and session cookies cannot be guessed (256 random bits; an HMAC key), so answering a valid
   one is no oracle; passwords, which can be guessed, are throttled per name at sign-in.
4. For routes with a ``{project}`` path parameter: loads the project by name; 404 when it does
   not exist *or* the caller has no role there (no existence leak; global admins see all);
   403 when the caller's roles lack the permission. The project is put on
   ``request.state.project`` (read it with :data:`CurrentProject`) and the actor is scoped to it.
5. For routes without ``{project}``: global admins pass; others pass when they hold the
   permission in at least one project, and the handler must then check the object's project
   with :func:`governance.roles.authorize`. ``require_admin()`` admits global admins only;
   ``require_authenticated()`` admits anyone signed in (for "my own" routes).

Denied attempts are written to the audit log in their own transaction, so they survive the
failed request. The gate reads in its own short transaction too, so it never holds the
request's session (and, on SQLite, its write lock) while auditing.

What steps 2, 4 and 5 read for a valid API key is kept per process (:mod:`api.gate_cache`) and
reused only while the identity generation, moved by database triggers on every change to keys,
principals, role grants and projects, reads the same; the decisions above are made afresh from
it on every request (expiry included), so a cached answer is refused exactly as a fresh one.
On a SQLite file a cached answer that admits the caller is used on the event loop, after one
read of the generation that never waits (``LoopGenerationReader``); everything else, denials
and their audit included, runs on a worker thread.

The route sweep (``tests/api/test_route_sweep.py``) finds the :class:`Gate` in each route's
dependencies and reads its :attr:`Gate.permission`, so new routes are covered automatically.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.concurrency import run_in_threadpool

from api.gate_cache import GateCache, KeyAnswer, project_snapshot
from api.oidc import access_token_principal, provider_of
from api.settings import Settings
from governance.actors import Actor, PrincipalKind
from governance.audit import Outcome, append
from governance.identity import (
    KEY_PREFIX,
    AuthThrottle,
    Principal,
    actor_for,
    authenticate_api_key,
    check_throttle,
    record_auth_failure,
)
from governance.identity_generation import LoopGenerationReader, read_generation
from governance.permissions import Permission
from governance.roles import permissions_anywhere, project_permissions
from lineage.errors import NotFound, PermissionDenied, Unauthenticated, WardenError
from lineage.projects import Project
from lineage.store import session_scope
from lineage.tables import utcnow

__all__ = [
    "PROJECT_PATH_PARAM",
    "REQUEST_ID_HEADER",
    "CredentialReader",
    "CurrentProject",
    "Gate",
    "current_project",
    "request_id_of",
    "require",
    "require_admin",
    "require_authenticated",
]

PROJECT_PATH_PARAM = "project"
REQUEST_ID_HEADER = "X-Request-ID"
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_NO_PROJECT = "no such project, or you have no role in it; list yours with GET /api/v1/projects"

_bearer = HTTPBearer(
    auto_error=False,
    description="A Warden API key (`wdn_<prefix>_<secret>`) or, where configured, an access "
    "token (JWT) from the organisation's identity provider.",
)

CredentialReader = Callable[[Request, Session], "Principal | None"]
"""Reads a non-bearer credential (e.g. a session cookie); returns the principal or ``None``.

Readers are tried in order when a request has no bearer token; register them per app as
``app.state.credential_readers = [...]``. A reader raises
:class:`~lineage.errors.Unauthenticated` for a credential that is present but bad, so it is
counted and audited like a bad API key."""


def request_id_of(request: Request) -> str:
    """Return this request's id, taking a sane ``X-Request-ID`` or minting one once."""
    existing = getattr(request.state, "request_id", None)
    if isinstance(existing, str):
        return existing
    sent = request.headers.get(REQUEST_ID_HEADER, "")
    request_id = sent if _REQUEST_ID_RE.match(sent) else uuid.uuid4().hex
    request.state.request_id = request_id
    return request_id


def _source(request: Request) -> str:
    return request.client.host if request.client else "unknown"


def _failure_bucket(source: str) -> str:
    """Return the throttle bucket of bad credentials sent from ``source``."""
    return f"addr:{source}"


@dataclass(frozen=True, slots=True)
class _Denial:
    error: WardenError
    actor: Actor | None
    route: str
    target_kind: str
    target_id: str


def _record_denial(
    engine: Engine, denial: _Denial, *, request_id: str, source: str, throttle: AuthThrottle
) -> None:
    """Audit the denial (and count a failed authentication) in a transaction of its own."""
    actor = denial.actor or Actor(
        principal_id=None,
        name=f"anonymous@{source}",
        kind=PrincipalKind.SYSTEM,
        request_id=request_id,
    )
    with session_scope(engine) as session:
        if denial.actor is None:
            check_throttle(session=session, source=_failure_bucket(source), throttle=throttle)
            record_auth_failure(session=session, source=_failure_bucket(source), throttle=throttle)
        append(
            session=session,
            actor=actor,
            action="auth.failed" if denial.actor is None else "access.denied",
            target=f"{denial.target_kind}:{denial.target_id}",
            outcome=Outcome.DENIED,
            reason=f"{denial.route}: {getattr(denial.error, 'audit_reason', denial.error.detail)}",
        )


def _action(request: Request) -> str:
    route = request.scope.get("route")
    path = getattr(route, "path", None)  # request.url only when needed: it builds the whole URL
    return f"{request.method} {path if isinstance(path, str) else request.url.path}"


class Gate:
    """The dependency that authenticates the caller and checks one permission.

    Attributes:
        permission: The permission the route needs, or ``None`` for authentication only.
        admin_only: Whether only global administrators pass.
    """

    def __init__(self, permission: Permission | None, *, admin_only: bool = False) -> None:
        self.permission = permission
        self.admin_only = admin_only

    def __repr__(self) -> str:
        """Show the requirement, as it appears in error logs and the route sweep."""
        return f"Gate({self.permission!s}, admin_only={self.admin_only})"

    async def __call__(
        self,
        request: Request,
        response: Response,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Actor:
        """Authenticate, authorize and return the actor; raise the matching error otherwise.

        A cached API-key answer that admits the caller is used on the event loop (see
        :meth:`_admitted_on_loop`); everything else runs on a worker thread.
        """
        admitted = self._admitted_on_loop(request, response, credentials)
        if admitted is not None:
            return admitted
        actor: Actor = await run_in_threadpool(self._gate, request, response, credentials)
        return actor

    def _admitted_on_loop(
        self,
        request: Request,
        response: Response,
        credentials: HTTPAuthorizationCredentials | None,
    ) -> Actor | None:
        """Return the actor when the cache admits the caller without any I/O but one read.

        Only with a reader of the generation that never waits (SQLite files); a miss, an
        expired key or a denial returns ``None`` and the worker thread decides (and audits).
        """
        reader: LoopGenerationReader | None = getattr(request.app.state, "loop_generation", None)
        cache: GateCache | None = getattr(request.app.state, "gate_cache", None)
        if (
            reader is None
            or cache is None
            or credentials is None
            or not credentials.credentials.startswith(f"{KEY_PREFIX}_")
        ):
            return None
        generation = reader.read()
        if generation is None:
            return None
        name: str | None = request.path_params.get(PROJECT_PATH_PARAM)
        answer = cache.get(
            digest=cache.digest(credentials.credentials), name=name, generation=generation
        )
        if answer is None or answer.expired(utcnow()):
            return None
        request_id = request_id_of(request)
        actor = answer.actor(request_id=request_id)
        action = _action(request)
        outcome = self._decide(request, actor, answer.fresh_project(), answer.held, action)
        if not isinstance(outcome, Actor):
            return None
        response.headers[REQUEST_ID_HEADER] = request_id
        return outcome

    def _gate(
        self,
        request: Request,
        response: Response,
        credentials: HTTPAuthorizationCredentials | None,
    ) -> Actor:
        engine: Engine = request.app.state.engine  # as get_engine: one dependency fewer to solve
        request_id = request_id_of(request)
        response.headers[REQUEST_ID_HEADER] = request_id
        action = _action(request)
        cache: GateCache | None = getattr(request.app.state, "gate_cache", None)
        outcome: Actor | _Denial | None
        if (
            cache is not None
            and credentials is not None
            and credentials.credentials.startswith(f"{KEY_PREFIX}_")
        ):
            outcome = self._with_api_key(
                request, engine, cache, credentials.credentials, request_id, action
            )
        else:
            outcome = self._uncached(request, engine, credentials, request_id, action)
        if isinstance(outcome, Actor):
            return outcome
        if outcome is None:
            raise Unauthenticated(
                "credentials required: send `Authorization: Bearer <API key>` "
                "(create a key with `warden admin key create`)"
            )
        settings: Settings = request.app.state.settings
        throttle = AuthThrottle(
            max_failures=settings.auth_max_failures,
            window=timedelta(seconds=settings.auth_failure_window_seconds),
        )
        _record_denial(
            engine, outcome, request_id=request_id, source=_source(request), throttle=throttle
        )
        raise outcome.error

    def _with_api_key(
        self,
        request: Request,
        engine: Engine,
        cache: GateCache,
        raw_key: str,
        request_id: str,
        action: str,
    ) -> Actor | _Denial:
        """Answer from the cache while the identity generation holds, else read and keep it.

        The generation is read *before* the answer, so an answer is never kept under a
        generation newer than what it saw (see :mod:`api.gate_cache`).
        """
        name: str | None = request.path_params.get(PROJECT_PATH_PARAM)
        digest = cache.digest(raw_key)
        generation = read_generation(engine)
        if generation is not None:
            answer = cache.get(digest=digest, name=name, generation=generation)
            if answer is not None and not answer.expired(utcnow()):
                actor = answer.actor(request_id=request_id)
                return self._decide(request, actor, answer.fresh_project(), answer.held, action)
        # An API key is checked by reads alone: that transaction takes no write lock (SQLite),
        # so authenticating never queues behind writers.
        with session_scope(engine, read_only=True) as session:
            try:
                principal, key = authenticate_api_key(session=session, raw_key=raw_key)
            except Unauthenticated as error:
                return _Denial(error, None, action, "route", action)  # never cached
            actor = actor_for(principal, request_id=request_id)
            project, held = self._resolve(session, actor, name, everything=True)
        if generation is not None and (name is None or (project is not None and held)):
            answer = KeyAnswer(
                principal_id=principal.id,
                name=principal.name,
                kind=actor.kind,
                is_admin=principal.is_admin,
                expires_at=key.expires_at,
                project=None if project is None else project_snapshot(project),
                held=held,
            )
            cache.put(digest=digest, name=name, generation=generation, answer=answer)
        return self._decide(request, actor, project, held, action)

    def _uncached(
        self,
        request: Request,
        engine: Engine,
        credentials: HTTPAuthorizationCredentials | None,
        request_id: str,
        action: str,
    ) -> Actor | _Denial | None:
        """Authenticate and authorize by reading the store (access tokens, session cookies)."""
        # Other credentials than API keys may provision or touch rows (OIDC, dashboard
        # sessions) and keep a writing transaction.
        reads_only = credentials is not None and credentials.credentials.startswith(
            f"{KEY_PREFIX}_"
        )
        with session_scope(engine, read_only=reads_only) as session:
            try:
                principal = self._authenticate(request, session, credentials)
            except Unauthenticated as error:
                return _Denial(error, None, action, "route", action)
            if principal is None:
                return None
            actor = actor_for(principal, request_id=request_id)
            name = request.path_params.get(PROJECT_PATH_PARAM)
            project, held = self._resolve(session, actor, name, everything=False)
            return self._decide(request, actor, project, held, action)

    def _authenticate(
        self,
        request: Request,
        session: Session,
        credentials: HTTPAuthorizationCredentials | None,
    ) -> Principal | None:
        if credentials is not None:
            raw = credentials.credentials
            provider = provider_of(request.app)
            if (
                provider is not None
                and not raw.startswith(f"{KEY_PREFIX}_")
                and raw.count(".") == 2
            ):
                return access_token_principal(
                    session=session,
                    provider=provider,
                    settings=request.app.state.settings,
                    token=raw,
                )
            principal, _key = authenticate_api_key(session=session, raw_key=raw)
            return principal
        readers: list[CredentialReader] = getattr(request.app.state, "credential_readers", [])
        for reader in readers:
            found = reader(request, session)
            if found is not None:
                return found
        return None

    def _resolve(
        self, session: Session, actor: Actor, name: str | None, *, everything: bool
    ) -> tuple[Project | None, frozenset[Permission]]:
        """Return the project called ``name`` and what ``actor`` holds there.

        Without a project: what ``actor`` holds in any project, read only when this gate
        checks a permission or when ``everything`` (an answer to cache) is asked for.
        """
        if name is not None:
            return project_permissions(session=session, actor=actor, name=name)
        if everything or (self.permission is not None and not self.admin_only):
            return None, permissions_anywhere(session=session, actor=actor)
        return None, frozenset()

    def _decide(
        self,
        request: Request,
        actor: Actor,
        project: Project | None,
        held: frozenset[Permission],
        action: str,
    ) -> Actor | _Denial:
        """Return the (scoped) actor or the denial, from what the store or the cache said."""
        name = request.path_params.get(PROJECT_PATH_PARAM)
        if self.admin_only and not actor.is_admin:
            error = PermissionDenied("only a global administrator may do this")
            return _Denial(error, actor, action, "route", action)
        if name is None:
            if self.permission is None or self.admin_only or self.permission in held:
                return actor
            error = PermissionDenied(
                f"none of your roles grants {self.permission.value!r}; ask a project admin"
            )
            return _Denial(error, actor, action, "route", action)
        if project is None:
            return _Denial(NotFound(_NO_PROJECT), actor, action, "project", name)
        if not held:
            return _Denial(NotFound(_NO_PROJECT), actor, action, "project", str(project.id))
        scoped = actor.in_project(project.id)
        if self.permission is not None and self.permission not in held:
            error = PermissionDenied(
                f"your roles in project {name!r} lack {self.permission.value!r}; ask a project "
                "admin for a role that grants it (see docs/security.md)"
            )
            return _Denial(error, scoped, action, "project", str(project.id))
        request.state.project = project
        return scoped


def require(permission: Permission) -> Gate:
    """Return the gate for ``permission``: ``Depends(require(Permission.X))`` on every route."""
    return Gate(permission)


def require_admin() -> Gate:
    """Return the gate admitting global administrators only (creating projects, principals)."""
    return Gate(None, admin_only=True)


def require_authenticated() -> Gate:
    """Return the gate admitting any authenticated principal (routes about the caller itself)."""
    return Gate(None)


async def current_project(request: Request) -> Project:
    """Return the project the gate loaded for this request's ``{project}`` path parameter.

    Raises:
        RuntimeError: The route has no gate before this dependency (a programming error:
            declare ``require(...)`` in ``dependencies=[...]`` or as an earlier parameter).
    """
    project = getattr(request.state, "project", None)
    if not isinstance(project, Project):
        raise RuntimeError(
            "CurrentProject used without a gate: declare Depends(require(...)) before it"
        )
    return project


CurrentProject = Annotated[Project, Depends(current_project)]
