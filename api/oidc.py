"""The OpenID Connect provider of one app: built once from ``WARDEN_OIDC_*``, used by the gate.

The client secret may be given sealed (``sealed:<token>``, from ``POST /api/v1/sealed-secrets``)
and is unsealed here with the same key as channel secrets, so the environment, a ``.env`` file or
a process listing never shows it in clear. Tokens become principals through
:func:`governance.federation.sign_in_federated`, which also re-reads group-derived roles.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from sqlmodel import Session

from api.settings import Settings
from governance.actors import PrincipalKind
from governance.channels import SecretBox
from governance.federation import FederatedClaims, sign_in_federated
from governance.identity import Principal
from governance.openid_provider import OpenIDProvider
from lineage.errors import Unavailable

__all__ = [
    "SEALED_PREFIX",
    "access_token_principal",
    "box_of",
    "claims_of",
    "provider_of",
    "unseal_setting",
]

SEALED_PREFIX = "sealed:"


def box_of(app: FastAPI) -> SecretBox:
    """Return the app's box sealing secrets (the outbound key, shared with channel secrets)."""
    box = getattr(app.state, "secret_box", None)
    if not isinstance(box, SecretBox):
        box = SecretBox.from_key_file(app.state.settings.resolved_outbound_key_path())
        app.state.secret_box = box
    return box


def unseal_setting(value: str, settings: Settings) -> str:
    """Return ``value`` in clear: a ``sealed:`` value is opened with the outbound key.

    Raises:
        Unavailable: The sealed value cannot be opened with this installation's key.
    """
    if not value.startswith(SEALED_PREFIX):
        return value
    box = SecretBox.from_key_file(settings.resolved_outbound_key_path())
    opened = box.open(value[len(SEALED_PREFIX) :])
    if "secret" not in opened:
        raise Unavailable("the sealed client secret is malformed; seal it again")
    return opened["secret"]


def provider_of(app: FastAPI) -> OpenIDProvider | None:
    """Return the app's identity provider (built on first use), or ``None`` when not configured."""
    settings: Settings = app.state.settings
    if not settings.oidc_enabled():
        return None
    provider = getattr(app.state, "oidc_provider", None)
    if isinstance(provider, OpenIDProvider):
        return provider
    assert settings.oidc_issuer is not None
    assert settings.oidc_client_id is not None
    secret = settings.oidc_client_secret
    provider = OpenIDProvider(
        issuer=settings.oidc_issuer,
        client_id=settings.oidc_client_id,
        client_secret=unseal_setting(secret.get_secret_value(), settings) if secret else None,
        api_audience=settings.oidc_api_audience,
        algorithms=settings.oidc_algorithms,
        leeway_seconds=settings.oidc_leeway_seconds,
        jwks_refresh_seconds=settings.oidc_jwks_refresh_seconds,
        timeout_seconds=settings.outbound_timeout_seconds,
        ca_file=settings.outbound_ca_file,
    )
    app.state.oidc_provider = provider
    return provider


def _groups(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list):
        return tuple(str(g) for g in value if isinstance(g, str | int))
    return ()


def claims_of(
    claims: dict[str, Any], *, settings: Settings, kind: PrincipalKind
) -> FederatedClaims:
    """Turn a validated token's claims into what Warden keeps of its holder."""
    email = claims.get("email") if isinstance(claims.get("email"), str) else ""
    hint = claims.get(settings.oidc_name_claim)
    if kind == PrincipalKind.SERVICE:
        hint = hint or claims.get("client_id") or claims.get("azp") or claims.get("appid")
    if not isinstance(hint, str) or not hint:
        hint = str(email).partition("@")[0] or str(claims["sub"])
    name = claims.get("name")
    return FederatedClaims(
        issuer=str(claims["iss"]),
        subject=str(claims["sub"]),
        kind=kind,
        preferred_name=hint,
        display_name=name if isinstance(name, str) else "",
        email=str(email or ""),
        groups=_groups(claims.get(settings.oidc_groups_claim)),
    )


def access_token_principal(
    *, session: Session, provider: OpenIDProvider, settings: Settings, token: str
) -> Principal:
    """Return the service account behind a provider access token, re-reading its groups.

    Raises:
        TokenRefused: The token failed validation (its ``audit_reason`` says why).
        Unauthenticated: The service is disabled, or unknown with just-in-time creation off.
    """
    claims = provider.validate_access_token(token)
    found = claims_of(claims, settings=settings, kind=PrincipalKind.SERVICE)
    return sign_in_federated(session=session, claims=found, jit=settings.oidc_jit)
