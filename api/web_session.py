"""Dashboard sign-in sessions: a signed cookie, its CSRF token, and the gate's credential reader.

The cookie carries ``principal id · expiry · nonce · password fingerprint`` signed with HMAC-SHA256
under a key kept in the data directory (``<data_dir>/keys/dashboard-session.key``, created 0600 on
first use and shared by every replica that shares the directory). A valid signature is not enough:
the sign-in is also recorded in the store (:class:`governance.identity.DashboardSession`, by a
digest of the nonce), and the cookie is honoured only while that row is open. So signing out
ends the session for good (a replayed cookie is refused), as do disabling the principal and
changing their password (the fingerprint no longer matches); the cookie expires after
:data:`SESSION_SECONDS`. Only people who may sign in can hold a session: a person with a password
(:func:`governance.identity.may_sign_in`, while ``WARDEN_LOCAL_PASSWORDS`` is on) or a person the
identity provider vouched for (linked by :mod:`governance.federation`, while OpenID Connect is
configured; their sessions last ``WARDEN_OIDC_SESSION_SECONDS``). So a cookie can never stand for
a service account or the password-less bootstrap administrator.

The cookie is ``HttpOnly`` and ``SameSite=Lax`` (other sites cannot post forms with it), and
``Secure`` when the request came over https. It is read on dashboard paths only: the REST API
under ``/api/`` keeps taking API keys alone, so a browser's ambient cookie never authorises an
API call.

CSRF: every dashboard form carries a token, an HMAC of the session's nonce, checked on each
state-changing request authenticated by the cookie. The sign-in form, before any session exists,
uses a double-submit token (a random cookie echoed in the form).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fastapi import Request, Response
from sqlmodel import Session

from api.settings import Settings
from governance.actors import PrincipalKind
from governance.federation import identity_of
from governance.identity import (
    Principal,
    dashboard_session_active,
    end_dashboard_session,
    may_sign_in,
    open_dashboard_session,
)
from lineage.errors import PermissionDenied, Unauthenticated
from lineage.key_files import create_key_file

__all__ = [
    "CSRF_FIELD",
    "LOGIN_CSRF_COOKIE",
    "SESSION_COOKIE",
    "SESSION_SECONDS",
    "SessionCodec",
    "WebSession",
    "check_csrf",
    "clear_session_cookie",
    "codec_of",
    "end_session",
    "nonce_digest",
    "read_session",
    "session_credential_reader",
    "set_session_cookie",
]

SESSION_COOKIE = "warden_session"
LOGIN_CSRF_COOKIE = "warden_login_csrf"
CSRF_FIELD = "csrf_token"
SESSION_SECONDS = 8 * 3600
_KEY_BYTES = 32


@dataclass(frozen=True, slots=True)
class WebSession:
    """A verified session cookie's content.

    Attributes:
        principal_id: Who signed in.
        expires_at: Unix time after which the cookie is refused.
        nonce: Random per sign-in; the CSRF token is derived from it.
        fingerprint: A digest of the password hash at sign-in (a new password ends sessions).
    """

    principal_id: uuid.UUID
    expires_at: int
    nonce: str
    fingerprint: str


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _fingerprint(principal: Principal) -> str:
    return hashlib.sha256((principal.password_hash or "").encode()).hexdigest()[:16]


class SessionCodec:
    """Signs and verifies session cookies and derives CSRF tokens under one secret key."""

    def __init__(self, key: bytes) -> None:
        """Use ``key`` (at least 32 random bytes) for every signature."""
        if len(key) < _KEY_BYTES:
            raise ValueError(f"a session key needs at least {_KEY_BYTES} bytes")
        self._key = key

    @classmethod
    def load_or_create(cls, path: Path) -> SessionCodec:
        """Read the key at ``path``, creating it (0600, atomically) on first use."""
        create_key_file(path, secrets.token_bytes(_KEY_BYTES))
        return cls(path.read_bytes())

    def _sign(self, text: str) -> str:
        return _b64(hmac.new(self._key, text.encode(), hashlib.sha256).digest())

    def issue(
        self, principal: Principal, *, now: float | None = None, seconds: int = SESSION_SECONDS
    ) -> tuple[str, WebSession]:
        """Return a signed cookie value for ``principal`` and the session it encodes."""
        session = WebSession(
            principal_id=principal.id,
            expires_at=int(now if now is not None else time.time()) + seconds,
            nonce=secrets.token_urlsafe(16),
            fingerprint=_fingerprint(principal),
        )
        body = f"{session.principal_id}.{session.expires_at}.{session.nonce}.{session.fingerprint}"
        return f"{body}.{self._sign(body)}", session

    def verify(self, value: str, *, now: float | None = None) -> WebSession | None:
        """Return the session in a cookie value; ``None`` when it merely expired.

        Raises:
            Unauthenticated: The value is malformed or its signature is wrong (a forgery or
                a rotated key), counted and audited like a bad API key.
        """
        body, _, signature = value.rpartition(".")
        if not body or not hmac.compare_digest(self._sign(body), signature):
            raise Unauthenticated("the session cookie is not valid; sign in again")
        principal_id, expires_at, nonce, fingerprint = body.split(".")
        session = WebSession(uuid.UUID(principal_id), int(expires_at), nonce, fingerprint)
        if session.expires_at < (now if now is not None else time.time()):
            return None
        return session

    def csrf_token(self, nonce: str) -> str:
        """Return the CSRF token that forms of the session with ``nonce`` must carry."""
        return self._sign(f"csrf:{nonce}")

    def pseudonym(self, text: str) -> str:
        """Return a keyed digest of ``text``: equal texts match, the text cannot be read back.

        Used for what a visitor typed but must not be kept (an unknown sign-in name may be a
        password typed into the wrong field); without the key it cannot be brute-forced.
        """
        return "h:" + hmac.new(self._key, f"name:{text}".encode(), hashlib.sha256).hexdigest()[:24]


def nonce_digest(nonce: str) -> str:
    """Return the digest under which a session's nonce is recorded server-side."""
    return hashlib.sha256(nonce.encode()).hexdigest()


def codec_of(request: Request) -> SessionCodec:
    """Return the app's session codec, loading its key on first use."""
    codec = getattr(request.app.state, "session_codec", None)
    if not isinstance(codec, SessionCodec):
        settings: Settings = request.app.state.settings
        codec = SessionCodec.load_or_create(settings.data_dir / "keys" / "dashboard-session.key")
        request.app.state.session_codec = codec
    return codec


def read_session(request: Request) -> WebSession | None:
    """Return the request's verified session (cached on the request), or ``None``.

    Raises:
        Unauthenticated: A session cookie is present but forged.
    """
    if hasattr(request.state, "web_session"):
        cached: WebSession | None = request.state.web_session
        return cached
    value = request.cookies.get(SESSION_COOKIE)
    found = None
    if value:
        try:
            found = codec_of(request).verify(value)
        except ValueError as error:
            raise Unauthenticated("the session cookie is not valid; sign in again") from error
    request.state.web_session = found
    return found


def session_credential_reader(request: Request, session: Session) -> Principal | None:
    """Authenticate a dashboard request by its session cookie (the gate's credential reader).

    Returns ``None`` on ``/api/`` paths (the API takes keys only), without a cookie, or when the
    cookie expired. Signing out, a disabled principal or a changed password ends the session.

    Raises:
        Unauthenticated: The cookie is forged, was signed out, or names a principal who may not
            sign in (disabled, a service account, or a person without a password).
    """
    if request.url.path.startswith("/api/"):
        return None
    found = read_session(request)
    if found is None:
        return None
    principal = session.get(Principal, found.principal_id)
    settings: Settings = request.app.state.settings
    if principal is None or not hmac.compare_digest(_fingerprint(principal), found.fingerprint):
        raise Unauthenticated("your session has ended (account changed); sign in again")
    if identity_of(session=session, principal_id=principal.id) is not None:
        allowed = (
            settings.oidc_enabled()
            and principal.kind == PrincipalKind.PERSON
            and principal.disabled_at is None
        )
    else:
        allowed = settings.local_passwords and may_sign_in(principal)
    if not allowed:
        raise Unauthenticated("your session has ended (account changed); sign in again")
    if not dashboard_session_active(
        session=session, principal_id=principal.id, nonce_digest=nonce_digest(found.nonce)
    ):
        raise Unauthenticated("your session has ended (signed out); sign in again")
    return principal


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(
    request: Request,
    response: Response,
    principal: Principal,
    *,
    session: Session,
    federated: bool = False,
    seconds: int = SESSION_SECONDS,
) -> WebSession:
    """Sign ``principal`` in: record the session, set its cookie on ``response``, return it.

    ``federated`` says the identity provider vouched for the person (no password needed);
    ``seconds`` bounds the session (shorter for those, so their groups are re-read sooner).

    Raises:
        Unauthenticated: ``principal`` may not sign in (no password, a service account).
    """
    value, web_session = codec_of(request).issue(principal, seconds=seconds)
    open_dashboard_session(
        session=session,
        principal=principal,
        nonce_digest=nonce_digest(web_session.nonce),
        expires_at=datetime.fromtimestamp(web_session.expires_at, UTC),
        federated=federated,
    )
    response.set_cookie(
        SESSION_COOKIE,
        value,
        max_age=seconds,
        path="/",
        httponly=True,
        samesite="lax",
        secure=_secure(request),
    )
    return web_session


def end_session(request: Request, response: Response, *, session: Session) -> None:
    """Sign out: end the request's session in the store and clear its cookie."""
    found = read_session(request)
    if found is not None:
        end_dashboard_session(session=session, nonce_digest=nonce_digest(found.nonce))
    clear_session_cookie(request, response)


def clear_session_cookie(request: Request, response: Response) -> None:
    """Sign out: tell the browser to drop the session cookie."""
    response.delete_cookie(
        SESSION_COOKIE, path="/", httponly=True, samesite="lax", secure=_secure(request)
    )


def check_csrf(request: Request, token: str | None) -> None:
    """Refuse a cookie-authenticated change whose form lacks this session's CSRF token.

    Requests authenticated by an API key (``Authorization`` header) carry no ambient
    credential and need no token.

    Raises:
        PermissionDenied: The token is missing or wrong (reload the page and retry).
    """
    if request.headers.get("authorization"):
        return
    web_session = read_session(request)
    expected = codec_of(request).csrf_token(web_session.nonce) if web_session else None
    if expected is None or not token or not hmac.compare_digest(expected, token):
        raise PermissionDenied(
            "the form's CSRF token is missing or stale; reload the page and submit again",
            field=CSRF_FIELD,
        )
