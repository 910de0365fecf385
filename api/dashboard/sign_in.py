"""Sign-in and sign-out pages (the session cookie of :mod:`api.web_session`).

The page offers what the installation allows: the identity provider's button when OpenID
Connect is configured (:mod:`api.dashboard.sign_in_oidc`), the password form while
``WARDEN_LOCAL_PASSWORDS`` is on. With passwords off, a posted password is refused unread.
"""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated

from fastapi import Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlmodel import select

from api.dashboard.rendering import (
    Viewer,
    _render,
    router,
)
from api.deps import EngineDep, SessionDep
from api.security import request_id_of
from api.settings import Settings
from api.web_session import (
    LOGIN_CSRF_COOKIE,
    check_csrf,
    codec_of,
    end_session,
    set_session_cookie,
)
from governance.actors import Actor, PrincipalKind
from governance.audit import Outcome, append
from governance.identity import (
    AuthThrottle,
    Principal,
    actor_for,
    check_throttle,
    may_sign_in,
    record_auth_failure,
    verify_password,
)
from lineage.errors import RateLimited
from lineage.store import session_scope

__all__ = ["login_page", "safe_next"]

# --- authentication -------------------------------------------------------------------------


def safe_next(target: str | None) -> str:
    """Return ``target`` if it is a path on this site, else ``/`` (no open redirects)."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def login_page(
    request: Request, *, error: str | None, status_code: int, next_url: str, username: str = ""
) -> HTMLResponse:
    """Render the sign-in page with what this installation allows (provider, passwords)."""
    settings: Settings = request.app.state.settings
    token = request.cookies.get(LOGIN_CSRF_COOKIE) or uuid.uuid4().hex
    response = _render(
        request,
        "login.html",
        None,
        None,
        status_code=status_code,
        error=error,
        next_url=next_url,
        username=username,
        login_csrf=token,
        passwords=settings.local_passwords,
        oidc_name=settings.oidc_display_name if settings.oidc_enabled() else None,
    )
    response.set_cookie(
        LOGIN_CSRF_COOKIE,
        token,
        path="/login",
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
    return response


@router.get("/login")
def login_form(request: Request, next: str = "/") -> HTMLResponse:
    """Show the sign-in form (the only public dashboard page)."""
    return login_page(request, error=None, status_code=200, next_url=safe_next(next))


@router.post("/login", response_model=None)
def login(
    request: Request,
    engine: EngineDep,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=1024)] = "",
    csrf_token: Annotated[str, Form(max_length=128)] = "",
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> Response:
    """Sign a person in: throttled per name (not per address) and audited when it fails.

    The failure audit names a known principal; a name no one has (perhaps a password typed
    into the wrong field) is recorded only as a keyed digest, never as the text.
    """
    next_url = safe_next(next)
    settings: Settings = request.app.state.settings
    if not settings.local_passwords:
        return login_page(
            request,
            error=f"Passwords are switched off here; sign in with {settings.oidc_display_name}.",
            status_code=403,
            next_url=next_url,
        )
    expected = request.cookies.get(LOGIN_CSRF_COOKIE)
    if not expected or expected != csrf_token:
        return login_page(
            request,
            error="The form expired; please sign in again.",
            status_code=400,
            next_url=next_url,
            username=username,
        )
    throttle = AuthThrottle(
        max_failures=settings.auth_max_failures,
        window=timedelta(seconds=settings.auth_failure_window_seconds),
    )
    pseudonym = codec_of(request).pseudonym(username)
    bucket = f"signin:{pseudonym}"
    request_id = request_id_of(request)
    redirect = RedirectResponse(next_url, status_code=303)
    try:
        with session_scope(engine) as session:
            check_throttle(session=session, source=bucket, throttle=throttle)
            principal = verify_password(session=session, name=username, password=password)
            if principal is not None and may_sign_in(principal):
                set_session_cookie(request, redirect, principal, session=session)
                append(
                    session=session,
                    actor=actor_for(principal, request_id=request_id),
                    action="auth.signin",
                    target=f"principal:{principal.id}",
                    reason="dashboard sign-in",
                )
            else:
                principal = None
    except RateLimited as error:
        response = login_page(
            request, error=error.detail, status_code=429, next_url=next_url, username=username
        )
        response.headers["Retry-After"] = str(error.retry_after_seconds)
        return response
    if principal is None:
        source = request.client.host if request.client else "unknown"
        with session_scope(engine) as session:
            record_auth_failure(session=session, source=bucket, throttle=throttle)
            known = session.exec(select(Principal.id).where(Principal.name == username)).first()
            named = repr(username) if known is not None else f"an unknown name ({pseudonym})"
            append(
                session=session,
                actor=Actor(
                    principal_id=None,
                    name=f"anonymous@{source}",
                    kind=PrincipalKind.SYSTEM,
                    request_id=request_id,
                ),
                action="auth.failed",
                target="route:POST /login",
                outcome=Outcome.DENIED,
                reason=f"POST /login: wrong name or password for {named}",
            )
        return login_page(
            request,
            error="Wrong name or password.",
            status_code=401,
            next_url=next_url,
            username=username,
        )
    redirect.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    return redirect


@router.post("/logout", response_model=None)
def logout(
    request: Request,
    actor: Viewer,
    session: SessionDep,
    csrf_token: Annotated[str | None, Form(max_length=128)] = None,
) -> Response:
    """Sign out: end the session in the store (a replayed cookie is refused) and drop the cookie."""
    check_csrf(request, csrf_token)
    redirect = RedirectResponse("/login", status_code=303)
    end_session(request, redirect, session=session)
    append(
        session=session,
        actor=actor,
        action="auth.signout",
        target=f"principal:{actor.principal_id}",
        reason="dashboard sign-out",
    )
    return redirect
