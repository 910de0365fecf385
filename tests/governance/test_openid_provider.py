"""The OpenID provider adapter against a real provider (panva's oidc-provider on 127.0.0.1).

ID tokens here are the provider's own, obtained through the authorization-code flow with PKCE;
the refusals are checked on real tokens (another client's, a wrong nonce) and on real tokens
tampered with the way an attacker would (``alg: none``, the public key used as an HMAC secret).
"""

from __future__ import annotations

import base64
import json
import secrets
from collections.abc import Iterator
from urllib.parse import parse_qsl, urlsplit

import pytest
from pydantic import ValidationError

from api.settings import Settings
from governance.openid_provider import OpenIDProvider, TokenRefused, pkce_challenge
from lineage.errors import Unavailable
from tests.identity_provider import (
    OTHER_CLIENT,
    WEB_CLIENT,
    WEB_SECRET,
    Provider,
    log_in_at_provider,
    run_provider,
)

pytestmark = pytest.mark.slow  # a Node.js provider per test

REDIRECT = "http://testserver/login/oidc/callback"
SCOPES = ("openid", "profile", "groups")


@pytest.fixture
def idp() -> Iterator[Provider]:
    """A provider with one person and Warden's clients."""
    accounts = {"alice-sub": {"preferred_username": "alice", "groups": ["ml-approvers"]}}
    with run_provider(redirect_uris=[REDIRECT], accounts=accounts) as provider:
        yield provider


def _adapter(
    idp: Provider, client_id: str = WEB_CLIENT, *, jwks_refresh_seconds: float = 10.0
) -> OpenIDProvider:
    return OpenIDProvider(
        issuer=idp.issuer,
        client_id=client_id,
        client_secret=WEB_SECRET,
        jwks_refresh_seconds=jwks_refresh_seconds,
    )


def _id_token(adapter: OpenIDProvider, nonce: str) -> str:
    """Sign alice in for ``adapter``'s client and return the ID token the provider issued."""
    verifier = secrets.token_urlsafe(48)
    url = adapter.authorization_url(
        redirect_uri=REDIRECT, state="s", nonce=nonce, code_verifier=verifier, scopes=SCOPES
    )
    callback = log_in_at_provider(url, "alice-sub")
    code = dict(parse_qsl(urlsplit(callback).query))["code"]
    return adapter.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=verifier)


def _b64(data: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def test_a_real_id_token_is_accepted_with_its_nonce_and_refused_otherwise(idp: Provider) -> None:
    warden = _adapter(idp)
    token = _id_token(warden, "n-1")
    claims = warden.validate_id_token(token, nonce="n-1")
    assert (claims["sub"], claims["aud"], claims["groups"]) == (
        "alice-sub",
        WEB_CLIENT,
        ["ml-approvers"],
    )
    with pytest.raises(TokenRefused, match="start the sign-in again") as wrong:
        warden.validate_id_token(token, nonce="n-2")
    assert "nonce is not this sign-in's" in wrong.value.audit_reason
    header, payload, signature = token.split(".")
    forged_none = f"{_b64({'alg': 'none'})}.{payload}."
    with pytest.raises(TokenRefused) as none:
        warden.validate_id_token(forged_none, nonce="n-1")
    assert "'none' is not accepted" in none.value.audit_reason
    tampered = dict(json.loads(base64.urlsafe_b64decode(payload + "==")), sub="admin")
    with pytest.raises(TokenRefused) as forged:
        warden.validate_id_token(f"{header}.{_b64(tampered)}.{signature}", nonce="n-1")
    assert "Signature verification failed" in forged.value.audit_reason


def test_an_id_token_is_never_taken_for_an_access_token(idp: Provider) -> None:
    careless = OpenIDProvider(
        issuer=idp.issuer, client_id=WEB_CLIENT, client_secret=WEB_SECRET, api_audience=WEB_CLIENT
    )
    token = _id_token(careless, "n")
    with pytest.raises(TokenRefused) as refused:
        careless.validate_access_token(token)
    assert refused.value.audit_reason == "an ID token was sent as access token"
    with pytest.raises(ValidationError, match="must differ from WARDEN_OIDC_CLIENT_ID"):
        Settings(oidc_client_id="warden", oidc_api_audience="warden")


def test_an_id_token_issued_to_another_client_is_refused(idp: Provider) -> None:
    other = _id_token(_adapter(idp, OTHER_CLIENT), "n-1")
    with pytest.raises(TokenRefused) as refused:
        _adapter(idp).validate_id_token(other, nonce="n-1")
    assert "audience" in refused.value.audit_reason.lower()


def test_a_used_code_or_a_wrong_verifier_is_refused_by_the_provider(idp: Provider) -> None:
    warden = _adapter(idp)
    verifier = secrets.token_urlsafe(48)
    url = warden.authorization_url(
        redirect_uri=REDIRECT, state="s", nonce="n", code_verifier=verifier, scopes=SCOPES
    )
    assert dict(parse_qsl(urlsplit(url).query))["code_challenge"] == pkce_challenge(verifier)
    code = dict(parse_qsl(urlsplit(log_in_at_provider(url, "alice-sub")).query))["code"]
    with pytest.raises(TokenRefused) as wrong:
        warden.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier="x" * 43)
    assert "invalid_grant" in wrong.value.audit_reason
    assert warden.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=verifier)
    with pytest.raises(TokenRefused) as reused:
        warden.exchange_code(code=code, redirect_uri=REDIRECT, code_verifier=verifier)
    assert "invalid_grant" in reused.value.audit_reason


def test_a_rotated_key_is_fetched_at_most_once_per_refresh_interval(idp: Provider) -> None:
    patient = _adapter(idp, jwks_refresh_seconds=3600.0)
    eager = _adapter(idp, jwks_refresh_seconds=0.0)
    for adapter in (patient, eager):
        adapter.validate_id_token(_id_token(adapter, "n"), nonce="n")
    idp.rotate_keys()
    with pytest.raises(TokenRefused) as refused:
        patient.validate_id_token(_id_token(patient, "n"), nonce="n")
    assert "even after a refetch" in refused.value.audit_reason
    assert eager.validate_id_token(_id_token(eager, "n"), nonce="n")["sub"] == "alice-sub"


def test_a_wrong_issuer_setting_and_symmetric_algorithms_are_refused(idp: Provider) -> None:
    slash = OpenIDProvider(issuer=idp.issuer + "/", client_id=WEB_CLIENT, client_secret=None)
    with pytest.raises(Unavailable, match="set WARDEN_OIDC_ISSUER to exactly"):
        slash.metadata()
    with pytest.raises(ValueError, match="public-key ones only"):
        OpenIDProvider(issuer=idp.issuer, client_id="c", client_secret=None, algorithms=["HS256"])
    with pytest.raises(ValidationError, match="only public-key algorithms"):
        Settings(oidc_algorithms=["RS256", "none"])
    with pytest.raises(ValidationError, match="https"):
        Settings(oidc_issuer="http://login.example.org")
    with pytest.raises(ValidationError, match="less than or equal to 300"):
        Settings(oidc_leeway_seconds=3600)
