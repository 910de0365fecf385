"""Dashboard sign-in with the organisation's OpenID Connect provider (authorization-code flow).

``GET /login/oidc`` starts a sign-in: a fresh ``state``, ``nonce`` and PKCE verifier are kept
server-side (:class:`governance.federation.OidcLogin`, the nonce and verifier sealed), bound to
this browser by a short-lived cookie, and the browser is sent to the provider. Starts are
throttled per address (:data:`STARTS_PER_MINUTE`), since each keeps a row for a while.
``GET /login/oidc/callback`` consumes the ``state`` once (in its own transaction, so even a failed
attempt cannot be replayed), redeems the code with the verifier, validates the ID token
(:class:`governance.openid_provider.OpenIDProvider`), finds or creates the person by issuer and
subject, re-reads their group-derived roles and opens a dashboard session.

Every outcome is audited: ``auth.signin`` with the issuer, or ``auth.failed`` with the exact
reason; the person sees only what to do next and a reference (the request id) to quote.
"""

from __future__ import annotations

import re
import secrets
from datetime import timedelta

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from api.dashboard.rendering import router
from api.dashboard.sign_in import login_page, safe_next
from api.deps import EngineDep
from api.oidc import box_of, claims_of, provider_of
from api.security import request_id_of
from api.settings import Settings
from api.web_session import set_session_cookie
from governance.actors import Actor, PrincipalKind
from governance.audit import Outcome, append
from governance.federation import begin_login, consume_login, sign_in_federated
from governance.identity import AuthThrottle, actor_for, check_throttle, record_auth_failure
from governance.openid_provider import TokenRefused
from lineage.errors import NotFound, RateLimited, Unauthenticated, Unavailable
from lineage.store import session_scope
from lineage.tables import utcnow

__all__ = ["BINDER_COOKIE", "CALLBACK_PATH", "LOGIN_SECONDS", "STARTS_PER_MINUTE", "code_of"]

BINDER_COOKIE = "warden_oidc_flow"
CALLBACK_PATH = "/login/oidc/callback"
LOGIN_SECONDS = 600
"""How long a started sign-in may take at the provider before it must be started again."""
_ERROR_CODE = re.compile(r"[a-z_]{1,40}")
STARTS_PER_MINUTE = 30
"""Sign-ins one address may start per minute: each keeps a row for ``LOGIN_SECONDS``, so an
anonymous flood must not grow the table without bound."""


def _sentence(detail: str) -> str:
    return detail[:1].upper() + detail[1:] + "."


def code_of(error: str) -> str:
    """Return the provider's error code if it looks like one (RFC 6749), else ``error``.

    The callback's query is anyone's to write: only a short code is ever shown back, never
    free text that would let a crafted link put its own words on Warden's page.
    """
    return error if _ERROR_CODE.fullmatch(error) else "error"


def _redirect_uri(request: Request, settings: Settings) -> str:
    if settings.oidc_redirect_url:
        return settings.oidc_redirect_url
    return f"{request.url.scheme}://{request.url.netloc}{CALLBACK_PATH}"


def _failed(
    request: Request, engine: EngineDep, *, reason: str, shown: str, status_code: int
) -> Response:
    """Audit a failed sign-in with ``reason``; show ``shown`` and the reference to quote."""
    request_id = request_id_of(request)
    source = request.client.host if request.client else "unknown"
    with session_scope(engine) as session:
        append(
            session=session,
            actor=Actor(
                principal_id=None,
                name=f"anonymous@{source}",
                kind=PrincipalKind.SYSTEM,
                request_id=request_id,
            ),
            action="auth.failed",
            target=f"route:GET {CALLBACK_PATH}",
            outcome=Outcome.DENIED,
            reason=f"OpenID Connect sign-in: {reason}"[:2000],
        )
    response = login_page(
        request,
        error=f"{shown} If it keeps failing, give your administrator this reference: {request_id}.",
        status_code=status_code,
        next_url="/",
    )
    response.delete_cookie(BINDER_COOKIE, path="/login/oidc")
    return response


@router.get("/login/oidc", response_model=None)
def oidc_start(request: Request, engine: EngineDep, next: str = "/") -> Response:
    """Send the browser to the identity provider with a fresh state, nonce and PKCE challenge."""
    settings: Settings = request.app.state.settings
    provider = provider_of(request.app)
    if provider is None:
        raise NotFound("sign-in with an identity provider is not configured here")
    source = request.client.host if request.client else "unknown"
    throttle = AuthThrottle(max_failures=STARTS_PER_MINUTE, window=timedelta(minutes=1))
    try:
        with session_scope(engine) as session:
            check_throttle(session=session, source=f"oidc-start:{source}", throttle=throttle)
            record_auth_failure(session=session, source=f"oidc-start:{source}", throttle=throttle)
    except RateLimited as error:
        busy = login_page(request, error=error.detail, status_code=429, next_url="/")
        busy.headers["Retry-After"] = str(error.retry_after_seconds)
        return busy
    state = secrets.token_urlsafe(32)
    nonce = secrets.token_urlsafe(32)
    verifier = secrets.token_urlsafe(64)
    binder = secrets.token_urlsafe(32)
    try:
        url = provider.authorization_url(
            redirect_uri=_redirect_uri(request, settings),
            state=state,
            nonce=nonce,
            code_verifier=verifier,
            scopes=settings.oidc_scopes,
        )
    except Unavailable as error:
        return _failed(
            request,
            engine,
            reason=error.detail,
            shown="The identity provider cannot be reached right now; try again in a minute.",
            status_code=503,
        )
    with session_scope(engine) as session:
        begin_login(
            session=session,
            state=state,
            binder=binder,
            sealed=box_of(request.app).seal({"nonce": nonce, "verifier": verifier}),
            next_url=safe_next(next),
            expires_at=utcnow() + timedelta(seconds=LOGIN_SECONDS),
        )
    response = RedirectResponse(url, status_code=303)
    response.set_cookie(
        BINDER_COOKIE,
        binder,
        max_age=LOGIN_SECONDS,
        path="/login/oidc",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.get(CALLBACK_PATH, response_model=None)
def oidc_callback(
    request: Request,
    engine: EngineDep,
    code: str = "",
    state: str = "",
    error: str = "",
    iss: str = "",
) -> Response:
    """Finish a sign-in: check state (once), redeem the code, validate the ID token, sign in."""
    settings: Settings = request.app.state.settings
    provider = provider_of(request.app)
    if provider is None:
        raise NotFound("sign-in with an identity provider is not configured here")
    again = "Sign-in did not complete; start again from the sign-in page."
    if error:
        return _failed(
            request,
            engine,
            reason=f"the provider answered error={error[:100]!r}",
            shown=f"The identity provider did not sign you in ({code_of(error)}). Start again.",
            status_code=401,
        )
    if not code or not state:
        return _failed(
            request, engine, reason="callback without code or state", shown=again, status_code=400
        )
    try:
        with session_scope(engine) as session:  # consumed even if what follows fails
            login = consume_login(
                session=session, state=state, binder=request.cookies.get(BINDER_COOKIE)
            )
            next_url, sealed = login.next_url, login.sealed
    except Unauthenticated as refused:
        return _failed(
            request,
            engine,
            reason="unknown, replayed, expired or foreign state",
            shown=_sentence(refused.detail),
            status_code=401,
        )
    try:
        # RFC 9207 (mix-up defence): the answer names who sent it, and must when the provider
        # says it always does; a response without it came from somewhere else.
        if iss and iss != provider.issuer:
            raise TokenRefused(again, audit_reason=f"the callback names issuer {iss!r}")
        if not iss and provider.metadata().iss_in_authorization_response:
            raise TokenRefused(
                again,
                audit_reason="the callback names no issuer, though the provider always sends one",
            )
        opened = box_of(request.app).open(sealed)
        id_token = provider.exchange_code(
            code=code,
            redirect_uri=_redirect_uri(request, settings),
            code_verifier=opened["verifier"],
        )
        claims = provider.validate_id_token(id_token, nonce=opened["nonce"])
        found = claims_of(claims, settings=settings, kind=PrincipalKind.PERSON)
        redirect = RedirectResponse(next_url, status_code=303)
        with session_scope(engine) as session:
            principal = sign_in_federated(session=session, claims=found, jit=settings.oidc_jit)
            set_session_cookie(
                request,
                redirect,
                principal,
                session=session,
                federated=True,
                seconds=settings.oidc_session_seconds,
            )
            append(
                session=session,
                actor=actor_for(principal, request_id=request_id_of(request)),
                action="auth.signin",
                target=f"principal:{principal.id}",
                reason=f"OpenID Connect sign-in ({found.issuer}, sub {found.subject})",
            )
    except TokenRefused as refused:
        return _failed(request, engine, reason=refused.audit_reason, shown=again, status_code=401)
    except Unauthenticated as refused:
        return _failed(
            request,
            engine,
            reason=refused.detail,
            shown=_sentence(refused.detail),
            status_code=403,
        )
    except Unavailable as down:
        return _failed(
            request,
            engine,
            reason=down.detail,
            shown="The identity provider cannot be reached right now; try again in a minute.",
            status_code=503,
        )
    redirect.delete_cookie(BINDER_COOKIE, path="/login/oidc")
    return redirect
